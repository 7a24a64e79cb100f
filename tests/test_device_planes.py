"""Device planes read as the profiler means them, on structural fixtures and a real GPU trace.

Ground truth is a plain protobuf pass over the committed files, with its own rule for what
is device work (lines named `Stream #...` on a GPU, the `XLA Ops` line on a TPU), never the
package's classification.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tb_metal_plugin import load_profile
from tb_metal_plugin.cli import main as cli_main
from tb_metal_plugin.device_planes import DERIVED, IGNORED, STEPS, TF_OPS, WORK, classify_line
from tb_metal_plugin.devices import DeviceResolver
from tb_metal_plugin.events import read_events
from tb_metal_plugin.steps import step_id_steps
from tb_metal_plugin.xplane import XSpace
from tb_metal_plugin.xspace_reader import open_trace

FIXTURES = Path(__file__).parent / "fixtures" / "device"
ROOT = Path(__file__).parents[1]
NOT_WORK = {"MemoryAlloc", "MemoryFree"}


def _file(name: str) -> str:
    return str(next((FIXTURES / name).glob("plugins/profile/*/*.xplane.pb")))


def _space(path: str):
    return XSpace.FromString(Path(path).read_bytes())


def _raw_stream_sums(path: str) -> dict[str, dict[str, int]]:
    """Per GPU plane: ps of kernels and of memcpy events on its `Stream #` lines."""
    out = {}
    for plane in _space(path).planes:
        if not plane.name.startswith("/device:GPU:"):
            continue
        dev = "GPU:" + plane.name.split(":")[2].split(" ")[0]
        sums = {"kernel": 0, "copy": 0, "all_lines": 0}
        for line in plane.lines:
            total = sum(e.duration_ps for e in line.events)
            sums["all_lines"] += total
            if not line.name.startswith("Stream #"):
                continue
            for e in line.events:
                name = plane.event_metadata[e.metadata_id].name
                if name in NOT_WORK:
                    continue
                sums["copy" if name.startswith("Memcpy") else "kernel"] += e.duration_ps
        out[dev] = sums
    return out


def _raw_stat_sum(path: str, dev_plane: str, tf_op: str) -> int:
    """ps of stream-line events whose `tf_op` stat names tf_op, on one plane."""
    for plane in _space(path).planes:
        if plane.name != dev_plane:
            continue
        names = {k: v.name for k, v in plane.stat_metadata.items()}
        total = 0
        for line in plane.lines:
            if not line.name.startswith("Stream #"):
                continue
            for e in line.events:
                for s in e.stats:
                    if names[s.metadata_id] == "tf_op" and names.get(s.ref_value) == tf_op:
                        total += e.duration_ps
        return total
    raise AssertionError(dev_plane)


@pytest.mark.parametrize("case", ["cuda_two_gpus_structural", "jax_gpu_real"])
def test_device_time_is_the_stream_lines_kernels_and_copies(case):
    path = _file(case)
    raw = _raw_stream_sums(path)
    ev = read_events(path)
    assert set(ev.device_stats) == set(raw) and raw
    for dev, sums in raw.items():
        st = ev.device_stats[dev]
        assert st.kernel_ps == sums["kernel"] > 0
        assert st.copy_ps == sums["copy"] > 0
        assert st.device_ps == sums["kernel"] + sums["copy"] == sum(st.slot_ps)
        # Every kernel ps lands on exactly one op record, on this device's figures.
        op_ps = sum(sum(r.device_ps_by_plane.get(dev, ())) for r in ev.ops.values())
        assert op_ps == sums["kernel"]
        copy_ps = sum(sum(c.ps) for c in ev.copies.values() if c.plane == dev)
        assert copy_ps == sums["copy"]
    if case.endswith("structural"):
        # The fixture's derived lines hold as much time again: summing them would inflate it.
        assert all(s["all_lines"] > 2 * (s["kernel"] + s["copy"]) for s in raw.values())


def test_per_gpu_figures_of_a_two_replica_run():
    path = _file("cuda_two_gpus_structural")
    ev = read_events(path)
    for gpu in (0, 1):
        name = f"replica_{gpu}/model/dense/MatMul"
        rec = ev.ops[(name, "MatMul")]
        assert set(rec.device_ps_by_plane) == {f"GPU:{gpu}"}
        raw = _raw_stat_sum(path, f"/device:GPU:{gpu}", f"{name}:MatMul")
        assert sum(rec.device_ps) == sum(rec.device_ps_by_plane[f"GPU:{gpu}"]) == raw > 0
    # The XLA cluster ran on both GPUs: one op, one figure per GPU, adding up.
    cluster = ev.ops[("cluster_0__XlaCompiledKernel_true", "XlaModule")]
    assert set(cluster.device_ps_by_plane) == {"GPU:0", "GPU:1"}
    assert sum(cluster.device_ps) == sum(sum(v) for v in cluster.device_ps_by_plane.values())
    resolver = DeviceResolver(ev, None)
    assert resolver.resolve(ev.ops[("replica_1/model/dense/MatMul", "MatMul")]).device == "GPU:1"


def test_kernel_without_tf_op_is_linked_by_the_tf_ops_line():
    ev = read_events(_file("cuda_two_gpus_structural"))
    relu = ev.ops[("replica_0/model/dense/Relu", "Relu")]
    assert sum(relu.device_count) == 2  # one kernel per step, no tf_op stat on it
    assert ev.device_stats["GPU:0"].unlinked_ps == 0
    # Copies are copies: kind and bytes from the CUPTI record, per device.
    h2d = ev.copies[("replica_0/IteratorGetNext", "IteratorGetNext", "memcpy_h2d", "GPU:0")]
    assert sum(h2d.nbytes) == 2 * 65536 and sum(h2d.count) == 2


def test_steps_without_keras_markers_come_from_the_steps_line():
    run = FIXTURES / "cuda_two_gpus_structural"
    ev = read_events(_file("cuda_two_gpus_structural"))
    assert ev.steps_source == "device_steps"
    assert [s.num for s in ev.steps] == [0, 1]
    prof = load_profile(run)
    one = prof.layers(1)
    assert one["step"] == 1 and one["step_time_ps"] == ev.steps[1].duration_ps > 0
    # Each step slot holds that step's kernels: the two steps ran the same work.
    mm = ev.ops[("replica_0/model/dense/MatMul", "MatMul")]
    assert mm.device_ps[0] == mm.device_ps[1] > 0 and mm.device_ps[2] == 0
    # Its host events ran before the device did, in the same step group: same slots.
    assert list(mm.count) == [1, 1, 0]
    result = CliRunner().invoke(cli_main, ["layers", str(run), "--step", "1"])
    assert result.exit_code == 0, result.output


def test_step_ids_give_steps_when_nothing_else_does():
    # A real Keras trace: its FunctionRun step ids must fall inside its Profiled batch markers.
    trace = next((ROOT / "demo/logs/cnn/train/plugins/profile").glob("*/*.xplane.pb"))
    with open_trace(trace) as t:
        host = next(p for p in t.planes() if p.name == "/host:CPU")
        steps = step_id_steps(host, lambda n: n.startswith("python"))
    marked = read_events(str(trace)).steps
    assert len(steps) == len(marked) == 2
    for s, m in zip(steps, marked, strict=True):
        assert m.start_ps <= s.start_ps < s.end_ps <= m.end_ps


def test_tpu_is_a_tpu_and_its_xla_lines_are_not_summed():
    path = _file("tpu_structural")
    ev = read_events(path)
    st = ev.device_stats["TPU:0"]
    assert st.kind == "TPU" and st.work_lines == ["XLA Ops"]
    # Ground truth: the XLA Ops line's busy time (union of its nested events' spans), each
    # span on the device clock: its device_offset_ps/device_duration_ps stats when present.
    plane = next(p for p in _space(path).planes if p.name == "/device:TPU:0")
    names = {k: v.name for k, v in plane.stat_metadata.items()}
    xla_ops = next(line for line in plane.lines if line.name == "XLA Ops")
    spans = []
    for e in xla_ops.events:
        raw = {names[s.metadata_id]: s.int64_value for s in e.stats}
        start = xla_ops.timestamp_ns * 1000 + e.offset_ps
        start = raw.get("device_offset_ps", start)
        dur = raw.get("device_duration_ps", e.duration_ps)
        spans.append((start, start + dur))
    spans.sort()
    busy, end = 0, -1
    for a, b in spans:
        if a >= end:
            busy += b - a
            end = b
        elif b > end:
            busy += b - end
            end = b
    assert st.device_ps == busy
    assert sum(sum(r.device_ps) for r in ev.ops.values()) == busy
    assert sum(e.duration_ps for line in plane.lines for e in line.events) > 2 * busy
    mm = ev.ops[("model/dense/MatMul", "MatMul")]
    placement = DeviceResolver(ev, None).resolve(mm)
    assert (placement.device, placement.kind) == ("TPU:0", "TPU")
    assert ev.steps_source == "device_steps" and len(ev.steps) == 2


def test_metal_plugin_plane_is_device_work():
    ev = read_events(_file("metal_plugin_structural"))
    st = ev.device_stats["GPU:0"]
    assert st.work_lines == ["Metal command buffers"] and st.plane.endswith("(Metal)")
    rec = ev.ops[("sequential/dense/MatMul", "MatMul")]
    assert list(rec.device_ps) == [25_000_000, 25_000_000, 0]
    assert rec.on_host and ev.steps_source == "markers"


def test_real_jax_gpu_trace():
    ev = read_events(_file("jax_gpu_real"))
    # JAX's StepTraceAnnotation("train", step_num=i) is a host step marker.
    assert ev.steps_source == "markers" and [s.num for s in ev.steps] == [0, 1, 2]
    st = ev.device_stats["GPU:0"]
    assert st.kind == "GPU" and st.derived_lines == []
    assert all(n.startswith("Stream #") for n in st.work_lines)
    # jit-compiled kernels are annotated `XlaModule:`: their time stays under the module.
    cluster = ev.ops[("jit_train_step", "XlaModule")]
    assert sum(cluster.device_ps) == st.kernel_ps and all(cluster.device_ps[:3])
    h2d = [c for c in ev.copies.values() if c.kind == "memcpy_h2d"]
    assert sum(sum(c.nbytes) for c in h2d) == 3 * 256 * 512 * 4  # three f32[256,512] batches


def test_device_plane_ids():
    from tb_metal_plugin.events import device_plane_id

    assert device_plane_id("/device:GPU:1 (Metal)") == "GPU:1"
    assert device_plane_id("/device:TPU:3") == "TPU:3"
    assert device_plane_id("/device:TPU:0 SparseCore 1") == "TPU:0 SparseCore 1"
    assert device_plane_id("/host:CUPTI") is None


def test_line_roles_follow_the_writer_names():
    derived_id = 0xDEADBEEF - (1 << 32)
    assert classify_line("Stream #14(Compute)", 14, "GPU") == WORK
    assert classify_line("Stream #7(Compute,MemcpyH2D)", 7, "GPU") == WORK
    assert classify_line("Steps", derived_id, "GPU") == STEPS
    assert classify_line("TensorFlow Ops", derived_id + 3, "GPU") == TF_OPS
    assert classify_line("Framework Ops - from #14", derived_id + 293, "GPU") == TF_OPS
    for name in ("TensorFlow Name Scope", "XLA Ops", "XLA Modules", "Launch Stats"):
        assert classify_line(name, derived_id + 2, "GPU") == DERIVED
    assert classify_line("Metal command buffers", 1, "GPU") == WORK
    assert classify_line("CUPTI overhead", derived_id + 6, "GPU") == IGNORED
    assert classify_line("CUPTI overhead", 7, "GPU") == WORK  # a stream that had overhead
    assert classify_line("XLA Ops", 3, "TPU") == WORK
    assert classify_line("XLA Modules", 2, "TPU") == DERIVED
    assert classify_line("Async XLA Ops", 4, "TPU") == DERIVED
    assert classify_line("Sparse Core Ops", 4, "TPU", sparse_core=True) == WORK
    assert classify_line("XLA Ops", 3, "TPU", sparse_core=True) == DERIVED


def test_without_steps_line_the_step_ids_give_the_steps(tmp_path):
    space = _space(_file("cuda_two_gpus_structural"))
    for plane in space.planes:
        keep = [line for line in plane.lines if line.name != "Steps"]
        del plane.lines[:]
        plane.lines.extend(keep)
    path = tmp_path / "no_steps_line.xplane.pb"
    path.write_bytes(space.SerializeToString())
    ev = read_events(str(path))
    assert ev.steps_source == "step_ids" and len(ev.steps) == 2
    # Each step spans its root FunctionRun and the executor events with the same step id.
    host = next(p for p in space.planes if p.name == "/host:CPU")
    names = {k: v.name for k, v in host.stat_metadata.items()}
    spans: dict[int, list[int]] = {}
    for line in host.lines:
        base = line.timestamp_ns * 1000
        for e in line.events:
            for s in e.stats:
                if names[s.metadata_id] == "id":
                    a, b = base + e.offset_ps, base + e.offset_ps + e.duration_ps
                    lo, hi = spans.get(s.int64_value, (a, b))
                    spans[s.int64_value] = [min(lo, a), max(hi, b)]
    assert [(s.start_ps, s.end_ps) for s in ev.steps] == [
        tuple(v) for _, v in sorted(spans.items())
    ]


@pytest.mark.parametrize("case", ["cuda_two_gpus_structural", "jax_gpu_real"])
def test_layers_payload_shows_each_gpu_apart(case):
    # Per-GPU busy time in the payload is each plane's stream-line kernels and copies; the
    # layers' per-device split adds up to their device-clock time, one entry per GPU.
    path = _file(case)
    raw = _raw_stream_sums(path)
    data = load_profile(path).layers()
    busy = {d["device"]: d["busy_ps"] for d in data["device_timelines"]}
    assert busy == {dev: s["kernel"] + s["copy"] for dev, s in raw.items()}
    assert all(d["clock"] == "device" for d in data["device_timelines"])
    nodes = data["layers"] + data["buckets"]
    per_device: dict[str, int] = {}
    for n in nodes:
        assert sum(n["device_ids"].values()) == n["total_ps"]
        for dev, ps in n["device_ids"].items():
            per_device[dev] = per_device.get(dev, 0) + ps
    kernels = {dev: s["kernel"] for dev, s in raw.items()}
    assert {d: ps for d, ps in per_device.items() if d in kernels} == kernels


def test_a_jax_host_is_not_read_as_tensorflow_ops():
    # JAX's host TraceMe events look like `name:type` (ThenExecuteCallback:...); with PjRt
    # events and no TF runtime event on the host, none of them is a TF op.
    data = load_profile(_file("jax_gpu_real")).ops()
    assert data["ops"] and {r["clock"] for r in data["ops"]} == {"device"}
    assert any("JAX/XLA trace" in w for w in data["warnings"])


def test_layers_table_lists_each_gpu_busy_time():
    # Each GPU's busy time on its own line, as the stream lines hold it (230 us per GPU).
    raw = _raw_stream_sums(_file("cuda_two_gpus_structural"))
    out = CliRunner().invoke(cli_main, ["layers", _file("cuda_two_gpus_structural"), "--wide"])
    assert out.exit_code == 0, out.output
    for dev, sums in raw.items():
        busy = (sums["kernel"] + sums["copy"]) / 1e6
        assert f"{dev} busy {busy:.1f} µs" in out.output
