"""HTML tables for Jupyter: a loaded profile, its layers and a comparison render themselves.

The cells are the CLI's cells (`formatting.node_figures`,
`formatting_compare.compare_rows`): a notebook shows the same figures as `tb-metal layers`
and `tb-metal compare`, only as HTML. A face: the core's payloads reach it through
`payload_views`, which imports it only when Jupyter asks for HTML.
"""

from __future__ import annotations

from html import escape

from .formatting import HOST_SIDE_LEGEND, HOST_SIDE_MARK, fallback_groups, fmt_time, layer_rows

_STYLE = (
    "<style>.tbm td,.tbm th{padding:1px 8px;white-space:nowrap}"
    ".tbm td.r,.tbm th.r{text-align:right}.tbm .note{color:#555;font-size:90%}</style>"
)


def _table(headers: list[tuple[str, bool]], rows: list[list[tuple[str, int]]]) -> str:
    """An HTML table: headers (text, right-aligned); cells (text, indent level)."""
    head = "".join(f'<th class="{"r" if r else ""}">{escape(h)}</th>' for h, r in headers)
    body = []
    for row in rows:
        tds = []
        for (text, depth), (_, right) in zip(row, headers, strict=True):
            pad = f' style="padding-left:{8 + 16 * depth}px"' if depth else ""
            tds.append(f'<td class="{"r" if right else ""}"{pad}>{escape(text)}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (
        f'<table class="tbm"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _notes(lines: list[str]) -> str:
    return "".join(f'<div class="note">{escape(n)}</div>' for n in lines if n)


def layers_html(data: dict) -> str:
    """A layers payload (`Profile.layers()`) as an HTML table with its notes."""
    phases, nodes = layer_rows(data)
    headers = [("layer", False), ("class", False), ("ops", True), ("total", True)]
    headers += [("clock", False), ("self", True), ("share", True)]
    headers += [(p, True) for p in phases] + [("devices", False), ("fallback", True)]
    rows = []
    for depth, _, f in nodes:
        cells = [f["name"], f["class"], f["ops"], f["total"], f["clock"], f["self"], f["share"]]
        cells += [f["phases"][p] for p in phases] + [f["devices"], f["fallback"]]
        rows.append([(cells[0], depth)] + [(c, 0) for c in cells[1:]])
    step = data["step"]
    what = {"all": "all profiled steps (totals)", "avg": "mean per step"}.get(step, f"step {step}")
    head = (
        f"<b>{escape(str(data.get('session')))}</b> host {escape(str(data['host']))}, "
        f"{escape(what)}: op time {fmt_time(data['total_ps'])}, step time (wall) "
        f"{fmt_time(data['step_time_ps'])}, devices {escape(', '.join(data['devices']) or 'CPU')}"
    )
    notes = []
    if any(HOST_SIDE_MARK in f["devices"] for _, _, f in nodes):
        notes.append(HOST_SIDE_LEGEND)
    notes.append(data["time_note"])
    for g in fallback_groups(data):
        notes.append(
            f"CPU fallback {g['where']}: {fmt_time(g['time_ps'])}: " + "; ".join(g["reasons"])
        )
    notes += [f"warning: {w}" for w in data["warnings"]]
    return _STYLE + f"<div>{head}</div>" + _table(headers, rows) + _notes(notes)


def compare_html(data: dict) -> str:
    """A comparison (`compare.compare()`) as an HTML table with its notes."""
    from .formatting_compare import _label_cols, compare_rows

    cols, rows = compare_rows(data)
    headers = [(c.header, c.right) for c in cols]
    cells = []
    for r, row in zip(data["rows"], rows, strict=True):
        cells.append([(row[0].lstrip(" "), r["depth"])] + [(c, 0) for c in row[1:]])
    short = _label_cols(data)
    labels = [
        f"{short[i]} = {lab}" + (" (baseline)" if i == 0 else "")
        for i, lab in enumerate(data["labels"])
    ]
    t = data["totals"]
    steps = ", ".join(f"{s} {fmt_time(ps)}" for s, ps in zip(short, t["step_time_ps"], strict=True))
    head = escape("; ".join(labels)) + f"<br>step time (wall): {escape(steps)}"
    notes = [f"unmatched: {'/'.join(u['key'])} only in {', '.join(u['in'])}"
             for u in data["unmatched"]] + list(data["warnings"])  # fmt: skip
    return _STYLE + f"<div>{head}</div>" + _table(headers, cells) + _notes(notes)
