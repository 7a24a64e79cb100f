"""Where one load of a trace spends its time, stage by stage, in one warm process.

    python benchmarks/bench_stages.py TRACE.xplane.pb [--reps 7]

Stages of `tb-metal ops --format json`'s work: reading the trace into per-op events
(`events.read_events`), attribution and placement (`api.Profile`), and the rows' compact
JSON (`Profile.ops_json`, joined); beside them a bare read + protobuf parse of the file.
Prints min and median milliseconds per stage over the repetitions (the cyclic garbage
collector off, as the CLI runs). A warm process: imports are not counted, unlike
bench_reader.py's fresh processes. The per-name caches (scope facts, scope phases,
interned attributions, remedies) are emptied before each repetition, as a fresh process
finds them; `--keep-caches` keeps them (a second load of the same file, faster).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from tb_metal_plugin import opnames, opphase, remedies
from tb_metal_plugin.api import Profile
from tb_metal_plugin.events import read_events
from tb_metal_plugin.jsonout import json_chunks_around
from tb_metal_plugin.xplane import XSpace

PER_NAME_CACHES = [opnames._head, opphase._scopes_phase, opphase._attribution, remedies._match]
try:  # (not in checkouts from before it, which --tree may name)
    from tb_metal_plugin import user_scopes

    PER_NAME_CACHES += [user_scopes.maybe_user_scope, user_scopes.steps_over]
except ImportError:
    pass


def stages(path: str, keep_caches: bool = False) -> dict[str, float]:
    """One load's stage times in seconds."""
    if not keep_caches:
        for cached in PER_NAME_CACHES:
            cached.cache_clear()
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
    ap.add_argument("--keep-caches", action="store_true", help="keep per-name caches warm")
    args = ap.parse_args(argv)
    gc.disable()
    stages(args.trace)  # warm-up: imports' first calls
    runs = [stages(args.trace, args.keep_caches) for _ in range(args.reps)]
    caches = "kept" if args.keep_caches else "emptied before each"
    print(f"{args.trace}: {args.reps} repetitions (per-name caches {caches}), ms (min / median)")
    for key in runs[0]:
        values = [r[key] for r in runs]
        if key == "JSON bytes":
            print(f"  {key:26s} {int(values[0]):>10d}")
            continue
        print(f"  {key:26s} {1000 * min(values):8.1f} / {1000 * statistics.median(values):8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
