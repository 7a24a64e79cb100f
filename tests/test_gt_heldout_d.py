"""The fourth held-out set (tests/gt/models_f.py) and what its first scores exposed.

A layer whose `call` is a tf.function runs as a call op in the layer's scope, and the
tape differentiates it with a gradient function called at the step's root whose op names
are the forward function's (`PartitionedCall/gradients/MatMul_grad/...`). Trace only,
those ops take the layer of the one forward call holding the ops they differentiate. The
labeller labels a function's ops when it is traced (Keras traces such a `call` while it
builds the model, outside the model), so it puts the call op's layers in front.
"""

from __future__ import annotations

import pytest

from tb_metal_plugin.function_grads import function_gradient_layers
from tests.gt import score as gt
from tests.test_ground_truth import labelled_rows, record_in_subprocess


def test_gradient_of_a_called_function_takes_its_forward_call_layer():
    labels, rows = labelled_rows("tf_function_layer")
    grads = {k: ev for k, ev in labels["events"].items() if "/PartitionedCall/gradients/" in k}
    assert len(grads) >= 4, sorted(grads)
    for key, ev in grads.items():
        assert ev["layer"] == ["tf_fn", "compiled"] and ev["phase"] == "backward", (key, ev)
        assert rows[key]["layer"] == ["tf_fn", "compiled"], (key, rows[key]["layer"])
        assert rows[key]["phase"] == "backward", (key, rows[key]["phase"])


def _layers(names):
    def name_layer(name):
        return ("m", name.split("/")[1].rsplit("_", 1)[0]) if "/" in name else None

    return function_gradient_layers([(n, "") for n in names], name_layer)


def test_function_gradient_needs_exactly_one_matching_forward_call():
    fwd = [
        "StatefulPartitionedCall/a_1/StatefulPartitionedCall/MatMul",
        "StatefulPartitionedCall/a_1/StatefulPartitionedCall/Relu",
    ]
    grad = [
        "StatefulPartitionedCall/PartitionedCall/gradients/MatMul_grad/MatMul",
        "StatefulPartitionedCall/PartitionedCall/gradients/AddN",
    ]
    got = _layers(fwd + grad)
    assert got == dict.fromkeys(grad, ("m", "a"))
    # Two forward calls that both hold a MatMul: the trace cannot say which one.
    other = ["StatefulPartitionedCall/b_1/StatefulPartitionedCall/MatMul"]
    assert _layers(fwd + other + grad) == {}
    # A gradient that names an op no forward call has: no answer either.
    assert (
        _layers(fwd + ["StatefulPartitionedCall/PartitionedCall/gradients/Tanh_grad/TanhGrad"])
        == {}
    )


@pytest.mark.slow
def test_callback_and_labeller_on_tf_function_layers(tmp_path):
    out = record_in_subprocess(tmp_path, "tf_function_layer", "callback")
    labels, rows = labelled_rows("tf_function_layer", "manifest", out)
    fwd = {
        k: ev for k, ev in labels["events"].items() if "/compiled_1/StatefulPartitionedCall/" in k
    }
    assert fwd and all(ev["layer"] == ["tf_fn", "compiled"] for ev in fwd.values()), fwd
    r = gt.score(labels, rows)
    assert r["layer_op"] == 1.0 and r["phase_tw"] == 1.0, r["worst"][:4]
