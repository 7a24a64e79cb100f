// The tab's view in the URL: run, host, step, layer, view and compare set.
//
// Checked in Chromium with TensorBoard 2.21: TensorBoard re-creates the plugin's iframe
// from a fixed src on reload, so the iframe's own URL is lost then; it keeps unknown query
// parameters of its top window through reloads, but its router rewrites the top URL on
// back/forward, dropping them. So each change is pushed as a history entry of the iframe
// (its hash: back/forward walk them and fire `popstate` in the iframe, TensorBoard sees
// nothing), and mirrored into `tbm_*` query parameters of the top window with
// replaceState, which a reload reads back. Outside an iframe, the page's own query is used.
import type { Step } from "./types";

export interface UrlState {
  run: string | null; // session name, "run/session"
  host: string | null;
  step: Step;
  layer: string[] | null; // a layer path, or [bucket] when `bucket`
  bucket: boolean;
  view: "breakdown" | "compare";
  compare: { session: string; host: string }[]; // baseline first
}

const PREFIX = "tbm_";
const KEYS = ["run", "host", "step", "layer", "bucket", "view", "cmp"];

/** The window whose query mirrors the state: TensorBoard's top window when reachable. */
export function hostWindow(): Window {
  try {
    const top = window.top;
    if (top && top !== window) {
      void top.location.href; // throws when cross-origin
      return top;
    }
  } catch {
    // A cross-origin embedder: fall back to the iframe's own URL.
  }
  return window;
}

function parseStep(raw: string | null): Step {
  if (raw === null || raw === "all") return null;
  if (raw === "avg") return "avg";
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

function framed(): boolean {
  return hostWindow() !== window;
}

/** The state the URL asks for (fields absent from it are null / defaults). */
export function readUrl(): UrlState {
  // The iframe's own entry first (back/forward), else the top window's mirror (a reload).
  const own = window.location.hash.slice(1);
  const q = new URLSearchParams(framed() && own.includes(PREFIX) ? own : hostWindow().location.search);
  const get = (k: string) => q.get(PREFIX + k);
  let compare: UrlState["compare"] = [];
  try {
    const raw = JSON.parse(get("cmp") ?? "[]");
    if (Array.isArray(raw)) compare = raw.filter((x) => Array.isArray(x) && x.length === 2).map((x) => ({ session: String(x[0]), host: String(x[1]) }));
  } catch {
    compare = [];
  }
  const bucket = get("bucket");
  const layer = get("layer");
  return {
    run: get("run"),
    host: get("host"),
    step: parseStep(get("step")),
    layer: bucket ? [bucket] : layer ? layer.split("/") : null,
    bucket: !!bucket,
    view: get("view") === "compare" ? "compare" : "breakdown",
    compare,
  };
}

function encode(s: UrlState): URLSearchParams {
  const w = hostWindow();
  const q = new URLSearchParams(w.location.search);
  for (const k of KEYS) q.delete(PREFIX + k);
  if (s.run) q.set(PREFIX + "run", s.run);
  if (s.host) q.set(PREFIX + "host", s.host);
  if (s.step !== null && s.step !== "all") q.set(PREFIX + "step", String(s.step));
  // Keras layer names cannot contain "/", so a path is joined by it.
  if (s.layer && s.bucket) q.set(PREFIX + "bucket", s.layer[0]);
  else if (s.layer) q.set(PREFIX + "layer", s.layer.join("/"));
  if (s.view === "compare") q.set(PREFIX + "view", "compare");
  if (s.compare.length) q.set(PREFIX + "cmp", JSON.stringify(s.compare.map((c) => [c.session, c.host])));
  return q;
}

/** Write the state: a new history entry (`push`) or the current one replaced. */
export function writeUrl(s: UrlState, push: boolean): void {
  const top = hostWindow();
  const q = encode(s).toString();
  const set = (w: Window, url: string, asNew: boolean) => {
    if (url === w.location.pathname + w.location.search + w.location.hash) return;
    if (asNew) w.history.pushState(w === window ? null : w.history.state, "", url);
    else w.history.replaceState(w === window ? null : w.history.state, "", url);
  };
  try {
    set(top, top.location.pathname + (q ? "?" + q : "") + top.location.hash, push && !framed());
    if (framed()) {
      // Only our own keys go into the iframe's hash; its src (`?name=metal`) stays.
      const own = new URLSearchParams([...encode(s).entries()].filter(([k]) => k.startsWith(PREFIX))).toString();
      set(window, window.location.pathname + window.location.search + "#" + own, push);
    }
  } catch {
    // A sandboxed frame may refuse: the view still works, only without the URL.
  }
}

/** Call `fn` when back/forward changes the URL. */
export function onUrlChange(fn: () => void): void {
  window.addEventListener("popstate", () => fn());
}
