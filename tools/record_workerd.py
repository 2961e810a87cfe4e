"""Record what real workerd does for a broad probe list: the emulator's ground truth.

Why: the emulator (pytest_dosqlite.storage) must reproduce workerd's Durable Object SQLite
behaviour byte for byte, and its tests must run without Node. This tool drives the pinned
runtime (workerd 1.20261117.1 through pytest_dosqlite.workerd) through every probe of the
research notes and writes ``tests/data/workerd/recorded.json`` (format: README.md there).

Usage (from the repo root)::

    PYTHONPATH=src python tools/record_workerd.py [--out PATH] [--only SUBSTRING]
        [--research ../shared/research/workerd-do-sqlite.md] [--diff PATH]

With the research notes available it also compares every outcome with the research tables
and writes the differences (``tests/data/workerd/DIFFERENCES.md``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pytest_dosqlite.workerd import PINNED_WORKERD, WorkerdBackend, ensure_installed, recordings
from pytest_dosqlite.workerd.codec import encode_binding, encode_text

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "data" / "workerd" / "recorded.json"
DEFAULT_DIFF = REPO / "tests" / "data" / "workerd" / "DIFFERENCES.md"
SHARED = REPO.parent / "shared"

TXN_MSG = (
    "To execute a transaction, please use the state.storage.transaction() or "
    "state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT "
    "statements. The JavaScript API is safer because it will automatically roll back on "
    "exceptions, and because it interacts correctly with Durable Objects' automatic atomic "
    "write coalescing."
)

Json = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# request / step builders (the JSON that is POSTed, plus "action")
# ---------------------------------------------------------------------------------------------


def rep(text: str, count: int) -> Json:
    return {"$repeat": [text, count]}


def cat(*parts: Any) -> Json:
    return {"$concat": list(parts)}


def enc_sql(sql: Any) -> Any:
    return sql if isinstance(sql, str | dict) else encode_text(sql)


def X(sql: Any, *bindings: Any, mode: str | None = None) -> Json:
    """One exec request."""
    req: Json = {"action": "exec", "sql": enc_sql(sql)}
    if bindings:
        req["bindings"] = [encode_binding(b) for b in bindings]
    if mode:
        req["mode"] = mode
    return req


def st(sql: Any, *bindings: Any, mode: str | None = None, propagate: bool = False) -> Json:
    """An exec statement/step (for batch, txn and script)."""
    step: Json = {"op": "exec", "sql": enc_sql(sql)}
    if bindings:
        step["bindings"] = [encode_binding(b) for b in bindings]
    if mode:
        step["mode"] = mode
    if propagate:
        step["propagate"] = True
    return step


def B(*stmts: Any) -> Json:
    """A batch request: several exec calls in one event."""
    return {
        "action": "batch",
        "statements": [
            {k: v for k, v in (st(s) if isinstance(s, str) else s).items() if k != "op"}
            for s in stmts
        ],
    }


def T(
    *stmts: Any,
    throw: bool | str = False,
    catch: bool = True,
    before: list[Json] | None = None,
    after: list[Json] | None = None,
) -> Json:
    """A txn request: the statements inside transactionSync."""
    req: Json = {
        "action": "txn",
        "statements": [
            {k: v for k, v in (st(s) if isinstance(s, str) else s).items() if k != "op"}
            for s in stmts
        ],
    }
    if throw:
        req["throw"] = throw
    if not catch:
        req["catchErrors"] = False
    if before:
        req["before"] = before
    if after:
        req["after"] = after
    return req


def S(*steps: Any) -> Json:
    """A script request."""
    return {"action": "script", "steps": [st(s) if isinstance(s, str) else s for s in steps]}


def txn(*steps: Any, throw: bool | str = False, propagate: bool = False) -> Json:
    step: Json = {"op": "txn", "steps": [st(s) if isinstance(s, str) else s for s in steps]}
    if throw:
        step["throw"] = throw
    if propagate:
        step["propagate"] = True
    return step


def asynctxn(*steps: Any, rollback: bool = False, throw: bool | str = False) -> Json:
    step: Json = {"op": "asynctxn", "steps": [st(s) if isinstance(s, str) else s for s in steps]}
    if rollback:
        step["rollback"] = True
    if throw:
        step["throw"] = throw
    return step


SLEEP0: Json = {"op": "sleep", "ms": 0}
MICRO: Json = {"op": "microtask"}


def sleep(ms: int) -> Json:
    return {"op": "sleep", "ms": ms}


def throw(message: str = "handler boom") -> Json:
    return {"op": "throw", "message": message}


def M(
    bundle: str,
    *,
    before: list[Json] | None = None,
    after: list[Json] | None = None,
    await_before_after: bool = False,
) -> Json:
    req: Json = {"action": "migrate", "bundle": bundle}
    if before:
        req["before"] = before
    if after:
        req["after"] = after
    if await_before_after:
        req["awaitBeforeAfter"] = True
    return req


DUMP: Json = {"action": "dump"}
SIZE: Json = {"action": "size"}
RESTART: Json = {"action": "restart"}


def CTOR(*plans: Json) -> Json:
    return {"action": "ctor", "plans": list(plans)}


def plan(*steps: Any) -> Json:
    return {"steps": [st(s) if isinstance(s, str) else s for s in steps]}


# ---------------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------------

CASES: list[Json] = []


def case(
    name: str,
    section: str,
    requests: list[Json],
    *,
    setup: list[Any] | None = None,
    compare: str = "exact",
    note: str | None = None,
    research: dict[str, str] | None = None,
) -> None:
    """Register a case: a fresh DO, ``setup`` (must all succeed), then ``requests``."""
    entry: Json = {"name": name, "section": section}
    entry["setup"] = [s if isinstance(s, dict) else X(s) for s in (setup or [])]
    entry["requests"] = requests
    if compare != "exact":
        entry["compare"] = compare
    if note:
        entry["note"] = note
    if research:
        entry["research"] = research
    if any(c["name"] == name for c in CASES):
        raise SystemExit(f"duplicate case name {name}")
    CASES.append(entry)


# -- §3.3 statements ---------------------------------------------------------------------------

STMT_SETUP = [
    "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT)",
    "CREATE INDEX t_b ON t(b)",
    "INSERT INTO t(b) VALUES ('x'), ('y')",
]
STATEMENTS: list[tuple[str, list[str]]] = [
    ("BEGIN", []),
    ("BEGIN TRANSACTION", []),
    ("BEGIN DEFERRED", []),
    ("BEGIN IMMEDIATE", []),
    ("BEGIN EXCLUSIVE", []),
    ("COMMIT", []),
    ("END", []),
    ("END TRANSACTION", []),
    ("ROLLBACK", []),
    ("SAVEPOINT x", []),
    ("RELEASE x", []),
    ("RELEASE SAVEPOINT x", []),
    ("ROLLBACK TO x", []),
    ("ATTACH DATABASE ':memory:' AS aux", []),
    ("ATTACH 'other.db' AS aux2", []),
    ("DETACH aux", []),
    ("DETACH DATABASE aux", []),
    ("VACUUM", []),
    ("VACUUM INTO 'copy.db'", []),
    ("REINDEX", []),
    ("REINDEX t", []),
    ("ANALYZE", []),
    ("ANALYZE t", []),
    ("EXPLAIN SELECT 1", []),
    ("EXPLAIN QUERY PLAN SELECT * FROM t WHERE b='x'", []),
    ("CREATE TEMP TABLE tt(x)", []),
    ("CREATE TEMPORARY VIEW tv AS SELECT 1", []),
    ("CREATE VIEW v AS SELECT * FROM t", []),
    ("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END", []),
    ("CREATE TABLE s(x INTEGER) STRICT", []),
    ("CREATE TABLE wr(k TEXT PRIMARY KEY, v) WITHOUT ROWID", []),
    ("CREATE TABLE g(a INT, b INT GENERATED ALWAYS AS (a*2) VIRTUAL)", []),
    ("ALTER TABLE t ADD COLUMN c TEXT", []),
    ("ALTER TABLE t RENAME COLUMN c TO c2", ["ALTER TABLE t ADD COLUMN c TEXT"]),
    ("ALTER TABLE t DROP COLUMN c2", ["ALTER TABLE t ADD COLUMN c2 TEXT"]),
    ("ALTER TABLE wr RENAME TO wr2", ["CREATE TABLE wr(k TEXT PRIMARY KEY, v) WITHOUT ROWID"]),
    ("INSERT INTO t(b) VALUES ('z') RETURNING a, b", []),
    ("INSERT INTO t(a,b) VALUES (1,'dup') ON CONFLICT(a) DO UPDATE SET b=excluded.b", []),
    (
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n<5) "
        "SELECT sum(n) FROM c",
        [],
    ),
    ("SELECT load_extension('x')", []),
    ("CREATE VIRTUAL TABLE f USING fts5(body)", []),
    ("CREATE VIRTUAL TABLE f4 USING fts4(body)", []),
    ("CREATE VIRTUAL TABLE f3 USING fts3(body)", []),
    ("CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)", []),
    ("CREATE VIRTUAL TABLE ri USING rtree_i32(id, x0, x1)", []),
    ("CREATE VIRTUAL TABLE s5 USING dbstat", []),
    ("CREATE VIRTUAL TABLE ft USING fts5(body, tokenize='trigram')", []),
    ("CREATE VIRTUAL TABLE fc USING fts5(body, content='')", []),
    (
        "CREATE VIRTUAL TABLE fv USING fts5vocab(f, 'row')",
        ["CREATE VIRTUAL TABLE f USING fts5(body)"],
    ),
    ("SELECT * FROM json_each('[1,2]')", []),
    ("SELECT * FROM json_tree('{\"a\":1}')", []),
    ("SELECT * FROM generate_series(1,3)", []),
    ("SELECT * FROM sqlite_schema", []),
    ("SELECT * FROM sqlite_temp_master", []),
    ("SELECT * FROM sqlite_sequence", []),
    ("SELECT * FROM sqlite_stat1", ["ANALYZE"]),
    ("DELETE FROM sqlite_sequence", []),
    ("DROP TABLE IF EXISTS nonexistent", []),
    ("CREATE INDEX IF NOT EXISTS t_b2 ON t(b) WHERE b IS NOT NULL", []),
    ("SELECT changes(), total_changes(), last_insert_rowid()", []),
    ("SAVEPOINT _cf_savepoint_0", []),
    ("PRAGMA user_version=5", []),
]
for sql, extra in STATEMENTS:
    case(f"stmt/{sql}", "3.3", [X(sql)], setup=STMT_SETUP + extra)
case(
    "stmt/fts5 match, bm25, highlight, snippet",
    "3.3",
    [
        X(
            "SELECT rowid, bm25(f) < 0, highlight(f, 0, '[', ']'), snippet(f, 0, '<', '>', '…', 4) "
            "FROM f WHERE f MATCH 'hello' ORDER BY rowid"
        ),
        X("SELECT term, doc FROM fv ORDER BY term"),
    ],
    setup=[
        "CREATE VIRTUAL TABLE f USING fts5(body)",
        "INSERT INTO f(body) VALUES ('hello world'), ('say hello again')",
        "CREATE VIRTUAL TABLE fv USING fts5vocab(f, 'row')",
    ],
)
case(
    "stmt/rtree query",
    "3.3",
    [X("INSERT INTO r VALUES (1, 0, 10), (2, 5, 15)"), X("SELECT id FROM r WHERE x1 >= 12")],
    setup=["CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)"],
)
case(
    "stmt/transaction statements as part of a multi-statement string",
    "3.3",
    [X("SELECT 1; BEGIN"), X("INSERT INTO t(b) VALUES ('m'); COMMIT"), X("SELECT count(*) FROM t")],
    setup=STMT_SETUP,
)
case(
    "stmt/transaction statements inside transactionSync",
    "3.3",
    [T("BEGIN", "SAVEPOINT x", "COMMIT", "ROLLBACK", "SAVEPOINT _cf_savepoint_0")],
    setup=STMT_SETUP,
)
case("stmt/VACUUM as the first statement of a fresh DO", "3.2", [X("VACUUM")])
case("stmt/VACUUM inside transactionSync", "3.2", [T("VACUUM")])

# -- §3.4 pragmas ------------------------------------------------------------------------------

PRAGMA_SETUP = [
    "CREATE TABLE p(id INTEGER PRIMARY KEY, name TEXT)",
    "CREATE TABLE c(id INTEGER PRIMARY KEY, pid INTEGER REFERENCES p(id), note TEXT)",
    "CREATE INDEX c_pid ON c(pid)",
]
PRAGMAS = [
    "foreign_keys",
    "foreign_keys=OFF",
    "foreign_keys=ON",
    "defer_foreign_keys",
    "defer_foreign_keys=ON",
    "table_info(c)",
    "table_xinfo(c)",
    "table_list",
    "table_list(c)",
    "index_list(c)",
    "index_info(c_pid)",
    "index_xinfo(c_pid)",
    "foreign_key_list(c)",
    "foreign_key_check",
    "foreign_key_check(c)",
    "quick_check",
    "integrity_check",
    "integrity_check(c)",
    "journal_mode",
    "journal_mode=WAL",
    "journal_mode=DELETE",
    "user_version",
    "user_version=7",
    "schema_version",
    "schema_version=99",
    "application_id",
    "application_id=5",
    "optimize",
    "optimize(0x10002)",
    "case_sensitive_like",
    "case_sensitive_like=ON",
    "legacy_alter_table",
    "legacy_alter_table=ON",
    "recursive_triggers",
    "recursive_triggers=ON",
    "writable_schema",
    "writable_schema=ON",
    "page_size",
    "page_size=8192",
    "page_count",
    "freelist_count",
    "max_page_count",
    "cache_size",
    "cache_size=100",
    "synchronous",
    "synchronous=OFF",
    "locking_mode",
    "auto_vacuum",
    "incremental_vacuum",
    "encoding",
    "compile_options",
    "function_list",
    "module_list",
    "pragma_list",
    "database_list",
    "collation_list",
    "busy_timeout",
    "temp_store",
    "secure_delete",
    "cell_size_check",
    "ignore_check_constraints",
    "ignore_check_constraints=ON",
    "reverse_unordered_selects",
    "reverse_unordered_selects=ON",
    "query_only",
    "query_only=ON",
    "trusted_schema",
    "automatic_index",
    "count_changes",
    "data_version",
    "mmap_size",
    "shrink_memory",
    "soft_heap_limit",
    "hard_heap_limit",
    "threads",
    "analysis_limit",
    "wal_checkpoint",
    "wal_autocheckpoint",
    "stats",
    "short_column_names",
    "full_column_names",
    "read_uncommitted",
    "fullfsync",
    "checkpoint_fullfsync",
    "temp_store_directory",
    "data_store_directory",
    "lock_status",
    "main.table_info(c)",
    "main.foreign_keys",
]
for pragma in PRAGMAS:
    reqs = [X(f"PRAGMA {pragma}")]
    if "=" in pragma:  # read back in the next request
        reqs.append(X(f"PRAGMA {pragma.split('=')[0]}"))
    case(f"pragma/PRAGMA {pragma}", "3.4", reqs, setup=PRAGMA_SETUP)

TABLE_VALUED = [
    "SELECT * FROM pragma_table_info('c')",
    "SELECT name, type, pk FROM pragma_table_xinfo('c')",
    "SELECT * FROM pragma_foreign_key_list('c')",
    "SELECT * FROM pragma_index_list('c')",
    "SELECT * FROM pragma_index_info('c_pid')",
    "SELECT * FROM pragma_table_list",
    "SELECT * FROM pragma_foreign_key_check",
    "SELECT * FROM pragma_function_list",
    "SELECT * FROM pragma_compile_options",
    "SELECT * FROM pragma_foreign_keys",
    "SELECT * FROM pragma_journal_mode",
    "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p "
    "WHERE m.type='table'",
]
for sql in TABLE_VALUED:
    case(f"pragma-tv/{sql}", "3.4", [X(sql)], setup=PRAGMA_SETUP)

KV_SETUP = [*PRAGMA_SETUP, S({"op": "kvput", "key": "k", "value": 1})]
ARG_FORMS = """
PRAGMA foreign_keys = 0
PRAGMA foreign_keys = 'off'
PRAGMA foreign_keys = false
PRAGMA foreign_keys = no
PRAGMA foreign_keys = 2
PRAGMA foreign_keys = ONN
PRAGMA foreign_keys = -1
PRAGMA foreign_keys = 'yesplease'
PRAGMA foreign_keys = t
PRAGMA foreign_keys = "on"
PRAGMA main.foreign_keys = OFF
PRAGMA defer_foreign_keys = 1
PRAGMA case_sensitive_like = 1
PRAGMA reverse_unordered_selects = 1
PRAGMA quick_check(5)
PRAGMA quick_check(c)
PRAGMA quick_check(_cf_KV)
PRAGMA quick_check = 5
PRAGMA optimize = 0x10002
PRAGMA optimize(-1)
PRAGMA optimize(abc)
PRAGMA index_list
PRAGMA foreign_key_list
PRAGMA index_info
PRAGMA index_xinfo
PRAGMA table_xinfo
PRAGMA table_info
PRAGMA table_info(nosuch)
PRAGMA table_info(_cf_KV)
PRAGMA table_info('_cf_KV')
PRAGMA table_info(_CF_KV)
PRAGMA table_xinfo(_cf_KV)
PRAGMA index_list(_cf_KV)
PRAGMA index_info(_cf_KV)
PRAGMA foreign_key_list(_cf_KV)
PRAGMA foreign_key_check(_cf_KV)
PRAGMA table_list(_cf_KV)
PRAGMA data_version = 5
PRAGMA page_size
PRAGMA page_size = 4096
SELECT * FROM pragma_table_info('_cf_KV')
SELECT * FROM pragma_index_list('c')
PRAGMA legacy_alter_table = yes
PRAGMA ignore_check_constraints = true
PRAGMA recursive_triggers = on
PRAGMA FOREIGN_KEYS
PRAGMA Foreign_Keys = OFF
PRAGMA TABLE_INFO(c)
PRAGMA Quick_Check
PRAGMA main.table_list
PRAGMA temp.foreign_keys
PRAGMA table_list
""".strip().split("\n")
for sql in ARG_FORMS:
    case(f"pragma-arg/{sql}", "3.4", [X(sql)], setup=KV_SETUP)

# -- §3.5 reserved names and internal tables -----------------------------------------------------

RESERVED = [
    ("CREATE TABLE _cf_mine(x)", []),
    ('CREATE TABLE "_cf_q"(x)', []),
    ("CREATE TABLE IF NOT EXISTS _cf_x(a)", []),
    ("CREATE TABLE main._cf_y(a)", []),
    ("CREATE INDEX _cf_i ON x1(a)", ["CREATE TABLE x1(a)"]),
    ("CREATE VIEW _cf_v AS SELECT 1", []),
    ("CREATE TRIGGER _cf_tr AFTER INSERT ON x1 BEGIN SELECT 1; END", ["CREATE TABLE x1(a)"]),
    ("CREATE TABLE _CF_mine(x)", []),
    ('CREATE TABLE "_Cf_z"(a)', []),
    ("CREATE TABLE _cfx(a)", []),
    ("CREATE TABLE _cf(a)", []),
    ("CREATE TABLE x1(a); CREATE INDEX _CF_i ON x1(a)", []),
    ("CREATE TABLE x2(_cf_col)", []),
    ("ALTER TABLE x1 RENAME TO _cf_renamed", ["CREATE TABLE x1(a)"]),
    ("ALTER TABLE x1 RENAME TO _CF_renamed2", ["CREATE TABLE x1(a)"]),
    ("ALTER TABLE x1 RENAME COLUMN a TO _cf_col", ["CREATE TABLE x1(a)"]),
    ("ALTER TABLE x1 ADD COLUMN _cf_added", ["CREATE TABLE x1(a)"]),
    ("CREATE TABLE sqlite_mine(x)", []),
    ('CREATE TABLE "sqlite_q"(x)', []),
    ("DROP TABLE sqlite_master", []),
    ("DROP TABLE sqlite_sequence", []),
    ("SELECT * FROM _cf_KV", []),
    ("SELECT count(*) FROM _cf_KV", []),
    ("SELECT key FROM _cf_KV", []),
    ("INSERT INTO _cf_KV VALUES ('a', x'00')", []),
    ("DELETE FROM _cf_KV", []),
    ("UPDATE _cf_KV SET value = NULL", []),
    ("DROP TABLE _cf_KV", []),
    ("CREATE VIEW vv AS SELECT * FROM _cf_KV", []),
    ("CREATE TRIGGER trx AFTER INSERT ON x1 BEGIN DELETE FROM _cf_KV; END", ["CREATE TABLE x1(a)"]),
    ("ANALYZE _cf_KV", []),
    ("REINDEX _cf_KV", []),
    ("SELECT * FROM sqlite_master ORDER BY name", []),
]
for sql, extra in RESERVED:
    case(f"reserved/{sql}", "3.5", [X(sql)], setup=KV_SETUP + extra)
case(
    "reserved/view over _cf_KV is created but cannot be read",
    "3.5",
    [X("CREATE VIEW vv AS SELECT * FROM _cf_KV"), X("SELECT * FROM vv")],
    setup=KV_SETUP,
)
case(
    "reserved/trigger touching _cf_KV is created, then fires",
    "3.5",
    [
        X("CREATE TRIGGER trx AFTER INSERT ON x1 BEGIN DELETE FROM _cf_KV; END"),
        X("INSERT INTO x1 VALUES (1)"),
    ],
    setup=[*KV_SETUP, "CREATE TABLE x1(a)"],
)
case(
    "reserved/sqlite_sequence after AUTOINCREMENT",
    "3.5",
    [
        X("SELECT name, type FROM sqlite_master ORDER BY name"),
        X("SELECT * FROM sqlite_sequence"),
        X("UPDATE sqlite_sequence SET seq = 10"),
        X("INSERT INTO ai(v) VALUES ('b') RETURNING id"),
    ],
    setup=[
        "CREATE TABLE ai(id INTEGER PRIMARY KEY AUTOINCREMENT, v)",
        "INSERT INTO ai(v) VALUES ('a')",
    ],
)
case(
    "internal/fresh DO: empty sqlite_master and table_list",
    "3.5",
    [X("SELECT * FROM sqlite_master"), X("PRAGMA table_list"), SIZE],
)
case(
    "internal/_cf_KV after storage.put",
    "3.5",
    [
        S({"op": "kvput", "key": "k", "value": 1}),
        X("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"),
        X("PRAGMA table_list"),
    ],
)
case(
    "internal/_cf_METADATA after setAlarm",
    "3.5",
    [
        S({"op": "alarm", "ms": 3_600_000}),
        X("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"),
        X("SELECT count(*) FROM _cf_METADATA"),
    ],
)
case("internal/databaseSize fresh", "3.8", [SIZE])
case("internal/databaseSize after one table", "3.8", [X("CREATE TABLE t(x)"), SIZE])
case(
    "internal/databaseSize after 1000 rows then delete",
    "3.8",
    [
        X(
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n<1000) "
            "INSERT INTO t SELECT n, hex(randomblob(100)) FROM c"
        ),
        SIZE,
        X("DELETE FROM t"),
        SIZE,
    ],
    setup=["CREATE TABLE t(x, y)"],
)

# -- §3.6 limits ---------------------------------------------------------------------------------


def sql_of_bytes(n: int) -> Json:
    """``SELECT length('aaa…') AS n`` of exactly ``n`` UTF-8 bytes."""
    return cat("SELECT length('", rep("a", n - 22), "') AS n")


case("limit/sql length 100000 bytes", "3.6", [X(sql_of_bytes(100_000))])
case("limit/sql length 100001 bytes", "3.6", [X(sql_of_bytes(100_001))])
case(
    "limit/sql length 100000 bytes multibyte (49988 é)",
    "3.6",
    [X(cat("SELECT length('", rep("é", 49_988), "aa') AS n"))],
)
case(
    "limit/sql length 100001 bytes multibyte (49988 é + 3 a)",
    "3.6",
    [X(cat("SELECT length('", rep("é", 49_988), "aaa') AS n"))],
)
case("limit/sql 60000 é (120 kB)", "3.6", [X(cat("SELECT length('", rep("é", 60_000), "') AS n"))])
case(
    "limit/sql two statements of 50000 bytes joined with ; (100001 bytes)",
    "3.6",
    [X(cat(sql_of_bytes(50_000), ";", sql_of_bytes(50_000)))],
)
case(
    "limit/sql two statements totalling 100000 bytes",
    "3.6",
    [X(cat(sql_of_bytes(50_000), ";", sql_of_bytes(49_999)))],
)
case(
    "limit/sql 100000 bytes with trailing whitespace beyond",
    "3.6",
    [X(cat(sql_of_bytes(99_999), " "))],
)


def qmarks(n: int) -> str:
    return "SELECT " + ",".join(["?"] * n)


case("limit/100 bindings", "3.6", [X(qmarks(100), *range(100))])
case("limit/101 bindings", "3.6", [X(qmarks(101), *range(101))])
case("limit/?100", "3.6", [X("SELECT ?100", *range(100))])
case("limit/?101", "3.6", [X("SELECT ?101", *range(101))])
case("limit/?0", "3.6", [X("SELECT ?0", 1)])


def cols(n: int) -> str:
    return ", ".join(f"c{i}" for i in range(1, n + 1))


case("limit/table with 100 columns", "3.6", [X(f"CREATE TABLE cols100({cols(100)})")])
case("limit/table with 101 columns", "3.6", [X(f"CREATE TABLE cols101({cols(101)})")])
case("limit/select 100 result columns", "3.6", [X("SELECT " + ", ".join(["1"] * 100))])
case("limit/select 101 result columns", "3.6", [X("SELECT " + ", ".join(["1"] * 101))])
case(
    "limit/alter add the 101st column",
    "3.6",
    [X("ALTER TABLE cols100 ADD COLUMN c101")],
    setup=[f"CREATE TABLE cols100({cols(100)})"],
)
case(
    "limit/index on 100 columns",
    "3.6",
    [X(f"CREATE INDEX i100 ON cols100({cols(100)})")],
    setup=[f"CREATE TABLE cols100({cols(100)})"],
)
case(
    "limit/index on 101 columns",
    "3.6",
    [X(f"CREATE INDEX i101 ON cols100({cols(100)}, c1)")],
    setup=[f"CREATE TABLE cols100({cols(100)})"],
)
case(
    "limit/view with 101 columns",
    "3.6",
    [X("CREATE VIEW v101 AS SELECT " + ", ".join(f"1 AS k{i}" for i in range(101)))],
)

LEN = 8_388_642  # measured on 1.20261117.1 (A/B: 2,200,000)
for n, label in ((LEN, "max"), (LEN + 1, "max+1")):
    case(f"limit/value bound text {label} ({n} B)", "3.6", [X("SELECT length(?)", rep("a", n))])
    case(
        f"limit/value bound blob {label} ({n} B)", "3.6", [X("SELECT length(?)", {"$zeroblob": n})]
    )
    case(f"limit/value zeroblob() {label} ({n} B)", "3.6", [X(f"SELECT length(zeroblob({n}))")])
    case(
        f"limit/value concat {label} ({n} B)",
        "3.6",
        [X("SELECT length(? || ?)", rep("a", n // 2), rep("a", n - n // 2))],
    )
case(
    "limit/value bound multibyte text 4194321 é (8388642 B)",
    "3.6",
    [X("SELECT length(?), octet_length(?1)", rep("é", LEN // 2))],
)
case(
    "limit/value bound multibyte text 4194322 é (8388644 B)",
    "3.6",
    [X("SELECT length(?)", rep("é", LEN // 2 + 1))],
)
for n in (LEN - 5, LEN - 4):
    case(
        f"limit/record single-column insert {n} B",
        "3.6",
        [X("INSERT INTO big VALUES (?)", rep("a", n)), X("SELECT length(v) FROM big")],
        setup=["CREATE TABLE big(v)"],
    )
case(
    "limit/record two half-size columns in one row",
    "3.6",
    [X("INSERT INTO big2 VALUES (?, ?)", rep("a", LEN // 2), rep("a", LEN // 2))],
    setup=["CREATE TABLE big2(a, b)"],
)
case(
    "limit/record two 4 MB columns in one row",
    "3.6",
    [X("INSERT INTO big2 VALUES (?, ?)", rep("a", 4_000_000), rep("a", 4_000_000))],
    setup=["CREATE TABLE big2(a, b)"],
)
case(
    "limit/value 2200001 B (the A/B limit) bound text",
    "3.6",
    [X("SELECT length(?)", rep("a", 2_200_001))],
)

for n, ch in ((50, "a"), (51, "a"), (25, "é"), (26, "é")):
    pattern = ch * n
    label = f"{n}x{ch}"
    case(f"limit/LIKE bound pattern {label}", "3.6", [X("SELECT 'x' LIKE ?", pattern)])
    case(f"limit/LIKE literal pattern {label}", "3.6", [X(f"SELECT 'x' LIKE '{pattern}'")])
    case(
        f"limit/LIKE ESCAPE pattern {label}",
        "3.6",
        [X("SELECT 'x' LIKE ? ESCAPE '\\'", pattern)],
    )
    case(
        f"limit/LIKE pattern from a column {label}",
        "3.6",
        [X("SELECT 'x' LIKE p FROM pat")],
        setup=["CREATE TABLE pat(p)", X("INSERT INTO pat VALUES (?)", pattern)],
    )
    case(f"limit/GLOB bound pattern {label}", "3.6", [X("SELECT 'x' GLOB ?", pattern)])
    case(f"limit/like() function pattern {label}", "3.6", [X("SELECT like(?, 'x')", pattern)])

for n in (127, 128):
    args = ",".join(["1"] * n)
    case(f"limit/max() with {n} args", "3.6", [X(f"SELECT max({args})")])
    case(f"limit/json_array() with {n} args", "3.6", [X(f"SELECT json_array({args})")])

for n in (100, 101):
    case(f"limit/expression 1+1+… {n} terms", "3.6", [X("SELECT " + "+".join(["1"] * n))])
for n in (99, 100, 1000):
    case(
        f"limit/nested abs( {n}",
        "3.6",
        [X(cat("SELECT ", rep("abs(", n), "1", rep(")", n), " AS n"))],
    )
for n in (2493, 2494, 4999):
    case(
        f"limit/redundant parentheses {n}",
        "3.6",
        [X(cat("SELECT ", rep("(", n), "1", rep(")", n), " AS n"))],
    )


def compound(n: int) -> str:
    return " UNION ALL ".join(f"SELECT {i}" for i in range(1, n + 1))


case("limit/compound select 5 terms", "3.6", [X(compound(5))])
case("limit/compound select 6 terms", "3.6", [X(compound(6))])
case(
    "limit/compound select 6 terms with UNION",
    "3.6",
    [X(" UNION ".join(f"SELECT {i}" for i in range(6)))],
)
case(
    "limit/VALUES with 1000 rows",
    "3.6",
    [X("SELECT count(*) FROM (VALUES " + ",".join(f"({i})" for i in range(1000)) + ")")],
)
case(
    "limit/INSERT VALUES with 1000 rows",
    "3.6",
    [
        X("INSERT INTO v VALUES " + ",".join(f"({i})" for i in range(1000))),
        X("SELECT count(*) FROM v"),
    ],
    setup=["CREATE TABLE v(x)"],
)
for n in (64, 65):
    case(
        f"limit/join of {n} tables",
        "3.6",
        [X("SELECT count(*) FROM " + ", ".join(f"j AS j{i}" for i in range(n)))],
        setup=["CREATE TABLE j(x)"],
    )
case(
    "limit/recursive CTE 100000 rows",
    "3.6",
    [
        X(
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n<100000) "
            "SELECT count(*) FROM c"
        )
    ],
)
for n in (5_000, 20_000, 40_000):
    case(
        f"limit/VDBE ops: IN list of {n} values",
        "3.6",
        [X(cat("SELECT 1 IN (", rep("1,", n - 1), "1) AS n"))],
    )
for n in (2_000, 7_000):
    case(
        f"limit/VDBE ops: CASE with {n} WHEN",
        "3.6",
        [X(cat("SELECT CASE 1 ", rep("WHEN 1 THEN 1 ", n), "END AS n"))],
    )
case(
    "limit/VDBE ops: 100 columns x IN lists",
    "3.6",
    [X(cat("SELECT ", rep("1 IN (" + ",".join(["1"] * 400) + ") AS x, ", 99), "1"))],
)
for depth in (9, 10, 11):
    case(
        f"limit/recursive trigger chain of {depth} levels",
        "3.6",
        [X("INSERT INTO r VALUES (1)"), X("SELECT count(*), max(n) FROM r")],
        setup=[
            "PRAGMA recursive_triggers=ON",
            "CREATE TABLE r(n)",
            f"CREATE TRIGGER rt AFTER INSERT ON r WHEN new.n <= {depth} "
            "BEGIN INSERT INTO r VALUES (new.n + 1); END",
        ],
    )
case(
    "limit/recursive trigger without recursive_triggers",
    "3.6",
    [X("INSERT INTO r VALUES (1)"), X("SELECT count(*) FROM r")],
    setup=[
        "CREATE TABLE r(n)",
        "CREATE TRIGGER rt AFTER INSERT ON r WHEN new.n < 50 BEGIN INSERT INTO r VALUES (new.n "
        "+ 1); END",
    ],
)
for depth in (10, 11):
    tables = [f"CREATE TABLE n{i}(x)" for i in range(depth + 1)]
    trig = [
        f"CREATE TRIGGER tn{i} AFTER INSERT ON n{i} BEGIN INSERT INTO n{i + 1} VALUES (new.x); END"
        for i in range(depth)
    ]
    case(
        f"limit/nested triggers across {depth} tables",
        "3.6",
        [X("INSERT INTO n0 VALUES (1)"), X(f"SELECT count(*) FROM n{depth}")],
        setup=tables + trig,
    )

# -- §3.7 multiple statements --------------------------------------------------------------------

MULTI: list[tuple[str, tuple[Any, ...], list[str]]] = [
    ("CREATE TABLE a(x); CREATE TABLE b(y);", (), []),
    ("SELECT 1 AS one; SELECT 2 AS two", (), []),
    (
        "INSERT INTO m VALUES (1); INSERT INTO m VALUES (2); SELECT count(*) FROM m",
        (),
        ["CREATE TABLE m(x)"],
    ),
    ("INSERT INTO m VALUES (1); SELECT ? AS p", (42,), ["CREATE TABLE m(x)"]),
    ("SELECT ? AS p; SELECT 1", (42,), []),
    ("SELECT ? AS p; SELECT ?", (1, 2), []),
    ("SELECT 1; SELECT 2", (42,), []),
    ("SELECT 1", (42,), []),
    ("SELECT 1;", (), []),
    ("SELECT 1; ", (), []),
    ("SELECT 1;\n", (), []),
    ("SELECT 1;\t", (), []),
    ("SELECT 1;\r\n", (), []),
    ("SELECT 1 -- c", (), []),
    ("SELECT 1 /* c */", (), []),
    ("SELECT 1;;", (), []),
    ("SELECT 1; ;", (), []),
    ("SELECT 1; -- c", (), []),
    ("SELECT 1;\n-- c\n", (), []),
    ("SELECT 1; /* c */", (), []),
    ("SELECT 1; /* c */ SELECT 2", (), []),
    (";SELECT 1", (), []),
    (";;SELECT 1", (), []),
    ("SELECT 1;;SELECT 2", (), []),
    ("-- c\nSELECT 1", (), []),
    ("/* c */ SELECT 1", (), []),
    ("", (), []),
    ("-- nothing", (), []),
    (";", (), []),
    ("   ", (), []),
    ("/* only */", (), []),
    ("SELECT 1; SELEC 2", (), []),
    ("SELECT 1 SELECT 2", (), []),
    (
        "CREATE TABLE t1(x); CREATE TRIGGER tr1 AFTER INSERT ON t1 BEGIN SELECT 1; END; INSERT "
        "INTO t1 VALUES (1)",
        (),
        [],
    ),
]
for sql, bindings, setup in MULTI:
    label = sql.encode("unicode_escape").decode() or "<empty>"
    if bindings:
        label += f" with bindings {list(bindings)}"
    case(f"multi/{label}", "3.7", [X(sql, *bindings)], setup=setup)
case(
    "multi/first INSERT stays applied when the second statement fails",
    "3.7",
    [X("INSERT INTO m VALUES (100); INSERT INTO nosuch VALUES (1)"), X("SELECT x FROM m")],
    setup=["CREATE TABLE m(x)"],
)
case(
    "multi/nothing after the failing statement runs",
    "3.7",
    [X("INSERT INTO nosuch VALUES (1); INSERT INTO m VALUES (200)"), X("SELECT x FROM m")],
    setup=["CREATE TABLE m(x)"],
)
case(
    "multi/failing exec among several in one request: only it is undone",
    "3.7",
    [
        B(
            "INSERT INTO m VALUES (1)",
            "INSERT INTO m VALUES (2), (NULL)",
            "INSERT INTO m VALUES (3)",
            "SELECT x FROM m ORDER BY x",
        )
    ],
    setup=["CREATE TABLE m(x NOT NULL)"],
)
case(
    "multi/rowsRead and rowsWritten are the last statement's",
    "3.7",
    [X("INSERT INTO m VALUES (1); INSERT INTO m VALUES (2); SELECT count(*) FROM m")],
    setup=["CREATE TABLE m(x)"],
)

# -- §3.8 bindings, values, cursor ---------------------------------------------------------------

BOUND: list[tuple[str, Any]] = [
    ("42", 42),
    ("0", 0),
    ("-7", -7),
    ("1.25", 1.25),
    ("2^53+1", 9_007_199_254_740_993),
    ("Infinity", {"$num": "Infinity"}),
    ("-Infinity", {"$num": "-Infinity"}),
    ("NaN", {"$num": "NaN"}),
    ("-0", {"$num": "-0"}),
    ("string", "hello"),
    ("empty string", ""),
    ("null", None),
    ("undefined", {"$undefined": True}),
    ("true", True),
    ("false", False),
    ("Uint8Array", b"\x00\xff"),
    ("empty Uint8Array", b""),
    ("ArrayBuffer", {"$arraybuffer": "0102"}),
    ("object", {"$object": {"a": 1}}),
    ("Date(0)", {"$date": 0}),
    ("BigInt 5n", {"$bigint": "5"}),
]
for label, value in BOUND:
    case(f"bind/typeof and value of {label}", "3.8", [X("SELECT typeof(?), ?1", value)])
case(
    "bind/42 into untyped, TEXT, INTEGER, NUMERIC, REAL, BLOB columns",
    "3.8",
    [
        X("INSERT INTO ty VALUES (?, ?, ?, ?, ?, ?)", 42, 42, 42, 42, 42, 42),
        X(
            "SELECT typeof(u), u, typeof(t), t, typeof(i), i, typeof(n), n, typeof(r), r, "
            "typeof(b), b FROM ty"
        ),
    ],
    setup=["CREATE TABLE ty(u, t TEXT, i INTEGER, n NUMERIC, r REAL, b BLOB)"],
)
case(
    "bind/1.5 and true into TEXT and INTEGER columns",
    "3.8",
    [
        X("INSERT INTO ty(t, i) VALUES (?, ?), (?, ?)", 1.5, 1.5, True, True),
        X("SELECT typeof(t), t, typeof(i), i FROM ty ORDER BY rowid"),
    ],
    setup=["CREATE TABLE ty(u, t TEXT, i INTEGER, n NUMERIC, r REAL, b BLOB)"],
)
case("bind/? = 42 is true", "3.8", [X("SELECT ? = 42, ? = 42.0, ? IS 42", 42, 42, 42)])
case(
    "bind/42 in STRICT INTEGER column",
    "3.8",
    [X("INSERT INTO si VALUES (?)", 42), X("SELECT typeof(x), x FROM si")],
    setup=["CREATE TABLE si(x INTEGER) STRICT"],
)
case(
    "bind/1.5 in STRICT INTEGER column",
    "3.8",
    [X("INSERT INTO si VALUES (?)", 1.5)],
    setup=["CREATE TABLE si(x INTEGER) STRICT"],
)
case(
    "bind/true in STRICT TEXT column",
    "3.8",
    [X("INSERT INTO st VALUES (?)", True), X("SELECT x FROM st")],
    setup=["CREATE TABLE st(x TEXT) STRICT"],
)
case(
    "bind/42 as rowid alias",
    "3.8",
    [X("INSERT INTO ra VALUES (?, 'a')", 42), X("SELECT typeof(id), id FROM ra")],
    setup=["CREATE TABLE ra(id INTEGER PRIMARY KEY, v)"],
)
case(
    "bind/1.5 as rowid alias",
    "3.8",
    [X("INSERT INTO ra VALUES (?, 'a')", 1.5)],
    setup=["CREATE TABLE ra(id INTEGER PRIMARY KEY, v)"],
)
case("bind/named :a and :b bind positionally", "3.8", [X("SELECT :b, :a", 1, 2)])
case("bind/$a and @b", "3.8", [X("SELECT $a, @b", 1, 2)])
case("bind/?2, ?1", "3.8", [X("SELECT ?2, ?1", 1, 2)])
case("bind/?1 twice", "3.8", [X("SELECT ?1, ?1", 7)])
case("bind/wrong number: too few", "3.8", [X("SELECT ?, ?", 1)])
case("bind/wrong number: too many", "3.8", [X("SELECT ?", 1, 2)])
case("bind/wrong number: none given", "3.8", [X("SELECT ?")])
case("result/integer above 2^53", "3.8", [X("SELECT 9007199254740993, typeof(9007199254740993)")])
case("result/max int64", "3.8", [X("SELECT 9223372036854775807, -9223372036854775808")])
case("result/-0.0 and 0.5", "3.8", [X("SELECT -0.0, 0.5, 1e308 * 10, -1e308 * 10")])
case("result/blob", "3.8", [X("SELECT x'00ff10', x''")])
case("result/text with NUL and unicode", "3.8", [X("SELECT 'a' || char(0) || 'b', 'é😀'")])
case("result/duplicate column names raw", "3.8", [X("SELECT 1 AS a, 2 AS a")])
case("result/duplicate column names objects", "3.8", [X("SELECT 1 AS a, 2 AS a", mode="objects")])
case("result/one() with no rows", "3.8", [X("SELECT 1 WHERE 0", mode="one")])
case("result/one() with two rows", "3.8", [X("SELECT 1 UNION ALL SELECT 2", mode="one")])
case("result/one() with one row", "3.8", [X("SELECT 1 AS x", mode="one")])
case(
    "result/columnNames of expressions",
    "3.8",
    [X("SELECT 1, 1+1, 'a' AS \"q\", t.* FROM t")],
    setup=['CREATE TABLE t("Mixed Case", b)', "INSERT INTO t VALUES (1, 2)"],
)
case(
    "result/rowsRead and rowsWritten",
    "3.8",
    [
        X("CREATE TABLE rw(x)"),
        X("INSERT INTO rw VALUES (1)"),
        X("INSERT INTO rw VALUES (2), (3)"),
        X("SELECT count(*) FROM rw"),
        X("SELECT * FROM rw"),
        X("UPDATE rw SET x = x + 1"),
        X("DELETE FROM rw WHERE x > 2"),
        X("CREATE INDEX rw_x ON rw(x)"),
        X("SELECT * FROM rw WHERE x = 2"),
    ],
)
case(
    "result/cursor not consumed (drizzle run())",
    "3.8",
    [X("INSERT INTO nc VALUES (1), (2)", mode="none"), X("SELECT count(*) FROM nc")],
    setup=["CREATE TABLE nc(x)"],
)
case(
    "result/cursor not consumed still executes every statement",
    "3.8",
    [
        X("INSERT INTO nc VALUES (1); INSERT INTO nc VALUES (2); SELECT * FROM nc", mode="none"),
        X("SELECT count(*) FROM nc"),
    ],
    setup=["CREATE TABLE nc(x)"],
)
case(
    "result/unconsumed SELECT of a failing row",
    "3.8",
    [X("SELECT abs(-9223372036854775808)", mode="none"), X("SELECT abs(-9223372036854775808)")],
)

# -- §3.9 functions ------------------------------------------------------------------------------

FUNCTION_EXPRS = r"""
sqrt(16)
pow(2,10)
power(2,10)
ln(1)
log(100)
log(2,8)
log10(100)
log2(8)
exp(0)
pi()
ceil(1.2)
ceiling(1.2)
floor(1.8)
trunc(1.8)
mod(7,3)
sin(0)
cos(0)
tan(0)
asin(0)
acos(1)
atan(0)
atan2(0,1)
sinh(0)
cosh(0)
tanh(0)
asinh(0)
acosh(1)
atanh(0)
degrees(pi())
radians(180)
sign(-3)
json('{}')
json_object('a',1)
json_set('{}','$.a',1)
json_patch('{}','{"a":1}')
json_type('1')
json_quote('x')
json_insert('{}','$.a',1)
json_replace('{}','$.a',1)
json_remove('{"a":1}','$.a')
json_array_length('[1]')
json_pretty('{}')
jsonb_extract(jsonb('{"a":1}'),'$.a')
quote('x')
zeroblob(2)
hex('a')
ltrim(' a')
rtrim('a ')
glob('a*','ab')
like('a%','ab')
char(72,105)
min(1,2)
max(1,2)
date('now') IS NOT NULL
time('now') IS NOT NULL
strftime('%s','now') IS NOT NULL
current_timestamp IS NOT NULL
sqlite_version()
sqlite_source_id()
changes()
total_changes()
last_insert_rowid()
random() IS NOT NULL
randomblob(2) IS NOT NULL
unicode('a')
printf('%d',1)
load_extension('x')
sqlite_compileoption_used('X')
fts5(1)
unistr('\u0041')
octet_length('a')
subtype(1)
stddev(1)
readfile('x')
writefile('x','y')
edit('x')
sha1('x')
sha3('x')
md5('x')
crc32('x')
ieee754(1.0)
base64('x')
uuid()
regexp('a','a')
eval('select 1')
json_group_object('a',1)
group_concat('a','-')
sum(1)
avg(1)
count(*)
""".strip().split("\n")
for expr in FUNCTION_EXPRS:
    case(f"func/SELECT {expr}", "3.9", [X(f"SELECT {expr}")])

FUNCTION_QUERIES = [
    "SELECT sqlite_version()",
    "SELECT sqlite_source_id()",
    "SELECT sqlite_compileoption_used('ENABLE_FTS5')",
    "SELECT sqlite_compileoption_get(0)",
    "SELECT json_extract('{\"a\":[1,2]}', '$.a[1]')",
    "SELECT '{\"a\":1}' -> '$.a', '{\"a\":1}' ->> '$.a'",
    "SELECT json_group_array(x) FROM (SELECT 1 x UNION ALL SELECT 2)",
    "SELECT jsonb('{\"a\":1}')",
    "SELECT json_valid('{')",
    "SELECT sqrt(16), pow(2,10), ln(1), log10(100), pi(), ceil(1.2), floor(1.8), mod(7,3), sin(0)",
    "SELECT round(2.5), abs(-1), random() IS NOT NULL, hex(randomblob(4)) IS NOT NULL",
    "SELECT printf('%05d', 42), format('%s-%s', 'a', 'b')",
    "SELECT strftime('%Y', 'now') IS NOT NULL, datetime(0, 'unixepoch'), julianday('2000-01-01')",
    "SELECT unixepoch() > 1700000000, unixepoch('subsec') IS NOT NULL",
    "SELECT iif(1, 'y', 'n'), nullif(1,1), coalesce(NULL, 2), ifnull(NULL, 3)",
    "SELECT instr('abc','b'), substr('abc',2), trim(' a '), upper('a'), lower('A'), "
    "replace('aa','a','b'), unicode('A'), char(65)",
    "SELECT concat('a','b'), concat_ws('-','a','b')",
    "SELECT octet_length('é'), unhex('41')",
    "SELECT string_agg(x, ',') FROM (SELECT 'a' x UNION ALL SELECT 'b')",
    "SELECT median(1)",
    "SELECT regexp('a', 'a')",
    "SELECT 'a' REGEXP 'a'",
    "SELECT soundex('x')",
    "SELECT total(1), group_concat(1)",
    "SELECT row_number() OVER (), rank() OVER (ORDER BY 1)",
    "SELECT likelihood(1, 0.5), likely(1), unlikely(1)",
    "SELECT typeof(1), typeof(1.0), typeof('x'), typeof(x'00'), typeof(NULL)",
    "SELECT changes()",
    "SELECT last_insert_rowid()",
    "SELECT sqlite_offset(1)",
    "SELECT load_extension('libfoo')",
    "SELECT fts5_source_id()",
    "SELECT highlight(1)",
    "SELECT 1 WHERE 'A' LIKE 'a'",
    "SELECT 'Abc' = 'abc' COLLATE NOCASE, 'a ' = 'a' COLLATE RTRIM",
    "SELECT 1 COLLATE BINARY",
    "SELECT 1 COLLATE nosuch",
    "SELECT decimal('1.5')",
    "SELECT uuid()",
    "SELECT timediff('2020-01-02', '2020-01-01')",
    "SELECT percentile(1, 50)",
    "SELECT 9223372036854775807 + 1",
    "SELECT 1/0, 1%0",
    "SELECT CAST('12abc' AS INTEGER)",
    "SELECT unistr('\\u0041')",
    "SELECT jsonb_object('a', 1), json(jsonb_object('a', 1))",
    "SELECT json_each.value FROM json_each('[1,2]')",
    "SELECT format('%q', 'it''s')",
    "SELECT if(1, 'a', 'b')",
    "SELECT sqlite_compileoption_get(1)",
    "SELECT nosuchfunc(1)",
    "SELECT max()",
    "SELECT abs(1, 2)",
    "SELECT substring('abcdef', 2, 3), ltrim('xxa', 'x'), instr(x'0102', x'02')",
    "SELECT json_array_insert('[1,2]', '$[1]', 9)",
    "SELECT percentile_cont(x, 0.5) FROM (SELECT 1 x)",
]
for sql in FUNCTION_QUERIES:
    case(f"funcq/{sql}", "3.9", [X(sql)])
case("func/SELECT random()", "3.9", [X("SELECT random()")], compare="status")
case("func/SELECT randomblob(2)", "3.9", [X("SELECT typeof(randomblob(2)), length(randomblob(2))")])
case(
    "func/SELECT unixepoch(), datetime(0, 'unixepoch')",
    "3.9",
    [X("SELECT unixepoch(), datetime(0, 'unixepoch')")],
    compare="status",
)

# -- §3.10 transactionSync / transaction() --------------------------------------------------------

TX_SETUP = ["CREATE TABLE x(v)"]
COUNT = X("SELECT count(*) FROM x")

# a write whose RETURNING rows are never read, and a statement that rolls the whole
# transaction back: workerd cannot end its transaction, fails the request with
# "internal error; reference = <random>" and resets the DO (the next request constructs anew)
FATAL_SETUP = ["CREATE TABLE x(v UNIQUE)", "INSERT INTO x VALUES (1)"]
_FATAL = [
    (
        "unread INSERT RETURNING in transactionSync",
        [txn(st("INSERT INTO x VALUES (2) RETURNING v", mode="none"))],
    ),
    ("read INSERT RETURNING in transactionSync", [txn(st("INSERT INTO x VALUES (2) RETURNING v"))]),
    ("one() of INSERT RETURNING", [txn(st("INSERT INTO x VALUES (2) RETURNING v", mode="one"))]),
    (
        "one() of two RETURNING rows",
        [txn(st("INSERT INTO x VALUES (2), (3) RETURNING v", mode="one"))],
    ),
    (
        "unread RETURNING, then the callback throws",
        [txn(st("INSERT INTO x VALUES (2) RETURNING v", mode="none"), throw=True)],
    ),
    (
        "unread RETURNING before another statement",
        [txn(st("INSERT INTO x VALUES (2) RETURNING v; SELECT 1", mode="none"))],
    ),
    (
        "RETURNING in a read statement list",
        [txn(st("INSERT INTO x VALUES (2) RETURNING v; SELECT 1"))],
    ),
    (
        "unread RETURNING after another statement",
        [txn(st("SELECT 1; INSERT INTO x VALUES (2) RETURNING v", mode="none"))],
    ),
    (
        "unread UPDATE RETURNING no row",
        [txn(st("UPDATE x SET v = 5 WHERE v = 99 RETURNING v", mode="none"))],
    ),
    ("unread DELETE RETURNING a row", [txn(st("DELETE FROM x RETURNING v", mode="none"))]),
    ("unread SELECT in transactionSync", [txn(st("SELECT v FROM x", mode="none"))]),
    (
        "unread RETURNING outside transactionSync",
        [st("INSERT INTO x VALUES (2) RETURNING v", mode="none")],
    ),
    (
        "unread RETURNING, then an await",
        [st("INSERT INTO x VALUES (2) RETURNING v", mode="none"), SLEEP0],
    ),
    (
        "OR ROLLBACK conflict caught in transactionSync",
        [txn(st("INSERT INTO x VALUES (7)"), st("INSERT OR ROLLBACK INTO x VALUES (1)"))],
    ),
    (
        "OR ROLLBACK conflict thrown out of transactionSync",
        [txn(st("INSERT OR ROLLBACK INTO x VALUES (1)", propagate=True))],
    ),
    (
        "OR ROLLBACK conflict outside transactionSync",
        [st("INSERT INTO x VALUES (7)"), st("INSERT OR ROLLBACK INTO x VALUES (1)")],
    ),
    (
        "OR ROLLBACK conflict, then more writes",
        [st("INSERT OR ROLLBACK INTO x VALUES (1)"), st("INSERT INTO x VALUES (8)")],
    ),
    ("OR ROLLBACK without a conflict", [txn(st("INSERT OR ROLLBACK INTO x VALUES (3)"))]),
    ("OR ABORT conflict", [txn(st("INSERT OR ABORT INTO x VALUES (1)"))]),
    ("OR FAIL conflict", [txn(st("INSERT OR FAIL INTO x VALUES (1)"))]),
    ("OR IGNORE conflict", [txn(st("INSERT OR IGNORE INTO x VALUES (1)"))]),
    (
        "UPDATE OR ROLLBACK conflict",
        [txn(st("INSERT INTO x VALUES (2)"), st("UPDATE OR ROLLBACK x SET v = 1 WHERE v = 2"))],
    ),
]
for _label, _steps in _FATAL:
    case(f"fatal/{_label}", "3.10", [S(*_steps), COUNT, COUNT], setup=FATAL_SETUP)
for _label, _sql in [
    ("a conflict", "INSERT INTO x VALUES (1)"),
    ("OR ABORT overrides it", "INSERT OR ABORT INTO x VALUES (1)"),
    ("an upsert does not conflict", "INSERT INTO x VALUES (1) ON CONFLICT DO NOTHING"),
]:
    case(
        f"fatal/UNIQUE ON CONFLICT ROLLBACK: {_label}",
        "3.10",
        [S(txn(st(_sql))), X("SELECT count(*) FROM x")],
        setup=["CREATE TABLE x(v UNIQUE ON CONFLICT ROLLBACK)", "INSERT INTO x VALUES (1)"],
    )
for _label, _tail in [
    ("a table that does not exist", "SELECT * FROM nosuch"),
    ("only a comment", "/* t */"),
    ("BEGIN", "BEGIN"),
]:
    case(
        f"fatal/unread RETURNING before a statement that does not prepare: {_label}",
        "3.7",
        [S(st(f"INSERT INTO x VALUES (2) RETURNING v; {_tail}", mode="none")), COUNT],
        setup=FATAL_SETUP,
    )

# a read statement whose rows nobody reads keeps running: SQLite refuses DROP TABLE and DROP
# INDEX meanwhile (database table is locked); drizzle's run() never reads a migration's SELECT
LOCK_SETUP = [
    "CREATE TABLE a(x)",
    "INSERT INTO a VALUES (1), (2)",
    "CREATE TABLE b(y)",
    "CREATE INDEX ax ON a(x)",
]
SCHEMA_Q = X("SELECT type, name FROM sqlite_master ORDER BY name")
for _label, _steps in [
    ("unread SELECT, then DROP TABLE", [st("SELECT x FROM a", mode="none"), st("DROP TABLE b")]),
    ("unread SELECT, then DROP INDEX", [st("SELECT x FROM a", mode="none"), st("DROP INDEX ax")]),
    ("read SELECT, then DROP TABLE", [st("SELECT x FROM a"), st("DROP TABLE b")]),
    ("SELECT of no table, then DROP TABLE", [st("SELECT 1", mode="none"), st("DROP TABLE b")]),
    (
        "SELECT of no row, then DROP TABLE",
        [st("SELECT x FROM a WHERE 0", mode="none"), st("DROP TABLE b")],
    ),
    (
        "SELECT before the last of an exec, then DROP",
        [st("SELECT x FROM a; SELECT 1"), st("DROP TABLE b")],
    ),
    (
        "unread SELECT, then CREATE and ALTER",
        [st("SELECT x FROM a", mode="none"), st("CREATE TABLE c(z)"), st("ALTER TABLE b ADD w")],
    ),
    (
        "unread SELECT in transactionSync, then DROP",
        [txn(st("SELECT x FROM a", mode="none"), st("DROP TABLE b"))],
    ),
]:
    case(f"lock/{_label}", "3.7", [S(*_steps), SCHEMA_Q], setup=LOCK_SETUP)

for _label, _steps in [
    (
        "unread SELECT, rows deleted, then DROP",
        [st("SELECT x FROM a", mode="none"), st("DELETE FROM a"), st("DROP TABLE b")],
    ),
    (
        "unread SELECT of a column renamed, then DROP",
        [
            st("SELECT y FROM b", mode="none"),
            st("ALTER TABLE b RENAME COLUMN y TO z"),
            st("DROP INDEX ax"),
        ],
    ),
    (
        "a runtime error before the last statement ends the reads before it",
        [st("SELECT x FROM a; SELECT abs(-9223372036854775808); SELECT 1"), st("DROP TABLE b")],
    ),
    (
        "an empty statement before the DROP",
        [st("SELECT x FROM a", mode="none"), st("; DROP TABLE b")],
    ),
]:
    case(f"lock/{_label}", "3.7", [S(*_steps), SCHEMA_Q], setup=LOCK_SETUP)
case(
    "fatal/unread RETURNING, then a runtime error before the last statement",
    "3.7",
    [
        S(st("INSERT INTO x VALUES (9) RETURNING v; SELECT abs(-9223372036854775808); SELECT 1")),
        COUNT,
    ],
    setup=FATAL_SETUP,
)
# the same SQL text run again after a schema change: workerd prepares it afresh (the emulator's
# SQLite statement cache prepared it again inside its first step: no error offset, old names)
RERUN_SETUP = ["CREATE TABLE r(x, y, z UNIQUE)", "INSERT INTO r VALUES (1, 2, 3)"]
for _label, _requests in [
    (
        "a SELECT of a dropped column",
        [
            X("SELECT y FROM r"),
            X("ALTER TABLE r DROP COLUMN y"),
            X("SELECT y FROM r"),
            X("SELECT y FROM r"),
        ],
    ),
    (
        "a SELECT with a binding of a dropped column",
        [
            X("SELECT y FROM r WHERE x = ?", 1),
            X("ALTER TABLE r DROP COLUMN y"),
            X("SELECT y FROM r WHERE x = ?", 1),
        ],
    ),
    (
        "SELECT * after ADD COLUMN and RENAME COLUMN",
        [
            X("SELECT * FROM r"),
            X("ALTER TABLE r ADD COLUMN w DEFAULT 9"),
            X("SELECT * FROM r"),
            X("ALTER TABLE r RENAME COLUMN x TO v"),
            X("SELECT * FROM r"),
        ],
    ),
    (
        "a table dropped and created again with other columns",
        [
            X("SELECT x FROM r"),
            X("DROP TABLE r"),
            X("SELECT x FROM r"),
            X("CREATE TABLE r(q)"),
            X("SELECT x FROM r"),
            X("SELECT * FROM r"),
        ],
    ),
    (
        "a constraint failure after a schema change",
        [
            X("INSERT INTO r(z) VALUES (5)"),
            X("CREATE TABLE s(k)"),
            X("INSERT INTO r(z) VALUES (5)"),
            X("SELECT count(*) FROM r"),
        ],
    ),
    (
        "in one exec",
        [X("SELECT y FROM r; ALTER TABLE r DROP COLUMN y; SELECT y FROM r"), X("SELECT * FROM r")],
    ),
    (
        "a CREATE TABLE run again",
        [X("CREATE TABLE q(a)"), X("CREATE TABLE q(a)"), X("CREATE TABLE r(a)")],
    ),
]:
    case(f"rerun/{_label}", "3.3", _requests, setup=RERUN_SETUP)
case(
    "fatal/OR ROLLBACK in transactionSync, then a write in the same request",
    "3.10",
    [S(txn(st("INSERT OR ROLLBACK INTO x VALUES (1)")), st("INSERT INTO x VALUES (4)")), COUNT],
    setup=FATAL_SETUP,
)
case(
    "reserved/RENAME to _cf_ after an empty statement",
    "3.5",
    [X(";ALTER TABLE t RENAME TO _cf_x")],
    setup=["CREATE TABLE t(a)"],
)
case(
    "stmt/ANALYZE after a comment, PRAGMA optimize: sqlite_stat1 only",
    "3.3",
    [
        X("/* c */ ANALYZE"),
        X("PRAGMA optimize=0x10002"),
        X("SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'"),
    ],
    setup=["CREATE TABLE t(a)", "CREATE INDEX ta ON t(a)", "INSERT INTO t VALUES (1), (2)"],
)
case("stmt/a no-break space after the last statement", "3.7", [X("SELECT 1; \u00a0")])
case("stmt/`/*` ending the text", "3.7", [X("SELECT 1; /*"), X("/*"), X("SELECT 1; /**")])
case("txn/BEGIN with a syntax error after it", "3.10", [X("BEGIN x y"), X("ROLLBACK ON")])
case(
    "reserved/RENAME to _cf_ of a missing table or a view",
    "3.5",
    [X("ALTER TABLE nosuch RENAME TO _cf_x"), X("ALTER TABLE v RENAME TO _cf_x")],
    setup=["CREATE VIEW v AS SELECT 1"],
)
case(
    "func/a function workerd lacks, in a DEFAULT",
    "3.9",
    [
        X("CREATE TABLE t(a DEFAULT (uuid()))"),
        X("ALTER TABLE s ADD COLUMN b DEFAULT (uuid())"),
        X("CREATE TABLE u(a CHECK (uuid()))"),
    ],
    setup=["CREATE TABLE s(a)"],
)
case(
    "pragma/data_version with comments or quotes",
    "3.3",
    [X("PRAGMA /* c */ data_version"), X('PRAGMA "data_version"'), X("PRAGMA data_version -- c")],
)
case(
    "stmt/ANALYZE keeps sqlite_stat1 only",
    "3.3",
    [X("ANALYZE"), X("SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'")],
    setup=["CREATE TABLE t(a)", "CREATE INDEX ta ON t(a)", "INSERT INTO t VALUES (1)"],
)
case(
    "func/carray and dbstat do not exist",
    "3.9",
    [X("SELECT * FROM carray(1, 2)"), X("SELECT * FROM dbstat")],
)
for _kind in ("ROLLBACK", "ABORT", "FAIL", "IGNORE"):
    case(
        f"fatal/RAISE({_kind}) in a trigger",
        "3.10",
        [S(txn(st("INSERT INTO x VALUES (9)"))), COUNT],
        setup=[
            *FATAL_SETUP,
            f"CREATE TRIGGER tr BEFORE INSERT ON x WHEN NEW.v = 9 BEGIN "
            f"SELECT RAISE({_kind if _kind == 'IGNORE' else _kind + ', ' + repr('no 9')}); END",
        ],
    )
case(
    "txn/callback returns: committed",
    "3.10",
    [T("INSERT INTO x VALUES (1)"), COUNT],
    setup=TX_SETUP,
)
case(
    "txn/JS throw after INSERT, CREATE TABLE and INSERT: all rolled back",
    "3.10",
    [
        T("INSERT INTO x VALUES (1)", "CREATE TABLE y(w)", "INSERT INTO y VALUES (1)", throw=True),
        COUNT,
        X("SELECT name FROM sqlite_master ORDER BY name"),
    ],
    setup=TX_SETUP,
)
case(
    "txn/SQL error caught inside the callback: only that statement undone",
    "3.10",
    [
        T("INSERT INTO x VALUES (1)", "INSERT INTO nosuch VALUES (1)", "INSERT INTO x VALUES (2)"),
        COUNT,
    ],
    setup=TX_SETUP,
)
case(
    "txn/SQL error escaping the callback: full rollback",
    "3.10",
    [
        T(
            "INSERT INTO x VALUES (1)",
            "INSERT INTO nosuch VALUES (1)",
            "INSERT INTO x VALUES (2)",
            catch=False,
        ),
        COUNT,
    ],
    setup=TX_SETUP,
)
case(
    "txn/nested throws, outer catches: only inner rolled back",
    "3.10",
    [
        S(txn("INSERT INTO x VALUES (1)", txn("INSERT INTO x VALUES (2)", throw="inner boom"))),
        COUNT,
    ],
    setup=TX_SETUP,
)
case(
    "txn/outer throws after a nested commit: all rolled back",
    "3.10",
    [
        S(txn("INSERT INTO x VALUES (1)", txn("INSERT INTO x VALUES (2)"), throw="outer boom")),
        COUNT,
    ],
    setup=TX_SETUP,
)
case(
    "txn/three levels, middle throws",
    "3.10",
    [
        S(
            txn(
                "INSERT INTO x VALUES (1)",
                txn("INSERT INTO x VALUES (2)", txn("INSERT INTO x VALUES (3)"), throw="middle"),
                "INSERT INTO x VALUES (4)",
            )
        ),
        X("SELECT v FROM x ORDER BY v"),
    ],
    setup=TX_SETUP,
)
case(
    "txn/BEGIN, SAVEPOINT, COMMIT, ROLLBACK, RELEASE inside the callback",
    "3.10",
    [
        T(
            "BEGIN",
            "SAVEPOINT s",
            "COMMIT",
            "ROLLBACK",
            "RELEASE s",
            "RELEASE _cf_savepoint_0",
            "ROLLBACK TO _cf_savepoint_0",
        )
    ],
    setup=TX_SETUP,
)
case("txn/PRAGMA user_version=5 inside", "3.10", [T("PRAGMA user_version=5")], setup=TX_SETUP)
case(
    "txn/immediate FK violation inside, propagated: full rollback",
    "3.10",
    [
        T("INSERT INTO par VALUES (1)", "INSERT INTO chi VALUES (1, 99)", catch=False),
        X("SELECT (SELECT count(*) FROM par), (SELECT count(*) FROM chi)"),
    ],
    setup=[
        "CREATE TABLE par(id INTEGER PRIMARY KEY)",
        "CREATE TABLE chi(id INTEGER PRIMARY KEY, pid REFERENCES par(id))",
    ],
)
case(
    "txn/storage.transaction async with txn.rollback()",
    "3.10",
    [S(asynctxn("INSERT INTO x VALUES (1)", rollback=True)), COUNT],
    setup=TX_SETUP,
)
case(
    "txn/storage.transaction async throws",
    "3.10",
    [S(asynctxn("INSERT INTO x VALUES (1)", throw="async boom")), COUNT],
    setup=TX_SETUP,
)
case(
    "txn/storage.transaction async commits",
    "3.10",
    [S(asynctxn("INSERT INTO x VALUES (1)")), COUNT],
    setup=TX_SETUP,
)
case(
    "txn/DDL inside transactionSync then sqlite_master",
    "3.10",
    [
        T("CREATE TABLE y(w)", "CREATE INDEX y_w ON y(w)", "DROP TABLE x"),
        X("SELECT name FROM sqlite_master ORDER BY name"),
    ],
    setup=TX_SETUP,
)

# -- §3.2 implicit transactions ------------------------------------------------------------------

case(
    "implicit/handler writes (no txn) then throws: writes kept",
    "3.2",
    [S("INSERT INTO x VALUES (1)", throw("handler boom")), COUNT],
    setup=TX_SETUP,
)
case(
    "implicit/transactionSync commits then handler throws: writes kept",
    "3.2",
    [S(txn("INSERT INTO x VALUES (1)"), throw("handler boom")), COUNT],
    setup=TX_SETUP,
)
case(
    "implicit/handler throws after a sleep: writes kept",
    "3.2",
    [S("INSERT INTO x VALUES (1)", SLEEP0, "INSERT INTO x VALUES (2)", throw()), COUNT],
    setup=TX_SETUP,
)
for label, wait in (
    ("no await", []),
    ("await Promise.resolve()", [MICRO]),
    ("await setTimeout(0)", [SLEEP0]),
    ("a 20 ms sleep", [sleep(20)]),
):
    case(
        f"implicit/constructor blockConcurrencyWhile writes then throws after {label}",
        "3.2",
        [
            CTOR(
                plan(
                    "CREATE TABLE IF NOT EXISTS cx(v)",
                    "INSERT INTO cx VALUES (1)",
                    *wait,
                    throw("ctor boom"),
                )
            ),
            X("SELECT 1"),
            X("SELECT count(*) FROM cx"),
        ],
    )
case(
    "implicit/writes in one request are visible to the next",
    "3.2",
    [B("INSERT INTO x VALUES (1)", "SELECT count(*) FROM x"), COUNT],
    setup=TX_SETUP,
)
case(
    "implicit/deferred FK violation at commit resets the object",
    "3.2",
    [
        B(
            "PRAGMA defer_foreign_keys=ON",
            "INSERT INTO chi VALUES (1, 99)",
            "SELECT count(*) FROM chi",
        ),
        X("SELECT count(*) FROM chi"),
        X("PRAGMA defer_foreign_keys"),
    ],
    setup=[
        "CREATE TABLE par(id INTEGER PRIMARY KEY)",
        "CREATE TABLE chi(id INTEGER PRIMARY KEY, pid REFERENCES par(id))",
    ],
)

# -- foreign_keys timing (§3.4 "foreign_keys semantics in detail") -------------------------------

FK_SETUP = [
    "CREATE TABLE par(id INTEGER PRIMARY KEY)",
    "CREATE TABLE chi(id INTEGER PRIMARY KEY, pid INTEGER REFERENCES par(id) ON DELETE CASCADE)",
    "INSERT INTO par VALUES (1), (2)",
    "INSERT INTO chi VALUES (10, 1), (20, 2)",
]
FK = X("PRAGMA foreign_keys")
CHILDREN = X("SELECT count(*) FROM chi")
case("fk/fresh DO reads 1", "3.4", [FK])
case("fk/orphan insert fails", "3.4", [X("INSERT INTO chi VALUES (30, 99)")], setup=FK_SETUP)
case(
    "fk/OFF before any write takes effect and stays for the instance",
    "3.4",
    [B("PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys"), FK, X("INSERT INTO chi VALUES (30, 99)")],
    setup=FK_SETUP,
)
case(
    "fk/OFF after a write in the same turn is a no-op",
    "3.4",
    [B("INSERT INTO par VALUES (3)", "PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys"), FK],
    setup=FK_SETUP,
)
case(
    "fk/OFF after a write + setTimeout(0) takes effect",
    "3.4",
    [S("INSERT INTO par VALUES (3)", SLEEP0, "PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys"), FK],
    setup=FK_SETUP,
)
case(
    "fk/OFF after a write + Promise.resolve() is a no-op",
    "3.4",
    [S("INSERT INTO par VALUES (3)", MICRO, "PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys"), FK],
    setup=FK_SETUP,
)
case(
    "fk/OFF after a read-only statement takes effect",
    "3.4",
    [B("SELECT count(*) FROM par", "PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys")],
    setup=FK_SETUP,
)
case(
    "fk/OFF inside transactionSync is a no-op, cascade still fires",
    "3.4",
    [
        T("PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys", "DELETE FROM par WHERE id = 1"),
        CHILDREN,
        FK,
    ],
    setup=FK_SETUP,
)
case(
    "fk/OFF before transactionSync in the same request is effective inside",
    "3.4",
    [T("DELETE FROM par WHERE id = 1", before=[st("PRAGMA foreign_keys=OFF")]), CHILDREN, FK],
    setup=FK_SETUP,
)
case(
    "fk/OFF; transactionSync; ON in one turn: ON is a no-op",
    "3.4",
    [
        T(
            "DELETE FROM par WHERE id = 1",
            before=[st("PRAGMA foreign_keys=OFF")],
            after=[st("PRAGMA foreign_keys=ON"), st("PRAGMA foreign_keys")],
        ),
        FK,
    ],
    setup=FK_SETUP,
)
case(
    "fk/OFF; transactionSync; setTimeout(0); ON takes effect",
    "3.4",
    [
        T(
            "DELETE FROM par WHERE id = 1",
            before=[st("PRAGMA foreign_keys=OFF")],
            after=[SLEEP0, st("PRAGMA foreign_keys=ON"), st("PRAGMA foreign_keys")],
        ),
        FK,
    ],
    setup=FK_SETUP,
)
case(
    "fk/defer_foreign_keys=ON inside transactionSync, violation fixed",
    "3.4",
    [
        T(
            "PRAGMA defer_foreign_keys=ON",
            "INSERT INTO chi VALUES (30, 3)",
            "INSERT INTO par VALUES (3)",
        ),
        X("PRAGMA defer_foreign_keys"),
        CHILDREN,
    ],
    setup=FK_SETUP,
)
case(
    "fk/defer_foreign_keys=ON inside transactionSync, violation not fixed",
    "3.4",
    [
        T("PRAGMA defer_foreign_keys=ON", "INSERT INTO chi VALUES (30, 99)"),
        CHILDREN,
        X("PRAGMA defer_foreign_keys"),
    ],
    setup=FK_SETUP,
)
case(
    "fk/defer_foreign_keys=ON in the implicit transaction, violation not fixed",
    "3.4",
    [B("PRAGMA defer_foreign_keys=ON", "INSERT INTO chi VALUES (30, 99)"), CHILDREN],
    setup=FK_SETUP,
)
case(
    "fk/defer_foreign_keys=ON and DROP TABLE parent: children deleted anyway",
    "3.4",
    [
        T(
            "PRAGMA defer_foreign_keys=ON",
            "CREATE TABLE __new_par(id INTEGER PRIMARY KEY, extra TEXT)",
            "INSERT INTO __new_par(id) SELECT id FROM par",
            "DROP TABLE par",
            "ALTER TABLE __new_par RENAME TO par",
        ),
        CHILDREN,
    ],
    setup=FK_SETUP,
)
FK_NOACTION_SETUP = [
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)",
    "CREATE TABLE posts(id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id))",
    "INSERT INTO users VALUES (1, 'a')",
    "INSERT INTO posts VALUES (1, 1)",
]
RECREATE = [
    "PRAGMA foreign_keys=OFF",
    "CREATE TABLE __new_users(id INTEGER PRIMARY KEY, name TEXT, email TEXT)",
    "INSERT INTO __new_users(id, name) SELECT id, name FROM users",
    "DROP TABLE users",
    "ALTER TABLE __new_users RENAME TO users",
    "PRAGMA foreign_keys=ON",
]
case(
    "fk/drizzle-kit recreate inside transactionSync, child FK without action",
    "3.4",
    [T(*RECREATE), X("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM posts)")],
    setup=FK_NOACTION_SETUP,
)
case(
    "fk/drizzle-kit recreate after a write in the same request (OFF a no-op)",
    "3.4",
    [
        B("UPDATE users SET name = 'b'", *RECREATE),
        X("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"),
    ],
    setup=FK_NOACTION_SETUP,
)
case(
    "fk/drizzle-kit recreate as the first statements of a request (OFF effective)",
    "3.4",
    [
        B(*RECREATE, "PRAGMA foreign_key_check", "PRAGMA foreign_keys"),
        X("SELECT count(*) FROM posts"),
    ],
    setup=FK_NOACTION_SETUP,
)

# -- §3.11 constructor / blockConcurrencyWhile ---------------------------------------------------

case(
    "ctor/blockConcurrencyWhile throws: caller gets the message, next request re-constructs",
    "3.11",
    [
        CTOR(plan(throw("migration boom in ctor #1")), plan("SELECT 1")),
        X("SELECT 1"),
        X("SELECT 2"),
    ],
)
case(
    "ctor/fails twice then succeeds",
    "3.11",
    [
        CTOR(plan(throw("boom #1")), plan(throw("boom #2")), plan()),
        X("SELECT 1"),
        X("SELECT 1"),
        X("SELECT 1"),
    ],
)
case(
    "ctor/synchronous throw",
    "3.11",
    [CTOR({"syncThrow": "sync ctor boom #"}), X("SELECT 1"), X("SELECT 1")],
)
case(
    "ctor/failing drizzle migrate thrown out of blockConcurrencyWhile",
    "3.11",
    [
        CTOR(
            plan({"op": "migrate", "bundle": "fk-noaction"}),
            plan({"op": "migrate", "bundle": "fk-noaction"}),
        ),
        X("SELECT 1"),
        X("SELECT 1"),
        X("SELECT name FROM sqlite_master"),
    ],
)


def bcw(*steps: Any) -> Json:
    return {"op": "bcw", "steps": [st(s) if isinstance(s, str) else s for s in steps]}


case(
    "bcw/blockConcurrencyWhile in fetch throws: request fails, object reset, writes rolled back",
    "3.11",
    [S(bcw("INSERT INTO x VALUES (1)", throw("bcw boom"))), COUNT],
    setup=TX_SETUP,
)
case(
    "bcw/blockConcurrencyWhile in fetch throws after a sleep: earlier writes kept",
    "3.11",
    [
        S(bcw("INSERT INTO x VALUES (1)", SLEEP0, "INSERT INTO x VALUES (2)", throw("bcw boom"))),
        COUNT,
    ],
    setup=TX_SETUP,
)
case(
    "bcw/blockConcurrencyWhile in fetch succeeds",
    "3.11",
    [S(bcw("INSERT INTO x VALUES (1)", SLEEP0), "SELECT count(*) FROM x"), COUNT],
    setup=TX_SETUP,
)
case(
    "bcw/SQL error inside blockConcurrencyWhile is only recorded",
    "3.11",
    [S(bcw("INSERT INTO x VALUES (1)", "INSERT INTO nosuch VALUES (1)")), COUNT],
    setup=TX_SETUP,
)

# -- drizzle migrate scenarios (drizzle-durable-sqlite.md §6) -------------------------------------

POSTS_STATE = X(
    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM posts), "
    "(SELECT group_concat(author_id) FROM posts)"
)
SEED_STEP3 = [
    X(
        "INSERT INTO users(name, age, email, bio) "
        "VALUES ('ann', 30, 'a@x', 'hi'), ('bob', 40, 'b@x', 'yo')"
    ),
    X(
        "INSERT INTO posts(title, body, author_id) "
        "VALUES (' t1 ', 'b', 1), ('t2', NULL, 1), ('t3', 'c', 2)"
    ),
]
JOURNAL_Q = X(
    "SELECT rowid, id, hash, created_at, typeof(id), typeof(created_at) FROM "
    "__drizzle_migrations ORDER BY rowid"
)

for step in range(1, 7):
    case(
        f"drizzle/basic-step{step} on a fresh DO",
        "drizzle 6",
        [M(f"basic-step{step}"), DUMP, M(f"basic-step{step}"), DUMP],
    )
case("drizzle/basic-nobp on a fresh DO", "drizzle 6", [M("basic-nobp"), DUMP])
case(
    "drizzle/basic steps 1..6 incrementally, migrate twice per step",
    "drizzle 6",
    [r for s in range(1, 7) for r in (M(f"basic-step{s}"), M(f"basic-step{s}"), DUMP)],
)
case(
    "drizzle/step4 recreation deletes posts (cascade)",
    "drizzle 6",
    [
        M("basic-step3"),
        *SEED_STEP3,
        POSTS_STATE,
        M("basic-step4"),
        POSTS_STATE,
        FK,
        X("PRAGMA foreign_key_check"),
        DUMP,
    ],
)
case(
    "drizzle/step4 with PRAGMA foreign_keys=OFF exec'd before migrate in a fresh turn",
    "drizzle 6",
    [
        M("basic-step3"),
        *SEED_STEP3,
        M("basic-step4", before=[st("PRAGMA foreign_keys=OFF")]),
        POSTS_STATE,
        FK,
        X("PRAGMA foreign_key_check"),
    ],
)
case(
    "drizzle/step4 with OFF in the same turn right after a write",
    "drizzle 6",
    [
        M("basic-step3"),
        *SEED_STEP3,
        M(
            "basic-step4",
            before=[st("UPDATE users SET age = age + 1"), st("PRAGMA foreign_keys=OFF")],
        ),
        POSTS_STATE,
        FK,
    ],
)
case(
    "drizzle/step4 with defer_foreign_keys=ON before migrate",
    "drizzle 6",
    [
        M("basic-step3"),
        *SEED_STEP3,
        M("basic-step4", before=[st("PRAGMA defer_foreign_keys=ON")]),
        POSTS_STATE,
    ],
)
case(
    "drizzle/step4 workaround OFF before, ON right after migrate (same turn)",
    "drizzle 6",
    [
        M("basic-step3"),
        *SEED_STEP3,
        M(
            "basic-step4",
            before=[st("PRAGMA foreign_keys=OFF")],
            after=[st("PRAGMA foreign_keys=ON"), st("PRAGMA foreign_keys")],
        ),
        POSTS_STATE,
        FK,
    ],
)
case(
    "drizzle/step4 workaround OFF before, setTimeout(0), ON",
    "drizzle 6",
    [
        M(
            "basic-step3",
        ),
        *SEED_STEP3,
        M(
            "basic-step4",
            before=[st("PRAGMA foreign_keys=OFF")],
            after=[st("PRAGMA foreign_keys=ON"), st("PRAGMA foreign_keys")],
            await_before_after=True,
        ),
        POSTS_STATE,
        FK,
    ],
)
case(
    "drizzle/step4 workaround inside the constructor's blockConcurrencyWhile",
    "drizzle 6",
    [
        M("basic-step3"),
        *SEED_STEP3,
        RESTART,
        CTOR(
            plan(
                "PRAGMA foreign_keys=OFF",
                {"op": "migrate", "bundle": "basic-step4"},
                SLEEP0,
                "PRAGMA foreign_keys=ON",
            )
        ),
        POSTS_STATE,
        FK,
    ],
    note="RESTART ends the instance (the runtime restarts on the same persisted storage) so the "
    "constructor plan applies to a new instance",
)
case(
    "drizzle/step4 when a user has bio NULL: NOT NULL failure, rollback",
    "drizzle 6",
    [
        M("basic-step3"),
        X("INSERT INTO users(name, age, email, bio) VALUES ('ann', 30, 'a@x', NULL)"),
        M("basic-step4"),
        JOURNAL_Q,
        DUMP,
    ],
)
case(
    "drizzle/syntax error in stmt 2 of the last migration, DB at step1",
    "drizzle 6",
    [M("basic-step1"), M("syntax-error-0003"), JOURNAL_Q, DUMP],
)
case("drizzle/syntax error on an empty DB", "drizzle 6", [M("syntax-error-0003"), DUMP])
case(
    "drizzle/out-of-order when is skipped",
    "drizzle 6",
    [M("basic-step2"), M("out-of-order"), JOURNAL_Q, DUMP],
)
case("drizzle/out-of-order bundle on a fresh DO", "drizzle 6", [M("out-of-order"), JOURNAL_Q, DUMP])
case(
    "drizzle/equal when is skipped",
    "drizzle 6",
    [M("basic-step2"), M("equal-when"), JOURNAL_Q, DUMP],
)
case("drizzle/reversed journal array on a fresh DO", "drizzle 6", [M("reversed-journal"), DUMP])
case(
    "drizzle/unedited --custom migration",
    "drizzle 6",
    [M("basic-step5"), M("custom-unedited"), JOURNAL_Q],
)
case(
    "drizzle/trailing comment after the last ; of a chunk",
    "drizzle 6",
    [M("basic-step5"), M("trailing-comment"), JOURNAL_Q],
)
case(
    "drizzle/file ending with a breakpoint",
    "drizzle 6",
    [M("basic-step5"), M("trailing-breakpoint"), JOURNAL_Q],
)
case(
    "drizzle/several statements and a trigger in one chunk",
    "drizzle 6",
    [M("basic-step5"), M("multi-statement-chunk"), DUMP],
)
case(
    "drizzle/BEGIN; ...; COMMIT; in a custom migration",
    "drizzle 6",
    [M("basic-step5"), M("begin-commit"), JOURNAL_Q],
)
case(
    "drizzle/PRAGMA journal_mode=WAL in a migration",
    "drizzle 6",
    [M("basic-step5"), M("journal-mode"), JOURNAL_Q],
)
case(
    "drizzle/INSERT ... RETURNING in a migration: internal error, DO reset",
    "drizzle 6",
    [M("basic-step5"), M("returning-insert"), JOURNAL_Q, DUMP],
)
case(
    "drizzle/UPDATE ... RETURNING on an empty table: no row, applied",
    "drizzle 6",
    [M("basic-step5"), M("returning-update"), JOURNAL_Q],
)
case(
    "drizzle/UPDATE ... RETURNING on a table with rows: internal error",
    "drizzle 6",
    [
        M("basic-step5"),
        X("INSERT INTO `users`(`name`, `email`) VALUES ('a', 'a@x')"),
        M("returning-update"),
        JOURNAL_Q,
    ],
)
case(
    "drizzle/INSERT OR ROLLBACK conflict in a migration: internal error",
    "drizzle 6",
    [M("basic-step5"), M("or-rollback"), JOURNAL_Q],
)
case(
    "drizzle/RAISE(ROLLBACK) from a migration's trigger: internal error",
    "drizzle 6",
    [M("basic-step5"), M("raise-rollback"), JOURNAL_Q],
)
case(
    "drizzle/RAISE(ABORT) from a migration's trigger: Rollback",
    "drizzle 6",
    [M("basic-step5"), M("raise-abort"), JOURNAL_Q],
)
case(
    "drizzle/a SELECT of a table, then a DROP in the same run: locked, Rollback",
    "drizzle 6",
    [M("basic-step5"), M("select-then-drop"), JOURNAL_Q],
)
case(
    "drizzle/applied migration edited afterwards",
    "drizzle 6",
    [M("basic-step3"), M("edited-0002"), DUMP],
)
case("drizzle/edited 0002 on a fresh DO", "drizzle 6", [M("edited-0002"), DUMP])
case(
    "drizzle/journal entry without mNNNN",
    "drizzle 6",
    [M("basic-step1"), M("missing-key"), JOURNAL_Q, DUMP],
)
case("drizzle/mNNNN without a journal entry is ignored", "drizzle 6", [M("extra-key"), JOURNAL_Q])
case("drizzle/entry idx changed", "drizzle 6", [M("idx-changed"), DUMP])
case(
    "drizzle/squashed baseline on an existing DB",
    "drizzle 6",
    [M("basic-step3"), M("squashed"), JOURNAL_Q],
)
case("drizzle/squashed baseline on a fresh DO", "drizzle 6", [M("squashed"), JOURNAL_Q, DUMP])
case(
    "drizzle/FK without action: recreation fails, everything rolled back",
    "drizzle 6",
    [M("fk-noaction"), DUMP],
)
case(
    "drizzle/_cf_ table name in a migration",
    "drizzle 6",
    [M("basic-step1"), M("cf-name"), JOURNAL_Q],
)
case(
    "drizzle/step6 backfill with data",
    "drizzle 6",
    [
        M("basic-step5"),
        X("INSERT INTO users(name, email) VALUES ('c', 'c@x')"),
        M("basic-step6"),
        X("SELECT name, bio FROM users"),
    ],
)
case(
    "drizzle/migrate after a write in the same request",
    "drizzle 6",
    [
        M("basic-step3"),
        *SEED_STEP3,
        M(
            "basic-step4",
            before=[st("INSERT INTO users(name, age, email, bio) VALUES ('c', 1, 'c@x', 'b')")],
        ),
        POSTS_STATE,
    ],
)
case(
    "drizzle/persisted DB after restart: migrate is a no-op, foreign_keys back to 1",
    "5",
    [
        M("basic-step3"),
        X("PRAGMA foreign_keys=OFF"),
        FK,
        RESTART,
        FK,
        M("basic-step3"),
        JOURNAL_Q,
    ],
)


# ---------------------------------------------------------------------------------------------
# bundles (copied from ../shared/bundles at record time; recordings embed them)
# ---------------------------------------------------------------------------------------------

_IMPORT = re.compile(r"^import\s+(m\d{4})\s+from\s+'\./([^']+)';", re.M)


def load_bundle(folder: Path) -> Json:
    drizzle = folder / "drizzle"
    journal = json.loads((drizzle / "meta" / "_journal.json").read_text())
    js = (drizzle / "migrations.js").read_text()
    migrations = {key: (drizzle / fname).read_text() for key, fname in _IMPORT.findall(js)}
    return {"journal": journal, "migrations": migrations}


def derive(base: Json, **changes: Any) -> Json:
    out: Json = json.loads(json.dumps(base))
    for key, value in changes.items():
        if key == "entries":
            out["journal"]["entries"] = value
        elif key == "migrations":
            out["migrations"] = value
    return out


def build_bundles(shared_bundles: Path) -> dict[str, Json]:
    names = [f"basic-step{i}" for i in range(1, 7)] + ["basic-nobp"]
    bundles = {name: load_bundle(shared_bundles / name) for name in names}
    s5 = bundles["basic-step5"]
    s2 = bundles["basic-step2"]
    s3 = bundles["basic-step3"]
    e5 = s5["journal"]["entries"]
    last_when = e5[-1]["when"]

    def extra(tag: str, sql: str, when: int | None = None) -> Json:
        entries = [
            *e5,
            {
                "idx": 5,
                "version": "6",
                "when": when or last_when + 1000,
                "tag": tag,
                "breakpoints": True,
            },
        ]
        return derive(s5, entries=entries, migrations={**s5["migrations"], "m0005": sql})

    # step3 bundle whose 0003 has a syntax error in its second statement
    e3 = s3["journal"]["entries"]
    bundles["syntax-error-0003"] = derive(
        s3,
        entries=[
            *e3,
            {
                "idx": 3,
                "version": "6",
                "when": e3[-1]["when"] + 1000,
                "tag": "0003_broken",
                "breakpoints": True,
            },
        ],
        migrations={
            **s3["migrations"],
            "m0003": "CREATE TABLE `tags` (`id` integer PRIMARY KEY);--> statement-breakpoint\n"
            "CREATE TABL `oops` (`id` integer);",
        },
    )
    e2 = s2["journal"]["entries"]
    # a new migration whose `when` is older than the applied 0001
    ooo = {
        "idx": 2,
        "version": "6",
        "when": e2[0]["when"] + 1,
        "tag": "0002_late_branch",
        "breakpoints": True,
    }
    bundles["out-of-order"] = derive(
        s2,
        entries=[*e2, ooo],
        migrations={**s2["migrations"], "m0002": "CREATE TABLE `late` (`id` integer PRIMARY KEY);"},
    )
    eq = dict(ooo, when=e2[-1]["when"], tag="0002_same_when")
    bundles["equal-when"] = derive(
        s2,
        entries=[*e2, eq],
        migrations={**s2["migrations"], "m0002": "CREATE TABLE `same` (`id` integer PRIMARY KEY);"},
    )
    bundles["reversed-journal"] = derive(s5, entries=list(reversed(e5)))
    bundles["custom-unedited"] = extra(
        "0005_custom", "-- Custom SQL migration file, put your code below! --"
    )
    bundles["trailing-comment"] = extra(
        "0005_comment", "UPDATE `users` SET `bio` = 'x' WHERE 0; -- trailing"
    )
    bundles["trailing-breakpoint"] = extra(
        "0005_tail", "CREATE TABLE `t5` (`id` integer PRIMARY KEY);--> statement-breakpoint\n"
    )
    bundles["multi-statement-chunk"] = extra(
        "0005_multi",
        "CREATE TABLE `audit` (`id` integer PRIMARY KEY, `msg` text);\n"
        "CREATE TRIGGER `users_audit` AFTER INSERT ON `users` BEGIN\n"
        "  INSERT INTO `audit`(`msg`) VALUES ('new user ' || NEW.`name`);\nEND;\n"
        "INSERT INTO `audit`(`msg`) VALUES ('created');",
    )
    bundles["begin-commit"] = extra("0005_txn", "BEGIN;\nUPDATE `users` SET `bio` = 'x';\nCOMMIT;")
    bundles["journal-mode"] = extra("0005_wal", "PRAGMA journal_mode=WAL;")
    bundles["select-then-drop"] = extra(
        "0005_check",
        "SELECT count(*) FROM `users`;--> statement-breakpoint\nDROP INDEX `users_name_idx`;",
    )
    bundles["returning-insert"] = extra(
        "0005_returning",
        "INSERT INTO `users`(`name`, `email`) VALUES ('seed', 's@x') RETURNING `id`;"
        "--> statement-breakpoint\nCREATE TABLE `t5` (`id` integer PRIMARY KEY);",
    )
    bundles["returning-update"] = extra(
        "0005_returning", "UPDATE `users` SET `bio` = 'x' RETURNING `id`;"
    )
    bundles["or-rollback"] = extra(
        "0005_or_rollback",
        "INSERT INTO `users`(`name`, `email`) VALUES ('a', 'dup@x');--> statement-breakpoint\n"
        "INSERT OR ROLLBACK INTO `users`(`name`, `email`) VALUES ('b', 'dup@x');",
    )
    trigger = (
        "CREATE TRIGGER `no_bob` BEFORE INSERT ON `users` WHEN NEW.`name` = 'bob' "
        "BEGIN SELECT RAISE({}, 'no bob'); END;--> statement-breakpoint\n"
        "INSERT INTO `users`(`name`, `email`) VALUES ('bob', 'b@x');"
    )
    bundles["raise-rollback"] = extra("0005_trigger", trigger.format("ROLLBACK"))
    bundles["raise-abort"] = extra("0005_trigger", trigger.format("ABORT"))
    bundles["cf-name"] = derive(
        bundles["basic-step1"],
        entries=[
            *bundles["basic-step1"]["journal"]["entries"],
            {
                "idx": 1,
                "version": "6",
                "when": bundles["basic-step1"]["journal"]["entries"][0]["when"] + 1,
                "tag": "0001_cf",
                "breakpoints": True,
            },
        ],
        migrations={
            **bundles["basic-step1"]["migrations"],
            "m0001": "CREATE TABLE `_cf_mine` (`id` integer);",
        },
    )
    edited = dict(s3["migrations"])
    edited["m0002"] = edited["m0002"].replace("`body` text,", "`body` text,\n\t`slug` text,")
    bundles["edited-0002"] = derive(s3, migrations=edited)
    s1 = bundles["basic-step1"]
    e1 = s1["journal"]["entries"]
    bundles["missing-key"] = derive(
        s1,
        entries=[
            *e1,
            {
                "idx": 1,
                "version": "6",
                "when": e1[0]["when"] + 5,
                "tag": "0001_missing",
                "breakpoints": True,
            },
        ],
    )
    bundles["extra-key"] = derive(
        s1, migrations={**s1["migrations"], "m0001": "CREATE TABLE `extra` (`id` integer);"}
    )
    bundles["idx-changed"] = derive(s2, entries=[e2[0], dict(e2[1], idx=7)])
    squashed_sql = "--> statement-breakpoint\n".join(
        chunk
        for key in sorted(s3["migrations"])
        for chunk in s3["migrations"][key].split("--> statement-breakpoint")
    )
    bundles["squashed"] = derive(
        s3,
        entries=[
            {
                "idx": 0,
                "version": "6",
                "when": e3[-1]["when"] + 10_000,
                "tag": "0000_squashed",
                "breakpoints": True,
            }
        ],
        migrations={"m0000": squashed_sql},
    )
    bundles["fk-noaction"] = {
        "journal": {
            "version": "7",
            "dialect": "sqlite",
            "entries": [
                {
                    "idx": 0,
                    "version": "6",
                    "when": 1700000000000,
                    "tag": "0000_users",
                    "breakpoints": True,
                },
                {
                    "idx": 1,
                    "version": "6",
                    "when": 1700000001000,
                    "tag": "0001_posts",
                    "breakpoints": True,
                },
                {
                    "idx": 2,
                    "version": "6",
                    "when": 1700000002000,
                    "tag": "0002_recreate_users",
                    "breakpoints": True,
                },
            ],
        },
        "migrations": {
            "m0000": "CREATE TABLE `users` "
            "(`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL, `name` text NOT NULL);",
            "m0001": "CREATE TABLE `posts` "
            "(`id` integer PRIMARY KEY, `user_id` integer REFERENCES `users`(`id`));"
            "--> statement-breakpoint\nINSERT INTO `users`(`name`) VALUES ('a');"
            "--> statement-breakpoint\n"
            "INSERT INTO `posts` VALUES (1, 1);",
            "m0002": "PRAGMA foreign_keys=OFF;--> statement-breakpoint\n"
            "CREATE TABLE `__new_users` (`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL, "
            "`name` text NOT NULL, `email` text);"
            '--> statement-breakpoint\nINSERT INTO `__new_users`("id", "name") SELECT "id", '
            '"name" FROM `users`;'
            "--> statement-breakpoint\nDROP TABLE `users`;--> statement-breakpoint\n"
            "ALTER TABLE `__new_users` RENAME TO `users`;--> statement-breakpoint\nPRAGMA "
            "foreign_keys=ON;",
        },
    }
    return bundles


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------


class Recorder:
    """One backend on a persisted temp dir; ``restart`` replaces it (same storage)."""

    def __init__(self, bundles: dict[str, Json], persist: Path) -> None:
        self.bundles = bundles
        self.persist = persist
        self.backend = WorkerdBackend(persist_dir=persist).start()

    def restart(self) -> None:
        installation = self.backend.installation
        self.backend.stop()
        self.backend = WorkerdBackend(persist_dir=self.persist, installation=installation).start()


def run_cases(rec: Recorder, cases: list[Json], nonce: str) -> None:
    for index, entry in enumerate(cases):
        do_name = f"{nonce}/{index}/{entry['name']}"
        entry["outcomes"] = recordings.replay(
            lambda: rec.backend, entry, rec.bundles, do_name, restart=rec.restart
        )
        if (index + 1) % 100 == 0:
            print(f"  {index + 1}/{len(cases)} cases", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# research comparison
# ---------------------------------------------------------------------------------------------


def research_table(md: str) -> dict[str, tuple[str, bool]]:
    """SQL -> (what the research says runtime C does, whether rows are shown) from its tables.

    The function table (header ``expression``) only says ``OK`` without rows; elsewhere ``OK``
    alone means no rows.
    """
    expect: dict[str, tuple[str, bool]] = {}
    header: list[str] = []
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|---") and i > 0:
            header = [c.strip() for c in lines[i - 1].split("|")[1:-1]]
            continue
        if not line.startswith("| `") or not header:
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        first = cells[0]
        if not (first.startswith("`") and first.endswith("`")) or first.count("`") != 2:
            continue
        sql = first[1:-1]
        rows_shown = header[0] != "expression"
        if header[0] == "PRAGMA":
            sql = f"PRAGMA {sql}"
        elif header[0] == "expression":
            sql = f"SELECT {sql}"
        if "C" in header:
            expect[sql] = (cells[header.index("C")], rows_shown)
            continue
        if len(cells) < 2:
            continue
        result = cells[1]
        m = re.search(r"C: (.*)$", cells[-1])
        if m:
            result = m.group(1)
        expect[sql] = (result, rows_shown)
    return expect


#: research rows whose value came from a different sequence of statements than the recorded case
METHOD_NOTES = {
    "SELECT changes(), total_changes(), last_insert_rowid()": "research ran the whole §3.3 table "
    "in ONE DO, so the counters include the earlier rows; each recorded case is a fresh DO",
    "PRAGMA FOREIGN_KEYS": "research ran the argument-form rows in one DO after `PRAGMA "
    "foreign_keys = …OFF` rows; a fresh DO reads 1",
    "PRAGMA table_list": "same SQL in two tables: the argument-form case has a `_cf_KV` entry",
    "SELECT jsonb('{\"a\":1}')": "encoding only: the research printed the blob length too",
    "SELECT octet_length('é'), unhex('41')": "encoding only: the research printed the blob "
    "length too",
    "CREATE TABLE a(x); CREATE TABLE b(y);": "research cell is prose, not a result",
    "SELECT 1 AS one; SELECT 2 AS two": "research cell is prose; it agrees (`[[2]]`, `two`)",
    "EXPLAIN QUERY PLAN SELECT * FROM t WHERE b='x'": "**runtime difference**: SQLite 3.54.1 "
    "reports another value in EXPLAIN QUERY PLAN's third (`notused`) column; the research row "
    "is A's (SQLite 3.47.0)",
    "PRAGMA optimize(-1)": "state-dependent, not a runtime difference: mask bit 0x01 lists the "
    "ANALYZE statements optimize would run; the research DO had another history",
}


def render(outcome: Json) -> str:
    if outcome.get("ok") is False or outcome.get("fatal"):
        err = str(outcome.get("error"))
        return "[TXN-MSG]" if err == TXN_MSG else err
    rows = outcome.get("rows")
    return "OK" + (f" {json.dumps(rows, ensure_ascii=False)}" if rows else "")


def compare_research(cases: list[Json], md: str) -> list[str]:
    expect = research_table(md)
    lines: list[str] = []
    for entry in cases:
        if entry["requests"][0].get("action") != "exec":
            continue
        sql = entry["requests"][0].get("sql")
        if not isinstance(sql, str) or sql not in expect:
            continue
        raw, rows_shown = expect[sql]
        want = raw.replace("`", "").strip()
        got = render(entry["outcomes"][0])
        want_cmp = want.rstrip("…").rstrip()
        if got == want_cmp or (want.endswith("…") and got.startswith(want_cmp)):
            continue
        if want_cmp == "OK" and got.startswith("OK") and not rows_shown:
            continue
        note = METHOD_NOTES.get(sql, "**runtime difference**")
        lines.append(f"| `{sql}` | {want} | {got} | {note} |")
    return lines


#: facts observed on 1.20261117.1 that the research tables do not state (or state otherwise);
#: each one is backed by the named recorded case(s)
OBSERVATIONS = """\
## Other observations on 1.20261117.1 (not in the research tables, or worded differently)

