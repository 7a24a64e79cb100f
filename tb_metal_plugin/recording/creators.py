"""Decide each recorded op's (layer, phase, origin) from the frame it was created under.

`provenance.OpProvenance` notes the innermost frame at each op's creation; this module
turns frames into answers: a layer call gives its layer (forward), a trainer method its
phase, a gradient frame the layer of the forward op it differentiates (backward), and
the tape's aggregations the common layer of their inputs.
"""

from __future__ import annotations

from typing import Any

from ..opphase import ELEMENT_DECODE_TYPES

# Iterator ops and the Optional that carries the step in and out of the loop.
_ITERATOR_PREFIXES = ("Iterator", "MultiDeviceIterator", "AnonymousIterator", "Optional")


def graph_op(tensor: Any) -> Any:
    """The graph op of a symbolic tensor; None for eager tensors (they have no op)."""
    try:
        return tensor.op
    except Exception:
        return None


class Resolver:
    """Turns creation frames into (layer, phase, origin), following gradients and inputs."""

    def __init__(self, origin: dict[int, tuple[Any, tuple]]) -> None:
        self.origin = origin
        self.done: dict[int, tuple[tuple[str, ...] | None, str, str]] = {}
        self.busy: set[int] = set()
        self.forward_of: dict[int, Any] = {}
        # Ops by (graph, type): the tape may hand a gradient function no outputs (when the
        # gradient does not need them); the forward op's type, scope and inputs remain.
        self.by_type: dict[tuple[int, str], list[Any]] = {}
        for op, _ in origin.values():
            self.by_type.setdefault((id(op.graph), op.type), []).append(op)

    def of(self, op: Any) -> tuple[tuple[str, ...] | None, str, str]:
        key = id(op)
        if key in self.done:
            return self.done[key]
        # Cycles (loop back edges) and very long chains of input-decided ops end here
        # (a chain deeper than Python's stack allows decides nothing, never raises).
        if key in self.busy or key not in self.origin or len(self.busy) > 150:
            return (None, "other", "unrecorded")
        self.busy.add(key)
        try:
            result = self._decide(op, self.origin[key][1])
        finally:
            self.busy.discard(key)
        self.done[key] = result
        return result

    def _decide(self, op: Any, frame: tuple) -> tuple[tuple[str, ...] | None, str, str]:
        kind = frame[0]
        if kind == "layer":
            return (frame[1], "forward", "layer_call")
        if kind == "phase":
            return (None, frame[1], frame[1])
        if kind == "step":
            return (None, "other", "train_step")
        if kind == "outside":
            if op.type.startswith(_ITERATOR_PREFIXES) or op.type in ELEMENT_DECODE_TYPES:
                return (None, "input", "input")
            return (None, "other", "outside_train_step")
        if kind == "grad":
            # Every op one gradient function made shares its frame: search once.
            if id(frame) not in self.forward_of:
                self.forward_of[id(frame)] = frame[1] or self._forward_by_scope(op, frame)
            forward = self.forward_of[id(frame)]
            if forward is None:
                return self._from_inputs(op, "gradient")
            layer, phase, _ = self.of(forward)
            # Gradient of a gradient (or of a loss op): keep the forward op's phase
            # where it has no layer, so the loss's gradient stays with the loss bucket.
            return (layer, "backward", "gradient" if layer or phase != "loss" else "loss_gradient")
        return self._from_inputs(op, "aggregation")

    def _forward_by_scope(self, op: Any, frame: tuple) -> Any:
        _, _, op_type, scope, inputs = frame
        if op_type is None or scope is None:
            return None
        # The scope the tape saw is the op's own name (ops made inside
        # `name_scope(name)`) or the scope around it.
        found = [
            f
            for f in self.by_type.get((id(op.graph), op_type), [])
            if f.name == scope or f.name.rpartition("/")[0] == scope
        ]
        if inputs is not None and len(found) > 1:
            same = [f for f in found if tuple(t.name for t in f.inputs) == inputs]
            found = same or found
        owners = {self.of(f)[:2] for f in found}
        return found[0] if len(owners) == 1 else None

    def _from_inputs(self, op: Any, origin: str) -> tuple[tuple[str, ...] | None, str, str]:
        """An aggregation belongs to the layer its inputs belong to (their common prefix)."""
        paths = []
        loss = False
        for tensor in op.inputs:
            layer, phase, how = self.of(tensor.op)
            if how in ("unrecorded", "outside_train_step"):
                continue
            if layer is not None:
                paths.append(layer)
            loss = loss or how == "loss_gradient" or phase == "loss"
        if not paths:
            return (None, "backward", "loss_gradient" if loss else origin)
        common = paths[0]
        for p in paths[1:]:
            n = 0
            while n < min(len(common), len(p)) and common[n] == p[n]:
                n += 1
            common = common[:n]
        return (tuple(common) or None, "backward", origin)


__all__ = ["Resolver", "graph_op"]
