"""Compatibility matrix: view the committed demo traces in small venvs pinned like real ones.

    python -m tests.compat.matrix            # every row, both protobuf backends
    python -m tests.compat.matrix --rows oldest --backends python

Each row is a fresh venv (made with uv, no TensorFlow) holding tb-metal's wheel and the
row's pins; the probe (tests/compat/probe.py) runs in it once per protobuf backend (upb
and the pure-Python one that TensorFlow's own error messages tell users to pick) and
writes every viewing output: CLI, the plugin's routes through TensorBoard's WSGI app, and
the real `tensorboard` command with the Metal tab loaded from its entry point. All
outputs must be byte-identical across every row and backend.

The "broken" rows are environments where TensorBoard itself cannot start (a setuptools
without pkg_resources, numpy 2 under an old TensorBoard): there `tensorboard` must fail
and `environment_check.tensorboard_startup_problems()` must name the cause.

Last, the whole test suite runs in the newest venv, which has no TensorFlow: the tests that
record must skip with their reason and every other test must pass.

Needs uv (`pip install uv`); wheels are cached in uv's cache, venvs under
$TB_METAL_COMPAT_DIR (default ~/.cache/tb-metal-compat) and reused between runs. Python
versions are taken from this machine (pyenv or `uv python find`, never downloaded); a row
whose Python is missing runs on this interpreter with the same pins and says so.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).resolve().with_name("probe.py")
LOGDIR = ROOT / "demo" / "logs"
BACKENDS = ("upb", "python")


@dataclass(frozen=True)
class Row:
    """One environment: a Python version, the pins installed beside tb-metal's wheel."""

    name: str
    python: str
    pins: tuple[str, ...]
    # For rows where TensorBoard cannot start: a word environment_check's problem must hold.
    expect_problem: str | None = None


ROWS = (
    # Every install_requires at its declared minimum (setup.py), on the oldest Python
    # declared; numpy < 2, setuptools < 82 and six because TensorBoard 2.12 cannot start
    # without them (see the broken rows; TensorFlow brings six, TensorBoard 2.12 does not
    # declare it).
    Row(
        "oldest",
        "3.10",
        (
            "protobuf==4.21.0",
            "tensorboard==2.12.0",
            "click==8.0.0",
            "werkzeug==2.0.0",
            "numpy<2",
            "setuptools<82",
            "six",
        ),
    ),
    # What TF 2.18.1 + tensorflow-metal 1.2.0 resolve to on macOS arm64 (the newest TF
    # Apple's plugin loads into), with setuptools < 82 so that TensorBoard 2.18 starts.
    Row(
        "tf-2.18-mac",
        "3.12",
        ("protobuf==5.29.*", "tensorboard==2.18.0", "numpy==2.0.*", "setuptools<82"),
    ),
    # Everything at its newest release.
    Row("newest", "3.13", ()),
)
BROKEN = (
    Row(
        "tb-2.18-setuptools-82",
        "3.12",
        ("protobuf==5.29.*", "tensorboard==2.18.0", "numpy==2.0.*", "setuptools>=82"),
        expect_problem="setuptools",
    ),
    Row(
        "tb-2.16-numpy-2",
        "3.12",
        ("protobuf==4.25.*", "tensorboard==2.16.*", "numpy>=2", "setuptools<82"),
        expect_problem="numpy",
    ),
)


def uv_command() -> list[str]:
    """uv as a command: on PATH, or the module of the running Python."""
    exe = shutil.which("uv")
    if exe:
        return [exe]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    sys.exit("the compatibility matrix needs uv: pip install uv")


