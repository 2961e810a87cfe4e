"""Python client of the real-runtime (workerd) backend: one server process, many DOs.

Why: the emulator is only trustworthy if it can be compared with what workerd really does.
Starting workerd costs ~1 s, a fresh DO a few ms, so a session starts ONE ``node server.mjs``
and isolates callers by DO name. The client uses only the stdlib (subprocess + http.client).

No orphan processes: the server runs in its own process group (session), watches its stdin
(closed when this process exits, even on SIGKILL), and :meth:`WorkerdBackend.stop` escalates to
SIGTERM/SIGKILL of the whole group; an ``atexit`` hook stops backends left running.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import http.client
import json
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from . import codec
from .install import Installation, WorkerdError, ensure_installed
from .persist import sqlite_path

__all__ = ["DEFAULT_COMPAT_DATE", "Statement", "WorkerdBackend"]

#: compatibility date the harness Worker runs with (the research measurements used it)
DEFAULT_COMPAT_DATE = "2025-09-01"

#: a statement for batch/txn: SQL text, ``(sql, bindings)`` or ``{"sql", "bindings", "mode"}``
Statement = str | tuple[Any, Sequence[Any]] | Mapping[str, Any]

_LIVE: set[WorkerdBackend] = set()
_LIVE_LOCK = threading.Lock()


def _stop_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for backend in live:
        with contextlib.suppress(Exception):
            backend.stop()


atexit.register(_stop_all)


def _statement(item: Statement) -> dict[str, Any]:
    if isinstance(item, str):
        return {"sql": item}
    if isinstance(item, tuple):
        sql, bindings = item
        return {
            "sql": codec.encode_text(sql),
            "bindings": [codec.encode_binding(b) for b in bindings],
        }
    out = dict(item)
    out["sql"] = codec.encode_text(out["sql"])
    if "bindings" in out:
        out["bindings"] = [codec.encode_binding(b) for b in out["bindings"]]
    return out


def js_integer(text: str) -> int:
    """An integer of the harness's JSON: JSON.stringify of a JS number, which beyond 2**53
    writes the shortest decimal of a double (2**60 as 1152921504606847000). Read back as the
    double it stands for, as the emulator returns it (and a DO's JavaScript holds it)."""
    value = int(text)
    return value if abs(value) <= 2**53 else int(float(text))


class WorkerdBackend:
    """A running workerd (through Miniflare) serving SQLite-backed DOs by name.

    Use as a context manager (``with WorkerdBackend() as wb: wb.exec("t1", "SELECT 1")``).
    Results are plain dicts: ``{"ok": True, "columnNames", "rows", "rowsRead", "rowsWritten"}``
    or ``{"ok": False, "error": <workerd's message verbatim>, "errorName"}``; a request the DO
    itself failed (a throw out of the handler, a reset at commit) adds ``"fatal": True``.
    Cells are decoded with :func:`codec.decode_result` (BLOB → ``bytes``).
    """

    def __init__(
        self,
        *,
        persist_dir: Path | str | None = None,
        compat_date: str = DEFAULT_COMPAT_DATE,
        startup_timeout: float = 60.0,
        request_timeout: float = 120.0,
        progress: bool = True,
        installation: Installation | None = None,
    ) -> None:
        self.persist_dir = Path(persist_dir).resolve() if persist_dir is not None else None
        self.compat_date = compat_date
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self._progress = progress
        self.installation = installation
        self._proc: subprocess.Popen[bytes] | None = None
        self._pgid: int | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._threads: list[threading.Thread] = []
        self._host = "127.0.0.1"
        self._port = 0
        #: the server's ready line (url, pid, workerd path, ...)
        self.info: dict[str, Any] = {}
        #: seconds from spawning node to the ready line
        self.startup_seconds: float | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def pgid(self) -> int | None:
        return self._pgid

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}/"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> WorkerdBackend:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> WorkerdBackend:
        """Install if needed, spawn the server and wait for its ready line."""
        if self._proc is not None:
            return self
        inst = self.installation or ensure_installed(progress=self._progress)
        self.installation = inst
        cmd = [
            inst.node,
            str(inst.server),
            "--script",
            str(inst.worker_bundle),
            "--workerd",
            str(inst.workerd),
            "--compat-date",
            self.compat_date,
        ]
        if self.persist_dir is not None:
            self.persist_dir.mkdir(parents=True, exist_ok=True)
            cmd += ["--persist", str(self.persist_dir)]
        env = {**os.environ, "CLOUDFLARE_CF_FETCH_ENABLED": "false"}
        started = time.monotonic()
        kwargs: dict[str, Any] = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True
        else:  # pragma: no cover - Windows
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=inst.directory,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                **kwargs,
            )
        except OSError as exc:
            raise WorkerdError(f"cannot start the workerd server: {exc}") from exc
        self._proc = proc
        self._pgid = proc.pid if os.name == "posix" else None
        with _LIVE_LOCK:
            _LIVE.add(self)
        lines: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None and proc.stderr is not None
        self._drain(proc.stdout, lines)
        self._drain(proc.stderr, None)
        try:
            line = lines.get(timeout=self.startup_timeout)
        except queue.Empty:
            self.stop()
            raise WorkerdError(
                f"workerd server not ready after {self.startup_timeout:.0f} s\n{self.stderr_tail()}"
            ) from None
        try:
            info = json.loads(line) if line else {}
        except json.JSONDecodeError:
            info = {"ready": False, "error": f"unexpected output: {line!r}"}
        if not info.get("ready"):
            self.stop()
            reason = info.get("error") or "the server exited before it was ready"
            raise WorkerdError(f"workerd server failed to start: {reason}\n{self.stderr_tail()}")
        self.startup_seconds = time.monotonic() - started
        self.info = info
        parsed = urllib.parse.urlsplit(str(info["url"]))
        self._host = parsed.hostname or "127.0.0.1"
        self._port = int(parsed.port or 80)
        return self

    def _drain(self, stream: IO[bytes], first: queue.Queue[str | None] | None) -> None:
        """Read a pipe forever so the server never blocks on a full pipe."""

        def run() -> None:
            pending = first
            try:
                for raw in iter(stream.readline, b""):
                    text = raw.decode("utf-8", "replace").rstrip("\n")
                    if pending is not None:
                        pending.put(text)
                        pending = None
                    else:
                        self._stderr.append(text)
            except (OSError, ValueError):  # pragma: no cover - pipe torn down
                pass
            finally:
                if pending is not None:
                    pending.put(None)
                with contextlib.suppress(OSError):
                    stream.close()

        thread = threading.Thread(target=run, name="workerd-drain", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stderr_tail(self, lines: int = 30) -> str:
        """The last lines the server (node and workerd) wrote."""
        return "\n".join(list(self._stderr)[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Close stdin (the server disposes workerd), then SIGTERM/SIGKILL the process group."""
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
                    proc.wait(timeout=5)
            # workerd is node's child in the same group: make sure nothing of it survives
            self._signal_group(signal.SIGKILL)
        finally:
            # the drain threads reach EOF once every writer is gone, and close the pipes
            for thread in self._threads:
                thread.join(timeout=2)
            self._threads = []
            self._proc = None
            with _LIVE_LOCK:
                _LIVE.discard(self)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._pgid is not None and hasattr(os, "killpg"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pgid, sig)
        elif self._proc is not None and self._proc.poll() is None:  # pragma: no cover
            self._proc.kill()

    # -- transport ------------------------------------------------------------------------------
    def request(self, do_name: str, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/do/<do_name>/<action>``; the raw (undecoded) JSON answer."""
        if not self.running:
            raise WorkerdError("the workerd backend is not running (call start())")
        path = f"/do/{urllib.parse.quote(do_name, safe='')}/{action}"
        payload = json.dumps(body).encode("utf-8")
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.request_timeout)
        try:
            conn.request("POST", path, body=payload, headers={"content-type": "application/json"})
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise WorkerdError(f"request to workerd failed: {exc}\n{self.stderr_tail()}") from exc
        finally:
            conn.close()
        try:
            answer: dict[str, Any] = json.loads(data, parse_int=js_integer)
        except json.JSONDecodeError as exc:
            raise WorkerdError(
                f"workerd answered {response.status} with non-JSON: {data[:300]!r}"
            ) from exc
        if response.status != 200 and not answer.get("fatal"):
            raise WorkerdError(f"workerd answered {response.status}: {answer}")
        return answer

    def _call(self, do_name: str, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.request(do_name, action, body)
        decoded: dict[str, Any] = codec.decode_result(answer)
        return decoded

    # -- actions --------------------------------------------------------------------------------
    def exec(self, do_name: str, sql: Any, *bindings: Any, mode: str = "raw") -> dict[str, Any]:
        """One ``ctx.storage.sql.exec(sql, ...bindings)`` in its own request, cursor drained.

        ``mode``: ``raw`` (rows as lists), ``objects`` (``toArray()``), ``one`` (``one()``) or
        ``none`` (cursor not consumed, like drizzle's ``run()``).
        """
        answer = self._call(do_name, "exec", {**_statement((sql, bindings)), "mode": mode})
        if answer.get("fatal"):
            return answer
        result: dict[str, Any] = answer["results"][0]
        result["construction"] = answer.get("construction")
        return result

    def batch(self, do_name: str, statements: Iterable[Statement]) -> dict[str, Any]:
        """Several ``exec`` calls in ONE request (one event-loop turn), errors recorded."""
        return self._call(do_name, "batch", {"statements": [_statement(s) for s in statements]})

    def txn(
        self,
        do_name: str,
        statements: Iterable[Statement],
        *,
        throw: bool | str = False,
        catch_errors: bool = True,
        before: Sequence[Mapping[str, Any]] = (),
        after: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """The statements inside ``ctx.storage.transactionSync`` (one request).

        ``throw`` throws a JS Error at the end of the callback (rollback); with
        ``catch_errors=False`` the first SQL error escapes the callback instead of being recorded.
        ``before``/``after`` are script steps run in the same request around the transaction.
        """
        body = {
            "statements": [_statement(s) for s in statements],
            "throw": throw,
            "catchErrors": catch_errors,
            "before": list(before),
            "after": list(after),
        }
        return self._call(do_name, "txn", body)

    def migrate(
        self,
        do_name: str,
        journal: Mapping[str, Any],
        migrations: Mapping[str, str],
        *,
        before: Sequence[Mapping[str, Any]] = (),
        after: Sequence[Mapping[str, Any]] = (),
        await_before_after: bool = False,
    ) -> dict[str, Any]:
        """drizzle-orm 0.45.4's real ``migrate(drizzle(ctx.storage), {journal, migrations})``.

        Returns ``{"ok": True}`` or ``{"ok": False, "error": "DrizzleError: Rollback"}`` (what a
        caller sees), plus ``results`` (every step of the request) and ``construction``.
        """
        body = {
            "journal": dict(journal),
            "migrations": dict(migrations),
            "before": list(before),
            "after": list(after),
            "awaitBeforeAfter": await_before_after,
        }
        answer = self._call(do_name, "migrate", body)
        if answer.get("fatal"):
            return answer
        entry = next(r for r in answer["results"] if r.get("op") == "migrate")
        out = {k: v for k, v in entry.items() if k not in ("op", "ms")}
        out["ms"] = entry.get("ms")
        out["results"] = answer["results"]
        out["construction"] = answer.get("construction")
        return out

    def script(self, do_name: str, steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Run harness steps (see worker.mjs) in one request; ``exec`` steps may carry bindings."""
        encoded = [
            {**_statement(s), **{k: v for k, v in s.items() if k not in ("sql", "bindings")}}
            if s.get("op") == "exec"
            else dict(s)
            for s in steps
        ]
        return self._call(do_name, "script", {"steps": encoded})

    def set_constructor(self, do_name: str, plans: Sequence[Mapping[str, Any]]) -> None:
        """Plan k (``{"steps": [...]}`` or ``{"syncThrow": msg}``) runs in construction k."""
        answer = self.request(do_name, "ctor", {"plans": list(plans)})
        if not answer.get("ok"):
            raise WorkerdError(f"cannot set constructor plans: {answer}")

    def dump(self, do_name: str) -> dict[str, Any]:
        """The schema and ``__drizzle_migrations`` ledger, with the bundles' README queries.

        ``{"schema": [{type, name, tbl_name, sql}], "journal": [{rowid, id, hash, created_at,
        id_type, created_at_type}] | None}`` (None when the ledger table does not exist).
        """
        return self._call(do_name, "dump", {})

    def size(self, do_name: str) -> int:
        """``ctx.storage.sql.databaseSize``."""
        answer = self._call(do_name, "size", {})
        if answer.get("fatal"):
            raise WorkerdError(f"databaseSize failed: {answer.get('error')}")
        return int(answer["results"][0]["databaseSize"])

    def sqlite_path(self, do_name: str) -> Path:
        """Path of the DO's SQLite file (needs ``persist_dir``; read it after :meth:`stop`)."""
        if self.persist_dir is None:
            raise WorkerdError("sqlite_path() needs WorkerdBackend(persist_dir=...)")
        return sqlite_path(self.persist_dir, do_name)
