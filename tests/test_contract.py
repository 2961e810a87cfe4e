"""wrangler_contract on small Worker projects (discovery + the check, without pytester)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dosqlite.checks import CheckContext
from pytest_dosqlite.contract import wrangler_contract, wrangler_version
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
