// Entry point of the Metal tab. TensorBoard loads this ES module in an iframe and calls
// render(); everything is fetched from the plugin's JSON routes with relative URLs.
import { ApiError, fetchLayers, fetchReadiness, fetchSessions } from "./api";
import { topLayers, TopChart, type StackBy } from "./chart";
import { CompareView } from "./compare";
import { ALL_HOSTS, allHostsView, fetchAllHosts } from "./hosts";
import { devicesOf, findNode, newestFirst, phasesOf } from "./describe";
import { clear, h } from "./dom";
import { clockHeading, fmtTime, pathKey } from "./format";
import { fallbackPanel, OpsPanel } from "./panels";
import { ReadinessPanel, verdictLookup } from "./readiness";
import { notesPanel, summaryCards, traceViewerLink } from "./summary";
import { LayerTree } from "./tree";
import type { LayersPayload, SessionEntry, SessionsPayload } from "./types";
import { onUrlChange, readUrl, writeUrl, type UrlState } from "./urlstate";
import { VerdictStrip } from "./verdict";

const RECORD_HINT = `from tb_metal_plugin.callback import MetalProfileCallback

model.fit(x, y, epochs=1,
          callbacks=[MetalProfileCallback(log_dir="runs/my_run", profile_batch=(2, 4))])`;

interface AppState extends UrlState {
  sessions: SessionEntry[];
  stackBy: StackBy;
  metalVersion: string | null; // tensorflow-metal release the readiness prediction is for; null = newest
}

class App {
  private header: HTMLElement;
  private banner: HTMLElement;
  private main: HTMLElement;
  private progress: HTMLElement;
  private progressBar: HTMLProgressElement;
  private progressMsg: HTMLElement;
  private state: AppState = { sessions: [], run: null, host: null, step: null, layer: null, bucket: false, view: "breakdown", compare: [], stackBy: "device", metalVersion: null };
  private layers: LayersPayload | null = null;
  private chart: TopChart | null = null;
  private tree: LayerTree | null = null;
  private ops: OpsPanel;
  private strip: VerdictStrip | null = null;
  private readiness: ReadinessPanel | null = null;
  private readinessSeq = 0;
  private compare: CompareView;
  private loadSeq = 0;
  private abort: AbortController | null = null;
  private unreadable = new Map<string, string>(); // session -> why it could not be read
  private chosenByUser = false; // the session came from the URL or the picker, not the default

  constructor(root: HTMLElement) {
    this.header = h("header", { class: "topbar" });
    this.banner = h("div", { class: "banner" });
    this.progressBar = h("progress", { max: 1, value: 0 }) as HTMLProgressElement;
    this.progressMsg = h("span", { class: "progress-msg" });
    this.progress = h("div", { class: "progress hidden", "data-testid": "progress", role: "status" }, this.progressBar, this.progressMsg);
    this.main = h("main", { class: "content" });
    this.compare = new CompareView((f, m) => this.showProgress(f, m), () => this.hideProgress(), (set) => { this.state.compare = set; this.saveUrl(true); });
    this.ops = new OpsPanel(() => ({ session: this.state.run, host: this.state.host, step: this.state.step }), () => { this.state.layer = null; this.saveUrl(true); });
    root.append(this.header, this.banner, this.progress, this.main);
    onUrlChange(() => void this.applyUrl());
  }

  showProgress(fraction: number, message: string): void {
    this.progress.classList.remove("hidden");
    this.progressBar.value = fraction;
    this.progressMsg.textContent = `${message} (${Math.round(fraction * 100)}%)`;
  }

  hideProgress(): void {
    this.progress.classList.add("hidden");
  }

  private saveUrl(push: boolean): void {
    writeUrl(this.state, push);
  }

