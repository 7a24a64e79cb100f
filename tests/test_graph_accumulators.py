"""A loop accumulator's layer from the step graph (graph_accumulators.py), on graphs built
by hand: which users of the pushed value count, and when the graph does not decide.

Real recorded traces check the same rule against the labeller in test_ground_truth.py
(k36_custom_cell, graph mode).
"""

from __future__ import annotations

from tb_metal_plugin.graph_accumulators import graph_accumulator_layers

B = "rnn/while/body/_1/"


class _Graph:
    """Nodes by name: (op type, data inputs)."""

    def __init__(self, nodes: dict[str, tuple[str, list[str]]]):
        self.nodes = nodes

    def inputs(self, name):
        node = self.nodes.get(name)
        return None if node is None else node[1]

    def op(self, name):
        node = self.nodes.get(name)
        return None if node is None else node[0]

    def consumers(self, name):
        return [n for n, (_, ins) in self.nodes.items() if name in ins]


def _layer(name: str):
    # `rnn/while/body/_1/<layer path...>/<op>`: the layers are what sits between.
    parts = name[len(B) :].split("/")[:-1] if name.startswith(B) else []
    return ("rnn", *parts) if name.startswith(B) else ("rnn",)


def _push(value: str) -> tuple[str, list[str]]:
    return ("TensorListPushBack", ["acc", value])


def test_the_user_whose_gradient_reads_the_value_names_the_push():
    g = _Graph(
        {
            B + "cell/x_proj/read": ("ReadVariableOp", []),
            B + "cell/x_proj/MatMul": ("_MklMatMul", [B + "x", B + "cell/x_proj/read"]),
            B + "x": ("Identity", []),
            B + "cell/x_proj/add": ("AddV2", [B + "cell/x_proj/MatMul"]),
            B + "p1": _push(B + "cell/x_proj/read"),
        }
    )
    assert graph_accumulator_layers([B + "p1"], g, _layer) == {B + "p1": ("rnn", "cell", "x_proj")}


def test_plumbing_is_looked_through_and_a_select_or_a_sum_says_nothing():
    g = _Graph(
        {
            B + "h": ("Identity", []),
            B + "h2": ("Identity", [B + "h"]),
            B + "mask/SelectV2": ("SelectV2", [B + "c", B + "h2", B + "z"]),
            B + "cell/add": ("AddV2", [B + "h2"]),
            B + "cell/u/MatMul": ("MatMul", [B + "h2", B + "w"]),
            B + "p": _push(B + "h"),
            B + "q": _push(B + "c"),
            B + "c": ("Less", []),
        }
    )
    got = graph_accumulator_layers([B + "p", B + "q"], g, _layer)
    # p: only the MatMul's gradient reads h; q: no user's gradient reads the condition
    # among those listed, so the trace's own answer stands.
    assert got == {B + "p": ("rnn", "cell", "u")}


def test_the_last_user_in_data_order_takes_it():
    g = _Graph(
        {
            B + "v": ("Identity", []),
            B + "cell/a/Mul": ("Mul", [B + "v", B + "k"]),
            B + "cell/b/MatMul": ("MatMul", [B + "cell/a/Mul", B + "v"]),
            B + "p": _push(B + "v"),
        }
    )
    assert graph_accumulator_layers([B + "p"], g, _layer) == {B + "p": ("rnn", "cell", "b")}


def test_a_fused_user_or_a_value_outside_the_loop_decides_nothing():
    g = _Graph(
        {
            B + "v": ("Identity", []),
            B + "cell/add": ("_MklNativeFusedMatMul", [B + "x", B + "v"]),  # MatMul + add
            B + "p": _push(B + "v"),
            B + "q": ("TensorListPushBack", ["acc"]),  # no value input
        }
    )
    assert graph_accumulator_layers([B + "p", B + "q", "absent"], g, _layer) == {}
    # A layer outside the push's own loop layer is never given to it.
    g2 = _Graph(
        {
            "other/MatMul": ("MatMul", [B + "v"]),
            B + "v": ("Identity", []),
            B + "p": _push(B + "v"),
        }
    )
    assert (
        graph_accumulator_layers([B + "p"], g2, lambda n: ("x",) if "other" in n else ("rnn",))
        == {}
    )
