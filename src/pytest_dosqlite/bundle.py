"""A drizzle-kit migration bundle, read exactly as drizzle's migrator reads it.

The loader never executes ``migrations.js``: it parses it as data (see :mod:`.jsmodule`).
Integrity findings are collected in ``Bundle.problems`` instead of being raised, so one bad entry
does not hide the others; only a bundle that cannot be read at all raises :class:`BundleError`.

Three layouts are read:

``durable-sqlite``
    ``meta/_journal.json`` + ``migrations.js`` + ``NNNN_tag.sql``. Migrations come in journal
    array order; entry ``idx`` gives the key ``m`` + idx zero-padded to 4; the SQL of a key is
    the file its import resolves to (relative to ``migrations.js``). A journal entry whose key is
    missing is still listed (with the text of ``<tag>.sql`` when that file exists, so lint can
    see it), with ``Migration.error == "Missing migration: <tag>"``, in ``Bundle.missing`` and as
    a ``missing-key`` problem: drizzle throws that before touching the database.
``journal``
    ``meta/_journal.json`` + ``<tag>.sql`` (D1, libSQL, better-sqlite3: the generic migrator).
``v1``
    drizzle-kit v1 folders ``<YYYYMMDDHHMMSS>_<name>/migration.sql`` without a journal, with or
    without a v1 ``migrations.js``. Order and timestamps follow drizzle-orm 1.0's migrators
    (see ``.notes/drizzle-v1-migrator.md``).
"""

from __future__ import annotations

import bisect
import datetime
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import accumulate, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .errors import BundleError
from .jsmodule import RESOLVE_EXTENSIONS

if TYPE_CHECKING:
    from .jsmodule import JsSyntaxError, MigrationsJs

__all__ = [
    "BREAKPOINT",
    "MAX_FILE_BYTES",
    "PROBLEM_CODES",
    "Bundle",
    "BundleFormat",
    "Migration",
    "Problem",
    "ProblemCode",
    "js_locale_compare_key",
    "load_bundle",
    "skip_bom",
    "v1_folder_millis",
    "when_moment",
]

#: drizzle's split marker; the split is a plain text split, strings and comments included
BREAKPOINT = "--> statement-breakpoint"

#: ``durable-sqlite``: journal + migrations.js (what a DO imports);
#: ``journal``: journal + .sql files without migrations.js (D1, libSQL, better-sqlite3);
#: ``v1``: drizzle-kit v1 folders ``<timestamp>_<name>/migration.sql`` without a journal.
BundleFormat = Literal["durable-sqlite", "journal", "v1"]

#: files larger than this are refused with a BundleError (no migration file is that big)
MAX_FILE_BYTES = 50 * 1024 * 1024

#: the ``prevId`` of the first drizzle-kit snapshot
ORIGIN_SNAPSHOT_ID = "00000000-0000-0000-0000-000000000000"

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Migration:
    """One journal entry with its SQL, in the order the migrator runs it."""

    idx: int
    tag: str
    when: int
    key: str
    sql: str
    path: Path | None = None
    breakpoints: bool = True
    #: journal entry version ("6", "5"), for information only
    version: str | None = None
    #: v1: the ledger ``name`` (folder name / migrations.js key); None for journal bundles
    name: str | None = None
    #: what drizzle's migrator (or the bundler) throws for this entry before touching the
    #: database, e.g. ``Missing migration: 0003_x``; None when it reads fine
    error: str | None = None
    #: 1-based line of the entry in ``meta/_journal.json`` (None for v1)
    line: int | None = None
    #: ``meta/NNNN_snapshot.json`` (v0) or ``<folder>/snapshot.json`` (v1), when it exists
    snapshot: Path | None = None
    #: v1 only: False when the folder name has no parsable timestamp (JS ``NaN``; ``when`` is 0)
    when_valid: bool = True

    @cached_property
    def chunks(self) -> tuple[str, ...]:
        """Exactly drizzle's ``sql.split("--> statement-breakpoint")``, untrimmed."""
        return tuple(self.sql.split(BREAKPOINT))

    @property
    def sha256(self) -> str:
        """sha256 of the file text (what drizzle's generic migrator would hash)."""
        return hashlib.sha256(self.sql.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def pin_sha256(self) -> str:
        """sha256 of the file text with CRLF line ends read as LF: what a schema snapshot pins.
        A checkout with git's ``core.autocrlf`` (Windows) is not an edit of the migration."""
        text = self.sql.replace("\r\n", "\n")
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def chunk_line(self, chunk: int) -> int:
        """1-based line in the file where chunk ``chunk`` starts."""
        return self.line_of(chunk, 0)

    def line_of(self, chunk: int, offset_in_chunk: int) -> int:
        """1-based file line of a character offset inside a chunk."""
        starts = self._chunk_starts
        start = starts[chunk] if chunk < len(starts) else len(self.sql) + len(BREAKPOINT)
        return bisect.bisect_left(self._newlines, start + offset_in_chunk) + 1

    # a migration of thousands of chunks asks for the line of each: both are computed once
    @cached_property
    def _chunk_starts(self) -> tuple[int, ...]:
        """File offset where each chunk starts."""
        return tuple(accumulate((len(c) + len(BREAKPOINT) for c in self.chunks[:-1]), initial=0))

    @cached_property
    def _newlines(self) -> tuple[int, ...]:
        return tuple(line_ends(self.sql))


_LINE_END = re.compile(r"\r\n|\r|\n")


def line_ends(text: str) -> list[int]:
    """Offsets of the last character of each line end of a file: LF, CRLF (one), and CR
    alone, as editors count them (a file with classic-Mac line ends was all on line 1). A
    bisection of an offset among them is its line, the CR of a CRLF included."""
    return [m.end() - 1 for m in _LINE_END.finditer(text)]


@dataclass(frozen=True)
class Problem:
    """An integrity finding with a stable ``code`` (see :data:`PROBLEM_CODES`)."""

    code: str
    message: str
    path: Path | None = None
    line: int | None = None
    migration: str | None = None
    #: how to fix it, in a Drizzle project
    fix: str | None = None
    #: ``error``: drizzle fails, or runs something other than the journal says;
    #: ``warning``: suspicious but drizzle's migrator is not affected
    severity: Severity = "error"

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}{':' + str(self.line) if self.line else ''}: "
        return f"{where}[{self.code}] {self.message}"


@dataclass(frozen=True)
class ProblemCode:
    """Documentation of one problem code."""

    code: str
    severity: Severity
    summary: str
    explanation: str
    fix: str


def _code(code: str, severity: Severity, summary: str, explanation: str, fix: str) -> ProblemCode:
    return ProblemCode(code, severity, summary, explanation, fix)


#: module files esbuild's resolution takes before migrations.js for `./migrations`
_SHADOWING_MODULES = tuple(
    "migrations" + ext for ext in RESOLVE_EXTENSIONS[: RESOLVE_EXTENSIONS.index(".js")]
)

