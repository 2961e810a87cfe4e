"""Install the pinned workerd/miniflare/drizzle harness into a per-user cache directory.

Why: the real-runtime backend needs ~235 MB of npm packages (the workerd binary alone is
160 MB). They must never land in the user's project nor in a possibly read-only
site-packages, and an install must happen once per lock file, not once per test run. So the
``package.json`` + ``package-lock.json`` shipped next to this module are copied to
``<cache>/workerd-<hash>`` and installed there with ``npm ci --ignore-scripts`` (no install
script is needed: the workerd and esbuild binaries come from their platform packages).

``<cache>`` is ``$DOSQLITE_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/pytest-dosqlite``, else
``~/.cache/pytest-dosqlite``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import DosqliteError

__all__ = [
    "HARNESS_FILES",
    "PINNED_WORKERD",
    "Installation",
    "NodeNotFoundError",
    "WorkerdError",
    "cache_root",
    "ensure_installed",
    "find_node",
    "harness_dir",
]

#: the workerd release the lock file pins (what current wrangler ships; SQLite 3.54.1)
PINNED_WORKERD = "1.20261117.1"
#: files copied from the package into the cache directory next to node_modules
HARNESS_FILES = ("server.mjs", "worker.mjs", "build.mjs")
_LOCK_FILES = ("package.json", "package-lock.json")
_MIN_NODE = (20, 0)
_HERE = Path(__file__).resolve().parent


class WorkerdError(DosqliteError):
    """The real-runtime backend could not be installed, started or reached."""


class NodeNotFoundError(WorkerdError):
    """``node`` or ``npm`` is not on PATH (or too old); the workerd backend cannot run."""


@dataclass(frozen=True)
class Installation:
    """A ready harness directory: node_modules installed and the worker bundled."""

    directory: Path
    node: str
    workerd: Path
    workerd_version: str
    installed_now: bool
    install_seconds: float

    @property
    def server(self) -> Path:
        return self.directory / "server.mjs"

    @property
    def worker_bundle(self) -> Path:
        return self.directory / "dist" / "worker.js"


def cache_root() -> Path:
    """Base cache directory (``$DOSQLITE_CACHE_DIR`` overrides the default)."""
    env = os.environ.get("DOSQLITE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pytest-dosqlite"


def _digest(names: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode())
        h.update(b"\0")
        h.update((_HERE / name).read_bytes())
    return h.hexdigest()


def harness_dir() -> Path:
    """``<cache>/workerd-<hash of package.json + package-lock.json>``."""
    return cache_root() / f"workerd-{_digest(_LOCK_FILES)[:16]}"


def find_node() -> tuple[str, str]:
    """Paths of ``node`` and ``npm`` on PATH; :class:`NodeNotFoundError` if absent or too old."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        missing = "node" if node is None else "npm"
        raise NodeNotFoundError(
            f"pytest-dosqlite's workerd backend needs Node.js >= {_MIN_NODE[0]} with npm, "
            f"but `{missing}` is not on PATH; install Node.js or skip the workerd tests"
        )
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        major, minor = (int(p) for p in out.lstrip("v").split(".")[:2])
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise NodeNotFoundError(f"cannot run `{node} --version`: {exc}") from exc
    if (major, minor) < _MIN_NODE:
        raise NodeNotFoundError(
            f"pytest-dosqlite's workerd backend needs Node.js >= {_MIN_NODE[0]}, found {out}"
        )
    return node, npm


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock (pytest-xdist workers install only once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the atomic rename still protects
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _run(cmd: list[str], cwd: Path, what: str, timeout: float) -> str:
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "npm_config_update_notifier": "false"},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise WorkerdError(f"{what} failed: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise WorkerdError(f"{what} failed (exit {proc.returncode}):\n" + "\n".join(tail))
    return proc.stdout


def _workerd_binary(node: str, directory: Path) -> tuple[Path, str]:
    script = "process.stdout.write(require('workerd').default)"
    out = _run([node, "-e", script], directory, "locating workerd", 60)
    binary = Path(out.strip())
    version = _run([str(binary), "--version"], directory, "workerd --version", 60).strip()
    return binary, version


def _npm_install(npm: str, node: str, target: Path) -> tuple[Path, str]:
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name in _LOCK_FILES:
            shutil.copyfile(_HERE / name, tmp / name)
        _run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            tmp,
            "npm ci (workerd harness)",
            1800,
        )
        pkg = json.loads((tmp / "node_modules" / "workerd" / "package.json").read_text())
        if pkg.get("version") != PINNED_WORKERD:
            raise WorkerdError(
                f"npm installed workerd {pkg.get('version')}, expected {PINNED_WORKERD}"
            )
        binary, version = _workerd_binary(node, tmp)
        if not version.startswith("workerd "):
            raise WorkerdError(f"unexpected `workerd --version` output: {version!r}")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target / binary.relative_to(tmp), version


def _sync_harness(node: str, directory: Path) -> None:
    """Copy the .mjs files when they changed and rebuild the worker bundle."""
    stamp = directory / ".harness-stamp"
    digest = _digest(HARNESS_FILES)
    bundle = directory / "dist" / "worker.js"
    if bundle.exists() and stamp.exists() and stamp.read_text() == digest:
        return
    for name in HARNESS_FILES:
        shutil.copyfile(_HERE / name, directory / name)
    tmp_bundle = directory / "dist" / f"worker.{os.getpid()}.js"
    _run(
        [node, "build.mjs", "worker.mjs", str(tmp_bundle)],
        directory,
        "bundling the harness worker (esbuild)",
        300,
    )
    os.replace(tmp_bundle, bundle)
    stamp.write_text(digest)


def ensure_installed(*, progress: bool = True) -> Installation:
    """Install (once) and return the harness; prints one progress line on a first install."""
    node, npm = find_node()
    directory = harness_dir()
    marker = directory / ".installed.json"
    started = time.monotonic()
    installed_now = False
    with _locked(cache_root() / ".workerd-install.lock"):
        if not marker.exists():
            if directory.exists():  # a broken earlier attempt
                shutil.rmtree(directory)
            if progress:
                print(
                    f"pytest-dosqlite: installing workerd {PINNED_WORKERD} (miniflare, "
                    f"drizzle-orm; ~235 MB, once) into {directory} ...",
                    file=sys.stderr,
                    flush=True,
                )
            binary, version = _npm_install(npm, node, directory)
            marker.write_text(
                json.dumps(
                    {
                        "workerd": str(binary.relative_to(directory)),
                        "workerdVersion": version,
                        "seconds": round(time.monotonic() - started, 1),
                    }
                )
            )
            installed_now = True
        info = json.loads(marker.read_text())
        _sync_harness(node, directory)
    return Installation(
        directory=directory,
        node=node,
        workerd=directory / info["workerd"],
        workerd_version=str(info["workerdVersion"]),
        installed_now=installed_now,
        install_seconds=time.monotonic() - started,
    )
