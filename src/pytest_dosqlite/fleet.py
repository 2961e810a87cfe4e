"""Checks that a bundle is safe for a fleet of Durable Objects that upgrade lazily.

A DO migrates itself in its constructor the first time it is touched after a deploy, so at any
moment the fleet holds DOs at every version the bundle ever had, including versions that only
ever existed in git history. A bundle is safe to ship only if:

* every past version upgrades to head, applying every journal entry exactly once and ending with
  the same schema as a fresh DO (:func:`upgrade_from_every_version`; drizzle's high-water mark
  silently skips entries after a branch merge, and edited, deleted or squashed migrations are
  never seen or fail late on old DOs);
* starts that race on one database apply each migration once, and a start that throws leaves the
  database untouched so the next start can succeed (:func:`concurrent_starts`);
* a start killed at any statement leaves the database at the previous version, intact, and the
  next start completes (:func:`crash_recovery`).

The last two need real OS processes (file locks, SIGKILL); the child side lives in
:mod:`pytest_dosqlite._start`.

Options read from ``ctx.extra`` (all optional):

``fleet_start``
    ``"module:function"`` (or an importable function) run as the DO's start in every child:
    ``start(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun | None``. The default,
    :func:`drizzle_start`, is ``do.block_concurrency_while(lambda: migrate(do, bundle))``; a
    project with its own runner points this at it.
``git_history_limit``
    how many past commits of the bundle folder to check (default 50).
``fleet_workers``
    worker processes for crash recovery and large upgrade checks (default ``os.cpu_count()``,
    divided among pytest-xdist workers: :func:`default_workers`).
``fleet_timeout``
    seconds a child may take before the check gives up (default 120).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import json
import os
import pickle
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import apsw

from .bundle import Bundle, Migration, load_bundle
from .checks import CheckContext, migration_failure
from .errors import (
    CheckFailure,
    DosqliteError,
    DosqliteWarning,
    DurableObjectInternalError,
    MigrationError,
    SqlError,
)
from .forkserver import Child, spawn
from .images import reads_connection_state, sets_connection_state
from .migrator import LEDGER_TABLE, MigrationRun, migrate
from .sqltext import split
from .storage import DurableObjectStorage

__all__ = [
    "CrashPoint",
    "CrashResult",
    "DatabaseState",
    "PastState",
    "StartFn",
    "concurrent_starts",
    "crash_points",
    "crash_recovery",
    "database_state",
    "drizzle_start",
    "file_holds",
    "git_past_states",
    "inspect_file",
    "load_past_bundle",
    "resolve_start",
    "run_crash_points",
    "upgrade_from_every_version",
    "write_image",
]

StartFn = Callable[[DurableObjectStorage, Bundle], "MigrationRun | None"]

DEFAULT_GIT_HISTORY_LIMIT = 50
DEFAULT_TIMEOUT = 120.0
#: the statement injected into a copy of the last migration to make a start throw
INJECTED_TABLE = "__dosqlite_injected_failure"
INJECTED_STATEMENT = f'INSERT INTO "{INJECTED_TABLE}" VALUES (1);'
_MAX_SECTIONS = 12
_DIFF_LINES = 10


def drizzle_start(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun:
    """The start-up every drizzle DO runs: ``blockConcurrencyWhile(() => migrate(db, bundle))``."""
    return do.block_concurrency_while(lambda: migrate(do, bundle))


def drizzle_start_fk_off(do: DurableObjectStorage, bundle: Bundle) -> MigrationRun:
    """The documented workaround for table recreations: foreign keys off before migrate().

    ``ctx.storage.sql.exec("PRAGMA foreign_keys=OFF")`` first in blockConcurrencyWhile (no
    implicit transaction is open yet, so it takes effect), then ``migrate()``, then, after an
    ``await`` of a timer (the transaction has committed), ``PRAGMA foreign_keys=ON``.
    """

    def body() -> MigrationRun:
        do.sql.exec("PRAGMA foreign_keys=OFF")
        return migrate(do, bundle)

    run = do.block_concurrency_while(body)
    do.sql.exec("PRAGMA foreign_keys=ON")  # a new event: after the timer await
    return run


#: start functions known by name (``--dosqlite-start drizzle-fk-off``)
BUILTIN_STARTS: dict[str, StartFn] = {}


# ------------------------------------------------------------------------------ database state


@dataclass(frozen=True)
class DatabaseState:
    """What a DO's database holds, in comparable form: schema, ledger rows, data digests."""

    schema: tuple[tuple[Any, ...], ...]
    ledger: tuple[tuple[Any, ...], ...]
    #: (table, row count, sha256 of the sorted rows) for every ordinary table but the ledger
    data: tuple[tuple[str, int, str], ...] = ()

    def lines(self, *, data: bool = True, ledger: bool = True, exact: bool = False) -> list[str]:
        """One readable line per schema object, ledger row and (optionally) table.

        SQL is shown with whitespace collapsed, or as an exact ``repr`` with ``exact=True``.
        Compare states with :meth:`same_as`, not with these lines.
        """
        show = repr if exact else _collapse
        out = [f"{t} {name}: {show(sql)}" for t, name, _tbl, sql in self.schema]
        if ledger:
            out += [f"ledger row: created_at={row[3]!r} hash={row[2]!r}" for row in self.ledger]
        if data:
            out += [
                f"data {name}: {count} rows ({digest[:12]})" for name, count, digest in self.data
            ]
        return out

    def same_as(self, other: DatabaseState, *, data: bool = True, ledger: bool = True) -> bool:
        if self.schema != other.schema or (ledger and self.ledger != other.ledger):
            return False
        return not data or self.data == other.data

    def diff(self, other: DatabaseState, *, data: bool = True, ledger: bool = True) -> str:
        """A short diff (- self, + other) that shows even whitespace-only differences."""
        a = self.lines(data=data, ledger=ledger)
        b = other.lines(data=data, ledger=ledger)
        if a == b:
            a = self.lines(data=data, ledger=ledger, exact=True)
            b = other.lines(data=data, ledger=ledger, exact=True)
        return _diff(a, b)

    def created_at(self) -> Counter[Any]:
        return Counter(row[3] for row in self.ledger)


def _collapse(sql: object) -> str:
    return "(no sql)" if sql is None else " ".join(str(sql).split())


def _squash(sql: object, width: int = 140) -> str:
    if sql is None:
        return "(no sql)"
    text = " ".join(str(sql).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def database_state(
    source: bytes | str | os.PathLike[str] | DurableObjectStorage, *, data: bool = True
) -> DatabaseState:
    """The state of a database image, a database file, or a DO storage (read-only)."""
    if isinstance(source, DurableObjectStorage):
        if not data:  # through the DO's own connection: no copy, no second schema parse
            return _state_of(_DoReader(source), False)
        source = source.image()
    conn = apsw.Connection(":memory:")
    try:
        if isinstance(source, bytes):
            if len(source) > 20 and source[18:20] == b"\x02\x02":
                # a WAL-mode file's image: an in-memory copy must not look for a -wal file
                source = source[:18] + b"\x01\x01" + source[20:]
            if source:
                conn.deserialize("main", source)
        else:
            conn.close()
            conn = apsw.Connection(os.fspath(source))
            conn.set_busy_timeout(60_000)
        return _state_of(conn, data)
    finally:
        conn.close()


def inspect_file(path: str | os.PathLike[str]) -> tuple[str, DatabaseState]:
    """``PRAGMA quick_check`` ("ok" when intact) and the full state of a database file."""
    conn = apsw.Connection(os.fspath(path))
    try:
        conn.set_busy_timeout(60_000)
        check = "\n".join(str(r[0]) for r in conn.execute("PRAGMA quick_check"))
        return check, _state_of(conn, True)
    finally:
        conn.close()


class _DoReader:
    """``execute`` over a DO's ``sql.exec`` (reads of sqlite_master and the ledger only)."""

    def __init__(self, do: DurableObjectStorage) -> None:
        self._do = do

    def execute(self, sql: str) -> list[list[Any]]:
        rows: list[list[Any]] = self._do.sql.exec(sql).raw().to_array()
        return rows


def _state_of(conn: Any, data: bool) -> DatabaseState:
    schema = tuple(
        tuple(r)
        for r in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        )
    )
    names = {row[1] for row in schema if row[0] == "table"}
    ledger: tuple[tuple[Any, ...], ...] = ()
    if LEDGER_TABLE in names:
        ledger = tuple(
            tuple(r)
            for r in conn.execute(
                f"SELECT rowid, id, hash, created_at FROM {_quote(LEDGER_TABLE)} ORDER BY rowid"
            )
        )
    digests: list[tuple[str, int, str]] = []
    if data:
        for kind, name, _tbl, sql in schema:
            if kind != "table" or name == LEDGER_TABLE:
                continue
            if sql is not None and str(sql).upper().startswith("CREATE VIRTUAL"):
                continue  # its shadow tables hold the data
            rows = sorted(repr(tuple(r)) for r in conn.execute(f"SELECT * FROM {_quote(name)}"))
            h = hashlib.sha256("\n".join(rows).encode("utf-8", "surrogatepass")).hexdigest()
            digests.append((name, len(rows), h))
    return DatabaseState(schema, ledger, tuple(digests))