def find_python(version: str) -> tuple[str, str]:
    """An interpreter of `version` on this machine, or this one; and a note when substituted."""
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    if candidates:
        return candidates[-1], ""
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
    found = subprocess.run(
        [*uv_command(), "python", "find", version], capture_output=True, text=True, env=env
    )
    if found.returncode == 0 and found.stdout.strip():
        return found.stdout.strip(), ""
    here = ".".join(map(str, sys.version_info[:2]))
    return sys.executable, f"Python {version} not on this machine: ran on {here}"


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a command, echoing it; raise with its output when it fails."""
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{res.stdout}\n{res.stderr}")
    return res


def build_wheel(work: Path) -> Path:
    """tb-metal's wheel, built once from this tree (without building the frontend), pure
    Python so that one wheel installs on every row's Python: the C reader is optional and
    tests/test_native.py holds it to the same figures as the Python twin used here."""
    out = work / "wheel"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, TB_METAL_SKIP_FRONTEND="1", TB_METAL_NO_NATIVE="1")
    run([*uv_command(), "build", "--wheel", "--out-dir", str(out), str(ROOT)], env=env)
    (wheel,) = out.glob("tb_metal-*.whl")
    return wheel


def make_venv(row: Row, work: Path, wheel: Path) -> tuple[Path, str]:
    """The row's venv with the wheel and pins installed; returns (python, substitution note)."""
    base, note = find_python(row.python)
    venv = work / "venvs" / row.name
    stamp = venv / "tb-metal-compat.json"
    spec = {"python": base, "pins": list(row.pins)}
    if not (stamp.exists() and json.loads(stamp.read_text()) == spec):
        shutil.rmtree(venv, ignore_errors=True)
        run([*uv_command(), "venv", "--quiet", "--python", base, str(venv)])
        stamp.write_text(json.dumps(spec))
    py = venv / "bin" / "python"
    # The newest row follows the newest releases; pinned rows reinstall only tb-metal.
    upgrade = [] if row.pins else ["--upgrade"]
    cmd = [*uv_command(), "pip", "install", "--quiet", "--python", str(py), *upgrade]
    run([*cmd, "--reinstall-package", "tb-metal", str(wheel), *row.pins])
    return py, note


