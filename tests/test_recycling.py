"""A recycled DO is indistinguishable from a new copy of its image.

Every test here lends a DO from a pool, does something to it, closes it, lends the next one and
compares everything a DO's code can observe with a DO opened directly on the image: rows,
``sqlite_sequence``, the schema, pragmas, ``databaseSize`` and the connection counters
(``changes()``, ``total_changes()``, ``last_insert_rowid()``). It also checks that the pool
really reused the connection where the undo is exact, and closed it where it is not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import apsw
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dosqlite.errors import SqlError
from pytest_dosqlite.recycling import ConnectionPool
from pytest_dosqlite.storage import DurableObjectStorage

SCHEMA = [
    "CREATE TABLE users (id integer PRIMARY KEY NOT NULL, email text NOT NULL UNIQUE)",
    "CREATE TABLE posts (id integer PRIMARY KEY NOT NULL, author_id integer REFERENCES users(id)"
    " ON DELETE cascade, title text NOT NULL)",
    "CREATE TABLE notes (id integer PRIMARY KEY AUTOINCREMENT, body text)",
    "CREATE TABLE tags (name text PRIMARY KEY NOT NULL, n integer) WITHOUT ROWID",
    "CREATE TABLE events (kind text, at integer)",
    "CREATE INDEX events_kind ON events (kind)",
    "INSERT INTO users VALUES (1, 'a@x'), (2, 'b@x')",
    "INSERT INTO posts VALUES (1, 1, 'hello'), (2, 2, 'world')",
    "INSERT INTO notes (body) VALUES ('first')",
    "INSERT INTO tags VALUES ('red', 1)",
    "INSERT INTO events VALUES ('boot', 1)",
]


def make_image(extra: list[str] | None = None) -> bytes:
    do = DurableObjectStorage()
    for sql in SCHEMA + (extra or []):
        do.sql.exec(sql)
    do.put("config", "v1")
    image = do.image()
    do.close()
    return image


IMAGE = make_image()


def observe(do: DurableObjectStorage) -> dict[str, Any]:
    """Everything a DO's own code can see (the counters first: the other reads keep them)."""
    q = do.sql.exec
    seen: dict[str, Any] = {
        "counters": q("SELECT changes(), total_changes(), last_insert_rowid()").raw().to_array()
    }
    names = [
        r["name"]
        for r in q(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' "
            "ORDER BY name"
        )
    ]
    for name in names:
        seen[name] = q(f'SELECT * FROM "{name}" ORDER BY 1, 2').raw().to_array()
    seen["schema"] = q("SELECT type, name, sql FROM sqlite_master ORDER BY name").raw().to_array()
    seen["pragmas"] = [
        q(f"PRAGMA {p}").raw().to_array()
        for p in (
            "foreign_keys",
            "defer_foreign_keys",
            "recursive_triggers",
            "legacy_alter_table",
            "reverse_unordered_selects",
            "ignore_check_constraints",
        )
    ]
    seen["like"] = q("SELECT 'a' LIKE 'A' AS v").one()
    seen["size"] = do.sql.database_size
    seen["kv"] = do.get("config")
    seen["data_version"] = q("PRAGMA data_version").raw().to_array()
    return seen


def check_after(
    op: Callable[[DurableObjectStorage], object], image: bytes = IMAGE
) -> ConnectionPool:
    pool = ConnectionPool()
    first = pool.lend("k", image)
    with contextlib.suppress(SqlError, ValueError):
        op(first)
    first.close()
    second = pool.lend("k", image)
    expected_do = DurableObjectStorage(image=image)
    expected = observe(expected_do)
    expected_do.close()
    assert observe(second) == expected
    second.close()
    return pool


def run(*statements: str) -> Callable[[DurableObjectStorage], None]:
    def op(do: DurableObjectStorage) -> None:
        for sql in statements:
            do.sql.exec(sql)

    return op


