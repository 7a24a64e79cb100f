"""What the step graph settles that op names leave open, in the order the rules apply.

Run by TraceAttributor when the run wrote the step graph (Keras's TensorBoard callback):
XLA-compiled calls, the step-root ops of custom gradients, the inputs of the tape's sums,
and ops run inside uninlined calls. Each rule sees the layers the ones before it placed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .custom_grads import custom_gradient_ops
from .graph_sums import graph_sums_of, sum_layers
from .uninlined_calls import uninlined_call_layers
from .xla_modules import xla_module_layers

Layer = tuple[str, ...] | None


def graph_placements(
    ops: list[tuple[str, str]],
    graph,
    name_layer: Callable[[str], Layer],
    layer_of: Callable[[str], Layer],
    layers: dict[str, Layer],
    phases: dict[str, str],
    root_phase: dict[str, str],
    tape: Iterable[str],
    compute: set[str] | None,
) -> None:
    """Add the step graph's answers to `layers` and `phases` (op name -> answer), which
    hold what name and neighbour rules placed so far; `layer_of` reads `layers` first, then
    the name (TraceAttributor.layer_of); `root_phase` is RootPhases's."""
    # XLA-compiled calls (Keras's own grouped convolutions, a jit_compile'd layer).
    xla_layers, xla_phases = xla_module_layers(ops, graph, name_layer)
    layers.update(xla_layers)
    phases.update(xla_phases)
    # (The loss-scale optimizer's finiteness checks read every gradient too.)
    placed = layers.keys() | phases.keys()
    placed |= {n for n, p in root_phase.items() if p in ("optimizer", "loss")}
    custom_layers, custom = custom_gradient_ops(ops, graph, name_layer, placed)
    layers.update(custom_layers)
    phases.update(dict.fromkeys(custom, "backward"))
    # The step graph lists every input of a sum: no neighbour guess needed there. (After
    # the neighbour rules: those read a sum as the gradient that ran beside it.)
    layers.update(sum_layers(graph_sums_of(ops, tape), graph, layer_of))
    if compute:
        layers.update(uninlined_call_layers(ops, compute, graph, name_layer))
