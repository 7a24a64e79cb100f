"""Attribution against the independent ground truth of tests/gt (issue 9).

Fast tier: committed real traces (tests/fixtures/gt/<model>/{stock,callback}/...) with
the labels recorded when Keras created each op; the package's public API must reach the
issue's thresholds on every model: from the stock trace file alone (op names), from the
stock run (trace and the step graph in its event file; the models committed with one) and
in manifest mode (MetalProfileCallback trace). No TensorFlow import here.
Slow tier: record two models with the labeller and check that its hooks still map the
trace (a TF/Keras upgrade that breaks a private hook must fail loudly here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gt import score as gt

FIXTURES = Path(__file__).parent / "fixtures" / "gt"
PHASES = {"forward", "backward", "optimizer", "loss", "metrics", "input", "other"}


def _cases() -> list[tuple[str, str]]:
    if not FIXTURES.is_dir():
        return []
    return [
        (m.name, mode)
        for m in sorted(FIXTURES.iterdir())
        if m.is_dir()
        for mode, rec in gt.MODES.items()
        if (m / f"{rec}.labels.json").exists()
        and (mode != "graph" or gt.has_step_graph(str(m / _trace_of(m, rec))))
    ]


def _trace_of(model_dir: Path, rec: str) -> str:
    return gt.load_labels(str(model_dir / f"{rec}.labels.json"))["trace"]


CASES = _cases()


def _labels(model: str, mode: str) -> dict:
    return gt.load_labels(str(FIXTURES / model / f"{gt.MODES[mode]}.labels.json"))


def labelled_rows(model: str, mode: str = "trace", root: Path = FIXTURES) -> tuple[dict, dict]:
    """(labels, the package's op rows) of one recorded model (committed ones by default)."""
    labels = gt.load_labels(str(root / model / f"{gt.MODES[mode]}.labels.json"))
    return labels, gt.predictions(str(root / model / labels["trace"]), mode)


def test_fixture_corpus_is_there():
    models = {m for m, _ in CASES}
    assert len(models) >= 4, f"committed ground-truth models: {sorted(models)}"
    assert {mode for _, mode in CASES} == set(gt.MODES)


# Known shortfalls, measured and reported in the issue's closing note; strict, so a fix
# that lifts one above the thresholds fails here until it is taken off this list.
SHORT_OF_THRESHOLD = {
    ("k36_integer_features", "trace"): (
        "Keras 3.6's Functional casts the model's inputs (the model's ops) but a "
        "preprocessing layer casts its own (Keras 3.15 casts in each layer): only the step "
        "graph shows a cast's dtypes, so trace-only on Keras 3.6 takes every model-level "
        "cast as Functional's, the common case (3 ops of 29: 89.7% per op)"
    ),
    ("k36_custom_cell", "trace"): (
        "a custom RNN cell's loop accumulators (TF 2.18, Keras 3.6): which sublayer's "
        "gradient needs each pushed value the trace does not show, and the pops' counts "
        "share them out wrongly (4 ops of 67: 94.0% per op); the step graph shows the value"
    ),
    ("lambda_cond", "trace"): (
        "a tape AddN summing two uses of a layer's input inside that layer (square and sin): "
        "its consumer is the previous layer's gradient, so trace-only gives the model "
        "(1 op of 26: 96.2% per op)"
    ),
    ("tf_function_layer", "trace"): (
        "tf.recompute_grad's gradient function makes ops at the step's root with no scope "
        "(SelectV2, Equal, Max: types only metrics make there otherwise), so trace-only "
        "gives them to the metrics (about 7% of that model's op time)"
    ),
    ("tf_function_layer", "graph"): (
        "the same ops: in the step graph they read no gradient (the recomputation feeds the "
        "next layer's forward op after Grappler merged it), so the graph cannot say either"
    ),
    ("tied_embeddings", "trace"): (
        "the tape makes the embedding's sparse gradient dense (UnsortedSegmentSum) to add the "
        "output projection's: trace-only gives it the layer that ran beside it (2 ops of 22, "
        "2.4% of op time); the step graph names its segment ids, the embedding's"
    ),
    ("k2_mixed_float16", "manifest"): (
        "tf_keras (Keras 2): the callback records placement and the step graph, not op "
        "records, so attribution is the stock run's; tf_keras's loss-scale bookkeeping at "
        "the root (the unscaling reciprocal, the scale's update in a root cond) reads as "
        "another phase: 99.3% of op time, under the callback's 99.5% (the stock-run "
        "thresholds hold)"
    ),
    ("k2_lstm", "trace"): (
        "tf_keras's LSTM runs its loop in a function the runtime calls without inlining: "
        "those ops' names carry no layer (`while_15/body/_1/while/MatMul`), and only the "
        "step graph (its call nodes and its own nodes) says they ran in the LSTM's call"
    ),
    ("time_distributed", "trace"): (
        "three tape AddNs summing gradients inside the wrapped layers: trace-only reads "
        "their neighbours and gives the wrapper or no layer (3 ops of 87: 96.6% per op); "
        "the step graph lists their inputs"
    ),
    ("quantized_lora", "trace"): (
        "an int8-quantized Dense's custom gradient runs at the step's root under no scope "
        "(`truediv`, `Cast_1`, a folded MatMul): trace-only reads them as metrics and other "
        "(layer 90.0% of op time); the step graph shows they read a gradient and feed one "
        "(custom_grads.py: 100%)"
    ),
    ("nested_tf_function_step", "trace"): (
        "with the user's own work at the step's root, which root counter is the optimizer's "
        "and which a metric's is read from their order and comes out swapped "
        "(phase 96.7% of op time); the step graph settles it (99.9%)"
    ),
    ("nested_tf_function_step", "manifest"): (
        "the callback's recorder maps `PartitionedCall_1/Mean` (a Mean in a tf.function "
        "the train_step calls) to the step's own metric Mean of the same name: 97.8%"
    ),
    ("nested_models", "trace"): (
        "a tape AddN summing gradients of two layers: its inputs are not in the trace, so "
        "trace-only gives one layer where the ground truth gives their common ancestor "
        "(1 op of 18: 94.4% per op)"
    ),
}


def _threshold_cases():
    for model, mode in CASES:
        reason = SHORT_OF_THRESHOLD.get((model, mode))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(model, mode, marks=marks, id=f"{model}-{mode}")


@pytest.mark.parametrize("model,mode", list(_threshold_cases()))
def test_attribution_meets_issue_thresholds(model, mode):
    labels, rows = labelled_rows(model, mode)
    r = gt.score(labels, rows)
    failing = {k: round(r[k], 4) for k, t in gt.THRESHOLDS[mode].items() if r[k] < t}
    assert not failing, f"{model} ({mode}) below {gt.THRESHOLDS[mode]}: {failing}; worst: " + (
        "; ".join(f"{w['op']} expected {w['expected']} got {w['got']}" for w in r["worst"][:4])
    )


@pytest.mark.parametrize("model,mode", CASES)
def test_labels_cover_the_trace(model, mode):
    """Every op event has a label or a stated reason; at most 2% of op time is unlabelled
    (partitioner control-edge copies and cross-layer Grappler rewrites)."""
    labels = _labels(model, mode)
    for key, ev in labels["events"].items():
        assert ev.get("phase") in PHASES or ev.get("reason"), key
        assert ev.get("layer") is None or ev.get("phase") in PHASES, key
    assert labels["summary"]["unmapped_share"] <= 0.02, labels["summary"]


def test_scorer_counts_a_wrong_layer_and_phase():
    """The scorer is not vacuous: perfect rows score 1.0, one wrong row lowers each figure."""
    model, mode = next((m, md) for m, md in CASES if md == "trace")
    labels = _labels(model, mode)
    rows = {
        k: {"layer": ev.get("layer"), "phase": ev.get("phase"), "self_ps": ev["self_ps"]}
        for k, ev in labels["events"].items()
    }
    perfect = gt.score(labels, rows)
    assert (perfect["layer_tw"], perfect["layer_op"], perfect["phase_tw"]) == (1.0, 1.0, 1.0)
    key = max(
        (k for k, ev in labels["events"].items() if ev.get("layer")),
        key=lambda k: labels["events"][k]["self_ps"],
    )
    rows[key] = dict(rows[key], layer=["elsewhere"], phase="other")
    worse = gt.score(labels, rows)
    assert worse["layer_tw"] < 1.0 and worse["layer_op"] < 1.0 and worse["phase_tw"] < 1.0
    assert worse["worst"][0]["op"] == key


# -- slow: the labeller's hooks against the installed TensorFlow / Keras ----------------------


def record_in_subprocess(tmp_path: Path, only: str, mode: str) -> Path:
    """`python -m tests.gt record` of some models in one mode, in its own process (the
    labeller patches TensorFlow for the whole process); returns the output folder."""
    out = tmp_path / "gt"
    cmd = [sys.executable, "-m", "tests.gt", "record", str(out), "--only", only, "--mode", mode]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    root = Path(__file__).parent.parent
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def recorded_events(out: Path, model: str, mode: str = "stock") -> dict:
    """The labelled events of one model `record_in_subprocess` wrote; no labeller errors."""
    with open(out / model / f"{mode}.labels.json") as f:
        labels = json.load(f)
    assert not labels["labeller_errors"], labels["labeller_errors"]
    return labels["events"]


@pytest.mark.slow
def test_labeller_maps_recorded_traces(tmp_path):
    out = record_in_subprocess(tmp_path, "conv_bn,lstm", "stock")
    expect = {
        # Every layer with weights must show up with forward and backward work.
        "conv_bn": {("conv_bn", n) for n in ("stem", "stem_bn", "conv_a", "bn_a", "proj", "head")},
        "lstm": {("lstm_model", "lstm", "lstm_cell"), ("lstm_model", "head")},
    }
    for model, layers in expect.items():
        with open(out / model / "stock.labels.json") as f:
            labels = json.load(f)
        assert not labels["labeller_errors"], labels["labeller_errors"]
        assert labels["summary"]["unmapped_share"] <= 0.01, labels["summary"]
        seen = {
            (tuple(ev["layer"]), ev["phase"]) for ev in labels["events"].values() if ev.get("layer")
        }
        for layer in layers:
            assert (layer, "forward") in seen and (layer, "backward") in seen, (model, layer)
        phases = {ev.get("phase") for ev in labels["events"].values()}
        assert {"forward", "backward", "loss", "optimizer", "input"} <= phases, phases


@pytest.mark.slow
def test_gradient_ops_carry_the_forward_layer_under_the_callback(tmp_path):
    """With MetalProfileCallback installed (it re-registers the tape's gradient function),
    the BatchNorm moments' gradient ops are still that BN's backward work, not tape ops."""
    out = record_in_subprocess(tmp_path, "conv_bn", "callback")
    with open(out / "conv_bn" / "callback.labels.json") as f:
        labels = json.load(f)
    assert not labels["labeller_errors"], labels["labeller_errors"]
    events = labels["events"]
    for bn in ("stem_bn", "bn_a"):
        # The tape names a gradient op after its forward op's scope.
        grads = {
            k: ev for k, ev in events.items() if f"gradient_tape/conv_bn_1/{bn}_1/moments/" in k
        }
        assert len(grads) >= 3, (bn, sorted(events))
        for key, ev in grads.items():
            assert ev["kind"] == "gradient" and ev["phase"] == "backward", (key, ev)
            assert ev["layer"] == ["conv_bn", bn], (key, ev)
            assert f"{bn}_1/moments/" in (ev.get("fwd") or ""), (key, ev)
    # No op made inside a gradient function may fall back to the tape's own label.
    wrong = {
        k: ev for k, ev in events.items() if "gradient_tape/" in k and ev["kind"] != "gradient"
    }
    assert not wrong, wrong


def test_shipped_accuracy_is_what_the_readme_and_the_layers_payload_say():
    """One source for the accuracy figures: the scorer's data file, in the payload and README."""
    from tb_metal_plugin import load_profile
    from tb_metal_plugin.api import load_file
    from tb_metal_plugin.attribution_accuracy import of_source

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    rows = {
        "trace_names": next(ln for ln in readme.splitlines() if ln.startswith("| trace file")),
        "trace_graph": next(ln for ln in readme.splitlines() if ln.startswith("| stock run")),
        "manifest": next(ln for ln in readme.splitlines() if ln.startswith("| with `Metal")),
    }
    for source, row in rows.items():
        acc = of_source(source)
        assert acc and acc["models"] >= 25 and acc["command"].startswith("python -m tests.gt")
        for key in ("layer_time", "layer_op", "phase_time"):
            for agg in ("min", "mean"):
                value = acc[f"{key}_{agg}"] * 100
                shown = [f"{agg} {value:.2f}%", f"{agg} {value:.1f}%"]
                assert any(s in row for s in shown), (source, key, agg, value, row)
    # conv_bn recorded both ways, its stock run with the event file: each payload names
    # its own source (the trace file alone: names only).
    for mode, source in gt.SOURCES.items():
        labels = _labels("conv_bn", mode)
        session = FIXTURES / "conv_bn" / os.path.dirname(labels["trace"])
        if mode == "trace":
            prof = load_file(next(session.glob("*.xplane.pb")), step_graph=False)
        else:
            prof = load_profile(session)
        assert prof.attribution_source == source
        assert prof.layers()["attribution_accuracy"] == of_source(prof.attribution_source)
