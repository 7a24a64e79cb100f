"""Where a Keras 3 optimizer counts its steps: an `Add_k` at the train step's root, or
inside its own scope; and what that says of the Keras that wrote the trace.

Keras increments `optimizer.iterations` (an int64 variable) once per step, as an `Add` and
an `AssignVariableOp`. Keras 3.15 does it at the step's root, where the loss tracker's and
the metrics' updates have the same names; Keras 3.6 (the Keras of TF 2.16-2.18, the
releases tensorflow-metal runs with) does it inside the optimizer's scope, beside its
other variable updates. Which root `Add_k` is the counter changes the phase of two root
ops: phases.RootPhases asks here, with the root's update ops it found.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .opnames import creation_index, strip_suffix

DT_INT64 = 9  # tensorflow's DataType enum: the counter's dtype; Keras metrics use floats
UPDATE_OPS = ("Add", "AssignVariableOp")


class StepCounter:
    """Answers RootPhases's question for one trace: `names` holds every op name of it,
    `optimizer_scopes` the top-level scopes the optimizer's ops sit in (`adam`, `SGD`)."""

    def __init__(self, names: Collection[str], optimizer_scopes: Iterable[str], graph=None):
        self._names = names
        self._scopes = frozenset(optimizer_scopes)
        self._graph = graph
        self._in_scope: bool | None = None

    def __call__(self, roots: Iterable[str]) -> dict[str, int] | None:
        """For `Add` and `AssignVariableOp`, the index k of the root `<base>_k` (one of
        `roots`, full op names) that counts the optimizer's steps (-1: no root op does, the
        optimizer counts in its own scope), or None when neither source tells. The two
        indices can differ (a regularizer's `Add` came first).

        The step graph tells exactly: the counter's ops are the root's int64 ones. From
        names alone: an optimizer scope with an `Add` and exactly one `AssignVariableOp` is
        Keras 3.6's (the counter's assign; its slot updates are `AssignAdd`/`AssignSub`):
        see counts_in_scope. An RMSprop makes one per slot in either Keras: names cannot
        tell there.
        """
        by_base: dict[str, list[str]] = {base: [] for base in UPDATE_OPS}
        for name in roots:
            base = strip_suffix(name.rpartition("/")[2])
            if base in by_base:
                by_base[base].append(name)
        graph = self._graph
        if graph is not None and any(n in graph for ns in by_base.values() for n in ns):
            out = {}
            for base, names in by_base.items():
                counters = [n for n in names if graph.dtype(n) == DT_INT64]
                if len(counters) > 1:
                    return None  # one counter per optimizer (a GAN's): RootPhases's rule
                out[base] = creation_index(counters[0]) if counters else -1
            return out
        if self.counts_in_scope():
            return dict.fromkeys(UPDATE_OPS, -1)
        return None

    def train_counter(self, roots: Iterable[str]) -> int | None:
        """tf_keras (a flat trace): the index k of the root `AssignAddVariableOp_k` that is
        the model's own step counter (`_train_counter += 1`, after the step's metric
        updates), or None. The step graph says it (int64); else it is the last created."""
        adds = [n for n in roots if strip_suffix(n.rpartition("/")[2]) == "AssignAddVariableOp"]
        graph = self._graph
        if graph is not None and any(n in graph for n in adds):
            counters = [n for n in adds if graph.dtype(n) == DT_INT64]
            return creation_index(counters[0]) if len(counters) == 1 else None
        return max(map(creation_index, adds)) if adds else None

    def counts_in_scope(self) -> bool:
        """True when the optimizer counts its steps inside its own scope (Keras 3.6 and
        before, loss-scaled or not): an `AssignVariableOp` right in an optimizer scope that
        the step graph says is int64; from names alone, the scope's only plain assign
        beside its `Add`s (Keras 3.15's Adam and SGD assign nothing plain there)."""
        if self._in_scope is None:
            self._in_scope = self._find_in_scope()
        return self._in_scope

    def _find_in_scope(self) -> bool:
        if not self._scopes:
            return False
        graph, has = self._graph, self._names.__contains__
        for name in self._names:
            if not name.endswith("/AssignVariableOp"):
                continue
            head = name[: -len("/AssignVariableOp")]
            if head.rpartition("/")[2] not in self._scopes:
                continue
            if graph is not None and name in graph:
                if graph.dtype(name) == DT_INT64:
                    return True
            elif not has(head + "/AssignVariableOp_1") and (
                has(head + "/Add") or has(head + "/add")  # (Keras 3.3 names it `add`)
            ):
                return True
        return False


# Floating-point DataType numbers: float, double, half, bfloat16.
_FLOATS = frozenset({1, 2, 19, 14})


def compute_dtype_casts(graph):
    """For a Keras that counts in its optimizer's scope (3.6 and before): a test of which
    model-level casts are Functional's own: converting the model's inputs to each layer's
    compute dtype or its Input's dtype (float to float: mixed precision, a float32 head;
    int64 to int32), not a layer's. Later Keras casts in each layer; a preprocessing
    layer casts its own inputs between integers and floats in either. Only the step graph
    says a cast's dtypes; without it every such cast is taken as Functional's, the common
    case (mixed precision, integer token inputs) over preprocessing layers in the model.
    """
    if graph is None:
        return lambda name: True

    def functionals(name: str) -> bool:
        src, dst = graph.dtype(name, ("SrcT",)), graph.dtype(name, ("DstT",))
        return src is not None and dst is not None and (src in _FLOATS) == (dst in _FLOATS)

    return functionals
