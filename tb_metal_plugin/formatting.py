"""Render breakdowns as a terminal table, JSON or CSV (the CLI's output formats)."""

from __future__ import annotations

import csv
import io
import json

from .attribution import PHASES

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


def to_json(data: dict, pretty: bool = False) -> str:
    """JSON in the key order as built: compact (the C encoder), or indented for people."""
    if pretty:
        return json.dumps(data, indent=2)  # indent forces the pure-Python encoder: slower
    return json.dumps(data, separators=(",", ":"))


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


def _node_cells(label: str, n: dict) -> list[str]:
    """One table row of a layer or bucket node."""
    return [
        label,
        str(n["op_count"]),
        fmt_time(n["total_ps"]),
        fmt_time(n["self_ps"]),
        fmt_share(n["share"]),
        fmt_time(n["phases"].get("forward", 0)),
        fmt_time(n["phases"].get("backward", 0)),
        _device_split(n),
        f"{n['fallback_count']} ops" if n["fallback_count"] else "",
    ]


def _bench(bench: list[dict] | None) -> str:
    if not bench:
        return ""
    parts = []
    for b in sorted(bench, key=lambda b: b.get("device", "")):
        total = (b.get("forward_ps") or 0) + (b.get("backward_ps") or 0)
        parts.append(f"{b.get('device', '?')} {fmt_time(total)}")
    return "  ".join(parts)


def layers_table(data: dict) -> str:
    """The per-layer tree as an indented table, buckets after, with source notes."""
    headers = [
        "layer",
        "ops",
        "total",
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
        # Measured in isolation by the callback's layer benchmark: real device time,
        # the only honest per-layer GPU figure on Metal.
        headers.append("benchmark fwd+bwd (measured)")
        n_layers = len(rows) - len(data["buckets"])
        for i, (_, n) in enumerate(_walk(data["layers"])):
            rows[i].append(_bench(n.get("benchmark")))
        for row in rows[n_layers:]:
            row.append("")
    step = data["step"]
    what = {"all": "all profiled steps (totals)", "avg": "mean per step"}.get(step, f"step {step}")
    out = [
        f"session {data['session']}  host {data['host']}  {what}  "
        f"steps {','.join(map(str, data['steps'])) or '-'}",
        f"op time {fmt_time(data['total_ps'])}  step time {fmt_time(data['step_time_ps'])}  "
        f"attribution: {data['attribution_source']}  "
        f"devices: {', '.join(data['devices']) or 'CPU'}",
        "",
        text_table(headers, rows, right={1, 2, 3, 4, 5, 6}),
        "",
        f"note: {data['time_note']}",
    ]
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
    headers = ["op", "type", "layer", "phase", "device", "source", "count", "self", "total"]
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
                fmt_time(r["self_ps"]),
                fmt_time(r["total_ps"]),
            ]
        )
    more = len(data["ops"]) - len(rows)
    tail = [f"... {more} more ops (use --limit 0 or --format json)"] if more > 0 else []
    return "\n".join([text_table(headers, rows, right={6, 7, 8})] + tail)


def csv_text(headers: list[str], rows: list[list]) -> str:
    """Rows as CSV text with a header line."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue()


def layers_csv(data: dict) -> str:
    """One CSV row per layer node (path joined by '/') and per bucket."""
    headers = ["path", "kind", "class", "op_count", "total_ps", "self_ps", "share", "step_share"]
    headers += [f"{p}_ps" for p in PHASES] + ["gpu_ps", "cpu_ps", "fallback_count", "copy_ps"]
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
                n["self_ps"],
                f"{n['share']:.6f}",
                f"{n['step_share']:.6f}",
            ]
            + [n["phases"].get(p, 0) for p in PHASES]
            + [
                n["devices"].get("GPU", 0),
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
        "self_ps",
        "total_ps",
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
            r["self_ps"],
            r["total_ps"],
            "" if r["device_ps"] is None else r["device_ps"],
            r["fallback"]["reason_code"] if r["fallback"] else "",
        ]
        for r in data["ops"]
    ]
    return csv_text(headers, rows)
