"""The built-in checks: ordinary functions, collected by ``pytest --dosqlite`` or called directly.

Each check takes a :class:`CheckContext` and returns normally or raises
:class:`~pytest_dosqlite.errors.CheckFailure` with titled sections. They are plain functions so a
user can also call them from their own tests::

    from pytest_dosqlite import checks
    checks.upgrade_from_empty(checks.CheckContext.for_bundle("drizzle"))

Heavier checks live in their own modules (fleet, preservation, lint, ...) and are registered here
by name in :mod:`pytest_dosqlite.registry`, the single list the plugin collects from.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bundle import Bundle, load_bundle
from .errors import CheckFailure, DurableObjectInternalError, MigrationError
from .images import ImageCache, default_cache

if TYPE_CHECKING:
    from .discovery import Project

__all__ = [
    "CheckContext",
    "Settings",
    "all_checks",
    "bundle_integrity",
    "idempotent",
    "migration_failure",
    "upgrade_from_empty",
]


@dataclass
class Settings:
    """Knobs of the checks (command line / ini)."""

    #: concurrent starts racing in ``concurrent_starts``
    concurrency: int = 8
    #: rows seeded per table for the blockConcurrencyWhile budget estimate
    budget_rows: int = 100_000
    #: blockConcurrencyWhile limit in seconds
    budget_seconds: float = 30.0
    #: lint rule id -> "error" | "warning" | "off"
    lint_severity: dict[str, str] = field(default_factory=dict)
    #: migration tags: lint only the migrations after the last of them in the bundle (the ones
    #: already shipped are accepted as they are; a tag of another bundle does nothing)
    lint_baseline: tuple[str, ...] = ()
    #: walk the git history of the bundle folder in upgrade_from_every_version
    git_history: bool = True
    #: user seed rows: callable(tag, do) or a path to a JSON file {tag: {table: [rows]}}
    seed: Any = None
    #: backend: "emulator" or "workerd"
    backend: str = "emulator"


@dataclass
class CheckContext:
    """Everything a check needs: the bundle, its project, settings, and shared images."""

    bundle: Bundle
    settings: Settings = field(default_factory=Settings)
    images: ImageCache = field(default_factory=default_cache)
    project: Project | None = None
    #: names of the DO classes that use this bundle (from discovery)
    do_classes: tuple[str, ...] = ()
    #: where the schema snapshot of this bundle lives (set by the plugin)
    snapshot_dir: Path | None = None
    #: anything the plugin wants to pass along (syrupy fixture, pytest config, ...)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_bundle(cls, path: str | Path, **kwargs: Any) -> CheckContext:
        return cls(bundle=load_bundle(path), **kwargs)

    def setting(self, name: str, default: Any) -> Any:
        """``settings.<name>`` when set, else ``extra[name]``, else ``default``."""
        value = getattr(self.settings, name, None)
        return self.extra.get(name, default) if value is None else value

    @property
    def foreign_keys_off(self) -> bool:
        """The DO turns foreign keys off before ``migrate()`` (``--dosqlite-start
        drizzle-fk-off``, a ``module:function`` start that does, or the ``foreign_keys_off``
        setting): the checks that time or replay migrations on data run them that way too."""
        if self.setting("foreign_keys_off", False):
            return True
        from .fleet import start_turns_foreign_keys_off

        return start_turns_foreign_keys_off(self.extra.get("fleet_start"))


def migration_failure(
    exc: MigrationError, summary: str | None = None, *, fresh_do: bool = False
) -> CheckFailure:
    """A CheckFailure with the standard sections for a failed migration.

    ``fresh_do``: the check cannot start because a fresh DO fails to migrate, which is
    ``upgrade_from_empty``'s failure to report (:attr:`CheckFailure.reported_by`).
    """
    sections: list[tuple[str, str]] = []
    if exc.tag is not None:
        where = exc.tag
        if exc.chunk is not None:
            where += f" (chunk {exc.chunk})"
        sections.append(("Migration", where))
    if exc.statement is not None:
        loc = ""
        if exc.path is not None:
            loc = f"{exc.path}{':' + str(exc.line) if exc.line else ''}\n"
        sections.append(("Statement", loc + exc.statement))
    if isinstance(exc.cause, DurableObjectInternalError):
        sections.append(("Error", f"{exc.cause.reason}\n(workerd: {exc.cause})"))
    elif exc.cause is not None:
        sections.append(("SQLite error", str(exc.cause)))
    elif exc.tag is not None and exc.statement is None:
        sections.append(("Error", exc.message))
    if exc.applied_before:
        sections.append(
            (
                "Rolled back with it",
                "the whole run is one transactionSync; these migrations of the same run were "
                "rolled back too: " + ", ".join(exc.applied_before),
            )
        )
    if exc.build_failure:
        real = (
            f"the Worker does not build: wrangler's bundler stops with `{exc.drizzle_message}`, "
            "so this version cannot be deployed at all."
        )
        summary = summary or f"the Worker does not build: {exc.message}"
    elif isinstance(exc.cause, DurableObjectInternalError):
        real = (
            f"the request fails with `{exc.drizzle_message}` (its reference is random) before "
            "migrate() can report anything: workerd resets the DO and rolls back the run, and "
            "every request re-constructs it and fails the same way until the bundle is fixed."
        )
    else:
        real = (
            f"migrate() throws `{exc.drizzle_message}`; the constructor's "
            "blockConcurrencyWhile throws it to every waiting request, and the DO is reset and "
            "re-constructed on the next request, failing again until the bundle is fixed."
        )
    sections.append(("On a real Durable Object", real))
    sections.append(("How to fix", _fix_hint(exc)))
    if summary is None:
        summary = (
            f"migration {exc.tag} fails on a fresh Durable Object"
            if exc.tag is not None
            else f"a fresh Durable Object fails before any migration runs: {exc.message}"
        )
    return CheckFailure(summary, sections, reported_by="upgrade_from_empty" if fresh_do else None)


#: SQLite's message when ALTER TABLE breaks a view, trigger or index that depends on the table
_DEPENDENT = re.compile(r"error in (view|trigger|index) (.+?)(?: after [a-z ]+)?: ")


def _fix_hint(exc: MigrationError) -> str:
    if isinstance(exc.cause, DurableObjectInternalError):
        if exc.cause.kind == "rolled-back":
            return (
                "Use OR ABORT (the default), OR FAIL or OR IGNORE instead of OR ROLLBACK, and "
                "RAISE(ABORT, ...) instead of RAISE(ROLLBACK, ...) in triggers: those undo the "
                "statement only (and drizzle rolls back the run), where ROLLBACK ends the "
                "transaction workerd holds open."
            )
        return (
            "Remove RETURNING from the statement: drizzle's migrator runs every statement "
            "without reading its rows, and a migration has no use for them."
        )
    cause = str(exc.cause or exc.message)
    if cause.startswith("To execute a transaction"):
        return (
            "Remove BEGIN/COMMIT/SAVEPOINT from the migration: drizzle already runs the whole "
            "migration inside ctx.storage.transactionSync()."
        )
    if "SQL code did not contain a statement" in cause:
        return (
            "A chunk has no statement: an unedited `--custom` migration (only its header "
            "comment), a comment after the last `;`, or a trailing `--> statement-breakpoint`. "
            "Put real SQL in the chunk, or move the comment before the statement."
        )
    if "not authorized" in cause:
        return (
            "Durable Objects only allow some PRAGMAs and functions (and no ATTACH, TEMP objects, "
            "or names starting with _cf_). Rewrite the statement without it."
        )
    if cause.startswith("Missing migration"):
        return (
            "The Worker's migrations module (drizzle-kit's migrations.js, or a hand-written "
            "migrations.ts) has no key mNNNN for this journal entry in its `migrations` object. "
            "Add it (with `import mNNNN from './NNNN_tag.sql'` if that is missing too): "
            "`drizzle-kit generate` rewrites migrations.js only when it writes a new migration."
        )
    if "statement too long" in cause:
        return (
            "One sql.exec call takes at most 100,000 UTF-8 bytes, and drizzle passes each chunk "
            "of the file to one call. Split the chunk with `--> statement-breakpoint` lines, or "
            "move bulk data out of the migration and load it from the Worker in batches."
        )
    if "FOREIGN KEY constraint failed" in cause:
        return (
            "PRAGMA foreign_keys=OFF is a no-op inside the migrator's transaction. Run "
            "`ctx.storage.sql.exec('PRAGMA foreign_keys=OFF')` in blockConcurrencyWhile BEFORE "
            "migrate() and turn it back on after an `await` of a timer, or rewrite the migration "
            "so no parent row is deleted, and no child row points at a parent that does not "
            "exist."
        )
    if "foreign key mismatch" in cause:
        return (
            "A REFERENCES clause names parent columns that are neither the parent's PRIMARY KEY "
            "nor covered by a UNIQUE index, or a parent that does not exist at this point. "
            "SQLite checks it when a row of either table is written or the parent is dropped. "
            "Reference the primary key or a UNIQUE column set, and create the parent (and its "
            "index) before the child."
        )
    if "syntax error" in cause or "incomplete input" in cause or "unrecognized token" in cause:
        return (
            "SQLite cannot parse the statement (the offset points at where it stopped). Its "
            "ALTER TABLE only renames a table or a column, adds or drops a column: any other "
            "change (ALTER COLUMN, a new constraint) needs the table recreated, as drizzle-kit "
            "does for SQLite with a `__new_` table. Check that the bundle was generated with "
            "`dialect: 'sqlite'`."
        )
    if "database table is locked" in cause:
        return (
            "A SELECT that reads a table ran earlier in the same start (this migration or an "
            "earlier one of the run): drizzle never reads its rows, so it keeps running, and "
            "SQLite refuses DROP TABLE and DROP INDEX meanwhile. Delete the SELECT from the "
            "migration (lint rule DO034): a migration cannot use its result."
        )
    if "Cannot add a column with non-constant default" in cause:
        return (
            "SQLite adds a column whose DEFAULT is an expression (`(unixepoch())`, "
            "`CURRENT_TIMESTAMP`) only to an empty table. Add it with a constant default (a "
            "number, a string) or none, then fill it with an UPDATE in the same migration "
            "(`UPDATE t SET c = unixepoch();`), or recreate the table (lint rule DO032)."
        )
    if "Cannot add a REFERENCES column with non-NULL default value" in cause:
        return (
            "Add the column without a default (or DEFAULT NULL) and set its value with an "
            "UPDATE in the same migration, or recreate the table (lint rule DO035)."
        )
    if "Cannot add a NOT NULL column with default value NULL" in cause:
        return (
            "Give the column a DEFAULT (`.notNull().default(...)` in the drizzle schema), or add "
            "it nullable, backfill it with UPDATE, and make it NOT NULL in a later migration "
            "(lint rule DO022)."
        )
    dependent = _DEPENDENT.search(cause)
    if dependent is not None:
        kind, name = dependent.group(1), dependent.group(2)
        quoted = '"' + name.replace('"', '""') + '"'
        if kind == "index":
            return (
                f"Index {name} uses a column this statement drops or renames away. Drop the "
                f"index first (`DROP INDEX {quoted};` before the statement) and create it again "
                "afterwards without that column, if it is still needed."
            )
        return (
            f"The {kind} {name} uses a table or column this statement renames, drops or "
            "recreates: SQLite checks every view and trigger again after ALTER TABLE. Drop it "
            f"before the statement (`DROP {kind.upper()} {quoted};`, before drizzle-kit's "
            "`__new_` table for a recreation) and create it again after it (after the RENAME), "
            "in the same migration."
        )
    if "no such table" in cause or "no such column" in cause:
        return (
            "The statement uses a table or column that does not exist at this point of the "
            "migrations: an earlier migration did not create it, renamed or dropped it, or the "
            "statements run in another order than intended. Create it first, or fix the name."
        )
    if "already exists" in cause:
        return (
            "An earlier migration or statement already created it. Remove the second creation, "
            "or rename what this one creates."
        )
    if "constraint failed" in cause:
        return (
            "A statement writes rows that break the constraint on a fresh DO (the migration's "
            "own INSERT, UPDATE or copy): make the written values satisfy it, or change the "
            "constraint."
        )
    # every failure gets a way forward, as the checks' pages say
    return (
        "Fix the statement shown at its file and line, then run `pytest --dosqlite` (or "
        "`python -m pytest_dosqlite check PATH`) again."
    )


# ---------------------------------------------------------------------------------- checks


def bundle_integrity(ctx: CheckContext) -> None:
    """The bundle is consistent: journal, migrations.js, .sql files and snapshots agree.

    Errors (what breaks migrate() or the fleet) fail the check; warnings (a missing drizzle-kit
    snapshot, an unused migrations.js key, ...) are reported as ``IntegrityWarning``.
    """
    import warnings

    from .errors import IntegrityWarning

    problems = ctx.bundle.problems
    errors = [p for p in problems if getattr(p, "severity", "error") == "error"]
    warned = [p for p in problems if getattr(p, "severity", "error") != "error"]
    for p in warned:
        try:
            # the location is the warning's own (pytest prints it first): not twice
            warnings.warn_explicit(
                IntegrityWarning(f"[{p.code}] {p.message}"),
                IntegrityWarning,
                str(p.path) if p.path is not None else str(ctx.bundle.root),
                p.line or 1,
            )
        except IntegrityWarning:  # -W error: all of them fail the check, listed
            errors += warned
            break
    if not errors:
        return
    sections: list[tuple[str, str]] = []
    for p in errors:
        body = f"{p.message}"
        if p.path is not None:
            body = f"{p.path}{':' + str(p.line) if p.line else ''}\n{body}"
        if p.fix:
            body += f"\nfix: {p.fix}"
        sections.append((f"[{p.code}]" + (f" {p.migration}" if p.migration else ""), body))
    raise CheckFailure(f"{len(errors)} integrity problem(s) in bundle {ctx.bundle.root}", sections)


def upgrade_from_empty(ctx: CheckContext) -> None:
    """A fresh DO migrates to head without error (what every new DO instance does)."""
    from .images import ImageCache, head_summary

    head = ctx.images.head(ctx.bundle)
    # for the terminal summary, failed or not; the workerd backend keeps no images to count
    # tables in, so there the summary asks the emulator's
    if isinstance(ctx.images, ImageCache):
        ctx.extra["head_summary"] = head_summary(ctx.images, ctx.bundle)
    if head.error is not None:
        raise migration_failure(head.error)
    ctx.extra["timings"] = ctx.images.timings(ctx.bundle)


def idempotent(ctx: CheckContext) -> None:
    """A second and a third migrate() change nothing: schema, ledger and data stay the same."""
    try:
        do = ctx.images.fresh(ctx.bundle)
    except MigrationError as exc:
        raise migration_failure(
            exc, "cannot check idempotence: migrating a fresh DO fails", fresh_do=True
        ) from None
    try:
        _migrate_again(do, ctx.bundle)
    finally:
        do.close()


def _migrate_again(do: Any, bundle: Any) -> None:
    from .migrator import migrate

    dump_before = _dump(do)
    for attempt in (2, 3):
        try:
            run = migrate(do, bundle)
        except MigrationError as exc:
            raise migration_failure(
                exc, f"migrate() call #{attempt} on an up-to-date DO fails"
            ) from None
        if run.applied:
            raise CheckFailure(
                f"migrate() call #{attempt} re-applied migrations on an up-to-date DO",
                [("Re-applied", ", ".join(run.applied))],
            )
        dump_after = _dump(do)
        if dump_after != dump_before:
            raise CheckFailure(
                f"migrate() call #{attempt} changed an up-to-date DO",
                [("Before", _fmt(dump_before)), ("After", _fmt(dump_after))],
            )


def _dump(do: Any) -> list[list[Any]]:
    rows: list[list[Any]] = (
        do.sql.exec("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .raw()
        .to_array()
    )
    ledger: list[list[Any]] = (
        do.sql.exec('SELECT rowid, id, hash, created_at FROM "__drizzle_migrations" ORDER BY rowid')
        .raw()
        .to_array()
    )
    return rows + [["ledger", *r] for r in ledger]


def _fmt(rows: list[list[Any]]) -> str:
    return "\n".join(" | ".join(str(v) for v in r) for r in rows)


def schema_snapshot(ctx: CheckContext) -> None:
    """The normalized schema at head equals the reviewed snapshot file, and no pinned migration
    was edited after it was recorded."""
    from .schema import RENDER_VERSION, introspect, render
    from .snapshot import read_pins, renamed_from, render_snapshot, snapshot_path

    try:
        do = ctx.images.fresh(ctx.bundle)
    except MigrationError as exc:
        raise migration_failure(
            exc, "cannot snapshot the schema: migrating a fresh DO fails", fresh_do=True
        ) from None
    try:
        schema = introspect(_query(do))
    finally:
        do.close()
    text = render_snapshot(ctx.bundle, render(schema), RENDER_VERSION)
    path = snapshot_path(ctx.bundle.root)
    command = "`pytest --dosqlite --snapshot-update`"
    item = ctx.extra.get("pytest_item")
    if item is not None and not item.config.pluginmanager.hasplugin("syrupy"):
        # --snapshot-update is syrupy's option: under -p no:syrupy it is "unrecognized"
        command += " (syrupy's option: without `-p no:syrupy`)"
    pins = read_pins(path)
    update = bool(ctx.extra.get("update_snapshots"))
    renamed = renamed_from(ctx.bundle) if pins is None and not update else None
    if renamed is not None:
        pins = renamed[1]  # the recorded migrations stay protected under the new name
    if pins and not update:
        current = {m.tag: m.pin_sha256 for m in ctx.bundle.migrations}
        edited = [p.tag for p in pins if p.tag in current and current[p.tag] != p.sha256]
        # a recorded text now under another tag was renamed (renumbered on a merge), not
        # removed: drizzle's ledger keeps each migration's `when`, not its tag
        pinned = {p.tag for p in pins}
        by_text = {sha: tag for tag, sha in current.items() if tag not in pinned}
        gone = [p for p in pins if p.tag not in current]
        moved = [(p.tag, by_text[p.sha256]) for p in gone if p.sha256 in by_text]
        removed = [p.tag for p in gone if p.sha256 not in by_text]
        if edited or removed or moved:
            sections = []
            if moved:
                sections.append(
                    (
                        "Renamed after it was recorded",
                        "\n".join(f"{old} -> {new} (the same SQL)" for old, new in moved)
                        + "\nA DO's ledger keeps each migration's `when`, not its tag: a rename "
                        "alone changes nothing for deployed DOs (upgrade_from_every_version "
                        f"checks the `when`). Record the new names with {command}.",
                    )
                )
            if edited:
                sections.append(
                    (
                        "Edited after it was recorded",
                        "\n".join(edited)
                        + "\nDOs that already applied these migrations will never run the new "
                        "text (drizzle's ledger stores no hash on a DO); only fresh DOs get it, "
                        "so the fleet ends up with two different schemas.",
                    )
                )
            if removed:
                sections.append(
                    (
                        "Removed after it was recorded",
                        "\n".join(removed)
                        + "\nDOs that applied these keep their effects; fresh DOs never get them.",
                    )
                )
            if edited or removed:  # not for renames alone: there is no text to restore
                sections.append(
                    (
                        "How to fix",
                        "Restore the recorded migration text and put the change in a new "
                        "migration (`drizzle-kit generate`). If no DO has applied it yet (never "
                        f"deployed), accept the edit with {command}.",
                    )
                )
            raise CheckFailure(f"recorded migrations changed in {ctx.bundle.root}", sections)
    if renamed is not None:
        old = renamed[0]
        raise CheckFailure(
            f"no schema snapshot for {ctx.bundle.root}, but one for a folder that is gone",
            [
                ("Expected file", str(path)),
                (
                    "Found instead",
                    f"{old}: the snapshot of {old.stem}/, which no longer exists, pins "
                    f"{len(renamed[1])} of this bundle's migrations (none edited): was the "
                    f"folder renamed from {old.stem}/ to {ctx.bundle.root.name}/?",
                ),
                (
                    "If so",
                    f"run {command}: the snapshot is recorded under "
                    "the new name and the old file is deleted as unused",
                ),
            ],
        )
    try:
        stored: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        stored = None
    except (OSError, UnicodeDecodeError) as exc:
        # it read as "no schema snapshot yet", or ended the CLI in a traceback
        stored = None
        if update:
            # syrupy cannot read it either, and then writes nothing: record it anew
            with contextlib.suppress(OSError):
                path.unlink()
        if not update or path.exists():
            reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text ({exc.reason})"
            raise CheckFailure(
                f"cannot read the schema snapshot of {ctx.bundle.root}",
                [
                    ("Snapshot file", f"{path}: {reason}"),
                    (
                        "Fix",
                        f"restore it from git, or run {command} to record the schema again "
                        "and review the diff",
                    ),
                ],
            ) from None
    asserter = ctx.extra.get("snapshot_assert")
    if asserter is not None:
        asserter(text)
        return
    if stored is None:
        raise CheckFailure(
            f"no schema snapshot for {ctx.bundle.root}",
            [
                ("Expected file", str(path)),
                ("Create it", f"run {command}"),
            ],
        )
    if stored != text:
        import difflib

        diff = "\n".join(
            difflib.unified_diff(
                stored.splitlines(), text.splitlines(), "snapshot", "migrated", lineterm=""
            )
        )
        raise CheckFailure(
            f"schema of {ctx.bundle.root} differs from its snapshot {path}",
            [("Diff", diff), ("If intended", f"run {command}")],
        )


def _query(do: Any) -> Callable[[str], list[tuple[Any, ...]]]:
    def query(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in do.sql.exec(sql).raw()]

    return query


Check = Callable[[CheckContext], None]


def all_checks() -> dict[str, Check]:
    """Every built-in check by name, in collection order (imports their modules)."""
    from .registry import CHECK_NAMES, get_check

    return {name: get_check(name) for name in CHECK_NAMES}
