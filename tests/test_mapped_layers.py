"""Layers called inside a function that tf.map_fn or tf.vectorized_map runs over the
batch (user_scopes.BODY_RUNNERS; vectorized_map's rewritten ops under `pfor/` are the caller's).

Ground truth is the labeller's (tests/gt models `map_fn_layer`, `vmap_layer` of heldout_o,
TF 2.21 / Keras 3.15): the layer whose call was running when each op was created.
"""

from __future__ import annotations

import pytest

from tests.test_ground_truth import labelled_rows


@pytest.mark.parametrize("mode", ["trace", "graph"])
@pytest.mark.parametrize(
    "model,inner", [("map_fn_layer", ("mapped", "per_sample", "inner")),
                    ("vmap_layer", ("vmap", "vmapped", "inner"))],
)  # fmt: skip
def test_layers_inside_a_mapped_function(model, inner, mode):
    labels, rows = labelled_rows(model, mode)
    checked = 0
    for key, label in labels["events"].items():
        if key not in rows or label.get("kind") not in ("layer", "gradient"):
            continue
        checked += 1
        assert tuple(rows[key]["layer"] or ()) == tuple(label.get("layer") or ()), key
    assert checked >= 10
    assert inner in {tuple(r["layer"] or ()) for r in rows.values()}


def test_vectorized_maps_rewritten_ops_are_the_callers():
    labels, rows = labelled_rows("vmap_layer", "trace")
    pfor = [k for k in rows if "/pfor/" in k and "/loop_body/" in k]
    assert pfor
    for key in pfor:
        assert tuple(rows[key]["layer"]) == ("vmap", "vmapped"), key
        assert tuple(labels["events"][key]["layer"]) == ("vmap", "vmapped"), key
