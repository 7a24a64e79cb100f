// Number formatting shared by every view.

export function fmtTime(ps: number | null | undefined): string {
  if (ps === null || ps === undefined || !isFinite(ps)) return "–";
  const a = Math.abs(ps);
  if (a >= 1e12) return (ps / 1e12).toFixed(2) + " s";
  if (a >= 1e9) return (ps / 1e9).toFixed(a >= 1e11 ? 0 : a >= 1e10 ? 1 : 2) + " ms";
  if (a >= 1e6) return (ps / 1e6).toFixed(a >= 1e8 ? 0 : a >= 1e7 ? 1 : 2) + " µs";
  if (a === 0) return "0";
  return (ps / 1e3).toFixed(0) + " ns";
}

export function fmtDelta(ps: number | null | undefined): string {
  if (ps === null || ps === undefined) return "–";
  return (ps > 0 ? "+" : ps < 0 ? "−" : "±") + fmtTime(Math.abs(ps));
}

export function fmtPct(x: number | null | undefined): string {
  if (x === null || x === undefined || !isFinite(x)) return "–";
  return (x * 100).toFixed(x >= 0.1 ? 1 : 2) + "%";
}

export function fmtSpeedup(x: number | null | undefined): string {
  if (x === null || x === undefined || !isFinite(x)) return "–";
  return x.toFixed(2) + "×";
}

/** A clock's name as the tables print it (see docs/json-api.md, "Clocks"). */
export function clockLabel(clock: string | null | undefined): string {
  if (!clock) return "–";
  return ({ device: "device", host_side: "GPU dispatch", host: "CPU (host)", mixed: "mixed" } as Record<string, string>)[clock] ?? clock;
}

export function pathKey(path: string[]): string {
  return path.join("\u0000");
}

export function pathLabel(path: string[] | string | null | undefined): string {
  if (path === null || path === undefined) return "(none)";
  return typeof path === "string" ? path : path.join(" / ");
}

/**
 * A long name shortened in the middle: op names end with the part that identifies the op
 * (".../dense_1/MatMul"), and begin with the model, so both ends are kept.
 */
export function midEllipsis(s: string, max: number): string {
  if (s.length <= max) return s;
  const keep = max - 1;
  const tail = Math.ceil(keep * 0.6);
  return s.slice(0, keep - tail) + "…" + s.slice(s.length - tail);
}

/** What a time's clock is called in column headers and legends ("" when unknown). */
export function clockHeading(clocks: Record<string, number> | null | undefined, hasGpu: boolean): string {
  const used = Object.entries(clocks ?? {}).filter(([, v]) => v > 0).map(([k]) => k);
  if (!used.length) return "";
  if (used.length === 1 && used[0] === "device") return "device";
  if (used.includes("host_side")) return used.includes("device") ? "device + host-side" : "host-side";
  if (used.every((c) => c === "host")) return hasGpu ? "host" : "CPU";
  return used.map((c) => clockLabel(c)).join(" + ");
}

/** Keyboard activation of a non-button element: Enter or Space, as a button would. */
export function isActivate(ev: Event): boolean {
  const k = (ev as KeyboardEvent).key;
  return k === "Enter" || k === " ";
}
