"""A drizzle-kit migration bundle, read exactly as drizzle's migrator reads it.

The loader never executes ``migrations.js``: it parses it as data. Integrity findings are
collected in ``Bundle.problems`` instead of being raised, so one bad entry does not hide the
others; only a bundle that cannot be read at all raises :class:`BundleError`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import BundleError

__all__ = [
    "BREAKPOINT",
    "Bundle",
    "BundleFormat",
    "Migration",
    "Problem",
    "load_bundle",
]

#: drizzle's split marker; the split is a plain text split, strings and comments included
BREAKPOINT = "--> statement-breakpoint"

#: ``durable-sqlite``: journal + migrations.js (what a DO imports);
#: ``journal``: journal + .sql files without migrations.js (D1, libSQL, better-sqlite3);
#: ``v1``: drizzle-kit v1 folders ``<timestamp>_<name>/migration.sql`` without a journal.
BundleFormat = Literal["durable-sqlite", "journal", "v1"]


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

    @property
    def chunks(self) -> tuple[str, ...]:
        """Exactly drizzle's ``sql.split("--> statement-breakpoint")``, untrimmed."""
        return tuple(self.sql.split(BREAKPOINT))

    @property
    def sha256(self) -> str:
        """sha256 of the file text (what drizzle's generic migrator would hash)."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    def chunk_line(self, chunk: int) -> int:
        """1-based line in the file where chunk ``chunk`` starts."""
        offset = 0
        for i, text in enumerate(self.chunks):
            if i == chunk:
                break
            offset += len(text) + len(BREAKPOINT)
        return self.sql.count("\n", 0, offset) + 1

    def line_of(self, chunk: int, offset_in_chunk: int) -> int:
        """1-based file line of a character offset inside a chunk."""
        chunks = self.chunks
        start = sum(len(c) + len(BREAKPOINT) for c in chunks[:chunk])
        return self.sql.count("\n", 0, start + offset_in_chunk) + 1


@dataclass(frozen=True)
class Problem:
    """An integrity finding with a stable ``code`` (see docs/checks/bundle_integrity.md)."""

    code: str
    message: str
    path: Path | None = None
    line: int | None = None
    migration: str | None = None
    #: how to fix it, in a Drizzle project
    fix: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}{':' + str(self.line) if self.line else ''}: "
        return f"{where}[{self.code}] {self.message}"


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

    @property
    def name(self) -> str:
        return self.root.name

    def migration(self, tag: str) -> Migration:
        """The migration with this tag (or with this tag's ``NNNN`` prefix, or idx)."""
        for m in self.migrations:
            if m.tag == tag:
                return m
        for m in self.migrations:
            if m.tag.split("_", 1)[0] == tag or str(m.idx) == tag:
                return m
        known = ", ".join(m.tag for m in self.migrations) or "(none)"
        raise BundleError(f"no migration {tag!r} in this bundle; known tags: {known}", self.root)

    def prefix(self, count: int) -> Bundle:
        """The bundle as it was with only its first ``count`` migrations."""
        return Bundle(
            root=self.root,
            format=self.format,
            migrations=self.migrations[:count],
            problems=(),
            journal_path=self.journal_path,
            migrations_js_path=self.migrations_js_path,
            snapshot_paths=self.snapshot_paths[:count],
            js_keys=self.js_keys,
            missing=tuple(t for t in self.missing if t in {m.tag for m in self.migrations[:count]}),
        )

    @property
    def fingerprint(self) -> str:
        """Changes whenever any migration text, order or timestamp changes."""
        h = hashlib.sha256()
        h.update(self.format.encode())
        for m in self.migrations:
            h.update(f"{m.idx}\0{m.tag}\0{m.when}\0{m.key}\0".encode())
            h.update(m.sha256.encode())
        for t in self.missing:
            h.update(f"missing\0{t}".encode())
        return h.hexdigest()


def load_bundle(path: str | Path) -> Bundle:
    """Load a drizzle-kit ``out`` folder (or a file inside it). See module docstring."""
    raise NotImplementedError  # implemented by the loader work
