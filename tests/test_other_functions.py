"""An unwrapped function beside the train step, and feed/fetch nodes (other_functions.py,
tf_names.feed_fetch_owner).

Ground truth for the recorded case is the labeller's (tests/gt): Keras 3.6 (TF 2.18) runs
its evaluation step unwrapped, so its metric updates look like bare eager ops by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tb_metal_plugin.api import load_file
from tb_metal_plugin.other_functions import other_function_phases
from tb_metal_plugin.tf_names import feed_fetch_owner
from tests.test_ground_truth import FIXTURES, labelled_rows

MODEL = "k36_with_validation"


@pytest.mark.parametrize("mode", ["trace", "graph"])
def test_evaluation_step_root_ops_have_the_labelled_phase(mode):
    labels, rows = labelled_rows(MODEL, mode)
    checked = 0
    for key, label in labels["events"].items():
        name = key.rsplit(":", 1)[0]
        if "PartitionedCall" in name or label.get("reason") or label.get("layer"):
            continue
        if label.get("kind") != "metric":
            continue
        checked += 1
        assert rows[key]["phase"] == label["phase"] == "metrics", key
    assert checked >= 10  # the evaluation step's tracker and accuracy updates


def _ops():
    labels, _ = labelled_rows(MODEL, "trace")
    prof = load_file(str(FIXTURES / MODEL / labels["trace"]))
    return {f"{r['name']}:{r['type']}": r for r in prof.ops()["ops"]}


def test_eager_ops_stay_outside_the_step():
    ops = _ops()
    # `range` ran eagerly on the Python thread (its label says so): no phase is guessed.
    assert ops["range:Range"]["bucket"] == "outside the train step"
    assert ops["range:Range"]["phase"] == "other"


def test_feed_and_fetch_nodes_take_their_producers_layer():
    ops = _ops()
    layers = [r["layer"] for r in ops.values() if r["layer"]]
    assert not [p for p in layers if p[0].startswith(("_send_", "_recv_"))]
    # The tensor `validated_1/feat_1/Reshape/shape` is the `feat` layer's.
    fetch = ops["_send_validated_1/feat_1/Reshape/shape_0:_Send"]
    assert (fetch["layer"], fetch["phase"]) == (["validated", "feat"], "forward")
    loss = ops["_send_compile_loss/sparse_categorical_crossentropy/Const_0:_Send"]
    assert (loss["layer"], loss["bucket"]) == (None, "loss")


@pytest.mark.parametrize(
    ("name", "op_type", "owner"),
    [
        ("_send_model_1/dense_1/Reshape/shape_0", "_Send", "model_1/dense_1/Reshape/shape"),
        ("_recv_x_12", "_Recv", "x"),
        ("_send_Sum_1_0", "_Send", "Sum_1"),
        ("_send_Sum_1_0", "_HostSend", None),  # not what the subgraph rewrite makes
        ("_send_model_1", "_Send", "model"),  # (the last `_<k>` is the output index)
        ("_send_", "_Send", None),
        ("_send_a_b", "_Send", None),
        ("model/_send_a_0", "_Send", None),
        ("edge_12_dense/MatMul", "_Recv", None),
    ],
)
def test_feed_fetch_owner(name, op_type, owner):
    assert feed_fetch_owner(name, op_type) == owner


W = "StatefulPartitionedCall/"
TRAIN = [(W + "model_1/dense_1/MatMul", "MatMul"), (W + "adam/Add", "AddV2")]
EVAL = [
    ("Add", "AddV2"),
    ("AssignVariableOp", "AssignVariableOp"),
    ("Add/ReadVariableOp", "ReadVariableOp"),
    ("ArgMax", "ArgMax"),
    ("range", "Range"),
]


def _phases(ops, compute):
    return other_function_phases(ops, compute, lambda n: None, lambda n, t: None)


def test_unwrapped_function_root_ops_are_its_metrics():
    out = _phases(TRAIN + EVAL, {n for n, _ in EVAL if n != "range"})
    assert out == {
        "Add": "metrics",
        "AssignVariableOp": "metrics",
        "Add/ReadVariableOp": "metrics",
        "ArgMax": "metrics",
    }


def test_only_ops_run_on_compute_threads_count():
    # Ops that ran on the Python thread (eager) are never another function's.
    assert _phases(TRAIN + EVAL, set()) == {}
    assert set(_phases(TRAIN + EVAL, {"ArgMax"})) == {"ArgMax"}


def test_a_flat_trace_has_no_other_function():
    # tf_keras runs its step as the top function: RootPhases reads that step's root.
    assert _phases(EVAL, {n for n, _ in EVAL}) == {}


def test_layer_ops_are_not_root_ops():
    ops = TRAIN + [("dense_1/MatMul", "MatMul"), ("dense_1/BiasAdd", "BiasAdd")]
    out = other_function_phases(
        ops, {"dense_1/MatMul", "dense_1/BiasAdd"}, lambda n: ("dense",), lambda n, t: None
    )
    assert out == {}


def test_fixture_is_the_keras_36_recording():
    labels, _ = labelled_rows(MODEL, "trace")
    assert Path(FIXTURES / MODEL / labels["trace"]).is_file()
    assert labels["versions"]["keras"].startswith("3.6.")
