"""Where Durable Objects run under test: the Python emulator, or real workerd.

Why: the emulator is fast and explains failures (statement, line, real SQLite error), but it is
an imitation; ``--dosqlite-backend=workerd`` runs the same fixtures and checks on the runtime
production uses. Both hand out a *DO handle* with the same user-facing surface:

* emulator: :class:`~pytest_dosqlite.storage.DurableObjectStorage`, a private copy of a cached
  database image (unchanged, fast);
* workerd: :class:`RemoteDurableObject`, one uniquely named DO of ONE workerd process per pytest
  session (per xdist worker), started lazily by :class:`WorkerdRuntime`.

``RemoteDurableObject.sql.exec`` is one HTTP request, that is one DO event, like a standalone
``exec`` on the emulator; errors come back as :class:`~pytest_dosqlite.errors.SqlError` with
workerd's message verbatim. Python callbacks cannot cross into the Worker, so
``transaction_sync(fn)``, ``block_concurrency_while(fn)`` and ``event()`` raise
:class:`WorkerdUnsupported` naming the statement-list forms (:meth:`RemoteDurableObject.batch`,
:meth:`RemoteDurableObject.transaction`) that do run inside one event / one ``transactionSync``;
the emulator's DOs have both too, so a test written with them runs on either backend.
``WorkerdUnsupported`` is no ``RuntimeError``: a test's ``pytest.raises(RuntimeError)`` around a
callback must not take it for the callback's own error.

``pytest_dosqlite.migrate(remote_do, bundle)`` runs drizzle-orm's real ``migrate()`` inside the
DO. When it rejects (drizzle only says ``DrizzleError: Rollback``), the same history is replayed
on the emulator to name the migration, statement and SQLite error; the message says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import (
    DosqliteError,
    DurableObjectInternalError,
    DurableObjectResetError,
    MigrationError,
    SqlError,
)
from .migrator import INSERT_SQL, LAST_APPLIED_SQL, LEDGER_DDL, MigrationRun, js_number
from .runtime import INTERNAL_ERROR_PREFIX
from .storage import statement_of

if TYPE_CHECKING:
    from .bundle import Bundle
    from .checks import CheckContext
    from .images import ImageCache, VersionImage
    from .storage import Cursor, DurableObjectStorage
    from .workerd import Installation, WorkerdBackend

__all__ = [
    "BACKENDS",
    "EmulatorBackend",
    "RemoteDurableObject",
    "RemoteMigrationRun",
    "RemoteSqlStorage",
    "WorkerdImages",
    "WorkerdRuntime",
    "harness_bundle",
    "sql_error",
    "upgrade_from_every_version_workerd",
]

#: the values ``--dosqlite-backend`` accepts
BACKENDS = ("emulator", "workerd")

_WORKERD_MESSAGE = re.compile(
    r"^(?P<msg>.*?)(?: at offset (?P<off>\d+))?: (?P<code>SQLITE_[A-Z_]+)"
    r"(?: \(extended: (?P<ext>SQLITE_[A-Z_]+)\))?$",
    re.DOTALL,
)


def sql_error(message: str) -> SqlError:
    """A :class:`SqlError` (or :class:`DurableObjectResetError`) for a workerd message.

    The SQLite parts of ``<errmsg>[ at offset N]: <CODE>[ (extended: <EXT>)]`` are parsed into
    the error's fields, so code that inspects ``code`` or ``offset`` works on both backends.
    """
    from .runtime import RESET_MESSAGE_PREFIX

    if message.startswith(INTERNAL_ERROR_PREFIX):
        return DurableObjectInternalError(message)
    cls = DurableObjectResetError if message.startswith(RESET_MESSAGE_PREFIX) else SqlError
    m = _WORKERD_MESSAGE.match(message)
    if m is None or message.startswith(RESET_MESSAGE_PREFIX):
        return cls(message)
    return cls(
        message,
        code=m.group("code"),
        extended=m.group("ext"),
        offset=int(m.group("off")) if m.group("off") is not None else None,
        sqlite_message=m.group("msg"),
    )


# ============================================================================ emulator


class EmulatorBackend:
    """The default backend: emulated DOs, copies of cached images (see :mod:`.images`)."""

    name = "emulator"

    def __init__(self, images: ImageCache | None = None) -> None:
        if images is None:
            from .images import default_cache

            images = default_cache()
        self.images = images

    def empty(self, label: str = "") -> DurableObjectStorage:
        """A fresh, empty DO."""
        from .storage import DurableObjectStorage

        return DurableObjectStorage()

    def fresh(self, bundle: Bundle, count: int | None = None, label: str = "") -> Any:
        """A fresh DO migrated with the first ``count`` migrations (default all)."""
        return self.images.fresh(bundle, count)

    def describe(self) -> str:
        from .storage import sqlite_version

        return f"emulator (SQLite {sqlite_version()})"

    def close(self) -> None:
        """Nothing to stop."""


# ============================================================================ workerd


def harness_bundle(bundle: Bundle) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``{journal, migrations}`` object drizzle's durable-sqlite ``migrate()`` receives.

    The journal lists the bundle's entries (``idx``, ``when``, ``tag``, ``breakpoints``: all
    drizzle reads); ``migrations`` maps each key (``m0000``) to its SQL text, without the keys
    ``migrations.js`` does not have, so drizzle throws ``Missing migration: <tag>`` itself.
    """
    if bundle.format == "v1":
        raise WorkerdUnsupported(
            f"{bundle.root} is a drizzle-kit v1 bundle; the workerd harness pins drizzle-orm "
            "0.45.4, whose durable-sqlite migrator reads journal bundles only"
        )
    entries = [
        {
            "idx": m.idx,
            "version": m.version or "6",
            "when": m.when,
            "tag": m.tag,
            "breakpoints": m.breakpoints,
        }
        for m in bundle.migrations
    ]
    journal = {
        "version": bundle.journal_version or "7",
        "dialect": bundle.journal_dialect or "sqlite",
        "entries": entries,
    }
    migrations = {m.key: m.sql for m in bundle.migrations if m.error is None}
    return journal, migrations


