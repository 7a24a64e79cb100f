// The verdict strip on top of the tab: which layers are slowest, which fell back to the CPU
// (measured on a GPU run, else predicted for tensorflow-metal and labelled so), and the
// doctor's verdict on the recorded set-up. Every layer is a link to its ops.
import { topLayers } from "./chart";
import { append, clear, h } from "./dom";
import { fmtPct, fmtTime, pathLabel } from "./format";
import { layerFallbacks } from "./groups";
import type { LayersPayload, ReadinessPayload } from "./types";

export type SelectFn = (path: string[], bucket: boolean) => void;

/** One line of the strip: a link to the layer's ops, its time, share and op types. */
function item(path: string[], bucket: boolean, ps: number, share: string, types: string[], onSelect: SelectFn, testid: string): HTMLElement {
  return h("li", { "data-testid": testid, "data-path": path.join("/"), "data-ps": String(ps) },
    h("button", { class: "link", title: `show the ops of ${pathLabel(path)}`, onclick: () => onSelect(path, bucket) }, bucket ? `${path[0]} (outside any layer)` : pathLabel(path)),
    " ", h("span", { class: "figs" }, fmtTime(ps), " · ", share),
    types.length ? [" ", ...types.slice(0, 4).flatMap((t, i) => [i ? " " : "", h("code", null, t)]), types.length > 4 ? ` +${types.length - 4}` : ""] : null);
}

export class VerdictStrip {
  readonly el: HTMLElement;
  private fallbackBox: HTMLElement;
  private doctorBox: HTMLElement;

  constructor(private p: LayersPayload, private clock: string, private onSelect: SelectFn) {
    this.el = h("section", { class: "verdict-strip", "data-testid": "verdict-strip", "aria-label": "verdict" });
    this.fallbackBox = h("div", { class: "verdict-box", "data-testid": "verdict-fallbacks" });
    this.doctorBox = h("div", { class: "verdict-box", "data-testid": "verdict-doctor" });
    this.el.append(this.slowest(), this.fallbackBox, this.doctorBox);
    this.renderFallbacks(null, true);
    this.renderDoctor(null, true);
  }

  private slowest(): HTMLElement {
    const top = topLayers(this.p.layers, 3);
    const box = h("div", { class: "verdict-box", "data-testid": "verdict-slowest" },
      h("h3", null, "Slowest layers ", h("span", { class: "h3-sub" }, `${this.clock} time · % of step`)));
    if (!top.length) box.append(h("p", { class: "empty" }, "No layer time in this selection."));
    else box.append(h("ol", null, ...top.map((n) => item(n.path, false, n.total_ps, fmtPct(n.step_share ?? n.share), [], this.onSelect, "verdict-slow"))));
    return box;
  }

  /** Call with the readiness payload once it arrives (null while loading or on error). */
  setReadiness(r: ReadinessPayload | null, loading = false): void {
    this.renderFallbacks(r, loading);
    this.renderDoctor(r, loading);
  }

  private renderFallbacks(r: ReadinessPayload | null, loading: boolean): void {
    const box = this.fallbackBox;
    clear(box);
    const p = this.p;
    if (p.has_gpu) {
      // Measured: the run had a GPU and recorded where each op ran.
      const groups = layerFallbacks(p);
      box.className = "verdict-box " + (groups.length ? "bad" : "ok");
      box.dataset.kind = "measured";
      box.append(h("h3", null, "Fell back to the CPU ", h("span", { class: "h3-sub" }, "measured · % of op time")));
      if (!groups.length) box.append(h("p", null, "None: every op of every layer ran on the GPU."));
      else append(box, [h("ul", null, ...groups.slice(0, 4).map((g) => item(g.path ?? [g.bucket ?? ""], !g.path, g.self_ps, p.total_ps ? fmtPct(g.self_ps / p.total_ps) : "–", g.opTypes, this.onSelect, "verdict-fallback"))),
        groups.length > 4 ? h("p", { class: "muted" }, `+${groups.length - 4} more in the CPU fallbacks panel`) : null]);
      return;
    }
    // No GPU in this run: what tensorflow-metal would do is a prediction, and says so.
    box.dataset.kind = "predicted";
    box.append(h("h3", null, h("span", { class: "badge prediction" }, "PREDICTION"), " Would fall back on Metal ", h("span", { class: "h3-sub" }, `${r ? `tensorflow-metal ${r.metal_version} · ` : ""}% of op time`)));
    if (!r) {
      box.className = "verdict-box";
      box.append(h("p", { class: "muted" }, loading ? "predicting Metal placement…" : "no prediction (see the Metal readiness panel)"));
      return;
    }
    const rows = [...r.layers, ...(r.buckets ?? [])].filter((g) => g.verdict === "cpu_fallback").sort((a, b) => b.fallback_ps - a.fallback_ps);
    box.className = "verdict-box " + (rows.length ? "bad" : "ok");
    if (!rows.length) box.append(h("p", null, "None predicted: every layer's ops have Metal kernels (CPU-only work aside)."));
    else append(box, [h("ul", null, ...rows.slice(0, 4).map((g) => item(g.layer ?? [g.bucket ?? ""], !g.layer, g.fallback_ps, r.total_ps ? fmtPct(g.fallback_ps / r.total_ps) : "–", g.fallback_op_types, this.onSelect, "verdict-fallback"))),
      rows.length > 4 ? h("p", { class: "muted" }, `+${rows.length - 4} more in the Metal readiness panel`) : null]);
  }

  private renderDoctor(r: ReadinessPayload | null, loading: boolean): void {
    const box = this.doctorBox;
    clear(box);
    box.append(h("h3", null, "Set-up (tb-metal doctor)"));
    const d = r?.environment_doctor ?? null;
    if (!d) {
      box.className = "verdict-box";
      box.dataset.status = "none";
      box.append(h("p", { class: "muted" }, loading ? "…" : "Not recorded: MetalProfileCallback records the environment, and `tb-metal doctor` checks the one you run."));
      return;
    }
    box.dataset.status = d.status;
    box.className = "verdict-box " + (d.status === "broken" ? "broken" : d.status === "warning" ? "bad" : "ok");
    const fixes = [...new Set(d.checks.filter((c) => (c.status === "broken" || c.status === "warning") && c.fix).map((c) => c.fix as string))];
    append(box, [h("p", null, h("strong", null, d.status === "ok" ? "OK: " : d.status === "not_applicable" ? "" : d.status.toUpperCase() + ": "), d.summary),
      fixes.length ? h("p", null, "Fix: ", ...fixes.slice(0, 2).flatMap((f, i) => [i ? "; " : "", h("code", null, f)])) : null]);
  }
}
