"""Recycled connections: a fresh DO copied from an image without reading its schema again.

Why: a new SQLite connection parses the whole schema on its first statement. On a real schema
(karakeep: 130 tables and indexes) that is nine tenths of the cost of a fresh DO copied from an
image, and the ``migrated_do`` fixture pays it in every test. A DO handed back unchanged, or
whose row changes can be undone exactly, serves the next test instead.

While a lent DO is in use, SQLite's session extension records the original values of every row
it changes (foreign-key actions and triggers included). When the DO is closed, the changes are
undone by applying the inverted changeset (with foreign-key actions off, so undoing a delete
does not cascade again), ``sqlite_sequence`` is put back, and the connection-level counters a
query can read (``changes()``, ``last_insert_rowid()``, ``total_changes()``) are reset to what
a new connection reports. The connection is then parked for the next DO of the same image.

It is closed instead, and the next DO is a new copy of the image, whenever the undo could be
inexact: the schema changed, a pragma was left changed, a transaction is open, ANALYZE ran,
the database file grew or shrank (``sql.databaseSize`` would differ), the image has triggers,
virtual tables or statistics and the DO wrote anything, or the DO wrote a row of a table whose
primary key admits NULL (the session extension cannot record those rows; drizzle's own
``__drizzle_migrations`` is one, so a DO that ran ``migrate()`` again is not recycled).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import apsw

from .storage import DurableObjectStorage

__all__ = ["ConnectionPool"]

#: connections kept in all (the least recently parked go first; each holds a copy of its image)
PARK_LIMIT = 16
#: a bigger undo log costs more to apply than a new copy of the image
UNDO_LIMIT = 256 * 1024

#: the connection state a DO starts with (foreign keys on; every other pragma at its default)
_PRAGMAS = (
    "SELECT fk.foreign_keys, d.defer_foreign_keys, i.ignore_check_constraints, "
    "l.legacy_alter_table, r.recursive_triggers, u.reverse_unordered_selects, 'a' LIKE 'A' "
    "FROM pragma_foreign_keys AS fk, pragma_defer_foreign_keys AS d, "
    "pragma_ignore_check_constraints AS i, pragma_legacy_alter_table AS l, "
    "pragma_recursive_triggers AS r, pragma_reverse_unordered_selects AS u"
)
_DEFAULT_PRAGMAS = (1, 0, 0, 0, 0, 0, 1)
_FILE_STATE = (
    "SELECT s.schema_version, p.page_count, f.freelist_count FROM pragma_schema_version AS s, "
    "pragma_page_count AS p, pragma_freelist_count AS f"
)
_PK_DESC = re.compile(r"PRIMARY\s+KEY\s+DESC", re.I)


@dataclass
class _Baseline:
    """What every DO of one image starts with, read once from the first connection."""

    schema_version: int
    page_count: int
    freelist_count: int
    #: rows of ``sqlite_sequence`` (None when the image has no AUTOINCREMENT table)
    sequence: list[tuple[Any, ...]] | None
    #: inverting the session's changeset restores the rows exactly (no trigger fires on the
    #: undo, no virtual table or statistics table escapes the session)
    exact: bool
    #: tables whose rows the session cannot record (a primary key that admits NULL, like
    #: drizzle's own ``__drizzle_migrations.id SERIAL``): a DO that wrote one is not recycled
    unrecordable: frozenset[str]
    #: a table for the statement that resets ``changes()`` (None: the schema has no table)
    any_table: str | None


@dataclass
class _Loan:
    conn: apsw.Connection
    session: apsw.Session
    total_changes: int
    watch: frozenset[str] = frozenset()
    #: a row of an unrecordable table changed
    unrecorded: bool = False

    def on_row(self, op: int, db: str, table: str, rowid: int) -> None:
        if table in self.watch:
            self.unrecorded = True


class _Counters:
    """``total_changes()`` as a new connection would report it after a recycle."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self.offset = 0

    def total_changes(self, *args: Any) -> int:
        return int(self.conn.total_changes()) - self.offset


