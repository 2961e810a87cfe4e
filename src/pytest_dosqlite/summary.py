"""The terminal summary after a ``--dosqlite`` run: one line per bundle."""

from __future__ import annotations

from typing import Any

from .session import DosqliteSession

__all__ = ["write_summary"]


def write_summary(tr: Any, ds: DosqliteSession) -> None:
    from .images import head_summary
    from .storage import sqlite_version

    if not ds.found:
        return
    tr.write_sep("-", "dosqlite")
    for f in ds.found:
        passed = sum(1 for v in f.results.values() if v == "passed")
        failed = sum(1 for v in f.results.values() if v == "failed")
        skipped = sum(1 for v in f.results.values() if v == "skipped")
        # known from the checks' reports; otherwise ask the images only in this process's
        # own run (an xdist controller would build every image just to print this line)
        controller = ds.config.pluginmanager.has_plugin("dsession")
        n = len(f.bundle.migrations)
        head = f.head or ("? tables" if controller else head_summary(ds.images, f.bundle))
        if f.slowest is None and not controller:
            timings = ds.images.timings(f.bundle)
            if timings:
                f.slowest = max(timings.items(), key=lambda kv: kv[1])
        slow = f", slowest {f.slowest[0]} {f.slowest[1] * 1000:.1f} ms" if f.slowest else ""
        tr.write_line(
            f"{f.label}: {n} migration{'' if n == 1 else 's'}, {head}, "
            f"checks {passed} passed, {failed} failed"
            + (f", {skipped} skipped" if skipped else "")
            + f"{slow}, {f.seconds:.2f}s"
        )
    tr.write_line(f"SQLite {sqlite_version()} (the version production Durable Objects run)")
