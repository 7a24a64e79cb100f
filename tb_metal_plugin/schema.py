"""Every JSON payload tb-metal produces, defined once: the API, the CLI's JSON, the routes.

`scripts/gen_schema.py` turns these TypedDicts into `docs/schema.json` (JSON Schema), then
that schema into `frontend/src/types.ts` and the field tables of `docs/json-api.md`; tests
validate real payloads against it. Change a payload here, then run that one command.

Each field's meaning is the string in its `Annotated[...]`. Every time (`*_ps`, integer
picoseconds) also names its clock with `Clock(...)`:

- `device`: measured on a device timeline (kernel and copy events of a device plane);
- `host_side`: a GPU-placed op with no device timeline (Metal): encoding and dispatch;
- `host`: a CPU op's host self time;
- `wall`: wall time on the host (step markers; the layer benchmark's synchronised calls);
- `field:NAME`: the clock the sibling field NAME holds (per element for per-profile lists);
- `per_op`: op times summed on each op's own clock (`clock` of the op rows: may mix; the
  sibling `clocks` splits it);
- `per_op_host`: op host self times summed (`host_clock` of the op rows: `host` for CPU
  ops, `host_side` for GPU ops);
- `key`: the clock the enclosing per-clock mapping keys this entry by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict


@dataclass(frozen=True)
class Clock:
    """The clock of a time field (see the module docstring for the vocabulary)."""

    clock: str


CLOCK_VOCABULARY = ("device", "host_side", "host", "wall", "per_op", "per_op_host", "key")

# ---------------------------------------------------------------------------
# Named value sets (become JSON Schema definitions and TypeScript type aliases)

OpClock = Literal["device", "host_side", "host"]
NodeClock = Literal["device", "host_side", "host", "mixed"]
HostClock = Literal["host", "host_side"]
Phase = Literal["forward", "backward", "optimizer", "loss", "metrics", "input", "other"]
Timeline = Literal["device", "host_only"]
StepLabel = int | Literal["all", "avg"]
Step = int | Literal["all", "avg"] | None
Verdict = Literal["metal_gpu", "cpu_fallback", "cpu_only_by_nature", "unknown"]
GroupVerdict = Literal[
    "metal_gpu", "cpu_fallback", "cpu_only_by_nature", "unknown", "minor_fallback"
]  # fmt: skip
DoctorStatus = Literal["ok", "warning", "broken", "not_applicable"]
CheckStatus = Literal["ok", "warning", "broken", "info", "not_applicable"]
ErrorKind = Literal["invalid_argument", "not_found", "trace_error", "internal"]

# Names for the value sets above, in the order they are emitted.
ALIASES: dict[str, Any] = {
    "OpClock": OpClock,
    "NodeClock": NodeClock,
    "HostClock": HostClock,
    "Phase": Phase,
    "Timeline": Timeline,
    "StepLabel": StepLabel,
    "Step": Step,
    "Verdict": Verdict,
    "GroupVerdict": GroupVerdict,
    "DoctorStatus": DoctorStatus,
    "CheckStatus": CheckStatus,
    "ErrorKind": ErrorKind,
}
ALIAS_DOCS = {
    "OpClock": "The clock of one op's time.",
    "NodeClock": "A sum's clock: one op clock, or `mixed` when it adds up several.",
    "HostClock": "The clock of an op's own host events.",
    "Phase": "Training phase of an op.",
    "Timeline": "`device` when a device plane timed the ops, else `host_only` (every Metal trace).",
    "StepLabel": "The step selection a payload covers: a step number, `all` or `avg`.",
    "Step": "A step selection as a request parameter: null/`all` = the window, `avg` = mean per step.",  # noqa: E501
    "Verdict": "Predicted placement of an op on tensorflow-metal.",
    "GroupVerdict": "A group's size-aware verdict: CPU time below the thresholds is `minor_fallback`.",  # noqa: E501
    "DoctorStatus": "The doctor's verdict on an environment.",
    "CheckStatus": "One doctor check's outcome.",
    "ErrorKind": "What kind of failure an error body reports.",
}

Ps = int  # integer picoseconds; the Clock(...) beside each one says on which clock

# ---------------------------------------------------------------------------
# /sessions


class SessionEntry(TypedDict):
    """One profile session under the logdir."""

    name: Annotated[str, "`run/session`, the name xprof uses too"]
    run: Annotated[str | None, "the run: the folder above `plugins/profile`, relative"]
    session: Annotated[str | None, "the session folder's name (a timestamp)"]
    hosts: Annotated[list[str], "host names (trace files without `.xplane.pb`), sorted"]


class FileError(TypedDict):
    """A file or folder the logdir scan could not read."""

    path: Annotated[str, "relative to the logdir"]
    message: Annotated[str, "what went wrong"]


class SessionsPayload(TypedDict):
    """`GET /sessions`: the profile sessions under the logdir."""

    logdir_set: Annotated[bool, "false when TensorBoard was started without a logdir"]
    sessions: Annotated[list[SessionEntry], "sorted by name"]
    errors: Annotated[list[FileError], "what the scan itself could not read"]


# ---------------------------------------------------------------------------
# Shared by /layers, /ops and /readiness


class _HeaderFields(TypedDict):
    tb_metal_version: Annotated[str, "the tb-metal version that computed the payload"]
    session: Annotated[str | None, "`run/session`; null for a trace file loaded on its own"]
    run: Annotated[str | None, "the run (folder above `plugins/profile`)"]
    host: Annotated[str, "the host whose trace this is"]
    file: Annotated[str, "the trace file (routes: relative to the logdir)"]
    step: Annotated[StepLabel, "the step selection the figures cover"]
    steps: Annotated[list[int], "profiled step numbers (Keras batch indices), in time order"]
    steps_source: Annotated[str, "where the steps came from (`markers`, ..., `none`)"]
    step_time_ps: Annotated[
        Ps, Clock("wall"), "step time of the selection: between step markers (or the window)"
    ]
    step_time_clock: Annotated[Literal["wall"], "the clock of `step_time_ps`"]
    timeline: Annotated[Timeline, "whether a device timeline timed the ops"]
    time_note: Annotated[str, "what the times measure, in words"]
    devices: Annotated[list[str], "devices the ops ran on"]
    has_gpu: Annotated[bool, "whether any op ran on a GPU"]
    attribution_source: Annotated[
        str,
        "`manifest` (exact), `trace_graph` (inferred from op names and the step graph in the "
        "run's event file) or `trace_names` (inferred from op names)",
    ]
    has_manifest: Annotated[bool, "whether the callback's manifest was beside the trace"]
    warnings: Annotated[list[str], "what to know about these figures"]


class ProfileHeader(_HeaderFields, total=False):
    """The fields every payload of one profile starts with (`Profile._header`)."""

    load_s: Annotated[float, "routes only: seconds the trace took to load"]
    cached: Annotated[bool, "routes only: served from the on-disk cache while the trace reloads"]


# ---------------------------------------------------------------------------
# /layers


class _BenchmarkRequired(TypedDict):
    path: Annotated[list[str], "the layer's path"]
    device: Annotated[str, "device type the layer was timed on (`GPU`, `CPU`)"]
    forward_ps: Annotated[
        Ps | None, Clock("wall"), "forward call, median, empty-call overhead subtracted"
    ]


class BenchmarkEntry(_BenchmarkRequired, total=False):
    """The callback's layer benchmark: one layer alone, per call, on one device (a manifest
    entry as recorded; older manifests carry only `forward_ps`, `backward_ps`,
    `call_overhead_ps`, with the overhead inside `forward_ps`)."""

    device_name: Annotated[str, "the TensorFlow device name"]
    unit: Annotated[Literal["per_call"], "every figure is per call"]
    method: Annotated[str, "how the calls were timed"]
    batch_size: Annotated[int | None, "batch dimension of the benchmark's inputs"]
    forward_p10_ps: Annotated[Ps | None, Clock("wall"), "forward, 10th percentile"]
    forward_p90_ps: Annotated[Ps | None, Clock("wall"), "forward, 90th percentile"]
    forward_gross_ps: Annotated[Ps | None, Clock("wall"), "forward median before subtraction"]
    call_overhead_ps: Annotated[Ps | None, Clock("wall"), "empty call's p10: subtracted"]
    call_overhead_median_ps: Annotated[Ps | None, Clock("wall"), "empty call's median"]
    call_overhead_p90_ps: Annotated[Ps | None, Clock("wall"), "empty call's p90"]
    backward_ps: Annotated[
        Ps | None,
        Clock("wall"),
        "backward, median, overhead subtracted; null: nothing to differentiate",  # noqa: E501
    ]
    backward_p10_ps: Annotated[Ps | None, Clock("wall"), "backward, 10th percentile"]
    backward_p90_ps: Annotated[Ps | None, Clock("wall"), "backward, 90th percentile"]
    backward_gross_ps: Annotated[Ps | None, Clock("wall"), "backward median before subtraction"]
    backward_overhead_ps: Annotated[Ps | None, Clock("wall"), "empty gradient call's p10"]
    backward_overhead_median_ps: Annotated[Ps | None, Clock("wall"), "empty gradient call's median"]
    backward_overhead_p90_ps: Annotated[Ps | None, Clock("wall"), "empty gradient call's p90"]
    overhead_subtracted: Annotated[bool, "true when the overhead was subtracted (ratios need it)"]
    repeats: Annotated[int, "timed calls"]
    warmup: Annotated[int, "untimed calls first"]
    input_shapes: Annotated[list[Any], "shapes of the layer's inputs"]


# `class`, `from` and `in` are Python keywords: such fields use the functional form.
_LayerClass = TypedDict("_LayerClass", {"class": Annotated[str | None, "layer class (manifest)"]})


class _NodeFields(_LayerClass):
    name: Annotated[str, "layer (or bucket) name"]
    path: Annotated[list[str], "layer path from the outermost model; `[name]` for a bucket"]
    op_count: Annotated[int, "ops in the node and its children"]
    self_ps: Annotated[Ps, Clock("per_op"), "op time of the node's own ops (children excluded)"]
    total_ps: Annotated[Ps, Clock("field:clock"), "op time including the children"]
    phases: Annotated[dict[Phase, Ps], Clock("per_op"), "`total_ps` per phase"]
    devices: Annotated[
        dict[str, Ps],
        Clock("per_op"),
        "`total_ps` per device kind; host-side GPU time under `GPU (host-side)`",
    ]
    device_ids: Annotated[dict[str, Ps], Clock("per_op"), "`total_ps` per device id (`GPU:1`)"]
    clocks: Annotated[dict[OpClock, Ps], "`total_ps` per clock (only clocks that occur)"]
    clock: Annotated[NodeClock | None, "the one clock of `total_ps`, `mixed`, or null (no ops)"]
    share: Annotated[float, "of all op time in the selection"]
    step_share: Annotated[float, "of the step time"]
    fallback_count: Annotated[int, "ops that fell back to the CPU"]
    fallback_ps: Annotated[Ps, Clock("per_op"), "op time of those ops"]
    copy_ps: Annotated[Ps, Clock("per_op"), "time of cross-device copies charged here"]
    params: Annotated[int | None, "parameter count (manifest), null when unknown"]
    benchmark: Annotated[list[BenchmarkEntry] | None, "the layer benchmark, one entry per device"]
    children: Annotated[list[LayerNode], "sublayers, most time first"]


class LayerNode(_NodeFields, total=False):
    """A layer of the tree with its roll-ups, or a bucket of time outside any layer."""

    bucket: Annotated[Literal[True], "present (true) on bucket nodes only"]


class Source(TypedDict):
    """Where a fact comes from."""

    title: Annotated[str, "what the source is"]
    url: Annotated[str | None, "a link, when there is one"]


MetalRange = TypedDict(
    "MetalRange",
    {"from": Annotated[str, "first release"], "to": Annotated[str, "last release"]},
)
MetalRange.__doc__ = "tensorflow-metal releases a remedy was written for."


class _RemedyFields(TypedDict):
    id: Annotated[str, "remedy id (`data/remedies.json`)"]
    title: Annotated[str, "what to do, in a few words"]
    advice: Annotated[str, "what to do"]
    example: Annotated[str, "code showing it"]
    on_metal: Annotated[str, "`untested on Metal` unless a source reports it working"]
    sources: Annotated[list[Source], "where the advice comes from"]
    matched_by: Annotated[str, "how it matched: `op_type`, `pattern`, `reason`, `category`, ..."]
    written_for: Annotated[MetalRange, "tensorflow-metal releases the advice was written for"]


class Remedy(_RemedyFields, total=False):
    """What to do about an op type that runs on the CPU with tensorflow-metal."""

    applies: Annotated[bool, "whether the asked tensorflow-metal release is in `written_for`"]


class FallbackReason(TypedDict):
    """Why an op ran on the CPU."""

    reason_code: Annotated[str, "`no_gpu_kernel`, `explicit_placement`, ..."]
    reason: Annotated[str, "the reason, in words"]


class Fallback(TypedDict):
    """CPU-fallback ops of one layer and op type."""

    path: Annotated[list[str] | None, "the layer; null for ops outside any layer"]
    bucket: Annotated[str | None, "the bucket of ops outside any layer"]
    op_type: Annotated[str, "the op type"]
    reason_code: Annotated[str, "see `FallbackReason`"]
    reason: Annotated[str, "why, in words"]
    device_source: Annotated[str, "how the device was known"]
    remedy: Annotated[Remedy | None, "what to do about it"]
    ops: Annotated[list[str], "the op names"]
    count: Annotated[float, "executions (a mean with `step=avg`)"]
    self_ps: Annotated[Ps, Clock("field:clock"), "their op time"]
    clock: Annotated[OpClock, "clock of `self_ps`"]
    copy_ps: Annotated[Ps, Clock("per_op"), "time of copies charged to the same layer"]


class FallbackOpType(TypedDict):
    """One op type of a layer's measured fallbacks."""

    type: Annotated[str, "the op type"]
    count: Annotated[float, "executions (a mean with `step=avg`)"]
    self_ps: Annotated[Ps, Clock("per_op"), "op time of its ops"]


