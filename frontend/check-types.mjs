// Fail the build when src/types.ts is not what `python scripts/gen_schema.py` makes of
// docs/schema.json: the schema changed since, or someone edited the generated file by hand.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const sha = (text) => createHash("sha256").update(text, "utf8").digest("hex");
const schema = readFileSync(resolve(here, "..", "docs", "schema.json"), "utf8");
const types = readFileSync(resolve(here, "src", "types.ts"), "utf8");
const header = (name) => (types.match(new RegExp(`^// ${name}: ([0-9a-f]{64})$`, "m")) ?? [])[1];
const body = types.slice(types.indexOf("\n\n") + 2);
const problems = [];
if (header("schema-sha256") !== sha(schema)) problems.push("docs/schema.json changed since types.ts was generated");
if (header("body-sha256") !== sha(body)) problems.push("src/types.ts was edited by hand");
if (problems.length) {
  console.error(`types.ts is stale: ${problems.join("; ")}. Run: python scripts/gen_schema.py`);
  process.exit(1);
}
