"""The all-hosts view as text: one row per layer (and bucket), summed over the hosts."""

from __future__ import annotations

from .formatting import fmt_time, text_table
from .formatting_csv import csv_text

HEADERS = ["Layer", "Sum", "Mean/host", "Slowest host", "Its time"]


def _name(row: dict) -> str:
    return ("[bucket] " if row["bucket"] else "") + "/".join(row["path"])


def hosts_table(data: dict) -> str:
    """Layers over hosts: sum, mean per host and the slowest host, most time first."""
    rows = [
        [
            _name(r),
            fmt_time(r["sum_ps"]),
            fmt_time(r["mean_ps"]),
            r["slowest_host"] or "-",
            fmt_time(r["max_ps"]),
        ]
        for r in data["layers"]
    ]
    total = data["total"]
    head = [
        f"Session {data['session']}: {len(data['hosts'])} hosts ({', '.join(data['hosts'])}), "
        f"step {data['step']}; clock {data['total']['clock']} (per op: see each host).",
        f"All hosts: {fmt_time(total['sum_ps'])}; mean per host {fmt_time(total['mean_ps'])}; "
        f"slowest {total['slowest_host']} ({fmt_time(total['max_ps'])}).",
    ]
    for e in data["host_errors"]:
        head.append(f"not loaded: {e['host']}: {e['message']}")
    return "\n".join([*head, "", text_table(HEADERS, rows, {1, 2, 4})])


def hosts_csv(data: dict) -> str:
    """One CSV row per layer and host figure (picoseconds), then one per host of each."""
    hosts = data["hosts"]
    headers = ["layer", "bucket", "clock", "sum_ps", "mean_ps", "max_ps", "slowest_host", *hosts]
    rows = [
        [
            "/".join(r["path"]),
            r["bucket"],
            r["clock"],
            r["sum_ps"],
            r["mean_ps"],
            r["max_ps"],
            r["slowest_host"],
            *[r["per_host"].get(h, 0) for h in hosts],
        ]
        for r in data["layers"]
    ]
    return csv_text(headers, rows)
