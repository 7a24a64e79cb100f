"""Read one device plane: device time of its work lines, linked to TF ops or XLA clusters.

Each work-line event (a kernel, a copy, a TPU XLA op) is counted once, on its own plane.
An event is linked, in this order, to:
1. the TF op its `tf_op` stat names (`<op name>:<op type>`; older TF writes `annotation`);
2. the `Framework Ops` / `TensorFlow Ops` event of the same plane that spans it (xprof
   derives that line from XLA op metadata too, so it links XLA kernels to their TF op);
3. the XLA module it belongs to (`hlo_module` stat): an XLA-compiled cluster
   (`jit_compile=True`, JAX's `jit`) keeps its time as op `<module>` of type `XlaModule`;
4. its own name (a Metal plugin names its command buffers after the TF op).
"""

from __future__ import annotations

from collections.abc import Callable

from .device_planes import (
    DERIVED,
    NOT_WORK_EVENTS,
    STEPS,
    TF_OPS,
    WORK,
    DevicePlaneStats,
    SpanIndex,
    annotation_op,
    classify_line,
    copy_kind,
    memcpy_bytes,
    plane_kind,
)
from .oprecord import XLA_MODULE_TYPE
from .validate import MAX_SPAN_PS
from .xspace_reader import PlaneData, stat_value

XLA_CLUSTER_TYPE = XLA_MODULE_TYPE
XLA_OP_TYPE = "XlaOp"
SlotOf = Callable[[int, "int | None"], int]


def line_roles(plane: PlaneData, kind: str) -> list[str]:
    """The role of each line of a device plane (work, steps, tf_ops, derived, ignored)."""
    sparse = "SparseCore" in plane.name
    return [
        classify_line(plane.line_name(i), plane.line_id(i), kind, sparse)
        for i in range(len(plane.line_spans))
    ]


class _Linker:
    """Names the op of a device event: tf_op stat, TF Ops line, XLA module, own name."""

    def __init__(self, plane: PlaneData, split: Callable, tf_ops: SpanIndex):
        self.meta = plane.header.event_metadata
        self.names = plane.stat_names
        ids = {v: k for k, v in self.names.items()}
        self.tf_op = ids.get("tf_op")
        self.annotation = ids.get("annotation")
        self.hlo_module = ids.get("hlo_module")
        self.group_id = ids.get("group_id")
        self.memcpy_details = ids.get("memcpy_details")
        self.split = split
        self.tf_ops = tf_ops
        self._by_name: dict[int, tuple[str, str] | None] = {}

    def op_stat(self, stats) -> tuple[str, str] | None:
        for st in stats:
            if st.metadata_id == self.tf_op:
                return self.split(str(stat_value(st, self.names) or ""))
            if st.metadata_id == self.annotation:
                return self.split(annotation_op(str(stat_value(st, self.names) or "")))
        return None

    def link(self, ev, t: int, found: dict) -> tuple[tuple[str, str] | None, bool]:
        """(op key, linked to a TF op or cluster) for one work event; found holds its stats."""
        md = self.meta.get(ev.metadata_id)
        link = self.op_stat(ev.stats) if (self.tf_op or self.annotation) else None
        if link is None and md is not None and (self.tf_op or self.annotation):
            link = self.op_stat(md.stats)
        if link is not None and link[1] != XLA_CLUSTER_TYPE:
            return link, True
        if len(self.tf_ops):
            hit = self.tf_ops.find(t)
            if hit is not None:
                return hit, True  # type: ignore[return-value]
        module = found.get("hlo_module")
        if module:
            return (str(module), XLA_CLUSTER_TYPE), True
        if md is None or not md.name:
            return None, False
        mid = ev.metadata_id
        if mid not in self._by_name:
            self._by_name[mid] = self.split(md.name, md.display_name) or (md.name, "")
        return self._by_name[mid], self._by_name[mid][1] != ""


def read_device_plane(plane: PlaneData, dev: str, col, slot_of: SlotOf, split: Callable):
    """Add a device plane's work events to the collector; return the plane's figures.

    `col` provides `op(name, type)`, `add_copy(...)`, `span(first, last)` and
    `event_count`; `slot_of(t, group_id)` gives the step slot of an event.
    """
    kind = plane_kind(dev)
    stats = DevicePlaneStats(plane.name, dev, kind, slot_ps=[0] * col.slots)
    roles = line_roles(plane, kind)
    tf_ops = SpanIndex()
    for i, role in enumerate(roles):
        name = plane.line_name(i)
        if role == WORK:
            stats.work_lines.append(name)
        elif role in (STEPS, TF_OPS, DERIVED):
            stats.derived_lines.append(name)
        if role == TF_OPS:
            _index_tf_ops(plane, i, tf_ops, split)
    tf_ops.freeze()
    linker = _Linker(plane, split, tf_ops)
    for i, role in enumerate(roles):
        if role == WORK:
            _read_work_line(plane, i, dev, col, slot_of, linker, stats, nested=kind == "TPU")
    return stats


