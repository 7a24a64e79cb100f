"""Many hosts: an N-host session loaded in parallel worker processes vs one host after another.

    nice -n 10 python benchmarks/bench_hosts.py TRACE.xplane.pb [--hosts 8] [--repeats 3]

Builds a session folder in a temp dir holding TRACE under N host names (hard links, else
copies: a real trace per host), then times, each in a fresh process, interleaved:

- sequential: `hosts.load_hosts(..., max_workers=1)`: every host in this process in turn;
- parallel: `hosts.load_hosts(...)`: the hosts in worker processes (one per core).

Prints medians with ranges, peak RSS of the parent (the workers' memory is theirs), the
ratio (target <= 0.6) and the machine (cores, load). Checks that both give the same
all-hosts payload. Parallelism cannot beat 1/cores: on 2 cores the floor is 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from tb_metal_plugin import hosts
if __name__ == "__main__":
    t0 = time.perf_counter()
    hp = hosts.load_session(sys.argv[2], max_workers=int(sys.argv[3]) or None)
    s = time.perf_counter() - t0
    layers = hp.layers("avg")
    print(json.dumps({"s": s, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "errors": hp.errors, "digest": hash(json.dumps(layers, sort_keys=True))}))
"""


def build(trace: Path, where: Path, n: int) -> Path:
    """A logdir with one session of ``n`` hosts, each ``trace``."""
    d = where / "run" / "plugins" / "profile" / "2026_01_01_00_00_00"
    d.mkdir(parents=True)
    for i in range(n):
        try:
            os.link(trace, d / f"worker{i}.xplane.pb")
        except OSError:
            shutil.copyfile(trace, d / f"worker{i}.xplane.pb")
    return where


def run(logdir: Path, workers: int) -> dict:
    """One load in a fresh process: seconds, parent peak RSS (KiB), errors, payload digest."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(logdir), str(workers)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("trace", type=Path)
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    results: dict[str, list[dict]] = {"sequential": [], "parallel": []}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="tbm-hosts-") as tmp:
        logdir = build(args.trace, Path(tmp), args.hosts)
        for rep in range(args.repeats):
            order = ["sequential", "parallel"] if rep % 2 == 0 else ["parallel", "sequential"]
            for name in order:
                r = run(logdir, 1 if name == "sequential" else 0)
                print(f"  rep {rep + 1}/{args.repeats} {name}: {r['s']:.2f} s", flush=True)
                results[name].append(r)
    size = args.trace.stat().st_size / 2**20
    print(
        f"\n{args.hosts} hosts x {args.trace.name} ({size:.1f} MiB), {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f} (1 min), {time.time() - t0:.0f} s in all"
    )
    print(f"{'load':12} {'s: median (range)':>24} {'parent peak MiB':>16}")
    med = {}
    for name, rs in results.items():
        s = [r["s"] for r in rs]
        med[name] = statistics.median(s)
        peak = max(r["rss"] for r in rs) / 1024
        print(f"{name:12} {med[name]:10.2f} ({min(s):.2f}..{max(s):.2f}) {peak:16.0f}")
    ratio = med["parallel"] / med["sequential"]
    print(f"parallel / sequential: {ratio:.2f} (target <= 0.6; floor 1/{os.cpu_count()} cores)")
    digests = {r["digest"] for rs in results.values() for r in rs}
    errors = [r["errors"] for rs in results.values() for r in rs if r["errors"]]
    print(f"same all-hosts payload every run: {len(digests) == 1}; host errors: {errors or 'none'}")
    print(
        f"(this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
