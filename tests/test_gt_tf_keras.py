"""Keras 2 (tf_keras, `tf.keras` on TF 2.15-era Macs) against the ground truth.

tf_keras names each layer's scope once, without Keras 3's `_<k>`, runs its train step as
the top function (no call wrapper in op names), opens each loss's own scope at the root
(`mean_squared_error/.../weighted_loss/`) and counts the optimizer's steps inside its
scope. The first score of the tf_keras set (tests/gt/models_k.py) put all 12 models under
the thresholds (tf_keras's MobileNetV2 and a mixed_float16 model at 0% layer accuracy);
the committed models hold the fixes. The slow test runs MetalProfileCallback in a
tf_keras fit, which used to crash it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_ground_truth import labelled_rows


def _by_name(rows: dict) -> dict:
    return {k.rsplit(":", 1)[0]: r for k, r in rows.items()}


def test_a_loss_scope_is_the_loss_not_a_layer():
    labels, rows = labelled_rows("k2_mixed_float16")
    loss = {
        k: ev
        for k, ev in labels["events"].items()
        if k.startswith("sparse_categorical_crossentropy/")
    }
    assert loss and all(ev["phase"] == "loss" and not ev.get("layer") for ev in loss.values())
    for key in loss:
        assert (rows[key]["phase"], rows[key]["layer"]) == ("loss", None), (key, rows[key])


def test_an_ops_own_scope_is_not_a_layer():
    """Mixed precision reads a kernel under its op (`conv/Conv2D/Cast`); MultiHeadAttention
    calls tf.einsum twice (`einsum_1/`): both scopes belong to the layer around them."""
    for model, scope in (("k2_mixed_float16", "/conv/Conv2D/"), ("k2_transformer", "/einsum_1/")):
        labels, rows = labelled_rows(model)
        hits = [k for k in labels["events"] if scope in k]
        assert hits, (model, scope)
        for key in hits:
            assert rows[key]["layer"] == labels["events"][key]["layer"], (key, rows[key])


def test_default_layer_names_are_keras2_names():
    """`dense`, `dense_1`, `dense_2`: two of three end like Keras 3's suffix, yet tf_keras
    keeps them as they are (the optimizer's `Adam/` and the loss's `weighted_loss/` say
    which Keras wrote the trace); a Dropout layer's own `dropout/` scope is not a layer."""
    labels, rows = labelled_rows("k2_default_names")
    layers = {tuple(ev["layer"]) for ev in labels["events"].values() if ev.get("layer")}
    assert ("sequential", "dense") in layers and ("sequential", "dense_2") in layers
    for key, ev in labels["events"].items():
        if ev.get("layer"):
            assert rows[key]["layer"] == ev["layer"], (key, rows[key]["layer"], ev["layer"])


def test_a_fused_activations_gradient_names_its_layer():
    """tf_keras's BatchNorm + ReLU fuse: the ReLU layer's only op left is its gradient."""
    labels, rows = labelled_rows("k2_resnet_block")
    grads = [k for k in labels["events"] if "_relu/ReluGrad" in k]
    assert grads
    for key in grads:
        assert rows[key]["layer"] == labels["events"][key]["layer"], (key, rows[key])


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("tf_keras") is None, reason="tf_keras not installed (.ci/run does)"
)
def test_the_callback_in_a_tf_keras_fit(tmp_path):
    """MetalProfileCallback in a tf_keras fit: training runs, the trace and a manifest
    are written, the manifest says layers and ops were not recorded, and the step graph
    written into the run's event file is read with the op names."""
    script = f"""
import numpy as np, tf_keras as keras
from tb_metal_plugin import MetalProfileCallback
m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, name="h"),
                      keras.layers.Dense(2, name="out")], name="k2")
m.compile("adam", "mse")
cb = MetalProfileCallback({str(tmp_path)!r}, profile_batch=(2, 3))
x = np.random.rand(64, 6).astype("float32"); y = np.random.rand(64, 2).astype("float32")
m.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[cb])
print("MANIFEST", cb.manifest_paths[0])
"""
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = Path(proc.stdout.split("MANIFEST ", 1)[1].strip())
    manifest = json.loads(path.read_text())
    assert "ops" not in manifest and "layers" not in manifest
    assert any("not a Keras 3 model" in w for w in manifest["warnings"])
    assert manifest.get("placement")
    from tb_metal_plugin import load_profile

    prof = load_profile(path.parent)
    # The step graph the callback wrote beside the trace, read as a stock run's.
    assert prof.attribution_source == "trace_graph"
    layers = {tuple(r["layer"]) for r in prof.ops()["ops"] if r["layer"]}
    assert ("k2", "h") in layers and ("k2", "out") in layers, layers


def test_an_uninlined_rnn_functions_ops_are_its_layers_with_the_step_graph():
    """tf_keras's LSTM runs its loop in a function the runtime calls, not inlines: those
    ops (`while_15/body/_1/while/MatMul`, `gradients/while_grad/...`) carry no layer in
    their names. The step graph lists the call (`lstm/PartitionedCall`) and the step's own
    nodes: what ran outside them ran in the call."""
    labels, with_graph = labelled_rows("k2_lstm", "graph")
    _, names_only = labelled_rows("k2_lstm", "trace")
    body = {
        k: ev
        for k, ev in labels["events"].items()
        if ev.get("how", "").startswith("function run by an uninlined call")
    }
    assert len(body) >= 20, len(body)
    for key, ev in body.items():
        assert ev["layer"] == ["k2_lstm_model", "lstm"], (key, ev)
        assert with_graph[key]["layer"] == ev["layer"], (key, with_graph[key])
        assert with_graph[key]["phase"] == ev["phase"], (key, with_graph[key], ev)
    assert all(names_only[k]["layer"] is None for k in body)


def test_uninlined_calls_of_several_layers_claim_nothing():
    from tb_metal_plugin.uninlined_calls import uninlined_call_layers

    class Graph:
        def __init__(self, calls):
            self._calls = calls

        def calls(self):
            return self._calls

        def __contains__(self, name):
            return name in self._calls

    ops = [("while_3/body/_1/while/MatMul", "MatMul"), ("m/lstm/PartitionedCall", "x")]
    layers = {"m/lstm/PartitionedCall": ("m", "lstm"), "m/gru/PartitionedCall": ("m", "gru")}
    compute = {n for n, _ in ops}
    one = uninlined_call_layers(ops, compute, Graph(["m/lstm/PartitionedCall"]), layers.get)
    assert one == {"while_3/body/_1/while/MatMul": ("m", "lstm")}
    two = Graph(["m/lstm/PartitionedCall", "m/gru/PartitionedCall"])
    assert uninlined_call_layers(ops, compute, two, layers.get) == {}
    assert uninlined_call_layers(ops, set(), Graph(["m/lstm/PartitionedCall"]), layers.get) == {}
