"""Scopes the user opens (`tf.name_scope` / `keras.name_scope` in a call or around a
custom train_step) and functions the user's train_step calls (user_scopes.maybe_user_scope,
the layer walk in attribution, `_Head.inside` for nested calls).

Ground truth is the labeller's (tests/gt models `user_name_scopes`, `scoped_train_step`,
`nested_tf_function_step` of heldout_n, TF 2.21 / Keras 3.15): it reads Keras's own call
records, not op names.
"""

from __future__ import annotations

import pytest

from tb_metal_plugin.opnames import scope_sets
from tb_metal_plugin.root_owners import user_step_scope
from tb_metal_plugin.user_scopes import maybe_user_scope
from tests.test_ground_truth import labelled_rows


def _layer_agreement(model: str, mode: str) -> tuple[int, list[str]]:
    labels, rows = labelled_rows(model, mode)
    checked, wrong = 0, []
    for key, label in labels["events"].items():
        if key not in rows or label.get("kind") not in ("layer", "gradient"):
            continue
        checked += 1
        if tuple(rows[key]["layer"] or ()) != tuple(label.get("layer") or ()):
            wrong.append(f"{key}: {rows[key]['layer']} != {label.get('layer')}")
    return checked, wrong


@pytest.mark.parametrize("mode", ["trace", "graph"])
@pytest.mark.parametrize("model", ["user_name_scopes", "scoped_train_step"])
def test_layers_inside_user_scopes_are_found(model, mode):
    checked, wrong = _layer_agreement(model, mode)
    assert checked >= 10
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("mode", ["trace", "graph"])
def test_user_scope_is_not_a_layer(mode):
    _, rows = labelled_rows("user_name_scopes", mode)
    layers = {tuple(r["layer"]) for r in rows.values() if r["layer"]}
    assert layers == {("scoped",), ("scoped", "enc_a"), ("scoped", "enc_b"), ("scoped", "out")}


@pytest.mark.parametrize("mode", ["trace", "graph"])
def test_ops_of_a_function_the_step_calls_are_not_root_ops(mode):
    labels, rows = labelled_rows("nested_tf_function_step", mode)
    nested = [
        k
        for k in labels["events"]
        if k.startswith("StatefulPartitionedCall/PartitionedCall") and k in rows
    ]
    assert len(nested) >= 8
    for key in nested:
        assert rows[key]["phase"] == labels["events"][key]["phase"], key


def test_maybe_user_scope():
    assert maybe_user_scope("encoder") and maybe_user_scope("my_step")
    for comp in ("dense_1", "moments", "while", "gradient_tape", "_3", "PartitionedCall"):
        assert not maybe_user_scope(comp), comp


@pytest.mark.parametrize("mode", ["trace", "graph"])
def test_root_work_under_a_scope_around_the_step_keeps_its_phase(mode):
    labels, rows = labelled_rows("scoped_train_step", mode)
    root = {
        k: label["phase"]
        for k, label in labels["events"].items()
        if k.startswith("StatefulPartitionedCall/my_step/") and not label.get("layer") and k in rows
    }
    assert {"loss", "optimizer", "metrics"} <= set(root.values())
    wrong = [k for k, phase in root.items() if rows[k]["phase"] != phase]
    assert len(wrong) <= 1, wrong  # `my_step/sub`, the one op left (see the closing note)


def test_user_step_scope_needs_keras_root_scopes_below_it():
    ops = [
        ("StatefulPartitionedCall/my_step/compile_loss/mse/Mean", "Mean"),
        ("StatefulPartitionedCall/my_step/Add_2", "AddV2"),
    ]
    assert user_step_scope(scope_sets(ops)[0]) == "my_step"
    # The optimizer's own scope has optimizer scopes below it; a layer has none.
    assert user_step_scope({("adam", "update_1")}) is None
    assert user_step_scope({("encoder", "dense_1")}) is None
