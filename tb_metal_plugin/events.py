"""One pass over a trace: TF op events per step with self and total time, device events, copies.

Times are integer picoseconds, as in the trace. Every per-op figure is kept per step slot:
slots 0..S-1 are the profiled steps, slot S holds events outside any step (warm-up,
the callback's own work), so nothing is dropped.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .device_planes import DevicePlaneStats
from .device_reader import read_device_plane
from .hidden_work import read_hidden_work
from .hostline import op_metadata, read_host_plane
from .oprecord import SEND_RECV_TYPES, OpRecord  # noqa: F401 - re-exported
from .steps import (  # noqa: F401 - STEP_MARKERS and Step moved there; re-exported
    STEP_MARKERS,
    Step,
    device_steps,
    is_step_marker,
    step_id_steps,
    with_host_groups,
)
from .xspace_reader import PlaneData, open_trace, stat_value

# `<op name>:<op type>`; the type is an identifier, the name never ends with ':'
# (that rules out `Iterator::Root::Prefetch` and friends).
_OP_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEVICE_PLANE = re.compile(r"^/device:(GPU|TPU|XPU|DML|APU)[:_](\d+)(.*)$")
Progress = Callable[[float, str], None]


@dataclass
class CopyRecord:
    """Device memcpy events, linked to the TF op that caused them when the trace says so."""

    op_name: str
    op_type: str
    kind: str  # "memcpy_h2d", "memcpy_d2h", "memcpy_d2d", "memcpy_p2p", "memcpy", "memset"
    plane: str  # device id of the plane the copy ran on: "GPU:0"
    slots: int
    count: list[int] = field(default_factory=list)
    ps: list[int] = field(default_factory=list)
    nbytes: list[int] = field(default_factory=list)  # bytes moved, from `memcpy_details`

    def __post_init__(self) -> None:
        self.count = self.count or [0] * self.slots
        self.ps = self.ps or [0] * self.slots
        self.nbytes = self.nbytes or [0] * self.slots


@dataclass
class TraceEvents:
    """What one pass over one host's trace file found."""

    path: str
    planes: list[str]
    device_planes: list[str]
    steps: list[Step]
    # "markers" (Profiled batch and other host step markers), "device_steps" (the device
    # planes' Steps line), "step_ids" (TF step ids) or "none" (one window): see steps.py.
    steps_source: str
    ops: dict[tuple[str, str], OpRecord]
    copies: dict[tuple[str, str, str, str], CopyRecord]  # (op name, op type, kind, device)
    window_ps: int
    event_count: int
    warnings: list[str] = field(default_factory=list)
    # Device id (`GPU:0`, `TPU:3`) -> what its plane holds and its measured device time.
    device_stats: dict[str, DevicePlaneStats] = field(default_factory=dict)
    # Op events in start order per host line, for one step (the first profiled one, or the
    # whole window without steps): attribution reads an op's neighbours on its thread here.
    sequences: dict[str, list[OpRecord]] = field(default_factory=dict)
    # When each op first started in that same step (host clock, ps): the order of layers.
    first_start: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def slots(self) -> int:
        """Number of step slots: one per step plus one for events outside every step."""
        return len(self.steps) + 1

    @property
    def has_device_timeline(self) -> bool:
        """True when a device plane holds events: real device times exist."""
        return bool(self.device_planes)


def split_op_name(name: str, display_name: str = "") -> tuple[str, str] | None:
    """Split `name:type` into (name, type), or None when the event is not a TF op.

    The type string is interned (one object per type, not one per op: a trace has thousands
    of ops of a few dozen types)."""
    if display_name:
        n = len(display_name)
        if len(name) > n + 1 and name[-n - 1] == ":" and name.endswith(display_name):
            return name[: -n - 1], (_TYPES.get(display_name) or _new_type(display_name))
        return None
    head, sep, tail = name.rpartition(":")
    if not sep or not head or head.endswith(":") or " " in head:
        return None
    ok = _TYPE_OK.get(tail)
    if ok is None:
        ok = _OP_TYPE.match(tail) is not None
        if len(_TYPE_OK) < _TYPE_OK_MAX:  # bounded: a long-lived server reads many traces
            _TYPE_OK[tail] = ok
    return (head, _TYPES.get(tail) or _new_type(tail)) if ok else None


# Whether a string is an op type: a trace has thousands of ops of a few hundred types.
_TYPE_OK: dict[str, bool] = {}
_TYPE_OK_MAX = 1 << 14


_TYPES: dict[str, str] = {}


def _new_type(type_: str) -> str:
    """Intern a type string not yet seen (bounded, as _TYPE_OK)."""
    if len(_TYPES) < _TYPE_OK_MAX:
        _TYPES[type_] = type_
    return type_


