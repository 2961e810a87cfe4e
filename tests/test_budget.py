"""startup_budget estimates the oldest instance's start-up time on large tables."""

from __future__ import annotations

import warnings

import pytest

from conftest import EXAMPLES, shared_path
from pytest_dosqlite import load_bundle
from pytest_dosqlite.budget import (
    BudgetEstimate,
    DosqliteBudgetWarning,
    _extrapolate,
    estimate_startup,
    startup_budget,
)
from pytest_dosqlite.errors import CheckFailure
from pytest_dosqlite.images import ImageCache
from test_preservation import KARAKEEP, ctx_for


def test_extrapolation_rules() -> None:
    # linear: constant plus slope, never below the larger measurement
    assert _extrapolate(1000, 0.002, 10_000, 0.011, 100_000) == pytest.approx(0.101)
    assert _extrapolate(1000, 0.004, 10_000, 0.003, 100_000) == 0.003
    # superlinear growth above noise: power law with the measured exponent, capped at 2
    assert _extrapolate(1000, 0.01, 10_000, 1.0, 100_000) == pytest.approx(100.0)
    assert _extrapolate(1000, 0.01, 10_000, 10.0, 100_000) == pytest.approx(1000.0)
    # below noise: linear even if the ratio looks superlinear
    assert _extrapolate(1000, 0.00001, 10_000, 0.001, 100_000) < 0.011


def test_estimate_measures_every_migration() -> None:
    bundle = load_bundle(EXAMPLES / "preservation-child-rebuild" / "drizzle")
    est = estimate_startup(bundle, rows=500, sample_rows=1000, images=ImageCache())
    tags = [m.tag for m in bundle.migrations]
    assert list(est.per_migration) == tags
    assert list(est.measured) == [500]
    assert all(t >= 0 for t in est.per_migration.values())
    assert est.total == pytest.approx(sum(est.per_migration.values()))
    assert est.failures == {}
    big = estimate_startup(bundle, rows=1_000_000, sample_rows=2000, images=ImageCache())
    assert sorted(big.measured) == [20, 200, 2000]
    assert "0001_posts_author_set_null" in big.render()


def test_estimate_times_migrations_that_fail_on_carried_over_rows() -> None:
    # basic-step4: rows from version 1 get bio NULL from ALTER ADD; the rebuild is timed anyway
    bundle = load_bundle(shared_path("bundles", "basic-step4", "drizzle"))
    est = estimate_startup(bundle, rows=300, sample_rows=1000, images=ImageCache())
    assert est.failures == {}
    assert est.per_migration["0003_bio_not_null"] > 0


def test_startup_budget_fails_warns_and_passes() -> None:
    root = EXAMPLES / "preservation-child-rebuild" / "drizzle"
    ctx = ctx_for(root, budget_rows=300, budget_seconds=1e-9)
    with pytest.raises(CheckFailure) as info:
        startup_budget(ctx)
    assert "blockConcurrencyWhile" in info.value.render()
    assert isinstance(ctx.extra["budget"], BudgetEstimate)

    ctx = ctx_for(root, budget_rows=300, budget_seconds=1e-9, budget_fail_ratio=1e12)
    with pytest.warns(DosqliteBudgetWarning, match="start-up migrations would take about"):
        startup_budget(ctx)

    ctx = ctx_for(root, budget_rows=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        startup_budget(ctx)
    assert set(ctx.extra["budget"].per_migration) == {m.tag for m in ctx.bundle.migrations}


@pytest.mark.slow
def test_budget_finds_the_quadratic_migration_of_a_real_bundle() -> None:
    # karakeep 0012 drops `assets`, whose child `bookmarkAssets.assetId` has no index: each
    # deleted parent row scans the child table
    ctx = ctx_for(shared_path(*KARAKEEP))
    with pytest.raises(CheckFailure) as info:
        startup_budget(ctx)
    est = ctx.extra["budget"]
    assert est.slowest(1)[0][0] == "0012_noisy_grim_reaper"
    assert est.total > 30
    assert "0012_noisy_grim_reaper" in info.value.render()
