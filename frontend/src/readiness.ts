// Metal readiness: the prediction of which layers would fall back to the CPU on
// tensorflow-metal (GET /readiness), as a panel and as a verdict per layer-tree row.
import { clear, h } from "./dom";
import { fmtPct, fmtTime, pathKey, pathLabel } from "./format";
import { DataTable } from "./table";
import type { Disagreement, LayerNode, ReadinessGroup, ReadinessPayload, Verdict } from "./types";

export const VERDICT_LABELS: Record<Verdict, string> = {
  metal_gpu: "Metal GPU",
  cpu_fallback: "CPU fallback",
  cpu_only_by_nature: "CPU by nature",
  unknown: "unknown",
};

/** What the layer tree shows in its "Metal (predicted)" column for one row. */
export interface VerdictCell {
  verdict: Verdict;
  title: string;
  rank: number; // sort key: higher = more severe
}

export function verdictBadge(verdict: Verdict, title = ""): HTMLElement {
  return h("span", { class: "badge verdict v-" + verdict, "data-verdict": verdict, title: title || null }, VERDICT_LABELS[verdict]);
}

/**
 * Verdict of every tree row: a layer's own ops and, rolled up, its sublayers' (the most
 * severe wins, in the server's `verdict_order`); buckets from the per-bucket prediction.
 */
export function verdictLookup(p: ReadinessPayload, layers: LayerNode[]): (n: LayerNode, bucket: boolean) => VerdictCell | null {
  const order = p.verdict_order;
  const rank = (v: Verdict) => order.length - order.indexOf(v);
  const own = new Map<string, ReadinessGroup>();
  for (const g of p.layers) if (g.layer) own.set(pathKey(g.layer), g);
  const buckets = new Map<string, ReadinessGroup>();
  for (const g of p.buckets ?? []) if (g.bucket) buckets.set(g.bucket, g);
  const label = `PREDICTION for tensorflow-metal ${p.metal_version}`;
  const describe = (g: ReadinessGroup) => (g.fallback_op_types.length ? ` (no Metal kernel: ${g.fallback_op_types.join(", ")})` : "");

  const cells = new Map<string, VerdictCell>();
  const walk = (n: LayerNode): VerdictCell | null => {
    const g = own.get(pathKey(n.path));
    let best: VerdictCell | null = g ? { verdict: g.verdict, rank: rank(g.verdict), title: `${label}: ${VERDICT_LABELS[g.verdict]}${describe(g)}` } : null;
    for (const c of n.children ?? []) {
      const cc = walk(c);
      if (cc && (!best || cc.rank > best.rank)) best = { ...cc, title: `${label}: ${VERDICT_LABELS[cc.verdict]} (worst of this layer and its sublayers)` };
    }
    if (best) cells.set(pathKey(n.path), best);
    return best;
  };
  layers.forEach(walk);
  return (n, bucket) => {
    if (!bucket) return cells.get(pathKey(n.path)) ?? null;
    const g = buckets.get(n.name) ?? buckets.get(n.path[0] ?? "");
    return g ? { verdict: g.verdict, rank: rank(g.verdict), title: `${label}: ${VERDICT_LABELS[g.verdict]}${describe(g)}` } : null;
  };
}

interface ReasonRow {
  group: ReadinessGroup;
  reasons: string[];
  ps: number; // time of the verdict the table is about
}

function groupKey(layer: unknown, bucket: unknown): string {
  return Array.isArray(layer) && layer.length ? "L" + pathKey(layer as string[]) : "B" + String(bucket ?? "other");
}

export interface ReadinessOptions {
  onVersion: (version: string) => void;
  onSelect: (path: string[], bucket: boolean) => void;
}

export class ReadinessPanel {
  readonly el: HTMLElement;

  constructor(private opts: ReadinessOptions) {
    this.el = h("section", { class: "panel readiness", "data-testid": "readiness-panel" });
    this.loading(null);
  }

