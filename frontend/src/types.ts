// Typed view of the plugin's JSON routes (see docs/json-api.md). Times are picoseconds.

/** A selection of steps: null/"all" = whole profiled window, "avg" = mean per step. */
export type Step = number | "avg" | "all" | null;

export interface SessionEntry {
  name: string; // "run/session", the name xprof uses too
  run: string | null;
  session: string | null;
  hosts: string[];
}

export interface FileError {
  path: string;
  message: string;
}

export interface SessionsPayload {
  logdir_set: boolean;
  sessions: SessionEntry[];
  errors: FileError[];
}

export interface LayerNode {
  name: string;
  path: string[];
  class: string | null;
  op_count: number;
  self_ps: number;
  total_ps: number;
  phases: Record<string, number>;
  devices: Record<string, number>; // host-side GPU time under "GPU (host-side)"
  clocks?: Record<string, number>; // time per clock: device, host_side, host
  clock?: string | null; // the one clock, "mixed", or null without op time
  share: number; // of all op time in the selection
  step_share?: number; // of the step time
  fallback_count: number;
  fallback_ps?: number;
  bucket?: boolean;
  copy_ps: number;
  children: LayerNode[];
  [extra: string]: unknown;
}

export interface Fallback {
  path: string[] | null;
  bucket?: string | null;
  device_source?: string;
  op_type: string;
  reason_code: string;
  reason: string;
  self_ps: number;
  count: number;
  copy_ps: number;
  remedy?: Remedy | null;
  [extra: string]: unknown;
}

export interface Copy {
  path: string[] | null;
  op?: string;
  kind?: string;
  device?: string;
  source?: string;
  ps: number;
  count: number;
}

export interface LayersPayload {
  session: string;
  host: string;
  run: string | null;
  step: Step | string; // the core labels one step as a string, e.g. "3"
  steps: number[];
  total_ps: number;
  step_time_ps: number; // wall time (host clock, step markers)
  clocks?: Record<string, number>; // total_ps per clock
  clock?: string | null;
  timeline: string;
  time_note: string;
  devices: string[];
  has_gpu?: boolean;
  has_manifest?: boolean;
  device_sources?: Record<string, number>;
  op_count?: number;
  attribution_source: string;
  layers: LayerNode[];
  buckets: LayerNode[];
  fallbacks: Fallback[];
  copies: Copy[];
  warnings: string[];
  file?: string;
  load_s?: number;
  cached?: boolean; // served from the on-disk cache while the profile reloads
  [extra: string]: unknown;
}

export interface OpRow {
  name: string;
  type: string;
  layer: string[] | string | null;
  bucket?: string | null;
  time_ps: number; // the time the layer tree sums, on `clock`
  clock: string; // device | host_side | host
  host_clock?: string; // clock of self_ps / total_ps
  device_id?: string;
  phase: string | null;
  device: string | null;
  device_source: string | null;
  count: number;
  self_ps: number;
  total_ps: number;
  fallback: null | { reason_code?: string; reason?: string; [k: string]: unknown };
  [extra: string]: unknown;
}

export interface OpsPayload {
  ops: OpRow[];
  [extra: string]: unknown;
}

export interface CompareRow {
  key: string[];
  kind: "layer" | "bucket";
  name: string;
  depth: number;
  class: string | null;
  paths: (string[] | null)[];
  self_ps: (number | null)[];
  total_ps: (number | null)[];
  clock: (string | null)[];
  clocks: (Record<string, number> | null)[];
  devices: (Record<string, number> | null)[];
  benchmark_ps: (number | null)[];
  benchmark_device: (string | null)[];
  fallback_count: (number | null)[];
  fallback_ps?: (number | null)[]; // CPU time of the fallen-back ops (host clock)
  present: boolean[];
  delta_ps: (number | null)[]; // null across clocks
  speedup: (number | null)[]; // null across clocks: see speedup_note
  speedup_source: (string | null)[]; // "profile" | "layer_benchmark"
  speedup_note: (string | null)[];
  matched: boolean;
}

