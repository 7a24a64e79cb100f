"""The engine with a callback manifest: exact layers, recorded placement, copies, reasons."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tb_metal_plugin import load_profile
from tb_metal_plugin.devices import DeviceResolver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    """A real run on two logical CPUs with layer `pinned` under tf.device('/CPU:1')."""
    logdir = tmp_path_factory.mktemp("two_devices")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests/scripts/record_two_devices.py"),
            str(logdir),
            "--bench",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    return load_profile(logdir)


def test_manifest_makes_attribution_and_devices_exact(two_devices):
    data = two_devices.ops()
    assert data["attribution_source"] == "manifest" and data["has_manifest"]
    assert data["devices"] == ["CPU:0", "CPU:1"]
    ops = data["ops"]
    assert {o["device_source"] for o in ops if o["layer"]} == {"placement"}
    pinned = [o for o in ops if o["layer"] == ["functional", "pinned"]]
    matmul = next(o for o in pinned if o["name"].endswith("pinned_1/MatMul"))
    assert matmul["device_id"] == "CPU:1"
    # tf.device inside call does not cover the gradient: backward ops stay on CPU:0
    assert {o["device_id"] for o in pinned if o["phase"] == "backward"} == {"CPU:0"}


def test_copies_belong_to_the_producer_of_the_tensor_they_move(two_devices):
    data = two_devices.layers()
    copies = [c for c in data["copies"] if c["kind"] in ("_Send", "_Recv")]
    assert copies
    layer_of = {o["name"]: o["layer"] for o in two_devices.ops()["ops"]}
    for c in copies:
        producer = c["between"][0]
        # The callback recorded each copy with the op whose output it carries.
        assert c["path"] == layer_of[producer], (c["op"], producer)
    # Data crosses into `pinned` (pre's output) and out of it (to head): both layers
    # own copies, and the layer tree shows them as copy time.
    owners = {tuple(c["path"]) for c in copies if c["path"]}
    assert ("functional", "pinned") in owners and len(owners) >= 2
    pinned = next(c for c in data["layers"][0]["children"] if c["name"] == "pinned")
    mine = sum(c["ps"] for c in copies if c["path"] == ["functional", "pinned"])
    assert pinned["copy_ps"] == mine > 0
    assert pinned["class"] == "Pinned"
    # The summary line's figures, per clock and never across clocks.
    for clock, total in data["copy_totals"].items():
        on = [c for c in data["copies"] if c["clock"] == clock]
        assert total == {"ps": sum(c["ps"] for c in on), "count": sum(c["count"] for c in on)}
    assert set(data["copy_totals"]) == {c["clock"] for c in data["copies"]}


def test_layer_tree_holds_every_manifest_layer(two_devices):
    data = two_devices.layers()
    names = {c["name"] for c in data["layers"][0]["children"]}
    assert {"pre", "pinned", "head"} <= names


def test_fallback_reasons_come_from_the_recorded_kernel_registry(two_devices):
    res = DeviceResolver(two_devices.events, two_devices.manifest)
    # oneDNN rewrites have CPU kernels only
    assert res.fallback_reason("_MklMatMul", "float32") == "no_gpu_kernel"
    # DEFAULT kernels run anywhere: a CPU placement of such an op was a choice
    assert res.fallback_reason("AssignAddVariableOp", "float32") == "explicit_placement"
    assert res.fallback_reason("EagerPyFunc", None) == "py_function"
    assert res.fallback_reason("NotAnOpType", None) == "unknown"


def test_layer_benchmark_is_shown_as_measured_time(two_devices):
    from click.testing import CliRunner

    from tb_metal_plugin.cli import main

    data = two_devices.layers()
    pre = next(c for c in data["layers"][0]["children"] if c["name"] == "pre")
    assert pre["benchmark"] and pre["benchmark"][0]["device"] == "CPU"
    assert pre["benchmark"][0]["forward_ps"] > 0
    path = str(Path(two_devices.events.path))
    out = CliRunner().invoke(main, ["layers", path]).output
    assert "benchmark per call: forward" in out
