// The measured CPU fallbacks (one row per layer) and the op drill-down of a selection.
import { fetchOps } from "./api";
import { clear, h } from "./dom";
import { clockLabel, fmtPct, fmtTime, midEllipsis, pathLabel } from "./format";
import { layerFallbacks, type LayerFallback } from "./groups";
import { remedyCell } from "./readiness";
import { DataTable } from "./table";
import { deviceClass } from "./tree";
import type { LayersPayload, OpRow, Step } from "./types";

export type SelectFn = (path: string[], bucket: boolean) => void;

/** The CPU fallbacks panel: one row per layer with its op types, time, reasons and remedy. */
export function fallbackPanel(p: LayersPayload, hasGpu: boolean, onSelect: SelectFn): HTMLElement {
  const panel = h("section", { class: "panel", "data-testid": "fallback-panel" }, h("h2", null, "CPU fallbacks (measured)"));
  const groups = layerFallbacks(p);
  if (!groups.length) {
    panel.append(h("p", { class: "empty" }, hasGpu
      ? "No op of any layer ran on the CPU while a GPU was available."
      : "This run had no GPU, so nothing fell back: every op ran on the CPU by design. The verdict strip and the Metal readiness panel predict what would fall back on a Mac (a PREDICTION); profile on the Metal GPU to measure it."));
  } else {
    const table = new DataTable<LayerFallback>([
      { key: "layer", label: "Layer", value: (g) => g.label, render: (g) => (g.path ? g.label : h("span", { class: "bucket-name" }, `${g.label} (outside any layer)`)) },
      { key: "types", label: "Op types", value: (g) => g.opTypes.join(" "), render: (g) => h("span", { "data-testid": "fallback-op-types" }, ...g.opTypes.flatMap((t, i) => [i ? " " : "", h("code", null, t)])) },
      { key: "reason", label: "Why", value: (g) => g.reasons.join("; "), render: (g) => h("ul", { class: "reasons", "data-testid": "fallback-reasons" }, ...g.reasons.map((r) => h("li", null, r))) },
      { key: "count", label: "Ops", num: true, value: (g) => g.count },
      { key: "self", label: "CPU time", title: "time of the layer's ops placed on the CPU (host clock)", num: true, value: (g) => g.self_ps, render: (g) => fmtTime(g.self_ps) },
      { key: "share", label: "% of op time", num: true, value: (g) => g.self_ps, render: (g) => (p.total_ps ? fmtPct(g.self_ps / p.total_ps) : "–") },
      { key: "copy", label: "Copy time", title: "device↔host copies these fallbacks cause", num: true, value: (g) => g.copy_ps, render: (g) => fmtTime(g.copy_ps) },
      { key: "todo", label: "What to do", value: (g) => g.remedies.map((r) => r.title).join("; "), render: (g) => h("div", null, ...(g.remedies.length ? g.remedies.map((r) => remedyCell(r)) : [remedyCell(null)])) },
    ], {
      sortKey: "self", pageSize: 25, testid: "fallback-table",
      rowAttrs: (g) => ({ "data-path": (g.path ?? [g.bucket ?? ""]).join("/"), "data-testid": "fallback-row" }),
      onRow: (g) => (g.path ? onSelect(g.path, false) : g.bucket ? onSelect([g.bucket], true) : undefined),
    });
    table.setRows(groups);
    panel.append(h("p", { class: "note" }, "One row per layer with ops placed on the CPU while a GPU was present: its op types, why (said once for the op types it concerns), the CPU and copy time, and what to do. Click a row (or press Enter on it) for the layer's ops."), table.el);
  }
  // One figure per clock: a memcpy on the device timeline and a host-timed _Send do not add up.
  const totals = Object.entries(p.copy_totals ?? {});
  if (totals.length) {
    const parts = totals.map(([clock, t]) => `${t.count} transfers, ${fmtTime(t.ps)} (${clockLabel(clock)})`);
    panel.append(h("p", { class: "note" }, `Device copies: ${parts.join("; ")} (from _Send/_Recv and copy events).`));
  }
  return panel;
}

/** An op name shortened in the middle; hover shows it whole and copying copies it whole. */
function opName(name: string): HTMLElement {
  return h("span", { class: "op-name", title: name, "data-full": name }, midEllipsis(name, 64));
}

