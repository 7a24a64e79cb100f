"""Fuzz the trace reader with mutated real traces and print the outcome table.

    nice -n 10 python benchmarks/fuzz.py --cases 10000 [--seed 1] [--jobs 1]

Seeds are the committed real traces (demo/logs and tests/fixtures). Each case mutates one
(bit flips, deletions, insertions, truncation, splices, varint lengths and values, and
valid protobufs with odd values: step numbers as strings, inf, NaN or huge, durations near
2^63, negative offsets and timestamps) and runs what every face runs: `load_file`,
`layers()` (all, avg, one step), `ops()` and the readiness check. Outcomes:

- loaded: figures pass every sanity check (see `nonsense`);
- clean_error: a TbMetalError (a TraceError naming the file);
- crash: any other exception, or the worker process died;
- hang: a case ran longer than --hang-s;
- nonsense_warned / silent_nonsense: negative or out-of-range figures, or layers and buckets
  that do not add up, with or without a warning in the payload.

Cases run in a worker process (restarted after a crash or a hang, so one bad case never
stops the run); the table gives the worker's peak memory. `tests/test_fuzz.py` runs the
same cases in-process, fewer of them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's tb_metal_plugin, not an installed one
OUTCOMES = ("loaded", "clean_error", "crash", "hang", "nonsense_warned", "silent_nonsense")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_cases import INT64, make_case, seed_paths  # noqa: E402

# ---------------------------------------------------------------------------
# Running one case and judging its figures


def nonsense(payload: dict, where: str = "") -> list[str]:
    """Figures no real profile can have: negatives, overflow, NaN, shares outside 0..1,
    step numbers out of range, and layer trees whose parts do not add up to their whole."""
    bad: list[str] = []

    def number(key: str, v, path: str) -> None:
        if isinstance(v, bool) or v is None:
            return
        if isinstance(v, float) and not math.isfinite(v):
            bad.append(f"{path}.{key} = {v}")
        elif key.endswith("_ps") or key in ("count", "op_count", "fallback_count"):
            if isinstance(v, int | float) and not 0 <= v < INT64:
                bad.append(f"{path}.{key} = {v}")
        elif key in ("share", "fallback_share") and not -1e-9 <= v <= 1 + 1e-9:
            bad.append(f"{path}.{key} = {v}")

    def walk(obj, path: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(v, int | float):
                    number(k, v, path)
                elif isinstance(v, dict | list):
                    walk(v, f"{path}.{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj[:10000]):
                if isinstance(v, dict | list):
                    walk(v, f"{path}[{i}]")
                elif isinstance(v, int | float) and path.endswith("_ps"):
                    number(path, v, path)

    walk(payload, where)
    for s in payload.get("steps") or []:
        if not (isinstance(s, int) and 0 <= s < 2**53):
            bad.append(f"{where}.steps has {s!r}")
    if "verdict_ps" in payload and sum(payload["verdict_ps"].values()) != payload["total_ps"]:
        bad.append(f"{where}: verdicts do not add up to the total")
    if "op_count" in payload and "layers" in payload:
        parts = sum(n["total_ps"] for n in payload["layers"] + payload["buckets"])
        if parts != payload["total_ps"]:
            bad.append(f"{where}: layers + buckets {parts} != total {payload['total_ps']}")

        def node(n: dict) -> None:
            kids = sum(c["total_ps"] for c in n["children"])
            if n["self_ps"] + kids != n["total_ps"]:
                bad.append(f"{where}: {n['path']} self + children != total")
            if sum(n["devices"].values()) != n["total_ps"]:
                bad.append(f"{where}: {n['path']} devices do not add up")
            for c in n["children"]:
                node(c)

        for n in payload["layers"] + payload["buckets"]:
            node(n)
    for op in payload.get("ops") or []:
        if isinstance(op.get("self_ps"), int) and op["self_ps"] > op.get("total_ps", INT64):
            bad.append(f"{where}: op {op['name']} self > total")
    return bad


class Hang(Exception):
    """A case ran past its time limit."""


def run_case(path: str, hang_s: float = 0.0) -> tuple[str, str]:
    """Load one file through every face's calls: (outcome, detail)."""
    from tb_metal_plugin import api, readiness
    from tb_metal_plugin.errors import TbMetalError

    def alarm(*_):
        raise Hang()

    if hang_s:
        old = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, hang_s)
    try:
        prof = api.load_file(path)
        payloads = {"layers": prof.layers(), "avg": prof.layers("avg"), "ops": prof.ops()}
        if prof.steps:
            payloads["step"] = prof.layers(prof.steps[-1])
        payloads["readiness"] = readiness.check(payloads["ops"], prof.manifest)
        json.dumps(payloads, allow_nan=False)  # every face serialises them
    except Hang:
        return "hang", f"over {hang_s} s"
    except TbMetalError as e:
        if path not in str(e):
            return "crash", f"error does not name the file: {e}"
        return "clean_error", str(e).replace(path, "<file>")[:120]
    except Exception as e:  # noqa: BLE001 - that is what the fuzzer looks for
        tb = traceback.extract_tb(e.__traceback__)[-1]
        return "crash", f"{type(e).__name__}: {e} at {Path(tb.filename).name}:{tb.lineno}"
    finally:
        if hang_s:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    bad = []
    for key, p in payloads.items():
        bad += nonsense(p, key)
    if bad:
        warned = bool(payloads["layers"]["warnings"])
        return ("nonsense_warned" if warned else "silent_nonsense"), "; ".join(bad[:3])
    return "loaded", ""


