"""Start functions with the defects the fleet checks exist to catch (``ctx.extra["fleet_start"]``).

Each models a DO constructor a real project could write instead of
``blockConcurrencyWhile(() => migrate(db, migrations))``.
"""

from __future__ import annotations

import time

from pytest_dosqlite.bundle import Bundle
from pytest_dosqlite.errors import MigrationError
from pytest_dosqlite.fleet import drizzle_start
from pytest_dosqlite.migrator import INSERT_SQL, LEDGER_DDL, MigrationRun, js_number
from pytest_dosqlite.storage import DurableObjectStorage

LAST_WHEN = 'SELECT max(created_at) FROM "__drizzle_migrations"'


def racy_start(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun:
    """Reads the ledger in one event, awaits something, then applies in later events.

    Without blockConcurrencyWhile, a second request runs while the first awaits: both read the
    same high-water mark and both apply the same migrations.
    """
    do.sql.exec(LEDGER_DDL)
    rows = do.sql.exec(LAST_WHEN).raw().to_array()
    hwm = None if rows[0][0] is None else js_number(rows[0][0])
    time.sleep(0.3)  # `await env.CONFIG.get(...)`: the input gate opens
    run = MigrationRun(high_water_mark=hwm)
    for m in bundle.migrations:
        if hwm is None or hwm < m.when:

            def apply(m: object = m) -> None:
                assert hasattr(m, "chunks")
                for chunk in m.chunks:
                    do.sql.exec(chunk)
                do.sql.exec(INSERT_SQL, "", m.when)

            do.transaction_sync(apply)
            run.applied.append(m.tag)
    return run


def nonatomic_start(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun:
    """A hand-rolled runner that executes every statement as its own event (own commit)."""
    do.sql.exec(LEDGER_DDL)
    rows = do.sql.exec(LAST_WHEN).raw().to_array()
    hwm = None if rows[0][0] is None else js_number(rows[0][0])
    run = MigrationRun(high_water_mark=hwm)
    for m in bundle.migrations:
        if hwm is None or hwm < m.when:
            for chunk in m.chunks:
                do.sql.exec(chunk)
            do.sql.exec(INSERT_SQL, "", m.when)
            run.applied.append(m.tag)
    return run


def swallowing_start(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun | None:
    """Logs a failed migration and carries on serving requests."""
    try:
        return drizzle_start(do, bundle)
    except MigrationError:
        return None


def hanging_start(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun:
    """A start stuck forever (an `await` on something that never resolves)."""
    time.sleep(3600)
    raise AssertionError("unreachable")


def rewriting_start(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun:
    """drizzle's migrate() on SQL its runner strips first (the chunks are not passed verbatim)."""
    from dataclasses import replace

    stripped = [replace(m, sql=m.sql.strip() + "\n") for m in bundle.migrations]
    return drizzle_start(do, replace(bundle, migrations=tuple(stripped)))
