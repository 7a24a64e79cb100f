"""Which device types have a kernel for an op type, and for which dtypes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def kernels_for_op(op_type: str) -> list[dict[str, Any]]:
    """Return `[{"device", "dtypes", "constraints"}]` for one op type, one entry per device type.

    TensorFlow registers one kernel per (device, dtype) for most ops; they are merged
    per device type. `dtypes` is the union of the allowed values of the op's first type
    constraint (usually `T`); empty means a kernel without type constraints (any dtype).
    `constraints` keeps every constraint by name for ops with several (`T`, `Tidx`).
    """
    from tensorflow.python.framework import dtypes as tf_dtypes
    from tensorflow.python.framework import kernels

    per_device: dict[str, dict[str, Any]] = {}
    for kernel in kernels.get_registered_kernels_for_op(op_type).kernel:
        entry = per_device.setdefault(
            kernel.device_type,
            {"device": kernel.device_type, "dtypes": [], "constraints": {}, "_any": False},
        )
        if not kernel.constraint:
            entry["_any"] = True
        for i, constraint in enumerate(kernel.constraint):
            names = [_dtype_name(tf_dtypes, t) for t in constraint.allowed_values.list.type]
            bucket = entry["constraints"].setdefault(constraint.name, [])
            bucket.extend(n for n in names if n not in bucket)
            if i == 0:
                entry["dtypes"].extend(n for n in names if n not in entry["dtypes"])
    out = []
    for entry in per_device.values():
        # A kernel registered without constraints accepts every dtype: say "any" (empty).
        if entry.pop("_any"):
            entry["dtypes"] = []
        out.append(entry)
    return out


def kernel_registry(op_types: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Map every op type to its registered kernels (see `kernels_for_op`)."""
    return {op: kernels_for_op(op) for op in sorted(set(op_types))}


def _dtype_name(tf_dtypes: Any, enum: int) -> str:
    try:
        return tf_dtypes.as_dtype(enum).name
    except Exception:  # an enum this TF cannot name (ref types): keep the number
        return str(enum)
