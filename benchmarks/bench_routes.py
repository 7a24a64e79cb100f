"""Tab latency on a big trace: cold, every route after a TensorBoard restart, and repeats.

    nice -n 10 python benchmarks/bench_routes.py TRACE.xplane.pb [--repeats 5]

Builds a logdir in a temp folder with the trace (hard-linked, else copied) under two runs,
`a` and `b`, starts a real TensorBoard on 127.0.0.1 (this checkout's plugin, a fresh disk
cache), and times over HTTP, as a browser asks (Accept-Encoding: gzip):

- cold: the first `/layers` of `a` (the trace loads while the request waits);
- first: the first answer of every route once `a` (and for /compare `b`) is loaded;
- repeat: every route asked again `--repeats` times (median and max);
- restart: a new TensorBoard on the same disk cache, every route asked once at once
  (`wait=0`: an answer from the disk cache, or a 202 while the trace reloads).

Targets (issue 15): cold /layers <= 1 s, every route after a restart <= 0.3 s, any
repeat <= 50 ms. Prints a table and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_plugin_support import start_tensorboard  # noqa: E402


def fetch(url: str) -> tuple[int, float, int]:
    """(status, seconds, bytes on the wire) of one GET, gzip accepted."""
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            n = len(r.read())
            return r.status, time.perf_counter() - t0, n
    except urllib.error.HTTPError as e:
        return e.code, time.perf_counter() - t0, len(e.read())


def build_logdir(trace: Path, where: Path) -> None:
    """Two runs, `a` and `b`, each one session holding the trace as host `vm`."""
    for run in ("a", "b"):
        d = where / run / "plugins" / "profile" / "2026_01_01_00_00_00"
        d.mkdir(parents=True)
        try:
            os.link(trace, d / "vm.xplane.pb")
        except OSError:
            shutil.copyfile(trace, d / "vm.xplane.pb")


def routes(base: str, a: str, b: str, layer: str, wait: str) -> dict[str, str]:
    """The route URLs of one tab session (every view the tab shows)."""

    def q(**kw) -> str:
        return urllib.parse.urlencode({**kw, "wait": wait})

    return {
        "/layers avg": f"{base}/layers?" + q(session=a, step="avg"),
        "/layers all": f"{base}/layers?" + q(session=a),
        "/ops": f"{base}/ops?" + q(session=a),
        "/ops layer": f"{base}/ops?" + q(session=a, layer=layer),
        "/readiness": f"{base}/readiness?" + q(session=a),
        "/compare": f"{base}/compare?"
        + urllib.parse.urlencode([("session", a), ("session", b), ("wait", wait)]),
    }


def main() -> int:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("trace", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    size_mb = args.trace.stat().st_size / 2**20
    rows: list[tuple[str, str, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="tbm-routes-") as tmp:
        logdir, cache = Path(tmp) / "logs", Path(tmp) / "cache"
        build_logdir(args.trace, logdir)
        proc, base = start_tensorboard(logdir, cache)
        try:
            import json

            with urllib.request.urlopen(base + "/sessions") as r:
                names = sorted(s["name"] for s in json.loads(r.read())["sessions"])
            a, b = names
            status, cold, _ = fetch(
                f"{base}/layers?"
                + urllib.parse.urlencode({"session": a, "step": "avg", "wait": "120"})
            )
            rows.append(("cold", "/layers avg", cold, cold, str(status)))
            with urllib.request.urlopen(
                f"{base}/layers?" + urllib.parse.urlencode({"session": a, "step": "avg"})
            ) as r:
                layer = "/".join(json.loads(r.read())["layers"][0]["path"])
            urls = routes(base, a, b, layer, "120")
            for name, url in urls.items():
                status, s, n = fetch(url)
                rows.append(("first", name, s, s, f"{status} {n / 1024:.0f} KiB"))
            for name, url in urls.items():
                times = []
                for _ in range(args.repeats):
                    status, s, _ = fetch(url)
                    times.append(s)
                rows.append(("repeat", name, statistics.median(times), max(times), str(status)))
        finally:
            proc.terminate()
            proc.wait(30)
        proc, base = start_tensorboard(logdir, cache)
        try:
            for name, url in routes(base, a, b, layer, "0").items():
                status, s, _ = fetch(url)
                rows.append(("restart", name, s, s, str(status)))
        finally:
            proc.terminate()
            proc.wait(30)
    targets = {"cold": 1.0, "restart": 0.3, "repeat": 0.05}
    print(f"trace {args.trace} ({size_mb:.1f} MiB), load {os.getloadavg()[0]:.1f} (1 min)")
    print(f"{'phase':8} {'route':12} {'median s':>9} {'max s':>8}  target  status")
    for phase, name, med, mx, status in rows:
        t = targets.get(phase)
        mark = "" if t is None else (f"<= {t:g}" + (" ok" if mx <= t else " MISSED"))
        print(f"{phase:8} {name:12} {med:9.3f} {mx:8.3f}  {mark:11} {status}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