class FallbackReasonGroup(TypedDict):
    """One reason of a layer's fallbacks, said once for the op types it concerns."""

    reason_code: Annotated[str, "see `FallbackReason`"]
    device_source: Annotated[str, "how the device was known"]
    reason: Annotated[str, "the reason as said of its first op type"]
    op_types: Annotated[list[str], "the op types it concerns, most time first"]
    text: Annotated[str, "the reason naming all those op types once"]


class FallbackLayer(TypedDict):
    """The measured CPU fallbacks of one layer (or bucket), as every face lists them."""

    path: Annotated[list[str] | None, "the layer; null for ops outside any layer"]
    bucket: Annotated[str | None, "the bucket of ops outside any layer"]
    self_ps: Annotated[Ps, Clock("field:clock"), "op time of its fallen-back ops"]
    clock: Annotated[NodeClock, "clock of `self_ps`"]
    count: Annotated[float, "executions (a mean with `step=avg`)"]
    copy_ps: Annotated[Ps, Clock("per_op"), "time of copies charged to the layer (once)"]
    op_types: Annotated[list[FallbackOpType], "op types, most time first"]
    reasons: Annotated[list[FallbackReasonGroup], "reasons, each said once"]
    remedies: Annotated[list[Remedy], "what to do, one per remedy"]


