"""Terminal text for `tb-metal metal-check` and `tb-metal doctor` (the JSON is the same data)."""

from __future__ import annotations

from . import formatting, remedies
from .table_fit import Col, hidden_note, render, wrap

_MARK = {"ok": "ok", "warning": "WARN", "broken": "BROKEN", "info": "-", "not_applicable": "n/a"}


def _verdict_label(group: dict) -> str:
    minor = group.get("minor") or []
    if minor and group["verdict"] != "minor_fallback":
        return f"{group['verdict']} (+minor CPU)"
    return group["verdict"]


def readiness_rows(data: dict) -> tuple[list[str], list[list[str]], list[list]]:
    """The per-layer table of a readiness payload: headers, text rows and raw (ps) rows."""
    rows, raw = [], []
    for r in data["layers"]:
        # Fallbacks by time, then the op types on the CPU whatever the plugin has, by name.
        types = r["fallback_op_types"] + sorted(r["cpu_only_op_types"])
        where = "/".join(r["layer"]) if r["layer"] else "(no layer)"
        cpu_ps = r["cpu_ps"]
        rows.append(
            [
                where,
                _verdict_label(r),
                formatting.fmt_time(r["fallback_ps"]),
                formatting.fmt_share(r["fallback_share"]),
                formatting.fmt_time(cpu_ps),
                formatting.fmt_time(r["total_ps"]),
                " ".join(types),
            ]
        )
        raw.append(
            [where, r["verdict"], r["fallback_ps"], r["fallback_share"], cpu_ps, r["total_ps"]]
            + [" ".join(types)]
        )
    headers = ["layer", "predicted", "fallback", "of layer", "on CPU", "time", "CPU op types"]
    return headers, rows, raw


def readiness_text(
    data: dict, headers: list[str], rows: list[list[str]], width: int | None = None
) -> str:
    """The headline, the layer table, what to do per op type, and disagreements (fit to width)."""
    total = data["total_ps"] or 1
    cpu_only = data["cpu_only_ps"]
    th = data["thresholds"]
    lines = wrap(
        f"PREDICTION for tensorflow-metal {data['metal_version']}: "
        f"{formatting.fmt_share(data['fallback_share'])} of op time would fall back to the CPU "
        f"({formatting.fmt_time(data['fallback_ps'])} of {formatting.fmt_time(data['total_ps'])})"
        f"; {formatting.fmt_share(cpu_only / total)} runs on the CPU by nature "
        f"(py_function, tf.data): {formatting.fmt_time(cpu_only)}",
        width,
        "  ",
    )
    doc = data.get("environment_doctor")
    if doc and doc["status"] in ("broken", "warning"):
        lines += wrap(f"RECORDED ENVIRONMENT: {doc['summary']}", width, "  ")
    cols = [Col(h, right=i in {2, 3, 4, 5}) for i, h in enumerate(headers)]
    cols[0].min, cols[0].head = 16, 0.25  # layer paths end in the layer
    # CPU op types: wrapped at spaces, an op type cut only when one alone is wider than 28.
    longest = max((len(t) for r in rows for t in r[-1].split()), default=12)
    cols[-1].min, cols[-1].wrap = min(max(longest, 12), 28), " "
    cols[1].min, cols[1].wrap = 12, " "  # "metal_gpu (+minor CPU)" on two lines
    cols[3].drop, cols[4].drop, cols[5].drop = 4, 3, 2  # of layer, on CPU, then time
    table, hidden = render(cols, rows, width)
    lines += [table] + hidden_note(hidden, width)
    lines += wrap(
        f"(minor: a layer's CPU time under {formatting.fmt_time(th['min_ps'])} or "
        f"{formatting.fmt_share(th['min_share'])} of the layer; --minor-us / --minor-share)",
        width,
        " ",
    )
    if data.get("remedies"):
        lines.append("")
        lines += wrap("WHAT TO DO (per op type that would run on the CPU):", width, "  ")
        for r in data["remedies"]:
            lines.extend(remedy_lines(r, width=width))
    for d in data["disagreements"] or []:
        lines += wrap(f"measured differs: {d['name']} ({d['type']}): {d['reason']}", width, "  ")
    return "\n".join(lines)


