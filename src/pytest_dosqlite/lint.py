"""Static lint of drizzle-kit migrations for SQLite-backed Durable Objects.

Why a lint on top of running the migrations: a run stops at the first failure and, on an empty
database, cannot show what only hurts a DO that has rows (a recreation whose ``DROP TABLE``
cascades into child tables, a ``NOT NULL`` column added without a default, NULLs copied into a
``NOT NULL`` column). Every DO instance migrates lazily on its next start, so each of these
reaches production one object at a time. The lint reads every statement of every chunk exactly
as the DO's ``sql.exec`` cuts it (:mod:`.sqltext`), reports each hazard with its file and line, a
stable rule id and a Drizzle-specific fix, and honours ``-- dosqlite:ignore`` comments.

Statement heads (kind, names, TEMP, ``IF EXISTS`` ...) come from the SQLite tokenizer of
:mod:`.sqltext`, which reads every SQLite form; sqlglot (imported lazily) finds function calls in
expressions, and when it cannot parse a statement a token scan for refused function names stands
in. What the schema looks like before each statement (who references a table, which columns are
``NOT NULL``) comes from replaying the earlier statements on the DO emulator: exact, and a few
milliseconds.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import re
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import runtime as rt
from .bundle import BREAKPOINT, Bundle, Migration, line_ends
from .errors import CheckFailure
from .sqltext import Piece, Token, comments, scan, tokens
from .sqltext import split as _split_exact

if TYPE_CHECKING:
    from .checks import CheckContext
    from .storage import DurableObjectStorage

__all__ = [
    "RULES",
    "DosqliteLintWarning",
    "Finding",
    "Rule",
    "Severity",
    "baseline_tags",
    "lint_bundle",
    "lint_check",
    "parse_severities",
]

Severity = Literal["error", "warning"]
_LEVELS = ("error", "warning", "off")


class DosqliteLintWarning(UserWarning):
    """A warning-level lint finding (emitted by :func:`lint_check`)."""


@dataclass(frozen=True)
class Rule:
    """One lint rule: stable id, short name, default severity, what it finds and the fix."""

    id: str
    name: str
    severity: Severity
    summary: str
    fix: str


_FK_WORKAROUND = (
    "turn foreign keys off outside the migrator's transaction: in the DO constructor, inside "
    "`ctx.blockConcurrencyWhile(async () => { ... })`, run "
    "`ctx.storage.sql.exec('PRAGMA foreign_keys=OFF')` BEFORE `migrate(db, migrations)` (before "
    "any write of that event), then `await new Promise((r) => setTimeout(r, 0))` and "
    "`ctx.storage.sql.exec('PRAGMA foreign_keys=ON')` (the timer await commits the implicit "
    "transaction; without it ON is a silent no-op and foreign keys stay off), and check "
    "`PRAGMA foreign_key_check` afterwards"
)

_RULE_LIST: tuple[Rule, ...] = (
    Rule(
        "DO001",
        "pragma-foreign-keys",
        "warning",
        "PRAGMA foreign_keys=ON/OFF in a migration is a no-op: migrate() runs inside "
        "ctx.storage.transactionSync(), and SQLite ignores the change inside a transaction.",
        "The PRAGMA lines drizzle-kit writes around a table recreation can stay (they do "
        "nothing), but do not rely on them: " + _FK_WORKAROUND + ".",
    ),
    Rule(
        "DO002",
        "transaction-statement",
        "error",
        "BEGIN/COMMIT/END/ROLLBACK/SAVEPOINT/RELEASE: the DO's sql.exec refuses transaction "
        "statements.",
        "Delete the statement. drizzle's migrate() already runs all pending migrations in one "
        "ctx.storage.transactionSync(); a migration cannot open, commit or roll back its own.",
    ),
    Rule(
        "DO003",
        "pragma-not-allowed",
        "error",
        "A PRAGMA that is not on the DO's allow-list, or with an argument the DO refuses "
        "(`not authorized: SQLITE_AUTH`).",
        "Remove the PRAGMA. A DO only allows foreign_keys, defer_foreign_keys, "
        "case_sensitive_like, ignore_check_constraints, legacy_alter_table, recursive_triggers, "
        "reverse_unordered_selects (boolean), data_version, page_size, the table_info/index_list/"
        "foreign_key_list family, table_list, foreign_key_check, quick_check and optimize; "
        "journal_mode, user_version, synchronous and the like are managed by the runtime.",
    ),
    Rule(
        "DO004",
        "function-not-allowed",
        "error",
        "A SQL function the DO refuses (`not authorized to use function`) or that its SQLite "
        "does not have (`no such function`).",
        "Use an allowed equivalent (pow for power, log for log10, ceil for ceiling, json for "
        "json_pretty), or compute the value in the Worker and pass it as a bound parameter.",
    ),
    Rule(
        "DO005",
        "attach-detach",
        "error",
        "ATTACH/DETACH: a DO has exactly one database (`not authorized: SQLITE_AUTH`).",
        "Remove it; copy data between DOs through the Worker (RPC or fetch), not SQL.",
    ),
    Rule(
        "DO006",
        "temp-object",
        "error",
        "CREATE TEMP/TEMPORARY table, view or trigger (or a `temp.` name): refused by the DO.",
        "Use an ordinary table (e.g. `_backup_x`) and DROP it at the end of the migration.",
    ),
    Rule(
        "DO007",
        "vacuum",
        "error",
        "VACUUM always fails on a DO (`cannot VACUUM from within a transaction`).",
        "Remove it; the DO runtime manages the database file.",
    ),
    Rule(
        "DO008",
        "virtual-table-module",
        "error",
        "CREATE VIRTUAL TABLE with a module other than fts5, fts5vocab or rtree "
        "(`not authorized: SQLITE_AUTH`).",
        "Use fts5 instead of fts3/fts4; other modules (dbstat, csv, ...) are not available.",
    ),
    Rule(
        "DO009",
        "reserved-name",
        "error",
        "An object named `_cf_*` (reserved by the DO runtime, any case) or `sqlite_*` "
        "(reserved by SQLite).",
        "Rename the table/index/view/trigger in the drizzle schema and regenerate.",
    ),
    Rule(
        "DO010",
        "sql-too-long",
        "error",
        "A chunk longer than 100,000 UTF-8 bytes: sql.exec fails with "
        "`statement too long: SQLITE_TOOBIG`.",
        "Split the chunk with `--> statement-breakpoint` lines (each chunk is one exec call), or "
        "move bulk data out of the migration and load it from the Worker.",
    ),
    Rule(
        "DO011",
        "too-many-columns",
        "error",
        "A table with more than 100 columns (the DO's SQLITE_LIMIT_COLUMN).",
        "Split the table, or move rarely used fields into a JSON text column.",
    ),
    Rule(
        "DO012",
        "compound-select-limit",
        "error",
        "A compound SELECT with more than 5 terms (UNION/INTERSECT/EXCEPT): "
        "`too many terms in compound SELECT`.",
        "Use one multi-row VALUES list or several INSERT ... SELECT statements.",
    ),
    Rule(
        "DO013",
        "like-pattern-too-long",
        "error",
        "A LIKE/GLOB pattern literal over 50 bytes: `LIKE or GLOB pattern too complex`.",
        "Compare with =, instr() or substr() instead of a long LIKE pattern.",
    ),
    Rule(
        "DO014",
        "comment-only-chunk",
        "error",
        "A chunk with only comments (e.g. an unedited `drizzle-kit generate --custom` file): "
        "sql.exec fails with `SQL code did not contain a statement.`",
        "Put the statement the chunk is for below its comments; a comment between two "
        "statements belongs to the next chunk (remove the `--> statement-breakpoint` after it). "
        "An unedited `--custom` migration that is not needed can be deleted (its journal entry, "
        ".sql file, snapshot and migrations.js import) while no DO has applied it.",
    ),
    Rule(
        "DO015",
        "empty-chunk",
        "error",
        "An empty chunk (a `--> statement-breakpoint` at the end of the file or twice in a row): "
        "`SQL code did not contain a statement.`",
        "Delete the extra `--> statement-breakpoint` marker.",
    ),
    Rule(
        "DO016",
        "trailing-comment",
        "error",
        "A comment or stray `;` after the last statement of a chunk: "
        "`SQL code did not contain a statement.`",
        "Move the comment before the statement (leading comments are fine), or delete it.",
    ),
    Rule(
        "DO017",
        "missing-breakpoint",
        "warning",
        "Several statements in one chunk of a migration whose journal entry has "
        "`breakpoints: true`.",
        "Put `--> statement-breakpoint` between the statements. A DO runs them all in one exec "
        "anyway, but D1 and other drivers do not, and a failure is easier to locate per chunk.",
    ),
    Rule(
        "DO018",
        "drop-table",
        "warning",
        "DROP TABLE of an existing table (not part of a table recreation): the data is gone.",
        "Make sure the data is no longer needed and that no deployed code still reads the table: "
        "a rollback of the Worker runs the previous code against the migrated DO. Silence with "
        "`-- dosqlite:ignore DO018` once checked.",
    ),
    Rule(
        "DO019",
        "drop-column",
        "warning",
        "ALTER TABLE ... DROP COLUMN: destructive; code that still reads the column breaks.",
        "Stop reading and writing the column in one deploy, drop it in a later one (a Worker "
        "rollback runs the previous code against the migrated DO).",
    ),
    Rule(
        "DO020",
        "rename-table",
        "warning",
        "ALTER TABLE ... RENAME TO (not a recreation): code of the previous deploy (rollback, "
        "gradual deployment) still uses the old name.",
        "Add the new table and copy, or keep a view with the old name for one deploy.",
    ),
    Rule(
        "DO021",
        "rename-column",
        "warning",
        "ALTER TABLE ... RENAME COLUMN: code of the previous deploy still uses the old name.",
        "Add the new column, write both for one deploy, then drop the old one.",
    ),
    Rule(
        "DO022",
        "add-not-null-without-default",
        "error",
        "ALTER TABLE ... ADD a NOT NULL column without DEFAULT to an existing table: fails with "
        "`Cannot add a NOT NULL column with default value NULL` on every DO whose table has rows.",
        "Give the column a default in the drizzle schema (`.notNull().default(...)`), or add it "
        "nullable, backfill with UPDATE, and make it NOT NULL in a later migration.",
    ),
    Rule(
        "DO023",
        "unique-index-on-existing-table",
        "warning",
        "A new UNIQUE index on a table created by an earlier migration: fails with "
        "`UNIQUE constraint failed` on any DO whose table already has duplicates.",
        "Deduplicate first in the same migration (DELETE/UPDATE before the CREATE UNIQUE INDEX), "
        "or make sure the column never held duplicates.",
    ),
    Rule(
        "DO024",
        "recreate-referenced-table",
        "error",
        "A table recreation (`__new_X`, copy, DROP TABLE X, RENAME) of a table other tables "
        "reference: on a DO the DROP runs with foreign keys ON, so it deletes or nulls the child "
        "rows (CASCADE / SET NULL / SET DEFAULT) or fails (NO ACTION / RESTRICT).",
        _FK_WORKAROUND[0].upper() + _FK_WORKAROUND[1:] + ". Or avoid the recreation (drizzle-kit "
        "emits one for NOT NULL, type, default and constraint changes). If the migration backs "
        "the child rows up and restores them, silence with `-- dosqlite:ignore DO024`.",
    ),
    Rule(
        "DO025",
        "recreate-not-null",
        "error",
        "A table recreation puts NULL into a NOT NULL column: INSERT ... SELECT copies NULLs "
        "from a nullable column (the column DEFAULT does not apply), or leaves out a NOT NULL "
        "column that has no DEFAULT.",
        'Edit the generated INSERT: select `COALESCE("col", <default>)` instead of `"col"`, '
        "or backfill first with `UPDATE X SET col = ... WHERE col IS NULL` in the same "
        "migration, before the INSERT.",
    ),
    Rule(
        "DO026",
        "drop-referenced-table",
        "error",
        "DROP TABLE of a table other tables still reference: the DROP deletes or nulls their "
        "rows (CASCADE / SET NULL) or fails (NO ACTION / RESTRICT), and the reference dangles.",
        "Drop (or recreate without the foreign key) the child tables first, in the same "
        "migration; or " + _FK_WORKAROUND + ".",
    ),
    Rule(
        "DO027",
        "syntax-error",
        "error",
        "SQLite's parser rejects the statement (e.g. libSQL-only `ALTER COLUMN`, or a "
        "breakpoint marker cutting a statement in two).",
        "Write SQLite syntax the DO's SQLite accepts; for column changes drizzle-kit's "
        "`dialect: 'sqlite'` emits a table recreation.",
    ),
    Rule(
        "DO028",
        "unknown-ignore",
        "warning",
        "A `dosqlite:ignore` comment names a rule id that does not exist.",
        "Fix the id (see the rule list), or remove the comment.",
    ),
    Rule(
        "DO029",
        "recreate-copies-missing-column",
        "error",
        "The `INSERT INTO __new_X(...) SELECT ... FROM X` of a table recreation names a column "
        '`X` does not have at that point. SQLite reads a double-quoted `"col"` it cannot '
        "resolve as the string literal 'col' (no error): every existing row gets the column's "
        "name as its value, or a CHECK constraint fails and migrate() rolls back. drizzle-kit "
        "0.31 emits this when a column is added in the same `generate` that recreates the table.",
        "Edit the generated INSERT: remove the new column from both the column list and the "
        "SELECT list, so the new table's DEFAULT fills it (or select the intended value, e.g. "
        '`false` instead of `"pinned"`). To avoid it, add the column with one `drizzle-kit '
        "generate` and make the change that recreates the table with a second one.",
    ),
    Rule(
        "DO030",
        "returning-in-migration",
        "error",
        "INSERT, UPDATE or DELETE with RETURNING: drizzle's migrator runs each statement "
        "without reading its rows, and SQLite cannot commit while they are unread. When the "
        "statement returns a row, workerd fails the request with `internal error; reference = "
        "...` and resets the DO, on every start. On an empty table it returns no row and "
        "passes, so a fresh DO does not show it.",
        "Remove the RETURNING clause: a migration has no use for the rows.",
    ),
    Rule(
        "DO031",
        "rollback-on-conflict",
        "error",
        "OR ROLLBACK, ON CONFLICT ROLLBACK or RAISE(ROLLBACK): on a conflict SQLite rolls back "
        "the whole transaction, also the one workerd holds open for the event, so the request "
        "fails with `internal error; reference = ...` and the DO is reset, instead of a "
        "catchable constraint error. In a migration statement, every DO whose data conflicts "
        "fails to start; in a table's constraint or a trigger, every later conflict in the "
        "Worker's own code resets the DO.",
        "Use ABORT (the default: leave the clause out), FAIL or IGNORE, and RAISE(ABORT, ...) "
        "in triggers. drizzle's transactionSync still rolls back the whole migration when a "
        "statement fails.",
    ),
    Rule(
        "DO032",
        "add-column-non-constant-default",
        "error",
        "ALTER TABLE ... ADD a column whose DEFAULT is an expression (`(unixepoch())`, "
        "`CURRENT_TIMESTAMP`, `(json_array())`, even `(1 + 1)`) to an existing table: SQLite "
        "accepts it on an empty table only, so it passes on a fresh DO and fails with `Cannot add "
        "a column with non-constant default` on every DO whose table has rows.",
        "Add the column with a constant default (a number, a string, NULL) or none, then set "
        "the value with an UPDATE in the same migration (`UPDATE t SET c = unixepoch()`); the "
        "expression default can stay in the drizzle schema for new rows only through a table "
        "recreation. Or let drizzle-kit recreate the table.",
    ),
    Rule(
        "DO033",
        "recreate-drops-trigger",
        "error",
        "A table recreation (`__new_X`, INSERT ... SELECT, DROP TABLE X, RENAME) drops the "
        "table's triggers with it, and does not create them again: drizzle-kit knows nothing "
        "of triggers written by hand in a `--custom` migration. After the migration the "
        "trigger is gone on every DO and silently stops firing; no error, no test on the "
        "schema's tables notices.",
        "Create the trigger again at the end of the migration (after the RENAME), with the "
        "CREATE TRIGGER statement of the migration that created it.",
    ),
    Rule(
        "DO034",
        "select-in-migration",
        "error",
        "A SELECT that reads a table, in a migration: drizzle's migrator runs it without "
        "reading its rows, and a statement whose rows are not read keeps running. SQLite "
        "refuses DROP TABLE and DROP INDEX while it runs (`database table is locked`), so "
        "the first DROP after it in the same start (a drizzle-kit table recreation drops a "
        "table) fails and migrate() rolls back with DrizzleError: Rollback, on every DO "
        "whose table has a row.",
        "Delete the SELECT: a migration cannot use its result. To check data before a "
        "change, write the check into the statement that needs it (a WHERE, a CHECK), or run "
        "it from the Worker.",
    ),
    Rule(
        "DO035",
        "add-references-column-with-default",
        "error",
        "ALTER TABLE ... ADD a column with REFERENCES and a DEFAULT other than NULL, to an "
        "existing table: with foreign keys on (always, inside drizzle's migrator) SQLite adds "
        "it to an empty table only, so it passes on a fresh DO and fails with `Cannot add a "
        "REFERENCES column with non-NULL default value` on every DO whose table has rows.",
        "Add the column without the default (or with DEFAULT NULL), then set its value with an "
        "UPDATE in the same migration; or let drizzle-kit recreate the table.",
    ),
)

#: rule id -> rule, in id order (docs are generated from this)
RULES: dict[str, Rule] = {r.id: r for r in _RULE_LIST}
_BY_NAME: dict[str, Rule] = {r.name: r for r in _RULE_LIST}


@dataclass(frozen=True)
class Finding:
    """One lint finding, pointing at a statement in a migration file."""

    rule: str
    severity: Severity
    message: str
    tag: str
    chunk: int
    path: Path | None
    #: 1-based line of the statement in the .sql file
    line: int
    statement: str

    @property
    def name(self) -> str:
        return RULES[self.rule].name

    @property
    def fix(self) -> str:
        return RULES[self.rule].fix

    @property
    def location(self) -> str:
        where = str(self.path) if self.path is not None else f"{self.tag}.sql"
        return f"{where}:{self.line}"

    def __str__(self) -> str:
        return f"{self.location}: {self.rule} {self.name} ({self.severity}): {self.message}"


def split(text: str) -> list[Piece]:
    """:func:`.sqltext.split`, tolerant of NUL characters (same offsets)."""
    try:
        return _split_exact(text)
    except ValueError:  # apsw.complete refuses embedded NULs
        return _split_exact(text.replace("\x00", " "))


# ----------------------------------------------------------------------- statement heads


@dataclass
class _Head:
    """What a statement is, read from its first tokens."""

    kind: str = "other"
    #: the object a statement creates, drops, alters or writes ("" when none)
    name: str = ""
    schema: str | None = None
    temp: bool = False
    unique: bool = False
    #: RENAME TO target / RENAME COLUMN new name / ADD or DROP COLUMN name
    target: str = ""
    column: str = ""
    #: index's table, vtable module
    table: str = ""
    module: str = ""
    pragma: str = ""
    pragma_arg: str | None = None
    #: INSERT/UPDATE conflict clause (``OR IGNORE`` -> "IGNORE"; REPLACE INTO -> "REPLACE")
    conflict: str = ""
    #: index of the first token after the head (column list, column definition, ...)
    body: int = 0


_TXN_WORDS = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"}


def _name_at(toks: list[Token], i: int) -> tuple[str | None, str, int]:
    """``[schema.]name`` starting at token ``i``: (schema, name, index after)."""
    if i >= len(toks) or not toks[i].is_name:
        return None, "", i
    first = toks[i].value
    if i + 2 < len(toks) and toks[i + 1].text == "." and toks[i + 2].is_name:
        return first, toks[i + 2].value, i + 3
    return None, first, i + 1


def _skip_words(toks: list[Token], i: int, *words: str) -> int:
    """Skip an optional word sequence (e.g. IF NOT EXISTS) when it is there."""
    j = i
    for w in words:
        if j < len(toks) and toks[j].up == w:
            j += 1
        else:
            return i
    return j


def _trigger_table(toks: list[Token], body: int) -> str | None:
    """The table of ``CREATE TRIGGER name [BEFORE|AFTER|INSTEAD OF] event [OF cols] ON t``."""
    for j in range(body, len(toks) - 1):
        if toks[j].up == "BEGIN":
            return None
        if toks[j].up == "ON":
            _, table, _ = _name_at(toks, j + 1)
            return table or None
    return None


def _trigger_creations(bundle: Bundle) -> dict[str, int]:
    """Lower-case trigger name -> index of the last migration that creates it."""
    out: dict[str, int] = {}
    for mi, m in enumerate(bundle.migrations):
        if "trigger" not in m.sql.lower():
            continue
        for chunk in m.chunks:
            for piece in split(chunk):
                head = _classify(tokens(piece.text))
                if head.kind == "create_trigger" and head.name:
                    out[head.name.lower()] = mi
    return out


def _last_drops(bundle: Bundle) -> tuple[int, int, int] | None:
    """Where the bundle's last DROP TABLE / DROP INDEX is: (migration index, chunk, file
    offset of the statement's first character within the migration's text)."""
    for mi in range(len(bundle.migrations) - 1, -1, -1):
        m = bundle.migrations[mi]
        if "drop" not in m.sql.lower():
            continue
        offset = len(m.sql)
        chunks = m.chunks
        found: tuple[int, int, int] | None = None
        for ci in range(len(chunks) - 1, -1, -1):
            offset -= len(chunks[ci])
            for piece in split(chunks[ci]):
                t = tokens(piece.text)
                if len(t) > 1 and t[0].up == "DROP" and t[1].up in ("TABLE", "INDEX"):
                    where = (mi, ci, offset + piece.start + t[0].start)
                    found = where if found is None or where > found else found
            if found is not None:
                return found
            offset -= len(BREAKPOINT)
    return None


#: the first word of a statement that can carry RETURNING
_DML_WORDS = frozenset(["INSERT", "REPLACE", "UPDATE", "DELETE", "WITH"])


def _classify(toks: list[Token]) -> _Head:
    h = _Head()
    if not toks:
        return h
    w0 = toks[0].up
    n = len(toks)
    if w0 in _TXN_WORDS:
        h.kind = "txn"
    elif w0 == "PRAGMA":
        h.kind = "pragma"
        schema, name, i = _name_at(toks, 1)
        h.schema, h.pragma = schema, name
        if i < n and toks[i].text in ("=", "("):
            j = i + 1
            sign = ""
            if j < n and toks[j].text in ("-", "+"):
                sign = "-" if toks[j].text == "-" else ""
                j += 1
            if j < n and toks[j].text not in (")", ";"):
                h.pragma_arg = sign + toks[j].value
    elif w0 in ("ATTACH", "DETACH", "VACUUM"):
        h.kind = w0.lower()
    elif w0 == "CREATE":
        i = 1
        if i < n and toks[i].up in ("TEMP", "TEMPORARY"):
            h.temp = True
            i += 1
        if i < n and toks[i].up == "UNIQUE":
            h.unique = True
            i += 1
        virtual = i < n and toks[i].up == "VIRTUAL"
        if virtual:
            i += 1
        obj = toks[i].up if i < n else ""
        if obj not in ("TABLE", "INDEX", "VIEW", "TRIGGER"):
            return h
        i = _skip_words(toks, i + 1, "IF", "NOT", "EXISTS")
        h.schema, h.name, i = _name_at(toks, i)
        h.kind = "create_vtable" if virtual else "create_" + obj.lower()
        if h.schema is not None and h.schema.lower() == "temp":
            h.temp = True
        if obj == "INDEX" and i < n and toks[i].up == "ON":
            _, h.table, i = _name_at(toks, i + 1)
        if virtual and i < n and toks[i].up == "USING" and i + 1 < n:
            h.module = toks[i + 1].value
        h.body = i
    elif w0 == "DROP":
        obj = toks[1].up if n > 1 else ""
        if obj in ("TABLE", "INDEX", "VIEW", "TRIGGER"):
            i = _skip_words(toks, 2, "IF", "EXISTS")
            h.schema, h.name, i = _name_at(toks, i)
            h.kind = "drop_" + obj.lower()
            h.body = i
    elif w0 == "ALTER" and n > 1 and toks[1].up == "TABLE":
        h.schema, h.name, i = _name_at(toks, 2)
        act = toks[i].up if i < n else ""
        if act == "RENAME":
            if i + 1 < n and toks[i + 1].up == "TO":
                h.kind = "alter_rename"
                _, h.target, _ = _name_at(toks, i + 2)
            else:
                j = i + 1
                if j < n and toks[j].up == "COLUMN":
                    j += 1
                h.kind = "alter_rename_column"
                _, h.column, j = _name_at(toks, j)
                if j < n and toks[j].up == "TO":
                    _, h.target, _ = _name_at(toks, j + 1)
        elif act == "ADD":
            j = i + 1
            if j < n and toks[j].up == "COLUMN":
                j += 1
            h.kind = "alter_add"
            _, h.column, j = _name_at(toks, j)
            h.body = j
        elif act == "DROP":
            j = i + 1
            if j < n and toks[j].up == "COLUMN":
                j += 1
            h.kind = "alter_drop_column"
            _, h.column, _ = _name_at(toks, j)
        elif act:
            h.kind = "alter_other"
    elif w0 in ("INSERT", "REPLACE"):
        i = 1
        if w0 == "REPLACE":
            h.conflict = "REPLACE"
        if i + 1 < n and toks[i].up == "OR":
            h.conflict = toks[i + 1].up
            i += 2
        if i < n and toks[i].up == "INTO":
            h.kind = "insert"
            h.schema, h.name, i = _name_at(toks, i + 1)
            h.body = i
    elif w0 == "UPDATE":
        i = 1
        if i < n and toks[i].up == "OR":
            i += 2
        h.kind = "update"
        h.schema, h.name, i = _name_at(toks, i)
        h.body = i
    elif w0 == "DELETE" and n > 1 and toks[1].up == "FROM":
        h.kind = "delete"
        h.schema, h.name, h.body = _name_at(toks, 2)
    return h


# ----------------------------------------------------------------------- token scans


def _groups(toks: list[Token], start: int) -> list[list[Token]]:
    """Comma-separated items of the parenthesised list opening at ``toks[start]``."""
    items: list[list[Token]] = []
    if start >= len(toks) or toks[start].text != "(":
        return items
    depth = 0
    cur: list[Token] = []
    for t in toks[start:]:
        if t.text == "(":
            depth += 1
            if depth == 1:
                continue
        elif t.text == ")":
            depth -= 1
            if depth == 0:
                break
        if depth == 1 and t.text == ",":
            items.append(cur)
            cur = []
            continue
        cur.append(t)
    if cur:
        items.append(cur)
    return items


_TABLE_CONSTRAINT = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}


def _column_count(toks: list[Token], body: int) -> int:
    """Columns in a CREATE TABLE's definition list (table constraints excluded)."""
    count = 0
    for item in _groups(toks, body):
        if item and item[0].up not in _TABLE_CONSTRAINT:
            count += 1
    return count


