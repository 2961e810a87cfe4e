"""drizzle-orm 1.0's durable-sqlite migrator (v1 folder layout): name-based, no high-water mark."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dosqlite import DurableObjectStorage, load_bundle, migrate
from pytest_dosqlite.bundle import Bundle, Migration
from pytest_dosqlite.errors import MigrationError


def write_v1(root: Path, folders: dict[str, str]) -> Path:
    out = root / "drizzle"
    out.mkdir(parents=True, exist_ok=True)
    imports, keys = [], []
    for i, (name, sql) in enumerate(sorted(folders.items())):
        (out / name).mkdir(exist_ok=True)
        (out / name / "migration.sql").write_text(sql)
        imports.append(f"import m{i:04d} from './{name}/migration.sql';")
        keys.append(f'"{name}": m{i:04d}')
    (out / "migrations.js").write_text(
        "\n".join(imports)
        + "\n\n  export default {\n    migrations: {\n      "
        + ",\n".join(keys)
        + "\n}\n  }\n  "
    )
    return out


def ledger(do: DurableObjectStorage) -> list[list[object]]:
    return (
        do.sql.exec('SELECT id, hash, created_at, name FROM "__drizzle_migrations" ORDER BY rowid')
        .raw()
        .to_array()
    )


def test_fresh_v1_ledger_has_ids_and_names(tmp_path: Path) -> None:
    out = write_v1(
        tmp_path,
        {
            "20250301120000_init": "CREATE TABLE `users` (`id` integer PRIMARY KEY);",
            "20250302093000_posts": "CREATE TABLE `posts` (`id` integer PRIMARY KEY);",
        },
    )
    bundle = load_bundle(out)
    assert bundle.format == "v1"
    do = DurableObjectStorage()
    run = migrate(do, bundle)
    assert run.applied == ["20250301120000_init", "20250302093000_posts"]
    assert ledger(do) == [
        [1, "", 1740830400000, "20250301120000_init"],
        [2, "", 1740907800000, "20250302093000_posts"],
    ]
    applied_at = do.sql.exec('SELECT applied_at FROM "__drizzle_migrations"').raw().to_array()
    assert all(str(r[0]).endswith("Z") for r in applied_at)
    assert migrate(do, bundle).applied == []


def test_v1_applies_an_older_merged_migration_on_existing_dos(tmp_path: Path) -> None:
    out = write_v1(
        tmp_path,
        {
            "20250301120000_init": "CREATE TABLE `users` (`id` integer PRIMARY KEY);",
            "20250305000000_posts": "CREATE TABLE `posts` (`id` integer PRIMARY KEY);",
        },
    )
    do = DurableObjectStorage()
    migrate(do, load_bundle(out))
    out = write_v1(tmp_path, {"20250303000000_tags": "CREATE TABLE `tags` (`id` integer);"})
    run = migrate(do, load_bundle(out))
    assert run.applied == ["20250303000000_tags"]  # unlike v0's high-water mark


def test_v0_ledger_is_upgraded_by_matching_seconds() -> None:
    do = DurableObjectStorage()
    v0 = Bundle(
        root=Path("d"),
        format="durable-sqlite",
        migrations=(
            Migration(0, "0000_init", 1740830400123, "m0000", "CREATE TABLE `a` (`x` integer);"),
        ),
    )
    migrate(do, v0)
    v1 = Bundle(
        root=Path("d"),
        format="v1",
        migrations=(
            Migration(
                0,
                "20250301120000_init",
                1740830400000,
                "20250301120000_init",
                "CREATE TABLE `a` (`x` integer);",
                name="20250301120000_init",
            ),
            Migration(
                1,
                "20250302000000_b",
                1740873600000,
                "20250302000000_b",
                "CREATE TABLE `b` (`x` integer);",
                name="20250302000000_b",
            ),
        ),
    )
    run = migrate(do, v1)
    assert run.applied == ["20250302000000_b"]
    names = [r[3] for r in ledger(do)]
    assert names == ["20250301120000_init", "20250302000000_b"]


# The first v1 run on a DO with a 0.x ledger sorts the pending migrations by
# (folderMillis, name.localeCompare): recorded with drizzle-orm 1.0.0-rc.5 in workerd
# (cases/upgrade/order_nan, order_punct, order_case, hashmatch of the session-10 v1 run).
INIT_MS = 1740830400000  # 20250301120000


def _v0_then_v1(pending: list[tuple[str, int, bool]]) -> tuple[DurableObjectStorage, Bundle]:
    """A DO migrated by 0.x with one migration, and a v1 bundle: that migration, then
    ``pending`` (name, millis, has a timestamp) each logging its name."""
    do = DurableObjectStorage()
    init = "CREATE TABLE `runlog` (`seq` integer PRIMARY KEY, `name` text);"
    migrate(
        do,
        Bundle(
            root=Path("d"),
            format="durable-sqlite",
            migrations=(Migration(0, "0000_init", INIT_MS + 123, "m0000", init),),
        ),
    )
    v1 = [Migration(0, "20250301120000_init", INIT_MS, "k0", init, name="20250301120000_init")]
    for i, (name, ms, valid) in enumerate(pending, 1):
        log = f"INSERT INTO `runlog` (`name`) VALUES ('{name}');"
        v1.append(Migration(i, name, ms, f"k{i}", log, name=name, when_valid=valid))
    v1.sort(key=lambda m: m.name.encode("utf-16-be"))  # migrations.js keys, code-unit order
    return do, Bundle(root=Path("d"), format="v1", migrations=tuple(v1))


def _runlog(do: DurableObjectStorage) -> list[object]:
    return [r[0] for r in do.sql.exec("SELECT name FROM runlog ORDER BY seq").raw()]


def test_upgrade_run_keeps_folders_without_a_time_where_javascripts_sort_leaves_them() -> None:
    # NaN - x is NaN, which V8's sort takes as "equal": they were moved first (when 0)
    do, bundle = _v0_then_v1(
        [("20270101000000_b", 1798761600000, True), ("a_custom", 0, False), ("b_custom", 0, False)]
    )
    migrate(do, bundle)
    assert _runlog(do) == ["20270101000000_b", "a_custom", "b_custom"]


def test_upgrade_run_breaks_ties_in_a_second_with_locale_compare() -> None:
    # lower-cased names put `x-y` before `x_y` and `_A` before `_a`; ICU does the reverse
    second = 1798761600000
    do, bundle = _v0_then_v1(
        [("20270101000000_x-y", second, True), ("20270101000000_x_y", second, True)]
    )
    migrate(do, bundle)
    assert _runlog(do) == ["20270101000000_x_y", "20270101000000_x-y"]
    do, bundle = _v0_then_v1(
        [("20270101000000_A", second, True), ("20270101000000_a", second, True)]
    )
    migrate(do, bundle)
    assert _runlog(do) == ["20270101000000_a", "20270101000000_A"]


def test_upgrade_cannot_tell_rows_of_one_second_apart_and_v1_failures_say_so() -> None:
    # drizzle compares the local migration's hash, which durable-sqlite leaves "": two 0.x
    # rows in one second never match, whatever hash the rows hold
    do = DurableObjectStorage()
    a = Migration(0, "0000_a", INIT_MS + 100, "m0000", "CREATE TABLE `a` (`x` integer);")
    b = Migration(1, "0001_b", INIT_MS + 200, "m0001", "CREATE TABLE `b` (`x` integer);")
    migrate(do, Bundle(root=Path("d"), format="durable-sqlite", migrations=(a, b)))
    do.sql.exec("UPDATE __drizzle_migrations SET hash = 'h' || created_at")
    names = ("20250301120000_a", "20250301120000_b")
    v1 = Bundle(
        root=Path("d"),
        format="v1",
        migrations=tuple(
            Migration(i, n, INIT_MS, f"k{i}", m.sql, name=n)
            for i, (n, m) in enumerate(zip(names, (a, b), strict=True))
        ),
    )
    with pytest.raises(MigrationError) as info:
        migrate(do, v1)
    assert "do not match any local migration" in str(info.value)
    # JS's String(null): the 0.x ledger's `id SERIAL` is no rowid alias, so every id is NULL
    assert "[id: null, created_at: 1740830400100]" in str(info.value)
    assert info.value.drizzle_message == "TransactionRollbackError: Rollback"


def test_a_failing_v1_migration_is_drizzle_1s_rollback_error(tmp_path: Path) -> None:
    out = write_v1(tmp_path, {"20250301120000_bad": "SELECT * FROM nosuch;"})
    with pytest.raises(MigrationError) as info:
        migrate(DurableObjectStorage(), load_bundle(out))
    assert info.value.drizzle_message == "TransactionRollbackError: Rollback"
    assert "no such table: nosuch" in str(info.value.cause)
