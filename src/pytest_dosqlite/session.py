"""The state of one ``pytest --dosqlite`` run: settings, discovered bundles, results, backend.

The plugin registers one :class:`DosqliteSession` per pytest session; hooks in ``plugin.py``
forward to it. Discovery happens once, lazily, and never raises a traceback: configuration
problems become collection errors naming the file. With ``--dosqlite-backend=workerd`` the
session owns the one workerd runtime of this process (started on first use, stopped by
:meth:`DosqliteSession.close` at session end; an ``atexit`` hook and the server's own stdin watch
cover a crash).
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import Resolved

if TYPE_CHECKING:
    from .backends import EmulatorBackend, WorkerdImages, WorkerdRuntime
    from .bundle import Bundle
    from .checks import CheckContext
    from .collect import CheckItem
    from .discovery import Project
    from .images import ImageCache

__all__ = ["DosqliteSession", "FoundBundle"]


def _first_line(report: pytest.TestReport) -> str:
    """The first line of why a check item failed or was skipped (for the report)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        text = str(longrepr[2]).removeprefix("Skipped: ")
    else:
        text = report.longreprtext
    lines = (line.strip() for line in text.splitlines())
    # xdist puts "[gw0] linux -- Python 3.x ..." before a worker's failure
    first = next((line for line in lines if line and not _XDIST_LINE.match(line)), "")
    return first if len(first) <= 300 else first[:299] + "…"


#: lines of the head schema a "no schema snapshot yet" failure shows
_SCHEMA_LINES = 40
_XDIST_LINE = re.compile(r"\[gw\d+\] \S+ -- Python ")


@dataclass
class FoundBundle:
    """A bundle to check, with where it was found."""

    bundle: Bundle
    #: how it was found: "drizzle.config.ts", "--dosqlite-bundle", "scan", ...
    source: str
    project_root: Path
    do_classes: tuple[str, ...] = ()
    project: Any = None
    #: results of the checks that ran: name -> "passed" | "failed" | "skipped"
    results: dict[str, str] = field(default_factory=dict)
    #: why a check failed or was skipped: name -> the first line of its message
    reasons: dict[str, str] = field(default_factory=dict)
    #: the checks' own warnings (not lint's or the bundle's, which the report lists anyway)
    warnings: list[str] = field(default_factory=list)
    slowest: tuple[str, float] | None = None
    seconds: float = 0.0
    #: what a fresh DO reaches ("N tables" at head, or where it stops; from upgrade_from_empty),
    #: None until known
    head: str | None = None
    #: seconds the migrations took when the version images were built (None until known):
    #: what a worker pays to start on this bundle, for the xdist scheduler
    images_seconds: float | None = None
    #: the label when the project-relative one is another bundle's too (see _discover)
    unique_label: str | None = None

    @property
    def label(self) -> str:
        if self.unique_label is not None:
            return self.unique_label
        try:
            rel = str(self.bundle.root.relative_to(self.project_root))
        except ValueError:
            return str(self.bundle.root)
        # `pytest --dosqlite drizzle/`: the bundle is the project; "." would name nothing
        return rel if rel != "." else self.bundle.root.resolve().name or "."


@dataclass
class BundleLoadError:
    path: Path
    message: str