class _CopyFields(TypedDict):
    path: Annotated[list[str] | None, "the layer that made data cross devices"]
    op: Annotated[str | None, "the copy op (or the op a device memcpy belongs to)"]
    kind: Annotated[str, "`_Send`, `_Recv`, or the device plane's memcpy kind"]
    device: Annotated[str, "device (or device plane) of the copy"]
    ps: Annotated[Ps, Clock("field:clock"), "copy time"]
    clock: Annotated[OpClock, "clock of `ps`"]
    count: Annotated[float, "executions (a mean with `step=avg`)"]
    source: Annotated[Literal["host_op", "device_plane"], "a `_Send`/`_Recv` op or a memcpy"]


class Copy(_CopyFields, total=False):
    """A cross-device copy."""

    between: Annotated[list[str | None], "host ops only: producer and consumer op names"]


class CopyTotal(TypedDict):
    """All copies timed on one clock."""

    ps: Annotated[Ps, Clock("key"), "their time, on the clock this entry is keyed by"]
    count: Annotated[float, "their executions (a mean with `step=avg`)"]


class DeviceTimeline(TypedDict):
    """One device plane's busy time in the selection."""

    device: Annotated[str, "device id (`GPU:0`)"]
    kind: Annotated[str, "device kind (`GPU`, `TPU`)"]
    plane: Annotated[str, "the trace's plane name (`/device:GPU:0`)"]
    clock: Annotated[Literal["device"], "clock of `busy_ps`"]
    busy_ps: Annotated[Ps, Clock("device"), "time its work lines (kernels, copies) were busy"]
    step_share: Annotated[float, "of the step's wall time"]
    kernel_count: Annotated[int, "kernels"]
    copy_count: Annotated[int, "copies"]
    copy_bytes: Annotated[int, "bytes copied"]
    unlinked_ps: Annotated[Ps, Clock("device"), "busy time linked to no TF op"]


