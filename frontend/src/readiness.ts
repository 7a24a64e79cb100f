// Metal readiness: the prediction of which layers would fall back to the CPU on
// tensorflow-metal (GET /readiness), as a panel and as a verdict per layer-tree row.
import { clear, h } from "./dom";
import { fmtPct, fmtTime, pathKey, pathLabel } from "./format";
import { DataTable } from "./table";
import type { Disagreement, DoctorVerdict, GroupVerdict, LayerNode, ReadinessGroup, ReadinessPayload, Remedy, RemedyUse, Verdict } from "./types";

export const VERDICT_LABELS: Record<GroupVerdict, string> = {
  metal_gpu: "Metal GPU",
  cpu_fallback: "CPU fallback",
  cpu_only_by_nature: "CPU by nature",
  minor_fallback: "minor CPU",
  unknown: "unknown",
};

/** What the layer tree shows in its "Metal (predicted)" column for one row. */
export interface VerdictCell {
  verdict: GroupVerdict;
  title: string;
  rank: number; // sort key: higher = more severe
}

export function verdictBadge(verdict: GroupVerdict, title = ""): HTMLElement {
  return h("span", { class: "badge verdict v-" + verdict, "data-verdict": verdict, title: title || null }, VERDICT_LABELS[verdict]);
}

/** One line on a group's size-aware verdict: its fallback time and share, and minor CPU time. */
export function describeGroup(g: ReadinessGroup): string {
  const parts = [VERDICT_LABELS[g.verdict]];
  if (g.fallback_ps > 0) parts.push(`fallback ${fmtTime(g.fallback_ps)} (${fmtPct(g.fallback_share)} of its time)`);
  if (g.fallback_op_types.length) parts.push(`no Metal kernel: ${g.fallback_op_types.join(", ")}`);
  for (const m of g.minor ?? []) parts.push(`minor ${VERDICT_LABELS[m.verdict]}: ${fmtTime(m.ps)}`);
  return parts.join("; ");
}

/**
 * Verdict of every tree row, as the server rolled it up (readiness.py): a layer row shows its
 * whole subtree (a parent sums its sublayers' fallback time), buckets their own ops.
 */
export function verdictLookup(p: ReadinessPayload, _layers: LayerNode[]): (n: LayerNode, bucket: boolean) => VerdictCell | null {
  const order = p.group_verdict_order;
  const rank = (v: GroupVerdict) => order.length - order.indexOf(v);
  const tree = new Map<string, ReadinessGroup>();
  for (const g of p.layer_tree ?? []) if (g.layer) tree.set(pathKey(g.layer), g);
  const buckets = new Map<string, ReadinessGroup>();
  for (const g of p.buckets ?? []) if (g.bucket) buckets.set(g.bucket, g);
  const label = `PREDICTION for tensorflow-metal ${p.metal_version}`;
  const cell = (g: ReadinessGroup, what: string): VerdictCell => ({ verdict: g.verdict, rank: rank(g.verdict), title: `${label} (${what}): ${describeGroup(g)}` });
  return (n, bucket) => {
    if (!bucket) {
      const g = tree.get(pathKey(n.path));
      return g ? cell(g, n.children?.length ? "this layer and its sublayers" : "this layer") : null;
    }
    const g = buckets.get(n.name) ?? buckets.get(n.path[0] ?? "");
    return g ? cell(g, "ops outside any layer") : null;
  };
}

/** A remedy as a collapsible cell: title and status on Metal, then advice, example, sources. */
export function remedyCell(r: Remedy | null | undefined): HTMLElement {
  if (!r) return h("span", { class: "muted" }, "–");
  // Opening it inside a clickable row must not also open that row's ops.
  return h("details", { class: "remedy", "data-remedy": r.id, onclick: (ev: Event) => ev.stopPropagation() },
    h("summary", null, r.title, " ", h("span", { class: "badge on-metal", title: "whether a source reports this working on Metal" }, r.on_metal)),
    h("p", null, r.advice),
    r.example ? h("pre", { class: "remedy-example" }, h("code", null, r.example)) : null,
    h("ul", { class: "sources" }, ...r.sources.map((s) => h("li", null, s.url && s.url.startsWith("https:")
      ? h("a", { href: s.url, target: "_blank", rel: "noopener noreferrer" }, s.title)
      : `${s.title}${s.url ? ` (${s.url})` : ""}`))));
}

/** The doctor's verdict on the environment the run recorded, when it is not fine. */
export function doctorBox(d: DoctorVerdict | null | undefined): HTMLElement | null {
  if (!d || (d.status !== "broken" && d.status !== "warning")) return null;
  const fixes = [...new Set(d.checks.filter((c) => (c.status === "broken" || c.status === "warning") && c.fix).map((c) => c.fix as string))];
  return h("div", { class: "doctor-box doctor-" + d.status, "data-testid": "readiness-doctor", "data-status": d.status },
    h("p", null, h("strong", null, "Recorded environment (tb-metal doctor): "), d.summary),
    fixes.length ? h("p", null, "Fix: ", ...fixes.map((f, i) => [i ? "; " : "", h("code", null, f)]).flat()) : null);
}

interface ReasonRow {
  group: ReadinessGroup;
  reasons: string[]; // the core's, grouped and most time first (readiness_groups.grouped_reasons)
  ps: number; // time of the verdict the table is about
}

export interface ReadinessOptions {
  onVersion: (version: string) => void;
  onSelect: (path: string[], bucket: boolean) => void;
}

