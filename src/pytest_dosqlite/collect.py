"""pytest collection of the built-in checks: one file node per bundle, one item per check.

Items are anchored on the bundle (its ``meta/_journal.json``, or ``migrations.js``), so node ids
read ``drizzle/meta/_journal.json::upgrade_from_empty`` and ``-k``/``--deselect`` work. A failing
check reports its titled sections, never a traceback from our internals. Under
``--dosqlite-backend=workerd`` an item runs the check's real-runtime variant where there is one
(:data:`pytest_dosqlite.registry.WORKERD_SOURCES`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from .bundle import Bundle
    from .session import DosqliteSession, FoundBundle

__all__ = [
    "BundleFile",
    "CheckItem",
    "LoadErrorFile",
    "LoadErrorItem",
    "anchor_of",
    "bundle_node",
    "import_checks",
    "inject_bundles",
    "through_symlink",
]


def anchor_of(bundle: Bundle) -> Path:
    """The file a bundle's items hang from."""
    if bundle.journal_path is not None:
        return bundle.journal_path
    if bundle.migrations_js_path is not None:
        return bundle.migrations_js_path
    if bundle.migrations and bundle.migrations[0].path is not None:
        return bundle.migrations[0].path
    return bundle.root


def bundle_node(
    parent: pytest.Collector | pytest.Session, path: Path, found: FoundBundle, ds: DosqliteSession
) -> BundleFile:
    """The collector of ``found``'s checks, hanging from ``path``.

    Its node id is always the anchor's (:func:`anchor_of`) path from the rootdir, however the
    bundle was selected: ``pytest --dosqlite drizzle/0003_x.sql`` gave ids under that file, so
    ``--lf`` and ``--deselect drizzle/meta/_journal.json::lint`` missed them. A bundle outside
    the rootdir (``pytest --dosqlite`` in the Worker's ``tests/`` with no ini file above) gets
    ``../drizzle/meta/_journal.json``: pytest's own id was ``_journal.json``, shown as
    ``::_journal.json::lint``, which no command line selects."""
    root = Path(str(parent.config.rootpath)).resolve()
    anchor = anchor_of(found.bundle).resolve()
    nodeid = None
    if path.resolve() != anchor or not anchor.is_relative_to(root):
        nodeid = Path(os.path.relpath(anchor, root)).as_posix()
    node: BundleFile = BundleFile.from_parent(parent, path=path, nodeid=nodeid)
    node.found = found
    node.dsession = ds
    return node


def inject_bundles(
    session: pytest.Session,
    ds: DosqliteSession,
    paths: list[Path] | None,
    items: Iterable[pytest.Item],
) -> list[pytest.Item]:
    """The checks (and load errors) of the bundles pytest's own walk did not reach but the
    command line takes in (:func:`selected`): a bundle outside ``testpaths``, or in a folder
    pytest does not enter. They go through ``pytest_collectreport`` like any collected node,
    so "collected N items" counts them. A bundle with any check among ``items`` is left as
    collected (``pytest --dosqlite drizzle/meta/_journal.json::lint`` runs lint alone)."""
    from .discovery import is_config_name
    from .selection import ignored, selected

    have = {id(i.parent.found) for i in items if isinstance(i, CheckItem)}
    reported = {id(i.error) for i in items if isinstance(i, LoadErrorItem)}
    roots = [f.bundle.root.resolve() for f in ds.found if selected(f, paths)]
    # a bundle named in dosqlite_bundles that cannot be loaded fails the run, whatever the
    # paths select: the configuration says it is one of the project's (`pytest --dosqlite .`
    # passed with it broken outside `.`)
    configured = {_resolved(b) for b in ds.settings.bundles}
    added: list[pytest.Item] = []
    for error in ds.errors:
        where = _resolved(Path(error.path))
        if id(error) in reported:
            continue
        # a broken wrangler or drizzle config above a bundle checked: its checks read it
        config = is_config_name(where.name)
        if (
            paths is None
            or where in configured
            or any(where == p or where.is_relative_to(p) for p in paths)
            or (config and any(r.is_relative_to(where.parent) for r in roots))
        ):
            # hung from the bundle's journal (or the file or folder at fault), relative to the
            # rootdir: a node id that is the same on every machine and checkout
            anchor = where / "meta" / "_journal.json"
            at = LoadErrorFile.from_parent(session, path=anchor if anchor.is_file() else where)
            at.error = error
            item = LoadErrorItem.from_parent(at, name="dosqlite-load", error=error)
            session.ihook.pytest_collectreport(
                report=pytest.CollectReport(item.nodeid, "passed", None, [item])
            )
            added.append(item)
    for found in ds.found:
        if id(found) in have or not selected(found, paths) or ignored(found, session.config):
            continue
        node = bundle_node(session, anchor_of(found.bundle), found, ds)
        new: list[pytest.Item | pytest.Collector] = [
            i for i in node.collect() if isinstance(i, pytest.Item)
        ]
        if new:
            session.ihook.pytest_collectreport(
                report=pytest.CollectReport(node.nodeid, "passed", None, new)
            )
            added.extend(i for i in new if isinstance(i, pytest.Item))
    return added


