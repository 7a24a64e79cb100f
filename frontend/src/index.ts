// Entry point of the Metal tab. TensorBoard loads this ES module in an iframe and calls
// render(); everything is fetched from the plugin's JSON routes with relative URLs.
import { ApiError, fetchLayers, fetchOps, fetchReadiness, fetchSessions } from "./api";
import { topLayers, TopChart, type StackBy } from "./chart";
import { CompareView } from "./compare";
import { clear, h } from "./dom";
import { clockLabel, fmtPct, fmtTime, pathLabel } from "./format";
import { ReadinessPanel, remedyCell, verdictLookup } from "./readiness";
import { DataTable } from "./table";
import { deviceClass, LayerTree } from "./tree";
import type { Fallback, LayerNode, LayersPayload, OpRow, SessionEntry, SessionsPayload, Step } from "./types";

const RECORD_HINT = `from tb_metal_plugin.callback import MetalProfileCallback

model.fit(x, y, epochs=1,
          callbacks=[MetalProfileCallback(log_dir="runs/my_run", profile_batch=(2, 4))])`;

interface AppState {
  sessions: SessionEntry[];
  session: string | null;
  host: string | null;
  step: Step;
  view: "breakdown" | "compare";
  stackBy: StackBy;
  selected: { path: string[]; bucket: boolean } | null;
  metalVersion: string | null; // tensorflow-metal release the readiness prediction is for; null = newest
}

function describeAttribution(src: string): string {
  if (src === "manifest") return "Layer attribution: exact, from the layer scopes recorded by MetalProfileCallback.";
  if (src === "trace_names") return "Layer attribution: inferred from op names in the trace (name scopes); record with MetalProfileCallback for exact attribution and placement.";
  return `Layer attribution: ${src}.`;
}

function describeTimeline(p: LayersPayload): string {
  // The core's note is the authority (every payload carries one: schema.py).
  return "Time source: " + p.time_note;
}

const SOURCE_NAMES: Record<string, string> = {
  device_plane: "device timeline",
  placement: "recorded placement",
  send_recv: "send/recv stats",
  kernel_registry: "kernel registry (inferred)",
  assumed: "assumed CPU (nothing recorded)",
};

