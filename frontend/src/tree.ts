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

interface Col {
  key: SortKey;
  label: string;
  clock?: string; // second header line: the clock of the column's times
  title: string;
  width: string; // grid track
  min: number; // px, for the scroll width
  num: boolean;
  cell: (n: LayerNode, r: FlatRow) => HTMLElement;
}

export interface TreeOptions {
  phases: string[];
  devices: string[];
  clock: string; // what the times are ("host-side", "device", "CPU", ...): in the headers
  hasGpu: boolean;
  onSelect: (node: LayerNode, bucket: boolean) => void;
}

const HEADER_H = 40;

/** Why a share of the step can pass 100%: summed op time counts parallel threads twice. */
export const OVER_100 = "ops ran in parallel threads, so their summed time exceeds the wall-clock step time";

export class LayerTree {
  readonly el: HTMLElement;
  private header: HTMLElement;
  private body: HTMLElement;
  private inner: HTMLElement;
  private toggleEmpty: HTMLElement;
  private layers: LayerNode[] = [];
  private buckets: LayerNode[] = [];
  private flat: FlatRow[] = [];
  private expanded = new Set<string>();
  private sortKey: SortKey = "total";
  private sortDesc = true;
  private selected: string | null = null;
  private activeKey: string | null = null; // the tree's one Tab stop (roving tabindex)
  private cols: Col[] = [];
  private template = "";
  private frame = 0;
  private focusKey: string | null = null;
  private rendered: [number, number] = [-1, -1];
  private verdictOf: VerdictOf | null = null;
  private bucketNodes = new Set<LayerNode>();
  private showEmpty = false;