def _resolved(path: Path) -> Path:
    """``path.resolve()``, or its absolute path when it cannot be resolved: the file a load
    error names may be a symlink loop (``resolve()`` raises), which the error is about."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def through_symlink(path: Path, root: Path) -> bool:
    """``path`` is reached through a symlinked folder of ``root`` whose target is in ``root``
    too: pytest walks into the link as well as the folder itself (and again and again into a
    link to a parent), and each visit would check the same bundle once more."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    real_root = root.resolve()
    folder = root
    for part in rel.parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            return folder.resolve().is_relative_to(real_root)
    return False


def import_checks(items: list[pytest.Item], backend: str) -> None:
    """Import the modules of the checks about to run, once collection is done.

    Otherwise the first check a process runs pays for them, and its duration says so: the
    ``--durations`` table, and the xdist scheduler, which learns what each check costs from
    the durations the workers report (see scheduling.py).
    """
    from .registry import get_check

    for name in sorted({i.check_name for i in items if isinstance(i, CheckItem)}):
        # a module that cannot be imported: the check says so when it runs, as before
        with contextlib.suppress(Exception):
            get_check(name, backend)


class BundleFile(pytest.File):
    """The collector of one bundle's checks."""

    found: FoundBundle
    dsession: DosqliteSession
    #: a file of the bundle named on the command line whose checks another node collects
    elsewhere: bool = False

    def collect(self) -> Iterator[pytest.Item]:
        if self.elsewhere:
            return
        settings = self.dsession.settings
        idle = settings.idle_checks
        for name in settings.checks:
            if name in idle:
                continue
            item = CheckItem.from_parent(self, name=name)
            item.add_marker(pytest.mark.dosqlite)
            self.dsession.items[item.nodeid] = (self.found, name)
            yield item