class DosqliteSession:
    """Per-session state shared by hooks, collectors and fixtures."""

    def __init__(self, config: pytest.Config, settings: Resolved) -> None:
        self.config = config
        self.settings = settings
        self._found: list[FoundBundle] | None = None
        self.errors: list[BundleLoadError] = []
        #: discovery's warnings about the project's configs, "path:line: message"
        self.config_notes: list[str] = []
        #: lines for the end of the terminal summary, written after the run (the report's
        #: path, or why it could not be written): (text, red)
        self.end_notes: list[tuple[str, bool]] = []
        self._images: ImageCache | None = None
        #: nodeid -> (bundle, check name) of every collected check item
        self.items: dict[str, tuple[FoundBundle, str]] = {}
        self.started = 0.0
        self._workerd: WorkerdRuntime | None = None
        self._workerd_images: WorkerdImages | None = None
        self._emulator: EmulatorBackend | None = None
        #: node id path -> bundle (the xdist scheduler asks many times)
        self._by_anchor: dict[str, FoundBundle | None] = {}
        #: a report's node id path -> its bundle (the controller sees every check's reports)
        self._by_path: dict[str, FoundBundle | None] = {}

    # ------------------------------------------------------------------ backend
    def check_backend(self) -> None:
        """At session start: the workerd backend needs Node; say so once, as a usage error."""
        if self.settings.backend != "workerd":
            return
        from .workerd import NodeNotFoundError, find_node

        try:
            find_node()
        except NodeNotFoundError as exc:
            raise pytest.UsageError(f"--dosqlite-backend=workerd: {exc}") from None

    @property
    def backend(self) -> EmulatorBackend | WorkerdRuntime:
        """The backend fixtures and checks hand DOs out from."""
        if self.settings.backend == "workerd":
            return self.workerd
        if self._emulator is None:
            from .backends import EmulatorBackend

            self._emulator = EmulatorBackend(self.images)
        return self._emulator

    @property
    def workerd(self) -> WorkerdRuntime:
        """This process's workerd runtime (the object; workerd starts on its first DO)."""
        if self._workerd is None:
            from .backends import WorkerdRuntime

            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            self._workerd = WorkerdRuntime(
                progress=self._print, prefix=f"dosqlite-{worker}", emulator_images=self.images
            )
        return self._workerd

    def _print(self, line: str) -> None:
        """A line on the terminal, past pytest's output capture (install progress)."""
        manager = self.config.pluginmanager
        capman = manager.getplugin("capturemanager")
        reporter = manager.getplugin("terminalreporter")
        quiet = capman.global_and_fixture_disabled() if capman is not None else nullcontext()
        with quiet:
            if reporter is not None:
                reporter.write_line(line)
            else:
                print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Stop the workerd runtime if one was started (idempotent)."""
        if self._workerd is not None:
            self._workerd.stop()

    def backend_lines(self) -> list[str]:
        """Report-header lines: which checks run where under the chosen backend."""
        if self.settings.backend != "workerd":
            return []
        from .registry import runs_on

        checks = list(self.settings.checks)
        real = [c for c in checks if runs_on(c, "workerd") == "workerd" and c != "do_contract"]
        emulated = [c for c in checks if runs_on(c, "workerd") == "emulator"]
        anywhere = [c for c in checks if runs_on(c, "workerd") == "any"]
        lines = [
            "dosqlite: workerd backend: fixtures hand out DOs inside one workerd per process "
            "(started on first use)",
            f"dosqlite: on workerd (real drizzle migrate()): {', '.join(real) or '-'}",
            f"dosqlite: on the emulator (processes, crashes, timing): {', '.join(emulated) or '-'}",
            f"dosqlite: backend-independent: {', '.join(anywhere) or '-'}",
        ]
        if "do_contract" in checks:
            lines.append(
                "dosqlite: do_contract: your own Worker (wrangler main) built with esbuild and "
                "cold-started in Miniflare"
            )
        return lines

    def log_report(self, report: pytest.TestReport) -> None:
        entry = self.items.get(report.nodeid) or self._entry_from_nodeid(report.nodeid)
        if entry is None:
            return
        found, name = entry
        for key, value in report.user_properties:
            if key == "dosqlite_head" and isinstance(value, str):
                found.head = value
            elif key == "dosqlite_slowest" and isinstance(value, str) and " " in value:
                tag, seconds = value.rsplit(" ", 1)
                found.slowest = (tag, float(seconds))
            elif key == "dosqlite_images_seconds" and isinstance(value, int | float):
                found.images_seconds = float(value)
        if report.when == "call" or report.outcome != "passed":
            found.results[name] = report.outcome
            found.seconds += report.duration
            if report.outcome != "passed":
                found.reasons[name] = _first_line(report)

    def log_warning(self, nodeid: str, message: Any) -> None:
        """A warning a check item raised: kept with its bundle for the report."""
        from .errors import DosqliteWarning, IntegrityWarning
        from .lint import DosqliteLintWarning

        category = getattr(message, "category", None)
        if not isinstance(category, type) or not issubclass(category, DosqliteWarning):
            return
        if issubclass(category, DosqliteLintWarning | IntegrityWarning):
            return
        entry = self.items.get(nodeid) or self._entry_from_nodeid(nodeid)
        if entry is None:
            return
        text = str(getattr(message, "message", message))
        first = text.splitlines()[0] if text else ""
        if first and first not in entry[0].warnings:
            entry[0].warnings.append(first)

    # ------------------------------------------------------------------ discovery
    @property
    def found(self) -> list[FoundBundle]:
        if self._found is None:
            self._found = self._discover()
        return self._found

    def _discover(self) -> list[FoundBundle]:
        from .bundle import load_bundle
        from .errors import BundleError

        found: list[FoundBundle] = []
        seen: set[Path] = set()

        def add(
            path: Path,
            source: str,
            root: Path,
            classes: tuple[str, ...],
            project: Any,
            module: Path | None = None,
        ) -> None:
            try:
                # the migrations module the Worker's own import names, when discovery knows it
                bundle = load_bundle(path, module=module)
            except BundleError as exc:
                self.errors.append(BundleLoadError(path, str(exc)))
                return
            key = bundle.root.resolve()
            if key in seen:
                return
            seen.add(key)
            if project is None:
                # `--dosqlite-bundle`: read with the configs of its Worker project, if it has one
                from .discovery import project_of

                known = project_of(key)
                if known is not None:
                    project, ref = known
                    root, classes = project.root, tuple(ref.do_classes)
            found.append(FoundBundle(bundle, source, root, classes, project))

        for path in self.settings.bundles:
            add(path, "--dosqlite-bundle", path.parent, (), None)
        if self.settings.bundles and self.settings.sources.get("project") in (
            "rootdir",
            "current directory",
        ):
            # the bundles named are the ones checked, wherever pytest runs (from a subfolder,
            # the bundles of that folder were added)
            self._disambiguate(found)
            return found
        from .discovery import discover, worker_project_above

        for root in self.settings.projects:
            if not root.exists():
                self.errors.append(BundleLoadError(root, "project folder does not exist"))
                continue
            only: Path | None = None  # the bundles under this folder, of the project above
            try:
                project = discover(root)
                above = None
                if not project.bundles and not project.errors and self._guessed_project():
                    above = worker_project_above(root)
                    if above is not None:
                        # `pytest --dosqlite` run from the Worker's tests/ folder: its project
                        # is the folder above with the wrangler or drizzle config
                        self.config_notes.append(
                            f"{root} holds no drizzle bundle: checking the Worker project above "
                            f"it, {above}"
                        )
                    elif self._inside_rootdir(root):
                        # `pytest tests` in a monorepo whose configs live in its packages: the
                        # bundles `pytest` alone would find, those of the rootdir
                        above = Path(str(self.config.rootpath))
                        self.config_notes.append(
                            f"{root} holds no drizzle bundle and no Worker project is above it: "
                            f"using the bundles of the rootdir, {above}"
                        )
                elif self._within_a_project(project):
                    # `pytest --dosqlite drizzle`: that folder's bundles, read with the Worker
                    # project's configs (which DO classes use them, the Text rule)
                    above = worker_project_above(root)
                    if above is not None:
                        only = root.resolve()
                        self.config_notes.append(
                            f"{root} has no wrangler or drizzle config: its bundles are checked "
                            f"with the configs of the Worker project above it, {above}"
                        )
                if above is not None:
                    root, project = above, discover(above)
            except Exception as exc:
                from .errors import DosqliteError

                if isinstance(exc, OSError):  # a folder of the project that cannot be read
                    where = Path(exc.filename) if exc.filename else root
                    reason = exc.strerror or str(exc)
                    self.errors.append(BundleLoadError(where, f"cannot read {where}: {reason}"))
                    continue
                if not isinstance(exc, DosqliteError):
                    raise
                self.errors.append(BundleLoadError(root, str(exc)))
                continue
            for ref in project.bundles:
                if only is None or ref.path.resolve().is_relative_to(only):
                    add(
                        ref.path,
                        ref.source,
                        root,
                        tuple(ref.do_classes),
                        project,
                        ref.worker_module,
                    )
            for err in project.errors:
                self.errors.append(BundleLoadError(Path(err.path), str(err)))
            # what discovery noticed but could work around (a drizzle config whose out folder
            # does not exist, ...): shown in the header, or nobody would ever see it
            self.config_notes.extend(str(w) for w in project.warnings)
        self._disambiguate(found)
        tags = {m.tag for f in found for m in f.bundle.migrations}
        for tag in self.settings.lint_baseline:
            if found and tag not in tags:
                # a typo in the baseline would go unnoticed while lint passes
                self.config_notes.append(
                    f"dosqlite_lint_baseline {tag} names no migration of the bundles found: "
                    "lint checks every migration"
                )
        return found

    def _disambiguate(self, found: list[FoundBundle]) -> None:
        """Bundles of two projects named on the command line are both ``drizzle`` relative to
        their projects: those are labelled by their path from the rootdir (or in full)."""
        from collections import Counter

        counts = Counter(f.label for f in found)
        root = Path(str(self.config.rootpath)).resolve()
        for f in found:
            if counts[f.label] > 1:
                where = f.bundle.root.resolve()
                f.unique_label = (
                    str(where.relative_to(root)) if where.is_relative_to(root) else str(where)
                )

    def _within_a_project(self, project: Project) -> bool:
        """A folder named on the command line, or the one pytest runs in, that holds bundles
        but no wrangler or drizzle config: a part of a Worker project (its ``drizzle/``)."""
        return (
            self.settings.sources.get("project") in ("command-line paths", "current directory")
            and not project.wrangler_configs
            and not project.drizzle_configs
        )

    def _inside_rootdir(self, folder: Path) -> bool:
        root = Path(str(self.config.rootpath)).resolve()
        inside = folder.resolve()
        return inside != root and inside.is_relative_to(root)

    def _guessed_project(self) -> bool:
        """The project folder was not named (``--dosqlite-project`` or ini): pytest's rootdir
        or the folders given on the command line."""
        return self.settings.sources.get("project") in (
            "rootdir",
            "current directory",
            "command-line paths",
        )

    # ------------------------------------------------------------------ facts for the scheduler
    def _found_at(self, anchor: str) -> FoundBundle | None:
        if anchor not in self._by_anchor:
            from .registry import CHECK_NAMES

            self.found  # noqa: B018 - discovery, once
            entry = self._entry_from_nodeid(f"{anchor}::{CHECK_NAMES[0]}")
            self._by_anchor[anchor] = entry[0] if entry is not None else None
        return self._by_anchor[anchor]

    def migrations_of(self, anchor: str) -> int:
        """Migrations of the bundle whose items hang from ``anchor`` (a node id's path part;
        1 when unknown): how the xdist scheduler sizes a bundle's checks."""
        found = self._found_at(anchor)
        return len(found.bundle.migrations) if found is not None else 1

    def images_seconds_of(self, anchor: str) -> float | None:
        """Seconds building the bundle's images took on a worker (None until reported)."""
        found = self._found_at(anchor)
        return found.images_seconds if found is not None else None

    def _entry_from_nodeid(self, nodeid: str) -> tuple[FoundBundle, str] | None:
        """Reports from xdist workers: the controller never collected the items itself."""
        from .registry import CHECK_SOURCES

        path, _, name = nodeid.rpartition("::")
        if name not in CHECK_SOURCES or not self._found:
            return None
        if path not in self._by_path:
            self._by_path[path] = self._found_by_path(path, self._found)
        found = self._by_path[path]
        return (found, name) if found is not None else None

    def _found_by_path(self, path: str, bundles: list[FoundBundle]) -> FoundBundle | None:
        """The bundle whose check items hang from the node id path ``path``."""
        from .collect import anchor_of

        root = Path(str(self.config.rootpath)).resolve()
        candidates: list[tuple[FoundBundle, str]] = []
        for found in bundles:
            anchor = anchor_of(found.bundle).resolve()
            try:
                rel = anchor.relative_to(root).as_posix()
            except ValueError:
                rel = anchor.as_posix()
            if path == rel:
                return found  # exact: the usual case
            candidates.append((found, rel))
        # the nodeid may be relative to another folder (e.g. `..`-prefixed): longest match wins
        best = [(f, rel) for f, rel in candidates if rel.endswith(path.lstrip("./"))]
        if best:
            return min(best, key=lambda fr: len(fr[1]))[0]
        # a file of the bundle named on the command line (`drizzle/0003_x.sql::lint`)
        from .selection import bundle_of_file

        return bundle_of_file(root / path, bundles)

    # ------------------------------------------------------------------ running checks
    @property
    def images(self) -> ImageCache:
        if self._images is None:
            from .images import default_cache

            self._images = default_cache()
        return self._images

    @property
    def workerd_images(self) -> WorkerdImages:
        """ImageCache-like DOs inside workerd, for the checks that run on the real runtime."""
        if self._workerd_images is None:
            from .backends import WorkerdImages

            self._workerd_images = WorkerdImages(self.workerd)
        return self._workerd_images

    def context(self, found: FoundBundle, item: CheckItem) -> CheckContext:
        from .checks import CheckContext, Settings

        settings = Settings(
            concurrency=self.settings.concurrency,
            budget_rows=self.settings.budget_rows,
            lint_severity=dict(self.settings.lint_severity),
            lint_baseline=tuple(self.settings.lint_baseline),
            git_history=self.settings.git_history,
            seed=self.settings.seed,
            backend=self.settings.backend,
        )
        extra: dict[str, Any] = {
            "update_snapshots": bool(getattr(self.config.option, "update_snapshots", False)),
            "pytest_item": item,
            **self.settings.fleet,
        }
        if item.check_name == "schema_snapshot":
            extra["snapshot_assert"] = self._snapshot_asserter(item)
        images: Any = self.images
        if self.settings.backend == "workerd":
            from .registry import runs_on

            extra["workerd"] = self.workerd
            extra["emulator_images"] = self.images
            where = runs_on(item.check_name, "workerd")
            if where == "workerd" and found.bundle.format == "v1":
                where = "emulator"
                extra.setdefault("notes", []).append(
                    f"{item.check_name} ran on the emulator: drizzle-kit v1 bundles need "
                    "drizzle-orm 1.0, the workerd harness pins 0.45.4"
                )
            if where == "workerd":
                images = self.workerd_images
        return CheckContext(
            bundle=found.bundle,
            settings=settings,
            images=images,
            project=found.project,
            do_classes=found.do_classes,
            extra=extra,
        )

    def _snapshot_asserter(self, item: CheckItem) -> Any:
        syrupy_session = getattr(self.config, "_syrupy", None)
        if syrupy_session is None:
            return None  # syrupy disabled: compare with the file on disk
        from syrupy.assertion import SnapshotAssertion

        from .errors import CheckFailure
        from .snapshot import bundle_location, snapshot_extension

        def assert_snapshot(text: str) -> None:
            option = self.config.option
            kwargs: dict[str, Any] = {
                "update_snapshots": option.update_snapshots,
                "extension_class": snapshot_extension(),
                "test_location": bundle_location(item),
                "session": syrupy_session,
            }
            if hasattr(option, "update_new_snapshots_only"):
                kwargs["update_new_snapshots_only"] = option.update_new_snapshots_only
            from .snapshot import snapshot_path

            path = snapshot_path(item.dosqlite_bundle.root)
            try:
                stored: str | None = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                stored = None
            assertion = SnapshotAssertion(**kwargs)
            if assertion == text:
                return
            if stored is None:
                # the whole schema is what --snapshot-update writes; the failure shows its
                # start (a first run on a large project printed thousands of lines)
                lines = text.splitlines()
                shown = "\n".join(lines[:_SCHEMA_LINES])
                if len(lines) > _SCHEMA_LINES:
                    shown += f"\n... ({len(lines) - _SCHEMA_LINES} more lines in the file)"
                raise CheckFailure(
                    f"no schema snapshot yet for {item.dosqlite_bundle.root}",
                    [
                        ("Snapshot file (to create)", str(path)),
                        ("Schema at head", shown),
                        (
                            "Create it",
                            "run `pytest --dosqlite --snapshot-update`, review the file and "
                            "commit it: pull requests then show every schema change as a diff",
                        ),
                    ],
                )
            import difflib

            diff = "\n".join(
                difflib.unified_diff(
                    stored.splitlines(),
                    text.splitlines(),
                    fromfile=f"{path.name} (snapshot)",
                    tofile="schema after migrate()",
                    lineterm="",
                )
            )
            raise CheckFailure(
                f"schema of {item.dosqlite_bundle.root} differs from its snapshot",
                [
                    ("Snapshot file", str(path)),
                    ("Diff", diff),
                    (
                        "If intended",
                        "review the change, then run `pytest --dosqlite --snapshot-update` and "
                        "commit the snapshot file",
                    ),
                ],
            )

        return assert_snapshot

    def record(self, found: FoundBundle, name: str, ctx: CheckContext) -> None:
        timings = ctx.extra.get("timings")
        if isinstance(timings, dict) and timings:
            tag, seconds = max(timings.items(), key=lambda kv: kv[1])
            found.slowest = (str(tag), float(seconds))
            found.images_seconds = float(sum(timings.values()))
