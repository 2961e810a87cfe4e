"""Fleet children in milliseconds: a server that has imported the package forks them.

Every fleet check starts child processes (``python -m pytest_dosqlite._start ...``). A new
interpreter that imports this package costs about 90 ms of CPU and of latency per child, more
than the race or crash chain it then runs. A fork of a process that has already imported it
costs a few milliseconds. :func:`spawn` returns a :class:`ForkedChild`, which behaves like the
``subprocess.Popen`` it replaces, from a server started on first use, one per pytest process
(each xdist worker has its own). It falls back to ``subprocess.Popen`` where ``os.fork`` or
``AF_UNIX`` ``SOCK_SEQPACKET`` sockets do not exist, when the server cannot start, or when the
environment variable ``DOSQLITE_NO_FORKSERVER`` is set.

A child runs ``runpy.run_module(module, run_name="__main__")`` with the argv, environment,
working directory and import path of the request, as ``python -m module argv...`` would: only
the modules imported before the fork (this package and its dependencies, never user code) are
shared. Protocol: one ``SOCK_SEQPACKET`` socket pair between the client and the server; a
request is one JSON message ``{"module", "argv", "env", "cwd"}`` carrying four descriptors
(the child's stdin, stdout and stderr, and a stream socket for the answer); the server forks
and writes ``"<pid>\\n"`` on the answer socket, then ``"<returncode>\\n"`` when the child exits
(negative: the signal that killed it, as ``Popen.returncode``). The server exits when the
client's end of the socket pair closes (the pytest process ended).

    python -m pytest_dosqlite.forkserver FD MODULE
        the server: FD is its end of the socket pair, MODULE what it imports before forking
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import IO, Any, Protocol

__all__ = ["NO_FORKSERVER_ENV", "Child", "ForkedChild", "spawn"]

NO_FORKSERVER_ENV = "DOSQLITE_NO_FORKSERVER"
_PRELOAD = "pytest_dosqlite._start"
_MAX_REQUEST = 1 << 20


class Child(Protocol):
    """What the fleet checks use of a child process (``subprocess.Popen`` has it all)."""

    pid: int
    stdin: IO[bytes] | None
    stdout: IO[bytes] | None
    returncode: int | Any

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


def spawn(
    module: str,
    argv: list[str],
    *,
    env: dict[str, str],
    stderr: IO[bytes] | int | None = None,
    cwd: str | None = None,
) -> Child:
    """``python -m module *argv`` with piped stdin and stdout, forked when it can be."""
    server = _server(env)
    if server is not None:
        child = server.spawn(module, argv, env=env, stderr=stderr, cwd=cwd)
        if child is not None:
            return child
    return subprocess.Popen(
        [sys.executable, "-m", module, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
        cwd=cwd,
    )


class ForkedChild:
    """A child forked by the server: the parts of ``subprocess.Popen`` the fleet checks use.

    Built from the answer socket of its request; reads the pid the server writes there first
    (ValueError when the server died before forking it).
    """

    def __init__(self, answer: socket.socket, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self._answer = answer
        self._buffer = b""
        self._lock = threading.Lock()
        self.pid = int(self._line(60))
        self.stdin: IO[bytes] | None = stdin
        self.stdout: IO[bytes] | None = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.wait(timeout=0)
        return None

    def wait(self, timeout: float | None = None) -> int:
        with self._lock:
            if self.returncode is None:
                line = self._line(timeout)
                self._answer.close()
                try:
                    self.returncode = int(line)
                except ValueError:  # the server is gone: the exit status is lost
                    self.returncode = -1
            return self.returncode

    def _line(self, timeout: float | None) -> bytes:
        """The server's next line about this child; b"" once the server has gone."""
        self._answer.settimeout(timeout)
        while b"\n" not in self._buffer:
            try:
                data = self._answer.recv(64)
            except (TimeoutError, BlockingIOError):
                raise subprocess.TimeoutExpired("forked child", timeout or 0) from None
            except OSError:
                data = b""
            if not data:
                return b""
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._answer.close()


