"""Describe the recording process: library versions, devices, OS and machine."""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Any

# The TensorFlow distribution differs by platform (tensorflow, tensorflow-cpu,
# tensorflow-macos, ...): the first one installed names the version.
_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel")


def _version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def environment() -> dict[str, Any]:
    """Return versions, physical and logical devices (with details), OS and machine."""
    import tensorflow as tf

    env: dict[str, Any] = {
        "tensorflow": getattr(tf, "__version__", None) or _version(*_TF_DISTRIBUTIONS),
        "tensorflow_distribution": next(
            (d for d in _TF_DISTRIBUTIONS if _version(d) is not None), None
        ),
        "keras": _version("keras"),
        "tensorflow_metal": _version("tensorflow-metal"),
        "python": platform.python_version(),
        "os": platform.system(),
        "os_release": platform.release(),
        "machine": platform.machine(),
    }
    physical = tf.config.list_physical_devices()
    env["physical_devices"] = [d.name for d in physical]
    env["logical_devices"] = [d.name for d in tf.config.list_logical_devices()]
    # Device details carry the human name of an accelerator (Metal reports
    # {"device_name": "METAL"}); CPUs have none, so only non-empty ones are kept.
    details: dict[str, Any] = {}
    for d in physical:
        try:
            info = tf.config.experimental.get_device_details(d)
        except Exception:  # not every device type supports details
            info = {}
        if info:
            details[d.name] = {k: _jsonable(v) for k, v in info.items()}
    env["device_details"] = details
    return env


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)