  loading(version: string | null): void {
    clear(this.el);
    this.el.append(this.head(null, version), h("p", { class: "muted" }, "predicting Metal placement…"));
  }

  error(message: string): void {
    clear(this.el);
    this.el.append(this.head(null, null), h("div", { class: "error-box" }, "Could not predict Metal readiness: ", message));
  }

  private head(p: ReadinessPayload | null, version: string | null): HTMLElement {
    const versions = p?.metal_versions ?? (version ? [version] : []);
    const current = p?.metal_version ?? version;
    const sel = h("select", { "aria-label": "tensorflow-metal version", "data-testid": "metal-version-select", disabled: !p },
      ...versions.map((v, i) => h("option", { value: v, selected: v === current }, i === 0 ? `${v} (newest)` : v))) as HTMLSelectElement;
    sel.addEventListener("change", () => this.opts.onVersion(sel.value));
    return h("div", { class: "panel-head" },
      h("h2", null, "Metal readiness ", h("span", { class: "badge prediction", title: "not measured: derived from the op types each tensorflow-metal release registers" }, "PREDICTION")),
      h("label", null, "for tensorflow-metal ", sel));
  }

  render(p: ReadinessPayload): void {
    clear(this.el);
    const total = p.total_ps;
    this.el.append(this.head(p, p.metal_version),
      h("p", { class: "readiness-headline", "data-testid": "readiness-headline" },
        h("strong", null, `PREDICTION for tensorflow-metal ${p.metal_version}: `),
        h("span", { class: "big", "data-testid": "readiness-share" }, fmtPct(p.fallback_share)),
        ` of op time would fall back to the CPU (${fmtTime(p.fallback_ps)} of ${fmtTime(total)}).`),
      h("p", { class: "note", "data-testid": "readiness-cpu-only" },
        `CPU-only by nature (py_function, tf.data, strings, host transfers; on the CPU on every device, not a Metal gap): ${fmtTime(p.cpu_only_ps)}`,
        total ? ` (${fmtPct(p.cpu_only_ps / total)} of op time).` : "."));
    if (p.measured_tensorflow_metal) this.el.append(this.measured(p));

    const reasons = new Map<string, Map<Verdict, Set<string>>>();
    for (const o of p.ops) {
      if (o.verdict !== "cpu_fallback" && o.verdict !== "cpu_only_by_nature") continue;
      const k = groupKey(o.layer, o.bucket);
      const byVerdict = reasons.get(k) ?? new Map<Verdict, Set<string>>();
      reasons.set(k, byVerdict);
      const set = byVerdict.get(o.verdict) ?? new Set<string>();
      byVerdict.set(o.verdict, set);
      set.add(o.reason);
    }
    const rowsOf = (verdict: Verdict): ReasonRow[] =>
      [...p.layers.filter((g) => g.layer), ...(p.buckets ?? [])]
        .filter((g) => (g.verdicts[verdict] ?? 0) > 0)
        .map((g) => ({ group: g, ps: g.verdicts[verdict], reasons: [...(reasons.get(groupKey(g.layer, g.bucket))?.get(verdict) ?? [])] }));

    const fallbacks = rowsOf("cpu_fallback");
    this.el.append(h("h3", null, `Layers predicted to fall back to the CPU (${fallbacks.length})`));
    if (fallbacks.length) this.el.append(this.table(fallbacks, total, "readiness-fallback-table", "readiness-row", true));
    else this.el.append(h("p", { class: "empty" }, `Every op with a kernel to predict has a Metal kernel in tensorflow-metal ${p.metal_version}.`));

    const byNature = rowsOf("cpu_only_by_nature");
    if (byNature.length) {
      this.el.append(h("h3", null, `CPU-only by nature (${byNature.length})`),
        this.table(byNature, total, "readiness-cpu-only-table", "readiness-cpu-only-row", false));
    }
    this.el.append(h("p", { class: "note" }, p.note, " Op types from Linux runs (oneDNN ", h("code", null, "_Mkl…"), ") are mapped to the ones macOS would run. The ",
      h("em", null, "Metal (predicted)"), " column of the layer tree shows each layer's verdict."));
  }

