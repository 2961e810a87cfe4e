// Long-running workerd server for pytest-dosqlite's real-runtime backend.
//
// Why: starting workerd costs ~0.1-0.5 s, so the Python side starts ONE server per test session
// and isolates tests by DO name. Started as `node server.mjs [options]` with stdin as a pipe; it
// prints exactly one JSON line on stdout when ready and shuts workerd down when stdin closes
// (the parent died or is done), or on SIGTERM / SIGINT. All other output goes to stderr.
//
// Options:
//   --script PATH        bundled worker (default: dist/worker.js next to this file)
//   --persist DIR        keep DO SQLite files in DIR (default: in memory)
//   --port N             port on 127.0.0.1 (default 0 = a free port)
//   --compat-date DATE   compatibility date (default 2025-09-01)
//   --workerd PATH       workerd binary (sets MINIFLARE_WORKERD_PATH)

import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const opts = {
    script: path.join(here, "dist", "worker.js"),
    persist: null,
    port: 0,
    compatDate: "2025-09-01",
    workerd: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value after ${arg}`);
      return argv[++i];
    };
    if (arg === "--script") opts.script = path.resolve(next());
    else if (arg === "--persist") opts.persist = path.resolve(next());
    else if (arg === "--port") opts.port = Number(next());
    else if (arg === "--compat-date") opts.compatDate = next();
    else if (arg === "--workerd") opts.workerd = path.resolve(next());
    else throw new Error(`unknown argument ${arg}`);
  }
  return opts;
}

function fail(message) {
  process.stdout.write(JSON.stringify({ ready: false, error: message }) + "\n");
  process.exit(1);
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  fail(e.message);
}
if (opts.workerd) process.env.MINIFLARE_WORKERD_PATH = opts.workerd;
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";

const { Miniflare } = await import("miniflare");

const mf = new Miniflare({
  name: "dosqlite",
  modules: true,
  scriptPath: opts.script,
  compatibilityDate: opts.compatDate,
  durableObjects: { DO: { className: "HarnessDO", useSQLite: true } },
  durableObjectsPersist: opts.persist ?? false,
  cf: false,
  host: "127.0.0.1",
  port: opts.port,
  handleRuntimeStdio(stdout, stderr) {
    stdout.pipe(process.stderr);
    stderr.pipe(process.stderr);
  },
});

let stopping = null;
function stop(code) {
  if (stopping === null) {
    stopping = mf
      .dispose()
      .catch((e) => process.stderr.write(`dispose failed: ${e}\n`))
      .finally(() => process.exit(code));
  }
  return stopping;
}

process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));
process.stdin.on("end", () => stop(0));
process.stdin.on("error", () => stop(0));
process.stdin.resume();

let url;
try {
  url = await mf.ready;
} catch (e) {
  process.stdout.write(JSON.stringify({ ready: false, error: String(e?.stack ?? e) }) + "\n");
  await stop(1);
}
process.stdout.write(
  JSON.stringify({
    ready: true,
    url: url.href,
    pid: process.pid,
    workerd: process.env.MINIFLARE_WORKERD_PATH ?? null,
    persist: opts.persist,
    compatibilityDate: opts.compatDate,
    workerName: "dosqlite",
    className: "HarnessDO",
  }) + "\n",
);