UNDONE = {
    "nothing": run(),
    "reads": run("SELECT * FROM users", "PRAGMA table_info(users)"),
    "insert": run("INSERT INTO users VALUES (3, 'c@x')"),
    "insert child": run(
        "INSERT INTO users VALUES (3, 'c@x')", "INSERT INTO posts VALUES (3, 3, 't')"
    ),
    "update": run("UPDATE users SET email = 'z@x' WHERE id = 1"),
    "delete with cascade": run("DELETE FROM users WHERE id = 1"),
    "autoincrement": run("INSERT INTO notes (body) VALUES ('x')", "DELETE FROM notes"),
    "without rowid": run(
        "INSERT INTO tags VALUES ('blue', 2)", "DELETE FROM tags WHERE name = 'red'"
    ),
    "no primary key": run("INSERT INTO events VALUES ('x', 2)", "UPDATE events SET at = 9"),
    "kv put": lambda do: do.put("config", "v2"),
    "rolled back": lambda do: do.transaction_sync(
        lambda: (do.sql.exec("INSERT INTO users VALUES (9, 'q@x')"), 1 / 0)
    ),
    "failed statement": run("INSERT INTO users VALUES (1, 'dup')"),
    "upsert": run(
        "INSERT INTO users VALUES (1, 'a2@x') ON CONFLICT(id) DO UPDATE SET email = excluded.email"
    ),
    "replace": run("REPLACE INTO tags VALUES ('red', 5)"),
    # rolled back: no row changed, but SQLite keeps the rowid the first row got
    "failed multi-row insert": run("INSERT INTO users VALUES (7, 'g@x'), (1, 'dup')"),
}


@pytest.mark.parametrize("name", list(UNDONE))
def test_changes_are_undone_and_the_connection_reused(name: str) -> None:
    op = UNDONE[name]
    if name == "rolled back":

        def op(do: DurableObjectStorage) -> None:
            with pytest.raises(ZeroDivisionError):
                UNDONE["rolled back"](do)

    pool = check_after(op)
    assert (pool.reused, pool.discarded) == (1, 0)


CLOSED = {
    "foreign keys off": run("PRAGMA foreign_keys = OFF"),
    "recursive triggers": run("PRAGMA recursive_triggers = ON"),
    "case sensitive like": run("PRAGMA case_sensitive_like = ON"),
    "create table": run("CREATE TABLE t (x)"),
    "create index": run("CREATE INDEX users_email2 ON users (email)"),
    "analyze": run("ANALYZE"),
    "alarm (creates the hidden _cf_METADATA table)": lambda do: do.set_alarm(123),
    "optimize": run("PRAGMA optimize"),
    "a pragma set with a comment in it": run("PRAGMA /* for this test */ foreign_keys = OFF"),
    "a comment before the value": run("PRAGMA main.recursive_triggers /* c */ = ON"),
    "a line comment": run("PRAGMA --x\n reverse_unordered_selects = ON"),
    "a pragma set under EXPLAIN (applied while preparing)": run(
        "EXPLAIN PRAGMA case_sensitive_like = ON"
    ),
    "grows the file": run(
        "WITH RECURSIVE c(i) AS (SELECT 10 UNION ALL SELECT i + 1 FROM c WHERE i < 3000) "
        "INSERT INTO users SELECT i, 'user' || i || '@example.com' FROM c",
        "DELETE FROM users WHERE id >= 10",
    ),
}


@pytest.mark.parametrize("name", list(CLOSED))
def test_what_cannot_be_undone_exactly_closes_the_connection(name: str) -> None:
    pool = check_after(CLOSED[name])
    assert (pool.reused, pool.discarded) == (0, 1)


def test_restart_and_reset_never_hand_back_the_changed_database() -> None:
    def op(do: DurableObjectStorage) -> None:
        do.sql.exec("INSERT INTO users VALUES (7, 'r@x')")
        do.restart()
        do.sql.exec("INSERT INTO users VALUES (8, 's@x')")

    pool = check_after(op)
    assert pool.reused == 0

    def reset(do: DurableObjectStorage) -> None:
        with pytest.raises(ZeroDivisionError):
            do.block_concurrency_while(lambda: (do.sql.exec("DELETE FROM posts"), 1 / 0))

    check_after(reset)


def test_a_schema_with_triggers_is_never_undone() -> None:
    # the undo would fire the trigger again
    image = make_image(
        [
            "CREATE TRIGGER log AFTER DELETE ON users "
            "BEGIN INSERT INTO events VALUES ('gone', 1); END"
        ]
    )
    pool = check_after(run("DELETE FROM users WHERE id = 1"), image)
    assert (pool.reused, pool.discarded) == (0, 1)
    pool = check_after(run("SELECT * FROM users"), image)  # reading is still free
    assert pool.reused == 1


