"""Fixtures for users' own tests: fresh DOs, at head or at any version of a bundle.

Every test gets its own private DO. On the emulator (the default) it is a copy of a cached
database image, so a migrated DO costs a memory copy. With ``--dosqlite-backend=workerd`` it is
a :class:`~pytest_dosqlite.backends.RemoteDurableObject`: a uniquely named DO inside the
session's one workerd process, migrated by drizzle's real ``migrate()`` (a few ms each).
``dosqlite_bundle`` is parametrized over the bundles found in the project (override it in a
``conftest.py`` to pin one).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .backends import EmulatorBackend, WorkerdRuntime
    from .bundle import Bundle
    from .images import ImageCache
    from .storage import DurableObjectStorage

__all__ = [
    "do_at",
    "do_storage",
    "dosqlite_backend",
    "dosqlite_bundle",
    "dosqlite_images",
    "dosqlite_start",
    "migrated_do",
]

#: a DO handle: ``DurableObjectStorage`` (emulator) or ``RemoteDurableObject`` (workerd)
DOHandle = Any


def _workerd(config: pytest.Config) -> WorkerdRuntime | None:
    """The session's workerd runtime when ``--dosqlite-backend=workerd``, else None."""
    from .plugin import _session

    ds = _session(config)
    if ds is None or ds.settings.backend != "workerd":
        return None
    return ds.workerd


def _remote(make: Callable[[], Any]) -> Any:
    """Run ``make`` on the workerd runtime; a runtime that cannot start, or a bundle that drizzle's
    migrate() rejects there, fails the test cleanly."""
    from .backends import WorkerdUnsupported
    from .errors import MigrationError
    from .workerd import WorkerdError

    try:
        return make()
    except (WorkerdError, WorkerdUnsupported) as exc:
        failure = f"workerd backend: {exc}"
    except MigrationError as exc:
        failure = f"a fresh Durable Object in workerd cannot be migrated:\n{exc}"
    pytest.fail(failure, pytrace=False)  # outside the except: no "during handling" chain


def _fresh(images: ImageCache, bundle: Bundle, count: int | None, fixture: str) -> Any:
    """``images.fresh(bundle, count)``; a bundle a fresh DO cannot migrate fails the test with
    the migration, the statement, its line and the cause, not a traceback through this plugin."""
    from .errors import MigrationError

    try:
        return images.fresh(bundle, count)
    except MigrationError as exc:
        version = "head" if count is None else f"version {count}"
        if count:  # the migration asked for (do_at's tag), not only its version number
            version += f" (through {bundle.migrations[count - 1].tag})"
        failure = f"{fixture}: a fresh Durable Object of {bundle.root} cannot be migrated to "
        failure += f"{version}:\n{exc}"
    pytest.fail(failure, pytrace=False)  # outside the except: no "during handling" chain


@pytest.fixture(scope="session")
def dosqlite_images() -> ImageCache:
    """The session's cache of bundle images (one per bundle version)."""
    from .images import default_cache

    return default_cache()


@pytest.fixture(scope="session")
def dosqlite_backend(request: pytest.FixtureRequest) -> EmulatorBackend | WorkerdRuntime:
    """Where this session's DOs run: ``.name`` is ``"emulator"`` or ``"workerd"``.

    ``dosqlite_backend.fresh(bundle, count)`` and ``.empty()`` hand out DOs of that backend.
    """
    from .backends import EmulatorBackend
    from .plugin import _session

    ds = _session(request.config)
    if ds is None:
        return EmulatorBackend()
    return ds.backend


@pytest.fixture(scope="session")
def dosqlite_bundle(request: pytest.FixtureRequest) -> Bundle:
    """The bundle under test (parametrized over every bundle the project has)."""
    param = getattr(request, "param", None)
    if param is None:
        raise pytest.UsageError(
            "dosqlite_bundle: no drizzle bundle was found for this project. Point pytest at it "
            "with --dosqlite-bundle PATH (or ini dosqlite_bundles), or override the "
            "dosqlite_bundle fixture in conftest.py with pytest_dosqlite.load_bundle(...)."
        )
    return _chosen_bundle(request, param)


def _chosen_bundle(request: pytest.FixtureRequest, param: Any) -> Bundle:
    """The bundle a parametrization names: one the session found (the plugin's own), or the
    test's ``@pytest.mark.parametrize("dosqlite_bundle", [...], indirect=True)`` value: a
    :class:`Bundle`, a found bundle's label (as in the test ids), or a path (relative to the
    rootdir)."""
    from .bundle import Bundle, load_bundle
    from .errors import BundleError
    from .plugin import _session

    found = getattr(param, "bundle", None)
    if isinstance(found, Bundle):
        return found
    if isinstance(param, Bundle):
        return param
    if not isinstance(param, (str, os.PathLike)):
        raise pytest.UsageError(
            f"dosqlite_bundle: parametrize it with a bundle's label, its path or a Bundle, "
            f"not {type(param).__name__}"
        )
    ds = _session(request.config)
    for f in ds.found if ds is not None else ():
        if f.label == str(param) or f.bundle.root.resolve() == _under_rootdir(request, param):
            return f.bundle
    try:
        return load_bundle(_under_rootdir(request, param))
    except BundleError as exc:
        failure = f"dosqlite_bundle: cannot load {os.fspath(param)!r}: {exc}"
    pytest.fail(failure, pytrace=False)