class AttributionAccuracy(TypedDict):
    """How often this payload's attribution source was right on the ground-truth corpus."""

    source: Annotated[str, "`trace_names`, `trace_graph` or `manifest`"]
    models: Annotated[int, "models of the corpus scored"]
    layer_time_min: Annotated[float, "share of op time with the right layer: worst model"]
    layer_time_mean: Annotated[float, "the same, mean over the models"]
    layer_op_min: Annotated[float, "share of ops with the right layer: worst model"]
    layer_op_mean: Annotated[float, "the same, mean over the models"]
    phase_time_min: Annotated[float, "share of op time with the right phase: worst model"]
    phase_time_mean: Annotated[float, "the same, mean over the models"]
    below_thresholds: Annotated[list[str], "models below the accuracy targets of issue 9"]
    recorded_with: Annotated[str, "TensorFlow and Keras versions of the corpus"]
    command: Annotated[str, "the command that measured (and prints) these figures"]


class LayersPayload(ProfileHeader):
    """`GET /layers`, `tb-metal layers --format json`: `Profile.layers(step)`."""

    total_ps: Annotated[Ps, Clock("field:clock"), "all op time; layers + buckets add up to it"]
    clocks: Annotated[dict[OpClock, Ps], "`total_ps` per clock"]
    clock: Annotated[NodeClock | None, "the one clock of `total_ps`, `mixed`, or null"]
    op_count: Annotated[int, "ops with an event in the selection"]
    layers: Annotated[list[LayerNode], "top-level layers (models), most time first"]
    buckets: Annotated[list[LayerNode], "time outside any layer, by bucket"]
    fallbacks: Annotated[list[Fallback], "CPU-fallback ops grouped by layer and op type"]
    fallback_layers: Annotated[list[FallbackLayer], "the same, one row per layer"]
    copies: Annotated[list[Copy], "cross-device copies, most time first"]
    copy_totals: Annotated[dict[OpClock, CopyTotal], "the copies per clock, never added across"]
    device_sources: Annotated[dict[str, int], "op count per device source"]
    device_timelines: Annotated[list[DeviceTimeline], "each device plane's busy time"]
    attribution_accuracy: Annotated[
        AttributionAccuracy | None, "measured accuracy of `attribution_source`; null if unknown"
    ]


