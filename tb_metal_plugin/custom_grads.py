"""The step-root ops of a layer's custom gradient, from the step graph.

A gradient function given with `tf.custom_gradient` / `keras.ops.custom_gradient` (Keras's
int8 and float8 quantized layers use one) runs when the tape reaches it, but under no
scope: its ops sit at the step's root (`truediv`, `Cast_1`, a Grappler-folded `MatMul`)
with no layer or phase in their names, and read as metrics or other. The step graph shows
what they are: an unscoped root op that reads a gradient and feeds one is backward work,
and so is a root op whose only readers are such ops (a helper it needs, computed early
from the layer's weights). Its layer is the one whose forward values (weight reads,
activations) those ops read, when exactly one layer's are.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable

from .opnames import name_is_backward
from .root_owners import root_owner

Layer = tuple[str, ...] | None


def custom_gradient_ops(
    ops: Iterable[tuple[str, str]],
    graph,
    name_layer: Callable[[str], Layer],
    placed: Container[str],
) -> tuple[dict[str, Layer], set[str]]:
    """({op: layer} where one layer's values feed it, every backward op found) for the
    root ops of custom gradients that no other rule `placed`. `graph` answers `in`,
    `inputs()`, `consumers()` (run_graph.StepGraph)."""
    cands = {
        n
        for n, t in ops
        if n not in placed
        and n in graph
        and root_owner(n, t) is not None
        and name_layer(n) is None
        and not name_is_backward(n)
    }
    if not cands:
        return {}, set()
    found: set[str] = set()

    def backward(x: str) -> bool:
        return x in found or name_is_backward(x)

    changed = True
    while changed:  # chains of several such ops: each reads the one before
        changed = False
        for n in cands - found:
            ins, outs = graph.inputs(n) or [], graph.consumers(n)
            if any(map(backward, ins)) and any(map(backward, outs)):
                found.add(n)
                changed = True
    changed = bool(found)
    while changed:  # helpers read only by the gradient's own ops
        changed = False
        for n in cands - found:
            outs = graph.consumers(n)
            if outs and all(map(backward, outs)) and any(o in found for o in outs):
                found.add(n)
                changed = True
    layers: dict[str, Layer] = {}
    for n in found:
        fed = _forward_layers(n, graph, name_layer, found, set())
        if len(fed) == 1:
            layers[n] = next(iter(fed))
    return layers, found


def _forward_layers(n: str, graph, name_layer, found: set[str], seen: set[str]) -> set:
    """The layers of the forward values `n` reads, through the gradient's own ops."""
    seen.add(n)
    out = set()
    for i in graph.inputs(n) or []:
        if i in seen:
            continue
        if i in found:
            out |= _forward_layers(i, graph, name_layer, found, seen)
        elif not name_is_backward(i) and (layer := name_layer(i)) is not None:
            out.add(layer)
    return out