class CheckItem(pytest.Item):
    """One built-in check on one bundle."""

    parent: BundleFile

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from .registry import CHECK_SOURCES

        self.check_name = self.name
        module, _, func = CHECK_SOURCES[self.name].partition(":")
        # syrupy's locations read ``obj``: a module/name pair is all it needs
        self.obj = _CheckRef(f"pytest_dosqlite.{module}", func)
        self.duration: float | None = None

    @property
    def dosqlite_bundle(self) -> Bundle:
        return self.parent.found.bundle

    def runtest(self) -> None:
        from .registry import get_check

        dsession = self.parent.dsession
        ctx = dsession.context(self.parent.found, self)
        started = time.perf_counter()
        from .errors import CheckFailure, CheckSkipped

        try:
            get_check(self.check_name, dsession.settings.backend)(ctx)
        except CheckSkipped as exc:
            pytest.skip(str(exc))
        except CheckFailure as exc:
            # a check that cannot even start because a fresh DO fails to migrate: that failure
            # is upgrade_from_empty's to report (once, with the cause), not every check's
            by = exc.reported_by
            if by is not None and by != self.check_name and by in dsession.settings.checks:
                pytest.skip(f"{exc.summary} ({by} reports the failure)")
            raise
        finally:
            self.duration = time.perf_counter() - started
            dsession.record(self.parent.found, self.check_name, ctx)
            # facts for the terminal summary, carried to the xdist controller by the report
            found = self.parent.found
            head = ctx.extra.get("head_summary")
            if (head is None and found.head is None) or found.slowest is None:
                head = self._from_emulator_images(head)
            if head is not None:
                self.user_properties.append(("dosqlite_head", head))
            if found.slowest is not None:
                # "<tag> <seconds>": a plain value in the JUnit XML, not a Python tuple's repr
                tag, seconds = found.slowest
                self.user_properties.append(("dosqlite_slowest", f"{tag} {seconds:.6f}"))
            if found.images_seconds is not None:
                # what starting on this bundle costs a worker (the xdist scheduler weighs it)
                seconds = round(found.images_seconds, 6)
                self.user_properties.append(("dosqlite_images_seconds", seconds))
            for note in ctx.extra.get("notes") or ():
                self.add_report_section("call", "dosqlite", str(note))

    def _from_emulator_images(self, head: str | None) -> str | None:
        """What a fresh DO reaches and the slowest migration, from the emulator's images when
        this process built them: the workerd backend's upgrade_from_empty keeps no image to
        count tables in nor timings, and under xdist the controller builds nothing."""
        found, images = self.parent.found, self.parent.dsession.images
        if not images.built(found.bundle):
            return head
        if head is None and found.head is None:
            from .images import head_summary

            head = found.head = head_summary(images, found.bundle)
        timings = images.timings(found.bundle)
        if found.slowest is None and timings:
            found.slowest = max(timings.items(), key=lambda kv: kv[1])
        return head

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        from .errors import BundleError, CheckFailure, DosqliteError

        exc = excinfo.value
        if isinstance(exc, CheckFailure):
            if self.config.getoption("tbstyle", "auto") == "line":
                return self._one_line(exc.summary)
            return exc.render()
        if isinstance(exc, BundleError | DosqliteError):
            return f"{type(exc).__name__}: {exc}"
        return super().repr_failure(excinfo)

    def _one_line(self, summary: str) -> TerminalRepr:
        """--tb=line: one ``file:line: message`` line per failure. pytest prints a failure's
        crash location as that line (and a plain text's first 50 characters after the text
        itself); an empty traceback with a crash location also crosses xdist intact."""
        from _pytest._code.code import ReprExceptionInfo, ReprFileLocation, ReprTraceback

        where = os.path.relpath(self.path, self.config.rootpath)
        name = f"{self.check_name}: "
        crash = ReprFileLocation(where, 1, summary if summary.startswith(name) else name + summary)
        return ReprExceptionInfo(reprtraceback=ReprTraceback([], None, "line"), reprcrash=crash)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"dosqlite {self.check_name}: {self.parent.found.label}"

    def relocate_skip(self, report: pytest.TestReport) -> None:
        """A skip is located where ``pytest.skip`` was called: in this plugin's code, which
        ``-rs`` then printed. The bundle's file is what the reason is about."""
        if report.skipped and isinstance(report.longrepr, tuple):
            report.longrepr = (str(self.path), 1, report.longrepr[2])


class LoadErrorItem(pytest.Item):
    """A bundle or config that could not be loaded: reported as an error naming the file."""

    def __init__(self, *, error: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error
        self.obj = _CheckRef("pytest_dosqlite.discovery", "load")

    def setup(self) -> None:
        # pytest.fail, not a raise: a setup error is reported with pytest's own traceback
        # (repr_failure only serves the call phase); the message names the file and line
        pytest.fail(
            f"dosqlite could not load {self.error.path}:\n{self.error.message}", pytrace=False
        )

    def runtest(self) -> None:  # pragma: no cover - setup always fails
        pass

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return Path(self.error.path), None, f"dosqlite load {self.error.path}"


class LoadErrorFile(pytest.File):
    """A file of a bundle that could not be loaded, named on the command line: its one item
    is the load error."""

    error: Any

    def collect(self) -> Iterator[pytest.Item]:
        yield LoadErrorItem.from_parent(self, name="dosqlite-load", error=self.error)


class _CheckRef:
    """Stands in for a test function where pytest plugins look for ``__module__``/``__name__``."""

    def __init__(self, module: str, name: str) -> None:
        self.__module__ = module
        self.__name__ = name
        self.__qualname__ = name
        self.__doc__ = None
