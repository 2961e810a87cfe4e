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
    assert "as for problem 1" in text  # the fix is given once


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
    assert "the user seed rows for 0000_users cannot be inserted" in failure(
        ctx_for(root, seed=bad)
    )


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