def _compound_terms(toks: list[Token]) -> int:
    """Largest number of terms of one compound SELECT (per parenthesis level and statement)."""
    best = 0
    counts = [0]
    for t in toks:
        if t.text == "(":
            counts.append(0)
        elif t.text == ")":
            if len(counts) > 1:
                best = max(best, counts.pop() + 1)
        elif t.text == ";":
            best = max(best, counts[-1] + 1)
            counts[-1] = 0
        elif t.up in ("UNION", "INTERSECT", "EXCEPT"):
            counts[-1] += 1
    for c in counts:
        best = max(best, c + 1)
    return best


def _long_patterns(toks: list[Token], limit: int) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for a, b in itertools.pairwise(toks):
        if a.up in ("LIKE", "GLOB") and b.kind == "str":
            size = len(b.value.encode("utf-8", "surrogatepass"))
            if size > limit:
                out.append((a.up, size))
    return out


def _top_level(toks: list[Token], body: int) -> Iterator[int]:
    """The indexes from ``body`` on of the tokens outside parentheses (a closing one too)."""
    depth = 0
    for i in range(body, len(toks)):
        text = toks[i].text
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        if not depth:
            yield i


def _references(toks: list[Token], body: int) -> bool:
    """The column definition at ``body`` has a REFERENCES clause."""
    return any(toks[i].up == "REFERENCES" for i in _top_level(toks, body))