# ---------------------------------------------------------------------------
# /ops


class _OpFields(TypedDict):
    name: Annotated[str, "the op's full name"]
    type: Annotated[str, "the op type as executed"]
    layer: Annotated[list[str] | None, "layer path; null for ops outside any layer"]
    phase: Annotated[Phase, "training phase"]
    bucket: Annotated[str | None, "bucket name for ops outside any layer"]
    attribution_source: Annotated[str, "how the layer was found"]
    device: Annotated[str, "device kind (`GPU`, `CPU`)"]
    device_id: Annotated[str, "device (`GPU:0`)"]
    device_source: Annotated[str, "how the device was known (`device_plane`, `placement`, ...)"]
    count: Annotated[float, "executions (a mean with `step=avg`)"]
    time_ps: Annotated[Ps, Clock("field:clock"), "the time the layer tree adds up"]
    clock: Annotated[OpClock, "clock of `time_ps`"]
    self_ps: Annotated[Ps, Clock("field:host_clock"), "the op's own host events, children out"]
    total_ps: Annotated[Ps, Clock("field:host_clock"), "the op's own host events, children in"]
    host_clock: Annotated[HostClock, "clock of `self_ps` and `total_ps`"]
    device_ps: Annotated[Ps | None, Clock("device"), "device time; null without a timeline"]
    fallback: Annotated[FallbackReason | None, "set when the op fell back to the CPU"]
    is_copy: Annotated[bool, "a `_Send`/`_Recv` copy op"]
    copy_between: Annotated[list[Any] | None, "copies: producer and consumer op names"]


class OpRow(_OpFields):
    """One op of the selection with its layer, phase, device and times."""

    device_ids: Annotated[
        dict[str, Ps], Clock("field:clock"), "`time_ps` per device id its kernels ran on"
    ]


class OpsPayload(ProfileHeader):
    """`GET /ops`, `tb-metal ops --format json`: `Profile.ops(step, layer, bucket)`."""

    ops: Annotated[list[OpRow], "most time first"]


# ---------------------------------------------------------------------------
# /compare


class CompareTotals(TypedDict):
    """The headline of a comparison: step time, one clock in every run."""

    step_time_ps: Annotated[list[Ps | None], Clock("wall"), "step time per profile"]
    step_time_clock: Annotated[Literal["wall"], "clock of `step_time_ps`"]
    speedup: Annotated[list[float | None], "baseline step time / this one's"]
    total_ps: Annotated[list[Ps | None], Clock("per_op"), "op time per profile"]
    clocks: Annotated[list[dict[OpClock, Ps] | None], "`total_ps` per clock, per profile"]


class CompareRow(_LayerClass):
    """One layer or bucket across the profiles (lists: one element per profile)."""

    key: Annotated[list[str], "the matching key (root aliased as `<model>` when names differ)"]
    kind: Annotated[Literal["layer", "bucket"], "a layer or a bucket"]
    name: Annotated[str, "layer or bucket name"]
    depth: Annotated[int, "depth in the tree"]
    paths: Annotated[list[list[str] | None], "the real path in each profile"]
    self_ps: Annotated[list[Ps | None], Clock("per_op"), "own op time"]
    total_ps: Annotated[list[Ps | None], Clock("field:clock"), "op time with children"]
    clock: Annotated[list[NodeClock | None], "clock of each `total_ps`"]
    clocks: Annotated[list[dict[OpClock, Ps] | None], "`total_ps` per clock"]
    devices: Annotated[list[dict[str, Ps] | None], Clock("per_op"), "`total_ps` per device"]
    fallback_ps: Annotated[
        list[Ps | None], Clock("per_op"), "op time of the ops that fell back to the CPU"
    ]
    benchmark_ps: Annotated[
        list[Ps | None], Clock("wall"), "layer benchmark, forward + backward per call"
    ]
    benchmark_device: Annotated[list[str | None], "device the benchmark figure is for"]
    fallback_count: Annotated[list[int | None], "CPU-fallback ops"]
    fallback_delta: Annotated[list[int | None], "fallback_count minus the baseline's"]
    present: Annotated[list[bool], "whether each profile has the row"]
    delta_ps: Annotated[
        list[Ps | None], Clock("field:clock"), "total_ps minus the baseline's; null across clocks"
    ]
    speedup: Annotated[list[float | None], "baseline / this; null across clocks"]
    speedup_source: Annotated[
        list[Literal["profile", "layer_benchmark"] | None], "which times the speedup divides"
    ]
    speedup_note: Annotated[list[str | None], "why there is no speedup"]
    matched: Annotated[bool, "present in every profile"]


