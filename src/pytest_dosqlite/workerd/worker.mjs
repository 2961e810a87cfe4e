// Generic SQLite-backed Durable Object used by pytest-dosqlite's real-runtime backend.
//
// Why: the emulator must be checked against what workerd really does. This Worker exposes
// ctx.storage.sql / transactionSync / drizzle's durable-sqlite migrate() over plain HTTP+JSON so
// that a stdlib-only Python client can drive any DO (one per name) and record exact outcomes.
//
// Routes (POST, JSON body):  /do/<urlencoded DO name>/<action>
//   exec     {sql, bindings?, mode?}          one sql.exec() call, cursor drained
//   batch    {statements: [{sql, bindings?, mode?}, ...]}
//                                              several exec() calls in ONE event (one turn);
//                                              each result or error recorded, continuing after errors
//   txn      {statements, throw?, catchErrors?} the statements inside ctx.storage.transactionSync
//   migrate  {journal, migrations, before?, after?, awaitBeforeAfter?}
//                                              drizzle-orm's real migrate() on the bundle
//   dump     {}                                 schema + __drizzle_migrations ledger
//   size     {}                                 sql.databaseSize
//   script   {steps: [...]}                     the general form every action above maps onto
//   ctor     {plans: [{steps} | {syncThrow}, ...]}
//                                              plan k runs in construction k of this DO: its steps
//                                              inside blockConcurrencyWhile, or a synchronous throw
//
// Script steps: {op: "exec", sql, bindings?, mode?, propagate?} | {op: "txn", steps, throw?,
//   propagate?} (transactionSync; only synchronous steps inside) | {op: "asynctxn", steps,
//   rollback?, throw?} (storage.transaction) | {op: "bcw", steps} (blockConcurrencyWhile) |
//   {op: "sleep", ms} (a real await: the turn ends, the implicit transaction commits) |
//   {op: "microtask"} (await of a resolved promise: same turn) | {op: "migrate", journal,
//   migrations} | {op: "kvput", key, value} | {op: "alarm", ms} | {op: "size"} |
//   {op: "throw", message} (the handler throws: the caller's stub.fetch rejects)
//
// Value encoding (bindings, and sql text in requests; cells in responses) -- see codec.py:
//   plain JSON string / number / null           as is
//   {"$blob": "<hex>"}                          Uint8Array        (responses: BLOB / ArrayBuffer)
//   {"$arraybuffer": "<hex>"}                   ArrayBuffer
//   {"$bool": true|false}                       JS boolean
//   {"$undefined": true}                        undefined
//   {"$num": "NaN"|"Infinity"|"-Infinity"|"-0"} non-JSON numbers (also in responses)
//   {"$bigint": "<decimal>"}                    BigInt
//   {"$date": <ms>}                             new Date(ms)
//   {"$object": {...}}                          a plain JS object
//   {"$repeat": [<string>, <count>]}            string repeated (compact long strings)
//   {"$zeroblob": <n>}                          Uint8Array(n) of zero bytes
//   {"$concat": [<encoded string>, ...]}        concatenation of encoded strings

import { drizzle } from "drizzle-orm/durable-sqlite";
import { migrate } from "drizzle-orm/durable-sqlite/migrator";

const SCHEMA_QUERY =
  "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY type, name";
const JOURNAL_QUERY =
  'SELECT rowid, id, hash, created_at, typeof(id) AS id_type, typeof(created_at) AS created_at_type FROM "__drizzle_migrations" ORDER BY rowid';

// Module state shared by the entrypoint and the DO instances (same isolate).
const constructions = new Map(); // id string -> number of times constructed
const ctorPlans = new Map(); // id string -> array of step lists

