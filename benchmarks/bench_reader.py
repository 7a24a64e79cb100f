"""Benchmark `tb-metal ops` against xprof's framework_op_stats and a parse-and-pass floor.

    python benchmarks/record_big_trace.py          # once: writes .bench/big (50-70 MB trace)
    python benchmarks/bench_reader.py [TRACE.xplane.pb]

Each contender runs in a fresh process (so peak memory is its own): the time printed is
the work itself, after imports; peak memory is the process's max RSS. It also compares
per-op self times with xprof's on the same file and prints the largest difference.
Targets (issue 2): >= 5x faster than xprof, within 2x of the floor, peak < 3x file size.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    path, which = sys.argv[1], sys.argv[2]
    extra = {}
    if which == "tb_metal":
        import contextlib, io
        from tb_metal_plugin.cli import main
        t0 = time.perf_counter()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["ops", path, "--format", "json"], standalone_mode=False)
        dt = time.perf_counter() - t0
        extra["ops"] = {o["name"] + ":" + o["type"]: o["self_ps"]
                        for o in json.loads(out.getvalue())["ops"]}
    elif which == "xprof":
        from xprof.convert import raw_to_tool_data
        t0 = time.perf_counter()
        data, _ = raw_to_tool_data.xspace_to_tool_data([path], "framework_op_stats", {})
        dt = time.perf_counter() - t0
        table = json.loads(data)[0]
        cols = [c["id"] for c in table["cols"]]
        i_name, i_type = cols.index("operation"), cols.index("type")
        i_self = cols.index("total_self_time")
        ops = {}
        for row in table["rows"]:
            c = row["c"]
            key = c[i_name]["v"] + ":" + c[i_type]["v"]
            ops[key] = ops.get(key, 0) + c[i_self]["v"] * 1e6  # us -> ps
        extra["ops"] = ops
    else:
        from tb_metal_plugin.xplane import XSpace
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            space = XSpace.FromString(f.read())
        n = total = 0
        for plane in space.planes:
            for line in plane.lines:
                for ev in line.events:
                    n += 1
                    total += ev.duration_ps + ev.metadata_id
        dt = time.perf_counter() - t0
        extra["events"] = n
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": dt, "peak_bytes": rss, **extra}))
    """
)


def run(path: str, which: str) -> dict:
    """Run one contender in a fresh interpreter, on a fresh copy of the trace.

    xprof caches its conversion beside the trace (ALL_HOSTS.op_stats_v2.pb); a fresh
    copy in an empty folder makes every run a first conversion.
    """
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, os.path.basename(path))
        shutil.copyfile(path, copy)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, copy, which],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    """Print the three timings, ratios, peak memory and the self-time agreement."""
    if len(argv) > 1:
        path = argv[1]
    else:
        found = sorted(glob.glob(".bench/big/**/*.xplane.pb", recursive=True))
        if not found:
            print("no trace: run python benchmarks/record_big_trace.py first", file=sys.stderr)
            return 2
        path = found[-1]
    size = os.path.getsize(path)
    print(f"trace: {path}  {size / 2**20:.1f} MB")
    floor = run(path, "floor")
    print(f"events: {floor['events']:,}")
    ours = run(path, "tb_metal")
    xprof = run(path, "xprof")
    rows = [
        ("tb-metal ops --format json", ours),
        ("xprof framework_op_stats", xprof),
        ("protobuf parse + one pass", floor),
    ]
    for label, r in rows:
        print(
            f"{label:30s} {r['seconds']:7.2f} s   peak {r['peak_bytes'] / 2**20:7.1f} MB "
            f"({r['peak_bytes'] / size:.2f}x file)"
        )
    print(f"speed-up over xprof:  {xprof['seconds'] / ours['seconds']:.1f}x   (target >= 5x)")
    print(f"ratio to the floor:   {ours['seconds'] / floor['seconds']:.2f}x  (target <= 2x)")
    print(f"peak / file size:     {ours['peak_bytes'] / size:.2f}x  (target < 3x)")
    a, b = ours["ops"], xprof["ops"]
    common = set(a) & set(b)
    diffs = sorted(((abs(a[k] - b[k]), k) for k in common), reverse=True)
    worst_ps, worst = diffs[0] if diffs else (0, "-")
    total_b = sum(b[k] for k in common) or 1
    print(f"ops: tb-metal {len(a)}, xprof {len(b)}, in both {len(common)}")
    print(f"largest per-op self-time difference: {worst_ps / 1e6:.3f} us ({worst})")
    print(f"sum of |differences| / xprof total self time: {sum(d for d, _ in diffs) / total_b:.2e}")
    only_x = sorted(set(b) - set(a))[:5]
    if only_x:
        print("only in xprof (first 5):", only_x)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
