"""Root ops of a layer's custom gradient, placed from the step graph (custom_grads.py).

Ground truth is the labeller's (tests/gt model `quantized_lora` of heldout_n, TF 2.21 /
Keras 3.15: an int8-quantized model trained through LoRA); the synthetic graph below is
built by hand to the shapes the docstring names.
"""

from __future__ import annotations

from tb_metal_plugin.custom_grads import custom_gradient_ops
from tests.test_ground_truth import labelled_rows


def test_quantized_layers_custom_gradient_is_their_backward():
    labels, rows = labelled_rows("quantized_lora", "graph")
    root = [
        k
        for k, label in labels["events"].items()
        if label.get("kind") == "gradient" and k.count("/") <= 2 and "gradient_tape" not in k
    ]
    assert len(root) >= 3  # truediv, Cast_1, the folded MatMul
    for key in root:
        want = labels["events"][key]
        assert (tuple(rows[key]["layer"] or ()), rows[key]["phase"]) == (
            tuple(want["layer"] or ()),
            want["phase"],
        ), key


class _Graph:
    def __init__(self, edges):
        self.ins: dict[str, list[str]] = {}
        self.outs: dict[str, list[str]] = {}
        for a, b in edges:
            self.outs.setdefault(a, []).append(b)
            self.ins.setdefault(b, []).append(a)

    def __contains__(self, name):
        return name in self.ins or name in self.outs

    def inputs(self, name):
        return self.ins.get(name, [])

    def consumers(self, name):
        return self.outs.get(name, [])


def test_a_gradients_reader_and_its_helpers_are_backward():
    s = "StatefulPartitionedCall/"
    read = s + "m_1/q_1/ReadVariableOp"
    up = s + "gradient_tape/compile_loss/mse/sub/Neg"
    down = s + "gradient_tape/m_1/a_1/ReluGrad"
    helper, grad, metric = s + "Cast_1", s + "MatMul", s + "Mean"
    graph = _Graph([(read, helper), (helper, grad), (up, grad), (grad, down), (read, metric)])
    layers = {read: ("m", "q")}
    ops = [(n, "X") for n in (helper, grad, metric)]
    got_layers, found = custom_gradient_ops(ops, graph, layers.get, set())
    assert found == {helper, grad}  # the metric reads a weight, not a gradient
    assert got_layers == {helper: ("m", "q"), grad: ("m", "q")}
    assert custom_gradient_ops(ops, graph, layers.get, {grad}) == ({}, set())
