"""Where one load of a trace spends its time, stage by stage, in one warm process.

    python benchmarks/bench_stages.py TRACE.xplane.pb [--reps 7]

Stages of `tb-metal ops --format json`'s work: reading the trace into per-op events
(`events.read_events`), attribution and placement (`api.Profile`), and the rows' compact
JSON (`Profile.ops_json`, joined); beside them a bare read + protobuf parse of the file.
Prints min and median milliseconds per stage over the repetitions (the cyclic garbage
collector off, as the CLI runs). A warm process: imports and first-call caches are not
counted, unlike bench_reader.py's fresh processes.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from tb_metal_plugin.api import Profile
from tb_metal_plugin.events import read_events
from tb_metal_plugin.jsonout import json_chunks_around
from tb_metal_plugin.xplane import XSpace


def stages(path: str) -> dict[str, float]:
    """One load's stage times in seconds."""
    out = {}
    t = time.perf_counter()
    events = read_events(path)
    out["read events"] = time.perf_counter() - t
    t = time.perf_counter()
    prof = Profile(events)
    out["attribution + placement"] = time.perf_counter() - t
    t = time.perf_counter()
    head, pieces = prof.ops_json()
    size = sum(len(p) for p in json_chunks_around(head, "ops", pieces))
    out["rows + JSON"] = time.perf_counter() - t
    out["total"] = sum(out.values())
    t = time.perf_counter()
    with open(path, "rb") as f:
        XSpace.FromString(f.read())
    out["read + parse (floor)"] = time.perf_counter() - t
    out["JSON bytes"] = size
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: print each stage's min and median over the repetitions."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args(argv)
    gc.disable()
    stages(args.trace)  # warm-up: imports' first calls, caches
    runs = [stages(args.trace) for _ in range(args.reps)]
    print(f"{args.trace}: {args.reps} repetitions, ms (min / median)")
    for key in runs[0]:
        values = [r[key] for r in runs]
        if key == "JSON bytes":
            print(f"  {key:26s} {int(values[0]):>10d}")
            continue
        print(f"  {key:26s} {1000 * min(values):8.1f} / {1000 * statistics.median(values):8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