@pytest.mark.parametrize(
    "table",
    [
        "loose (code text PRIMARY KEY, v integer)",
        "quirk (id INTEGER PRIMARY KEY DESC, v integer)",
        "ledger (id SERIAL PRIMARY KEY, hash text NOT NULL)",  # drizzle's __drizzle_migrations
    ],
    ids=["nullable text key", "integer key desc", "serial key"],
)
def test_rows_the_session_cannot_record_are_never_undone(table: str) -> None:
    name = table.split()[0]
    image = make_image([f"CREATE TABLE {table}"])
    pool = check_after(run(f"INSERT INTO {name} VALUES (NULL, 'x')"), image)
    assert (pool.reused, pool.discarded) == (0, 1)
    pool = check_after(run(f"INSERT INTO {name} VALUES ('k', 'x')", "DELETE FROM posts"), image)
    assert (pool.reused, pool.discarded) == (0, 1)
    # writing only the other tables is undone as usual
    pool = check_after(run("DELETE FROM users WHERE id = 1"), image)
    assert (pool.reused, pool.discarded) == (1, 0)


def test_a_closed_do_stays_closed_while_its_connection_serves_another() -> None:
    pool = ConnectionPool()
    first = pool.lend("k", IMAGE)
    first.close()
    second = pool.lend("k", IMAGE)
    assert pool.reused == 1
    with pytest.raises(apsw.ConnectionClosedError):
        first.sql.exec("DELETE FROM users")
    assert second.sql.exec("SELECT count(*) AS n FROM users").one()["n"] == 2
    second.close()


def test_counters_read_as_on_a_new_connection_after_several_recycles() -> None:
    pool = ConnectionPool()
    for _i in range(4):
        do = pool.lend("k", IMAGE)
        assert do.sql.exec("SELECT total_changes() AS t").one()["t"] == 0
        do.sql.exec("INSERT INTO notes (body) VALUES ('n')")
        row = do.sql.exec("SELECT changes() AS c, total_changes() AS t, last_insert_rowid() AS r")
        assert row.one() == {"c": 1, "t": 1, "r": 2}
        do.close()
    assert pool.reused == 3


def test_images_are_kept_apart_by_key() -> None:
    other = make_image(["INSERT INTO users VALUES (5, 'e@x')"])
    pool = ConnectionPool()
    pool.lend("a", IMAGE).close()
    do = pool.lend("b", other)
    assert do.sql.exec("SELECT count(*) AS n FROM users").one()["n"] == 3
    do.close()
    assert pool.reused == 0


