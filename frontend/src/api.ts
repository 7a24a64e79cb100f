// Fetch helpers. URLs are relative: the iframe's <base href="plugin/metal/"> makes them
// resolve under /data/plugin/metal/, which keeps --path_prefix working.
import type { ComparePayload, ErrorBody, LayersPayload, LoadingStatus, OpsPayload, ReadinessPayload, SessionsPayload, Step } from "./types";

export class ApiError extends Error {
  constructor(public status: number, public body: ErrorBody | null, text: string) {
    super(body?.error ?? text);
  }
}

export type Progress = (fraction: number, message: string) => void;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function getJson<T>(url: string, progress?: Progress, signal?: AbortSignal): Promise<T> {
  // A 202 answer means the profile is still loading in the background: poll.
  let delay = 200;
  for (;;) {
    const resp = await fetch(url, { signal, headers: { Accept: "application/json" } });
    const text = await resp.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    if (resp.status === 202) {
      const st = body as LoadingStatus;
      progress?.(st.progress ?? 0, st.message ?? "loading");
      await sleep(delay);
      delay = Math.min(delay * 1.5, 1000);
      continue;
    }
    if (!resp.ok) throw new ApiError(resp.status, (body as ErrorBody) ?? null, text || resp.statusText);
    return body as T;
  }
}

export function stepParam(step: Step): string {
  return step === null ? "all" : String(step);
}

export function fetchSessions(refresh = false): Promise<SessionsPayload> {
  return getJson<SessionsPayload>("./sessions" + (refresh ? "?refresh=1" : ""));
}

export function fetchLayers(session: string, host: string, step: Step, progress?: Progress, signal?: AbortSignal): Promise<LayersPayload> {
  const q = new URLSearchParams({ session, host, step: stepParam(step) });
  return getJson<LayersPayload>("./layers?" + q.toString(), progress, signal);
}

export function fetchOps(session: string, host: string, step: Step, layer: string[] | null, bucket: string | null, progress?: Progress, signal?: AbortSignal): Promise<OpsPayload> {
  const q = new URLSearchParams({ session, host, step: stepParam(step) });
  if (bucket) q.set("bucket", bucket);
  else if (layer) q.set("layer", JSON.stringify(layer));
  return getJson<OpsPayload>("./ops?" + q.toString(), progress, signal);
}

export function fetchCompare(items: { session: string; host: string }[], step: Step, progress?: Progress, signal?: AbortSignal): Promise<ComparePayload> {
  const q = new URLSearchParams({ step: stepParam(step) });
  for (const it of items) {
    q.append("session", it.session);
    q.append("host", it.host);
  }
  return getJson<ComparePayload>("./compare?" + q.toString(), progress, signal);
}

/** Metal readiness prediction; `metalVersion` null = the newest tensorflow-metal. */
export function fetchReadiness(session: string, host: string, step: Step, metalVersion: string | null, progress?: Progress, signal?: AbortSignal): Promise<ReadinessPayload> {
  const q = new URLSearchParams({ session, host, step: stepParam(step) });
  if (metalVersion) q.set("metal_version", metalVersion);
  return getJson<ReadinessPayload>("./readiness?" + q.toString(), progress, signal);
}