  /** Back/forward: show what the URL now says. */
  private async applyUrl(): Promise<void> {
    const u = readUrl();
    const st = this.state;
    const reload = u.run !== st.run || u.host !== st.host || u.step !== st.step || u.view !== st.view;
    Object.assign(st, u);
    if (u.run) this.chosenByUser = true;
    this.fixSession();
    this.compare.setChosen(u.compare);
    if (reload || !this.layers) {
      this.renderHeader();
      await this.showView();
    } else if (u.layer) {
      this.selectLayer(u.layer, u.bucket, true, false);
    } else {
      this.ops.prompt();
    }
    this.saveUrl(false); // mirror the entry into the top window's URL (for a reload)
  }

  async start(refresh = false): Promise<void> {
    let data: SessionsPayload;
    try {
      data = await fetchSessions(refresh);
    } catch (e) {
      this.renderFatal("Could not list profiles: " + (e instanceof Error ? e.message : String(e)));
      return;
    }
    this.state.sessions = data.sessions;
    clear(this.banner);
    if (data.errors.length) {
      // A corrupt file is named, and everything else is still shown.
      this.banner.append(h("div", { class: "error-box", "data-testid": "scan-errors" },
        h("strong", null, `${data.errors.length} profile file(s) could not be read:`),
        h("ul", null, ...data.errors.map((e) => h("li", null, h("code", null, e.path), ": ", e.message)))));
    }
    if (!data.sessions.length) {
      this.renderEmpty(data.logdir_set);
      return;
    }
    if (!refresh) {
      Object.assign(this.state, readUrl());
      this.chosenByUser = !!this.state.run;
    }
    this.fixSession();
    this.renderHeader();
    this.compare.setSessions(data.sessions, this.state.compare);
    this.saveUrl(false);
    await this.showView();
  }

  /** A session and host that exist: the URL's, else the newest one not known unreadable. */
  private fixSession(): void {
    const st = this.state;
    if (!st.run || !st.sessions.some((s) => s.name === st.run)) {
      const pick = newestFirst(st.sessions).find((s) => !this.unreadable.has(s.name)) ?? newestFirst(st.sessions)[0];
      st.run = pick?.name ?? null;
      this.chosenByUser = false;
    }
    const s = st.sessions.find((x) => x.name === st.run);
    const allOk = st.host === ALL_HOSTS && (s?.hosts.length ?? 0) > 1;
    if (s && !allOk && (!st.host || !s.hosts.includes(st.host))) st.host = s.hosts[0] ?? null;
  }

  private renderFatal(msg: string): void {
    clear(this.main);
    this.main.append(h("div", { class: "error-box" }, msg));
  }

  private renderEmpty(logdirSet: boolean): void {
    clear(this.header);
    clear(this.main);
    this.main.append(h("section", { class: "panel empty-state", "data-testid": "empty-state" },
      h("h2", null, "No profiles yet"),
      h("p", null, logdirSet
        ? "No profile sessions (plugins/profile/<session>/<host>.xplane.pb) were found under this logdir. Record one while training:"
        : "TensorBoard was started without --logdir. Start it with the folder your training writes to:"),
      h("pre", null, logdirSet ? RECORD_HINT : "tensorboard --logdir runs/"),
      h("p", null, "Keras' own TensorBoard(log_dir=..., profile_batch=(2, 4)) callback works too; the callback above also records each op's device and layer, which makes CPU fallbacks exact."),
      h("button", { onclick: () => void this.start(true) }, "Look again")));
  }

