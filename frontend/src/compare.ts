// Comparison view: what changed between runs. Layers matched by path; per run its time,
// device split and fallbacks; Δ and speedup only on one clock; any run can be the baseline.
import { ApiError, fetchCompare } from "./api";
import { runLabels } from "./describe";
import { append, clear, h } from "./dom";
import { clockLabel, fmtDelta, fmtSpeedup, fmtTime } from "./format";
import { DataTable, type Column } from "./table";
import { splitBar } from "./tree";
import type { CompareRow, ComparePayload, SessionEntry, Step } from "./types";

interface Item { session: string; host: string }

const same = (a: Item, b: Item) => a.session === b.session && a.host === b.host;

/** A row with no time in any run it is in (e.g. a renamed InputLayer): nothing changed. */
function zeroTime(r: CompareRow): boolean {
  return r.total_ps.every((t) => !t);
}

export class CompareView {
  readonly el: HTMLElement;
  private picker: HTMLElement;
  private result: HTMLElement;
  private sessions: SessionEntry[] = [];
  private chosen: Item[] = [];
  private step: Step = "avg";
  private abort: AbortController | null = null;
  private showZero = false;
  private last: ComparePayload | null = null;

  constructor(private showProgress: (f: number, m: string) => void, private hideProgress: () => void, private onChange: (chosen: Item[]) => void) {
    this.picker = h("div", { class: "compare-picker" });
    this.result = h("div", { class: "compare-result", "data-testid": "compare-result" });
    this.el = h("section", { class: "panel compare", "data-testid": "compare-view" },
      h("h2", null, "Compare runs: what changed"),
      h("p", { class: "note" }, "Tick two or more runs; the first ticked is the baseline (\"make baseline\" swaps it). Layers are matched by their path. Δ is the run's time minus the baseline's, speedup is baseline ÷ run (above 1× = faster than the baseline); both exist only when the two times are on the same clock (device timeline, GPU dispatch, CPU compute), or come from the callback's layer benchmark in both runs (marked \"bench\"). The headline is step time: wall time in every run."),
      this.picker, this.result);
  }

  setSessions(sessions: SessionEntry[], chosen: Item[]): void {
    this.sessions = sessions;
    this.setChosen(chosen, false);
  }

  /** The compare set (baseline first), e.g. from the URL. */
  setChosen(chosen: Item[], run = true): void {
    const known = (c: Item) => this.sessions.some((s) => s.name === c.session && s.hosts.includes(c.host));
    const next = chosen.filter(known);
    const changed = next.length !== this.chosen.length || next.some((c, i) => !same(c, this.chosen[i]));
    this.chosen = next;
    this.renderPicker();
    if (changed || !run) void this.run();
  }

  private changed(): void {
    this.onChange([...this.chosen]);
    this.renderPicker();
    void this.run();
  }

  private renderPicker(): void {
    clear(this.picker);
    const items: Item[] = [];
    for (const s of this.sessions) for (const host of s.hosts) items.push({ session: s.name, host });
    const labels = runLabels(items, this.sessions);
    const list = h("div", { class: "compare-list" });
    items.forEach((it, i) => {
      const idx = this.chosen.findIndex((c) => same(c, it));
      const cb = h("input", { type: "checkbox", "data-session": it.session, "data-host": it.host }) as HTMLInputElement;
      cb.checked = idx >= 0;
      cb.addEventListener("change", () => {
        if (cb.checked) this.chosen.push(it);
        else this.chosen = this.chosen.filter((c) => !same(c, it));
        this.changed();
      });
      list.appendChild(h("label", { class: "compare-item", title: `${it.session} (host ${it.host})` }, cb, " ", labels[i],
        idx === 0 && this.chosen.length > 1 ? h("span", { class: "badge base" }, "baseline") : null,
        idx > 0 ? h("button", { class: "link", "data-testid": "make-baseline", "data-session": it.session, onclick: (ev: Event) => { ev.preventDefault(); this.makeBaseline(it); } }, "make baseline") : null));
    });
    const stepSel = h("select", { "aria-label": "compare step", "data-testid": "compare-step" },
      h("option", { value: "avg", selected: this.step === "avg" }, "per step (average)"),
      h("option", { value: "all", selected: this.step === null }, "whole profiled window")) as HTMLSelectElement;
    stepSel.addEventListener("change", () => { this.step = stepSel.value === "avg" ? "avg" : null; void this.run(); });
    this.picker.append(list, h("label", null, "Time: ", stepSel));
    if (items.length < 2) this.picker.append(h("p", { class: "empty" }, "Comparison needs at least two profile sessions in the logdir (for example a Metal run and a CPU-only run of the same model)."));
  }