def probe(py: Path, backend: str, out: Path, only_startup: bool) -> tuple[bool, dict, str]:
    """Run the probe in one venv under one protobuf backend: (ok, env.json, stderr)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = backend
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    cmd = [str(py), "-I", str(PROBE), str(LOGDIR), str(out)]
    if only_startup:
        cmd.append("--only-startup")
    # cwd outside the tree: the installed wheel is what gets imported.
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent, env=env)
    info = json.loads((out / "env.json").read_text()) if (out / "env.json").exists() else {}
    return res.returncode == 0, info, res.stderr


def outputs(out: Path) -> dict[str, bytes]:
    """The viewing outputs of one probe (not its env.json or problems.json)."""
    skip = {"env.json", "problems.json"}
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name not in skip}


def first_difference(a: bytes, b: bytes) -> str:
    """Where two outputs part, as a short excerpt of each."""
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"at byte {i}: {a[max(0, i - 60) : i + 60]!r} vs {b[max(0, i - 60) : i + 60]!r}"


def suite_without_tensorflow(py: Path) -> tuple[bool, str]:
    """The whole test suite in a venv without TensorFlow: recording tests skip, none errs."""
    run([*uv_command(), "pip", "install", "--quiet", "--python", str(py), "pytest", "ruff"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    # The disk cache stays on (tests of it need it) but writes under a temporary folder.
    env.pop("TB_METAL_CACHE", None)
    cmd = [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore"]
    with tempfile.TemporaryDirectory() as cache:
        env["TB_METAL_CACHE_DIR"] = cache
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    last = (res.stdout.strip().splitlines() or ["no output"])[-1]
    return res.returncode == 0 and " passed" in last, f"{last}\n{res.stdout[-3000:]}"


def main(argv: list[str] | None = None) -> int:
    """Run the chosen rows and backends, print the table; non-zero on any failure or diff."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", nargs="*", help="row names (default: all)")
    ap.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=BACKENDS)
    ap.add_argument("--table", type=Path, help="also write the table (markdown) here")
    ap.add_argument(
        "--no-suite", action="store_true", help="skip the test suite in the TensorFlow-less venv"
    )
    args = ap.parse_args(argv)
    default_work = os.path.expanduser("~/.cache/tb-metal-compat")
    work = Path(os.environ.get("TB_METAL_COMPAT_DIR", default_work))
    work.mkdir(parents=True, exist_ok=True)
    rows = [r for r in ROWS + BROKEN if not args.rows or r.name in args.rows]
    t0 = time.monotonic()
    wheel = build_wheel(work)
    table, failures = [], []
    reference: tuple[str, dict[str, bytes]] | None = None
    venvs: dict[str, Path] = {}
    for row in rows:
        try:
            py, note = make_venv(row, work, wheel)
            venvs[row.name] = py
        except RuntimeError as e:
            failures.append(f"{row.name}: install failed: {e}")
            table.append((row.name, row.python, "-", "-", "-", "-", "-", "install failed"))
            continue
        backends = args.backends if row.expect_problem is None else args.backends[:1]
        for backend in backends:
            out = work / "out" / f"{row.name}-{backend}"
            ok, info, err = probe(py, backend, out, only_startup=row.expect_problem is not None)
            label = f"{row.name}/{backend}"
            if row.expect_problem is not None:
                problems = json.loads((out / "problems.json").read_text())
                named = [p for p, _ in problems if row.expect_problem in p]
                if ok:
                    outcome = "FAIL: tensorboard started, expected it not to"
                elif not named:
                    outcome = f"FAIL: environment_check named no {row.expect_problem} problem"
                else:
                    fix = next(f for p, f in problems if row.expect_problem in p)
                    outcome = f"tensorboard fails as expected; environment_check: fix `{fix}`"
                if outcome.startswith("FAIL"):
                    failures.append(f"{label}: {outcome}\n{err[-2000:]}")
            elif not ok:
                outcome = "FAIL: " + ", ".join(sorted(info.get("failures", {}))) or "probe crashed"
                failures.append(f"{label}: {outcome}\n{err[-3000:]}")
            elif info.get("backend") != backend:
                outcome = f"FAIL: backend is {info.get('backend')}, not {backend}"
                failures.append(f"{label}: {outcome}")
            else:
                got = outputs(out)
                if reference is None:
                    reference = (label, got)
                    outcome = f"ok ({len(got)} outputs, reference)"
                else:
                    ref_label, ref = reference
                    diff = sorted(n for n in set(ref) | set(got) if ref.get(n) != got.get(n))
                    if diff:
                        n = diff[0]
                        detail = first_difference(ref.get(n, b""), got.get(n, b""))
                        outcome = f"FAIL: {len(diff)} outputs differ from {ref_label}"
                        failures.append(f"{label}: {outcome}: {', '.join(diff)}; {n} {detail}")
                    else:
                        outcome = f"ok ({len(got)} outputs identical to {ref_label})"
            if note:
                outcome += f" [{note}]"
            table.append(
                (
                    row.name,
                    info.get("python", "?"),
                    info.get("protobuf", "?"),
                    backend,
                    info.get("tensorboard", "?"),
                    info.get("numpy", "?"),
                    info.get("setuptools", "?"),
                    f"{info.get('message_classes', '?')}; {outcome}",
                )
            )
            print(f"{label}: {outcome}", flush=True)
    if not args.no_suite and "newest" in venvs:
        ok, detail = suite_without_tensorflow(venvs["newest"])
        outcome = "ok: " + detail.splitlines()[0] if ok else "FAIL: " + detail.splitlines()[0]
        print(f"test suite without TensorFlow (newest venv): {outcome}", flush=True)
        table.append(("newest, whole test suite", "", "", "upb", "", "", "", outcome))
        if not ok:
            failures.append(f"test suite without TensorFlow: {detail}")
    head = ("row", "Python", "protobuf", "backend", "TensorBoard", "numpy", "setuptools")
    lines = ["| " + " | ".join((*head, "message classes; outcome")) + " |"]
    lines.append("|" + "---|" * (len(head) + 1))
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in table]
    text = "\n".join(lines)
    print(text)
    if args.table:
        args.table.write_text(text + "\n")
    for f in failures:
        print(f"\nFAILED {f}", file=sys.stderr)
    print(f"compat matrix took {time.monotonic() - t0:.0f} s")
    print(f"matrix: {len(table) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
