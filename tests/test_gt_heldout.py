"""The held-out ground-truth set (tests/gt/models_c.py) and the labeller fixes it led to.

Fast: the held-out models are recordable (`record --set heldout`) and never part of the
default corpus. Slow: recording two held-out models checks the labeller on what they
exposed (a validation run's test function sharing top-level names with the train
function; Grappler's renamed `<scope>/ArithmeticOptimizer/<Stage>_<node>` nodes).
"""

from __future__ import annotations

import pytest

from tests.gt import record
from tests.test_ground_truth import record_in_subprocess, recorded_events


def test_heldout_set_is_separate_from_the_corpus():
    assert len(record.HELDOUT) >= 10
    assert not set(record.HELDOUT) & set(record.ALL), "held-out models must not join the corpus"
    assert record.SETS["corpus"] == record.ALL
    for name in record.HELDOUT:
        assert callable(record._builder(name)), name


def test_record_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit):
        record.main(["/nonexistent-out", "--only", "no_such_model"])
    assert "unknown models" in capsys.readouterr().err


@pytest.mark.slow
def test_labeller_on_validation_and_grappler_renames(tmp_path):
    out = record_in_subprocess(tmp_path, "with_validation,two_input_attention", "stock")

    # The evaluation inside the trace runs a test function whose call op has the same
    # name as the train function's: gradient ops must still resolve in the train graph.
    val = recorded_events(out, "with_validation")
    grads = {k: ev for k, ev in val.items() if "/gradient_tape/" in k and ev.get("phase")}
    assert grads and all(ev["phase"] == "backward" for ev in grads.values()), grads
    for key, ev in val.items():
        if ev["lines"] == ["python"]:  # eager ops: no graph op of that name is them
            assert ev.get("phase") is None, (key, ev)
    # Grappler folds the key's transpose into the scores' BatchMatMul and names the new
    # node after the MatMul it replaced, forward and in the gradient.
    attn = recorded_events(out, "two_input_attention")
    folded = {k: ev for k, ev in attn.items() if "FoldTransposeIntoMatMul" in k}
    assert {ev["phase"] for ev in folded.values()} == {"forward", "backward"}, folded
    for key, ev in folded.items():
        assert ev["layer"] == ["cross_attn", "dot_attn"], (key, ev)
        assert ev["how"].startswith("grappler name"), (key, ev)
