"""Why the `tensorboard` command would not start here, each cause with the command that fixes it.

The Metal tab lives inside TensorBoard, and on the Macs our users have (TensorFlow 2.18 and
older, whose TensorBoard is pinned with it) TensorBoard itself often cannot start:
- TensorBoard 2.12-2.20 `import pkg_resources`, which setuptools 82 removed, and a fresh
  venv gets the newest setuptools;
- TensorBoard before 2.17 uses NumPy 1 names (`np.string_`) that NumPy 2 removed;
- TensorBoard 2.12 imports `six` without declaring it (TensorFlow used to bring it).

Two checks: a static one reads the installed TensorBoard's own source for the imports and
names it needs (fast, no import); a live one imports what the `tensorboard` command imports
at start-up, plugins included, in a child process, and turns a failure into a fix. Neither
imports TensorFlow. `tb-metal doctor` reports the result.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import subprocess
import sys
from importlib import metadata

# What the `tensorboard` console script runs before serving: its main module, the
# built-in plugins and the plugins found by entry point (ours among them).
_STARTUP_CODE = (
    "from tensorboard import main, default\ndefault.get_plugins()\ndefault.get_dynamic_plugins()\n"
)
# Names NumPy 2 removed that TensorBoard releases before 2.17 still use.
_NUMPY1_NAMES = re.compile(rb"\bnp\.(string_|unicode_|bool8|float_|complex_|object0)\b")
_PKG_RESOURCES = re.compile(rb"^\s*(import pkg_resources|from pkg_resources import)", re.M)
_SETUPTOOLS_FIX = 'pip install "setuptools<82"'
_NUMPY_FIX = 'pip install "numpy<2"'
_LIVE_TIMEOUT_S = 120
# Pythons Apple's tensorflow-metal ships wheels for (1.2.0: cp39-cp312); setup.py's record
# extra carries the same bound as a marker.
METAL_PYTHONS = ((3, 9), (3, 12))


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _tensorboard_sources() -> list[bytes]:
    """The installed TensorBoard's own Python files (not its vendored copies)."""
    files = metadata.distribution("tensorboard").files or []
    out = []
    for f in files:
        name = str(f)
        if name.startswith("tensorboard/") and name.endswith(".py") and "_vendor" not in name:
            try:
                out.append(f.locate().read_bytes())
            except OSError:
                continue
    return out


def _static_problems(tb: str) -> dict[str, tuple[str, str]]:
    """Causes read off TensorBoard's source and the installed versions, keyed by kind."""
    problems = {}
    sources = _tensorboard_sources()
    if importlib.util.find_spec("pkg_resources") is None and any(
        _PKG_RESOURCES.search(s) for s in sources
    ):
        st = _version("setuptools")
        have = f"setuptools {st} has no pkg_resources" if st else "setuptools is not installed"
        problems["setuptools"] = (
            f"TensorBoard {tb} imports pkg_resources, but {have} (setuptools 82 removed it)",
            _SETUPTOOLS_FIX,
        )
    np_version = _version("numpy")
    if np_version and int(np_version.split(".")[0]) >= 2:
        used = sorted({m.group(0).decode() for s in sources for m in _NUMPY1_NAMES.finditer(s)})
        if used:
            problems["numpy"] = (
                f"TensorBoard {tb} uses {', '.join(used)}, which numpy {np_version} no longer "
                "has (NumPy 2 removed them)",
                _NUMPY_FIX,
            )
    return problems


def _live_failure() -> str | None:
    """The last line of the error that TensorBoard's start-up imports raise, or None."""
    try:
        res = subprocess.run(
            [sys.executable, "-c", _STARTUP_CODE],
            capture_output=True,
            text=True,
            timeout=_LIVE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"TimeoutError: importing TensorBoard took over {_LIVE_TIMEOUT_S} s"
    if res.returncode == 0:
        return None
    lines = [ln for ln in res.stderr.splitlines() if re.match(r"^[\w.]+(Error|Exception)\b", ln)]
    return lines[-1] if lines else (res.stderr.strip().splitlines() or ["unknown error"])[-1]


def _classify(tb: str, error: str) -> tuple[str, tuple[str, str]]:
    """A start-up error as (kind, (problem, fix))."""
    missing = re.match(r"ModuleNotFoundError: No module named '([\w.]+)'", error)
    if missing and missing.group(1).split(".")[0] == "pkg_resources":
        return "setuptools", (
            f"TensorBoard {tb} imports pkg_resources, which this setuptools lacks",
            _SETUPTOOLS_FIX,
        )
    if missing:
        module = missing.group(1).split(".")[0]
        return f"module:{module}", (
            f"TensorBoard {tb} imports {module}, which is not installed",
            f"pip install {module}",
        )
    if "NumPy 2" in error or "numpy 2" in error.lower():
        return "numpy", (f"TensorBoard {tb} does not run on NumPy 2: {error}", _NUMPY_FIX)
    return "other", (
        f"TensorBoard {tb} fails to start: {error}",
        f'{sys.executable} -m pip install --force-reinstall "tensorboard=={tb}"',
    )


def tensorboard_startup_problems(live: bool = True) -> list[tuple[str, str]]:
    """Each reason `tensorboard` cannot start in this Python, as (problem, exact fix command)."""
    tb = _version("tensorboard")
    if tb is None or importlib.util.find_spec("tensorboard") is None:
        return [("TensorBoard is not installed", 'pip install "tensorboard>=2.12"')]
    problems = _static_problems(tb)
    if live:
        error = _live_failure()
        if error is not None:
            kind, problem = _classify(tb, error)
            problems.setdefault(kind, problem)  # a static diagnosis says more: keep it
    return list(problems.values())


def recording_problems(
    system: str | None = None,
    machine: str | None = None,
    python: tuple[int, int] | None = None,
    tensorflow_installed: bool | None = None,
) -> list[tuple[str, str]]:
    """What stops recording profiles here, as (problem, exact fix); defaults read this machine."""
    system = system or platform.system()
    machine = machine or platform.machine()
    python = python or sys.version_info[:2]
    if tensorflow_installed is None:
        tensorflow_installed = importlib.util.find_spec("tensorflow") is not None
    low, high = METAL_PYTHONS
    on_apple_silicon = system == "Darwin" and machine == "arm64"
    if on_apple_silicon and not low <= python <= high:
        want = f"{high[0]}.{high[1]}"
        return [
            (
                f"tensorflow-metal has no wheel for Python {python[0]}.{python[1]} "
                f"(it has {low[0]}.{low[1]}-{want}), so the record extra installs no "
                "TensorFlow here; viewing works",
                f"python{want} -m venv .venv && .venv/bin/pip install 'tb-metal[record]'",
            )
        ]
    if not tensorflow_installed:
        return [
            (
                "TensorFlow is not installed: viewing works, recording needs it",
                "pip install 'tb-metal[record]'",
            )
        ]
    return []
