"""The breakdown model: attributed op rows, and the per-layer tree with roll-ups and buckets.

Input is the events of one trace plus attribution and device resolution; output is plain
data (lists and dicts of ints, strings, floats) that the CLI, the JSON API and the
callback print as they are.
"""

from __future__ import annotations

from .attribution import BUCKETS, PHASES, Attribution
from .devices import Placement, fallback_remedy
from .events import SEND_RECV_TYPES, OpRecord, TraceEvents
from .oprows import iter_op_rows, op_rows  # noqa: F401  (importable from here)
from .selection import Selection

HOST_ONLY_NOTE = (
    "No device timeline in this trace (Metal traces have none): times of GPU-placed ops are "
    "host-side dispatch times, not GPU execution times. Use the tb-metal callback's layer "
    "benchmark for measured per-layer GPU time."
)
CPU_ONLY_NOTE = (
    "CPU time of each op on the host: this run had no GPU, so every op ran on the CPU "
    "(tb-metal metal-check predicts which would fall back on Metal)."
)
DEVICE_NOTE = (
    "GPU times come from the device timeline (kernel events linked to TF ops); CPU times are "
    "host self times of CPU ops."
)

# Every time carries one of these clocks. `device`: measured on a device timeline.
# `host_side`: a GPU-placed op with no device timeline (Metal): its host event measures
# encoding and dispatch, not GPU execution. `host`: a CPU op's host self time.
CLOCKS = ("device", "host_side", "host")
CLOCK_WORDS = {
    "device": "device time",
    "host_side": "GPU dispatch time",
    "host": "CPU compute time",
    "mixed": "a mix of clocks",
}


def op_clock(placement: Placement) -> str:
    """The clock of an op's time: device when a device timeline measured it, else host(-side)."""
    if placement.source == "device_plane":
        return "device"
    return "host" if placement.kind == "CPU" else "host_side"


def lane(kind: str, clock: str) -> str:
    """The key of a layer's per-device split: host-side GPU time never shares the GPU key."""
    return f"{kind} (host-side)" if clock == "host_side" else kind


def clock_of(clocks: dict[str, int]) -> str | None:
    """One clock name for a set of per-clock times: the clock, `mixed`, or None when empty."""
    used = [c for c, ps in clocks.items() if ps]
    if not used:
        return next(iter(clocks), None)
    return used[0] if len(used) == 1 else "mixed"


class AttributedOp:
    """One op record with its layer, phase and device settled."""

    # A plain slotted class, not a dataclass: a profile holds one per op (thousands).
    __slots__ = ("rec", "attribution", "placement")

    def __init__(self, rec: OpRecord, attribution: Attribution, placement: Placement):
        self.rec = rec
        self.attribution = attribution
        self.placement = placement

    def __repr__(self) -> str:
        return f"AttributedOp({self.rec.name!r}, {self.attribution!r}, {self.placement!r})"


def charge_copies(ops: list[AttributedOp], layer_of) -> list[AttributedOp]:
    """Charge each cross-device copy to the layer that made data cross devices.

    A copy op's stats name its producer (`from`) and consumer (`to`). The side placed off
    the run's main device (the one with the most op time) caused the crossing: a pinned
    or fallen-back layer. When both or neither are, the consumer is charged.
    """
    if not any(op.rec.type in SEND_RECV_TYPES for op in ops):
        return list(ops)  # no copy op: nothing to charge, no main device to find
    by_name = {op.rec.name: op for op in ops}
    time_on: dict[str, int] = {}
    for op in ops:
        time_on[op.placement.device] = time_on.get(op.placement.device, 0) + sum(op.rec.self_ps)
    main = max(time_on, key=lambda d: (time_on[d], str(d))) if time_on else None
    out = []
    for op in ops:
        stats = op.rec.stats
        # A copy the callback recorded already has its owner (the op whose tensor it
        # moves); the rule below is for copies known by name only.
        exact = op.attribution.source == "manifest_op"
        if not exact and op.rec.type in SEND_RECV_TYPES and isinstance(stats.get("to"), str):
            src, dst = by_name.get(str(stats.get("from"))), by_name.get(stats["to"])
            off_main = [x for x in (src, dst) if x is not None and x.placement.device != main]
            culprit = off_main[0] if len(off_main) == 1 else dst
            layer = culprit.attribution.layer if culprit is not None else layer_of(stats["to"])
            if layer:
                att = op.attribution
                op = AttributedOp(
                    op.rec, Attribution(tuple(layer), att.phase, None, att.source), op.placement
                )
        out.append(op)
    return out


