"""Render breakdowns as a terminal table, JSON or CSV (the CLI's output formats)."""

from __future__ import annotations

import csv
import io
import json

from .attribution import PHASES
from .breakdown import CLOCKS, lane

FORMATS = ("table", "json", "csv")


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


def to_json(data: dict) -> str:
    """Pretty JSON, stable key order as built."""
    return json.dumps(data, indent=2)


def text_table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    """Aligned columns with a header rule; columns in `right` are right-aligned."""
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


def _device_split(n: dict) -> str:
    devs = n["devices"]
    total = sum(devs.values()) or 1
    return " ".join(f"{d} {100 * v / total:.0f}%" for d, v in sorted(devs.items()) if v)


def clock_label(clock: str | None, clocks: dict | None = None) -> str:
    """A node's clock for a table cell: the clock, or each clock's time when they mix."""
    if clock != "mixed":
        return clock or ""
    return " + ".join(f"{c} {fmt_time(ps)}" for c, ps in (clocks or {}).items())


def _node_cells(label: str, n: dict) -> list[str]:
    """One table row of a layer or bucket node."""
    return [
        label,
        str(n["op_count"]),
        fmt_time(n["total_ps"]),
        clock_label(n.get("clock"), n.get("clocks")),
        fmt_time(n["self_ps"]),
        fmt_share(n["share"]),
        fmt_time(n["phases"].get("forward", 0)),
        fmt_time(n["phases"].get("backward", 0)),
        _device_split(n),
        f"{n['fallback_count']} ops" if n["fallback_count"] else "",
    ]


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


def _clock_split(clocks: dict | None) -> str:
    return ", ".join(f"{c} {fmt_time(ps)}" for c, ps in (clocks or {}).items()) or "no ops"


def layers_table(data: dict) -> str:
    """The per-layer tree as an indented table, buckets after, with source notes."""
    headers = [
        "layer",
        "ops",
        "total",
        "clock",
        "self",
        "share",
        "forward",
        "backward",
        "devices",
        "fallback",
    ]
    rows = [
        _node_cells("  " * depth + n["name"] + (f" ({n['class']})" if n.get("class") else ""), n)
        for depth, n in _walk(data["layers"])
    ]
    rows += [_node_cells(f"[{b['name']}]", b) for b in data["buckets"]]
    benched = [n for _, n in _walk(data["layers"]) if n.get("benchmark")]
    if benched:
        # Its own column group: measured in isolation, per call, overhead subtracted;
        # the columns before it are profile totals over the selected steps.
        headers += ["| benchmark per call: forward", "backward (median, p10–p90)"]
        n_layers = len(rows) - len(data["buckets"])
        for i, (_, n) in enumerate(_walk(data["layers"])):
            rows[i] += _bench_cells(n.get("benchmark"))
        for row in rows[n_layers:]:
            row += ["", ""]
    step = data["step"]
    what = {"all": "all profiled steps (totals)", "avg": "mean per step"}.get(step, f"step {step}")
    out = [
        f"session {data['session']}  host {data['host']}  {what}  "
        f"steps {','.join(map(str, data['steps'])) or '-'}",
        f"op time {fmt_time(data['total_ps'])} ({_clock_split(data.get('clocks'))})  "
        f"step time (wall) {fmt_time(data['step_time_ps'])}  "
        f"attribution: {data['attribution_source']}  "
        f"devices: {', '.join(data['devices']) or 'CPU'}",
        "",
        text_table(headers, rows, right={1, 2, 4, 5, 6, 7}),
        "",
        f"note: {data['time_note']}",
    ]
    if benched:
        out.append(
            "note: benchmark columns are the callback's layer benchmark: each layer alone, "
            "synchronised wall time per call with the empty-call overhead subtracted "
            f"({bench_overheads(benched)}); the other columns are profile op time."
        )
    if data["fallbacks"]:
        out += ["", "CPU fallbacks:"]
        for f in data["fallbacks"]:
            where = "/".join(f["path"]) if f["path"] else f"[{f['bucket']}]"
            out.append(
                f"  {where}: {f['op_type']} x{f['count']} {fmt_time(f['self_ps'])} — "
                f"{f['reason']} (source: {f['device_source']})"
            )
    out += [f"warning: {w}" for w in data["warnings"]]
    return "\n".join(out)


