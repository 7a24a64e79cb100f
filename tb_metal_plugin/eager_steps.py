"""Steps that ran eagerly: op dispatches from Python that carry no op name or scope.

With `compile(run_eagerly=True)` (or `tf.config.run_functions_eagerly(True)`) Keras runs
no train function: each op is dispatched from the Python thread, which TF records as
`EagerLocalExecute: <op type>` (checked on TF 2.21 traces, tests/gt model `eager_run`).
Those events name the op's type only, never its name or scopes, so neither tb-metal nor
xprof's op statistics can count them as TF ops or give them a layer. A graph run has them
too (summary writes, iterator set-up) and calls its train function as one
(`EagerLocalExecute: __inference_...`): only steps with more eager dispatches than graph
op events are reported, so the reader says why a step's op time is missing.
"""

from __future__ import annotations

from collections.abc import Mapping

from .oprecord import OpRecord
from .steps import Step
from .xspace_reader import PlaneData

EAGER_PREFIX = "EagerLocalExecute: "
# Function calls dispatched eagerly run graph ops elsewhere (their own op events).
_CALLS = ("__inference_", "__forward_", "__backward_", "StatefulPartitionedCall", "PartitionedCall")


def eager_dispatches(host: PlaneData, steps: list[Step]) -> tuple[int, int]:
    """(count, host ps) of eager op dispatches, function calls left out, inside the steps."""
    ids = {
        mid
        for mid, md in host.header.event_metadata.items()
        if md.name.startswith(EAGER_PREFIX) and not md.name[len(EAGER_PREFIX) :].startswith(_CALLS)
    }
    if not ids or not steps:
        return 0, 0
    spans = sorted((s.start_ps, s.end_ps) for s in steps)
    count = ps = 0
    for i in range(len(host.line_spans)):
        if not host.line_name(i).startswith("python"):
            continue
        line = host.line(i)
        base = line.timestamp_ns * 1000
        for ev in line.events:
            if ev.metadata_id in ids:
                t = base + ev.offset_ps
                if any(a <= t < b for a, b in spans):
                    count += 1
                    ps += ev.duration_ps
    return count, ps


# A Keras graph step makes hundreds of distinct ops: no pass over the lines for those.
_FEW_OPS = 200


def eager_warning(host: PlaneData, steps: list[Step], ops: Mapping[object, OpRecord]) -> str | None:
    """A warning when the profiled steps ran more eager dispatches than graph op events."""
    if not steps or len(ops) >= _FEW_OPS:
        return None
    op_events = sum(sum(rec.count[: len(steps)]) for rec in ops.values())
    count, ps = eager_dispatches(host, steps)
    if count <= op_events:
        return None
    wall = sum(s.end_ps - s.start_ps for s in steps) or 1
    return (
        f"the profiled steps ran eagerly: {count} eager op dispatches from Python "
        f"({ps / 1e9:.3f} ms of host time, {100 * ps / wall:.0f}% of the steps' wall time) "
        f"beside {op_events} graph op events. Eager ops carry no op name or scope, so their "
        "time is in no op, layer or phase here (nor in xprof's op statistics). Compile "
        "without run_eagerly=True (and leave tf.config.run_functions_eagerly off) to "
        "profile per layer"
    )
