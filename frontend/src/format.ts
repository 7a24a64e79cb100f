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
