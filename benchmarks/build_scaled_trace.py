"""Build a bigger trace from a recorded one by replaying its real steps later in time.

    python benchmarks/build_scaled_trace.py SRC.xplane.pb OUT.xplane.pb --copies K

The host plane gets K-1 more copies of each of its lines, each copy shifted by the span
of the recording (plus 1 ms) so copies never overlap: the events are the recorded ones,
byte for byte; only each copy's line id and timestamp change, and on the Python line the
step markers' `step_num` stats move on by the number of recorded steps, so the result is
one long profile of K times as many real steps. Other planes are kept as they are.
The output is K times the host plane's size: write it under .bench/ or /tmp, never commit it.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tb_metal_plugin.steps import is_step_marker  # noqa: E402
from tb_metal_plugin.xplane import XLine, XLineLite, XPlane  # noqa: E402


def varint(buf, pos: int) -> tuple[int, int]:
    """(value, position after it) of the varint at pos."""
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def enc(value: int) -> bytes:
    """A varint (int64 values as two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fields(buf, start: int, end: int):
    """(number, wire type, field start, value start, value end) of each field."""
    pos = start
    while pos < end:
        first = pos
        key, pos = varint(buf, pos)
        number, wtype = key >> 3, key & 7
        if wtype == 0:
            vs = pos
            _, pos = varint(buf, pos)
        elif wtype == 2:
            n, vs = varint(buf, pos)
            pos = vs + n
        elif wtype == 1:
            vs, pos = pos, pos + 8
        elif wtype == 5:
            vs, pos = pos, pos + 4
        else:
            raise ValueError(f"wire type {wtype}")
        yield number, wtype, first, vs, pos


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return enc((number << 3) | 2) + enc(len(payload)) + payload


def build(src: str, out: str, copies: int) -> int:
    """Write the scaled trace; returns its size."""
    data = memoryview(open(src, "rb").read())
    planes = [(f, vs, ve) for n, w, f, vs, ve in fields(data, 0, len(data)) if n == 1]
    pieces: list = []
    for _first, vs, ve in planes:
        lines, rest = [], []
        for n, w, f, s, e in fields(data, vs, ve):
            (lines if n == 3 and w == 2 else rest).append((f, s, e))
        header = XPlane.FromString(b"".join(bytes(data[f:e]) for f, _s, e in rest))
        if header.name != "/host:CPU" or copies == 1:
            pieces.append(data[_first:ve])
            continue
        markers = {k for k, v in header.event_metadata.items() if is_step_marker(v.name)}
        step_stat = next((k for k, v in header.stat_metadata.items() if v.name == "step_num"), None)
        first_ns, last_ps, nums = None, 0, []
        for _f, s, e in lines:
            ln = XLineLite.FromString(bytes(data[s:e]))
            if not ln.events:
                continue
            first_ns = ln.timestamp_ns if first_ns is None else min(first_ns, ln.timestamp_ns)
            end = max(ev.offset_ps + ev.duration_ps for ev in ln.events)
            last_ps = max(last_ps, ln.timestamp_ns * 1000 + end)
        for _f, s, e in lines:
            full = XLine.FromString(bytes(data[s:e]))
            if full.name.startswith("python"):
                for ev in full.events:
                    if ev.metadata_id in markers:
                        nums += [st.int64_value for st in ev.stats if st.metadata_id == step_stat]
        shift_ns = (last_ps // 1000 - (first_ns or 0)) + 1_000_000
        stride = (max(nums) - min(nums) + 1) if nums else 0
        # As the profiler writes a plane: its lines (the copies right after the recorded
        # ones), then the metadata maps.
        last_line_end = lines[-1][2]
        body: list = [data[vs:last_line_end]]
        for k in range(1, copies):
            for _f, s, e in lines:
                body.append(_shifted(data, s, e, k, shift_ns, markers, step_stat, stride))
        body.append(data[last_line_end:ve])
        size = sum(len(b) for b in body)
        pieces += [enc((1 << 3) | 2) + enc(size)] + body
    with open(out, "wb") as f:
        for p in pieces:
            f.write(p)
    return os.path.getsize(out)


def _shifted(data, s, e, k, shift_ns, markers, step_stat, stride) -> bytes:
    """Line data[s:e] as copy k: new id and timestamp; step numbers moved on (Python line)."""
    name = b""
    for n, w, _f, vs, ve in fields(data, s, e):
        if n == 2 and w == 2:
            name = bytes(data[vs:ve])
            break
    if name.startswith(b"python"):
        line = XLine.FromString(bytes(data[s:e]))
        line.id += k * 1_000_000
        line.timestamp_ns += k * shift_ns
        for ev in line.events:
            if ev.metadata_id in markers:
                for st in ev.stats:
                    if st.metadata_id == step_stat:
                        st.int64_value += k * stride
        return field(3, line.SerializeToString())
    parts = []
    for n, w, f, vs, ve in fields(data, s, e):
        if n == 1 and w == 0:
            parts.append(enc(1 << 3) + enc(varint(data, vs)[0] + k * 1_000_000))
        elif n == 3 and w == 0:
            parts.append(enc(3 << 3) + enc(varint(data, vs)[0] + k * shift_ns))
        else:
            parts.append(data[f:ve])
    return field(3, b"".join(parts))


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--copies", type=int, required=True)
    args = ap.parse_args(argv)
    size = build(args.src, args.out, args.copies)
    print(f"{args.out}: {size / 2**20:.1f} MiB ({args.copies} copies of the host plane's steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
