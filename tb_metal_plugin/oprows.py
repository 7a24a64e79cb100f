"""Per-op rows of a profile: one dict per op with every figure of a selection, in order.

The rows the `ops` views print (and the layer tree adds up), made one at a time in their
order (time, then name and type), so a printer that writes each as it comes never holds
thousands of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import itemgetter
from typing import TYPE_CHECKING

from .attribution import BUCKETS, Attribution
from .devices import Placement
from .events import SEND_RECV_TYPES, OpRecord
from .jsonout import compact, native_rows
from .selection import Selection

if TYPE_CHECKING:
    from .breakdown import AttributedOp


def op_rows(ops: list[AttributedOp], sel: Selection) -> list[dict]:
    """One row per op with every figure of the selection; ops with no event there are left out."""
    return list(iter_op_rows(ops, sel))


def ops_under(
    ops: list[AttributedOp], layer: tuple[str, ...] | None, bucket: str | None
) -> list[AttributedOp]:
    """The ops of one layer path and its sublayers, or of one bucket's name outside any
    layer (as the layer tree shows them: a row's `bucket`), or all of them."""
    if layer is not None:
        n = len(layer)
        return [op for op in ops if tuple((op.attribution.layer or ())[:n]) == layer]
    if bucket is not None:
        return [
            op
            for op in ops
            if not op.attribution.layer
            and op.attribution.bucket
            and BUCKETS[op.attribution.bucket] == bucket
        ]
    return ops


def iter_op_rows(ops: list[AttributedOp], sel: Selection) -> Iterator[dict]:
    """The rows of op_rows, in its order (time, then name and type), made one at a time.

    Only the order is worked out for every op first: a printer that writes each row as it
    comes never holds thousands of row dicts at once.
    """
    picked, total_of = _picked(ops, sel)
    shared: dict[tuple[int, int, bool], dict] = {}
    for neg_time, _, _, count, op in picked:
        yield _row(op, count, -neg_time, total_of, shared)


def iter_op_json(ops: list[AttributedOp], sel: Selection, rows: int = 256) -> Iterator[str]:
    """The compact JSON of iter_op_rows's rows, `rows` rows a piece, each piece the rows
    joined by commas (`"[" + ",".join(pieces) + "]"` is the list's JSON, byte for byte).

    Natively where _jsonrows is built: each row written from the pieces of text its
    attribution and placement decide (`_pieces`) and the op's own figures, no row dict.
    """
    picked, total_of = _picked(ops, sel)
    shared: dict[tuple[int, int, bool], dict] = {}

    def row(op: AttributedOp, count: float | int, time_ps: int) -> dict:
        return _row(op, count, time_ps, total_of, shared)

    lo, hi, div = sel.bounds()
    # The C side sums slots lo..hi-1 of an op's arrays: past the end is "every slot".
    hi = _EVERY_SLOT if hi is None else hi
    cache: dict = {}
    for i in range(0, len(picked), rows):
        batch = picked[i : i + rows]
        text = None
        if native_rows is not None:
            text = native_rows(batch, lo, hi, div, cache, _pieces, row, SEND_RECV_TYPES)
        if text is None:
            text = compact([row(op, count, -neg) for neg, _, _, count, op in batch])[1:-1]
        yield text


_EVERY_SLOT = 2**62


def _picked(ops: list[AttributedOp], sel: Selection) -> tuple[list[tuple], object]:
    """(-time, name, type, count, op) of every op with an event in the selection, in row
    order, and the selection's sum function."""
    total_of, count_of = sel.summers()
    picked = []
    for op in ops:
        rec = op.rec
        count = count_of(rec.count)
        if not count and not count_of(rec.device_count):
            continue
        # The op's time, exactly as the layer breakdown adds it up: device time where a
        # device timeline measured it, else host self time.
        on_device = op.placement.source == "device_plane"
        time_ps = total_of(rec.device_ps if on_device else rec.self_ps)
        picked.append((-time_ps, rec.name, rec.type, count, op))
    picked.sort(key=_ORDER)  # stable, on these three only, as rows sorted by the same key
    return picked, total_of


# The fields of a row the op decides, in the row's key order, and the one figure its
# `device_ids` holds off a device timeline (its self time on the device it was placed on).
_OWN_FIELDS = ("name", "type", "layer", "count", "time_ps", "self_ps", "total_ps", "device_ids")


def _pieces(att: Attribution, pl: Placement, copy: bool) -> tuple[str, ...] | None:
    """The nine pieces of a row's JSON around its op's eight values, for ops of this
    attribution and placement (None for an op on a device timeline: its row is made whole).

    Cut from the encoded shared row: a field the op decides is `null` there, and `"key":null`
    cannot occur inside an encoded string (its quote would be escaped).
    """
    if pl.source == "device_plane":
        return None
    rest = compact(_shared_fields(att, pl, copy))
    pieces = []
    for key in _OWN_FIELDS:
        token = compact(key) + ":"
        head, sep, rest = rest.partition(token + "null")
        if not sep:
            return None
        pieces.append(head + token)
    # `device_ids` is {device: self_ps}: its key goes in the piece before the figure.
    one = compact({pl.device: 0})
    if not one.endswith(":0}"):
        return None
    pieces[-1] += one[:-2]
    pieces.append("}" + rest)
    return tuple(pieces)


_ORDER = itemgetter(0, 1, 2)


def _row(op: AttributedOp, count: float | int, time_ps: int, total_of, shared=None) -> dict:
    """One op's row; time_ps is its device time (on a device timeline) or host self time.

    `shared` (one dict per set of rows) keeps, per attribution and placement, a row with
    the fields they alone decide: each row starts as a copy of it (thousands of ops share a
    few dozen), its key order that of the full row.
    """
    rec, att, pl = op.rec, op.attribution, op.placement
    copy = rec.type in SEND_RECV_TYPES
    # Ids, not values: the objects live as long as the ops that hold them (the caller's).
    key = (id(att), id(pl), copy)
    row = shared.get(key) if shared is not None else None
    if row is None:
        row = _shared_fields(att, pl, copy)
        if shared is not None:
            shared[key] = row
    row = row.copy()
    self_ps = total_of(rec.self_ps)
    row["name"] = rec.name
    row["type"] = rec.type
    layer = att.layer
    if layer:
        row["layer"] = list(layer)  # a list of its own per row (callers may change it)
    row["count"] = count
    row["time_ps"] = time_ps
    row["self_ps"] = self_ps
    row["total_ps"] = total_of(rec.total_ps)
    if pl.source == "device_plane":
        row["device_ps"] = time_ps
        # time_ps per device id: one entry per GPU an op's kernels ran on.
        row["device_ids"] = _per_device(rec, pl, total_of, time_ps)
    else:
        # ...else the device the op was placed on.
        row["device_ids"] = {pl.device: self_ps}
    if copy and rec.stats:
        # Producer and consumer ops of a copy, as the copy's own stats name them.
        row["copy_between"] = [rec.stats.get("from"), rec.stats.get("to")]
    return row


def _shared_fields(att: Attribution, pl: Placement, copy: bool) -> dict:
    """A row with what the attribution and placement decide; None where the op does."""
    return {
        "name": None,
        "type": None,
        "layer": None,
        "phase": att.phase,
        "bucket": BUCKETS[att.bucket] if att.bucket else None,
        "attribution_source": att.source,
        "device": pl.kind,
        "device_id": pl.device,
        "device_source": pl.source,
        "count": None,
        # The op's time, as the layer breakdown adds it up, and its clock.
        "time_ps": None,
        "clock": "device"
        if pl.source == "device_plane"
        else ("host" if pl.kind == "CPU" else "host_side"),
        # The op's own host events (a GPU op's launch or dispatch, a CPU op's
        # compute) on the clock `host_clock`.
        "self_ps": None,
        "total_ps": None,
        "host_clock": "host" if pl.kind == "CPU" else "host_side",
        "device_ps": None,
        "device_ids": None,
        # The placement's reason, one dict for its rows (read, never changed, by callers).
        "fallback": {"reason_code": pl.fallback, "reason": pl.reason} if pl.fallback else None,
        "is_copy": copy,
        "copy_between": None,
    }


def _per_device(rec: OpRecord, pl: Placement, total_of, total: int) -> dict[str, int]:
    """An op's device time split over the device planes its kernels ran on."""
    per = {dev: total_of(ps) for dev, ps in sorted(rec.device_ps_by_plane.items())}
    per = {dev: ps for dev, ps in per.items() if ps}
    return per or {pl.device: total}