#: every problem code the loader emits, with its default severity, meaning and fix
PROBLEM_CODES: dict[str, ProblemCode] = {
    c.code: c
    for c in (
        _code(
            "missing-key",
            "error",
            "journal entry without its key in migrations.js",
            "drizzle's durable-sqlite migrator looks up `m` + idx (4 digits) in the `migrations` "
            "object for every journal entry and throws `Missing migration: <tag>` before running "
            "anything, so no migration at all is applied on any Durable Object.",
            "Add `mNNNN` to the `migrations` object (and `import mNNNN from './NNNN_tag.sql';` "
            "if it is not imported). `drizzle-kit generate` rewrites migrations.js from the "
            "journal only when it writes a new migration: without a schema change it does "
            "nothing.",
        ),
        _code(
            "unbound-key",
            "error",
            "migrations.js lists a key whose value nothing imports",
            "The value is an identifier without an import or const: loading the module throws "
            "`ReferenceError: <name> is not defined`, so the Worker fails at start-up.",
            "Add the missing `import mNNNN from './NNNN_tag.sql';` or re-run "
            "`drizzle-kit generate`.",
        ),
        _code(
            "missing-sql",
            "error",
            "a migration's .sql file does not exist",
            "A journal entry has no `<tag>.sql` (the generic migrator throws `No file ... found`; "
            "`wrangler d1 migrations apply` silently skips it), or migrations.js imports a file "
            "that is not there (the Worker bundle fails to build).",
            "Restore the .sql file from version control, or remove the entry from "
            "meta/_journal.json and migrations.js only if it was never deployed anywhere.",
        ),
        _code(
            "empty-sql",
            "error",
            "a migration's SQL is empty",
            "drizzle's durable-sqlite migrator tests `if (!query)`: an empty file imported as text "
            "is falsy, so it throws `Missing migration: <tag>`; other drivers run an empty "
            "statement, which SQLite rejects on Durable Objects.",
            "Put the intended SQL in the file (or `SELECT 1;` for a deliberate no-op).",
        ),
        _code(
            "orphan-sql",
            "error",
            ".sql file that no journal entry uses",
            "drizzle's migrators never run it, but `wrangler d1 migrations apply` runs every .sql "
            "file by name: D1 and drizzle-managed databases diverge. Usually a branch merge where "
            "one side's journal won.",
            "Either regenerate it into the journal (delete it and run `drizzle-kit generate`), or "
            "add its journal entry back; delete it only if it was never applied anywhere.",
        ),
        _code(
            "inline-sql-differs",
            "error",
            "migrations.js holds a migration's SQL inline, and it differs from its .sql file",
            "The DO runs the text in migrations.js. The next `drizzle-kit generate` rewrites "
            "migrations.js to import the .sql file, and from then on a fresh DO runs the file's "
            "text while the existing ones ran the inline text: the fleet's schemas diverge.",
            "Make both say what production ran: copy the inline SQL into the .sql file (or the "
            "file's into migrations.js if that migration never reached production).",
        ),
        _code(
            "orphan-key",
            "warning",
            "migrations.js key or import without a journal entry",
            "drizzle ignores keys the journal does not name, so this SQL never runs.",
            "Re-run `drizzle-kit generate` so migrations.js matches meta/_journal.json.",
        ),
        _code(
            "empty-journal",
            "error",
            "the journal lists no migration, but migrations.js has some",
            "drizzle runs what the journal lists: every DO, fresh or not, stays without the "
            "schema (a merge that kept the empty side of meta/_journal.json, say), and the "
            "Worker's first query fails at run time.",
            "Restore meta/_journal.json from version control, or re-run `drizzle-kit generate`.",
        ),
        _code(
            "duplicate-key",
            "warning",
            "the same key twice in the migrations object",
            "In a JS object literal the last duplicate wins; the first value is silently ignored.",
            "Remove the duplicate (re-run `drizzle-kit generate`).",
        ),
        _code(
            "tag-mismatch",
            "error",
            "journal idx, tag, and file names disagree",
            "drizzle-kit names entry idx N `NNNN_<name>` and imports `./NNNN_<name>.sql` as "
            "`mNNNN`. When they disagree the migrator still runs what the key imports, which is "
            "not the file the journal names.",
            "Make the tag prefix equal the idx and the import point at `<tag>.sql`; regenerate "
            "with `drizzle-kit generate` if the files were renamed by hand.",
        ),
        _code(
            "duplicate-prefix",
            "error",
            "two .sql files share the same NNNN_ prefix",
            "Two migrations were generated with the same number, typically on two branches. "
            "Only one can be in the journal; the other is either lost or applied by wrangler "
            "out of band.",
            "Keep one chain: drop the losing branch's migration and run `drizzle-kit generate` "
            "again on top of the merged schema.",
        ),
        _code(
            "idx-sequence",
            "warning",
            "journal idx values are not 0..n-1 in order",
            "drizzle runs entries in array order and looks keys up by idx; a repeated idx makes "
            "two entries run the same SQL, a gap or reordering means the journal was edited.",
            "Renumber so that entry i has idx i (and tag/file prefix i), or regenerate.",
        ),
        _code(
            "duplicate-tag",
            "error",
            "two journal entries have the same tag",
            "drizzle-kit writes migrations.js from the journal, importing `<tag>.sql` for each "
            "entry: both entries then run the same file, and the migration written for the "
            "second one never runs.",
            "Remove the duplicated journal entry or give it its own migration file.",
        ),
        _code(
            "when-not-increasing",
            "error",
            "journal `when` not strictly increasing",
            "drizzle applies an entry only if its `when` is greater than the newest `created_at` "
            "already applied (read once per run). An entry whose `when` is not greater than an "
            "earlier entry's is skipped forever on every existing Durable Object, without error, "
            "while fresh ones run it: old and new instances end up with different schemas.",
            "Set the entry's `when` to a value greater than every earlier entry (e.g. "
            "`Date.now()`), or regenerate it with `drizzle-kit generate`; never hand-type dates.",
        ),
        _code(
            "when-in-future",
            "warning",
            "the newest journal `when` is later than now",
            "drizzle-kit stamps each new migration with `Date.now()`. A `when` in the future "
            "(hand-typed, or from a machine whose clock was ahead) is larger than the next "
            "migration's, so every Durable Object that applied it skips the next migration "
            "forever, without error, while fresh ones run it.",
            "Set the entry's `when` to the time it was really generated (any value below now "
            "and above the previous entry's), before the next `drizzle-kit generate`; if DOs "
            "already applied it, give the next migrations a `when` above it by hand.",
        ),
        _code(
            "placeholder-migrations-js",
            "error",
            "migrations.js is the `export default {}` placeholder",
            "`migrate(db, migrations)` then reads `journal.entries` of undefined and throws a "
            "TypeError: nothing is migrated.",
            "Run `drizzle-kit generate` with `driver: 'durable-sqlite'` in drizzle.config.ts; it "
            "writes the real migrations.js.",
        ),
        _code(
            "journal-not-imported",
            "error",
            "migrations.js does not import/export this folder's meta/_journal.json",
            "drizzle reads `journal.entries` from the default export; without the journal it "
            "throws a TypeError, and with another folder's journal it runs that folder's list.",
            "Add `import journal from './meta/_journal.json';` and `journal` to the default export "
            "(or re-run `drizzle-kit generate`).",
        ),
        _code(
            "unsupported-js",
            "warning",
            "migrations.js uses constructs that cannot be read as data",
            "Spreads, computed keys, function calls or bare module specifiers: the loader cannot "
            "tell which SQL they produce without running the file, so those parts are not checked.",
            "Keep migrations.js as drizzle-kit writes it (plain imports and an object literal).",
        ),
        _code(
            "invalid-js",
            "error",
            "migrations.js, or a migrations.ts the Worker's import takes first, does not parse",
            "The Worker bundle will not build, so no Durable Object code runs at all.",
            "Fix the syntax error at the reported line, or re-run `drizzle-kit generate`.",
        ),
        _code(
            "invalid-json",
            "error",
            "a snapshot JSON file does not parse",
            "drizzle-kit reads the last snapshot to diff the schema; `drizzle-kit generate` and "
            "`check` fail on it.",
            "Restore the file from version control (snapshots are generated, never hand-edited).",
        ),
        _code(
            "non-utf8",
            "error",
            "a file is not valid UTF-8",
            "drizzle and wrangler read files as UTF-8 and replace invalid bytes with U+FFFD, so "
            "the SQL that runs differs from the file's bytes.",
            "Re-save the file as UTF-8.",
        ),
        _code(
            "nul-byte",
            "error",
            "a .sql file holds a NUL byte",
            "SQLite reads SQL text only up to a NUL byte: what follows it never runs, and the DO "
            "fails with `SQL code did not contain a statement` or runs a cut statement.",
            "Remove the byte (an editor or a tool that wrote binary into the file put it there).",
        ),
        _code(
            "byte-order-mark",
            "warning",
            "a JSON file starts with a UTF-8 byte order mark",
            "The Worker builds and migrates (esbuild's JSON loader skips the mark), but "
            "drizzle-kit reads meta/*.json with JSON.parse, which rejects it: the next "
            "`drizzle-kit generate` stops with `SyntaxError: Unexpected token`.",
            "Save the file as UTF-8 without a byte order mark (its first three bytes are EF BB BF; "
            "an editor's 'UTF-8 with BOM' setting writes them).",
        ),
        _code(
            "missing-snapshot",
            "warning",
            "journal entry without its meta/NNNN_snapshot.json",
            "The migrator does not read snapshots, but drizzle-kit diffs against them: the next "
            "`drizzle-kit generate` may produce wrong SQL.",
            "Restore the snapshot from version control, or regenerate the chain.",
        ),
        _code(
            "unread-migrations-module",
            "warning",
            "a migrations.ts (.tsx, .jsx) the Worker imports but pytest-dosqlite cannot read",
            "A Worker's extensionless `import migrations from './drizzle/migrations'` is resolved "
            "by esbuild (wrangler's bundler), which tries .tsx, .ts and .jsx before .js: a "
            "hand-written migrations.ts is what the Durable Object runs, even when drizzle-kit's "
            "generated migrations.js sits next to it. pytest-dosqlite reads such a module when it "
            "has drizzle-kit's shape (`export default { journal, migrations }`, each member an "
            "import of a file in the folder or inline SQL). This one has another shape (named "
            "exports, a bundler suffix such as `?raw`, computed members): the bundle is checked "
            "from migrations.js or, without one, from the journal and the .sql files, so a journal "
            "entry the module does not import, or maps to another file, is not caught.",
            "Give the module drizzle-kit's shape, or import drizzle-kit's generated module "
            "(`import migrations from './drizzle/migrations.js'`) and delete the hand-written "
            "one.",
        ),
        _code(
            "orphan-snapshot",
            "warning",
            "snapshot without a journal entry",
            "Left over from a deleted or merged-away migration; drizzle-kit may diff against it.",
            "Delete it if its migration is gone for good, or restore the journal entry.",
        ),
        _code(
            "snapshot-chain",
            "error",
            "snapshot id/prevId chain broken or duplicate snapshot id",
            "Each snapshot's prevId must be the previous snapshot's id, and ids are unique. A "
            "copied snapshot or a branch merge breaks the chain; `drizzle-kit check` reports it "
            "and `generate` may diff against the wrong schema.",
            "Regenerate the affected migration with `drizzle-kit generate` (or `drizzle-kit up` / "
            "`drizzle-kit check` to see the collision).",
        ),
        _code(
            "journal-dialect",
            "warning",
            "the journal is not for SQLite",
            "meta/_journal.json names another dialect: this folder was generated for a different "
            "database.",
            "Point drizzle.config.ts `out` at the SQLite folder, with `dialect: 'sqlite'`.",
        ),
        _code(
            "mixed-layout",
            "error",
            "both meta/_journal.json and drizzle-kit v1 migration folders",
            "drizzle-orm 0.x reads only the journal (ignores the folders); drizzle-orm 1.x's "
            "durable migrator reads only migrations.js, which here is the journal's (its "
            "`m0000`... keys are not folder names: every existing DO fails to upgrade).",
            "Run `drizzle-kit up` once (converts the journal to folders) and commit the result, or "
            "delete the v1 folders if you are staying on drizzle 0.x.",
        ),
        _code(
            "leftover-journal",
            "warning",
            "meta/_journal.json left over next to drizzle-kit v1 folders",
            "`drizzle-kit up` converted the journal to v1 folders and a v1 migrations.js, which "
            "does not import meta/_journal.json: drizzle 1.x migrates from migrations.js alone, "
            "and the journal only misleads readers (and drizzle 0.x, if the upgrade is undone).",
            "Delete the meta/ folder once the v1 layout is committed.",
        ),
        _code(
            "v1-bad-name",
            "error",
            "v1 migration folder name without a 14-digit UTC timestamp",
            "drizzle 1.x takes `created_at` from the first 14 characters of the folder name; "
            "without digits there it is NaN (stored as NULL) and the ledger upgrade cannot match "
            "it.",
            "Rename the folder to `YYYYMMDDHHMMSS_<name>` (before it is deployed: renaming an "
            "applied v1 migration makes drizzle run it again).",
        ),
    )
}


