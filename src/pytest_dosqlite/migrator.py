"""drizzle-orm's ``durable-sqlite`` ``migrate()``, with the same effects to the byte.

Same ledger DDL and rows (``id`` NULL, ``hash`` "", ``created_at`` the journal ``when``), the
same high-water-mark decision (an entry runs only if the newest ``created_at`` read once before
the loop is strictly older than its ``when``), one ``transactionSync`` for the whole run, and a
rollback of the whole run on failure. Unlike drizzle, the failure names the migration, the chunk,
the statement with its line, and the real SQLite error instead of "Rollback".
"""

from __future__ import annotations

import bisect
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .bundle import Bundle, Migration
from .errors import DosqliteError, DurableObjectInternalError, MigrationError, SqlError
from .storage import DurableObjectStorage

__all__ = ["LEDGER_DDL", "LEDGER_TABLE", "MigrationRun", "js_number", "migrate"]

LEDGER_TABLE = "__drizzle_migrations"
#: exactly the text drizzle-orm 0.45 sends (durable-sqlite session; note the tabs)
LEDGER_DDL = (
    '\n\t\t\t\tCREATE TABLE IF NOT EXISTS "__drizzle_migrations" (\n'
    "\t\t\t\t\tid SERIAL PRIMARY KEY,\n"
    "\t\t\t\t\thash text NOT NULL,\n"
    "\t\t\t\t\tcreated_at numeric\n"
    "\t\t\t\t)\n\t\t\t"
)
LAST_APPLIED_SQL = (
    'SELECT id, hash, created_at FROM "__drizzle_migrations" ORDER BY created_at DESC LIMIT 1'
)
INSERT_SQL = 'INSERT INTO "__drizzle_migrations" ("hash", "created_at") VALUES(?, ?)'
ROLLBACK_MESSAGE = "DrizzleError: Rollback"
#: drizzle-orm 1.0's (``TransactionRollbackError`` names itself; recorded in workerd, rc.5)
ROLLBACK_MESSAGE_V1 = "TransactionRollbackError: Rollback"


@dataclass
class MigrationRun:
    """What one ``migrate`` call did (drizzle returns nothing; we keep the facts)."""

    applied: list[str] = field(default_factory=list)
    #: journal entries not applied because of the high-water mark (already applied or skipped)
    not_applied: list[str] = field(default_factory=list)
    #: the newest ``created_at`` the run compared against (None on a fresh DO)
    high_water_mark: float | None = None
    #: CPU seconds spent per applied migration (thread CPU time: the same on a busy machine)
    timings: dict[str, float] = field(default_factory=dict)


