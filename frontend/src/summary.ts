// The breakdown's summary cards, closing notes and the link to the trace viewer.
import { describeAttribution, describeTimeline, sumSources } from "./describe";
import { h } from "./dom";
import { fmtPct, fmtTime } from "./format";
import { OVER_100 } from "./tree";
import type { LayersPayload } from "./types";

function card(label: string, value: string, testid: string, hint: string | null = null): HTMLElement {
  return h("div", { class: "card", "data-testid": "card-" + testid, title: hint }, h("div", { class: "card-label" }, label), h("div", { class: "card-value" }, value, hint ? h("sup", { class: "over-100" }, " ‖") : null));
}

/** Step time, op time (on its clock), steps, devices and the fallback count. */
export function summaryCards(p: LayersPayload, clock: string, hasGpu: boolean, devices: string[]): HTMLElement {
  const fallbackTypes = new Set((p.fallbacks ?? []).map((f) => f.op_type)).size;
  const fallbackLayers = (p.fallback_layers ?? []).length;
  const over = p.step_time_ps > 0 && p.total_ps > p.step_time_ps;
  return h("section", { class: "summary", "data-testid": "summary" },
    card(p.step === "avg" ? "Step time (avg, wall)" : p.step === null || p.step === "all" ? "Time of profiled steps (wall)" : `Step ${p.step} (wall)`, fmtTime(p.step_time_ps), "step-time"),
    card(`Op time (${clock})`, fmtTime(p.total_ps), "total-time", over ? `${fmtPct(p.total_ps / p.step_time_ps)} of the step: ${OVER_100}` : null),
    card("Steps", p.steps.length ? `${p.steps.length} (${p.steps[0]}–${p.steps[p.steps.length - 1]})` : "–", "steps"),
    card("Devices", (p.devices?.length ? p.devices : devices).join(", ") || "CPU", "devices"),
    card("CPU fallbacks", fallbackTypes ? `${fallbackTypes} op type(s) in ${fallbackLayers} layer(s)` : hasGpu ? "none" : "no GPU in this run", "fallback-count"),
  );
}

/** What the times measure, where layers and devices came from (with measured accuracy), the file. */
export function notesPanel(p: LayersPayload): HTMLElement {
  return h("div", { class: "notes" },
    h("p", { class: "note", "data-testid": "note-time" }, describeTimeline(p)),
    h("p", { class: "note", "data-testid": "note-attribution" }, describeAttribution(p.attribution_source, p.attribution_accuracy), " ", sumSources(p)),
    p.file ? h("p", { class: "note muted" }, "File: ", h("code", null, p.file), p.load_s ? ` (read in ${p.load_s.toFixed(2)} s)` : "", p.cached ? " — shown from the cache of an earlier TensorBoard session while the trace reloads for op details" : "") : null);
}

/** A link that opens the session in the standard Profile tab's trace viewer. */
export function traceViewerLink(run: string | null, host: string | null): HTMLElement {
  // The Profile tab reads run/tool/host from the top window's query string.
  let href = "#";
  try {
    const top = window.top ?? window;
    const q = `?run=${encodeURIComponent(run ?? "")}&tool=trace_viewer@&host=${encodeURIComponent(host ?? "")}`;
    href = top.location.origin + top.location.pathname + q + "#profile";
  } catch {
    href = "#";
  }
  return h("a", { class: "button-link", href, target: "_top", "data-testid": "trace-viewer-link", title: "open this session in the Profile tab's trace viewer (needs tensorboard-plugin-profile)" }, "Open in trace viewer ↗");
}
