"""data_preserved catches silent data loss on upgrade."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES, shared_path
from pytest_dosqlite import DurableObjectStorage, load_bundle
from pytest_dosqlite.bundle import BREAKPOINT, Bundle, Migration
from pytest_dosqlite.checks import CheckContext, Settings
from pytest_dosqlite.errors import CheckFailure
from pytest_dosqlite.images import ImageCache
from pytest_dosqlite.preservation import (
    classify_migration,
    data_preserved,
)

KARAKEEP = ("corpus", "karakeep-app__karakeep", "packages", "db", "drizzle")


def ctx_for(bundle: Bundle | Path, **extra: Any) -> CheckContext:
    settings = Settings(seed=extra.pop("seed", None))
    for name in ("budget_rows", "budget_seconds"):
        if name in extra:
            setattr(settings, name, extra.pop(name))
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    return CheckContext(bundle=b, settings=settings, images=ImageCache(), extra=extra)


def failure(ctx: CheckContext) -> str:
    with pytest.raises(CheckFailure) as info:
        data_preserved(ctx)
    return info.value.render()


def inline_bundle(*migrations: tuple[str, list[str]]) -> Bundle:
    return Bundle(
        root=Path("inline"),
        format="journal",
        migrations=tuple(
            Migration(i, tag, 1_700_000_000_000 + i, f"m{i:04d}", ("\n" + BREAKPOINT).join(sql))
            for i, (tag, sql) in enumerate(migrations)
        ),
    )


# ----------------------------------------------------------------------------- classification


def test_a_drizzle_kit_rebuild_is_recognised() -> None:
    bundle = load_bundle(EXAMPLES / "preservation-self-ref" / "drizzle")
    stmts = classify_migration(bundle.migrations[1])
    assert [s.kind for s in stmts] == [
        "other",
        "recreate-create",
        "recreate-copy",
        "recreate-drop",
        "recreate-rename",
        "other",
    ]
    drop = stmts[3]
    assert (drop.table, drop.rebuilds) == ("categories", "categories")
    assert (drop.chunk, drop.line) == (3, 11)
    assert not drop.intentional
    assert drop.where.endswith(
        "0001_parent_not_self.sql:11 (migration 0001_parent_not_self, chunk 3)"
    )
    assert stmts[2].copy == (("id", '"id"'), ("name", '"name"'), ("parent_id", '"parent_id"'))


def test_deliberate_statements_and_other_rebuild_styles() -> None:
    m = Migration(
        0,
        "0000_x",
        1,
        "m0000",
        "DELETE FROM `a` WHERE x = 1;\n"
        "UPDATE \"b\" SET `c` = 1, d = 'x;y' WHERE 1;\n"
        "REPLACE INTO c VALUES (1);\n"
        "INSERT INTO d (k) VALUES (1) ON CONFLICT (k) DO UPDATE SET k = 2;\n"
        "ALTER TABLE e DROP COLUMN f;\n"
        "ALTER TABLE e RENAME COLUMN g TO h;\n"
        "DROP TABLE IF EXISTS old_stuff;\n"
        "ALTER TABLE users RENAME TO users_old;\n"
        "CREATE TABLE users (id integer primary key);\n"
        "INSERT INTO users (id) SELECT id FROM users_old;\n"
        "DROP TABLE users_old;\n"
        "CREATE TABLE t_new (id integer);\n"
        "INSERT INTO t_new (id) SELECT id FROM t;\n"
        "DROP TABLE t;\n"
        "ALTER TABLE t_new RENAME TO t;\n",
    )
    got = [(s.kind, s.table, s.columns) for s in classify_migration(m)]
    assert got[:7] == [
        ("delete", "a", ()),
        ("update", "b", ("c", "d")),
        ("replace", "c", ()),
        ("upsert", "d", None),
        ("drop-column", "e", ("f",)),
        ("rename-column", "e", ("g",)),
        ("drop-table", "old_stuff", ()),
    ]
    assert [s.kind for s in classify_migration(m)[7:]] == [
        "recreate-rename",
        "recreate-create",
        "recreate-copy",
        "recreate-drop",
        "recreate-create",
        "recreate-copy",
        "recreate-drop",
        "recreate-rename",
    ]


# ----------------------------------------------------------------------------- examples


def test_self_referencing_rebuild_wipes_set_null_links() -> None:
    text = failure(ctx_for(EXAMPLES / "preservation-self-ref" / "drizzle"))
    assert "categories.parent_id -> categories ON DELETE set null" in text
    assert "products.category_id -> categories ON DELETE set null" in text
    assert "foreign-key values are set to NULL by DROP TABLE `categories`" in text
    assert "0001_parent_not_self.sql:11 (migration 0001_parent_not_self, chunk 3)" in text
    assert "the self-references are wiped before the RENAME" in text
    # SET NULL keeps the rows: the fix sets each column back, it does not insert rows again
    for column in ("categories.parent_id", "products.category_id"):
        assert f"save the child's key and `{column}` in a scratch table" in text
    assert "insert them back" not in text


def test_rebuilding_a_child_table_keeps_the_data() -> None:
    data_preserved(ctx_for(EXAMPLES / "preservation-child-rebuild" / "drizzle"))


def test_deliberate_deletes_and_updates_are_not_losses() -> None:
    data_preserved(ctx_for(EXAMPLES / "preservation-intentional-delete" / "drizzle"))


def test_the_same_deletes_without_the_statements_are_losses() -> None:
    # control for the test above: a rebuild of `teams` (no DELETE) loses the members
    bundle = inline_bundle(
        (
            "0000_teams",
            [
                "CREATE TABLE teams (id integer primary key, name text not null);",
                "CREATE TABLE members (id integer primary key, team_id integer not null "
                "references teams(id) on delete cascade);",
                "CREATE TABLE badges (id integer primary key, member_id integer not null "
                "references members(id) on delete cascade);",
            ],
        ),
        (
            "0001_rebuild_teams",
            [
                "CREATE TABLE __new_teams (id integer primary key, name text not null, slug text);",
                'INSERT INTO __new_teams("id", "name") SELECT "id", "name" FROM teams;',
                "DROP TABLE teams;",
                "ALTER TABLE __new_teams RENAME TO teams;",
            ],
        ),
    )
    text = failure(ctx_for(bundle))
    assert "3 of 3 rows of `members` are deleted by DROP TABLE teams in 0001_rebuild_teams" in text
    assert "members.team_id -> teams ON DELETE cascade" in text
    # two levels down: badges point at members, which the cascade deleted
    assert "3 of 3 rows of `badges` are deleted" in text
    assert "badges.member_id -> members ON DELETE cascade" in text
    assert "the cascade deletes rows of `members`" in text


def test_user_seed_file_rows_expose_a_data_dependent_failure() -> None:
    root = EXAMPLES / "preservation-user-seed"
    data_preserved(ctx_for(root / "drizzle"))  # generated rows have distinct e-mails
    text = failure(ctx_for(root / "drizzle", seed=root / "seed.json"))
    assert "migration 0001_email_case_insensitive fails on a DO with data" in text
    assert "UNIQUE constraint failed: index 'users_email_lower_unique'" in text
    assert "succeeds on a DO without rows" in text
    assert "0001_email_case_insensitive.sql:1" in text
    # the rows were the user's: no caveat about generated rows, a fix for old rows
    assert "The DO held the rows your `seed` setting gives this version" in text
    assert "realistic, but not yours" not in text
    assert "Make the old rows valid first" in text
    assert "on a fresh DO" not in text


def test_bad_user_seed_files_are_reported() -> None:
    root = EXAMPLES / "preservation-user-seed"
    text = failure(ctx_for(root / "drizzle", seed=root / "seed-unknown-tag.json"))
    assert "names migration '0042_nope', which is not in the bundle" in text
    assert "0001_email_case_insensitive" in text


def test_malformed_seed_file(tmp_path: Path) -> None:
    bad = tmp_path / "seed.json"
    bad.write_text('{"0000_users": {"users": {"email": "x"}}}')
    root = EXAMPLES / "preservation-user-seed" / "drizzle"
    assert "is not {tag: {table: [row objects]}}" in failure(ctx_for(root, seed=bad))
    bad.write_text("{nope")
    assert "cannot read the seed file" in failure(ctx_for(root, seed=bad))
    bad.write_text('{"0000_users": {"no_such_table": [{"a": 1}]}}')
    text = failure(ctx_for(root, seed=bad))
    assert "the user seed rows for 0000_users cannot be inserted" in text
    # which file, and which row (the message named neither)
    assert str(bad) in text and 'row of no_such_table: {"a": 1}' in text


def test_user_seed_callable_gets_every_version() -> None:
    calls: list[str] = []

    def user_seed(tag: str, do: DurableObjectStorage) -> None:
        calls.append(tag)
        if tag == "0000_users":
            do.sql.exec("INSERT INTO users (email) VALUES ('Bo@x.io'), ('bo@x.io')")

    text = failure(
        ctx_for(EXAMPLES / "preservation-user-seed" / "drizzle", seed=user_seed, seed_rows=0)
    )
    assert calls == ["0000_users", "0001_email_case_insensitive"]
    assert "UNIQUE constraint failed" in text


def test_foreign_keys_off_setting_models_the_constructor_workaround() -> None:
    root = EXAMPLES / "preservation-self-ref" / "drizzle"
    data_preserved(ctx_for(root, foreign_keys_off=True))


# ----------------------------------------------------------------------------- shared bundles


def test_basic_step3_has_nothing_to_lose() -> None:
    data_preserved(ctx_for(shared_path("bundles", "basic-step3", "drizzle")))


def test_basic_step4_rebuild_cascades_into_posts() -> None:
    text = failure(ctx_for(shared_path("bundles", "basic-step4", "drizzle")))
    assert "3 of 3 rows of `posts` are deleted by DROP TABLE `users` in 0003_bio_not_null" in text
    assert "0003_bio_not_null.sql:11 (migration 0003_bio_not_null, chunk 3)" in text
    assert "posts.author_id -> users ON DELETE cascade" in text
    assert "upgrading from version 3 (0002_add_posts)" in text
    assert "SQLite ignores `PRAGMA foreign_keys` inside a transaction" in text
    assert "ctx.storage.sql.exec('PRAGMA foreign_keys=OFF')" in text


def test_basic_step4_rebuild_copies_null_into_not_null() -> None:
    text = failure(ctx_for(shared_path("bundles", "basic-step4", "drizzle")))
    assert "migration 0003_bio_not_null fails on a DO with data" in text
    assert "NOT NULL constraint failed: __new_users.bio" in text
    assert "0003_bio_not_null.sql:10" in text  # the INSERT INTO __new_users ... SELECT
    assert "succeeds on a DO without rows" in text
    assert "UPDATE `users` SET `bio` = '' WHERE `bio` IS NULL;" in text


def test_basic_step4_null_bio_from_the_users_own_rows() -> None:
    bundle = shared_path("bundles", "basic-step4", "drizzle")
    data_preserved(ctx_for(bundle, seed_rows=0))  # no rows: nothing fails, nothing is lost

    def one_user_without_bio(tag: str, do: DurableObjectStorage) -> None:
        if tag == "0001_add_bio_and_name_index":
            do.sql.exec(
                "INSERT INTO users (name, age, email, bio) VALUES ('Ada', 36, 'ada@x.io', NULL)"
            )

    text = failure(ctx_for(bundle, seed_rows=0, seed=one_user_without_bio))
    assert text.startswith(
        "data not preserved: migration 0003_bio_not_null fails on a DO with data: NOT NULL"
    )
    assert "1 of 1 seeded rows of `users` have `bio` NULL at version 2" in text


def test_basic_step6_chain_fails_the_same_way() -> None:
    text = failure(ctx_for(shared_path("bundles", "basic-step6", "drizzle")))
    assert "rows of `posts` are deleted by DROP TABLE `users` in 0003_bio_not_null" in text
    assert "posts.author_id -> users ON DELETE cascade" in text
    assert "to 0005_backfill_bio" in text


@pytest.mark.slow
def test_large_real_bundle_passes_in_seconds() -> None:
    ctx = ctx_for(shared_path(*KARAKEEP))
    started = time.perf_counter()
    data_preserved(ctx)  # head fails on a DO (a TEMP table): checked up to the migration before
    elapsed = time.perf_counter() - started
    assert elapsed < 120, elapsed


def test_seed_json_example_is_valid() -> None:
    data = json.loads((EXAMPLES / "preservation-user-seed" / "seed.json").read_text())
    assert list(data) == ["0000_users"]


# ----------------------------------------------------------------------------- one pass


def growing_bundle(n: int, *, rebuild_teams_last: bool = False, linked: bool = True) -> Bundle:
    """``n`` migrations of the usual kinds (tables with foreign keys, added columns, rebuilds
    of leaf tables, backfills), every one preserving data, and optionally a last one that
    rebuilds the parent ``teams`` and so deletes every ``members`` row (and, ``linked``, cuts
    every leaf's link to them)."""
    link = "references members(id) on delete set null" if linked else ""
    migrations: list[tuple[str, list[str]]] = [
        (
            "0000_teams",
            [
                "CREATE TABLE teams (id integer primary key, name text not null);",
                "CREATE TABLE members (id integer primary key, team_id integer not null "
                "references teams(id) on delete cascade, note text);",
            ],
        )
    ]
    leaves: list[str] = []
    while len(migrations) < (n - 1 if rebuild_teams_last else n):
        i = len(migrations)
        kind = i % 4
        if kind == 1 or not leaves:
            leaves.append(f"leaf{i}")
            sql = [
                f"CREATE TABLE leaf{i} (id integer primary key, member_id integer "
                f"{link}, label text not null);"
            ]
        elif kind == 2:
            sql = [f"ALTER TABLE {leaves[-1]} ADD extra{i} text;"]
        elif kind == 3:
            leaf = leaves[-1]
            sql = [
                f"CREATE TABLE __new_{leaf} (id integer primary key, member_id integer "
                f"{link}, label text not null);",
                f'INSERT INTO __new_{leaf}("id", "member_id", "label") '
                f'SELECT "id", "member_id", "label" FROM {leaf};',
                f"DROP TABLE {leaf};",
                f"ALTER TABLE __new_{leaf} RENAME TO {leaf};",
            ]
        else:
            sql = [f"UPDATE {leaves[-1]} SET label = upper(label);"]
        migrations.append((f"{i:04d}_step", sql))
    if rebuild_teams_last:
        migrations.append(
            (
                f"{len(migrations):04d}_rebuild_teams",
                [
                    "CREATE TABLE __new_teams (id integer primary key, name text not null, "
                    "slug text);",
                    'INSERT INTO __new_teams("id", "name") SELECT "id", "name" FROM teams;',
                    "DROP TABLE teams;",
                    "ALTER TABLE __new_teams RENAME TO teams;",
                ],
            )
        )
    return inline_bundle(*migrations)


@pytest.mark.parametrize("n", [12, 40])
def test_a_clean_bundle_costs_one_upgrade_per_migration(n: int) -> None:
    # every version 1..n-1 is checked, with one migrate() per migration in all: checking each
    # version on its own applied n*(n-1)/2 migrations (780 for 40)
    ctx = ctx_for(growing_bundle(n))
    data_preserved(ctx)
    stats = ctx.extra["data_preserved"]
    assert stats["versions"] == list(range(1, n))
    assert stats["rechecked"] == []
    assert stats["migrations_applied"] <= n


def test_the_pass_reads_the_whole_schema_a_fixed_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # after each migration only the tables its statements name are read again (SchemaTracker):
    # reading all of sqlite_master at every step cost in proportion to the schema
    from pytest_dosqlite import seed as seed_module

    def full_reads(n: int) -> int:
        calls: list[str] = []
        real = seed_module._read_tables

        def spy(do: DurableObjectStorage, text: str) -> Any:
            calls.append(text)
            return real(do, text)

        monkeypatch.setattr(seed_module, "_read_tables", spy)
        seed_module._SCHEMA_CACHE.clear()
        ctx = ctx_for(growing_bundle(n))
        data_preserved(ctx)
        assert ctx.extra["data_preserved"]["versions"] == list(range(1, n))
        return len(calls)

    assert full_reads(40) == full_reads(12) <= 4


def test_a_loss_is_checked_on_its_own_only_where_the_rows_were_seeded() -> None:
    # members get rows at version 1 only (they never change): the pass sees them deleted by
    # the last migration, version 1 alone is checked again to name the statement, and every
    # version that holds such members is reported (as checking each version did)
    n = 16
    ctx = ctx_for(growing_bundle(n, rebuild_teams_last=True, linked=False))
    text = failure(ctx)
    stats = ctx.extra["data_preserved"]
    assert stats["rechecked"] == [1]
    assert f"rows of `members` are deleted by DROP TABLE teams in {n - 1:04d}_rebuild_teams" in (
        text
    )
    assert "members.team_id -> teams ON DELETE cascade" in text
    assert (
        "seen when upgrading from version 1 (0000_teams) ... "
        f"version {n - 1} ({n - 2:04d}_step) ({n - 1} versions)"
    ) in text
    assert stats["migrations_applied"] < 3 * n


def test_losses_of_many_batches_are_checked_at_their_oldest_and_newest() -> None:
    # every leaf gets rows at each of its changes, and every batch loses its links to the
    # members: per leaf, its oldest and newest batch are checked on their own (they blame the
    # same DROP TABLE), the batches between share their finding
    n = 24
    ctx = ctx_for(growing_bundle(n, rebuild_teams_last=True))
    text = failure(ctx)
    stats = ctx.extra["data_preserved"]
    leaves = len(range(1, n - 1, 4))
    assert len(stats["rechecked"]) <= 1 + 2 * leaves < n - 1
    assert "`leaf21.member_id` foreign-key values are set to NULL by DROP TABLE teams" in text
    assert (
        "seen when upgrading from version 22 (0021_step), version 23 (0022_step) "
        f"to {n - 1:04d}_rebuild_teams"
    ) in text
    assert (
        "`leaf5.member_id` foreign-key values are set to NULL by DROP TABLE teams in "
        f"{n - 1:04d}_rebuild_teams:\n    seen when upgrading from version 6 (0005_step) ... "
        f"version {n - 1} ({n - 2:04d}_step) ({n - 6} versions)"
    ) in text


def test_null_into_not_null_then_a_cascade_without_shared_bundles() -> None:
    # bio is added nullable, posts come next, then users is rebuilt with bio NOT NULL: every
    # version fails with a NULL bio, and with bio filled the versions holding posts lose them
    bundle = inline_bundle(
        ("0000_users", ["CREATE TABLE users (id integer primary key, name text not null);"]),
        ("0001_bio", ["ALTER TABLE users ADD bio text;"]),
        (
            "0002_posts",
            [
                "CREATE TABLE posts (id integer primary key, author_id integer not null "
                "references users(id) on delete cascade);"
            ],
        ),
        (
            "0003_bio_not_null",
            [
                "CREATE TABLE __new_users (id integer primary key, name text not null, "
                "bio text default '' not null);",
                'INSERT INTO __new_users("id", "name", "bio") SELECT "id", "name", "bio" '
                "FROM users;",
                "DROP TABLE users;",
                "ALTER TABLE __new_users RENAME TO users;",
            ],
        ),
    )
    ctx = ctx_for(bundle)
    text = failure(ctx)
    assert "migration 0003_bio_not_null fails on a DO with data: NOT NULL constraint failed" in text
    assert (
        "seen when upgrading from version 1 (0000_users) ... version 3 (0002_posts) (3 versions)"
    ) in text
    assert "3 of 3 rows of `posts` are deleted by DROP TABLE users in 0003_bio_not_null" in text
    assert "seen when upgrading from version 3 (0002_posts) to 0003_bio_not_null" in text
    assert text.index("fails on a DO with data") < text.index("rows of `posts` are deleted")


def test_rows_of_several_versions_together_do_not_make_a_failure() -> None:
    # the pass holds the counters of versions 1 and 2 (ids 1-3 and 4-6); the unique index
    # fails on them together, but the rows of either version alone (ids 1-3) pass: the pass
    # is split until each part is one version's rows, and nothing is reported (as when every
    # version was checked on its own)
    bundle = inline_bundle(
        ("0000_counters", ["CREATE TABLE counters (id integer primary key, n integer);"]),
        ("0001_label", ["ALTER TABLE counters ADD label text;"]),
        (
            "0002_one_high",
            ["CREATE UNIQUE INDEX one_high ON counters (id > 3) WHERE id > 3;"],
        ),
        ("0003_more", ["ALTER TABLE counters ADD more text;"]),
    )
    ctx = ctx_for(bundle)
    data_preserved(ctx)
    stats = ctx.extra["data_preserved"]
    assert set(stats["rechecked"]) <= {1, 2}
    assert stats["versions"] == [1, 2, 3]


def test_a_table_without_key_is_compared_by_counts() -> None:
    bundle = inline_bundle(
        (
            "0000_users",
            [
                "CREATE TABLE users (id integer primary key, name text not null);",
                "CREATE TABLE audit (user_id integer not null references users(id) "
                "on delete cascade, message text);",
            ],
        ),
        ("0001_other", ["CREATE TABLE other (id integer primary key);"]),
        (
            "0002_rebuild_users",
            [
                "CREATE TABLE __new_users (id integer primary key, name text not null, x text);",
                'INSERT INTO __new_users("id", "name") SELECT "id", "name" FROM users;',
                "DROP TABLE users;",
                "ALTER TABLE __new_users RENAME TO users;",
            ],
        ),
    )
    text = failure(ctx_for(bundle))
    assert "3 of 3 rows of `audit` are deleted by DROP TABLE users in 0002_rebuild_users" in text
    assert "version 1 (0000_users), version 2 (0001_other) to 0002_rebuild_users" in text


def test_a_table_with_neither_key_nor_foreign_key_is_counted() -> None:
    # drizzle allows a table without a primary key; reading one raised a ValueError from zip()
    ok = inline_bundle(
        ("0000_tags", ["CREATE TABLE `tags` (`name` text NOT NULL, `weight` integer);"]),
        ("0001_color", ["ALTER TABLE `tags` ADD `color` text;"]),
    )
    data_preserved(ctx_for(ok))
    lost = inline_bundle(
        ("0000_tags", ["CREATE TABLE `tags` (`name` text NOT NULL, `weight` integer);"]),
        (
            "0001_rebuild",
            [
                "CREATE TABLE `__new_tags` (`name` text NOT NULL, `weight` integer, `color` text);",
                "DROP TABLE `tags`;",
                "ALTER TABLE `__new_tags` RENAME TO `tags`;",
            ],
        ),
    )
    assert "tags" in failure(ctx_for(lost))


def test_a_failure_on_seeded_rows_carries_the_caveat_about_them() -> None:
    # a lookup into a table the seeder could not fill reads NULL: the failure read as the
    # migration's fault, without the caveat about generated rows
    bundle = inline_bundle(
        (
            "0000_tables",
            [
                "CREATE TABLE runs (id integer primary key, budget integer, "
                "CHECK (budget > 10 AND budget < 5));",  # no row can satisfy it
                "CREATE TABLE calls (id integer primary key, run_id integer);",
            ],
        ),
        (
            "0001_rebuild",
            [
                "CREATE TABLE __new_calls (id integer primary key, run_id integer, "
                "reserved integer NOT NULL);",
                "INSERT INTO __new_calls (id, run_id, reserved) SELECT id, run_id, "
                "(SELECT budget FROM runs WHERE runs.id = calls.run_id) FROM calls;",
                "DROP TABLE calls;",
                "ALTER TABLE __new_calls RENAME TO calls;",
            ],
        ),
    )
    text = failure(ctx_for(bundle))
    assert "If the seeded rows are unrealistic" in text
    assert "listed under 'Not seeded'" in text
    assert "Not seeded (the check is blind there):\n    runs: a row was given up" in text


def test_returning_fails_only_with_data_and_is_reported_once() -> None:
    bundle = inline_bundle(
        ("0000_users", ["CREATE TABLE `users` (`id` integer PRIMARY KEY, `name` text);"]),
        ("0001_notes", ["CREATE TABLE `notes` (`id` integer PRIMARY KEY);"]),
        ("0002_touch", ["UPDATE `users` SET `name` = upper(`name`) RETURNING `id`;"]),
    )
    text = failure(ctx_for(bundle))
    # one problem for every version it is seen from: the random reference is not part of it
    assert text.startswith("data not preserved: migration 0002_touch fails on a DO with data")
    assert text.count("Problem ") <= 1 and text.count("How to fix") == 1
    assert "version 1 (0000_users), version 2 (0001_notes)" in text
    assert "a write statement returned rows that were never read" in text
    assert "Remove RETURNING from the statement" in text
    assert "(its reference is random)" in text
    assert "DrizzleError: Rollback" not in text


def test_a_comment_before_the_statement_is_not_part_of_it() -> None:
    bundle = inline_bundle(
        (
            "0000_init",
            [
                "CREATE TABLE `users` (`id` integer PRIMARY KEY);",
                "CREATE TABLE `posts` (`id` integer PRIMARY KEY, `uid` integer REFERENCES "
                "`users`(`id`) ON DELETE cascade);",
            ],
        ),
        (
            "0001_drop",
            ["-- dosqlite:ignore DO026 posts are archived elsewhere\nDROP TABLE `users`;"],
        ),
    )
    text = failure(ctx_for(bundle))
    assert "deleted by DROP TABLE `users`" in text
    assert "line 2 (migration 0001_drop" in text
    assert "dosqlite:ignore" not in text


def test_a_start_of_ones_own_that_turns_foreign_keys_off_is_honoured() -> None:
    from pytest_dosqlite.lint import lint_check

    bundle = inline_bundle(
        (
            "0000_init",
            [
                "CREATE TABLE `users` (`id` integer PRIMARY KEY, `name` text);",
                "CREATE TABLE `posts` (`id` integer PRIMARY KEY, `author_id` integer NOT NULL "
                "REFERENCES `users`(`id`) ON DELETE cascade);",
            ],
        ),
        (
            "0001_recreate",
            [
                "CREATE TABLE `__new_users` (`id` integer PRIMARY KEY, `name` text NOT NULL "
                "DEFAULT '');",
                "INSERT INTO `__new_users` SELECT `id`, coalesce(`name`, '') FROM `users`;",
                "DROP TABLE `users`;",
                "ALTER TABLE `__new_users` RENAME TO `users`;",
            ],
        ),
    )
    assert "rows of `posts` are deleted" in failure(ctx_for(bundle))
    own = ctx_for(bundle, fleet_start="test_fleet:start_with_foreign_keys_off")
    assert own.foreign_keys_off
    data_preserved(own)
    lint_check(own)  # DO024 is off, as under drizzle-fk-off