def _under_rootdir(request: pytest.FixtureRequest, path: str | os.PathLike[str]) -> Path:
    return (Path(str(request.config.rootpath)) / path).resolve()


@pytest.fixture
def do_storage(request: pytest.FixtureRequest) -> Iterator[DurableObjectStorage]:
    """A fresh, empty SQLite-backed DO storage (in memory, or a new DO inside workerd)."""
    runtime = _workerd(request.config)
    if runtime is not None:
        yield _remote(lambda: runtime.empty(request.node.nodeid))
        return
    from .storage import DurableObjectStorage

    do = DurableObjectStorage()
    yield do
    do.close()


@pytest.fixture
def migrated_do(
    request: pytest.FixtureRequest, dosqlite_bundle: Bundle, dosqlite_images: ImageCache
) -> Iterator[DurableObjectStorage]:
    """A fresh DO with every migration of the bundle applied (a copy of a cached image).

    Closing it recycles its connection for the next test (:mod:`pytest_dosqlite.recycling`).
    """
    runtime = _workerd(request.config)
    if runtime is not None:
        yield _remote(lambda: runtime.fresh(dosqlite_bundle, label=request.node.nodeid))
        return
    do = _fresh(dosqlite_images, dosqlite_bundle, None, "migrated_do")
    yield do
    do.close()


@pytest.fixture
def do_at(
    request: pytest.FixtureRequest, dosqlite_bundle: Bundle, dosqlite_images: ImageCache
) -> Iterator[Callable[[str], DurableObjectStorage]]:
    """Factory: ``do_at("0002_add_posts")`` is a fresh DO migrated through that tag.

    Insert data at an old version, then ``dosqlite_start(do)`` (or
    ``pytest_dosqlite.migrate(do, dosqlite_bundle)``) and assert on the result: the
    data-migration test pattern.
    """
    made: list[Any] = []
    runtime = _workerd(request.config)

    def factory(tag: str) -> DurableObjectStorage:
        from .bundle import Migration
        from .errors import BundleError

        if isinstance(tag, Migration):
            tag = tag.tag  # do_at(bundle.migrations[1]): its tag, not its repr in messages

        try:
            migration = dosqlite_bundle.migration(tag)
        except BundleError as exc:
            unknown = f"do_at({tag!r}): {exc}"
        else:
            unknown = ""
        if unknown:
            pytest.fail(unknown, pytrace=False)
        count = dosqlite_bundle.migrations.index(migration) + 1
        if runtime is not None:
            label = f"{request.node.nodeid}@{tag}"
            remote: DurableObjectStorage = _remote(
                lambda: runtime.fresh(dosqlite_bundle, count, label=label)
            )
            return remote
        label = f"do_at({tag!r})"
        do: DurableObjectStorage = _fresh(dosqlite_images, dosqlite_bundle, count, label)
        made.append(do)
        return do

    yield factory
    for do in made:
        do.close()


@pytest.fixture
def dosqlite_start(request: pytest.FixtureRequest, dosqlite_bundle: Bundle) -> Callable[..., Any]:
    """``dosqlite_start(do, bundle=dosqlite_bundle)``: the start-up your DO's constructor runs,
    as ``--dosqlite-start`` (ini ``dosqlite_start``) describes it, returning the migration run.

    ``drizzle`` (the default) is ``blockConcurrencyWhile(() => migrate(db, migrations))``;
    ``drizzle-fk-off`` turns foreign keys off before ``migrate()`` and on after it (so a table
    recreation keeps its children's rows); ``module:function`` is your own. Data-migration
    tests that call it migrate the way the built-in checks and your deployed DOs do;
    ``pytest_dosqlite.migrate()`` is always plain drizzle. On the workerd backend the built-in
    starts run inside workerd (a Python function cannot).
    """
    from .plugin import _session

    ds = _session(request.config)
    spec: str | None
    if ds is not None:
        spec = ds.settings.fleet.get("fleet_start")
    else:
        spec = str(request.config.getini("dosqlite_start") or "") or None
    runtime = _workerd(request.config)

    def start(do: DOHandle, bundle: Bundle | None = None) -> Any:
        from .bundle import Bundle as BundleType

        chosen = dosqlite_bundle if bundle is None else bundle
        if not isinstance(chosen, BundleType):
            raise TypeError(
                "dosqlite_start(do, bundle): bundle is a Bundle (dosqlite_bundle, or "
                f"pytest_dosqlite.load_bundle(path)), not {type(chosen).__name__}"
            )
        if getattr(do, "is_remote", False):
            if runtime is None:  # pragma: no cover - a remote DO comes from the runtime
                raise TypeError("dosqlite_start: this DO belongs to no workerd runtime")
            return runtime.migrate(do, chosen, start=spec)
        from .fleet import resolve_start

        return resolve_start(spec)(do, chosen)

    return start
