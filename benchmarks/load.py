"""Load test: 200 concurrent requests across every route of a real TensorBoard on loopback.

    nice -n 10 python benchmarks/load.py [--requests 200] [--concurrency 200]

Starts TensorBoard (this checkout's plugin, 127.0.0.1 only, a fresh disk cache) on a copy
of the committed demo runs, then sends the requests twice: cold (nothing loaded: every
profile loads while the requests wait for it with `wait=`) and warm (everything cached).
Requests cycle over every route: /sessions, /index.js, /layers (all, avg, one step),
/ops (all, one layer, one bucket), /compare and /readiness. Then hostile probes (path
traversal, odd steps, deep JSON, unknown routes) must each get a 4xx JSON answer.
Prints per phase: requests, errors (anything but 200, or no answer), p50, p99 and max.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_plugin_support import copy_demo_logdir, start_tensorboard  # noqa: E402

PROBES = [
    "/layers?session=../../../../etc&wait=1",
    "/layers?session=%2Fetc%2Fpasswd",
    "/layers?session={s}&host=../../../../etc/passwd",
    "/layers?session={s}&step=%D9%A2",
    "/layers?session={s}&step=%2B2",
    "/layers?session={s}&step=%202",
    "/layers?session={s}&step=2_0",
    "/layers?session={s}&wait=inf",
    "/ops?session={s}&layer=" + "%5B" * 1000,
    "/ops?session={s}&layer=" + "%5B%22a%22%2C" * 2000,
    "/readiness?session={s}&metal_version=../1.2.0",
    "/compare?session={s}",
    "/no-such-route",
    "/..%2f..%2fplugin.py",
    "/layers?session=x%00y",
]


def fetch(url: str, timeout: float = 120.0) -> tuple[int, float, bytes, str]:
    """(status, seconds, body, content type); status 0 when there was no answer."""
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, time.perf_counter() - t0, r.read(), r.headers.get_content_type()
    except urllib.error.HTTPError as e:
        return e.code, time.perf_counter() - t0, e.read(), e.headers.get_content_type()
    except OSError as e:
        return 0, time.perf_counter() - t0, str(e).encode(), ""


def route_urls(base: str) -> list[str]:
    """One URL per route and variant, for every session."""
    q = urllib.parse.urlencode
    sessions = json.loads(fetch(base + "/sessions")[2])["sessions"]
    names = [s["name"] for s in sessions]
    urls = [base + "/sessions", base + "/index.js"]
    for name in names:
        layers = json.loads(fetch(base + "/layers?" + q({"session": name, "wait": 120}))[2])
        node = layers["layers"][0]["children"][0] if layers["layers"] else None
        urls += [
            base + "/layers?" + q({"session": name, "wait": 120}),
            base + "/layers?" + q({"session": name, "step": "avg", "wait": 120}),
            base + "/layers?" + q({"session": name, "step": layers["steps"][0], "wait": 120}),
            base + "/ops?" + q({"session": name, "wait": 120}),
            base + "/readiness?" + q({"session": name, "wait": 120}),
        ]
        if node:
            urls.append(base + "/ops?" + q({"session": name, "layer": json.dumps(node["path"]),
                                            "wait": 120}))  # fmt: skip
        if layers["buckets"]:
            urls.append(base + "/ops?" + q({"session": name, "wait": 120,
                                            "bucket": layers["buckets"][0]["name"]}))  # fmt: skip
    for a, b in zip(names, names[1:], strict=False):
        urls.append(base + "/compare?" + q([("session", a), ("session", b), ("wait", 120)]))
    return urls


def burst(urls: list[str], n: int, concurrency: int) -> dict:
    """Send n requests (cycling over urls) with `concurrency` in flight: the figures."""
    picks = [urls[i % len(urls)] for i in range(n)]
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(fetch, picks))
    times = sorted(r[1] for r in results)
    errors = [(u, r[0], r[2][:120]) for u, r in zip(picks, results, strict=True) if r[0] != 200]
    return {
        "requests": n,
        "errors": len(errors),
        "p50_ms": 1000 * times[len(times) // 2],
        "p99_ms": 1000 * times[min(len(times) - 1, int(len(times) * 0.99))],
        "max_ms": 1000 * times[-1],
        "examples": errors[:5],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the cold and warm bursts and the probes; exit 1 on any error."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=200)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tb-metal-load-") as tmp:
        runs = tuple(sorted(p.name for p in (ROOT / "demo" / "logs").iterdir() if p.is_dir()))
        root = copy_demo_logdir(Path(tmp) / "logs", runs)
        proc, base = start_tensorboard(root, Path(tmp) / "cache")
        try:
            names = [s["name"] for s in json.loads(fetch(base + "/sessions")[2])["sessions"]]
            # Cold: nothing loaded yet, so only URLs that need no layer or bucket names
            # (those come from a loaded payload, for the warm burst over every variant).
            q = urllib.parse.urlencode
            cold_urls = [base + "/sessions", base + "/index.js"]
            for name in names:
                cold_urls += [base + f"/{r}?" + q({"session": name, "wait": 120})
                              for r in ("layers", "ops", "readiness")]  # fmt: skip
                cold_urls.append(base + "/layers?" + q({"session": name, "step": "avg",
                                                        "wait": 120}))  # fmt: skip
            cold_urls.append(base + "/compare?" + q([("session", n) for n in names[:2]]
                                                    + [("wait", 120)]))  # fmt: skip
            t0 = time.perf_counter()
            cold = burst(cold_urls, args.requests, args.concurrency)
            cold_wall = time.perf_counter() - t0
            urls = route_urls(base)
            t0 = time.perf_counter()
            warm = burst(urls, args.requests, args.concurrency)
            warm_wall = time.perf_counter() - t0
            t0 = time.perf_counter()
            serial = burst(urls, len(urls), 1)  # for scale: the same URLs one at a time
            serial_wall = time.perf_counter() - t0
            probe_bad = []
            for p in PROBES:
                status, _, body, ctype = fetch(base + p.format(s=urllib.parse.quote(names[0])))
                ok = 400 <= status < 500 and ctype == "application/json"
                if ok:
                    body_json = json.loads(body)
                    ok = bool(body_json.get("kind")) and bool(body_json.get("message"))
                if not ok:
                    probe_bad.append((p, status, body[:100]))
            alive = proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"{len(names)} sessions, {len(urls)} distinct URLs over 7 routes, {args.requests} "
          f"requests per phase, {args.concurrency} in flight, 127.0.0.1")  # fmt: skip
    print(f"{'phase':<6} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'wall s':>7}")  # fmt: skip
    phases = (("cold", cold, cold_wall), ("warm", warm, warm_wall), ("1-by-1", serial, serial_wall))
    for label, r, wall in phases:
        print(f"{label:<6} {r['requests']:>8} {r['errors']:>6} {r['p50_ms']:>8.1f} "
              f"{r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {wall:>7.2f}")  # fmt: skip
        for ex in r["examples"]:
            print("   error:", ex)
    print(f"probes: {len(PROBES) - len(probe_bad)}/{len(PROBES)} answered 4xx JSON "
          f"with kind and message; server alive after: {alive}")  # fmt: skip
    for p in probe_bad:
        print("   probe failed:", p)
    failed = cold["errors"] or warm["errors"] or serial["errors"] or probe_bad
    return 0 if not failed and alive else 1


if __name__ == "__main__":
    sys.exit(main())