class WorkerdUnsupported(DosqliteError):
    """Something the workerd backend cannot do (a Python callback, a drizzle v1 bundle, ...)."""


@dataclass
class RemoteMigrationRun(MigrationRun):
    """A :class:`MigrationRun` of drizzle's real ``migrate()`` inside workerd."""

    #: milliseconds the whole ``migrate()`` call took inside the DO
    ms: float | None = None
    #: the harness's step log of the request
    results: list[Any] = field(default_factory=list)


def _as_cursor(result: Mapping[str, Any]) -> Cursor:
    from .storage import Cursor

    rows = [tuple(r) for r in (result.get("rows") or [])]
    return Cursor(
        list(result.get("columnNames") or []),
        rows,
        int(result.get("rowsRead") or 0),
        int(result.get("rowsWritten") or 0),
    )


def _raise_fatal(answer: Mapping[str, Any]) -> None:
    if answer.get("fatal"):
        raise sql_error(str(answer.get("error")))


def _encode(value: Any) -> Any:
    """A Python binding as the JS value the emulator binds for it (``to_js_binding``): the
    same rule on both backends, so that a test binds the same value on either."""
    from .storage import js_string
    from .workerd.codec import BigInt, JsObject

    if value is None or isinstance(value, str | bool | float | bytes | bytearray | memoryview):
        return value
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:  # no JS number holds it: workerd refuses the BigInt, as the
            return BigInt(value)  # emulator does
        return value
    if isinstance(value, dict):
        return JsObject({})  # binds as '[object Object]' whatever it holds
    if isinstance(value, list | tuple):
        return js_string(value)  # JS arrays bind as their String()
    if type(value).__module__ == "pytest_dosqlite.workerd.codec":
        return value
    return str(value)


