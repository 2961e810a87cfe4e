"""The DO emulator against the behaviour measured on workerd (research/workerd-do-sqlite.md).

Rows of the research tables that need no Node are asserted here with their verbatim messages;
the full replay against recordings of the real runtime is in test_emulator_recorded.py.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess

import pytest

from pytest_dosqlite import (
    DurableObjectInternalError,
    DurableObjectResetError,
    DurableObjectStorage,
    SqlError,
    sqlite_version,
)
from pytest_dosqlite.runtime import TXN_MESSAGE
from pytest_dosqlite.storage import js_number_string


def exec_ok(do: DurableObjectStorage, sql: str, *b: object) -> list[list[object]]:
    return do.sql.exec(sql, *b).raw().to_array()


def exec_err(do: DurableObjectStorage, sql: str, *b: object) -> str:
    with pytest.raises(SqlError) as info:
        do.sql.exec(sql, *b).raw().to_array()
    return str(info.value)


@pytest.fixture
def do() -> DurableObjectStorage:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT)")
    d.sql.exec("CREATE INDEX t_b ON t(b)")
    d.sql.exec("INSERT INTO t(b) VALUES ('x'), ('y')")
    return d


def test_sqlite_version_is_the_runtimes() -> None:
    assert sqlite_version() == "3.54.1"


def test_fresh_do_is_empty_with_foreign_keys_on() -> None:
    d = DurableObjectStorage()
    assert exec_ok(d, "SELECT * FROM sqlite_master") == []
    assert exec_ok(d, "PRAGMA foreign_keys") == [[1]]
    assert d.sql.database_size == 4096
    d.sql.exec("CREATE TABLE x(a)")
    assert d.sql.database_size == 8192


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN",
        "BEGIN TRANSACTION",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "END",
        "ROLLBACK",
        "SAVEPOINT x",
        "RELEASE x",
        "ROLLBACK TO x",
        "SAVEPOINT _cf_savepoint_0",
        "SELECT 1; BEGIN",
    ],
)
def test_transaction_statements_refused(do: DurableObjectStorage, sql: str) -> None:
    assert exec_err(do, sql) == TXN_MESSAGE


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("ATTACH DATABASE ':memory:' AS aux", "not authorized: SQLITE_AUTH"),
        ("DETACH aux", "not authorized: SQLITE_AUTH"),
        ("VACUUM", "cannot VACUUM from within a transaction: SQLITE_ERROR"),
        ("CREATE TEMP TABLE tt(x)", "not authorized: SQLITE_AUTH"),
        ("CREATE TEMPORARY VIEW tv AS SELECT 1", "not authorized: SQLITE_AUTH"),
        ("SELECT load_extension('x')", "not authorized: SQLITE_ERROR"),
        ("CREATE VIRTUAL TABLE f4 USING fts4(body)", "not authorized: SQLITE_AUTH"),
        ("CREATE VIRTUAL TABLE s5 USING dbstat", "not authorized: SQLITE_AUTH"),
        ("SELECT * FROM generate_series(1,3)", "no such table: generate_series: SQLITE_ERROR"),
        ("SELECT * FROM nosuch", "no such table: nosuch: SQLITE_ERROR"),
        ("PRAGMA journal_mode=WAL", "not authorized: SQLITE_AUTH"),
        ("PRAGMA integrity_check", "not authorized: SQLITE_AUTH"),
        ("PRAGMA user_version=7", "not authorized: SQLITE_AUTH"),
        ("PRAGMA foreign_keys = 2", "not authorized: SQLITE_AUTH"),
        ("PRAGMA index_list", "not authorized: SQLITE_AUTH"),
        ("PRAGMA table_info", "not authorized: SQLITE_AUTH"),
        ("PRAGMA optimize(abc)", "not authorized: SQLITE_AUTH"),
        ("PRAGMA data_version = 5", "not authorized: SQLITE_AUTH"),
        ("CREATE TABLE _cf_mine(x)", "not authorized: SQLITE_AUTH"),
        ('CREATE TABLE "_Cf_z"(a)', "not authorized: SQLITE_AUTH"),
        ("CREATE TABLE main._cf_y(a)", "not authorized: SQLITE_AUTH"),
        ("CREATE INDEX _CF_i ON t(b)", "not authorized: SQLITE_AUTH"),
        (
            "CREATE TABLE sqlite_mine(x)",
            "object name reserved for internal use: sqlite_mine: SQLITE_ERROR",
        ),
        ("DROP TABLE sqlite_master", "table sqlite_master may not be dropped: SQLITE_ERROR"),
        (
            "SELECT sqlite_version()",
            "not authorized to use function: sqlite_version at offset 7: SQLITE_ERROR",
        ),
        ("SELECT power(2,10)", "not authorized to use function: power at offset 7: SQLITE_ERROR"),
        ("SELECT log10(100)", "not authorized to use function: log10 at offset 7: SQLITE_ERROR"),
        (
            "SELECT json_pretty('{}')",
            "not authorized to use function: json_pretty at offset 7: SQLITE_ERROR",
        ),
        ("SELECT soundex('x')", "no such function: soundex at offset 7: SQLITE_ERROR"),
        ("SELECT median(1)", "no such function: median at offset 7: SQLITE_ERROR"),
        ("SELECT regexp('a', 'a')", "no such function: regexp at offset 7: SQLITE_ERROR"),
        ("SELECT 'a' REGEXP 'a'", "no such function: REGEXP at offset 11: SQLITE_ERROR"),
        ("SELECT uuid()", "no such function: uuid at offset 7: SQLITE_ERROR"),
        (
            "SELECT unistr('\\u0041')",
            "not authorized to use function: unistr at offset 7: SQLITE_ERROR",
        ),
        (
            "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL "
            "SELECT 5 UNION ALL SELECT 6",
            "too many terms in compound SELECT: SQLITE_ERROR",
        ),
    ],
)
def test_refused_with_workerds_message(do: DurableObjectStorage, sql: str, message: str) -> None:
    assert exec_err(do, sql) == message


@pytest.mark.parametrize(
    "sql",
    [
        "REINDEX",
        "ANALYZE",
        "EXPLAIN SELECT 1",
        "CREATE VIEW v AS SELECT * FROM t",
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END",
        "CREATE TABLE s(x INTEGER) STRICT",
        "CREATE TABLE wr(k TEXT PRIMARY KEY, v) WITHOUT ROWID",
        "CREATE TABLE g(a INT, b INT GENERATED ALWAYS AS (a*2) VIRTUAL)",
        "ALTER TABLE t ADD COLUMN c TEXT",
        "CREATE VIRTUAL TABLE f USING fts5(body)",
        "CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)",
        "SELECT * FROM json_each('[1,2]')",
        "SELECT * FROM sqlite_schema",
        "DROP TABLE IF EXISTS nonexistent",
        "PRAGMA foreign_keys = 'off'",
        "PRAGMA foreign_keys = ONN",
        "PRAGMA main.foreign_keys = OFF",
        "PRAGMA FOREIGN_KEYS",
        "PRAGMA quick_check(5)",
        "PRAGMA quick_check(t)",
        "PRAGMA optimize(-1)",
        "PRAGMA optimize = 0x10002",
        "PRAGMA table_info(nosuch)",
        "PRAGMA table_list",
        "PRAGMA page_size",
        "PRAGMA data_version",
        "CREATE TABLE _cfx(a)",
        "CREATE TABLE _cf(a)",
        "SELECT concat('a','b'), concat_ws('-','a','b'), octet_length('é'), unhex('41')",
        "SELECT sqrt(16), pow(2,10), ln(1), log(100), log2(8), pi(), ceil(1.2), mod(7,3)",
        "SELECT timediff('2020-01-02', '2020-01-01'), unixepoch('subsec')",
        "SELECT jsonb('{\"a\":1}'), jsonb_extract(jsonb('{\"a\":1}'),'$.a')",
        "SELECT string_agg(x, ',') FROM (SELECT 'a' x UNION ALL SELECT 'b')",
    ],
)
def test_allowed(do: DurableObjectStorage, sql: str) -> None:
    exec_ok(do, sql)


def test_reserved_rename_destination_refused(do: DurableObjectStorage) -> None:
    do.sql.exec("CREATE TABLE x1(a)")
    assert exec_err(do, "ALTER TABLE x1 RENAME TO _cf_renamed2") == "not authorized: SQLITE_AUTH"
    do.sql.exec("ALTER TABLE x1 RENAME COLUMN a TO _cf_col")


# ---------------------------------------------------------------- exec() with several statements


def test_multi_statement_runs_in_order_and_returns_last(do: DurableObjectStorage) -> None:
    cur = do.sql.exec("SELECT 1 AS one; SELECT 2 AS two")
    assert cur.column_names == ["two"]
    assert cur.raw().to_array() == [[2]]
    do.sql.exec("CREATE TABLE a(x); CREATE TABLE b(y);")
    names = {r[0] for r in exec_ok(do, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"a", "b"} <= names


def test_only_last_statement_takes_bindings(do: DurableObjectStorage) -> None:
    assert exec_ok(do, "INSERT INTO t(b) VALUES ('z'); SELECT ? AS p", 42) == [[42.0]]
    assert exec_err(do, "SELECT ? AS p; SELECT 1", 1) == (
        "When executing multiple SQL statements in a single call, only the last statement can "
        "have parameters."
    )
    assert exec_err(do, "SELECT ?", 1, 2) == "Wrong number of parameter bindings for SQL query."
    assert exec_err(do, "SELECT ?") == "Wrong number of parameter bindings for SQL query."


def test_no_group_rollback(do: DurableObjectStorage) -> None:
    err = exec_err(do, "INSERT INTO t(a, b) VALUES (100, 'k'); INSERT INTO nosuch VALUES (1)")
    assert err == "no such table: nosuch: SQLITE_ERROR"
    assert exec_ok(do, "SELECT b FROM t WHERE a = 100") == [["k"]]
    exec_err(do, "INSERT INTO nosuch VALUES (1); INSERT INTO t(a, b) VALUES (200, 'k')")
    assert exec_ok(do, "SELECT count(*) FROM t WHERE a = 200") == [[0]]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1;",
        "SELECT 1; ",
        "SELECT 1;\n",
        "SELECT 1;\t",
        "SELECT 1;\r\n",
        "SELECT 1 -- c",
        ";SELECT 1",
        "SELECT 1;;SELECT 2",
        "-- c\nSELECT 1",
        "/* c */ SELECT 1",
    ],
)
def test_trailing_text_ok(do: DurableObjectStorage, sql: str) -> None:
    exec_ok(do, sql)


@pytest.mark.parametrize(
    "sql",
    [
        "",
        "-- nothing",
        ";",
        "SELECT 1;;",
        "SELECT 1; ;",
        "SELECT 1; -- c",
        "SELECT 1;\n-- c\n",
        "SELECT 1; /* c */",
        "-- Custom SQL migration file, put your code below! --",
    ],
)
def test_no_statement(do: DurableObjectStorage, sql: str) -> None:
    assert exec_err(do, sql) == "SQL code did not contain a statement."


def test_trigger_body_semicolons_are_one_statement(do: DurableObjectStorage) -> None:
    do.sql.exec(
        "CREATE TABLE log(x); CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log "
        "VALUES (new.b); INSERT INTO log VALUES ('again'); END; INSERT INTO t(b) VALUES ('q')"
    )
    assert exec_ok(do, "SELECT x FROM log ORDER BY rowid") == [["q"], ["again"]]


def test_syntax_error_offset(do: DurableObjectStorage) -> None:
    assert (
        exec_err(do, "SELECT 1; SELEC 2") == 'near "SELEC": syntax error at offset 0: SQLITE_ERROR'
    )


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("value", "typeof"),
    [
        (42, "real"),
        (1.25, "real"),
        (float("inf"), "real"),
        ("s", "text"),
        (None, "null"),
        (float("nan"), "null"),
        (True, "text"),
        (b"\x00\x01", "blob"),
        (bytearray(b"x"), "blob"),
    ],
)
def test_bindings_are_js_values(value: object, typeof: str) -> None:
    d = DurableObjectStorage()
    assert exec_ok(d, "SELECT typeof(?)", value) == [[typeof]]


def test_js_number_semantics_in_text_and_integer_columns() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE v(t TEXT, i INTEGER, u)")
    d.sql.exec("INSERT INTO v VALUES (?, ?, ?)", 42, 42, 42)
    assert exec_ok(d, "SELECT t, typeof(i), typeof(u) FROM v") == [["42.0", "integer", "real"]]
    assert exec_ok(d, "SELECT ?", True) == [["true"]]
    assert exec_ok(d, "SELECT 9007199254740993") == [[9007199254740992]]
    with pytest.raises(SqlError, match="BigInt"):
        d.sql.exec("SELECT ?", 10**400)


def test_cursor_api(do: DurableObjectStorage) -> None:
    cur = do.sql.exec("SELECT a, b FROM t ORDER BY a")
    assert cur.column_names == ["a", "b"]
    assert cur.to_array() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert cur.to_array() == []  # consumed once
    assert do.sql.exec("SELECT 1 AS a, 2 AS a").to_array() == [{"a": 2}]
    assert do.sql.exec("SELECT 1 AS a, 2 AS a").raw().to_array() == [[1, 2]]
    assert do.sql.exec("SELECT b FROM t WHERE a = 1").one() == {"b": "x"}
    with pytest.raises(SqlError, match="but got no results"):
        do.sql.exec("SELECT b FROM t WHERE a = 99").one()
    with pytest.raises(SqlError, match="but got multiple results"):
        do.sql.exec("SELECT b FROM t").one()
    assert [r["a"] for r in do.sql.exec("SELECT a FROM t ORDER BY a")] == [1, 2]
    assert do.sql.exec("INSERT INTO t(b) VALUES ('z') RETURNING a, b").raw().to_array() == [
        [3, "z"]
    ]


def test_limits() -> None:
    d = DurableObjectStorage()
    ok = "SELECT '" + "a" * (100_000 - len("SELECT ''")) + "'"
    assert len(ok.encode()) == 100_000
    exec_ok(d, ok)
    assert exec_err(d, ok + " ") == "statement too long: SQLITE_TOOBIG"
    assert exec_ok(d, "SELECT " + ",".join("?" * 100), *range(100))[0][0] == 0
    assert exec_err(d, "SELECT " + ",".join("?" * 101), *range(101)).startswith(
        "too many SQL variables at offset"
    )
    d.sql.exec("CREATE TABLE c100(" + ",".join(f"c{i}" for i in range(100)) + ")")
    assert exec_err(d, "CREATE TABLE c101(" + ",".join(f"c{i}" for i in range(101)) + ")") == (
        "too many columns on c101: SQLITE_ERROR"
    )
    assert exec_ok(d, "SELECT 'a' LIKE ?", "a" * 50) == [[0]]
    assert exec_err(d, "SELECT 'a' LIKE ?", "a" * 51) == (
        "LIKE or GLOB pattern too complex: SQLITE_ERROR"
    )
    assert exec_err(d, "SELECT max(" + ",".join("1" * 128) + ")").startswith(
        "too many arguments on function max"
    )
    assert exec_err(d, "SELECT " + "+".join("1" * 101)) == (
        "Expression tree is too large (maximum depth 100): SQLITE_ERROR"
    )


# ---------------------------------------------------------------- events and transactions


def test_foreign_keys_off_works_only_before_the_first_write_of_an_event() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE p(id INTEGER PRIMARY KEY)")
    with d.event():
        d.sql.exec("INSERT INTO p VALUES (1)")
        d.sql.exec("PRAGMA foreign_keys=OFF")  # an implicit transaction is open: no-op
        assert exec_ok(d, "PRAGMA foreign_keys") == [[1]]
    d.sql.exec("PRAGMA foreign_keys=OFF")  # a new event, before any write: takes effect
    assert exec_ok(d, "PRAGMA foreign_keys") == [[0]]
    d.restart()  # connection state does not survive a restart
    assert exec_ok(d, "PRAGMA foreign_keys") == [[1]]


def test_foreign_keys_off_inside_transaction_sync_is_a_noop_and_cascade_fires() -> None:
    d = DurableObjectStorage()
    d.sql.exec(
        "CREATE TABLE p(id INTEGER PRIMARY KEY); "
        "CREATE TABLE c(id INTEGER PRIMARY KEY, pid REFERENCES p(id) ON DELETE CASCADE)"
    )
    d.sql.exec("INSERT INTO p VALUES (1); INSERT INTO c VALUES (1, 1)")

    def body() -> None:
        d.sql.exec("PRAGMA foreign_keys=OFF")
        d.sql.exec("DELETE FROM p")

    d.transaction_sync(body)
    assert exec_ok(d, "SELECT count(*) FROM c") == [[0]]
    assert exec_ok(d, "PRAGMA foreign_keys") == [[1]]


def test_foreign_keys_off_before_transaction_sync_is_effective_then_on_is_a_noop() -> None:
    d = DurableObjectStorage()
    d.sql.exec(
        "CREATE TABLE p(id INTEGER PRIMARY KEY); "
        "CREATE TABLE c(id INTEGER PRIMARY KEY, pid REFERENCES p(id) ON DELETE CASCADE)"
    )
    d.sql.exec("INSERT INTO p VALUES (1); INSERT INTO c VALUES (1, 1)")
    with d.event():
        d.sql.exec("PRAGMA foreign_keys=OFF")
        d.transaction_sync(lambda: d.sql.exec("DELETE FROM p"))
        d.sql.exec("PRAGMA foreign_keys=ON")  # same turn: still inside the transaction
    assert exec_ok(d, "SELECT count(*) FROM c") == [[1]]
    assert exec_ok(d, "PRAGMA foreign_keys") == [[0]]


def test_transaction_sync_rolls_back_everything_on_throw() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a)")

    def body() -> None:
        d.sql.exec("INSERT INTO t VALUES (1)")
        d.sql.exec("CREATE TABLE u(b)")
        raise RuntimeError("deliberate throw in transactionSync")

    with pytest.raises(RuntimeError, match="deliberate"):
        d.transaction_sync(body)
    assert exec_ok(d, "SELECT count(*) FROM t") == [[0]]
    assert exec_ok(d, "SELECT name FROM sqlite_master WHERE name = 'u'") == []


def test_nested_transaction_sync_is_a_savepoint() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a)")

    def inner() -> None:
        d.sql.exec("INSERT INTO t VALUES (2)")
        raise ValueError("inner")

    def outer() -> int:
        d.sql.exec("INSERT INTO t VALUES (1)")
        with pytest.raises(ValueError):
            d.transaction_sync(inner)
        return 7

    assert d.transaction_sync(outer) == 7
    assert exec_ok(d, "SELECT a FROM t") == [[1]]


def test_sql_error_caught_inside_transaction_sync_undoes_only_that_statement() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a UNIQUE)")

    def body() -> None:
        d.sql.exec("INSERT INTO t VALUES (1)")
        with pytest.raises(SqlError, match=r"UNIQUE constraint failed: t\.a"):
            d.sql.exec("INSERT INTO t VALUES (1)")

    d.transaction_sync(body)
    assert exec_ok(d, "SELECT count(*) FROM t") == [[1]]


def test_event_writes_are_kept_when_the_handler_throws() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a)")
    with pytest.raises(RuntimeError), d.event():
        d.sql.exec("INSERT INTO t VALUES (1)")
        raise RuntimeError("handler boom")
    assert exec_ok(d, "SELECT count(*) FROM t") == [[1]]


def test_block_concurrency_while_failure_rolls_back_and_resets() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a)")
    d.sql.exec("PRAGMA foreign_keys=OFF")

    def ctor() -> None:
        d.sql.exec("INSERT INTO t VALUES (1)")
        raise RuntimeError("migration boom in ctor #1")

    with pytest.raises(RuntimeError, match="boom"):
        d.block_concurrency_while(ctor)
    assert exec_ok(d, "SELECT count(*) FROM t") == [[0]]
    assert exec_ok(d, "PRAGMA foreign_keys") == [[1]]  # a new instance
    assert d.block_concurrency_while(lambda: 5) == 5


def test_deferred_violation_at_commit_resets_the_object() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(pid REFERENCES p(id))")
    with pytest.raises(DurableObjectResetError) as info, d.event():
        d.sql.exec("PRAGMA defer_foreign_keys=ON")
        d.sql.exec("INSERT INTO c VALUES (5)")
    assert str(info.value) == (
        "Durable Object was reset and rolled back to its last known good state because the "
        "application left the database in a state where constraints were violated: FOREIGN "
        "KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)"
    )
    assert exec_ok(d, "SELECT count(*) FROM c") == [[0]]


def test_constraint_messages(do: DurableObjectStorage) -> None:
    do.sql.exec("CREATE TABLE u(x UNIQUE, y NOT NULL DEFAULT 1)")
    do.sql.exec("INSERT INTO u(x) VALUES (1)")
    assert exec_err(do, "INSERT INTO u(x) VALUES (1)") == (
        "UNIQUE constraint failed: u.x: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)"
    )
    assert exec_err(do, "INSERT INTO u(x, y) VALUES (2, NULL)") == (
        "NOT NULL constraint failed: u.y: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_NOTNULL)"
    )


def test_images_are_private_copies(tmp_path: object) -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1)")
    img = d.image()
    a, b = DurableObjectStorage(image=img), DurableObjectStorage.from_image(img)
    a.sql.exec("INSERT INTO t VALUES (2)")
    assert exec_ok(a, "SELECT count(*) FROM t") == [[2]]
    assert exec_ok(b, "SELECT count(*) FROM t") == [[1]]
    assert exec_ok(b, "PRAGMA foreign_keys") == [[1]]
    assert exec_err(b, "BEGIN") == TXN_MESSAGE


@pytest.mark.parametrize("kind", ["new", "copy", "file"])
def test_image_pages_join_into_the_image_and_share_unchanged_pages(
    kind: str, tmp_path: object
) -> None:
    from pathlib import Path

    start = DurableObjectStorage()
    start.sql.exec("CREATE TABLE a(x); CREATE TABLE b(y); INSERT INTO a VALUES (randomblob(9000))")
    if kind == "new":  # an in-memory database of SQLite's pager, not a memdb file
        d = start
    elif kind == "copy":  # a memdb file, read page by page
        d = DurableObjectStorage(image=start.image())
    else:
        d = DurableObjectStorage(Path(str(tmp_path)) / "do.sqlite")
        d.sql.exec("CREATE TABLE a(x); CREATE TABLE b(y); INSERT INTO a VALUES (randomblob(9000))")
    before = d.image_pages()
    assert b"".join(before) == d.image() and len(before) == len(d.image()) // 4096 > 3
    d.sql.exec("INSERT INTO b VALUES (1)")
    after = d.image_pages(before)
    assert b"".join(after) == d.image() != b"".join(before)
    shared = [i for i, page in enumerate(after) if page is before[i]]
    changed = [i for i, page in enumerate(after) if page != before[i]]
    # b's root page differs, and in a memdb file the header's change counter (SQLite's own
    # in-memory database and WAL mode leave it); the other pages are the same objects
    assert changed == ([0, 2] if kind == "copy" else [2])
    assert sorted(shared + changed) == list(range(len(after)))
    empty = DurableObjectStorage()
    assert b"".join(empty.image_pages()) == empty.image()


def test_file_backed_storage_persists_across_restart(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "do.sqlite"
    d = DurableObjectStorage(path)
    d.sql.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1)")
    d.close()
    e = DurableObjectStorage(path)
    assert exec_ok(e, "SELECT a FROM t") == [[1]]
    assert exec_ok(e, "PRAGMA foreign_keys") == [[1]]
    e.close()


def test_nul_character_ends_the_sql_text() -> None:
    d = DurableObjectStorage()
    assert exec_err(d, "SELECT 1;\x00SELECT 2") == "SQL code did not contain a statement."
    assert exec_err(d, "\x00") == "SQL code did not contain a statement."


def test_text_the_emulator_cannot_carry_is_a_clear_limitation() -> None:
    # a UnicodeDecodeError / UnicodeEncodeError escaped from our internals
    from pytest_dosqlite.errors import EmulatorLimitation

    do = DurableObjectStorage()
    with pytest.raises(EmulatorLimitation, match=r"not valid UTF-8.*hex"):
        do.sql.exec("SELECT CAST(x'ff' AS TEXT)")
    with pytest.raises(EmulatorLimitation, match="lone surrogate"):
        do.sql.exec("SELECT ?", "\ud800")
    assert do.sql.exec("SELECT hex(CAST(x'ff' AS TEXT)) AS h").one() == {"h": "FF"}
    do.close()


# -- requests workerd cannot finish (recorded in tests/data/workerd, group fatal/) --------------


def test_unread_returning_rows_fail_the_transaction_and_reset_the_do() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1)")
    with pytest.raises(DurableObjectInternalError) as info:
        d.transaction_sync(lambda: d.sql.exec("INSERT INTO t VALUES (2) RETURNING a"))
    err = info.value
    assert isinstance(err, DurableObjectResetError)  # the DO is reset, as at a bad commit
    assert re.fullmatch(r"internal error; reference = [0-9a-v]{24}", str(err))
    assert err.kind == "unread-returning"
    assert err.statement == "INSERT INTO t VALUES (2) RETURNING a"
    assert "never read" in err.reason
    assert exec_ok(d, "SELECT a FROM t") == [[1]]  # rolled back to the last commit
    d.sql.exec("INSERT INTO t VALUES (3)")  # and usable again
    assert exec_ok(d, "SELECT count(*) FROM t") == [[2]]


def test_returning_rows_read_before_the_end_are_fine() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a)")
    got = d.transaction_sync(
        lambda: d.sql.exec("INSERT INTO t VALUES (2), (3) RETURNING a").raw().to_array()
    )
    assert got == [[2], [3]]
    assert d.transaction_sync(lambda: d.sql.exec("INSERT INTO t VALUES (4) RETURNING a").one()) == {
        "a": 4
    }

    # one() fails on two rows but resets the statement: not fatal (recorded)
    def two() -> None:
        with pytest.raises(SqlError):
            d.sql.exec("INSERT INTO t VALUES (5), (6) RETURNING a").one()

    d.transaction_sync(two)
    # no row returned: nothing is in progress
    d.transaction_sync(lambda: d.sql.exec("UPDATE t SET a = 0 WHERE a = 99 RETURNING a"))
    # a standalone exec's cursor is read by its caller within the same turn
    assert d.sql.exec("INSERT INTO t VALUES (7) RETURNING a").one() == {"a": 7}
    d.sql.exec("INSERT INTO t VALUES (8) RETURNING a")
    # batch() and transaction() read every result, as the workerd backend's DOs do
    d.batch(["INSERT INTO t VALUES (9) RETURNING a"])
    d.transaction(["INSERT INTO t VALUES (10) RETURNING a"])
    assert exec_ok(d, "SELECT count(*) FROM t") == [[9]]


def test_returning_in_a_statement_before_the_last_can_never_be_read() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a)")
    with pytest.raises(DurableObjectInternalError):
        d.sql.exec("INSERT INTO t VALUES (1) RETURNING a; SELECT 1")
    assert exec_ok(d, "SELECT count(*) FROM t") == [[0]]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT OR ROLLBACK INTO t VALUES (1)",
        "UPDATE OR ROLLBACK t SET a = 1 WHERE a = 2",
        "INSERT INTO r VALUES (1)",  # UNIQUE ON CONFLICT ROLLBACK
        "INSERT INTO t VALUES (9)",  # RAISE(ROLLBACK) in a trigger
    ],
)
def test_a_statement_that_rolls_back_the_transaction_fails_the_request(sql: str) -> None:
    d = DurableObjectStorage()
    d.sql.exec(
        "CREATE TABLE t(a UNIQUE); INSERT INTO t VALUES (1), (2);"
        "CREATE TABLE r(a UNIQUE ON CONFLICT ROLLBACK); INSERT INTO r VALUES (1);"
        "CREATE TRIGGER no9 BEFORE INSERT ON t WHEN NEW.a = 9 BEGIN "
        "SELECT RAISE(ROLLBACK, 'no'); END"
    )

    def body() -> None:
        d.sql.exec("INSERT INTO t VALUES (3)")
        d.sql.exec(sql)

    with pytest.raises(DurableObjectInternalError) as info:
        d.transaction_sync(body)
    assert info.value.kind == "rolled-back"
    assert isinstance(info.value.__cause__, SqlError)  # the error the code saw first
    assert exec_ok(d, "SELECT a FROM t ORDER BY a") == [[1], [2]]


def test_writes_after_the_transaction_was_rolled_back_are_committed_one_by_one() -> None:
    # as recorded: workerd believes its transaction still open, so SQLite autocommits them
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a UNIQUE); INSERT INTO t VALUES (1)")
    with pytest.raises(DurableObjectInternalError), d.event():
        with pytest.raises(SqlError):
            d.sql.exec("INSERT OR ROLLBACK INTO t VALUES (1)")
        d.sql.exec("INSERT INTO t VALUES (8)")
    assert exec_ok(d, "SELECT a FROM t ORDER BY a") == [[1], [8]]


@pytest.mark.parametrize("clause", ["OR ABORT", "OR FAIL", "OR IGNORE"])
def test_other_conflict_resolutions_are_ordinary_errors(clause: str) -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a UNIQUE); INSERT INTO t VALUES (1)")

    def body() -> None:
        try:
            d.sql.exec(f"INSERT {clause} INTO t VALUES (1)")
        except SqlError as exc:
            assert "UNIQUE constraint failed" in str(exc)

    d.transaction_sync(body)
    assert exec_ok(d, "SELECT count(*) FROM t") == [[1]]


def test_the_kv_api_statements_do_not_let_the_same_text_past_the_authorizer() -> None:
    # put/get/set_alarm run trusted: a user's identical text must not reuse them
    d = DurableObjectStorage()
    d.put("k", 1)
    assert d.get("k") == 1
    d.set_alarm(5)
    for sql, args in [
        ("SELECT value FROM _cf_KV WHERE key = ?", ("k",)),
        ("INSERT OR REPLACE INTO _cf_KV (key, value) VALUES (?, ?)", ("k", b"x")),
        ("INSERT OR REPLACE INTO _cf_METADATA (key, value) VALUES (1, ?)", (b"x",)),
    ]:
        with pytest.raises(SqlError, match=r"_cf_KV\.value is prohibited|not authorized"):
            d.sql.exec(sql, *args)


def test_a_read_left_running_locks_tables_against_drop_until_it_is_read() -> None:
    # recorded on workerd: a SELECT whose rows nobody reads keeps running, and SQLite refuses
    # DROP TABLE / DROP INDEX meanwhile (drizzle's run() never reads a migration's SELECT)
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1), (2); CREATE TABLE u(b)")
    d.sql.exec("CREATE INDEX ta ON t(a)")
    running = d.sql.exec("SELECT a FROM t")
    for sql in ("DROP TABLE u", "DROP INDEX ta"):
        assert exec_err(d, sql) == "database table is locked: SQLITE_LOCKED"
    d.sql.exec("CREATE TABLE w(c); ALTER TABLE u ADD x")  # other DDL is not refused
    assert running.raw().to_array() == [[1], [2]]
    d.sql.exec("DROP TABLE u")  # read to the end: it no longer runs
    # a statement before the last of an exec can never be read: it runs on
    d.sql.exec("SELECT a FROM t; SELECT 1")
    assert exec_err(d, "DROP TABLE w") == "database table is locked: SQLITE_LOCKED"


def test_reads_that_do_not_lock() -> None:
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a); CREATE TABLE u(b); CREATE TABLE v(c)")
    d.sql.exec("SELECT a FROM t")  # no row: finished at once
    d.sql.exec("SELECT 1")  # reads no table
    d.sql.exec("DROP TABLE u")
    d.sql.exec("INSERT INTO t VALUES (1)")
    d.sql.exec("SELECT a FROM t").one()  # read
    d.batch(["SELECT a FROM t"])  # batch results are read
    d.sql.exec("DROP TABLE v")


def test_statements_before_one_that_fails_to_prepare_do_not_run_on() -> None:
    # recorded: workerd finalizes them, the RETURNING is not fatal and the row is kept
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a); CREATE TABLE u(b)")
    for tail in ("SELECT * FROM nosuch", "/* only a comment */", "BEGIN"):

        def body(tail: str = tail) -> None:
            with pytest.raises(SqlError):
                d.sql.exec(f"INSERT INTO t VALUES (1) RETURNING a; {tail}")

        d.transaction_sync(body)  # the error was caught: the transaction ends normally
    assert exec_ok(d, "SELECT count(*) FROM t") == [[3]]
    with pytest.raises(SqlError):
        d.sql.exec("SELECT 1 FROM t; SELECT * FROM nosuch")
    d.sql.exec("DROP TABLE u")  # the SELECT before the failure does not run on


def test_column_names_follow_a_schema_change_between_two_runs_of_one_text() -> None:
    # the data-migration pattern reads `SELECT *` before and after migrate(): the second read
    # named the old columns (APSW's cached statement), and to_array() dropped the new one
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE d(x, y); INSERT INTO d VALUES (1, 2)")
    assert d.sql.exec("SELECT * FROM d").to_array() == [{"x": 1, "y": 2}]
    d.sql.exec("ALTER TABLE d ADD COLUMN z DEFAULT 9")
    assert d.sql.exec("SELECT * FROM d").to_array() == [{"x": 1, "y": 2, "z": 9}]
    d.sql.exec("ALTER TABLE d RENAME COLUMN y TO w")
    assert d.sql.exec("SELECT * FROM d").column_names == ["x", "w", "z"]
    d.sql.exec("ALTER TABLE d DROP COLUMN w")
    assert d.sql.exec("SELECT * FROM d").to_array() == [{"x": 1, "z": 9}]


def test_rows_written_counts_the_statement_itself() -> None:
    # changes() kept the last INSERT's count through DDL: CREATE TABLE after a 5-row INSERT
    # said 5 rows written
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a)")
    assert d.sql.exec("INSERT INTO t VALUES (1), (2), (3), (4), (5)").rows_written == 5
    for ddl in ("CREATE TABLE u(b)", "CREATE INDEX ti ON t(a)", "DROP INDEX ti"):
        cursor = d.sql.exec(ddl)
        cursor.to_array()
        assert cursor.rows_written == 0, ddl
    d.sql.exec("CREATE TRIGGER tr AFTER INSERT ON u BEGIN INSERT INTO t VALUES (0); END")
    cursor = d.sql.exec("INSERT INTO u VALUES (1)")
    assert cursor.rows_written == 2  # the trigger's row too


def test_one_with_several_rows_consumes_the_cursor() -> None:
    # recorded in workerd: toArray() after the failed one() is empty
    d = DurableObjectStorage()
    d.sql.exec("CREATE TABLE t(a); INSERT INTO t VALUES (1), (2), (3)")
    cursor = d.sql.exec("SELECT a FROM t")
    with pytest.raises(SqlError, match="got multiple results"):
        cursor.one()
    assert cursor.to_array() == []


def test_set_alarm_stores_nanoseconds_and_refuses_what_workerd_refuses() -> None:
    # workerd 1.20261117.1: _cf_METADATA row 1 holds 4102444800000000000 after
    # setAlarm(4102444800000); setAlarm(0) throws and writes nothing
    d = DurableObjectStorage()
    for bad, message in (
        (0, "alarm time <= 0"),
        (-5, "alarm time <= 0"),
        (float("nan"), "alarm time <= 0"),
        ("x", "parameter 1 is not of type 'date'"),
    ):
        with pytest.raises(TypeError, match=re.escape(message)):
            d.set_alarm(bad)  # type: ignore[arg-type]
    assert d.sql.exec("SELECT count(*) AS n FROM sqlite_master").one() == {"n": 0}
    d.set_alarm(4102444800000.7)
    assert d._internal("SELECT key, value FROM _cf_METADATA") == [(1, 4102444800000000000)]


def test_kv_keys_are_javascripts_string_of_the_key() -> None:
    # workerd stores put(null, v) under "null" and put(true, v) under "true"
    d = DurableObjectStorage()
    for key, text in ((None, "null"), (True, "true"), (5, "5"), (1.5, "1.5"), (2.0, "2")):
        d.put(key, text)  # type: ignore[arg-type]
        assert d.get(text) == text
    with pytest.raises(TypeError, match="not emulated"):
        d.put({"a": 1}, 1)  # type: ignore[arg-type]


def test_arrays_bind_as_javascripts_string_of_the_array() -> None:
    d = DurableObjectStorage()
    row = d.sql.exec("SELECT ? AS v", [1, [2, 3], None, True, 1.5, 2.0, 2**60]).one()
    assert row == {"v": "1,2,3,,true,1.5,2,1152921504606847000"}


def test_js_number_string_is_javascripts() -> None:
    cases = {
        1.5: "1.5",
        2.0: "2",
        1e21: "1e+21",
        1e20: "100000000000000000000",
        1e-7: "1e-7",
        1.5e-6: "0.0000015",
        -2.5e25: "-2.5e+25",
        -0.0: "0",
        0.1 + 0.2: "0.30000000000000004",
        5e-324: "5e-324",
        float(2**60): "1152921504606847000",
        float("nan"): "NaN",
        float("-inf"): "-Infinity",
    }
    for value, text in cases.items():
        assert js_number_string(value) == text, value


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_js_number_string_agrees_with_node() -> None:
    rng = random.Random(5)
    values = [
        rng.choice([1, -1]) * rng.random() * 10 ** rng.randint(-30, 30) for _ in range(2000)
    ] + [float(rng.randint(-(2**62), 2**62)) for _ in range(200)]
    out = subprocess.run(
        [
            "node",
            "-e",
            "for (const x of JSON.parse(require('fs').readFileSync(0))) console.log(String(x))",
        ],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [js_number_string(v) for v in values] == out
