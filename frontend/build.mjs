// Bundle the Metal tab into ../tb_metal_plugin/static: one ES module + one stylesheet.
// Everything (Chart.js included) is inlined: TensorBoard's CSP forbids CDNs and users
// are often offline.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(here, "..", "tb_metal_plugin", "static");
mkdirSync(outdir, { recursive: true });

await build({
  entryPoints: [resolve(here, "src", "index.ts")],
  outfile: resolve(outdir, "index.js"),
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  sourcemap: false,
  legalComments: "eof",
  logLevel: "warning",
});
copyFileSync(resolve(here, "src", "style.css"), resolve(outdir, "style.css"));
console.log(`bundled into ${outdir}`);