  private renderHeader(): void {
    clear(this.header);
    const st = this.state;
    const tabs = h("div", { class: "tabs", role: "tablist" },
      ...(["breakdown", "compare"] as const).map((v) => h("button", {
        role: "tab", class: st.view === v ? "active" : "", "aria-selected": String(st.view === v), "data-testid": `tab-${v}`,
        onclick: () => { st.view = v; this.saveUrl(true); this.renderHeader(); void this.showView(); },
      }, v === "breakdown" ? "Layers" : "Compare")));
    this.header.append(tabs);
    if (st.view === "breakdown") {
      const newest = newestFirst(st.sessions)[0]?.name;
      // Unreadable sessions stay listed (so their error can be seen) and say so.
      const sessSel = h("select", { "aria-label": "run / session", "data-testid": "session-select" },
        ...st.sessions.map((s) => h("option", { value: s.name, selected: s.name === st.run, "data-unreadable": this.unreadable.has(s.name) ? "1" : null, title: this.unreadable.get(s.name) ?? null },
          (this.unreadable.has(s.name) ? "⚠ " : "") + s.name + (this.unreadable.has(s.name) ? " (unreadable)" : s.name === newest ? " (newest)" : "")))) as HTMLSelectElement;
      sessSel.addEventListener("change", () => { st.run = sessSel.value; this.chosenByUser = true; st.layer = null; st.host = null; this.fixSession(); st.step = null; this.saveUrl(true); this.renderHeader(); void this.showView(); });
      const sess = st.sessions.find((s) => s.name === st.run);
      const hostSel = h("select", { "aria-label": "host", "data-testid": "host-select" },
        ...(sess?.hosts ?? []).map((x) => h("option", { value: x, selected: x === st.host }, x)),
        (sess?.hosts.length ?? 0) > 1 ? h("option", { value: ALL_HOSTS, selected: st.host === ALL_HOSTS }, "all hosts") : null) as HTMLSelectElement;
      hostSel.addEventListener("change", () => { st.host = hostSel.value; st.layer = null; this.saveUrl(true); void this.showView(); });
      const steps = this.layers && this.layers.session === st.run ? this.layers.steps : [];
      const stepSel = h("select", { "aria-label": "step", "data-testid": "step-select" },
        h("option", { value: "all", selected: st.step === null }, "all profiled steps (total)"),
        h("option", { value: "avg", selected: st.step === "avg" }, "per step (average)"),
        ...steps.map((s) => h("option", { value: String(s), selected: st.step === s }, `step ${s}`))) as HTMLSelectElement;
      stepSel.addEventListener("change", () => {
        const v = stepSel.value;
        st.step = v === "all" ? null : v === "avg" ? "avg" : Number(v);
        this.saveUrl(true);
        void this.showView();
      });
      this.header.append(
        h("label", null, "Run / session ", sessSel),
        sess && sess.hosts.length > 1 ? h("label", null, "Host ", hostSel) : hostSel,
        h("label", null, "Step ", stepSel),
        traceViewerLink(this.state.run, this.state.host));
      if (!(sess && sess.hosts.length > 1)) hostSel.classList.add("hidden");
    }
    this.header.append(h("button", { class: "refresh", title: "look for new profiles", "aria-label": "look for new profiles", onclick: () => void this.start(true) }, "⟳"));
  }

  private async showView(): Promise<void> {
    if (this.state.host === ALL_HOSTS && this.state.run && this.state.view !== "compare") return this.loadAllHosts(this.state.run);
    if (this.state.view === "compare") {
      this.loadSeq++;
      this.abort?.abort();
      clear(this.main);
      this.main.append(this.compare.el);
      return;
    }
    await this.loadLayers();
  }

  /** Host "all hosts": every host of the session side by side (one table, any view). */
  private async loadAllHosts(run: string): Promise<void> {
    const seq = ++this.loadSeq;
    this.abort?.abort();
    const ctrl = (this.abort = new AbortController());
    clear(this.main);
    this.showProgress(0, "loading every host");
    try {
      const payload = await fetchAllHosts(run, this.state.step, (f, m) => { if (seq === this.loadSeq) this.showProgress(f, m); }, ctrl.signal);
      if (seq === this.loadSeq) this.main.append(allHostsView(payload));
    } catch (e) {
      if (seq === this.loadSeq && !ctrl.signal.aborted) this.renderLoadError(e);
    } finally {
      if (seq === this.loadSeq) this.hideProgress();
    }
  }