_In = TypedDict("_In", {"in": Annotated[list[str], "labels of the profiles with it"]})


class Unmatched(_In):
    """A row only some profiles have."""

    key: Annotated[list[str], "the row's key"]
    kind: Annotated[Literal["layer", "bucket"], "a layer or a bucket"]
    name: Annotated[str, "its name"]
    missing_in: Annotated[list[str], "labels of the profiles without it"]


class ComparePayload(TypedDict):
    """`GET /compare`, `tb-metal compare --format json`: `compare.compare(payloads, labels)`."""

    labels: Annotated[list[str], "one per profile"]
    baseline: Annotated[str, "the first label"]
    sessions: Annotated[list[str | None], "session of each profile"]
    hosts: Annotated[list[str], "host of each profile"]
    step: Annotated[StepLabel, "the baseline's step selection"]
    timelines: Annotated[list[Timeline], "timeline of each profile"]
    totals: Annotated[CompareTotals, "the headline"]
    rows: Annotated[list[CompareRow], "tree order: layers, then buckets"]
    matched_count: Annotated[int, "rows present in every profile"]
    unmatched: Annotated[list[Unmatched], "rows only some profiles have"]
    warnings: Annotated[list[str], "what to know about the comparison"]


# ---------------------------------------------------------------------------
# tb-metal doctor, and the readiness payload's environment_doctor


class DoctorSource(TypedDict):
    """A source of the compatibility table."""

    id: Annotated[str, "its key in `data/compatibility.json`"]
    title: Annotated[str, "what it is"]
    url: Annotated[str | None, "a link, when there is one"]


class _CheckFields(TypedDict):
    check: Annotated[str, "what was checked (`os`, `tensorflow`, `keras`, ...)"]
    status: Annotated[CheckStatus, "its outcome"]
    found: Annotated[Any, "what was found (a version, a device list, ...)"]
    message: Annotated[str, "the finding, in words"]
    fix: Annotated[str | None, "what to do"]
    sources: Annotated[list[DoctorSource], "where the facts come from"]


class DoctorCheck(_CheckFields, total=False):
    """One check of the doctor."""

    detail: Annotated[str, "the version pair check: why the pair has its status, at length"]


class DoctorEnvironment(TypedDict):
    """The versions the doctor judged."""

    python: Annotated[str | None, "Python version"]
    os: Annotated[str | None, "`Darwin`, `Linux`, ..."]
    machine: Annotated[str | None, "`arm64`, `x86_64`, ..."]
    tensorflow: Annotated[str | None, "TensorFlow version"]
    keras: Annotated[str | None, "Keras version"]
    tensorflow_metal: Annotated[str | None, "tensorflow-metal version"]


class Recommended(TypedDict):
    """The recommended set of versions."""

    tensorflow_metal: Annotated[str, "tensorflow-metal"]
    tensorflow: Annotated[str, "TensorFlow"]
    python: Annotated[str, "Python"]
    keras: Annotated[str, "Keras"]


class DoctorVerdict(TypedDict):
    """`tb-metal doctor --format json`: the verdict on one environment."""

    status: Annotated[DoctorStatus, "the worst check's status"]
    exit_code: Annotated[int, "1 when broken, else 0"]
    summary: Annotated[str, "the verdict in one line"]
    environment: Annotated[DoctorEnvironment, "what was judged"]
    gpu_visible: Annotated[bool | None, "whether TensorFlow saw a GPU; null when not asked"]
    fix: Annotated[str | None, "the first broken check's fix"]
    recommended: Annotated[Recommended, "the recommended versions"]
    recommended_install: Annotated[str, "the install command for them"]
    checks: Annotated[list[DoctorCheck], "every check"]
    table_updated: Annotated[str, "date of the compatibility table"]


class _DoctorRunFields(TypedDict):
    session: Annotated[str, "`run/session`"]
    host: Annotated[str, "the host"]
    verdict: Annotated[DoctorVerdict | None, "null when no environment was recorded"]


class DoctorRun(_DoctorRunFields, total=False):
    """The doctor's verdict on the environment one manifest recorded."""

    note: Annotated[str, "why there is no verdict"]
    recorded_status: Annotated[DoctorStatus, "the status the callback stored at fit start"]


class DoctorLogdirPayload(TypedDict):
    """`tb-metal doctor LOGDIR --format json`."""

    logdir: Annotated[str, "the path asked about"]
    runs: Annotated[list[DoctorRun], "one per profiled host"]


# ---------------------------------------------------------------------------
# /readiness, tb-metal metal-check


