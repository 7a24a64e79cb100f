// Comparison view: two or more sessions, layers matched by path, deltas and speedup.
import { ApiError, fetchCompare } from "./api";
import { clear, h } from "./dom";
import { clockLabel, fmtDelta, fmtSpeedup, fmtTime } from "./format";
import { DataTable, type Column } from "./table";
import type { CompareRow, ComparePayload, SessionEntry, Step } from "./types";

interface Item { session: string; host: string; id: string }

export class CompareView {
  readonly el: HTMLElement;
  private picker: HTMLElement;
  private result: HTMLElement;
  private chosen: Item[] = [];
  private step: Step = "avg";
  private abort: AbortController | null = null;

  constructor(private showProgress: (f: number, m: string) => void, private hideProgress: () => void) {
    this.picker = h("div", { class: "compare-picker" });
    this.result = h("div", { class: "compare-result", "data-testid": "compare-result" });
    this.el = h("section", { class: "panel compare", "data-testid": "compare-view" },
      h("h2", null, "Compare runs"),
      h("p", { class: "note" }, "Pick two or more sessions; the first one picked is the baseline. Layers are matched by their path; Δ is the other session's time minus the baseline's, speedup is baseline ÷ other (above 1× = faster than baseline). A layer's Δ and speedup exist only when both times are on the same clock (device timeline, GPU dispatch, CPU compute), or come from the callback's layer benchmark in both runs (marked \"bench\"). The headline is step time: wall time in every run."),
      this.picker, this.result);
  }

  setSessions(sessions: SessionEntry[]): void {
    clear(this.picker);
    const items: Item[] = [];
    for (const s of sessions) for (const host of s.hosts) items.push({ session: s.name, host, id: `${s.name}\u0000${host}` });
    const multiHost = sessions.some((s) => s.hosts.length > 1);
    this.chosen = this.chosen.filter((c) => items.some((i) => i.id === c.id));
    const list = h("div", { class: "compare-list" });
    for (const it of items) {
      const cb = h("input", { type: "checkbox", "data-session": it.session, "data-host": it.host }) as HTMLInputElement;
      cb.checked = this.chosen.some((c) => c.id === it.id);
      cb.addEventListener("change", () => {
        if (cb.checked) this.chosen.push(it);
        else this.chosen = this.chosen.filter((c) => c.id !== it.id);
        void this.run();
      });
      list.appendChild(h("label", { class: "compare-item" }, cb, " ", it.session, multiHost ? h("span", { class: "muted" }, ` (${it.host})`) : null));
    }
    const stepSel = h("select", { "aria-label": "compare step", "data-testid": "compare-step" },
      h("option", { value: "avg", selected: this.step === "avg" }, "per step (average)"),
      h("option", { value: "all", selected: this.step === null }, "whole profiled window")) as HTMLSelectElement;
    stepSel.addEventListener("change", () => { this.step = stepSel.value === "avg" ? "avg" : null; void this.run(); });
    this.picker.append(list, h("label", null, "Time: ", stepSel));
    if (items.length < 2) this.picker.append(h("p", { class: "empty" }, "Comparison needs at least two profile sessions in the logdir (for example a Metal run and a CPU-only run of the same model)."));
    void this.run();
  }

  private async run(): Promise<void> {
    this.abort?.abort();
    clear(this.result);
    if (this.chosen.length < 2) {
      this.result.append(h("p", { class: "empty" }, "Select at least two sessions above."));
      return;
    }
    const ctrl = (this.abort = new AbortController());
    try {
      const data = await fetchCompare(this.chosen, this.step, this.showProgress, ctrl.signal);
      if (ctrl.signal.aborted) return;
      this.renderResult(data);
    } catch (e) {
      if (ctrl.signal.aborted) return;
      const msg = e instanceof ApiError ? (e.body?.path ? `${e.body.path}: ${e.message}` : e.message) : String(e);
      this.result.append(h("div", { class: "error-box" }, "Comparison failed: ", msg));
    } finally {
      if (this.abort === ctrl) this.hideProgress();
    }
  }