def _diff(expected: Sequence[str], got: Sequence[str], limit: int = _DIFF_LINES) -> str:
    lines = [
        line
        for line in difflib.unified_diff(list(expected), list(got), lineterm="", n=0)
        if not line.startswith(("---", "+++", "@@"))
    ]
    if len(lines) > limit:
        lines = [*lines[:limit], f"… {len(lines) - limit} more differing lines"]
    return "\n".join(lines) if lines else "(none)"


#: header bytes equal databases may differ in: the file format (WAL or rollback journal,
#: 18-19), the change counter (24-27) and the version-valid-for number (92-95)
HEADER_NOISE = ((18, 20), (24, 28), (92, 96))


def file_holds(path: str | os.PathLike[str], image: bytes) -> bool:
    """The database file ``path`` (its WAL empty or gone) holds ``image`` byte for byte, except
    the header fields that only say how and how often it was written (:data:`HEADER_NOISE`).

    Byte-equal databases are equal in every respect (schema, ledger, data, integrity), so this
    settles a comparison without reading the schema; a difference is explained by comparing
    :func:`database_state`.
    """
    wal = f"{os.fspath(path)}-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        return False
    if os.path.getsize(path) != len(image) or len(image) < 100:
        return False
    data = bytearray(Path(path).read_bytes())
    mask_header_noise(data, image)
    return data == image


def mask_header_noise(data: bytearray, reference: bytes) -> None:
    """Copy :data:`HEADER_NOISE` from ``reference`` into ``data`` (both start at page 1)."""
    for start, end in HEADER_NOISE:
        data[start:end] = reference[start:end]


