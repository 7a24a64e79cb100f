"""tb-metal doctor: does this Python / TensorFlow / Keras / tensorflow-metal set-up run Keras on
the Metal GPU, and if not, what to install instead.

The most common way to lose the Mac's GPU is not one op falling back: it is a TensorFlow that
Apple's plugin cannot load, after which Keras runs everything on the CPU without an error. The
versions are checked against `data/compatibility.json` (each pair with its sources). The same
check runs on the installed packages (`tb-metal doctor`), on the environment a tb-metal manifest
recorded on someone's Mac (`tb-metal doctor LOGDIR`), and at the start of `fit` (the callback
calls `check_at_fit_start(env)` and stores the verdict under `environment.doctor`).
"""

from __future__ import annotations

import importlib.metadata
import platform
import warnings
from typing import Any

from . import compat
from .compat import (
    install_command,
    load_table,
    pair_status,
    series,
    sources,
    vkey,
    working_tensorflow,
)

OK = "ok"
WARNING = "warning"
BROKEN = "broken"
NOT_APPLICABLE = "not_applicable"
INFO = "info"
_RANK = {BROKEN: 3, WARNING: 2, OK: 1, INFO: 0, NOT_APPLICABLE: 0}
WORKS, LIKELY, UNTESTED = compat.WORKS, compat.LIKELY, compat.UNTESTED

_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-macos", "tensorflow-cpu", "tensorflow-intel")


def installed_environment(import_tensorflow: bool = True) -> dict[str, Any]:
    """This process's Python, OS and package versions; with TensorFlow imported, its devices."""

    def version(*names: str) -> str | None:
        for name in names:
            try:
                return importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
        return None

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "os": platform.system(),
        "os_release": platform.release(),
        "machine": platform.machine(),
        "tensorflow": version(*_TF_DISTRIBUTIONS),
        "keras": version("keras"),
        "tensorflow_metal": version("tensorflow-metal"),
    }
    # Only a Mac's answer depends on the devices TensorFlow sees (the plugin loaded or not).
    if import_tensorflow and env["tensorflow"] and env["os"] == "Darwin":
        try:
            import tensorflow as tf

            env["physical_devices"] = [d.name for d in tf.config.list_physical_devices()]
        except Exception as e:  # a plugin that fails to load can break the import itself
            env["tensorflow_import_error"] = f"{type(e).__name__}: {e}"
    return env


_warned_at_fit = False


def check_at_fit_start(env: dict) -> dict:
    """The callback's check at the start of `fit`: the verdict to store in the manifest under
    `environment.doctor`, and one loud warning per process when the Mac set-up is broken
    (tensorflow-metal installed but no GPU visible, a pair that cannot load, no plugin)."""
    global _warned_at_fit
    verdict = check_environment(env)
    if verdict["status"] == BROKEN and not _warned_at_fit:
        _warned_at_fit = True
        fix = f" Fix: {verdict['fix']}" if verdict["fix"] else ""
        warnings.warn(f"tb-metal doctor: {verdict['summary']}{fix}", RuntimeWarning, stacklevel=2)
    return verdict


def _check(name: str, status: str, found: Any, message: str, fix: str | None = None, sources=()):
    return {
        "check": name,
        "status": status,
        "found": found,
        "message": message,
        "fix": fix,
        "sources": list(sources),
    }


def _gpu_visible(env: dict) -> bool | None:
    devices = env.get("physical_devices")
    if devices is None:
        return None
    return any(":GPU:" in str(d).upper() for d in devices)


def check_environment(env: dict | None = None, startup_checks: bool = False) -> dict:
    """The doctor's verdict on one environment (the recording environment's keys: python, os,
    machine, tensorflow, keras, tensorflow_metal, physical_devices); None = this process's."""
    if env is None:
        env = installed_environment()
    rec = load_table()["recommended"]
    checks: list[dict] = []
    is_mac = str(env.get("os") or "").lower() == "darwin"
    metal, tf = env.get("tensorflow_metal"), env.get("tensorflow")
    if not is_mac:
        msg = (
            f"{env.get('os') or 'this OS'} is not macOS: tensorflow-metal does not apply. tb-metal "
            "records CPU/CUDA runs here and predicts their Metal readiness (metal-check)."
        )
        checks.append(_check("os", NOT_APPLICABLE, env.get("os"), msg))
    else:
        checks.extend(_mac_checks(env, rec, metal, tf))
    checks.append(_keras_check(env.get("keras"), tf))
    if startup_checks:
        checks.extend(_startup_checks())
    worst = max((c["status"] for c in checks), key=lambda s: _RANK[s])
    status = NOT_APPLICABLE if not is_mac and worst in (OK, INFO, NOT_APPLICABLE) else worst
    fix = next((c["fix"] for c in checks if c["status"] == BROKEN and c["fix"]), None)
    return {
        "status": status,
        "exit_code": 1 if status == BROKEN else 0,
        "summary": _summary(status, checks),
        "environment": {
            k: env.get(k)
            for k in ("python", "os", "machine", "tensorflow", "keras", "tensorflow_metal")
        },
        "gpu_visible": _gpu_visible(env),
        "fix": fix,
        "recommended": {k: rec[k] for k in ("tensorflow_metal", "tensorflow", "python", "keras")},
        "recommended_install": install_command(),
        "checks": checks,
        "table_updated": load_table()["updated"],
    }


def _summary(status: str, checks: list[dict]) -> str:
    bad = [c["message"] for c in checks if c["status"] == status and status in (BROKEN, WARNING)]
    if status == BROKEN:
        return "BROKEN: Keras will not use the Metal GPU. " + bad[0]
    if status == WARNING:
        return "WARNING: " + bad[0]
    if status == NOT_APPLICABLE:
        return "Not a Mac: tensorflow-metal does not apply."
    return "OK: this set-up is reported to run Keras on the Metal GPU."


