"""Step work a trace names no TF op for (hidden_work.py): eager dispatches
(`run_eagerly=True`) and XLA:CPU code (`jit_compile=True`), both recorded with TF 2.21.

The expected figures are counted here on the raw file with the protobuf classes alone:
events by name on the host lines, inside the spans of the step markers.
"""

from __future__ import annotations

from pathlib import Path

from tb_metal_plugin.api import load_file
from tb_metal_plugin.events import read_events
from tb_metal_plugin.xplane import XSpace

FIXTURES = Path(__file__).parent / "fixtures"
EAGER = FIXTURES / "eager" / "run_eagerly.xplane.pb"
XLA = FIXTURES / "xla" / "jit_compile_cpu.xplane.pb"


def _raw_events(path: Path, wanted, python_only: bool) -> tuple[int, int]:
    """(count, ps) of host events whose name `wanted` accepts, starting inside a step
    marker's span (an event with a `step_num` stat on a Python line)."""
    space = XSpace.FromString(path.read_bytes())
    host = next(p for p in space.planes if p.name == "/host:CPU")
    names = {k: v.name for k, v in host.event_metadata.items()}
    stats = {k: v.name for k, v in host.stat_metadata.items()}
    spans, hits = [], []
    for line in host.lines:
        python = line.name.startswith("python")
        for ev in line.events:
            t = line.timestamp_ns * 1000 + ev.offset_ps
            if python and any(stats.get(s.metadata_id) == "step_num" for s in ev.stats):
                spans.append((t, t + ev.duration_ps))
            elif (python or not python_only) and wanted(names[ev.metadata_id]):
                hits.append((t, ev.duration_ps))
    inside = [d for t, d in hits if any(a <= t < b for a, b in spans)]
    return len(inside), sum(inside)


def _warnings(path: Path, word: str) -> list[str]:
    return [w for w in read_events(str(path)).warnings if word in w]


def test_eager_steps_are_reported_with_their_dispatch_time():
    count, ps = _raw_events(
        EAGER,
        lambda n: n.startswith("EagerLocalExecute: ") and "__inference_" not in n,
        python_only=True,
    )
    assert count > 100
    (warning,) = _warnings(EAGER, "ran eagerly")
    assert f"{count} eager op dispatches" in warning
    assert f"{ps / 1e9:.3f} ms of host time" in warning
    assert "run_eagerly" in warning
    # The faces carry it: the payload a view reads.
    assert any("ran eagerly" in w for w in load_file(str(EAGER)).ops()["warnings"])


def test_xla_steps_are_reported_with_their_run_time():
    count, ps = _raw_events(
        XLA, lambda n: n == "CpuExecutable::ExecuteAsyncOnStream", python_only=False
    )
    assert count == 2  # one run per profiled step
    (warning,) = _warnings(XLA, "XLA-compiled")
    assert f"{count} XLA:CPU runs took {ps / 1e9:.3f} ms of host time" in warning
    assert "jit_compile=True" in warning and "grouped convolution" in warning
    assert not _warnings(XLA, "ran eagerly")  # its one eager call is the train function


def test_graph_steps_are_not_reported():
    for path in sorted((FIXTURES / "gt").glob("*/stock/**/*.xplane.pb"))[:12]:
        assert not _warnings(path, "ran eagerly"), path
        assert not _warnings(path, "XLA-compiled"), path


def test_keras_own_xla_for_a_grouped_convolution_is_reported():
    # No jit_compile anywhere: Keras's TF backend compiles Conv2D(groups=2) with XLA itself
    # (tests/gt model grouped_dilated), so that layer's convolution is in no op event.
    path = FIXTURES / "xla" / "grouped_conv_cpu.xplane.pb"
    count, ps = _raw_events(
        path, lambda n: n == "CpuExecutable::ExecuteAsyncOnStream", python_only=False
    )
    assert count == 4  # forward and backward, two profiled steps
    (warning,) = _warnings(path, "XLA-compiled")
    assert f"{count} XLA:CPU runs took {ps / 1e9:.3f} ms of host time" in warning
