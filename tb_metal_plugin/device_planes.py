"""Device planes as the profiler writes them: which lines are device work, which are views.

Names follow the writer's public source:
- XLA/TSL `xla/tsl/profiler/utils/xplane_schema.cc`: plane prefixes `/device:GPU:`,
  `/device:TPU:`; derived line names `Steps`, `XLA Modules`, `XLA Ops`, `Async XLA Ops`,
  `Launch Stats`, `Source code`, `Framework Ops` / `Framework Name Scope` (called
  `TensorFlow Ops` / `TensorFlow Name Scope` before the rename); stat names `tf_op`,
  `group_id`, `hlo_module`, `hlo_op`, `memcpy_details`, `correlation_id`.
- `xla/tsl/profiler/utils/trace_utils.h`: derived lines get ids from 0xdeadbeef upwards.
- `xla/backends/profiler/gpu/cupti_collector.cc`: a GPU plane's own lines are CUDA streams,
  named `Stream #<id>` plus the event types they hold, `Stream #7(Compute,MemcpyH2D)`;
  memcpy events are named `MemcpyH2D`, `MemcpyD2H`, `MemcpyD2D`, `MemcpyP2P`, `MemcpyOther`,
  with a `memcpy_details` stat `kind_src:.. kind_dst:.. size:<bytes> ...`; a kernel's `tf_op`
  stat is the outermost annotation (`<op name>:<op type>` for TF, `XlaModule:` for XLA).
- xprof `xprof/utils/derived_timeline.cc`: `Framework Ops` events are per TF op spanning
  its kernels, `Framework Name Scope` nests one event per scope level, `Steps` holds one
  event per step group named by its group id; newer versions derive them per stream,
  suffixed ` - from #<stream id>`.
- xprof `xprof/convert/xplane_to_step_events.cc`: on a TPU the op line (`XLA Ops`) is the
  device work; on a GPU every non-derived line is a stream.

Derived lines re-present the same device time, so they are read for links and steps and
never added.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

# Line roles.
WORK = "work"  # device work: kernels and copies (GPU streams, a TPU's XLA Ops, Metal's line)
STEPS = "steps"  # derived: one event per step
TF_OPS = "tf_ops"  # derived: one event per TF op, spanning its kernels
DERIVED = "derived"  # any other derived view
IGNORED = "ignored"  # profiler bookkeeping: CUPTI overhead, counters

STREAM_PREFIX = "Stream #"
STEPS_LINE = "Steps"
TF_OPS_LINES = frozenset({"TensorFlow Ops", "Framework Ops"})
XLA_OPS_LINE = "XLA Ops"
SPARSE_CORE_OPS_LINE = "Sparse Core Ops"
DERIVED_LINES = frozenset(
    {
        STEPS_LINE,
        "Sparse Core Steps",
        "TensorFlow Name Scope",
        "Framework Name Scope",
        "XLA Modules",
        XLA_OPS_LINE,
        "Async XLA Ops",
        "Sparse Core Modules",
        SPARSE_CORE_OPS_LINE,
        "Launch Stats",
        "Source code",
        "Host Offload Ops",
        "Tensor Core Sync Flag",
        "Sparse Core Syncs",
    }
    | TF_OPS_LINES
)
IGNORED_LINES = frozenset({"CUPTI overhead", "_counters_"})
_DERIVED_SUFFIX = " - from #"
# trace_utils.h: derived line ids start at 0xdeadbeef (an `int`, so stored negative) and
# span a few hundred ids across versions.
_DERIVED_ID_MIN = 0xDEADBEEF
_DERIVED_ID_SPAN = 1024

COPY_KINDS = {
    "memcpyh2d": "memcpy_h2d",
    "memcpyd2h": "memcpy_d2h",
    "memcpyd2d": "memcpy_d2d",
    "memcpyp2p": "memcpy_p2p",
    "memcpyother": "memcpy",
}
# CUPTI activity records that sit on stream lines but are not work the device did:
# memory bookkeeping, and CUPTI's own overhead records (cupti_buffer_events.cc names them
# by overhead kind).
NOT_WORK_EVENTS = frozenset(
    {"MemoryAlloc", "MemoryFree", "MemoryResidency", "HostRegister", "HostUnregister"}
    | {"Overhead", "COMPILER", "BUFFER_FLUSH", "INSTRUMENTATION", "RESOURCE", "<UNKNOWN>"}
)
_BYTES = re.compile(r"(?:^|\s)(?:size|num_bytes):(\d+)")


def base_line_name(name: str) -> str:
    """`Framework Ops` for `Framework Ops - from #14` (per-stream derived lines)."""
    return name.split(_DERIVED_SUFFIX, 1)[0]


def is_derived_line_id(line_id: int) -> bool:
    """True for the ids the derived-timeline writer gives its lines."""
    signed_min = _DERIVED_ID_MIN - (1 << 32)
    return (
        signed_min <= line_id < signed_min + _DERIVED_ID_SPAN
        or _DERIVED_ID_MIN <= line_id < _DERIVED_ID_MIN + _DERIVED_ID_SPAN
    )


def plane_kind(device_id: str) -> str:
    """`TPU` for `TPU:0`: what the accelerator is, from its plane."""
    return device_id.split(":", 1)[0]


def classify_line(name: str, line_id: int, kind: str, sparse_core: bool = False) -> str:
    """The role of one line of a device plane of this kind (GPU, TPU, ...)."""
    base = base_line_name(name)
    if base in IGNORED_LINES:
        # The collector names a stream's line `CUPTI overhead` when an overhead record
        # landed on it: a real stream id means kernels may sit there too (overhead
        # records themselves are skipped by name).
        derived = is_derived_line_id(line_id) or line_id == 0
        return WORK if base == "CUPTI overhead" and not derived and kind != "TPU" else IGNORED
    if base == STEPS_LINE:
        return STEPS
    if base in TF_OPS_LINES:
        return TF_OPS
    if kind == "TPU":
        # A TPU has no streams: its op line is the device work; modules, async ops and
        # the TF views overlap it.
        op_line = SPARSE_CORE_OPS_LINE if sparse_core else XLA_OPS_LINE
        return WORK if base == op_line else DERIVED
    if name.startswith(STREAM_PREFIX):
        return WORK
    if base in DERIVED_LINES or is_derived_line_id(line_id):
        return DERIVED
    # Other accelerators' own lines (a Metal plugin's `Metal command buffers`, ROCm
    # queues) are device work.
    return WORK


def copy_kind(event_name: str, has_memcpy_details: bool) -> str | None:
    """`memcpy_h2d`... for a copy event, `memset` for a memset, None for a kernel."""
    low = event_name.lower().replace(" ", "")
    kind = COPY_KINDS.get(low)
    if kind:
        return kind
    if low.startswith("memset"):
        return "memset"
    if "memcpy" in low or has_memcpy_details:
        if "htod" in low or "h2d" in low:
            return "memcpy_h2d"
        if "dtoh" in low or "d2h" in low:
            return "memcpy_d2h"
        if "dtod" in low or "d2d" in low:
            return "memcpy_d2d"
        return "memcpy"
    return None


def memcpy_bytes(details: object) -> int:
    """Bytes moved, from a `memcpy_details` stat value (0 when it does not say)."""
    m = _BYTES.search(str(details or ""))
    return int(m.group(1)) if m else 0


def annotation_op(annotation: str) -> str:
    """The outermost annotation's name: `a/b:MatMul` from `a/b:MatMul#k=v#::inner`."""
    return annotation.split("::", 1)[0].split("#", 1)[0]


