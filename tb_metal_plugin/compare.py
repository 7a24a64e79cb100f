"""Compare layer breakdowns of several profiles: layers matched by path, times, deltas, speedup.

Input is the layers payload of ``Profile.layers()`` (one per run or session); output is
plain JSON so the TensorBoard route, the CLI and tests share one computation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

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


def _device_ps(node: dict, device: str) -> int:
    return int((node.get("devices") or {}).get(device, 0) or 0)


def _speedup(base: int | None, other: int | None) -> float | None:
    if base is None or other is None or other <= 0:
        return None
    return base / other


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
                    "gpu_ps": [None] * n,
                    "cpu_ps": [None] * n,
                    "fallback_count": [None] * n,
                }
                rows[key] = row
                order.append(key)
            row["paths"][i] = path
            row["self_ps"][i] = int(node.get("self_ps", 0) or 0)
            row["total_ps"][i] = int(node.get("total_ps", 0) or 0)
            row["gpu_ps"][i] = _device_ps(node, "GPU")
            row["cpu_ps"][i] = _device_ps(node, "CPU")
            row["fallback_count"][i] = int(node.get("fallback_count", 0) or 0)

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
        base = row["total_ps"][0]
        row["present"] = [t is not None for t in row["total_ps"]]
        row["delta_ps"] = [
            None if (t is None or base is None) else t - base for t in row["total_ps"]
        ]
        row["speedup"] = [_speedup(base, t) for t in row["total_ps"]]
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
    if alias_root:
        warnings.append(
            "root models have different names ("
            + ", ".join(sorted(set().union(*roots)))
            + "): layers matched below the root"
        )
    return {
        "labels": labels,
        "baseline": labels[0],
        "sessions": [p.get("session") for p in layers_payloads],
        "hosts": [p.get("host") for p in layers_payloads],
        "step": layers_payloads[0].get("step"),
        "timelines": [p.get("timeline") for p in layers_payloads],
        "totals": {
            "step_time_ps": step_times,
            "total_ps": totals,
            "speedup": [_speedup(step_times[0], t) for t in step_times],
        },
        "rows": out_rows,
        "matched_count": sum(1 for r in out_rows if r["matched"]),
        "unmatched": unmatched,
        "warnings": warnings,
    }


def _label_cols(data: dict) -> list[str]:
    return [f"T{i}" for i in range(len(data["labels"]))]


def compare_table(data: dict) -> str:
    """Render a comparison as a terminal table (layers in tree order, then buckets)."""
    from .formatting import fmt_time, text_table

    labels = data["labels"]
    short = _label_cols(data)
    headers = ["layer"]
    right: set[int] = set()
    for i in range(len(labels)):
        headers.append(short[i])
        right.add(len(headers) - 1)
        if i:
            headers += [f"Δ {short[i]}", f"speedup {short[i]}"]
            right |= {len(headers) - 2, len(headers) - 1}
    rows = []
    for r in data["rows"]:
        name = "  " * r["depth"] + (r["name"] if r["kind"] == "layer" else f"({r['name']})")
        if not r["matched"]:
            name += " *"
        cells = [name]
        for i in range(len(labels)):
            cells.append(fmt_time(r["total_ps"][i]))
            if i:
                d, s = r["delta_ps"][i], r["speedup"][i]
                cells.append("-" if d is None else ("+" if d > 0 else "") + fmt_time(d))
                cells.append("-" if s is None else f"{s:.2f}x")
        rows.append(cells)
    t = data["totals"]
    lines = [f"{short[i]} = {lab}" + ("  (baseline)" if i == 0 else "")
             for i, lab in enumerate(labels)]  # fmt: skip
    per = "per step (avg)" if data.get("step") == "avg" else "over the profiled window"
    lines.append(
        f"step time {per}: "
        + ", ".join(
            f"{short[i]} {fmt_time(t['step_time_ps'][i])}"
            + ("" if i == 0 or t["speedup"][i] is None else f" ({t['speedup'][i]:.2f}x)")
            for i in range(len(labels))
        )
    )
    lines += ["", text_table(headers, rows, right)]
    if data["unmatched"]:
        lines.append("")
        lines.append("* unmatched layers:")
        for u in data["unmatched"]:
            lines.append(f"  {'/'.join(u['key'])}: only in {', '.join(u['in'])}")
    lines += [f"note: {w}" for w in data["warnings"]]
    return "\n".join(lines)


def compare_csv(data: dict) -> str:
    """Render a comparison as CSV with raw picoseconds (one row per matched-or-not layer)."""
    from .formatting import csv_text

    labels = data["labels"]
    headers = ["layer", "kind", "matched"]
    for i, lab in enumerate(labels):
        headers.append(f"{lab} total_ps")
        if i:
            headers += [f"{lab} delta_ps", f"{lab} speedup"]
    rows = []
    for r in data["rows"]:
        row = ["/".join(r["key"]), r["kind"], r["matched"]]
        for i in range(len(labels)):
            row.append("" if r["total_ps"][i] is None else r["total_ps"][i])
            if i:
                d, s = r["delta_ps"][i], r["speedup"][i]
                row += ["" if d is None else d, "" if s is None else f"{s:.6g}"]
        rows.append(row)
    return csv_text(headers, rows)