Each item names the recorded case(s) that show it.

- **-0.0 comes back as JS `-0`** (`result/-0.0 and 0.5`, `bind/typeof and value of -0`); the
  research (§3.8) says "-0.0 as 0", most likely a JSON artefact (`JSON.stringify(-0)` is `0`).
- **Record size limit**: the largest single-column INSERT is 8,388,637 bytes; 8,388,638 fails
  with `string or blob too big: SQLITE_TOOBIG` (`limit/record single-column insert …`; A/B:
  2,199,995). Two 4,194,321-byte columns in one row fail, two 4,000,000-byte columns pass.
  The value limit itself is 8,388,642 bytes, as in the research (bound text, bound blob,
  `zeroblob()`, `||`, multibyte).
- **Trigger depth**: the failing statement does NOT undo its rows: after `triggers nested too
  deep` the table holds 11 rows (`limit/recursive trigger chain of 10 levels`). This is plain
  SQLite inside an open transaction (the implicit one); APSW 3.54.1 inside `BEGIN` does the same.
- Functions new in SQLite 3.48-3.54 are **not** allow-listed: `if()` and `json_array_insert()`
  give `not authorized to use function: …` (`funcq/SELECT if(1, 'a', 'b')`, `funcq/SELECT
  json_array_insert(…)`); `percentile_cont` is not compiled in.
