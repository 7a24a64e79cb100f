// The all-hosts view (host picker "all hosts"): per layer the sum over hosts, the mean per
// host and the slowest host, from /layers?host=all. Each host's own view stays one pick away.
import { getJson, stepParam, type Progress } from "./api";
import { h } from "./dom";
import { fmtTime, pathLabel } from "./format";
import type { HostsLayersPayload, Step } from "./types";

export const ALL_HOSTS = "all";

export function fetchAllHosts(session: string, step: Step, progress?: Progress, signal?: AbortSignal): Promise<HostsLayersPayload> {
  const q = new URLSearchParams({ session, host: ALL_HOSTS, step: stepParam(step) });
  return getJson<HostsLayersPayload>("./layers?" + q.toString(), progress, signal);
}

export function allHostsView(p: HostsLayersPayload): HTMLElement {
  const t = p.total;
  const rows = p.layers.map((r) =>
    h("tr", null,
      h("td", null, (r.bucket ? "[bucket] " : "") + pathLabel(r.path)),
      h("td", { class: "num" }, fmtTime(r.sum_ps)),
      h("td", { class: "num" }, fmtTime(r.mean_ps)),
      h("td", null, r.slowest_host ?? "–"),
      h("td", { class: "num" }, fmtTime(r.max_ps))));
  return h("section", { "data-testid": "all-hosts" },
    h("p", { class: "note" },
      `${p.hosts.length} hosts: all hosts ${fmtTime(t.sum_ps)}, mean per host ${fmtTime(t.mean_ps)}, slowest ${t.slowest_host ?? "–"} (${fmtTime(t.max_ps)}). ` +
      "Pick a host above for its own breakdown, ops and readiness."),
    ...p.host_errors.map((e) => h("p", { class: "note error" }, `${e.host} not loaded: ${e.message}`)),
    h("table", { class: "data-table" },
      h("thead", null, h("tr", null, ...["Layer", "Sum", "Mean / host", "Slowest host", "Its time"].map((c) => h("th", null, c)))),
      h("tbody", null, ...rows)));
}