#: a `when` this far ahead of the local clock is in the future (clocks drift, time zones do not:
#: `when` is epoch milliseconds)
_FUTURE_SLACK_MS = 24 * 3600 * 1000


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def when_moment(when: int) -> datetime.datetime | None:
    """A journal ``when`` (epoch milliseconds) as a UTC time, None when out of range."""
    try:
        return datetime.datetime.fromtimestamp(when / 1000, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _inline_differs(
    inline: str, file_text: str, key: str, name: str, path: Path, line: int, tag: str
) -> Problem | None:
    """``inline-sql-differs`` when the migrations module's inline SQL for ``key`` is not the
    text of the migration's own .sql file ``name`` (line endings aside: a JS template literal
    reads CRLF as LF). The module is ``path``: drizzle-kit's migrations.js, which the next
    ``drizzle-kit generate`` rewrites, or a hand-written module, which it leaves alone."""
    ours = inline.replace("\r\n", "\n")
    theirs = file_text.replace("\r\n", "\n")
    if ours == theirs:
        return None
    a, b = ours.split("\n"), theirs.split("\n")
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    head = (
        f"`{key}` holds the SQL of {tag} inline, and it differs from {name} from the file's line "
        f"{at + 1} on: the DO runs the inline text"
    )
    if path.name == "migrations.js":
        why = (
            f"; once `drizzle-kit generate` rewrites migrations.js to import {name}, fresh DOs "
            "run the file's text"
        )
    else:
        why = f" of {path.name}, not the {name} that drizzle-kit wrote and reviewers read"
    return _problem("inline-sql-differs", head + why, path, line, tag)


def _problem(
    code: str,
    message: str,
    path: Path | None = None,
    line: int | None = None,
    migration: str | None = None,
    *,
    severity: Severity | None = None,
    fix: str | None = None,
) -> Problem:
    info = PROBLEM_CODES[code]
    return Problem(
        code=code,
        message=message,
        path=path,
        line=line,
        migration=migration,
        fix=fix if fix is not None else info.fix,
        severity=severity if severity is not None else info.severity,
    )


class EntryIndex:
    """Per-entry facts of a bundle's migrations, built once and shared by its prefixes.

    ``migrate()`` and :meth:`Bundle.prefix` run once per version in the checks; reading these
    facts entry by entry in Python on every call made building a 1000-migration bundle's images
    quadratic in Python work. A prefix's index is its parent's (the first ``n`` entries).
    """

    def __init__(self, migrations: tuple[Migration, ...]) -> None:
        self.migrations = migrations
        self.whens = [m.when for m in migrations]
        self.tags = [m.tag for m in migrations]
        #: ``when`` never decreases along the journal (drizzle-kit's own order)
        self.ascending = all(a <= b for a, b in zip(self.whens, self.whens[1:], strict=False))
        #: (position, error) of the entries drizzle cannot read, in order
        self.errors = [(i, m.error) for i, m in enumerate(migrations) if m.error]
        #: each error text's first position, and each tag's
        self.error_at: dict[str, int] = {}
        for i, e in reversed(self.errors):
            self.error_at[str(e)] = i
        self.tag_at: dict[str, int] = {}
        for i, t in enumerate(self.tags):
            self.tag_at.setdefault(t, i)
        self._missing: tuple[tuple[str, ...], list[int], bool] | None = None
        self.snapshots = [m.snapshot for m in migrations if m.snapshot is not None]
        #: snapshots among the first k entries, for every k
        self.snapshots_upto = [0]
        for m in migrations:
            self.snapshots_upto.append(self.snapshots_upto[-1] + (m.snapshot is not None))

    def missing_upto(self, missing: tuple[str, ...], count: int) -> tuple[str, ...]:
        """The tags of ``missing`` (journal order) among the first ``count`` entries: a
        bisection, so that the prefixes of a bundle whose every ``.sql`` is missing do not
        cost the square of its length."""
        cached = self._missing
        if cached is None or cached[0] is not missing:
            positions = [self.tag_at.get(t, len(self.tags)) for t in missing]
            ordered = all(a <= b for a, b in pairwise(positions))
            cached = self._missing = (missing, positions, ordered)
        _, positions, ordered = cached
        if not ordered:
            return tuple(t for t, at in zip(missing, positions, strict=True) if at < count)
        return missing[: bisect.bisect_left(positions, count)]

    def covers(self, migrations: tuple[Migration, ...]) -> bool:
        """Whether ``migrations`` are this index's first entries (the very same objects)."""
        n = len(migrations)
        return n <= len(self.migrations) and self.migrations[:n] == migrations


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: migrations in journal array order plus integrity findings."""

    root: Path
    format: BundleFormat
    migrations: tuple[Migration, ...]
    problems: tuple[Problem, ...] = ()
    journal_path: Path | None = None
    migrations_js_path: Path | None = None
    #: drizzle-kit ``meta/NNNN_snapshot.json`` files (or v1 ``snapshot.json``), in order
    snapshot_paths: tuple[Path, ...] = ()
    #: keys present in migrations.js (``m0000`` ...), None when there is no migrations.js
    js_keys: tuple[str, ...] | None = None
    #: Missing-migration failures drizzle's readMigrationFiles would throw, journal order
    missing: tuple[str, ...] = field(default=())
    #: the first error drizzle's migrator (or the Worker build) would raise while reading this
    #: bundle, before touching the database; None when drizzle reads it fine
    drizzle_error: str | None = None
    #: journal ``version`` and ``dialect`` (None for v1)
    journal_version: str | None = None
    journal_dialect: str | None = None
    #: shared with the bundle this one is a prefix of (see :meth:`entry_index`)
    _index: EntryIndex | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.root.name

    def entry_index(self) -> EntryIndex:
        """The per-entry facts of :attr:`migrations` (built on first use, then shared)."""
        index = self._index
        if index is None or not index.covers(self.migrations):
            index = EntryIndex(self.migrations)
            object.__setattr__(self, "_index", index)
        return index

    @property
    def errors(self) -> tuple[Problem, ...]:
        """Problems with severity ``error``."""
        return tuple(p for p in self.problems if p.severity == "error")

    def problems_with(self, code: str) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.code == code)

    def migration(self, tag: str | int | Migration) -> Migration:
        """The migration with this tag (or with this tag's ``NNNN`` prefix, or idx)."""
        if isinstance(tag, Migration):
            tag = tag.tag
        elif isinstance(tag, int) and not isinstance(tag, bool):
            tag = str(tag)
        for m in self.migrations:
            if m.tag == tag:
                return m
        for m in self.migrations:
            if m.tag.split("_", 1)[0] == tag or str(m.idx) == tag:
                return m
        known = ", ".join(m.tag for m in self.migrations) or "(none)"
        raise BundleError(f"no migration {tag!r} in this bundle; known tags: {known}", self.root)

    def version_count(self, count: object) -> int:
        """``count`` checked as a version of this bundle: how many of its migrations are
        applied, an int in ``0..len(migrations)`` (None: all of them). Both backends check it
        here, so a bad one gets the same clear error on either (not Python slicing's answer)."""
        n = len(self.migrations)
        if count is None:
            return n
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(
                f"a version is a number of applied migrations, an int in 0..{n} (None: all), "
                f"not {type(count).__name__} {count!r}; do_at(tag) takes a migration's tag"
            )
        if not 0 <= count <= n:
            raise ValueError(f"version {count} out of range 0..{n} ({self.root}: {n} migrations)")
        return count

    def prefix(self, count: int) -> Bundle:
        """The bundle as it was with only its first ``count`` migrations."""
        kept = self.migrations[:count]
        index = self.entry_index()
        drizzle_error, missing = self._read_errors(len(kept))
        return Bundle(
            root=self.root,
            format=self.format,
            migrations=kept,
            problems=(),
            journal_path=self.journal_path,
            migrations_js_path=self.migrations_js_path,
            snapshot_paths=tuple(index.snapshots[: index.snapshots_upto[len(kept)]]),
            js_keys=self.js_keys,
            missing=missing,
            drizzle_error=drizzle_error,
            journal_version=self.journal_version,
            journal_dialect=self.journal_dialect,
            _index=index,
        )

    def _read_errors(self, count: int) -> tuple[str | None, tuple[str, ...]]:
        """``drizzle_error`` and ``missing`` of the first ``count`` migrations: the bundle's own
        error (not one of an entry's), else the first entry's error among them; and the missing
        migrations among them."""
        index = self.entry_index()
        mine = len(self.migrations)
        error = self.drizzle_error
        if error and index.error_at.get(error, mine) < mine:
            error = None  # an entry's own error, not the bundle's
        if not error and index.errors and index.errors[0][0] < count:
            error = index.errors[0][1]
        return error, (index.missing_upto(self.missing, count) if self.missing else ())

    def read_error(self, count: int) -> tuple[str, str] | None:
        """What ``migrate(do, self.prefix(count))`` throws while reading the bundle, before
        any SQL, as ``(kind, text)``: the bundle's error first, then the first missing
        migration; None when that prefix reads fine. Without building the prefix: a version
        after one that cannot be read fails the same way (the images skip building it)."""
        error, missing = self._read_errors(count)
        if error:
            return ("drizzle", str(error))
        return ("missing", missing[0]) if missing else None

    @property
    def fingerprint(self) -> str:
        """Changes whenever any migration text, order or timestamp changes."""
        h = hashlib.sha256()
        h.update(self.format.encode())
        for m in self.migrations:
            h.update(f"{m.idx}\0{m.tag}\0{m.when}\0{m.key}\0".encode("utf-8", "surrogatepass"))
            h.update(m.sha256.encode())
        for t in self.missing:
            h.update(f"missing\0{t}".encode("utf-8", "surrogatepass"))
        return h.hexdigest()


# --------------------------------------------------------------------------- file reading


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise BundleError(
                    f"{what} is {size / 1e6:.0f} MB, over the {MAX_FILE_BYTES // 1_000_000} MB "
                    "limit for bundle files; this is not a drizzle-kit file",
                    path,
                )
            data = fh.read(MAX_FILE_BYTES + 1)
    except BundleError:
        raise
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read {what}: {exc}", path) from exc
    if len(data) > MAX_FILE_BYTES:
        raise BundleError(f"{what} is over the {MAX_FILE_BYTES // 1_000_000} MB limit", path)
    return data


def _decode(data: bytes, path: Path, problems: list[Problem], migration: str | None) -> str:
    """UTF-8 text exactly as Node's ``Buffer.toString()`` gives it (no newline translation)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.append(
            _problem(
                "non-utf8",
                f"{path.name} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset "
                f"{exc.start}); drizzle reads it with U+FFFD replacement characters",
                path,
                line,
                migration,
            )
        )
        return data.decode("utf-8", "replace")


def _read_text(path: Path, what: str, problems: list[Problem], migration: str | None) -> str:
    return _decode(_read_bytes(path, what), path, problems, migration)


def skip_bom(text: str) -> str:
    """JSON text as esbuild reads it, which builds the Worker: a leading byte order mark is
    skipped (a space in its place keeps every line and offset)."""
    return " " + text[1:] if text.startswith("\ufeff") else text


def _json_text(text: str, path: Path, problems: list[Problem], migration: str | None) -> str:
    """:func:`skip_bom`, with the mark reported as a warning (drizzle-kit's JSON.parse rejects
    it)."""
    if not text.startswith("\ufeff"):
        return text
    problems.append(
        _problem(
            "byte-order-mark",
            f"{path.name} starts with a UTF-8 byte order mark, which drizzle-kit's JSON.parse "
            "rejects: the next `drizzle-kit generate` fails (the Worker itself builds)",
            path,
            1,
            migration,
        )
    )
    return skip_bom(text)


class _DirCache:
    """``is_file`` answered from one directory listing per folder (few syscalls per bundle)."""

    def __init__(self) -> None:
        self._dirs: dict[str, dict[str, bool]] = {}

    def listing(self, folder: Path) -> dict[str, bool]:
        key = str(folder)
        found = self._dirs.get(key)
        if found is None:
            found = {}
            try:
                with os.scandir(folder) as it:
                    for entry in it:
                        try:
                            found[entry.name] = entry.is_file()
                        except OSError:
                            found[entry.name] = False
            except OSError:
                pass
            self._dirs[key] = found
        return found

    def is_file(self, path: Path) -> bool:
        try:
            return self.listing(path.parent).get(path.name, False)
        except ValueError:
            return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- JS semantics


def js_pad_key(idx: int) -> str:
    """``"m" + idx.toString().padStart(4, "0")``."""
    return "m" + str(idx).rjust(4, "0")


_PARSE_INT = re.compile(r"\s*([+-]?)(\d+)")


def _js_parse_int(text: str) -> int | None:
    match = _PARSE_INT.match(text)
    if match is None:
        return None
    value = int(match.group(2))
    return -value if match.group(1) == "-" else value


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def v1_folder_millis(name: str) -> int | None:
    """drizzle 1.x ``formatToMillis(name.slice(0, 14))``; None where JS gives NaN."""
    head = name[:14]
    parts = [_js_parse_int(head[a:b]) for a, b in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12))]
    parts.append(_js_parse_int(head[12:14]))
    if any(p is None for p in parts):
        return None
    year, month, day, hour, minute, second = (int(p) for p in parts if p is not None)
    month -= 1
    if 0 <= year <= 99:
        year += 1900
    year += month // 12
    month %= 12
    days = _days_from_civil(year, month + 1, 1) + day - 1
    millis = days * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000
    if abs(millis) > 8.64e15:
        return None
    return millis


#: ICU root collation order of printable ASCII (measured with Node 20 ``localeCompare``)
_ICU_ASCII = (
    " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789"
    "aAbBcCdDeEfFgGhHiIjJkKlLmMnNoOpPqQrRsStTuUvVwWxXyYzZ"
)
_ICU_PRIMARY: dict[str, int] = {}
for _i, _ch in enumerate(_ICU_ASCII):
    _ICU_PRIMARY[_ch] = _ICU_PRIMARY.get(_ch.lower(), _i)


def js_locale_compare_key(
    name: str,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], str]:
    """Sort key approximating Node's ``a.localeCompare(b)`` (ICU root collation).

    Primary: punctuation < symbols < digits < letters, case-insensitive; secondary: accents;
    tertiary: lowercase before uppercase. Exact for printable ASCII names; other characters sort
    after ASCII letters by code point. Ties fall back to code-point order.
    """
    primary: list[int] = []
    secondary: list[int] = []
    tertiary: list[int] = []
    for ch in unicodedata.normalize("NFD", name):
        if unicodedata.combining(ch):
            if secondary:
                secondary[-1] += ord(ch)
            continue
        code = ord(ch)
        if code < 32 or code == 127:
            continue  # ICU ignores control characters
        weight = _ICU_PRIMARY.get(ch)
        if weight is None:
            weight = 1000 + ord(ch.lower())
        primary.append(weight)
        secondary.append(0)
        tertiary.append(1 if ch != ch.lower() else 0)
    return tuple(primary), tuple(secondary), tuple(tertiary), name


def _utf16_key(text: str) -> bytes:
    """JS default ``Array.prototype.sort`` order: UTF-16 code units."""
    return text.encode("utf-16-be", "surrogatepass")


# --------------------------------------------------------------------------- journal


@dataclass(frozen=True)
class _Entry:
    idx: int
    when: int
    tag: str
    breakpoints: bool
    version: str | None
    line: int | None
    when_line: int | None
    tag_line: int | None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_error_line(text: str, exc: json.JSONDecodeError) -> tuple[int, str]:
    return exc.lineno, f"{exc.msg} (line {exc.lineno}, column {exc.colno})"


_JSON_STRING_OR_ODD = re.compile(r'"(?:\\.|[^"\\])*"|(-?Infinity|NaN|\d{4301,})')


def _json_value_error(text: str, exc: ValueError | RecursionError) -> tuple[int | None, str]:
    """The line and words of an error ``json.loads`` gives without a position: a NaN or
    Infinity (JavaScript's, not JSON), or a number too long for Python to read."""
    for m in _JSON_STRING_OR_ODD.finditer(text):
        odd = m.group(1)
        if odd is None:
            continue  # inside a string
        line = text.count("\n", 0, m.start()) + 1
        if odd[-1].isdigit():
            return line, f"a number of {len(odd)} digits (line {line})"
        return line, f"{odd} is not valid JSON (line {line})"
    if isinstance(exc, RecursionError):
        return None, "nested too deeply"
    return None, str(exc)


_WS = re.compile(r"[ \t\n\r]*")


def _entry_spans(text: str) -> list[tuple[int, int]] | None:
    """Start/end offsets of each element of the top-level ``entries`` array (last key wins)."""
    decoder = json.JSONDecoder()
    try:
        pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
        if text[pos] != "{":
            return None
        pos += 1
        spans: list[tuple[int, int]] | None = None
        while True:
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            if text[pos] == "}":
                return spans
            key, pos = decoder.raw_decode(text, pos)
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            pos += 1  # ':'
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            if key == "entries" and text[pos] == "[":
                found: list[tuple[int, int]] = []
                pos += 1
                while True:
                    pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
                    if text[pos] == "]":
                        pos += 1
                        break
                    start = pos
                    _, pos = decoder.raw_decode(text, pos)
                    found.append((start, pos))
                    pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
                    if text[pos] == ",":
                        pos += 1
                spans = found
            else:
                _, pos = decoder.raw_decode(text, pos)
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            if text[pos] == ",":
                pos += 1
    except (ValueError, IndexError, RecursionError):
        return None


class _Lines:
    """Offset → 1-based line, by bisection over newline offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [m.end() for m in re.finditer("\n", text)]

    def at(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset) + 1

    def key(self, span: tuple[int, int] | None, key: str) -> int | None:
        if span is None:
            return None
        found = self.text.find(f'"{key}"', span[0], span[1])
        return self.at(found if found >= 0 else span[0])


def _read_journal(path: Path, problems: list[Problem]) -> tuple[list[_Entry], dict[str, Any]]:
    data = _read_bytes(path, "meta/_journal.json")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data.count(b"\n", 0, exc.start) + 1
        raise BundleError(
            f"meta/_journal.json is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); re-save it as UTF-8",
            path,
            bad_line,
        ) from exc
    text = _json_text(text, path, problems, None)
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        err_line, msg = _json_error_line(text, exc)
        raise BundleError(f"meta/_journal.json is not valid JSON: {msg}", path, err_line) from exc
    except (ValueError, RecursionError) as exc:
        odd_line, msg = _json_value_error(text, exc)
        raise BundleError(f"meta/_journal.json is not valid JSON: {msg}", path, odd_line) from exc
    if not isinstance(raw, dict):
        raise BundleError("meta/_journal.json is not a JSON object", path, 1)
    entries = raw.get("entries")
    if not isinstance(entries, list):
        raise BundleError(
            'meta/_journal.json has no "entries" array (drizzle reads journal.entries)', path, 1
        )
    spans = _entry_spans(text)
    if spans is not None and len(spans) != len(entries):
        spans = None
    lines = _Lines(text)
    out: list[_Entry] = []
    for i, item in enumerate(entries):
        span = spans[i] if spans is not None else None
        line = lines.at(span[0]) if span is not None else None
        where = f"journal entry #{i}"
        if not isinstance(item, dict):
            raise BundleError(f"{where} is not an object", path, line)
        idx = item.get("idx")
        if isinstance(idx, float) and idx.is_integer():
            idx = int(idx)
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise BundleError(
                f"{where} has no integer `idx` (drizzle derives the key m<idx> from it)",
                path,
                lines.key(span, "idx") or line,
            )
        tag = item.get("tag")
        if not isinstance(tag, str):
            raise BundleError(f"{where} has no string `tag`", path, line)
        when = item.get("when")
        if isinstance(when, float) and when.is_integer():
            when = int(when)
        if not isinstance(when, int) or isinstance(when, bool):
            raise BundleError(
                f"{where} ({tag}) has no integer `when` (milliseconds since the epoch)",
                path,
                lines.key(span, "when") or line,
                tag,
            )
        if abs(when) > 2**53:
            # JSON.parse reads the nearest double: drizzle compares and stores that number,
            # 9007199254740992 for 9007199254740993 (the exact one made every check see a
            # migration applied twice or never)
            when = int(float(when))
        bps = item.get("breakpoints", True)
        version = item.get("version")
        out.append(
            _Entry(
                idx=idx,
                when=when,
                tag=tag,
                breakpoints=bool(bps) if isinstance(bps, bool) else True,
                version=str(version) if isinstance(version, (str, int)) else None,
                line=line,
                when_line=lines.key(span, "when"),
                tag_line=lines.key(span, "tag"),
            )
        )
    return out, raw


# --------------------------------------------------------------------------- snapshots

_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]')
_COLON = re.compile(r"\s*:\s*")
_ID_KEY = re.compile(r'"(id|prevId|prevIds)"\s*:\s*')
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_STRING_ARRAY = re.compile(r'\[\s*((?:"[^"\\]*(?:\\.[^"\\]*)*"\s*,?\s*)*)\]')
_ID_KEYS = frozenset({'"id"', '"prevId"', '"prevIds"'})
_HEAD_KEYS = frozenset({'"version"', '"dialect"'})
_HEAD = 8192
_TAIL = 2048


def _id_value(text: str, key: str, pos: int) -> Any:
    if key == "prevIds":
        arr = _STRING_ARRAY.match(text, pos)
        if arr is None:
            return None
        return [json.loads(s.group()) for s in _STRING.finditer(arr.group(1))]
    s = _STRING.match(text, pos)
    return json.loads(s.group()) if s is not None else None


def _ids_in_head(text: str, stop: int) -> dict[str, Any]:
    """Top-level ``id``/``prevId``/``prevIds`` among the first ``stop`` characters."""
    found: dict[str, Any] = {}
    depth = 0
    for token in _TOKEN.finditer(text, 0, stop):
        tok = token.group()
        if tok in ("{", "["):
            depth += 1
        elif tok in ("}", "]"):
            depth -= 1
        elif depth == 1 and tok not in _ID_KEYS and tok not in _HEAD_KEYS:
            colon = _COLON.match(text, token.end())
            if colon is not None and (found or tok in ('"tables"', '"ddl"')):
                break  # past the identity keys: drizzle-kit puts them first or last
        elif depth == 1 and tok in _ID_KEYS:
            colon = _COLON.match(text, token.end())
            if colon is not None:
                value = _id_value(text, tok[1:-1], colon.end())
                if value is not None:
                    found[tok[1:-1]] = value
                    if "id" in found and ("prevId" in found or "prevIds" in found):
                        break
    return found


def _ids_in_tail(text: str, start: int) -> dict[str, Any]:
    """Top-level keys near the end (old snapshots write ``id``/``prevId`` last)."""
    last: dict[str, re.Match[str]] = {}
    for match in _ID_KEY.finditer(text, start):
        last[match.group(1)] = match
    found: dict[str, Any] = {}
    for key, match in last.items():
        depth = 0
        lowest = 0
        for token in _TOKEN.finditer(text, match.start()):
            tok = token.group()
            if tok in ("{", "["):
                depth += 1
            elif tok in ("}", "]"):
                depth -= 1
                lowest = min(lowest, depth)
        if lowest != -1:
            continue
        value = _id_value(text, key, match.end())
        if value is not None:
            found[key] = value
    return found


def _complete(found: dict[str, Any]) -> bool:
    return "id" in found and ("prevId" in found or "prevIds" in found)


def _quick_identity(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_FILE_BYTES:
                return None
            head = fh.read(_HEAD)
            tail = head
            if size > _HEAD:
                fh.seek(max(_HEAD, size - _TAIL))
                tail = fh.read()
    except OSError:
        return None
    if head.startswith(b"\xef\xbb\xbf"):  # the full read reports the byte order mark
        return None
    head_text = head.decode("utf-8", "replace")
    found = _ids_in_head(head_text, len(head_text))
    if _complete(found):
        return found
    tail_text = tail.decode("utf-8", "replace")
    found = {**_ids_in_tail(tail_text, 0), **found}
    return found if _complete(found) else None


def _snapshot_identity(
    path: Path, problems: list[Problem], *, full: bool, migration: str | None
) -> dict[str, Any] | None:
    """``id`` / ``prevId`` / ``prevIds`` of a snapshot, read from its head or tail when possible.

    drizzle-kit writes them either first (after ``version``/``dialect``) or last, so only the
    first and last few KB are read; anything unusual falls back to a full parse.
    """
    if not full:
        quick = _quick_identity(path)
        if quick is not None:
            return quick
    data = _read_bytes(path, path.name)
    text = _json_text(_decode(data, path, problems, migration), path, problems, migration)
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        line, msg = _json_error_line(text, exc)
        problems.append(
            _problem("invalid-json", f"{path.name} is not valid JSON: {msg}", path, line, migration)
        )
        return None
    except (ValueError, RecursionError) as exc:
        odd_line, msg = _json_value_error(text, exc)
        problems.append(
            _problem(
                "invalid-json",
                f"{path.name} is not valid JSON: {msg}",
                path,
                odd_line or 1,
                migration,
            )
        )
        return None
    if not isinstance(raw, dict):
        problems.append(
            _problem("invalid-json", f"{path.name} is not a JSON object", path, 1, migration)
        )
        return None
    return {k: raw[k] for k in ("id", "prevId", "prevIds") if k in raw}


def _check_chain_v0(
    snaps: list[tuple[str, Path, dict[str, Any] | None]], problems: list[Problem]
) -> None:
    """Linear chain in journal order: prevId = previous id; ids unique. Gaps are skipped."""
    seen: dict[str, Path] = {}
    prev_id: str | None = ORIGIN_SNAPSHOT_ID
    for tag, path, ident in snaps:
        if ident is None:
            prev_id = None
            continue
        sid = ident.get("id")
        prev = ident.get("prevId")
        if isinstance(sid, str):
            if sid in seen:
                problems.append(
                    _problem(
                        "snapshot-chain",
                        f"{path.name} has the same id as {seen[sid].name} ({sid}): a copied "
                        "snapshot",
                        path,
                        None,
                        tag,
                    )
                )
            else:
                seen[sid] = path
        if prev_id is not None and isinstance(prev, str) and prev != prev_id:
            problems.append(
                _problem(
                    "snapshot-chain",
                    f"{path.name} prevId={prev} but the previous snapshot's id is {prev_id}",
                    path,
                    None,
                    tag,
                )
            )
        prev_id = sid if isinstance(sid, str) else None


# --------------------------------------------------------------------------- locating


def _locate(path: Path) -> Path:
    """The bundle folder for ``path`` (the folder itself, or a file inside it)."""
    try:
        exists = path.exists()
        is_dir = path.is_dir()
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot access bundle path: {exc}", path) from exc
    if not exists:
        raise BundleError("no such file or folder (expected a drizzle-kit `out` folder)", path)
    if is_dir:
        if path.name == "meta" and (path / "_journal.json").is_file():
            return path.parent
        if (path / "migration.sql").is_file() and not (path / "meta").exists():
            return path.parent  # one v1 migration folder: the bundle is its parent
        return path
    name = path.name
    parent = path.parent
    if parent.name == "meta" and (name == "_journal.json" or name.endswith("_snapshot.json")):
        return parent.parent
    if name in ("migration.sql", "snapshot.json"):
        return parent.parent
    if name == "migrations.js" or name.endswith(".sql"):
        return parent
    raise BundleError(
        "not a bundle file: pass the drizzle-kit `out` folder, meta/_journal.json, "
        "migrations.js or a .sql file inside it",
        path,
    )


def _v1_folders(root: Path) -> list[Path]:
    try:
        children = list(root.iterdir())
    except OSError as exc:
        raise BundleError(f"cannot list the bundle folder: {exc}", root) from exc
    return [c for c in children if _is_file(c / "migration.sql")]


def _resolve_specifier(base: Path, source: str) -> Path | None:
    """A relative/absolute import specifier as a path (None for bare module names)."""
    if not source.startswith(("./", "../", "/")) and source not in (".", ".."):
        return None
    if "\0" in source:
        return None
    return Path(os.path.normpath(base / source))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- loader


def load_bundle(
    path: str | Path,
    *,
    full_snapshots: bool = False,
    check_snapshots: bool = True,
    module: Path | None = None,
) -> Bundle:
    """Load a drizzle-kit ``out`` folder (or a file inside it). See the module docstring.

    ``check_snapshots=False`` skips the snapshot checks (``Migration.snapshot`` is still set):
    about half the time of a large bundle, for callers that only need the migrations.
    ``full_snapshots=True`` parses every snapshot completely (slower; finds JSON damage anywhere
    in them); by default only their ``id``/``prevId`` are read. ``module``: the migrations
    module the Worker imports, when its import names the file (discovery knows); by default the
    one an import without an extension takes (a ``migrations.ts`` before ``migrations.js``).

    Raises :class:`BundleError` (file, line, what is wrong) when the folder cannot be loaded,
    raised from here: in a pytest report it points at the caller, not into this parser.
    """
    __tracebackhide__ = True
    try:
        return _load_bundle(
            path, full_snapshots=full_snapshots, check_snapshots=check_snapshots, module=module
        )
    except BundleError as exc:
        error = exc
    raise error.with_traceback(None) from None


def _load_bundle(
    path: str | Path, *, full_snapshots: bool, check_snapshots: bool, module: Path | None = None
) -> Bundle:
    root = Path(os.path.abspath(_locate(Path(path))))
    journal_path = root / "meta" / "_journal.json"
    js_path = root / "migrations.js"
    has_js = _is_file(js_path)
    if journal_path.exists():
        if not _is_file(journal_path):
            raise BundleError("meta/_journal.json is not a file", journal_path)
        mode = "full" if full_snapshots else "quick" if check_snapshots else "skip"
        chosen, parsed, skipped = _worker_module(root, module)
        folders = _v1_folders(root)
        if folders and chosen == js_path and parsed is None:
            # drizzle-kit v1 folders and a migrations.js that does not import the journal:
            # drizzle 1.x's durable migrator reads only that module, the journal is left over
            found: list[Problem] = []
            module_js = _parse_js(js_path, found)
            if module_js.journal_import is None and (module_js.entries or module_js.errors):
                found.append(
                    _problem(
                        "leftover-journal",
                        "meta/_journal.json is left over next to drizzle-kit v1 migration "
                        "folders; migrations.js does not import it, so the Worker (drizzle "
                        "1.x) never reads it: read as a v1 bundle",
                        journal_path,
                    )
                )
                return _load_v1(root, folders, js_path, module_js, found, mode)
        return _JournalLoader(root, journal_path, chosen, mode, parsed, skipped).run()
    folders = _v1_folders(root)
    if folders or has_js:
        mjs = None
        problems: list[Problem] = []
        if has_js:
            mjs = _parse_js(js_path, problems)
            if mjs.journal_import is not None and not folders:
                source = mjs.journal_import.source
                raise BundleError(
                    f"migrations.js imports {source!r} but meta/_journal.json does not exist "
                    "(deleted meta/ folder?); the Worker build fails. Restore meta/ from version "
                    "control or re-run `drizzle-kit generate`",
                    js_path,
                    mjs.journal_import.line,
                )
            if not folders and not mjs.entries and not mjs.errors:
                return _placeholder_bundle(root, js_path, mjs, problems)
        mode = "full" if full_snapshots else "quick" if check_snapshots else "skip"
        return _load_v1(root, folders, js_path if has_js else None, mjs, problems, mode)
    raise BundleError(
        "not a drizzle-kit migrations folder: no meta/_journal.json, no migrations.js and no "
        "<timestamp>_<name>/migration.sql folders",
        root,
    )


def _parse_js(js_path: Path, problems: list[Problem]) -> MigrationsJs:
    from .jsmodule import dialect_for, parse_migrations_js

    name = js_path.name
    text = _read_text(js_path, name, problems, None)
    mjs = parse_migrations_js(text, dialect=dialect_for(js_path))
    if mjs.errors:
        first = mjs.errors[0]
        more = f" (and {len(mjs.errors) - 1} more)" if len(mjs.errors) > 1 else ""
        problems.append(
            _problem(
                "invalid-js",
                f"{name} does not parse: {first}{more}; the Worker bundle will not build",
                js_path,
                first.line,
            )
        )
    for line, message in mjs.unsupported:
        problems.append(
            _problem("unsupported-js", f"{name}: {message}; not checked", js_path, line)
        )
    return mjs


def _worker_module(
    root: Path, imported: Path | None = None
) -> tuple[Path | None, MigrationsJs | None, dict[str, str | JsSyntaxError]]:
    """The migrations module a Worker's ``import migrations from './migrations'`` runs, as far
    as this loader can read it: its path, its parse when it is a hand-written module (None for
    ``migrations.js``, parsed by the loader), and why each module esbuild would take first is
    not read (its syntax error when it does not parse).

    esbuild (wrangler's bundler) tries ``.tsx``, ``.ts``, ``.jsx`` before ``.js``
    (:data:`~pytest_dosqlite.jsmodule.RESOLVE_EXTENSIONS`), so a hand-written
    ``migrations.ts`` next to drizzle-kit's ``migrations.js`` is the one the DO runs. It is read
    when it has drizzle-kit's shape (a default export ``{journal, migrations}`` whose members
    import this folder's files or hold the SQL inline); otherwise ``migrations.js`` (or the
    journal alone) is, and ``unread-migrations-module`` says so.
    """
    from .jsmodule import dialect_for, parse_migrations_js

    skipped: dict[str, str | JsSyntaxError] = {}
    js = root / "migrations.js"
    if imported is not None and imported.name == "migrations.js" and _is_file(js):
        # the Worker names migrations.js itself: a migrations.ts next to it is not built
        return js, None, skipped
    for name in _SHADOWING_MODULES:
        path = root / name
        if not _is_file(path):
            continue
        try:
            text = _read_bytes(path, name).decode("utf-8")
        except UnicodeDecodeError as exc:
            skipped[name] = f"it is not UTF-8 ({exc.reason})"
            continue
        mjs = parse_migrations_js(text, dialect=dialect_for(path))
        why = _unreadable_shape(root, mjs)
        if why is None:
            return path, mjs, skipped
        # a syntax error is kept as such: the build fails on it (see _check_module_siblings)
        skipped[name] = mjs.errors[0] if mjs.errors else why
    return (js if _is_file(js) else None), None, skipped


#: problems that compare what migrations.js maps with the journal and the folder: not reported
#: when it does not parse (its build fails on invalid-js, which says so)
_FROM_THE_MODULE = frozenset(
    {"tag-mismatch", "unbound-key", "orphan-key", "orphan-sql", "inline-sql-differs"}
)


def _unreadable_shape(root: Path, mjs: MigrationsJs) -> str | None:
    """Why a hand-written migrations module is not read as drizzle-kit's, or None."""
    if mjs.errors:
        return f"it does not parse ({mjs.errors[0]})"
    if mjs.unsupported:
        return mjs.unsupported[0][1]
    if not mjs.has_default_export or not mjs.migrations_found or mjs.journal_import is None:
        return "it is not drizzle-kit's `export default { journal, migrations }`"
    for entry in mjs.entries:
        if entry.kind == "string":
            continue  # inline SQL: what the DO runs, read as it is
        if entry.kind != "import" or entry.source is None:
            return f"`{entry.key}` is neither an import of a .sql file nor inline SQL"
        target = _resolve_specifier(root, entry.source)
        if target is None or not _is_file(target):
            return f"`{entry.key}` imports {entry.source!r}, which is not a file here"
    return None


_TYPEERROR_JOURNAL = "TypeError: Cannot read properties of undefined (reading 'entries')"
_NO_MIGRATIONS = "TypeError: Cannot read properties of undefined (reading '{key}')"


def _placeholder_bundle(
    root: Path, js_path: Path, mjs: MigrationsJs, problems: list[Problem]
) -> Bundle:
    if mjs.placeholder:
        problems.append(
            _problem(
                "placeholder-migrations-js",
                "migrations.js is `export default {}` and there is no meta/_journal.json: no "
                "migration was ever generated; migrate() fails with a TypeError",
                js_path,
                mjs.module.default_export_line,
            )
        )
    else:
        problems.append(
            _problem(
                "journal-not-imported",
                "migrations.js has no journal and no migrations, and there is no "
                "meta/_journal.json; migrate() fails with a TypeError",
                js_path,
                mjs.module.default_export_line,
            )
        )
    return Bundle(
        root=root,
        format="durable-sqlite",
        migrations=(),
        problems=tuple(problems),
        migrations_js_path=js_path,
        js_keys=mjs.keys,
        drizzle_error=_TYPEERROR_JOURNAL,
    )


class _Text(NamedTuple):
    """Where a migration's SQL came from, and what drizzle would throw for it."""

    sql: str
    path: Path | None
    error: str | None = None


class _JournalLoader:
    """Reads a v0 bundle (journal + .sql, optionally migrations.js)."""

    def __init__(
        self,
        root: Path,
        journal_path: Path,
        js_path: Path | None,
        snapshot_mode: str,
        parsed: MigrationsJs | None = None,
        skipped: dict[str, str | JsSyntaxError] | None = None,
    ) -> None:
        self.root = root
        self.journal_path = journal_path
        self.js_path = js_path
        #: ``js_path`` already parsed (a hand-written module :func:`_worker_module` read)
        self.parsed = parsed
        #: migrations modules esbuild takes before ``js_path`` that are not read, and why
        self.skipped = dict(skipped or {})
        self.snapshot_mode = snapshot_mode
        self.problems: list[Problem] = []
        self.used_files: list[Path] = []
        self.fs = _DirCache()

    def run(self) -> Bundle:
        entries, raw = _read_journal(self.journal_path, self.problems)
        version = raw.get("version")
        dialect = raw.get("dialect")
        if isinstance(dialect, str) and dialect not in ("sqlite", "turso"):
            self.problems.append(
                _problem(
                    "journal-dialect",
                    f"journal dialect is {dialect!r}, not 'sqlite'",
                    self.journal_path,
                    2,
                )
            )
        if _v1_folders(self.root):
            self.problems.append(
                _problem(
                    "mixed-layout",
                    "this folder has meta/_journal.json and also drizzle-kit v1 "
                    "<timestamp>_<name>/migration.sql folders; read as a journal bundle "
                    "(drizzle 0.x); drizzle 1.x would refuse it",
                    self.journal_path,
                )
            )
        mjs = self.parsed
        if mjs is None and self.js_path is not None:
            mjs = _parse_js(self.js_path, self.problems)
        unresolved: str | None = None
        bundle_error = self._check_js_frame(mjs) if mjs is not None else None
        if bundle_error == _NO_MIGRATIONS:
            first_key = js_pad_key(entries[0].idx) if entries else None
            bundle_error = _NO_MIGRATIONS.format(key=first_key) if first_key else None
        snapshot_problems: list[Problem] = []
        snapshots = self._check_snapshots(entries, snapshot_problems)
        migrations = [
            self._migration(e, mjs, snap) for e, snap in zip(entries, snapshots, strict=True)
        ]
        self._check_entries(entries)
        if mjs is not None and mjs.errors:
            # what the module maps is read from a broken parse: a misread string or object
            # made up tag-mismatch, unbound-key and orphan-sql problems next to invalid-js
            self.problems = [p for p in self.problems if p.code not in _FROM_THE_MODULE]
        elif mjs is not None:
            unresolved = self._check_js_orphans(mjs, entries, migrations)
        if mjs is None or not mjs.errors:
            self._check_sql_files(mjs, migrations)
        self._check_module_siblings()
        if self.snapshot_mode != "skip":
            self.problems.extend(snapshot_problems)
        missing = tuple(m.tag for m in migrations if m.error and m.error.startswith("Missing "))
        first = next((m.error for m in migrations if m.error), None)
        fmt: BundleFormat = "durable-sqlite" if mjs is not None else "journal"
        problems = self.problems
        module = self.js_path
        if module is not None and module.name != "migrations.js":
            # a hand-written migrations.ts read in drizzle-kit's stead: its own problems name
            # the file they are about (those about the journal still mean drizzle-kit's .js)
            note = (
                f" {module.name} is hand-written: `drizzle-kit generate` rewrites migrations.js "
                f"only, so edit {module.name} (or import migrations.js instead)."
            )
            problems = [
                replace(
                    p,
                    message=p.message.replace("migrations.js", module.name),
                    fix=p.fix + note if p.fix and "migrations.js" in p.fix else p.fix,
                )
                if p.path == module
                else p
                for p in problems
            ]
        return Bundle(
            root=self.root,
            format=fmt,
            migrations=tuple(migrations),
            problems=tuple(problems),
            journal_path=self.journal_path,
            migrations_js_path=self.js_path,
            snapshot_paths=tuple(m.snapshot for m in migrations if m.snapshot is not None),
            js_keys=mjs.keys if mjs is not None else None,
            missing=missing,
            # an import of a file that is not there stops the Worker's build, whatever it is for
            drizzle_error=bundle_error or unresolved or first,
            journal_version=str(version) if isinstance(version, (str, int)) else None,
            journal_dialect=dialect if isinstance(dialect, str) else None,
        )

    # migrations.js structure ---------------------------------------------------------------

    def _check_js_frame(self, mjs: MigrationsJs) -> str | None:
        """Problems with the default export and journal import; the bundle-level error."""
        js = self.js_path
        assert js is not None
        if mjs.errors:
            return f"migrations.js does not parse (line {mjs.errors[0].line}): the build fails"
        if mjs.placeholder:
            self.problems.append(
                _problem(
                    "placeholder-migrations-js",
                    "migrations.js is the `export default {}` placeholder although the journal "
                    "has entries: migrate() fails with a TypeError and nothing is migrated",
                    js,
                    mjs.module.default_export_line,
                )
            )
            return _TYPEERROR_JOURNAL
        if not mjs.has_default_export:
            if mjs.module.default_export is not None:
                return None  # not an object literal: already reported as unsupported-js
            self.problems.append(
                _problem(
                    "journal-not-imported",
                    "migrations.js has no `export default`: migrate() gets undefined",
                    js,
                )
            )
            return _TYPEERROR_JOURNAL
        error: str | None = None
        imp = mjs.journal_import
        prop = mjs.journal_property
        if imp is None:
            self.problems.append(
                _problem(
                    "journal-not-imported",
                    "migrations.js does not import ./meta/_journal.json",
                    js,
                    mjs.module.default_export_line,
                )
            )
        else:
            target = _resolve_specifier(js.parent, imp.source)
            if target is None or not _same_file(target, self.journal_path):
                self.problems.append(
                    _problem(
                        "journal-not-imported",
                        f"migrations.js imports the journal {imp.source!r}, not this folder's "
                        "./meta/_journal.json: the DO runs that journal's entries",
                        js,
                        imp.line,
                    )
                )
        if prop is None:
            self.problems.append(
                _problem(
                    "journal-not-imported",
                    "the default export of migrations.js has no `journal` property",
                    js,
                    mjs.module.default_export_line,
                )
            )
            error = _TYPEERROR_JOURNAL
        elif imp is not None and (prop.value.kind != "identifier" or prop.value.name != imp.local):
            resolved = mjs.module.resolve(prop.value)
            if resolved is None or resolved.kind != "identifier" or resolved.name != imp.local:
                self.problems.append(
                    _problem(
                        "journal-not-imported",
                        f"`journal` in the default export is `{prop.value.text}`, not the "
                        f"imported `{imp.local}`",
                        js,
                        prop.line,
                    )
                )
        if not mjs.migrations_found and not any(p.code == "unsupported-js" for p in self.problems):
            self.problems.append(
                _problem(
                    "missing-key",
                    "the default export of migrations.js has no `migrations` object: every "
                    "journal entry is missing",
                    js,
                    mjs.module.default_export_line,
                )
            )
            if error is None:
                error = _NO_MIGRATIONS
        return error

    # one journal entry -----------------------------------------------------------------------

    def _expected_sql(self, tag: str) -> Path | None:
        if "\0" in tag:
            return None
        # drizzle builds `${folder}/${tag}.sql` by string concatenation
        return Path(f"{self.root}/{tag}.sql")

    def _read_sql(self, path: Path, tag: str) -> str:
        self.used_files.append(path)
        text = _read_text(path, f"{path.name}", self.problems, tag)
        nul = text.find("\0")
        if nul >= 0:
            line = text.count("\n", 0, nul) + 1
            column = nul - (text.rfind("\n", 0, nul) + 1) + 1
            self.problems.append(
                _problem(
                    "nul-byte",
                    f"{path.name} has a NUL byte at line {line}, column {column}: SQLite stops "
                    "reading the SQL there, so the rest of the file never runs",
                    path,
                    line,
                    tag,
                )
            )
        return text

    def _migration(self, e: _Entry, mjs: MigrationsJs | None, snapshot: Path | None) -> Migration:
        key = js_pad_key(e.idx)
        expected = self._expected_sql(e.tag)
        if mjs is None:
            text = self._journal_text(e, expected)
        else:
            text = self._durable_text(e, key, mjs, expected)
        return Migration(
            idx=e.idx,
            tag=e.tag,
            when=e.when,
            key=key,
            sql=text.sql,
            path=text.path,
            breakpoints=e.breakpoints,
            version=e.version,
            error=text.error,
            line=e.line,
            snapshot=snapshot,
        )

    def _journal_text(self, e: _Entry, expected: Path | None) -> _Text:
        if expected is not None and self.fs.is_file(expected):
            sql = self._read_sql(expected, e.tag)
            if sql == "":
                self.problems.append(
                    _problem(
                        "empty-sql", f"{expected.name} is empty: nothing to run", expected, 1, e.tag
                    )
                )
            return _Text(sql, expected)
        self.problems.append(
            _problem(
                "missing-sql",
                f"journal entry {e.tag} has no {e.tag}.sql; drizzle's migrator throws "
                f"`No file ... found` and wrangler silently skips it",
                self.journal_path,
                e.tag_line or e.line,
                e.tag,
            )
        )
        return _Text("", None, f"No file {self.root}/{e.tag}.sql found in {self.root} folder")

    def _fallback_text(self, tag: str, expected: Path | None, error: str | None = None) -> _Text:
        """The ``<tag>.sql`` text when the key gives none (so lint can still see it)."""
        if expected is not None and self.fs.is_file(expected):
            return _Text(self._read_sql(expected, tag), expected, error)
        return _Text("", None, error)

    def _durable_text(self, e: _Entry, key: str, mjs: MigrationsJs, expected: Path | None) -> _Text:
        js = self.js_path
        assert js is not None
        missing = f"Missing migration: {e.tag}"
        if not mjs.migrations_found:
            return self._fallback_text(e.tag, expected, missing)
        entry = mjs.entry(key)
        if entry is None:
            self.problems.append(
                _problem(
                    "missing-key",
                    f"journal entry {e.tag} (idx {e.idx}) has no `{key}` in the migrations "
                    f"object: drizzle throws `{missing}` before running anything",
                    js,
                    mjs.migrations_line,
                    e.tag,
                )
            )
            return self._fallback_text(e.tag, expected, missing)
        if entry.kind == "import" and entry.source is not None:
            target = _resolve_specifier(js.parent, entry.source)
            line = entry.import_line or entry.line
            if target is None:
                self.problems.append(
                    _problem(
                        "unsupported-js",
                        f"`{key}` imports the bare module {entry.source!r}; not checked",
                        js,
                        line,
                        e.tag,
                    )
                )
                return self._fallback_text(e.tag, expected)
            if not self.fs.is_file(target):
                own = ""
                if expected is not None and self.fs.is_file(expected):
                    # the file is there: the import is what is wrong, not a lost file
                    own = (
                        f"; the entry's own file {expected.name} exists: correct the import "
                        f"to './{expected.name}'"
                    )
                self.problems.append(
                    _problem(
                        "missing-sql",
                        f"`{key}` imports {entry.source!r}, which does not exist: the "
                        f"Worker bundle fails to build{own}",
                        js,
                        line,
                        e.tag,
                    )
                )
                return _Text("", None, f'Could not resolve "{entry.source}"')
            if expected is None or not _same_file(target, expected):
                self.problems.append(
                    _problem(
                        "tag-mismatch",
                        f"`{key}` (journal entry {e.tag}) imports {entry.source!r}, not "
                        f"'./{e.tag}.sql': the DO runs that file for this entry",
                        js,
                        line,
                        e.tag,
                    )
                )
            result = _Text(self._read_sql(target, e.tag), target)
        elif entry.kind == "string":
            result = _Text(entry.sql or "", js)
            if expected is not None and self.fs.is_file(expected):
                # the .sql drizzle-kit wrote for it: not an orphan, but it must say the same
                differs = _inline_differs(
                    entry.sql or "",
                    self._read_sql(expected, e.tag),
                    key,
                    expected.name,
                    js,
                    entry.sql_line or entry.line,
                    e.tag,
                )
                if differs is not None:
                    self.problems.append(differs)
        elif entry.kind == "unbound":
            self.problems.append(
                _problem(
                    "unbound-key",
                    f"`{key}: {entry.text}` but nothing imports `{entry.binding}`: loading "
                    f"migrations.js throws ReferenceError",
                    js,
                    entry.line,
                    e.tag,
                )
            )
            error = f"ReferenceError: {entry.binding} is not defined"
            return self._fallback_text(e.tag, expected, error)
        else:
            self.problems.append(
                _problem(
                    "unsupported-js",
                    f"`{key}` is `{entry.text}`, which cannot be read as data; not checked",
                    js,
                    entry.line,
                    e.tag,
                )
            )
            return self._fallback_text(e.tag, expected)
        if result.sql == "":
            self.problems.append(
                _problem(
                    "empty-sql",
                    f"the SQL of {e.tag} is empty: the durable-sqlite migrator treats it as "
                    f"missing and throws `{missing}`",
                    result.path,
                    1,
                    e.tag,
                )
            )
            return _Text("", result.path, missing)
        return result

    # cross-entry checks ----------------------------------------------------------------------

    def _check_entries(self, entries: list[_Entry]) -> None:
        jp = self.journal_path
        seen_tags: dict[str, int] = {}
        seen_idx: dict[int, str] = {}
        high: _Entry | None = None
        for pos, e in enumerate(entries):
            if e.tag in seen_tags:
                self.problems.append(
                    _problem(
                        "duplicate-tag",
                        f"tag {e.tag} appears twice in the journal (entries #{seen_tags[e.tag]} "
                        f"and #{pos}): drizzle-kit writes migrations.js from the journal, "
                        f"and then both entries run {e.tag}.sql",
                        jp,
                        e.tag_line or e.line,
                        e.tag,
                    )
                )
            else:
                seen_tags[e.tag] = pos
            if e.idx in seen_idx:
                self.problems.append(
                    _problem(
                        "idx-sequence",
                        f"idx {e.idx} is used by {seen_idx[e.idx]} and {e.tag}: both entries "
                        f"run the SQL of key {js_pad_key(e.idx)}",
                        jp,
                        e.line,
                        e.tag,
                        severity="error",
                    )
                )
            elif e.idx != pos:
                self.problems.append(
                    _problem(
                        "idx-sequence",
                        f"entry #{pos} ({e.tag}) has idx {e.idx}; drizzle runs array order, "
                        "so the journal was edited by hand",
                        jp,
                        e.line,
                        e.tag,
                    )
                )
            seen_idx.setdefault(e.idx, e.tag)
            prefix = re.match(r"(\d+)_", e.tag)
            if prefix is None or int(prefix.group(1)) != e.idx:
                self.problems.append(
                    _problem(
                        "tag-mismatch",
                        f"tag {e.tag} does not start with its idx {e.idx:04d}_",
                        jp,
                        e.tag_line or e.line,
                        e.tag,
                        severity="warning",
                    )
                )
            if high is not None and e.when <= high.when:
                relation = "equal to" if e.when == high.when else "older than"
                self.problems.append(
                    _problem(
                        "when-not-increasing",
                        f"{e.tag} has when={e.when}, {relation} {high.tag} (when={high.when}): "
                        f"every DO that already applied {high.tag} skips {e.tag} forever, "
                        "silently; fresh DOs run it",
                        jp,
                        e.when_line or e.line,
                        e.tag,
                    )
                )
            if high is None or e.when > high.when:
                high = e
        if high is not None and high.when > _now_ms() + _FUTURE_SLACK_MS:
            moment = when_moment(high.when)
            date = f" ({moment:%Y-%m-%d %H:%M} UTC)" if moment else ""
            value = str(high.when) if high.when < 10**16 else f"{float(high.when):.3g}"
            self.problems.append(
                _problem(
                    "when-in-future",
                    f"{high.tag} has when={value}{date}, later than "
                    "now: `drizzle-kit generate` stamps the next migration with the current "
                    f"time, which is smaller, so every DO that applied {high.tag} will skip it "
                    "forever, silently",
                    jp,
                    high.when_line or high.line,
                    high.tag,
                )
            )

    def _check_js_orphans(
        self, mjs: MigrationsJs, entries: list[_Entry], migrations: list[Migration]
    ) -> str | None:
        """Keys and imports no journal entry uses; returns the build error of the first such
        import whose file does not exist (esbuild resolves every import)."""
        js = self.js_path
        assert js is not None
        unresolved: str | None = None
        journal_keys = {js_pad_key(e.idx) for e in entries}
        if not entries and mjs.keys:
            self.problems.append(
                _problem(
                    "empty-journal",
                    f"meta/_journal.json lists no migration, and migrations.js has "
                    f"{len(mjs.keys)} ({', '.join(mjs.keys[:3])}"
                    f"{', ...' if len(mjs.keys) > 3 else ''}): drizzle applies none of them, "
                    "on any DO",
                    self.journal_path,
                    1,
                )
            )
        counts: dict[str, int] = {}
        for entry in mjs.entries:
            counts[entry.key] = counts.get(entry.key, 0) + 1
            if counts[entry.key] == 2:
                self.problems.append(
                    _problem(
                        "duplicate-key",
                        f"`{entry.key}` appears more than once in the migrations object; the "
                        "last one wins",
                        js,
                        entry.line,
                    )
                )
        for key in mjs.keys:
            if key in journal_keys:
                continue
            orphan = mjs.entry(key)
            assert orphan is not None
            what = f" ({orphan.source})" if orphan.source else ""
            self.problems.append(
                _problem(
                    "orphan-key",
                    f"`{key}`{what} is in migrations.js but no journal entry has idx "
                    f"{key[1:] if key.startswith('m') else key}: it never runs",
                    js,
                    orphan.line,
                )
            )
        bound = {e.binding for e in mjs.entries if e.binding}
        # the imports of journal entries are checked with their entries; esbuild resolves the
        # others too (a key of a deleted migration left behind), and fails the build as well
        checked = {e.binding for e in mjs.entries if e.binding and e.key in journal_keys}
        for imp in mjs.imports:
            if not imp.source.endswith(".sql"):
                continue
            target = _resolve_specifier(js.parent, imp.source)
            if target is not None and not self.fs.is_file(target) and imp.local not in checked:
                unresolved = unresolved or f'Could not resolve "{imp.source}"'
                self.problems.append(
                    _problem(
                        "missing-sql",
                        f"migrations.js imports {imp.source!r}, which does not exist: the Worker "
                        "bundle fails to build",
                        js,
                        imp.line,
                    )
                )
            elif imp.local not in bound and imp.kind in ("default", "require"):
                self.problems.append(
                    _problem(
                        "orphan-key",
                        f"migrations.js imports {imp.source!r} as `{imp.local}` but does not "
                        "list it in the migrations object: it never runs",
                        js,
                        imp.line,
                    )
                )
            if target is not None and self.fs.is_file(target):
                self.used_files.append(target)
        return unresolved

    def _check_module_siblings(self) -> None:
        """A migrations.tsx/.ts/.jsx that an extensionless import resolves before (or instead
        of) the module this loader read, but that it cannot read (see :func:`_worker_module`)."""
        first = next(iter(self.skipped.items()), None)
        if first is None:
            return
        name, why = first
        if not isinstance(why, str):
            # esbuild resolves the extensionless import to it and stops on the syntax error
            self.problems.append(
                _problem(
                    "invalid-js",
                    f"{name} does not parse: {why}; an extensionless import (`from "
                    f"'./migrations'`) bundles {name} before migrations.js (esbuild tries it "
                    "first), so the Worker bundle will not build. Fix it, or delete it if "
                    "nothing imports it",
                    self.root / name,
                    why.line,
                )
            )
            return
        if self.js_path is not None:
            read = self.js_path.name
            message = (
                f"{name} and {read} are both here: an extensionless import (`from "
                f"'./migrations'`) bundles {name} (esbuild tries it first), but "
                f"pytest-dosqlite checks {read}: {name} is not read because {why}"
            )
        else:
            message = (
                f"{name} is not read because {why}: the bundle is checked from "
                f"meta/_journal.json and the .sql files, not from what {name} imports"
            )
        self.problems.append(_problem("unread-migrations-module", message, self.root / name))

    def _check_sql_files(self, mjs: MigrationsJs | None, migrations: list[Migration]) -> None:
        names = sorted(
            name
            for name, is_file in self.fs.listing(self.root).items()
            if is_file and name.endswith(".sql")
        )
        root = os.path.normcase(str(self.root))
        used = {
            os.path.basename(k)
            for k in (os.path.normcase(os.path.normpath(p)) for p in self.used_files)
            if os.path.dirname(k) == root
        }
        by_prefix: dict[str, list[str]] = {}
        for name in names:
            match = re.match(r"(\d+)_", name)
            if match:
                by_prefix.setdefault(match.group(1), []).append(name)
        for prefix, group in sorted(by_prefix.items()):
            if len(group) > 1:
                unused = [n for n in group if os.path.normcase(n) not in used]
                self.problems.append(
                    _problem(
                        "duplicate-prefix",
                        f"{len(group)} .sql files share the prefix {prefix}_: {', '.join(group)}",
                        self.root / (unused[0] if unused else group[1]),
                    )
                )
        tags = {os.path.normcase(m.tag + ".sql") for m in migrations}
        for name in names:
            if os.path.normcase(name) in used:
                continue
            if os.path.normcase(name) in tags:
                # its journal entry's key imports another file (tag-mismatch, missing-sql say
                # so): "not in meta/_journal.json", and the fix "delete it", were false
                continue
            self.problems.append(
                _problem(
                    "orphan-sql",
                    f"{name} is not in meta/_journal.json"
                    + (" nor imported by migrations.js" if mjs is not None else "")
                    + ": drizzle never runs it (wrangler d1 migrations apply would)",
                    self.root / name,
                )
            )

    def _check_snapshots(self, entries: list[_Entry], problems: list[Problem]) -> list[Path | None]:
        """The snapshot of each entry (None when missing); chain problems go to ``problems``."""
        meta = self.journal_path.parent
        on_disk = {
            name: meta / name
            for name, is_file in self.fs.listing(meta).items()
            if is_file and name.endswith("_snapshot.json")
        }
        claimed: set[str] = set()
        chain: list[tuple[str, Path, dict[str, Any] | None]] = []
        out: list[Path | None] = []
        for e in entries:
            name = f"{e.tag.split('_', 1)[0]}_snapshot.json"
            path = on_disk.get(name)
            if path is None:
                problems.append(
                    _problem(
                        "missing-snapshot",
                        f"journal entry {e.tag} has no meta/{name}",
                        self.journal_path,
                        e.tag_line or e.line,
                        e.tag,
                    )
                )
                chain.append((e.tag, meta / name, None))
                out.append(None)
                continue
            if name in claimed:
                # a tag the journal repeats (duplicate-tag): its snapshot is the earlier
                # entry's, not compared with itself; the chain starts again after it
                chain.append((e.tag, path, None))
                out.append(None)
                continue
            claimed.add(name)
            if self.snapshot_mode == "skip":
                out.append(path)
                continue
            ident = _snapshot_identity(
                path, problems, full=self.snapshot_mode == "full", migration=e.tag
            )
            chain.append((e.tag, path, ident))
            out.append(path)
        for name in sorted(set(on_disk) - claimed):
            problems.append(
                _problem(
                    "orphan-snapshot", f"meta/{name} belongs to no journal entry", on_disk[name]
                )
            )
        _check_chain_v0(chain, problems)
        return out


# --------------------------------------------------------------------------- v1


def _load_v1(
    root: Path,
    folders: list[Path],
    js_path: Path | None,
    mjs: MigrationsJs | None,
    problems: list[Problem],
    snapshot_mode: str,
) -> Bundle:
    migrations: list[Migration] = []
    bundle_error: str | None = None
    used: set[str] = set()
    if mjs is not None and js_path is not None:
        if mjs.errors:
            bundle_error = (
                f"migrations.js does not parse (line {mjs.errors[0].line}): the build fails"
            )
        elif not mjs.migrations_found:
            if not any(p.code == "unsupported-js" for p in problems):
                problems.append(
                    _problem(
                        "missing-key",
                        "the default export of migrations.js has no `migrations` object",
                        js_path,
                        mjs.module.default_export_line,
                    )
                )
            bundle_error = "TypeError: Cannot convert undefined or null to object"
        keys = sorted(mjs.keys, key=_utf16_key)
        for pos, key in enumerate(keys):
            entry = mjs.entry(key)
            assert entry is not None
            base = _v1_migration(root, pos, key, problems)
            if entry.kind == "import" and entry.source is not None:
                target = _resolve_specifier(js_path.parent, entry.source)
                if target is None or not _is_file(target):
                    problems.append(
                        _problem(
                            "missing-sql",
                            f"`{key}` imports {entry.source!r}, which does not exist: the Worker "
                            "bundle fails to build",
                            js_path,
                            entry.import_line or entry.line,
                            key,
                        )
                    )
                    migrations.append(replace(base, error=f'Could not resolve "{entry.source}"'))
                    continue
                used.add(os.path.normcase(os.path.abspath(target.parent)))
                sql = _read_text(target, target.name, problems, key)
                base = replace(base, sql=sql, path=target, snapshot=_v1_snapshot(target.parent))
            elif entry.kind == "string":
                base = replace(base, sql=entry.sql or "", path=js_path)
                own = root / key / "migration.sql"
                if _is_file(own):
                    used.add(os.path.normcase(os.path.abspath(own.parent)))
                    text = _read_text(own, f"{key}/migration.sql", problems, key)
                    differs = _inline_differs(
                        entry.sql or "",
                        text,
                        key,
                        f"{key}/migration.sql",
                        js_path,
                        entry.sql_line or entry.line,
                        key,
                    )
                    if differs is not None:
                        problems.append(differs)
            else:
                unbound = entry.kind == "unbound"
                problems.append(
                    _problem(
                        "unbound-key" if unbound else "unsupported-js",
                        f"`{key}` is `{entry.text}`: not an import of a .sql file",
                        js_path,
                        entry.line,
                        key,
                    )
                )
                error = f"ReferenceError: {entry.binding} is not defined" if unbound else None
                migrations.append(replace(base, error=error))
                continue
            if base.sql == "":
                problems.append(
                    _problem(
                        "empty-sql",
                        f"the SQL of {key} is empty: the durable-sqlite migrator treats it as "
                        f"missing and throws `Missing migration: {key}`",
                        base.path,
                        1,
                        key,
                    )
                )
                base = replace(base, error=f"Missing migration: {key}")
            migrations.append(base)
        for folder in sorted(folders, key=lambda p: p.name):
            if os.path.normcase(os.path.abspath(folder)) not in used:
                problems.append(
                    _problem(
                        "orphan-sql",
                        f"{folder.name}/migration.sql is not imported by migrations.js: the DO "
                        "never runs it (re-run `drizzle-kit generate` to rewrite migrations.js)",
                        folder / "migration.sql",
                        fix=PROBLEM_CODES["orphan-key"].fix,
                    )
                )
    else:
        ordered = sorted(folders, key=lambda p: js_locale_compare_key(p.name))
        for pos, folder in enumerate(ordered):
            base = _v1_migration(root, pos, folder.name, problems)
            sql_path = folder / "migration.sql"
            sql = _read_text(sql_path, f"{folder.name}/migration.sql", problems, folder.name)
            if sql == "":
                problems.append(
                    _problem(
                        "empty-sql",
                        f"{folder.name}/migration.sql is empty: nothing to run",
                        sql_path,
                        1,
                        folder.name,
                    )
                )
            migrations.append(replace(base, sql=sql, path=sql_path, snapshot=_v1_snapshot(folder)))
    if snapshot_mode != "skip":
        _check_v1_snapshots(migrations, problems, snapshot_mode == "full")
    missing = tuple(m.tag for m in migrations if m.error and m.error.startswith("Missing "))
    first = next((m.error for m in migrations if m.error), None)
    return Bundle(
        root=root,
        format="v1",
        migrations=tuple(migrations),
        problems=tuple(problems),
        migrations_js_path=js_path,
        snapshot_paths=tuple(m.snapshot for m in migrations if m.snapshot is not None),
        js_keys=mjs.keys if mjs is not None else None,
        missing=missing,
        drizzle_error=bundle_error or first,
    )


def _v1_snapshot(folder: Path) -> Path | None:
    path = folder / "snapshot.json"
    return path if _is_file(path) else None


def _v1_migration(root: Path, pos: int, name: str, problems: list[Problem]) -> Migration:
    millis = v1_folder_millis(name)
    if millis is None or not re.match(r"\d{14}", name):
        problems.append(
            _problem(
                "v1-bad-name",
                f"{name!r} does not start with a 14-digit UTC timestamp (YYYYMMDDHHMMSS)"
                + ("; drizzle computes NaN" if millis is None else ""),
                root / name,
                None,
                name,
            )
        )
    return Migration(
        idx=pos,
        tag=name,
        when=millis if millis is not None else 0,
        key=name,
        sql="",
        name=name,
        when_valid=millis is not None,
    )


def _check_v1_snapshots(
    migrations: Iterable[Migration],
    problems: list[Problem],
    full: bool,
) -> None:
    ids: dict[str, Path] = {}
    parents: list[tuple[Path, str, list[str]]] = []
    for m in migrations:
        if m.path is None or m.path.name != "migration.sql":
            continue
        snap = m.snapshot
        if snap is None:
            problems.append(
                _problem(
                    "missing-snapshot",
                    f"{m.tag}/ has no snapshot.json",
                    m.path.parent,
                    None,
                    m.tag,
                )
            )
            continue
        ident = _snapshot_identity(snap, problems, full=full, migration=m.tag)
        if ident is None:
            continue
        sid = ident.get("id")
        prev = ident.get("prevIds")
        if prev is None and isinstance(ident.get("prevId"), str):
            prev = [ident["prevId"]]
        if isinstance(sid, str):
            if sid in ids:
                problems.append(
                    _problem(
                        "snapshot-chain",
                        f"{m.tag}/snapshot.json has the same id as "
                        f"{ids[sid].parent.name}/snapshot.json ({sid})",
                        snap,
                        None,
                        m.tag,
                    )
                )
            else:
                ids[sid] = snap
        if isinstance(prev, list):
            parents.append((snap, m.tag, [p for p in prev if isinstance(p, str)]))
    referenced: set[str] = set()
    for snap, tag, prevs in parents:
        for p in prevs:
            referenced.add(p)
            if p != ORIGIN_SNAPSHOT_ID and p not in ids:
                problems.append(
                    _problem(
                        "snapshot-chain",
                        f"{tag}/snapshot.json has prevIds entry {p}, which is no snapshot's id",
                        snap,
                        None,
                        tag,
                    )
                )
    leaves = [sid for sid in ids if sid not in referenced]
    if len(leaves) > 1:
        names = ", ".join(ids[s].parent.name for s in leaves)
        problems.append(
            _problem(
                "snapshot-chain",
                f"the snapshots have {len(leaves)} heads ({names}): two branches generated "
                "migrations independently",
                ids[leaves[-1]],
                severity="warning",
            )
        )
