"""DO start-ups with the defects ``concurrent_starts`` and ``crash_recovery`` exist to catch.

Used by the docs examples (``ctx.extra["fleet_start"] = "starts:<name>"``). Each models a
constructor a real Worker could have instead of
``ctx.blockConcurrencyWhile(() => migrate(db, migrations))``.
"""

from __future__ import annotations

import time

from pytest_dosqlite.bundle import Bundle
from pytest_dosqlite.migrator import INSERT_SQL, LEDGER_DDL, MigrationRun, js_number
from pytest_dosqlite.storage import DurableObjectStorage


def _high_water_mark(do: DurableObjectStorage) -> float | None:
    do.sql.exec(LEDGER_DDL)
    rows = do.sql.exec('SELECT max(created_at) FROM "__drizzle_migrations"').raw().to_array()
    return None if rows[0][0] is None else js_number(rows[0][0])


def await_before_migrate(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun:
    """Reads the ledger, awaits something (a KV read, a fetch), then applies.

    In TypeScript: ``const applied = readLedger(); await env.CONFIG.get('flags');`` followed by
    one ``transactionSync`` per pending migration, outside ``blockConcurrencyWhile``. While the
    first request awaits, the input gate lets the next request in: it reads the same ledger.
    """
    hwm = _high_water_mark(do)
    time.sleep(0.3)  # the await: other starts run meanwhile
    run = MigrationRun(high_water_mark=hwm)
    for m in bundle.migrations:
        if hwm is not None and not hwm < m.when:
            continue

        def apply(m: object = m) -> None:
            assert hasattr(m, "chunks") and hasattr(m, "when")
            for chunk in m.chunks:
                do.sql.exec(chunk)
            do.sql.exec(INSERT_SQL, "", m.when)

        do.transaction_sync(apply)
        run.applied.append(m.tag)
    return run


def statement_per_event(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun:
    """A hand-rolled runner: every statement is its own write, committed on its own.

    In TypeScript: ``for (const sql of chunks) { ctx.storage.sql.exec(sql); await flush(); }``:
    an instance that dies between two statements leaves a half-applied migration behind.
    """
    hwm = _high_water_mark(do)
    run = MigrationRun(high_water_mark=hwm)
    for m in bundle.migrations:
        if hwm is not None and not hwm < m.when:
            continue
        for chunk in m.chunks:
            do.sql.exec(chunk)
        do.sql.exec(INSERT_SQL, "", m.when)
        run.applied.append(m.tag)
    return run
