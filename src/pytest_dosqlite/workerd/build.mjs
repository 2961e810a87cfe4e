// Bundles worker.mjs (which imports drizzle-orm) into dist/worker.js for workerd.
//
// Why: workerd loads one ES module graph without node_modules resolution, so drizzle's
// durable-sqlite migrator must be inlined. Run from the cache directory that holds node_modules:
// `node build.mjs [entry] [outfile]`.

import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const entry = process.argv[2] ?? path.join(here, "worker.mjs");
const outfile = process.argv[3] ?? path.join(here, "dist", "worker.js");

await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  mainFields: ["module", "main"],
  conditions: ["workerd", "worker", "import"],
  logLevel: "warning",
});
process.stdout.write(JSON.stringify({ built: outfile }) + "\n");
