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
inexact: the schema changed, a pragma was set, a transaction is open, ANALYZE ran,
the database file grew or shrank (``sql.databaseSize`` would differ), the image has triggers,
virtual tables or statistics and the DO wrote anything, or the DO wrote a row of a table whose
primary key admits NULL (the session extension cannot record those rows; drizzle's own
``__drizzle_migrations`` is one, so a DO that ran ``migrate()`` again is not recycled).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import Any

import apsw

from .storage import _NONCE, DurableObjectStorage

__all__ = ["ConnectionPool"]

#: connections kept in all (the least recently parked go first; each holds a copy of its image)
PARK_LIMIT = 16
#: a bigger undo log costs more to apply than a new copy of the image
UNDO_LIMIT = 256 * 1024
#: a connection's session is renewed after this many loans (its record of touched rows grows)
SESSION_LOANS = 64

#: the schema cookie and the file's page counts (``sql.databaseSize``)
_PAGES = "SELECT page_count FROM pragma_page_count"
_STATE = (
    "SELECT s.schema_version, p.page_count, f.freelist_count FROM pragma_schema_version AS s, "
    "pragma_page_count AS p, pragma_freelist_count AS f"
)
_NO_ACTION = {"NO ACTION", "RESTRICT"}
_PK_DESC = re.compile(r"PRIMARY\s+KEY\s+DESC", re.I)


@dataclass
class _Baseline:
    """What every DO of one image starts with, read once from the first connection."""

    #: what :data:`_STATE` reads on a DO of the image
    state: tuple[int, ...]
    #: rows of ``sqlite_sequence`` (None when the image has no AUTOINCREMENT table)
    sequence: list[tuple[Any, ...]] | None
    #: inverting the session's changeset restores the rows exactly (no trigger fires on the
    #: undo, no virtual table or statistics table escapes the session)
    exact: bool
    #: tables whose rows the session cannot record (a primary key that admits NULL, like
    #: drizzle's own ``__drizzle_migrations.id SERIAL``): a DO that wrote one is not recycled
    unrecordable: frozenset[str]
    #: rowid tables recorded by another key (``text().primaryKey()``, composite keys): undoing
    #: a delete, a key change or a REPLACE of an existing key puts the row back under a new
    #: rowid, so a DO that did one of those is not recycled (inserts and other updates undo
    #: exactly)
    rekeyed: frozenset[str]
    #: a table for the statement that resets ``changes()`` (None: the schema has no table)
    any_table: str | None
    #: tables a foreign key with an ON DELETE/UPDATE action points at (lower case): undoing a
    #: change there needs foreign keys off, or the action would fire again
    action_parents: frozenset[str]


