"""wrangler_contract on small Worker projects (discovery + the check, without pytester)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import EXAMPLES
from pytest_dosqlite.checks import CheckContext
from pytest_dosqlite.contract import (
    _migrator_of,
    drizzle_orm_migrator,
    wrangler_contract,
    wrangler_version,
)
from pytest_dosqlite.discovery import discover
from pytest_dosqlite.errors import CheckFailure
from test_plugin import DRIZZLE_CONFIG, GOOD, WRANGLER_TOML, make_project


def context(root: Path) -> CheckContext:
    project = discover(root)
    ref = project.bundles[0]
    return CheckContext(bundle=ref.load(), project=project, do_classes=tuple(ref.do_classes))


def test_sqlite_class_with_text_rule_passes(tmp_path: Path) -> None:
    wrangler_contract(context(make_project(tmp_path)))


def test_kv_backed_class_fails(tmp_path: Path) -> None:
    make_project(tmp_path, wrangler=WRANGLER_TOML.replace("new_sqlite_classes", "new_classes"))
    with pytest.raises(CheckFailure) as info:
        wrangler_contract(context(tmp_path))
    assert "RoomDO is KV-backed" in str(info.value)
    assert "`ctx.storage.sql` throws" in str(info.value)


def test_duplicate_migration_tags_fail(tmp_path: Path) -> None:
    extra = '\n[[migrations]]\ntag = "v1"\nnew_sqlite_classes = ["OtherDO"]\n'
    make_project(tmp_path, wrangler=WRANGLER_TOML + extra)
    with pytest.raises(CheckFailure, match="Duplicate migration tags"):
        wrangler_contract(context(tmp_path))


def test_missing_text_rule_fails_on_old_wrangler_only(tmp_path: Path) -> None:
    no_rule = WRANGLER_TOML.split("[[rules]]")[0]
    make_project(tmp_path, wrangler=no_rule)
    (tmp_path / "package.json").write_text('{"devDependencies": {"wrangler": "^3.99.0"}}')
    with pytest.raises(CheckFailure, match=r"No Text rule for \.sql"):
        wrangler_contract(context(tmp_path))
    (tmp_path / "package.json").write_text('{"devDependencies": {"wrangler": "^4.86.0"}}')
    assert wrangler_version(tmp_path)[0] == (4, 86, 0)
    wrangler_contract(context(tmp_path))


def test_bundle_without_project_is_not_checked(tmp_path: Path) -> None:
    from pytest_dosqlite import load_bundle
    from pytest_dosqlite.errors import CheckSkipped
    from test_plugin import write_bundle

    write_bundle(tmp_path / "out", GOOD)
    # skipped, with the reason, rather than passed: nothing was checked
    with pytest.raises(CheckSkipped, match="without its Worker project"):
        wrangler_contract(CheckContext(bundle=load_bundle(tmp_path / "out")))
    assert DRIZZLE_CONFIG  # the shared fixture text is importable


def test_a_project_without_a_wrangler_config_is_not_checked(tmp_path: Path) -> None:
    from pytest_dosqlite.errors import CheckSkipped

    # found by its drizzle config alone: the check passed although nothing was checked
    make_project(tmp_path)
    (tmp_path / "wrangler.toml").unlink()
    with pytest.raises(CheckSkipped, match="no wrangler config in the project"):
        wrangler_contract(context(tmp_path))


def test_missing_text_rule_with_unknown_wrangler_version_warns(tmp_path: Path) -> None:
    from pytest_dosqlite.errors import DosqliteWarning

    make_project(tmp_path, wrangler=WRANGLER_TOML.split("[[rules]]")[0])
    with pytest.warns(DosqliteWarning, match="4.57.0 and later do by default"):
        wrangler_contract(context(tmp_path))


def _drizzle_orm(root: Path, version: str) -> None:
    pkg = root / "node_modules" / "drizzle-orm"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(f'{{"name": "drizzle-orm", "version": "{version}"}}')


def test_drizzle_orm_1_with_a_journal_bundle_fails(tmp_path: Path) -> None:
    # recorded in workerd (drizzle-orm 1.0.0-rc.5): it ignores the journal, names the ledger
    # rows m0000..., and every DO migrated by 0.x fails to start; the emulator, reading the
    # journal, passed every check
    make_project(tmp_path)
    _drizzle_orm(tmp_path, "1.0.0-rc.5")
    with pytest.raises(CheckFailure) as info:
        wrangler_contract(context(tmp_path))
    assert "drizzle-orm 1.x runs a drizzle 0.x bundle" in str(info.value)
    assert "installed drizzle-orm 1.0.0-rc.5" in str(info.value)
    assert "npx drizzle-kit up" in str(info.value)


def test_drizzle_orm_0_with_a_v1_bundle_fails(tmp_path: Path) -> None:
    make_project(tmp_path)
    shutil.rmtree(tmp_path / "drizzle")
    shutil.copytree(EXAMPLES / "bundle-v1-drizzle-kit", tmp_path / "drizzle")
    (tmp_path / "package.json").write_text('{"dependencies": {"drizzle-orm": "^0.45.4"}}')
    with pytest.raises(CheckFailure) as info:
        wrangler_contract(context(tmp_path))
    assert "drizzle-orm 0.x runs a drizzle-kit 1.x bundle" in str(info.value)
    assert "(reading 'entries')" in str(info.value)
    (tmp_path / "package.json").write_text('{"dependencies": {"drizzle-orm": "1.0.0-rc.5"}}')
    wrangler_contract(context(tmp_path))


@pytest.mark.parametrize(
    ("version", "migrator"),
    [
        ("0.45.4", "v0"),
        ("^0.36.0", "v0"),
        ("1.0.0-beta.1", "v0"),  # still the journal migrator
        ("1.0.0-beta.21", "v1"),
        ("1.0.0-rc.5", "v1"),
        ("1.0.0-rc.5-ab785fc", "v1"),
        ("^1.2.0", "v1"),
        ("latest", None),
    ],
)
def test_which_migrator_a_drizzle_orm_version_has(version: str, migrator: str | None) -> None:
    assert _migrator_of(version) == migrator


def test_a_hoisted_drizzle_orm_is_found(tmp_path: Path) -> None:
    worker = tmp_path / "apps" / "api"
    worker.mkdir(parents=True)
    _drizzle_orm(tmp_path, "0.45.4")
    assert drizzle_orm_migrator(worker, tmp_path) == ("v0", "installed drizzle-orm 0.45.4")
    assert drizzle_orm_migrator(worker, worker) == (None, "drizzle-orm is in no package.json")


def test_a_bound_class_the_code_declares_is_checked_not_another_sqlite_class(
    tmp_path: Path,
) -> None:
    # new_sqlite_classes names a class the code does not declare: the worker's only SQLite
    # class was linked instead of the bound RoomDO, and the contract passed
    make_project(tmp_path, wrangler=WRANGLER_TOML.replace('["RoomDO"]', '["Rooms"]'))
    with pytest.raises(CheckFailure) as info:
        wrangler_contract(context(tmp_path))
    assert "RoomDO is not declared" in str(info.value)


def test_a_class_list_written_as_a_string_is_a_config_error(tmp_path: Path) -> None:
    make_project(tmp_path, wrangler=WRANGLER_TOML.replace('["RoomDO"]', '"RoomDO"'))
    with pytest.raises(CheckFailure) as info:
        wrangler_contract(context(tmp_path))
    assert "`new_sqlite_classes` is a string, not an array" in str(info.value)


def test_an_environment_that_declares_the_class_kv_backed_fails(tmp_path: Path) -> None:
    staging = (
        '\n[env.staging]\n[[env.staging.durable_objects.bindings]]\nname = "ROOMS"\n'
        'class_name = "RoomDO"\n[[env.staging.migrations]]\ntag = "v1"\n'
        'new_classes = ["RoomDO"]\n'
    )
    make_project(tmp_path, wrangler=WRANGLER_TOML + staging)
    with pytest.raises(CheckFailure) as info:
        wrangler_contract(context(tmp_path))
    assert "RoomDO is KV-backed in env.staging" in str(info.value)