def _column_def_flags(toks: list[Token], body: int) -> tuple[bool, bool, bool]:
    """(NOT NULL, has a non-NULL DEFAULT, generated) of a column definition at ``body``."""
    not_null = default = generated = False
    for i in _top_level(toks, body):
        u = toks[i].up
        if u == "NOT" and i + 1 < len(toks) and toks[i + 1].up == "NULL":
            not_null = True
        elif u == "DEFAULT":
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            default = nxt is not None and nxt.up != "NULL"
        elif u in ("GENERATED", "AS"):
            generated = True
    return not_null, default, generated


_LITERAL_KINDS = frozenset(["num", "str", "blob"])
_LITERAL_WORDS = frozenset(["NULL", "TRUE", "FALSE"])


def _expression_default(toks: list[Token], body: int, source: str) -> str | None:
    """The DEFAULT of a column definition at ``body`` when SQLite cannot add it to a table that
    has rows: anything but a literal (a number, maybe signed; a string, also double-quoted or
    a bare name, which SQLite reads as one; a blob; NULL, TRUE, FALSE), bare, in parentheses or
    in CASTs. None when it is a literal or there is none (``ON DELETE SET DEFAULT`` is none)."""
    for i in _top_level(toks, body):
        if toks[i].up != "DEFAULT" or i + 1 >= len(toks):
            continue
        if i > body and toks[i - 1].up == "SET":  # ON DELETE / ON UPDATE SET DEFAULT
            continue
        j = i + 1
        if toks[j].text == "(":
            level, k = 0, j
            while k < len(toks):
                if toks[k].text == "(":
                    level += 1
                elif toks[k].text == ")":
                    level -= 1
                    if level == 0:
                        break
                k += 1
            inner = toks[j + 1 : k]
            text = source[toks[j].start : toks[min(k, len(toks) - 1)].end]
        else:
            inner = [toks[j]]
            if toks[j].text in ("+", "-") and j + 1 < len(toks):
                inner.append(toks[j + 1])
            text = source[inner[0].start : inner[-1].end]
        return None if _is_literal(inner) else text
    return None


def _is_literal(expr: list[Token]) -> bool:
    """Whether SQLite folds ``expr`` to a value when it adds a column: a literal under any
    number of signs, parentheses and ``CAST(... AS type)``."""
    for t, nxt in itertools.pairwise(expr):
        if t.kind == "word" and t.up != "CAST" and nxt.text == "(":
            return False  # a function call
    while True:
        before = len(expr)
        expr = [t for t in expr if t.text not in ("(", ")")]
        while expr and expr[0].text in ("+", "-"):
            expr = expr[1:]
        if expr and expr[0].up == "CAST":
            ups = [t.up for t in expr]
            if "AS" in ups:
                expr = expr[1 : len(ups) - 1 - ups[::-1].index("AS")]
        if len(expr) == before:
            break
    if len(expr) != 1:
        return False
    t = expr[0]
    if t.kind in _LITERAL_KINDS or t.kind == "qid" or t.up in _LITERAL_WORDS:
        return True
    return t.kind == "word" and t.up not in _CURRENT_TIME


_CURRENT_TIME = frozenset(["CURRENT_TIME", "CURRENT_DATE", "CURRENT_TIMESTAMP"])


@dataclass
class _InsertSelect:
    columns: list[str] | None
    source: str | None
    #: per select item: the bare column name, "*" or None for any other expression
    items: list[str | None]
    #: lower-case columns the WHERE clause requires to be non-NULL (``x IS NOT NULL``)
    not_null: set[str] = field(default_factory=set)
    #: the tokens of every select item (for DO029: names that resolve to nothing)
    item_toks: list[list[Token]] = field(default_factory=list)


_SELECT_END = {"WHERE", "GROUP", "ORDER", "LIMIT", "WINDOW", "ON", "RETURNING", "HAVING"}