def write_image(path: Path, image: bytes) -> None:
    """Make ``path`` a file-backed DO database holding ``image`` (WAL mode, as a DO file is)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
    path.write_bytes(image)
    DurableObjectStorage(path).close()  # switches the file to WAL mode


# ------------------------------------------------------------------------------ options


def default_workers() -> int:
    """Worker processes of a fleet check when ``fleet_workers`` is not set: the CPUs, shared
    with the other pytest-xdist workers (each runs its own checks at the same time)."""
    cpus = os.cpu_count() or 1
    try:
        sharing = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    except ValueError:
        sharing = 1
    return max(1, cpus // max(1, sharing))


def _limit(ctx: CheckContext, key: str, default: int) -> int:
    value = ctx.extra.get(key, default)
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


def _timeout(ctx: CheckContext) -> float:
    try:
        return float(ctx.extra.get("fleet_timeout", DEFAULT_TIMEOUT))
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT


def _start_spec(ctx: CheckContext) -> str | None:
    """``ctx.extra["fleet_start"]`` as ``"module:function"`` (None: drizzle_start), checked
    here: a name that does not import fails the check at once, instead of every child process
    failing or hanging until the timeout with a verdict on the migrations."""
    value = ctx.extra.get("fleet_start")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            fn = resolve_start(value)
        except Exception as exc:
            raise CheckFailure(
                f"cannot load the start function {value!r} (dosqlite_start / --dosqlite-start)",
                [
                    ("Error", f"{type(exc).__name__}: {exc}"),
                    (
                        "Expected",
                        'drizzle, drizzle-fk-off, or "package.module:function" importable '
                        "from the pytest process (its sys.path)",
                    ),
                ],
            ) from None
        if not callable(fn):
            raise CheckFailure(
                f"the start function {value!r} (dosqlite_start / --dosqlite-start) is not "
                f"callable: {type(fn).__name__}",
                [("Expected", "start(do, bundle) -> MigrationRun | None")],
            )
        return value
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise CheckFailure(
            "fleet_start must be importable by the child processes",
            [("Got", repr(value)), ("Expected", '"package.module:function"')],
        )
    return f"{module}:{qualname}"


def start_turns_foreign_keys_off(spec: str | None) -> bool:
    """Whether the DO start named ``spec`` migrates with foreign keys off.

    ``drizzle-fk-off`` does; ``drizzle`` (or None) does not; a ``module:function`` start is
    run once on a probe DO whose only migration drops a parent table with a cascading child
    row: the row survives only when foreign keys were off. A start that fails there counts as
    not turning them off."""
    if spec in (None, "drizzle"):
        return False
    if spec == "drizzle-fk-off":
        return True
    assert spec is not None
    known = _FK_PROBES.get(spec)
    if known is None:
        known = _FK_PROBES[spec] = _probe_foreign_keys(spec)
    return known


_FK_PROBES: dict[str, bool] = {}


def _probe_foreign_keys(spec: str) -> bool:
    from pathlib import Path

    from .bundle import Bundle, Migration

    probe = Bundle(
        root=Path("dosqlite-probe"),
        format="journal",
        migrations=(Migration(0, "0000_probe", 1, "m0000", "DROP TABLE `p`;"),),
    )
    do = DurableObjectStorage()
    try:
        do.sql.exec(
            "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (pid INTEGER REFERENCES "
            "p(id) ON DELETE CASCADE); INSERT INTO p VALUES (1); INSERT INTO c VALUES (1)"
        )
        resolve_start(spec)(do, probe)
        return bool(do.sql.exec("SELECT count(*) AS n FROM c").one()["n"] == 1)
    except Exception:  # the user's start: whatever it raises, it does not qualify
        return False
    finally:
        do.close()


def resolve_start(spec: str | None) -> StartFn:
    """The start function named by ``"module:function"`` (None: :func:`drizzle_start`)."""
    if spec is None:
        return drizzle_start
    if spec in BUILTIN_STARTS:
        return BUILTIN_STARTS[spec]
    from importlib import import_module

    module_name, _, attr = spec.partition(":")
    obj: Any = import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    fn: StartFn = obj
    return fn


def _head(ctx: CheckContext, what: str) -> bytes:
    head = ctx.images.head(ctx.bundle)
    if head.error is not None:
        raise migration_failure(
            head.error,
            f"cannot check {what}: a fresh Durable Object fails to migrate to head",
            fresh_do=True,
        )
    assert head.image is not None
    return head.image


def _label(bundle: Bundle, count: int) -> str:
    if count == 0:
        return "v0 (empty DO)"
    return f"v{count} (after {bundle.migrations[count - 1].tag})"


def _tags_for(bundle: Bundle, whens: Counter[Any]) -> list[str]:
    """Journal tags whose ``when`` is in ``whens`` (with multiplicity, last entries first)."""
    left = Counter(whens)
    found: list[str] = []
    for m in reversed(bundle.migrations):
        if left[m.when] > 0:
            left[m.when] -= 1
            found.append(m.tag)
    return list(reversed(found))


# ============================================================== 1. upgrade_from_every_version


@dataclass
class _Outcome:
    """What migrating one deployed DO with the current bundle did wrong (empty: nothing)."""

    error: MigrationError | None = None
    #: journal entries never applied (their ``when`` missing from the ledger)
    skipped: list[str] = field(default_factory=list)
    #: ``created_at`` values (as text) in the ledger that no current entry has
    unknown_rows: list[str] = field(default_factory=list)
    schema_diff: str = ""
    edited: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renumbered: list[str] = field(default_factory=list)
    high_water_mark: float | None = None

    @property
    def failed(self) -> bool:
        return bool(
            self.error
            or self.skipped
            or self.unknown_rows
            or self.schema_diff
            or self.edited
            or self.deleted
            or self.renumbered
        )

    def signature(self) -> tuple[Any, ...]:
        return (
            str(self.error.cause or self.error.message) if self.error else None,
            self.error.tag if self.error else None,
            tuple(self.skipped),
            tuple(self.unknown_rows),
            self.schema_diff,
            tuple(self.edited),
            tuple(self.deleted),
            tuple(self.renumbered),
        )

    def body(self) -> str:
        parts: list[str] = []
        if self.edited:
            parts.append(
                "edited after deployment (same tag, different SQL; deployed DOs never run the "
                "new text): " + ", ".join(self.edited)
            )
        if self.renumbered:
            parts.append(
                "`when` changed after deployment (the ledger keeps the old value): "
                + ", ".join(self.renumbered)
            )
        if self.deleted:
            parts.append("deleted after deployment: " + ", ".join(self.deleted))
        if self.error is not None:
            err = self.error
            where = err.tag or "bookkeeping"
            if err.chunk is not None:
                where += f" (chunk {err.chunk})"
            parts.append(f"migrate() fails in {where}: {err.cause or err.message}")
            if err.statement:
                parts.append("statement: " + _squash(err.statement, 200))
        if self.skipped:
            hwm = "" if self.high_water_mark is None else f" {self.high_water_mark:.0f}"
            parts.append(
                "never applied (`when` not greater than the high-water mark"
                + hwm
                + ", silently skipped): "
                + ", ".join(self.skipped)
            )
        if self.unknown_rows:
            parts.append(
                "ledger rows no journal entry accounts for (created_at): "
                + ", ".join(str(v) for v in self.unknown_rows)
            )
        if self.schema_diff:
            parts.append("schema vs a fresh DO at head (- fresh, + upgraded):\n" + self.schema_diff)
        return "\n".join(parts)


def _upgrade(
    image: bytes, bundle: Bundle, head: DatabaseState, start: StartFn = drizzle_start
) -> _Outcome:
    """Start a DO deployed at ``image`` with ``bundle``; what went wrong compared with head."""
    whens = Counter(m.when for m in bundle.migrations)
    outcome = _Outcome()
    do = DurableObjectStorage(image=image)
    try:
        try:
            run = start(do, bundle)
            outcome.high_water_mark = run.high_water_mark if run is not None else None
        except MigrationError as exc:
            outcome.error = exc
            return outcome
        state = database_state(do, data=False)
    finally:
        do.close()
    got = state.created_at()
    outcome.skipped = _tags_for(bundle, whens - got)
    outcome.unknown_rows = sorted(str(v) for v in (got - whens).elements())
    if not head.same_as(state, data=False, ledger=False):
        outcome.schema_diff = head.diff(state, data=False, ledger=False)
    return outcome


def outcome_fields(outcome: _Outcome) -> dict[str, Any]:
    """An outcome as JSON-able fields (for the worker processes)."""
    return {
        "error": error_fields(outcome.error) if outcome.error is not None else None,
        "skipped": outcome.skipped,
        "unknown_rows": outcome.unknown_rows,
        "schema_diff": outcome.schema_diff,
        "high_water_mark": outcome.high_water_mark,
    }


def _outcome_from(fields: dict[str, Any]) -> _Outcome:
    error = fields.get("error")
    return _Outcome(
        error=_error_from({"error": error}) if error else None,
        skipped=list(fields.get("skipped") or []),
        unknown_rows=list(fields.get("unknown_rows") or []),
        schema_diff=str(fields.get("schema_diff") or ""),
        high_water_mark=fields.get("high_water_mark"),
    )


#: above this many statement executions, upgrades run in parallel worker processes
PARALLEL_UPGRADE_STATEMENTS = 3000


def _statements(m: Migration) -> int:
    return sum(1 for chunk in m.chunks for piece in split(chunk) if piece.has_statement)


#: skip the upgrades that provably repeat the next version's (see :func:`_upgrade_chain`)
UPGRADE_CHAIN = True


def _upgrade_chain(ctx: CheckContext, versions: list[int]) -> set[int]:
    """Versions ``k`` whose upgrade to head is, statement for statement, version ``k+1``'s.

    A DO at version ``k`` upgrades by running migration ``k+1`` first: on the same database, in
    the same fresh connection and transaction as the image of version ``k+1`` was built (when
    that image was built incrementally, ``VersionImage.incremental``). After it, the upgrade
    goes on exactly like version ``k+1``'s if nothing but the database carries over:

    * the same later entries are pending: drizzle reads the high-water mark once, ``H_k`` for
      version ``k`` and ``when[k+1]`` for ``k+1``, so no later ``when`` may lie between them;
    * migration ``k+1`` sets no connection state (a PRAGMA other than ``foreign_keys``, which
      is a no-op in the transaction), and no migration reads it (``changes()``,
      ``last_insert_rowid()``, ``total_changes()``);
    * pending deferred foreign-key violations: none, the image's commit succeeded;
    * the start is drizzle's own ``migrate()`` (a custom start may do anything).

    Then version ``k`` ends where version ``k+1`` ends, failing in the same statement with the
    same error; only the high-water mark and ``applied_before`` differ (see
    :func:`_chained_outcome`). Only the versions not in this set are migrated.
    """
    bundle = ctx.bundle
    chained: set[int] = set()
    if not UPGRADE_CHAIN or bundle.format == "v1":
        return chained
    if resolve_start(_start_spec(ctx)) is not drizzle_start:
        return chained
    migrations = bundle.migrations
    if any(reads_connection_state(m) for m in migrations):
        return chained
    whens = [m.when for m in migrations]
    n = len(whens)
    suffix_min = [0] * (n + 1)
    for i in range(n - 1, -1, -1):  # suffix_min[i] = min(whens[i:])
        suffix_min[i] = whens[i] if i == n - 1 else min(whens[i], suffix_min[i + 1])
    available = set(versions)
    high = whens[0] if whens else 0
    for k in range(1, n):
        hwm, nxt = high, whens[k]  # H_k = max(whens[:k]); migration k+1 has when whens[k]
        high = max(high, nxt)
        if k not in available or k + 1 not in available or nxt <= hwm:
            continue
        later_in_between = (
            k + 1 < n and suffix_min[k + 1] <= nxt and any(hwm < w <= nxt for w in whens[k + 1 :])
        )
        if later_in_between:
            continue
        if sets_connection_state(migrations[k]):
            continue
        if ctx.images.incremental(bundle, k + 1):
            chained.add(k)
    return chained


def _chained_outcome(following: _Outcome, bundle: Bundle, k: int) -> _Outcome:
    """Version ``k``'s outcome from version ``k+1``'s (``k`` in :func:`_upgrade_chain`)."""
    out = dataclasses.replace(
        following, skipped=list(following.skipped), unknown_rows=list(following.unknown_rows)
    )
    if following.error is not None:
        out.error = dataclasses.replace(
            following.error,
            applied_before=[bundle.migrations[k].tag, *following.error.applied_before],
        )
    else:
        out.high_water_mark = float(max(m.when for m in bundle.migrations[:k]))
    return out


def _version_outcomes(ctx: CheckContext, versions: list[int]) -> dict[int, _Outcome]:
    """Outcome of upgrading a fresh DO at each of ``versions`` to head."""
    chained = _upgrade_chain(ctx, versions)
    outcomes = _run_upgrades(ctx, [k for k in versions if k not in chained])
    for k in sorted(chained, reverse=True):
        outcomes[k] = _chained_outcome(outcomes[k + 1], ctx.bundle, k)
    return outcomes


def _run_upgrades(ctx: CheckContext, versions: list[int]) -> dict[int, _Outcome]:
    """Upgrade a fresh DO at each of ``versions`` to head (in worker processes when large)."""
    bundle = ctx.bundle
    start = _start_spec(ctx)
    if not versions:
        return {}
    sizes = [_statements(m) for m in bundle.migrations]
    work = sum(sum(sizes[k:]) for k in versions)
    workers = min(_limit(ctx, "fleet_workers", default_workers()), len(versions))
    head_image = ctx.images.head(bundle).image
    assert head_image is not None
    if workers < 2 or work < PARALLEL_UPGRADE_STATEMENTS:
        head = database_state(head_image, data=False)
        run_start = resolve_start(start)
        outcomes: dict[int, _Outcome] = {}
        for k in versions:
            image = ctx.images.version(bundle, k).image
            assert image is not None
            outcomes[k] = _upgrade(image, bundle, head, run_start)
        return outcomes
    with tempfile.TemporaryDirectory(prefix="dosqlite-upgrade-", dir=_fast_tmp()) as tmp_name:
        tmp = Path(tmp_name)
        images = _write_images(ctx, tmp, [*versions, len(bundle.migrations)])
        spec = _write_spec(tmp / "spec.pkl", bundle=bundle, start=start, images=images)
        # the longest upgrades first, so no worker is left with one at the end
        order = sorted(versions)
        jobs = [{"op": "upgrade", "units": [{"count": k}]} for k in order]
        results = [job[0] for job in _run_pool(spec, tmp, jobs, workers, _timeout(ctx))]
    outcomes = {}
    for k, result in zip(order, results, strict=True):
        if result.get("status") != "ok":
            detail = str(result.get("detail", "worker failed"))
            raise CheckFailure("upgrade check could not run", [(_label(bundle, k), detail)])
        outcomes[k] = _outcome_from(result["outcome"])
    return outcomes


def _write_images(ctx: CheckContext, tmp: Path, versions: Iterable[int]) -> dict[str, Any]:
    """The images of ``versions`` for the worker processes: one file of distinct pages and,
    per version, its page ids (``_start._Worker.image`` joins them). Versions share most pages:
    1000 versions of 2 MB images are 20 MB of pages."""
    ids: dict[int, int] = {}  # id(page) -> page id; the cache keeps the pages alive
    spans: list[tuple[int, int]] = []
    index: dict[int, list[int]] = {}
    path = tmp / "pages.bin"
    offset = 0
    with path.open("wb") as fh:
        for k in sorted(set(versions)):
            pages = ctx.images.pages(ctx.bundle, k)
            if pages is None:
                continue
            refs: list[int] = []
            for page in pages:
                pid = ids.get(id(page))
                if pid is None:
                    pid = ids[id(page)] = len(spans)
                    spans.append((offset, len(page)))
                    fh.write(page)
                    offset += len(page)
                refs.append(pid)
            index[k] = refs
    return {"file": str(path), "spans": spans, "versions": index}


def upgrade_from_every_version(ctx: CheckContext) -> None:
    """Every version a deployed DO can be at upgrades to head, exactly like a fresh DO.

    For each prefix ``0..k`` of the journal (a DO deployed when the bundle had ``k+1``
    migrations) the DO is migrated with the full bundle: it must not fail, every journal entry
    must be in ``__drizzle_migrations`` afterwards (the multiset of ``created_at`` equals the
    multiset of journal ``when`` values: an entry with an older or equal ``when`` than one already
    applied is skipped silently and forever), and ``sqlite_master`` must equal a fresh DO's.

    Starting from fresh images suffices for DOs that reached version ``k`` through earlier
    upgrades: their high-water mark can only be lower than a fresh version-``k`` DO's, so any
    entry they skip, the fresh one skips too.

    Only the versions where the chain of images breaks are migrated: a version whose next
    migration was built on top of it, with no PRAGMA and no ``when`` in between, upgrades
    statement for statement like the next version (see :func:`_upgrade_chain`), so a clean
    bundle costs one upgrade, not one per version.

    When ``ctx.settings.git_history`` is on and the bundle folder is in a git repository, every
    past committed state of the folder (newest ``git_history_limit`` commits) is treated as a
    deployed version too; that is what catches edited, deleted and squashed migrations.
    """
    bundle = ctx.bundle
    head_image = _head(ctx, "upgrades")
    head = database_state(head_image, data=False)
    n = len(bundle.migrations)

    groups: list[tuple[list[str], _Outcome]] = []
    by_sig: dict[tuple[Any, ...], int] = {}

    def record(label: str, outcome: _Outcome) -> None:
        sig = outcome.signature()
        if sig in by_sig:
            groups[by_sig[sig]][0].append(label)
        else:
            by_sig[sig] = len(groups)
            groups.append(([label], outcome))

    # no DO can be at a version that fails to build (upgrade_from_empty reports that)
    versions = [k for k in range(1, n + 1) if ctx.images.reaches(bundle, k)]
    for k, outcome in sorted(_version_outcomes(ctx, versions).items()):
        if outcome.failed:
            record(_label(bundle, k), outcome)

    history_notes: list[str] = []
    from_history = False
    if ctx.settings.git_history:
        limit = _limit(ctx, "git_history_limit", DEFAULT_GIT_HISTORY_LIMIT)
        for label, outcome in _history_outcomes(ctx, head, limit, history_notes):
            from_history = True
            record(label, outcome)
        if git_is_shallow(bundle.root):
            warnings.warn(
                DosqliteWarning(
                    f"{bundle.root} is in a shallow git clone: versions deployed before its "
                    "first commit (edited, deleted or renumbered migrations) are not checked. "
                    "Fetch the history in CI (actions/checkout with `fetch-depth: 0`)"
                ),
                stacklevel=1,
            )

    if not groups:
        return
    sections: list[tuple[str, str]] = []
    for labels, outcome in groups[:_MAX_SECTIONS]:
        title = "Deployed at " + _join_labels(labels)
        sections.append((title, outcome.body()))
    if len(groups) > _MAX_SECTIONS:
        rest = sum(len(labels) for labels, _ in groups[_MAX_SECTIONS:])
        sections.append(("More", f"{rest} more deployed versions fail in other ways"))
    sections.extend(_history_notes_section(history_notes))
    sections.append(("How to fix", _upgrade_fix([o for _, o in groups], bundle)))
    if from_history:
        sections.append(
            (
                "If a commit never deployed",
                "every commit of the branch's first-parent history that changed the bundle "
                "counts as a version some DO may run. If one never reached production (a "
                "branch's own commit, pushed but not deployed), lower dosqlite_git_history_limit "
                "below it, or turn the walk off with --dosqlite-no-git (dosqlite_git_history = "
                "false)",
            )
        )
    failing = sum(len(labels) for labels, _ in groups)
    raise CheckFailure(
        f"{failing} deployed version(s) of {bundle.name} do not upgrade to head like a fresh DO",
        sections,
    )


def _history_notes_section(notes: list[str]) -> list[tuple[str, str]]:
    return [("Git history", "\n".join(notes))] if notes else []


def _join_labels(labels: list[str]) -> str:
    if len(labels) <= 3:
        return ", ".join(labels)
    return f"{labels[0]}, {labels[1]} … {labels[-1]} ({len(labels)} versions)"


def _upgrade_fix(outcomes: list[_Outcome], bundle: Bundle) -> str:
    hints: list[str] = []
    if any(o.skipped for o in outcomes):
        newest = max((m.when for m in bundle.migrations), default=0)
        hints.append(
            "drizzle applies an entry only if its `when` is strictly greater than the newest "
            "`created_at` already in __drizzle_migrations, and it reads that once per start. "
            "Keep `when` strictly increasing in journal order: move a merged entry to the end "
            f"of meta/_journal.json and give it a `when` greater than every deployed entry's "
            f"(> {newest}, e.g. Date.now()). DOs created since the merge already ran it, so "
            "make its statements safe to run twice (IF NOT EXISTS) or split it into a new "
            "migration."
        )
    if any(o.edited or o.renumbered for o in outcomes):
        hints.append(
            "Never edit a migration after it was deployed: the ledger stores only `created_at` "
            '(hash is ""), so deployed DOs never run the new text and the fleet ends up with '
            "two schemas. Revert the edit and put the change in a new migration "
            "(`drizzle-kit generate`, or `--custom` for hand-written SQL)."
        )
    if any(o.deleted for o in outcomes):
        hints.append(
            "Never delete a deployed migration: restore it, and undo its effect with a new "
            "migration if needed."
        )
    if any(o.error for o in outcomes):
        hints.append(
            "A regenerated or squashed chain re-creates tables deployed DOs already have "
            "(`table ... already exists`). Restore the deployed migrations and add new ones on "
            "top; only squash once no DO can still be at an older version."
        )
    if any(o.schema_diff for o in outcomes) and not hints:
        hints.append(
            "Upgraded DOs end with a different schema than fresh ones: make every change in "
            "a new migration that runs the same way on both."
        )
    return "\n".join(f"- {h}" for h in hints)


# ------------------------------------------------------------------------------ git history


@dataclass(frozen=True)
class PastState:
    """The bundle folder as one commit had it."""

    commit: str
    subject: str
    date: str
    files: dict[str, bytes]

    @property
    def label(self) -> str:
        return f"commit {self.commit[:10]} ({self.date}, {self.subject[:60]})"


def _git(args: list[str], cwd: Path, data: bytes | None = None) -> bytes | None:
    git = shutil.which("git")
    if git is None:
        return None
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0")
    try:
        proc = subprocess.run(
            [git, *args], cwd=cwd, input=data, capture_output=True, env=env, timeout=120
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _is_snapshot(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name == "snapshot.json" or name.endswith("_snapshot.json")


def git_past_states(folder: Path, limit: int = DEFAULT_GIT_HISTORY_LIMIT) -> list[PastState]:
    """Committed states of ``folder`` (newest first, at most ``limit`` commits, deduplicated).

    The first-parent history only: the commits of the branch checked out and the merges into
    it, not the commits inside a merged feature branch. Those never deployed, and a migration
    regenerated on merge (drizzle-kit's advice for a journal conflict) made every later run of
    main fail on them, "deleted after deployment". Reads with ``git log``/``ls-tree``/
    ``cat-file`` only: the work tree and index are never touched. Snapshot JSON files are left
    out (the migrator never reads them). Returns ``[]`` when ``folder`` is not in a git
    repository or git is unavailable.
    """
    folder = folder.resolve()
    top_out = _git(["rev-parse", "--show-toplevel"], folder)
    if not top_out:
        return []
    top = Path(top_out.decode().strip()).resolve()
    try:
        rel = folder.relative_to(top).as_posix()
    except ValueError:
        return []
    rel = rel if rel not in ("", ".") else "."
    log = _git(["log", "--first-parent", f"-n{limit}", "--format=%H%x00%cs%x00%s", "--", rel], top)
    if not log:
        return []
    states: list[PastState] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    prefix = "" if rel == "." else rel + "/"
    for line in log.decode("utf-8", "replace").splitlines():
        commit, _, rest = line.partition("\x00")
        date, _, subject = rest.partition("\x00")
        tree = _git(["ls-tree", "-r", "-z", commit, "--", rel], top)
        if tree is None:
            continue
        blobs: list[tuple[str, str]] = []
        for entry in tree.decode("utf-8", "replace").split("\x00"):
            if not entry:
                continue
            meta, _, path = entry.partition("\t")
            parts = meta.split()
            if len(parts) != 3 or parts[1] != "blob" or not path.startswith(prefix):
                continue
            inner = path[len(prefix) :]
            if _is_snapshot(inner):
                continue
            blobs.append((inner, parts[2]))
        key = tuple(sorted(blobs))
        if not blobs or key in seen:
            continue
        seen.add(key)
        contents = _cat_blobs([sha for _, sha in blobs], top)
        if contents is None:
            continue
        files = {inner: contents[sha] for inner, sha in blobs if sha in contents}
        states.append(PastState(commit, subject, date, files))
    return states


def git_is_shallow(folder: Path) -> bool:
    """``folder`` is in a shallow clone (``actions/checkout`` fetches one commit by default):
    the deployed versions before its first commit cannot be checked."""
    out = _git(["rev-parse", "--is-shallow-repository"], folder.resolve())
    return out is not None and out.strip() == b"true"


def _cat_blobs(shas: list[str], top: Path) -> dict[str, bytes] | None:
    out = _git(["cat-file", "--batch"], top, data="".join(f"{s}\n" for s in shas).encode())
    if out is None:
        return None
    result: dict[str, bytes] = {}
    pos = 0
    while pos < len(out):
        nl = out.index(b"\n", pos)
        header = out[pos:nl].split()
        pos = nl + 1
        if len(header) < 3:  # "<sha> missing"
            continue
        size = int(header[2])
        result[header[0].decode()] = out[pos : pos + size]
        pos += size + 1
    return result


def load_past_bundle(state: PastState, workdir: Path) -> Bundle:
    """Write a past state to ``workdir`` and load it with the ordinary loader."""
    for rel, data in state.files.items():
        target = workdir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return load_bundle(workdir)


def _is_prefix_state(state: PastState, bundle: Bundle) -> bool:
    """Cheap test, without loading: the past journal and SQL are the current bundle's first k.

    Only a fast path: anything it does not recognize is loaded and compared in full.
    """
    raw = state.files.get("meta/_journal.json")
    if raw is None or bundle.format == "v1":
        return False
    try:
        entries = json.loads(raw.decode("utf-8"))["entries"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return False
    if not isinstance(entries, list) or len(entries) > len(bundle.migrations):
        return False
    for entry, m in zip(entries, bundle.migrations, strict=False):
        if not isinstance(entry, dict):
            return False
        if (entry.get("idx"), entry.get("tag"), entry.get("when")) != (m.idx, m.tag, m.when):
            return False
        text = state.files.get(f"{m.tag}.sql")
        if text is None or m.path is None or m.path.name != f"{m.tag}.sql":
            return False
        try:
            if text.decode("utf-8") != m.sql:
                return False
        except UnicodeDecodeError:
            return False
    return True


def _same(a: Migration, b: Migration) -> bool:
    return (a.idx, a.tag, a.when, a.key, a.sql) == (b.idx, b.tag, b.when, b.key, b.sql)


def _normalized(sql: str) -> str:
    return " ".join(sql.split())


def _history_outcomes(
    ctx: CheckContext, head: DatabaseState, limit: int, notes: list[str]
) -> Iterator[tuple[str, _Outcome]]:
    bundle = ctx.bundle
    run_start = resolve_start(_start_spec(ctx))
    states = git_past_states(bundle.root, limit)
    if not states:
        return
    current = {m.tag: m for m in bundle.migrations}
    same_as_renamed = {(m.when, _normalized(m.sql)) for m in bundle.migrations}
    with tempfile.TemporaryDirectory(prefix="dosqlite-history-") as tmp:
        for i, state in enumerate(states):
            if _is_prefix_state(state, bundle):
                continue  # checked above as a version of the current bundle
            workdir = Path(tmp) / str(i)
            try:
                past = load_past_bundle(state, workdir)
            except (DosqliteError, OSError, ValueError) as exc:
                notes.append(f"{state.label}: not checked, the bundle does not load ({exc})")
                continue
            if past.format == "v1" or not past.migrations:
                continue
            common = 0
            for a, b in zip(past.migrations, bundle.migrations, strict=False):
                if not _same(a, b):
                    break
                common += 1
            if common == len(past.migrations):
                continue  # a prefix of the current bundle: checked above as v<common>
            image = _past_head(ctx, past, common)
            if image is None:
                notes.append(
                    f"{state.label}: not checked, a fresh DO fails to migrate that state, so no "
                    "DO can be at it"
                )
                continue
            outcome = _upgrade(image, bundle, head, run_start)
            for m in past.migrations:
                cur = current.get(m.tag)
                if cur is None and (m.when, _normalized(m.sql)) in same_as_renamed:
                    continue  # renamed only: the ledger keeps `when`, so a DO sees no change
                if cur is None:
                    outcome.deleted.append(m.tag)
                elif cur.when != m.when:
                    outcome.renumbered.append(f"{m.tag} ({m.when} -> {cur.when})")
                elif _normalized(cur.sql) != _normalized(m.sql):
                    outcome.edited.append(m.tag)
            if outcome.failed:
                yield f"{state.label}, head {past.migrations[-1].tag}", outcome


def _past_head(ctx: CheckContext, past: Bundle, common: int) -> bytes | None:
    """Image of a DO deployed at a past state: built on the shared prefix when possible."""
    base = ctx.images.version(ctx.bundle, common) if common else None
    if base is not None and base.image is not None and base.error is None:
        do = DurableObjectStorage(image=base.image)
        try:
            run = migrate(do, past)
            if run.applied == [m.tag for m in past.migrations[common:]]:
                return do.image()
        except MigrationError:
            pass
        finally:
            do.close()
    # built privately: caching every version of every past state would hold n images each
    do = DurableObjectStorage()
    try:
        migrate(do, past)
        return do.image()
    except MigrationError:
        return None
    finally:
        do.close()


# ============================================================== child processes (shared)


def _child_env() -> dict[str, str]:
    """The environment of a child: the parent's import path, so hooks and src layouts work."""
    env = dict(os.environ)
    paths = [p if p else os.getcwd() for p in sys.path]
    unique = [p for p in dict.fromkeys(paths) if os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(unique)
    return env


def _spawn_child(args: list[str], stderr: IO[bytes]) -> Child:
    """``python -m pytest_dosqlite._start *args``, forked by :mod:`.forkserver` where it can."""
    return spawn("pytest_dosqlite._start", args, env=_child_env(), stderr=stderr)


def _write_spec(path: Path, **spec: Any) -> Path:
    with path.open("wb") as fh:
        pickle.dump(spec, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


class _Launcher:
    """A ``_start race`` process: several starts, their events, the barrier commands."""

    def __init__(self, args: list[str], stderr: IO[bytes]) -> None:
        self.proc = _spawn_child(args, stderr)
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            with self._cond:
                self.events.append(msg)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait(self, event: str, children: Iterable[int], deadline: float) -> dict[int, Any]:
        """For each child: its ``event`` message, or its ``done`` if it finished first."""
        wanted = set(children)
        with self._cond:
            while True:
                found: dict[int, Any] = {}
                for msg in self.events:
                    child = msg.get("child")
                    if child in wanted and msg.get("event") in (event, "done"):
                        found.setdefault(child, msg)
                if len(found) == len(wanted):
                    return found
                if self._eof:
                    raise ChildProcessError(
                        f"starts {sorted(wanted - set(found))} exited before {event!r}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"starts {sorted(wanted - set(found))} never sent {event!r}")
                self._cond.wait(left)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # the reader ends at the end of the child's output, which its exit closes
        self._reader.join(timeout=5)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()


def error_fields(exc: BaseException) -> dict[str, Any]:
    """An error as JSON-able fields; :func:`_error_from` turns them back into a MigrationError."""
    if isinstance(exc, MigrationError):
        return {
            "message": exc.message,
            "tag": exc.tag,
            "chunk": exc.chunk,
            "statement": exc.statement,
            "cause": str(exc.cause) if exc.cause is not None else None,
            "internal": (
                [exc.cause.reason, exc.cause.kind]
                if isinstance(exc.cause, DurableObjectInternalError)
                else None
            ),
            "path": str(exc.path) if exc.path is not None else None,
            "line": exc.line,
            "applied_before": list(exc.applied_before),
            "drizzle_message": exc.drizzle_message,
        }
    return {"message": f"{type(exc).__name__}: {exc}", "cause": str(exc)}


def _error_from(msg: dict[str, Any]) -> MigrationError:
    err = msg.get("error") or {}
    cause = err.get("cause")
    internal = err.get("internal")
    real: SqlError | None = SqlError(str(cause)) if cause else None
    if cause and internal:
        real = DurableObjectInternalError(str(cause), reason=internal[0], kind=internal[1])
    return MigrationError(
        message=str(err.get("message", "start failed")),
        tag=err.get("tag"),
        chunk=err.get("chunk"),
        statement=err.get("statement"),
        cause=real,
        path=err.get("path"),
        line=err.get("line"),
        applied_before=list(err.get("applied_before") or []),
        drizzle_message=str(err.get("drizzle_message") or "DrizzleError: Rollback"),
    )


# ============================================================== 2. concurrent_starts


@dataclass
class _Race:
    results: list[dict[str, Any]]
    state: DatabaseState


def concurrent_starts(ctx: CheckContext) -> None:
    """Starts that race on one DO database apply each migration exactly once.

    Runs ``ctx.settings.concurrency`` OS processes that open the same file-backed DO and run the
    start-up migration (``blockConcurrencyWhile(() => migrate(...))``, or ``fleet_start``) at the
    same moment (they wait on a barrier first). The two races below run at the same time, each
    on its own file, and the restart loop runs in this process meanwhile. Then:

    1. *Simultaneous starts on a fresh DO*: no start fails, each migration is applied by exactly
       one process, the ledger has one row per migration, and the schema equals a single start's.
    2. *Starts racing a running migration*: one start pauses inside its transaction after its
       first migration; the others start meanwhile, and it goes on once each of them waits for
       the write lock (SQLite's busy handler tells); all must finish as above, the paused one
       having applied everything and the others nothing.
    3. *The restart loop*: from the version before head, a start whose last migration throws (a
       failing statement injected into a copy of it) must leave the database exactly as it was
       (schema, ledger and data), and the next start, with the real bundle, must succeed.

    What this proves about a DO: SQLite's file write lock stands in for the DO's single-writer
    guarantee (a DO id has one live instance, and ``blockConcurrencyWhile`` holds every request
    until the constructor's migration settles). Under it, a start reads the high-water mark
    inside its own transaction, so one that runs after another sees its work and applies
    nothing; a failed start leaves nothing behind; and the next instance, constructed on the next
    request, starts from a clean slate. What it cannot prove: workerd's scheduling itself (input
    and output gates, eviction), migrations triggered outside the constructor with ``await``
    between reading and writing (unless ``fleet_start`` models that code), or the durability of
    Cloudflare's storage layer.
    """
    bundle = ctx.bundle
    n = len(bundle.migrations)
    if n == 0:
        return
    head_result = ctx.images.head(bundle)
    # a Worker that does not build runs no DO: there is no start to race
    if head_result.error is not None and head_result.error.build_failure:
        raise migration_failure(
            head_result.error, "cannot race starts: the Worker does not build", fresh_do=True
        )
    head = database_state(head_result.image, data=False) if head_result.image else None
    from .options import MAX_CONCURRENCY

    concurrency = min(MAX_CONCURRENCY, max(2, int(ctx.settings.concurrency)))
    deadline = time.monotonic() + _timeout(ctx)
    start = _start_spec(ctx)
    sections: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="dosqlite-race-", dir=_fast_tmp()) as tmp_name:
        tmp = Path(tmp_name)
        spec = _write_spec(tmp / "spec.pkl", bundle=bundle, start=start)
        stderr_path = tmp / "stderr.txt"
        with stderr_path.open("wb") as stderr:
            launchers: list[_Launcher] = []
            try:
                # the two races run at the same time, on their own files (each is a whole
                # migration from an empty DO), and the restart loop runs here meanwhile
                simultaneous = _launch(tmp / "race.db", spec, concurrency, False, stderr)
                launchers.append(simultaneous)
                held = _launch(tmp / "held.db", spec, concurrency, True, stderr)
                launchers.append(held)
                _release(simultaneous, concurrency, False, deadline)
                _release(held, concurrency, True, deadline)
                restart: list[tuple[str, str]] = []
                if head_result.image is not None:
                    restart = _restart_loop(ctx, tmp, start)
                race = _finish(simultaneous, tmp / "race.db", concurrency, deadline)
                failed = [r for r in race.results if not r.get("ok")]
                if failed and len(failed) == len(race.results):
                    exc = _error_from(failed[0])
                    failure = migration_failure(
                        exc,
                        f"every one of {len(failed)} concurrent starts of {bundle.name} fails: "
                        "the DO is stuck in a restart loop",
                    )
                    failure.sections.insert(
                        0,
                        (
                            "Restart loop",
                            "blockConcurrencyWhile throws the error to every waiting request; "
                            "the next request constructs a new instance, which runs the same "
                            "migration and fails again, until a fixed bundle is deployed.",
                        ),
                    )
                    fresh = head_result.error
                    # the same failure as a single fresh DO's: upgrade_from_empty reports it
                    same = fresh is not None and (fresh.tag, fresh.statement) == (
                        exc.tag,
                        exc.statement,
                    )
                    raise CheckFailure(
                        failure.summary,
                        failure.sections,
                        reported_by="upgrade_from_empty" if same else None,
                    )
                sections += _judge_race(
                    "Simultaneous starts on a fresh DO", race, bundle, head, holder=None
                )
                race = _finish(held, tmp / "held.db", concurrency, deadline)
                sections += _judge_race(
                    "Starts racing a migration in progress", race, bundle, head, holder=0
                )
                sections += restart
            except (TimeoutError, ChildProcessError) as exc:
                stderr.flush()
                sections.append(
                    (
                        "Child processes",
                        f"a start did not finish ({exc}); stderr:\n"
                        + stderr_path.read_text("utf-8", "replace")[-2000:],
                    )
                )
            finally:
                for launcher in launchers:
                    launcher.close()
    if sections:
        sections.append(
            (
                "How to fix",
                "Run the whole migration in the constructor's blockConcurrencyWhile, with "
                "drizzle's migrate() (one transactionSync), before anything else touches "
                "storage; never read the ledger in one event and apply in another (an `await` "
                "in between lets a second start apply the same migration).",
            )
        )
        raise CheckFailure(f"concurrent starts of {bundle.name} are not safe", sections)


def _launch(db: Path, spec: Path, count: int, hold: bool, stderr: IO[bytes]) -> _Launcher:
    if not db.exists():
        DurableObjectStorage(db).close()  # a fresh, empty DO file in WAL mode
    args = ["race", str(spec), str(db), str(count), *(["--hold"] if hold else [])]
    return _Launcher(args, stderr)


def _race(launcher: _Launcher, db: Path, count: int, hold: bool, deadline: float) -> _Race:
    try:
        _release(launcher, count, hold, deadline)
    except BaseException:
        launcher.close()
        raise
    return _finish(launcher, db, count, deadline)


#: seconds the holder of a race waits for a start that does not report waiting for the lock
_LOCK_GRACE = 0.1


def _release(launcher: _Launcher, count: int, hold: bool, deadline: float) -> None:
    """Release the starts of a race (all at once, or the holder first: see ``_start``)."""
    launcher.wait("ready", range(count), deadline)
    if hold:
        launcher.send("go")
        launcher.wait("holding", [0], deadline)
        launcher.send("go-others")
        launcher.wait("started", range(1, count), deadline)
        # the holder keeps the write lock until the others wait for it: each says so the
        # first time it does (a start that never writes meanwhile gets a grace period)
        with contextlib.suppress(TimeoutError):
            grace = min(deadline, time.monotonic() + _LOCK_GRACE)
            launcher.wait("blocked", range(1, count), grace)
        launcher.send("continue")
    else:
        launcher.send("go")  # the barrier: every start is polling for it


def _finish(launcher: _Launcher, db: Path, count: int, deadline: float) -> _Race:
    """Wait for every start of a released race; what each did and what the database holds."""
    everyone = range(count)
    try:
        done = launcher.wait("done", everyone, deadline)
    finally:
        launcher.close()
    state = database_state(db, data=False)
    return _Race([done[i] for i in everyone], state)


def _judge_race(
    title: str, race: _Race, bundle: Bundle, head: DatabaseState | None, holder: int | None
) -> list[tuple[str, str]]:
    problems: list[str] = []
    tags = [m.tag for m in bundle.migrations]
    whens = Counter(m.when for m in bundle.migrations)
    failed = [(i, r) for i, r in enumerate(race.results) if not r.get("ok")]
    for i, r in failed:
        problems.append(f"start #{i} failed: {_error_from(r).cause or _error_from(r).message}")
    applied: Counter[str] = Counter()
    known = all(r.get("applied") is not None for r in race.results if r.get("ok"))
    for r in race.results:
        applied.update(r.get("applied") or [])
    if known:
        # a tag the journal repeats (bundle_integrity reports it) is applied once per entry
        expected = Counter(tags)
        twice = sorted(t for t, c in applied.items() if c > expected[t])
        never = [t for t in expected if applied[t] < expected[t]]
        if twice:
            problems.append("applied by more than one start: " + ", ".join(twice))
        if never and not failed:
            problems.append("applied by no start: " + ", ".join(never))
        if holder is not None and race.results[holder].get("ok"):
            got = race.results[holder].get("applied") or []
            if got != tags:
                problems.append(
                    "the start that was already migrating applied "
                    + (", ".join(got) or "nothing")
                    + " instead of every migration"
                )
    rows = race.state.created_at()
    extra = rows - whens
    if extra:
        problems.append(
            "ledger rows beyond one per migration (created_at): "
            + ", ".join(str(v) for v in sorted(extra.elements(), key=repr))
        )
    missing = whens - rows
    if missing and not failed:
        problems.append("ledger rows missing for: " + ", ".join(_tags_for(bundle, missing)))
    if head is not None and not head.same_as(race.state, data=False, ledger=False):
        problems.append(
            "schema differs from a single start's (- single, + raced):\n"
            + head.diff(race.state, data=False, ledger=False)
        )
    if not problems:
        return []
    return [(title, "\n".join(problems))]


def _break_last(bundle: Bundle) -> Bundle:
    """A copy of ``bundle`` whose last migration ends with a statement that fails."""
    last = bundle.migrations[-1]
    sql = last.sql.rstrip("\n") + "\n--> statement-breakpoint\n" + INJECTED_STATEMENT + "\n"
    broken = dataclasses.replace(last, sql=sql)
    return dataclasses.replace(bundle, migrations=(*bundle.migrations[:-1], broken))


def _restart_loop(ctx: CheckContext, tmp: Path, start: str | None) -> list[tuple[str, str]]:
    """A start that throws changes nothing; the next start, with the fixed bundle, succeeds.

    Runs in this process: what matters is the database file between two instances, and the
    emulator resets the instance on a failed blockConcurrencyWhile exactly as workerd does.
    """
    bundle = ctx.bundle
    n = len(bundle.migrations)
    # the version before head, unless the high-water mark skips the last entry from there
    # (upgrade_from_every_version reports that); then a fresh DO, where every entry runs
    last = bundle.migrations[-1]
    earlier = [m.when for m in bundle.migrations[:-1]]
    from_version = n - 1 if not earlier or max(earlier) < last.when else 0
    before_version = ctx.images.version(bundle, from_version)
    if before_version.image is None:
        return []
    db = tmp / "restart.db"
    write_image(db, before_version.image)
    run_start = resolve_start(start)
    problems: list[str] = []
    do = DurableObjectStorage(db)
    try:
        run_start(do, _break_last(bundle))
        problems.append(
            "the start did not fail although its last migration throws "
            f"({INJECTED_STATEMENT}): the error was swallowed and the DO would serve requests "
            "on a half-migrated database"
        )
    except Exception:
        pass  # expected: the start throws, blockConcurrencyWhile resets the instance
    finally:
        do.close()
    # byte for byte the image it was written from: unchanged (else compare, to explain)
    if not file_holds(db, before_version.image):
        before = database_state(before_version.image)
        after = database_state(db)
        if not after.same_as(before):
            problems.append(
                "the failed start changed the database (- before, + after):\n" + before.diff(after)
            )
    do = DurableObjectStorage(db)
    completed = False
    try:
        run_start(do, bundle)
        completed = True
    except Exception as exc:
        problems.append(f"the next start, with the fixed bundle, fails: {exc}")
    finally:
        do.close()  # the last connection: the WAL goes into the main file
    head = ctx.images.head(bundle)
    if completed and head.image is not None and not file_holds(db, head.image):
        final = database_state(db, data=False)
        want = database_state(head.image, data=False)
        if not final.same_as(want, data=False):
            problems.append(
                "after the next start the database differs from a fresh DO at head:\n"
                + want.diff(final, data=False)
            )
    if not problems:
        return []
    return [
        (
            f"Restart loop (start from {_label(bundle, from_version)}, last migration made to "
            "throw)",
            "\n".join(problems),
        )
    ]


# ============================================================== 3. crash_recovery


@dataclass(frozen=True)
class CrashPoint:
    """Where a start migrating from ``count - 1`` to ``count`` is killed.

    ``chunk``/``statement`` index the statement the process dies just before; both None means
    right after the migration is recorded in the ledger, before the transaction commits.
    """

    count: int
    tag: str
    chunk: int | None = None
    statement: int | None = None
    #: text of the statement (for reports)
    text: str = ""

    @property
    def label(self) -> str:
        if self.chunk is None:
            return f"{self.tag}: after the ledger INSERT, before commit"
        return f"{self.tag}: before chunk {self.chunk} statement {self.statement}"

    def job(self) -> dict[str, Any]:
        return {"count": self.count, "chunk": self.chunk, "statement": self.statement}


def crash_points(bundle: Bundle) -> list[CrashPoint]:
    """Every statement of every migration, plus the moment after each ledger INSERT."""
    points: list[CrashPoint] = []
    for k, m in enumerate(bundle.migrations, 1):
        for c, chunk in enumerate(m.chunks):
            for s, piece in enumerate(split(chunk)):
                if piece.has_statement:
                    points.append(CrashPoint(k, m.tag, c, s, piece.text.strip()))
        points.append(CrashPoint(k, m.tag))
    return points


@dataclass(frozen=True)
class CrashResult:
    """What a crash at one point left behind.

    ``status``: ``ok``; ``unreached`` (the start never ran that statement from the previous
    version: the high-water mark skipped the migration); ``error`` (the start failed before the
    kill); ``corrupt`` (quick_check); ``partial`` (not at the previous version);
    ``restart-failed`` / ``restart-differs`` (the next start).
    """

    point: CrashPoint
    status: str
    detail: str = ""


def run_crash_points(ctx: CheckContext) -> list[CrashResult]:
    """Crash a start at every point of :func:`crash_points` and judge what it left."""
    bundle = ctx.bundle
    if not bundle.migrations:
        return []
    _head(ctx, "crash recovery")
    points = crash_points(bundle)
    by_count: dict[int, list[int]] = {}
    for i, p in enumerate(points):
        by_count.setdefault(p.count, []).append(i)
    counts = sorted(by_count)
    workers = _limit(ctx, "fleet_workers", default_workers())  # _run_pool: at most one a job
    start = _start_spec(ctx)
    units = [{"count": k, "points": [points[i].job() for i in by_count[k]]} for k in counts]
    # the last chains first: their databases are the largest, so they take the longest
    chains = _chains(units, workers)[::-1]
    jobs = [{"op": "crash", "units": chain} for chain in chains]
    with tempfile.TemporaryDirectory(prefix="dosqlite-crash-", dir=_fast_tmp()) as tmp_name:
        tmp = Path(tmp_name)
        images = _write_images(ctx, tmp, range(len(bundle.migrations) + 1))
        spec = _write_spec(tmp / "spec.pkl", bundle=bundle, start=start, images=images)
        done = _run_pool(spec, tmp, jobs, workers, _timeout(ctx))
        unit_results = [r for job in done[::-1] for r in job]
    results: list[dict[str, Any]] = [{} for _ in points]
    for k, unit_result in zip(counts, unit_results, strict=True):
        per_point = unit_result.get("points") if unit_result.get("status") == "ok" else None
        for j, i in enumerate(by_count[k]):
            results[i] = per_point[j] if per_point is not None else dict(unit_result)
    out: list[CrashResult] = []
    for point, r in zip(points, results, strict=True):
        status, detail = str(r.get("status")), str(r.get("detail", ""))
        if status == "unreached" and not _skipped_from_previous(bundle, point.count):
            status = "error"
            detail = (
                "the start finished without executing this statement, although the migration "
                "is not skipped from the previous version; crash points are found by the chunk "
                "text the start passes to sql.exec, so a start that rewrites it cannot be "
                "crash-tested"
            )
        out.append(CrashResult(point, status, detail))
    return out


#: crash chains per worker process: enough to even out uneven migrations, few enough that the
#: fresh image each chain starts from stays negligible
CHAINS_PER_WORKER = 4
#: migrations of a chain at least (a small bundle is one chain: a worker starts in ~0.2 s)
MIN_CHAIN = 16


def _chains(units: list[dict[str, Any]], workers: int) -> list[list[dict[str, Any]]]:
    """Consecutive migrations cut into chains of about equal work: ``CHAINS_PER_WORKER`` per
    worker at most, and ``MIN_CHAIN`` migrations per chain at least.

    A migration's work: its crash points, plus the restart and the open, each of which reads
    or rewrites a schema that grows with the version (measured: three times the cost at a
    thousand tables)."""
    if not units:
        return []
    weights = [(len(u["points"]) + 2) * (1 + int(u["count"]) / 500) for u in units]
    parts = max(1, min(-(-len(units) // MIN_CHAIN), workers * CHAINS_PER_WORKER))
    share = sum(weights) / parts
    chains: list[list[dict[str, Any]]] = [[]]
    done = 0.0
    for unit, weight in zip(units, weights, strict=True):
        if chains[-1] and done >= share * len(chains):
            chains.append([])
        chains[-1].append(unit)
        done += weight
    return chains


def _skipped_from_previous(bundle: Bundle, count: int) -> bool:
    """drizzle's high-water mark skips migration ``count`` on a DO at version ``count - 1``."""
    earlier = [m.when for m in bundle.migrations[: count - 1]]
    return bool(earlier) and max(earlier) >= bundle.migrations[count - 1].when


def crash_recovery(ctx: CheckContext) -> None:
    """A start killed (SIGKILL) at any statement leaves the previous version; the next succeeds.

    For every statement of every migration, a process migrating a file-backed DO from the
    previous version is stopped just before executing it (and once more right after the ledger
    INSERT, before commit), and the database files are taken as a kill there leaves them. Then
    the database must hold exactly the previous version (schema, ledger and data) and be intact
    (byte for byte the previous version's image, or else ``PRAGMA quick_check`` ok), and the
    next start must migrate it to the same state as a fresh DO at that version (from there,
    upgrade_from_every_version covers the way to head).

    Cost is linear in the number of statements (see ``_start._Worker.crash``): worker
    processes run chains of consecutive migrations on one database file each. A migration runs
    once, with copies of the files taken at each of its points; a copy whose main file is
    untouched and whose WAL holds no commit frame is exactly the previous version (no SQLite
    open needed), any other copy is inspected in full. The next start runs once per
    migration, on the files the last point left; when it leaves the fresh image of the version
    byte for byte, the chain goes on from there with the next migration.

    On a DO this stands for an instance dying mid-migration (exceeded CPU or memory, eviction,
    a host restart): drizzle's run is one transaction, so nothing of it may survive. It cannot
    prove the durability of Cloudflare's storage layer or a crash inside the commit itself.
    """
    bundle = ctx.bundle
    results = run_crash_points(ctx)
    bad = [r for r in results if r.status not in ("ok", "unreached")]
    if not bad:
        return
    sections: list[tuple[str, str]] = []
    for result in bad[:_MAX_SECTIONS]:
        point = result.point
        body = result.detail or result.status
        if point.text:
            body = "statement: " + _squash(point.text, 200) + "\n" + body
        sections.append((f"Killed at {point.label}", body))
    if len(bad) > _MAX_SECTIONS:
        sections.append(("More", f"{len(bad) - _MAX_SECTIONS} more crash points fail"))
    sections.append(
        (
            "How to fix",
            "Run every migration of a start inside one transaction (drizzle's migrate() in "
            "blockConcurrencyWhile does); a runner that commits per statement or per migration "
            "leaves half-migrated DOs behind when an instance dies.",
        )
    )
    raise CheckFailure(
        f"{len(bad)} of {len(results)} crash points leave {bundle.name} in a bad state", sections
    )


def _fast_tmp() -> str | None:
    """A RAM-backed temporary directory when there is one (no fsync cost), else the default."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return str(shm)
    return None


def _run_pool(
    spec: Path, tmp: Path, jobs: list[dict[str, Any]], workers: int, timeout: float
) -> list[list[dict[str, Any]]]:
    """Feed ``jobs`` to ``workers`` ``_start serve`` processes; per job, one result per unit.

    A worker answers each unit of a job (``job["units"]``) with one line, in order. A unit that
    takes longer than ``timeout`` seconds gets its worker killed and is reported; the job's
    later units go back to the queue as a job of their own.
    """
    pending: queue.Queue[tuple[int, int]] = queue.Queue()  # (job, first unit to run)
    for i in range(len(jobs)):
        pending.put((i, 0))
    results: list[list[dict[str, Any] | None]] = [[None] * len(job["units"]) for job in jobs]

    def drive(w: int) -> None:
        stderr_path = tmp / f"worker{w}.err"
        with stderr_path.open("ab") as stderr:
            proc = _spawn_child(["serve", str(spec)], stderr)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            while True:
                try:
                    i, first = pending.get_nowait()
                except queue.Empty:
                    return
                units = jobs[i]["units"]
                job = dict(jobs[i], units=units[first:], id=i, db=str(tmp / f"w{w}.db"))
                job["timeout"] = timeout
                try:
                    proc.stdin.write(json.dumps(job).encode() + b"\n")
                    proc.stdin.flush()
                except OSError:
                    pass
                for u in range(first, len(units)):
                    watchdog = threading.Timer(timeout, proc.kill)
                    watchdog.start()
                    try:
                        line = proc.stdout.readline()
                    except OSError:
                        line = b""
                    finally:
                        watchdog.cancel()
                    if not line:
                        proc.wait()
                        text = stderr_path.read_text("utf-8", "replace")[-2000:]
                        why = (
                            "timed out" if proc.returncode in (-9, 9) else f"exit {proc.returncode}"
                        )
                        results[i][u] = {
                            "status": "error",
                            "detail": f"worker {why}: {text}".strip(),
                        }
                        if u + 1 < len(units):
                            pending.put((i, u + 1))
                        return
                    results[i][u] = json.loads(line)
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()

    # a worker that dies (timeout) takes only its own unit with it; the others go on, and a
    # new round starts workers for what is left: every round consumes at least one unit
    while not pending.empty():
        count = min(workers, pending.qsize())
        threads = [threading.Thread(target=drive, args=(w,), daemon=True) for w in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    missing = {"status": "error", "detail": "not run"}
    return [[r if r is not None else dict(missing) for r in job] for job in results]


BUILTIN_STARTS.update({"drizzle": drizzle_start, "drizzle-fk-off": drizzle_start_fk_off})