  private makeBaseline(it: Item): void {
    this.chosen = [it, ...this.chosen.filter((c) => !same(c, it))];
    this.changed();
  }

  private async run(): Promise<void> {
    this.abort?.abort();
    clear(this.result);
    if (this.chosen.length < 2) {
      this.result.append(h("p", { class: "empty" }, "Select at least two runs above."));
      return;
    }
    const ctrl = (this.abort = new AbortController());
    try {
      const data = await fetchCompare(this.chosen, this.step, this.showProgress, ctrl.signal);
      if (ctrl.signal.aborted) return;
      this.last = data;
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
    clear(this.result);
    const n = d.sessions.length;
    // Run names, not the profiler's timestamped session folders.
    const labels = runLabels(d.sessions.map((s, i) => ({ session: s ?? d.labels[i], host: d.hosts[i] })), this.sessions);
    const devOrder = ["GPU", "GPU (host-side)", "CPU"];
    const totals = h("table", { class: "data-table totals", "data-testid": "compare-totals" },
      h("thead", null, h("tr", null, h("th", null, ""), ...labels.map((l, i) => h("th", { class: "num", title: d.sessions[i] }, l,
        i === 0 ? h("span", { class: "badge base" }, "baseline") : h("div", null, h("button", { class: "link", "data-testid": "make-baseline-col", onclick: () => this.makeBaseline(this.chosen[i]) }, "make baseline")))))),
      h("tbody", null,
        h("tr", null, h("th", null, d.step === "avg" ? "step time (wall, avg)" : "profiled step time (wall)"), ...d.totals.step_time_ps.map((t) => h("td", { class: "num" }, fmtTime(t)))),
        h("tr", null, h("th", null, "speedup vs baseline"), ...d.totals.speedup.map((s, i) => h("td", { class: "num", "data-testid": "total-speedup" }, i === 0 ? "1.00×" : fmtSpeedup(s)))),
        h("tr", null, h("th", null, "layer times' clock"), ...(d.totals.clocks ?? []).map((c) => h("td", { class: "num", "data-testid": "total-clock" }, Object.keys(c ?? {}).map(clockLabel).join(" + ") || "–")))));
    const cols: Column<CompareRow>[] = [
      { key: "name", label: "Layer", value: (r) => r.key.join("/"), render: (r) => h("span", { class: r.kind === "bucket" ? "bucket-name" : "" }, r.key.join(" / "), r.matched ? null : h("span", { class: "badge unmatched", title: "not in every run: " + r.present.map((p, i) => (p ? null : labels[i])).filter((x) => x).join(", ") + " lacks it" }, "unmatched")) },
    ];
    for (let i = 0; i < n; i++) {
      cols.push({ key: `t${i}`, label: labels[i], title: `total time in ${labels[i]} (clock in the Clock column)`, num: true, value: (r) => r.total_ps[i], render: (r) => h("span", { title: clockLabel(r.clock?.[i] ?? null), "data-clock": r.clock?.[i] ?? "" }, fmtTime(r.total_ps[i])) });
      if (i > 0) {
        const note = (r: CompareRow) => r.speedup_note?.[i] ?? null;
        cols.push({ key: `d${i}`, label: `Δ ${labels[i]}`, title: `${labels[i]} minus ${labels[0]} (same clock only)`, num: true, value: (r) => r.delta_ps[i], render: (r) => note(r) ? h("span", { class: "muted", title: note(r)! }, "") : h("span", { class: (r.delta_ps[i] ?? 0) > 0 ? "worse" : (r.delta_ps[i] ?? 0) < 0 ? "better" : "" }, fmtDelta(r.delta_ps[i])) });
        cols.push({ key: `s${i}`, label: `speedup`, title: `${labels[0]} ÷ ${labels[i]} (same clock, or both from the layer benchmark)`, num: true, value: (r) => r.speedup[i], render: (r) => note(r) ? h("span", { class: "muted", title: note(r)!, "data-testid": "no-speedup" }, "") : r.speedup_source?.[i] === "layer_benchmark" ? h("span", { title: "from the callback's layer benchmark: forward + backward per call, measured", "data-source": "layer_benchmark" }, fmtSpeedup(r.speedup[i]), h("span", { class: "badge" }, "bench")) : fmtSpeedup(r.speedup[i]) });
      }
    }
    // What moved: fallbacks gained or lost against the baseline, and each run's device split.
    cols.push({ key: "fb", label: "CPU fallbacks", title: "ops placed on the CPU while a GPU was present, per run (Δ against the baseline)", num: true,
      value: (r) => (r.fallback_delta ?? []).reduce<number>((s, x) => s + (x ?? 0), 0),
      render: (r) => h("span", { "data-testid": "fallback-delta", title: r.fallback_ps ? "CPU time of the fallen-back ops: " + r.fallback_ps.map((x, i) => `${labels[i]} ${fmtTime(x)}`).join(", ") : null },
        (r.fallback_count ?? []).map((x, i) => (x === null ? "–" : i === 0 || r.fallback_delta[i] === null ? String(x) : `${x} (${fbDelta(r.fallback_delta[i]!)})`)).join(" → ")) });
    cols.push({ key: "split", label: "Device split", title: "each run's time per device, baseline on top", value: (r) => r.key.join("/"),
      render: (r) => h("div", { class: "split-stack", "data-testid": "compare-split" }, ...(r.devices ?? []).map((dv, i) => h("div", { class: "split-line", title: labels[i] }, dv ? splitBar(dv, devOrder, 0) : h("span", { class: "muted" }, "–")))) });
    cols.push({ key: "clock", label: "Clock", title: "clock of each run's time: device timeline, GPU dispatch (host-side, no device timeline) or CPU compute (host)", value: (r) => (r.clock ?? []).join(" / "), render: (r) => (r.clock ?? []).map((c) => clockLabel(c)).join(" / ") });
    if (d.rows.some((r) => (r.speedup_note ?? []).some((x) => x))) cols.push({ key: "why", label: "Why no speedup", value: (r) => (r.speedup_note ?? []).filter((x) => x).join("; "), render: (r) => h("span", { class: "muted", "data-testid": "speedup-note" }, [...new Set((r.speedup_note ?? []).filter((x) => x))].join("; ")) });
    const zero = d.rows.filter(zeroTime);
    const table = new DataTable<CompareRow>(cols, { sortKey: "d1", pageSize: 100, testid: "compare-table", rowAttrs: (r) => ({ "data-key": r.key.join("/"), "data-testid": "compare-row" }) });
    table.setRows(this.showZero ? d.rows : d.rows.filter((r) => !zeroTime(r)));
    const zeroToggle = zero.length ? h("label", { class: "note", "data-testid": "toggle-zero-rows" }, (() => {
      const cb = h("input", { type: "checkbox", checked: this.showZero }) as HTMLInputElement;
      cb.addEventListener("change", () => { this.showZero = cb.checked; if (this.last) this.renderResult(this.last); });
      return cb;
    })(), ` show ${zero.length} layer(s) with no time in any run (${zero.slice(0, 3).map((r) => r.key.join(" / ")).join(", ")}${zero.length > 3 ? ", …" : ""})`) : null;
    const unmatchedShown = d.unmatched.filter((u) => this.showZero || !zero.some((r) => r.kind === u.kind && r.key.join("/") === u.key.join("/")));
    const labelOf = (s: string) => labels[d.labels.indexOf(s)] ?? s;
    const unmatched = unmatchedShown.length
      ? h("div", { class: "unmatched", "data-testid": "compare-unmatched" }, h("h3", null, `Layers not in every run (${unmatchedShown.length})`),
          h("ul", null, ...unmatchedShown.map((u) => h("li", null, u.key.join(" / "), h("span", { class: "muted" }, ` only in ${u.in.map(labelOf).join(", ")}`)))))
      : h("p", { class: "note" }, `All ${d.rows.filter((r) => r.matched && !zeroTime(r)).length} layers with time matched.`);
    append(this.result, [
      ...d.warnings.map((w) => h("div", { class: "warn-box" }, w)),
      totals,
      h("p", { class: "note" }, "Per layer: each run's time, the change against the baseline (same clock only), CPU fallbacks per run with their change, and the device split of each run. Click a header to sort (Δ sorts by the change against the baseline)."),
      table.el, zeroToggle, unmatched]);
  }
}

function fbDelta(x: number): string {
  return x > 0 ? `+${x}` : x < 0 ? `−${-x}` : "±0";
}
