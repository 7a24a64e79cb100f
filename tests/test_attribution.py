"""Attribution on real traces: layers and phases against labels recorded at trace time."""

from __future__ import annotations

import json

import pytest

from tb_metal_plugin import load_profile
from tb_metal_plugin.attribution import TraceAttributor
from tb_metal_plugin.manifest_attribution import ManifestAttributor
from tests import corpus as c


@pytest.mark.parametrize("case", c.CASES)
def test_trace_only_attribution_matches_recorded_scopes(corpus, case):
    acc = c.accuracy(corpus[case])
    assert acc["ops"] > 50
    assert acc["per_op"] >= 0.97, acc["wrong"][:10]
    assert acc["time_weighted"] >= 0.97, acc["wrong"][:10]


def _ops(run):
    return load_profile(run).ops()["ops"]


def _by_suffix(rows, suffix):
    hits = [r for r in rows if r["name"].endswith(suffix)]
    assert hits, f"no op ending {suffix}"
    return hits


def test_colliding_names_strip_exactly_one_suffix(corpus):
    rows = _ops(corpus["functional_collide"])
    # layer `dense` is scoped dense_1, the real `dense_1` is scoped dense_1_2
    for r in rows:
        if "/dense_1_2/" in r["name"]:
            assert r["layer"][-1] == "dense_1", r
        elif "/dense_1/" in r["name"]:
            assert r["layer"][-1] == "dense", r
    assert any(r["layer"] and r["layer"][-1] == "ln_a0" for r in rows)


def test_phases_of_a_train_step(corpus):
    rows = _ops(corpus["functional_collide"])
    phases = {r["phase"] for r in rows}
    assert {"forward", "backward", "optimizer", "loss"} <= phases
    for r in rows:
        if "gradient_tape/" in r["name"] and "compile_loss" not in r["name"]:
            assert r["phase"] == "backward", r
        if "/adam/" in r["name"]:
            assert r["phase"] == "optimizer" and r["layer"] is None
            assert r["bucket"] == "optimizer"
        if "/compile_loss/" in r["name"] and "gradient_tape" not in r["name"]:
            assert r["phase"] == "loss"


def test_input_pipeline_ops_go_to_input(corpus):
    rows = _ops(corpus["sequential"])
    inputs = [r for r in rows if r["phase"] == "input"]
    assert inputs and all(r["layer"] is None for r in inputs)
    from tb_metal_plugin.attribution import INPUT_TYPES

    assert any(r["type"] in INPUT_TYPES for r in inputs)


def test_rnn_loop_and_its_gradient_loop_reach_the_cell(corpus):
    rows = _ops(corpus["lstm"])
    cell_fwd = [
        r for r in rows if r["layer"] and r["layer"][-1] == "lstm_cell" and r["phase"] == "forward"
    ]
    cell_bwd = [
        r for r in rows if r["layer"] and r["layer"][-1] == "lstm_cell" and r["phase"] == "backward"
    ]
    assert cell_fwd and cell_bwd
    assert all("while" in r["name"] for r in cell_fwd + cell_bwd)


def test_steps_per_execution_loop_is_unwrapped(corpus):
    rows = _ops(corpus["steps_per_execution"])
    hidden = [r for r in rows if r["layer"] and r["layer"][-1] == "hidden"]
    assert hidden and any("while" in r["name"] for r in hidden)


def test_nested_models_nest(corpus):
    rows = _ops(corpus["nested"])
    paths = {tuple(r["layer"]) for r in rows if r["layer"]}
    assert ("outer", "encoder", "proj") in paths
    assert ("outer", "encoder", "dense") in paths
    assert ("outer", "dense") in paths


def test_shared_layer_calls_merge_into_one_layer(corpus):
    labels = json.loads((corpus["shared"] / "labels.json").read_text())
    shared = [k for k in labels if k.endswith("/shared")]
    assert len(labels[shared[0]]) == 2  # two calls, two scopes
    rows = _ops(corpus["shared"])
    scopes = {
        comp
        for r in rows
        if r["layer"] and r["layer"][-1] == "shared"
        for comp in r["name"].split("/")
        if comp.startswith("shared_")
    }
    assert len(scopes) == 2


def test_py_function_op_is_in_its_layer(corpus):
    rows = _ops(corpus["py_function"])
    py = [r for r in rows if r["type"] in ("PyFunc", "PyFuncStateless", "EagerPyFunc")]
    assert py and all(r["layer"][-1] == "numpy_tanh" for r in py)


def test_manifest_attribution_is_exact(corpus):
    for case in c.CASES:
        labels = json.loads((corpus[case] / "labels.json").read_text())
        manifest = {"layers": [{"path": p.split("/"), "scopes": s} for p, s in labels.items()]}
        att = ManifestAttributor(manifest)
        for r in _ops(corpus[case]):
            assert att.layer_of(r["name"]) == c.expected_layer(r["name"], labels), r["name"]


def test_trace_attributor_names_from_domain_notes():
    names = [
        ("StatefulPartitionedCall/functional_1/mha_0_1/value_1/MatMul", "MatMul"),
        ("StatefulPartitionedCall/gradient_tape/functional_1/ln_a0_1/Neg", "Neg"),
        ("StatefulPartitionedCall/functional_1/ln_a0_1/add", "AddV2"),
        ("StatefulPartitionedCall/gradient_tape/functional_1/ln_a0_1/add_1/Sum", "Sum"),
    ]
    att = TraceAttributor(names)
    assert att.layer_of(names[0][0]) == ("functional", "mha_0", "value")
    assert att.layer_of(names[1][0]) == ("functional", "ln_a0")
    # `add_1` is the gradient of op `add`, not a layer called `add`
    assert att.layer_of(names[3][0]) == ("functional", "ln_a0")