  private async loadLayers(): Promise<void> {
    const st = this.state;
    if (!st.run || !st.host) return;
    const seq = ++this.loadSeq;
    this.abort?.abort();
    const ctrl = (this.abort = new AbortController());
    clear(this.main);
    this.showProgress(0, "loading profile");
    try {
      const payload = await fetchLayers(st.run, st.host, st.step, (f, m) => { if (seq === this.loadSeq) this.showProgress(f, m); }, ctrl.signal);
      if (seq !== this.loadSeq) return;
      const stepsChanged = !this.layers || this.layers.session !== payload.session || this.layers.steps.join() !== payload.steps.join();
      this.layers = payload;
      if (stepsChanged) this.renderHeader();
      this.renderBreakdown(payload);
    } catch (e) {
      if (seq !== this.loadSeq || ctrl.signal.aborted) return;
      if (e instanceof ApiError && e.body?.kind === "trace_error" && st.run) {
        this.unreadable.set(st.run, e.message);
        if (!this.chosenByUser) {
          // The default pick was unreadable: say so once, and open the newest readable one.
          const bad = st.run;
          st.run = null;
          this.fixSession();
          if (st.run && !this.unreadable.has(st.run)) {
            this.saveUrl(false);
            this.renderHeader();
            await this.loadLayers();
            this.main.prepend(this.unreadableNote(bad, e));
            return;
          }
          st.run = bad;
        }
        this.renderHeader();
      }
      this.renderLoadError(e);
    } finally {
      if (seq === this.loadSeq) this.hideProgress();
    }
  }

  private unreadableNote(session: string, e: ApiError): HTMLElement {
    return h("div", { class: "warn-box", "data-testid": "skipped-unreadable" },
      h("strong", null, `Session ${session} could not be read`), " (", h("code", null, e.body?.path ?? ""), `): ${e.message}. Showing the newest readable session; it is marked ⚠ in the picker.`);
  }

  private renderLoadError(e: unknown): void {
    clear(this.main);
    if (e instanceof ApiError && e.body?.kind === "trace_error") {
      // The core's message already says what is wrong and what to do: print it once.
      this.main.append(h("div", { class: "error-box", "data-testid": "load-error" },
        h("strong", null, "This profile file could not be read: "), h("code", null, e.body.path ?? ""), h("p", null, e.message),
        /truncat|record/i.test(e.message) ? null : h("p", null, "The file may be truncated (training stopped while writing) or not an XSpace trace. Pick another session above, or record the profile again.")));
    } else {
      this.main.append(h("div", { class: "error-box", "data-testid": "load-error" }, "Loading failed: ", e instanceof Error ? e.message : String(e)));
    }
  }

