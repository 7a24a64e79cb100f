"""Render breakdowns as terminal tables (CSV: formatting_csv; JSON: jsonout)."""

from __future__ import annotations

from .attribution import PHASES
from .table_fit import EXTRA, Col, hidden_note, render, wrap, wrap_fields


def fmt_time(ps: float | None) -> str:
    """A picosecond figure in the unit that reads best: µs, ms or s."""
    if ps is None:
        return "-"
    if abs(ps) >= 1e12:
        return f"{ps / 1e12:.3f} s"
    if abs(ps) >= 1e9:
        return f"{ps / 1e9:.3f} ms"
    return f"{ps / 1e6:.1f} µs"


def fmt_share(x: float) -> str:
    """A fraction as a percentage."""
    return f"{100 * x:.1f}%"


def text_table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    """Aligned columns with a header rule, full width; columns in `right` are right-aligned."""
    widths = [len(h) for h in headers]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in rows])


def _walk(nodes: list[dict], depth: int = 0):
    for n in nodes:
        yield depth, n
        yield from _walk(n.get("children", []), depth + 1)


def walk(nodes: list[dict]):
    """(depth, node) for every node of a layer tree, parents first."""
    return _walk(nodes)


# A GPU lane timed on the host (Metal: no device timeline) is marked, never plain "GPU".
HOST_SIDE_MARK = "*"
HOST_SIDE_LEGEND = (
    f"GPU{HOST_SIDE_MARK} = GPU-placed ops timed host-side (dispatch; no device timeline)"
)


def _lane_label(key: str) -> str:
    return key.replace(" (host-side)", HOST_SIDE_MARK)


def device_split(n: dict) -> str:
    """A node's time per device lane: the lane alone, shares on one clock, times across clocks.

    Shares are only taken between times on one clock; a layer whose ops ran on the GPU
    (host-side dispatch) and the CPU (compute) shows each lane's time instead.
    """
    lanes = sorted(((k, v) for k, v in n["devices"].items() if v), key=lambda kv: (-kv[1], kv[0]))
    if len(lanes) <= 1:
        return " ".join(_lane_label(k) for k, _ in lanes)
    if n.get("clock") == "mixed":
        return " + ".join(f"{_lane_label(k)} {fmt_time(v)}" for k, v in lanes)
    total = sum(v for _, v in lanes)
    return " ".join(f"{_lane_label(k)} {100 * v / total:.0f}%" for k, v in lanes)


def clock_label(clock: str | None, clocks: dict | None = None) -> str:
    """A node's clock for a table cell: the clock, or each clock's time when they mix."""
    if clock != "mixed":
        return clock or ""
    return " + ".join(f"{c} {fmt_time(ps)}" for c, ps in (clocks or {}).items())


def bucket_label(name: str) -> str:
    """How every table marks a bucket (time outside any layer): `[loss]`."""
    return f"[{name}]"


def visible_phases(nodes) -> list[str]:
    """The phases with time in any of the nodes, in PHASES order (all-zero phases are noise)."""
    nodes = list(nodes)
    return [p for p in PHASES if any(n["phases"].get(p) for n in nodes)]


def node_figures(n: dict, phases: list[str]) -> dict:
    """The figures of one layer or bucket as every face shows them (CLI, summary, notebook)."""
    return {
        "name": bucket_label(n["name"]) if n.get("bucket") else n["name"],
        "class": n.get("class") or "",
        "ops": str(n["op_count"]),
        "total": fmt_time(n["total_ps"]),
        # The per-clock split of a mixed node is in its device lanes, each on its own clock.
        "clock": n.get("clock") or "",
        "self": fmt_time(n["self_ps"]),
        "share": fmt_share(n["share"]),
        "phases": {p: fmt_time(n["phases"][p]) if n["phases"].get(p) else "" for p in phases},
        "devices": device_split(n),
        "fallback": f"{n['fallback_count']} ops" if n["fallback_count"] else "",
        "fallback_time": fmt_time(n["fallback_ps"]) if n.get("fallback_ps") else "",
    }


def layer_rows(data: dict) -> tuple[list[str], list[tuple[int, dict, dict]]]:
    """(visible phases, [(depth, node, figures)]) of a layers payload: layers, then buckets."""
    nodes = [(d, n) for d, n in _walk(data["layers"])] + [(0, b) for b in data["buckets"]]
    phases = visible_phases(n for _, n in nodes)
    return phases, [(d, n, node_figures(n, phases)) for d, n in nodes]