def remedy_lines(r: dict, indent: str = "  ", width: int | None = 100) -> list[str]:
    """One remedy as wrapped text lines: op types, advice, status on Metal and sources."""
    head = wrap(f"- {' '.join(r.get('op_types', []))}: {r['title']}".rstrip(), width,
                indent + "  ", indent)  # fmt: skip
    body = wrap(r["advice"], width, indent + "    ", indent + "    ")
    srcs = "; ".join(s.get("url") or s["title"] for s in r["sources"])
    tail = wrap(f"[{r['on_metal']}] sources: {srcs}", width, indent + "      ", indent + "    ")
    return [*head, *body, *tail]


def doctor_text(v: dict, width: int | None = None) -> str:
    """The doctor's verdict on one environment as a check table and the fix (fit to width)."""
    env = v["environment"]
    cols = [Col("check"), Col("status"), Col("found", min=12, wrap=" + "),
            Col("message", min=20, wrap=" ")]  # fmt: skip
    table, _ = render(
        cols,
        [[c["check"], _MARK[c["status"]], _found(c["found"]), c["message"]] for c in v["checks"]],
        width,
    )
    lines = [*wrap(v["summary"], width, "  "), "", table]
    for c in v["checks"]:
        if c.get("detail"):
            lines += ["", f"{c['check']}:"] + wrap(c["detail"], width or 100, "  ", "  ")
    fixes = [c["fix"] for c in v["checks"] if c["fix"] and c["status"] in ("broken", "warning")]
    if fixes:
        lines += ["", "FIX:"]
        for f in dict.fromkeys(fixes):
            lines += wrap(f, width, "    ", "  ")
    if str(env.get("os") or "").lower() == "darwin":
        rec = v["recommended"]
        lines += [
            "",
            f"Known-good on Apple silicon: tensorflow-metal {rec['tensorflow_metal']}, "
            f"tensorflow{rec['tensorflow']}, Python{rec['python']}, keras{rec['keras']}:",
            f"  {v['recommended_install']}",
        ]
    sources = {s["url"] or s["title"] for c in v["checks"] for s in c["sources"]}
    if sources:
        lines += ["", "Sources:"] + [f"  {s}" for s in sorted(sources)]
    lines.append(f"(compatibility table updated {v['table_updated']})")
    return "\n".join(lines)


def _found(value) -> str:
    if isinstance(value, dict):
        return " + ".join(f"{k} {val}" for k, val in value.items())
    return "-" if value is None else str(value)


def doctor_logdir_text(rows: list[dict], width: int | None = None) -> str:
    """One block per recorded run: its environment and the doctor's verdict on it."""
    if not rows:
        return "no profile sessions found"
    out = []
    for r in rows:
        out += wrap(f"== {r['session']} ({r['host']})", width, "   ")
        if r["verdict"] is None:
            out += wrap(r["note"], width, "   ", "   ")
            continue
        env = r["verdict"]["environment"]
        out += wrap(
            "recorded: "
            + ", ".join(f"{k} {env[k]}" for k in env if env[k] is not None)
            + f"; GPU visible: {_found(r['verdict']['gpu_visible'])}",
            width,
            "     ",
            "   ",
        )
        out += wrap(r["verdict"]["summary"], width, "     ", "   ")
        for c in r["verdict"]["checks"]:
            if c["status"] in ("broken", "warning") and c["fix"]:
                out += wrap(f"fix: {c['fix']}", width, "        ", "   ")
    return "\n".join(out)


def remedy_summary(op_type: str) -> str:
    """One line of advice for an op type (used by the fallback listings)."""
    return remedies.summary(remedies.remedy_for(op_type))