# ---------------------------------------------------------------------------
# The long run: a worker process per batch, restarted after crashes and hangs


def _worker(first: int, count: int, seed: int, hang_s: float) -> None:
    import resource

    seeds = [p.read_bytes() for p in seed_paths()]
    with tempfile.TemporaryDirectory(prefix="tb-metal-fuzz-") as tmp:
        path = os.path.join(tmp, "host.xplane.pb")
        for i in range(first, first + count):
            name, data = make_case(i, seed, seeds)
            with open(path, "wb") as f:
                f.write(data)
            print(json.dumps({"i": i, "mutation": name}), flush=True)  # started
            t0 = time.perf_counter()
            outcome, detail = run_case(path, hang_s)
            rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            line = {"i": i, "outcome": outcome, "detail": detail, "rss_kb": rss_kb}
            line["s"] = round(time.perf_counter() - t0, 4)
            print(json.dumps(line), flush=True)


def run(cases: int, seed: int, hang_s: float, jobs: int) -> dict:
    """Run `cases` cases in worker processes; the collected results."""
    results: dict[int, dict] = {}
    mutation: dict[int, str] = {}

    def start(indices: list[int]):
        # Contiguous runs only: a worker runs first..first+count-1.
        first, count = indices[0], 1
        while count < len(indices) and indices[count] == first + count:
            count += 1
        cmd = [sys.executable, __file__, "--worker", str(first), str(count), str(seed),
               str(hang_s)]  # fmt: skip
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT, text=True, bufsize=1)
        return {"p": p, "left": indices, "batch_end": first + count, "current": None,
                "since": time.monotonic()}  # fmt: skip

    # Each job takes contiguous blocks so a worker needs only (first, count).
    block = max(1, cases // jobs + 1)
    chunks = [list(range(k * block, min(cases, (k + 1) * block))) for k in range(jobs)]
    procs = [start(c) for c in chunks if c]
    while procs:
        for w in list(procs):
            ready, _, _ = select.select([w["p"].stdout], [], [], 0.05)
            line = w["p"].stdout.readline() if ready else None
            if line:
                msg = json.loads(line)
                if "outcome" in msg:
                    results[msg["i"]] = msg
                    w["current"] = None
                    w["left"] = [i for i in w["left"] if i != msg["i"]]
                else:
                    mutation[msg["i"]] = msg["mutation"]
                    w["current"], w["since"] = msg["i"], time.monotonic()
                continue
            dead = ready and line == "" or w["p"].poll() is not None
            stuck = w["current"] is not None and time.monotonic() - w["since"] > 4 * hang_s
            if not (dead or stuck):
                continue
            if stuck:
                w["p"].kill()
            w["p"].wait()
            if w["current"] is None and w["left"]:
                w["current"] = w["left"][0]  # died between cases: blame the next, move on
            if w["current"] is not None:
                kind = "hang" if stuck else "crash"
                detail = f"worker {'stuck' if stuck else 'died'} (rc {w['p'].returncode})"
                results[w["current"]] = {"i": w["current"], "outcome": kind, "detail": detail}
                w["left"] = [i for i in w["left"] if i != w["current"]]
            procs.remove(w)
            if w["left"]:
                procs.append(start(w["left"]))
    for i, r in results.items():
        r["mutation"] = mutation.get(i, "?")
    return results


def table(results: dict) -> str:
    """The outcome table: counts per outcome, overall and per mutation."""
    by = Counter((r["mutation"], r["outcome"]) for r in results.values())
    total = Counter(r["outcome"] for r in results.values())
    muts = sorted({r["mutation"] for r in results.values()})
    head = ["mutation", *OUTCOMES]
    rows = [[m, *(str(by[(m, o)]) for o in OUTCOMES)] for m in muts]
    rows.append(["total", *(str(total[o]) for o in OUTCOMES)])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [head, *rows]
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: run the cases and print the table; exit 1 on a crash, hang or silent
    nonsense."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--hang-s", type=float, default=10.0)
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        first, count, seed, hang_s = args.worker
        _worker(int(first), int(count), int(seed), float(hang_s))
        return 0
    t0 = time.monotonic()
    seeds = seed_paths()
    results = run(args.cases, args.seed, args.hang_s, args.jobs)
    wall = time.monotonic() - t0
    print(f"{len(results)} cases from {len(seeds)} real traces, seed {args.seed}, "
          f"{wall:.0f} s")  # fmt: skip
    print(table(results))
    times = [r["s"] for r in results.values() if "s" in r]
    rss = max((r.get("rss_kb", 0) for r in results.values()), default=0)
    biggest = max((p.stat().st_size for p in seeds), default=0)
    print(f"per case: mean {sum(times) / max(1, len(times)) * 1000:.1f} ms, "
          f"max {max(times, default=0) * 1000:.0f} ms; worker peak RSS {rss / 1024:.0f} MB "
          f"(largest seed {biggest / 1024:.0f} KB)")  # fmt: skip
    worst = [r for r in results.values() if r["outcome"] in ("crash", "hang", "silent_nonsense")]
    for r in [r for r in results.values() if r["outcome"] == "nonsense_warned"][:5]:
        print(f"case {r['i']} ({r['mutation']}): warned nonsense: {r['detail']}")
    for r in sorted(worst, key=lambda r: r["i"])[:20]:
        print(f"case {r['i']} ({r['mutation']}): {r['outcome']}: {r['detail']}")
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