def _mac_checks(env: dict, rec: dict, metal: str | None, tf: str | None) -> list[dict]:
    out = []
    machine = env.get("machine")
    if machine and machine != "arm64":
        out.append(
            _check(
                "machine",
                WARNING,
                machine,
                "tensorflow-metal's wheels on PyPI are for "
                "Apple silicon (arm64); this Python runs as "
                + str(machine)
                + " (an Intel Mac, or Rosetta)",
                "use an arm64 Python on Apple silicon",
            )
        )
    else:
        out.append(_check("machine", OK, machine, "Apple silicon (arm64)"))
    py, py_max = env.get("python"), load_table()["releases"][0]["python_max"]
    if py and vkey(series(py)) > vkey(py_max):
        out.append(
            _check(
                "python",
                BROKEN,
                py,
                f"tensorflow-metal {rec['tensorflow_metal']} has no "
                f"wheel for Python {series(py)} (the newest is {py_max})",
                f"create a virtual environment with Python {py_max}: python{py_max} -m venv "
                f".venv, then {install_command()}",
                sources(["tf_pr_126360"]),
            )
        )
    else:
        out.append(_check("python", OK, py, f"Python {py} has tensorflow-metal wheels"))
    if not tf:
        out.append(
            _check("tensorflow", BROKEN, None, "TensorFlow is not installed", install_command())
        )
        return out
    if not metal:
        out.append(
            _check(
                "tensorflow_metal",
                BROKEN,
                None,
                "tensorflow-metal is not installed: TensorFlow runs everything on the CPU",
                install_command(),
            )
        )
        return out
    pair = pair_status(metal, tf)
    status = {WORKS: OK, LIKELY: OK, UNTESTED: WARNING, BROKEN: BROKEN}[pair["status"]]
    alt = working_tensorflow(metal)
    fix = install_command()
    if alt and status != OK and series(metal) != series(rec["tensorflow_metal"]):
        fix += f" (or keep tensorflow-metal {metal}: {install_command(alt, metal)})"
    msg = f"tensorflow-metal {metal} with TensorFlow {tf}: {pair['status']}"
    check = _check("pair", status, {"tensorflow_metal": metal, "tensorflow": tf}, msg,
                   fix if status != OK else None, pair["sources"])  # fmt: skip
    check["detail"] = pair["why"]  # why the pair has that status, at length
    out.append(check)
    gpu = _gpu_visible(env)
    if env.get("tensorflow_import_error"):
        out.append(
            _check(
                "gpu",
                BROKEN,
                False,
                "importing TensorFlow failed (the plugin may not "
                "load): " + env["tensorflow_import_error"],
                fix,
            )
        )
    elif gpu is False:
        out.append(
            _check(
                "gpu",
                BROKEN,
                False,
                "tensorflow-metal is installed but TensorFlow sees "
                "no GPU: the plugin did not load, so Keras runs on the CPU",
                fix,
            )
        )
    elif gpu:
        out.append(_check("gpu", OK, True, "TensorFlow sees the Metal GPU"))
    else:
        out.append(_check("gpu", INFO, None, "not checked whether TensorFlow sees a GPU"))
    return out


def _keras_check(keras: str | None, tf: str | None) -> dict:
    if not keras:
        return _check(
            "keras",
            WARNING,
            None,
            "Keras is not installed; tb-metal's callback needs Keras 3",
            'python -m pip install "keras>=3.0"',
        )
    if vkey(keras)[0] < 3:
        return _check(
            "keras",
            WARNING,
            keras,
            f"Keras {keras}: tb-metal's callback needs Keras 3 "
            "(TensorFlow 2.16 and later ship with Keras 3)",
            'python -m pip install "keras>=3.0"',
        )
    return _check("keras", OK, keras, f"Keras {keras}")


def _startup_checks() -> list[dict]:
    """TensorBoard start-up problems (setuptools / NumPy pins) as doctor checks."""
    from . import environment_check

    try:
        problems = environment_check.tensorboard_startup_problems() or []
    except Exception as e:  # a failing check must not hide the version verdict
        return [_check("tensorboard", WARNING, None, f"start-up check failed: {e}")]
    out = []
    for p in problems:
        # environment_check returns (message, fix) pairs; accept dicts and strings too.
        if isinstance(p, (tuple, list)) and len(p) == 2:
            message, fix = str(p[0]), str(p[1]) if p[1] else None
        elif isinstance(p, dict):
            message, fix = str(p.get("message", p)), p.get("fix")
        else:
            message, fix = str(p), None
        out.append(_check("tensorboard", WARNING, None, message, fix))
    return out


def check_logdir(path: str) -> list[dict]:
    """The doctor's verdict on the environment each tb-metal manifest under `path` recorded
    (one row per profiled host; a trace without a manifest has no recorded environment)."""
    from .discovery import find_sessions
    from .manifest import load_manifest

    rows = []
    for info in find_sessions(path):
        for host, trace in sorted(info.hosts.items()):
            row: dict[str, Any] = {"session": info.name, "host": host}
            manifest = load_manifest(trace)
            env = (manifest or {}).get("environment")
            if not env:
                row.update(
                    verdict=None,
                    note="no environment recorded (record with the tb-metal callback to have one)",
                )
            else:
                row["verdict"] = check_environment(env)
                recorded = env.get("doctor")
                if recorded:
                    row["recorded_status"] = recorded.get("status")
            rows.append(row)
    return rows
