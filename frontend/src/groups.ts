// Fallbacks one row per layer, and reasons said once for all the op types they concern.
import { pathKey, pathLabel } from "./format";
import type { Fallback, Remedy } from "./types";

/** All the CPU fallbacks of one layer (or bucket): its op types, time, reasons, remedies. */
export interface LayerFallback {
  path: string[] | null;
  bucket: string | null;
  label: string;
  opTypes: string[]; // most time first
  self_ps: number;
  count: number;
  copy_ps: number;
  reasons: string[]; // grouped: one sentence for all the op types it concerns
  codes: string[];
  remedies: Remedy[];
}

/**
 * Sentences that differ only in the op type they name, said once: "no GPU kernel is
 * registered for op type {A, B}". `pairs` are (op type, sentence) in order of importance.
 */
export function groupReasons(pairs: { type: string; reason: string }[]): string[] {
  const byTemplate = new Map<string, string[]>();
  for (const { type, reason } of pairs) {
    const template = type && reason.includes(type) ? reason.split(type).join("\u0000") : reason;
    const types = byTemplate.get(template) ?? [];
    if (type && !types.includes(type)) types.push(type);
    byTemplate.set(template, types);
  }
  return [...byTemplate.entries()].map(([t, types]) => (t.includes("\u0000") ? t.split("\u0000").join(types.join(", ")) : t));
}

/** The measured fallbacks grouped by layer, most CPU time first. */
export function groupFallbacks(fbs: Fallback[]): LayerFallback[] {
  const out = new Map<string, LayerFallback & { byType: Map<string, number>; pairs: { type: string; reason: string }[] }>();
  for (const f of fbs) {
    const key = f.path ? "L" + pathKey(f.path) : "B" + String(f.bucket ?? "");
    let g = out.get(key);
    if (!g) {
      g = { path: f.path ?? null, bucket: f.path ? null : f.bucket ?? null, label: pathLabel(f.path ?? f.bucket ?? null), opTypes: [], self_ps: 0, count: 0, copy_ps: 0, reasons: [], codes: [], remedies: [], byType: new Map(), pairs: [] };
      out.set(key, g);
    }
    g.self_ps += f.self_ps;
    g.count += f.count;
    g.copy_ps += f.copy_ps;
    g.byType.set(f.op_type, (g.byType.get(f.op_type) ?? 0) + f.self_ps);
    g.pairs.push({ type: f.op_type, reason: f.reason });
    if (!g.codes.includes(f.reason_code)) g.codes.push(f.reason_code);
    if (f.remedy && !g.remedies.some((r) => r.id === f.remedy!.id)) g.remedies.push(f.remedy);
  }
  return [...out.values()]
    .map((g) => {
      const opTypes = [...g.byType.entries()].sort((a, b) => b[1] - a[1]).map(([t]) => t);
      const order = new Map(opTypes.map((t, i) => [t, i]));
      const reasons = groupReasons([...g.pairs].sort((a, b) => (order.get(a.type) ?? 0) - (order.get(b.type) ?? 0)));
      return { path: g.path, bucket: g.bucket, label: g.label, opTypes, self_ps: g.self_ps, count: g.count, copy_ps: g.copy_ps, reasons, codes: g.codes, remedies: g.remedies };
    })
    .sort((a, b) => b.self_ps - a.self_ps || a.label.localeCompare(b.label));
}