def _insert_select(toks: list[Token], body: int) -> _InsertSelect | None:
    """``INSERT INTO t(cols) SELECT a, b FROM s`` read from tokens (None for other shapes)."""
    n = len(toks)
    i = body
    columns: list[str] | None = None
    if i < n and toks[i].text == "(":
        columns = []
        for item in _groups(toks, i):
            if len(item) != 1 or not item[0].is_name:
                return None
            columns.append(item[0].value)
        depth = 0
        while i < n:
            if toks[i].text == "(":
                depth += 1
            elif toks[i].text == ")":
                depth -= 1
                if depth == 0:
                    i += 1
                    break
            i += 1
    if i >= n or toks[i].up != "SELECT":
        return None
    i += 1
    if i < n and toks[i].up in ("DISTINCT", "ALL"):
        i += 1
    items: list[str | None] = []
    item_toks: list[list[Token]] = []
    cur: list[Token] = []
    depth = 0
    source: str | None = None
    while i < n:
        t = toks[i]
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        if depth == 0 and (t.text == "," or t.up == "FROM"):
            items.append(_bare_column(cur))
            item_toks.append(cur)
            cur = []
            if t.up == "FROM":
                _, src, j = _name_at(toks, i + 1)
                rest = toks[j].up if j < n else ""
                if j < n and toks[j].is_name and rest not in _SELECT_END:
                    j += 1  # alias
                    rest = toks[j].up if j < n else ""
                if j >= n or toks[j].text == ";" or rest in _SELECT_END:
                    source = src
                i = j
                break
            i += 1
            continue
        cur.append(t)
        i += 1
    if source is None:
        return None
    not_null: set[str] = set()
    for k in range(i, n - 1):
        t = toks[k]
        if t.kind not in ("word", "qid") or (k + 1 < n and toks[k + 1].text == "."):
            continue
        nxt = [x.up for x in toks[k + 1 : k + 4]]
        if nxt[:3] == ["IS", "NOT", "NULL"] or nxt[:1] == ["NOTNULL"] or nxt[:2] == ["NOT", "NULL"]:
            not_null.add(t.value.lower())
    return _InsertSelect(columns, source, items, not_null, item_toks)


def _bare_column(item: list[Token]) -> str | None:
    if len(item) == 1 and item[0].text == "*":
        return "*"
    if len(item) == 1 and item[0].kind in ("word", "qid"):
        return item[0].value
    if len(item) == 3 and item[1].text == "." and item[2].kind in ("word", "qid"):
        return item[2].value
    if len(item) == 3 and item[1].up == "AS" and item[0].kind in ("word", "qid"):
        return item[0].value
    return None


def _update_sets(toks: list[Token], body: int) -> set[str]:
    """Lower-case names of the columns an UPDATE assigns."""
    out: set[str] = set()
    i = body
    n = len(toks)
    while i < n and toks[i].up != "SET":
        i += 1
    depth = 0
    expect = True
    for t in toks[i + 1 :]:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0 and t.text == ",":
            expect = True
            continue
        elif depth == 0 and t.up in ("FROM", "WHERE", "RETURNING"):
            break
        if expect and depth == 0 and t.is_name:
            out.add(t.value.lower())
        expect = False
    return out


# --------------------------------------------------------------------------- functions

#: names SQLite parses as function-call syntax that are not functions
_NOT_FUNCTIONS = {"cast", "raise", "exists", "case", "in", "filter", "over", "values", "not"}
#: refused even though the name is on the allow-list (extension loading is off on a DO)
_ALWAYS_REFUSED = {"load_extension"}
_ALTERNATIVE = {
    "power": "pow",
    "log10": "log (one argument: base 10)",
    "ceiling": "ceil",
    "json_pretty": "json",
    "regexp": "LIKE, GLOB or instr()",
}


def _refused(name: str) -> str | None:
    """Why the DO refuses function ``name`` (lower case), or None when it is fine."""
    if name in rt.RUNTIME.not_compiled:
        return f"no such function: {name}"
    if name in _ALWAYS_REFUSED:
        return "not authorized"
    if name not in rt.RUNTIME.functions:
        return f"not authorized to use function: {name}"
    return None


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs a warning for every statement it falls back on; lint has its own report."""
    logger = logging.getLogger("sqlglot")

    def drop(record: logging.LogRecord) -> bool:
        return False

    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _ast_functions(text: str) -> list[str] | None:
    """Names of the functions ``text`` calls, from sqlglot's AST; None when it cannot parse."""
    try:
        import sqlglot
        from sqlglot import exp
    except ImportError:  # pragma: no cover - sqlglot is a dependency
        return None
    try:
        trees = sqlglot.parse(text, read="sqlite")
    except Exception:
        return None
    names: list[str] = []
    for tree in trees:
        if tree is None:
            continue
        if isinstance(tree, exp.Command) or tree.find(exp.Command) is not None:
            return None
        for node in tree.find_all(exp.Func):
            if isinstance(node, exp.RegexpLike):
                names.append("regexp")
                continue
            meta = node.meta
            start, end = meta.get("start"), meta.get("end")
            if not isinstance(start, int) or not isinstance(end, int):
                continue
            raw = text[start : end + 1]
            if not text[end + 1 :].lstrip().startswith("("):
                continue
            if raw[:1] in '"`[':
                raw = raw[1:-1]
            names.append(raw.lower())
    return names


#: a word before "name(" that makes it a declared name, not a call (table, index, type ...)
_DECLARERS = {
    "TABLE", "INTO", "REFERENCES", "INDEX", "VIEW", "EXISTS", "JOIN", "FROM", "UPDATE",
    "TRIGGER", "AS", "WITH", "RECURSIVE", "KEY", "USING", "TO", "OF",
}  # fmt: skip


def _suspect_calls(toks: list[Token], head: _Head) -> bool:
    """True when a token looks like a call of a function the DO refuses (cheap pre-check)."""
    from apsw import keywords

    for k in range(len(toks) - 1):
        a = toks[k]
        if a.up == "REGEXP":
            return True
        if toks[k + 1].text != "(" or a.kind not in ("word", "qid") or a.up in keywords:
            continue
        prev = toks[k - 1] if k else None
        if prev is not None:
            if prev.kind in ("qid", "str"):
                continue  # `"col" varchar(255)`, `CREATE TABLE "t"(`
            if prev.kind == "word":
                up = prev.up
                if up not in keywords or up in _DECLARERS:
                    continue
                if up == "ON" and head.kind == "create_index":
                    continue
        if _refused(a.value.lower()) is not None:
            return True
    return False


def _called_functions(text: str, toks: list[Token], head: _Head) -> list[str]:
    """Names of the functions a statement calls that may be refused (lower case).

    A token pre-check decides whether anything looks suspicious; sqlglot's AST then tells
    function calls from look-alikes (CTE names, type names). When sqlglot cannot parse the
    statement, only names the DO refuses for sure are reported.
    """
    if not _suspect_calls(toks, head):
        return []
    names = _ast_functions(text)
    if names is not None:
        return [n for n in names if n not in _NOT_FUNCTIONS]
    out: list[str] = []
    for a, b in itertools.pairwise(toks):
        if a.kind == "word" and b.text == "(":
            name = a.text.lower()
            if name in rt.RUNTIME.not_compiled or name in _ALWAYS_REFUSED or name in _ALTERNATIVE:
                out.append(name)
        elif a.up == "REGEXP" and b.text != "(":
            out.append("regexp")
    return out


# -------------------------------------------------------------------------- schema replay


@dataclass(frozen=True)
class _FK:
    child: str
    columns: tuple[str, ...]
    parent: str
    on_delete: str


@dataclass(frozen=True)
class _Col:
    name: str
    notnull: bool
    default: object
    pk: bool
    hidden: bool


