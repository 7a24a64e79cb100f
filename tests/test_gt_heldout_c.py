"""The third held-out set (tests/gt/models_e.py) and what its first scores exposed.

A GAN-style custom `train_step` calls its generator and discriminator straight from the
step and keeps two optimizers of its own: the callback must record the layer path of
each call as it was called (no `gan/` above the sub-models, as the op names say) and the
optimizer phase of both optimizers; trace only, both optimizers' counters at the root.
"""

from __future__ import annotations

import json

import pytest

from tb_metal_plugin.recording.layers import _as_called
from tests.gt import record
from tests.gt import score as gt
from tests.test_ground_truth import labelled_rows, record_in_subprocess


def test_heldout_sets_are_separate_from_each_other_and_the_corpus():
    sets = list(record.SETS.values())  # the corpus first
    names = [n for s in sets for n in s]
    assert len(names) == len(set(names)), "a model in two sets"
    assert all(len(s) >= 3 for s in sets[1:])
    for name in names:
        assert callable(record._builder(name)), name


def test_two_optimizers_counters_are_optimizer_work_trace_only():
    labels, rows = labelled_rows("gan_two_optimizers")
    counters = {
        k: ev
        for k, ev in labels["events"].items()
        if k.split(":")[0].rsplit("/", 1)[-1].startswith(("Add_", "AssignVariableOp"))
        and k.count("/") == 1
    }
    assert len(counters) >= 3, sorted(counters)
    for key, ev in counters.items():
        assert ev["phase"] == "optimizer", (key, ev)
        assert rows[key]["phase"] == "optimizer", (key, rows[key]["phase"])


@pytest.mark.slow
def test_callback_on_a_custom_step_with_sub_models_and_two_optimizers(tmp_path):
    out = record_in_subprocess(tmp_path, "gan_two_optimizers", "callback")
    labels, rows = labelled_rows("gan_two_optimizers", "manifest", out)
    r = gt.score(labels, rows)
    assert r["layer_op"] == 1.0 and r["phase_tw"] == 1.0, r["worst"][:4]
    layers = {tuple(row["layer"]) for row in rows.values() if row["layer"]}
    assert ("generator", "g_h") in layers and ("discriminator", "d_out") in layers, layers
    optimizer = [k for k, row in rows.items() if row["phase"] == "optimizer"]
    assert any("/adam/" in k for k in optimizer) and any("/sgd/" in k for k in optimizer)
    # The manifest's layer tree puts the sub-models where the step called them too, so
    # the view shows one generator, not an empty copy under `gan`.
    manifest = next((out / "gan_two_optimizers").glob("callback/**/*.tb_metal.json"))
    tree = {tuple(entry["path"]) for entry in json.loads(manifest.read_text())["layers"]}
    assert ("generator", "g_h") in tree and ("discriminator", "d_out") in tree, tree
    assert not any(p[:2] == ("gan", "generator") for p in tree), tree


def test_layer_tree_follows_where_layers_were_called():
    moved = {("gan", "generator"): ("generator",)}
    assert _as_called(("gan", "generator", "g_h"), moved) == ("generator", "g_h")
    assert _as_called(("gan", "generator"), moved) == ("generator",)
    assert _as_called(("gan",), moved) == ("gan",)  # never called: where the model has it
    assert _as_called(("gan", "disc", "d_h"), moved) == ("gan", "disc", "d_h")
