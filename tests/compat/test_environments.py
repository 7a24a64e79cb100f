"""Fast checks of what the compatibility matrix covers in full, in this environment only.

Both protobuf backends parse the committed traces into the same messages, on the generated
classes and on the descriptor fallback, and every view of them is byte-identical across
backends (upb and pure Python iterate protobuf maps in different orders, so this fails
whenever an ordering has no tie-break). The matrix (tests/compat/matrix.py) repeats this
across protobuf, TensorBoard and Python versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tb_metal_plugin import environment_check

ROOT = Path(__file__).resolve().parents[2]
LOGDIR = ROOT / "demo" / "logs"
TRACES = sorted(LOGDIR.glob("*/train/plugins/profile/*/*.xplane.pb"))

PARSE = """
import json, sys
from google.protobuf.internal import api_implementation
from tb_metal_plugin import xplane
fallback = xplane._from_descriptor()
out = {"backend": api_implementation.Type(), "source": xplane.SOURCE, "traces": []}
for path in sys.argv[1:]:
    raw = open(path, "rb").read()
    a, b = xplane.XSpace.FromString(raw), fallback["XSpace"].FromString(raw)
    assert a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)
    events = sum(len(line.events) for plane in b.planes for line in plane.lines)
    metadata = sum(len(plane.event_metadata) for plane in b.planes)
    out["traces"].append([len(b.planes), events, metadata])
print(json.dumps(out))
"""

VIEWS = """
import json, sys
from click.testing import CliRunner
from tb_metal_plugin.cli import main
out = {}
for run in ("cnn/train", "augment/train", "custom_op/train"):
    for cmd in ("layers", "ops", "metal-check"):
        res = CliRunner().invoke(main, [cmd, sys.argv[1], "--run", run, "--format", "json"])
        assert res.exit_code == 0, res.output
        out[cmd + " " + run] = res.output
print(json.dumps(out))
"""


def _run(code: str, backend: str, *args: str) -> dict:
    env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=backend, TB_METAL_CACHE="0")
    res = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def test_both_backends_parse_every_trace_alike_on_both_class_paths():
    assert TRACES, "no committed demo traces"
    upb = _run(PARSE, "upb", *map(str, TRACES))
    pure = _run(PARSE, "python", *map(str, TRACES))
    assert (upb["backend"], pure["backend"]) == ("upb", "python")
    # Two independent parsers (C and Python) agree on every plane, event and metadata entry.
    assert upb["traces"] == pure["traces"]
    assert all(events > 0 for _, events, _ in upb["traces"])


def test_views_are_byte_identical_across_backends():
    upb = _run(VIEWS, "upb", str(LOGDIR))
    pure = _run(VIEWS, "python", str(LOGDIR))
    assert upb.keys() == pure.keys()
    differ = [k for k in upb if upb[k] != pure[k]]
    assert not differ, f"outputs differ between protobuf backends: {differ}"


def test_tensorboard_starts_in_this_environment():
    # The dev and CI environment is a supported one: nothing to fix.
    assert environment_check.tensorboard_startup_problems() == []


@pytest.mark.parametrize(
    ("error", "kind", "fix"),
    [
        # The last lines TensorBoard 2.18 (setuptools 84), 2.16 (numpy 2) and 2.12 (no six)
        # print when they fail to start, as seen in the compatibility matrix.
        (
            "ModuleNotFoundError: No module named 'pkg_resources'",
            "setuptools",
            'pip install "setuptools<82"',
        ),
        (
            "AttributeError: `np.string_` was removed in the NumPy 2.0 release. "
            "Use `np.bytes_` instead.",
            "numpy",
            'pip install "numpy<2"',
        ),
        ("ModuleNotFoundError: No module named 'six'", "module:six", "pip install six"),
    ],
)
def test_startup_errors_become_exact_fixes(error, kind, fix):
    got_kind, (problem, got_fix) = environment_check._classify("2.18.0", error)
    assert (got_kind, got_fix) == (kind, fix)
    assert "TensorBoard 2.18.0" in problem


@pytest.mark.parametrize(
    ("system", "machine", "python", "has_tf", "fix"),
    [
        # tensorflow-metal 1.2.0 has wheels for cp39-cp312 only.
        ("Darwin", "arm64", (3, 13), False, "python3.12 -m venv"),
        ("Darwin", "arm64", (3, 12), False, "pip install 'tb-metal[record]'"),
        ("Darwin", "arm64", (3, 12), True, None),
        ("Linux", "x86_64", (3, 13), True, None),
        ("Linux", "x86_64", (3, 13), False, "pip install 'tb-metal[record]'"),
    ],
)
def test_recording_problems(system, machine, python, has_tf, fix):
    got = environment_check.recording_problems(system, machine, python, has_tf)
    if fix is None:
        assert got == []
    else:
        assert len(got) == 1 and got[0][1].startswith(fix)


def test_record_extra_is_bounded_like_tensorflow_metal_wheels():
    # setup.py's markers and environment_check's bound must name the same last Python:
    # tensorflow-metal is asked for on Apple silicon up to that Python, never above it.
    import ast

    from packaging.requirements import Requirement

    low, high = environment_check.METAL_PYTHONS
    text = (ROOT / "setup.py").read_text(encoding="utf-8")
    start = text.index('"record": [')
    record = ast.literal_eval(text[text.index("[", start) : text.index("]", start) + 1])
    reqs = [Requirement(r) for r in record]

    def wanted(python: tuple[int, int]) -> set[str]:
        env = {
            "sys_platform": "darwin",
            "platform_machine": "arm64",
            "python_version": f"{python[0]}.{python[1]}",
        }
        return {r.name for r in reqs if r.marker is None or r.marker.evaluate(env)}

    assert "tensorflow-metal" in wanted(high) and "tensorflow-metal" in wanted(low)
    above = (high[0], high[1] + 1)
    assert "tensorflow-metal" not in wanted(above) and "tensorflow" in wanted(above)


def test_declared_minimums_are_the_tested_ones():
    # Every `pkg>=X` and requires-python in pyproject.toml is what the matrix's oldest row
    # installs, so the minimums a user is promised are the versions CI runs.
    tomllib = pytest.importorskip("tomllib")
    from tests.compat.matrix import ROWS

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    oldest = next(r for r in ROWS if r.name == "oldest")
    declared = {}
    for req in project["dependencies"]:
        name, _, version = req.partition(">=")
        declared[name.strip()] = version.strip()
    tested = {}
    for pin in oldest.pins:
        if "==" in pin:
            name, _, version = pin.partition("==")
            tested[name] = version
    assert {n: tested.get(n) for n in declared} == declared
    assert project["requires-python"] == f">={oldest.python}"
