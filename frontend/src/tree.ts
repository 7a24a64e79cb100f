// Expandable, sortable layer tree with virtualized rows: only the rows in view exist in
// the DOM, so trees with thousands of layers scroll smoothly.
import { clear, h } from "./dom";
import { fmtPct, fmtTime, pathKey } from "./format";
import { verdictBadge, type VerdictCell } from "./readiness";
import type { LayerNode, Phase } from "./types";

const ROW_H = 28;
const OVERSCAN = 20;

type SortKey = string; // "name" | "self" | "total" | "share" | "ops" | "fallbacks" | "metal" | "phase:<p>" | "dev:<d>"

export type VerdictOf = (node: LayerNode, bucket: boolean) => VerdictCell | null;

interface FlatRow {
  node: LayerNode;
  depth: number;
  bucket: boolean;
  hasChildren: boolean;
}

export interface TreeOptions {
  phases: string[];
  devices: string[];
  onSelect: (node: LayerNode, bucket: boolean) => void;
}

export function deviceClass(device: string): string {
  const d = device.toUpperCase();
  if (d.includes("GPU")) return "dev-gpu";
  if (d.includes("CPU")) return "dev-cpu";
  return "dev-other";
}

export function splitBar(devices: Record<string, number>, order: string[], total: number): HTMLElement {
  const bar = h("div", { class: "split-bar" });
  const keys = [...order, ...Object.keys(devices).filter((d) => !order.includes(d))];
  const sum = total > 0 ? total : keys.reduce((s, k) => s + (devices[k] ?? 0), 0);
  const title: string[] = [];
  for (const k of keys) {
    const v = devices[k] ?? 0;
    if (v <= 0 || sum <= 0) continue;
    bar.appendChild(h("span", { class: "seg " + deviceClass(k), style: `width:${((100 * v) / sum).toFixed(2)}%` }));
    title.push(`${k}: ${fmtTime(v)} (${fmtPct(v / sum)})`);
  }
  bar.title = title.join("\n") || "no device time";
  return bar;
}

export class LayerTree {
  readonly el: HTMLElement;
  private header: HTMLElement;
  private body: HTMLElement;
  private inner: HTMLElement;
  private layers: LayerNode[] = [];
  private buckets: LayerNode[] = [];
  private flat: FlatRow[] = [];
  private expanded = new Set<string>();
  private sortKey: SortKey = "total";
  private sortDesc = true;
  private selected: string | null = null;
  private template = "";
  private frame = 0;
  private focusKey: string | null = null;
  private rendered: [number, number] = [-1, -1];
  private verdictOf: VerdictOf | null = null;
  private bucketNodes = new Set<LayerNode>();

  constructor(private opts: TreeOptions) {
    this.header = h("div", { class: "tree-header tree-row" });
    this.inner = h("div", { class: "tree-inner" });
    this.body = h("div", { class: "tree-body", "data-testid": "layer-tree" }, this.inner);
    // Coalesce scroll events to one render per frame, and skip it when the visible range
    // did not change.
    this.body.addEventListener("scroll", () => {
      if (this.frame) return;
      this.frame = requestAnimationFrame(() => { this.frame = 0; this.renderVisible(); });
    });
    this.el = h("div", { class: "tree" }, this.header, this.body);
  }

  setData(layers: LayerNode[], buckets: LayerNode[]): void {
    this.layers = layers;
    this.buckets = buckets;
    // Open the model roots so the first view shows its layers, not one line per model.
    if (this.expanded.size === 0) for (const n of layers) this.expanded.add(pathKey(n.path));
    this.refresh();
  }

  select(path: string[]): void {
    // Reveal the row: expand every ancestor, then scroll it into view.
    for (let i = 1; i < path.length; i++) this.expanded.add(pathKey(path.slice(0, i)));
    this.selected = pathKey(path);
    this.refresh();
    const idx = this.flat.findIndex((r) => pathKey(r.node.path) === this.selected);
    if (idx >= 0) {
      const top = idx * ROW_H;
      if (top < this.body.scrollTop || top > this.body.scrollTop + this.body.clientHeight - ROW_H) {
        this.body.scrollTop = Math.max(0, top - 3 * ROW_H);
      }
      this.renderVisible(true);
    }
  }

  /** The "Metal (predicted)" column: a verdict per row, or null while none is known. */
  setReadiness(verdictOf: VerdictOf | null): void {
    this.verdictOf = verdictOf;
    this.refresh();
  }

  expandAll(open: boolean): void {
    this.expanded.clear();
    if (open) {
      const walk = (ns: LayerNode[]) => ns.forEach((n) => { if (n.children?.length) { this.expanded.add(pathKey(n.path)); walk(n.children); } });
      walk(this.layers);
    }
    this.refresh();
  }