class SpanIndex:
    """Events of a derived line as sorted spans; finds the one containing a time."""

    def __init__(self) -> None:
        self._items: list[tuple[int, int, object]] = []
        self._starts: list[int] = []

    def add(self, start: int, end: int, value: object) -> None:
        """Record one span (absolute ps)."""
        self._items.append((start, end, value))

    def freeze(self) -> None:
        """Sort the spans; call once after the last add."""
        self._items.sort(key=lambda t: t[0])
        self._starts = [t[0] for t in self._items]

    def __len__(self) -> int:
        return len(self._items)

    def find(self, t: int) -> object | None:
        """The value of the latest-starting span that contains time t, or None."""
        i = bisect.bisect_right(self._starts, t) - 1
        # Spans of one derived line do not overlap, but per-stream lines can: look back a
        # few spans for one that still covers t.
        for j in range(i, max(i - 8, -1), -1):
            start, end, value = self._items[j]
            if start <= t < end or (start == t == end):
                return value
        return None


@dataclass
class DevicePlaneStats:
    """What one device plane holds: its lines by role and its device time, measured."""

    plane: str  # `/device:GPU:0`
    device: str  # `GPU:0`
    kind: str  # `GPU`, `TPU`, ...
    work_lines: list[str] = field(default_factory=list)
    derived_lines: list[str] = field(default_factory=list)
    kernel_count: int = 0
    kernel_ps: int = 0  # kernels (or a TPU's XLA op self time) on the work lines
    copy_count: int = 0
    copy_ps: int = 0  # memcpy and memset events on the work lines
    copy_bytes: int = 0
    unlinked_ps: int = 0  # kernel time no TF op or XLA cluster could be named for
    slot_ps: list[int] = field(default_factory=list)  # device_ps per step slot (last: outside)

    @property
    def device_ps(self) -> int:
        """Device busy time as the work lines record it: kernels plus copies."""
        return self.kernel_ps + self.copy_ps

    def as_dict(self) -> dict:
        """JSON-ready figures (times in ps, clock `device`)."""
        return {
            "plane": self.plane,
            "device": self.device,
            "kind": self.kind,
            "clock": "device",
            "device_ps": self.device_ps,
            "kernel_ps": self.kernel_ps,
            "kernel_count": self.kernel_count,
            "copy_ps": self.copy_ps,
            "copy_count": self.copy_count,
            "copy_bytes": self.copy_bytes,
            "unlinked_ps": self.unlinked_ps,
            "slot_ps": list(self.slot_ps),
            "work_lines": list(self.work_lines),
            "derived_lines": list(self.derived_lines),
        }