class ConnectionPool:
    """Lends DOs of database images and takes their connections back when they are closed.

    Thread-safe. ``lend(key, image)``: a DO whose database equals ``image`` (a parked connection
    when one is available, else a new copy); ``key`` names the image (equal keys, equal
    images). Closing the DO gives its connection back (see the module docstring for when it is
    kept).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._baselines: dict[Hashable, _Baseline] = {}
        self._idle: deque[tuple[Hashable, apsw.Connection]] = deque()
        self._loans: dict[int, tuple[Hashable, _Loan]] = {}
        self._counters: dict[int, _Counters] = {}
        #: DOs that reused a parked connection / connections closed instead of parked
        self.reused = 0
        self.discarded = 0

    def lend(self, key: Hashable, image: bytes) -> DurableObjectStorage:
        conn = None
        with self._lock:
            for i in range(len(self._idle) - 1, -1, -1):
                if self._idle[i][0] == key:
                    conn = self._idle[i][1]
                    del self._idle[i]
                    self.reused += 1
                    break
        if conn is None:
            do = DurableObjectStorage(image=image)
            conn = do._conn
            do._lender = self
            if key not in self._baselines:
                self._baseline(key, do)
        else:
            do = DurableObjectStorage._adopt(conn, self)
        session = apsw.Session(conn, "main")
        session.config(apsw.SQLITE_SESSION_OBJCONFIG_ROWID, 1)
        session.attach()
        loan = _Loan(conn, session, int(conn.total_changes()))
        base = self._baselines.get(key)
        if base is not None and base.unrecordable:
            loan.watch = base.unrecordable
            conn.set_update_hook(loan.on_row)
        with self._lock:
            self._loans[id(do)] = (key, loan)
        return do

    def forget(self, do: DurableObjectStorage) -> None:
        with self._lock:
            entry = self._loans.pop(id(do), None)
        if entry is not None:
            entry[1].session.close()
            self._counters.pop(id(entry[1].conn), None)

    def take_back(self, do: DurableObjectStorage) -> bool:
        with self._lock:
            entry = self._loans.pop(id(do), None)
        if entry is None:
            return False
        key, loan = entry
        conn = loan.conn
        try:
            kept = do._conn is conn and self._restore(key, do, loan)
        except apsw.Error:
            kept = False
        finally:
            loan.session.close()
            if loan.watch:
                conn.set_update_hook(None)
            do._trusted = False
        if not kept:
            self.discarded += 1
            self._counters.pop(id(conn), None)
            return False
        conn.authorizer = None
        conn.exec_trace = None
        with self._lock:
            self._idle.append((key, conn))
            evicted = self._idle.popleft()[1] if len(self._idle) > PARK_LIMIT else None
        if evicted is not None:
            self._counters.pop(id(evicted), None)
            evicted.close()
        return True

    # ------------------------------------------------------------------ the undo
    def _baseline(self, key: Hashable, do: DurableObjectStorage) -> None:
        """Read the image's facts on a DO that has not run anything yet."""
        conn = do._conn
        do._trusted = True
        try:
            master = conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
            tables = {
                str(name): bool(wr)
                for name, wr in conn.execute(
                    "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' "
                    "AND type = 'table'"
                ).fetchall()
            }
            exact = not any(
                kind == "trigger"
                or name == "sqlite_stat1"
                or (kind == "table" and str(sql or "").upper().startswith("CREATE VIRTUAL"))
                for kind, name, sql in master
            )
            unrecordable = frozenset(
                str(name)
                for kind, name, sql in master
                if kind == "table"
                and not str(name).startswith("sqlite_")
                and not _rows_recordable(conn, str(name), tables.get(str(name), False), sql)
            )
            sequence = None
            if "sqlite_sequence" in tables:
                sequence = conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
            state = _ints(conn, _FILE_STATE)
            baseline = _Baseline(
                schema_version=state[0],
                page_count=state[1],
                freelist_count=state[2],
                sequence=sequence,
                exact=exact,
                unrecordable=unrecordable,
                any_table=next((n for n in tables if not n.startswith("sqlite_")), None),
            )
        finally:
            do._trusted = False
        with self._lock:
            self._baselines[key] = baseline

    def _restore(self, key: Hashable, do: DurableObjectStorage, loan: _Loan) -> bool:
        conn = loan.conn
        if do.wrote_stats or do._event_depth or do._sp_depth or not conn.get_autocommit():
            return False
        do._trusted = True  # our statements pass the DO's authorizer and tracer
        base = self._baselines.get(key)
        if base is None:
            return False
        changed = int(conn.total_changes()) != loan.total_changes
        if changed:
            if not base.exact or loan.unrecorded:
                return False
            changes = loan.session.changeset()
            if len(changes) > UNDO_LIMIT:
                return False
            if changes:
                # foreign keys off (not SQLITE_CHANGESETAPPLY_FKNOACTION, which makes SQLite read
                # the whole schema again): undoing a delete must not cascade a second time
                conn.execute("PRAGMA foreign_keys = OFF")
                try:
                    apsw.Changeset.apply(changes, conn, flags=apsw.SQLITE_CHANGESETAPPLY_INVERT)
                finally:
                    conn.execute("PRAGMA foreign_keys = ON")
            if base.sequence is not None:
                now = conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
                if now != base.sequence:
                    conn.execute("DELETE FROM sqlite_sequence")
                    conn.executemany("INSERT INTO sqlite_sequence VALUES (?, ?)", base.sequence)
        if _ints(conn, _FILE_STATE) != (base.schema_version, base.page_count, base.freelist_count):
            return False
        if _ints(conn, _PRAGMAS) != _DEFAULT_PRAGMAS:
            return False
        if changed:
            if base.any_table is not None:  # a statement that changes no row: changes() is 0
                conn.execute(
                    f'DELETE FROM "{base.any_table.replace(chr(34), chr(34) * 2)}" WHERE 0'
                )
            conn.set_last_insert_rowid(0)
            counters = self._counters.get(id(conn))
            if counters is None:
                counters = self._counters[id(conn)] = _Counters(conn)
                conn.create_scalar_function("total_changes", counters.total_changes, 0)
            counters.offset = int(conn.total_changes())
        return True


def _ints(conn: apsw.Connection, sql: str) -> tuple[int, ...]:
    """The first row of ``sql``, as integers."""
    row: Any = conn.execute(sql).fetchall()[0]
    return tuple(int(v) for v in row)


def _rows_recordable(conn: apsw.Connection, table: str, without_rowid: bool, sql: object) -> bool:
    """The session extension records every row of ``table``: it has a rowid (no declared key,
    or an INTEGER PRIMARY KEY alias) or key columns that cannot hold NULL."""
    quoted = str(table).replace("'", "''")
    cols = conn.execute(
        f"SELECT pk, \"notnull\", type FROM pragma_table_info('{quoted}')"
    ).fetchall()
    keys = [(bool(nn), str(ty or "").upper()) for pk, nn, ty in cols if pk]
    if not keys or without_rowid or all(nn for nn, _ in keys):
        return True
    # a lone INTEGER PRIMARY KEY is the rowid, never NULL (except the DESC quirk)
    return len(keys) == 1 and keys[0][1] == "INTEGER" and _PK_DESC.search(str(sql or "")) is None
