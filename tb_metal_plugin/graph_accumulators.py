"""A while loop's accumulators, read off the step graph: the layer that uses what each one
pushes.

When the tape differentiates a `while_v2` loop, the forward body pushes every value a
gradient op will need (`TensorListPushBack`) and the gradient body pops it there. From
the trace alone, neighbours.accumulator_layers shares the pushes out by counting pops.
The step graph shows what each push pushes, and so which forward ops' gradients need it:
the users of the value whose gradient reads an input (a MatMul's, a Mul's), or its maker
when that gradient reads its output (a Sigmoid's). The tape works backwards, so the
gradient of the last of them (in data order) is the one that asks for the value: the
push is that op's layer. The lowered loop passes values on through Switch/Identity/Merge nodes,
which are looked through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .graph_sums import common_layer

Layer = tuple[str, ...] | None

ACCUMULATOR_TYPE = "TensorListPushBack"
# Nodes that hand a value on unchanged (a lowered loop's plumbing): looked through.
_PLUMBING = frozenset({"Identity", "Switch", "Merge", "Enter", "NextIteration", "_Recv", "_Send"})
_MAX_HOPS = 4


# Ops whose gradient reads their inputs' values (a product's gradient is the other
# factor), and ops whose gradient reads their own output (sigmoid' = y(1 - y)). A sum's,
# a copy's or a slice's gradient reads neither: its users say nothing; nor does a select's
# of the values it picks between (only its condition).
_NEEDS_INPUTS = frozenset(
    {
        "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Mul", "Div", "RealDiv",
        "DivNoNan", "Square", "Pow", "Maximum", "Minimum", "Conv2D", "Conv1D", "Conv3D",
        "DepthwiseConv2dNative", "Einsum", "SquaredDifference", "Log", "Reciprocal", "Sqrt",
        "Rsqrt", "Abs", "Sign", "Cos", "Sin", "Erf", "Softplus",
    }
)  # fmt: skip
_NEEDS_OUTPUT = frozenset({"Sigmoid", "Tanh", "Relu", "Relu6", "Elu", "Selu", "Exp", "Softmax"})
_REWRITE = re.compile(r"^_(?:Mkl)?(?:Native)?(?:Fused)?")


def graph_accumulator_layers(
    accumulators: Iterable[str], graph, name_layer: Callable[[str], Layer]
) -> dict[str, Layer]:
    """{accumulator name: layer} for each push whose value the graph shows a gradient
    needs: the deepest layer common to the ops whose gradients read it."""
    out: dict[str, Layer] = {}
    for name in accumulators:
        inputs = graph.inputs(name)
        if not inputs or len(inputs) < 2:
            continue
        value = inputs[1]  # TensorListPushBack(list, tensor)
        needers = [u for u in _users(graph, value, name) if _type(graph, u) in _NEEDS_INPUTS]
        if _type(graph, value) in _NEEDS_OUTPUT:
            needers.append(value)
        last = _last(graph, needers)
        # A fused node carries the name of the fusion's last op (`dense/add` for a MatMul
        # of the layer inside): its name does not say whose gradient needs the value.
        if any("Fused" in (graph.op(n) or "") for n in last):
            continue
        layers = [q for q in map(name_layer, last) if q]
        if not layers:
            continue  # the trace's own answer stands (neighbours.accumulator_layers)
        layer = common_layer(layers)
        mine = name_layer(name)
        # Only a layer at or below the loop's own: a push never leaves its loop's layer.
        if layer and mine and layer[: len(mine)] == mine:
            out[name] = layer
    return out


def _last(graph, needers: list[str]) -> list[str]:
    """The needers no other needer comes after: the tape differentiates backwards, so
    the gradient of the last forward user is the one that first asks for the value."""
    if len(needers) < 2:
        return needers
    wanted = set(needers)
    return [n for n in needers if not _reaches(graph, n, wanted - {n})] or needers


def _reaches(graph, start: str, targets: set[str], limit: int = 256) -> bool:
    """True when a path of data edges leads from `start` to one of `targets` (the search
    stops after `limit` nodes: a loop body is small, the whole step is not)."""
    seen = {start}
    frontier = [start]
    while frontier and len(seen) < limit:
        nxt = []
        for node in frontier:
            for user in graph.consumers(node):
                if user in targets:
                    return True
                if user not in seen:
                    seen.add(user)
                    nxt.append(user)
        frontier = nxt
    return False


def _type(graph, name: str) -> str:
    """The node's op type as TF wrote it, before the CPU rewrites (`_MklMatMul`)."""
    return _REWRITE.sub("", graph.op(name) or "")


def _users(graph, value: str, push: str) -> list[str]:
    """The nodes that read `value`, plumbing looked through, pushes left out."""
    found: list[str] = []
    seen = {value, push}
    frontier = [value]
    for _ in range(_MAX_HOPS):
        nxt = []
        for node in frontier:
            for user in graph.consumers(node):
                if user in seen:
                    continue
                seen.add(user)
                op = graph.op(user)
                if op in _PLUMBING:
                    nxt.append(user)
                elif op != ACCUMULATOR_TYPE:
                    found.append(user)
        if found or not nxt:
            break
        frontier = nxt
    return found
