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
        first migration ("holding") until ``continue``; ``go-others`` releases the rest.
    python -m pytest_dosqlite._start serve SPEC
        crash worker: one JSON job per stdin line, one JSON result per stdout line. A crash job
        is one migration: a forked child runs the start and copies the database files at each
        of the job's crash points (then kills itself); the worker inspects every copy and runs
        the next start on it.
    python -m pytest_dosqlite._start snapshots SPEC JOB
        one crash child, for platforms without os.fork.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import apsw

from .bundle import Bundle, Migration
from .errors import DosqliteError
from .fleet import (
    StartFn,
    _upgrade,
    database_state,
    error_fields,
    inspect_file,
    outcome_fields,
    resolve_start,
    write_image,
)
from .sqltext import split
from .storage import Cursor, DurableObjectStorage, SqlStorage

__all__ = ["main"]

#: exit codes of a crash child that did not die at its kill point
EXIT_NOT_REACHED = 5
EXIT_ERROR = 3
#: where SIGKILL does not exist (Windows), os._exit stands in for it
EXIT_KILLED = 9


def _die() -> NoReturn:
    """Abrupt death: no rollback, no close, no flush (what an evicted DO host does)."""
    kill = getattr(signal, "SIGKILL", None)
    if kill is not None:
        os.kill(os.getpid(), kill)
    os._exit(EXIT_KILLED)


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


class _Snapshots(_Tap):
    """Copies the database files at each crash point of one migration, then goes on.

    A process killed at a point leaves the files exactly as they are at that moment (its page
    cache, its locks and everything it would have done next are gone), so one run that copies
    them at every point stands for one killed run per point, and runs each statement once
    instead of once per later point. Points are ``(chunk, statement)`` as in
    :class:`~pytest_dosqlite.fleet.CrashPoint`; ``(None, None)`` is right after the ledger
    INSERT. The statements between two points of a chunk run in one exec, as workerd's loop
    runs them. After the last point the process dies: nothing it commits matters any more.
    """

    def __init__(
        self,
        storage: DurableObjectStorage,
        migration: Migration,
        points: list[tuple[int | None, int | None]],
        db: str,
        out: str,
    ) -> None:
        super().__init__(storage, migration)
        self._db = db
        self._out = out
        self._stops: dict[int, list[tuple[int, int]]] = {}
        self._ledger: int | None = None
        for i, (chunk, statement) in enumerate(points):
            if chunk is None:
                self._ledger = i
            else:
                self._stops.setdefault(chunk, []).append((statement or 0, i))

    def _snapshot(self, point: int) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            source = self._db + suffix
            if os.path.exists(source):
                shutil.copyfile(source, os.path.join(self._out, f"p{point}.db{suffix}"))

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
        _die()


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


def _snapshot_child(spec: dict[str, Any], job: dict[str, Any]) -> NoReturn:
    """Migrate from version ``count - 1``, copying the files at every point (never returns)."""
    db = job["db"]
    alarm = getattr(signal, "alarm", None)
    if alarm is not None:  # never outlive a worker killed by the parent's watchdog
        alarm(max(1, int(float(job.get("timeout", 600)))))
    try:
        bundle: Bundle = spec["bundle"]
        count = int(job["count"])
        prefix = bundle.prefix(count)
        start = resolve_start(spec.get("start"))
        do = DurableObjectStorage(db)
        points = [(p["chunk"], p["statement"]) for p in job["points"]]
        do.sql = _Snapshots(do, bundle.migrations[count - 1], points, db, job["snapshots"])
        start(do, prefix)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            Path(db + ".err").write_text(f"{type(exc).__name__}: {exc}")
        os._exit(EXIT_ERROR)
    os._exit(EXIT_NOT_REACHED)