def _node(path: tuple[str, ...], info: dict | None) -> dict:
    return {
        "name": path[-1],
        "path": list(path),
        "class": (info or {}).get("class"),
        "op_count": 0,
        "self_ps": 0,
        "total_ps": 0,
        "phases": {},
        "devices": {},
        "device_ids": {},
        "clocks": {},
        "clock": None,
        "share": 0.0,
        "step_share": 0.0,
        "fallback_count": 0,
        "fallback_ps": 0,
        "copy_ps": 0,
        "params": (info or {}).get("params"),
        "benchmark": None,
        "children": [],
    }


def _add(node: dict, row: dict, own: bool) -> None:
    t = row["time_ps"]
    node["total_ps"] += t
    if own:
        node["self_ps"] += t
    node["op_count"] += 1
    node["phases"][row["phase"]] = node["phases"].get(row["phase"], 0) + t
    key = lane(row["device"], row["clock"])
    node["devices"][key] = node["devices"].get(key, 0) + t
    node["clocks"][row["clock"]] = node["clocks"].get(row["clock"], 0) + t
    ids = node["device_ids"]
    for dev, ps in row["device_ids"].items():
        ids[dev] = ids.get(dev, 0) + ps
    if row["fallback"]:
        node["fallback_count"] += 1
        node["fallback_ps"] += t
    if row["is_copy"]:
        node["copy_ps"] += t


def layer_tree(
    rows: list[dict],
    step_time_ps: int,
    manifest_layers: dict[tuple[str, ...], dict] | None = None,
    benchmarks: dict[tuple[str, ...], list[dict]] | None = None,
) -> tuple[list[dict], list[dict], int]:
    """(top-level layer nodes, bucket nodes, total) from op rows; layers + buckets == total."""
    manifest_layers = manifest_layers or {}
    nodes: dict[tuple[str, ...], dict] = {}

    def node_for(path: tuple[str, ...]) -> dict:
        n = nodes.get(path)
        if n is None:
            n = nodes[path] = _node(path, manifest_layers.get(path))
            if len(path) > 1:
                node_for(path[:-1])["children"].append(n)
        return n

    for path in manifest_layers:
        node_for(path)
    buckets: dict[str, dict] = {}
    total = 0
    for row in rows:
        total += row["time_ps"]
        if row["layer"]:
            path = tuple(row["layer"])
            for i in range(1, len(path) + 1):
                _add(node_for(path[:i]), row, own=(i == len(path)))
        else:
            name = row["bucket"] or BUCKETS["root"]
            b = buckets.get(name)
            if b is None:
                b = buckets[name] = _node((name,), None)
                b["bucket"] = True
            _add(b, row, own=True)
    for path, bench in (benchmarks or {}).items():
        if path in nodes:
            nodes[path]["benchmark"] = bench
    for n in list(nodes.values()) + list(buckets.values()):
        n["share"] = n["total_ps"] / total if total else 0.0
        n["step_share"] = n["total_ps"] / step_time_ps if step_time_ps else 0.0
        n["phases"] = {p: n["phases"][p] for p in PHASES if p in n["phases"]}
        n["clocks"] = {c: n["clocks"][c] for c in CLOCKS if c in n["clocks"]}
        n["clock"] = clock_of(n["clocks"])
        n["device_ids"] = dict(sorted(n["device_ids"].items()))
        n["children"].sort(key=lambda c: (-c["total_ps"], c["name"]))
    roots = sorted(
        (n for p, n in nodes.items() if len(p) == 1), key=lambda n: (-n["total_ps"], n["name"])
    )
    return roots, sorted(buckets.values(), key=lambda n: (-n["total_ps"], n["name"])), total


