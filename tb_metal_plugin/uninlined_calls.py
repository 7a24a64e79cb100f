"""Ops of a function the runtime ran without inlining it: the layer that called it.

tf_keras's LSTM and GRU choose their implementation per device (`api_implements`), so the
step calls the chosen function (`lstm/PartitionedCall`) rather than inlining it, and its
ops run under their own names (`while_15/body/_1/while/MatMul`, `TensorArrayUnstack/...`),
with no layer in them; their gradient is another such call at the step's root. The step
graph lists the step's own nodes and its calls: an op that ran on the step's compute
threads but is none of those nodes ran inside a call. With one layer calling, those ops
are that layer's (forward, or backward under `gradients/`); with several, the same names
stand for ops of each, and nothing is claimed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

Layer = tuple[str, ...] | None

CALL_TYPES = frozenset({"PartitionedCall", "StatefulPartitionedCall"})


def uninlined_call_layers(
    ops: Iterable[tuple[str, str]],
    compute: set[str],
    graph,
    name_layer: Callable[[str], Layer],
) -> dict[str, Layer]:
    """{op name: layer} for the ops run inside the one layer's uninlined calls.

    `compute`: the names of ops that ran on compute threads (not tf.data's, not eager);
    `graph` answers `in`, `calls()` (run_graph.StepGraph); `name_layer` reads a name.
    """
    callers = {name_layer(name) for name in graph.calls()} - {None}
    if len(callers) != 1:
        return {}
    (layer,) = callers
    return {
        name: layer
        for name, _ in ops
        if name in compute and name not in graph and name_layer(name) is None
    }
