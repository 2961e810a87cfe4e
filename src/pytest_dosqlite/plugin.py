"""The pytest entry point (``pytest11``): wires hooks, nothing else.

Import-cheap on purpose: pytest imports this module at start-up in every run of every project
that has pytest-dosqlite installed, so the engine (APSW, sqlglot, syrupy) is imported only when
``--dosqlite`` is given or a dosqlite fixture is used. The logic lives in plain modules:
options, session, collect, fixtures.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .fixtures import (
    do_at,
    do_storage,
    dosqlite_backend,
    dosqlite_bundle,
    dosqlite_images,
    dosqlite_start,
    migrated_do,
)
from .options import add_options

if TYPE_CHECKING:
    from .session import DosqliteSession

__all__ = [
    "do_at",
    "do_storage",
    "dosqlite_backend",
    "dosqlite_bundle",
    "dosqlite_images",
    "dosqlite_start",
    "migrated_do",
]

_KEY = pytest.StashKey["DosqliteSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dosqlite: a built-in pytest-dosqlite migration check (added by --dosqlite)"
    )
    from .options import resolve
    from .session import DosqliteSession

    ds = DosqliteSession(config, resolve(config))
    config.stash[_KEY] = ds
    _DSESSIONS.append(ds)
    if config.pluginmanager.hasplugin("xdist"):
        from .scheduling import XdistHooks

        config.pluginmanager.register(XdistHooks(ds), "dosqlite-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    ds = _session(config)
    if ds is not None:
        ds.close()
    if ds is not None and ds in _DSESSIONS:
        _DSESSIONS.remove(ds)


_DSESSIONS: list[DosqliteSession] = []


def _session(config: pytest.Config) -> DosqliteSession | None:
    return config.stash.get(_KEY, None)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    ds = _session(config)
    if ds is None or not ds.settings.enabled:
        return None
    from .report_header import header_lines

    return header_lines(ds) + ds.backend_lines()


def _anchor_map(ds: DosqliteSession) -> dict[Path, Any]:
    from .collect import anchor_of

    return {anchor_of(f.bundle).resolve(): f for f in ds.found}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    ds = _session(parent.config)
    if ds is None or not ds.settings.enabled:
        return None
    from .collect import bundle_node, through_symlink
    from .selection import named_bundle_file

    found = None
    if file_path.name in ("_journal.json", "migrations.js", "migration.sql"):
        found = _anchor_map(ds).get(file_path.resolve())
    elsewhere = False
    if found is None:
        # `pytest --dosqlite drizzle/0003_x.sql`: the checks of the bundle that file is in
        named = named_bundle_file(file_path, parent.config, ds.found)
        if named is None:
            return _load_error_file(file_path, parent, ds)
        found, elsewhere = named
    if through_symlink(file_path, parent.config.rootpath):
        return None
    node = bundle_node(parent, file_path, found, ds)
    node.elsewhere = elsewhere
    return node


def _load_error_file(
    file_path: Path, parent: pytest.Collector, ds: DosqliteSession
) -> pytest.Collector | None:
    from .collect import LoadErrorFile
    from .selection import named_load_error

    error = named_load_error(file_path, parent.config, ds.errors)
    if error is None:
        return None
    node: LoadErrorFile = LoadErrorFile.from_parent(parent, path=file_path)
    node.error = error
    return node


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    ds = _session(config)
    if ds is None or not ds.settings.enabled:
        return
    from .collect import inject_bundles
    from .selection import explicit_paths

    items[:0] = inject_bundles(session, ds, explicit_paths(config), items)


def pytest_collection_finish(session: pytest.Session) -> None:
    ds = _session(session.config)
    if ds is None or not ds.settings.enabled or session.config.option.collectonly:
        return
    from .collect import import_checks

    import_checks(session.items, ds.settings.backend)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dosqlite_bundle" not in metafunc.fixturenames:
        return
    # a conftest/module override of dosqlite_bundle takes precedence over parametrization
    defs = metafunc._arg2fixturedefs.get("dosqlite_bundle")
    if defs and defs[-1].func.__module__ != "pytest_dosqlite.fixtures":
        return
    # so does the test's own `@pytest.mark.parametrize("dosqlite_bundle", [...], indirect=True)`
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if "dosqlite_bundle" in names:
            return
    ds = _session(metafunc.config)
    if ds is None:
        return
    found = ds.found
    if not found:
        return
    ids = [f.label for f in found]
    metafunc.parametrize("dosqlite_bundle", found, ids=ids, indirect=True, scope="session")


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Generator[None, None, None]:
    ds = _session(session.config)
    if ds is not None:
        ds.check_backend()  # --dosqlite-backend=workerd without Node: one usage error
    # after the other plugins: an xdist controller has started its workers by then, and they
    # boot while it discovers the bundles itself (for the summary and the report)
    yield
    if ds is None or not ds.settings.enabled:
        return
    if not ds.found and not ds.errors:
        raise pytest.UsageError(
            "pytest --dosqlite found no drizzle bundle under "
            + ", ".join(str(p) for p in ds.settings.projects)
            + " (looked for wrangler and drizzle configs and for meta/_journal.json). "
            "Point it at your project with --dosqlite-project PATH or at a drizzle out folder "
            "with --dosqlite-bundle PATH."
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ds = _session(session.config)
    if ds is not None:
        ds.close()  # stops the workerd runtime (also on Ctrl-C); atexit covers the rest
    if ds is not None and ds.settings.enabled and ds.settings.report:
        from .report import write_report

        written = write_report(ds, ds.settings.report)
        # a report asked for and not written fails the run: CI would publish nothing
        worker = hasattr(session.config, "workerinput")
        if written is None and not worker and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    ds = _session(config)
    if ds is None or not ds.settings.enabled:
        return
    # not under --co or --setup-plan (nothing ran: it said "checks: none selected"), nor on an
    # xdist worker: nobody sees its summary, and it would build the images of every bundle
    # (those it did not check) just to write it
    planned = config.option.collectonly or getattr(config.option, "setupplan", False)
    ran = ds._found is not None and not planned
    if ran and not hasattr(config, "workerinput"):
        from .summary import write_summary

        write_summary(terminalreporter, ds)
    for line, red in ds.end_notes:
        terminalreporter.write_line(line, red=red)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    relocate = getattr(item, "relocate_skip", None)  # a check's skip: at the bundle, not here
    if relocate is not None:
        relocate(report)
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    ds = _DSESSIONS[-1] if _DSESSIONS else None
    if ds is not None:
        ds.log_report(report)


def pytest_warning_recorded(warning_message: Any, when: str, nodeid: str, location: Any) -> None:
    """A check's own warnings (a wrangler rule that misses the .sql files, a start-up budget
    near its limit) also go into the report; lint and integrity findings have their tables."""
    if not nodeid:
        return
    ds = _DSESSIONS[-1] if _DSESSIONS else None
    if ds is not None:
        ds.log_warning(nodeid, warning_message)
