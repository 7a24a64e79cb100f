"""Readiness roll-ups the faces used to compute themselves now come from the core."""

from __future__ import annotations

from pathlib import Path

import pytest

from tb_metal_plugin import api, readiness

DEMO = Path(__file__).resolve().parent.parent / "demo" / "logs"


@pytest.mark.parametrize("run", ["custom_op/train", "augment/train", "cnn_cpu/train"])
def test_cpu_op_types_and_cpu_time_per_layer(run):
    data = readiness.check(api.load_profile(DEMO, run=run).ops(), None)
    own: dict[tuple, dict[str, int]] = {}
    for op in data["ops"]:
        if op["verdict"] == "cpu_only_by_nature":
            types = own.setdefault(tuple(op["layer"] or ()), {})
            types[op["type"]] = types.get(op["type"], 0) + op["self_ps"]
    for group in data["layers"]:
        types = own.get(tuple(group["layer"] or ()), {})
        assert group["cpu_only_op_types"] == sorted(types, key=lambda t: (-types[t], t))
        assert group["cpu_ps"] == group["verdicts"]["cpu_fallback"] + sum(types.values())
    for group in data["layer_tree"]:
        under = {
            t
            for key, types in own.items()
            if key[: len(group["layer"])] == tuple(group["layer"])
            for t in types
        }
        assert set(group["cpu_only_op_types"]) == under


def test_a_py_function_layer_names_its_op_type():
    data = readiness.check(api.load_profile(DEMO, run="custom_op/train").ops(), None)
    layer = next(g for g in data["layers"] if g["layer"] and g["layer"][-1] == "py_tanh")
    assert layer["cpu_only_op_types"] == ["EagerPyFunc"] and layer["cpu_ps"] > 0


# -- the reasons of a group, said once (the tab and the JSON show them as they are) -----------


def test_sentences_differing_only_in_their_op_type_are_said_once():
    from tb_metal_plugin.readiness_groups import said_once

    pairs = [
        ("A", "no GPU kernel for A"),
        ("B", "A GPU kernel exists for B, but not for dtype int64"),
        ("C", "no GPU kernel for C"),
        ("A", "no GPU kernel for A"),  # the same op type again: named once
        ("", "the op type is not known"),  # nothing to take out
    ]
    assert said_once(pairs) == [
        "no GPU kernel for A, C",
        "A GPU kernel exists for B, but not for dtype int64",
        "the op type is not known",
    ]


def _op(name, op_type, layer, ps, bucket=None):
    return {"name": name, "type": op_type, "layer": layer, "bucket": bucket, "self_ps": ps}


def test_each_layer_and_bucket_says_why_its_own_ops_run_on_the_cpu_most_time_first():
    rot, head = ["m", "rot"], ["m", "head"]
    ops = [
        _op("rot/Sin", "Sin", rot, 5),
        _op("rot/Transform", "ImageProjectiveTransformV3", rot, 70),
        _op("rot/Sin_1", "Sin", rot, 80),  # Sin's time adds up: 85, more than the transform's
        _op("rot/py", "EagerPyFunc", rot, 3),
        _op("head/MatMul", "MatMul", head, 500),
        _op("IteratorGetNext", "IteratorGetNext", None, 9, "input pipeline"),
        _op("BitwiseAnd", "BitwiseAnd", None, 2, "metrics"),
    ]
    data = readiness.predict_ops(ops)
    layers = {tuple(g["layer"] or ()): g for g in data["layers"]}
    assert layers[("m", "rot")]["reasons"] == {
        "cpu_fallback": [
            "no Metal kernel for Sin, ImageProjectiveTransformV3: it would fall back to the CPU"
        ],
        "cpu_only_by_nature": ["EagerPyFunc runs Python code on the host (tf.py_function)"],
    }
    assert layers[("m", "head")]["reasons"] == {"cpu_fallback": [], "cpu_only_by_nature": []}
    buckets = {g["bucket"]: g["reasons"] for g in data["buckets"]}
    assert buckets["metrics"]["cpu_fallback"] == [
        "no Metal kernel for BitwiseAnd: it would fall back to the CPU"
    ]
    assert buckets["input pipeline"]["cpu_only_by_nature"] == [
        "IteratorGetNext is a tf.data input-pipeline op; it runs on the host"
    ]
    # The ops outside layers, all together, say both.
    assert layers[()]["reasons"]["cpu_fallback"] == buckets["metrics"]["cpu_fallback"]
    # Subtree rows sum time; they say no reasons (their layers' rows do).
    assert all("reasons" not in g for g in data["layer_tree"])


def test_the_rotation_layer_of_a_real_run_names_its_fallback_types_by_time():
    data = readiness.check(api.load_profile(DEMO, run="augment/train").ops(), None)
    rotation = next(g for g in data["layers"] if g["layer"] and "rotation" in g["layer"][-1])
    per_type: dict[str, int] = {}
    for op in data["ops"]:
        if op["layer"] == rotation["layer"] and op["verdict"] == "cpu_fallback":
            per_type[op["type"]] = per_type.get(op["type"], 0) + op["self_ps"]
    assert len(per_type) > 1
    by_time = sorted(per_type, key=lambda t: -per_type[t])
    assert rotation["reasons"]["cpu_fallback"] == [
        f"no Metal kernel for {', '.join(by_time)}: it would fall back to the CPU"
    ]