export interface ComparePayload {
  labels: string[];
  baseline: string;
  sessions: string[];
  hosts: string[];
  step: Step | string;
  timelines: string[];
  totals: { step_time_ps: (number | null)[]; step_time_clock?: string; total_ps: (number | null)[]; speedup: (number | null)[]; clocks?: (Record<string, number> | null)[] };
  rows: CompareRow[];
  matched_count: number;
  unmatched: { key: string[]; kind: string; name: string; in: string[]; missing_in: string[] }[];
  warnings: string[];
}

export interface LoadingStatus {
  status: "loading";
  progress: number;
  message: string;
}

export interface ErrorBody {
  error: string;
  path?: string;
  kind?: string;
}

/** Predicted placement on tensorflow-metal (tb_metal_plugin/readiness.py). */
export type Verdict = "metal_gpu" | "cpu_fallback" | "cpu_only_by_nature" | "unknown";
/** A group's size-aware verdict: CPU time below the thresholds is "minor", never red. */
export type GroupVerdict = Verdict | "minor_fallback";

/** What to do about an op type that runs on the CPU (tb_metal_plugin/data/remedies.json). */
export interface Remedy {
  id: string;
  title: string;
  advice: string;
  example: string;
  on_metal: string; // "untested on Metal" unless a source reports it working
  sources: { title: string; url: string | null }[];
  matched_by: string;
  written_for: { from: string; to: string };
  applies?: boolean;
  op_types?: string[]; // in a readiness payload: the run's op types it covers
  ps?: number;
}

/** One layer (or, in `buckets`, one bucket of ops outside any layer) of the prediction. */
export interface ReadinessGroup {
  layer?: string[] | null;
  bucket?: string;
  verdict: GroupVerdict; // size-aware (see thresholds)
  worst_verdict: Verdict; // the most severe op verdict, whatever its size
  verdicts: Record<Verdict, number>; // op self time per verdict
  fallback_op_types: string[]; // op types with no Metal kernel, most time first
  fallback_ps: number;
  fallback_share: number; // of the group's op time
  cpu_only_ps: number;
  total_ps: number;
  minor: { verdict: Verdict; ps: number }[]; // CPU time below the thresholds
  remedy_ids: string[];
  own_fallback_ps?: number; // layer_tree rows: the layer's own ops, sublayers excluded
}

export interface ReadinessOp extends OpRow {
  verdict: Verdict;
  reason: string;
  macos_op_types: string[];
  fallback_op_types: string[];
  remedy_ids: string[];
  linux_only: boolean; // a oneDNN / Grappler CPU-only op type, judged by what a Mac runs
}

/** tb-metal doctor's verdict on the environment a run recorded (tb_metal_plugin/doctor.py). */
export interface DoctorCheck {
  check: string;
  status: "ok" | "warning" | "broken" | "info" | "not_applicable";
  found: unknown;
  message: string;
  fix: string | null;
}

export interface DoctorVerdict {
  status: "ok" | "warning" | "broken" | "not_applicable";
  summary: string;
  gpu_visible: boolean | null;
  fix: string | null;
  recommended_install: string;
  checks: DoctorCheck[];
}

/** An op whose placement recorded on a Mac differs from the prediction. */
export interface Disagreement {
  name: string;
  type: string;
  layer: string[] | null;
  self_ps: number;
  predicted: Verdict;
  measured_device: string;
  reason: string;
}

export interface ReadinessPayload {
  session: string;
  host: string;
  metal_version: string;
  metal_versions: string[]; // newest (the default) first
  is_prediction: boolean;
  note: string;
  total_ps: number;
  fallback_ps: number;
  fallback_share: number; // the headline: share of op time predicted to fall back
  cpu_only_ps: number;
  verdict_ps: Record<Verdict, number>;
  verdict_order: Verdict[]; // most severe first
  group_verdict_order: GroupVerdict[]; // most severe first
  thresholds: { min_ps: number; min_share: number };
  ops: ReadinessOp[];
  layers: ReadinessGroup[];
  layer_tree: ReadinessGroup[]; // every layer path with its whole subtree summed
  buckets: ReadinessGroup[];
  remedies: Remedy[];
  environment_doctor: DoctorVerdict | null;
  measured_tensorflow_metal: string | null; // set when the run was recorded with tensorflow-metal
  disagreements: Disagreement[] | null;
  [extra: string]: unknown;
}
