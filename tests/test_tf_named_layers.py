"""Layers named like the scopes TF opens itself (`body`, `cond`, `gradients`), and steps
that ran eagerly (opnames.tf_control_components, eager_steps.py).

Ground truth for the layers is the labeller's (tests/gt model `library_names`, TF 2.21 /
Keras 3.15); for the eager steps, a count of the raw file's events made here with the
protobuf classes alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tb_metal_plugin.api import load_file
from tb_metal_plugin.events import read_events
from tb_metal_plugin.opnames import tf_control_components
from tb_metal_plugin.xplane import XSpace
from tests.test_ground_truth import labelled_rows

FIXTURES = Path(__file__).parent / "fixtures"
EAGER = FIXTURES / "eager" / "run_eagerly.xplane.pb"


@pytest.mark.parametrize("mode", ["trace", "graph", "manifest"])
def test_layers_named_like_tf_scopes_are_layers(mode):
    labels, rows = labelled_rows("library_names", mode)
    want = {("named_like_tf", "body", "cond"), ("named_like_tf", "body", "moments")}
    want |= {("named_like_tf", "gradients")}
    seen = set()
    for key, label in labels["events"].items():
        layer = tuple(label.get("layer") or ())
        if layer in want:
            seen.add(layer)
            assert tuple(rows[key]["layer"] or ()) == layer, key
    assert seen == want


def test_tf_control_components_are_the_ones_tf_opened():
    names = [
        "m_1/cond_1/then/_0/m_1/cond_1/Relu",  # a cond TF opened: its branch below
        "m_1/lstm_1/while_15/body/_1/m_1/lstm_1/while/MatMul",
        "gradients_2/m_1/dense_1/MatMul_grad/MatMul",  # tf.gradients' scope
        "m_1/body_1/cond_1/Relu",  # layers named `body` and `cond`
        "m_1/gradients_1/Tensordot/MatMul",  # a layer named `gradients`
    ]
    assert tf_control_components(names) == {"cond_1", "while_15", "gradients_2"}


def _raw_eager_dispatches(path: Path) -> tuple[int, int]:
    """(count, ps) of non-call `EagerLocalExecute: ` events on Python lines inside the
    `Profiled batch`/step-marker spans, counted on the protobuf objects alone."""
    space = XSpace.FromString(path.read_bytes())
    host = next(p for p in space.planes if p.name == "/host:CPU")
    names = {k: v.name for k, v in host.event_metadata.items()}
    stats = {k: v.name for k, v in host.stat_metadata.items()}
    spans, eager = [], []
    for line in host.lines:
        if not line.name.startswith("python"):
            continue
        for ev in line.events:
            t = line.timestamp_ns * 1000 + ev.offset_ps
            name = names[ev.metadata_id]
            if any(stats.get(s.metadata_id) == "step_num" for s in ev.stats):
                spans.append((t, t + ev.duration_ps))
            elif name.startswith("EagerLocalExecute: ") and "__inference_" not in name:
                eager.append((t, ev.duration_ps))
    inside = [d for t, d in eager if any(a <= t < b for a, b in spans)]
    return len(inside), sum(inside)


def test_eager_steps_are_reported_with_their_dispatch_time():
    count, ps = _raw_eager_dispatches(EAGER)
    assert count > 100
    (warning,) = [w for w in read_events(str(EAGER)).warnings if "ran eagerly" in w]
    assert f"{count} eager op dispatches" in warning
    assert f"{ps / 1e9:.3f} ms of host time" in warning
    assert "run_eagerly" in warning
    # The faces carry it: the payload a view reads.
    assert any("ran eagerly" in w for w in load_file(str(EAGER)).ops()["warnings"])


def test_graph_steps_are_not_reported_as_eager():
    for path in sorted((FIXTURES / "gt").glob("*/stock/**/*.xplane.pb"))[:12]:
        assert not [w for w in read_events(str(path)).warnings if "ran eagerly" in w], path
