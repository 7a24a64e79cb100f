// Unit tests of the tab's logic: each test/*.test.ts bundled by esbuild (the same compiler as
// the tab) into a temporary folder, then run with node's own test runner.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const tests = readdirSync(resolve(here, "test")).filter((f) => f.endsWith(".test.ts"));
const out = mkdtempSync(join(tmpdir(), "tb-metal-unit-"));
try {
  await build({
    entryPoints: tests.map((f) => resolve(here, "test", f)),
    outdir: out,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node18",
    logLevel: "warning",
  });
  const files = readdirSync(out).map((f) => join(out, f));
  const run = spawnSync(process.execPath, ["--test", ...files], { stdio: "inherit" });
  process.exitCode = run.status ?? 1;
} finally {
  rmSync(out, { recursive: true, force: true });
}
