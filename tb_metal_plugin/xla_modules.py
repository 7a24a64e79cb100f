"""The layer of an XLA module's time, from the call node that ran it in the step graph.

An XLA-compiled function keeps its time as one op named after its XLA module (type
XlaModule: a GPU kernel's `hlo_module`, an XLA:CPU run's; device_reader, hidden_work).
XLA names the module after the function (`__forward__conv_xla_19837` compiles to
`a_forward__conv_xla_19837__.1`, checked on TF 2.21 traces), and the step graph names the
node that calls that function: a forward call sits in its layer's scope
(`<model>/<layer>/StatefulPartitionedCall`); the call of its gradient function sits where
the tape put it (at the step's root for Keras's `_conv_xla`) and reads the forward call's
outputs, so it takes that layer, in the backward phase.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .opnames import name_is_backward
from .oprecord import XLA_MODULE_TYPE

_MODULE_ID = re.compile(r"\.\d+$")


def function_key(name: str) -> str:
    """A function's name or its XLA module's, reduced to what both share."""
    base = _MODULE_ID.sub("", name)
    if base.startswith("a_"):  # XLA's module names cannot start with `_`
        base = base[1:]
    return base.strip("_")


def xla_module_layers(
    ops: Iterable[tuple[str, str]], graph, layer_of: Callable[[str], tuple[str, ...] | None]
) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """(layer of each XlaModule op whose call the graph holds, "backward" for those that
    run a gradient function)."""
    modules = [name for name, op_type in ops if op_type == XLA_MODULE_TYPE]
    if not modules:
        return {}, {}
    calls: dict[str, str] = {}
    for node in graph.calls():
        fn = graph.called_function(node)
        if fn:
            calls.setdefault(function_key(fn), node)
    call_nodes = set(calls.values())
    layers: dict[str, tuple[str, ...]] = {}
    phases: dict[str, str] = {}
    for module in modules:
        node = calls.get(function_key(module))
        if node is None:
            continue
        layer = layer_of(node)
        backward = name_is_backward(node)
        if layer is None:
            # A gradient function's call outside any layer scope: the forward call whose
            # outputs it reads says the layer.
            feeding = [i for i in graph.inputs(node) or () if i in call_nodes]
            found = [fl for fl in (layer_of(i) for i in feeding) if fl]
            if found:
                layer, backward = found[0], True
        if layer:
            layers[module] = layer
            if backward:
                phases[module] = "backward"
    return layers, phases