class RemoteSqlStorage:
    """``ctx.storage.sql`` of a :class:`RemoteDurableObject`."""

    def __init__(self, do: RemoteDurableObject) -> None:
        self._do = do

    def exec(self, query: str, *bindings: object) -> Cursor:
        """One ``sql.exec(query, ...bindings)`` in its own request (its own event).

        Returns a drained cursor with ``to_array()``, ``raw().to_array()``, ``one()`` and
        ``column_names``; raises :class:`SqlError` with workerd's message verbatim.
        """
        do = self._do
        if not isinstance(query, str):
            raise SqlError(f"sql.exec() expects a string, got {type(query).__name__}")
        values = [_encode(b) for b in bindings]
        do._history.append(("exec", query, tuple(bindings)))
        result = do.runtime.server.exec(do.name, query, *values)
        _raise_fatal(result)
        if not result.get("ok"):
            raise sql_error(str(result.get("error")))
        return _as_cursor(result)

    @property
    def database_size(self) -> int:
        """``sql.databaseSize``."""
        return self._do.runtime.server.size(self._do.name)


class RemoteDurableObject:
    """A SQLite-backed DO inside the session's workerd, addressed by a unique name.

    Same surface as the emulator's ``DurableObjectStorage`` where a request can express it:
    ``sql.exec``, ``sql.database_size``, ``close()`` (a no-op: the DO lives until the session
    ends), plus :meth:`batch` (several statements in one event), :meth:`transaction`
    (statements inside one ``transactionSync``) and :meth:`dump`.
    """

    is_remote = True

    def __init__(self, runtime: WorkerdRuntime, name: str) -> None:
        self.runtime = runtime
        #: the ``idFromName`` name of this DO in the session's workerd
        self.name = name
        self.sql = RemoteSqlStorage(self)
        #: what was done to this DO, replayed on the emulator to explain a failed migrate()
        self._history: list[tuple[Any, ...]] = []

    def __repr__(self) -> str:
        return f"RemoteDurableObject({self.name!r})"

    # -- statement lists: one request each --------------------------------------------------
    def batch(self, statements: Sequence[Any]) -> list[Cursor | SqlError]:
        """Several ``sql.exec`` calls in ONE event; each result or error, in order.

        A statement is SQL text or ``(sql, bindings)``. Errors do not stop the batch (as with
        a ``try``/``catch`` around each ``exec`` in one handler); the event commits at the end.
        """
        items = [statement_of(s) for s in statements]
        self._history.append(("batch", items))
        answer = self.runtime.server.batch(
            self.name, [(sql, [_encode(b) for b in bindings]) for sql, bindings in items]
        )
        _raise_fatal(answer)
        return [
            _as_cursor(r) if r.get("ok") else sql_error(str(r.get("error")))
            for r in answer["results"]
        ]

    def transaction(self, statements: Sequence[Any]) -> list[Cursor]:
        """``ctx.storage.transactionSync(() => { for (s of statements) sql.exec(s) })``.

        The first error escapes the callback: everything the transaction wrote is rolled back
        and the error is raised as :class:`SqlError`.
        """
        items = [statement_of(s) for s in statements]
        self._history.append(("txn", items))
        answer = self.runtime.server.txn(
            self.name,
            [(sql, [_encode(b) for b in bindings]) for sql, bindings in items],
            catch_errors=False,
        )
        _raise_fatal(answer)
        entry = answer["results"][0]
        steps = entry.get("steps") or []
        if not entry.get("ok"):
            raise sql_error(str(entry.get("error")))
        return [_as_cursor(r) for r in steps]

    def dump(self) -> dict[str, Any]:
        """``{"schema": [{type, name, tbl_name, sql}], "journal": [...] | None}`` (one request)."""
        answer = self.runtime.server.dump(self.name)
        _raise_fatal(answer)
        return answer

    # -- what cannot cross into the Worker ---------------------------------------------------
    def transaction_sync(self, fn: Callable[[], Any]) -> Any:
        raise WorkerdUnsupported(
            "transaction_sync(fn) cannot run on the workerd backend: a Python callback cannot "
            "run inside the Worker. Pass the statements instead: "
            "do.transaction(['INSERT ...', ('UPDATE ... WHERE id = ?', [1])])"
        )

    def block_concurrency_while(self, fn: Callable[[], Any]) -> Any:
        raise WorkerdUnsupported(
            "block_concurrency_while(fn) cannot run on the workerd backend: a Python callback "
            "cannot run inside the Worker. pytest_dosqlite.migrate(do, bundle) runs drizzle's "
            "real migrate() in the DO; the do_contract check cold-starts your own DO class"
        )

    @contextlib.contextmanager
    def event(self) -> Iterator[RemoteDurableObject]:
        raise WorkerdUnsupported(
            "event() cannot group Python calls into one workerd event (each exec is its own "
            "request). Send the statements together with do.batch([...]) instead"
        )
        yield self  # pragma: no cover - unreachable, keeps this a generator

    def _no_kv(self, what: str) -> WorkerdUnsupported:
        return WorkerdUnsupported(
            f"{what} is not available on the workerd backend: its harness reaches a DO's SQL "
            "only (sql.exec, batch, transaction, migrate). Keep such a test on the emulator"
        )

    def put(self, key: str, value: object) -> None:
        raise self._no_kv("ctx.storage.put")

    def get(self, key: str) -> object:
        raise self._no_kv("ctx.storage.get")

    def set_alarm(self, scheduled_ms: float) -> None:
        raise self._no_kv("ctx.storage.setAlarm")

    def end_turn(self) -> None:
        raise self._no_kv("ending an event-loop turn")

    def image(self) -> bytes:
        raise WorkerdUnsupported(
            "a DO inside workerd has no in-memory image; use do.dump() or read its persisted "
            "file (WorkerdBackend(persist_dir=...).sqlite_path(name)) after the runtime stops"
        )

    def restart(self) -> None:
        raise WorkerdUnsupported(
            "restarting one DO is not possible on the shared workerd runtime of the session"
        )

    def close(self) -> None:
        """Nothing to release: the DO lives until the runtime stops."""

    # -- migrate() -----------------------------------------------------------------------------
    def dosqlite_migrate(self, bundle: Bundle) -> RemoteMigrationRun:
        """What ``pytest_dosqlite.migrate(self, bundle)`` does: drizzle's real migrate()."""
        return self.runtime.migrate(self, bundle)

    def emulate(self) -> DurableObjectStorage:
        """An emulator DO with this DO's history replayed (to explain a failure)."""
        from .storage import DurableObjectStorage

        do: DurableObjectStorage | None = None
        for entry in self._history:
            kind = entry[0]
            if kind == "fresh":
                _, bundle, count = entry
                if do is not None:
                    do.close()
                try:
                    do = self.runtime.emulator_images.fresh(bundle, count)
                except MigrationError:
                    do = DurableObjectStorage()
                continue
            if do is None:
                do = DurableObjectStorage()
            with contextlib.suppress(DosqliteError):
                if kind == "exec":
                    do.sql.exec(entry[1], *entry[2])
                elif kind == "batch":
                    with do.event():
                        for sql, bindings in entry[1]:
                            with contextlib.suppress(SqlError):
                                do.sql.exec(sql, *bindings)
                elif kind == "txn":
                    do.transaction_sync(functools.partial(_run_all, do, entry[1]))
                elif kind == "migrate":
                    _emulated_start(entry[2])(do, entry[1])
        return do if do is not None else DurableObjectStorage()


