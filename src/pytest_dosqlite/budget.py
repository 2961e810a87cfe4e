"""startup_budget: the oldest instance's start-up migrations fit in blockConcurrencyWhile.

Why: every pending migration of an old instance runs at once in the constructor's
``blockConcurrencyWhile``, which the runtime cuts off after 30 seconds
(``Settings.budget_seconds``); an instance that never finishes its start-up never serves a
request again. :func:`estimate_startup` times each migration on large tables and extrapolates.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .bundle import Bundle
from .errors import CheckFailure, DosqliteWarning, MigrationError
from .migrator import migrate
from .seed import bulk_seed
from .storage import DurableObjectStorage

if TYPE_CHECKING:
    from .checks import CheckContext

__all__ = ["BudgetEstimate", "DosqliteBudgetWarning", "estimate_startup", "startup_budget"]


class DosqliteBudgetWarning(DosqliteWarning):
    """The estimated start-up migration time gets close to the blockConcurrencyWhile limit.

    A ``UserWarning`` (through :class:`~pytest_dosqlite.errors.DosqliteWarning`).
    """


def _setting(ctx: CheckContext, name: str, default: Any) -> Any:
    value = getattr(ctx.settings, name, None)
    if value is None:
        value = ctx.extra.get(name, default)
    return value


@dataclass
class BudgetEstimate:
    """Estimated time of every migration on tables of ``rows`` rows (see :func:`estimate_startup`).

    ``per_migration`` maps tag -> estimated seconds; ``measured`` maps each measured table size to
    tag -> measured seconds; ``failures`` names migrations that failed on the bulk rows (not
    timed); ``total`` is the estimated start-up of the oldest instance: every migration after
    the first on one DO, in one blockConcurrencyWhile.
    """

    rows: int
    per_migration: dict[str, float]
    measured: dict[int, dict[str, float]]
    failures: dict[str, str]
    limit_seconds: float
    #: seconds spent measuring
    cost: float = 0.0
    #: tag -> measured exponent p of t ~ rows ** p (only where the times are above noise)
    growth: dict[str, float] = field(default_factory=dict)

    def superlinear(self) -> list[str]:
        """Migrations whose time grows clearly faster than the row count."""
        return [t for t, p in self.growth.items() if p > 1.3]

    @property
    def total(self) -> float:
        return sum(self.per_migration.values())

    def slowest(self, count: int = 5) -> list[tuple[str, float]]:
        ranked = sorted(self.per_migration.items(), key=lambda kv: kv[1], reverse=True)
        return ranked[:count]

    def render(self) -> str:
        lines = [
            f"estimated start-up with {self.rows:,} rows per table: {self.total:.3f} s "
            f"(limit {self.limit_seconds:g} s)"
        ]
        sizes = sorted(self.measured)
        for tag, est in self.per_migration.items():
            measured = ", ".join(f"{self.measured[n].get(tag, 0.0):.4f} s @ {n:,}" for n in sizes)
            lines.append(f"{tag}: {est:.4f} s (measured {measured})")
        for tag, why in self.failures.items():
            lines.append(f"{tag}: not timed: {why}")
        return "\n".join(lines)


def _progressive_run(
    bundle: Bundle, images: Any, target: int, rows: int, skip: Iterable[str] = ()
) -> tuple[dict[str, float], dict[str, str]]:
    """Time each migration on one DO whose empty tables are filled to ``rows`` before each step.

    A migration that fails on the bulk rows is timed again from the image before it with every
    table freshly filled; migrations in ``skip`` are not run on this DO (the run continues from
    the image after them).
    """
    skipped = set(skip)
    times: dict[str, float] = {}
    failures: dict[str, str] = {}
    do = DurableObjectStorage(image=images.version(bundle, 0).image)
    for j in range(1, target + 1):
        m = bundle.migrations[j - 1]
        if m.tag in skipped:
            do.close()
            do = DurableObjectStorage(image=images.version(bundle, j).image)
            continue
        if j > 1:
            bulk_seed(do, rows)
        try:
            times[m.tag] = migrate(do, bundle.prefix(j)).timings.get(m.tag, 0.0)
            continue
        except MigrationError as exc:
            do.close()
            error = str(exc.cause or exc.message)
        if "constraint failed" in error:
            # rows carried over from earlier versions broke it (NULLs copied into a new NOT
            # NULL column, say: data_preserved reports that); time it on fresh rows instead
            do = DurableObjectStorage(image=images.version(bundle, j - 1).image)
            bulk_seed(do, rows)
            try:
                times[m.tag] = migrate(do, bundle.prefix(j)).timings.get(m.tag, 0.0)
                continue
            except MigrationError as exc:
                do.close()
                error = str(exc.cause or exc.message)
        failures[m.tag] = error
        do = DurableObjectStorage(image=images.version(bundle, j).image)
    do.close()
    return times, failures


#: below this many seconds a measurement is noise: extrapolate linearly
_NOISE = 0.005


def _extrapolate(na: int, ta: float, nb: int, tb: float, rows: int) -> float:
    """Time at ``rows`` from times ``ta`` at ``na`` and ``tb`` at ``nb`` rows (``na < nb``).

    Linear (``tb + slope * (rows - nb)``, slope >= 0, never below ``tb``) unless both times are
    above noise and grow faster than linearly; then a power law ``tb * (rows / nb) ** p`` with
    the measured exponent ``p`` capped at 2 (a scan per row: DROP TABLE of a parent whose child
    foreign-key column has no index, an UPDATE with a correlated subquery, ...).
    """
    if ta >= _NOISE / 10 and tb >= _NOISE:
        p = math.log(tb / ta) / math.log(nb / na)
        if p > 1.3:  # n log n from 1k to 10k rows is about 1.1
            return float(tb * (rows / nb) ** min(p, 2.0))
    slope = max(0.0, (tb - ta) / (nb - na))
    return max(tb, tb + slope * (rows - nb))


def _growth(na: int, ta: float, nb: int, tb: float) -> float | None:
    """The measured exponent ``p`` of ``t ~ n ** p``, when both times are above noise."""
    if ta >= _NOISE / 10 and tb >= _NOISE:
        return math.log(tb / ta) / math.log(nb / na)
    return None


def estimate_startup(
    bundle: Bundle,
    *,
    rows: int = 100_000,
    sample_rows: int = 10_000,
    images: Any = None,
    limit_seconds: float = 30.0,
    measure_cap: float = 1.0,
) -> BudgetEstimate:
    """Estimate how long every migration takes when each table holds ``rows`` rows.

    Method: one DO starts empty and takes the migrations one at a time; before each migration,
    every empty table is filled by :func:`~pytest_dosqlite.seed.bulk_seed` (so each migration
    meets full tables, as on an old, busy instance) and the migration is timed as drizzle runs
    it (``migrate()``'s per-migration timing). When ``rows <= sample_rows`` this is done once at
    ``rows``. Otherwise it is done at ``sample_rows // 100``, ``sample_rows // 10`` and
    ``sample_rows`` rows, and each migration's time at ``rows`` is extrapolated from the two
    largest sizes it was measured at (see :func:`_extrapolate`: linear, or a power law when the
    growth is clearly superlinear). A migration whose time, extrapolated from the two smaller
    sizes, would exceed ``measure_cap`` seconds at ``sample_rows`` is not run at that size, to
    keep the check cheap; its estimate comes from the smaller sizes. The times are this
    machine's SQLite (the DO's version) in memory, without the DO's storage I/O.
    """
    import time

    from .images import default_cache

    cache = images if images is not None else default_cache()
    started = time.perf_counter()
    target = len(bundle.migrations)
    while target > 0 and cache.version(bundle, target).error is not None:
        target -= 1
    measured: dict[int, dict[str, float]] = {}
    failures: dict[str, str] = {}
    tags = [m.tag for m in bundle.migrations[:target]]
    per: dict[str, float] = {}
    growth: dict[str, float] = {}
    if rows <= sample_rows or sample_rows < 100:
        size = max(rows, 1)
        measured[size], failures = _progressive_run(bundle, cache, target, size)
        per = {t: measured[size].get(t, 0.0) for t in tags}
    else:
        n0, n1, n2 = sample_rows // 100, sample_rows // 10, sample_rows
        for n in (n0, n1):
            measured[n], failed = _progressive_run(bundle, cache, target, n)
            failures.update(failed)
        skip = [
            t
            for t in tags
            if _extrapolate(n0, measured[n0].get(t, 0.0), n1, measured[n1].get(t, 0.0), n2)
            > measure_cap
        ]
        measured[n2], failed = _progressive_run(bundle, cache, target, n2, skip)
        failures.update(failed)
        for t in tags:
            na, nb = (n1, n2) if t in measured[n2] else (n0, n1)
            ta, tb = measured[na].get(t, 0.0), measured[nb].get(t, 0.0)
            per[t] = _extrapolate(na, ta, nb, tb, rows)
            p = _growth(na, ta, nb, tb)
            if p is not None:
                growth[t] = p
    if tags:  # the first migration always runs on an empty DO
        per[tags[0]] = min(measured[n].get(tags[0], 0.0) for n in measured)
    return BudgetEstimate(
        rows=rows,
        per_migration=per,
        measured=measured,
        failures=failures,
        limit_seconds=limit_seconds,
        cost=time.perf_counter() - started,
        growth=growth,
    )


def startup_budget(ctx: CheckContext) -> None:
    """The oldest instance's start-up migrations fit in blockConcurrencyWhile's time limit.

    A DO migrates lazily in its constructor's ``blockConcurrencyWhile``; an instance at the
    oldest version runs every later migration there at once, and the runtime resets the object
    when the callback takes longer than ``Settings.budget_seconds`` (30 s on Cloudflare). The
    time is estimated by :func:`estimate_startup` with ``Settings.budget_rows`` rows per table
    (default 100,000; measured at up to ``budget_sample_rows`` rows, default 10,000, and
    extrapolated linearly). Rule: estimated total > ``budget_warn_ratio`` (0.5) x limit ->
    :class:`DosqliteBudgetWarning`; > ``budget_fail_ratio`` (1.0) x limit -> CheckFailure. The
    estimate is stored in ``ctx.extra["budget"]`` (a :class:`BudgetEstimate`;
    ``.per_migration`` is the per-migration dict) for reports.
    """
    limit = float(_setting(ctx, "budget_seconds", 30.0))
    rows = int(_setting(ctx, "budget_rows", 100_000))
    sample = int(_setting(ctx, "budget_sample_rows", 10_000))
    cap = float(_setting(ctx, "budget_measure_cap", 1.0))
    warn_ratio = float(_setting(ctx, "budget_warn_ratio", 0.5))
    fail_ratio = float(_setting(ctx, "budget_fail_ratio", 1.0))
    est = estimate_startup(
        ctx.bundle,
        rows=rows,
        sample_rows=sample,
        images=ctx.images,
        limit_seconds=limit,
        measure_cap=cap,
    )
    ctx.extra["budget"] = est
    total = est.total
    slowest = "\n".join(
        f"{tag}: {sec:.3f} s"
        + (f" (grows like rows^{est.growth[tag]:.1f})" if tag in est.superlinear() else "")
        for tag, sec in est.slowest()
    )
    fix = (
        "Split slow data migrations (backfills, table rebuilds) so they run in batches after "
        "start-up (an alarm or a background task), or add the indexes they need first."
    )
    if est.superlinear():
        fix += (
            " A migration that grows faster than the row count usually deletes from or drops a "
            "parent table whose child foreign-key column has no index: every deleted parent "
            "row scans the child table. Create an index on the child column (or drop the child "
            "table) before it."
        )
    extra: list[tuple[str, str]] = []
    if est.failures:
        extra.append(
            (
                "Not timed (they fail on filled tables; see data_preserved)",
                "\n".join(f"{t}: {e}" for t, e in est.failures.items()),
            )
        )
    method = (
        f"each migration timed on tables topped up to {', '.join(f'{n:,}' for n in est.measured)} "
        f"rows and extrapolated to {rows:,} rows (linearly, or as a power law where the time "
        "grows faster than the rows); SQLite in memory on this machine, "
        "without the DO's storage I/O"
    )
    if total > fail_ratio * limit:
        raise CheckFailure(
            f"start-up migrations would take about {total:.1f} s with {rows:,} rows per table, "
            f"over {fail_ratio:.0%} of blockConcurrencyWhile's {limit:g} s",
            [
                ("Slowest migrations", slowest),
                ("Estimate", method),
                (
                    "On a real Durable Object",
                    "an instance at the oldest version runs every pending migration in its "
                    "constructor's blockConcurrencyWhile; past the limit the runtime resets "
                    "the object and the next request starts the same migrations again.",
                ),
                ("How to fix", fix),
                *extra,
            ],
        )
    if total > warn_ratio * limit:
        warnings.warn(
            DosqliteBudgetWarning(
                f"start-up migrations would take about {total:.1f} s with {rows:,} rows per "
                f"table ({total / limit:.0%} of blockConcurrencyWhile's {limit:g} s); slowest: "
                + "; ".join(f"{tag} {sec:.2f} s" for tag, sec in est.slowest(3))
            ),
            stacklevel=2,
        )
