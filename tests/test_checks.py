"""The built-in checks as plain functions (what users get when they call them themselves)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_dosqlite.checks import CheckContext, all_checks, idempotent, upgrade_from_empty
from pytest_dosqlite.drizzle_snapshot import matches_drizzle_snapshot
from pytest_dosqlite.errors import CheckFailure, CheckSkipped
from pytest_dosqlite.images import ImageCache
from pytest_dosqlite.registry import CHECK_NAMES
from test_plugin import GOOD, write_bundle

EXAMPLE = Path(__file__).resolve().parents[1] / "example_project" / "drizzle"


def ctx(path: Path) -> CheckContext:
    return CheckContext.for_bundle(path, images=ImageCache())


def test_every_registered_check_is_importable() -> None:
    checks = all_checks()
    assert list(checks) == list(CHECK_NAMES)
    assert all(callable(fn) and fn.__doc__ for fn in checks.values())


def test_example_project_passes_the_core_checks() -> None:
    c = ctx(EXAMPLE)
    upgrade_from_empty(c)
    assert set(c.extra["timings"]) == {m.tag for m in c.bundle.migrations}
    idempotent(c)
    matches_drizzle_snapshot(c)


def test_hand_edited_sql_differs_from_drizzles_snapshot(tmp_path: Path) -> None:
    out = tmp_path / "drizzle"
    shutil.copytree(EXAMPLE, out)
    sql = out / "0002_user_display_name.sql"
    sql.write_text(sql.read_text().replace("`display_name` text", "`display_name` integer"))
    with pytest.raises(CheckFailure) as info:
        matches_drizzle_snapshot(ctx(out))
    text = str(info.value)
    assert "display_name" in text and "INTEGER" in text.upper()
    assert "drizzle-kit generate" in text


def test_bundle_without_snapshots_is_skipped(tmp_path: Path) -> None:
    write_bundle(tmp_path / "d", GOOD)
    with pytest.raises(CheckSkipped, match="no drizzle-kit snapshot"):
        matches_drizzle_snapshot(ctx(tmp_path / "d"))


def test_upgrade_from_empty_failure_has_sections(tmp_path: Path) -> None:
    write_bundle(tmp_path / "d", [*GOOD, ("0002_txn", "BEGIN;\nCREATE TABLE `x` (`a` integer);")])
    with pytest.raises(CheckFailure) as info:
        upgrade_from_empty(ctx(tmp_path / "d"))
    titles = [t for t, _ in info.value.sections]
    assert titles[:3] == ["Migration", "Statement", "SQLite error"]
    assert "On a real Durable Object" in titles and "How to fix" in titles
    statement = dict(info.value.sections)["Statement"]
    assert statement.endswith("BEGIN;") and "0002_txn.sql:1" in statement


def test_a_chunk_over_the_sql_length_limit_says_how_to_fix(tmp_path: Path) -> None:
    # a seed migration of many INSERTs without breakpoints: one sql.exec call of 100,001+ bytes
    rows = "\n".join(f"INSERT INTO `x` (`a`) VALUES ({i});" for i in range(4000))
    write_bundle(tmp_path / "d", [*GOOD, ("0002_seed", "CREATE TABLE `x` (`a` integer);\n" + rows)])
    with pytest.raises(CheckFailure) as info:
        upgrade_from_empty(ctx(tmp_path / "d"))
    sections = dict(info.value.sections)
    assert "statement too long" in sections["SQLite error"]
    assert "statement-breakpoint" in sections["How to fix"]
    assert "100,000" in sections["How to fix"]


def test_a_bundle_without_migrations(tmp_path: Path) -> None:
    # migrate() with nothing to apply still creates drizzle's ledger table: head is that DO,
    # not the empty one (idempotent used to fail on "no such table: __drizzle_migrations")
    from pytest_dosqlite.migrator import migrate
    from pytest_dosqlite.storage import DurableObjectStorage

    write_bundle(tmp_path / "d", [])
    c = ctx(tmp_path / "d")
    assert c.bundle.migrations == ()
    expected = DurableObjectStorage()
    migrate(expected, c.bundle)
    do = c.images.fresh(c.bundle)
    assert do.image() == expected.image()
    assert do.sql.exec("SELECT count(*) AS n FROM __drizzle_migrations").one() == {"n": 0}
    do.close()
    c.extra["snapshot_assert"] = lambda text: None  # no reviewed snapshot here
    outcomes: dict[str, str] = {}
    for name, check in all_checks().items():
        try:
            check(c)
            outcomes[name] = "pass"
        except CheckSkipped:
            outcomes[name] = "skip"
    assert outcomes["idempotent"] == outcomes["upgrade_from_empty"] == "pass"
    assert "pass" in outcomes.values()


@pytest.mark.parametrize(
    ("sql", "fix"),
    [
        ("ALTER TABLE `users` ALTER COLUMN `name` TO `name` text NOT NULL;", "needs the table"),
        (
            "CREATE TABLE `p` (`a` text);--> statement-breakpoint\n"
            "CREATE TABLE `c` (`x` text REFERENCES `p`(`a`));--> statement-breakpoint\n"
            "INSERT INTO `c` VALUES ('1');",
            "neither the parent's PRIMARY KEY",
        ),
        ("CREATE TABLE `users` (`id` integer);", "already created it"),
        ("SELECT nosuch FROM `users`;", "does not exist at this point"),
        ("SELECT 1; SELECT zeroblob(1e10);", "Fix the statement shown"),
        (
            "CREATE VIEW `names` AS SELECT `name` FROM `users`;--> statement-breakpoint\n"
            "CREATE TABLE `__new_users` (`id` integer PRIMARY KEY, `name` text);"
            "--> statement-breakpoint\nDROP TABLE `users`;--> statement-breakpoint\n"
            "ALTER TABLE `__new_users` RENAME TO `users`;",
            '`DROP VIEW "names";`',
        ),
        ("ALTER TABLE `users` DROP COLUMN `name`;", '`DROP INDEX "users_name";` before'),
        (
            "ALTER TABLE `users` ADD `bio` text;--> statement-breakpoint\n"
            "CREATE INDEX `by name` ON `users` (`bio`);--> statement-breakpoint\n"
            "ALTER TABLE `users` DROP COLUMN `bio`;",
            '`DROP INDEX "by name";` before',
        ),
    ],
)
def test_every_fresh_do_failure_has_a_fix(tmp_path: Path, sql: str, fix: str) -> None:
    # a syntax error or a foreign key mismatch ended without "How to fix", which the docs promise
    write_bundle(tmp_path / "d", [GOOD[0], ("0001_bad", sql)])
    with pytest.raises(CheckFailure) as info:
        upgrade_from_empty(ctx(tmp_path / "d"))
    fixes = [body for title, body in info.value.sections if title == "How to fix"]
    assert len(fixes) == 1 and fix in fixes[0], info.value.render()
