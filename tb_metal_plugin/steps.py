"""Where the profiled steps are, for traces with and without Keras's markers.

Sources, best first (the trace says which was used as `TraceEvents.steps_source`):
- `markers`: host step markers with a `step_num` stat: Keras's `Profiled batch`,
  TF's `TraceContext`, and the explicit markers xprof accepts
  (`xprof/convert/xplane_to_step_events.cc`: names starting `train` or `test`, no `/`;
  `tf.profiler.experimental.Trace("train", step_num=...)`, JAX's `StepTraceAnnotation`).
- `device_steps`: the `Steps` line of the device planes (one event per step group, named by
  its group id, with a `group_id` stat; xprof `derived_timeline.cc`). Custom training loops
  and distribution strategies have these without any Keras marker. The step's window
  spans its device events and the host events of the same group (the grouping that made
  the Steps line also gave host events a `group_id`); device events are bucketed by their
  own `group_id`, host ops by time.
- `step_ids`: TF's own step ids: each root `FunctionRun` on a Python thread (one
  `tf.function` call: a train step) with an `id` stat, spanning every host event with
  that id (`ExecutorState::Process` on the executor threads).
"""

from __future__ import annotations

from dataclasses import dataclass

from .device_planes import STEPS_LINE, base_line_name
from .xspace_reader import PlaneData, stat_value

STEP_MARKERS = ("Profiled batch", "TraceContext")


@dataclass
class Step:
    """One profiled step: its number (Keras batch index) and its span on the host clock."""

    num: int
    start_ps: int
    end_ps: int

    @property
    def duration_ps(self) -> int:
        """Wall time of the step."""
        return self.end_ps - self.start_ps


def is_step_marker(name: str) -> bool:
    """True for event names that mark a step when they carry a `step_num` stat."""
    if name in STEP_MARKERS:
        return True
    return name.startswith(("train", "test")) and "/" not in name and ":" not in name


def _as_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def without_overlap(steps: list[Step]) -> list[Step]:
    """Sorted steps, each ending no later than the next one starts (slots must not overlap)."""
    steps = sorted(steps, key=lambda s: (s.start_ps, s.num))
    for a, b in zip(steps, steps[1:], strict=False):
        if a.end_ps > b.start_ps:
            a.end_ps = max(a.start_ps, b.start_ps)
    return steps


def device_steps(planes: list[tuple[PlaneData, str]]) -> list[Step]:
    """Steps from the device planes' `Steps` lines: one per group id, spanning all planes."""
    spans: dict[int, list[int]] = {}
    for plane, _dev in planes:
        names = plane.stat_names
        meta = plane.header.event_metadata
        for i in range(len(plane.line_spans)):
            if base_line_name(plane.line_name(i)) != STEPS_LINE:
                continue
            line = plane.line(i)
            base = line.timestamp_ns * 1000
            for ev in line.events:
                gid = None
                for st in ev.stats:
                    if names.get(st.metadata_id) == "group_id":
                        gid = _as_int(stat_value(st, names))
                        break
                if gid is None:
                    md = meta.get(ev.metadata_id)
                    gid = _as_int(md.name) if md is not None else None
                if gid is None:
                    continue
                start = base + ev.offset_ps
                end = start + ev.duration_ps
                span = spans.setdefault(gid, [start, end])
                span[0] = min(span[0], start)
                span[1] = max(span[1], end)
    return without_overlap([Step(g, s, e) for g, (s, e) in spans.items()])


def step_id_steps(host: PlaneData, is_python_line) -> list[Step]:
    """Steps from TF step ids: root `FunctionRun`s on Python threads and their executors."""
    names = host.stat_names
    meta = host.header.event_metadata
    id_stat = next((k for k, v in names.items() if v == "id"), None)
    run_ids = {k for k, v in meta.items() if v.name == "FunctionRun"}
    if id_stat is None or not run_ids:
        return []
    roots: dict[int, list[int]] = {}
    python_lines = [i for i in range(len(host.line_spans)) if is_python_line(host.line_name(i))]
    for i in python_lines:
        line = host.line(i)
        base = line.timestamp_ns * 1000
        open_end = -1  # only outermost FunctionRuns: a nested call shares the step
        for ev in line.events:
            if ev.metadata_id not in run_ids:
                continue
            start = base + ev.offset_ps
            if start < open_end:
                continue
            sid = next(
                (_as_int(stat_value(s, names)) for s in ev.stats if s.metadata_id == id_stat), None
            )
            if sid is None:
                continue
            roots[sid] = [start, start + ev.duration_ps]
            open_end = start + ev.duration_ps
    if not roots:
        return []
    for sid, start, end in _events_with_stat(host, id_stat, skip=set(python_lines)):
        span = roots.get(sid)
        if span is not None:
            span[0] = min(span[0], start)
            span[1] = max(span[1], end)
    ordered = sorted(roots.values())
    return without_overlap([Step(n, s, e) for n, (s, e) in enumerate(ordered)])


def with_host_groups(steps: list[Step], host: PlaneData) -> list[Step]:
    """Widen device step windows to the host events of the same group (`group_id` stat)."""
    names = host.stat_names
    gid_stat = next((k for k, v in names.items() if v == "group_id"), None)
    if gid_stat is None or not steps:
        return steps
    by_num = {s.num: s for s in steps}
    for gid, start, end in _events_with_stat(host, gid_stat):
        step = by_num.get(gid)
        if step is not None:
            step.start_ps = min(step.start_ps, start)
            step.end_ps = max(step.end_ps, end)
    return without_overlap(steps)


def _events_with_stat(host: PlaneData, stat_id: int, skip=()):
    """(the stat's integer value, start, end) of every host event carrying stat_id."""
    names = host.stat_names
    for i in range(len(host.line_spans)):
        if i in skip:
            continue
        line = host.line(i)
        base = line.timestamp_ns * 1000
        for ev in line.events:
            for st in ev.stats:
                if st.metadata_id == stat_id:
                    start = base + ev.offset_ps
                    yield _as_int(stat_value(st, names)), start, start + ev.duration_ps
                    break