def js_number(value: object) -> float:
    """JavaScript's ``Number(value)`` for the values a SQLite row can hold."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip(" \t\n\r\v\f\u00a0\ufeff")
        if text == "":
            return 0.0
        try:
            low = text.lower()
            if low.startswith(("0x", "0o", "0b")):
                return float(int(text, 0))
            if low in ("infinity", "+infinity"):
                return math.inf
            if low == "-infinity":
                return -math.inf
            if "inf" in low or "nan" in low or "_" in text:
                return math.nan
            return float(text)
        except ValueError:
            return math.nan
    return math.nan


def _missing_error(tag: str) -> MigrationError:
    return MigrationError(
        f"Missing migration: {tag}",
        tag=tag,
        drizzle_message=f"Missing migration: {tag}",
    )


def _unreadable_error(bundle: Bundle, error: str) -> MigrationError:
    """The error of a bundle drizzle (or the Worker build) fails on before any SQL runs, with
    the migration it names (None for the journal itself)."""
    tag = next((m.tag for m in bundle.migrations if m.error == error), None)
    if tag is None and bundle.missing:
        tag = bundle.missing[0]
    return MigrationError(error, tag=tag, drizzle_message=error)


def migrate(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun:
    """Apply ``bundle`` to ``do`` exactly as drizzle's durable-sqlite migrator does.

    Raises :class:`MigrationError` (nothing applied in this run is kept) on failure. A DO
    inside real workerd (:class:`~pytest_dosqlite.backends.RemoteDurableObject`) runs drizzle's
    own ``migrate()`` there instead.
    """
    __tracebackhide__ = True  # a failed migration is the user's, not a frame of ours
    if not isinstance(bundle, Bundle):
        raise TypeError(
            "migrate(do, bundle): bundle is a Bundle (the dosqlite_bundle fixture, or "
            f"pytest_dosqlite.load_bundle(path)), not {type(bundle).__name__} {bundle!r:.60}"
        )
    if not hasattr(do, "sql") and not hasattr(do, "dosqlite_migrate"):
        raise TypeError(
            "migrate(do, bundle): do is a Durable Object's storage (migrated_do, do_at(tag), "
            f"do_storage), not {type(do).__name__} {do!r:.60}"
        )
    remote = getattr(do, "dosqlite_migrate", None)
    if remote is not None:
        remote_run: MigrationRun = remote(bundle)
        return remote_run
    if bundle.format == "v1":
        return _migrate_v1(do, bundle)
    # readMigrationFiles: a journal entry without its key throws before any SQL runs
    if bundle.drizzle_error:
        raise _unreadable_error(bundle, bundle.drizzle_error)
    if bundle.missing:
        raise _missing_error(bundle.missing[0])
    migrations = bundle.migrations
    run = MigrationRun()
    state: dict[str, object] = {}

    def body() -> None:
        do.sql.exec(LEDGER_DDL)
        rows = do.sql.exec(LAST_APPLIED_SQL).raw().to_array()
        last = rows[0] if rows else None
        # drizzle's loop: every entry newer than the high-water mark runs, in bundle order
        if last is None:
            pending: Sequence[Migration] = migrations
        else:
            hwm = run.high_water_mark = js_number(last[2])
            entries = bundle.entry_index()
            if entries.ascending:  # the usual journal: the newer entries are a suffix
                first = bisect.bisect_right(entries.whens, hwm, 0, len(migrations))
                pending = migrations[first:]
                run.not_applied.extend(entries.tags[:first])
            else:
                pending = [m for m in migrations if hwm < m.when]
                if len(pending) < len(migrations):
                    chosen = {id(m) for m in pending}
                    run.not_applied.extend(m.tag for m in migrations if id(m) not in chosen)
        for m in pending:
            started = time.thread_time()
            _run_chunks(do, m, state)
            do.sql.exec(INSERT_SQL, "", m.when)
            run.applied.append(m.tag)
            run.timings[m.tag] = time.thread_time() - started

    try:
        do.transaction_sync(body)
    except SqlError as exc:
        raise _failure(do, exc, state, run) from None
    except DosqliteError:
        raise
    return run


def _run_chunks(do: DurableObjectStorage, m: Migration, state: dict[str, object]) -> None:
    """Execute ``m``'s chunks in order, keeping in ``state`` the migration and chunk running,
    which :func:`_failure` reads to name them when a statement fails."""
    state["migration"] = m
    for index, chunk in enumerate(m.chunks):
        state["chunk"] = index
        do.sql.exec(chunk)
        if "culprit" not in state and do.unfinishable is not None:
            # the transaction can no longer end (RETURNING rows drizzle never reads): workerd
            # fails at the end of migrate(), and this is the statement to blame
            state["culprit"] = (m, index, do.unfinishable[2])
    state.pop("chunk", None)


_LEADING_COMMENTS = re.compile(r"\ufeff?(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)


def _failure(
    do: DurableObjectStorage,
    exc: SqlError,
    state: dict[str, object],
    run: MigrationRun,
    rollback: str = ROLLBACK_MESSAGE,
) -> MigrationError:
    migration = state.get("migration")
    chunk = state.get("chunk")
    span = do.last_statement
    culprit = state.get("culprit")
    if isinstance(exc, DurableObjectInternalError) and isinstance(culprit, tuple):
        migration, chunk, span = culprit
    if not isinstance(migration, Migration):
        return MigrationError(
            f"drizzle's bookkeeping failed: {exc}",
            cause=exc,
            statement=None,
            tag=None,
            drizzle_message=rollback,
        )
    if not isinstance(chunk, int):
        return MigrationError(
            f"recording migration {migration.tag} in {LEDGER_TABLE} failed: {exc}",
            tag=migration.tag,
            cause=exc,
            statement=INSERT_SQL,
            path=migration.path,
            applied_before=list(run.applied),
            drizzle_message=rollback,
        )
    text = migration.chunks[chunk]
    start, end = span
    statement = text[start:end]
    # from its first word: a comment before it is neither its text nor its line
    lead = _LEADING_COMMENTS.match(statement).end()  # type: ignore[union-attr]
    statement = statement[lead:]
    line = migration.line_of(chunk, start + lead)
    internal = isinstance(exc, DurableObjectInternalError)
    why = exc.reason if isinstance(exc, DurableObjectInternalError) else str(exc)
    return MigrationError(
        f"migration {migration.tag} failed: {why}",
        tag=migration.tag,
        chunk=chunk,
        statement=statement.strip() or statement,
        cause=exc,
        path=migration.path,
        line=line,
        # workerd fails the whole request: drizzle never gets to report its Rollback
        drizzle_message=str(exc) if internal else rollback,
        applied_before=[t for t in run.applied if t != migration.tag],
    )


# ----------------------------------------------------------------------------- drizzle v1
#: drizzle-orm 1.0 (beta/rc) durable-sqlite ledger: ``id`` is a rowid alias, rows are named
LEDGER_DDL_V1 = (
    '\n\t\t\t\tCREATE TABLE IF NOT EXISTS "__drizzle_migrations" (\n'
    "\t\t\t\t\tid INTEGER PRIMARY KEY,\n"
    "\t\t\t\t\thash text NOT NULL,\n"
    "\t\t\t\t\tcreated_at numeric,\n"
    "\t\t\t\t\tname text,\n"
    "\t\t\t\t\tapplied_at TEXT\n"
    "\t\t\t\t)\n\t\t\t"
)
INSERT_SQL_V1 = (
    'INSERT INTO "__drizzle_migrations" ("hash", "created_at", "name", "applied_at") '
    "VALUES(?, ?, ?, ?)"
)


def _iso_now() -> str:
    import datetime as _dt

    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _migrate_v1(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun:
    """drizzle-orm 1.0's durable-sqlite migrator: name-based, no high-water mark.

    Every local migration whose name is not in the ledger runs, in the sorted order of
    ``migrations.js`` keys; a v0 ledger (no ``name`` column) is upgraded first by matching rows
    to folders by their ``when`` second (see .notes/drizzle-v1-migrator.md).
    """
    if bundle.drizzle_error:
        raise MigrationError(bundle.drizzle_error, drizzle_message=bundle.drizzle_error)
    run = MigrationRun()
    state: dict[str, object] = {}
    migrations = list(bundle.migrations)

    def body() -> None:
        exists = (
            do.sql.exec(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", LEDGER_TABLE
            )
            .raw()
            .to_array()
        )
        if not exists:
            do.sql.exec(LEDGER_DDL_V1)
        else:
            cols = [
                r[0]
                for r in do.sql.exec(f"SELECT name FROM pragma_table_info('{LEDGER_TABLE}')").raw()
            ]
            if "name" not in cols:
                _upgrade_v0_ledger(do, migrations)
        rows = (
            do.sql.exec('SELECT id, hash, created_at, name FROM "__drizzle_migrations"')
            .raw()
            .to_array()
        )
        applied = {r[3] for r in rows if r[3] is not None}
        for m in migrations:
            name = m.name or m.tag
            if name in applied:
                run.not_applied.append(m.tag)
                continue
            started = time.thread_time()
            _run_chunks(do, m, state)
            when: object = m.when if m.when_valid else None
            do.sql.exec(INSERT_SQL_V1, "", when, name, _iso_now())
            run.applied.append(m.tag)
            run.timings[m.tag] = time.thread_time() - started

    try:
        do.transaction_sync(body)
    except SqlError as exc:
        raise _failure(do, exc, state, run, ROLLBACK_MESSAGE_V1) from None
    except MigrationError:
        raise
    return run


def _v8_sort(items: list[Migration], compare: Callable[[Migration, Migration], int]) -> None:
    """``Array.prototype.sort`` as V8's TimSort does it for fewer than 64 items: the first run
    (a strictly descending one reversed), then binary insertion of the rest. Exact for any
    comparator, also one that answers "equal" for NaN keys where JS's ``a - b`` is NaN; for
    longer arrays V8 merges runs instead, which gives the same order unless the comparator is
    inconsistent (it is then approximate)."""
    n = len(items)
    if n < 2:
        return
    run = 2
    descending = compare(items[1], items[0]) < 0
    while run < n:
        order = compare(items[run], items[run - 1])
        if (order >= 0) if descending else (order < 0):
            break
        run += 1
    if descending:
        items[:run] = items[:run][::-1]
    for start in range(run, n):
        pivot = items[start]
        left, right = 0, start
        while left < right:
            mid = left + ((right - left) >> 1)
            if compare(pivot, items[mid]) < 0:
                right = mid
            else:
                left = mid + 1
        items[left + 1 : start + 1] = items[left:start]
        items[left] = pivot


def _upgrade_v0_ledger(do: DurableObjectStorage, migrations: list[Migration]) -> None:
    """drizzle 1.0's ``upToV1Sync``: name the rows of a 0.x ledger after local migrations."""
    from .bundle import js_locale_compare_key
    from .storage import js_string

    rows = (
        do.sql.exec('SELECT id, hash, created_at FROM "__drizzle_migrations" ORDER BY id ASC')
        .raw()
        .to_array()
    )

    def millis_of(m: Migration) -> float:
        return float(m.when) if m.when_valid else math.nan

    def order(a: Migration, b: Migration) -> int:
        # a.folderMillis !== b.folderMillis ? a.folderMillis - b.folderMillis
        #   : a.name.localeCompare(b.name); V8 takes a NaN answer as "equal"
        fa, fb = millis_of(a), millis_of(b)
        if fa != fb or math.isnan(fa):
            diff = fa - fb
            return 0 if math.isnan(diff) else (-1 if diff < 0 else 1)
        ka, kb = js_locale_compare_key(a.name or a.tag), js_locale_compare_key(b.name or b.tag)
        return (ka > kb) - (ka < kb)

    _v8_sort(migrations, order)
    by_hash: dict[str, Migration] = {}
    for m in migrations:
        by_hash[""] = m  # DO ledgers store hash "": the map keeps the last local migration
    updates: list[tuple[str, object, str]] = []
    unmatched: list[list[object]] = []
    for row in rows:
        text = js_string(row[2])
        millis = js_number(text[:-3] + "000")
        # a Map's get() finds NaN too: a row's NaN millis matches the folders without a time
        candidates = [
            m
            for m in migrations
            if (not m.when_valid if math.isnan(millis) else m.when_valid and m.when == millis)
        ]
        match: Migration | None = None
        how = "millis"
        if len(candidates) == 1:
            match = candidates[0]
        elif len(candidates) > 1:
            # drizzle compares the local migration's hash, which durable-sqlite leaves "":
            # rows in one second never match
            how = "hash"
        else:
            match = by_hash.get(str(row[1]))
            how = "hash"
        if match is None:
            unmatched.append(row)
            continue
        updates.append(
            (
                match.name or match.tag,
                row[0] if row[0] else (text if how == "millis" else row[1]),
                "id" if row[0] else ("created_at" if how == "millis" else "hash"),
            )
        )
    if unmatched:
        listed = ", ".join(
            f"[id: {js_string(r[0])}, created_at: {js_string(r[2])}]" for r in unmatched
        )
        raise SqlError(
            f"While upgrading your database migrations table we found {len(unmatched)} "
            f"({listed}) migrations in the database that do not match any local migration. "
            "This means that some migrations were applied to the database but are missing "
            "from the local environment"
        )

    def apply() -> None:
        do.sql.exec('ALTER TABLE "__drizzle_migrations" ADD COLUMN "name" text')
        do.sql.exec('ALTER TABLE "__drizzle_migrations" ADD COLUMN "applied_at" TEXT')
        for name, value, column in updates:
            do.sql.exec(
                f'UPDATE "__drizzle_migrations" SET "name" = ?, "applied_at" = NULL '
                f'WHERE "{column}" = ?',
                name,
                value,
            )

    do.transaction_sync(apply)
