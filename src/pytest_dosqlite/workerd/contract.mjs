// Builds a project's OWN Worker and cold-starts its SQLite Durable Objects in Miniflare.
//
// Why: pytest-dosqlite's do_contract check must prove the real wiring of a project (its
// wrangler `main`, the `import migrations from '../drizzle/migrations'`, the Text rule that turns
// `.sql` imports into strings, drizzle's migrate() inside blockConcurrencyWhile), which only the
// real bundler and the real runtime can show. Usage: `node contract.mjs SPEC.json`; the spec is
// written by do_contract.py. Packages (esbuild, miniflare) come from the harness install named in
// the spec, not from the project. Prints ONE JSON line on stdout:
//   {build: {ok, errors, warnings, packages}, start?: {ok, error?}, results?: [...], logs: [...]}
// `packages` names every npm package bundled: {name: {dir, version}} (where drizzle-orm came from).
// Each result: {binding, className, name, responses: [{ok, status?, body?, error?, errorName?}]}.

import fs from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

const spec = JSON.parse(await fs.readFile(process.argv[2], "utf8"));
const require = createRequire(path.join(spec.harness, "package.json"));
const out = { build: { ok: false, errors: [], warnings: [], packages: {} }, logs: [] };

function emit() {
  process.stdout.write(JSON.stringify(out) + "\n");
}

// glob -> RegExp as wrangler's module rules use it (globstar on), matched on the import path
function globToRegExp(glob) {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      if (glob[i + 2] === "/") {
        re += "(?:[^/]*(?:/|$))*";
        i += 2;
      } else {
        re += ".*";
        i += 1;
      }
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if ("\\^$.|+()[]{}".includes(c)) re += "\\" + c;
    else re += c;
  }
  return new RegExp("^" + re + "$");
}

function message(m) {
  const loc = m.location;
  return {
    text: m.text,
    file: loc ? loc.file : null,
    line: loc ? loc.line : null,
    column: loc ? loc.column : null,
    lineText: loc ? loc.lineText : null,
    notes: (m.notes ?? []).map((n) => n.text),
  };
}

function rulesPlugin(rules) {
  const compiled = rules.map((r) => ({ type: r.type, res: r.globs.map(globToRegExp) }));
  return {
    name: "dosqlite-module-rules",
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.kind === "entry-point" || args.namespace !== "file") return undefined;
        const rule = compiled.find((r) => r.res.some((re) => re.test(args.path)));
        if (!rule) return undefined;
        if (rule.type === "CompiledWasm") {
          return { errors: [{ text: `CompiledWasm module "${args.path}" is not supported by do_contract` }] };
        }
        const resolved = path.resolve(args.resolveDir, args.path);
        try {
          await fs.access(resolved);
        } catch {
          return { errors: [{ text: `Could not resolve "${args.path}" (no such file: ${resolved})` }] };
        }
        return { path: resolved, namespace: "dosqlite-rule", pluginData: { type: rule.type } };
      });
      build.onLoad({ filter: /.*/, namespace: "dosqlite-rule" }, async (args) => ({
        contents: await fs.readFile(args.path),
        loader: args.pluginData.type === "Text" ? "text" : "binary",
      }));
    },
  };
}

async function packagesOf(inputs) {
  const found = {};
  for (const input of inputs) {
    const m = /^(.*node_modules\/(@[^/]+\/[^/]+|[^/]+))\//.exec(input);
    if (!m || m[2] in found) continue;
    const dir = path.resolve(spec.root, m[1]);
    let version = null;
    try {
      version = JSON.parse(await fs.readFile(path.join(dir, "package.json"), "utf8")).version ?? null;
    } catch {}
    found[m[2]] = { dir, version };
  }
  return found;
}

async function buildWorker() {
  const esbuild = require("esbuild");
  try {
    const result = await esbuild.build({
      entryPoints: [spec.entry],
      absWorkingDir: spec.root,
      outfile: spec.outfile,
      bundle: true,
      format: "esm",
      platform: "neutral",
      target: "es2022",
      mainFields: ["browser", "module", "main"],
      conditions: ["workerd", "worker", "browser"],
      external: ["cloudflare:*", "node:*", "__STATIC_CONTENT_MANIFEST"],
      nodePaths: spec.nodePaths,
      plugins: [rulesPlugin(spec.rules)],
      metafile: true,
      logLevel: "silent",
      write: true,
    });
    out.build.ok = true;
    out.build.warnings = result.warnings.map(message);
    out.build.packages = await packagesOf(Object.keys(result.metafile.inputs));
  } catch (e) {
    out.build.errors = (e.errors ?? [{ text: String(e?.message ?? e) }]).map(message);
    out.build.warnings = (e.warnings ?? []).map(message);
  }
}

async function coldStart() {
  if (spec.workerd) process.env.MINIFLARE_WORKERD_PATH = spec.workerd;
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  const { Miniflare } = require("miniflare");
  let mf;
  try {
    mf = new Miniflare({
      name: spec.name,
      modules: true,
      scriptPath: spec.outfile,
      modulesRoot: path.dirname(spec.outfile),
      compatibilityDate: spec.compatibilityDate,
      compatibilityFlags: spec.compatibilityFlags,
      durableObjects: spec.durableObjects,
      durableObjectsPersist: spec.persist,
      bindings: spec.vars,
      kvNamespaces: spec.kvNamespaces,
      d1Databases: spec.d1Databases,
      r2Buckets: spec.r2Buckets,
      cf: false,
      handleRuntimeStdio(stdout, stderr) {
        const keep = (chunk) => {
          if (out.logs.length < 200) out.logs.push(String(chunk).slice(0, 2000));
        };
        stdout.on("data", keep);
        stderr.on("data", keep);
      },
    });
    await mf.ready;
    out.start = { ok: true };
  } catch (e) {
    out.start = { ok: false, error: String(e?.stack ?? e) };
    if (mf) await mf.dispose().catch(() => {});
    return;
  }
  out.results = [];
  try {
    for (const target of spec.targets) {
      const ns = await mf.getDurableObjectNamespace(target.binding);
      for (const name of target.names) {
        const stub = ns.get(ns.idFromName(name));
        const one = async () => {
          try {
            const res = await stub.fetch(`http://do-contract.invalid/__dosqlite/cold-start`);
            return { ok: true, status: res.status, body: (await res.text()).slice(0, 500) };
          } catch (e) {
            return { ok: false, error: String(e?.message ?? e), errorName: String(e?.name ?? "") };
          }
        };
        const responses = await Promise.all(Array.from({ length: target.concurrency }, one));
        out.results.push({ binding: target.binding, className: target.className, name, responses });
      }
    }
  } finally {
    await mf.dispose();
  }
}

try {
  await buildWorker();
  if (out.build.ok && !spec.buildOnly) await coldStart();
} catch (e) {
  out.fatal = String(e?.stack ?? e);
}
emit();
