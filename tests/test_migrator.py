"""The migrator against drizzle's real behaviour (research/drizzle-durable-sqlite.md §3, §6)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dosqlite import DurableObjectStorage, MigrationError, migrate
from pytest_dosqlite.bundle import Bundle, Migration
from pytest_dosqlite.migrator import LEDGER_DDL, js_number

BP = "--> statement-breakpoint"


def make_bundle(*entries: tuple[str, int, str], missing: tuple[str, ...] = ()) -> Bundle:
    migrations = tuple(
        Migration(idx=i, tag=tag, when=when, key=f"m{i:04d}", sql=sql, path=Path(f"{tag}.sql"))
        for i, (tag, when, sql) in enumerate(entries)
    )
    return Bundle(
        root=Path("drizzle"), format="durable-sqlite", migrations=migrations, missing=missing
    )


USERS = (
    "0000_users",
    1000,
    f"CREATE TABLE `users` (`id` integer PRIMARY KEY, `name` text);{BP}\n"
    "CREATE INDEX `users_name` ON `users` (`name`);",
)
POSTS = (
    "0001_posts",
    2000,
    "CREATE TABLE `posts` (`id` integer PRIMARY KEY, `uid` integer "
    "REFERENCES `users`(`id`) ON DELETE cascade);",
)
TAGS = ("0002_tags", 3000, "CREATE TABLE `tags` (`id` integer PRIMARY KEY);")


def rows(do: DurableObjectStorage, sql: str) -> list[list[object]]:
    return do.sql.exec(sql).raw().to_array()


def ledger(do: DurableObjectStorage) -> list[list[object]]:
    return rows(
        do,
        "SELECT rowid, id, hash, created_at, typeof(created_at) "
        'FROM "__drizzle_migrations" ORDER BY rowid',
    )


def tables(do: DurableObjectStorage) -> list[str]:
    return [
        r[0]
        for r in rows(
            do,
            "SELECT name FROM sqlite_master WHERE type='table' "
            "AND name NOT LIKE 'sqlite%' ORDER BY name",
        )
    ]


def test_fresh_migrate_writes_drizzles_ledger() -> None:
    do = DurableObjectStorage()
    run = migrate(do, make_bundle(USERS, POSTS))
    assert run.applied == ["0000_users", "0001_posts"]
    assert ledger(do) == [[1, None, "", 1000, "integer"], [2, None, "", 2000, "integer"]]
    ddl = rows(do, "SELECT sql FROM sqlite_master WHERE name = '__drizzle_migrations'")[0][0]
    assert ddl == LEDGER_DDL.strip().replace("IF NOT EXISTS ", "")
    assert rows(
        do,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '__drizzle_migrations'",
    ) == [["sqlite_autoindex___drizzle_migrations_1"]]


def test_second_migrate_is_a_noop() -> None:
    do = DurableObjectStorage()
    b = make_bundle(USERS, POSTS)
    migrate(do, b)
    image = do.image()
    run = migrate(do, b)
    assert run.applied == [] and run.not_applied == ["0000_users", "0001_posts"]
    assert do.image() == image


def test_out_of_order_when_is_skipped_forever_on_existing_dos() -> None:
    do = DurableObjectStorage()
    migrate(do, make_bundle(USERS, POSTS))
    merged = make_bundle(USERS, POSTS, ("0002_tags", 1500, TAGS[2]))
    run = migrate(do, merged)
    assert run.applied == [] and "0002_tags" in run.not_applied
    assert "tags" not in tables(do)
    fresh = DurableObjectStorage()
    migrate(fresh, merged)
    assert "tags" in tables(fresh)  # fresh and upgraded DOs differ


def test_equal_when_is_skipped() -> None:
    do = DurableObjectStorage()
    migrate(do, make_bundle(USERS, POSTS))
    run = migrate(do, make_bundle(USERS, POSTS, ("0002_tags", 2000, TAGS[2])))
    assert run.applied == []


def test_high_water_mark_is_read_once_before_the_loop() -> None:
    do = DurableObjectStorage()
    migrate(do, make_bundle(USERS))
    # two new entries, the second older than the first but newer than the ledger's max
    run = migrate(
        do, make_bundle(USERS, ("0001_posts", 3000, POSTS[2]), ("0002_tags", 2000, TAGS[2]))
    )
    assert run.applied == ["0001_posts", "0002_tags"]


def test_journal_array_order_wins() -> None:
    do = DurableObjectStorage()
    drop = ("0001_drop", 2000, "DROP TABLE `users`;")
    reversed_bundle = make_bundle(drop, USERS)
    with pytest.raises(MigrationError) as info:
        migrate(do, reversed_bundle)
    assert info.value.tag == "0001_drop"
    assert str(info.value.cause) == "no such table: users: SQLITE_ERROR"


def test_failure_rolls_back_the_whole_run_and_names_the_statement() -> None:
    do = DurableObjectStorage()
    migrate(do, make_bundle(USERS))
    bad = (
        "0002_bad",
        3000,
        f"CREATE TABLE `x` (`a` integer);{BP}\nCREATE INDEKS `i` ON `x` (`a`);",
    )
    with pytest.raises(MigrationError) as info:
        migrate(do, make_bundle(USERS, POSTS, bad))
    err = info.value
    assert err.tag == "0002_bad"
    assert err.chunk == 1
    assert err.line == 2
    assert err.statement == "CREATE INDEKS `i` ON `x` (`a`);"
    assert str(err.cause) == 'near "INDEKS": syntax error at offset 8: SQLITE_ERROR'
    assert err.drizzle_message == "DrizzleError: Rollback"
    assert err.applied_before == ["0001_posts"]
    assert tables(do) == ["__drizzle_migrations", "users"]  # 0001 rolled back too
    assert len(ledger(do)) == 1


def test_failure_on_a_fresh_do_leaves_nothing() -> None:
    do = DurableObjectStorage()
    with pytest.raises(MigrationError):
        migrate(do, make_bundle(USERS, ("0001_bad", 2000, "SELECT * FROM nosuch;")))
    assert rows(do, "SELECT * FROM sqlite_master") == []


def test_missing_key_throws_before_touching_the_db() -> None:
    do = DurableObjectStorage()
    with pytest.raises(MigrationError) as info:
        migrate(do, make_bundle(USERS, POSTS, missing=("0001_posts",)))
    assert str(info.value.message) == "Missing migration: 0001_posts"
    assert rows(do, "SELECT * FROM sqlite_master") == []


@pytest.mark.parametrize(
    ("sql", "cause"),
    [
        (
            "-- Custom SQL migration file, put your code below! --",
            "SQL code did not contain a statement.",
        ),
        ("CREATE TABLE `x` (`a` integer); -- done", "SQL code did not contain a statement."),
        (f"CREATE TABLE `x` (`a` integer);{BP}\n", "SQL code did not contain a statement."),
        ("BEGIN;\nCREATE TABLE `x` (`a` integer);\nCOMMIT;", "To execute a transaction"),
        ("PRAGMA journal_mode=WAL;", "not authorized: SQLITE_AUTH"),
    ],
)
def test_statements_a_do_rejects(sql: str, cause: str) -> None:
    do = DurableObjectStorage()
    with pytest.raises(MigrationError) as info:
        migrate(do, make_bundle(USERS, ("0001_x", 2000, sql)))
    assert str(info.value.cause).startswith(cause)
    assert info.value.tag == "0001_x"


def test_several_statements_and_a_trigger_in_one_chunk() -> None:
    do = DurableObjectStorage()
    sql = (
        "CREATE TABLE `a` (`x` integer); CREATE TABLE `log` (`x` integer);\n"
        "CREATE TRIGGER `t` AFTER INSERT ON `a` BEGIN INSERT INTO `log` VALUES (new.x); END;"
    )
    migrate(do, make_bundle(("0000_a", 1, sql)))
    do.sql.exec("INSERT INTO a VALUES (5)")
    assert rows(do, "SELECT x FROM log") == [[5]]


RECREATE = (
    "0002_recreate",
    3000,
    f"PRAGMA foreign_keys=OFF;{BP}\n"
    "CREATE TABLE `__new_users` (`id` integer PRIMARY KEY, `name` text NOT NULL DEFAULT '');"
    f'{BP}\nINSERT INTO `__new_users`("id", "name") SELECT "id", "name" FROM `users`;'
    f"{BP}\nDROP TABLE `users`;{BP}\nALTER TABLE `__new_users` RENAME TO `users`;{BP}\n"
    f"PRAGMA foreign_keys=ON;{BP}\nCREATE INDEX `users_name` ON `users` (`name`);",
)


def test_recreation_cascades_and_deletes_children_silently() -> None:
    do = DurableObjectStorage()
    migrate(do, make_bundle(USERS, POSTS))
    do.sql.exec("INSERT INTO users VALUES (1, 'a'); INSERT INTO posts VALUES (1, 1), (2, 1)")
    run = migrate(do, make_bundle(USERS, POSTS, RECREATE))
    assert run.applied == ["0002_recreate"]
    assert rows(do, "SELECT count(*) FROM posts") == [[0]]
    assert rows(do, "PRAGMA foreign_keys") == [[1]]
    sql = rows(do, "SELECT sql FROM sqlite_master WHERE name = 'users'")[0][0]
    assert sql.startswith('CREATE TABLE "users"')  # SQLite's RENAME rewrite


def test_foreign_keys_off_before_migrate_in_block_concurrency_while_keeps_children() -> None:
    do = DurableObjectStorage()
    migrate(do, make_bundle(USERS, POSTS))
    do.sql.exec("INSERT INTO users VALUES (1, 'a'); INSERT INTO posts VALUES (1, 1), (2, 1)")
    do.restart()

    def ctor() -> None:
        do.sql.exec("PRAGMA foreign_keys=OFF")
        migrate(do, make_bundle(USERS, POSTS, RECREATE))

    do.block_concurrency_while(ctor)
    assert rows(do, "SELECT count(*) FROM posts") == [[2]]
    assert rows(do, "PRAGMA foreign_key_check") == []


def test_recreation_copying_null_into_not_null_fails_and_rolls_back() -> None:
    do = DurableObjectStorage()
    migrate(do, make_bundle(USERS, POSTS))
    do.sql.exec("INSERT INTO users VALUES (1, NULL)")
    with pytest.raises(MigrationError) as info:
        migrate(do, make_bundle(USERS, POSTS, RECREATE))
    assert str(info.value.cause) == (
        "NOT NULL constraint failed: __new_users.name: SQLITE_CONSTRAINT "
        "(extended: SQLITE_CONSTRAINT_NOTNULL)"
    )
    assert info.value.line == 3
    assert "__new_users" not in tables(do)
    assert rows(do, "SELECT count(*) FROM posts") == [[0]]


def test_recreation_without_fk_action_fails_on_drop() -> None:
    do = DurableObjectStorage()
    posts = (
        "0001_posts",
        2000,
        "CREATE TABLE `posts` (`id` integer PRIMARY KEY, `uid` integer REFERENCES `users`(`id`));",
    )
    migrate(do, make_bundle(USERS, posts))
    do.sql.exec("INSERT INTO users VALUES (1, 'a'); INSERT INTO posts VALUES (1, 1)")
    with pytest.raises(MigrationError) as info:
        migrate(do, make_bundle(USERS, posts, RECREATE))
    assert str(info.value.cause) == (
        "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)"
    )
    assert info.value.statement == "DROP TABLE `users`;"


def test_squashed_baseline_on_an_existing_do_fails() -> None:
    do = DurableObjectStorage()
    migrate(do, make_bundle(USERS, POSTS))
    squashed = make_bundle(("0000_baseline", 5000, USERS[2].split(BP)[0] + "\n" + POSTS[2]))
    with pytest.raises(MigrationError) as info:
        migrate(do, squashed)
    assert str(info.value.cause).startswith("table `users` already exists")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 0.0),
        (5, 5.0),
        ("12", 12.0),
        (" 7 ", 7.0),
        ("", 0.0),
        ("0x10", 16.0),
        ("Infinity", float("inf")),
        (b"x", float("nan")),
        ("abc", float("nan")),
    ],
)
def test_js_number(value: object, expected: float) -> None:
    got = js_number(value)
    assert got == expected or (got != got and expected != expected)


# ------------------------------------------------- the entries newer than the mark, fast path

_WHENS = st.lists(st.integers(min_value=0, max_value=12), min_size=0, max_size=9)


@settings(max_examples=150, deadline=None)
@given(
    whens=_WHENS,
    sorted_first=st.booleans(),
    mark=st.one_of(st.none(), st.integers(-1, 13), st.sampled_from(["5", "abc", " 3 "])),
)
def test_pending_entries_are_drizzles_whatever_the_order_of_whens(
    whens: list[int], sorted_first: bool, mark: int | None
) -> None:
    """``migrate()`` finds the entries newer than the ledger's mark by bisection when the
    journal's ``when`` never decreases; either way they are drizzle's loop's: every entry with
    ``Number(mark) < when``, in journal order (NULL reads as 0, text that is no number as NaN,
    which no entry is newer than)."""
    if sorted_first:
        whens = sorted(whens)
    bundle = make_bundle(
        *((f"{i:04d}_t{i}", w, f"CREATE TABLE `t{i}` (`id` integer);") for i, w in enumerate(whens))
    )
    do = DurableObjectStorage()
    do.sql.exec(LEDGER_DDL)
    do.sql.exec('INSERT INTO "__drizzle_migrations" ("hash", "created_at") VALUES (?, ?)', "", mark)
    run = migrate(do, bundle)
    expected = [m.tag for m in bundle.migrations if js_number(mark) < m.when]
    assert run.applied == expected
    assert run.not_applied == [m.tag for m in bundle.migrations if m.tag not in expected]
    assert bundle.entry_index().ascending == (whens == sorted(whens))


def test_a_prefix_shares_its_bundles_index_and_reads_as_a_new_bundle_would() -> None:
    snap = Path("meta/0001_snapshot.json")
    migrations = (
        Migration(idx=0, tag="0000_a", when=1, key="m0000", sql="SELECT 1;", path=Path("a.sql")),
        Migration(
            idx=1, tag="0001_b", when=2, key="m0001", sql="", path=Path("b.sql"), error="broken b"
        ),
        Migration(
            idx=2, tag="0002_c", when=3, key="m0002", sql="SELECT 1;", path=Path("c"), snapshot=snap
        ),
    )
    whole = Bundle(root=Path("d"), format="durable-sqlite", migrations=migrations)
    for count in range(4):
        part = whole.prefix(count)
        assert part.entry_index() is whole.entry_index()
        kept = migrations[:count]
        assert part.snapshot_paths == tuple(m.snapshot for m in kept if m.snapshot)
        assert part.drizzle_error == next((m.error for m in kept if m.error), None)
        assert part.prefix(1).migrations == migrations[: min(1, count)]
    # a bundle built from another's fields with other migrations gets its own index
    other = replace(whole.prefix(2), migrations=migrations[1:])
    assert other.entry_index() is not whole.entry_index()
    assert other.entry_index().tags == ["0001_b", "0002_c"]


def test_unread_returning_fails_the_run_and_is_blamed_on_its_statement() -> None:
    from pytest_dosqlite import DurableObjectInternalError

    do = DurableObjectStorage()
    migrate(do, make_bundle(USERS))
    do.sql.exec("INSERT INTO users (name) VALUES ('ada')")
    touch = (
        "0001_touch",
        2000,
        f"CREATE TABLE `x` (`a` integer);{BP}\nUPDATE `users` SET `name` = upper(`name`) "
        f"RETURNING `id`;{BP}\nCREATE TABLE `y` (`b` integer);",
    )
    with pytest.raises(MigrationError) as info:
        migrate(do, make_bundle(USERS, touch, TAGS))
    err = info.value
    assert isinstance(err.cause, DurableObjectInternalError)
    # the failure comes at the end of the run; the blame goes to the RETURNING statement
    assert (err.tag, err.chunk, err.line) == ("0001_touch", 1, 2)
    assert err.statement == "UPDATE `users` SET `name` = upper(`name`) RETURNING `id`;"
    assert err.drizzle_message == str(err.cause)  # workerd fails the request, no Rollback
    assert err.drizzle_message.startswith("internal error; reference = ")
    assert "never read" in err.message
    assert err.applied_before == ["0002_tags"]  # the others of the run, not the culprit
    assert tables(do) == ["__drizzle_migrations", "users"]
    assert rows(do, "SELECT name FROM users") == [["ada"]]


def test_returning_on_an_empty_table_passes_as_on_workerd() -> None:
    do = DurableObjectStorage()
    run = migrate(
        do, make_bundle(USERS, ("0001_touch", 2000, "DELETE FROM `users` RETURNING `id`;"))
    )
    assert run.applied == ["0000_users", "0001_touch"]


def test_or_rollback_conflict_is_blamed_on_its_statement() -> None:
    do = DurableObjectStorage()
    bad = (
        "0001_dup",
        2000,
        "CREATE UNIQUE INDEX `u` ON `users` (`name`);"
        f"{BP}\nINSERT INTO `users` (`name`) VALUES ('a');"
        f"{BP}\nINSERT OR ROLLBACK INTO `users` (`name`) VALUES ('a');",
    )
    with pytest.raises(MigrationError) as info:
        migrate(do, make_bundle(USERS, bad))
    err = info.value
    assert (err.tag, err.chunk, err.line) == ("0001_dup", 2, 3)
    assert "rolled back the whole transaction" in err.message
    assert "UNIQUE constraint failed: users.name" in err.message
    assert rows(do, "SELECT * FROM sqlite_master") == []
