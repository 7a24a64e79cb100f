"""What reading a stock run's step graph costs a load, and what it decides.

    python benchmarks/bench_step_graph.py RUN/plugins/profile/SESSION/HOST.xplane.pb [--reps 5]

The trace must sit in a standard run folder whose `events.out.tfevents.*` file Keras's
`TensorBoard(profile_batch=...)` wrote (e.g. a stock run of `python -m tests.gt record
OUTDIR --set heldout_e --only resnet50`). Prints, medians over --reps in this process
(imports and caches warm): the event files' size, the graph's nodes, the time to find and
parse the graph, `api.load_file` with and without it, and how many of the trace's ops the
graph gave another layer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tb_metal_plugin import api  # noqa: E402
from tb_metal_plugin.run_graph import event_files, graph_ops, step_graph_for  # noqa: E402


def _median_s(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Print the table for one trace."""
    p = argparse.ArgumentParser()
    p.add_argument("trace")
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args(argv)
    files = event_files(a.trace)
    if not files:
        print(f"{a.trace}: no event file in its run folder (not a stock run)", file=sys.stderr)
        return 2
    ops = graph_ops(api.read_events(a.trace).ops.keys())
    graph, notes = step_graph_for(a.trace, ops)
    if graph is None:
        print(f"{a.trace}: no step graph of this trace ({'; '.join(notes)})", file=sys.stderr)
        return 2
    find = _median_s(lambda: step_graph_for(a.trace, ops), a.reps)
    names = _median_s(lambda: api.load_file(a.trace, step_graph=False), a.reps)
    with_graph = _median_s(lambda: api.load_file(a.trace), a.reps)
    rows_n = {r["name"]: r["layer"] for r in api.load_file(a.trace, step_graph=False).ops()["ops"]}
    rows_g = {r["name"]: r["layer"] for r in api.load_file(a.trace).ops()["ops"]}
    moved = sum(1 for n, layer in rows_g.items() if rows_n.get(n) != layer)
    size = sum(os.path.getsize(f) for f in files)
    print(f"trace ops:                {len(rows_g)} ({len(ops)} inside functions)")
    print(f"event files:              {len(files)}, {size / 2**20:.1f} MiB")
    print(f"step graph nodes:         {len(graph)}")
    print(f"find + parse the graph:   {find * 1e3:.1f} ms (median of {a.reps})")
    print(f"load_file, names only:    {names * 1e3:.1f} ms")
    print(f"load_file, with graph:    {with_graph * 1e3:.1f} ms")
    print(f"ops the graph moved:      {moved}")
    print(f"load average:             {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