def _spread(b: dict, what: str) -> str:
    med = b.get(f"{what}_ps")
    if med is None:
        return ""
    lo, hi = b.get(f"{what}_p10_ps"), b.get(f"{what}_p90_ps")
    rng = f" ({fmt_time(lo)}–{fmt_time(hi)})" if lo is not None and hi is not None else ""
    return f"{b.get('device', '?')} {fmt_time(med)}{rng}"


def _bench_cells(bench: list[dict] | None) -> list[str]:
    """Forward and backward cells of the layer benchmark: median (p10–p90) per call, per device."""
    entries = sorted(bench or [], key=lambda b: b.get("device", ""))
    return [
        "  ".join(c for c in (_spread(b, "forward") for b in entries) if c),
        "  ".join(c for c in (_spread(b, "backward") for b in entries) if c),
    ]


def bench_overheads(nodes) -> str:
    """The empty-call overhead each device's benchmark subtracted, one figure per device."""
    seen: dict[str, list[int]] = {}
    for n in nodes:
        for b in n.get("benchmark") or []:
            if b.get("call_overhead_ps") is not None:
                seen.setdefault(b.get("device", "?"), []).append(b["call_overhead_ps"])
    return ", ".join(f"{d} {fmt_time(sorted(v)[len(v) // 2])}" for d, v in sorted(seen.items()))


# What each attribution source read, beside its name (the JSON keeps the bare name).
_SOURCE_WORDS = {
    "manifest": " (exact: the MetalProfileCallback manifest)",
    "trace_graph": " (op names + the step graph in the run's event file)",
    "trace_names": " (op names only)",
}


def _accuracy(acc: dict | None) -> str:
    """The measured accuracy of the payload's attribution source, min and mean (or "")."""
    if not acc:
        return ""
    return (
        f"attribution measured on {acc['models']} models"
        + (f" ({acc['recorded_with']})" if acc.get("recorded_with") else "")
        + ": right layer for "
        f"{acc['layer_time_mean']:.1%} of op time (worst model {acc['layer_time_min']:.1%}), "
        f"{acc['layer_op_mean']:.1%} of ops (worst {acc['layer_op_min']:.1%})"
    )


def _clock_split(clocks: dict | None) -> str:
    return ", ".join(f"{c} {fmt_time(ps)}" for c, ps in (clocks or {}).items()) or "no ops"


def _phase_col(p: str) -> Col:
    # Forward and backward answer "where did the step go" for layers; the other phases
    # mostly belong to one bucket each, whose row already says so.
    return Col(p, right=True, drop=3 if p in ("forward", "backward") else EXTRA)


def layers_table(data: dict, width: int | None = None) -> str:
    """The per-layer tree as a table fitted to width (None: full), buckets after, with notes."""
    phases, nodes = layer_rows(data)
    cols = [
        Col("layer", min=18),
        Col("class", drop=EXTRA + 2),
        Col("ops", right=True, drop=EXTRA),
        Col("total", right=True),
        Col("clock"),
        Col("self", right=True, drop=EXTRA + 1),
        Col("share", right=True),
        *[_phase_col(p) for p in phases],
        Col("devices", min=13, wrap=" + ", drop=2),
        Col("fallback", right=True, drop=1),
    ]
    rows = []
    for depth, _, f in nodes:
        rows.append(
            ["  " * depth + f["name"], f["class"], f["ops"], f["total"], f["clock"], f["self"]]
            + [f["share"]]
            + [f["phases"][p] for p in phases]
            + [f["devices"], f["fallback"]]
        )
    benched = [n for _, n, _ in nodes if n.get("benchmark")]
    if benched:
        # Its own column group: measured in isolation, per call, overhead subtracted;
        # the columns before it are profile totals over the selected steps.
        cols += [
            Col("| benchmark per call: forward", drop=4),
            Col("backward (median, p10–p90)", drop=4),
        ]
        for row, (_, n, _) in zip(rows, nodes, strict=True):
            row += _bench_cells(n.get("benchmark")) if not n.get("bucket") else ["", ""]
    table, hidden = render(cols, rows, width)
    step = data["step"]
    what = {"all": "all profiled steps (totals)", "avg": "mean per step"}.get(step, f"step {step}")
    out = wrap_fields(
        [
            f"session {data['session']}",
            f"host {data['host']}",
            what,
            f"steps {','.join(map(str, data['steps'])) or '-'}",
        ],
        width,
    )
    out += wrap_fields(
        [
            f"op time {fmt_time(data['total_ps'])} ({_clock_split(data.get('clocks'))})",
            f"step time (wall) {fmt_time(data['step_time_ps'])}",
            f"attribution: {data['attribution_source']}"
            + _SOURCE_WORDS.get(data["attribution_source"], ""),
            f"devices: {', '.join(data['devices']) or 'CPU'}",
        ],
        width,
    )
    out += wrap_fields([_accuracy(data.get("attribution_accuracy"))], width)
    # Each device timeline apart (multi-GPU runs): its busy time, never summed across devices.
    out += wrap_fields(
        [
            f"{t['device']} busy {fmt_time(t['busy_ps'])} "
            f"({t['step_share'] * 100:.1f}% of step, device clock)"
            for t in data.get("device_timelines") or []
        ],
        width,
    )
    out += ["", table] + hidden_note(hidden, width) + [""]
    if any(HOST_SIDE_MARK in f["devices"] for _, _, f in nodes):
        out += wrap(HOST_SIDE_LEGEND, width, "      ", "note: ")
    out += wrap(data["time_note"], width, "      ", "note: ")
    if benched:
        out += wrap(
            "benchmark columns are the callback's layer benchmark: median (p10–p90) per call of "
            "each layer alone, synchronised wall time with the empty-call overhead subtracted "
            f"({bench_overheads(benched)}); the other columns are profile op time.",
            width,
            "      ",
            "note: ",
        )
    out += fallback_lines(data, width)
    for w in data["warnings"]:
        out += wrap(w, width, "         ", "warning: ")
    return "\n".join(out)


