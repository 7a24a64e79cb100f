"""Phases of the ops a Keras train step creates outside every scope, read from the trace.

Keras's `Trainer.train_step` creates some ops at the root of the step function, with no
name scope: regularization and `add_loss` sums (`_compute_loss`), the loss tracker's update,
the tape's gradient aggregation (`AddN`, `zeros_like`), the optimizer's `iterations += 1`
(`apply_gradients`) and the metric updates (`compute_metrics`). Their names alone do not say
which; three things in the trace do, all generic Keras/TF behaviour rather than per model:

- the op type: only the metrics create `ArgMax`/`Equal`/`Bitcast`/`DivNoNan`... at the root,
  only regularizers read a variable into `Square`/`Abs`, only the tape makes `AddN`;
- the creation counter in the name: TF numbers ops of one base name in creation order
  (`Add`, `Add_1`, ...), and Keras creates them in a fixed order: loss, loss tracker
  (two `Add`/`AssignVariableOp`), tape, optimizer (`iterations += 1`: the next one), metrics;
- the op's neighbour on its thread: the executor runs a small op right after its producer,
  so a `Sum` that follows a metric op sums a metric, one that follows a loss op sums a loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .opnames import NON_COMPUTE, creation_index, strip_suffix
from .root_owners import (
    NO_ROOT,
    flat_trace,
    inside_step,
    known_owners,
    path_owner,
    scope_shape,
)

# Op types that only the metric updates create at the step's root (accuracy-style compare,
# top-k, safe division of totals by counts).
METRIC_TYPES = frozenset(
    {
        "ArgMax",
        "ArgMin",
        "Equal",
        "NotEqual",
        "Bitcast",
        "BitwiseAnd",
        "Less",
        "LessEqual",
        "Greater",
        "GreaterEqual",
        "LogicalAnd",
        "LogicalOr",
        "LogicalNot",
        "SelectV2",
        "Select",
        "DivNoNan",
        "BroadcastTo",
        "TopKV2",
        "InTopKV2",
        "UnsortedSegmentSum",  # AUC's confusion-matrix buckets
    }
)
# Regularizers read the weight and square it (L2) or take its absolute value (L1).
LOSS_TYPES = frozenset({"Square", "Abs", "L2Loss"})
TAPE_TYPES = frozenset({"AddN", "ZerosLike", "OnesLike"})
TAPE_BASES = frozenset({"AddN", "zeros_like", "ones_like"})
# Variable updates at the root: the loss tracker's and metrics' `assign_add`, and the
# optimizer's `iterations += 1`, all as `Add_k` + `AssignVariableOp_k`.
UPDATE_BASES = frozenset({"Add", "AssignVariableOp", "AssignAddVariableOp"})
# The loss tracker (a Mean) updates total and count: the first two updates of the step.
TRACKER_UPDATES = 2
# What `_compute_loss` creates at the root: regularizer terms, casts and sums of the
# additional losses, the `packed` total.
LOSS_BASES = frozenset({"Sum", "mul", "add", "Cast", "packed", "Square", "Abs"})
# What Grappler's AddOpsRewrite may turn into an AddN: the user's or a metric's adds.
_ADD_BASES = frozenset({"add", "Add", "AddV2"})
# Loss scaling (mixed precision) checks gradients with IsFinite/All before applying them.
LOSS_SCALE_TYPES = frozenset({"IsFinite"})


def _total_sum(decided, types, sequences, owner_of) -> dict[tuple[str, ...], int]:
    """Per namespace, the index of the loss total: the root Sum run next after `packed`."""
    out: dict[tuple[str, ...], int] = {}
    for seq in sequences:
        packed = None
        for op in seq:
            key = owner_of(op)
            if key is None:
                continue
            if types.get(key) == "Pack" and decided.get(key) == "loss":
                packed = key[0]
            elif packed == key[0] and strip_suffix(key[1]) == "Sum":
                out[key[0]] = max(out.get(key[0], -1), creation_index(key[1]))
                packed = None
    return out


class RootPhases:
    """Phase of every root op of a trace, decided once from all op names and neighbours."""

    def __init__(
        self,
        ops: Iterable[tuple[str, str]],
        scoped_phase,
        sequences: Iterable[Sequence[tuple[str, str]]] = (),
        counter=None,
        keras2: bool | None = None,
        step_scope: str | None = None,
    ):
        """`scoped_phase(name, type)` gives the phase of an op the names decide, or None;
        `counter(root update op names)`: a step_counter.StepCounter, where there is one;
        `keras2`: whether tf_keras named the ops (None: a flat trace is taken as its);
        `step_scope`: the user's scope around the whole step (root_owners.user_step_scope)."""
        ops = list(ops)
        flat = flat_trace(ops)
        # tf_keras runs its step as the top function; so do Keras 3's custom loops (a
        # GradientTape step in a tf.function, train_on_batch), whose optimizer still counts
        # at the root: `flat` says how names nest, `legacy` which Keras's bookkeeping.
        legacy = flat if keras2 is None else flat and keras2
        around = None if keras2 else step_scope

        def inside_of(name: str) -> tuple[str, ...] | None:
            inside = inside_step(name, flat)
            # Under the user's scope around the whole step: the step's root is inside it.
            return inside[1:] if around and inside and inside[0] == around else inside

        self.phase: dict[str, str] = {}
        owners: dict[tuple[tuple[str, ...], str], dict[str, str]] = {}
        optimizer_branches: set[str] = set()
        branch_ops: list[tuple[str, str]] = []
        # Each op's root owner, worked out once here; the threads' sequences repeat the ops.
        known: dict[tuple[str, str], tuple[tuple[str, ...], str] | None] = {}
        # Per scope string, what `path_owner` and `_branch` make of the ops right below it,
        # where the scope alone decides or leaves a test of the op alone: most ops of a
        # model are too deep for a root op. `ANY_OP`: work it out per op.
        shapes: dict[str | None, object] = {}
        for name, op_type in ops:
            scope, sep, last = name.rpartition("/")
            shape = shapes.get(scope if sep else None)
            if shape is None:
                shape = shapes[scope if sep else None] = scope_shape(inside_of(name))
            if shape is NO_ROOT:
                known[(name, op_type)] = None
                continue
            if shape.__class__ is tuple:  # a scope at the root: its op, a read or `input` below
                if op_type in NON_COMPUTE or last == "input":
                    ro = known[(name, op_type)] = shape
                    owners.setdefault(ro, {})[name] = op_type
                else:
                    known[(name, op_type)] = None
                continue
            if shape.__class__ is str:  # a branch of a `cond` at the step's root
                known[(name, op_type)] = None
                branch_ops.append((shape, name))
                if scoped_phase(name, op_type) == "optimizer":
                    optimizer_branches.add(shape)
                continue
            inside = inside_of(name)  # (`ANY_OP`: one or two scopes, or none)
            known[(name, op_type)] = ro = path_owner([*inside, last], op_type)
            if ro is not None:
                owners.setdefault(ro, {})[name] = op_type
        # A root `cond` that holds optimizer ops is the loss-scale optimizer's apply step.
        for br, name in branch_ops:
            if br in optimizer_branches:
                self.phase[name] = "optimizer"
        # The owner's own type; for a read whose reader did not run, the read's.
        types = {
            key: next((t for n, t in members.items() if n.rsplit("/", 1)[-1] == key[1]), None)
            or next((t for t in members.values() if t not in NON_COMPUTE), "ReadVariableOp")
            for key, members in owners.items()
        }
        replicated = any(ns for ns, _ in owners)
        all_types = set(types.values())
        loss_scaled = bool(all_types & LOSS_SCALE_TYPES) or bool(optimizer_branches)
        n_reg = {ns: 0 for ns, _ in owners}
        last_pack: dict[tuple[str, ...], int] = {}
        for (ns, owner), t in types.items():
            if t in LOSS_TYPES and "ReadVariableOp" in owners[(ns, owner)].values():
                n_reg[ns] += 1
            if t == "Pack":
                last_pack[ns] = max(last_pack.get(ns, -1), creation_index(owner))
        # True when regularizer terms exist: the tape then sums their gradients into the
        # gradients of the weights they read.
        self.regularized = any(n_reg.values())
        # Keras's own train_step weighs the loss tracker's value by the batch size: a root
        # `mul` beyond the regularizers' (or a `BroadcastTo`). Without it (a custom
        # train_step) the optimizer's counter is the first variable update.
        tracker = any(
            strip_suffix(o) == "mul" and creation_index(o) >= n_reg[ns] or t == "BroadcastTo"
            for (ns, o), t in types.items()
        )
        optimizer_update = TRACKER_UPDATES if tracker else 0
        if legacy:
            # tf_keras counts the optimizer's iterations inside its own scope (`Adam/`):
            # every variable update at the root is a metric's (the loss tracker's too).
            optimizer_update = -1
        at_root = train_counter = None
        if counter is not None:
            roots = [n for (ns, _), m in owners.items() if not ns for n in m]
            if legacy:
                train_counter = counter.train_counter(roots)
            else:
                at_root = counter(roots)
        # Keras's metrics all divide for their result (`div_no_nan`, the loss tracker's
        # too): a step that reads no result at its root updates no metric there. A custom
        # train_step without one (a GAN's, a gradient penalty's) updates only its optimizers'
        # counters at the root, and its own arithmetic there is no metric's.
        results = any(
            t == "DivNoNan" or strip_suffix(o) == "div_no_nan" for (_, o), t in types.items()
        )
        counters_only = not legacy and not results
        decided: dict[tuple[tuple[str, ...], str], str] = {}
        strong: set[tuple[tuple[str, ...], str]] = set()  # decided by what only one phase makes
        pending: list[tuple[tuple[str, ...], str]] = []
        for key, t in types.items():
            ns, owner = key
            base, k = strip_suffix(owner), creation_index(owner)
            p = None
            if (t in TAPE_TYPES and base not in _ADD_BASES) or base in TAPE_BASES:
                # (An `AddN` that Grappler made of a chain of adds, `AddOpsRewrite_add_25`,
                # is the adds' op: a metric's or the loss's, not the tape's sum.)
                p = "backward"
            elif t in LOSS_SCALE_TYPES or (loss_scaled and base in ("All", "Mul")):
                # Loss scaling: `scale_loss` multiplies by the scale (`Mul_k`), the apply
                # step checks the gradients (`IsFinite`, `All`).
                p = "optimizer"
            elif t in METRIC_TYPES or base == "div_no_nan":
                p = "metrics"
            elif t in LOSS_TYPES:
                # A regularizer term reads its weight; a metric's `Abs`/`Square` does not.
                p = "loss" if "ReadVariableOp" in owners[key].values() else "metrics"
            elif base == "strided_slice" and owner == base and not legacy:
                # Keras 3's train_step takes the batch size for the loss tracker,
                # `tf.shape(x)[0]`, before any metric slices anything: the step's first
                # root slice (folded away when the batch size is static).
                p = "other"
            elif t == "Mean" and "Pack" in owners[key].values():
                p = "other"  # a distribution strategy averaging the replicas' step outputs
            elif t == "Pack":
                p = "optimizer" if loss_scaled and k == last_pack[ns] else "loss"
            elif legacy and base == "AssignAddVariableOp" and k == train_counter and not ns:
                p = "other"  # tf_keras's own step counter, neither a metric nor the optimizer
            elif base in UPDATE_BASES:
                # The counter's index, read off the graph or the optimizer's scope where
                # step_counter could; else Keras's creation order says it.
                at = at_root.get(base, optimizer_update) if at_root else optimizer_update
                if (k == at or counters_only) and not loss_scaled and not ns:
                    # Under a distribution strategy the counter's assign runs in the
                    # strategy's `update_<k>` scope; only its `Add` stays at the root.
                    p = "metrics" if replicated and base != "Add" else "optimizer"
                else:
                    p = "metrics"  # the loss tracker's and the metrics' updates
            elif base in ("mul", "Sum") and k < n_reg[ns]:
                p = "loss"  # each regularizer term: Square/Abs -> Sum -> mul, first of all
            if p is not None:
                strong.add(key)
            elif base == "mul":
                p = "metrics"  # the loss tracker weighs the loss; metrics weigh values
            elif base in ("Cast", "ReadVariableOp"):
                # A bare read at the root is a metric's result read for the step's logs
                # (Keras 3.3); a cast there converts a metric's value.
                p = "metrics"
            if p is None:
                pending.append(key)
            else:
                decided[key] = p
        sequences = list(sequences)
        owner_of = known_owners(known, flat)
        total = _total_sum(decided, types, sequences, owner_of)
        for key in list(pending):
            ns, owner = key
            if strip_suffix(owner) == "Sum" and ns in total:
                # `_compute_loss` makes every loss Sum before the total (the Sum of the
                # `packed` losses); the trackers and metrics make theirs after it.
                decided[key] = "loss" if creation_index(owner) <= total[ns] else "metrics"
                pending.remove(key)
            elif strip_suffix(owner) == "Sum" and "Pack" not in types.values():
                # One loss and no total: the loss is the compiled one (its own scope);
                # the root Sums beyond the regularizers' are the trackers' and metrics'.
                decided[key] = "metrics"
                pending.remove(key)
        self._resolve_by_neighbours(pending, decided, scoped_phase, sequences, owner_of)
        if counters_only:
            decided = {k: "other" if p == "metrics" else p for k, p in decided.items()}
        for key, members in owners.items():
            for name in members:
                self.phase[name] = decided.get(key, "other")
        # Root ops whose phase rests only on a guess (names like `mul`, `Sigmoid` that a
        # custom gradient function may make too).
        self.weak = {n for key, m in owners.items() if key not in strong for n in m}

    @staticmethod
    def _resolve_by_neighbours(pending, decided, scoped_phase, sequences, owner_of):
        """An undecided root op takes the phase of its neighbours on its thread.

        The executor runs a small op right after its producer and hands its output to the
        consumer next, so the decided root ops just before and after it (one vote each)
        are usually of its own chain. Chains (`Abs` -> `Mean` -> `Sum` -> `Add`) resolve
        over a few rounds.
        """
        for _ in range(4):
            want = {key for key in pending if key not in decided}
            if not want:
                break  # (the checks below still apply to what the rounds decided)
            votes: dict[tuple[tuple[str, ...], str], dict[str, float]] = {}
            for seq in sequences:
                ops = [op for op in seq if op[1] != "ReadVariableOp"]  # reads run anytime
                keys = [owner_of(op) for op in ops]
                for i, key in enumerate(keys):
                    if key not in want:
                        continue
                    v = votes.setdefault(key, {})
                    for j in (i - 1, i + 1):
                        if 0 <= j < len(ops) and keys[j] != key:
                            p = _phase_of(ops[j], keys[j], decided, scoped_phase, key[1])
                            if p is not None:
                                v[p] = v.get(p, 0) + 1
            progress = False
            for key, v in votes.items():
                if v:
                    decided[key] = max(v, key=v.get)
                    progress = True
            if not progress:
                break
        for key in pending:
            decided.setdefault(key, "other")
            if decided[key] == "loss" and strip_suffix(key[1]) not in LOSS_BASES:
                decided[key] = "metrics"  # `_compute_loss` makes only sums at the root

    def of(self, name: str) -> str | None:
        """The phase of a root op, or None when the op is not one."""
        return self.phase.get(name)


def _phase_of(op, key, decided, scoped_phase, owner: str) -> str | None:
    """Phase of a neighbour: a decided root op, or what a scoped name says."""
    if key is not None:
        return decided.get(key)
    p = scoped_phase(*op)
    if p == "forward":
        # A `Sum` right after a layer's op sums an `add_loss` tensor (the loss aggregates
        # it); other root ops after a forward op say nothing about their phase.
        return "loss" if strip_suffix(owner) == "Sum" else None
    # Optimizer ops run beside whatever has no dependency left; only the root ops decided
    # above (`iterations += 1`) speak for the optimizer.
    return p if p in ("loss", "metrics") else None
