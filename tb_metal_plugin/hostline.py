"""The host plane's per-line aggregation: the C scanner when it is built, else the Python twin.

`_hostline` (tb_metal_plugin/_hostline.c, an optional extension built on install where a
compiler exists) does what its pure-Python twin `twin_line` below does, over the raw line bytes
read from the file a window at a time, writing into the same OpRecord arrays and applying the
same value checks; its `op_metadata` (_hostmeta.c) sorts out the plane's event metadata as
`twin_op_metadata` does. A line or plane the scanner does not accept exactly as protobuf
would is handed to the Python twin, so both paths give identical figures
(tests/test_native.py holds them to it).
`TB_METAL_PURE_PYTHON=1` forces the twin. `READER` says which path this process uses.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from .validate import Checks

_native: Any = None
if os.environ.get("TB_METAL_PURE_PYTHON", "") in ("", "0"):
    try:
        from . import _hostline as _native
    except ImportError:  # no compiler at install time: the twin does the work
        _native = None

READER = "native" if _native is not None else "python"
# sum(values[lo:hi]) of a per-slot array, summed in C (selection.py's op rows use it), or
# None on the pure-Python path.
native_total = _native.total if _native is not None else None
# Lines read by each path in this process (the tests check the scanner really ran).
LINES = {"native": 0, "twin": 0}
# Bytes the scanner reads at a time (None: its own default, 64 KiB): tests set a few bytes,
# so that every field of a line is cut across reads somewhere.
WINDOW: int | None = None

# Step bounds are absolute picoseconds (about 2^71 today): handed to C as (high, low 62 bits).
# Clamping to +-2^100 keeps every comparison with a line time (< 2^74) as it was.
_LIMIT = 1 << 100
_LOW = (1 << 62) - 1


# The Checks attribute counting accepted events (`events` here; the robustness branch renames
# it `event_count`): looked up once, so the budget carried through C is the same counter.
_EVENTS = "event_count" if hasattr(Checks(), "event_count") else "events"


def _wide(value: int) -> tuple[int, int]:
    value = max(-_LIMIT, min(_LIMIT, value))
    return value >> 62, value & _LOW


def op_metadata(plane, prefixes: tuple[bytes, ...], needle: bytes) -> tuple:
    """A plane's event metadata sorted out, in id order: (ops, others, runtime,
    needle_seen), with (id, op name, op type) of each TF op (events.split_op_name), (id,
    name) of every other entry, whether any name starts with one of the prefixes and
    whether any holds the needle. Scanned from the header's bytes by the C extension (no
    protobuf object or full name per op), else read from the parsed header by the twin."""
    if _native is not None:
        got = _native.op_metadata(plane.header_bytes(), prefixes, needle)
        if got is not None:
            return got
    return twin_op_metadata(plane, prefixes, needle)


def twin_op_metadata(plane, prefixes: tuple[bytes, ...], needle: bytes) -> tuple:
    """The pure-Python twin of op_metadata."""
    from .events import split_op_name

    starts = tuple(p.decode() for p in prefixes)
    inside = needle.decode()
    ops, others = [], []
    runtime = seen = False
    for mid, md in sorted(plane.header.event_metadata.items(), key=itemgetter(0)):
        name = md.name
        parts = split_op_name(name, md.display_name)
        if parts is not None:
            ops.append((mid, *parts))
        else:
            others.append((mid, name))
        runtime = runtime or name.startswith(starts)
        seen = seen or inside in name
    return ops, others, runtime, seen


def read_host_plane(col, plane, op_ids: dict, on_line: Callable[[int], None]) -> None:
    """Aggregate every line of the host plane into col, natively where possible.

    on_line(i) runs after line i, as the Python path's progress does.
    """
    if _native is None:
        for i in range(len(plane.line_spans)):
            twin_line(col, plane, i, op_ids)
            on_line(i)
        return
    # Records in first-seen order (two metadata ids may name one op), and for each
    # metadata id the index of its record, in one pass. OpRecords hash by identity.
    index: dict = {}
    ops_of = [index.setdefault(rec, len(index)) for rec in op_ids.values()]
    recs: list = list(index)
    ids = list(op_ids)
    del index
    steps = [(_wide(s), _wide(e)) for s, e in zip(col.starts, col.ends, strict=True)]
    agg = _native.Agg(recs, ids, ops_of, steps, col.slots, col.first_start, _kind_index)
    del ids, ops_of
    if WINDOW is not None:
        agg.window = WINDOW
    check = plane.checks
    fd = plane.file.fd
    try:
        for i, (start, end) in enumerate(plane.line_spans):
            agg.budget = (check.total_ps, getattr(check, _EVENTS))
            got = agg.read(fd, start, end)
            if got is None:
                # Bytes the scanner does not take as protobuf would, or a short read: the
                # twin reads them (and raises the same TraceError when protobuf refuses
                # them or the file shrank).
                LINES["twin"] += 1
                twin_line(col, plane, i, op_ids)
            else:
                LINES["native"] += 1
                check.total_ps, accepted = agg.budget
                setattr(check, _EVENTS, accepted)
                _apply(col, plane, i, op_ids, got)
            on_line(i)
        _add_kinds(recs, agg.kinds())
    finally:
        agg.close()


# The kinds of host line (events.line_kind), as the bit index the scanner keeps per op.
LINE_KINDS = ("python", "tf_data", "compute", "other")
_KIND_BIT = {kind: i for i, kind in enumerate(LINE_KINDS)}


def _kind_index(line_name: str) -> int:
    from .events import line_kind

    return _KIND_BIT[line_kind(line_name)]


def _add_kinds(recs: list, masks: bytes) -> None:
    """Add to each record the line kinds the scanner saw it on (a bit mask per record)."""
    # (kinds so far, mask) -> the interned frozenset, a few per trace; just the mask for a
    # record the twin read no line of (its kinds are the shared empty set).
    done: dict = {}
    for rec, mask in zip(recs, masks, strict=True):
        if mask:
            kinds = rec.line_kinds
            key = (kinds, mask) if kinds else mask
            got = done.get(key)
            if got is None:
                for bit, kind in enumerate(LINE_KINDS):
                    if mask >> bit & 1:
                        rec.add_line_kind(kind)
                done[key] = rec.line_kinds
            else:
                rec.line_kinds = got


def _apply(col, plane, index: int, op_ids: dict, got: tuple) -> None:
    """What the twin does around its loop that the scanner leaves: counts, warnings,
    copy ops' stats, the line's span and first-step sequence."""
    name, ts_ns, nevents, kept, first, last, bad_span, bad_budget, overlap, seq, stats = got
    check = plane.checks
    if kept is None:
        check.line_timestamp(ts_ns)  # out of range: counted, line skipped
        return
    col.event_count += nevents
    for reason, n in (("event_span", bad_span), ("budget", bad_budget), ("overlap", overlap)):
        if n:
            check._drop(reason, n)
    if not kept:
        return
    if stats:
        col._read_stats(plane, index, op_ids)
    base = ts_ns * 1000
    col._span(base + first, base + last)
    if seq:
        col.sequences.setdefault(name, []).extend(seq)


def twin_line(col, plane, index: int, op_ids: dict) -> None:
    """The pure-Python twin: add one host line's op events (count, total and self time per
    step slot) to col, applying the reader's value checks."""
    from .events import line_kind

    line = plane.line_lite(index)
    line_name = line.name
    kind = line_kind(line_name)
    base = line.timestamp_ns * 1000
    check = plane.checks
    if not check.line_timestamp(line.timestamp_ns):
        return
    events = line.events
    col.event_count += len(events)
    # Pass 1 touches every event once and keeps only op events (most events on a host
    # line are threadpool and executor bookkeeping), in compact arrays.
    get = op_ids.get
    offs = array("q")
    durs = array("q")
    recs: list = []
    need_stats = False
    last_off = -1
    ordered = True
    for ev in events:
        rec = get(ev.metadata_id)
        if rec is not None:
            off = ev.offset_ps
            if off < last_off:
                ordered = False
            last_off = off
            offs.append(off)
            durs.append(ev.duration_ps)
            recs.append(rec)
            need_stats = need_stats or rec.wants_stats
    del events, line
    offs, durs, recs = check.events(offs, durs, recs)
    if not recs:
        return
    if need_stats:
        col._read_stats(plane, index, op_ids)
    if not ordered:
        # The profiler writes lines in start order; a stable sort keeps the parent
        # first when starts are equal.
        order = sorted(range(len(recs)), key=offs.__getitem__)
        offs = array("q", (offs[i] for i in order))
        durs = array("q", (durs[i] for i in order))
        recs = [recs[i] for i in order]
    starts, ends, nsteps = col.starts, col.ends, len(col.starts)
    stack: list[tuple[int, object, int]] = []  # (end, record, slot) of open op events
    si = 0
    last = 0
    seq: list = []
    first = col.first_start
    for off, dur, rec in zip(offs, durs, recs, strict=True):
        t = base + off
        while si < nsteps and t >= ends[si]:
            si += 1
        slot = si if si < nsteps and t >= starts[si] else nsteps
        while stack and stack[-1][0] <= off:
            stack.pop()
        if stack:
            parent = stack[-1]
            parent[1].self_ps[parent[2]] -= check.nested(off, dur, parent[0])
        if slot == 0:  # the first step, or the whole window when there are no steps
            seq.append(rec)
            key = rec.key
            if t < first.get(key, t + 1):
                first[key] = t
        rec.count[slot] += 1
        rec.total_ps[slot] += dur
        rec.self_ps[slot] += dur
        end = off + dur
        stack.append((end, rec, slot))
        if end > last:
            last = end
    if seq:
        col.sequences.setdefault(line_name, []).extend(seq)
    for rec in set(recs):
        rec.add_line_kind(kind)
    col._span(base + offs[0], base + last)
