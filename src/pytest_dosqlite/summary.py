"""The terminal summary after a ``--dosqlite`` run: one line per bundle."""

from __future__ import annotations

from typing import Any

from .session import DosqliteSession

__all__ = ["write_summary"]


def write_summary(tr: Any, ds: DosqliteSession) -> None:
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
        tables = (
            f"{f.tables} tables"
            if f.tables is not None
            else ("? tables" if controller else _tables(ds, f))
        )
        if f.slowest is None and not controller:
            timings = ds.images.timings(f.bundle)
            if timings:
                f.slowest = max(timings.items(), key=lambda kv: kv[1])
        slow = f", slowest {f.slowest[0]} {f.slowest[1] * 1000:.1f} ms" if f.slowest else ""
        tr.write_line(
            f"{f.label}: {len(f.bundle.migrations)} migrations, {tables}, "
            f"checks {passed} passed, {failed} failed"
            + (f", {skipped} skipped" if skipped else "")
            + f"{slow}, {f.seconds:.2f}s"
        )
    tr.write_line(f"SQLite {sqlite_version()} (the version production Durable Objects run)")


def _tables(ds: DosqliteSession, found: Any) -> str:
    """ "N tables" at head; when a fresh DO cannot reach head, where it stops and the tables
    of the last version it reaches (a "?" would hide the one fact a reader needs)."""
    from .images import user_table_count

    bundle = found.bundle
    head = ds.images.head(bundle)
    if head.image is not None:
        return f"{user_table_count(head.image)} tables"
    count = len(bundle.migrations)
    while count > 0 and not ds.images.reaches(bundle, count):
        count -= 1
    stop = bundle.migrations[count].tag if count < len(bundle.migrations) else "?"
    reached = ds.images.version(bundle, count).image
    before = f", {user_table_count(reached)} tables before it" if reached is not None else ""
    return f"a fresh DO stops at {stop}{before}"
