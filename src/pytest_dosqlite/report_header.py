"""The ``pytest --dosqlite`` report header: what was found, where, and where settings came from."""

from __future__ import annotations

from .session import DosqliteSession

__all__ = ["header_lines"]


def header_lines(ds: DosqliteSession) -> list[str]:
    from .runtime import RUNTIME
    from .storage import sqlite_version

    s = ds.settings
    lines = [
        f"dosqlite: SQLite {sqlite_version()} (emulating workerd {RUNTIME.workerd}, "
        f"SQLite {RUNTIME.sqlite}), backend: {s.backend} (from {s.sources.get('backend')})",
    ]
    projects = ", ".join(str(p) for p in s.projects)
    lines.append(f"dosqlite: project: {projects} (from {s.sources.get('project')})")
    checks_from = s.sources.get("checks_include")
    if s.sources.get("checks_exclude") != "default":
        checks_from = f"{checks_from}, exclude from {s.sources.get('checks_exclude')}"
    # a workerd-only check is not collected on the emulator: say so, or it silently vanishes
    idle = s.idle_checks
    running = [c for c in s.checks if c not in idle]
    line = f"dosqlite: checks: {', '.join(running) or 'none'} (from {checks_from})"
    if idle:
        line += f"; {', '.join(idle)} only with --dosqlite-backend=workerd"
    lines.append(line)
    start = s.fleet.get("fleet_start") or "drizzle"
    meaning = {
        "drizzle": "migrate() in blockConcurrencyWhile",
        "drizzle-fk-off": "foreign keys off around migrate()",
    }.get(start, "your function")
    lines.append(f"dosqlite: start: {start} ({meaning}; from {s.sources.get('start', 'default')})")
    for f in ds.found:
        classes = f" for {', '.join(f.do_classes)}" if f.do_classes else ""
        lines.append(
            f"dosqlite: bundle {f.label}: {len(f.bundle.migrations)} migrations "
            f"({f.bundle.format}){classes} (from {f.source})"
        )
    for e in ds.errors:
        first = e.message.splitlines()[0] if e.message else ""
        where = "" if first.startswith(str(e.path)) else f"{e.path}: "
        lines.append(f"dosqlite: could not load {where}{first}")
    for note in ds.config_notes:
        lines.append(f"dosqlite: note: {note}")
    return lines
