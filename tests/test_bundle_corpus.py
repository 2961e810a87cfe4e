"""Every bundle of ../shared (public-project corpus and drizzle-kit bundles) through the loader.

The real defects recorded in corpus/INDEX.md and each SOURCE.txt must come out with the right
codes; every bundle recorded as consistent must give no problem at all.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import SHARED, shared_path
from pytest_dosqlite.bundle import Bundle, load_bundle

pytestmark = pytest.mark.shared

H_GLENN = "_history/67c4bdbebc90875f5dbde1d263add78839154ce7"
H_CREW = "_history/af107f581a795e8c6c40c67dc61e5047ff366225"
H_OPEN = "_history/25c3cd68a3e4b17208da97734860399ed50e3a9a"
H_SPRINT = "_history/b95d7d2642e1ef3c211ee12b63d4f009c8244c86"
H_UNO = "_history/707ad497fa4c0d48de8cbe7d6fda55bdc97d2698"

#: bundle (relative to corpus/) -> (format, journal entries, {code: count}) from SOURCE.txt
CORPUS: dict[str, tuple[str, int, dict[str, int]]] = {
    "GlennMm__typescript_backend_template/drizzle/main": ("durable-sqlite", 1, {}),
    "GlennMm__typescript_backend_template/drizzle/tenant": ("durable-sqlite", 10, {}),
    f"GlennMm__typescript_backend_template/{H_GLENN}/drizzle/tenant": (
        "durable-sqlite",
        4,
        {"missing-key": 1},
    ),
    "Litengat__uno/drizzle": ("durable-sqlite", 8, {}),
    f"Litengat__uno/{H_UNO}/drizzle": ("durable-sqlite", 1, {}),
    "fkrein1__crewhelm/apps/worker/control-plane-migrations": ("journal", 38, {}),
    f"fkrein1__crewhelm/{H_CREW}/apps/worker/control-plane-migrations": (
        "journal",
        12,
        {"snapshot-chain": 2},
    ),
    "jhonsfran1165__unprice/apps/api/drizzle": ("durable-sqlite", 5, {}),
    "karakeep-app__karakeep/packages/db/drizzle": ("journal", 94, {}),
    "nicholasgriffintn__bitwobbly.com/packages/shared/drizzle": (
        "journal",
        22,
        {"missing-sql": 1, "missing-snapshot": 1},
    ),
    "nicholasgriffintn__sprintjam.co.uk/apps/auth-worker/drizzle": (
        "journal",
        16,
        {"orphan-sql": 3, "duplicate-prefix": 1, "orphan-snapshot": 1},
    ),
    "nicholasgriffintn__sprintjam.co.uk/apps/room-worker/drizzle": ("durable-sqlite", 7, {}),
    "nicholasgriffintn__sprintjam.co.uk/apps/standup-worker/drizzle": ("durable-sqlite", 4, {}),
    "nicholasgriffintn__sprintjam.co.uk/apps/wheel-worker/drizzle": ("durable-sqlite", 3, {}),
    f"nicholasgriffintn__sprintjam.co.uk/{H_SPRINT}/apps/standup-worker/drizzle": (
        "durable-sqlite",
        3,
        {},
    ),
    "openstatusHQ__openstatus/packages/db/drizzle": ("journal", 84, {}),
    f"openstatusHQ__openstatus/{H_OPEN}/packages/db/drizzle": (
        "journal",
        54,
        {"when-not-increasing": 1},
    ),
}


def bundle_roots(base: Path) -> set[Path]:
    roots = {j.parent.parent for j in base.rglob("meta/_journal.json")}
    roots |= {j.parent for j in base.rglob("migrations.js")}
    return roots


def counts(bundle: Bundle) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in bundle.problems:
        out[p.code] = out.get(p.code, 0) + 1
    return out


def test_corpus_table_lists_every_bundle() -> None:
    corpus = shared_path("corpus")
    found = {str(p.relative_to(corpus)) for p in bundle_roots(corpus)}
    assert found == set(CORPUS)


@pytest.mark.parametrize("rel", sorted(CORPUS))
def test_corpus_bundle(rel: str) -> None:
    root = shared_path("corpus", rel)
    fmt, entries, expected = CORPUS[rel]
    bundle = load_bundle(root)
    assert bundle.format == fmt
    assert len(bundle.migrations) == entries
    assert counts(bundle) == expected, [str(p) for p in bundle.problems]
    journal = json.loads((root / "meta" / "_journal.json").read_text())
    assert [m.tag for m in bundle.migrations] == [e["tag"] for e in journal["entries"]]
    assert [m.when for m in bundle.migrations] == [e["when"] for e in journal["entries"]]
    for m in bundle.migrations:
        if m.path is not None and m.path.suffix == ".sql":
            assert m.sql == m.path.read_bytes().decode("utf-8")
    # the full snapshot parse agrees with the fast one
    assert counts(load_bundle(root, full_snapshots=True)) == expected


def test_glenn_missing_m0003() -> None:
    b = load_bundle(
        shared_path("corpus", f"GlennMm__typescript_backend_template/{H_GLENN}/drizzle/tenant")
    )
    assert b.missing == ("0003_wealthy_metal_master",)
    assert b.drizzle_error == "Missing migration: 0003_wealthy_metal_master"
    problem = b.problems_with("missing-key")[0]
    assert problem.migration == "0003_wealthy_metal_master"
    assert problem.path is not None and problem.path.name == "migrations.js"
    # its SQL is still available (0003 adds a NOT NULL column without default)
    assert "NOT NULL" in b.migration("0003").sql


def test_crewhelm_copied_snapshot() -> None:
    b = load_bundle(
        shared_path("corpus", f"fkrein1__crewhelm/{H_CREW}/apps/worker/control-plane-migrations")
    )
    messages = [p.message for p in b.problems_with("snapshot-chain")]
    assert any("0011_snapshot.json has the same id as 0010_snapshot.json" in m for m in messages)
    assert any("f5ebd5a3-a0c4-4a2d-8f7d-96e212674a3c" in m for m in messages)


def test_bitwobbly_entry_without_sql() -> None:
    b = load_bundle(
        shared_path("corpus", "nicholasgriffintn__bitwobbly.com/packages/shared/drizzle")
    )
    problem = b.problems_with("missing-sql")[0]
    assert problem.migration == "0007_hushed_lightspeed"
    assert b.migration("0007_hushed_lightspeed").error is not None
    assert b.drizzle_error is not None and "0007_hushed_lightspeed.sql" in b.drizzle_error


def test_sprintjam_auth_diverged_from_disk() -> None:
    b = load_bundle(
        shared_path("corpus", "nicholasgriffintn__sprintjam.co.uk/apps/auth-worker/drizzle")
    )
    orphans = sorted(p.path.name for p in b.problems_with("orphan-sql") if p.path)
    assert orphans == [
        "0015_cuddly_unicorn.sql",
        "0016_young_gambit.sql",
        "0017_retro_session_stats.sql",
    ]
    dup = b.problems_with("duplicate-prefix")[0]
    assert "0015_team_slugs.sql" in dup.message and "0015_cuddly_unicorn.sql" in dup.message
    orphan_snap = b.problems_with("orphan-snapshot")[0]
    assert orphan_snap.path is not None and orphan_snap.path.name == "0016_snapshot.json"
    assert b.migrations[-1].tag == "0015_team_slugs"


def test_openstatus_when_going_back() -> None:
    root = shared_path("corpus", f"openstatusHQ__openstatus/{H_OPEN}/packages/db/drizzle")
    problem = load_bundle(root).problems_with("when-not-increasing")[0]
    assert problem.migration == "0053_groovy_doctor_strange"
    assert "0052_illegal_killraven" in problem.message and "1736935200000" in problem.message
    line = (root / "meta" / "_journal.json").read_text().splitlines()[(problem.line or 0) - 1]
    assert "1736935200000" in line


def test_unprice_formatter_rewritten_js_is_clean() -> None:
    b = load_bundle(shared_path("corpus", "jhonsfran1165__unprice/apps/api/drizzle"))
    assert b.problems == () and b.js_keys == ("m0000", "m0001", "m0002", "m0003", "m0004")
    assert b.migration("0003_rare_talon").path is not None


@pytest.mark.parametrize(
    ("folder", "count"),
    [(f"basic-step{i}", i) for i in range(1, 7)] + [("basic-nobp", 5)],
)
def test_shared_drizzle_kit_bundles(folder: str, count: int) -> None:
    b = load_bundle(shared_path("bundles", folder, "drizzle"))
    assert b.format == "durable-sqlite" and b.problems == () and b.drizzle_error is None
    assert len(b.migrations) == count
    if folder == "basic-nobp":
        assert all(len(m.chunks) == 1 for m in b.migrations)


def test_largest_bundle_loads_fast() -> None:
    root = shared_path("corpus", "karakeep-app__karakeep/packages/db/drizzle")
    load_bundle(root)
    # CPU time, generous bound: a guard against quadratic behaviour, not a benchmark
    best = min(_time(root) for _ in range(5))
    assert best < 0.5, f"{best * 1000:.1f} ms"


def _time(root: Path) -> float:
    start = time.process_time()
    load_bundle(root)
    return time.process_time() - start


def test_every_shared_bundle_loads_without_crashing() -> None:
    base = shared_path()
    for root in sorted(bundle_roots(base)):
        if SHARED / "corpus" in root.parents or SHARED / "bundles" in root.parents:
            load_bundle(root)