def _index_tf_ops(plane: PlaneData, index: int, out: SpanIndex, split: Callable) -> None:
    line = plane.line_lite(index)
    base = line.timestamp_ns * 1000
    meta = plane.header.event_metadata
    cache: dict[int, tuple[str, str] | None] = {}
    for ev in line.events:
        mid = ev.metadata_id
        if mid not in cache:
            md = meta.get(mid)
            cache[mid] = (split(md.name, md.display_name) or split(md.name)) if md else None
        if cache[mid] is not None:
            start = base + ev.offset_ps
            out.add(start, start + ev.duration_ps, cache[mid])


def _read_work_line(plane, index, dev, col, slot_of, linker: _Linker, stats, nested: bool):
    line = plane.line(index)
    base = line.timestamp_ns * 1000
    meta = linker.meta
    events = line.events
    col.event_count += len(events)
    # A TPU's op line nests ops (a while loop holds its body): count self time only.
    stack: list[list] = []  # [end, record-or-None, slot, self_ps]
    first = last = None
    ids = {v: k for k, v in linker.names.items()}
    want = {
        ids.get(key): key
        for key in (
            "hlo_module",
            "group_id",
            "memcpy_details",
            "device_offset_ps",
            "device_duration_ps",
        )
    }
    want.pop(None, None)
    for ev in events:
        md = meta.get(ev.metadata_id)
        name = md.name if md is not None else ""
        if name in NOT_WORK_EVENTS:
            continue
        found = {}
        for st in ev.stats:
            key = want.get(st.metadata_id)
            if key:
                found[key] = stat_value(st, linker.names)
        t = base + ev.offset_ps
        dur = ev.duration_ps
        span = _device_span(found)
        if span is not None:
            # TPU ops carry their device-clock span as stats; xprof reads those
            # (GetDeviceEventTimespan in xla/tsl/profiler/utils/xplane_utils).
            t, dur = span
        # The same range and budget checks as host events: a device event of ~2^63 ps
        # would otherwise overflow the per-op arrays.
        if not plane.checks.event(ev.offset_ps, dur):
            continue
        first = t if first is None else min(first, t)
        last = t + dur if last is None else max(last, t + dur)
        gid = found.get("group_id")
        slot = slot_of(t, int(gid) if isinstance(gid, int) else None)
        link, linked = linker.link(ev, t, found)
        ckind = copy_kind(name, "memcpy_details" in found)
        if ckind is not None:
            nbytes = memcpy_bytes(found.get("memcpy_details"))
            op_name, op_type = link if link else (name, "")
            col.add_copy(op_name, op_type, ckind, dev, slot, dur, nbytes)
            stats.copy_count += 1
            stats.copy_ps += dur
            stats.slot_ps[slot] += dur
            stats.copy_bytes += nbytes
            continue
        if nested:
            _flush(stack, t, col, dev, stats)
            if stack:
                stack[-1][3] -= dur
            if not linked and md is not None:
                # An XLA op no TF op claims: keep it under its own HLO name.
                link = (md.display_name or name, XLA_OP_TYPE)
            stack.append([t + dur, link, slot, dur, linked])
            continue
        _add_kernel(col, dev, stats, link, linked, slot, dur)
    _flush(stack, None, col, dev, stats)
    if first is not None:
        col.span(first, last)


def _device_span(found: dict) -> tuple[int, int] | None:
    """(start, duration) from a TPU op's device-span stats, or None when absent or absurd."""
    off, dur = found.get("device_offset_ps"), found.get("device_duration_ps")
    if not isinstance(off, int) or not isinstance(dur, int) or isinstance(off, bool):
        return None
    if off < 0 or not 0 <= dur <= MAX_SPAN_PS or off + dur >= 2**63:
        return None
    return off, dur


def _flush(stack: list, t: int | None, col, dev: str, stats) -> None:
    """Close the nested events that end before t (all of them when t is None)."""
    while stack and (t is None or stack[-1][0] <= t):
        _end, link, slot, self_ps, linked = stack.pop()
        _add_kernel(col, dev, stats, link, linked, slot, max(self_ps, 0))


def _add_kernel(col, dev: str, stats: DevicePlaneStats, link, linked: bool, slot, dur) -> None:
    stats.kernel_count += 1
    stats.kernel_ps += dur
    stats.slot_ps[slot] += dur
    if not linked:
        stats.unlinked_ps += dur
    if link is not None:
        col.op(*link).add_device(slot, dur, dev)
