// Fallbacks one row per layer, as the core groups them (reasons already said once).
import { pathLabel } from "./format";
import type { LayersPayload, Remedy } from "./types";

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

/** The measured fallbacks one row per layer, as the core groups them (`fallback_layers`). */
export function layerFallbacks(p: Pick<LayersPayload, "fallback_layers">): LayerFallback[] {
  return (p.fallback_layers ?? []).map((g) => ({
    path: g.path ?? null,
    bucket: g.bucket ?? null,
    label: pathLabel(g.path ?? g.bucket ?? null),
    opTypes: g.op_types.map((t) => t.type),
    self_ps: g.self_ps,
    count: g.count,
    copy_ps: g.copy_ps,
    reasons: g.reasons.map((r) => r.text),
    codes: [...new Set(g.reasons.map((r) => r.reason_code))],
    remedies: g.remedies,
  }));
}