  private value(n: LayerNode, key: SortKey): number | string {
    switch (key) {
      case "name": return n.name.toLowerCase();
      case "self": return n.self_ps;
      case "total": return n.total_ps;
      case "share": return n.step_share ?? n.share ?? 0;
      case "ops": return n.op_count ?? 0;
      case "fallbacks": return n.fallback_count ?? 0;
      case "metal": return this.verdictOf?.(n, this.bucketNodes.has(n))?.rank ?? 0;
      default:
        if (key.startsWith("phase:")) return n.phases?.[key.slice(6) as Phase] ?? 0;
        if (key.startsWith("dev:")) return n.devices?.[key.slice(4)] ?? 0;
        return 0;
    }
  }

  private sorted(ns: LayerNode[]): LayerNode[] {
    const dir = this.sortDesc ? -1 : 1;
    return [...ns].sort((a, b) => {
      const va = this.value(a, this.sortKey), vb = this.value(b, this.sortKey);
      return va < vb ? -dir : va > vb ? dir : 0;
    });
  }

  private refresh(): void {
    this.flat = [];
    const walk = (ns: LayerNode[], depth: number, bucket: boolean) => {
      for (const n of this.sorted(ns)) {
        const kids = n.children ?? [];
        this.flat.push({ node: n, depth, bucket, hasChildren: kids.length > 0 });
        if (kids.length && this.expanded.has(pathKey(n.path))) walk(kids, depth + 1, bucket);
      }
    };
    this.bucketNodes = new Set(this.buckets);
    walk(this.layers, 0, false);
    walk(this.buckets, 0, true);
    this.renderHeader();
    this.inner.style.height = `${this.flat.length * ROW_H}px`;
    this.body.style.height = `${Math.min(Math.max(this.flat.length, 3), 18) * ROW_H + 2}px`;
    this.renderVisible(true);
  }

  private columns(): { key: SortKey; label: string; title: string }[] {
    return [
      { key: "name", label: "Layer", title: "Keras layer path; italic rows are time outside any layer" },
      { key: "self", label: "Self", title: "time of ops directly in this layer, children excluded" },
      { key: "total", label: "Total", title: "time of this layer and its sublayers" },
      ...this.opts.phases.map((p) => ({ key: "phase:" + p, label: p, title: `total time in phase ${p}` })),
      { key: "dev:" + (this.opts.devices[0] ?? "CPU"), label: this.opts.devices.join(" / ") + " split", title: `time per device (bar); sorts by ${this.opts.devices[0] ?? "CPU"} time` },
      { key: "share", label: "% step", title: "share of the step time (hover a cell for the share of op time)" },
      { key: "ops", label: "Ops", title: "op events attributed to this layer" },
      { key: "fallbacks", label: "Fallback", title: "ops of this layer placed on the CPU although a GPU was present" },
      { key: "metal", label: "Metal (predicted)", title: "PREDICTION: where this layer's ops would run with tensorflow-metal (see the Metal readiness panel); a parent sums its sublayers' fallback time; CPU time under the minor threshold is not red" },
    ];
  }

  private renderHeader(): void {
    const cols = this.columns();
    this.template = `minmax(240px,3fr) repeat(${2 + this.opts.phases.length}, minmax(70px,1fr)) minmax(120px,1.4fr) 64px 56px 96px 118px`;
    clear(this.header);
    this.header.style.gridTemplateColumns = this.template;
    for (const c of cols) {
      const active = c.key === this.sortKey;
      this.header.appendChild(
        h("div", {
          class: "cell th" + (active ? " sorted" : "") + (c.key === "name" ? "" : " num"),
          title: c.title + " (click to sort)",
          role: "columnheader",
          "aria-sort": active ? (this.sortDesc ? "descending" : "ascending") : "none",
          onclick: () => {
            if (this.sortKey === c.key) this.sortDesc = !this.sortDesc;
            else { this.sortKey = c.key; this.sortDesc = c.key !== "name"; }
            this.refresh();
          },
        }, c.label, active ? (this.sortDesc ? " ▾" : " ▴") : ""),
      );
    }
  }