  private renderBreakdown(p: LayersPayload): void {
    clear(this.main);
    this.chart?.destroy();
    const phases = phasesOf(p);
    const devices = devicesOf(p);
    const hasGpu = p.has_gpu ?? devices.some((d) => d.startsWith("GPU"));
    const clock = clockHeading(p.clocks, hasGpu) || "op";
    const select = (path: string[], bucket: boolean) => this.selectLayer(path, bucket, true, true);

    this.strip = new VerdictStrip(p, clock, select);
    const over = p.step_time_ps > 0 && p.total_ps > p.step_time_ps;
    const summary = summaryCards(p, clock, hasGpu, devices);
    const warnings = (p.warnings ?? []).map((w) => h("div", { class: "warn-box" }, w));

    // Layer tree, then the drill-down right below it (scrolled to on selection).
    this.tree = new LayerTree({ phases, devices, clock, hasGpu, onSelect: (n, bucket) => this.selectLayer(n.path, bucket, false, true) });
    this.tree.setData(p.layers, p.buckets ?? []);
    const legend = devices.length ? devices.flatMap((d, i) => [i ? " " : "", h("span", { class: "legend " + (d.startsWith("GPU") ? "dev-gpu" : d.startsWith("CPU") ? "dev-cpu" : "dev-other") }, d)]) : [];
    const treePanel = h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", null, "Layers"),
        h("button", { onclick: () => this.tree?.expandAll(true) }, "expand all"),
        h("button", { onclick: () => this.tree?.expandAll(false) }, "collapse")),
      h("p", { class: "note", "data-testid": "tree-note" }, `Times are ${clock} time${clock === "host-side" ? " (GPU ops: encoding and dispatch on the host, not GPU execution)" : ""}. Self = ops directly in the layer; Total includes sublayers. The bar splits a layer's time by device: `,
        ...legend, ". % step is of the wall-clock step time", over ? h("span", { "data-testid": "over-100-note" }, `; it passes 100% (‖) when ops run in parallel threads: summed op time (${fmtTime(p.total_ps)}) exceeds the step (${fmtTime(p.step_time_ps)})`) : null,
        ". Click a row, or Tab to the tree and use the arrow keys, Home/End and Enter, for its ops."),
      this.tree.el);

    // Chart: its note follows the stacking picker.
    this.chart = new TopChart();
    const stackSel = h("select", { "aria-label": "stack by", "data-testid": "stack-select" },
      h("option", { value: "device", selected: this.state.stackBy === "device" }, "device"),
      h("option", { value: "phase", selected: this.state.stackBy === "phase" }, "phase")) as HTMLSelectElement;
    const top = topLayers(p.layers, 12);
    const chartNote = h("p", { class: "note", "data-testid": "chart-note" });
    const drawChart = () => {
      chartNote.textContent = `The ${top.length} leaf layers with the most time, stacked by ${this.state.stackBy}; ${clock} time.`;
      this.chart?.update(top, this.state.stackBy, devices, (n) => select(n.path, false));
    };
    stackSel.addEventListener("change", () => { this.state.stackBy = stackSel.value as StackBy; drawChart(); });
    const chartPanel = h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", null, "Top layers"), h("label", null, "stacked by ", stackSel)),
      chartNote, top.length ? this.chart.el : h("p", { class: "empty" }, "No layer time in this selection."));

    this.readiness = new ReadinessPanel({
      onVersion: (v) => { this.state.metalVersion = v; void this.loadReadiness(p); },
      onSelect: select,
    });
    const notes = notesPanel(p);

    this.main.append(this.strip.el, summary, ...warnings, treePanel, this.ops.el, fallbackPanel(p, hasGpu, select), this.readiness.el, chartPanel, notes);
    void this.loadReadiness(p);
    if (top.length) drawChart();
    const st = this.state;
    if (st.layer && (st.bucket || findNode(p.layers, st.layer))) this.selectLayer(st.layer, st.bucket, true, false);
    else {
      st.layer = null;
      this.ops.prompt();
    }
  }

  /** The readiness prediction for the shown selection: the panel, the strip and the tree's column. */
  private async loadReadiness(p: LayersPayload): Promise<void> {
    const st = this.state;
    const panel = this.readiness;
    if (!panel || !st.run || !st.host) return;
    const seq = ++this.readinessSeq;
    panel.loading(st.metalVersion);
    this.strip?.setReadiness(null, true);
    try {
      const data = await fetchReadiness(st.run, st.host, st.step, st.metalVersion);
      if (seq !== this.readinessSeq || panel !== this.readiness) return;
      panel.render(data);
      this.strip?.setReadiness(data);
      this.tree?.setReadiness(verdictLookup(data, p.layers));
    } catch (e) {
      if (seq !== this.readinessSeq || panel !== this.readiness) return;
      panel.error(e instanceof Error ? e.message : String(e));
      this.strip?.setReadiness(null);
      this.tree?.setReadiness(null);
    }
  }

  /** Show a layer's ops (and put it in the URL); `reveal` also opens it in the tree. */
  private selectLayer(path: string[], bucket: boolean, reveal: boolean, push: boolean): void {
    const st = this.state;
    const same = st.layer && pathKey(st.layer) === pathKey(path) && st.bucket === bucket;
    st.layer = path;
    st.bucket = bucket;
    if (push && !same) this.saveUrl(true);
    if (reveal && !bucket) this.tree?.select(path);
    void this.ops.show(path, bucket);
    if (push) this.ops.reveal();
  }
}

/** Called by TensorBoard once the module is loaded in the tab's iframe. */
export function render(): void {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "./style.css";
  document.head.appendChild(link);
  const root = h("div", { class: "tbm-root", "data-testid": "metal-root" });
  document.body.appendChild(root);
  const app = new App(root);
  void app.start();
}
