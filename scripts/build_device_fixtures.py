"""Build the structural device-plane fixtures under tests/fixtures/device/ (`*_structural*`).

These are small XSpace files that copy the exact structure the real writers produce; the
names, ids and stat formats are taken from their public source:
- plane names `/host:CPU`, `/host:CUPTI`, `/device:GPU:<n>`, `/device:TPU:<n>`; derived line
  names `Steps`, `Launch Stats`, `TensorFlow Name Scope`, `TensorFlow Ops`, `XLA Modules`,
  `XLA Ops` (TF <= 2.15 spelling) and `Framework Ops`, `Framework Name Scope` (the TPU
  fixture uses the newer spelling): XLA/TSL `xla/tsl/profiler/utils/xplane_schema.cc`
  (older: `tensorflow/tsl/profiler/utils/xplane_schema.cc`);
- derived line ids 0xdeadbeef + k, stored as a signed int: `xla/tsl/profiler/utils/
  trace_utils.h` (kThreadIdStepInfo, kThreadIdKernelLaunch, kThreadIdTfNameScope,
  kThreadIdTfOp, kThreadIdHloModule, kThreadIdHloOp);
- stream lines `Stream #<id>(<types>)`, memcpy event names, `memcpy_details` text
  (`kind_src:.. kind_dst:.. size:<bytes> dest:<n> async:<0|1>`, a ref stat), the `tf_op`
  stat (outermost annotation, a ref stat), `correlation_id`, `context_id` (`$$1`),
  `kernel_details`, a `CUPTI overhead` line, host-side driver API events on `/host:CUPTI`
  lines `Host Threads/<tid>`: `xla/backends/profiler/gpu/cupti_collector.cc`,
  `cupti_buffer_events.cc`, `cupti_tracer.cc` (GetTraceEventTypeName);
- `Steps` events named by group id with a `group_id` stat, `TensorFlow Ops` events named
  `<op name>:<op type>` (display name = type) spanning their kernels, `TensorFlow Name Scope`
  one nested event per scope level: xprof `xprof/utils/derived_timeline.cc`;
- a TPU's device work is its `XLA Ops` line, nested (a while op holds its body), an op's
  `device_offset_ps` / `device_duration_ps` stats giving its device span when present:
  xprof `xprof/convert/xplane_to_step_events.cc` (ConvertTpuDeviceTraceXLineToStepEvents,
  GetDeviceEventTimespan);
- a third-party Metal profiler's plane `/device:GPU:0 (Metal)` with one line
  `Metal command buffers`, events named after the TF op, no stats (see docs/DOMAIN notes).

No Keras `Profiled batch` marker anywhere: steps must come from the device planes.

Run: python scripts/build_device_fixtures.py   (rewrites the fixtures deterministically)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tb_metal_plugin.xplane import XSpace  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "device"
DERIVED = 0xDEADBEEF - (1 << 32)  # `constexpr int kThreadIdDerivedMin = 0xdeadbeef`
# Line timestamps: the profiler normalizes them to the profile's start before writing
# (tsl NormalizeTimestamps), so they are small; a real H200 trace here has lines at ~0-20 ms.
T0_NS = 2_000_000
US = 1_000_000  # ps per µs


class Plane:
    """Builds one XPlane with interned event and stat metadata."""

    def __init__(self, space, name: str, plane_id: int = 0):
        self.p = space.planes.add()
        self.p.name = name
        self.p.id = plane_id
        self._events: dict[tuple[str, str], int] = {}
        self._stats: dict[str, int] = {}

    def stat_id(self, name: str) -> int:
        if name not in self._stats:
            sid = len(self._stats) + 1
            self._stats[name] = sid
            self.p.stat_metadata[sid].id = sid
            self.p.stat_metadata[sid].name = name
        return self._stats[name]

    def event_id(self, name: str, display: str = "") -> int:
        key = (name, display)
        if key not in self._events:
            eid = len(self._events) + 1
            self._events[key] = eid
            md = self.p.event_metadata[eid]
            md.id = eid
            md.name = name
            md.display_name = display
        return self._events[key]

    def line(self, line_id: int, name: str):
        line = self.p.lines.add()
        line.id = line_id
        line.name = name
        line.timestamp_ns = T0_NS
        return line

    def event(self, line, name: str, start_us: float, dur_us: float, display="", **stats):
        ev = line.events.add()
        ev.metadata_id = self.event_id(name, display)
        ev.offset_ps = int(start_us * US)
        ev.duration_ps = int(dur_us * US)
        for key, value in stats.items():
            st = ev.stats.add()
            st.metadata_id = self.stat_id(key)
            if isinstance(value, tuple) and value[0] == "ref":
                st.ref_value = self.stat_id(value[1])  # the writer interns strings as stats
            elif isinstance(value, str):
                st.str_value = value
            elif isinstance(value, float):
                st.double_value = value
            else:
                st.int64_value = value
        return ev


def ref(text: str) -> tuple[str, str]:
    """A string stat written as a reference to an interned stat-metadata name."""
    return ("ref", text)


# The ops of a MirroredStrategy replica step, as the CUPTI tracer annotates their kernels.
OPS_GPU = [
    # (op name, op type, kernel name, kernel µs)
    ("replica_{r}/model/dense/MatMul", "MatMul", "volta_sgemm_128x64_nn", 40.0),
    ("replica_{r}/model/dense/BiasAdd", "BiasAdd", "BiasNHWCKernel", 6.0),
    ("replica_{r}/model/dense/Relu", "Relu", "elementwise_relu", 4.0),
    ("gradient_tape/replica_{r}/model/dense/MatMul", "MatMul", "volta_sgemm_64x64_nt", 38.0),
]


def _host(space, ops: list[tuple[str, str]], steps: int, step_us: float) -> None:
    """A host plane with TF op events, step ids and group ids, but no Keras marker.

    The grouping that derives the device `Steps` line also stamps host events of a step
    with its `group_id` (xla/tsl/profiler/utils/group_events.cc).
    """
    host = Plane(space, "/host:CPU")
    py = host.line(1, "python")
    compute = host.line(2, "tf_Compute/2")
    for s in range(steps):
        t = s * step_us
        step_id = 1000 + s
        host.event(py, "FunctionRun", t, 20.0, id=step_id, group_id=s)
        for k, (name, type_) in enumerate(ops):
            host.event(
                compute, "ExecutorState::Process", t + 1 + 5 * k, 4.0, id=step_id, group_id=s
            )
            host.event(compute, f"{name}:{type_}", t + 1.5 + 5 * k, 3.0, display=type_, group_id=s)


def build_cuda() -> XSpace:
    """Host + 2 GPU planes of a 2-replica strategy run, stream and derived lines."""
    space = XSpace()
    step_us = 400.0
    steps = 2
    ops = [(n.format(r=r), t) for r in (0, 1) for n, t, _k, _d in OPS_GPU]
    _host(space, ops, steps, step_us)
    cupti = Plane(space, "/host:CUPTI")
    launches = cupti.line(77, "Host Threads/77")
    for gpu in (0, 1):
        plane = Plane(space, f"/device:GPU:{gpu}", gpu + 1)
        compute = plane.line(14, "Stream #14(Compute)")
        h2d = plane.line(15, "Stream #15(MemcpyH2D)")
        d2h = plane.line(16, "Stream #16(MemcpyD2H)")
        overhead = plane.line(DERIVED + 6, "CUPTI overhead")
        step_line = plane.line(DERIVED, "Steps")
        launch_line = plane.line(DERIVED + 1, "Launch Stats")
        scopes = plane.line(DERIVED + 2, "TensorFlow Name Scope")
        tf_ops = plane.line(DERIVED + 3, "TensorFlow Ops")
        modules = plane.line(DERIVED + 4, "XLA Modules")
        xla_ops = plane.line(DERIVED + 5, "XLA Ops")
        corr = 1
        for s in range(steps):
            t = 100.0 + s * step_us
            step_start = t
            plane.event(
                h2d,
                "MemcpyH2D",
                t,
                12.0,
                correlation_id=corr,
                context_id="$$1",
                memcpy_details=ref("kind_src:pageable kind_dst:device size:65536 dest:0 async:0"),
                tf_op=ref(f"replica_{gpu}/IteratorGetNext:IteratorGetNext"),
                group_id=s,
            )
            cupti.event(launches, "cuMemcpyHtoDAsync_v2", t - 5, 3.0, device_id=gpu)
            t += 14.0
            for name, type_, kernel, dur in OPS_GPU:
                name = name.format(r=gpu)
                corr += 1
                stats = dict(
                    correlation_id=corr,
                    context_id="$$1",
                    kernel_details=ref("regs:32 static_shared:0 dynamic_shared:0 grid:64,1,1"),
                    group_id=s,
                )
                if type_ != "Relu":  # a kernel without tf_op: the TensorFlow Ops line names it
                    stats["tf_op"] = ref(f"{name}:{type_}")
                plane.event(compute, kernel, t, dur, **stats)
                cupti.event(launches, "cuLaunchKernel", t - 5, 2.0, device_id=gpu)
                plane.event(tf_ops, f"{name}:{type_}", t, dur, display=type_, group_id=s)
                parts = name.split("/")[:-1]
                for level in range(len(parts)):  # one event per scope level, nested
                    plane.event(scopes, "/".join(parts[: level + 1]), t, dur, group_id=s)
                t += dur + 1.0
            # An XLA-compiled cluster (jit_compile=True): kernels annotated `XlaModule:`.
            for k, (kernel, dur) in enumerate((("fusion_1", 7.0), ("fusion_2", 5.0))):
                corr += 1
                plane.event(
                    compute,
                    kernel,
                    t,
                    dur,
                    correlation_id=corr,
                    tf_op=ref("XlaModule:"),
                    hlo_module=ref("cluster_0__XlaCompiledKernel_true"),
                    hlo_op=ref(kernel),
                    group_id=s,
                )
                plane.event(modules, "cluster_0__XlaCompiledKernel_true(1)", t, dur, group_id=s)
                plane.event(xla_ops, f"1/{kernel}", t, dur, display=kernel, group_id=s)
                t += dur + (1.0 if k == 0 else 0.0)
            plane.event(
                d2h,
                "MemcpyD2H",
                t + 1.0,
                3.0,
                correlation_id=corr + 1,
                memcpy_details=ref("kind_src:device kind_dst:pageable size:4 dest:0 async:0"),
                group_id=s,
            )
            plane.event(overhead, "Overhead", t + 5.0, 9.0)
            plane.event(step_line, str(s), step_start, t + 4.0 - step_start, group_id=s)
            plane.event(launch_line, f"Launch Stats for {s}", step_start - 5, 60.0, group_id=s)
    return space


def build_tpu() -> XSpace:
    """Host + one TPU plane: Steps, XLA Modules, nested XLA Ops, Framework Ops/Name Scope."""
    space = XSpace()
    _host(space, [("model/dense/MatMul", "MatMul")], 2, 400.0)
    plane = Plane(space, "/device:TPU:0", 1)
    steps = plane.line(1, "Steps")
    modules = plane.line(2, "XLA Modules")
    ops = plane.line(3, "XLA Ops")
    async_ops = plane.line(4, "Async XLA Ops")
    fw_ops = plane.line(5, "Framework Ops")
    fw_scope = plane.line(6, "Framework Name Scope")
    for s in range(2):
        t = 50.0 + 400.0 * s
        plane.event(steps, str(s), t, 200.0, group_id=s)
        plane.event(modules, "jit_train_step(3)", t, 200.0, group_id=s, program_id=3)
        # A while loop holding two body ops, then a standalone op.
        plane.event(ops, "while.1", t, 120.0, group_id=s)
        ev = plane.event(ops, "fusion.7", t + 10, 50.0, group_id=s)
        md = plane.p.event_metadata[ev.metadata_id]
        if not md.stats:
            st = md.stats.add()
            st.metadata_id = plane.stat_id("tf_op")
            st.ref_value = plane.stat_id("model/dense/MatMul:MatMul")
        plane.event(ops, "convolution.3", t + 70, 40.0, group_id=s)
        # The TPU writer can give an op's device-clock span as stats: they win.
        plane.event(
            ops,
            "copy.2",
            t + 130,
            60.0,
            group_id=s,
            device_offset_ps=T0_NS * 1000 + int((t + 131) * US),
            device_duration_ps=int(55 * US),
        )
        plane.event(async_ops, "all-reduce-start.1", t + 120, 70.0, group_id=s)
        plane.event(fw_ops, "model/dense/MatMul:MatMul", t + 10, 50.0, display="MatMul")
        plane.event(fw_scope, "model", t + 10, 50.0)
        plane.event(fw_scope, "model/dense", t + 10, 50.0)
    return space


def build_metal() -> XSpace:
    """Host + a Metal plugin's plane: one `Metal command buffers` line, no stats."""
    space = XSpace()
    ops = [("sequential/dense/MatMul", "MatMul"), ("sequential/dense/Relu", "Relu")]
    host = Plane(space, "/host:CPU")
    py = host.line(1, "python")
    for s in range(2):
        t = 400.0 * s
        host.event(py, "Profiled batch", t, 300.0, step_num=s + 2)
        for k, (name, type_) in enumerate(ops):
            host.event(py, f"{name}:{type_}", t + 10 + 20 * k, 8.0, display=type_)
    plane = Plane(space, "/device:GPU:0 (Metal)", 1)
    line = plane.line(1, "Metal command buffers")
    for s in range(2):
        t = 400.0 * s + 60
        for k, (name, type_) in enumerate(ops):
            plane.event(line, f"{name}:{type_}", t + 30 * k, 25.0 - 10 * k, display=type_)
    return space


FIXTURES = {
    "cuda_two_gpus_structural": build_cuda,
    "tpu_structural": build_tpu,
    "metal_plugin_structural": build_metal,
}


def main() -> None:
    for name, build in FIXTURES.items():
        folder = OUT / name / "plugins" / "profile" / "2026_01_01_00_00_00"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "host.xplane.pb"
        path.write_bytes(build().SerializeToString(deterministic=True))
        print(path.relative_to(ROOT), path.stat().st_size)


if __name__ == "__main__":
    main()
