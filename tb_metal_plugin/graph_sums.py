"""The layer of a tape's gradient sum, read off the step graph's inputs.

A tensor used several times gets one gradient from each consumer; the tape (or
`tf.gradients` inside a loop's or a branch's gradient) adds them with one `AddN`. The sum
belongs to the deepest layer all its inputs share: a cell's own reuse of its state is the
cell's, a residual's two branches meet in the model that holds both. The trace shows at
most one input of a sum (the gradient run just before it); the step graph lists them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .opnames import name_is_backward

Layer = tuple[str, ...] | None

SUM_TYPES = frozenset({"AddN"})
# A sparse gradient (an embedding's) summed with a dense one is made dense first: the
# segment ids say whose gradient it is (its values may come straight from a layer upstream
# once Grappler drops the reshape between).
_DENSIFY = {"UnsortedSegmentSum": 1}
# The tape's stand-ins for gradients nothing produced, made from a forward value: they say
# which layer they stand in for through that value.
LIKE_TYPES = frozenset({"ZerosLike", "OnesLike"})
# Constants the tape makes (zeros of a shape) carry no layer: they do not decide a sum's.
_CONSTANT_TYPES = frozenset({"Const", "Fill", "Zeros", "HostConst"})
_SKIP = object()
_GRADIENTS = "/gradients/"


def common_layer(layers: list[Layer]) -> Layer:
    """The deepest layer path every entry shares (None if any is None or none is shared)."""
    if not layers or any(x is None for x in layers):
        return None
    first = layers[0]
    n = min(len(x) for x in layers)  # type: ignore[arg-type]
    k = 0
    while k < n and all(x[k] == first[k] for x in layers):  # type: ignore[index]
        k += 1
    return first[:k] or None


def graph_sums_of(ops: Iterable[tuple[str, str]], tape: set[str]) -> list[str]:
    """The trace's gradient sums: the tape's own root ops (its sums, zeros and the dense
    copies of sparse gradients it adds) and the `AddN`s of gradient scopes."""
    return [
        name
        for name, op_type in ops
        if name in tape or (op_type in SUM_TYPES and name_is_backward(name))
    ]


def sum_layers(sums: Iterable[str], graph, layer_of: Callable[[str], Layer]) -> dict[str, Layer]:
    """Each of `sums` (trace op names the graph holds) -> the layer its inputs share.

    `graph` answers `op(name)` and `inputs(name)` (run_graph.StepGraph); `layer_of` is the
    trace attribution of any other op name. A sum fed by another sum reads that one's
    inputs in turn.
    """
    memo: dict[str, Layer] = {}
    sums = set(sums)

    def of_input(name: str, depth: int):
        op = graph.op(name)
        if name in sums or op in SUM_TYPES or op in LIKE_TYPES:
            return of_sum(name, depth + 1)
        if op in _CONSTANT_TYPES and not graph.inputs(name):
            return _SKIP
        return layer_of(name)

    def of_sum(name: str, depth: int = 0) -> Layer:
        if name in memo:
            return memo[name]
        memo[name] = None  # a cycle (a loop's back edge) decides nothing
        if depth > 64:
            return None
        # A sum of `tf.gradients` inside a function's, a loop body's or a branch's gradient
        # (`<region>/gradients/AddN`) reads that gradient's arguments, made by the gradient
        # of the call, loop or branch op: after inlining, their producers lie outside the
        # region and stand for the op whose gradient the region is.
        cut = name.rfind(_GRADIENTS)
        region = name[: cut + len(_GRADIENTS)] if cut >= 0 else None
        inputs = graph.inputs(name) or []
        keep = _DENSIFY.get(graph.op(name))
        if keep is not None:
            inputs = inputs[keep : keep + 1]
        layers = [
            of_input(i, depth) if region is None or i.startswith(region) else layer_of(name)
            for i in inputs
        ]
        memo[name] = common_layer([x for x in layers if x is not _SKIP])
        return memo[name]

    return {name: of_sum(name) for name in sums if name in graph}