class RemedyUse(Remedy):
    """A remedy a run needs, with the op types it covers there."""

    op_types: Annotated[list[str], "the run's op types it covers"]
    ps: Annotated[Ps, Clock("per_op_host"), "their op self time"]


class VerdictTimes(TypedDict):
    """Op self time per verdict (every verdict is present)."""

    metal_gpu: Annotated[Ps, Clock("per_op_host"), "a Metal (or device-agnostic) kernel exists"]
    cpu_fallback: Annotated[Ps, Clock("per_op_host"), "no Metal kernel: falls back to the CPU"]
    cpu_only_by_nature: Annotated[Ps, Clock("per_op_host"), "py_function, tf.data, strings, ..."]
    unknown: Annotated[Ps, Clock("per_op_host"), "bookkeeping with no compute of its own"]


class MinorTime(TypedDict):
    """CPU time below the size thresholds."""

    verdict: Annotated[Verdict, "its verdict"]
    ps: Annotated[Ps, Clock("per_op_host"), "its op self time"]


class GroupReasons(TypedDict):
    """Why a group's ops would run on the CPU, per CPU verdict: each sentence said once for
    all the op types it names ("no Metal kernel for A, B: ..."), most op time first."""

    cpu_fallback: Annotated[list[str], "why its ops have no Metal kernel"]
    cpu_only_by_nature: Annotated[list[str], "why its ops run on the CPU on every device"]


class _GroupFields(TypedDict):
    verdicts: Annotated[VerdictTimes, "op self time per verdict"]
    fallback_op_types: Annotated[list[str], "op types with no Metal kernel, most time first"]
    fallback_ps: Annotated[Ps, Clock("per_op_host"), "time predicted to fall back"]
    fallback_share: Annotated[float, "of the group's op time"]
    cpu_only_ps: Annotated[Ps, Clock("per_op_host"), "time on the CPU by nature"]
    cpu_only_op_types: Annotated[list[str], "op types on the CPU by nature, most time first"]
    cpu_ps: Annotated[Ps, Clock("per_op_host"), "all predicted CPU time: fallback + by nature"]
    total_ps: Annotated[Ps, Clock("per_op_host"), "the group's op self time"]
    verdict: Annotated[GroupVerdict, "size-aware (see `thresholds`)"]
    worst_verdict: Annotated[Verdict, "the most severe op verdict, whatever its size"]
    minor: Annotated[list[MinorTime], "CPU time below the thresholds"]
    remedy_ids: Annotated[list[str], "remedies, most time first"]


class ReadinessGroup(_GroupFields, total=False):
    """A layer (`layers`, `layer_tree`) or bucket (`buckets`) of the prediction."""

    layer: Annotated[list[str] | None, "the layer; null: every op outside layers"]
    bucket: Annotated[str, "the bucket (in `buckets`)"]
    own_fallback_ps: Annotated[
        Ps, Clock("per_op_host"), "`layer_tree`: the layer's own ops, sublayers excluded"
    ]
    reasons: Annotated[GroupReasons, "`layers`, `buckets`: why its own ops would run on the CPU"]


class ReadinessOp(OpRow):
    """An op row with its predicted placement."""

    verdict: Annotated[Verdict, "predicted placement"]
    reason: Annotated[str, "why"]
    macos_op_types: Annotated[list[str], "the op types a Mac would run in its place"]
    fallback_op_types: Annotated[list[str], "those with no Metal kernel"]
    remedy_ids: Annotated[list[str], "what to do"]
    linux_only: Annotated[bool, "a oneDNN / Grappler CPU-only op type, judged by a Mac's ops"]


class Disagreement(TypedDict):
    """An op whose placement recorded on a Mac differs from the prediction."""

    name: Annotated[str, "the op"]
    type: Annotated[str, "its type"]
    layer: Annotated[list[str] | None, "its layer"]
    self_ps: Annotated[Ps, Clock("per_op_host"), "its op self time"]
    predicted: Annotated[Verdict, "the prediction"]
    measured_device: Annotated[str, "where the run placed it"]
    reason: Annotated[str, "in words"]


class Thresholds(TypedDict):
    """Below both, a group's CPU time is minor: shown, never a red badge."""

    min_ps: Annotated[Ps, Clock("per_op_host"), "minimum CPU time"]
    min_share: Annotated[float, "minimum share of the group"]