  private renderVisible(force = false): void {
    const top = this.body.scrollTop;
    const height = this.body.clientHeight || 18 * ROW_H;
    const visStart = Math.floor(top / ROW_H);
    const visEnd = Math.min(this.flat.length, Math.ceil((top + height) / ROW_H));
    // Rows already rendered around the viewport cover small scrolls: re-render only when
    // the viewport leaves them, so most scroll frames do no DOM work at all.
    if (!force && visStart >= this.rendered[0] && visEnd <= this.rendered[1]) return;
    const start = Math.max(0, visStart - OVERSCAN);
    const end = Math.min(this.flat.length, visEnd + OVERSCAN);
    this.rendered = [start, end];
    clear(this.inner);
    for (let i = start; i < end; i++) this.inner.appendChild(this.renderRow(this.flat[i], i));
    if (this.focusKey !== null) {
      // Rows are re-created on render: give keyboard focus back to the same layer.
      const idx = this.flat.findIndex((r) => pathKey(r.node.path) === this.focusKey);
      if (idx >= 0 && (idx < start || idx >= end)) {
        this.body.scrollTop = Math.max(0, (idx - 3) * ROW_H);
        this.renderVisible(true); // renders around the row, then focuses it
        return;
      }
      const el = [...this.inner.children].find((c) => (c as HTMLElement).dataset.path === this.flat[idx]?.node.path.join("/"));
      this.focusKey = null;
      (el as HTMLElement | undefined)?.focus();
    }
  }

  private renderRow(r: FlatRow, i: number): HTMLElement {
    const n = r.node;
    const key = pathKey(n.path);
    const open = this.expanded.has(key);
    const toggle = r.hasChildren
      ? h("button", {
          class: "toggle", "aria-label": open ? "collapse" : "expand", "aria-expanded": String(open),
          onclick: (ev: Event) => {
            ev.stopPropagation();
            if (open) this.expanded.delete(key); else this.expanded.add(key);
            this.refresh();
          },
        }, open ? "▾" : "▸")
      : h("span", { class: "toggle-spacer" });
    const nameCell = h("div", { class: "cell name", style: `padding-left:${6 + r.depth * 16}px`, title: n.path.join(" / ") },
      toggle,
      h("span", { class: "layer-name" }, n.name),
      n.class ? h("span", { class: "layer-class" }, n.class) : null,
    );
    const fb = n.fallback_count > 0
      ? h("span", { class: "badge fallback", title: `${n.fallback_count} op(s) of this layer ran on the CPU` }, `CPU ×${n.fallback_count}`)
      : "";
    const row = h("div", {
      class: "tree-row" + (r.bucket ? " bucket" : "") + (key === this.selected ? " selected" : "") + (n.fallback_count > 0 ? " has-fallback" : ""),
      style: `top:${i * ROW_H}px;grid-template-columns:${this.template}`,
      role: "row",
      tabindex: 0,
      "aria-level": r.depth + 1,
      "aria-expanded": r.hasChildren ? String(open) : null,
      "data-path": n.path.join("/"),
      "data-testid": "layer-row",
      onclick: () => {
        this.selected = key;
        this.renderVisible(true);
        this.opts.onSelect(n, r.bucket);
      },
      // Keyboard: Enter selects, arrows expand/collapse and move between rows.
      onkeydown: (ev: Event) => {
        const k = (ev as KeyboardEvent).key;
        if (k === "Enter" || k === " ") { this.selected = key; this.opts.onSelect(n, r.bucket); }
        else if (k === "ArrowRight" && r.hasChildren && !open) this.expanded.add(key);
        else if (k === "ArrowLeft" && open) this.expanded.delete(key);
        else if (k === "ArrowDown" || k === "ArrowUp") this.focusKey = pathKey(this.flat[Math.max(0, Math.min(this.flat.length - 1, i + (k === "ArrowDown" ? 1 : -1)))].node.path);
        else return;
        ev.preventDefault();
        if (k !== "ArrowDown" && k !== "ArrowUp") this.focusKey = key;
        this.refresh();
      },
    },
      nameCell,
      h("div", { class: "cell num", "data-col": "self" }, fmtTime(n.self_ps)),
      h("div", { class: "cell num", "data-col": "total" }, fmtTime(n.total_ps)),
      ...this.opts.phases.map((p) => h("div", { class: "cell num", "data-col": "phase-" + p }, fmtTime(n.phases?.[p as Phase] ?? 0))),
      h("div", { class: "cell" }, splitBar(n.devices ?? {}, this.opts.devices, 0)),
      h("div", { class: "cell num", "data-col": "share", title: `${fmtPct(n.step_share ?? n.share)} of step time, ${fmtPct(n.share)} of op time` }, fmtPct(n.step_share ?? n.share)),
      h("div", { class: "cell num" }, String(n.op_count ?? 0)),
      h("div", { class: "cell" }, fb),
      this.verdictCell(n, r.bucket),
    );
    return row;
  }

  private verdictCell(n: LayerNode, bucket: boolean): HTMLElement {
    const v = this.verdictOf?.(n, bucket) ?? null;
    return h("div", { class: "cell", "data-col": "metal" }, v ? verdictBadge(v.verdict, v.title) : this.verdictOf ? "–" : "");
  }
}