def clock_totals(rows: list[dict]) -> dict[str, int]:
    """Op time per clock over all rows (only the clocks that occur)."""
    out: dict[str, int] = {}
    for row in rows:
        out[row["clock"]] = out.get(row["clock"], 0) + row["time_ps"]
    return {c: out[c] for c in CLOCKS if c in out}


def fallbacks(rows: list[dict]) -> list[dict]:
    """CPU-fallback ops grouped by layer and op type, with their reason and copy time."""
    groups: dict[tuple, dict] = {}
    copies = copy_time_by_layer(rows)
    for row in rows:
        if not row["fallback"]:
            continue
        key = (tuple(row["layer"] or ()), row["type"], row["fallback"]["reason_code"])
        g = groups.get(key)
        if g is None:
            g = groups[key] = {
                "path": row["layer"],
                "bucket": row["bucket"],
                "op_type": row["type"],
                "reason_code": row["fallback"]["reason_code"],
                "reason": row["fallback"]["reason"],
                "device_source": row["device_source"],
                "remedy": fallback_remedy(row["type"], row["fallback"]["reason_code"]),
                "ops": [],
                "count": 0,
                "self_ps": 0,
                "clock": row["clock"],
                "copy_ps": copies.get(tuple(row["layer"] or ()), 0),
            }
        g["ops"].append(row["name"])
        g["count"] += row["count"]
        g["self_ps"] += row["time_ps"]
    return sorted(
        groups.values(),
        key=lambda g: (-g["self_ps"], g["path"] or [], g["op_type"], g["reason_code"]),
    )


def copy_time_by_layer(rows: list[dict]) -> dict[tuple[str, ...], int]:
    """Copy op time (`_Send`/`_Recv`) per layer boundary that caused it."""
    out: dict[tuple[str, ...], int] = {}
    for row in rows:
        if row["is_copy"]:
            key = tuple(row["layer"] or ())
            out[key] = out.get(key, 0) + row["time_ps"]
    return out


def copy_totals(moved: list[dict]) -> dict[str, dict]:
    """The copies' time and count per clock (a memcpy on the device timeline and a
    `_Send` timed on the host are never added up)."""
    out: dict[str, dict] = {}
    for c in moved:
        t = out.setdefault(c["clock"], {"ps": 0, "count": 0})
        t["ps"] += c["ps"]
        t["count"] += c["count"]
    return out


def copies(rows: list[dict], events: TraceEvents, sel: Selection, attribute) -> list[dict]:
    """Cross-device copies: `_Send`/`_Recv` ops and device memcpy events, per layer."""
    out = []
    for row in rows:
        if row["is_copy"]:
            out.append(
                {
                    "path": row["layer"],
                    "op": row["name"],
                    "between": row["copy_between"],
                    "kind": row["type"],
                    "device": row["device_id"],
                    "ps": row["time_ps"],
                    "clock": row["clock"],
                    "count": row["count"],
                    "source": "host_op",
                }
            )
    for cp in events.copies.values():
        ps = sel.sum(cp.ps)
        if not ps:
            continue
        out.append(
            {
                "path": attribute(cp.op_name),
                "op": cp.op_name,
                "kind": cp.kind,
                "device": cp.plane,
                "ps": ps,
                "clock": "device",
                "count": sel.count(cp.count),
                "source": "device_plane",
            }
        )
    return sorted(out, key=lambda c: (-c["ps"], str(c["op"]), c["kind"], str(c["device"])))
