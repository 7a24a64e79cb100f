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