class _Server:
    """The client side: one server process and our end of its socket pair."""

    def __init__(self, env: dict[str, str], preload: str = _PRELOAD) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = ["-m", "pytest_dosqlite.forkserver", str(theirs.fileno()), preload]
        try:
            self.proc = subprocess.Popen(
                [sys.executable, *command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        self.pid = os.getpid()
        ours.settimeout(60)
        try:
            ready = ours.recv(16)
        except OSError:
            ready = b""
        if ready != b"ready":  # the preload failed: Popen from now on
            ours.close()
            self.proc.wait()
            raise OSError("the fork server did not start")
        ours.settimeout(None)

    def spawn(
        self,
        module: str,
        argv: list[str],
        *,
        env: dict[str, str],
        stderr: IO[bytes] | int | None,
        cwd: str | None,
    ) -> ForkedChild | None:
        request = json.dumps(
            {"module": module, "argv": argv, "env": env, "cwd": cwd or os.getcwd()}
        ).encode()
        if len(request) > _MAX_REQUEST:
            return None
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        answer, answer_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        err_fd, err_close = _stderr_fd(stderr)
        try:
            with self.lock:
                socket.send_fds(
                    self.sock, [request], [stdin_r, stdout_w, err_fd, answer_theirs.fileno()]
                )
        except OSError:
            for fd in (stdin_r, stdin_w, stdout_r, stdout_w):
                os.close(fd)
            answer.close()
            return None
        finally:
            answer_theirs.close()
            if err_close:
                os.close(err_fd)
        os.close(stdin_r)
        os.close(stdout_w)
        stdin = os.fdopen(stdin_w, "wb")
        stdout = os.fdopen(stdout_r, "rb")
        try:
            return ForkedChild(answer, stdin, stdout)
        except (ValueError, subprocess.TimeoutExpired):  # the server died: nothing started
            stdin.close()
            stdout.close()
            answer.close()
            return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)


def _stderr_fd(stderr: IO[bytes] | int | None) -> tuple[int, bool]:
    """The descriptor the child writes its stderr to, and whether we opened it."""
    if stderr is None:
        return os.dup(2), True
    if stderr == subprocess.DEVNULL:
        return os.open(os.devnull, os.O_WRONLY), True
    if isinstance(stderr, int):
        return stderr, False
    return stderr.fileno(), False


_servers: dict[int, _Server | None] = {}
_servers_lock = threading.Lock()


def _server(env: dict[str, str]) -> _Server | None:
    """This process's server, started on first use; None where forking is not available."""
    if os.environ.get(NO_FORKSERVER_ENV) or not _supported():
        return None
    pid = os.getpid()
    with _servers_lock:
        if pid not in _servers:
            try:
                _servers[pid] = _Server(env, _PRELOAD)
            except (OSError, subprocess.SubprocessError):
                _servers[pid] = None
            else:
                import atexit

                atexit.register(_shutdown, pid)
        return _servers[pid]


def _shutdown(pid: int) -> None:
    server = _servers.pop(pid, None)
    if server is not None and server.pid == os.getpid():
        server.close()


def _supported() -> bool:
    return (
        hasattr(os, "fork")
        and hasattr(socket, "AF_UNIX")
        and hasattr(socket, "SOCK_SEQPACKET")
        and hasattr(socket, "send_fds")
    )


# ---------------------------------------------------------------------------- the server


def _serve(fd: int, preload: str) -> int:
    """Fork one child per request until the client's end of the socket pair closes."""
    import importlib
    import selectors

    control = socket.socket(fileno=fd)
    try:
        importlib.import_module(preload)
    except Exception:
        return 1
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: pytest closes the socket pair
    answers: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    control.sendall(b"ready")
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                try:
                    message, fds, _flags, _addr = socket.recv_fds(control, _MAX_REQUEST, 4)
                except OSError:
                    message, fds = b"", []
                if not message:  # the pytest process is gone; init reaps what still runs
                    return 0
                _fork(message, fds, answers, (control, selector), (wake_r, wake_w))
            else:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 512):
                        pass
        _reap(answers)


def _fork(
    message: bytes,
    fds: list[int],
    answers: dict[int, socket.socket],
    server: tuple[socket.socket, Any],
    wake: tuple[int, int],
) -> None:
    if len(fds) != 4:
        for fd in fds:
            os.close(fd)
        return
    answer = socket.socket(fileno=fds[3])
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            for closable in server:
                closable.close()
            for other in answers.values():
                other.close()
            answer.close()
            for fd in wake:
                os.close(fd)
            code = _child(json.loads(message), fds[:3])
        finally:
            os._exit(code)
    for fd in fds[:3]:
        os.close(fd)
    with contextlib.suppress(OSError):
        answer.sendall(f"{pid}\n".encode())
    answers[pid] = answer


def _reap(answers: dict[int, socket.socket]) -> None:
    while answers:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        answer = answers.pop(pid, None)
        if answer is not None:
            with contextlib.suppress(OSError):
                answer.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            answer.close()


def _child(request: dict[str, Any], stdio: list[int]) -> int:  # pragma: no cover - forked
    """In the forked child: become ``python -m module argv...`` of the request."""
    import runpy

    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own stdio
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    env = request["env"]
    os.environ.clear()
    os.environ.update(env)
    os.chdir(request["cwd"])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [request["cwd"], *paths, *(p for p in sys.path[1:] if p not in paths)]
    sys.argv = [request["module"], *request["argv"]]
    sys.modules.pop(request["module"], None)  # run afresh as __main__, as ``python -m`` does
    code: Any = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(_serve(int(sys.argv[1]), sys.argv[2]) if len(sys.argv) == 3 else 2)
