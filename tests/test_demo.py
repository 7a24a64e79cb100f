"""The demo scripts, run briefly at tiny sizes: each run loads and shows what it should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tb_metal_plugin import load_profile
from tb_metal_plugin.readiness import predict_ops

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {
    "cnn": {"conv1", "conv2", "dense", "logits"},
    "augment": {"random_flip", "random_rotation", "conv1", "logits"},
    "custom_op": {"dense_in", "py_tanh", "logits"},
}


@pytest.fixture(scope="module")
def demo_logdir(tmp_path_factory):
    """Every scenario recorded at 16x16; the cnn one with its CPU-only twin."""
    logdir = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    script = str(ROOT / "demo" / "record_demo.py")
    for name in EXPECTED:
        twin = [] if name == "cnn" else ["--no-twin"]
        cmd = [sys.executable, script, str(logdir), "--only", name, "--size", "16", *twin]
        subprocess.run(cmd, check=True, env=env, capture_output=True)
    return logdir


def _layer_names(data):
    return {c["name"] for n in data["layers"] for c in n["children"] if c["op_count"]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_scenario_loads_with_its_layers(demo_logdir, name):
    prof = load_profile(demo_logdir, run=f"{name}/train")
    data = prof.layers()
    assert data["attribution_source"] == "manifest"
    assert EXPECTED[name] <= _layer_names(data)


def test_cpu_only_twin_is_recorded(demo_logdir):
    prof = load_profile(demo_logdir, run="cnn_cpu/train")
    assert prof.manifest["environment"]["logical_devices"]
    assert all("GPU" not in d for d in prof.devices)


def test_custom_op_is_recognised_as_cpu_only_with_its_reason(demo_logdir):
    ops = load_profile(demo_logdir, run="custom_op/train").ops()["ops"]
    pred = predict_ops(ops)
    py = [o for o in pred["ops"] if o["type"] == "EagerPyFunc"]
    assert py and all(o["verdict"] == "cpu_only_by_nature" for o in py)
    assert all(o["layer"][-1] == "py_tanh" for o in py)
    assert "py_function" in py[0]["reason"] or "Python" in py[0]["reason"]


def test_augmentation_is_predicted_to_fall_back_on_metal(demo_logdir):
    ops = load_profile(demo_logdir, run="augment/train").ops()["ops"]
    layers = {tuple(x["layer"] or ()): x for x in predict_ops(ops)["layers"]}
    rot = next(v for k, v in layers.items() if k and k[-1] == "random_rotation")
    assert rot["verdict"] == "cpu_fallback"
    assert "ImageProjectiveTransformV3" in rot["fallback_op_types"]
    conv = next(v for k, v in layers.items() if k and k[-1] == "conv1")
    assert conv["verdict"] == "metal_gpu"


def test_metal_check_names_the_fallback_layers_with_op_types_and_share(demo_logdir):
    from click.testing import CliRunner

    from tb_metal_plugin.cli import main

    # --wide: whole layer names (at the default 80 columns they are shortened in the middle).
    args = ["metal-check", str(demo_logdir), "--wide", "--run"]
    run = CliRunner().invoke(main, [*args, "augment/train"])
    assert run.exit_code == 0, run.output
    assert run.output.startswith("PREDICTION for tensorflow-metal ")
    rot = next(line for line in run.output.splitlines() if "random_rotation" in line)
    assert "cpu_fallback" in rot and "ImageProjectiveTransformV3" in rot
    conv = next(line for line in run.output.splitlines() if "/conv1" in line)
    assert "metal_gpu" in conv
    run = CliRunner().invoke(main, [*args, "custom_op/train"])
    py = next(line for line in run.output.splitlines() if "py_tanh" in line)
    assert "cpu_only_by_nature" in py and "EagerPyFunc" in py
    assert "runs on the CPU by nature" in run.output
