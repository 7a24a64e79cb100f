"""Attribute a TF op to the Keras layer that created it, and to a phase of the train step.

Two sources, same output:
- trace names alone (`TraceAttributor`): Keras 3 name scopes carry a uniquifying `_<k>`
  on layer components; we strip exactly one, but only on components that are layer
  scopes. What tells a layer scope from an op name is the trace itself: a layer scope
  has forward ops *below* it, an op name never does (`ln_1/add_1/Sum` is the gradient
  of op `add_1`, not a layer named `add`). What names cannot say (the phase of the ops
  Keras's Trainer makes at the step's root, the layer of the tape's sums, of custom
  gradients and of input casts) is read off the op type, TF's creation counters and the
  op's neighbours on its thread: phases.py and neighbours.py.
- a manifest (`ManifestAttributor`, in manifest_attribution.py): what the training
  callback recorded while the step was traced. Exact, no guessing.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import neighbours
from .function_grads import function_gradient_layers
from .graph_accumulators import graph_accumulator_layers
from .graph_rules import graph_placements
from .keras2_names import Keras2Scopes, unsuffixed_naming
from .opnames import (
    ACCUMULATOR_TYPE,
    OPTIONAL_TYPES,
    PASS_THROUGH,
    SUFFIX,
    is_mark,
    layer_key,
    name_head,
    name_is_backward,
    scope_sets,
    scopes_above,
    strip_suffix,
)
from .opphase import (  # noqa: F401  (the tables are importable from here, as before)
    BUCKETS,
    ELEMENT_DECODE_TYPES,
    INPUT_TYPES,
    LOSS_SCOPES,
    METRIC_SCOPES,
    OPTIMIZER_SCOPES,
    PHASES,
    Attribution,
    _attribution,
    _scope_phase,
    _scopes_phase,
    classify,
    optimizer_scopes,
    updating_scopes,
)
from .other_functions import other_function_phases
from .phases import RootPhases
from .root_owners import user_step_scope
from .step_counter import StepCounter, compute_dtype_casts
from .tf_names import NAMEABLE_PASS_THROUGH, feed_fetch_owner, tf_control_components
from .user_scopes import steps_over

_UNSET = object()  # not in a cache (None is an answer there)

# Kept importable under their old names (ManifestAttributor and other modules use them).
_layer_key = layer_key
_strip_suffix = strip_suffix

COPY_TYPES = frozenset({"_Send", "_Recv", "_HostSend", "_HostRecv"})
# Op types whose answer reads more than the op's scope (a copy's owner, a cond's Optionals,
# the iterator, a loop's accumulators): `attribute` works each of them out on its own.
_PER_OP_TYPES = (
    COPY_TYPES | OPTIONAL_TYPES | INPUT_TYPES | ELEMENT_DECODE_TYPES | {ACCUMULATOR_TYPE}
)


# Per-scope answers: every op of a scope (of a type not in _PER_OP_TYPES, its name in no
# per-name table, not a `_<k>` copy) with the same line kinds gets one answer, except where
# the op's own name is read: the loss trackers' updates (`_loss_tracker_op`, under
# `compile_loss/`), and `restart` when the scopes end in `gradients/` (the op may be the
# first scope again). `attribute` leaves scopes with either out of its caches.


# Where a root op's time goes when it has no layer, by the phase Keras created it in.
_ROOT_BUCKET = {"loss": "loss", "metrics": "metrics", "optimizer": "optimizer"}


def _op_keys(seq) -> list[tuple[str, str]]:
    """(name, type) of each op record (or pair) of a thread's sequence."""
    try:
        return [r.key for r in seq]  # records, as TraceEvents keeps them: (name, type)
    except AttributeError:
        return [(r.name, r.type) if hasattr(r, "name") else tuple(r) for r in seq]


