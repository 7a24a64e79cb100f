"""Step work a trace names no TF op for: eager dispatches and XLA-compiled code.

- With `compile(run_eagerly=True)` (or `tf.config.run_functions_eagerly(True)`) Keras runs
  no train function: each op is dispatched from the Python thread, which TF records as
  `EagerLocalExecute: <op type>` (checked on TF 2.21 traces, tests/gt model `eager_run`),
  never with the op's name or scopes. A graph run has some too (summary writes, iterator
  set-up) and calls its train function as one (`EagerLocalExecute: __inference_...`):
  only steps with more eager dispatches than graph op events are reported.
- With `jit_compile=True` on the CPU (the corpus model `jit_compile`), XLA runs the step
  as one executable (`CpuExecutable::ExecuteAsyncOnStream` on a compute thread) whose
  kernels are named after HLO ops (`MatMul.8`, `multiply_add_fusion.3`), not TF ops.
  Keras's TF backend also compiles a grouped convolution and a channels-first 3-D one
  with XLA on its own (`_conv_xla` in its `nn.conv`; held-out models grouped_dilated and
  convnext: 43% of grouped_dilated's step time). On a GPU its kernels are on the device
  planes, named by their XLA module (device_reader).

Neither kind of event can be given an op, a layer or a phase (nor is it in xprof's op
statistics): the reader says how much step time they took, so a view of the few ops left
(the input pipeline's) is not read as the whole step.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import TraceError
from .oprecord import XLA_MODULE_TYPE
from .steps import Step
from .xspace_reader import PlaneData, stat_value

# (metadata id, name) of a host plane's events that are not TF ops (events._scan_metadata).
Names = Sequence[tuple[int, str]]
EAGER_PREFIX = "EagerLocalExecute: "
# Function calls dispatched eagerly run graph ops elsewhere (their own op events).
_CALLS = ("__inference_", "__forward_", "__backward_", "StatefulPartitionedCall", "PartitionedCall")
XLA_CPU_RUN = "CpuExecutable::Execute"
UNNAMED_MODULE = "XLA:CPU run"  # a run whose kernels name no module
# A Keras graph step makes hundreds of distinct ops: no pass over the lines for eager ones.
_FEW_OPS = 200


def _timed(host: PlaneData, steps: list[Step], ids: set[int], python_only: bool) -> tuple[int, int]:
    """(count, host ps) of the events with these metadata ids that start inside the steps."""
    spans = [(s.start_ps, s.end_ps) for s in steps]
    count = ps = 0
    for i in range(len(host.line_spans)):
        if python_only and not host.line_name(i).startswith("python"):
            continue
        line = host.line(i)
        base = line.timestamp_ns * 1000
        for ev in line.events:
            if ev.metadata_id in ids:
                t = base + ev.offset_ps
                if any(a <= t < b for a, b in spans):
                    count += 1
                    ps += ev.duration_ps
    return count, ps


def eager_dispatches(host: PlaneData, steps: list[Step], named: Names) -> tuple[int, int]:
    """(count, host ps) of eager op dispatches, function calls left out, inside the steps."""
    ids = {
        mid
        for mid, name in named
        if name.startswith(EAGER_PREFIX) and not name[len(EAGER_PREFIX) :].startswith(_CALLS)
    }
    return _timed(host, steps, ids, python_only=True) if ids and steps else (0, 0)


def xla_cpu_runs(host: PlaneData, col, named: Names) -> tuple[int, int]:
    """Add each XLA:CPU executable run to the collector as an op: `<XLA module>` of type
    XlaModule (the module its kernels' `hlo_module` stat names), its host time per step;
    return (count, host ps) of the runs inside the steps."""
    ids = {mid for mid, name in named if name.startswith(XLA_CPU_RUN)}
    if not ids:
        return 0, 0
    module_stat = next((k for k, v in host.stat_names.items() if v == "hlo_module"), None)
    count = ps = 0
    for i in range(len(host.line_spans)):
        if host.line_name(i).startswith("python"):
            continue  # (runs and their kernels are on the executor's threads)
        line = host.line(i)
        base = line.timestamp_ns * 1000
        runs: list[list] = []  # [start, end, module]
        for ev in line.events:
            t = base + ev.offset_ps
            if ev.metadata_id in ids:
                runs.append([t, t + ev.duration_ps, None])
            elif runs and module_stat is not None and runs[-1][2] is None and t < runs[-1][1]:
                for st in ev.stats:
                    if st.metadata_id == module_stat:
                        runs[-1][2] = str(stat_value(st, host.stat_names))
                        break
        for start, end, module in runs:
            slot = col.slot_of(start)
            rec = col.op(module or UNNAMED_MODULE, XLA_MODULE_TYPE)
            rec.count[slot] += 1
            rec.self_ps[slot] += end - start
            rec.total_ps[slot] += end - start
            rec.add_line_kind("compute")
            col.event_count += 1
            col.span(start, end)
            if slot < len(col.starts):
                count += 1
                ps += end - start
    return count, ps


def read_hidden_work(host: PlaneData, col, named: Names) -> list[str]:
    """Add XLA:CPU runs to the collector as ops (`xla_cpu_runs`); warnings for step time
    spent in eager dispatches or XLA:CPU code, which no TF op names."""
    steps = col.steps
    if not steps:
        return []
    try:
        return _warnings(host, col, named)
    except TraceError:
        # Lines the native reader took (it skips event stats) that protobuf refuses: the
        # load keeps its ops; only this note about other events is lost.
        return []


def _warnings(host: PlaneData, col, named: Names) -> list[str]:
    steps, ops = col.steps, col.ops
    out = []
    wall = sum(s.end_ps - s.start_ps for s in steps) or 1
    runs, xla_ps = xla_cpu_runs(host, col, named)
    if runs:
        out.append(
            f"the profiled steps ran XLA-compiled code: {runs} XLA:CPU runs took "
            f"{xla_ps / 1e9:.3f} ms of host time ({100 * xla_ps / wall:.0f}% of the steps' "
            "wall time). XLA names its CPU kernels after HLO ops, not TF ops: each run is "
            f"kept as one op named after its XLA module (type {XLA_MODULE_TYPE}), given to "
            "the layer that called it where the run's step graph names the call, else to no "
            "layer. It comes from jit_compile=True (compile without it to profile per layer), "
            "or from a layer Keras compiles with XLA on its own: a grouped convolution (Conv "
            "with groups > 1) or a channels-first 3-D convolution"
        )
    if len(ops) < _FEW_OPS:
        op_events = sum(sum(rec.count[: len(steps)]) for rec in ops.values())
        count, ps = eager_dispatches(host, steps, named)
        if count > op_events:
            out.append(
                f"the profiled steps ran eagerly: {count} eager op dispatches from Python "
                f"({ps / 1e9:.3f} ms of host time, {100 * ps / wall:.0f}% of the steps' wall "
                f"time) beside {op_events} graph op events. Eager ops carry no op name or "
                "scope, so their time is in no op, layer or phase here (nor in xprof's op "
                "statistics). Compile without run_eagerly=True (and leave "
                "tf.config.run_functions_eagerly off) to profile per layer"
            )
    return out
