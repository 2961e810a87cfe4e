"""The terminal summary after a ``--dosqlite`` run: one line per bundle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .session import DosqliteSession

__all__ = ["write_summary"]


def write_summary(tr: Any, ds: DosqliteSession) -> None:
    from .images import head_summary
    from .selection import explicit_paths, ignored, selected
    from .storage import sqlite_version

    if not ds.found and not ds.errors:
        return
    tr.write_sep("-", "dosqlite")
    paths = explicit_paths(tr.config)
    root = Path(str(tr.config.rootpath))
    for e in ds.errors:
        # a bundle that could not be loaded is a bundle of the project too: say so here
        where = Path(e.path)
        label = os.path.relpath(where, root) if where.is_absolute() else str(where)
        first = e.message.splitlines()[0] if e.message else ""
        tr.write_line(f"{label}: could not be loaded: {first}")
    for f in ds.found:
        passed = sum(1 for v in f.results.values() if v == "passed")
        failed = sum(1 for v in f.results.values() if v == "failed")
        skipped = sum(1 for v in f.results.values() if v == "skipped")
        # known from the checks' reports; otherwise from images this process already built
        # (for a user's fixtures, say): never built just to print this line, which would cost
        # a run that selected no check (-k, --co) the migrations of every bundle
        n = len(f.bundle.migrations)
        built = ds.images.built(f.bundle)
        head = f.head or (head_summary(ds.images, f.bundle) if built else None)
        if f.slowest is None and built:
            timings = ds.images.timings(f.bundle)
            if timings:
                f.slowest = max(timings.items(), key=lambda kv: kv[1])
        slow = f", slowest {f.slowest[0]} {f.slowest[1] * 1000:.1f} ms" if f.slowest else ""
        if not f.results:
            why = (
                "not under the paths given"
                if not selected(f, paths)
                else "ignored (--ignore)"
                if ignored(f, tr.config)
                else "none selected"
            )
            tr.write_line(
                f"{f.label}: {n} migration{'' if n == 1 else 's'}{f', {head}' if head else ''}, "
                f"checks: {why}"
            )
            continue
        tr.write_line(
            f"{f.label}: {n} migration{'' if n == 1 else 's'}{f', {head}' if head else ''}, "
            f"checks {passed} passed, {failed} failed"
            + (f", {skipped} skipped" if skipped else "")
            + f"{slow}, {f.seconds:.2f}s"
        )
    s = ds.settings
    if s.idle_checks and s.sources.get("checks_include") != "default":
        # asked for by name and not collected: -q shows no header, say it here
        idle = ", ".join(s.idle_checks)
        tr.write_line(f"not run: {idle} (only with --dosqlite-backend=workerd)")
    tr.write_line(f"SQLite {sqlite_version()} (the version production Durable Objects run)")
