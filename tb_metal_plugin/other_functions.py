"""Root phases of a graph function that runs beside the wrapped train step, unwrapped.

Keras 3 before about 3.10 (TF 2.16–2.18) runs its evaluation step (`validation_data`) as
a top-level function: its ops carry no `StatefulPartitionedCall/` prefix, unlike the
train step's, so by name alone they look like eager ops outside the step. What tells them
apart is where they ran: an eager op runs on the Python thread, a graph function's op on
the executor's compute threads. Such a function has no optimizer, so its root variable
updates, casts and reductions are its metrics' (the loss tracker's among them), decided by
the same rules as a tf_keras step's root (phases.RootPhases, `flat`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from .opnames import WRAPPER
from .phases import RootPhases
from .root_owners import flat_trace


def other_function_phases(
    ops: Iterable[tuple[str, str]],
    compute: Collection[str],
    layer_of: Callable[[str], tuple[str, ...] | None],
    scoped_phase: Callable[[str, str], str | None],
) -> dict[str, str]:
    """Phase of each root op (no wrapper, no layer, at most two components) that ran on
    compute threads only, in a trace whose train step is wrapped; "other" ones left out.

    Such ops ran outside the train step's slots, so no thread order of theirs is kept:
    RootPhases decides by names and types alone there (Keras 3.3's metric `add`, whose
    phase only neighbours tell, stays "other").
    """
    ops = list(ops)
    if flat_trace(ops):
        return {}  # the step itself is the top function: RootPhases reads it
    unwrapped = [
        (name, op_type)
        for name, op_type in ops
        if name.count("/") <= 1  # (the cheapest test first: most ops are deeper)
        and name in compute
        and not _wrapped(name)
        and layer_of(name) is None
    ]
    if not unwrapped:
        return {}
    phases = RootPhases(unwrapped, scoped_phase).phase
    return {name: p for name, p in phases.items() if p != "other"}


def _wrapped(name: str) -> bool:
    return "PartitionedCall" in name and any(WRAPPER.match(c) for c in name.split("/"))
