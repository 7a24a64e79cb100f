"""Layers named like the scopes TF opens itself (`body`, `cond`, `gradients`)
(tf_names.tf_control_components).

Ground truth is the labeller's (tests/gt model `library_names`, TF 2.21 / Keras 3.15).
"""

from __future__ import annotations

import pytest

from tb_metal_plugin.tf_names import tf_control_components
from tests.test_ground_truth import labelled_rows


@pytest.mark.parametrize("mode", ["trace", "graph", "manifest"])
def test_layers_named_like_tf_scopes_are_layers(mode):
    labels, rows = labelled_rows("library_names", mode)
    want = {("named_like_tf", "body", "cond"), ("named_like_tf", "body", "moments")}
    want |= {("named_like_tf", "gradients")}
    seen = set()
    for key, label in labels["events"].items():
        layer = tuple(label.get("layer") or ())
        if layer in want:
            seen.add(layer)
            assert tuple(rows[key]["layer"] or ()) == layer, key
    assert seen == want


def test_tf_control_components_are_the_ones_tf_opened():
    names = [
        "m_1/cond_1/then/_0/m_1/cond_1/Relu",  # a cond TF opened: its branch below
        "m_1/lstm_1/while_15/body/_1/m_1/lstm_1/while/MatMul",
        "gradients_2/m_1/dense_1/MatMul_grad/MatMul",  # tf.gradients' scope
        "m_1/body_1/cond_1/Relu",  # layers named `body` and `cond`
        "m_1/gradients_1/Tensordot/MatMul",  # a layer named `gradients`
    ]
    assert tf_control_components(names) == {"cond_1", "while_15", "gradients_2"}
