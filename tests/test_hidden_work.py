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
    paths = sorted((FIXTURES / "gt").glob("*/stock/**/*.xplane.pb"))
    # (grouped_dilated's grouped convolution is XLA-compiled by Keras: the test below.)
    paths = [p for p in paths if "grouped_dilated" not in str(p)][:12]
    for path in paths:
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


def _raw_module_runs(path: Path) -> dict[str, int]:
    """Host ps of the XLA:CPU runs per module, from the raw file: each run's module is the
    `hlo_module` stat of the kernel events that start inside it on its line."""
    space = XSpace.FromString(path.read_bytes())
    host = next(p for p in space.planes if p.name == "/host:CPU")
    names = {k: v.name for k, v in host.event_metadata.items()}
    stat_names = {k: v.name for k, v in host.stat_metadata.items()}
    out: dict[str, int] = {}
    for line in host.lines:
        runs = []
        for ev in line.events:
            t = line.timestamp_ns * 1000 + ev.offset_ps
            if names[ev.metadata_id].startswith("CpuExecutable::Execute"):
                runs.append([t, t + ev.duration_ps, None])
            for s in ev.stats:
                if stat_names.get(s.metadata_id) == "hlo_module":
                    run = next((r for r in runs if r[0] <= t < r[1]), None)
                    if run is not None:  # (kernels on other threads run inside no run)
                        run[2] = run[2] or stat_names[s.ref_value]
        for start, end, module in runs:
            out[module] = out.get(module, 0) + end - start
    return out


def test_xla_runs_are_ops_given_to_the_layer_whose_call_ran_them():
    # grouped_dilated: Conv2D(groups=2) named "grouped" in a model named "grouped" (its
    # only grouped convolution, tests/gt/models_e.py): Keras runs it, and its gradient,
    # as XLA modules; the stock run's step graph holds both calls.
    trace = next((FIXTURES / "gt" / "grouped_dilated" / "stock").glob("**/*.xplane.pb"))
    raw = _raw_module_runs(trace)
    assert len(raw) == 2
    with_graph = {
        r["name"]: r for r in load_file(str(trace)).ops()["ops"] if r["type"] == "XlaModule"
    }
    assert {m: r["self_ps"] for m, r in with_graph.items()} == raw
    phases = {r["phase"] for r in with_graph.values()}
    assert phases == {"forward", "backward"}
    assert all(r["layer"] == ["grouped", "grouped"] for r in with_graph.values())
    # From the trace file alone the calls are unknown: the time stays in the step, unscoped.
    names_only = load_file(str(trace), step_graph=False).ops()["ops"]
    assert {r["bucket"] for r in names_only if r["type"] == "XlaModule"} == {
        "unscoped ops in the train step"
    }
