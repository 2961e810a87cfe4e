"""The seeder writes realistic, constraint-respecting rows into whatever schema a DO has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import shared_path
from pytest_dosqlite import DurableObjectStorage, load_bundle, migrate
from pytest_dosqlite.bundle import Bundle, Migration
from pytest_dosqlite.seed import (
    ColumnHints,
    SchemaTracker,
    bulk_seed,
    check_hints,
    read_tables,
    seed,
    seed_order,
    sql_literal,
)

SCHEMA = """
CREATE TABLE `users` (
    `id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    `name` text NOT NULL,
    `email` text NOT NULL,
    `bio` text,
    `age` integer NOT NULL,
    `is_admin` integer DEFAULT false NOT NULL,
    `created_at` integer DEFAULT (unixepoch()) NOT NULL,
    `settings` text
);
CREATE UNIQUE INDEX `users_email_unique` ON `users` (`email`);
CREATE TABLE `posts` (
    `id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    `title` text NOT NULL,
    `author_id` integer NOT NULL REFERENCES `users`(`id`) ON DELETE cascade,
    `editor_id` integer REFERENCES `users`(`id`) ON DELETE set null,
    `status` text DEFAULT 'draft' NOT NULL CHECK (`status` IN ('draft', 'published', 'hidden')),
    `score` integer CHECK (`score` BETWEEN 1 AND 5),
    `code` text NOT NULL CHECK (length(`code`) = 6),
    `price` real NOT NULL CHECK (`price` > 0 AND `price` < 100)
);
CREATE TABLE `categories` (
    `id` text PRIMARY KEY NOT NULL,
    `name` text NOT NULL,
    `parent_id` text REFERENCES `categories`(`id`) ON DELETE set null,
    CONSTRAINT `not_self` CHECK (`parent_id` IS NULL OR `parent_id` <> `id`)
);
CREATE TABLE `post_categories` (
    `post_id` integer NOT NULL REFERENCES `posts`(`id`) ON DELETE cascade,
    `category_id` text NOT NULL REFERENCES `categories`(`id`) ON DELETE cascade,
    `weight` real,
    PRIMARY KEY (`post_id`, `category_id`)
) WITHOUT ROWID;
CREATE TABLE `regions` (`country` text NOT NULL, `code` integer NOT NULL, `label` text,
    PRIMARY KEY (`country`, `code`));
CREATE TABLE `offices` (
    `id` integer PRIMARY KEY,
    `country` text,
    `region_code` integer,
    FOREIGN KEY (`country`, `region_code`) REFERENCES `regions`(`country`, `code`)
);
CREATE TABLE `profiles` (
    `user_id` integer PRIMARY KEY NOT NULL REFERENCES `users`(`id`) ON DELETE cascade,
    `handle` text NOT NULL,
    `full_name` text GENERATED ALWAYS AS (upper(`handle`)) VIRTUAL
);
CREATE TABLE `nodes` (`id` integer PRIMARY KEY,
    `root_id` integer NOT NULL REFERENCES `nodes`(`id`));
CREATE TABLE `measurements` (`id` INTEGER PRIMARY KEY, `value` REAL NOT NULL, `raw` BLOB,
    `note` TEXT, `tag` ANY) STRICT;