# Host events that only TensorFlow's runtime writes; PjRt events mark a JAX/XLA client.
_TF_RUNTIME = (
    "ExecutorState::Process",
    "FunctionRun",
    "EagerLocalExecute",
    "EagerExecute",
    "KernelAndDeviceFunc::Run",
    "SessionRun",
    "ExecutorDoneCallback",
)
_PJRT = "PjRt"
_TF_RUNTIME_BYTES = tuple(p.encode() for p in _TF_RUNTIME)


def line_kind(line_name: str) -> str:
    """Classify a host line by its thread name: python, tf_data, compute or other."""
    if line_name.startswith("python"):
        return "python"
    if line_name.startswith("tf_data"):
        return "tf_data"
    if line_name.startswith(("tf_Compute", "tf_numa", "tf_inter_op", "tf_intra_op")):
        return "compute"
    return "other"


def device_plane_id(plane_name: str) -> str | None:
    """`GPU:0` for `/device:GPU:0` or `/device:GPU:0 (Metal)`; None for other planes.

    A TPU's SparseCores have planes of their own (`/device:TPU:0 SparseCore 1`): they keep
    that suffix so their time is not merged into the TensorCore's.
    """
    m = _DEVICE_PLANE.match(plane_name)
    if not m:
        return None
    suffix = m.group(3).strip()
    dev = f"{m.group(1)}:{m.group(2)}"
    return f"{dev} {suffix}" if suffix and not suffix.startswith("(") else dev


def _scan_metadata(
    plane: PlaneData,
) -> tuple[set[int], list[tuple[int, str, str]], bool, list[tuple[int, str]]]:
    """The host plane's event metadata sorted out: the ids of step markers, (id, name,
    type) of every TF op in id order, whether the plane runs TensorFlow, and (id, name) of
    every other event.

    It does not only for a plane with PjRt client events and no TF runtime event at all:
    such a host (JAX) writes TraceMe events shaped `<what>:<detail>` that are not TF ops.
    Anything else keeps reading `name:type` events as ops, so no TF trace loses its ops.
    """
    ops, others, tf, pjrt = op_metadata(plane, _TF_RUNTIME_BYTES, _PJRT.encode())
    # `name:type` is never a marker (markers hold no ':'): only the others are looked at.
    markers = {mid for mid, name in others if is_step_marker(name)}
    return markers, ops, tf or not pjrt, others


def _find_steps(host: PlaneData, marker_ids: set[int] | None = None) -> list[Step]:
    """Steps from host step markers (`Profiled batch`, `train`... with a `step_num` stat)."""
    stat_names = host.stat_names
    if marker_ids is None:
        marker_ids = _scan_metadata(host)[0]
    steps: dict[int, Step] = {}
    for i in range(len(host.line_spans)):
        if line_kind(host.line_name(i)) != "python":
            continue
        line = host.line(i)
        base = line.timestamp_ns * 1000
        for ev in line.events:
            if ev.metadata_id not in marker_ids:
                continue
            for st in ev.stats:
                if stat_names.get(st.metadata_id) == "step_num":
                    num = host.checks.step_num(stat_value(st, stat_names))
                    if num is None or not host.checks.step_span(base, ev.offset_ps, ev.duration_ps):
                        continue
                    start = base + ev.offset_ps
                    steps[num] = Step(num, start, start + ev.duration_ps)
    return sorted(steps.values(), key=lambda s: s.start_ps)