- `PRAGMA page_size` (read) is allowed on C, but `PRAGMA page_size = 4096` is
  `not authorized: SQLITE_AUTH` (`pragma-arg/PRAGMA page_size = 4096`).
- Pragma names are case-insensitive on C (`PRAGMA TABLE_INFO(c)`, `PRAGMA Quick_Check`), as the
  research says for C. `PRAGMA temp.foreign_keys` is denied; `PRAGMA table_list(_cf_KV)` is
  allowed and lists the internal table; `table_info('_cf_KV')` and `table_info(_CF_KV)` are
  denied (quotes stripped, case-insensitive).
- BOOLEAN pragma values: `= -1` and `= t` are denied; `= 'yesplease'` and `= "on"` pass (prefix
  rule). `PRAGMA quick_check = 5` is allowed.
- A column may be named `_cf_…` (`ALTER TABLE x1 ADD COLUMN _cf_added` is OK).
- A view over `_cf_KV` can be created, but reading it fails with `access to _cf_KV.key is
  prohibited: SQLITE_AUTH`; a trigger that deletes from `_cf_KV` is created, and the INSERT that
  fires it fails with `not authorized: SQLITE_AUTH`.
- The VDBE-op limit (25,000 in the source) was not reached by any statement that fits in the
  100,000-byte SQL limit (a 40,000-value IN list, a 7,000-WHEN CASE, 100 columns of 400-value
  IN lists all pass).