def ops_table(data: dict, limit: int | None = None) -> str:
    """Per-op rows as a table, biggest first."""
    headers = ["op", "type", "layer", "phase", "device", "source", "count", "time", "clock"]
    rows = []
    for r in data["ops"][: limit or None]:
        rows.append(
            [
                r["name"],
                r["type"],
                "/".join(r["layer"]) if r["layer"] else f"[{r['bucket']}]",
                r["phase"],
                r["device_id"],
                r["device_source"],
                str(r["count"]),
                fmt_time(r["time_ps"]),
                r["clock"],
            ]
        )
    more = len(data["ops"]) - len(rows)
    tail = [f"... {more} more ops (use --limit 0 or --format json)"] if more > 0 else []
    note = [
        "time: the op's time as the layer breakdown counts it, on its clock (device: device "
        "timeline; host_side: GPU dispatch, no device timeline; host: CPU compute)"
    ]
    return "\n".join([text_table(headers, rows, right={6, 7})] + tail + note)


def csv_text(headers: list[str], rows: list[list]) -> str:
    """Rows as CSV text with a header line."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue()


def layers_csv(data: dict) -> str:
    """One CSV row per layer node (path joined by '/') and per bucket."""
    headers = ["path", "kind", "class", "op_count", "total_ps", "clock", "self_ps", "share"]
    headers += ["step_share"] + [f"{p}_ps" for p in PHASES]
    headers += [f"{c}_clock_ps" for c in CLOCKS]
    headers += ["gpu_device_ps", "gpu_host_side_ps", "cpu_ps", "fallback_count", "copy_ps"]
    rows = []
    nodes = [(n, "layer") for _, n in _walk(data["layers"])]
    nodes += [(b, "bucket") for b in data["buckets"]]
    for n, kind in nodes:
        rows.append(
            [
                "/".join(n["path"]),
                kind,
                n.get("class") or "",
                n["op_count"],
                n["total_ps"],
                n.get("clock") or "",
                n["self_ps"],
                f"{n['share']:.6f}",
                f"{n['step_share']:.6f}",
            ]
            + [n["phases"].get(p, 0) for p in PHASES]
            + [n.get("clocks", {}).get(c, 0) for c in CLOCKS]
            + [
                n["devices"].get("GPU", 0),
                n["devices"].get(lane("GPU", "host_side"), 0),
                n["devices"].get("CPU", 0),
                n["fallback_count"],
                n["copy_ps"],
            ]
        )
    return csv_text(headers, rows)


def ops_csv(data: dict) -> str:
    """One CSV row per op."""
    headers = [
        "name",
        "type",
        "layer",
        "phase",
        "bucket",
        "device",
        "device_id",
        "device_source",
        "count",
        "time_ps",
        "clock",
        "self_ps",
        "total_ps",
        "host_clock",
        "device_ps",
        "fallback_reason",
    ]
    rows = [
        [
            r["name"],
            r["type"],
            "/".join(r["layer"]) if r["layer"] else "",
            r["phase"],
            r["bucket"] or "",
            r["device"],
            r["device_id"],
            r["device_source"],
            r["count"],
            r["time_ps"],
            r["clock"],
            r["self_ps"],
            r["total_ps"],
            r["host_clock"],
            "" if r["device_ps"] is None else r["device_ps"],
            r["fallback"]["reason_code"] if r["fallback"] else "",
        ]
        for r in data["ops"]
    ]
    return csv_text(headers, rows)
