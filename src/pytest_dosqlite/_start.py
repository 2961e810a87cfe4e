"""The child side of the fleet checks: DO starts in their own OS processes.

Concurrency cannot be tested inside one Python process: the races are between processes
holding SQLite file locks. A crash is what a process killed (SIGKILL) at some statement leaves
on disk: the database files as they are at that moment, with no ``finally``, rollback or close
after it. The parent (:mod:`pytest_dosqlite.fleet`) passes a pickled spec file (``{"bundle":
Bundle, "start": "module:function" | None, "images": page store, see fleet._write_images}``)
and reads JSON event lines from stdout::

    python -m pytest_dosqlite._start race SPEC DB COUNT [--hold]
        forks COUNT starts on DB (spawns them where os.fork does not exist). Each opens the
        DO, prints {"event": "ready", "child": i} and waits at the barrier; the parent's
        ``go`` line releases them all at once; each prints "started", runs the start and
        prints {"event": "done", "child": i, "ok": ..., "applied": [...]}. With --hold, child 0
        alone is released by ``go``, pauses inside its transaction right after recording the
        first migration ("holding") until ``continue``; ``go-others`` releases the rest, each of
        which prints "blocked" the first time it waits for the write lock.
    python -m pytest_dosqlite._start serve SPEC
        worker: one JSON job per stdin line, one JSON result line per unit of the job. A crash
        job is a chain of consecutive migrations (see ``_Worker.crash``): each runs once with
        copies of the database files taken at each of its crash points, the copies are
        judged, and the next start runs on the files a crash right after its ledger INSERT
        leaves. An upgrade job upgrades fresh DOs at given versions to head.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bundle import Bundle, Migration
from .errors import DosqliteError
from .fleet import (
    StartFn,
    _upgrade,
    database_state,
    drizzle_start,
    error_fields,
    inspect_file,
    mask_header_noise,
    outcome_fields,
    resolve_start,
    write_image,
)
from .images import reads_connection_state, sets_connection_state
from .sqltext import split
from .storage import Cursor, DurableObjectStorage, SqlStorage

__all__ = ["main"]


class _Tap(SqlStorage):
    """``ctx.storage.sql`` that follows one migration's chunks as the start executes them.

    ``entering(chunk, text)`` runs just before a chunk of the migration is executed;
    ``recorded()`` right after the exec that follows its last chunk (drizzle's ledger INSERT),
    while the transaction is still open.
    """

    def __init__(self, storage: DurableObjectStorage, migration: Migration) -> None:
        super().__init__(storage)
        self._chunks = migration.chunks
        self._next = 0
        self._after_last = False

    def entering(self, chunk: int, text: str) -> None:
        """Hook: chunk ``chunk`` of the migration is about to run."""

    def recorded(self) -> None:
        """Hook: the migration was recorded (its transaction is still open)."""

    def exec(self, query: str, *bindings: object) -> Cursor:
        if self._next < len(self._chunks) and query == self._chunks[self._next]:
            self.entering(self._next, query)
            self._next += 1
            result = super().exec(query, *bindings)
            self._after_last = self._next == len(self._chunks)
            return result
        if self._after_last:
            self._after_last = False
            result = super().exec(query, *bindings)
            self.recorded()
            return result
        return super().exec(query, *bindings)


class _Abandoned(BaseException):
    """The instance is gone at its last crash point: nothing of the start runs after it.

    A BaseException, so that a start's ``except Exception`` cannot carry on; its ``finally``
    blocks and the storage's rollback do run, on files whose crash state is already copied.
    """


class _Killable(DurableObjectStorage):
    """A file-backed DO whose start can be abandoned at a crash point (:class:`_Abandoned`).

    A DO whose start throws is reset (a new instance, a new connection); an abandoned one is
    closed instead, so the reset, which would read the whole schema again, is skipped.
    """

    abandoned = False

    def _reset_instance(self) -> None:
        if not self.abandoned:
            super()._reset_instance()


class _Snapshots(_Tap):
    """Copies the database files at each crash point of one migration.

    A process killed at a point leaves the files exactly as they are at that moment (its page
    cache, its locks and everything it would have done next are gone), so one run that copies
    them at every point stands for one killed run per point, and runs each statement once
    instead of once per later point. Points are ``(chunk, statement)`` as in
    :class:`~pytest_dosqlite.fleet.CrashPoint`; ``(None, None)`` is right after the ledger
    INSERT, the last point: there the run is abandoned (:class:`_Abandoned`). The statements
    between two points of a chunk run in one exec, as workerd's loop runs them.

    At a point the small files (``-wal``, ``-journal``; ``-shm`` too at the last point, whose
    files the next start runs on) are copied to ``out/p{i}.db...``, and the main file only if
    it changed since the run began (``main``: its ``_stat_key`` then, with the mtime set to 0:
    any write to the file moves it). ``reached`` lists the points recorded, ``copied`` the
    files written to ``out``.
    """

    def __init__(
        self,
        storage: _Killable,
        migration: Migration,
        points: list[tuple[int | None, int | None]],
        out: str,
        main: _StatKey,
    ) -> None:
        super().__init__(storage, migration)
        assert storage.path is not None
        self._killable = storage
        self._db = str(storage.path)
        self._out = out
        self._main = main
        self._stops: dict[int, list[tuple[int, int]]] = {}
        self._ledger: int | None = None
        self.reached: set[int] = set()
        self.copied: list[str] = []
        for i, (chunk, statement) in enumerate(points):
            if chunk is None:
                self._ledger = i
            else:
                self._stops.setdefault(chunk, []).append((statement or 0, i))

    def _snapshot(self, point: int) -> None:
        out = os.path.join(self._out, f"p{point}.db")
        if _stat_key(self._db) != self._main:
            shutil.copyfile(self._db, out)
            self.copied.append(out)
        # the shared memory only where the next start runs on the copy's files: any other
        # copy is opened alone, and SQLite rebuilds the index of a WAL nobody has open
        last = point == self._ledger
        for suffix in ("-wal", "-shm", "-journal") if last else ("-wal", "-journal"):
            if _copy_if_any(self._db + suffix, out + suffix):
                self.copied.append(out + suffix)
        self.reached.add(point)

    def exec(self, query: str, *bindings: object) -> Cursor:
        if self._next < len(self._chunks) and query == self._chunks[self._next]:
            chunk = self._next
            self._next += 1
            done = 0
            stops = sorted(self._stops.get(chunk, []))
            pieces = split(query) if stops else []
            for statement, point in stops:
                at = pieces[statement].start
                if at > done:
                    SqlStorage.exec(self, query[done:at])
                    done = at
                self._snapshot(point)
            result = SqlStorage.exec(self, query[done:], *bindings)
            self._after_last = self._next == len(self._chunks)
            return result
        return super().exec(query, *bindings)

    def recorded(self) -> None:
        if self._ledger is not None:
            self._snapshot(self._ledger)
        self._killable.abandoned = True
        raise _Abandoned


def _copy_if_any(source: str, target: str) -> bool:
    """Copy ``source`` unless it is missing or empty (an empty WAL or journal is no WAL or
    journal to SQLite); whether it did."""
    try:
        if os.stat(source).st_size == 0:
            return False
        shutil.copyfile(source, target)
    except FileNotFoundError:
        return False
    return True


#: POSIX moves a file's mtime on every write(); elsewhere the content is compared as well
_MTIME_SEES_WRITES = os.name == "posix"
_StatKey = tuple[int, int, int, str]


def _stat_key(path: str | os.PathLike[str]) -> _StatKey:
    """What any write to a file changes: its mtime (set to 0 before a run), size and inode
    (and, where the mtime may lag behind writes, a digest of the content)."""
    st = os.stat(path)
    digest = ""
    if not _MTIME_SEES_WRITES:
        digest = hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()
    return (st.st_mtime_ns, st.st_size, st.st_ino, digest)


class _Holder(_Tap):
    """Pauses inside the transaction after the first migration is recorded."""

    def __init__(
        self, storage: DurableObjectStorage, migration: Migration, barrier: _Barrier
    ) -> None:
        super().__init__(storage, migration)
        self._barrier = barrier

    def recorded(self) -> None:
        _send(event="holding", child=0)
        self._barrier.wait()


def _load_spec(path: str) -> dict[str, Any]:
    with open(path, "rb") as fh:
        spec: dict[str, Any] = pickle.load(fh)
    return spec


# ---------------------------------------------------------------------------------- start


def _send(**msg: Any) -> None:
    """One event line on stdout, written with a single write (atomic on a pipe)."""
    data = json.dumps(msg, default=str).encode()
    if len(data) > _ATOMIC:
        for key in ("tb", "error"):
            msg.pop(key, None)
        msg["truncated"] = True
        data = json.dumps(msg, default=str).encode()
    os.write(1, data + b"\n")


#: POSIX guarantees at least 512 bytes; Linux and macOS give 4096
_ATOMIC = 4000


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 600:
        return value[:600] + "…"
    return value


class _Barrier:
    """Where starts wait until the parent releases them all at once.

    Forked children block reading a pipe: ``release`` writes one byte per child, so they all
    wake together; if the launcher dies or gives up, its write end closes and they read EOF and
    exit (a start can never outlive the check). Spawned children (no os.fork) poll for a file
    instead, with an abort file and a deadline.
    """

    def __init__(self, path: str, pipe: tuple[int, int] | None) -> None:
        self.path = path
        self.pipe = pipe

    @classmethod
    def create(cls, path: str, forking: bool) -> _Barrier:
        for suffix in ("", ".abort"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + suffix)
        return cls(path, os.pipe() if forking else None)

    def child_side(self) -> None:
        """In a forked child: drop the write end, so EOF means the launcher is gone."""
        if self.pipe is not None:
            os.close(self.pipe[1])

    def parent_side(self) -> None:
        if self.pipe is not None:
            os.close(self.pipe[0])

    def wait(self) -> None:
        """Block until released; exit quietly if the launcher aborts."""
        if self.pipe is not None:
            if os.read(self.pipe[0], 1) != b"g":
                os._exit(0)
            return
        deadline = time.monotonic() + _BARRIER_TIMEOUT
        while not os.path.exists(self.path):
            if os.path.exists(self.path + ".abort") or time.monotonic() > deadline:
                os._exit(0)
            time.sleep(0.0005)

    def release(self, count: int) -> None:
        if self.pipe is not None:
            with contextlib.suppress(OSError):
                os.write(self.pipe[1], b"g" * count)
        else:
            Path(self.path).touch()

    def abort(self) -> None:
        if self.pipe is not None:
            with contextlib.suppress(OSError):
                os.close(self.pipe[1])
        else:
            Path(self.path + ".abort").touch()


_BARRIER_TIMEOUT = 600.0
_BARRIERS = ("go", "go-others", "continue")
#: set to a non-empty value to spawn starts and crash children instead of forking (tests)
NO_FORK_ENV = "PYTEST_DOSQLITE_NO_FORK"


def _forking() -> bool:
    return hasattr(os, "fork") and not os.environ.get(NO_FORK_ENV)


def _race_child(
    spec: dict[str, Any], db: str, index: int, hold: bool, barriers: dict[str, _Barrier]
) -> int:
    """One start: open the DO, wait at the barrier, run the start, report."""
    bundle: Bundle = spec["bundle"]
    start = resolve_start(spec.get("start"))
    do = DurableObjectStorage(db)
    holder = hold and index == 0
    if holder and bundle.migrations:
        do.sql = _Holder(do, bundle.migrations[0], barriers["continue"])
    elif hold:  # the parent lets the holder go on once every other start waits for the lock
        do.on_lock_wait(lambda: _send(event="blocked", child=index))
    _send(event="ready", child=index, pid=os.getpid())
    barriers["go" if holder or not hold else "go-others"].wait()
    _send(event="started", child=index)
    try:
        run = start(do, bundle)
    except DosqliteError as exc:
        _send(event="done", child=index, ok=False, error=error_fields(exc))
        return 0
    except Exception as exc:
        _send(event="done", child=index, ok=False, error=error_fields(exc), tb=_clip(_tb()))
        return 0
    applied = list(run.applied) if run is not None else None
    _send(event="done", child=index, ok=True, applied=applied)
    do.close()
    return 0


def _race(spec_path: str, db: str, count: int, hold: bool) -> int:
    """Launch ``count`` starts together and release them on the parent's commands.

    Children are forked after the spec is loaded (a few ms each) where os.fork exists, else
    spawned. Commands on stdin: ``go``, ``go-others`` (hold mode), ``continue``; EOF aborts
    whatever still waits, then the children are reaped (killed after a grace period).
    """
    spec = _load_spec(spec_path)
    forking = _forking()
    barriers = {name: _Barrier.create(f"{db}.{name}", forking) for name in _BARRIERS}
    sys.stdout.flush()
    pids: list[int] = []
    procs: list[subprocess.Popen[bytes]] = []
    for i in range(count):
        if forking:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the forked child
                code = 1
                try:
                    for barrier in barriers.values():
                        barrier.child_side()
                    code = _race_child(spec, db, i, hold, barriers)
                finally:
                    os._exit(code)
            pids.append(pid)
        else:
            args = ["child", spec_path, db, str(i), *(["--hold"] if hold else [])]
            procs.append(subprocess.Popen(_command(*args)))
    for barrier in barriers.values():
        barrier.parent_side()
    try:
        for line in sys.stdin:
            cmd = line.strip()
            if cmd in barriers:
                barriers[cmd].release(count)
    finally:
        for barrier in barriers.values():
            barrier.abort()
        _reap(pids, procs)
    return 0


def _reap(pids: list[int], procs: list[subprocess.Popen[bytes]]) -> None:
    """Wait for this launcher's own children; SIGKILL the ones still alive after 5 s."""
    deadline = time.monotonic() + 5
    pending = list(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                pending.remove(pid)
        if pending:
            time.sleep(0.005)
    for pid in pending:
        with contextlib.suppress(OSError):
            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
            os.waitpid(pid, 0)
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_dosqlite._start", *args]


def _tb() -> str:
    return "".join(traceback.format_exc(limit=8))


# ---------------------------------------------------------------------------------- crash

_WAL_MAGIC = (0x377F0682, 0x377F0683)


def _wal_frames(path: str) -> list[bytes] | None:
    """The first 8 bytes (page number, commit field) of every frame header of a WAL file, as
    far as the file holds them: ``[]`` when there is no file or it is empty, None when it does
    not look like a WAL (an unknown header, a file shorter than one)."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return []
    if size == 0:
        return []
    frames: list[bytes] = []
    with open(path, "rb") as fh:
        header = fh.read(32)
        if len(header) < 32 or int.from_bytes(header[:4], "big") not in _WAL_MAGIC:
            return None
        page = int.from_bytes(header[8:12], "big")
        page = 65536 if page == 1 else page
        if page < 512 or page > 65536 or page & (page - 1):
            return None
        for offset in range(32, size - 4 + 1, 24 + page):
            fh.seek(offset)
            frames.append(fh.read(8))
    return frames


def _wal_may_commit(path: str) -> bool:
    """The WAL file may hold a committed transaction: some frame carries a commit marker.

    SQLite's recovery uses the frames of a WAL only up to its last valid commit frame (the
    ``-shm`` index of a dead process is rebuilt, not trusted), so a WAL without any frame whose
    commit field (frame header bytes 4-7) is set adds nothing to the database. Anything unusual
    (an unknown header, a file shorter than one) counts as "may commit": SQLite judges it then.
    """
    frames = _wal_frames(path)
    if frames is None:
        return True
    return any(len(f) == 8 and f[4:8] != b"\0\0\0\0" for f in frames)


def _wal_pages(path: str) -> set[int] | None:
    """The page numbers of every frame in a WAL file, committed, valid or not (None when the
    file does not look like a WAL: then nothing is assumed about it)."""
    frames = _wal_frames(path)
    if frames is None:
        return None
    return {int.from_bytes(f[:4], "big") for f in frames}


def _leaves_previous(base: str) -> bool:
    """The files at ``base`` (``-wal``, ``-journal``) add nothing to the main file's database:
    no hot rollback journal, no committed WAL frame (see :func:`_wal_may_commit`)."""
    return not os.path.exists(base + "-journal") and not _wal_may_commit(base + "-wal")


@dataclass
class _Run:
    """How the run of one migration with its crash points ended."""

    #: the crash points recorded
    reached: set[int] = field(default_factory=set)
    #: abandoned at its last crash point (right after the ledger INSERT), as planned
    abandoned: bool = False
    #: the start returned without reaching the last point
    returned: bool = False
    #: the start failed before it (its error)
    failure: str = ""
    #: the main file was untouched by the run, its close included
    main_kept: bool = False


def _result(points: list[dict[str, Any] | None], restart: dict[str, Any]) -> dict[str, Any]:
    """A migration's result: each point's, the restart's for those that wait for it (None)."""
    return {"status": "ok", "points": [dict(restart) if r is None else r for r in points]}


class _Worker:
    """Runs crash jobs (chains of consecutive migrations, see :meth:`crash`) and upgrade jobs."""

    def __init__(self, spec_path: str) -> None:
        self.spec_path = spec_path
        self.spec = _load_spec(spec_path)
        self.bundle: Bundle = self.spec["bundle"]
        self.start: StartFn = resolve_start(self.spec.get("start"))
        self.store: dict[str, Any] = self.spec.get("images") or {}
        self._pages: list[bytes] | None = None
        self._states: dict[tuple[int, bool], Any] = {}
        self._buffer = bytearray()
        self._prefix: tuple[int, Bundle] | None = None
        #: the copies directory may hold files other than the last run's copies
        self._dirty = True
        self._leftovers: list[str] = []
        #: for tests: fresh database files written from an image, database opens by a start
        self.fresh_files = 0
        self.opens = 0

    def _page_list(self) -> list[bytes]:
        """The distinct pages of the page store, each its own bytes (read once)."""
        if self._pages is None:
            blob = Path(self.store["file"]).read_bytes() if self.store.get("file") else b""
            self._pages = [blob[o : o + n] for o, n in self.store.get("spans", [])]
        return self._pages

    def image(self, k: int) -> bytes | None:
        """Version ``k``'s image from the page store (None when it does not build)."""
        refs = self.store.get("versions", {}).get(k)
        if refs is None:
            return None
        pages = self._page_list()
        return b"".join([pages[i] for i in refs])

    def holds(self, path: str | os.PathLike[str], k: int) -> bool:
        """The database file ``path`` (no WAL content) is version ``k``'s image byte for byte,
        except the header fields that only say how and how often it was written
        (:data:`HEADER_NOISE`). Page by page against the store: no image is joined."""
        refs = self.store.get("versions", {}).get(k)
        if not refs:
            return False
        pages = self._page_list()
        first = pages[refs[0]]
        page_size = len(first)
        size = page_size * len(refs)
        if page_size < 100 or os.stat(path).st_size != size:
            return False
        if len(self._buffer) < size:
            self._buffer = bytearray(size)
        data = self._buffer  # reused: a fresh buffer costs a page fault per 4 KiB
        with open(path, "rb", buffering=0) as fh:
            if fh.readinto(memoryview(data)[:size]) != size:
                return False
        mask_header_noise(data, first)
        startswith = data.startswith
        offset = 0
        for i in refs:
            page = pages[i]
            if len(page) != page_size or not startswith(page, offset):  # a memcmp, no copy
                return False
            offset += page_size
        return True

    def holds_after(self, db: str | os.PathLike[str], k: int, written: set[int]) -> bool:
        """Like :meth:`holds`, for a file that held version ``k - 1``'s image and since then
        was written only in the pages numbered ``written``: those, the pages beyond version
        ``k - 1``'s end and page 1 are read and compared; every other page must be equal in
        both versions' images (compared in memory)."""
        versions = self.store.get("versions", {})
        new, old = versions.get(k), versions.get(k - 1)
        if not new or not old:
            return False
        pages = self._page_list()
        first = pages[new[0]]
        page_size = len(first)
        if page_size < 100 or os.stat(db).st_size != page_size * len(new):
            return False
        check = {1, *range(len(old) + 1, len(new) + 1)}
        check.update(p for p in written if 1 <= p <= len(new))
        for number, (a, b) in enumerate(zip(new, old, strict=False), start=1):
            if a != b and number not in check and pages[a] != pages[b]:
                return False  # differs between the versions, but the file was not written there
        with open(db, "rb", buffering=0) as fh:
            for number in sorted(check):
                want = pages[new[number - 1]]
                fh.seek((number - 1) * page_size)
                got = fh.read(page_size)
                if number == 1:
                    header = bytearray(got)
                    mask_header_noise(header, want)
                    got = bytes(header)
                if len(want) != page_size or got != want:
                    return False
        return True

    def prefix(self, k: int) -> Bundle:
        """``bundle.prefix(k)``, kept for the restart of the migration just run."""
        if self._prefix is None or self._prefix[0] != k:
            self._prefix = (k, self.bundle.prefix(k))
        return self._prefix[1]

    def state(self, k: int, data: bool) -> Any:
        key = (k, data)
        if key not in self._states:
            image = self.image(k)
            self._states[key] = None if image is None else database_state(image, data=data)
        return self._states[key]

    def upgrade(self, job: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Upgrade a fresh DO at each unit's version to head (upgrade_from_every_version)."""
        for unit in job["units"]:
            image = self.image(int(unit["count"]))
            head = self.state(len(self.bundle.migrations), False)
            if image is None or head is None:
                yield {"status": "error", "detail": "missing image"}
                continue
            outcome = _upgrade(image, self.bundle, head, self.start)
            yield {"status": "ok", "outcome": outcome_fields(outcome)}

    # ------------------------------------------------------------------ crash chains

    def crash(self, job: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every crash point of consecutive migrations; one result (per point) per migration.

        Migration ``k`` runs once on a file-backed DO at version ``k - 1`` and the database
        files are copied at each of its crash points; at the last one, right after the ledger
        INSERT, the run is abandoned. A copy needs no inspection when the main file is still
        the one the run began with (a fresh version image, or one proven byte-equal to it) and
        its WAL and journal add no committed transaction to it: SQLite then reads exactly the
        previous version, intact, with its schema, ledger and data. Any other copy is opened by
        SQLite and judged in full: quick_check, state against the previous version, next start.

        The copies that leave the previous version share one next start: it runs on the
        database file itself, with the WAL and shared memory of the last point put back (the
        files a kill there leaves), must succeed, and must leave the fresh image of version
        ``k`` byte for byte (else the states are compared, to explain). Then the same file,
        and, for drizzle's own start, the same connection, goes on with migration ``k + 1``.
        So each migration costs one open of the database, one pass over its statements for the
        crash and one for the restart, and a read of the pages the restart wrote, whatever the
        number of versions; a fresh image is written only where the chain breaks (the first
        migration of the job, a point that does not leave the previous version, a failed or
        different restart).
        """
        db = Path(job["db"])
        out = db.with_name(db.name + ".snapshots")
        crashed: int | None = None  # db holds the files a crash after this migration left
        waiting: list[dict[str, Any] | None] = []
        try:
            for unit in job["units"]:
                k = int(unit["count"])
                points: list[dict[str, Any]] = unit["points"]
                do: _Killable | None = None
                verified: _StatKey | None = None
                if crashed is not None:
                    restart, do, verified = self._restart_chained(db, crashed, crashed == k - 1)
                    yield _result(waiting, restart)
                    crashed = None
                if do is None:
                    if not self._fresh(db, k - 1):
                        unbuilt = {
                            "status": "unreached",
                            "detail": "the previous version does not build",
                        }
                        yield {"status": "ok", "points": [dict(unbuilt) for _ in points]}
                        continue
                    do = self._open(db)
                run = self._run(do, k, points, out, verified)
                results, clean = self._judge(k, points, out, run)
                last = len(points) - 1
                chain = run.abandoned and run.main_kept and points[last]["chunk"] is None
                if chain and clean[-1:] == [last]:
                    self._put_back(out / f"p{last}.db", db)
                    crashed, waiting = k, results
                    continue
                if clean:  # one next start, on the first copy that left the previous version
                    restart = self._restart(self._materialize(k, clean[0], out), k)
                    for i in clean:
                        results[i] = dict(restart)
                yield {"status": "ok", "points": results}
            if crashed is not None:
                yield _result(waiting, self._restart_chained(db, crashed, False)[0])
        finally:
            _clean(db)
            shutil.rmtree(out, ignore_errors=True)

    def _open(self, db: Path) -> _Killable:
        self.opens += 1
        return _Killable(db)

    def _fresh(self, db: Path, k: int) -> bool:
        """Make ``db`` a fresh file-backed DO at version ``k`` (False when it does not build)."""
        image = self.image(k)
        if image is None:
            return False
        _clean(db)
        write_image(db, image)
        self.fresh_files += 1
        return True

    def _run(
        self,
        do: _Killable,
        k: int,
        points: list[dict[str, Any]],
        out: Path,
        verified: _StatKey | None,
    ) -> _Run:
        """Migration ``k`` on ``do``, with copies of the files at each crash point; closes
        ``do``. ``verified``: the main file's ``_stat_key`` when it was proven to be version
        ``k - 1`` (None: a fresh file written from that image)."""
        if self._dirty or not out.exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            self._dirty = False
        for name in self._leftovers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        db = str(do.path)
        kept = verified is None or _stat_key(db) == verified
        os.utime(db, ns=(0, 0))
        main = _stat_key(db)
        stops = [(p["chunk"], p["statement"]) for p in points]
        tap = _Snapshots(do, self.bundle.migrations[k - 1], stops, str(out), main)
        do.sql = tap
        run = _Run(reached=tap.reached)
        try:
            self.start(do, self.prefix(k))
            run.returned = True
        except _Abandoned:
            run.abandoned = True
        except Exception as exc:
            run.failure = f"{type(exc).__name__}: {exc}"
        finally:
            do.close()
        run.main_kept = kept and _stat_key(db) == main and not os.path.exists(f"{db}-wal")
        self._leftovers = tap.copied
        return run

    def _put_back(self, snap: Path, db: Path) -> None:
        """Make ``db``'s WAL, shared memory and journal those of the copy ``snap``."""
        for suffix in ("-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{db}{suffix}")
            _copy_if_any(f"{snap}{suffix}", f"{db}{suffix}")

    def _restart_chained(
        self, db: Path, k: int, go_on: bool
    ) -> tuple[dict[str, Any], _Killable | None, _StatKey | None]:
        """The next start on the files a crash after migration ``k``'s ledger INSERT left in
        ``db`` (whose main file is version ``k - 1``'s image).

        With ``go_on``, also the storage to run migration ``k + 1`` on, when the file now holds
        exactly the fresh image of version ``k`` (None: start it from a fresh image), and the
        main file's ``_stat_key`` at that moment (its mtime set to 0 first).
        """
        do = self._open(db)
        try:
            self.start(do, self.prefix(k))
        except Exception as exc:
            do.close()
            failed = {"status": "restart-failed", "detail": f"the next start fails: {exc}"}
            return failed, None, None
        # one transaction (drizzle's start): every page it can have changed in the main file
        # is in a frame of the WAL until the checkpoint below
        written = _wal_pages(f"{db}-wal") if self.start is drizzle_start else None
        busy = do._internal("PRAGMA wal_checkpoint(TRUNCATE)")[0][0]
        exact = not busy and (
            self.holds(db, k) if written is None else self.holds_after(db, k, written)
        )
        if not exact:
            result = self._judge_restart(database_state(do, data=False), k)
            do.close()
            return result, None, None
        if not go_on:
            do.close()
            return {"status": "ok"}, None, None
        if not self._reuses_connection(k):
            do.close()
            do = self._open(db)
        os.utime(db, ns=(0, 0))
        return {"status": "ok"}, do, _stat_key(db)

    def _reuses_connection(self, k: int) -> bool:
        """After restarting migration ``k``, its connection is as fresh as a new one for
        migration ``k + 1``: drizzle's own start, migration ``k`` sets no connection state and
        migration ``k + 1`` reads none (the argument of ``images.ImageCache``)."""
        migrations = self.bundle.migrations
        if self.start is not drizzle_start or k >= len(migrations):
            return False
        return not sets_connection_state(migrations[k - 1]) and not reads_connection_state(
            migrations[k]
        )

    def _restart(self, db: Path, k: int) -> dict[str, Any]:
        """The next start on a crashed copy at ``db`` must reach version ``k`` like a fresh DO."""
        do = self._open(db)
        try:
            self.start(do, self.prefix(k))
        except Exception as exc:
            do.close()
            return {"status": "restart-failed", "detail": f"the next start fails: {exc}"}
        do.close()  # the last connection: checkpoints the WAL into the main file
        if not os.path.exists(f"{db}-wal") and self.holds(db, k):
            return {"status": "ok"}
        return self._judge_restart(database_state(db, data=False), k)

    def _judge_restart(self, after: Any, k: int) -> dict[str, Any]:
        target = self.state(k, False)
        if target is not None and not after.same_as(target, data=False):
            return {
                "status": "restart-differs",
                "detail": "after the next start the database differs from a fresh DO at "
                "this version (- fresh, + restarted):\n" + target.diff(after, data=False),
            }
        return {"status": "ok"}

    def _judge(
        self, k: int, points: list[dict[str, Any]], out: Path, run: _Run
    ) -> tuple[list[dict[str, Any] | None], list[int]]:
        """Each point's result, None for the copies that left exactly the previous version
        (they wait for the next start; their indices are returned too)."""
        results: list[dict[str, Any] | None] = []
        clean: list[int] = []
        for i in range(len(points)):
            snap = out / f"p{i}.db"
            if i not in run.reached:
                if run.failure:
                    detail = f"the start failed before the kill: {run.failure}"
                    results.append({"status": "error", "detail": detail})
                else:
                    results.append(
                        {
                            "status": "unreached",
                            "detail": "the start did not run this statement from the "
                            "previous version (see upgrade_from_every_version)",
                        }
                    )
            elif not snap.exists() and _leaves_previous(str(snap)):
                results.append(None)
                clean.append(i)
            else:
                results.append(self._inspect(self._materialize(k, i, out), k))
        return results, clean

    def _materialize(self, k: int, i: int, out: Path) -> Path:
        """Point ``i``'s copy as a database SQLite can open (``out/p{i}.db``)."""
        snap = out / f"p{i}.db"
        self._dirty = True  # the copy is opened, restarted: new files next to it
        if not snap.exists():  # the main file was the run's first: version k - 1
            image = self.image(k - 1)
            assert image is not None
            main = bytearray(image)
            main[18:20] = b"\x02\x02"  # WAL mode, as the file was
            snap.write_bytes(main)
        return snap

    def _inspect(self, snap: Path, k: int) -> dict[str, Any]:
        check, got = inspect_file(snap)
        if check != "ok":
            return {"status": "corrupt", "detail": f"PRAGMA quick_check: {check}"}
        want = self.state(k - 1, True)
        if not got.same_as(want):
            return {
                "status": "partial",
                "detail": "the database is not at the previous version after the crash "
                "(- previous version, + after the crash):\n" + want.diff(got),
            }
        return self._restart(snap, k)


def _clean(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{db}{suffix}")


def _serve(spec_path: str) -> int:
    """One JSON job per stdin line; one JSON result line per unit of the job, in order."""
    worker = _Worker(spec_path)
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        units = len(job.get("units") or [])
        sent = 0
        try:
            results = worker.upgrade(job) if job.get("op") == "upgrade" else worker.crash(job)
            for result in results:
                _reply(result, job.get("id"), sent)
                sent += 1
        except Exception as exc:
            failure = {"status": "error", "detail": f"{type(exc).__name__}: {exc}\n{_tb()}"}
            while sent < units:
                _reply(failure, job.get("id"), sent)
                sent += 1
    return 0


def _reply(result: dict[str, Any], job: Any, unit: int) -> None:
    sys.stdout.write(json.dumps(dict(result, id=job, unit=unit), default=str) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    mode, rest = args[0], args[1:]
    if mode == "race" and len(rest) >= 3:
        return _race(rest[0], rest[1], int(rest[2]), "--hold" in rest[3:])
    if mode == "child" and len(rest) >= 3:
        barriers = {name: _Barrier(f"{rest[1]}.{name}", None) for name in _BARRIERS}
        hold = "--hold" in rest[3:]
        return _race_child(_load_spec(rest[0]), rest[1], int(rest[2]), hold, barriers)
    if mode == "serve" and len(rest) == 1:
        return _serve(rest[0])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
