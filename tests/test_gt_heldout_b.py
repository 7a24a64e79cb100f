"""The second held-out set (tests/gt/models_d.py) and the rules its first scores led to.

Fast: each class a held-out model exposed, checked on its committed real trace against the
independent labels (tests/fixtures/gt/<model>): a function's scope inside an RNN is not a
layer, open loop accumulators follow TF's creation order, a metric's root ops keep the
metrics phase. Slow: recording two models checks the labeller's own fixes (a Layer
subclass's `__call__` override; Grappler's `unary_ops_composition` nodes).
"""

from __future__ import annotations

import pytest

from tb_metal_plugin.opnames import grappler_original
from tests.gt import record
from tests.test_ground_truth import labelled_rows, record_in_subprocess, recorded_events


def _scored(model: str) -> tuple[dict, dict]:
    labels, rows = labelled_rows(model)
    return labels["events"], rows


def test_second_heldout_set_is_separate():
    assert len(record.HELDOUT_B) >= 10
    assert not set(record.HELDOUT_B) & (set(record.ALL) | set(record.HELDOUT))
    for name in record.HELDOUT_B:
        assert callable(record._builder(name)), name


def test_a_functions_second_scope_is_not_a_layer():
    # keras.random.dropout opens `stateless_dropout`, then `stateless_dropout_1`, ... in
    # the RNN's scope; the suffixed ones look like layer scopes but are the RNN's work.
    events, rows = _scored("stacked_cells")
    dropout = {k: ev for k, ev in events.items() if "/stateless_dropout" in k and ev["layer"]}
    assert len(dropout) >= 8
    for key, ev in dropout.items():
        assert ev["layer"] == ["cells", "stack"], (key, ev)
        assert rows[key]["layer"] == ["cells", "stack"], (key, rows[key]["layer"])


def test_open_accumulators_follow_creation_order():
    # Pops name 24 of the 29 pushes' layers (the dropout masks' values are never popped);
    # pushes made between two of a cell's own are that cell's.
    events, rows = _scored("stacked_cells")
    pushes = {k: ev for k, ev in events.items() if k.endswith(":TensorListPushBack")}
    assert len(pushes) == 29
    right = [k for k, ev in pushes.items() if rows[k]["layer"] == ev["layer"]]
    assert len(right) >= 28, sorted(set(pushes) - set(right))


def test_metric_root_ops_keep_the_metrics_phase():
    # AUC's clip_by_value at the step's root, and a metric Cast Grappler rewrote
    # (`ArithmeticOptimizer/ReorderCastLike..._Cast_3`): metrics, not loss or other.
    events, rows = _scored("siamese")
    picked = {
        k: ev
        for k, ev in events.items()
        if k.startswith(("StatefulPartitionedCall/clip_by_value", "StatefulPartitionedCall/Arith"))
    }
    assert len(picked) >= 3, sorted(picked)
    for key, ev in picked.items():
        assert ev["phase"] == "metrics", (key, ev)
        assert rows[key]["phase"] == "metrics", (key, rows[key]["phase"])


@pytest.mark.parametrize(
    "name,original",
    [
        (
            "ReorderCastLikeAndValuePreserving_float_ReorderCastLikeAndValuePreserving_float_Cast_3",
            "Cast_3",
        ),
        ("FoldTransposeIntoMatMul_MatMul", "MatMul"),
        ("AddOpsRewrite_mul_4", "mul_4"),
        ("Cast_3", "Cast_3"),
        ("Sum", "Sum"),
    ],
)
def test_grappler_original_names(name, original):
    assert grappler_original(name) == original


@pytest.mark.slow
def test_labeller_on_call_overrides_and_unary_compositions(tmp_path):
    out = record_in_subprocess(tmp_path, "wide_deep,noisy_regularised", "stock")

    # CategoryEncoding's own __call__ (TFDataLayer) converts its int input before the base
    # Layer.__call__ opens its scope: that cast is the layer's, not the model's.
    wide = recorded_events(out, "wide_deep")
    casts = {
        k: ev for k, ev in wide.items() if k.startswith("StatefulPartitionedCall/wide_deep_1/Cast")
    }
    layers = sorted(tuple(ev["layer"]) for ev in casts.values())
    assert ("wide_deep", "wide_onehot") in layers, casts
    assert ("wide_deep",) in layers, casts  # Functional's own int64 -> int32 input casts
    # PReLU's Neg -> Relu chain, composed into `<last node>/unary_ops_composition`.
    noisy = recorded_events(out, "noisy_regularised")
    comp = {k: ev for k, ev in noisy.items() if "unary_ops_composition" in k}
    assert comp, "no composed node in this recording"
    for key, ev in comp.items():
        assert ev["layer"] == ["regularised", "prelu"], (key, ev)