class _Replay:
    """The schema as the migrations build it, on the DO emulator (empty tables).

    Everything runs as one DO event, i.e. inside one implicit transaction, as the migrator's
    transactionSync does: ``PRAGMA foreign_keys`` is then the no-op it is on a DO.
    """

    def __init__(self) -> None:
        from .storage import DurableObjectStorage

        self.do: DurableObjectStorage = DurableObjectStorage()
        self._event = ExitStack()
        self._event.enter_context(self.do.event())
        self._tables: dict[str, str] | None = None
        self._fks: list[_FK] | None = None
        self._cookie: list[tuple[Any, ...]] = []

    def close(self) -> None:
        with suppress(Exception):  # a deferred constraint left violated: irrelevant here
            self._event.close()
        self.do.close()

    def run(self, sql: str) -> str | None:
        """Execute one statement; the DO's error message, or None."""
        try:
            self.do.sql.exec(sql)
        except Exception as exc:
            return str(exc)
        finally:
            cookie = self._rows("PRAGMA schema_version")
            if cookie != self._cookie:  # only a schema change invalidates what was read
                self._cookie = cookie
                self._tables = None
                self._fks = None
        return None

    def _rows(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        """Our own introspection: straight to SQLite, past the DO's authorizer."""
        try:
            return self.do._internal(sql, args)
        except Exception:
            return []

    def tables(self) -> dict[str, str]:
        """lower-case name -> name of every table."""
        if self._tables is None:
            rows = self._rows("SELECT name FROM sqlite_master WHERE type = 'table'")
            self._tables = {str(r[0]).lower(): str(r[0]) for r in rows}
        return self._tables

    def triggers(self, table: str) -> list[str]:
        """Names of the triggers on ``table``."""
        rows = self._rows(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? "
            "COLLATE NOCASE ORDER BY name",
            table,
        )
        return [str(r[0]) for r in rows]

    def index_names(self) -> set[str]:
        rows = self._rows("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {str(r[0]).lower() for r in rows}

    def fks(self) -> list[_FK]:
        if self._fks is None:
            rows = self._rows(
                'SELECT m.name, p.id, p."table", p."from", p.on_delete FROM sqlite_master AS m '
                "JOIN pragma_foreign_key_list(m.name) AS p WHERE m.type = 'table' "
                "ORDER BY m.name, p.id, p.seq"
            )
            grouped: dict[tuple[str, Any], list[Any]] = {}
            for child, fid, parent, col, action in rows:
                key = (str(child), fid)
                if key not in grouped:
                    grouped[key] = [str(parent), [], str(action or "NO ACTION")]
                grouped[key][1].append(str(col))
            self._fks = [
                _FK(child, tuple(cols), parent, action)
                for (child, _), (parent, cols, action) in grouped.items()
            ]
        return self._fks

    def columns(self, table: str) -> list[_Col]:
        rows = self._rows(
            'SELECT name, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?)', table
        )
        return [_Col(str(r[0]), bool(r[1]), r[2], bool(r[3]), bool(r[4])) for r in rows]

    def unique_sets(self, table: str) -> set[frozenset[str]]:
        """Column sets that are already unique in ``table`` (primary key included)."""
        rows = self._rows(
            "SELECT l.name, i.name FROM pragma_index_list(?) AS l "
            'JOIN pragma_index_info(l.name) AS i WHERE l."unique" = 1',
            table,
        )
        by_index: dict[str, set[str]] = {}
        for index, col in rows:
            if col is not None:
                by_index.setdefault(str(index), set()).add(str(col).lower())
        out = {frozenset(cols) for cols in by_index.values()}
        pk = {c.name.lower() for c in self.columns(table) if c.pk}
        if pk:
            out.add(frozenset(pk))
        return out


_SYNTAX_MARKERS = ("syntax error", "incomplete input", "unrecognized token")


# ------------------------------------------------------------------------------ the engine


@dataclass
class _Unit:
    """A statement, or the statement-less remainder of a chunk, with its place in the file."""

    chunk: int
    #: file offsets: first code character, end of the piece
    start: int
    end: int
    text: str
    exec_text: str
    line: int
    end_line: int
    is_statement: bool
    toks: list[Token] = field(default_factory=list)
    head: _Head = field(default_factory=_Head)


@dataclass
class _Raw:
    rule: str
    message: str
    #: index of the unit (statement) it is about; -1 with ``pos`` for a comment's own line
    unit: int
    pos: int = 0


_DIRECTIVE_RE = re.compile(r"dosqlite:(ignore-file|ignore)(?![\w-])([^\n]*)")
_ID_RE = re.compile(r"^[A-Za-z]{2}\d{3}$")


def _directive_ids(rest: str) -> tuple[set[str], list[str]]:
    """Rule ids a directive names (empty: all rules) and the unknown ids it names."""
    ids: set[str] = set()
    unknown: list[str] = []
    for word in re.split(r"[\s,]+", rest.strip().rstrip("*/").strip()):
        if not word:
            continue
        if _ID_RE.match(word):
            rid = word.upper()
            if rid in RULES:
                ids.add(rid)
            else:
                unknown.append(word)
        elif word.lower() in _BY_NAME:
            ids.add(_BY_NAME[word.lower()].id)
        else:
            break  # free text after the ids (a reason)
    return ids, unknown


def _cut_markers(sql: str) -> dict[int, str]:
    """Breakpoint markers inside a string literal, a quoted name or a comment, read as SQLite
    reads the whole file: chunk index after the marker -> what it cuts. drizzle splits at every
    marker, wherever it is, so the statement around it reaches SQLite in two pieces."""
    if sql.count(BREAKPOINT) == 0:
        return {}
    what = {"str": "a string literal", "qid": "a quoted name", "comment": "a comment"}
    cut: dict[int, str] = {}
    for tok in scan(sql):
        if tok.kind not in what or BREAKPOINT not in tok.text:
            continue
        at = tok.text.find(BREAKPOINT)
        while at >= 0:
            # a marker that starts its own comment is a marker, not a cut
            if not (tok.kind == "comment" and at == 0):
                cut[sql.count(BREAKPOINT, 0, tok.start + at) + 1] = what[tok.kind]
            at = tok.text.find(BREAKPOINT, at + 1)
    return cut


class _MigrationText:
    """Line numbers of a migration file."""

    def __init__(self, text: str) -> None:
        self.newlines = line_ends(text)

    def line(self, offset: int) -> int:
        return bisect.bisect_left(self.newlines, offset) + 1


class _Linter:
    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.schema = _Replay()
        self.findings: list[Finding] = []
        #: the migration being linted: lower-case trigger name -> index of its last CREATE,
        #: and lower-case table -> index of the last CREATE TRIGGER on it
        self._created_triggers: dict[str, int] = {}
        self._trigger_tables: dict[str, list[tuple[int, str]]] = {}
        #: lower-case trigger name -> index of the last migration of the bundle creating it
        self._later_triggers: dict[str, int] = {}
        #: (migration index, chunk, offset) of the last DROP TABLE / DROP INDEX of the bundle
        self._drops_after: tuple[int, int, int] | None = None
        self._index: dict[str, int] = {m.tag: i for i, m in enumerate(bundle.migrations)}
        #: the tag of the migration being linted
        self._tag = ""

    def close(self) -> None:
        self.schema.close()

    # ---------------------------------------------------------------- parsing a migration
    def _units(self, m: Migration, lines: _MigrationText) -> tuple[list[_Unit], list[_Raw]]:
        """Statements (and statement-less remainders) of every chunk, with chunk findings."""
        units: list[_Unit] = []
        raws: list[_Raw] = []
        no_statement = "sql.exec fails with `SQL code did not contain a statement.`"
        offset = 0
        chunks = m.chunks
        limit = rt.RUNTIME.limit_map["SQL_LENGTH"]
        for ci, chunk in enumerate(chunks):
            first_unit = len(units)
            statements = 0
            for piece in split(chunk):
                end = offset + piece.end
                if piece.has_statement:
                    toks = tokens(piece.text)
                    while toks and toks[0].text == ";":
                        toks.pop(0)
                    lead = toks[0].start if toks else 0
                    start = offset + piece.start + lead
                    text = piece.text[lead:].rstrip()
                    unit = _Unit(ci, start, end, text, piece.text, lines.line(start), 0, True)
                    unit.end_line = lines.line(end - 1)
                    unit.toks = toks
                    unit.head = _classify(unit.toks)
                    units.append(unit)
                    statements += 1
                    if statements == 2 and m.breakpoints:
                        message = (
                            f"chunk {ci} holds several statements with no `{BREAKPOINT}` "
                            "between them"
                        )
                        raws.append(_Raw("DO017", message, len(units) - 1))
                    continue
                body = piece.text
                start = offset + piece.start + len(body) - len(body.lstrip())
                unit = _Unit(ci, start, end, body.strip(), body, lines.line(start), 0, False)
                unit.end_line = lines.line(max(start, end - 1))
                units.append(unit)
                idx = len(units) - 1
                if statements:
                    what = "a stray `;`" if body.strip().startswith(";") else "only a comment"
                    message = (
                        f"the text after the last statement of chunk {ci} is {what}: "
                        + no_statement
                    )
                    raws.append(_Raw("DO016", message, idx))
                elif body.strip():
                    what = (
                        "an unedited `drizzle-kit generate --custom` migration"
                        if "Custom SQL migration file" in body
                        else "only comments"
                    )
                    raws.append(_Raw("DO014", f"chunk {ci} is {what}: " + no_statement, idx))
                else:
                    if len(chunks) == 1:
                        what = "the migration file is empty"
                    elif ci == len(chunks) - 1:
                        what = f"the file ends with `{BREAKPOINT}` (chunk {ci} is empty)"
                    else:
                        what = f"chunk {ci} is empty (two `{BREAKPOINT}` markers in a row)"
                    if ci > 0:  # point at the marker that opens the empty chunk
                        unit.line = lines.line(offset - len(BREAKPOINT))
                    raws.append(_Raw("DO015", f"{what}: " + no_statement, idx))
            size = len(chunk.encode("utf-8", "surrogatepass"))
            if size > limit and first_unit < len(units):
                message = (
                    f"chunk {ci} is {size:,} UTF-8 bytes; one sql.exec call takes at most {limit:,}"
                )
                raws.append(_Raw("DO010", message, first_unit))
            offset += len(chunk) + len(BREAKPOINT)
        return units, raws

    # ---------------------------------------------------------------------- the lint pass
    def run(self, skip: set[str]) -> list[Finding]:
        self._drops_after = _last_drops(self.bundle)
        self._later_triggers = _trigger_creations(self.bundle)
        for m in self.bundle.migrations:
            if getattr(m, "error", None) and not m.sql:
                continue
            if m.tag in skip:
                for chunk in m.chunks:
                    for piece in split(chunk):
                        if piece.has_statement:
                            self.schema.run(piece.text)
                continue
            self._lint(m)
        return self.findings

    def _lint(self, m: Migration) -> None:
        self._tag = m.tag
        lines = _MigrationText(m.sql)
        units, raws = self._units(m, lines)
        start_tables = dict(self.schema.tables())
        # what the whole migration does, for recreation detection
        renamed_to: dict[str, int] = {}
        dropped_at: dict[str, list[int]] = {}
        unique_targets: set[str] = set()
        self._created_triggers = {}
        self._trigger_tables = {}
        for i, u in enumerate(units):
            h = u.head
            if h.kind == "alter_rename" and h.target:
                renamed_to[h.target.lower()] = i  # the last rename to that name
            elif h.kind == "drop_table" and h.name:
                dropped_at.setdefault(h.name.lower(), []).append(i)
            elif h.kind == "create_index" and h.unique and h.table:
                unique_targets.add(h.table.lower())
            elif h.kind == "create_trigger" and h.name:
                self._created_triggers[h.name.lower()] = i
                table = _trigger_table(u.toks, h.body)
                if table:
                    self._trigger_tables.setdefault(table.lower(), []).append((i, h.name.lower()))
        unique_start = {
            t: self.schema.unique_sets(start_tables[t]) for t in unique_targets if t in start_tables
        }
        index_start = self.schema.index_names() if unique_targets else set()
        backfilled: dict[str, set[str]] = {}
        cuts: dict[int, str] | None = None  # read only when a statement does not parse

        for i, u in enumerate(units):
            if not u.is_statement:
                continue
            self._static(u, i, raws)
            self._schema_rules(
                u,
                i,
                raws,
                start_tables,
                renamed_to,
                dropped_at,
                unique_start,
                index_start,
                backfilled,
            )
            if u.head.kind == "update" and u.head.name:
                backfilled.setdefault(u.head.name.lower(), set()).update(
                    _update_sets(u.toks, u.head.body)
                )
            err = self.schema.run(u.exec_text)
            if err is not None and any(k in err for k in _SYNTAX_MARKERS):
                message = f"SQLite rejects the statement: `{err}`"
                if cuts is None:
                    cuts = _cut_markers(m.sql)
                cut = cuts.get(u.chunk + 1) or cuts.get(u.chunk)
                if cut is not None:
                    message += (
                        f"; a `{BREAKPOINT}` inside {cut} cut it: drizzle splits the file at "
                        "every marker, wherever it is"
                    )
                raws.append(_Raw("DO027", message, i))

        self._emit(m, units, raws, lines)

    def _static(self, u: _Unit, i: int, raws: list[_Raw]) -> None:
        h = u.head

        def add(rule: str, message: str) -> None:
            raws.append(_Raw(rule, message, i))

        if h.kind == "txn":
            add(
                "DO002",
                f"`{u.toks[0].text.upper()}` is refused by the DO's sql.exec (\"To execute a "
                'transaction, please use the state.storage.transaction() or ..."), and '
                "migrate() already runs inside transactionSync()",
            )
        elif h.kind == "pragma":
            name = h.pragma
            if name.lower() == "foreign_keys" and h.pragma_arg is not None:
                add(
                    "DO001",
                    f"`PRAGMA foreign_keys={h.pragma_arg}` does nothing here: migrate() runs "
                    "every migration inside ctx.storage.transactionSync(), where SQLite "
                    "ignores it; foreign keys stay as they were before migrate() (ON, the "
                    "DO default, unless the DO turned them off first)",
                )
            schema_ok = h.schema is None or h.schema.lower() == "main"
            if not schema_ok or not rt.pragma_allowed(rt.RUNTIME, name, h.pragma_arg):
                known = name.lower() in rt.RUNTIME.pragma_map
                why = (
                    f"the DO refuses this argument of `{name}`"
                    if known and schema_ok
                    else f"`{name}` is not on the DO's PRAGMA allow-list"
                )
                add("DO003", f"{why}: `not authorized: SQLITE_AUTH`")
        elif h.kind in ("attach", "detach"):
            add("DO005", f"{h.kind.upper()} is refused: `not authorized: SQLITE_AUTH`")
        elif h.kind == "vacuum":
            add(
                "DO007",
                "VACUUM fails: `cannot VACUUM from within a transaction: SQLITE_ERROR`",
            )
        if h.temp:
            add(
                "DO006",
                f"TEMP object `{h.name}` is refused by the DO: `not authorized: SQLITE_AUTH`",
            )
        if h.kind == "create_vtable":
            module = h.module.lower()
            if module not in rt.RUNTIME.vtable_modules:
                add(
                    "DO008",
                    f"virtual table module `{h.module or '?'}` is not available on a DO "
                    "(fts5, fts5vocab, rtree are): `not authorized: SQLITE_AUTH`",
                )
        self._reserved(u, i, raws)
        self._unfinishable(u, i, raws)
        self._running_select(u, i, raws)
        if h.kind == "create_table":
            cols = _column_count(u.toks, h.body)
            limit = rt.RUNTIME.limit_map["COLUMN"]
            if cols > limit:
                add(
                    "DO011",
                    f"table `{h.name}` has {cols} columns; a DO allows {limit} "
                    f"(`too many columns on {h.name}`)",
                )
        terms = _compound_terms(u.toks)
        climit = rt.RUNTIME.limit_map["COMPOUND_SELECT"]
        if terms > climit:
            add(
                "DO012",
                f"a compound SELECT with {terms} terms; a DO allows {climit} "
                "(`too many terms in compound SELECT`)",
            )
        llimit = rt.RUNTIME.limit_map["LIKE_PATTERN_LENGTH"]
        for op, size in _long_patterns(u.toks, llimit):
            add(
                "DO013",
                f"a {op} pattern of {size} bytes; a DO allows {llimit} "
                "(`LIKE or GLOB pattern too complex`)",
            )
        seen: set[str] = set()
        for fname in _called_functions(u.text, u.toks, h):
            if fname in seen:
                continue
            seen.add(fname)
            refusal = _refused(fname)
            if refusal is None:
                continue
            alt = _ALTERNATIVE.get(fname)
            hint = f"; use {alt}" if alt else ""
            add("DO004", f"`{fname}()` fails on a DO: `{refusal}`{hint}")

    def _running_select(self, u: _Unit, i: int, raws: list[_Raw]) -> None:
        """DO034: a SELECT of a table, with a DROP TABLE / DROP INDEX after it in the bundle."""
        toks = u.toks
        if not toks or toks[0].up not in ("SELECT", "WITH") or self._drops_after is None:
            return
        ups = {t.up for t in toks}
        if "FROM" not in ups or ups & _DML_WORDS - {"WITH"}:
            return
        here = (self._index.get(self._tag, 0), u.chunk, u.start)
        if here >= self._drops_after:
            return
        raws.append(
            _Raw(
                "DO034",
                "drizzle never reads this SELECT's rows, so it keeps running: a DROP TABLE or "
                "DROP INDEX after it in the same start (a later statement or migration, a "
                "table recreation) fails with `database table is locked` on every DO where it "
                "returns a row, and migrate() rolls back",
                i,
            )
        )

    def _unfinishable(self, u: _Unit, i: int, raws: list[_Raw]) -> None:
        """DO030/DO031: statements after which workerd cannot end its transaction."""
        toks = u.toks
        returning = (
            bool(toks)
            and toks[0].up in _DML_WORDS
            and any(toks[j].up == "RETURNING" for j in _top_level(toks, 0))
        )
        if returning and u.head.kind != "create_trigger":
            raws.append(
                _Raw(
                    "DO030",
                    f"`{toks[0].text.upper()} ... RETURNING`: drizzle never reads the returned "
                    "rows, so on a DO where it returns one (a table with rows) workerd fails "
                    "the start with `internal error; reference = ...` and resets the DO",
                    i,
                )
            )
        for j in range(1, len(toks) - 1):
            nxt = toks[j + 1].up
            if nxt != "ROLLBACK":
                continue
            t, before = toks[j], toks[j - 1]
            if t.up == "OR" and before.up in ("INSERT", "UPDATE"):
                form = f"{before.up} OR ROLLBACK"
            elif t.up == "CONFLICT" and before.up == "ON":
                form = "ON CONFLICT ROLLBACK"
            elif t.text == "(" and before.up == "RAISE":
                form = "RAISE(ROLLBACK)"
            else:
                continue
            raws.append(
                _Raw(
                    "DO031",
                    f"`{form}` rolls back the transaction workerd holds open: on a conflict "
                    "the request fails with `internal error; reference = ...` and the DO is "
                    "reset",
                    i,
                )
            )
            break

    def _reserved(self, u: _Unit, i: int, raws: list[_Raw]) -> None:
        h = u.head
        names: list[tuple[str, str]] = []
        if h.kind.startswith("create_") or h.kind.startswith("drop_"):
            names.append((h.name, "object"))
        if h.kind == "create_index" and h.table:
            names.append((h.table, "table"))
        if h.kind == "alter_rename":
            names.append((h.target, "new name"))
        if h.kind in ("insert", "update", "delete", "alter_add", "alter_drop_column"):
            names.append((h.name, "table"))
        for name, role in names:
            if not name:
                continue
            if not rt.is_allowed_name(name):
                message = (
                    f"{role} `{name}` starts with `_cf_`, reserved by the DO runtime: "
                    "`not authorized: SQLITE_AUTH`"
                )
                raws.append(_Raw("DO009", message, i))
            elif name.lower().startswith("sqlite_") and (
                h.kind.startswith("create_") or h.kind in ("alter_rename", "drop_table")
            ):
                message = (
                    f"{role} `{name}` starts with `sqlite_`, reserved by SQLite "
                    f"(`object name reserved for internal use: {name}`)"
                )
                raws.append(_Raw("DO009", message, i))

    def _schema_rules(
        self,
        u: _Unit,
        i: int,
        raws: list[_Raw],
        start_tables: dict[str, str],
        renamed_to: dict[str, int],
        dropped_at: dict[str, list[int]],
        unique_start: dict[str, set[frozenset[str]]],
        index_start: set[str],
        backfilled: dict[str, set[str]],
    ) -> None:
        h = u.head

        def add(rule: str, message: str) -> None:
            raws.append(_Raw(rule, message, i))

        key = h.name.lower()
        existed = key in start_tables
        if h.kind == "drop_table" and h.name:
            recreated = renamed_to.get(key, -1) > i
            if recreated:
                self._recreation_drop(h.name, i, raws)
            else:
                self._plain_drop(h.name, i, raws, dropped_at)
                if existed:
                    add(
                        "DO018",
                        f"DROP TABLE `{h.name}` deletes the table and all its rows on every "
                        "DO that migrates",
                    )
        elif h.kind == "alter_drop_column" and existed:
            add(
                "DO019",
                f"DROP COLUMN `{h.name}`.`{h.column}` deletes the column's data; code of the "
                "previous deploy that still reads it fails",
            )
        elif h.kind == "alter_rename" and existed and not key.startswith("__new_"):
            add(
                "DO020",
                f"table `{h.name}` is renamed to `{h.target}`; code of the previous deploy "
                "still uses the old name",
            )
        elif h.kind == "alter_rename_column" and existed:
            add(
                "DO021",
                f"column `{h.name}`.`{h.column}` is renamed to `{h.target}`; code of the "
                "previous deploy still uses the old name",
            )
        elif h.kind == "alter_add":
            not_null, default, generated = _column_def_flags(u.toks, h.body)
            if existed and default and _references(u.toks, h.body):
                add(
                    "DO035",
                    f"`{h.name}`.`{h.column}` is added with REFERENCES and a non-NULL DEFAULT: "
                    "fails with `Cannot add a REFERENCES column with non-NULL default value` on "
                    f"every DO whose `{h.name}` has rows (a fresh DO passes)",
                )
            expression = _expression_default(u.toks, h.body, u.exec_text)
            if existed and expression is not None:
                add(
                    "DO032",
                    f"`{h.name}`.`{h.column}` is added with DEFAULT {expression}, which is not a "
                    "constant: fails with `Cannot add a column with non-constant default` on "
                    f"every DO whose `{h.name}` has rows (a fresh DO passes)",
                )
            if existed and not_null and not default and not generated:
                add(
                    "DO022",
                    f"`{h.name}`.`{h.column}` is added NOT NULL without a DEFAULT: fails with "
                    "`Cannot add a NOT NULL column with default value NULL` on every DO "
                    f"whose `{h.name}` has rows",
                )
            tables = self.schema.tables()
            if key in tables:
                count = len(self.schema.columns(tables[key]))
                limit = rt.RUNTIME.limit_map["COLUMN"]
                if count + 1 > limit:
                    add(
                        "DO011",
                        f"`{h.name}` would have {count + 1} columns; a DO allows {limit}",
                    )
        elif h.kind == "create_index" and h.unique and h.table:
            tkey = h.table.lower()
            if tkey in start_tables and h.name.lower() not in index_start:
                cols = _index_columns(u.toks, h.body)
                already = cols is not None and any(s <= cols for s in unique_start.get(tkey, set()))
                if not already:
                    add(
                        "DO023",
                        f"UNIQUE index `{h.name}` on `{h.table}`, a table that already "
                        "exists: fails with `UNIQUE constraint failed` on every DO whose "
                        f"`{h.table}` holds duplicates",
                    )
        elif h.kind == "insert" and h.name and not existed:
            self._copy_missing_columns(u, i, raws, start_tables)
            self._recreation_copy(u, i, raws, start_tables, backfilled)

    def _not_null(self, table: str, columns: Sequence[str]) -> bool:
        """Every one of ``columns`` of ``table`` is NOT NULL (or part of the primary key)."""
        cols = {c.name.lower(): c for c in self.schema.columns(table)}
        return all(
            (c := cols.get(name.lower())) is not None and (c.notnull or c.pk) for name in columns
        )

    def _recreation_drop(self, name: str, i: int, raws: list[_Raw]) -> None:
        def add(rule: str, message: str) -> None:
            raws.append(_Raw(rule, message, i))

        key = name.lower()
        here = self._index.get(self._tag, 0)
        dropped = self.schema.triggers(name)
        lost = [
            t
            for t in dropped
            if self._created_triggers.get(t.lower(), -1) <= i
            and self._later_triggers.get(t.lower(), -1) <= here
        ]
        # triggers on the table created after the drop under new names stand for as many lost
        # ones (a trigger renamed with the recreation)
        names = {t.lower() for t in dropped}
        renamed = [n for j, n in self._trigger_tables.get(key, []) if j > i and n not in names]
        for trigger in lost[len(renamed) :]:
            add(
                "DO033",
                f"the recreation of `{name}` drops its trigger `{trigger}` with the table "
                "and does not create it again: it stops firing on every DO",
            )
        refs = [f for f in self.schema.fks() if f.parent.lower() == key and f.child.lower() != key]
        if not refs:
            return
        parts = _drop_effects(self.schema.fks(), name, not_null=self._not_null)
        add(
            "DO024",
            f"table recreation drops `{name}` while other tables reference it; on a DO the "
            "DROP runs with foreign keys ON (PRAGMA foreign_keys=OFF is a no-op inside "
            "migrate()'s transaction): " + "; ".join(parts),
        )

    def _plain_drop(
        self, name: str, i: int, raws: list[_Raw], dropped_at: dict[str, list[int]]
    ) -> None:
        def add(rule: str, message: str) -> None:
            raws.append(_Raw(rule, message, i))

        key = name.lower()
        # a child dropped later in the migration loses nothing of value to the cascade
        skip = [
            f
            for f in self.schema.fks()
            if f.parent.lower() == key
            and f.child.lower() != key
            and any(j > i for j in dropped_at.get(f.child.lower(), []))
            and f.on_delete.upper() in ("CASCADE", "SET NULL", "SET DEFAULT")
        ]
        parts = _drop_effects(self.schema.fks(), name, skip, not_null=self._not_null)
        if parts:
            add(
                "DO026",
                f"DROP TABLE `{name}` while other tables reference it (foreign keys are ON "
                "inside migrate()): " + "; ".join(parts),
            )

    def _copy_missing_columns(
        self, u: _Unit, i: int, raws: list[_Raw], start_tables: dict[str, str]
    ) -> None:
        """DO029: the copy selects a column the old table does not have (yet)."""
        h = u.head
        ins = _insert_select(u.toks, h.body)
        if ins is None or ins.source is None:
            return
        source = start_tables.get(ins.source.lower())
        if source is None:
            return
        known = {c.name.lower() for c in self.schema.columns(source)}
        if not known:
            return
        known |= {"rowid", "oid", "_rowid_"}
        targets = ins.columns
        if targets is None:
            targets = [c.name for c in self.schema.columns(h.name) if not c.hidden]
        literal: list[str] = []
        failing: list[str] = []
        for pos, item in enumerate(ins.item_toks):
            if any(t.up == "SELECT" for t in item):
                continue  # a subquery resolves names against its own tables
            into = targets[pos] if pos < len(targets) else None
            into_text = f" into `{h.name}`.`{into}`" if into else ""
            for k, t in enumerate(item):
                if t.kind != "qid" or t.value.lower() in known:
                    continue
                nxt = item[k + 1].text if k + 1 < len(item) else ""
                prev = item[k - 1] if k else None
                if nxt in (".", "(") or (prev is not None and (prev.text == "." or prev.is_name)):
                    continue  # qualified name, function name, alias
                if prev is not None and prev.up == "AS":
                    continue
                if t.text.startswith('"'):
                    literal.append(
                        f"`{t.text}` is copied{into_text}, but `{source}` has no column "
                        f"`{t.value}`: SQLite reads it as the string '{t.value}'"
                    )
                elif len(item) == 1:
                    failing.append(f"`{t.text}`")
            if (
                len(item) == 1
                and item[0].kind == "word"
                and item[0].value.lower() not in known
                and not _is_keyword(item[0].up)
            ):
                failing.append(f"`{item[0].text}`")
        if literal:
            raws.append(
                _Raw(
                    "DO029",
                    "; ".join(literal)
                    + ". No error: on every DO where `"
                    + source
                    + "` has rows, each row gets that text instead of a value (a CHECK or "
                    "STRICT type on the column fails instead, and the whole migrate() run rolls "
                    "back); empty DOs and tests without rows show nothing",
                    i,
                )
            )
        if failing:
            raws.append(
                _Raw(
                    "DO029",
                    f"{', '.join(failing)}: `{source}` has no such column at this point, so the "
                    f"statement fails with `no such column` on every DO",
                    i,
                )
            )

    def _recreation_copy(
        self,
        u: _Unit,
        i: int,
        raws: list[_Raw],
        start_tables: dict[str, str],
        backfilled: dict[str, set[str]],
    ) -> None:
        def add(rule: str, message: str) -> None:
            raws.append(_Raw(rule, message, i))

        h = u.head
        ins = _insert_select(u.toks, h.body)
        if ins is None or ins.source is None or h.conflict in ("IGNORE", "REPLACE"):
            return
        skey = ins.source.lower()
        if skey not in start_tables:
            return
        target_cols = [c for c in self.schema.columns(h.name) if not c.hidden]
        source_cols = [c for c in self.schema.columns(start_tables[skey]) if not c.hidden]
        if not target_cols or not source_cols:
            return
        by_name = {c.name.lower(): c for c in target_cols}
        src_by_name = {c.name.lower(): c for c in source_cols}
        names = ins.columns if ins.columns is not None else [c.name for c in target_cols]
        items: list[str | None] = []
        for it in ins.items:
            if it == "*":
                items.extend(c.name for c in source_cols)
            else:
                items.append(it)
        problems: list[str] = []
        first: str | None = None
        filled = set()
        done = backfilled.get(skey, set()) | ins.not_null
        for tname, item in zip(names, items, strict=False):
            filled.add(tname.lower())
            tcol = by_name.get(tname.lower())
            if tcol is None or not tcol.notnull or tcol.pk:
                continue
            if item is None:
                continue
            scol = src_by_name.get(item.lower())
            if scol is None or scol.notnull or scol.pk or scol.name.lower() in done:
                continue
            dflt = "" if tcol.default is None else f" (its DEFAULT {tcol.default} does not apply)"
            first = first or tcol.name
            problems.append(
                f"`{ins.source}`.`{scol.name}` is nullable and is copied into NOT NULL "
                f"`{h.name}`.`{tcol.name}`{dflt}"
            )
        if ins.columns is not None:
            for c in target_cols:
                if c.name.lower() in filled or not c.notnull or c.pk or c.default is not None:
                    continue
                first = first or c.name
                problems.append(
                    f"NOT NULL `{h.name}`.`{c.name}` has no DEFAULT and is not copied, so every "
                    "row gets NULL"
                )
        if problems:
            add(
                "DO025",
                "; ".join(problems)
                + f": fails with `NOT NULL constraint failed: {h.name}.{first}` on every DO "
                f"where `{ins.source}` has such a row (and the whole migrate() run rolls back)",
            )

    # ------------------------------------------------------------------ findings and ignores
    def _emit(
        self, m: Migration, units: list[_Unit], raws: list[_Raw], lines: _MigrationText
    ) -> None:
        file_ignores: set[str] = set()
        file_all = False
        unit_ignores: dict[int, set[str] | None] = {}
        if "dosqlite:" in m.sql:
            comments = _file_comments(m)
            for pos, body in comments:
                for match in _DIRECTIVE_RE.finditer(body):
                    kind, rest = match.group(1), match.group(2)
                    ids, unknown = _directive_ids(rest)
                    target = _directive_unit(units, pos, lines)
                    for bad in unknown:
                        raws.append(
                            _Raw(
                                "DO028",
                                f"`dosqlite:{kind} {bad}`: no rule {bad!r} (valid: "
                                f"DO001..DO{len(RULES):03d})",
                                -1,
                                pos,
                            )
                        )
                    if kind == "ignore-file":
                        if ids:
                            file_ignores |= ids
                        elif not unknown:
                            file_all = True
                    elif target is not None:
                        if not ids and not unknown:
                            unit_ignores[target] = None
                        elif unit_ignores.get(target, set()) is not None:
                            current = unit_ignores.get(target) or set()
                            unit_ignores[target] = current | ids
        seen: set[tuple[str, int, str]] = set()
        found: list[Finding] = []
        for raw in raws:
            if raw.unit < 0:
                chunk = _chunk_of(m, raw.pos)
                line = lines.line(raw.pos)
                eol = m.sql.find("\n", raw.pos)
                statement = m.sql[raw.pos : eol if eol >= 0 else len(m.sql)]
            else:
                u = units[raw.unit]
                chunk, line, statement = u.chunk, u.line, u.text
                ignored = unit_ignores.get(raw.unit, set())
                if ignored is None or raw.rule in ignored:
                    continue
            if file_all or raw.rule in file_ignores:
                continue
            key = (raw.rule, line, raw.message)
            if key in seen:
                continue
            seen.add(key)
            found.append(
                Finding(
                    rule=raw.rule,
                    severity=RULES[raw.rule].severity,
                    message=raw.message,
                    tag=m.tag,
                    chunk=chunk,
                    path=m.path,
                    line=line,
                    statement=statement.strip(),
                )
            )
        found.sort(key=lambda f: (f.line, f.rule))
        self.findings.extend(found)


def _index_columns(toks: list[Token], body: int) -> frozenset[str] | None:
    """Lower-case column names of an index definition; None when it indexes expressions."""
    cols: set[str] = set()
    for item in _groups(toks, body):
        words = list(item)
        if words and words[-1].up in ("ASC", "DESC"):
            words.pop()
        if len(words) == 3 and words[1].up == "COLLATE":
            words = words[:1]
        if len(words) != 1 or words[0].kind not in ("word", "qid", "str"):
            return None
        cols.add(words[0].value.lower())
    return frozenset(cols) if cols else None


def _is_keyword(word: str) -> bool:
    """An upper-case bare word that is not a column name (NULL, CURRENT_TIME, TRUE ...)."""
    from apsw import keywords

    return word in keywords or word in ("TRUE", "FALSE")


def _fk_effect(f: _FK, parent: str, dropped: str | None = None, spared: bool = False) -> str:
    """What deleting the rows of ``parent`` does through foreign key ``f`` (foreign keys ON).

    ``dropped``: the table whose DROP started it, when ``parent`` loses its rows through a
    cascade from there; ``spared``: a NO ACTION child whose referencing rows that cascade
    deletes too, so the statement ends without a violation."""
    action = f.on_delete.upper()
    cols = ", ".join(f.columns)
    ref = f"{f.child}.{cols}" if len(f.columns) == 1 else f"{f.child}({cols})"
    child = f"`{f.child}`"
    if f.child.lower().startswith("__new_") and f.child[6:].lower() == parent.lower():
        child += f" (the new copy of `{parent}`: a self-reference)"
    elif f.child.lower().startswith("__new_") and dropped is not None:
        child += f" (the new copy of `{f.child[6:]}`)"
    rows = f"a row of `{parent}`" if dropped is None else f"a deleted row of `{parent}`"
    if action == "CASCADE":
        effect = f"deletes every row of {child} that references {rows}"
    elif action == "SET NULL":
        effect = f"sets {cols} to NULL in every row of {child} that references `{parent}`"
    elif action == "SET DEFAULT":
        effect = f"resets {cols} to its default in every row of {child} that references `{parent}`"
    elif spared:
        effect = (
            f"raises no error: the rows of {child} that reference {rows} are deleted by the "
            "cascade too"
        )
    else:
        effect = (
            f"fails with `FOREIGN KEY constraint failed` as soon as {child} has a row "
            f"referencing {'it' if dropped is None else rows}, and the whole migrate() run "
            "rolls back"
        )
    via = "" if dropped is None else f" (through the cascade from `{dropped}`)"
    return f"`{ref} ON DELETE {action.lower()}` {effect}{via}"


def _drop_effects(
    fks: Sequence[_FK],
    table: str,
    skip: Collection[_FK] = (),
    not_null: Callable[[str, Sequence[str]], bool] | None = None,
) -> list[str]:
    """What deleting every row of ``table`` does through the foreign keys, transitively: the
    children a cascade empties lose their own children's rows too (``skip``: foreign keys of
    ``table`` itself to leave out). A NO ACTION child raises nothing only when every one of its
    rows goes with the cascade: it cascades (through NOT NULL keys, per ``not_null``) from a
    table that loses all its rows."""
    deleted = {table.lower()}
    emptied = {table.lower()}  # every row goes
    queue = [table]
    effects: list[tuple[_FK, str]] = []
    while queue:
        parent = queue.pop(0)
        for f in fks:
            child = f.child.lower()
            if f.parent.lower() != parent.lower() or child == parent.lower():
                continue
            if f in skip or child == table.lower():  # the dropped table's own rows go anyway
                continue
            effects.append((f, parent))
            if f.on_delete.upper() != "CASCADE":
                continue
            if parent.lower() in emptied and not_null is not None and not_null(f.child, f.columns):
                emptied.add(child)
            if child not in deleted:
                deleted.add(child)
                queue.append(f.child)
    return [
        _fk_effect(
            f,
            parent,
            None if parent.lower() == table.lower() else table,
            spared=f.on_delete.upper() == "NO ACTION" and f.child.lower() in emptied,
        )
        for f, parent in effects
    ]


def _file_comments(m: Migration) -> list[tuple[int, str]]:
    """(file offset, text) of every comment, chunk by chunk as the DO sees them."""
    out: list[tuple[int, str]] = []
    offset = 0
    for chunk in m.chunks:
        out.extend((offset + c.start, c.text) for c in comments(chunk))
        offset += len(chunk) + len(BREAKPOINT)
    return out


def _chunk_of(m: Migration, pos: int) -> int:
    offset = 0
    for ci, chunk in enumerate(m.chunks):
        offset += len(chunk) + len(BREAKPOINT)
        if pos < offset:
            return ci
    return max(0, len(m.chunks) - 1)


def _directive_unit(units: list[_Unit], pos: int, lines: _MigrationText) -> int | None:
    """The statement an ignore comment at ``pos`` belongs to.

    Inside a statement: that statement. Otherwise the next statement, unless the comment is on
    the same line as the end of the previous one (``DROP TABLE x; -- dosqlite:ignore DO018``).
    A comment in a chunk without statements, with no statement after it, belongs to that chunk.
    """
    line = lines.line(pos)
    prev: int | None = None
    for idx, u in enumerate(units):
        if not u.is_statement:
            continue
        if u.start <= pos < u.end:
            return idx
        if u.start > pos:
            if prev is not None and units[prev].end_line == line:
                return prev
            return idx
        prev = idx
    if prev is not None and units[prev].end_line == line:
        return prev
    for idx, u in enumerate(units):
        if u.start <= pos < u.end:
            return idx
    return None


# ---------------------------------------------------------------------------- public API


def parse_severities(lines: Iterable[str]) -> dict[str, str]:
    """``RULE=error|warning|off`` lines (the ini's ``dosqlite_lint_severity``, the CLI's
    ``--lint-severity``) as rule -> level, the rule as written (an id or a name). A bad line
    raises :class:`ValueError` saying what is wrong."""
    out: dict[str, str] = {}
    for line in lines:
        rule, sep, level = line.partition("=")
        rule, level = rule.strip(), level.strip().lower()
        if not sep:
            raise ValueError(f"lines look like RULE=error|warning|off, not {line!r}")
        if level not in _LEVELS:
            raise ValueError(f"{rule} must be error, warning or off, not {level!r}")
        if RULES.get(rule.upper()) is None and _BY_NAME.get(rule.lower()) is None:
            known = ", ".join(f"{r.id} ({r.name})" for r in _RULE_LIST)
            raise ValueError(f"unknown lint rule {rule}; known: {known}")
        out[rule] = level
    return out


def _resolve_severities(severities: dict[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, level in (severities or {}).items():
        rule = RULES.get(key.strip().upper()) or _BY_NAME.get(key.strip().lower())
        if rule is None:
            valid = ", ".join(f"{r.id} ({r.name})" for r in _RULE_LIST)
            raise ValueError(f"unknown lint rule {key!r}; valid rules: {valid}")
        lv = str(level).strip().lower()
        if lv not in _LEVELS:
            raise ValueError(
                f"lint severity for {rule.id} must be error, warning or off, got {level!r}"
            )
        out[rule.id] = lv
    return out


def lint_bundle(
    bundle: Bundle,
    *,
    severities: dict[str, str] | None = None,
    only_after: set[str] | None = None,
) -> list[Finding]:
    """Lint every migration of ``bundle`` (journal order) and return the findings.

    ``severities`` maps a rule id (or name) to ``error``, ``warning`` or ``off``; an unknown
    rule raises :class:`ValueError` listing the valid ones. Migrations whose tag is in
    ``only_after`` (already accepted: see :func:`baseline_tags`) are not linted, but
    their statements still build the schema the later ones are checked against.
    """
    overrides = _resolve_severities(severities)
    linter = _Linter(bundle)
    try:
        with _quiet_sqlglot():
            findings = linter.run(set(only_after or ()))
    finally:
        linter.close()
    out: list[Finding] = []
    for f in findings:
        level = overrides.get(f.rule, f.severity)
        if level == "off":
            continue
        severity: Severity = "error" if level == "error" else "warning"
        out.append(f if severity == f.severity else replace(f, severity=severity))
    return out


def _short(statement: str, max_lines: int = 12) -> str:
    lines = statement.splitlines()
    if len(lines) <= max_lines:
        return statement
    return "\n".join([*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"])


def baseline_tags(bundle: Bundle, baseline: Sequence[str]) -> tuple[set[str], str | None]:
    """The tags ``dosqlite_lint_baseline`` accepts in ``bundle``: every migration up to the last
    one it names (journal order), and that tag (None when it names none of the bundle's)."""
    wanted = set(baseline)
    last = None
    for i, m in enumerate(bundle.migrations):
        if m.tag in wanted:
            last = i
    if last is None:
        return set(), None
    return {m.tag for m in bundle.migrations[: last + 1]}, bundle.migrations[last].tag


def check_severities(severities: Mapping[str, str], foreign_keys_off: bool) -> dict[str, str]:
    """The severities the ``lint`` check runs with (and the report shows): the settings',
    with DO024 off when the DO turns foreign keys off around ``migrate()`` (DO024's own fix:
    the DROP of a recreated parent no longer cascades; data_preserved runs the same way),
    unless the settings name it."""
    out = dict(severities)
    rule = RULES["DO024"]
    if foreign_keys_off and not {rule.id, rule.name} & set(out):
        out[rule.id] = "off"
    return out


def lint_check(ctx: CheckContext) -> None:
    """The ``lint`` check: errors fail it, warnings become :class:`DosqliteLintWarning`."""
    baseline = tuple(ctx.settings.lint_baseline)
    accepted, through = baseline_tags(ctx.bundle, baseline)
    severities = check_severities(ctx.settings.lint_severity, ctx.foreign_keys_off)
    try:
        findings = lint_bundle(
            ctx.bundle,
            severities=severities,
            only_after=accepted or None,
        )
    except ValueError as exc:  # a bad dosqlite_lint_severity entry
        raise CheckFailure(
            "lint: invalid dosqlite_lint_severity setting", [("Error", str(exc))]
        ) from None
    errors = [f for f in findings if f.severity == "error"]
    warned = [f for f in findings if f.severity == "warning"]
    for f in warned:
        try:
            # attribute the warning to the .sql file and line, not to our code
            warnings.warn_explicit(
                # the location is the warning's own (pytest prints it first): not twice
                DosqliteLintWarning(f"{f.rule} {f.name} ({f.severity}): {f.message}"),
                DosqliteLintWarning,
                str(f.path) if f.path is not None else "<bundle>",
                f.line or 1,
            )
        except DosqliteLintWarning:
            # a filter turns warnings into errors (-W error): they fail the check as errors,
            # all of them listed, not the first one as a traceback
            errors += warned
            break
    if not errors:
        return
    sections: list[tuple[str, str]] = []
    for f in errors:
        body = (
            f"{f.message}\n\nstatement (migration {f.tag}, chunk {f.chunk}):\n"
            f"{_short(f.statement) or '(nothing: the chunk is empty)'}\n\nhow to fix: {f.fix}"
        )
        sections.append((f"{f.location} {f.rule} {f.name}", body))
    sections.append(
        (
            "Silence a finding",
            "put `-- dosqlite:ignore DO0NN` on the line before the statement (after the "
            "`--> statement-breakpoint` marker: a comment at the end of a chunk is itself an "
            "error), `-- dosqlite:ignore-file DO0NN` anywhere in the file, or set "
            "`dosqlite_lint_severity = DO0NN=warning|off` in the pytest ini "
            "(`--lint-severity DO0NN=off` for `python -m pytest_dosqlite check`).\n"
            "Migrations already shipped cannot be edited: set `dosqlite_lint_baseline = TAG` "
            "(`--lint-baseline TAG`) to lint only the migrations after TAG",
        )
    )
    if baseline and through is None:
        sections.append(
            (
                "Lint baseline",
                f"dosqlite_lint_baseline names none of this bundle's migrations "
                f"({', '.join(baseline)}): every migration was linted",
            )
        )
    n = len(errors)
    raise CheckFailure(
        f"lint: {n} error{'s' if n != 1 else ''} in bundle {ctx.bundle.root}", sections
    )