def _emulated_start(start: str | None) -> Callable[[DurableObjectStorage, Bundle], Any]:
    """The emulator's version of a start the real runtime ran (see WORKERD_STARTS)."""
    if start == "drizzle-fk-off":
        from .fleet import drizzle_start_fk_off

        return drizzle_start_fk_off
    from .migrator import migrate

    return migrate


def _run_all(do: DurableObjectStorage, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    for sql, bindings in statements:
        do.sql.exec(sql, *bindings)


@dataclass
class _Start:
    """How a DO runs drizzle's migrate() at start-up (``--dosqlite-start``)."""

    before: list[dict[str, Any]] = field(default_factory=list)
    after: list[dict[str, Any]] = field(default_factory=list)
    await_before_after: bool = False


#: the ``--dosqlite-start`` values the real runtime can run (Python functions cannot)
WORKERD_STARTS: dict[str | None, _Start] = {
    None: _Start(),
    "drizzle": _Start(),
    "drizzle-fk-off": _Start(
        before=[{"op": "exec", "sql": "PRAGMA foreign_keys=OFF"}],
        after=[{"op": "exec", "sql": "PRAGMA foreign_keys=ON"}],
        await_before_after=True,
    ),
}


class WorkerdRuntime:
    """The session's workerd: started on first use, stopped by :meth:`stop` (idempotent).

    ``progress`` receives human-readable lines (install and start-up); the plugin prints them
    to the terminal past pytest's capture. ``prefix`` makes DO names unique per session.
    """

    name = "workerd"

    def __init__(
        self,
        *,
        progress: Callable[[str], None] | None = None,
        prefix: str = "dosqlite",
        emulator_images: ImageCache | None = None,
        server: WorkerdBackend | None = None,
    ) -> None:
        self._progress = progress
        self._prefix = f"{prefix}-{time.time_ns():x}"
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._server: WorkerdBackend | None = server
        self._failure: BaseException | None = None
        self._emulator_images = emulator_images
        self.installation: Installation | None = None
        #: seconds from the first use to a ready runtime (install check + node + workerd)
        self.startup_seconds: float | None = None
        #: DOs handed out (each one a distinct idFromName)
        self.do_count = 0
        #: real migrate() calls and the milliseconds each took inside the DO
        self.migrate_ms: list[float] = []

    @property
    def emulator_images(self) -> ImageCache:
        if self._emulator_images is None:
            from .images import default_cache

            self._emulator_images = default_cache()
        return self._emulator_images

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._server is not None and self._server.running

    @property
    def server(self) -> WorkerdBackend:
        """The running :class:`~pytest_dosqlite.workerd.WorkerdBackend` (started on first use).

        A failed start is remembered: every later use raises the same error at once.
        """
        server = self._server
        if server is not None and server.running:
            return server
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._server is None or not self._server.running:
                try:
                    self._server = self._start()
                except BaseException as exc:
                    if isinstance(exc, DosqliteError):
                        self._failure = exc
                    raise
            return self._server

    def install(self) -> Installation:
        """The harness install (npm packages in the user cache), installing it on first use."""
        from .workerd import PINNED_WORKERD, ensure_installed, harness_dir

        if self.installation is not None:
            return self.installation
        say = self._progress
        if say is not None and not (harness_dir() / ".installed.json").exists():
            say(
                f"pytest-dosqlite: installing workerd {PINNED_WORKERD} (miniflare, drizzle-orm, "
                f"esbuild; ~235 MB, once) into {harness_dir()} ..."
            )
        inst = ensure_installed(progress=False)
        if inst.installed_now and say is not None:
            say(f"pytest-dosqlite: workerd harness installed in {inst.install_seconds:.0f} s")
        self.installation = inst
        return inst

    def _start(self) -> WorkerdBackend:
        from .workerd import WorkerdBackend

        began = time.monotonic()
        if self._server is not None:  # given, or died: start it (again)
            server = self._server
        else:
            server = WorkerdBackend(installation=self.install(), progress=False)
        server.start()
        self.installation = server.installation
        self.startup_seconds = time.monotonic() - began
        return server

    def stop(self) -> None:
        """Stop workerd (no orphan processes: see WorkerdBackend.stop); it does not restart."""
        from .workerd import WorkerdError

        with self._lock:
            server = self._server
            if server is not None:
                server.stop()
                self._failure = WorkerdError("the workerd runtime of this session was stopped")

    def describe(self) -> str:
        from .workerd import PINNED_WORKERD

        version = self.installation.workerd_version if self.installation else PINNED_WORKERD
        return f"workerd {version} (Miniflare, drizzle-orm 0.45.4)"

    # -- DOs ---------------------------------------------------------------------------------
    def new_name(self, label: str = "") -> str:
        """A DO name no other DO of this session has."""
        tag = re.sub(r"\s+", " ", label)[-120:]
        return f"{self._prefix}/{next(self._counter)}/{tag}"

    def empty(self, label: str = "") -> RemoteDurableObject:
        """A fresh, empty DO (nothing is sent until it is used)."""
        self.do_count += 1
        return RemoteDurableObject(self, self.new_name(label))

    def fresh(self, bundle: Bundle, count: int | None = None, label: str = "") -> Any:
        """A fresh DO migrated by drizzle's real migrate() with the first ``count`` migrations.

        Raises :class:`MigrationError` when migrate() rejects (cause from the emulator).
        """
        n = bundle.version_count(count)
        prefix = bundle if n == len(bundle.migrations) else bundle.prefix(n)
        do = self.empty(label or f"{bundle.name}@{n}")
        self._run(do, prefix, history=("fresh", bundle, n))
        return do

    def migrate(
        self, do: RemoteDurableObject, bundle: Bundle, start: str | None = None
    ) -> RemoteMigrationRun:
        """drizzle's real ``migrate(drizzle(ctx.storage), bundle)`` inside ``do``."""
        return self._run(do, bundle, history=("migrate", bundle, start), start=start)

    def _run(
        self,
        do: RemoteDurableObject,
        bundle: Bundle,
        *,
        history: tuple[Any, ...],
        start: str | None = None,
    ) -> RemoteMigrationRun:
        journal, migrations = harness_bundle(bundle)
        plan = WORKERD_STARTS.get(start)
        if plan is None:
            raise WorkerdUnsupported(
                f"--dosqlite-start {start} is a Python function; it cannot run inside workerd"
            )
        before = [
            {"op": "exec", "sql": LAST_APPLIED_SQL.replace("LIMIT 1", ""), "mode": "raw"},
            *plan.before,
        ]
        answer = self.server.migrate(
            do.name,
            journal,
            migrations,
            before=before,
            after=plan.after,
            await_before_after=plan.await_before_after,
        )
        if not str(answer.get("error") or "").startswith(INTERNAL_ERROR_PREFIX):
            # an internal error is migrate()'s own failure: the replay below names its cause
            _raise_fatal(answer)
        emulated_before = do.emulate() if not answer.get("ok") else None
        do._history.append(history)
        if answer.get("ms") is not None:
            self.migrate_ms.append(float(answer["ms"]))
        if not answer.get("ok"):
            assert emulated_before is not None
            raise self._failure_of(emulated_before, bundle, answer, history)
        ledger = answer["results"][0]
        rows = ledger.get("rows") or [] if ledger.get("ok") else []
        run = RemoteMigrationRun(ms=answer.get("ms"), results=answer.get("results") or [])
        last = rows[0] if rows else None
        hwm = js_number(last[2]) if last is not None else None
        run.high_water_mark = hwm
        for m in bundle.migrations:
            if last is None or (hwm is not None and hwm < m.when):
                run.applied.append(m.tag)
            else:
                run.not_applied.append(m.tag)
        return run

    def _failure_of(
        self,
        emulated: DurableObjectStorage,
        bundle: Bundle,
        answer: Mapping[str, Any],
        history: tuple[Any, ...],
    ) -> MigrationError:
        """The MigrationError for a rejected real migrate(): workerd's message, emulator's cause."""

        real = str(answer.get("error"))
        if answer.get("errorName") == "Error" and real.startswith("Error: "):
            real = real[len("Error: ") :]  # a plain Error reaches callers as its bare message
        try:
            if history[0] == "fresh":
                emulated.close()
                version = self.emulator_images.version(history[1], history[2])
                if version.error is not None:
                    raise version.error
            else:
                _emulated_start(history[2])(emulated, bundle)
        except MigrationError as exc:
            return dataclasses.replace(
                exc,
                message=(
                    f"{exc.message} [workerd's migrate() rejected with `{real}`; the migration, "
                    "statement and SQLite error are the emulator's replay of the same run]"
                ),
                drizzle_message=real,
            )
        finally:
            with contextlib.suppress(Exception):
                emulated.close()
        return MigrationError(
            f"drizzle's migrate() rejected with `{real}` on workerd, but the emulator migrates "
            "the same DO without error, so it cannot name the failing statement (an emulator "
            "difference: please report it with this bundle)",
            drizzle_message=real,
        )


# ============================================================================ checks on workerd


class WorkerdImages:
    """ImageCache's interface for the checks that only need migrate() + SQL, on workerd.

    ``fresh(bundle, count)`` is a new remote DO migrated by drizzle's real migrate();
    ``head``/``version`` return :class:`~pytest_dosqlite.images.VersionImage` without an image
    (``error`` set when migrate() rejects). Results are cached per bundle fingerprint.
    """

    def __init__(self, runtime: WorkerdRuntime) -> None:
        self.runtime = runtime
        self._versions: dict[tuple[str, int], VersionImage] = {}

    def version(self, bundle: Bundle, count: int) -> VersionImage:
        from .images import VersionImage

        key = (bundle.fingerprint, count)
        cached = self._versions.get(key)
        if cached is None:
            started = time.perf_counter()
            try:
                self.runtime.fresh(bundle, count, label=f"{bundle.name}@{count}")
                cached = VersionImage(count, None, None, time.perf_counter() - started)
            except MigrationError as exc:
                cached = VersionImage(count, None, exc)
            self._versions[key] = cached
        return cached

    def head(self, bundle: Bundle) -> VersionImage:
        return self.version(bundle, len(bundle.migrations))

    def fresh(self, bundle: Bundle, count: int | None = None) -> Any:
        n = bundle.version_count(count)
        known = self._versions.get((bundle.fingerprint, n))
        if known is not None and known.error is not None:
            raise known.error.with_traceback(None)  # cached: no frames of earlier raises
        try:
            return self.runtime.fresh(bundle, n)
        except MigrationError as exc:
            from .images import VersionImage

            self._versions[(bundle.fingerprint, n)] = VersionImage(n, None, exc)
            raise

    def timings(self, bundle: Bundle) -> dict[str, float]:
        """workerd reports one duration per migrate() call, not per migration: none here."""
        return {}


def _state(dump: Mapping[str, Any]) -> Any:
    from .fleet import DatabaseState

    schema = tuple(
        (r["type"], r["name"], r["tbl_name"], r["sql"]) for r in dump.get("schema") or []
    )
    ledger = tuple(
        (r["rowid"], r["id"], r["hash"], r["created_at"]) for r in dump.get("journal") or []
    )
    return DatabaseState(schema, ledger)


def upgrade_from_every_version_workerd(ctx: CheckContext) -> None:
    """``upgrade_from_every_version`` with the bundle's own versions run on workerd.

    For every ``k`` a DO is migrated with the first ``k`` migrations, then with the whole
    bundle (both by drizzle's real migrate(), with ``--dosqlite-start drizzle-fk-off`` honoured);
    its schema and ledger are compared with a fresh DO migrated to head. Past states from git
    history are checked on the emulator (they are not the current bundle). A ``--dosqlite-start``
    Python function cannot run inside workerd: the whole check then runs on the emulator.
    """
    from collections import Counter

    from . import fleet
    from .checks import migration_failure
    from .errors import CheckFailure

    bundle = ctx.bundle
    runtime: WorkerdRuntime = ctx.extra["workerd"]
    start = ctx.extra.get("fleet_start")
    emulator_ctx = dataclasses.replace(ctx, images=runtime.emulator_images)
    if bundle.format == "v1" or (start is not None and start not in WORKERD_STARTS):
        why = "a drizzle-kit v1 bundle" if bundle.format == "v1" else f"start {start}"
        ctx.extra.setdefault("notes", []).append(
            f"upgrade_from_every_version ran on the emulator ({why})"
        )
        fleet.upgrade_from_every_version(emulator_ctx)
        return

    head_do = runtime.empty(f"{bundle.name}:upgrade-head")
    try:
        runtime.migrate(head_do, bundle, start)
    except MigrationError as exc:
        raise migration_failure(
            exc,
            "cannot check upgrades: a fresh Durable Object fails to migrate to head",
            fresh_do=True,
        ) from None
    head = _state(head_do.dump())
    whens = Counter(m.when for m in bundle.migrations)

    groups: list[tuple[list[str], Any]] = []
    by_sig: dict[tuple[Any, ...], int] = {}

    def record(label: str, outcome: Any) -> None:
        sig = outcome.signature()
        if sig in by_sig:
            groups[by_sig[sig]][0].append(label)
        else:
            by_sig[sig] = len(groups)
            groups.append(([label], outcome))

    n = len(bundle.migrations)
    for k in range(1, n + 1):
        do = runtime.empty(f"{bundle.name}:upgrade-v{k}")
        try:
            runtime.migrate(do, bundle.prefix(k), start)
        except MigrationError:
            continue  # no DO can be at a version that fails to build
        outcome = fleet._Outcome()
        try:
            run = runtime.migrate(do, bundle, start)
            outcome.high_water_mark = run.high_water_mark
        except MigrationError as exc:
            outcome.error = exc
        else:
            state = _state(do.dump())
            got = state.created_at()
            outcome.skipped = fleet._tags_for(bundle, whens - got)
            outcome.unknown_rows = sorted(str(v) for v in (got - whens).elements())
            if not head.same_as(state, data=False, ledger=False):
                outcome.schema_diff = head.diff(state, data=False, ledger=False)
        if outcome.failed:
            record(fleet._label(bundle, k) + " [workerd]", outcome)

    notes: list[str] = []
    if ctx.settings.git_history:
        emu_head = fleet.database_state(fleet._head(emulator_ctx, "upgrades"), data=False)
        limit = fleet._limit(emulator_ctx, "git_history_limit", fleet.DEFAULT_GIT_HISTORY_LIMIT)
        for label, outcome in fleet._history_outcomes(emulator_ctx, emu_head, limit, notes):
            record(label + " [emulator]", outcome)
    if not groups:
        return
    sections = [
        ("Deployed at " + fleet._join_labels(labels), outcome.body())
        for labels, outcome in groups[: fleet._MAX_SECTIONS]
    ]
    if len(groups) > fleet._MAX_SECTIONS:
        rest = sum(len(labels) for labels, _ in groups[fleet._MAX_SECTIONS :])
        sections.append(("More", f"{rest} more deployed versions fail in other ways"))
    if notes:
        sections.append(("Git history", "\n".join(notes)))
    sections.append(("How to fix", fleet._upgrade_fix([o for _, o in groups], bundle)))
    failing = sum(len(labels) for labels, _ in groups)
    raise CheckFailure(
        f"{failing} deployed version(s) of {bundle.name} do not upgrade to head like a fresh DO",
        sections,
    )


def remote_statements(bundle: Bundle, upto: int | None = None) -> list[tuple[str, list[Any]]]:
    """drizzle's statement sequence for a fresh DO: ledger DDL, read, then chunks + inserts.

    Sent as one ``transaction`` with errors recorded per statement, it shows which chunk fails
    on workerd and SQLite's real message (drizzle's migrate() replaces it with "Rollback").
    """
    out: list[tuple[str, list[Any]]] = [(LEDGER_DDL, []), (LAST_APPLIED_SQL, [])]
    for m in bundle.migrations[:upto]:
        out.extend((chunk, []) for chunk in m.chunks)
        out.append((INSERT_SQL, ["", m.when]))
    return out
