"""Measured CPU fallbacks one row per layer (or bucket): op types by time, reasons said once.

`breakdown.fallbacks` lists them per layer and op type; every face shows them per layer, so
the grouping is done here once and shipped in the layers payload (`fallback_layers`).
"""

from __future__ import annotations

_MARK = "\u0000"


def reason_template(op_type: str, reason: str) -> str:
    """The sentence with its op type taken out, so sentences about several types match."""
    return reason.replace(op_type, _MARK) if op_type and op_type in reason else reason


def reason_text(template: str, op_types: list[str]) -> str:
    """A template said once for all the op types it concerns ("no kernel for A, B")."""
    return template.replace(_MARK, ", ".join(op_types))


def fallback_layers(fallbacks: list[dict]) -> list[dict]:
    """Group `breakdown.fallbacks` rows by layer or bucket, most CPU time first."""
    groups: dict[tuple, dict] = {}
    for f in fallbacks:
        key = ("L", *f["path"]) if f["path"] else ("B", f["bucket"] or "")
        g = groups.get(key)
        if g is None:
            g = groups[key] = {
                "path": f["path"],
                "bucket": None if f["path"] else f["bucket"],
                "self_ps": 0,
                "count": 0,
                "clocks": set(),
                # Each row carries its layer's whole copy time: counted once here.
                "copy_ps": f["copy_ps"],
                "types": {},
                "reasons": {},
                "remedies": {},
            }
        g["self_ps"] += f["self_ps"]
        g["count"] += f["count"]
        g["clocks"].add(f["clock"])
        t = g["types"].setdefault(f["op_type"], {"type": f["op_type"], "count": 0, "self_ps": 0})
        t["count"] += f["count"]
        t["self_ps"] += f["self_ps"]
        rkey = (
            f["reason_code"],
            f["device_source"],
            reason_template(f["op_type"], f["reason"] or ""),
        )
        r = g["reasons"].setdefault(
            rkey,
            {
                "reason_code": f["reason_code"],
                "device_source": f["device_source"],
                "reason": f["reason"],
                "op_types": [],
            },
        )
        r["op_types"].append(f["op_type"])
        if f.get("remedy"):
            g["remedies"].setdefault(f["remedy"]["id"], (f["self_ps"], f["remedy"]))
    return sorted(
        (_finish(g) for g in groups.values()),
        key=lambda g: (-g["self_ps"], g["path"] or [], g["bucket"] or ""),
    )


def _finish(g: dict) -> dict:
    types = sorted(g["types"].values(), key=lambda t: (-t["self_ps"], t["type"]))
    rank = {t["type"]: i for i, t in enumerate(types)}
    reasons = []
    for (_, _, template), r in g["reasons"].items():
        r["op_types"] = sorted(set(r["op_types"]), key=rank.__getitem__)
        r["text"] = reason_text(template, r["op_types"])
        reasons.append(r)
    reasons.sort(key=lambda r: (rank[r["op_types"][0]], r["reason_code"], r["device_source"]))
    clocks = g["clocks"]
    return {
        "path": g["path"],
        "bucket": g["bucket"],
        "self_ps": g["self_ps"],
        "clock": next(iter(clocks)) if len(clocks) == 1 else "mixed",
        "count": g["count"],
        "copy_ps": g["copy_ps"],
        "op_types": types,
        "reasons": reasons,
        "remedies": [rem for _, rem in sorted(g["remedies"].values(), key=lambda x: -x[0])],
    }
