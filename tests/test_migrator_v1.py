"""drizzle-orm 1.0's durable-sqlite migrator (v1 folder layout): name-based, no high-water mark."""

from __future__ import annotations

from pathlib import Path

from pytest_dosqlite import DurableObjectStorage, load_bundle, migrate
from pytest_dosqlite.bundle import Bundle, Migration


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
