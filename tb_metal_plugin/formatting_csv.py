"""Render breakdowns as CSV: one row per layer node, bucket or op (the CLI's csv format)."""

from __future__ import annotations

import csv
import io

from .attribution import PHASES
from .breakdown import CLOCKS, lane
from .formatting import walk


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
    nodes = [(n, "layer") for _, n in walk(data["layers"])]
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