def fallback_groups(data: dict) -> list[dict]:
    """The payload's measured fallbacks per layer (`fallback_layers`) as text: where, time,
    and each reason once, naming its op types with their count and time."""
    out = []
    for g in data.get("fallback_layers") or []:
        where = "/".join(g["path"]) if g["path"] else bucket_label(g["bucket"] or "?")
        types = {t["type"]: t for t in g["op_types"]}
        reasons = []
        for r in g["reasons"]:
            named = ", ".join(
                f"{t} (x{types[t]['count']:g}, {fmt_time(types[t]['self_ps'])})"
                for t in r["op_types"]
            )
            first = r["op_types"][0]
            text = r["reason"] or r["reason_code"]
            text = text.replace(first, named, 1) if first in text else f"{text}: {named}"
            reasons.append(f"{text} (source: {r['device_source']})")
        out.append(
            {"where": where, "time_ps": g["self_ps"], "count": g["count"], "reasons": reasons}
        )
    return out


def fallback_lines(data: dict, width: int | None) -> list[str]:
    """The measured CPU fallbacks, one block per layer with its time and grouped reasons."""
    groups = fallback_groups(data)
    if not groups:
        return []
    out = ["", "CPU fallbacks (measured), by layer:"]
    for g in groups:
        out += wrap(f"{g['where']}: {fmt_time(g['time_ps'])} on the CPU", width, "    ", "  ")
        for reason in g["reasons"]:
            out += wrap(reason, width, "      ", "    - ")
    return out


def ops_table(data: dict, limit: int | None = None, width: int | None = None) -> str:
    """Per-op rows as a table fitted to width (None: full), biggest first."""
    cols = [
        # Op names and layer paths end in what identifies them: keep more of the end.
        Col("op", min=24, head=0.25),
        Col("type", min=14),
        Col("layer", min=12, head=0.25),
        Col("phase", drop=3),
        Col("device", drop=2),
        Col("source", drop=4),
        Col("count", right=True, drop=EXTRA),
        Col("time", right=True),
        Col("clock"),
    ]
    rows = []
    for r in data["ops"][: limit or None]:
        rows.append(
            [
                r["name"],
                r["type"],
                "/".join(r["layer"]) if r["layer"] else bucket_label(r["bucket"] or "?"),
                r["phase"],
                r["device_id"],
                r["device_source"],
                f"{r['count']:g}",
                fmt_time(r["time_ps"]),
                r["clock"],
            ]
        )
    table, hidden = render(cols, rows, width)
    more = len(data["ops"]) - len(rows)
    out = [table] + hidden_note(hidden, width)
    if more > 0:
        out += wrap(f"... {more} more ops (use --limit 0 or --format json)", width)
    out += wrap(
        "time: the op's time as the layer breakdown counts it, on its clock (device: device "
        "timeline; host_side: GPU dispatch, no device timeline; host: CPU compute)",
        width,
        "      ",
    )
    return "\n".join(out)
