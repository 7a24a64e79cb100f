"""Which root `Add_k`/`AssignVariableOp_k` counts the optimizer's steps (step_counter.py).

Ground truth is the labeller's (tests/gt): it records, while Keras builds the step, in
which call each op was made; the package reads names, the trace and the step graph.
"""

from __future__ import annotations

import re

import pytest

from tb_metal_plugin.step_counter import root_counter
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


def _scoped(name, op_type):
    first = name.split("/")[1] if name.count("/") > 1 else ""
    return "optimizer" if first.lower() in ("adam", "sgd", "rm_sprop", "rmsprop") else None


def _ops(*names):
    return [("StatefulPartitionedCall/" + n, n.rsplit("/", 1)[-1].split("_")[0]) for n in names]


def test_names_alone_tell_only_an_optimizer_with_one_plain_assign():
    keras36 = _ops("adam/Add", "adam/Add_1", "adam/AssignAddVariableOp", "adam/AssignVariableOp")
    assert root_counter(keras36 + _ops("Add", "Add_1"), _scoped) == {
        "Add": -1,
        "AssignVariableOp": -1,
    }
    # Keras 3.15's Adam: slot updates are AssignAdd/AssignSub, the counter at the root.
    keras315 = _ops("adam/Add", "adam/AssignAddVariableOp", "adam/AssignSubVariableOp")
    assert root_counter(keras315 + _ops("Add_2"), _scoped) is None
    # An RMSprop assigns its slots in either Keras: names cannot tell.
    rms = _ops("rm_sprop/Add", "rm_sprop/AssignVariableOp", "rm_sprop/AssignVariableOp_1")
    assert root_counter(rms + _ops("Add_2"), _scoped) is None
    # tf_keras (no call wrapper): RootPhases has its own rule.
    assert root_counter([("Adam/Add", "AddV2"), ("Adam/AssignVariableOp", "x")], _scoped) is None


class _Graph:
    def __init__(self, dtypes):
        self.dtypes = dtypes

    def __contains__(self, name):
        return name in self.dtypes

    def dtype(self, name):
        return self.dtypes.get(name)


def test_the_graph_names_the_int64_counter_per_base_and_declines_two():
    ops = _ops("Add", "Add_1", "Add_2", "AssignVariableOp", "AssignVariableOp_1")
    p = "StatefulPartitionedCall/"
    one = _Graph({p + "Add_2": 9, p + "Add": 1, p + "AssignVariableOp_1": 9})
    assert root_counter(ops, _scoped, one) == {"Add": 2, "AssignVariableOp": 1}
    none = _Graph({p + "Add": 1, p + "Add_1": 1})
    assert root_counter(ops, _scoped, none) == {"Add": -1, "AssignVariableOp": -1}
    two = _Graph({p + "Add_1": 9, p + "Add_2": 9})  # two optimizers' counters
    assert root_counter(ops, _scoped, two) is None
    # A graph that holds none of the root ops (another function's) does not decide.
    assert root_counter(ops, _scoped, _Graph({"other": 9})) is None