function hexToBytes(hex) {
  if (typeof hex !== "string" || hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) {
    throw new TypeError(`bad hex string in request: ${String(hex).slice(0, 40)}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesToHex(buf) {
  const b = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

function decodeText(v) {
  if (typeof v === "string") return v;
  if (v && typeof v === "object") {
    if ("$repeat" in v) return String(v.$repeat[0]).repeat(v.$repeat[1]);
    if ("$concat" in v) return v.$concat.map(decodeText).join("");
  }
  throw new TypeError(`bad encoded text in request: ${JSON.stringify(v).slice(0, 80)}`);
}

function decodeValue(v) {
  if (v === null || typeof v === "string" || typeof v === "number") return v;
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new TypeError(`bad encoded value in request: ${JSON.stringify(v).slice(0, 80)}`);
  }
  if ("$blob" in v) return hexToBytes(v.$blob);
  if ("$arraybuffer" in v) return hexToBytes(v.$arraybuffer).buffer;
  if ("$bool" in v) return Boolean(v.$bool);
  if ("$undefined" in v) return undefined;
  if ("$num" in v) return v.$num === "-0" ? -0 : Number(v.$num);
  if ("$bigint" in v) return BigInt(v.$bigint);
  if ("$date" in v) return new Date(v.$date);
  if ("$object" in v) return v.$object;
  if ("$zeroblob" in v) return new Uint8Array(v.$zeroblob);
  return decodeText(v);
}

function encodeValue(v) {
  if (v === null || typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number") {
    if (Number.isNaN(v)) return { $num: "NaN" };
    if (v === Infinity) return { $num: "Infinity" };
    if (v === -Infinity) return { $num: "-Infinity" };
    if (Object.is(v, -0)) return { $num: "-0" };
    return v;
  }
  if (v === undefined) return { $undefined: true };
  if (typeof v === "bigint") return { $bigint: v.toString() };
  if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return { $blob: bytesToHex(v) };
  if (Array.isArray(v)) return v.map(encodeValue);
  if (typeof v === "object") {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = encodeValue(x);
    return out;
  }
  return String(v);
}

function errorInfo(e) {
  if (e instanceof Error || (e && typeof e === "object" && "message" in e)) {
    return { ok: false, error: String(e.message), errorName: String(e.name ?? "Error") };
  }
  return { ok: false, error: String(e), errorName: typeof e };
}

class DeliberateThrow extends Error {}

export class HarnessDO {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
    this.sql = ctx.storage.sql;
    const key = ctx.id.toString();
    const seq = (constructions.get(key) ?? 0) + 1;
    constructions.set(key, seq);
    this.seq = seq;
    this.ctorLog = null;
    const plans = ctorPlans.get(key);
    const plan = plans ? plans[seq - 1] : undefined;
    if (plan) {
      if (plan.syncThrow) throw new Error(String(plan.syncThrow).replace("#", `#${seq}`));
      this.ctorLog = [];
      ctx.blockConcurrencyWhile(async () => {
        await this.runSteps(plan.steps ?? [], this.ctorLog, true);
      });
    }
  }

  // -- one sql.exec() call ------------------------------------------------------------------
  execOne(stmt) {
    let sqlText;
    let bindings;
    try {
      sqlText = decodeText(stmt.sql);
      bindings = (stmt.bindings ?? []).map(decodeValue);
    } catch (e) {
      return { ok: false, error: `harness: ${e.message}`, errorName: "HarnessError" };
    }
    try {
      const cursor = bindings.length > 0 ? this.sql.exec(sqlText, ...bindings) : this.sql.exec(sqlText);
      const mode = stmt.mode ?? "raw";
      let rows;
      if (mode === "raw") rows = cursor.raw().toArray();
      else if (mode === "objects") rows = cursor.toArray();
      else if (mode === "one") rows = [cursor.one()];
      else if (mode === "none") rows = null; // cursor NOT consumed, like drizzle's run()
      else throw new TypeError(`harness: unknown mode ${mode}`);
      return {
        ok: true,
        columnNames: cursor.columnNames,
        rows: rows === null ? null : encodeValue(rows),
        rowsRead: cursor.rowsRead,
        rowsWritten: cursor.rowsWritten,
      };
    } catch (e) {
      return errorInfo(e);
    }
  }

  // -- steps: synchronous ones may run inside transactionSync ---------------------------------
  runSyncStep(step, log) {
    switch (step.op) {
      case "exec": {
        const r = this.execOne(step);
        log.push(r);
        if (!r.ok && step.propagate) {
          const err = new Error(r.error);
          err.name = r.errorName;
          throw err;
        }
        return;
      }
      case "txn": {
        const inner = [];
        const entry = { op: "txn", steps: inner };
        log.push(entry);
        try {
          const value = this.ctx.storage.transactionSync(() => {
            for (const s of step.steps ?? []) this.runSyncStep(s, inner);
            if (step.throw) throw new DeliberateThrow(String(step.throw === true ? "deliberate throw in transactionSync" : step.throw));
            return "returned";
          });
          entry.ok = true;
          entry.value = value;
        } catch (e) {
          Object.assign(entry, errorInfo(e));
          if (step.propagate) throw e;
        }
        return;
      }
      case "size":
        log.push({ op: "size", ok: true, databaseSize: this.sql.databaseSize });
        return;
      case "throw":
        throw new DeliberateThrow(String(step.message ?? "handler boom"));
      default:
        throw new TypeError(`harness: step ${step.op} cannot run synchronously`);
    }
  }

  async runSteps(steps, log, inCtor = false) {
    for (const step of steps) {
      switch (step.op) {
        case "sleep": // a real await: ends the turn, commits the implicit transaction
          await new Promise((r) => setTimeout(r, step.ms ?? 0));
          log.push({ op: "sleep", ok: true });
          break;
        case "microtask": // awaiting a resolved promise: NOT a new turn
          await Promise.resolve();
          log.push({ op: "microtask", ok: true });
          break;
        case "migrate": {
          const entry = { op: "migrate" };
          log.push(entry);
          try {
            const bundle = { journal: step.journal, migrations: step.migrations };
            const started = Date.now();
            await migrate(drizzle(this.ctx.storage), bundle);
            entry.ok = true;
            entry.ms = Date.now() - started;
          } catch (e) {
            Object.assign(entry, errorInfo(e));
            entry.error = `${entry.errorName}: ${entry.error}`;
            if (step.propagate || inCtor) throw e;
          }
          break;
        }
        case "asynctxn": {
          const inner = [];
          const entry = { op: "asynctxn", steps: inner };
          log.push(entry);
          try {
            entry.value = await this.ctx.storage.transaction(async (txn) => {
              await this.runSteps(step.steps ?? [], inner, inCtor);
              if (step.rollback) txn.rollback();
              if (step.throw) throw new DeliberateThrow(String(step.throw === true ? "deliberate throw in transaction" : step.throw));
              return "returned";
            });
            entry.ok = true;
          } catch (e) {
            Object.assign(entry, errorInfo(e));
            if (step.propagate) throw e;
          }
          break;
        }
        case "kvput":
          await this.ctx.storage.put(step.key, decodeValue(step.value));
          log.push({ op: "kvput", ok: true });
          break;
        case "alarm":
          await this.ctx.storage.setAlarm(Date.now() + (step.ms ?? 3600_000));
          log.push({ op: "alarm", ok: true });
          break;
        case "bcw": {
          const inner = [];
          const entry = { op: "bcw", steps: inner };
          log.push(entry);
          try {
            await this.ctx.blockConcurrencyWhile(async () => {
              await this.runSteps(step.steps ?? [], inner, true);
            });
            entry.ok = true;
          } catch (e) {
            Object.assign(entry, errorInfo(e));
            if (step.propagate) throw e;
          }
          break;
        }
        default:
          this.runSyncStep(step, log);
      }
    }
  }

  async fetch(request) {
    const url = new URL(request.url);
    const action = url.pathname.split("/").pop();
    const body = request.method === "POST" ? await request.json() : {};
    const log = [];
    const meta = { construction: this.seq };
    if (this.ctorLog !== null) meta.ctor = this.ctorLog;
    let steps;
    switch (action) {
      case "exec":
        steps = [{ op: "exec", sql: body.sql, bindings: body.bindings, mode: body.mode }];
        break;
      case "batch":
        steps = (body.statements ?? []).map((s) => ({ op: "exec", ...s }));
        break;
      case "txn":
        steps = [
          ...(body.before ?? []),
          {
            op: "txn",
            throw: body.throw ?? false,
            steps: (body.statements ?? []).map((s) => ({ op: "exec", propagate: body.catchErrors === false, ...s })),
          },
          ...(body.after ?? []),
        ];
        break;
      case "migrate":
        steps = [
          ...(body.before ?? []),
          { op: "migrate", journal: body.journal, migrations: body.migrations },
          ...(body.awaitBeforeAfter ? [{ op: "sleep", ms: 0 }] : []),
          ...(body.after ?? []),
        ];
        break;
      case "script":
        steps = body.steps ?? [];
        break;
      case "dump":
        steps = [
          { op: "exec", sql: SCHEMA_QUERY, mode: "objects" },
          { op: "exec", sql: JOURNAL_QUERY, mode: "objects" },
        ];
        break;
      case "size":
        steps = [{ op: "size" }];
        break;
      case "ping":
        steps = [];
        break;
      default:
        return Response.json({ ok: false, error: `harness: unknown action ${action}` }, { status: 404 });
    }
    // A "throw" step escaping here fails the request the way a user's handler would.
    await this.runSteps(steps, log);
    if (action === "dump") {
      const [schema, journal] = log;
      return Response.json({
        ...meta,
        ok: schema.ok,
        schema: schema.ok ? schema.rows : null,
        schemaError: schema.ok ? undefined : schema.error,
        journal: journal.ok ? journal.rows : null,
        journalError: journal.ok ? undefined : journal.error,
      });
    }
    return Response.json({ ...meta, results: log });
  }

  async alarm() {}
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const parts = url.pathname.split("/").filter((p) => p !== "");
    if (parts.length === 1 && parts[0] === "health") return Response.json({ ok: true });
    if (parts.length !== 3 || parts[0] !== "do") {
      return Response.json({ ok: false, error: "harness: expected /do/<name>/<action>" }, { status: 404 });
    }
    const name = decodeURIComponent(parts[1]);
    const id = env.DO.idFromName(name);
    if (parts[2] === "ctor") {
      const body = await request.json();
      ctorPlans.set(id.toString(), body.plans ?? []);
      return Response.json({ ok: true, id: id.toString() });
    }
    const stub = env.DO.get(id);
    try {
      // The response body is text so that it can be re-emitted unchanged.
      const res = await stub.fetch(request);
      return new Response(await res.text(), { status: res.status, headers: { "content-type": "application/json" } });
    } catch (e) {
      // The DO's fetch rejected: a handler throw, a failed constructor, or a reset at commit.
      return Response.json({ fatal: true, ...errorInfo(e), id: id.toString() });
    }
  },
};