- Error offsets are relative to the statement being prepared: `SELECT 1; SELEC 2` gives
  `near "SELEC": syntax error at offset 0`. `SELECT ?0` gives `variable number must be between
  ?1 and ?100 at offset 7`.
- `exec()` runs the first step of the (last) statement eagerly: an error in the first row is
  thrown even when the cursor is never consumed (`result/unconsumed SELECT of a failing row`);
  an unconsumed INSERT has `rowsWritten` already set, `rowsRead` 0.
- `blockConcurrencyWhile()` **inside fetch** whose callback throws: the request fails with the
  callback's message even if the handler catches the rejection, the object is reset (next
  request: construction 2) and writes since the last real await are rolled back (`bcw/…`).
- `SELECT 1 COLLATE nosuch` is accepted (no comparison needs the collation).
- `new Date(0)` binds as `Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)`.
- drizzle: every fresh and incremental basic-step dump (schema and ledger) is identical to the
  research's expected results recorded on A.
"""


# ---------------------------------------------------------------------------------------------


def npm_versions(directory: Path) -> dict[str, str]:
    out = {}
    for pkg in ("miniflare", "workerd", "drizzle-orm", "esbuild"):
        data = json.loads((directory / "node_modules" / pkg / "package.json").read_text())
        out[pkg] = data["version"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--bundles", type=Path, default=SHARED / "bundles")
    parser.add_argument(
        "--research", type=Path, default=SHARED / "research" / "workerd-do-sqlite.md"
    )
    parser.add_argument("--diff", type=Path, default=DEFAULT_DIFF)
    parser.add_argument("--only", default=None, help="record only cases whose name contains this")
    args = parser.parse_args(argv)

    cases = [c for c in CASES if args.only is None or args.only in c["name"]]
    bundles = build_bundles(args.bundles)
    inst = ensure_installed()
    node_version = subprocess.run(
        [inst.node, "--version"], capture_output=True, text=True
    ).stdout.strip()
    started = time.monotonic()
    nonce = uuid.uuid4().hex[:8]
    # cases with a RESTART run last: a restart ends every live instance
    plain = [c for c in cases if RESTART not in c["requests"]]
    restarting = [c for c in cases if RESTART in c["requests"]]
    with tempfile.TemporaryDirectory(prefix="dosqlite-record-") as tmp:
        rec = Recorder(bundles, Path(tmp))
        try:
            print(f"recording {len(cases)} cases on {inst.workerd_version}", file=sys.stderr)
            run_cases(rec, plain + restarting, nonce)
        finally:
            rec.backend.stop()
    ordered = [c for c in CASES if c in cases]
    used = sorted({b for c in ordered for b in re.findall(r'"bundle": "([^"]+)"', json.dumps(c))})
    document = {
        "format": recordings.FORMAT,
        "description": "Outcomes recorded on real workerd; schema in tests/data/workerd/README.md",
        "runtime": {
            "workerdPackage": PINNED_WORKERD,
            "workerdVersion": inst.workerd_version,
            "sqlite": "3.54.1",
            "npm": npm_versions(inst.directory),
            "node": node_version,
            "compatibilityDate": rec.backend.compat_date,
            "recordedAt": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "recordSeconds": round(time.monotonic() - started, 1),
        },
        "txnMessage": TXN_MSG,
        "bundles": {name: bundles[name] for name in used},
        "cases": ordered,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    print(
        f"wrote {len(ordered)} cases to {args.out} ({args.out.stat().st_size // 1024} KiB)",
        file=sys.stderr,
    )
    if args.research.exists() and args.only is None:
        diff = compare_research(ordered, args.research.read_text())
        text = [
            "# workerd 1.20261117.1 vs the research tables",
            "",
            "Generated by tools/record_workerd.py: exec cases whose first request's SQL",
            "appears in a table of workerd-do-sqlite.md and whose recorded outcome differs",
            "from the research's value for runtime C (or A when no C value is given).",
            "",
            "| SQL | research | recorded on 1.20261117.1 | why |",
            "|---|---|---|---|",
            *diff,
            "",
            OBSERVATIONS,
        ]
        args.diff.write_text("\n".join(text) + "\n")
        print(f"{len(diff)} differences from the research tables -> {args.diff}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