  private table(rows: ReasonRow[], total: number, testid: string, rowTestid: string, fallback: boolean): HTMLElement {
    const name = (r: ReasonRow) => (r.group.layer ? pathLabel(r.group.layer) : `${r.group.bucket} (outside any layer)`);
    const table = new DataTable<ReasonRow>([
      { key: "layer", label: "Layer", value: name, render: (r) => (r.group.layer ? name(r) : h("span", { class: "bucket-name" }, name(r))) },
      ...(fallback
        ? [{ key: "types", label: "Op types with no Metal kernel", value: (r: ReasonRow) => r.group.fallback_op_types.join(" "),
            render: (r: ReasonRow) => h("span", { "data-testid": "readiness-op-types" }, ...r.group.fallback_op_types.flatMap((t, i) => [i ? " " : "", h("code", null, t)])) }]
        : []),
      { key: "reason", label: "Why", value: (r) => r.reasons.join("; "),
        render: (r) => h("ul", { class: "reasons" }, ...r.reasons.slice(0, 4).map((x) => h("li", null, x)), r.reasons.length > 4 ? h("li", { class: "muted" }, `+${r.reasons.length - 4} more`) : null) },
      { key: "time", label: fallback ? "Time falling back" : "Time", num: true, value: (r) => r.ps, render: (r) => fmtTime(r.ps) },
      { key: "share", label: "% of op time", num: true, value: (r) => r.ps, render: (r) => (total ? fmtPct(r.ps / total) : "–") },
    ], {
      sortKey: "time", pageSize: 25, testid,
      rowAttrs: (r) => ({ "data-testid": rowTestid, "data-path": r.group.layer ? r.group.layer.join("/") : String(r.group.bucket ?? "") }),
      onRow: (r) => (r.group.layer ? this.opts.onSelect(r.group.layer, false) : r.group.bucket ? this.opts.onSelect([r.group.bucket], true) : undefined),
    });
    table.setRows(rows);
    return table.el;
  }

  private measured(p: ReadinessPayload): HTMLElement {
    const box = h("div", { class: "measured-box", "data-testid": "readiness-measured" },
      h("p", null, h("strong", null, `Measured: this run was recorded on a Mac with tensorflow-metal ${p.measured_tensorflow_metal}. `),
        "The device split, the layer tree's bars and the CPU fallbacks panel show the measured placement; the prediction here is for comparison."));
    const d = p.disagreements ?? [];
    if (!d.length) {
      box.append(h("p", { class: "note" }, "Prediction and recorded placement agree for every op whose placement was recorded."));
      return box;
    }
    const table = new DataTable<Disagreement>([
      { key: "name", label: "Op", value: (x) => x.name, render: (x) => h("span", { class: "op-name", title: x.name }, x.name) },
      { key: "type", label: "Type", value: (x) => x.type, render: (x) => h("code", null, x.type) },
      { key: "layer", label: "Layer", value: (x) => pathLabel(x.layer) },
      { key: "pred", label: "Predicted", value: (x) => x.predicted, render: (x) => verdictBadge(x.predicted) },
      { key: "dev", label: "Measured device", value: (x) => x.measured_device },
      { key: "self", label: "Self", num: true, value: (x) => x.self_ps, render: (x) => fmtTime(x.self_ps) },
    ], { sortKey: "self", pageSize: 25, testid: "readiness-disagreements", rowAttrs: () => ({ "data-testid": "disagreement-row" }) });
    table.setRows(d);
    box.append(h("p", null, `Where the measurement disagrees with the prediction (${d.length} op(s)):`), table.el);
    return box;
  }
}
