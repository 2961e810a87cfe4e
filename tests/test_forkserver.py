"""The fork server: a forked child behaves like the ``python -m`` process it replaces."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import threading
from pathlib import Path

import pytest

from pytest_dosqlite import forkserver
from pytest_dosqlite.forkserver import NO_FORKSERVER_ENV, ForkedChild, spawn

ECHO = textwrap.dedent(
    """
    import json, os, sys
    sys.stderr.write("to stderr\\n")
    sys.stderr.flush()
    for line in sys.stdin:
        if line.strip() == "raise":
            raise RuntimeError("asked to fail")
        sys.stdout.write("got " + line)
        sys.stdout.flush()
    print(json.dumps({
        "cwd": os.getcwd(),
        "env": os.environ.get("ECHO_VALUE"),
        "argv": sys.argv[1:],
        "name": __name__,
        "ppid": os.getppid(),
    }))
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    """
)

SLEEPER = "import time\nprint('up', flush=True)\ntime.sleep(600)\n"

forking = pytest.mark.skipif(not forkserver._supported(), reason="no os.fork/SOCK_SEQPACKET here")


@pytest.fixture(params=["forked", "popen"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "forked":
        if not forkserver._supported():
            pytest.skip("no os.fork/SOCK_SEQPACKET on this platform")
        monkeypatch.delenv(NO_FORKSERVER_ENV, raising=False)
    else:
        monkeypatch.setenv(NO_FORKSERVER_ENV, "1")
    return str(request.param)


def _modules(tmp_path: Path) -> Path:
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "echo_child.py").write_text(ECHO)
    (folder / "sleeper_child.py").write_text(SLEEPER)
    return folder


def _env(mods: Path, **extra: str) -> dict[str, str]:
    paths = [str(mods), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    src = Path(forkserver.__file__).resolve().parents[1]
    return dict(os.environ, PYTHONPATH=os.pathsep.join([*paths, str(src)]), **extra)


def _run_echo(
    mods: Path, cwd: Path, stderr_path: Path, lines: list[str], code: int
) -> tuple[object, list[str]]:
    with stderr_path.open("wb") as err:
        child = spawn(
            "echo_child",
            [str(code), "extra arg"],
            env=_env(mods, ECHO_VALUE="from the request"),
            stderr=err,
            cwd=str(cwd),
        )
    assert child.stdin is not None and child.stdout is not None
    for line in lines:
        child.stdin.write(line.encode() + b"\n")
    child.stdin.close()
    out = child.stdout.read().decode().splitlines()
    child.stdout.close()
    assert child.wait(timeout=60) == code
    return child, out


def test_child_runs_the_module_as_main_with_the_requests_argv_env_cwd_and_stdio(
    mode: str, tmp_path: Path
) -> None:
    mods = _modules(tmp_path)
    workdir = tmp_path / "work"
    workdir.mkdir()
    child, out = _run_echo(mods, workdir, tmp_path / "err.txt", ["one", "two"], 3)
    assert out[:2] == ["got one", "got two"]
    facts = json.loads(out[2])
    assert facts["name"] == "__main__"
    assert facts["argv"] == ["3", "extra arg"]
    assert facts["env"] == "from the request"
    assert Path(facts["cwd"]).resolve() == workdir.resolve()
    assert (tmp_path / "err.txt").read_text() == "to stderr\n"
    assert child.returncode == 3
    if mode == "forked":
        assert isinstance(child, ForkedChild)
        server = forkserver._servers[os.getpid()]
        assert server is not None and facts["ppid"] == server.proc.pid
    else:
        assert isinstance(child, subprocess.Popen)
        assert facts["ppid"] == os.getpid()


def test_an_uncaught_exception_exits_1_with_its_traceback_on_stderr(
    mode: str, tmp_path: Path
) -> None:
    mods = _modules(tmp_path)
    _, out = _run_echo(mods, tmp_path, tmp_path / "err.txt", ["a", "raise"], 1)
    assert out == ["got a"]
    err = (tmp_path / "err.txt").read_text()
    assert "RuntimeError: asked to fail" in err and "Traceback" in err


def test_kill_and_wait_timeout_behave_like_popen(mode: str, tmp_path: Path) -> None:
    mods = _modules(tmp_path)
    child = spawn("sleeper_child", [], env=_env(mods), stderr=subprocess.DEVNULL)
    assert child.stdout is not None and child.stdout.readline() == b"up\n"
    assert child.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.05)
    child.kill()
    assert child.wait(timeout=60) == -9
    assert child.poll() == -9
    child.stdout.close()
    assert child.stdin is not None
    child.stdin.close()


def test_the_fleet_launcher_module_runs_afresh_and_reports_usage(mode: str, tmp_path: Path) -> None:
    """``pytest_dosqlite._start`` is imported in the server; run as __main__ it still is a
    new module (argv parsed, usage on stderr, exit 2), as under ``python -m``."""
    err_path = tmp_path / "err.txt"
    with err_path.open("wb") as err:
        child = spawn("pytest_dosqlite._start", [], env=_env(_modules(tmp_path)), stderr=err)
    assert child.stdin is not None
    child.stdin.close()
    assert child.wait(timeout=60) == 2
    err = err_path.read_text()
    assert "python -m pytest_dosqlite._start race" in err
    assert "RuntimeWarning" not in err  # runpy's "found in sys.modules" about the preload
    assert child.stdout is not None
    child.stdout.close()


def test_many_children_spawned_from_threads_at_once(mode: str, tmp_path: Path) -> None:
    mods = _modules(tmp_path)
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            _, out = _run_echo(mods, tmp_path, tmp_path / f"err{i}.txt", [f"line {i}"], i % 4)
            results[i] = out
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(results) == list(range(12))
    for i, out in results.items():
        assert out[0] == f"got line {i}"
        assert json.loads(out[1])["argv"][0] == str(i % 4)


@forking
def test_the_server_exits_when_its_client_closes(tmp_path: Path) -> None:
    server = forkserver._Server(_env(_modules(tmp_path)))
    assert server.proc.poll() is None
    server.close()
    assert server.proc.wait(timeout=30) == 0


@forking
def test_a_server_that_cannot_preload_leaves_spawn_on_popen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server imports the fleet launcher before it says ready; when that import fails,
    it does not start and every spawn of this process is an ordinary subprocess."""
    monkeypatch.delenv(NO_FORKSERVER_ENV, raising=False)
    mods = _modules(tmp_path)
    with pytest.raises(OSError, match="did not start"):
        forkserver._Server(_env(mods), "no_such_module_for_the_server")
    monkeypatch.setattr(forkserver, "_PRELOAD", "no_such_module_for_the_server")
    monkeypatch.setattr(forkserver, "_servers", {})
    child, out = _run_echo(mods, tmp_path, tmp_path / "err.txt", ["x"], 0)
    assert isinstance(child, subprocess.Popen)
    assert out[0] == "got x"
    assert forkserver._servers == {os.getpid(): None}


def test_no_forkserver_env_gives_popen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NO_FORKSERVER_ENV, "1")
    child = spawn("echo_child", ["0"], env=_env(_modules(tmp_path)), stderr=subprocess.DEVNULL)
    assert isinstance(child, subprocess.Popen)
    out, _ = child.communicate(b"")
    assert json.loads(out.decode().splitlines()[0])["argv"] == ["0"]