function sumSources(p: LayersPayload): string {
  const acc: Record<string, number> = {};
  for (const [k, v] of Object.entries(p.device_sources ?? {})) acc[SOURCE_NAMES[k] ?? k] = v;
  const total = Object.values(acc).reduce((a, b) => a + b, 0);
  if (!total) return "";
  return "Device of each op from: " + Object.entries(acc).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${fmtPct(v / total)}`).join(", ") + ".";
}

/** Device kinds present in the tree, GPU first: node times are keyed by kind. */
function devicesOf(p: LayersPayload): string[] {
  const seen = new Set<string>();
  const walk = (ns: LayerNode[]) => ns.forEach((n) => { Object.keys(n.devices ?? {}).forEach((k) => seen.add(k)); walk(n.children ?? []); });
  walk(p.layers);
  walk(p.buckets ?? []);
  if (p.has_gpu) seen.add("GPU");
  const order = ["GPU", "CPU"];
  return [...order.filter((d) => seen.has(d)), ...[...seen].filter((d) => !order.includes(d)).sort()];
}

function findNode(nodes: LayerNode[], path: string[]): LayerNode | null {
  for (const n of nodes) {
    if (n.path.length <= path.length && n.path.every((p, i) => p === path[i])) {
      if (n.path.length === path.length) return n;
      const c = findNode(n.children ?? [], path);
      if (c) return c;
    }
  }
  return null;
}

class App {
  private header: HTMLElement;
  private banner: HTMLElement;
  private main: HTMLElement;
  private progress: HTMLElement;
  private progressBar: HTMLProgressElement;
  private progressMsg: HTMLElement;
  private state: AppState = { sessions: [], session: null, host: null, step: null, view: "breakdown", stackBy: "device", selected: null, metalVersion: null };
  private layers: LayersPayload | null = null;
  private chart: TopChart | null = null;
  private tree: LayerTree | null = null;
  private opsPanel: HTMLElement | null = null;
  private readiness: ReadinessPanel | null = null;
  private readinessSeq = 0;
  private compare: CompareView;
  private loadSeq = 0;
  private abort: AbortController | null = null;

  constructor(root: HTMLElement) {
    this.header = h("header", { class: "topbar" });
    this.banner = h("div", { class: "banner" });
    this.progressBar = h("progress", { max: 1, value: 0 }) as HTMLProgressElement;
    this.progressMsg = h("span", { class: "progress-msg" });
    this.progress = h("div", { class: "progress hidden", "data-testid": "progress", role: "status" }, this.progressBar, this.progressMsg);
    this.main = h("main", { class: "content" });
    this.compare = new CompareView((f, m) => this.showProgress(f, m), () => this.hideProgress());
    root.append(this.header, this.banner, this.progress, this.main);
  }

  showProgress(fraction: number, message: string): void {
    this.progress.classList.remove("hidden");
    this.progressBar.value = fraction;
    this.progressMsg.textContent = `${message} (${Math.round(fraction * 100)}%)`;
  }

  hideProgress(): void {
    this.progress.classList.add("hidden");
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
    const names = data.sessions.map((s) => s.name);
    if (!this.state.session || !names.includes(this.state.session)) this.state.session = names[names.length - 1];
    this.fixHost();
    this.renderHeader();
    this.compare.setSessions(data.sessions);
    await this.showView();
  }

  private fixHost(): void {
    const s = this.state.sessions.find((x) => x.name === this.state.session);
    if (s && (!this.state.host || !s.hosts.includes(this.state.host))) this.state.host = s.hosts[0] ?? null;
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
        onclick: () => { st.view = v; this.renderHeader(); void this.showView(); },
      }, v === "breakdown" ? "Layers" : "Compare")));
    this.header.append(tabs);
    if (st.view === "breakdown") {
      const sessSel = h("select", { "aria-label": "run / session", "data-testid": "session-select" },
        ...st.sessions.map((s) => h("option", { value: s.name, selected: s.name === st.session }, s.name))) as HTMLSelectElement;
      sessSel.addEventListener("change", () => { st.session = sessSel.value; st.selected = null; this.fixHost(); st.step = null; this.renderHeader(); void this.showView(); });
      const sess = st.sessions.find((s) => s.name === st.session);
      const hostSel = h("select", { "aria-label": "host", "data-testid": "host-select" },
        ...(sess?.hosts ?? []).map((x) => h("option", { value: x, selected: x === st.host }, x))) as HTMLSelectElement;
      hostSel.addEventListener("change", () => { st.host = hostSel.value; st.selected = null; void this.showView(); });
      const steps = this.layers && this.layers.session === st.session ? this.layers.steps : [];
      const stepSel = h("select", { "aria-label": "step", "data-testid": "step-select" },
        h("option", { value: "all", selected: st.step === null }, "all profiled steps (total)"),
        h("option", { value: "avg", selected: st.step === "avg" }, "per step (average)"),
        ...steps.map((s) => h("option", { value: String(s), selected: st.step === s }, `step ${s}`))) as HTMLSelectElement;
      stepSel.addEventListener("change", () => {
        const v = stepSel.value;
        st.step = v === "all" ? null : v === "avg" ? "avg" : Number(v);
        void this.showView();
      });
      this.header.append(
        h("label", null, "Run / session ", sessSel),
        h("label", null, "Host ", hostSel),
        h("label", null, "Step ", stepSel),
        this.traceViewerLink());
    }
    this.header.append(h("button", { class: "refresh", title: "look for new profiles", onclick: () => void this.start(true) }, "⟳"));
  }

  private traceViewerLink(): HTMLElement {
    // The standard Profile tab reads run/tool/host from the top window's query string.
    const st = this.state;
    let href = "#";
    try {
      const top = window.top ?? window;
      const q = `?run=${encodeURIComponent(st.session ?? "")}&tool=trace_viewer@&host=${encodeURIComponent(st.host ?? "")}`;
      href = top.location.origin + top.location.pathname + q + "#profile";
    } catch {
      href = "#";
    }
    return h("a", { class: "button-link", href, target: "_top", "data-testid": "trace-viewer-link", title: "open this session in the Profile tab's trace viewer (needs tensorboard-plugin-profile)" }, "Open in trace viewer ↗");
  }

  private async showView(): Promise<void> {
    if (this.state.view === "compare") {
      clear(this.main);
      this.main.append(this.compare.el);
      return;
    }
    await this.loadLayers();
  }

  private async loadLayers(): Promise<void> {
    const st = this.state;
    if (!st.session || !st.host) return;
    const seq = ++this.loadSeq;
    this.abort?.abort();
    const ctrl = (this.abort = new AbortController());
    clear(this.main);
    this.showProgress(0, "loading profile");
    try {
      const payload = await fetchLayers(st.session, st.host, st.step, (f, m) => { if (seq === this.loadSeq) this.showProgress(f, m); }, ctrl.signal);
      if (seq !== this.loadSeq) return;
      const stepsChanged = !this.layers || this.layers.session !== payload.session || this.layers.steps.join() !== payload.steps.join();
      this.layers = payload;
      if (stepsChanged) this.renderHeader();
      this.renderBreakdown(payload);
    } catch (e) {
      if (seq !== this.loadSeq || ctrl.signal.aborted) return;
      this.renderLoadError(e);
    } finally {
      if (seq === this.loadSeq) this.hideProgress();
    }
  }

  private renderLoadError(e: unknown): void {
    clear(this.main);
    if (e instanceof ApiError && e.body?.kind === "trace_error") {
      this.main.append(h("div", { class: "error-box", "data-testid": "load-error" },
        h("strong", null, "This profile file could not be read: "), h("code", null, e.body.path ?? ""), h("p", null, e.message),
        h("p", null, "The file may be truncated (training stopped while writing) or not an XSpace trace. Pick another session above, or record the profile again.")));
    } else {
      this.main.append(h("div", { class: "error-box", "data-testid": "load-error" }, "Loading failed: ", e instanceof Error ? e.message : String(e)));
    }
  }

  private renderBreakdown(p: LayersPayload): void {
    clear(this.main);
    this.chart?.destroy();
    const phases = this.phasesOf(p);
    const devices = devicesOf(p);
    const hasGpu = p.has_gpu ?? devices.includes("GPU");
    const fallbackOps = p.fallbacks?.reduce((s, f) => s + f.count, 0) ?? 0;

    const summary = h("section", { class: "summary", "data-testid": "summary" },
      this.card(p.step === "avg" ? "Step time (avg)" : p.step === null || p.step === "all" ? "Time of profiled steps" : `Step ${p.step}`, fmtTime(p.step_time_ps), "step-time"),
      this.card("Op time in trace", fmtTime(p.total_ps), "total-time"),
      this.card("Steps", p.steps.length ? `${p.steps.length} (${p.steps[0]}–${p.steps[p.steps.length - 1]})` : "–", "steps"),
      this.card("Devices", (p.devices?.length ? p.devices : devices).join(", "), "devices"),
      this.card("CPU fallbacks", fallbackOps ? `${p.fallbacks.length} op type(s) in ${new Set(p.fallbacks.map((f) => pathLabel(f.path ?? f.bucket ?? null))).size} layer(s)` : hasGpu ? "none" : "no GPU in this run", "fallback-count"),
    );
    const notes = h("div", { class: "notes" },
      h("p", { class: "note", "data-testid": "note-time" }, describeTimeline(p)),
      h("p", { class: "note", "data-testid": "note-attribution" }, describeAttribution(p.attribution_source), " ", sumSources(p)),
      p.file ? h("p", { class: "note muted" }, "File: ", h("code", null, p.file), p.load_s ? ` (read in ${p.load_s.toFixed(2)} s)` : "", p.cached ? " — shown from the cache of an earlier TensorBoard session while the trace reloads for op details" : "") : null);
    const warnings = (p.warnings ?? []).map((w) => h("div", { class: "warn-box" }, w));

    // Layer tree.
    this.tree = new LayerTree({ phases, devices, onSelect: (n, bucket) => this.selectLayer(n.path, bucket, false) });
    this.tree.setData(p.layers, p.buckets ?? []);
    const treePanel = h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", null, "Layers"),
        h("button", { onclick: () => this.tree?.expandAll(true) }, "expand all"),
        h("button", { onclick: () => this.tree?.expandAll(false) }, "collapse")),
      h("p", { class: "note" }, "Self = ops directly in the layer; Total includes sublayers. The bar splits a layer's time by device: ",
        h("span", { class: "legend dev-gpu" }, "GPU"), " ", h("span", { class: "legend dev-cpu" }, "CPU"),
        ". Share is of the profiled step time. Click a row for its ops."),
      this.tree.el);

    // Chart.
    this.chart = new TopChart();
    const stackSel = h("select", { "aria-label": "stack by", "data-testid": "stack-select" },
      h("option", { value: "device", selected: this.state.stackBy === "device" }, "device"),
      h("option", { value: "phase", selected: this.state.stackBy === "phase" }, "phase")) as HTMLSelectElement;
    const top = topLayers(p.layers, 12);
    const drawChart = () => this.chart?.update(top, this.state.stackBy, devices, (n) => this.selectLayer(n.path, false, true));
    stackSel.addEventListener("change", () => { this.state.stackBy = stackSel.value as StackBy; drawChart(); });
    const chartPanel = h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", null, "Top layers"), h("label", null, "stacked by ", stackSel)),
      h("p", { class: "note" }, `The ${top.length} leaf layers with the most time, stacked by ${this.state.stackBy === "device" ? "device" : "phase"}. ${p.timeline === "device" ? "Device timeline." : "Host-side time."}`),
      top.length ? this.chart.el : h("p", { class: "empty" }, "No layer time in this selection."));

    // Fallbacks: measured, then predicted for tensorflow-metal.
    const fbPanel = this.fallbackPanel(p, hasGpu);
    this.readiness = new ReadinessPanel({
      onVersion: (v) => { this.state.metalVersion = v; void this.loadReadiness(p); },
      onSelect: (path, bucket) => this.selectLayer(path, bucket, !bucket),
    });
    this.opsPanel = h("section", { class: "panel", "data-testid": "ops-panel" });

    this.main.append(summary, notes, ...warnings, treePanel, this.readiness.el, chartPanel, fbPanel, this.opsPanel);
    void this.loadReadiness(p);
    if (top.length) drawChart();
    const sel = this.state.selected;
    if (sel && (sel.bucket || findNode(p.layers, sel.path))) this.selectLayer(sel.path, sel.bucket, true);
    else this.opsPrompt();
  }

  /** The readiness prediction for the shown selection: the panel and the tree's column. */
  private async loadReadiness(p: LayersPayload): Promise<void> {
    const st = this.state;
    const panel = this.readiness;
    if (!panel || !st.session || !st.host) return;
    const seq = ++this.readinessSeq;
    panel.loading(st.metalVersion);
    try {
      const data = await fetchReadiness(st.session, st.host, st.step, st.metalVersion);
      if (seq !== this.readinessSeq || panel !== this.readiness) return;
      panel.render(data);
      this.tree?.setReadiness(verdictLookup(data, p.layers));
    } catch (e) {
      if (seq !== this.readinessSeq || panel !== this.readiness) return;
      panel.error(e instanceof Error ? e.message : String(e));
      this.tree?.setReadiness(null);
    }
  }

  private card(label: string, value: string, testid: string): HTMLElement {
    return h("div", { class: "card", "data-testid": "card-" + testid }, h("div", { class: "card-label" }, label), h("div", { class: "card-value" }, value));
  }

  private phasesOf(p: LayersPayload): string[] {
    const order = ["forward", "backward", "optimizer"];
    const seen = new Set<string>();
    const walk = (ns: LayerNode[]) => ns.forEach((n) => { Object.keys(n.phases ?? {}).forEach((k) => seen.add(k)); walk(n.children ?? []); });
    walk(p.layers);
    walk(p.buckets ?? []);
    return [...order.filter((x) => seen.has(x)), ...[...seen].filter((x) => !order.includes(x)).sort()];
  }

  private fallbackPanel(p: LayersPayload, hasGpu: boolean): HTMLElement {
    const panel = h("section", { class: "panel", "data-testid": "fallback-panel" }, h("h2", null, "CPU fallbacks"));
    const fbs = p.fallbacks ?? [];
    if (!fbs.length) {
      panel.append(h("p", { class: "empty" }, hasGpu
        ? "No op of any layer ran on the CPU while a GPU was available."
        : "This run had no GPU, so nothing fell back: every op ran on the CPU by design. Profile on the Metal GPU to find fallbacks, or compare this run with a Metal run."));
    } else {
      const table = new DataTable<Fallback>([
        { key: "layer", label: "Layer", value: (f) => pathLabel(f.path ?? f.bucket ?? null), render: (f) => pathLabel(f.path ?? f.bucket ?? null) },
        { key: "op", label: "Op type", value: (f) => f.op_type, render: (f) => h("code", null, f.op_type) },
        { key: "reason", label: "Reason", value: (f) => f.reason_code, render: (f) => h("span", { title: f.reason_code }, h("span", { class: "badge reason" }, f.reason_code), " ", f.reason) },
        { key: "count", label: "Ops", num: true, value: (f) => f.count },
        { key: "self", label: "CPU time", num: true, value: (f) => f.self_ps, render: (f) => fmtTime(f.self_ps) },
        { key: "copy", label: "Copy time", title: "device↔host copies this fallback causes", num: true, value: (f) => f.copy_ps, render: (f) => fmtTime(f.copy_ps) },
        { key: "todo", label: "What to do", value: (f) => f.remedy?.title ?? "", render: (f) => remedyCell(f.remedy) },
      ], { sortKey: "self", pageSize: 25, testid: "fallback-table", rowAttrs: (f) => ({ "data-path": (f.path ?? [f.bucket ?? ""]).join("/"), "data-testid": "fallback-row" }), onRow: (f) => (f.path ? this.selectLayer(f.path, false, true) : f.bucket ? this.selectLayer([f.bucket], true, false) : undefined) });
      table.setRows(fbs);
      panel.append(h("p", { class: "note" }, "Layers with ops placed on the CPU while a GPU was present, the op types, why, and the copy time they cause. Click a row to see the layer's ops."), table.el);
    }
    const copies = p.copies ?? [];
    if (copies.length) {
      const total = copies.reduce((s, c) => s + c.ps, 0);
      panel.append(h("p", { class: "note" }, `Device copies: ${copies.reduce((s, c) => s + c.count, 0)} transfers, ${fmtTime(total)} in all (from _Send/_Recv and copy events).`));
    }
    return panel;
  }

  private selectLayer(path: string[], bucket: boolean, reveal: boolean): void {
    this.state.selected = { path, bucket };
    if (reveal) this.tree?.select(path);
    void this.showOps(path, bucket);
  }

  /** Until a layer is picked: a prompt, not every op (thousands of rows on big traces). */
  private opsPrompt(): void {
    const panel = this.opsPanel;
    if (!panel) return;
    clear(panel);
    panel.append(h("div", { class: "panel-head" }, h("h2", null, "Ops"),
      h("button", { "data-testid": "show-all-ops", onclick: () => void this.showOps(null, false) }, "show all ops")),
      h("p", { class: "empty" }, "Click a layer in the table, the chart or the fallback panel to see its ops."));
  }

  private async showOps(path: string[] | null, bucket: boolean): Promise<void> {
    const panel = this.opsPanel;
    const st = this.state;
    if (!panel || !st.session || !st.host) return;
    clear(panel);
    const title = path ? `Ops ${bucket ? "in" : "of"} ${pathLabel(path)}` : "All ops";
    panel.append(h("div", { class: "panel-head" }, h("h2", null, title),
      path ? h("button", { "data-testid": "show-all-ops", onclick: () => { this.state.selected = null; void this.showOps(null, false); } }, "show all ops") : null));
    const loadingMsg = h("p", { class: "muted" }, "loading ops…");
    const body = h("div", null, loadingMsg);
    panel.append(body);
    try {
      const data = await fetchOps(st.session, st.host, st.step, bucket ? null : path, bucket && path ? path[0] : null,
        (f, m) => { loadingMsg.textContent = `loading ops: ${m} (${Math.round(f * 100)}%)`; });
      if (panel !== this.opsPanel) return;
      clear(body);
      const table = new DataTable<OpRow>([
        { key: "name", label: "Op", value: (o) => o.name, render: (o) => h("span", { class: "op-name", title: o.name }, o.name) },
        { key: "type", label: "Type", value: (o) => o.type, render: (o) => h("code", null, o.type) },
        ...(path && !bucket ? [] : [{ key: "layer", label: "Layer", value: (o: OpRow) => pathLabel(o.layer) }]),
        { key: "phase", label: "Phase", value: (o) => o.phase ?? "" },
        { key: "device", label: "Device", value: (o) => o.device ?? "", render: (o) => h("span", { class: "dev-tag " + deviceClass(o.device ?? "") }, o.device ?? "?") },
        { key: "source", label: "Device source", value: (o) => o.device_source ?? "" },
        { key: "count", label: "Count", num: true, value: (o) => o.count },
        { key: "time", label: "Time", title: "the op's time as the layer tree counts it, on its clock", num: true, value: (o) => o.time_ps, render: (o) => fmtTime(o.time_ps) },
        { key: "clock", label: "Clock", title: "device timeline, GPU dispatch (host-side, no device timeline) or CPU (host)", value: (o) => o.clock, render: (o) => clockLabel(o.clock) },
        { key: "fb", label: "Fallback", value: (o) => (o.fallback ? String(o.fallback.reason_code ?? "yes") : ""), render: (o) => (o.fallback ? h("span", { class: "badge fallback", title: String(o.fallback.reason ?? "") }, String(o.fallback.reason_code ?? "CPU")) : "") },
      ], { sortKey: "time", pageSize: 50, testid: "ops-table", rowAttrs: (o) => ({ "data-testid": "op-row", "data-type": o.type }) });
      table.setRows(data.ops);
      body.append(h("p", { class: "note" }, "Each op's time in this selection, as the layer tree counts it, with its clock; device from ", h("em", null, "Device source"), " (recorded placement, device timeline or inferred)."), table.el);
    } catch (e) {
      clear(body);
      body.append(h("div", { class: "error-box" }, "Could not load ops: ", e instanceof Error ? e.message : String(e)));
    }
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
