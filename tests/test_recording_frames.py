"""The callback's recording helpers that need no TensorFlow: what a gradient frame keeps and
how a Grappler-rewritten node finds the node it replaced (fast tier)."""

from __future__ import annotations

from types import SimpleNamespace

from tb_metal_plugin.recording.graph_map import _original
from tb_metal_plugin.recording.provenance import _gradient_frame


def test_a_gradient_frame_keeps_what_it_can_read():
    # The tape's call: (op_name, attrs, num_inputs, inputs, outputs, out_grads, skip, scope).
    # An input it did not keep (None) must not cost the op type and the forward scope,
    # which find the forward op when the outputs are not passed either.
    args = (b"Transpose", (), 2, [None, None], None, [], [], "td_1/td_dense_1/transpose_1")
    assert _gradient_frame(args) == ("grad", None, "Transpose", "td_1/td_dense_1/transpose_1", None)
    op = SimpleNamespace(name="x")
    out = SimpleNamespace(op=op)
    args = (
        "MatMul",
        (),
        2,
        [SimpleNamespace(name="a:0"), SimpleNamespace(name="b:0")],
        [out],
        [],
        [],
        "s",
    )
    assert _gradient_frame(args) == ("grad", op, "MatMul", "s", ("a:0", "b:0"))


class _Map:
    """GraphMap's two lookups over a dict of exact names (the real one walks function graphs)."""

    def __init__(self, records: dict[str, tuple]):
        self.ops = {name: SimpleNamespace(name=name) for name in records}
        self.record = {id(self.ops[n]): rec for n, rec in records.items()}

    def find(self, name, roots):
        op = self.ops.get(name)
        return (op, "exact") if op is not None else None


def _node(name, originals=()):
    info = SimpleNamespace(original_node_names=list(originals), original_func_names=[])
    return SimpleNamespace(name=name, experimental_debug_info=info)


def test_a_rewritten_node_takes_the_node_its_name_says_it_replaced():
    add = (("xception", "add"), "forward", "layer_call")
    bn = (("xception", "batch_normalization"), "forward", "layer_call")
    gmap = _Map({"SPC/xception_1/add_1/Add": add, "SPC/xception_1/bn_1/batchnorm/add_1": bn})
    # AddOpsRewrite folds the BatchNorm's add into the add layer's sum; both are listed.
    node = _node(
        "SPC/xception_1/add_1/ArithmeticOptimizer/AddOpsRewrite_Leaf_1_Add",
        ["xception_1/add_1/Add", "xception_1/bn_1/batchnorm/add_1"],
    )
    assert _original(gmap, [], node) == (add, "original")
    # Without debug info the name alone says it.
    assert _original(
        gmap, [], _node("SPC/xception_1/add_1/ArithmeticOptimizer/AddOpsRewrite_Add")
    ) == (add, "original")
    # Debug info local to the inlined function: its prefix comes from the node's name.
    cast = (("mixed", "gap"), "backward", "gradient")
    gmap = _Map({"SPC/gradient_tape/mixed_1/gap_1/Cast_1/Cast": cast})
    node = _node(
        "SPC/gradient_tape/mixed_1/gap_1/Cast_1/ArithmeticOptimizer/ReorderCastLikeAndValuePreserving_float_Cast",
        ["gradient_tape/mixed_1/gap_1/Cast_1/Cast"],
    )
    assert _original(gmap, [], node) == (cast, "original")
    assert _original(gmap, [], _node("SPC/unknown/ArithmeticOptimizer/X_Y")) is None
