"""Command-line options and ini keys, resolved with their provenance.

One option group with explicit ``dest`` names (as syrupy does); every option has an ini key, the
command line wins over the ini file, and the report header says where each setting came from
(as pytest-django does). Cheap to import: no heavy dependency.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: concurrent_starts runs this many starts at most (each is an OS process, twice: a value
#: meant as a row count forked processes until the machine ran out of them)
MAX_CONCURRENCY = 64

__all__ = ["Resolved", "add_options", "resolve"]

GROUP = "dosqlite"


def _pair(
    group: Any,
    parser: pytest.Parser,
    flag: str,
    ini: str,
    help: str,
    *,
    ini_type: str | None = None,
    ini_default: Any = "",
    **option: Any,
) -> None:
    """A command-line option (``dest`` from its flag) and the ini key that mirrors it."""
    option.setdefault("default", None)
    group.addoption(flag, dest=flag.lstrip("-").replace("-", "_"), help=help, **option)
    if ini_type is None:
        parser.addini(ini, help=help, default=ini_default)
    else:
        parser.addini(ini, help=help, type=ini_type, default=ini_default)  # type: ignore[arg-type]


def add_options(parser: pytest.Parser) -> None:
    from .registry import CHECK_NAMES

    group = parser.getgroup(GROUP, "Drizzle migrations for SQLite-backed Durable Objects")
    group.addoption(
        "--dosqlite",
        action="store_true",
        dest="dosqlite",
        default=False,
        help="Find every drizzle bundle and add the built-in migration checks.",
    )
    paths: dict[str, Any] = {
        "action": "append",
        "metavar": "PATH",
        "ini_type": "paths",
        "ini_default": [],
    }
    _pair(
        group,
        parser,
        "--dosqlite-project",
        "dosqlite_project",
        "Worker project root(s) to search for wrangler and drizzle configs "
        "(default: the paths given, else the current directory, else rootdir; if they hold no "
        "bundle, the nearest folder above with a wrangler or drizzle config).",
        **paths,
    )
    _pair(
        group,
        parser,
        "--dosqlite-bundle",
        "dosqlite_bundles",
        "drizzle-kit out folder(s) to check directly (repeatable).",
        **paths,
    )
    names: dict[str, Any] = {"metavar": "NAMES", "ini_type": "args", "ini_default": []}
    _pair(
        group,
        parser,
        "--dosqlite-checks-include",
        "dosqlite_checks_include",
        f"Comma-separated checks to run (default: all). Known: {', '.join(CHECK_NAMES)}.",
        **names,
    )
    _pair(
        group,
        parser,
        "--dosqlite-checks-exclude",
        "dosqlite_checks_exclude",
        "Comma-separated checks to skip.",
        **names,
    )
    _pair(
        group,
        parser,
        "--dosqlite-backend",
        "dosqlite_backend",
        "Where DOs run: the Python emulator (default) or real workerd via Node.",
        choices=("emulator", "workerd"),
    )
    _pair(
        group,
        parser,
        "--dosqlite-concurrency",
        "dosqlite_concurrency",
        "Concurrent starts raced by concurrent_starts (default 8, at most 64).",
        type=int,
        metavar="N",
    )
    _pair(
        group,
        parser,
        "--dosqlite-budget-rows",
        "dosqlite_budget_rows",
        "Rows per table for the blockConcurrencyWhile budget estimate (default 100000).",
        type=int,
        metavar="N",
    )
    _pair(
        group,
        parser,
        "--dosqlite-seed",
        "dosqlite_seed",
        "JSON file of seed rows per migration tag for data_preserved.",
        metavar="PATH",
    )
    _pair(
        group,
        parser,
        "--dosqlite-start",
        "dosqlite_start",
        "How your DO runs migrations at start-up: drizzle (default), drizzle-fk-off, or a "
        "Python function MODULE:FUNCTION (do, bundle).",
        metavar="NAME",
    )
    _pair(
        group,
        parser,
        "--dosqlite-report",
        "dosqlite_report",
        "Write a Markdown report (schema diagrams, timeline, findings) to PATH.",
        metavar="PATH",
    )
    group.addoption(
        "--dosqlite-no-git",
        dest="dosqlite_no_git",
        action="store_true",
        default=False,
        help="Do not walk the git history of bundles in upgrade_from_every_version.",
    )
    parser.addini(
        "dosqlite_git_history", help="Walk git history of bundles.", type="bool", default=True
    )
    for ini, help_text in (
        ("dosqlite_git_history_limit", "Past commits walked (default 50)."),
        ("dosqlite_workers", "Worker processes for the fleet checks (default: CPUs)."),
        ("dosqlite_timeout", "Seconds per fleet job before it counts as hung (120)."),
    ):
        parser.addini(ini, help=help_text, default="")
    parser.addini(
        "dosqlite_lint_severity",
        help="Lint severities, one RULE=error|warning|off per line.",
        type="linelist",
        default=[],
    )
    parser.addini(
        "dosqlite_lint_baseline",
        help="Lint only the migrations after this one (a tag, e.g. 0012_shipped; one per bundle).",
        type="linelist",
        default=[],
    )


@dataclass
class Resolved:
    """Settings after CLI > ini resolution, with where each one came from."""

    enabled: bool
    projects: list[Path]
    bundles: list[Path]
    checks: list[str]
    backend: str
    concurrency: int
    budget_rows: int
    seed: Path | None
    git_history: bool
    lint_severity: dict[str, str]
    report: Path | None
    #: dosqlite_lint_baseline: migration tags (see :class:`~pytest_dosqlite.checks.Settings`)
    lint_baseline: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    #: knobs of the fleet checks, passed to them through CheckContext.extra
    fleet: dict[str, Any] = field(default_factory=dict)

    @property
    def idle_checks(self) -> list[str]:
        """Checks of :attr:`checks` this backend does not run (workerd-only ones on the
        emulator): they are not collected, and the header and summary say so."""
        from .registry import WORKERD_ONLY

        return [c for c in self.checks if c in WORKERD_ONLY and self.backend != "workerd"]


def _names(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    out: list[str] = []
    for item in items:  # commas or spaces: no check name has either
        out.extend(p for p in str(item).replace(",", " ").split() if p)
    return out


def resolve(config: pytest.Config) -> Resolved:
    """Resolve every setting; unknown check names and bad values raise ``pytest.UsageError``."""
    from .registry import CHECK_NAMES

    opt = config.option
    sources: dict[str, str] = {}
    root = Path(str(config.rootpath))

    def pick(name: str, cli: Any, ini_key: str) -> Any:
        # `is`, not `in`: a 0 on the command line (0 == False) is a value, and must be checked
        if not (cli is None or cli is False or cli == []):
            sources[name] = "command line"
            return cli
        value = config.getini(ini_key)
        if value not in (None, [], ""):
            sources[name] = f"ini {ini_key}"
            return value
        sources[name] = "default"
        return None

    projects = pick("project", opt.dosqlite_project, "dosqlite_project")
    project_paths = [(Path.cwd() / p).resolve() for p in projects or []]
    if not project_paths:
        # `pytest --dosqlite example_project`: the paths given on the command line are the
        # projects; with none, the rootdir is
        given = []
        for arg in config.args:
            path = Path(str(arg).split("::")[0])
            path = path if path.is_absolute() else Path(str(config.invocation_params.dir)) / path
            # a test file stands for its folder, as a folder does: its project's bundles
            folder = path if path.is_dir() else path.parent if path.is_file() else None
            if folder is not None and folder.name == "meta" and (folder / "_journal.json").exists():
                folder = folder.parent  # drizzle/meta(/_journal.json) is the bundle's
            if folder is not None and folder not in given:
                given.append(folder)
        from_cli = getattr(config, "args_source", None) == pytest.Config.ArgsSource.ARGS
        invoked = Path(str(config.invocation_params.dir)).resolve()
        if given and from_cli:
            project_paths = given
            sources["project"] = "command-line paths"
        elif invoked != root.resolve() and invoked.is_relative_to(root.resolve()):
            # run inside one package of a repository: its bundles, as pytest collects its tests
            project_paths = [invoked]
            sources["project"] = "current directory"
        else:
            project_paths = [root]
            sources["project"] = "rootdir"
    bundles = pick("bundles", opt.dosqlite_bundle, "dosqlite_bundles")
    bundle_paths = [Path(p) if Path(p).is_absolute() else (Path.cwd() / p) for p in bundles or []]
    for name, given_paths in (("bundles", bundle_paths), ("project", project_paths)):
        missing = [str(p) for p in given_paths if not p.exists()]
        if missing and sources.get(name) in ("command line", f"ini dosqlite_{name}"):
            # a typo: it was a load error of the run, and the project's own checks went missing
            option = "--dosqlite-bundle" if name == "bundles" else "--dosqlite-project"
            raise pytest.UsageError(
                f"{option} / dosqlite_{name}: no such folder: {', '.join(missing)}"
            )

    include_raw = pick("checks_include", opt.dosqlite_checks_include, "dosqlite_checks_include")
    include = _names(include_raw)
    if include_raw and not include and "".join(map(str, include_raw)).strip():
        # `, ,` named no check: it ran them all, which is what an empty list would mean
        shown = include_raw if isinstance(include_raw, str) else " ".join(map(str, include_raw))
        raise pytest.UsageError(
            f"dosqlite_checks_include names no check: {shown!r}. "
            f"Known checks: {', '.join(CHECK_NAMES)}"
        )
    exclude = _names(pick("checks_exclude", opt.dosqlite_checks_exclude, "dosqlite_checks_exclude"))
    unknown = [n for n in include + exclude if n not in CHECK_NAMES]
    if unknown:
        raise pytest.UsageError(
            f"unknown dosqlite check name(s): {', '.join(unknown)}. "
            f"Known checks: {', '.join(CHECK_NAMES)}"
        )
    if sources.get("checks_include") == "command line" and sources.get(
        "checks_exclude", ""
    ).startswith("ini"):
        # a check asked for on the command line runs, whatever the ini leaves out
        exclude = [n for n in exclude if n not in include]
    # a name given twice is one check
    checks = [n for n in dict.fromkeys(include or CHECK_NAMES) if n not in exclude]

    backend = pick("backend", opt.dosqlite_backend, "dosqlite_backend") or "emulator"
    if backend not in ("emulator", "workerd"):
        raise pytest.UsageError(f"dosqlite_backend must be emulator or workerd, not {backend!r}")

    def as_int(name: str, cli: Any, ini_key: str, default: int, most: int | None = None) -> int:
        raw = pick(name, cli, ini_key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise pytest.UsageError(f"{ini_key} must be an integer, not {raw!r}") from None
        if value < 1:
            raise pytest.UsageError(f"{ini_key} must be at least 1, not {value}")
        if most is not None and value > most:
            raise pytest.UsageError(f"{ini_key} must be at most {most}, not {value}")
        return value

    concurrency = as_int(
        "concurrency", opt.dosqlite_concurrency, "dosqlite_concurrency", 8, MAX_CONCURRENCY
    )
    budget_rows = as_int("budget_rows", opt.dosqlite_budget_rows, "dosqlite_budget_rows", 100_000)
    seed_raw = pick("seed", opt.dosqlite_seed, "dosqlite_seed")
    seed: Path | None = None
    if seed_raw:
        # a command-line path is the shell's, relative to where pytest was started; an ini
        # path is relative to the ini file, as pytest's own path settings are
        if sources["seed"] == "command line":
            base = Path(str(config.invocation_params.dir))
        else:
            base = Path(str(config.inipath)).parent if config.inipath else root
        seed = base / seed_raw
    git_history = bool(config.getini("dosqlite_git_history")) and not opt.dosqlite_no_git
    from .lint import parse_severities

    try:
        severity = parse_severities(config.getini("dosqlite_lint_severity"))
    except ValueError as exc:
        raise pytest.UsageError(f"dosqlite_lint_severity: {exc}") from None
    start = pick("start", opt.dosqlite_start, "dosqlite_start") or None
    if start is not None and ":" not in str(start) and start not in ("drizzle", "drizzle-fk-off"):
        raise pytest.UsageError(
            f"dosqlite_start must be drizzle, drizzle-fk-off or module:function, not {start!r}"
        )
    fleet: dict[str, Any] = {}
    for key, ini_key, kind in (
        ("git_history_limit", "dosqlite_git_history_limit", int),
        ("fleet_workers", "dosqlite_workers", int),
        ("fleet_timeout", "dosqlite_timeout", float),
    ):
        raw = config.getini(ini_key)
        if raw not in (None, ""):
            try:
                fleet[key] = kind(raw)
            except ValueError:
                raise pytest.UsageError(f"{ini_key} must be a number, not {raw!r}") from None
            if not fleet[key] > 0:
                walk = key == "git_history_limit"
                hint = " (dosqlite_git_history = false turns the walk off)" if walk else ""
                raise pytest.UsageError(f"{ini_key} must be above 0, not {raw!r}{hint}")
    if start is not None:
        fleet["fleet_start"] = str(start)
    report_raw = pick("report", opt.dosqlite_report, "dosqlite_report")
    if report_raw and str(report_raw).endswith(("/", os.sep)):
        raise pytest.UsageError(
            f"dosqlite_report needs a file name, not a folder: {report_raw} "
            f"(for example {str(report_raw).rstrip('/' + os.sep)}/dosqlite-report.md)"
        )
    report = Path(report_raw) if report_raw else None
    return Resolved(
        enabled=bool(opt.dosqlite),
        projects=project_paths,
        bundles=bundle_paths,
        checks=checks,
        backend=str(backend),
        concurrency=concurrency,
        budget_rows=budget_rows,
        seed=seed,
        git_history=git_history,
        lint_severity=severity,
        report=report,
        lint_baseline=[t.strip() for t in config.getini("dosqlite_lint_baseline") if t.strip()],
        sources=sources,
        fleet=fleet,
    )