class TraceAttributor:
    """Attribute ops from their names, using every op name of the trace as context.

    `sequences` (optional): op events in start order per host thread for one step
    (`TraceEvents.sequences`); neighbours there decide what names cannot (root ops'
    phases, the layer of the tape's gradient sums). `compute` (optional): the names of ops
    that ran on compute threads only, never eagerly.
    """

    source = "trace_names"

    def __init__(
        self,
        ops: Iterable[tuple[str, str]],
        sequences=None,
        first_start=None,
        graph=None,
        compute: set[str] | None = None,
    ):
        ops = list(ops)
        self._types = dict((n, t) for n, t in ops)
        # Feed and fetch nodes are named after the tensor they move, not in a scope: every
        # question below is about their producer (`_attribute`), and their names stay out of
        # the scope sets, where `_send_model_1` would read as a layer.
        self._feeds = {n: o for n, t in ops if n[:1] == "_" and (o := feed_fetch_owner(n, t))}
        if self._feeds:
            ops = [op for op in ops if op[0] not in self._feeds]
        seqs = [
            _op_keys(s)
            for s in (sequences.values() if isinstance(sequences, dict) else sequences or [])
        ]
        self._name_layers: dict[str, tuple[str, ...] | None] = {}
        self._scope_layers: dict[tuple[str, ...], tuple[str, ...] | None] = {}
        self._head_layers: dict[str | None, tuple[str, ...] | None] = {}
        self._walks: dict[tuple[str, ...], tuple] = {(): ((), (), False)}
        self._tf_control: frozenset[str] | None = None
        # Every scope prefix that has forward ops below it, and the paths that tell
        # `moments_1` (a second `moments` beside the first) from a layer named `moments`.
        self._forward_scopes, self._paths = scope_sets(ops)
        # tf_keras (Keras 2) names scopes once, without Keras 3's `_<k>` (keras2_names.py).
        self._keras2 = (
            Keras2Scopes(ops, self._forward_scopes)
            if unsuffixed_naming(self._forward_scopes)
            else None
        )
        self._unsuffixed = self._keras2 is not None
        # Top-level scopes whose phase only the trace's own ops show: tf_keras's loss
        # scopes (keras2_names) and optimizers under names of their own (opphase).
        if self._keras2:
            step_scope, own_opts = None, set()
            self._phase_tops = dict.fromkeys(self._keras2.loss_tops, "loss")
        else:
            step_scope = user_step_scope(self._forward_scopes)
            own_opts = updating_scopes(ops, step_scope)
            self._phase_tops = dict.fromkeys(own_opts, "optimizer")
        self._layers: dict[str, tuple[str, ...] | None] = {}
        opt_tops = optimizer_scopes(self._forward_scopes) | own_opts
        counter = StepCounter(self._types, opt_tops, graph)
        self._roots = RootPhases(
            ops, self._scoped_phase, seqs, counter, self._unsuffixed, step_scope
        )
        self._root_phase = self._roots.phase  # `_roots.of`, without a call per op
        tape = {n for n in self._roots.phase if self._roots.of(n) == "backward"}
        tape -= self._roots.weak  # only the tape's own sums; guesses are settled below
        self._layers.update(
            neighbours.tape_layers(
                tape,
                seqs,
                self._backward_layer,
                self._name_layer,
                self._scoped_phase,
                self._roots.regularized,
            )
        )
        self._layers.update(
            neighbours.input_casts(
                ops,
                seqs,
                self._name_layer,
                first_start,
                graph.consumers if graph else None,
                compute_dtype_casts(graph) if counter.counts_in_scope() else None,
            )
        )
        self._layers.update(neighbours.accumulator_layers(ops, seqs, self._name_layer))
        if graph is not None:
            pushes = [n for n, t in ops if t == ACCUMULATOR_TYPE]
            self._layers.update(graph_accumulator_layers(pushes, graph, self._name_layer))
        self._layers.update(function_gradient_layers(ops, self._name_layer))
        self._phases: dict[str, str] = {}
        if first_start:
            grads = neighbours.gradient_runs(
                seqs,
                self._roots.weak,
                self._gradient_layer,
                neighbours.forward_starts(first_start, self._read_layer, self._head_layers),
            )
            self._layers.update(grads)
            self._phases.update(dict.fromkeys(grads, "backward"))
        if graph is not None:
            graph_placements(
                ops, graph, self._name_layer, self.layer_of, self._layers, self._phases,
                self._root_phase, tape, compute,
            )  # fmt: skip
            self.source = "trace_graph"
        self._layers.update({n: self.layer_of(o) for n, o in self._feeds.items()})
        if compute:
            # An evaluation step run unwrapped beside the wrapped train step (Keras <= 3.6).
            other = other_function_phases(ops, compute, self.layer_of, self._scoped_phase)
            if other:
                self._root_phase = {**self._root_phase, **other}
        # Ops whose own name, not only their scope, can change their answer.
        self._per_name = self._layers.keys() | self._phases.keys() | self._root_phase.keys()
        self._by_scope: dict[tuple[str | None, frozenset[str]], Attribution] = {}
        self._by_facts: dict[tuple, Attribution] = {}

    def _scoped_phase(self, name: str, op_type: str) -> str | None:
        """The phase an op's name decides (None for unscoped root ops)."""
        att = classify(name, op_type, (), self.layer_of(name), self.source)
        return None if att.bucket == "root" and att.phase == "other" else att.phase

    def _gradient_layer(self, name: str) -> tuple[str, ...] | None:
        """The layer of a gradient op or of a tape sum (None for any other op)."""
        if name_is_backward(name):
            return self._name_layer(name)
        if name in self._layers and self._roots.of(name) == "backward":
            return self._layers[name]
        return None

    def _backward_layer(self, ops) -> tuple[str, ...] | None:
        """The layer of the first gradient op among `ops`, if any."""
        for name, _ in ops:
            if name_is_backward(name):
                return self._name_layer(name)
        return None

    def _name_layer(self, name: str) -> tuple[str, ...] | None:
        """The layer path the name's scopes say (no neighbours consulted)."""
        layer = self._name_layers.get(name, _UNSET)
        if layer is _UNSET:
            layer = self._name_layers[name] = self._read_layer(name)
        return layer

    def _read_layer(self, name: str) -> tuple[str, ...] | None:
        head, sep, last = name.rpartition("/")
        if head and last[:1] == "_" and last[1:].isdigit():  # is_mark(last), inline
            name = head  # `<op>/_<k>`: a copy the partitioner made of <op>'s output
            head, sep, last = name.rpartition("/")
        # The answer depends on the scopes above the op only (and this trace's scope
        # sets, fixed once built): ops under one scope share it. The scope string says
        # which, unless it ends in `gradients/` (then the op's own name may count).
        key = head if sep else None
        layer = self._head_layers.get(key, _UNSET)
        if layer is not _UNSET:
            return layer
        h, _ = name_head(name)
        scopes = scopes_above(h, last)
        if not h.ends_gradients:
            layer = self._head_layers[key] = self._scopes_layer(scopes)
            return layer
        return self._scopes_layer(scopes)

    def _scopes_layer(self, scopes: tuple[str, ...]) -> tuple[str, ...] | None:
        if scopes in self._scope_layers:
            return self._scope_layers[scopes]
        walked = scopes
        if "pfor" in scopes and "loop_body" in scopes:
            walked = scopes[: scopes.index("loop_body")]  # rewritten by the caller's map
        layer = self._scope_layers[scopes] = self._layer_of_scopes(walked)
        return layer

    def _layer_of_scopes(self, scopes: tuple[str, ...]) -> tuple[str, ...] | None:
        """The layers of the scopes: the leading run of layer scopes (pass-through ones
        stepped over), read one prefix at a time and remembered per prefix (thousands of
        scopes share a few hundred parents)."""
        walks = self._walks
        i = len(scopes)
        while i and scopes[:i] not in walks:
            i -= 1
        # (layer path, layer key, stopped): the walk's state after the first i components.
        path, key, stopped = walks[scopes[:i]]
        for j in range(i, len(scopes)):
            comp = scopes[j]
            if not (stopped or comp in PASS_THROUGH or is_mark(comp)):
                key = key + (comp,)
                if self._is_layer_scope(key):
                    path = path + (comp if self._unsuffixed else strip_suffix(comp),)
                else:
                    # A scope the user opened (`with tf.name_scope("encoder")` in a call,
                    # or around a whole train_step) is no layer; layers inside it are.
                    # So is a tf.map_fn's (`map/`): the layers its function calls.
                    stopped = not steps_over(comp, not self._unsuffixed)
            walks[scopes[: j + 1]] = (path, key, stopped)
        return path or None

    def _is_layer_scope(self, key: tuple[str, ...]) -> bool:
        """A uniquified scope with forward ops below it, not a second op-function scope.

        Functions open scopes (`moments`, `stateless_dropout`) whose second use in the same
        parent is `moments_1`; a layer's scope always has the suffix, so a suffixed scope
        is a layer unless its unsuffixed twin sits beside it (even one named like an op
        function).
        """
        comp = key[-1]
        if key not in self._forward_scopes:
            return False
        if self._keras2 is not None:
            # tf_keras enters each layer's scope once: no `_<k>` to strip.
            return self._keras2.is_layer(key)
        if not SUFFIX.match(comp):
            return False
        base = strip_suffix(comp)
        if base in PASS_THROUGH and (
            base not in NAMEABLE_PASS_THROUGH or comp in self._tf_control_components()
        ):
            return False  # a scope TF opened (`cond_1/then/`), not a layer named `cond`
        return key[:-1] + (base,) not in self._paths

    def _tf_control_components(self) -> frozenset[str]:
        """`tf_control_components` of the trace's op names, worked out when first asked."""
        if self._tf_control is None:
            self._tf_control = tf_control_components(self._types)
        return self._tf_control

    def layer_of(self, name: str) -> tuple[str, ...] | None:
        """The layer path of one op, real layer names (one `_<k>` stripped), or None."""
        layer = self._layers.get(name, _UNSET)
        if layer is _UNSET:
            layer = self._name_layers.get(name, _UNSET)
            if layer is _UNSET:
                layer = self._name_layers[name] = self._read_layer(name)
        return layer

    def attribute(self, name: str, op_type: str, line_kinds: Iterable[str]) -> Attribution:
        """Layer and phase of one op."""
        head, sep, last = name.rpartition("/")
        # Most ops' answer depends only on their scope string and line kinds: worked out
        # for the first op of a scope, looked up for the others (see per-scope answers, above).
        key = None
        if (
            op_type not in _PER_OP_TYPES
            and isinstance(line_kinds, frozenset)
            and not (last[:1] == "_" and last[1:].isdigit())
            and name not in self._per_name
        ):
            key = (head if sep else None, line_kinds)
            att = self._by_scope.get(key)
            if att is not None:
                return att
            h = name_head(name)[0]
            scoped = _scopes_phase(h.tail)
            if scoped is None:
                scoped = self._phase_tops.get(h.first)
            if h.ends_gradients or scoped == "loss":  # see per-scope answers
                return self._attribute(name, op_type, line_kinds, head, sep, last)
            # What classify reads of such an op: its layer, whether it is a gradient, its
            # scopes' phase, whether it has scopes at all, and its line kinds. Scopes that
            # agree on these (an optimizer's thousands) share one answer.
            facts = (self._read_layer(name), h.backward, scoped, bool(sep), line_kinds)
            att = self._by_facts.get(facts)
            if att is None:
                att = self._by_facts[facts] = self._attribute(
                    name, op_type, line_kinds, head, sep, last
                )
            self._by_scope[key] = att
            return att
        return self._attribute(name, op_type, line_kinds, head, sep, last)

    def attribute_records(self, records) -> list[Attribution]:
        """`attribute` of each op record (its name, type and line kinds), in order."""
        # `attribute`'s per-scope look-up, inline: one call per op less over thousands.
        by_scope, per_name, attribute = self._by_scope, self._per_name, self.attribute
        out = []
        for rec in records:
            name, op_type, kinds = rec.name, rec.type, rec.line_kinds
            head, sep, last = name.rpartition("/")
            att = None
            if (
                op_type not in _PER_OP_TYPES
                and kinds.__class__ is frozenset
                and not (last[:1] == "_" and last[1:].isdigit())
                and name not in per_name
            ):
                att = by_scope.get((head if sep else None, kinds))
            out.append(att if att is not None else attribute(name, op_type, kinds))
        return out

    def _attribute(self, name, op_type, line_kinds, head, sep, last) -> Attribution:
        """`attribute`, worked out (name.rpartition("/") is head, sep, last)."""
        if op_type in COPY_TYPES and (sep and is_mark(last) or name in self._feeds):
            # `<op>/_<k>`, `_send_<op>_<k>`: a copy of <op>'s output belongs where <op> does.
            owner = self._feeds.get(name, head)
            return self.attribute(owner, self._types.get(owner, ""), line_kinds)
        layer = self.layer_of(name)
        att = classify(name, op_type, line_kinds, layer, self.source)
        top = self._phase_tops.get(name_head(name)[0].first) if layer is None else None
        if top is not None:
            # A Keras 2 loss's scope or an optimizer's (see __init__): its ops (and a
            # loss's gradients).
            phase = "backward" if att.phase == "backward" else top
            return _attribution(None, phase, top, att.source)
        phase = self._phases.get(name) or self._root_phase.get(name)
        if layer is not None and phase != "backward":
            phase = None  # a model's own op-function scope (`model_1/strided_slice`)
        if phase is not None and att.phase not in ("input", "optimizer", "loss", "metrics"):
            # A root op (a tape sum may have a layer): the phase Keras created it in.
            bucket = None if layer else _ROOT_BUCKET.get(phase, "root")
            return _attribution(layer, phase, bucket, att.source)
        return att