class ReadinessPayload(ProfileHeader):
    """`GET /readiness`, `tb-metal metal-check --format json`: `readiness.check(ops, ...)`."""

    metal_version: Annotated[str, "the tensorflow-metal release predicted for"]
    metal_versions: Annotated[list[str], "releases known, newest (the default) first"]
    is_prediction: Annotated[Literal[True], "always a prediction"]
    note: Annotated[str, "what the prediction rests on"]
    thresholds: Annotated[Thresholds, "the size thresholds of group verdicts"]
    total_ps: Annotated[Ps, Clock("per_op_host"), "op self time of the selection"]
    fallback_ps: Annotated[Ps, Clock("per_op_host"), "predicted to fall back"]
    fallback_share: Annotated[float, "the headline: share of op time predicted to fall back"]
    cpu_only_ps: Annotated[Ps, Clock("per_op_host"), "on the CPU by nature"]
    verdict_ps: Annotated[VerdictTimes, Clock("per_op_host"), "op self time per verdict"]
    ops: Annotated[list[ReadinessOp], "every op with its prediction"]
    layers: Annotated[list[ReadinessGroup], "ops grouped by their own layer"]
    layer_tree: Annotated[list[ReadinessGroup], "every layer path, whole subtree summed"]
    buckets: Annotated[list[ReadinessGroup], "ops outside layers, by bucket"]
    remedies: Annotated[list[RemedyUse], "remedies the run needs, most time first"]
    measured_tensorflow_metal: Annotated[str | None, "set when recorded with tensorflow-metal"]
    disagreements: Annotated[list[Disagreement] | None, "null unless recorded on a Mac"]
    environment_doctor: Annotated[DoctorVerdict | None, "the doctor on the recorded env"]
    verdict_order: Annotated[list[Verdict], "most severe first"]
    group_verdict_order: Annotated[list[GroupVerdict], "most severe first"]


# ---------------------------------------------------------------------------
# /layers?host=all


class HostStat(TypedDict):
    """One figure over the hosts of a session: sum, mean per host, the slowest host."""

    sum_ps: Annotated[Ps, Clock("field:clock"), "summed over the hosts"]
    mean_ps: Annotated[float, Clock("field:clock"), "mean per loaded host (a host without it: 0)"]
    max_ps: Annotated[Ps, Clock("field:clock"), "the slowest host's figure"]
    slowest_host: Annotated[str | None, "the host with the largest figure (ties: first by name)"]
    per_host: Annotated[dict[str, Ps], Clock("field:clock"), "each host's figure"]
    clock: Annotated[NodeClock | None, "clock of the figures (`mixed` when hosts or ops differ)"]


class HostsLayerRow(HostStat):
    """A layer (or bucket) over the hosts: its `total_ps` on each host, summed and compared."""

    path: Annotated[list[str], "layer path (a bucket: `[name]`)"]
    bucket: Annotated[bool, "true for a bucket of ops outside any layer"]


class HostError(TypedDict):
    """A host of the session that could not be loaded."""

    host: Annotated[str, "the host"]
    message: Annotated[str, "what went wrong"]


class HostsLayersPayload(TypedDict):
    """`GET /layers?host=all`, `tb-metal layers --host all`: `load_session(...).layers(step)`."""

    tb_metal_version: Annotated[str, "the tb-metal version that computed the payload"]
    session: Annotated[str | None, "`run/session`"]
    run: Annotated[str | None, "the run (folder above `plugins/profile`)"]
    host: Annotated[Literal["all"], "always `all`"]
    hosts: Annotated[list[str], "the hosts that loaded, sorted"]
    host_errors: Annotated[list[HostError], "hosts that did not load (the rest are shown)"]
    files: Annotated[dict[str, str], "each host's trace file"]
    step: Annotated[StepLabel, "the step selection the figures cover"]
    total: Annotated[HostStat, "all op time of each host's selection"]
    step_time_ps: Annotated[dict[str, Ps], Clock("wall"), "each host's step time"]
    step_time_clock: Annotated[Literal["wall"], "the clock of `step_time_ps`"]
    layers: Annotated[list[HostsLayerRow], "every layer and bucket of any host, most time first"]
    warnings: Annotated[list[str], "each host's warnings, prefixed with its name"]


# ---------------------------------------------------------------------------
# Route status bodies


class _LoadingFields(TypedDict):
    status: Annotated[Literal["loading"], "always `loading`"]
    progress: Annotated[float, "0..1"]
    message: Annotated[str, "what is being read"]


class LoadingStatus(_LoadingFields, total=False):
    """The `202 Accepted` body while a profile loads."""

    elapsed_s: Annotated[float, "seconds since the load started"]


class _ErrorFields(TypedDict):
    error: Annotated[str, "the message"]
    kind: Annotated[ErrorKind, "what failed"]


class ErrorBody(_ErrorFields, total=False):
    """A JSON error answer."""

    message: Annotated[str, "the message (newer servers; `error` repeats it)"]
    path: Annotated[str, "the file concerned, relative to the logdir"]


# The payloads, in the order the docs and types.ts list them.
PAYLOADS = (
    SessionsPayload,
    LayersPayload,
    OpsPayload,
    ComparePayload,
    ReadinessPayload,
    HostsLayersPayload,
    DoctorVerdict,
    DoctorLogdirPayload,
    LoadingStatus,
    ErrorBody,
)
