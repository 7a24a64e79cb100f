"""Optimizers under names of their own: a named Adam (`fancy_adam/`) and a custom
Optimizer subclass (`sign_momentum/`), found by the variable updates right below their
scope (opphase.updating_scopes), not by a list of names.

Ground truth is the labeller's (tests/gt models `named_optimizer`, `custom_optimizer` of
heldout_o, TF 2.21 / Keras 3.15).
"""

from __future__ import annotations

import pytest

from tb_metal_plugin.opphase import updating_scopes
from tests.test_ground_truth import labelled_rows


@pytest.mark.parametrize("mode", ["trace", "graph"])
@pytest.mark.parametrize(
    "model,scope", [("named_optimizer", "fancy_adam"), ("custom_optimizer", "sign_momentum")]
)
def test_an_optimizer_with_its_own_name_is_the_optimizer(model, scope, mode):
    labels, rows = labelled_rows(model, mode)
    mine = [k for k in labels["events"] if f"/{scope}/" in k and k in rows]
    assert len(mine) >= 20
    for key in mine:
        assert labels["events"][key]["phase"] == "optimizer", key  # the labeller's word
        assert rows[key]["phase"] == "optimizer", key
        assert rows[key]["bucket"] == "optimizer", key


def test_updating_scopes_are_top_level_scopes_that_assign_variables():
    s = "StatefulPartitionedCall/"
    ops = [
        (s + "fancy_adam/AssignSubVariableOp_4", "AssignSubVariableOp"),
        (s + "AssignVariableOp_2", "AssignVariableOp"),  # a metric's, at the root
        (s + "m_1/bn_1/AssignMovingAvg/AssignSubVariableOp", "AssignSubVariableOp"),
        (s + "adam/AssignAddVariableOp", "AssignAddVariableOp"),  # named already
        (s + "my_step/AssignVariableOp", "AssignVariableOp"),  # the user's step scope
        (s + "fancy_adam/Sqrt", "Sqrt"),
    ]
    assert updating_scopes(ops, "my_step") == {"fancy_adam"}
