"""Size-aware readiness verdicts of groups of ops: layers, buckets and layer subtrees.

A group's verdict says where most of its time would run, not the worst of its ops: a 10 µs
metric op with no Metal kernel does not paint its bucket red. Each group carries its fallback
time and share; a parent sums its sublayers (it never just takes their worst label).
"""

from __future__ import annotations

from dataclasses import dataclass

from .fallback_layers import reason_template, reason_text

METAL_GPU = "metal_gpu"
CPU_FALLBACK = "cpu_fallback"
CPU_ONLY_BY_NATURE = "cpu_only_by_nature"
UNKNOWN = "unknown"
VERDICTS = (METAL_GPU, CPU_FALLBACK, CPU_ONLY_BY_NATURE, UNKNOWN)
# A group whose only CPU time is below the size thresholds: shown, never red.
MINOR_FALLBACK = "minor_fallback"
GROUP_VERDICT_ORDER = (CPU_FALLBACK, CPU_ONLY_BY_NATURE, MINOR_FALLBACK, UNKNOWN, METAL_GPU)
# The most severe op verdict of a group; fallback first because that is what users fix.
SEVERITY = {CPU_FALLBACK: 3, CPU_ONLY_BY_NATURE: 2, UNKNOWN: 1, METAL_GPU: 0}
# The verdicts whose "why" a group lists: the two that put time on the CPU.
CPU_VERDICTS = (CPU_FALLBACK, CPU_ONLY_BY_NATURE)


def worst_verdict(verdicts) -> str:
    """The most severe verdict of a group, whatever its size (metal_gpu only if all are)."""
    verdicts = list(verdicts)
    return max(verdicts, key=lambda v: SEVERITY[v]) if verdicts else UNKNOWN


@dataclass(frozen=True)
class Thresholds:
    """Below both, a group's CPU time is "minor": shown, never a red badge."""

    min_ps: int = 50 * 10**6  # 50 µs
    min_share: float = 0.01  # of the group's op time


DEFAULT_THRESHOLDS = Thresholds()


def _significant(ps: int, total: int, thresholds: Thresholds) -> bool:
    return ps > 0 and ps >= thresholds.min_ps and ps >= thresholds.min_share * total


def sized_verdict(verdict_ps: dict, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> tuple:
    """A group's verdict by the size of its CPU time, and its minor CPU time.

    CPU fallback (or CPU by nature) only when that time is at least `min_ps` and `min_share`
    of the group; smaller CPU time is listed as minor (`[{verdict, ps}]`). A group with no GPU
    time whose only CPU time is minor is `minor_fallback`.
    """
    total = sum(verdict_ps.values())
    cpu = [v for v in (CPU_FALLBACK, CPU_ONLY_BY_NATURE) if verdict_ps.get(v, 0) > 0]
    major = [v for v in cpu if _significant(verdict_ps[v], total, thresholds)]
    minor = [{"verdict": v, "ps": verdict_ps[v]} for v in cpu if v not in major]
    if major:
        return major[0], minor
    if verdict_ps.get(METAL_GPU, 0) > 0:
        return METAL_GPU, minor
    return (MINOR_FALLBACK if minor else UNKNOWN), minor


def new_agg() -> dict:
    """An empty accumulator of op time per verdict, fallback op type and remedy."""
    return {
        "verdicts": dict.fromkeys(VERDICTS, 0),
        "seen": set(),
        "fb": {},
        "nature": {},
        "remedies": {},
        # Per CPU verdict: (op type, reason) -> op time, in the order the ops came.
        "reasons": {v: {} for v in CPU_VERDICTS},
    }


def add(agg: dict, pred: dict, ps: int) -> None:
    """Count one predicted op of `ps` self time into a group."""
    agg["verdicts"][pred["verdict"]] += ps
    agg["seen"].add(pred["verdict"])
    for t in pred["fallback_op_types"]:
        agg["fb"][t] = agg["fb"].get(t, 0) + ps
    if pred["verdict"] == CPU_ONLY_BY_NATURE:
        t = pred["op_type"]
        agg["nature"][t] = agg["nature"].get(t, 0) + ps
    for rid in pred["remedy_ids"]:
        agg["remedies"][rid] = agg["remedies"].get(rid, 0) + ps
    reasons = agg["reasons"].get(pred["verdict"])
    if reasons is not None:
        key = (pred["op_type"], pred["reason"])
        reasons[key] = reasons.get(key, 0) + ps


def merge(into: dict, agg: dict) -> None:
    """Add one group's accumulator into another (a parent's subtree; its reasons are not
    listed, so they are not added up)."""
    for k, v in agg["verdicts"].items():
        into["verdicts"][k] += v
    into["seen"] |= agg["seen"]
    for key in ("fb", "nature", "remedies"):
        for t, ps in agg[key].items():
            into[key][t] = into[key].get(t, 0) + ps


def tree(layers: dict, thresholds: Thresholds) -> list[dict]:
    """Every layer path and its ancestors with the summed time of the whole subtree."""
    subtree: dict[tuple, dict] = {}
    for key, agg in layers.items():
        for n in range(1, len(key or ()) + 1):
            merge(subtree.setdefault(key[:n], new_agg()), agg)
    out = []
    for key, agg in subtree.items():
        own = layers.get(key)
        row = {"layer": list(key), **rollup(agg, thresholds)}
        row["own_fallback_ps"] = own["verdicts"][CPU_FALLBACK] if own else 0
        out.append(row)
    out.sort(key=lambda r: r["layer"])
    return out


def rollup(agg: dict, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> dict:
    """A group's row: time per verdict, fallback time and share, sized verdict, remedies."""
    v = agg["verdicts"]
    total = sum(v.values())
    verdict, minor = sized_verdict(v, thresholds)
    return {
        "verdicts": v,
        # Largest first: the op type costing the most time is the one to replace first.
        "fallback_op_types": sorted(agg["fb"], key=lambda t: (-agg["fb"][t], t)),
        "fallback_ps": v[CPU_FALLBACK],
        "fallback_share": v[CPU_FALLBACK] / total if total else 0.0,
        "cpu_only_ps": v[CPU_ONLY_BY_NATURE],
        # The op types that run on the CPU whatever the plugin has (py_function, tf.data).
        "cpu_only_op_types": sorted(agg["nature"], key=lambda t: (-agg["nature"][t], t)),
        # All predicted CPU time: fallbacks and CPU by nature.
        "cpu_ps": v[CPU_FALLBACK] + v[CPU_ONLY_BY_NATURE],
        "total_ps": total,
        "verdict": verdict,
        "worst_verdict": worst_verdict(agg["seen"]),
        "minor": minor,
        "remedy_ids": sorted(agg["remedies"], key=lambda r: (-agg["remedies"][r], r)),
    }


def said_once(pairs: list[tuple[str, str]]) -> list[str]:
    """Sentences that differ only in the op type they name, said once for all those types
    ("no Metal kernel for A, B: ..."), in the order of their first (op type, sentence)."""
    by_template: dict[str, list[str]] = {}
    for op_type, reason in pairs:
        types = by_template.setdefault(reason_template(op_type, reason), [])
        if op_type and op_type not in types:
            types.append(op_type)
    return [reason_text(template, types) for template, types in by_template.items()]


def grouped_reasons(agg: dict) -> dict[str, list[str]]:
    """Why a group's ops would run on the CPU, per CPU verdict: each sentence said once for
    the op types it names, the op time behind it largest first (ties: first seen)."""
    return {
        verdict: said_once(sorted(pairs, key=lambda k: -pairs[k]))
        for verdict, pairs in agg["reasons"].items()
    }