  constructor(private opts: TreeOptions) {
    this.header = h("div", { class: "tree-header tree-row", role: "row", "data-testid": "tree-header" });
    this.inner = h("div", { class: "tree-inner", role: "rowgroup" });
    // One scroll box for both axes: the header sticks to its top and the layer column to
    // its left, so labels stay over their columns whichever way it scrolls.
    this.body = h("div", { class: "tree-body", "data-testid": "layer-tree", role: "treegrid", "aria-label": "layers" }, this.header, this.inner);
    this.body.addEventListener("scroll", () => {
      if (this.frame) return;
      this.frame = requestAnimationFrame(() => { this.frame = 0; this.renderVisible(); });
    });
    this.body.addEventListener("focusin", (ev) => {
      const path = (ev.target as HTMLElement).dataset?.path;
      if (path !== undefined && (ev.target as HTMLElement).dataset.testid === "layer-row") this.activeKey = pathKey(path.split("/"));
    });
    this.toggleEmpty = h("label", { class: "empty-cols hidden", "data-testid": "toggle-empty-cols" });
    this.el = h("div", { class: "tree" }, this.body, this.toggleEmpty);
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
    this.activeKey = this.selected;
    this.refresh();
    const idx = this.flat.findIndex((r) => pathKey(r.node.path) === this.selected);
    if (idx >= 0) {
      const top = idx * ROW_H;
      const view = this.body.clientHeight - HEADER_H;
      if (top < this.body.scrollTop || top > this.body.scrollTop + view - ROW_H) {
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
    // Rows, the header and room for a horizontal scroll bar.
    this.body.style.height = `${Math.min(Math.max(this.flat.length, 3), 16) * ROW_H + HEADER_H + 16}px`;
    this.renderVisible(true);
  }

  /**
   * Whether a column has a non-zero value in any layer row: all-zero columns are hidden.
   * Buckets don't count: a bucket's phase is its name ("optimizer"), and its Self and
   * Total say its time already.
   */
  private used(get: (n: LayerNode) => number): boolean {
    const walk = (ns: LayerNode[]): boolean => ns.some((n) => get(n) !== 0 || walk(n.children ?? []));
    return walk(this.layers);
  }

  private allColumns(): { col: Col; used: boolean }[] {
    const clock = this.opts.clock;
    const dev0 = this.opts.devices[0] ?? "CPU";
    const num = (key: string, label: string, title: string, get: (n: LayerNode) => number, fmt: (n: LayerNode) => string, extra: Partial<Col> = {}) => ({
      col: { key, label, title, width: "minmax(72px,1fr)", min: 72, num: true, clock, cell: (n: LayerNode) => h("div", { class: "cell num", "data-col": key.replace(":", "-") }, fmt(n)), ...extra },
      used: this.used(get),
    });
    return [
      { col: { key: "name", label: "Layer", title: "Keras layer path; italic rows are time outside any layer", width: "minmax(200px,3fr)", min: 200, num: false, cell: (n, r) => this.nameCell(n, r) }, used: true },
      num("self", "Self", `time of ops directly in this layer, children excluded (${clock} time)`, (n) => n.self_ps, (n) => fmtTime(n.self_ps)),
      num("total", "Total", `time of this layer and its sublayers (${clock} time)`, (n) => n.total_ps, (n) => fmtTime(n.total_ps)),
      ...this.opts.phases.map((p) => num("phase:" + p, p, `total time in phase ${p} (${clock} time)`, (n) => n.phases?.[p as Phase] ?? 0, (n) => fmtTime(n.phases?.[p as Phase] ?? 0))),
      { col: { key: "dev:" + dev0, label: "Device split", clock, title: `time per device, ${clock} (bar); sorts by ${dev0} time`, width: "minmax(110px,1.4fr)", min: 110, num: false,
        cell: (n) => h("div", { class: "cell", "data-col": "split" }, splitBar(n.devices ?? {}, this.opts.devices, 0)) }, used: true },
      { col: { key: "share", label: "% step", title: "share of the wall-clock step time; summed op time can pass 100% when ops run in parallel threads", width: "64px", min: 64, num: true, cell: (n) => this.shareCell(n) }, used: true },
      { col: { key: "ops", label: "Ops", title: "op events attributed to this layer", width: "48px", min: 48, num: true, cell: (n) => h("div", { class: "cell num", "data-col": "ops" }, String(n.op_count ?? 0)) }, used: true },
      { col: { key: "fallbacks", label: "Fallback", title: "ops of this layer placed on the CPU although a GPU was present (measured)", width: "80px", min: 80, num: false, cell: (n) => h("div", { class: "cell", "data-col": "fallback" }, n.fallback_count > 0 ? h("span", { class: "badge fallback", title: `${n.fallback_count} op(s) of this layer ran on the CPU` }, `CPU ×${n.fallback_count}`) : "") },
        used: this.opts.hasGpu || this.used((n) => n.fallback_count ?? 0) },
      { col: { key: "metal", label: "Metal", clock: "PREDICTION", title: "PREDICTION: where this layer's ops would run with tensorflow-metal (see the Metal readiness panel); a parent sums its sublayers' fallback time; CPU time under the minor threshold is not red", width: "112px", min: 112, num: false, cell: (n, r) => this.verdictCell(n, r.bucket) }, used: true },
    ];
  }

  private renderHeader(): void {
    const all = this.allColumns();
    const hidden = all.filter((c) => !c.used);
    this.cols = all.filter((c) => c.used || this.showEmpty).map((c) => c.col);
    if (!this.cols.some((c) => c.key === this.sortKey)) { this.sortKey = "total"; this.sortDesc = true; }
    this.template = this.cols.map((c) => c.width).join(" ");
    const minWidth = `${this.cols.reduce((s, c) => s + c.min, 0)}px`;
    this.header.style.minWidth = minWidth;
    this.inner.style.minWidth = minWidth;
    clear(this.header);
    this.header.style.gridTemplateColumns = this.template;
    for (const c of this.cols) {
      const active = c.key === this.sortKey;
      const sort = () => {
        if (this.sortKey === c.key) this.sortDesc = !this.sortDesc;
        else { this.sortKey = c.key; this.sortDesc = c.key !== "name"; }
        this.refresh();
        (this.header.querySelector(`[data-key="${CSS.escape(c.key)}"]`) as HTMLElement | null)?.focus();
      };
      this.header.appendChild(
        h("div", {
          class: "cell th" + (active ? " sorted" : "") + (c.num ? " num" : "") + (c.key === "name" ? " name sticky" : ""),
          title: c.title + " (click to sort)",
          role: "columnheader",
          tabindex: 0,
          "data-key": c.key,
          "aria-sort": active ? (this.sortDesc ? "descending" : "ascending") : "none",
          onclick: sort,
          onkeydown: (ev: Event) => { const k = (ev as KeyboardEvent).key; if (k === "Enter" || k === " ") { ev.preventDefault(); sort(); } },
        }, h("span", { class: "th-label" }, c.label, active ? (this.sortDesc ? " ▾" : " ▴") : ""), c.clock ? h("span", { class: "th-clock" }, c.clock) : null),
      );
    }
    clear(this.toggleEmpty);
    this.toggleEmpty.classList.toggle("hidden", !hidden.length);
    if (hidden.length) {
      const cb = h("input", { type: "checkbox", checked: this.showEmpty }) as HTMLInputElement;
      cb.addEventListener("change", () => { this.showEmpty = cb.checked; this.refresh(); });
      this.toggleEmpty.append(cb, ` show ${hidden.length} column(s) that are zero for every layer (${hidden.map((c) => c.col.label).join(", ")})`);
    }
  }

  private renderVisible(force = false): void {
    const top = Math.max(0, this.body.scrollTop - HEADER_H);
    const height = this.body.clientHeight || 16 * ROW_H;
    const visStart = Math.floor(top / ROW_H);
    const visEnd = Math.min(this.flat.length, Math.ceil((top + height) / ROW_H));
    // Rows already rendered around the viewport cover small scrolls: re-render only when
    // the viewport leaves them, so most scroll frames do no DOM work at all.
    if (!force && visStart >= this.rendered[0] && visEnd <= this.rendered[1]) return;
    const start = Math.max(0, visStart - OVERSCAN);
    const end = Math.min(this.flat.length, visEnd + OVERSCAN);
    this.rendered = [start, end];
    const keys = this.flat.map((r) => pathKey(r.node.path));
    // The one Tab stop: the active row when it is rendered, else the first rendered row.
    if (this.activeKey === null || !keys.includes(this.activeKey)) this.activeKey = keys[0] ?? null;
    const tabStop = keys.slice(start, end).includes(this.activeKey ?? "") ? this.activeKey : keys[start];
    clear(this.inner);
    for (let i = start; i < end; i++) this.inner.appendChild(this.renderRow(this.flat[i], i, keys[i] === tabStop));
    if (this.focusKey !== null) {
      // Rows are re-created on render: give keyboard focus back to the same layer.
      const idx = keys.indexOf(this.focusKey);
      if (idx >= 0 && (idx < start || idx >= end)) {
        this.body.scrollTop = Math.max(0, (idx - 3) * ROW_H);
        this.renderVisible(true); // renders around the row, then focuses it
        return;
      }
      this.focusKey = null;
      const el = [...this.inner.children].find((c) => (c as HTMLElement).dataset.path === this.flat[idx]?.node.path.join("/")) as HTMLElement | undefined;
      el?.focus({ preventScroll: true });
      // Keep the focused row visible below the sticky header.
      if (el) {
        const rowTop = idx * ROW_H;
        const view = this.body.clientHeight - HEADER_H - 16;
        if (rowTop < this.body.scrollTop) this.body.scrollTop = rowTop;
        else if (rowTop + ROW_H > this.body.scrollTop + view) this.body.scrollTop = rowTop + ROW_H - view;
      }
    }
  }

  private nameCell(n: LayerNode, r: FlatRow): HTMLElement {
    const key = pathKey(n.path);
    const open = this.expanded.has(key);
    const toggle = r.hasChildren
      ? h("button", {
          class: "toggle", "aria-label": open ? "collapse" : "expand", "aria-expanded": String(open), tabindex: -1,
          onclick: (ev: Event) => {
            ev.stopPropagation();
            if (open) this.expanded.delete(key); else this.expanded.add(key);
            this.refresh();
          },
        }, open ? "▾" : "▸")
      : h("span", { class: "toggle-spacer" });
    return h("div", { class: "cell name sticky", style: `padding-left:${6 + r.depth * 16}px`, title: n.path.join(" / ") },
      toggle,
      h("span", { class: "layer-name" }, n.name),
      n.class ? h("span", { class: "layer-class" }, n.class) : null,
    );
  }

  private shareCell(n: LayerNode): HTMLElement {
    const share = n.step_share ?? n.share;
    const over = (n.step_share ?? 0) > 1;
    return h("div", { class: "cell num" + (over ? " over-100" : ""), "data-col": "share", title: over ? `${fmtPct(share)} of the step, more than 100%: ${OVER_100}; ${fmtPct(n.share)} of op time` : `${fmtPct(share)} of step time, ${fmtPct(n.share)} of op time` },
      fmtPct(share), over ? h("sup", { "data-testid": "over-100" }, "‖") : null);
  }

  /** Move keyboard focus to row `idx` of the flat list (clamped). */
  private focusRow(idx: number): void {
    const i = Math.max(0, Math.min(this.flat.length - 1, idx));
    this.focusKey = pathKey(this.flat[i].node.path);
    this.activeKey = this.focusKey;
  }

  private renderRow(r: FlatRow, i: number, tabStop: boolean): HTMLElement {
    const n = r.node;
    const key = pathKey(n.path);
    const open = this.expanded.has(key);
    return h("div", {
      class: "tree-row" + (r.bucket ? " bucket" : "") + (key === this.selected ? " selected" : "") + (n.fallback_count > 0 ? " has-fallback" : ""),
      style: `top:${i * ROW_H}px;grid-template-columns:${this.template}`,
      role: "row",
      tabindex: tabStop ? 0 : -1,
      "aria-level": r.depth + 1,
      "aria-expanded": r.hasChildren ? String(open) : null,
      "aria-selected": String(key === this.selected),
      "data-path": n.path.join("/"),
      "data-testid": "layer-row",
      onclick: () => {
        this.selected = key;
        this.activeKey = key;
        this.renderVisible(true);
        this.opts.onSelect(n, r.bucket);
      },
      // Keyboard (WAI-ARIA treegrid): Enter/Space select; Up/Down/Home/End move; Right
      // opens or steps into the first child; Left closes or steps out to the parent.
      onkeydown: (ev: Event) => {
        const k = (ev as KeyboardEvent).key;
        if (k === "Enter" || k === " ") { this.selected = key; this.focusKey = key; this.opts.onSelect(n, r.bucket); }
        else if (k === "ArrowDown" || k === "ArrowUp") this.focusRow(i + (k === "ArrowDown" ? 1 : -1));
        else if (k === "Home") this.focusRow(0);
        else if (k === "End") this.focusRow(this.flat.length - 1);
        else if (k === "ArrowRight" && r.hasChildren && !open) { this.expanded.add(key); this.focusKey = key; }
        else if (k === "ArrowRight" && r.hasChildren) this.focusRow(i + 1);
        else if (k === "ArrowLeft" && r.hasChildren && open) { this.expanded.delete(key); this.focusKey = key; }
        else if (k === "ArrowLeft" && n.path.length > 1 && !r.bucket) { this.focusKey = pathKey(n.path.slice(0, -1)); this.activeKey = this.focusKey; }
        else if (k === "ArrowRight" || k === "ArrowLeft") return ev.preventDefault();
        else return;
        ev.preventDefault();
        this.refresh();
      },
    }, ...this.cols.map((c) => c.cell(n, r)));
  }

  private verdictCell(n: LayerNode, bucket: boolean): HTMLElement {
    const v = this.verdictOf?.(n, bucket) ?? null;
    return h("div", { class: "cell", "data-col": "metal" }, v ? verdictBadge(v.verdict, v.title) : this.verdictOf ? "–" : "");
  }
}
