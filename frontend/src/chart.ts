// Top layers by time, stacked by device or by phase (Chart.js, bundled; no CDN).
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from "chart.js";
import { h } from "./dom";
import { fmtTime } from "./format";
import type { LayerNode } from "./types";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);

const DEVICE_COLORS: Record<string, string> = { GPU: "#2e7d32", CPU: "#ef6c00" };
const PHASE_COLORS = ["#1565c0", "#8e24aa", "#00897b", "#c62828", "#6d4c41", "#546e7a", "#f9a825"];

export type StackBy = "device" | "phase";

/** Leaves-first list of layers; a parent appears only with the time its children don't cover. */
export function topLayers(layers: LayerNode[], n: number): LayerNode[] {
  const all: LayerNode[] = [];
  const walk = (ns: LayerNode[]) => ns.forEach((x) => { all.push(x); walk(x.children ?? []); });
  walk(layers);
  // Leaf layers carry their own ops; ranking by total time would list each model root
  // first and count every op once per ancestor.
  const leaves = all.filter((x) => !(x.children?.length));
  return leaves.sort((a, b) => b.total_ps - a.total_ps).slice(0, n).filter((x) => x.total_ps > 0);
}

export class TopChart {
  readonly el: HTMLElement;
  private canvas: HTMLCanvasElement;
  private chart: Chart | null = null;

  constructor() {
    this.canvas = h("canvas", { "data-testid": "top-chart", "aria-label": "top layers chart", role: "img" });
    this.el = h("div", { class: "chart-box" }, this.canvas);
  }

  update(nodes: LayerNode[], stackBy: StackBy, devices: string[], onClick: (n: LayerNode) => void): void {
    const keys = new Set<string>(stackBy === "device" ? devices : []);
    for (const n of nodes) for (const k of Object.keys((stackBy === "device" ? n.devices : n.phases) ?? {})) keys.add(k);
    const labels = nodes.map((n) => (n.path.length > 2 ? "… / " : "") + n.path.slice(-2).join(" / "));
    const datasets = [...keys].map((k, i) => ({
      label: k,
      data: nodes.map((n) => ((stackBy === "device" ? n.devices : (n.phases as Record<string, number>))?.[k] ?? 0) / 1e9),
      backgroundColor: stackBy === "device" ? DEVICE_COLORS[k] ?? "#9e9e9e" : PHASE_COLORS[i % PHASE_COLORS.length],
      stack: "t",
    }));
    this.el.style.height = `${Math.max(120, 34 * nodes.length + 60)}px`;
    // A canvas is opaque to screen readers (and to tests): describe what is drawn.
    this.canvas.setAttribute("aria-label", "Top layers by time: " + nodes.map((n) => `${n.path.join("/")} ${fmtTime(n.total_ps)}`).join(", "));
    this.canvas.dataset.values = JSON.stringify(nodes.map((n, j) => ({ path: n.path, total_ps: n.total_ps, parts: Object.fromEntries(datasets.map((d) => [d.label, Math.round(d.data[j] * 1e9)])) })));
    this.chart?.destroy();
    this.chart = new Chart(this.canvas, {
      type: "bar",
      data: { labels, datasets },
      options: {
        indexAxis: "y",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { stacked: true, title: { display: true, text: "ms" }, beginAtZero: true },
          y: { stacked: true, ticks: { autoSkip: false } },
        },
        plugins: {
          legend: { position: "top" },
          tooltip: {
            callbacks: {
              title: (items) => nodes[items[0].dataIndex].path.join(" / "),
              label: (item) => `${item.dataset.label}: ${fmtTime((item.raw as number) * 1e9)}`,
            },
          },
        },
        onClick: (_e, els) => { if (els.length) onClick(nodes[els[0].index]); },
      },
    });
  }

  destroy(): void {
    this.chart?.destroy();
    this.chart = null;
  }
}
