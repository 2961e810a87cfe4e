"""The fast paths of the fleet checks report exactly what the slow ones do.

``upgrade_from_every_version`` migrates only the versions where the chain of images breaks
(``fleet.UPGRADE_CHAIN``); crash recovery restarts once per migration from a database that is
byte for byte the previous version. These tests run both ways on bundles built to break the
chain (a PRAGMA that outlives its migration, a ``when`` between two others) and compare.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES
from pytest_dosqlite import fleet
from pytest_dosqlite.bundle import load_bundle
from pytest_dosqlite.checks import CheckContext, Settings
from pytest_dosqlite.errors import CheckFailure
from pytest_dosqlite.images import ImageCache

BP = "--> statement-breakpoint"


def write_bundle(out: Path, migrations: list[str], whens: list[int] | None = None) -> Path:
    (out / "meta").mkdir(parents=True)
    entries = []
    for i, sql in enumerate(migrations):
        tag = f"{i:04d}_m{i}"
        (out / f"{tag}.sql").write_text(sql)
        when = whens[i] if whens else 1_700_000_000_000 + i * 1000
        entries.append({"idx": i, "version": "6", "when": when, "tag": tag, "breakpoints": True})
    journal = {"version": "7", "dialect": "sqlite", "entries": entries}
    (out / "meta" / "_journal.json").write_text(json.dumps(journal))
    return out


def upgrade_report(path: Path, chain: bool, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> str:
    monkeypatch.setattr(fleet, "UPGRADE_CHAIN", chain)
    ctx = CheckContext(
        bundle=load_bundle(path),
        settings=Settings(git_history=False),
        images=ImageCache(),
        extra={"fleet_workers": 1, **extra},
    )
    try:
        fleet.upgrade_from_every_version(ctx)
    except CheckFailure as exc:
        return exc.render()
    return "passed"


RENAME_UNDER_LEGACY = [
    f"CREATE TABLE `a` (`id` integer PRIMARY KEY);{BP}\nCREATE VIEW `v` AS SELECT `id` FROM `a`;",
    "CREATE TABLE `b` (`id` integer PRIMARY KEY);",
    "PRAGMA legacy_alter_table=ON;",
    "ALTER TABLE `a` RENAME TO `a2`;",
    "CREATE TABLE `c` (`id` integer PRIMARY KEY);",
]


def test_a_pragma_that_outlives_its_migration_breaks_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_bundle(tmp_path / "drizzle", RENAME_UNDER_LEGACY)
    slow = upgrade_report(path, False, monkeypatch)
    fast = upgrade_report(path, True, monkeypatch)
    assert fast == slow
    # the DOs that run the PRAGMA and the RENAME in one start keep the old view text
    assert "Deployed at v1 (after 0000_m0), v2 (after 0001_m1)" in slow
    assert "v3" not in slow.split("How to fix")[0]


def test_the_chain_skips_only_what_it_may(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ctx = CheckContext(
        bundle=load_bundle(write_bundle(tmp_path / "d", RENAME_UNDER_LEGACY)),
        settings=Settings(git_history=False),
        images=ImageCache(),
    )
    versions = list(range(1, 6))
    # v2 -> v3 runs the PRAGMA: v2 must really be migrated; v1, v3, v4 follow their next
    assert fleet._upgrade_chain(ctx, versions) == {1, 3, 4}
    ctx.extra["fleet_start"] = "drizzle-fk-off"
    assert fleet._upgrade_chain(ctx, versions) == set()


def test_a_when_between_two_others_breaks_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = [f"CREATE TABLE `t{i}` (`id` integer PRIMARY KEY);" for i in range(6)]
    base = 1_700_000_000_000
    # entry 4 was merged late: its `when` lies between entries 1 and 2
    whens = [base, base + 1000, base + 5000, base + 6000, base + 3000, base + 9000]
    path = write_bundle(tmp_path / "drizzle", migrations, whens)
    slow = upgrade_report(path, False, monkeypatch)
    assert slow != "passed"
    assert upgrade_report(path, True, monkeypatch) == slow
    ctx = CheckContext(
        bundle=load_bundle(path), settings=Settings(git_history=False), images=ImageCache()
    )
    chained = fleet._upgrade_chain(ctx, list(range(1, 7)))
    assert 2 not in chained  # from v2, 0004 (when +3000) is pending; from v3 it is skipped


@pytest.mark.parametrize(
    "example", ["fleet-branch-merge", "fleet-same-when", "fleet-safe", "fleet-restart-loop"]
)
def test_fleet_examples_report_the_same_both_ways(
    example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = EXAMPLES / example / "drizzle"
    assert upgrade_report(path, True, monkeypatch) == upgrade_report(path, False, monkeypatch)


def test_crash_points_of_a_clean_bundle_restart_once_per_migration() -> None:
    ctx = CheckContext(
        bundle=load_bundle(EXAMPLES / "fleet-safe" / "drizzle"),
        settings=Settings(git_history=False),
        images=ImageCache(),
        extra={"fleet_workers": 1},
    )
    results = fleet.run_crash_points(ctx)
    assert len(results) == len(fleet.crash_points(ctx.bundle)) > len(ctx.bundle.migrations)
    assert {r.status for r in results} == {"ok"}


def _count_migrates(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from pytest_dosqlite import images

    calls: list[int] = []
    real = images.migrate

    def counting(do: Any, bundle: Any) -> Any:
        calls.append(len(bundle.migrations))
        return real(do, bundle)

    monkeypatch.setattr(images, "migrate", counting)
    return calls


def test_versions_after_an_unreadable_one_are_not_built_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a journal of thousands of entries whose .sql files are missing: every version was built
    # from scratch (and its prefix computed entry by entry), minutes for 20,000 entries
    out = tmp_path / "drizzle"
    write_bundle(out, ["CREATE TABLE `a` (`x` integer);", "CREATE TABLE `b` (`x` integer);"])
    journal = json.loads((out / "meta" / "_journal.json").read_text())
    last = journal["entries"][-1]
    for i in range(2, 3000):
        journal["entries"].append(dict(last, idx=i, tag=f"{i:04d}_gone", when=last["when"] + i))
    (out / "meta" / "_journal.json").write_text(json.dumps(journal))
    bundle = load_bundle(out)
    cache = ImageCache()
    calls = _count_migrates(monkeypatch)
    head = cache.head(bundle)
    assert head.image is None and head.error is not None
    assert "0002_gone.sql" in str(head.error)
    assert len(calls) <= 4  # the versions that read fine, and the first that does not
    assert bundle.read_error(2) is None
    for count in (3, 1500, 3000):
        assert bundle.read_error(count) == bundle.read_error(3) != None  # noqa: E711
        assert str(cache.version(bundle, count).error) == str(head.error)
        assert bundle.prefix(count).missing == tuple(
            t for t in bundle.missing if t in {m.tag for m in bundle.migrations[:count]}
        )


def test_versions_after_a_missing_key_are_not_built_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # migrations.js without the keys of most journal entries: Missing migration, every version
    out = tmp_path / "drizzle"
    sqls = ["CREATE TABLE `a` (`x` integer);", "CREATE TABLE `b` (`x` integer);"]
    write_bundle(out, sqls + ["SELECT 1;"] * 2998)
    (out / "migrations.js").write_text(
        "import journal from './meta/_journal.json';\n"
        "import m0000 from './0000_m0.sql';\nimport m0001 from './0001_m1.sql';\n"
        "export default { journal, migrations: { m0000, m0001 } };\n"
    )
    bundle = load_bundle(out)
    assert len(bundle.missing) == 2998
    cache = ImageCache()
    calls = _count_migrates(monkeypatch)
    head = cache.head(bundle)
    assert str(head.error).startswith("Missing migration: 0002_m2\n")
    assert len(calls) <= 4
    assert bundle.read_error(2) is None
    for count in (3, 1234, 3000):
        assert bundle.read_error(count) == bundle.read_error(3) != None  # noqa: E711
        kept = {m.tag for m in bundle.migrations[:count]}
        assert bundle.prefix(count).missing == tuple(t for t in bundle.missing if t in kept)
        assert str(cache.version(bundle, count).error) == str(head.error)