class _Line:
    """One recycled connection: its session and what it reports as ``total_changes()``.

    The session stays attached across loans: it keeps the original values of every row it ever
    saw change, and since every loan ends with the rows restored, its changeset is always
    exactly the current loan's changes (and SQLite reads each table's layout once, not once per
    loan).
    """

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self.session: apsw.Session | None = None
        self.loans = 0
        self.offset = 0  # total_changes() of the connection when it was last restored
        self.counting = False  # total_changes() is overridden
        self.total_at_loan = 0
        self.watch: frozenset[str] = frozenset()
        self.unrecorded = False
        self.watch_changes: Collection[str] = ()
        #: rows written to rekeyed tables this loan: table -> [inserts, deletes] (the update
        #: hook's count; a REPLACE's own delete is not reported, its insert is)
        self.keyed: dict[str, list[int]] = {}

    def open_session(self) -> apsw.Session:
        if self.session is None or self.loans >= SESSION_LOANS:
            self.close_session()
            self.session = apsw.Session(self.conn, "main")
            self.session.config(apsw.SQLITE_SESSION_OBJCONFIG_ROWID, 1)
            self.session.attach()
            self.loans = 0
        self.loans += 1
        return self.session

    def close_session(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def on_row(self, op: int, db: str, table: str, rowid: int) -> None:
        if table in self.watch:
            self.unrecorded = True
        elif table in self.watch_changes:
            counts = self.keyed.setdefault(table, [0, 0])
            if op == apsw.SQLITE_INSERT:
                counts[0] += 1
            elif op == apsw.SQLITE_DELETE:
                counts[1] += 1

    def total_changes(self, *args: Any) -> int:
        return int(self.conn.total_changes()) - self.offset

    def close(self) -> None:
        self.close_session()
        self.conn.close()


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
        self._idle: deque[tuple[Hashable, _Line]] = deque()
        #: DOs that reused a parked connection / connections closed instead of parked
        self.reused = 0
        self.discarded = 0

    def lend(self, key: Hashable, image: bytes) -> DurableObjectStorage:
        line = None
        with self._lock:
            for i in range(len(self._idle) - 1, -1, -1):
                if self._idle[i][0] == key:
                    line = self._idle[i][1]
                    del self._idle[i]
                    self.reused += 1
                    break
        if line is None:
            do = DurableObjectStorage(image=image)
            do._lender = self
            line = _Line(do._conn)
            if key not in self._baselines:
                self._baseline(key, do)
        else:
            do = DurableObjectStorage._adopt(line.conn, self)
        line.open_session()
        line.total_at_loan = int(line.conn.total_changes())
        line.unrecorded = False
        base = self._baselines[key]
        line.watch = base.unrecordable
        line.watch_changes = base.rekeyed
        line.keyed = {}
        if line.watch or base.rekeyed:
            line.conn.set_update_hook(line.on_row)
        # kept on the DO itself: a DO dropped without close() takes its connection with it
        do._loan = (key, line)
        return do

    def forget(self, do: DurableObjectStorage) -> None:
        entry: tuple[Hashable, _Line] | None = do._loan
        do._loan = None
        if entry is not None:
            entry[1].close_session()

    def take_back(self, do: DurableObjectStorage) -> bool:
        entry: tuple[Hashable, _Line] | None = do._loan
        do._loan = None
        if entry is None:
            return False
        key, line = entry
        conn = line.conn
        if line.watch:
            conn.set_update_hook(None)
        kept = False
        if do._conn is conn:
            authorizer, tracer = conn.authorizer, conn.exec_trace
            conn.authorizer = None  # our own statements: no DO rules, no Python callbacks
            conn.exec_trace = None
            try:
                kept = self._restore(key, do, line)
            except apsw.Error:
                kept = False
            if not kept:
                conn.authorizer, conn.exec_trace = authorizer, tracer
        if not kept:
            self.discarded += 1
            line.close_session()
            return False
        with self._lock:
            self._idle.append((key, line))
            evicted = self._idle.popleft()[1] if len(self._idle) > PARK_LIMIT else None
        if evicted is not None:
            evicted.close()
        return True

    # ------------------------------------------------------------------ the undo
    def _baseline(self, key: Hashable, do: DurableObjectStorage) -> None:
        """Read the image's facts on a DO that has not run anything yet."""
        conn = do._conn
        do._trusted = True
        try:
            master = _run(conn, "SELECT type, name, sql FROM sqlite_master").fetchall()
            tables = {
                str(name): bool(wr)
                for name, wr in _run(
                    conn,
                    "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' "
                    "AND type = 'table'",
                ).fetchall()
            }
            exact = not any(
                kind == "trigger"
                or name == "sqlite_stat1"
                or (kind == "table" and str(sql or "").upper().startswith("CREATE VIRTUAL"))
                for kind, name, sql in master
            )
            recording = {
                str(name): _recording(conn, str(name), tables.get(str(name), False), sql)
                for kind, name, sql in master
                if kind == "table" and not str(name).startswith("sqlite_")
            }
            unrecordable = frozenset(n for n, how in recording.items() if how == "none")
            rekeyed = frozenset(n for n, how in recording.items() if how == "by-key")
            sequence = None
            if "sqlite_sequence" in tables:
                sequence = _run(conn, "SELECT name, seq FROM sqlite_sequence").fetchall()
            parents = _run(
                conn,
                'SELECT DISTINCT f."table", f.on_delete, f.on_update FROM sqlite_master AS m '
                "JOIN pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table'",
            ).fetchall()
            baseline = _Baseline(
                state=_ints(conn, _STATE),
                sequence=sequence,
                exact=exact,
                unrecordable=unrecordable,
                rekeyed=rekeyed,
                any_table=next((n for n in tables if not n.startswith("sqlite_")), None),
                action_parents=frozenset(
                    str(t).lower()
                    for t, on_delete, on_update in parents
                    if {str(on_delete).upper(), str(on_update).upper()} - _NO_ACTION
                ),
            )
        finally:
            do._trusted = False
        with self._lock:
            self._baselines[key] = baseline

    def _restore(self, key: Hashable, do: DurableObjectStorage, line: _Line) -> bool:
        conn = line.conn
        if do.changed_connection or do._event_depth or do._sp_depth or not conn.get_autocommit():
            return False
        base = self._baselines.get(key)
        if base is None or line.session is None:
            return False
        changed = int(conn.total_changes()) != line.total_at_loan
        if changed:
            if not base.exact or line.unrecorded:
                return False
            changes = line.session.changeset()
            if len(changes) > UNDO_LIMIT:
                return False
            if line.keyed and not _undo_keeps_rowids(line.keyed, changes):
                return False
            # pages never go back to the free list without VACUUM: a grown file cannot be
            # restored, so do not pay for the undo
            if _ints(conn, _PAGES)[0] > base.state[1]:
                return False
            if changes:
                line.session.enabled = False  # the undo is not a change to record
                try:
                    _undo(conn, changes, base.action_parents)
                finally:
                    line.session.enabled = True
            if base.sequence is not None:
                now = _run(conn, "SELECT name, seq FROM sqlite_sequence").fetchall()
                if now != base.sequence:
                    _run(conn, "DELETE FROM sqlite_sequence")
                    _run_many(conn, "INSERT INTO sqlite_sequence VALUES (?, ?)", base.sequence)
        if _ints(conn, _STATE) != base.state:
            return False
        # a failed multi-row INSERT changes no row but keeps its last_insert_rowid()
        conn.set_last_insert_rowid(0)
        if changed:
            if base.any_table is not None:  # a statement that changes no row: changes() is 0
                _run(conn, f'DELETE FROM "{base.any_table.replace(chr(34), chr(34) * 2)}" WHERE 0')
            if not line.counting:
                conn.create_scalar_function("total_changes", line.total_changes, 0)
                line.counting = True
            line.offset = int(conn.total_changes())
        return True


def _undo(conn: apsw.Connection, changes: bytes, action_parents: frozenset[str]) -> None:
    """Apply the inverse of ``changes`` (conflicts abort: the undo is exact or nothing)."""
    if action_parents and any(
        c.name.lower() in action_parents for c in apsw.Changeset.iter(changes)
    ):
        # foreign keys off (not SQLITE_CHANGESETAPPLY_FKNOACTION, which makes SQLite read the
        # whole schema again): undoing a delete must not cascade a second time
        _run(conn, "PRAGMA foreign_keys = OFF")
        try:
            apsw.Changeset.apply(changes, conn, flags=apsw.SQLITE_CHANGESETAPPLY_INVERT)
        finally:
            _run(conn, "PRAGMA foreign_keys = ON")
    else:
        apsw.Changeset.apply(changes, conn, flags=apsw.SQLITE_CHANGESETAPPLY_INVERT)


def _run(conn: apsw.Connection, sql: str, *args: Any) -> apsw.Cursor:
    """Run one of the pool's statements. Each carries the storage's nonce: a DO's identical
    text must never reuse our cached statement, which the DO's authorizer never saw."""
    return conn.execute(f"{sql} /*{_NONCE}*/", *args)


def _run_many(conn: apsw.Connection, sql: str, rows: Any) -> None:
    conn.executemany(f"{sql} /*{_NONCE}*/", rows)


def _ints(conn: apsw.Connection, sql: str) -> tuple[int, ...]:
    """The first row of ``sql``, as integers."""
    row: Any = _run(conn, sql).fetchall()[0]
    return tuple(int(v) for v in row)


def _undo_keeps_rowids(keyed: dict[str, list[int]], changes: bytes) -> bool:
    """Whether undoing ``changes`` gives every row of the rekeyed tables its rowid back.

    The session records such rows by key: a delete (a key change is recorded as one, with an
    insert) is undone by an insert under a new rowid, and so is a REPLACE of an existing key,
    which the hook reports as an insert that the changeset does not hold."""
    if any(deletes for _, deletes in keyed.values()):
        return False
    inserts = dict.fromkeys(keyed, 0)
    for change in apsw.Changeset.iter(changes):
        if change.name in inserts:
            if change.op == "DELETE":
                return False
            if change.op == "INSERT":
                inserts[change.name] += 1
    return all(inserts[t] == counts[0] for t, counts in keyed.items())


def _recording(conn: apsw.Connection, table: str, without_rowid: bool, sql: object) -> str:
    """How the session extension records the rows of ``table``, and so how exactly the
    inverse changeset restores them: ``"exact"`` (keyed by the rowid: no declared key, an
    INTEGER PRIMARY KEY alias; or a WITHOUT ROWID table), ``"by-key"`` (a rowid table with
    another NOT NULL key, e.g. ``text().primaryKey()``: an undone delete or key change comes
    back under a new rowid, and the next test would scan the rows in another order) or
    ``"none"`` (a key that admits NULL, like drizzle's ``__drizzle_migrations.id SERIAL``: such
    rows are not recorded)."""
    quoted = str(table).replace("'", "''")
    cols = _run(conn, f"SELECT pk, \"notnull\", type FROM pragma_table_info('{quoted}')").fetchall()
    keys = [(bool(nn), str(ty or "").upper()) for pk, nn, ty in cols if pk]
    if not keys or without_rowid:
        return "exact"
    # a lone INTEGER PRIMARY KEY is the rowid, never NULL (except the DESC quirk)
    if len(keys) == 1 and keys[0][1] == "INTEGER" and _PK_DESC.search(str(sql or "")) is None:
        return "exact"
    return "by-key" if all(nn for nn, _ in keys) else "none"