class _Collector:
    """Accumulates per-op figures across the planes of one file."""

    def __init__(self, steps: list[Step], by_group: bool = False):
        self.steps = steps
        # Steps read from a Steps line are group ids: a device event's `group_id` is its step.
        self.slot_of_group = {s.num: i for i, s in enumerate(steps)} if by_group else {}
        self.slots = len(steps) + 1
        self.starts = [s.start_ps for s in steps]
        self.ends = [s.end_ps for s in steps]
        self.ops: dict[tuple[str, str], OpRecord] = {}
        self.zeros = (0,) * self.slots
        self.copies: dict[tuple[str, str, str], CopyRecord] = {}
        self.event_count = 0
        self.sequences: dict[str, list[OpRecord]] = {}
        self.first_start: dict[tuple[str, str], int] = {}
        self.t_min: int | None = None
        self.t_max: int | None = None

    def op(self, name: str, type_: str) -> OpRecord:
        rec = self.ops.get((name, type_))
        if rec is None:
            rec = OpRecord(name, type_, self.slots, self.zeros)
            self.ops[rec.key] = rec
        return rec

    def _span(self, first: int, last: int) -> None:
        self.t_min = first if self.t_min is None else min(self.t_min, first)
        self.t_max = last if self.t_max is None else max(self.t_max, last)

    span = _span

    def host_ops(self, ops: list[tuple[int, str, str]]) -> dict[int, OpRecord]:
        """The record of each host op metadata id, (id, name, type) each, made in one go
        (two ids may name one op: they share its record)."""
        recs = self.ops
        slots, zeros = self.slots, self.zeros
        out = {}
        for mid, name, type_ in ops:
            rec = recs.get((name, type_))
            if rec is None:
                rec = OpRecord(name, type_, slots, zeros)
                recs[rec.key] = rec
            out[mid] = rec
        return out

    def slot_of(self, t: int, group_id: int | None = None) -> int:
        """Step slot of an event at absolute time t (its group id first, when steps are groups)."""
        if group_id is not None and group_id in self.slot_of_group:
            return self.slot_of_group[group_id]
        i = bisect.bisect_right(self.starts, t) - 1
        return i if i >= 0 and t < self.ends[i] else len(self.starts)

    def add_copy(self, op_name, op_type, kind, dev, slot, dur, nbytes) -> None:
        """Count one device copy (memcpy or memset) of an op on device dev."""
        key = (op_name, op_type, kind, dev)
        cp = self.copies.get(key)
        if cp is None:
            cp = self.copies[key] = CopyRecord(op_name, op_type, kind, dev, self.slots)
        cp.count[slot] += 1
        cp.ps[slot] += dur
        cp.nbytes[slot] += nbytes

    def _read_stats(self, plane: PlaneData, index: int, op_ids: dict[int, OpRecord]) -> None:
        """Copy ops' stats (devices at both ends): parse the line again with its stats."""
        names = plane.stat_names
        for ev in plane.line(index).events:
            rec = op_ids.get(ev.metadata_id)
            if rec is not None and rec.wants_stats:
                rec.wants_stats = False
                rec.stats = {names.get(s.metadata_id, "?"): stat_value(s, names) for s in ev.stats}


def read_events(path: str, progress: Progress | None = None) -> TraceEvents:
    """Read one `.xplane.pb` and return its op events aggregated per op and step."""
    with open_trace(path) as trace:
        planes = trace.planes()
        host = next((p for p in planes if p.name == "/host:CPU"), None)
        devices = [(p, device_plane_id(p.name)) for p in planes]
        devices = [(p, d) for p, d in devices if d is not None]
        markers, host_ops, tf, others = (
            _scan_metadata(host) if host is not None else (set(), [], True, [])
        )
        steps, source = _find_steps(host, markers) if host is not None else [], "markers"
        if not steps:
            steps, source = device_steps(devices), "device_steps"
            if steps and host is not None:
                steps = with_host_groups(steps, host)
        if not steps and host is not None:
            steps, source = step_id_steps(host, lambda n: line_kind(n) == "python"), "step_ids"
        # Markers were checked as they were read; steps found on other lines get the same
        # range check here, whatever found them.
        steps = trace.checks.steps(steps)
        col = _Collector(steps, by_group=source == "device_steps")
        device_planes = []
        device_stats: dict[str, DevicePlaneStats] = {}
        total_bytes = sum(p.bytes for p in planes) or 1
        done = 0
        warnings: list[str] = []
        for plane in planes:
            dev = device_plane_id(plane.name)
            if plane is host:
                op_ids = {}
                if tf:
                    op_ids = col.host_ops(host_ops)
                else:
                    warnings.append(
                        "no TensorFlow runtime events on the host (a JAX/XLA trace): host "
                        "events are not TF ops; device time is read from the device planes"
                    )
                del host_ops

                def on_line(i: int, plane=plane) -> None:
                    nonlocal done
                    done += plane.line_spans[i][1] - plane.line_spans[i][0]
                    if progress:
                        progress(done / total_bytes, f"reading {plane.name}")

                read_host_plane(col, plane, op_ids, on_line)
            elif dev is not None:
                if plane.line_spans:
                    device_planes.append(plane.name)
                ps = read_device_plane(plane, dev, col, col.slot_of, split_op_name)
                device_stats[dev] = ps
                if ps.kind == "TPU" and not ps.work_lines and plane.line_spans:
                    warnings.append(
                        f"{plane.name} has no `XLA Ops` line: its device time is not read "
                        "(its other XLA lines overlap and are never summed)"
                    )
                done += plane.bytes
                if progress:
                    progress(done / total_bytes, f"reading {plane.name}")
        if host is None:
            warnings.append("no /host:CPU plane: host op times are missing")
        elif tf:
            warnings.extend(read_hidden_work(host, col, others))
        window = trace.checks.window(col.t_min, col.t_max)
        warnings.extend(trace.checks.warnings())
        return TraceEvents(
            path=str(path),
            planes=[p.name for p in planes],
            device_planes=device_planes,
            steps=steps,
            steps_source=source if steps else "none",
            ops=col.ops,
            copies=col.copies,
            window_ps=window,
            event_count=col.event_count,
            warnings=warnings,
            device_stats=device_stats,
            sequences=col.sequences,
            first_start=col.first_start,
        )
