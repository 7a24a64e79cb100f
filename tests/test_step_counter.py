"""Which root `Add_k`/`AssignVariableOp_k` counts the optimizer's steps (step_counter.py).

Ground truth is the labeller's (tests/gt): it records, while Keras builds the step, in
which call each op was made; the package reads names, the trace and the step graph.
"""

from __future__ import annotations

import re

import pytest

from tb_metal_plugin.step_counter import StepCounter
from tests.test_ground_truth import labelled_rows

# Root variable updates and their reads: loss tracker, metrics, or the optimizer's counter.
ROOT_UPDATE = re.compile(
    r"^StatefulPartitionedCall/(Add|AssignVariableOp)(_\d+)?(/ReadVariableOp)?$"
)


@pytest.mark.parametrize(
    ("model", "mode"),
    [
        # Keras 3.6 (TF 2.18): the counter is in `adam/`, every root update a metric's.
        ("k36_lstm", "trace"),
        ("k36_lstm", "graph"),
        ("k36_conv_bn", "trace"),  # the same with SGD (`SGD/`)
        ("k36_conv_bn", "graph"),
        # Keras 3.15: the counter is `Add_3` but `AssignVariableOp_2` (a loss's `Add`
        # came first); only the graph tells (its int64 ops), names give Keras's usual order.
        ("override_compute_loss", "graph"),
    ],
)
def test_root_updates_have_the_phase_keras_made_them_in(model, mode):
    labels, rows = labelled_rows(model, mode)
    checked = 0
    for key, label in labels["events"].items():
        name = key.rsplit(":", 1)[0]
        if not ROOT_UPDATE.match(name) or key not in rows:
            continue
        checked += 1
        assert rows[key]["phase"] == label["phase"], key
    assert checked >= 4


P = "StatefulPartitionedCall/"


def _counter(names, graph=None, scopes=("adam", "rm_sprop")):
    return StepCounter({P + n for n in names}, scopes, graph)


ROOTS = [P + n for n in ("Add", "Add_1", "Add_2", "AssignVariableOp", "AssignVariableOp_1")]


def test_names_alone_tell_only_an_optimizer_with_one_plain_assign():
    keras36 = ["adam/Add", "adam/Add_1", "adam/AssignAddVariableOp", "adam/AssignVariableOp"]
    assert _counter(keras36)(ROOTS) == {"Add": -1, "AssignVariableOp": -1}
    # Keras 3.15's Adam: slot updates are AssignAdd/AssignSub, the counter at the root.
    keras315 = ["adam/Add", "adam/AssignAddVariableOp", "adam/AssignSubVariableOp"]
    assert _counter(keras315)(ROOTS) is None
    # An RMSprop assigns its slots in either Keras: names cannot tell.
    rms = ["rm_sprop/Add", "rm_sprop/AssignVariableOp", "rm_sprop/AssignVariableOp_1"]
    assert _counter(rms)(ROOTS) is None
    # A scope that is not the optimizer's says nothing.
    assert _counter(keras36, scopes=("dense",))(ROOTS) is None


class _Graph:
    def __init__(self, dtypes):
        self.dtypes = dtypes

    def __contains__(self, name):
        return name in self.dtypes

    def dtype(self, name):
        return self.dtypes.get(name)


def test_the_graph_names_the_int64_counter_per_base_and_declines_two():
    one = _Graph({P + "Add_2": 9, P + "Add": 1, P + "AssignVariableOp_1": 9})
    assert _counter([], one)(ROOTS) == {"Add": 2, "AssignVariableOp": 1}
    none = _Graph({P + "Add": 1, P + "Add_1": 1})
    assert _counter([], none)(ROOTS) == {"Add": -1, "AssignVariableOp": -1}
    two = _Graph({P + "Add_1": 9, P + "Add_2": 9})  # two optimizers' counters
    assert _counter([], two)(ROOTS) is None
    # A graph that holds none of the root ops (another function's) does not decide.
    assert _counter([], _Graph({"other": 9}))(ROOTS) is None


def test_counting_in_scope_is_seen_under_a_loss_scale_cond_too():
    cond = "cond/then/_36/cond/"
    keras36 = [cond + "adam/Add", cond + "adam/AssignVariableOp", cond + "Add"]
    assert _counter(keras36).counts_in_scope()
    keras33 = [cond + "adam/add", cond + "adam/AssignVariableOp"]  # Keras 3.3: `add`
    assert _counter(keras33).counts_in_scope()
    keras315 = [cond + "adam/Add", cond + "Add", cond + "AssignVariableOp"]
    assert not _counter(keras315).counts_in_scope()
    # The graph decides by dtype: a float assign in the scope (a constraint's) is not it.
    names = [cond + "adam/Add", cond + "adam/AssignVariableOp"]
    float_assign = _Graph({P + cond + "adam/AssignVariableOp": 1})
    assert not _counter(names, float_assign).counts_in_scope()
    int_assign = _Graph({P + cond + "adam/AssignVariableOp": 9})
    assert _counter(names, int_assign).counts_in_scope()


def test_only_casts_within_floats_or_ints_are_functionals_and_only_the_graph_says():
    from tb_metal_plugin.step_counter import compute_dtype_casts

    class _Casts:
        dtypes = {
            ("in", "SrcT"): 1,
            ("in", "DstT"): 19,
            ("ids", "SrcT"): 9,
            ("ids", "DstT"): 1,
            ("tok", "SrcT"): 9,
            ("tok", "DstT"): 3,
        }

        def dtype(self, name, keys):
            return self.dtypes.get((name, keys[0]))

    test = compute_dtype_casts(_Casts())
    assert test("in")  # float32 -> float16: mixed precision, Functional's in Keras 3.6
    assert not test("ids")  # int64 -> float32: a preprocessing layer's own
    assert test("tok")  # int64 -> int32: to the Input's dtype, Functional's
    assert not test("unknown")  # no dtypes: the layers' rule
    assert compute_dtype_casts(None)("anything")  # names alone: the common case


@pytest.mark.parametrize("model", ["k2_default_names", "k2_resnet_block", "k215_lstm"])
@pytest.mark.parametrize("mode", ["trace", "graph"])
def test_tf_keras_root_counters_have_the_labels_phase(model, mode):
    """tf_keras's `_train_counter` (the last root AssignAddVariableOp) is neither a metric
    nor the optimizer's: the labeller finds no metric or optimizer call around it."""
    labels, rows = labelled_rows(model, mode)
    checked = 0
    for key, label in labels["events"].items():
        if re.match(r"^AssignAddVariableOp(_\d+)?:", key) and key in rows:
            checked += 1
            assert rows[key]["phase"] == label["phase"], key
    assert checked >= 3  # the loss tracker's two and the counter, at least


def test_train_counter_is_the_int64_one_else_the_last_created():
    roots = ["AssignAddVariableOp", "AssignAddVariableOp_1", "AssignAddVariableOp_4", "Add"]
    assert StepCounter(set(roots), ())._graph is None
    assert StepCounter(set(roots), ()).train_counter(roots) == 4
    graph = _Graph({"AssignAddVariableOp_1": 9, "AssignAddVariableOp_4": 1})
    assert StepCounter(set(roots), (), graph).train_counter(roots) == 1
    assert StepCounter(set(), ()).train_counter(["Add_2"]) is None
