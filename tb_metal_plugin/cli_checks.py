"""Terminal text for `tb-metal metal-check` and `tb-metal doctor` (the JSON is the same data)."""

from __future__ import annotations

import textwrap

from . import formatting, remedies

_MARK = {"ok": "ok", "warning": "WARN", "broken": "BROKEN", "info": "-", "not_applicable": "n/a"}


def _verdict_label(group: dict) -> str:
    minor = group.get("minor") or []
    if minor and group["verdict"] != "minor_fallback":
        return f"{group['verdict']} (+minor CPU)"
    return group["verdict"]


def readiness_rows(data: dict) -> tuple[list[str], list[list[str]], list[list]]:
    """The per-layer table of a readiness payload: headers, text rows and raw (ps) rows."""
    # Op types that run on the CPU whatever the plugin has (py_function, tf.data), per layer.
    by_nature: dict[tuple, set[str]] = {}
    for op in data["ops"]:
        if op["verdict"] == "cpu_only_by_nature":
            by_nature.setdefault(tuple(op["layer"] or ()), set()).add(op["type"])
    rows, raw = [], []
    for r in data["layers"]:
        types = r["fallback_op_types"] + sorted(by_nature.get(tuple(r["layer"] or ()), ()))
        where = "/".join(r["layer"]) if r["layer"] else "(no layer)"
        cpu_ps = r["fallback_ps"] + r["verdicts"].get("cpu_only_by_nature", 0)
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


def readiness_text(data: dict, headers: list[str], rows: list[list[str]]) -> str:
    """The headline, the layer table, what to do per op type, and disagreements."""
    total = data["total_ps"] or 1
    cpu_only = data["cpu_only_ps"]
    th = data["thresholds"]
    lines = [
        f"PREDICTION for tensorflow-metal {data['metal_version']}: "
        f"{formatting.fmt_share(data['fallback_share'])} of op time would fall back to the CPU "
        f"({formatting.fmt_time(data['fallback_ps'])} of {formatting.fmt_time(data['total_ps'])})"
        f"; {formatting.fmt_share(cpu_only / total)} runs on the CPU by nature "
        f"(py_function, tf.data): {formatting.fmt_time(cpu_only)}",
    ]
    doc = data.get("environment_doctor")
    if doc and doc["status"] in ("broken", "warning"):
        lines.append(f"RECORDED ENVIRONMENT: {doc['summary']}")
    lines.append(formatting.text_table(headers, rows, {2, 3, 4, 5}))
    lines.append(
        f"(minor: a layer's CPU time under {formatting.fmt_time(th['min_ps'])} or "
        f"{formatting.fmt_share(th['min_share'])} of the layer; --minor-us / --minor-share)"
    )
    if data.get("remedies"):
        lines.append("")
        lines.append("WHAT TO DO (per op type that would run on the CPU):")
        for r in data["remedies"]:
            lines.extend(remedy_lines(r))
    for d in data["disagreements"] or []:
        lines.append(f"measured differs: {d['name']} ({d['type']}): {d['reason']}")
    return "\n".join(lines)


def remedy_lines(r: dict, indent: str = "  ") -> list[str]:
    """One remedy as wrapped text lines: op types, advice, status on Metal and sources."""
    head = f"{indent}- {' '.join(r.get('op_types', []))}: {r['title']}".rstrip()
    body = textwrap.wrap(r["advice"], 96, initial_indent=indent + "    ",
                         subsequent_indent=indent + "    ")  # fmt: skip
    srcs = "; ".join(s.get("url") or s["title"] for s in r["sources"])
    return [head, *body, f"{indent}    [{r['on_metal']}] sources: {srcs}"]


def doctor_text(v: dict) -> str:
    """The doctor's verdict on one environment as a check table and the fix."""
    env = v["environment"]
    lines = [
        v["summary"],
        "",
        formatting.text_table(
            ["check", "status", "found", "message"],
            [
                [c["check"], _MARK[c["status"]], _found(c["found"]), c["message"]]
                for c in v["checks"]
            ],
            set(),
        ),  # fmt: skip
    ]
    for c in v["checks"]:
        if c.get("detail"):
            lines += ["", f"{c['check']}:"] + textwrap.wrap(c["detail"], 96, initial_indent="  ",
                                                            subsequent_indent="  ")  # fmt: skip
    fixes = [c["fix"] for c in v["checks"] if c["fix"] and c["status"] in ("broken", "warning")]
    if fixes:
        lines += ["", "FIX:"] + [f"  {f}" for f in dict.fromkeys(fixes)]
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


def doctor_logdir_text(rows: list[dict]) -> str:
    """One block per recorded run: its environment and the doctor's verdict on it."""
    if not rows:
        return "no profile sessions found"
    out = []
    for r in rows:
        out.append(f"== {r['session']} ({r['host']})")
        if r["verdict"] is None:
            out.append(f"   {r['note']}")
            continue
        env = r["verdict"]["environment"]
        out.append(
            "   recorded: "
            + ", ".join(f"{k} {env[k]}" for k in env if env[k] is not None)
            + f"; GPU visible: {_found(r['verdict']['gpu_visible'])}"
        )
        out.append("   " + r["verdict"]["summary"])
        for c in r["verdict"]["checks"]:
            if c["status"] in ("broken", "warning") and c["fix"]:
                out.append(f"   fix: {c['fix']}")
    return "\n".join(out)


def remedy_summary(op_type: str) -> str:
    """One line of advice for an op type (used by the fallback listings)."""
    return remedies.summary(remedies.remedy_for(op_type))
