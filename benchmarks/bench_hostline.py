"""The host-line hot loop alone: the pure-Python twin (before) against the C scanner (after).

    python benchmarks/bench_hostline.py [TRACE.xplane.pb] [--reps 5]

Times the aggregation of every line of the host plane (`hostline.read_host_plane`, which
includes reading each line's bytes) with each path, alternating, on the same open file,
and prints medians with ranges, the ratio, how many of the lines hold op events, and
the share of the twin's time spent on lines without any.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tb_metal_plugin import events, hostline  # noqa: E402
from tb_metal_plugin.xspace_reader import open_trace  # noqa: E402

LAST: dict[bool, tuple] = {}  # each path's last figures, compared at the end


def _setup(trace):
    planes = trace.planes()
    host = next(p for p in planes if p.name == "/host:CPU")
    steps = events._find_steps(host)
    col = events._Collector(steps)
    op_ids = {}
    for mid, md in host.header.event_metadata.items():
        parts = events.split_op_name(md.name, md.display_name)
        if parts is not None:
            op_ids[mid] = col.op(*parts)
    return host, col, op_ids


def one(path: str, native: bool, per_line: dict | None = None) -> float:
    """Seconds to aggregate the host plane of path with one path."""
    saved = hostline._native
    hostline._native = saved if native else None
    try:
        with open_trace(path) as trace:
            host, col, op_ids = _setup(trace)
            marks = [time.perf_counter()]

            def on_line(_i: int) -> None:
                marks.append(time.perf_counter())

            hostline.read_host_plane(col, host, op_ids, on_line)
            if per_line is not None:
                for i in range(len(host.line_spans)):
                    name = host.line_name(i)
                    held = col_ops_on_line(col, host, i, op_ids)
                    per_line[i] = (name, marks[i + 1] - marks[i], held)
            figures = {
                k: (list(r.count), list(r.self_ps), list(r.total_ps), sorted(r.line_kinds))
                for k, r in col.ops.items()
            }
            LAST[native] = (figures, col.event_count, trace.checks.warnings())
            return marks[-1] - marks[0]
    finally:
        hostline._native = saved


def col_ops_on_line(col, host, index: int, op_ids: dict) -> bool:
    """True when the line holds at least one op event."""
    return any(ev.metadata_id in op_ids for ev in host.line_lite(index).events)


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    path = args.trace or sorted(glob.glob(".bench/big/**/*.xplane.pb", recursive=True))[-1]
    if hostline._native is None:
        print("the C extension is not built: python setup.py build_ext --inplace")
        return 2
    print(f"trace {path}: {os.path.getsize(path) / 2**20:.1f} MiB, load {os.getloadavg()}")
    times: dict[bool, list[float]] = {True: [], False: []}
    for rep in range(args.reps):
        for native in (rep % 2 == 0, rep % 2 == 1):
            times[native].append(one(path, native))
    for native, label in ((False, "python twin (before)"), (True, "C scanner (after)")):
        t = times[native]
        print(f"{label:22s} {statistics.median(t):6.3f} s ({min(t):.3f}..{max(t):.3f})")
    print(f"speed-up: {statistics.median(times[False]) / statistics.median(times[True]):.1f}x")
    same = LAST[True] == LAST[False]
    print(f"identical figures (per op, per step: count, self, total; events; warnings): {same}")
    per_line: dict = {}
    one(path, False, per_line)
    empty = [t for _, t, held in per_line.values() if not held]
    total = sum(t for _, t, _ in per_line.values()) or 1
    print(
        f"lines: {len(per_line)}, without op events: {len(empty)} "
        f"({100 * sum(empty) / total:.0f}% of the twin's time)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