"""


IMPOSSIBLE = "CREATE TABLE t (id integer primary key, x integer NOT NULL CHECK (x > 10 AND x < 5))"
KARAKEEP = ("corpus", "karakeep-app__karakeep", "packages", "db", "drizzle")


def fresh(schema: str = SCHEMA) -> DurableObjectStorage:
    do = DurableObjectStorage()
    do.sql.exec(schema)
    return do


def rows(do: DurableObjectStorage, sql: str) -> list[list[object]]:
    return do.sql.exec(sql).raw().to_array()


def dump(do: DurableObjectStorage) -> dict[str, list[list[object]]]:
    return {t: rows(do, f'SELECT * FROM "{t}" ORDER BY 1, 2') for t in read_tables(do)}


def test_every_table_gets_rows_and_foreign_keys_hold() -> None:
    do = fresh()
    report = seed(do)
    assert report.problems == {}
    assert report.rows == {t: 3 for t in read_tables(do)}
    assert rows(do, "PRAGMA foreign_key_check") == []
    # parents before children in the report's order
    order = list(report.rows)
    assert order.index("users") < order.index("posts") < order.index("post_categories")
    assert order.index("categories") < order.index("post_categories")
    assert order.index("regions") < order.index("offices")
    # NOT NULL foreign keys point at existing parents
    authors = rows(do, "SELECT author_id FROM posts")
    user_ids = {r[0] for r in rows(do, "SELECT id FROM users")}
    assert {a[0] for a in authors} <= user_ids


def test_seed_order_puts_parents_first_and_survives_cycles() -> None:
    do = fresh(
        "CREATE TABLE c (id integer primary key, b_id integer references b(id));"
        "CREATE TABLE b (id integer primary key, a_id integer references a(id));"
        "CREATE TABLE a (id integer primary key, c_id integer references c(id));"
        "CREATE TABLE z (id integer primary key);"
        "CREATE TABLE y (id integer primary key, z_id integer not null references z(id));"
    )
    order = seed_order(read_tables(do))
    assert order.index("z") < order.index("y")
    assert sorted(order) == ["a", "b", "c", "y", "z"]
    report = seed(do)
    assert report.total == 15
    assert rows(do, "PRAGMA foreign_key_check") == []


def test_a_cycle_is_broken_where_a_foreign_key_may_be_null() -> None:
    # a -> b is NOT NULL, b -> a is nullable, c hangs off b: b must come first
    do = fresh(
        "CREATE TABLE a (id integer primary key, b_id integer not null references b(id));"
        "CREATE TABLE b (id integer primary key, a_id integer references a(id));"
        "CREATE TABLE aa_child (id integer primary key, b_id integer not null references b(id));"
    )
    order = seed_order(read_tables(do))
    assert order.index("b") < order.index("a")
    assert order.index("b") < order.index("aa_child")
    report = seed(do)
    assert report.rows == {"b": 3, "a": 3, "aa_child": 3}, report.problems
    assert bulk_seed(fresh(do_schema(do)), 100).problems == {}


def do_schema(do: DurableObjectStorage) -> str:
    return ";".join(r[0] for r in rows(do, "SELECT sql FROM sqlite_master WHERE type = 'table'"))


def test_self_references_start_null_then_point_at_earlier_rows() -> None:
    do = fresh()
    seed(do, rows_per_table=6)
    cats = rows(do, "SELECT rowid, id, parent_id FROM categories ORDER BY rowid")
    assert cats[0][2] is None
    seen: set[object] = set()
    pointing = 0
    for _rowid, key, parent in cats:
        if parent is not None:
            assert parent in seen  # an earlier row
            pointing += 1
        seen.add(key)
    assert pointing >= 3
    # NOT NULL self reference: the first row points at itself
    nodes = rows(do, "SELECT id, root_id FROM nodes ORDER BY id")
    assert nodes[0][0] == nodes[0][1]
    assert all(root in {n[0] for n in nodes} for _, root in nodes)


def test_composite_foreign_keys_use_whole_parent_keys() -> None:
    do = fresh()
    seed(do, rows_per_table=5)
    regions = {tuple(r) for r in rows(do, "SELECT country, code FROM regions")}
    offices = rows(do, "SELECT country, region_code FROM offices")
    linked = [tuple(o) for o in offices if o[0] is not None and o[1] is not None]
    assert linked and set(linked) <= regions


def test_shared_column_of_overlapping_composite_foreign_keys_agrees() -> None:
    do = fresh(
        "CREATE TABLE u (id text primary key);"
        "CREATE TABLE lists (id text primary key, user_id text not null references u(id),"
        " UNIQUE (user_id, id));"
        "CREATE TABLE tags (id text primary key, user_id text not null references u(id),"
        " UNIQUE (user_id, id));"
        "CREATE TABLE rules (id text primary key, user_id text not null references u(id),"
        " list_id text, tag_id text,"
        " FOREIGN KEY (user_id, list_id) REFERENCES lists(user_id, id),"
        " FOREIGN KEY (user_id, tag_id) REFERENCES tags(user_id, id));"
    )
    report = seed(do, rows_per_table=4)
    assert report.rows["rules"] == 4, report.problems
    assert rows(do, "PRAGMA foreign_key_check") == []


def test_unique_columns_and_indexes_get_distinct_values() -> None:
    do = fresh()
    seed(do, rows_per_table=12)
    emails = [r[0] for r in rows(do, "SELECT email FROM users")]
    assert len(emails) == 12 == len(set(emails))
    assert all("@" in e for e in emails)
    # a one-to-one child: its primary key is a foreign key, so each parent is used once
    users = rows(do, "SELECT count(*) FROM users")[0][0]
    profiles = rows(do, "SELECT user_id FROM profiles")
    assert len(profiles) == min(12, users) == len({p[0] for p in profiles})


def test_seeding_twice_keeps_unique_values_distinct() -> None:
    do = fresh()
    seed(do)
    second = seed(do, rng_seed=0)
    assert second.rows["users"] == 3
    assert rows(do, "SELECT count(*), count(DISTINCT email) FROM users") == [[6, 6]]


def test_check_constraints_are_respected() -> None:
    do = fresh()
    report = seed(do, rows_per_table=10)
    assert report.rows["posts"] == 10, report.problems
    for status, score, code, price in rows(do, "SELECT status, score, code, price FROM posts"):
        assert status in ("draft", "published", "hidden")
        assert score is None or 1 <= score <= 5
        assert len(code) == 6
        assert 0 < price < 100


def test_an_impossible_check_is_reported_not_raised() -> None:
    do = fresh(
        "CREATE TABLE t (id integer primary key, x integer NOT NULL CHECK (x > 10 AND x < 5))"
    )
    report = seed(do)
    assert report.rows == {"t": 0}
    assert "CHECK constraint failed" in report.problems["t"][0]
    assert "t: not seeded" in report.render()


def test_nullable_columns_hold_nulls_and_values() -> None:
    do = fresh()
    seed(do)
    for table, column in [("users", "bio"), ("users", "settings"), ("posts", "editor_id")]:
        nulls, values = rows(
            do, f"SELECT count(*) - count({column}), count({column}) FROM {table}"
        )[0]
        assert nulls >= 1 and values >= 1, (table, column)
    filled = fresh()
    seed(filled, nulls=False)
    assert rows(filled, "SELECT count(*) FROM users WHERE bio IS NULL OR settings IS NULL") == [[0]]


def test_values_look_like_their_columns() -> None:
    do = fresh()
    seed(do, rows_per_table=8, nulls=False)
    for email, is_admin, created_at, settings in rows(
        do, "SELECT email, is_admin, created_at, settings FROM users"
    ):
        assert email.endswith("@example.com")
        assert is_admin in (0, 1)
        assert 1_600_000_000 < created_at < 1_900_000_000  # seconds, drizzle's timestamp mode
        json.loads(settings)
    types = rows(do, "SELECT DISTINCT typeof(age), typeof(price) FROM users, posts")
    assert types == [["integer", "real"]]


def test_defaults_are_sometimes_used() -> None:
    do = fresh()
    seed(do, rows_per_table=30)
    # the DEFAULT (unixepoch()) is "now"; generated timestamps lie in 2023-2025
    created = [r[0] for r in rows(do, "SELECT created_at FROM users")]
    now = rows(do, "SELECT unixepoch()")[0][0]
    from_default = [c for c in created if abs(c - now) < 600]
    assert 0 < len(from_default) < len(created)


def test_generated_strict_and_without_rowid_tables() -> None:
    do = fresh()
    report = seed(do)
    assert report.rows["profiles"] == 3
    assert all(r[1] == r[0].upper() for r in rows(do, "SELECT handle, full_name FROM profiles"))
    assert report.rows["measurements"] == 3  # STRICT: every value has the declared type
    assert rows(do, "SELECT DISTINCT typeof(value) FROM measurements") == [["real"]]
    assert report.rows["post_categories"] == 3  # WITHOUT ROWID, composite primary key


def test_internal_and_virtual_tables_are_left_alone() -> None:
    do = DurableObjectStorage()
    do.sql.exec(
        "CREATE TABLE notes (id integer primary key autoincrement, body text);"
        "CREATE VIRTUAL TABLE notes_fts USING fts5(body);"
    )
    # drizzle's ledger
    bundle = Bundle(
        root=Path("."),
        format="journal",
        migrations=(Migration(0, "0000_x", 1, "m0000", "CREATE TABLE x (id integer);"),),
    )
    migrate(do, bundle)
    report = seed(do)
    assert set(report.rows) == {"notes", "x"}
    assert rows(do, 'SELECT count(*) FROM "__drizzle_migrations"') == [[1]]
    assert rows(do, "SELECT count(*) FROM notes_fts") == [[0]]


def test_deterministic_for_a_seed_and_different_for_another() -> None:
    # the schema's `DEFAULT (unixepoch())` is SQLite's clock, not the seed: it differed when a
    # second ended between two seeds
    schema = SCHEMA.replace("DEFAULT (unixepoch())", "DEFAULT 0")
    assert schema != SCHEMA
    a, b, c = fresh(schema), fresh(schema), fresh(schema)
    seed(a, rng_seed=7)
    seed(b, rng_seed=7)
    seed(c, rng_seed=8)
    assert dump(a) == dump(b)
    assert dump(a) != dump(c)


def test_adding_a_table_does_not_change_the_others_rows() -> None:
    a = fresh()
    b = fresh(SCHEMA + "CREATE TABLE `zzz_extra` (`id` integer primary key, `label` text);")
    seed(a)
    seed(b)
    dump_b = dump(b)
    del dump_b["zzz_extra"]
    assert dump(a) == dump_b


def test_check_hints_parse_simple_checks() -> None:
    hints = check_hints(
        "CREATE TABLE t (a text CHECK (a IN ('x', 'y')), b integer CHECK (b >= 3 AND b < 9),"
        " c text CHECK (length(c) > 2), d text CHECK (json_valid(d)),"
        " e integer CHECK (e IS NULL OR e BETWEEN -5 AND 5), f text CHECK (f LIKE 'img-%'),"
        " g text CHECK (g = 'on' OR g = 'off'), h text CHECK (h <> ''))"
    )
    assert hints["a"].choices == ("x", "y")
    assert (hints["b"].low, hints["b"].low_strict, hints["b"].high, hints["b"].high_strict) == (
        3.0,
        False,
        9.0,
        True,
    )
    assert hints["c"].min_len == 3
    assert hints["d"].json
    assert (hints["e"].low, hints["e"].high) == (-5.0, 5.0)
    assert hints["f"].like_prefix == "img-"
    assert hints["g"].choices == ("on", "off")
    assert "" in hints["h"].not_values
    assert check_hints("CREATE TABLE t (a text)") == {}
    assert isinstance(check_hints("CREATE TABLE t (a text CHECK (a IN ('p')))")["a"], ColumnHints)


def test_check_hints_fall_back_to_a_regex_when_sqlglot_cannot_parse() -> None:
    hints = check_hints("CREATE TABLE t (a text CHECK (a IN ('x','y')) @@@ not sql")
    assert hints["a"].choices == ("x", "y")


def test_sql_literal() -> None:
    do = DurableObjectStorage()
    values = [None, 7, -(2**62), 1.5, "it's", b"\x00\xff", True, {"k": [1, 2]}]
    got = rows(do, "SELECT " + ", ".join(sql_literal(v) for v in values))[0]
    assert got[:6] == [None, 7, -(2**62), 1.5, "it's", b"\x00\xff"]
    assert got[6] == 1
    assert json.loads(str(got[7])) == {"k": [1, 2]}
    typed = rows(do, f"SELECT typeof({sql_literal(7)}), typeof({sql_literal(float('nan'))})")
    assert typed == [["integer", "null"]]


def test_bulk_seed_fills_tables_fast_and_consistently() -> None:
    do = fresh()
    report = bulk_seed(do, 2000)
    assert report.problems == {}
    for table in read_tables(do):
        assert rows(do, f'SELECT count(*) FROM "{table}"') == [[2000]], table
    assert rows(do, "PRAGMA foreign_key_check") == []
    assert rows(do, "SELECT count(DISTINCT email) FROM users") == [[2000]]
    assert rows(do, "SELECT count(*) FROM categories WHERE parent_id IS NOT NULL") == [[1999]]
    # tables that already hold rows are left alone
    again = bulk_seed(do, 10)
    assert again.rows == {}


def test_bulk_seed_fills_only_the_tables_asked_for() -> None:
    do = fresh()
    report = bulk_seed(do, 50, tables=["users"])
    assert set(report.rows) == {"users"}
    assert rows(do, "SELECT count(*) FROM users") == [[50]]
    others = [t for t in read_tables(do) if t != "users"]
    assert others and all(rows(do, f'SELECT count(*) FROM "{t}"') == [[0]] for t in others)


def test_bulk_seed_reports_a_table_it_cannot_fill() -> None:
    do = fresh(
        "CREATE TABLE t (id integer primary key, x integer NOT NULL CHECK (x > 10 AND x < 5))"
    )
    report = bulk_seed(do, 100)
    assert report.rows == {"t": 0}
    assert "CHECK constraint failed" in report.problems["t"][0]


@pytest.mark.parametrize("k", [3, 20, 40, 60, 83])
def test_seeds_a_large_real_schema_without_problems(k: int) -> None:
    bundle = load_bundle(
        shared_path("corpus", "karakeep-app__karakeep", "packages", "db", "drizzle")
    )
    do = DurableObjectStorage()
    migrate(do, bundle.prefix(k))
    report = seed(do)
    assert report.problems == {}
    assert all(n == 3 for n in report.rows.values())
    assert rows(do, "PRAGMA foreign_key_check") == []
    bulk = bulk_seed(DurableObjectStorage(image=do.image()), 50)
    assert bulk.problems == {}


def test_read_tables_from_the_last_schema_equals_a_fresh_read() -> None:
    from pytest_dosqlite import seed as seed_module

    steps = [
        "CREATE TABLE p (id integer primary key, name text)",
        "CREATE TABLE c (id integer primary key, p_id integer references p on delete cascade)",
        "CREATE UNIQUE INDEX p_name ON p (name)",
        "ALTER TABLE p ADD extra text",
        "CREATE TABLE __new_p (pk integer primary key, name text, extra text)",
        "DROP TABLE p",  # c's foreign key dangles: its parent columns resolve to nothing
        "ALTER TABLE __new_p RENAME TO p",  # and now to the new primary key
        "DROP INDEX IF EXISTS p_name",
        "ALTER TABLE c RENAME COLUMN p_id TO parent",
        "CREATE TABLE Other (id text primary key) WITHOUT ROWID",
        "DROP TABLE c",
    ]
    do = DurableObjectStorage()
    do.sql.exec("PRAGMA foreign_keys=OFF")
    for sql in steps:
        do.sql.exec(sql)
        incremental = read_tables(do)
        seed_module._SCHEMA_CACHE.clear()
        seed_module._LAST_READ.clear()
        assert read_tables(do) == incremental, sql
        assert list(incremental) == sorted(incremental)
    assert read_tables(do)["p"].pk == ("pk",)


def test_read_tables_resolves_a_child_again_when_its_parent_changes() -> None:
    do = DurableObjectStorage()
    do.sql.exec("PRAGMA foreign_keys=OFF")
    do.sql.exec("CREATE TABLE p (id integer primary key)")
    do.sql.exec("CREATE TABLE c (id integer primary key, p_id integer references p)")
    assert read_tables(do)["c"].foreign_keys[0].parent_columns == ("id",)
    do.sql.exec("CREATE TABLE __new_p (pk integer primary key)")
    do.sql.exec("DROP TABLE p")
    do.sql.exec("ALTER TABLE __new_p RENAME TO p")
    assert read_tables(do)["c"].foreign_keys[0].parent_columns == ("pk",)


def test_seeding_some_tables_links_them_to_their_own_new_rows() -> None:
    do = fresh()
    seed(do)
    before = {r[0] for r in rows(do, "SELECT id FROM users")}
    report = seed(do, tables=["users", "profiles", "posts"], link_new=True, rng_seed=7)
    assert set(report.rows) == {"users", "profiles", "posts"}
    new_users = {r[0] for r in rows(do, "SELECT id FROM users")} - before
    assert len(new_users) == 3
    # the new posts and profiles point at the new users only
    assert {r[0] for r in rows(do, "SELECT author_id FROM posts ORDER BY id DESC LIMIT 3")} <= (
        new_users
    )
    assert {r[0] for r in rows(do, "SELECT user_id FROM profiles")} - before == new_users
    assert rows(do, "PRAGMA foreign_key_check") == []
    # without link_new the foreign keys may point at any row
    seed(do, tables=["posts"], rng_seed=8)
    assert rows(do, "PRAGMA foreign_key_check") == []


# ----------------------------------------------------------------------------- SchemaTracker

#: one step per kind of DDL statement (each step a list of statements run together), with
#: foreign keys that resolve through their parents (no parent columns: the parent's primary key)
TRACKED_STEPS: list[list[str]] = [
    ["CREATE TABLE p (id integer primary key, name text)"],
    ["CREATE TABLE c (id integer primary key, p_id integer references p on delete cascade)"],
    ["CREATE TABLE g (id integer primary key, c_id integer references C(id), note text)"],
    ["CREATE UNIQUE INDEX p_name ON p (name)"],
    ["ALTER TABLE p ADD extra text"],
    ["INSERT INTO p (name) VALUES ('a')", "UPDATE p SET extra = 'x'", "DELETE FROM g"],
    # drizzle-kit's rebuild, with another primary key: c's foreign key follows it
    [
        "PRAGMA foreign_keys=OFF",
        "CREATE TABLE __new_p (pk integer primary key, name text, extra text)",
        'INSERT INTO __new_p("pk", "name") SELECT "id", "name" FROM p',
        "DROP TABLE p",
        "ALTER TABLE __new_p RENAME TO p",
        "PRAGMA foreign_keys=ON",
    ],
    ["DROP INDEX IF EXISTS p_name"],  # dropped with the old p: nothing to do
    ["CREATE INDEX c_p ON c (p_id)", "CREATE UNIQUE INDEX c_p_u ON c (p_id)"],
    ["DROP INDEX c_p_u"],
    ["ALTER TABLE c RENAME COLUMN p_id TO parent"],
    # renaming a parent and its key column rewrites the children's REFERENCES clauses
    ["ALTER TABLE c RENAME TO kids"],
    ["ALTER TABLE kids RENAME COLUMN id TO kid_id"],
    ["DROP INDEX c_p", "ALTER TABLE kids DROP COLUMN parent"],  # c_p moved to kids
    ["CREATE TABLE `Mixed Case` (a text, b text, primary key (a, b)) WITHOUT ROWID"],
    [
        'CREATE TABLE "main"."comp" (x text, y text, '
        'foreign key (x, y) references "mixed case"(a, b))'
    ],
    ["CREATE UNIQUE INDEX IF NOT EXISTS main.[comp_xy] ON comp (x, y)"],
    ["CREATE TABLE tree (id integer primary key, up integer references tree(id))"],
    ["CREATE VIEW v AS SELECT * FROM p", "CREATE TRIGGER t AFTER INSERT ON p BEGIN SELECT 1; END"],
    ["DROP TRIGGER t", "DROP VIEW v"],
    ["CREATE TABLE s1 (a); CREATE TABLE s2 (b references s1)"],  # two statements in one text
    ["ALTER TABLE `Mixed Case` RENAME TO mc"],  # comp's composite key now names mc
    ["DROP TABLE kids", "DROP TABLE IF EXISTS nothing_here"],
    ["CREATE TABLE kids (id integer primary key, p_id integer references p)"],
]


def _fresh_read(do: DurableObjectStorage) -> dict[str, Any]:
    from pytest_dosqlite import seed as seed_module

    seed_module._SCHEMA_CACHE.clear()
    seed_module._LAST_READ.clear()
    return read_tables(do)


def test_schema_tracker_equals_a_full_read_after_each_kind_of_ddl() -> None:
    do = DurableObjectStorage()
    do.sql.exec("PRAGMA foreign_keys=OFF")
    tracker = SchemaTracker(do)
    for step in TRACKED_STEPS:
        before = dict(tracker.tables)
        for sql in step:
            do.sql.exec(sql)
        changed = tracker.after(step)
        full = _fresh_read(do)
        assert tracker.tables == full, step
        assert changed == {n for n, t in full.items() if before.get(n) != t}, step
        for name in full:
            assert tracker.real_name(name.upper()) == name
            assert tracker.children(name) == {
                n for n, t in full.items() if any(fk.parent == name for fk in t.foreign_keys)
            }
    # every step was analysed: the whole schema was read once, at the start
    assert tracker.full_reads == 1
    tables = tracker.tables
    assert tables["p"].pk == ("pk",)
    assert tables["kids"].foreign_keys[0].parent_columns == ("pk",)
    # g wrote "C": the rename of c rewrote it, and kids is there again
    assert tables["g"].foreign_keys[0].parent == "kids"
    assert tables["comp"].foreign_keys[0].parent == "mc"
    assert tables["comp"].foreign_keys[0].parent_columns == ("a", "b")
    assert ("x", "y") in tables["comp"].unique


def test_schema_tracker_reports_what_a_rename_rewrites() -> None:
    do = DurableObjectStorage()
    do.sql.exec("CREATE TABLE p (id integer primary key)")
    do.sql.exec("CREATE TABLE c (id integer primary key, p_id integer references p(id))")
    tracker = SchemaTracker(do)
    do.sql.exec("ALTER TABLE p RENAME COLUMN id TO ident")
    # c was not named, but SQLite rewrote its REFERENCES p(id) to p(ident)
    assert tracker.after(["ALTER TABLE p RENAME COLUMN id TO ident"]) == {"p", "c"}
    assert tracker.tables["c"].foreign_keys[0].parent_columns == ("ident",)
    do.sql.exec("ALTER TABLE p RENAME TO parent")
    assert tracker.after(["ALTER TABLE p RENAME TO parent"]) == {"parent", "c"}
    assert set(tracker.tables) == {"parent", "c"}
    assert tracker.tables["c"].foreign_keys[0].parent == "parent"
    assert tracker.after(
        ["SELECT 1", "INSERT INTO c DEFAULT VALUES", "PRAGMA foreign_keys=ON"]
    ) == (set())


def test_schema_tracker_reads_only_the_tables_a_statement_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_dosqlite import seed as seed_module

    do = DurableObjectStorage()
    for i in range(40):
        do.sql.exec(f"CREATE TABLE t{i} (id integer primary key, v{i} text)")
    do.sql.exec("CREATE TABLE child (id integer primary key, t7 integer references t7)")
    tracker = SchemaTracker(do)
    read: list[str] = []
    real_raw_table = seed_module._raw_table

    def spy(do: DurableObjectStorage, name: str) -> Any:
        read.append(name)
        return real_raw_table(do, name)

    monkeypatch.setattr(seed_module, "_raw_table", spy)
    monkeypatch.setattr(seed_module, "_MASTER_SQL", "SELECT no_full_read_expected()")
    do.sql.exec("ALTER TABLE t7 ADD added text")
    assert tracker.after(["ALTER TABLE t7 ADD added text"]) == {"t7"}
    assert read == ["t7"]  # child is resolved again (its parent changed), not read again
    assert tracker.tables["t7"].column("added") is not None
    assert tracker.full_reads == 1


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE VIRTUAL TABLE f USING fts5(a)",
        "PRAGMA legacy_alter_table=ON",
        "ANALYZE",
        "DROP INDEX never_created",
        "CREATE TABLE ünï (a)",
    ],
)
def test_schema_tracker_reads_everything_after_what_it_cannot_analyse(sql: str) -> None:
    do = DurableObjectStorage()
    do.sql.exec("CREATE TABLE a (id integer primary key)")
    tracker = SchemaTracker(do)
    do.sql.exec("CREATE TABLE b (id integer primary key)")
    if not sql.startswith("DROP"):
        do.sql.exec(sql)
    tracker.after(["CREATE TABLE b (id integer primary key)", sql])
    assert tracker.full_reads == 2
    assert tracker.tables == _fresh_read(do)