  private renderResult(d: ComparePayload): void {
    const n = d.labels.length;
    const totals = h("table", { class: "data-table totals", "data-testid": "compare-totals" },
      h("thead", null, h("tr", null, h("th", null, ""), ...d.labels.map((l, i) => h("th", { class: "num" }, l, i === 0 ? h("span", { class: "badge base" }, "baseline") : null)))),
      h("tbody", null,
        h("tr", null, h("th", null, d.step === "avg" ? "step time (wall, avg)" : "profiled step time (wall)"), ...d.totals.step_time_ps.map((t) => h("td", { class: "num" }, fmtTime(t)))),
        h("tr", null, h("th", null, "speedup vs baseline"), ...d.totals.speedup.map((s, i) => h("td", { class: "num", "data-testid": "total-speedup" }, i === 0 ? "1.00×" : fmtSpeedup(s)))),
        h("tr", null, h("th", null, "time measured as"), ...d.timelines.map((t) => h("td", { class: "num" }, t ?? "–"))),
        h("tr", null, h("th", null, "layer times' clock"), ...(d.totals.clocks ?? []).map((c) => h("td", { class: "num", "data-testid": "total-clock" }, Object.keys(c ?? {}).map(clockLabel).join(" + ") || "–")))));
    const cols: Column<CompareRow>[] = [
      { key: "name", label: "Layer", value: (r) => r.key.join("/"), render: (r) => h("span", { class: r.kind === "bucket" ? "bucket-name" : "" }, r.key.join(" / "), r.matched ? null : h("span", { class: "badge unmatched" }, "unmatched")) },
    ];
    for (let i = 0; i < n; i++) {
      cols.push({ key: `t${i}`, label: `${d.labels[i]}`, title: `total time in ${d.labels[i]} (clock in the Clock column)`, num: true, value: (r) => r.total_ps[i], render: (r) => h("span", { title: clockLabel(r.clock?.[i] ?? null), "data-clock": r.clock?.[i] ?? "" }, fmtTime(r.total_ps[i])) });
      if (i > 0) {
        const note = (r: CompareRow) => r.speedup_note?.[i] ?? null;
        cols.push({ key: `d${i}`, label: `Δ`, title: `${d.labels[i]} minus ${d.baseline} (same clock only)`, num: true, value: (r) => r.delta_ps[i], render: (r) => note(r) ? h("span", { class: "muted", title: note(r)! }, "") : h("span", { class: (r.delta_ps[i] ?? 0) > 0 ? "worse" : (r.delta_ps[i] ?? 0) < 0 ? "better" : "" }, fmtDelta(r.delta_ps[i])) });
        cols.push({ key: `s${i}`, label: `speedup`, title: `${d.baseline} ÷ ${d.labels[i]} (same clock, or both from the layer benchmark)`, num: true, value: (r) => r.speedup[i], render: (r) => note(r) ? h("span", { class: "muted", title: note(r)!, "data-testid": "no-speedup" }, "") : r.speedup_source?.[i] === "layer_benchmark" ? h("span", { title: "from the callback's layer benchmark: forward + backward per call, measured", "data-source": "layer_benchmark" }, fmtSpeedup(r.speedup[i]), h("span", { class: "badge" }, "bench")) : fmtSpeedup(r.speedup[i]) });
      }
    }
    cols.push({ key: "clock", label: "Clock", title: "clock of each session's time: device timeline, GPU dispatch (host-side, no device timeline) or CPU compute (host)", value: (r) => (r.clock ?? []).join(" / "), render: (r) => (r.clock ?? []).map((c) => clockLabel(c)).join(" / ") });
    cols.push({ key: "why", label: "Why no speedup", value: (r) => (r.speedup_note ?? []).filter((x) => x).join("; "), render: (r) => h("span", { class: "muted", "data-testid": "speedup-note" }, [...new Set((r.speedup_note ?? []).filter((x) => x))].join("; ")) });
    const table = new DataTable<CompareRow>(cols, { sortKey: "d1", pageSize: 100, testid: "compare-table", rowAttrs: (r) => ({ "data-key": r.key.join("/"), "data-testid": "compare-row" }) });
    table.setRows(d.rows);
    const unmatched = d.unmatched.length
      ? h("div", { class: "unmatched", "data-testid": "compare-unmatched" }, h("h3", null, `Unmatched layers (${d.unmatched.length})`),
          h("ul", null, ...d.unmatched.map((u) => h("li", null, u.key.join(" / "), h("span", { class: "muted" }, ` only in ${u.in.join(", ")}`)))))
      : h("p", { class: "note" }, `All ${d.matched_count} layers matched.`);
    this.result.append(
      ...d.warnings.map((w) => h("div", { class: "warn-box" }, w)),
      totals,
      h("p", { class: "note" }, "Source: the same per-layer totals as the breakdown view, matched by layer path. Click a header to sort (Δ sorts by the change against the baseline)."),
      table.el, unmatched);
  }
}