class _Worker:
    """Runs crash jobs (one migration each: snapshot, inspect, restart) and upgrade jobs."""

    def __init__(self, spec_path: str) -> None:
        self.spec_path = spec_path
        self.spec = _load_spec(spec_path)
        self.bundle: Bundle = self.spec["bundle"]
        self.start: StartFn = resolve_start(self.spec.get("start"))
        self.store: dict[str, Any] = self.spec.get("images") or {}
        self._pages: bytes | None = None
        self._template: tuple[int, Path] | None = None
        #: the template file's bytes (to recognise an untouched database)
        self._template_bytes = b""
        self._states: dict[tuple[int, bool], Any] = {}

    def image(self, k: int) -> bytes | None:
        """Version ``k``'s image from the page store (None when it does not build)."""
        refs = self.store.get("versions", {}).get(k)
        if refs is None:
            return None
        if self._pages is None:
            self._pages = Path(self.store["file"]).read_bytes()
        view = memoryview(self._pages)
        spans = self.store["spans"]
        return b"".join(view[o : o + n] for o, n in (spans[i] for i in refs))

    def template(self, k: int, db: Path) -> Path | None:
        """A WAL-mode database file at version ``k`` to copy per crash (built once per k)."""
        if self._template is not None and self._template[0] == k:
            return self._template[1]
        image = self.image(k)
        if image is None:
            return None
        path = db.with_name(db.name + ".template")
        write_image(path, image)
        self._template = (k, path)
        self._template_bytes = path.read_bytes()
        return path

    def state(self, k: int, data: bool) -> Any:
        key = (k, data)
        if key not in self._states:
            image = self.image(k)
            self._states[key] = None if image is None else database_state(image, data=data)
        return self._states[key]

    def upgrade(self, job: dict[str, Any]) -> dict[str, Any]:
        """Upgrade a fresh DO at version ``count`` to head (upgrade_from_every_version)."""
        image = self.image(int(job["count"]))
        head = self.state(len(self.bundle.migrations), False)
        if image is None or head is None:
            return {"status": "error", "detail": "missing image"}
        outcome = _upgrade(image, self.bundle, head, self.start)
        return {"status": "ok", "outcome": outcome_fields(outcome)}

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """A crash job: every point of migration ``count``, one result per point."""
        k = int(job["count"])
        points: list[dict[str, Any]] = job["points"]
        db = Path(job["db"])
        template = self.template(k - 1, db)
        if template is None:
            unbuilt = {"status": "unreached", "detail": "the previous version does not build"}
            return {"status": "ok", "points": [dict(unbuilt) for _ in points]}
        snapshots = db.with_name(db.name + ".snapshots")
        _clean(db)
        shutil.rmtree(snapshots, ignore_errors=True)
        snapshots.mkdir()
        shutil.copyfile(template, db)
        try:
            code = self._snapshot_run(dict(job, snapshots=str(snapshots)))
            err = Path(str(db) + ".err")
            failure = err.read_text("utf-8", "replace") if err.exists() else f"exit {code}"
            restart: dict[str, Any] | None = None
            results: list[dict[str, Any]] = []
            for i in range(len(points)):
                snap = snapshots / f"p{i}.db"
                if not snap.exists():
                    if code in (EXIT_NOT_REACHED, EXIT_KILLED):
                        results.append(
                            {
                                "status": "unreached",
                                "detail": "the start did not run this statement from the "
                                "previous version (see upgrade_from_every_version)",
                            }
                        )
                    else:
                        results.append(
                            {
                                "status": "error",
                                "detail": f"the start failed before the kill: {failure}",
                            }
                        )
                elif self._untouched(snap):
                    # byte for byte the previous version (so intact, with its schema, ledger
                    # and data): every such point restarts from the same database
                    if restart is None:
                        restart = self._restart(snap, k)
                    results.append(dict(restart))
                else:
                    results.append(self._inspect(snap, k))
            return {"status": "ok", "points": results}
        finally:
            _clean(db)
            shutil.rmtree(snapshots, ignore_errors=True)

    def _untouched(self, snap: Path) -> bool:
        """The snapshot holds exactly the template: nothing of the start reached the files."""
        wal = Path(f"{snap}-wal")
        if (not wal.exists() or wal.stat().st_size == 0) and not Path(f"{snap}-journal").exists():
            return snap.read_bytes() == self._template_bytes
        return _content(snap) == self._template_bytes

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

    def _restart(self, db: Path, k: int) -> dict[str, Any]:
        """The next start on the crashed database must reach version ``k`` like a fresh DO."""
        do = DurableObjectStorage(db)
        try:
            self.start(do, self.bundle.prefix(k))
            after = database_state(do, data=False)
        except Exception as exc:
            return {"status": "restart-failed", "detail": f"the next start fails: {exc}"}
        finally:
            do.close()
        target = self.state(k, False)
        if target is not None and not after.same_as(target, data=False):
            return {
                "status": "restart-differs",
                "detail": "after the next start the database differs from a fresh DO at "
                "this version (- fresh, + restarted):\n" + target.diff(after, data=False),
            }
        return {"status": "ok"}

    def _snapshot_run(self, job: dict[str, Any]) -> int:
        """Run the snapshot child; its exit code (EXIT_KILLED when it killed itself)."""
        if _forking():
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child dies by SIGKILL or os._exit
                _snapshot_child(self.spec, job)
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status):
                return EXIT_KILLED if os.WTERMSIG(status) == signal.SIGKILL else -1
            return os.WEXITSTATUS(status)
        proc = subprocess.run(_command("snapshots", self.spec_path, json.dumps(job)), check=False)
        code = proc.returncode
        return EXIT_KILLED if code == -getattr(signal, "SIGKILL", 9) else code


def _content(path: Path) -> bytes:
    """The database as SQLite reads it (main file plus committed WAL frames), as bytes."""
    conn = apsw.Connection(str(path))
    try:
        conn.set_busy_timeout(60_000)
        data = conn.serialize("main")
    finally:
        conn.close()
    return bytes(data) if data is not None else b""


def _clean(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", ".err"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{db}{suffix}")


def _serve(spec_path: str) -> int:
    worker = _Worker(spec_path)
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            result = worker.upgrade(job) if job.get("op") == "upgrade" else worker.run(job)
        except Exception as exc:
            result = {"status": "error", "detail": f"{type(exc).__name__}: {exc}\n{_tb()}"}
        result["id"] = job.get("id")
        sys.stdout.write(json.dumps(result, default=str) + "\n")
        sys.stdout.flush()
    return 0


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
    if mode == "snapshots" and len(rest) == 2:
        _snapshot_child(_load_spec(rest[0]), json.loads(rest[1]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
