"""Compare layer breakdowns of several profiles: layers matched by path, times, deltas, speedup.

Input is the layers payload of ``Profile.layers()`` (one per run or session); output is
plain JSON so the TensorBoard route, the CLI and tests share one computation; the CLI's
``formatting_compare`` renders it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .breakdown import CLOCK_WORDS, CLOCKS
from .payload_views import ComparisonView

ROOT_ALIAS = "<model>"


def _walk(nodes: Iterable[dict], kind: str, depth: int = 0):
    """Yield (node, kind, depth) for every node of a layer tree, parents first."""
    for node in nodes or ():
        yield node, kind, depth
        yield from _walk(node.get("children") or (), kind, depth + 1)


def _root_names(payload: dict) -> set[str]:
    return {n["path"][0] for n in payload.get("layers") or () if n.get("path")}


def _key(path: Sequence[str], kind: str, alias_root: bool) -> tuple:
    # Keras uniquifies model names per process ("functional" then "functional_1"), so
    # two runs of the same model often differ only in the root name: match below it.
    parts = list(path)
    if alias_root and kind == "layer" and parts:
        parts[0] = ROOT_ALIAS
    return (kind, *parts)


def _speedup(base: int | None, other: int | None) -> float | None:
    if base is None or other is None or base <= 0 or other <= 0:
        return None
    return base / other


def _words(clock: str | None, clocks: dict | None) -> str:
    if clock == "mixed":
        return "mixed clocks (" + " + ".join(CLOCK_WORDS[c] for c in clocks or {}) + ")"
    return CLOCK_WORDS.get(clock or "", str(clock))


def _same_clock(a: str | None, b: str | None) -> bool:
    """True when two times can be subtracted: one clock, or one side has no op time at all."""
    if a is None or b is None:
        return True
    return a == b and a != "mixed"


def _bench_ps(node: dict) -> tuple[int | None, str | None]:
    """A layer's benchmarked time per call (forward + backward) on the device its ops ran on.

    The benchmark times each layer on every device; the one that matters for a run is the
    device kind that holds most of the layer's op time there (GPU in a Metal run, CPU in its
    CPU-only twin).
    """
    entries = node.get("benchmark") or []
    devices = node.get("devices") or {}
    if not entries or not any(devices.values()):
        return None, None
    kind = max(devices, key=devices.get).split(" ", 1)[0]
    entry = next((b for b in entries if b.get("device") == kind), None)
    # Entries written before the overhead was subtracted (and backward measured on its own)
    # hold a different quantity: not used for ratios.
    if entry is None or entry.get("forward_ps") is None or not entry.get("overhead_subtracted"):
        return None, None
    return int(entry["forward_ps"]) + int(entry.get("backward_ps") or 0), kind


def _speedups(row: dict, labels: list[str]) -> None:
    """Fill a row's speedup, its source and, where there is none, why not.

    A ratio exists only between two times on one clock: both from the layer benchmark
    (measured per call on a synchronised device), or both profile times on the same single
    clock. GPU dispatch time over CPU compute time would be a number with no meaning.
    """
    n = len(labels)
    row["speedup"] = [None] * n
    row["speedup_source"] = [None] * n
    row["speedup_note"] = [None] * n
    base_t, base_c, base_b = row["total_ps"][0], row["clock"][0], row["benchmark_ps"][0]
    for i in range(n):
        t, c, b = row["total_ps"][i], row["clock"][i], row["benchmark_ps"][i]
        if t is None or base_t is None:
            continue  # not in both profiles: the unmatched list says so
        if base_b is not None and b is not None:
            row["speedup"][i] = _speedup(base_b, b)
            row["speedup_source"][i] = "layer_benchmark"
        elif base_c == c and c in CLOCKS:
            row["speedup"][i] = _speedup(base_t, t)
            row["speedup_source"][i] = "profile" if row["speedup"][i] is not None else None
        elif base_c is None or c is None or i == 0:
            continue  # no op time on one side (an op-less layer such as Flatten)
        elif base_c == c:  # both mixed
            row["speedup_note"][i] = (
                f"{_words(c, row['clocks'][i])}: no single-clock time to divide"
            )
        else:
            row["speedup_note"][i] = (
                f"{_words(base_c, row['clocks'][0])} vs {_words(c, row['clocks'][i])}"
            )


def compare(layers_payloads: list[dict], labels: list[str] | None = None) -> dict[str, Any]:
    """Match the layers of several layers payloads by path; the first payload is the baseline."""
    if len(layers_payloads) < 2:
        raise ValueError("compare needs at least two profiles")
    labels = (
        list(labels)
        if labels
        else [p.get("session") or f"#{i}" for i, p in enumerate(layers_payloads)]
    )
    if len(labels) != len(layers_payloads):
        raise ValueError("one label per profile")
    n = len(layers_payloads)

    # Alias the root only when every profile has exactly one root model and the names
    # differ; otherwise a real difference in structure would be hidden.
    roots = [_root_names(p) for p in layers_payloads]
    alias_root = all(len(r) == 1 for r in roots) and len(set().union(*roots)) > 1

    rows: dict[tuple, dict] = {}
    order: list[tuple] = []
    for i, payload in enumerate(layers_payloads):
        nodes = list(_walk(payload.get("layers") or (), "layer"))
        nodes += list(_walk(payload.get("buckets") or (), "bucket"))
        for node, kind, depth in nodes:
            path = list(node.get("path") or [node.get("name", "?")])
            key = _key(path, kind, alias_root)
            row = rows.get(key)
            if row is None:
                row = {
                    "key": list(key[1:]),
                    "kind": kind,
                    "name": node.get("name") or path[-1],
                    "depth": depth,
                    "class": node.get("class"),
                    "paths": [None] * n,
                    "self_ps": [None] * n,
                    "total_ps": [None] * n,
                    "clock": [None] * n,
                    "clocks": [None] * n,
                    "devices": [None] * n,
                    "benchmark_ps": [None] * n,
                    "benchmark_device": [None] * n,
                    "fallback_count": [None] * n,
                    "fallback_ps": [None] * n,
                }
                rows[key] = row
                order.append(key)
            row["paths"][i] = path
            row["self_ps"][i] = int(node.get("self_ps", 0) or 0)
            row["total_ps"][i] = int(node.get("total_ps", 0) or 0)
            row["clock"][i] = node.get("clock")
            row["clocks"][i] = dict(node.get("clocks") or {})
            row["devices"][i] = dict(node.get("devices") or {})
            row["benchmark_ps"][i], row["benchmark_device"][i] = _bench_ps(node)
            row["fallback_count"][i] = int(node.get("fallback_count", 0) or 0)
            # Host CPU time of the fallen-back ops: the same clock in every run.
            row["fallback_ps"][i] = int(node.get("fallback_ps", 0) or 0)

    # Tree order across profiles: a layer only some profiles have sits after its siblings,
    # under its own parent, rather than at the end of the list.
    first_seen = {k: i for i, k in enumerate(order)}

    def tree_pos(k: tuple) -> tuple:
        return (k[0] != "layer",) + tuple(
            first_seen.get(k[: j + 1], len(first_seen)) for j in range(1, len(k))
        )

    order.sort(key=tree_pos)
    out_rows, unmatched = [], []
    for key in order:
        row = rows[key]
        base, base_clock = row["total_ps"][0], row["clock"][0]
        row["present"] = [t is not None for t in row["total_ps"]]
        # A difference between two clocks means as little as their ratio.
        row["delta_ps"] = [
            t - base if t is not None and base is not None and _same_clock(base_clock, c) else None
            for t, c in zip(row["total_ps"], row["clock"], strict=True)
        ]
        first = row["fallback_count"][0]
        row["fallback_delta"] = [
            x - first if x is not None and first is not None else None
            for x in row["fallback_count"]
        ]
        _speedups(row, labels)
        row["matched"] = all(row["present"])
        out_rows.append(row)
        if not row["matched"]:
            unmatched.append(
                {
                    "key": row["key"],
                    "kind": row["kind"],
                    "name": row["name"],
                    "in": [labels[i] for i in range(n) if row["present"][i]],
                    "missing_in": [labels[i] for i in range(n) if not row["present"][i]],
                }
            )

    def total(field: str) -> list[int | None]:
        return [p.get(field) for p in layers_payloads]

    step_times = total("step_time_ps")
    totals = total("total_ps")
    warnings: list[str] = []
    steps_sel = {repr(p.get("step")) for p in layers_payloads}
    if len(steps_sel) > 1:
        warnings.append(
            "profiles were compared at different step selections: " + ", ".join(sorted(steps_sel))
        )
    if (
        layers_payloads[0].get("step") in (None, "all")
        and len({len(p.get("steps") or ()) for p in layers_payloads}) > 1
    ):
        warnings.append(
            "profiles cover different numbers of steps: compare per-step "
            "averages (step=avg) rather than totals"
        )
    timelines = {p.get("timeline") for p in layers_payloads}
    if len(timelines) > 1:
        warnings.append(
            "profiles measure time differently ("
            + ", ".join(sorted(str(t) for t in timelines))
            + "): device time is not host time"
        )
    notes: dict[str, int] = {}
    for row in out_rows:
        for note in row["speedup_note"]:
            if note:
                notes[note] = notes.get(note, 0) + 1
    for note, count in sorted(notes.items(), key=lambda kv: (-kv[1], kv[0])):
        warnings.append(
            f"{count} row(s) have no per-layer speedup ({note}): their times are on different "
            "clocks. Compare step time (wall), or record both runs with the callback's "
            "layer benchmark"
        )
    if alias_root:
        warnings.append(
            "root models have different names ("
            + ", ".join(sorted(set().union(*roots)))
            + "): layers matched below the root"
        )
    out = {
        "labels": labels,
        "baseline": labels[0],
        "sessions": [p.get("session") for p in layers_payloads],
        "hosts": [p.get("host") for p in layers_payloads],
        "step": layers_payloads[0].get("step"),
        "timelines": [p.get("timeline") for p in layers_payloads],
        # The headline: step time is wall time on the host, one clock in every run.
        "totals": {
            "step_time_ps": step_times,
            "step_time_clock": "wall",
            "speedup": [_speedup(step_times[0], t) for t in step_times],
            "total_ps": totals,
            "clocks": [p.get("clocks") for p in layers_payloads],
        },
        "rows": out_rows,
        "matched_count": sum(1 for r in out_rows if r["matched"]),
        "unmatched": unmatched,
        "warnings": warnings,
    }
    # A plain dict that also renders as an HTML table in Jupyter.
    return ComparisonView(out)
