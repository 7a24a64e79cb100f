"""Render a comparison (``compare.compare``'s payload) as a terminal table or CSV: the CLI's."""

from __future__ import annotations

from .formatting import bucket_label, fmt_time
from .formatting_csv import csv_text
from .table_fit import Col, hidden_note, render, wrap


def _label_cols(data: dict) -> list[str]:
    return [f"T{i}" for i in range(len(data["labels"]))]


def _speedup_cell(r: dict, i: int) -> str:
    s = r["speedup"][i]
    if s is None:
        return ""
    return f"{s:.2f}x" + (" (bench)" if r["speedup_source"][i] == "layer_benchmark" else "")


def compare_rows(data: dict) -> tuple[list, list[list[str]]]:
    """The comparison's table columns (table_fit.Col) and text rows, for every face."""

    labels = data["labels"]
    short = _label_cols(data)
    cols = [Col("layer", min=16)]
    for i in range(len(labels)):
        cols += [Col(short[i], right=True), Col("clock")]
        if i:
            cols += [Col(f"Δ {short[i]}", right=True, drop=3)]
            cols += [Col(f"speedup {short[i]}", right=True, drop=1)]
    why = any(n for r in data["rows"] for n in r["speedup_note"])
    if why:
        cols.append(Col("why no speedup", min=16, wrap=" ", drop=2))
    rows = []
    for r in data["rows"]:
        name = "  " * r["depth"] + (r["name"] if r["kind"] == "layer" else bucket_label(r["name"]))
        if not r["matched"]:
            name += " *"
        cells = [name]
        for i in range(len(labels)):
            cells += [fmt_time(r["total_ps"][i]), r["clock"][i] or ""]
            if i:
                d = r["delta_ps"][i]
                cells.append("" if d is None else ("+" if d > 0 else "") + fmt_time(d))
                cells.append(_speedup_cell(r, i))
        if why:
            cells.append("; ".join(sorted({n for n in r["speedup_note"] if n})))
        rows.append(cells)
    return cols, rows


def compare_table(data: dict, width: int | None = None) -> str:
    """Render a comparison as a terminal table fitted to width (None: full), layers then buckets."""

    labels = data["labels"]
    short = _label_cols(data)
    cols, rows = compare_rows(data)
    table, hidden = render(cols, rows, width)
    t = data["totals"]
    lines = []
    for i, lab in enumerate(labels):
        lines += wrap(f"{short[i]} = {lab}" + ("  (baseline)" if i == 0 else ""), width, "     ")
    per = "per step (avg)" if data.get("step") == "avg" else "over the profiled window"
    lines += wrap(
        f"step time (wall) {per}: "
        + ", ".join(
            f"{short[i]} {fmt_time(t['step_time_ps'][i])}"
            + ("" if i == 0 or t["speedup"][i] is None else f" ({t['speedup'][i]:.2f}x)")
            for i in range(len(labels))
        ),
        width,
        "  ",
    )
    lines += ["", table] + hidden_note(hidden, width) + [""]
    lines += wrap(
        "Layer times are op time on the clock shown: device (device timeline), host_side "
        "(GPU dispatch, no device timeline), host (CPU compute). speedup = baseline ÷ other, "
        "only between times on one clock; (bench) = from the callback's layer benchmark "
        "(forward + backward per call, measured).",
        width,
    )
    if data["unmatched"]:
        lines.append("")
        lines.append("* unmatched layers:")
        for u in data["unmatched"]:
            key = "/".join(u["key"]) if u["kind"] == "layer" else bucket_label(u["name"])
            lines += wrap(f"{key}: only in {', '.join(u['in'])}", width, "    ", "  ")
    for w in data["warnings"]:
        lines += wrap(w, width, "      ", "note: ")
    return "\n".join(lines)


def compare_csv(data: dict) -> str:
    """Render a comparison as CSV with raw picoseconds (one row per matched-or-not layer)."""

    labels = data["labels"]
    headers = ["layer", "kind", "matched"]
    for i, lab in enumerate(labels):
        headers += [f"{lab} total_ps", f"{lab} clock", f"{lab} benchmark_ps"]
        if i:
            headers += [
                f"{lab} delta_ps",
                f"{lab} speedup",
                f"{lab} speedup_source",
                f"{lab} speedup_note",
            ]
    rows = []
    for r in data["rows"]:
        row = ["/".join(r["key"]), r["kind"], r["matched"]]
        for i in range(len(labels)):
            row.append("" if r["total_ps"][i] is None else r["total_ps"][i])
            row.append(r["clock"][i] or "")
            row.append("" if r["benchmark_ps"][i] is None else r["benchmark_ps"][i])
            if i:
                d, s = r["delta_ps"][i], r["speedup"][i]
                row += ["" if d is None else d, "" if s is None else f"{s:.6g}"]
                row += [r["speedup_source"][i] or "", r["speedup_note"][i] or ""]
        rows.append(row)
    return csv_text(headers, rows)