_WRITES = st.lists(
    st.one_of(
        st.builds(
            lambda i: f"INSERT OR IGNORE INTO users VALUES ({i}, 'u{i}@x')", st.integers(1, 9)
        ),
        st.builds(
            lambda i, a: f"INSERT OR IGNORE INTO posts VALUES ({i}, {a}, 'p')",
            st.integers(1, 9),
            st.integers(1, 9),
        ),
        st.builds(lambda i: f"DELETE FROM users WHERE id = {i}", st.integers(1, 9)),
        st.builds(lambda i: f"UPDATE posts SET title = 'x{i}' WHERE id <= {i}", st.integers(1, 9)),
        st.just("INSERT INTO notes (body) VALUES ('h')"),
        st.just("DELETE FROM notes WHERE id = (SELECT max(id) FROM notes)"),
        st.builds(lambda k: f"INSERT INTO events VALUES ('k{k}', {k})", st.integers(0, 3)),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(_WRITES)
def test_any_sequence_of_row_changes_is_undone(statements: list[str]) -> None:
    def op(do: DurableObjectStorage) -> None:
        for sql in statements:
            with contextlib.suppress(SqlError):  # a foreign-key failure is part of it
                do.sql.exec(sql)

    check_after(op)


def test_image_cache_lends_recycled_dos_per_version() -> None:
    from conftest import REPO
    from pytest_dosqlite import load_bundle
    from pytest_dosqlite.images import ImageCache

    bundle = load_bundle(REPO / "example_project" / "drizzle")
    cache = ImageCache()
    head = cache.fresh(bundle)
    tables = head.sql.exec("SELECT count(*) AS n FROM sqlite_master").one()["n"]
    head.close()
    old = cache.fresh(bundle, 1)
    assert old.sql.exec("SELECT count(*) AS n FROM sqlite_master").one()["n"] < tables
    old.close()
    again = cache.fresh(bundle)
    assert again.sql.exec("SELECT count(*) AS n FROM sqlite_master").one()["n"] == tables
    again.close()
    assert (cache.pool.reused, cache.pool.discarded) == (1, 0)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_users_tests_stay_isolated_while_connections_are_recycled(
    pytester: pytest.Pytester, workers: str
) -> None:
    from test_plugin import make_project

    make_project(pytester.path)
    pytester.makepyfile(
        test_isolation="""
        import pytest
        import pytest_dosqlite as dosqlite

        @pytest.mark.parametrize("n", range(20))
        def test_writes(migrated_do, n):
            q = migrated_do.sql.exec
            assert q("SELECT count(*) AS c FROM users").one() == {"c": 0}
            assert q("SELECT total_changes() AS t, last_insert_rowid() AS r").one() == {
                "t": 0, "r": 0}
            q("INSERT INTO users (id, name) VALUES (1, 'same key every time')")
            q("INSERT INTO posts (title) VALUES ('p')")
            if n % 5 == 0:
                q("PRAGMA foreign_keys = OFF")  # this one is not recycled
            if n % 7 == 0:
                q("CREATE TABLE extra (x)")  # nor this one
            assert q("SELECT count(*) AS c FROM posts").one() == {"c": 1}

        @pytest.mark.parametrize("n", range(5))
        def test_reads_see_foreign_keys_on(migrated_do, n):
            assert migrated_do.sql.exec("PRAGMA foreign_keys").raw().to_array() == [[1]]
            names = [r[0] for r in migrated_do.sql.exec(
                "SELECT name FROM sqlite_master WHERE name = 'extra'").raw()]
            assert names == []

        @pytest.mark.parametrize("n", range(5))
        def test_data_migration(do_at, dosqlite_bundle, n):
            do = do_at("0000_init")
            do.sql.exec("INSERT INTO users (id, name) VALUES (1, 'a')")
            dosqlite.migrate(do, dosqlite_bundle)
            assert do.sql.exec("SELECT count(*) AS c FROM users").one() == {"c": 1}
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", workers)
    result.assert_outcomes(passed=30)


def test_a_do_dropped_without_close_does_not_keep_its_connection() -> None:
    import gc
    import weakref

    pool = ConnectionPool()
    do = pool.lend("k", IMAGE)
    conn = weakref.ref(do._conn)
    del do
    gc.collect()
    assert conn() is None


TEXT_KEYS = [
    "CREATE TABLE roles (id text PRIMARY KEY NOT NULL, n integer)",
    "CREATE TABLE members (team text NOT NULL, user text NOT NULL, PRIMARY KEY (team, user))",
    "INSERT INTO roles VALUES ('r1', 1), ('r2', 2), ('r3', 3)",
    "INSERT INTO members VALUES ('t', 'u1'), ('t', 'u2')",
]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM roles WHERE id = 'r1'",
        "UPDATE roles SET id = 'r9' WHERE id = 'r1'",
        "INSERT OR REPLACE INTO roles VALUES ('r1', 5)",
        "DELETE FROM members WHERE user = 'u1'",
    ],
)
def test_a_row_keyed_by_another_key_keeps_its_rowid(sql: str) -> None:
    # the session records such rows by their key: an undone delete would come back under a
    # new rowid, and the next test would read the rows in another order
    image = make_image(TEXT_KEYS)
    pool = check_after(run(sql), image)
    do = pool.lend("k", image)
    assert do.sql.exec("SELECT rowid, id FROM roles").raw().to_array() == [
        [1, "r1"],
        [2, "r2"],
        [3, "r3"],
    ]
    assert do.sql.exec("SELECT user FROM members").raw().to_array() == [["u1"], ["u2"]]
    do.close()
    assert (pool.reused, pool.discarded) == (1, 1)  # closed after the change, then reused


def test_inserts_and_other_columns_of_such_tables_are_still_undone() -> None:
    image = make_image(TEXT_KEYS)
    for sql in ("INSERT INTO roles VALUES ('r4', 4)", "UPDATE roles SET n = 0"):
        pool = check_after(run(sql), image)
        assert (pool.reused, pool.discarded) == (1, 0), sql
