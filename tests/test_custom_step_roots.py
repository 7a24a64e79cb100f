"""Root ops of steps unlike Keras's default one (phases.RootPhases): a custom train_step
that reads no metric result, metric adds that Grappler rewrote into an AddN, custom
training loops whose step is the top function, and ragged or sparse elements decoded
after the iterator.

Ground truth is the labeller's (tests/gt models `gradient_penalty` and `rich_metrics`,
heldout_j; `tape_loop_bare` and `train_on_batch_loop`, heldout_k; `ragged_input` and
`sparse_input`, heldout_l; TF 2.21 / Keras 3.15).
"""

from __future__ import annotations

import re

import pytest

from tests.test_ground_truth import labelled_rows

# An op at the step's root: the wrapper, then at most an op function's or Grappler's scope.
ROOT = re.compile(r"^StatefulPartitionedCall/(ArithmeticOptimizer/)?[^/]+(/[^/]+)?$")


def _root_phases(model, mode):
    labels, rows = labelled_rows(model, mode)
    out = []
    for key, label in labels["events"].items():
        if ROOT.match(key.rsplit(":", 1)[0]) and key in rows and not label.get("layer"):
            out.append((key, label["phase"], rows[key]["phase"]))
    return out


@pytest.mark.parametrize("mode", ["trace", "graph"])
def test_a_custom_step_without_metric_results_has_no_metric_ops(mode):
    roots = _root_phases("gradient_penalty", mode)
    # The penalty's own arithmetic (Square, Mean, mul, add) and the optimizer's counter.
    assert {want for _, want, _ in roots} >= {"other", "optimizer"}
    assert [(k, want, got) for k, want, got in roots if want != got] == []


@pytest.mark.parametrize("mode", ["trace", "graph"])
def test_grappler_add_rewrites_at_the_root_keep_the_metric_phase(mode):
    roots = _root_phases("rich_metrics", mode)
    rewritten = [r for r in roots if "/AddOpsRewrite_" in r[0]]
    assert rewritten and all(want == "metrics" for _, want, _ in rewritten)
    assert [(k, want, got) for k, want, got in roots if want != got] == []


@pytest.mark.parametrize("model", ["tape_loop_bare", "train_on_batch_loop"])
def test_keras_3_custom_loops_count_the_optimizer_at_the_root(model):
    # A GradientTape step in a plain tf.function, and train_on_batch: the step is the top
    # function (no `StatefulPartitionedCall/`), as tf_keras's is, but Keras 3's optimizer
    # still counts its iterations with a root `Add_k`/`AssignVariableOp_k`.
    labels, rows = labelled_rows(model, "trace")
    roots = [
        (key, label["phase"], rows[key]["phase"])
        for key, label in labels["events"].items()
        if "/" not in key.rsplit(":", 1)[0].removesuffix("/ReadVariableOp")
        and key in rows
        and label.get("phase")
    ]
    assert "optimizer" in {want for _, want, _ in roots}
    assert [(k, want, got) for k, want, got in roots if want != got] == []


@pytest.mark.parametrize("model", ["ragged_input", "sparse_input"])
@pytest.mark.parametrize("mode", ["trace", "graph", "manifest"])
def test_ragged_and_sparse_elements_are_decoded_in_the_input_pipeline(model, mode):
    # tf.data carries a ragged or sparse component as a variant that the step decodes
    # (RaggedTensorFromVariant, DeserializeSparse): input pipeline work, in every mode.
    labels, rows = labelled_rows(model, mode)
    decode = [
        (key, label["phase"], rows[key]["phase"])
        for key, label in labels["events"].items()
        if key.endswith((":RaggedTensorFromVariant", ":DeserializeSparse"))
    ]
    assert decode and all(want == got == "input" for _, want, got in decode), decode


@pytest.mark.parametrize("mode", ["trace", "graph"])
def test_the_batch_size_slice_is_the_trainers_and_metric_slices_stay_metrics(mode):
    # With a batch size known only at run time (ragged input), Keras's train_step takes
    # `tf.shape(x)[0]` for the loss tracker at the root: the first root `strided_slice`.
    # The metrics' own slices come after it (`strided_slice_1`...), as in rich_metrics.
    for model, want in (("ragged_input", {"other"}), ("rich_metrics", {"metrics"})):
        labels, rows = labelled_rows(model, mode)
        slices = [
            (key, label["phase"], rows[key]["phase"])
            for key, label in labels["events"].items()
            if re.match(r"^StatefulPartitionedCall/strided_slice(_\d+)?:", key)
        ]
        assert {w for _, w, _ in slices} == want
        assert [(k, w, g) for k, w, g in slices if w != g] == []


@pytest.mark.parametrize("mode", ["trace", "graph"])
def test_op_function_scopes_of_metrics_at_the_root(mode):
    # SparseTopKCategoricalAccuracy runs tf.math.in_top_k at the step's root, which opens
    # its own scope (`in_top_k/InTopKV2`): one root op, a metric's.
    labels, rows = labelled_rows("weighted_metrics_sw", mode)
    ops = [
        (k, v["phase"], rows[k]["phase"]) for k, v in labels["events"].items() if "in_top_k/" in k
    ]
    assert ops and all(want == got == "metrics" for _, want, got in ops), ops
