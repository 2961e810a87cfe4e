"""``python -m pytest_dosqlite``: the engine for people outside pytest.

* ``schema PATH``: print the normalized schema of a bundle at head;
* ``check PATH``: run the built-in checks on a bundle and exit non-zero on failure;
* ``report PATH... [-o FILE]``: the Markdown report (ER diagram, timeline, lint findings);
* ``workerd-install``: install the real-runtime backend's npm packages into the cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .bundle import Bundle

__all__ = ["main"]


def _bundles_at(path: str) -> list[Bundle]:
    """The bundle at ``path`` or, for a Worker project folder, the bundles discovery finds in
    it (in path order)."""
    from pathlib import Path

    from .bundle import load_bundle
    from .discovery import discover
    from .errors import BundleError, DosqliteError

    try:
        return [load_bundle(path)]
    except BundleError as exc:
        folder = Path(path)
        if not folder.is_dir() or exc.path is None or Path(exc.path).resolve() != folder.resolve():
            raise
        try:
            project = discover(folder)
        except DosqliteError:
            raise exc from None
        if not project.bundles:
            raise
        return [
            load_bundle(ref.path, module=ref.worker_module)
            for ref in sorted(project.bundles, key=lambda r: r.path)
        ]


def _load(path: str) -> Bundle:
    """The one bundle at ``path`` (a project folder with one bundle gives that bundle); for a
    project folder with several, an error naming them."""
    from .errors import BundleError

    bundles = _bundles_at(path)
    if len(bundles) == 1:
        return bundles[0]
    names = ", ".join(os.path.relpath(b.root, path) for b in bundles)
    raise BundleError(
        f"a project folder with {len(bundles)} bundles: {names}. Pass one of them, or run "
        f"`pytest --dosqlite {path}` to check them all with the project's wrangler and drizzle "
        "configs",
        path,
    )


def _schema(path: str) -> int:
    from .checks import _query
    from .errors import MigrationError
    from .images import default_cache
    from .schema import introspect, render

    bundle = _load(path)
    try:
        do = default_cache().fresh(bundle)
    except MigrationError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    try:
        print(render(introspect(_query(do))), end="")
    finally:
        do.close()
    return 0


def _severities(lines: list[str]) -> dict[str, str] | None:
    """``--lint-severity RULE=LEVEL`` values, or None after printing what is wrong."""
    from .lint import parse_severities

    try:
        return parse_severities(lines)
    except ValueError as exc:
        print(f"--lint-severity: {exc}", file=sys.stderr)
        return None


def _check(
    path: str,
    names: list[str] | None,
    exclude: list[str],
    severity: list[str] | None = None,
    baseline: list[str] | None = None,
    *,
    start: str | None = None,
    seed: str | None = None,
    budget_rows: int | None = None,
    use_ini: bool = True,
) -> int:
    """Run the checks on the bundle at ``path``, with the ``dosqlite_*`` settings of its
    project's pytest configuration (as ``pytest --dosqlite`` would), the options winning."""
    from pathlib import Path

    from .checks import CheckContext, Settings
    from .discovery import project_of
    from .errors import CheckFailure, CheckSkipped, DosqliteError
    from .inifile import IniSettings, find_ini
    from .registry import CHECK_NAMES, get_check

    bundle = _load(path)
    # read with the configs of its Worker project, as pytest --dosqlite does
    known = project_of(bundle.root.resolve())
    project, ref = known if known is not None else (None, None)
    ini = find_ini(project.root if project is not None else bundle.root) if use_ini else None
    ini = ini or IniSettings()
    names = names or ini.names("dosqlite_checks_include") or None
    exclude = exclude or ini.names("dosqlite_checks_exclude")
    unknown = [n for n in (names or []) + exclude if n not in CHECK_NAMES]
    if unknown:
        print(
            f"unknown check(s): {', '.join(unknown)}; known: {', '.join(CHECK_NAMES)}",
            file=sys.stderr,
        )
        return 2
    severities = _severities(ini.lines("dosqlite_lint_severity") + (severity or []))
    if severities is None:
        return 2
    start_from = "--start" if start else f"{ini.path}: dosqlite_start"
    start = start or ini.text("dosqlite_start")
    if start is not None and ":" not in start and start not in ("drizzle", "drizzle-fk-off"):
        print(
            f"{start_from} must be drizzle, drizzle-fk-off or module:function, not {start!r}",
            file=sys.stderr,
        )
        return 2
    seed_path: Path | None = Path(seed) if seed else None
    ini_seed = ini.text("dosqlite_seed")
    if seed_path is None and ini_seed and ini.path is not None:
        seed_path = ini.path.parent / ini_seed  # relative to the ini file, as in pytest
    settings = Settings(
        lint_severity=severities,
        lint_baseline=tuple(baseline or ini.lines("dosqlite_lint_baseline")),
        seed=seed_path,
    )
    extra: dict[str, object] = {}
    try:
        rows = budget_rows if budget_rows is not None else ini.text("dosqlite_budget_rows")
        if rows is not None:
            settings.budget_rows = int(rows)
            if settings.budget_rows < 1:
                where = "--budget-rows" if budget_rows is not None else f"{ini.path}: "
                print(
                    f"{where}dosqlite_budget_rows must be at least 1, not {rows}"
                    if budget_rows is None
                    else f"--budget-rows must be at least 1, not {rows}",
                    file=sys.stderr,
                )
                return 2
        concurrency = ini.text("dosqlite_concurrency")
        if concurrency is not None:
            from .options import MAX_CONCURRENCY

            settings.concurrency = int(concurrency)
            if not 1 <= settings.concurrency <= MAX_CONCURRENCY:
                print(
                    f"{ini.path}: dosqlite_concurrency must be between 1 and {MAX_CONCURRENCY}, "
                    f"not {concurrency}",
                    file=sys.stderr,
                )
                return 2
        for key, ini_key, kind in (
            ("git_history_limit", "dosqlite_git_history_limit", int),
            ("fleet_workers", "dosqlite_workers", int),
            ("fleet_timeout", "dosqlite_timeout", float),
        ):
            raw = ini.text(ini_key)
            if raw is not None:
                extra[key] = kind(raw)
    except ValueError as exc:
        print(f"{ini.path or 'option'}: a number was expected: {exc}", file=sys.stderr)
        return 2
    history = (ini.text("dosqlite_git_history") or "true").lower()
    settings.git_history = history not in ("false", "0", "no", "off")
    if start is not None:
        extra["fleet_start"] = start
    ctx = CheckContext(
        bundle=bundle,
        settings=settings,
        project=project,
        do_classes=tuple(ref.do_classes) if ref else (),
        extra=extra,
    )
    if project is not None:
        wranglers, drizzles = len(project.wrangler_configs), len(project.drizzle_configs)
        print(
            f"project: {project.root} ({wranglers} wrangler config"
            f"{'' if wranglers == 1 else 's'}, {drizzles} drizzle config"
            f"{'' if drizzles == 1 else 's'})"
        )
    if ini.path is not None:
        print(f"settings: {ini.path}")
    print(f"start: {start or 'drizzle'}")
    failed = passed = skipped = 0
    config_errors = list(getattr(project, "errors", ()))
    for issue in config_errors:
        # as pytest --dosqlite reports them: an error of the run, whatever the checks say
        print(f"ERROR {issue}")
    for name in dict.fromkeys(names or CHECK_NAMES):  # a name given twice runs once
        if name in exclude:
            continue
        # a check's warnings (lint findings, integrity warnings) under its own line, each
        # once, instead of Python's "file:line: Category: message" and source line on stderr
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                get_check(name)(ctx)
            except CheckSkipped as exc:
                skipped += 1
                print(f"skipped {name}: {exc}")
            except CheckFailure as exc:
                failed += 1
                print(f"FAILED {name}\n{exc.render()}\n")
            except DosqliteError as exc:
                failed += 1
                print(f"FAILED {name}\n{exc}\n")
            else:
                passed += 1
                print(f"passed {name}")
        for w in caught:  # Python's own warnings go back to its filters
            if not issubclass(w.category, UserWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        mine = [
            f"{w.filename}:{w.lineno}: {w.message}"
            for w in caught
            if issubclass(w.category, UserWarning)
        ]
        for text in dict.fromkeys(mine):
            print(f"    warning: {text}")
    n = len(config_errors)
    print(
        f"{passed} passed, {failed} failed"
        + (f", {skipped} skipped" if skipped else "")
        + (f", {n} config error{'' if n == 1 else 's'}" if n else "")
    )
    return 1 if failed or n else 0


def _report(paths: list[str], out: str | None) -> int:
    from pathlib import Path
    from types import SimpleNamespace

    from .discovery import project_of
    from .report import render_report

    entries = []
    for given in paths:
        for b in _bundles_at(given):
            # as pytest --dosqlite shows them: the DO classes its Worker project binds to it,
            # and a label from the folder named (the classes column read "–")
            known = project_of(b.root.resolve())
            classes = tuple(known[1].do_classes) if known is not None else ()
            top = Path(given).resolve()
            label = os.path.relpath(b.root.resolve(), top) if b.root.resolve() != top else None
            entries.append(
                SimpleNamespace(
                    bundle=b, do_classes=classes, results={}, label=label or b.root.name
                )
            )
    target = Path(out) if out else None
    # the lint findings as the project's settings judge them, as in pytest --dosqlite
    from .inifile import find_ini
    from .lint import parse_severities

    ini = find_ini(Path(paths[0]) if Path(paths[0]).is_dir() else Path(paths[0]).parent)
    try:
        severity = parse_severities(ini.lines("dosqlite_lint_severity"))
    except ValueError as exc:
        print(f"{ini.path}: dosqlite_lint_severity: {exc}", file=sys.stderr)
        return 2
    text = render_report(
        entries,
        base=target.parent if target else None,
        lint_severity=severity,
        lint_baseline=ini.lines("dosqlite_lint_baseline"),
        start=ini.text("dosqlite_start"),
    )
    if target is None:
        sys.stdout.write(text)
        return 0
    try:
        # as --dosqlite-report (and pytest's --junitxml) do: the folder is made when missing
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"report written to {target}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_dosqlite",
        description=(__doc__ or "").replace("``", ""),  # the docstring's reST quotes
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_schema = sub.add_parser("schema", help="print the normalized schema of a bundle at head")
    p_schema.add_argument("path", help="drizzle-kit out folder, or a project folder with one")
    p_check = sub.add_parser("check", help="run the built-in checks on a bundle")
    p_check.add_argument("path", help="drizzle-kit out folder, or a project folder with one")
    p_check.add_argument(
        "--include", default="", help="checks to run, separated by commas (dosqlite_checks_include)"
    )
    p_check.add_argument(
        "--exclude",
        default="",
        help="checks to skip, separated by commas (dosqlite_checks_exclude)",
    )
    p_check.add_argument(
        "--lint-severity",
        action="append",
        default=[],
        metavar="RULE=LEVEL",
        help="a lint rule's severity: error, warning or off (repeatable; the pytest ini's "
        "dosqlite_lint_severity)",
    )
    p_check.add_argument(
        "--lint-baseline",
        action="append",
        default=[],
        metavar="TAG",
        help="lint only the migrations after TAG (the pytest ini's dosqlite_lint_baseline)",
    )
    p_check.add_argument(
        "--start",
        metavar="NAME",
        help="how the DO runs migrations: drizzle, drizzle-fk-off or module:function (the "
        "pytest ini's dosqlite_start)",
    )
    p_check.add_argument(
        "--seed", metavar="PATH", help="JSON seed rows for data_preserved (dosqlite_seed)"
    )
    p_check.add_argument(
        "--budget-rows",
        type=int,
        metavar="N",
        help="rows per table for startup_budget (dosqlite_budget_rows; default 100000)",
    )
    p_check.add_argument(
        "--no-ini",
        action="store_true",
        help="ignore the dosqlite_* settings of the project's pytest configuration",
    )
    p_report = sub.add_parser("report", help="write the Markdown report of bundles")
    p_report.add_argument(
        "path", nargs="+", help="drizzle-kit out folder(s), or project folders (all their bundles)"
    )
    p_report.add_argument("-o", "--output", help="file to write (default: standard output)")
    sub.add_parser("workerd-install", help="install the workerd backend's npm packages")
    args = parser.parse_args(argv)

    from .errors import DosqliteError

    try:
        if args.command == "schema":
            return _schema(args.path)
        if args.command == "check":
            include = args.include.replace(",", " ").split() or None
            exclude = args.exclude.replace(",", " ").split()
            return _check(
                args.path,
                include,
                exclude,
                args.lint_severity,
                args.lint_baseline,
                start=args.start,
                seed=args.seed,
                budget_rows=args.budget_rows,
                use_ini=not args.no_ini,
            )
        if args.command == "report":
            return _report(args.path, args.output)
        from .workerd.install import ensure_installed

        inst = ensure_installed(progress=True)
        how = f"installed in {inst.install_seconds:.0f} s" if inst.installed_now else "cached"
        print(
            f"workerd backend ready: {inst.workerd_version} ({how}) in {inst.directory}\n"
            f"node: {inst.node}"
        )
        return 0
    except DosqliteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder or file of the project that cannot be read
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: cannot read {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
