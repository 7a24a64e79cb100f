"""Which device ran each op, how we know, and why an op fell back to the CPU.

Sources, best first:
- `device_plane`: the op has events on a device timeline (CUDA streams, a TPU's XLA Ops
  line, a Metal plugin with a profiler): measured device time.
- `placement`: the training callback recorded the device the op was placed on.
- `send_recv`: a `_Send`/`_Recv` op's own stats name its devices.
- `kernel_registry`: the recorded kernel registry says the op type has no GPU kernel.
- `assumed`: nothing says; a host event is taken to be a CPU op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .events import SEND_RECV_TYPES, OpRecord, TraceEvents, device_plane_id

_DEVICE = re.compile(r"(?:/device:|^)([A-Za-z_]+):(\d+)$")
PY_FUNCTION_TYPES = frozenset({"EagerPyFunc", "PyFunc", "PyFuncStateless"})

REASONS = {
    "no_gpu_kernel": "no GPU kernel is registered for op type {type}",
    "no_gpu_kernel_for_dtype": "a GPU kernel exists for {type}, but not for dtype {dtype}",
    "py_function": "{type} runs Python code (tf.py_function / tf.numpy_function): CPU only",
    "explicit_placement": (
        "a GPU kernel exists for {type}: placed on the CPU by tf.device(...) or by "
        "colocation with a CPU op"
    ),
    "unknown": "placed on the CPU; the reason was not recorded (record with the tb-metal callback)",
}


@dataclass(frozen=True)
class Placement:
    """Where one op ran and how we know; `fallback` is a reason code when it fell back."""

    device: str  # "GPU:0", "CPU:0", "CPU:1", "TPU:3" ...
    kind: str  # "GPU", "CPU", "TPU", ... (what the device is; see device_kind)
    source: str
    fallback: str | None = None
    reason: str | None = None


def short_device(device: str) -> str:
    """`GPU:0` from `/job:localhost/replica:0/task:0/device:GPU:0` (and other spellings)."""
    m = _DEVICE.search(device or "")
    return f"{m.group(1).upper()}:{m.group(2)}" if m else (device or "CPU:0")


def device_kind(device: str) -> str:
    """What a device is, from its short id: `CPU`, `GPU`, `TPU`, `XPU`...

    PluggableDevices (Metal) register as GPU; DirectML's `DML` devices are GPUs too. Other
    accelerators keep their own name: a TPU is not a GPU.
    """
    kind = device.split(":", 1)[0].upper() or "CPU"
    return "GPU" if kind == "DML" else kind


_kind = device_kind

# Placements are frozen values: ops with the same one share one object (a ResNet's
# thousands of host-only ops are all `assumed` on CPU:0), not a fresh dataclass each.
_ASSUMED_CPU = Placement("CPU:0", "CPU", "assumed")


class DeviceResolver:
    """Resolve every op's device for one trace (plus its manifest, when there is one)."""

    def __init__(self, events: TraceEvents, manifest: dict | None):
        self.events = events
        manifest = manifest or {}
        self.placement: dict[tuple[str, str], dict] = {}
        self.placement_by_name: dict[str, dict] = {}
        for row in manifest.get("placement") or []:
            self.placement[(row.get("name", ""), row.get("type", ""))] = row
            self.placement_by_name.setdefault(row.get("name", ""), row)
        self.kernels: dict[str, list[dict]] = manifest.get("kernels") or {}
        env = manifest.get("environment") or {}
        recorded = [short_device(d) for d in env.get("logical_devices") or []]
        placed = [short_device(r.get("device", "")) for r in self.placement.values()]
        planes = [device_plane_id(n) or n for n in events.device_planes]
        self.devices = sorted(set(recorded + placed + planes))
        # Any accelerator (GPU, TPU, ...) makes CPU placements worth explaining.
        self.has_gpu = events.has_device_timeline or any(_kind(d) != "CPU" for d in self.devices)
        # Nothing recorded and no accelerator: every op without device events or copy
        # stats is assumed on the CPU, decided below without the look-ups.
        self._plain = not self.placement and not self.has_gpu

    def resolve(self, rec: OpRecord) -> Placement:
        """The device of one op and the source of that knowledge, with a fallback reason."""
        # (An op's device figures stay the shared tuple of zeros until a device event.)
        if self._plain and rec.device_count.__class__ is tuple and rec.type not in SEND_RECV_TYPES:
            return _ASSUMED_CPU
        if any(rec.device_count):
            # The device that ran most of it; per-device figures are on the op record
            # (device_ps_by_plane) for ops that ran on several.
            per = rec.device_ps_by_plane
            dev = (
                max(sorted(per), key=lambda d: sum(per[d])) if per else sorted(rec.device_planes)[0]
            )
            return Placement(dev, _kind(dev), "device_plane")
        row = self.placement.get((rec.name, rec.type)) or self.placement_by_name.get(rec.name)
        if row is not None:
            dev = short_device(row.get("device", ""))
            return self._with_fallback(rec, dev, "placement", row.get("dtype"))
        if rec.type in SEND_RECV_TYPES:
            for key in ("send_device", "recv_device", "from", "to"):
                val = rec.stats.get(key)
                if isinstance(val, str) and "device:" in val:
                    own = "send_device" if rec.type.endswith("Send") else "recv_device"
                    val = rec.stats.get(own, val)
                    dev = short_device(str(val))
                    return Placement(dev, _kind(dev), "send_recv")
        if self.has_gpu and self.kernels.get(rec.type) is not None:
            if not any(k.get("device") in ("GPU", "DEFAULT") for k in self.kernels[rec.type]):
                return self._with_fallback(rec, "CPU:0", "kernel_registry", None)
        if rec.type in PY_FUNCTION_TYPES and self.has_gpu:
            return self._with_fallback(rec, "CPU:0", "kernel_registry", None)
        return _ASSUMED_CPU

    def _with_fallback(self, rec: OpRecord, dev: str, source: str, dtype: str | None) -> Placement:
        kind = _kind(dev)
        if kind != "CPU" or not self.has_gpu or rec.type in SEND_RECV_TYPES:
            return Placement(dev, kind, source)
        code = self.fallback_reason(rec.type, dtype)
        reason = REASONS[code].format(type=rec.type, dtype=dtype or "?")
        return Placement(dev, kind, source, code, reason)

    def fallback_reason(self, op_type: str, dtype: str | None) -> str:
        """Why an op of this type (and dtype) ran on the CPU in a run with a GPU."""
        if op_type in PY_FUNCTION_TYPES:
            return "py_function"
        kernels = self.kernels.get(op_type)
        if kernels is None:
            return "unknown"
        # DEFAULT kernels are device-agnostic: they run on any device, Metal's included.
        gpu = [k for k in kernels if k.get("device") in ("GPU", "DEFAULT")]
        if not gpu:
            return "no_gpu_kernel"
        if dtype and all(k.get("dtypes") and dtype not in k["dtypes"] for k in gpu):
            return "no_gpu_kernel_for_dtype"
        return "explicit_placement"


def fallback_remedy(op_type: str, reason_code: str | None) -> dict | None:
    """What to do about a measured CPU fallback (remedies.json), None for a deliberate one."""
    if reason_code == "explicit_placement":
        return None  # the user (or a colocation) asked for the CPU: nothing to fix here
    from . import readiness, remedies

    return remedies.remedy_for(op_type, readiness.category_of(op_type), reason_code)