export class ReadinessPanel {
  readonly el: HTMLElement;
  private remedyOf: (g: ReadinessGroup) => Remedy[] = () => [];

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
    const remedies = new Map((p.remedies ?? []).map((r) => [r.id, r]));
    this.remedyOf = (g) => (g.remedy_ids ?? []).map((id) => remedies.get(id)).filter((r): r is RemedyUse => !!r);
    const doctor = doctorBox(p.environment_doctor);
    this.el.append(this.head(p, p.metal_version));
    if (doctor) this.el.append(doctor);
    this.el.append(
      h("p", { class: "readiness-headline", "data-testid": "readiness-headline" },
        h("strong", null, `PREDICTION for tensorflow-metal ${p.metal_version}: `),
        h("span", { class: "big", "data-testid": "readiness-share" }, fmtPct(p.fallback_share)),
        ` of op time would fall back to the CPU (${fmtTime(p.fallback_ps)} of ${fmtTime(total)}).`),
      h("p", { class: "note", "data-testid": "readiness-cpu-only" },
        `CPU-only by nature (py_function, tf.data, strings, host transfers; on the CPU on every device, not a Metal gap): ${fmtTime(p.cpu_only_ps)}`,
        total ? ` (${fmtPct(p.cpu_only_ps / total)} of op time).` : "."));
    if (p.measured_tensorflow_metal) this.el.append(this.measured(p));

    // Each group's reasons per verdict come grouped and sorted from the core.
    const rowsOf = (verdict: "cpu_fallback" | "cpu_only_by_nature"): ReasonRow[] =>
      [...p.layers.filter((g) => g.layer), ...(p.buckets ?? [])]
        .filter((g) => (g.verdicts[verdict] ?? 0) > 0)
        .map((g) => ({ group: g, ps: g.verdicts[verdict], reasons: g.reasons?.[verdict] ?? [] }));

    const fallbacks = rowsOf("cpu_fallback");
    const major = fallbacks.filter((r) => r.group.verdict === "cpu_fallback").length;
    this.el.append(h("h3", null, `Layers predicted to fall back to the CPU (${major}`, fallbacks.length > major ? `, and ${fallbacks.length - major} minor` : "", ")"));
    if (fallbacks.length) this.el.append(this.table(fallbacks, total, "readiness-fallback-table", "readiness-row", true));
    else this.el.append(h("p", { class: "empty" }, `Every op with a kernel to predict has a Metal kernel in tensorflow-metal ${p.metal_version}.`));

    const byNature = rowsOf("cpu_only_by_nature");
    if (byNature.length) {
      this.el.append(h("h3", null, `CPU-only by nature (${byNature.length})`),
        this.table(byNature, total, "readiness-cpu-only-table", "readiness-cpu-only-row", false));
    }
    if (p.remedies?.length) {
      this.el.append(h("h3", null, "What to do"),
        h("ul", { class: "remedies", "data-testid": "readiness-remedies" }, ...p.remedies.map((r) =>
          h("li", { "data-testid": "remedy", "data-remedy": r.id }, h("span", { class: "remedy-types" }, ...(r.op_types ?? []).flatMap((t, i) => [i ? " " : "", h("code", null, t)])), " ", remedyCell(r)))));
    }
    const th = p.thresholds;
    this.el.append(h("p", { class: "note" }, p.note, " Op types from Linux runs (oneDNN ", h("code", null, "_Mkl…"), ", Grappler's CPU-only fusions such as ", h("code", null, "_UnaryOpsComposition"),
      ") are judged by the ops macOS would run instead. A layer's CPU time under ", th ? fmtTime(th.min_ps) : "50 µs", " or ", th ? fmtPct(th.min_share) : "1%",
      " of the layer is shown as minor, not as a fallback. The ", h("em", null, "Metal (predicted)"), " column of the layer tree shows each layer's verdict; a parent sums its sublayers."));
  }

  private table(rows: ReasonRow[], total: number, testid: string, rowTestid: string, fallback: boolean): HTMLElement {
    // This table's verdict when it is the group's, "minor" when its time here is below the threshold.
    const mine: Verdict = fallback ? "cpu_fallback" : "cpu_only_by_nature";
    const sized = (g: ReadinessGroup): GroupVerdict => (g.verdict === mine ? mine : g.minor?.some((m) => m.verdict === mine) ? "minor_fallback" : g.verdict);
    const name = (r: ReasonRow) => (r.group.layer ? pathLabel(r.group.layer) : `${r.group.bucket} (outside any layer)`);
    const table = new DataTable<ReasonRow>([
      { key: "layer", label: "Layer", value: name, render: (r) => (r.group.layer ? name(r) : h("span", { class: "bucket-name" }, name(r))) },
      ...(fallback
        ? [{ key: "types", label: "Op types with no Metal kernel", value: (r: ReasonRow) => r.group.fallback_op_types.join(" "),
            render: (r: ReasonRow) => h("span", { "data-testid": "readiness-op-types" }, ...r.group.fallback_op_types.flatMap((t, i) => [i ? " " : "", h("code", null, t)])) }]
        : []),
      { key: "reason", label: "Why", value: (r) => r.reasons.join("; "),
        render: (r) => h("ul", { class: "reasons" }, ...r.reasons.slice(0, 4).map((x) => h("li", null, x)), r.reasons.length > 4 ? h("li", { class: "muted" }, `+${r.reasons.length - 4} more`) : null) },
      { key: "size", label: "Verdict", title: "the layer's size-aware verdict: CPU time under the minor threshold is not a fallback", value: (r) => sized(r.group),
        render: (r) => verdictBadge(sized(r.group), describeGroup(r.group)) },
      { key: "todo", label: "What to do", value: (r) => this.remedyOf(r.group).map((x) => x.title).join("; "),
        render: (r) => h("div", { "data-testid": "readiness-remedy" }, ...this.remedyOf(r.group).map((x) => remedyCell(x))) },
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