// Copying a shortened name copies the whole name, not the "…".
document.addEventListener("copy", (ev) => {
  const sel = document.getSelection();
  const el = sel?.anchorNode?.parentElement?.closest?.("[data-full]") as HTMLElement | null;
  if (!el || !ev.clipboardData) return;
  ev.clipboardData.setData("text/plain", el.dataset.full ?? "");
  ev.preventDefault();
});

export class OpsPanel {
  readonly el: HTMLElement;
  private seq = 0;

  constructor(private where: () => { session: string | null; host: string | null; step: Step }, private onAll: () => void) {
    // Scrolled to on selection: keep its heading clear of the sticky top bar.
    this.el = h("section", { class: "panel ops-panel", "data-testid": "ops-panel" });
  }

  /** Until a layer is picked: a prompt, not every op (thousands of rows on big traces). */
  prompt(): void {
    this.seq++;
    clear(this.el);
    this.el.append(h("div", { class: "panel-head" }, h("h2", null, "Ops"),
      h("button", { "data-testid": "show-all-ops", onclick: () => { this.onAll(); void this.show(null, false); } }, "show all ops")),
      h("p", { class: "empty" }, "Click a layer in the verdict strip, the tree, the chart or a fallback table to see its ops here."));
  }

  /** Bring the panel's heading into view when it is off-screen. */
  reveal(): void {
    const r = this.el.getBoundingClientRect();
    if (r.top < 0 || r.top > window.innerHeight - 120) this.el.scrollIntoView({ block: "start" });
  }

  async show(path: string[] | null, bucket: boolean): Promise<void> {
    const { session, host, step } = this.where();
    if (!session || !host) return;
    const seq = ++this.seq;
    clear(this.el);
    const title = path ? `Ops ${bucket ? "in" : "of"} ${pathLabel(path)}` : "All ops";
    this.el.append(h("div", { class: "panel-head" }, h("h2", null, title),
      path ? h("button", { "data-testid": "show-all-ops", onclick: () => { this.onAll(); void this.show(null, false); } }, "show all ops") : null));
    const loadingMsg = h("p", { class: "muted" }, "loading ops…");
    const body = h("div", null, loadingMsg);
    this.el.append(body);
    try {
      const data = await fetchOps(session, host, step, bucket ? null : path, bucket && path ? path[0] : null,
        (f, m) => { loadingMsg.textContent = `loading ops: ${m} (${Math.round(f * 100)}%)`; });
      if (seq !== this.seq) return;
      clear(body);
      const table = new DataTable<OpRow>([
        { key: "name", label: "Op", title: "op name, shortened in the middle: hover for the whole name (copying copies it whole)", value: (o) => o.name, render: (o) => opName(o.name) },
        { key: "type", label: "Type", value: (o) => o.type, render: (o) => h("code", null, o.type) },
        ...(path && !bucket ? [] : [{ key: "layer", label: "Layer", value: (o: OpRow) => pathLabel(o.layer) }]),
        { key: "phase", label: "Phase", value: (o) => o.phase ?? "" },
        { key: "device", label: "Device", value: (o) => o.device ?? "", render: (o) => h("span", { class: "dev-tag " + deviceClass(o.device ?? ""), title: o.device_source ? `device from: ${o.device_source}` : "" }, o.device ?? "?") },
        { key: "count", label: "Count", num: true, value: (o) => o.count },
        { key: "time", label: "Time", title: "the op's time as the layer tree counts it, on its clock", num: true, value: (o) => o.time_ps, render: (o) => fmtTime(o.time_ps) },
        { key: "clock", label: "Clock", title: "device timeline, GPU dispatch (host-side, no device timeline) or CPU (host)", value: (o) => o.clock, render: (o) => clockLabel(o.clock) },
        { key: "fb", label: "Fallback", value: (o) => (o.fallback ? String(o.fallback.reason_code ?? "yes") : ""), render: (o) => (o.fallback ? h("span", { class: "badge fallback", title: String(o.fallback.reason ?? "") }, String(o.fallback.reason_code ?? "CPU")) : "") },
      ], { sortKey: "time", pageSize: 50, testid: "ops-table", rowAttrs: (o) => ({ "data-testid": "op-row", "data-type": o.type }) });
      table.setRows(data.ops);
      body.append(h("p", { class: "note" }, "Each op's time in this selection, as the layer tree counts it, with its clock; hover a device for where that came from (recorded placement, device timeline or inferred)."), table.el);
    } catch (e) {
      if (seq !== this.seq) return;
      clear(body);
      body.append(h("div", { class: "error-box" }, "Could not load ops: ", e instanceof Error ? e.message : String(e)));
    }
  }
}
