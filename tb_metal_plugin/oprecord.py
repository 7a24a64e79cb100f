"""One TF op's per-step figures (`OpRecord`), kept small: a big model has thousands of ops."""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from types import MappingProxyType

SEND_RECV_TYPES = frozenset({"_Send", "_Recv", "_HostSend", "_HostRecv"})
# The type of the op that keeps an XLA module's time (a GPU's kernels, an XLA:CPU run):
# XLA names its kernels after HLO ops, never a TF op.
XLA_MODULE_TYPE = "XlaModule"

_ZEROS: dict[int, tuple[array, array]] = {}


def _zeros(slots: int) -> tuple[array, array]:
    """Cached arrays of `slots` zeros ("i", "q"): thousands of ops copy them."""
    zero = _ZEROS.get(slots)
    if zero is None:
        zero = _ZEROS[slots] = (array("i", bytes(4 * slots)), array("q", bytes(8 * slots)))
    return zero


# Shared and never mutated: an op's sets of line kinds and planes are interned frozensets
# (a few distinct ones per trace, not one set per op), and its stats and per-plane device
# figures stay one read-only empty mapping until it has some (a copy op, a device event).
_NO_PLANES: frozenset[str] = frozenset()
_NO_STATS: Mapping[str, object] = MappingProxyType({})
_NO_PLANE_PS: Mapping[str, array] = MappingProxyType({})
_KINDS: dict[tuple[frozenset[str], str], frozenset[str]] = {}


def _kinds_with(kinds: frozenset[str], kind: str) -> frozenset[str]:
    """The interned frozenset of kinds plus kind."""
    out = _KINDS.get((kinds, kind))
    if out is None:
        out = _KINDS[(kinds, kind)] = kinds | {kind}
    return out


class OpRecord:
    """Everything measured for one TF op (name and type), per step slot.

    Per-slot figures are compact arrays: a long profile of a big model holds ops x steps
    of them. Device figures stay a shared tuple of zeros until a device event arrives.
    """

    __slots__ = (
        "name",
        "type",
        "key",
        "slots",
        "count",
        "self_ps",
        "total_ps",
        "device_count",
        "device_ps",
        "line_kinds",
        "device_planes",
        "device_ps_by_plane",
        "stats",
        "wants_stats",
    )

    def __init__(self, name: str, type_: str, slots: int, zeros: tuple[int, ...] | None = None):
        self.name = name
        self.type = type_
        # (name, type): the op's key in TraceEvents.ops and first_start, one tuple for all.
        self.key = (name, type_)
        self.slots = slots
        zi, zq = _ZEROS.get(slots) or _zeros(slots)
        self.count = zi[:]
        self.self_ps = zq[:]
        self.total_ps = zq[:]
        zeros = zeros if zeros is not None else (0,) * slots
        self.device_count: Sequence[int] = zeros
        self.device_ps: Sequence[int] = zeros
        # Kinds of the host lines (python, compute, ...) its events were on: add_line_kind.
        self.line_kinds: frozenset[str] = _NO_PLANES
        self.device_planes: frozenset[str] = _NO_PLANES
        # Device id (`GPU:1`) -> per-slot device ps on that device's plane alone: one op of a
        # multi-GPU run has a figure per GPU; device_ps is their sum.
        self.device_ps_by_plane: Mapping[str, array] = _NO_PLANE_PS
        self.stats: Mapping[str, object] = _NO_STATS
        # Copy ops: the stats of their first event name the devices at both ends.
        self.wants_stats = type_ in SEND_RECV_TYPES

    def add_device(self, slot: int, duration_ps: int, plane: str) -> None:
        """Count one device event of this op."""
        if not isinstance(self.device_ps, array):
            self.device_count = array("i", bytes(4 * self.slots))
            self.device_ps = array("q", bytes(8 * self.slots))
        self.device_count[slot] += 1
        self.device_ps[slot] += duration_ps
        per_plane = self.device_ps_by_plane.get(plane)
        if per_plane is None:
            per_plane = array("q", bytes(8 * self.slots))
            self.device_ps_by_plane = {**self.device_ps_by_plane, plane: per_plane}
            self.device_planes = self.device_planes | {plane}
        per_plane[slot] += duration_ps

    def add_line_kind(self, kind: str) -> None:
        """Note that an event of this op ran on a host line of this kind."""
        if kind not in self.line_kinds:
            self.line_kinds = _kinds_with(self.line_kinds, kind)

    @property
    def on_host(self) -> bool:
        """True when the op was seen executing on a host thread."""
        return any(self.count)
