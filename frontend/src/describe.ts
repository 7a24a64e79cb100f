// What the breakdown says about its figures, and the order sessions are offered in.
import { fmtPct } from "./format";
import type { AttributionAccuracy, LayerNode, LayersPayload, SessionEntry } from "./types";

export function describeAttribution(src: string, acc?: AttributionAccuracy | null): string {
  let text = `Layer attribution: ${src}.`;
  if (src === "manifest") text = "Layer attribution: exact, from the layer scopes recorded by MetalProfileCallback.";
  if (src === "trace_names") text = "Layer attribution: inferred from op names in the trace (name scopes); record with MetalProfileCallback for exact attribution and placement.";
  if (src === "trace_graph") text = "Layer attribution: inferred from op names in the trace and the step graph TensorBoard wrote in the run's event file (the inputs of gradient sums); record with MetalProfileCallback for exact attribution and placement.";
  return acc ? `${text} ${describeAccuracy(acc)}` : text;
}

// The core ships the measured figures; this only words them (min = the worst model).
export function describeAccuracy(acc: AttributionAccuracy): string {
  return `Measured against an independent ground truth on ${acc.models} models (${acc.recorded_with}): ` +
    `right layer for ${fmtPct(acc.layer_time_mean)} of op time on average (worst model ${fmtPct(acc.layer_time_min)}), ` +
    `${fmtPct(acc.layer_op_mean)} of ops (worst ${fmtPct(acc.layer_op_min)}); ` +
    `right phase for ${fmtPct(acc.phase_time_mean)} of op time (worst ${fmtPct(acc.phase_time_min)}). ` +
    `Printed by: ${acc.command}`;
}

export function describeTimeline(p: LayersPayload): string {
  // The core's note is the authority (every payload carries one; CPU-only runs get their own).
  return "Time source: " + p.time_note;
}

const SOURCE_NAMES: Record<string, string> = {
  device_plane: "device timeline",
  placement: "recorded placement",
  send_recv: "send/recv stats",
  kernel_registry: "kernel registry (inferred)",
  assumed: "assumed CPU (nothing recorded)",
};

export function sumSources(p: LayersPayload): string {
  const acc: Record<string, number> = {};
  for (const [k, v] of Object.entries(p.device_sources ?? {})) acc[SOURCE_NAMES[k] ?? k] = v;
  const total = Object.values(acc).reduce((a, b) => a + b, 0);
  if (!total) return "";
  return "Device of each op from: " + Object.entries(acc).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${fmtPct(v / total)}`).join(", ") + ".";
}

/** The keys a field of the tree's nodes holds. */
function keysOf(p: LayersPayload, field: "devices" | "phases"): Set<string> {
  const seen = new Set<string>();
  const walk = (ns: LayerNode[]) => ns.forEach((n) => { Object.keys(n[field] ?? {}).forEach((k) => seen.add(k)); walk(n.children ?? []); });
  walk(p.layers);
  walk(p.buckets ?? []);
  return seen;
}

/** The ones in `order` first, then the rest sorted. */
function inOrder(seen: Set<string>, order: string[]): string[] {
  return [...order.filter((d) => seen.has(d)), ...[...seen].filter((d) => !order.includes(d)).sort()];
}

/** Device kinds present in the tree, GPU first: node times are keyed by kind. */
export function devicesOf(p: LayersPayload): string[] {
  const seen = keysOf(p, "devices");
  // A GPU run with no GPU time in the tree still gets its GPU legend (keyed "GPU", or
  // "GPU (host-side)" when its times are host-side).
  if (p.has_gpu && ![...seen].some((d) => d.startsWith("GPU"))) seen.add("GPU");
  return inOrder(seen, ["GPU", "GPU (host-side)", "CPU"]);
}

/** Phases present in the tree: forward, backward, optimizer first. */
export function phasesOf(p: LayersPayload): string[] {
  return inOrder(keysOf(p, "phases"), ["forward", "backward", "optimizer"]);
}

export function findNode(nodes: LayerNode[], path: string[]): LayerNode | null {
  for (const n of nodes) {
    if (n.path.length <= path.length && n.path.every((p, i) => p === path[i])) {
      if (n.path.length === path.length) return n;
      const c = findNode(n.children ?? [], path);
      if (c) return c;
    }
  }
  return null;
}


const STAMP = /^\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}$/;

/**
 * Sessions newest first. The profiler names a session folder by its start time
 * (YYYY_MM_DD_HH_MM_SS), so that name orders sessions in time whatever the run is called;
 * sessions without such a name come after, by name.
 */
export function newestFirst(sessions: SessionEntry[]): SessionEntry[] {
  const stamp = (s: SessionEntry) => (s.session && STAMP.test(s.session) ? s.session : "");
  return [...sessions].sort((a, b) => stamp(b).localeCompare(stamp(a)) || b.name.localeCompare(a.name));
}

/**
 * Short labels for sessions: the run name ("cnn/train" less a trailing "/train" or
 * "/validation" shared by all), with the session's time only where two share a run.
 */
export function runLabels(items: { session: string; host: string }[], sessions: SessionEntry[]): string[] {
  const info = (name: string) => sessions.find((s) => s.name === name);
  const runs = items.map((it) => info(it.session)?.run ?? it.session);
  const suffix = runs.map((r) => r.split("/").pop() ?? "");
  const common = runs.length > 1 && runs.every((r) => r.includes("/")) && new Set(suffix).size === 1 ? "/" + suffix[0] : "";
  const base = runs.map((r) => (common && r.endsWith(common) ? r.slice(0, -common.length) : r) || ".");
  const hosts = new Set(items.map((it) => it.host));
  return items.map((it, i) => {
    const dup = base.filter((b) => b === base[i]).length > 1;
    const when = info(it.session)?.session ?? "";
    return base[i] + (dup && when ? ` @ ${when}` : "") + (hosts.size > 1 ? ` (${it.host})` : "");
  });
}
