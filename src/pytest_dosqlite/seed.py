"""Realistic rows for every table of a live Durable Object schema.

Why: the migration bugs that hurt on a DO are data-dependent. A drizzle-kit table recreation
cascades into child tables, wipes ``SET NULL`` links or copies NULLs into a new NOT NULL column
only when there are rows; an empty test database migrates fine. So the checks seed the database
at every historical version before migrating it, and the rows must be the ones that expose those
bugs: parents before children, real parent keys in foreign-key columns, self references, and
nullable columns that hold both NULLs and values.

The seeder reads the schema the database really has (``sqlite_master`` and the allow-listed
``pragma_*`` table-valued functions, nothing a DO refuses), not a drizzle snapshot, so it works at
any version of any bundle. :func:`seed` writes a few varied rows per table (literal SQL, so
integers stay integers whatever JS binding would do); :func:`bulk_seed` fills tables with many
rows in one ``INSERT ... SELECT`` over a recursive CTE per table, for timing estimates.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import SqlError
from .sqltext import scan, split
from .storage import DurableObjectStorage

__all__ = [
    "ColumnHints",
    "ColumnInfo",
    "ForeignKeyInfo",
    "SchemaTracker",
    "SeedReport",
    "TableInfo",
    "bulk_seed",
    "check_hints",
    "quote_ident",
    "read_tables",
    "seed",
    "seed_order",
    "sql_literal",
    "tables_with_rows",
]

LEDGER_TABLE = "__drizzle_migrations"
#: how many different rows are tried before a row is given up (CHECK / UNIQUE failures)
MAX_ATTEMPTS = 12
#: parent keys read per foreign key when picking values
_CANDIDATE_LIMIT = 500


# ----------------------------------------------------------------------------- SQL helpers


def quote_ident(name: str) -> str:
    """``"name"`` with embedded double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: object) -> str:
    """A Python value as a SQLite literal (exact: integers stay INTEGER, bytes become BLOBs)."""
    if value is None:
        return "NULL"
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NULL"
        if math.isinf(value):
            return "9e999" if value > 0 else "-9e999"
        return repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "X'" + bytes(value).hex() + "'"
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True)
    return "'" + value.replace("'", "''") + "'"


# ----------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class ColumnInfo:
    """One column as ``pragma_table_xinfo`` reports it."""

    name: str
    decl_type: str
    notnull: bool
    #: the DEFAULT clause's SQL text, None without one
    default: str | None
    #: 1-based position in the primary key, 0 when not part of it
    pk: int
    #: 0 normal, 1 hidden (virtual tables), 2 generated VIRTUAL, 3 generated STORED
    hidden: int

    @property
    def generated(self) -> bool:
        return self.hidden != 0

    @property
    def affinity(self) -> str:
        """SQLite's type affinity rules (section 3.1 of the datatype docs)."""
        t = self.decl_type.upper()
        if "INT" in t:
            return "INTEGER"
        if "CHAR" in t or "CLOB" in t or "TEXT" in t:
            return "TEXT"
        if "BLOB" in t or not t:
            return "BLOB"
        if "REAL" in t or "FLOA" in t or "DOUB" in t:
            return "REAL"
        return "NUMERIC"


@dataclass(frozen=True)
class ForeignKeyInfo:
    """A (possibly composite) foreign key of a child table."""

    id: int
    parent: str
    columns: tuple[str, ...]
    #: referenced columns (the parent's primary key when the REFERENCES clause names none)
    parent_columns: tuple[str, ...]
    on_delete: str
    on_update: str

    def describe(self, child: str) -> str:
        """``child.col -> parent ON DELETE cascade`` (composite: ``child.(a, b) -> ...``)."""
        cols = self.columns[0] if len(self.columns) == 1 else "(" + ", ".join(self.columns) + ")"
        return f"{child}.{cols} -> {self.parent} ON DELETE {self.on_delete.lower()}"


@dataclass(frozen=True)
class TableInfo:
    """A user table of the live database."""

    name: str
    sql: str
    columns: tuple[ColumnInfo, ...]
    foreign_keys: tuple[ForeignKeyInfo, ...]
    #: column sets that must be unique together (primary key and unique indexes/constraints;
    #: partial and expression indexes are left out)
    unique: tuple[tuple[str, ...], ...]
    without_rowid: bool
    strict: bool

    @property
    def pk(self) -> tuple[str, ...]:
        cols = sorted((c for c in self.columns if c.pk), key=lambda c: c.pk)
        return tuple(c.name for c in cols)

    @property
    def rowid_alias(self) -> str | None:
        """The INTEGER PRIMARY KEY column that is the rowid, if any."""
        if self.without_rowid:
            return None
        pk = [c for c in self.columns if c.pk]
        if len(pk) == 1 and pk[0].decl_type.upper() == "INTEGER":
            return pk[0].name
        return None

    def column(self, name: str) -> ColumnInfo | None:
        low = name.lower()
        for c in self.columns:
            if c.name.lower() == low:
                return c
        return None

    @property
    def writable(self) -> tuple[ColumnInfo, ...]:
        return tuple(c for c in self.columns if not c.generated)


def is_user_table(name: str) -> bool:
    """Not drizzle's ledger, not SQLite's or workerd's internal tables."""
    low = name.lower()
    return not (low == LEDGER_TABLE or low.startswith("sqlite_") or low.startswith("_cf_"))


#: ``sqlite_master`` as one text (rows split by NUL, fields by \x01, a NULL sql as \x02): built
#: by SQLite, so a schema seen before costs one value instead of a row per table and index
_MASTER_SQL = (
    "SELECT group_concat(type || char(1) || name || char(1) || tbl_name || char(1) || "
    "coalesce(sql, char(2)), char(0) ORDER BY rowid) FROM sqlite_master"
)
_LIST_SQL = "SELECT type, wr, strict FROM pragma_table_list(?) WHERE schema = 'main'"
_COLUMNS_SQL = (
    'SELECT name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid'
)
_FKS_SQL = (
    'SELECT id, "table", "from", "to", on_update, on_delete FROM pragma_foreign_key_list(?) '
    "ORDER BY id, seq"
)
_UNIQUE_SQL = (
    "SELECT il.name, il.partial, ii.cid, ii.name FROM pragma_index_list(?) il "
    'JOIN pragma_index_info(il.name) ii WHERE il."unique" = 1 ORDER BY il.name, ii.seqno'
)

RawFk = tuple[int, str, tuple[str, ...], tuple[str | None, ...], str, str]


@dataclass(frozen=True)
class _RawTable:
    """One table as its pragmas describe it, before foreign keys are resolved."""

    kind: str
    without_rowid: bool
    strict: bool
    columns: tuple[ColumnInfo, ...]
    fks: tuple[RawFk, ...]
    unique: tuple[tuple[str, ...], ...]


_SCHEMA_CACHE: dict[str, dict[str, TableInfo]] = {}
_TABLE_CACHE: dict[tuple[str, ...], _RawTable] = {}
#: (table, sql, parents, ids of its raw table and its parents') -> (those objects, TableInfo);
#: the objects are kept so the ids stay theirs
_INFO_CACHE: dict[tuple[Any, ...], tuple[tuple[_RawTable | None, ...], TableInfo]] = {}


def read_tables(do: DurableObjectStorage) -> dict[str, TableInfo]:
    """The user tables of ``do`` (no ledger, ``sqlite_*``, ``_cf_*``, virtual or shadow tables).

    Cached by the text of ``sqlite_master`` (the pragmas only restate it): a schema seen before
    costs one query, and a changed schema re-reads only the tables whose definition or indexes
    changed (and resolves again only their children's foreign keys), from the difference with
    the schema read last.
    """
    text = str(do.sql.exec(_MASTER_SQL).raw().to_array()[0][0] or "")
    cached = _SCHEMA_CACHE.get(text)
    if cached is None:
        cached = _read_tables(do, text)
        if len(_SCHEMA_CACHE) >= 512:
            _SCHEMA_CACHE.clear()
        _SCHEMA_CACHE[text] = cached
    return dict(cached)


def _raw_table(do: DurableObjectStorage, name: str) -> _RawTable:
    listed = do.sql.exec(_LIST_SQL, name).raw().to_array()
    kind, wr, strict = listed[0] if listed else ("table", 0, 0)
    columns = tuple(
        ColumnInfo(
            str(cname),
            str(typ or ""),
            bool(notnull),
            None if dflt is None else str(dflt),
            int(pk),
            int(hidden),
        )
        for cname, typ, notnull, dflt, pk, hidden in do.sql.exec(_COLUMNS_SQL, name).raw()
    )
    grouped: dict[int, list[tuple[str, str, str | None, str, str]]] = {}
    for fid, parent, frm, to, on_update, on_delete in do.sql.exec(_FKS_SQL, name).raw():
        grouped.setdefault(int(fid), []).append(
            (str(parent), str(frm), None if to is None else str(to), on_update, on_delete)
        )
    fks = tuple(
        (
            fid,
            parts[0][0],
            tuple(p[1] for p in parts),
            tuple(p[2] for p in parts),
            str(parts[0][3]),
            str(parts[0][4]),
        )
        for fid, parts in sorted(grouped.items())
    )
    indexes: dict[str, list[str] | None] = {}
    for iname, partial, cid, cname in do.sql.exec(_UNIQUE_SQL, name).raw():
        cols = indexes.setdefault(iname, [])
        if cols is None:
            continue
        if partial or cid is None or int(cid) < 0 or cname is None:
            indexes[iname] = None  # partial or expression index: not a plain column set
        else:
            cols.append(str(cname))
    unique = tuple(tuple(c) for _, c in sorted(indexes.items()) if c)
    return _RawTable(str(kind), bool(wr), bool(strict), columns, fks, unique)


@dataclass
class _Known:
    """A schema as read: its ``sqlite_master`` rows and what was made of them. The next read
    works from the difference (a migration changes a few tables of many)."""

    rows: frozenset[str]
    #: table name (lower case) -> its rows (the table's and its indexes')
    by_table: dict[str, tuple[str, ...]]
    sqls: dict[str, str]
    raws: dict[str, _RawTable]
    by_lower: dict[str, str]
    tables: dict[str, TableInfo]
    #: parent name (lower case) -> the tables with a foreign key to it
    children: dict[str, frozenset[str]]


_EMPTY = _Known(frozenset(), {}, {}, {}, {}, {}, {})
#: the last schema read (one slot: a DO being migrated reads its schema again and again)
_LAST_READ: list[_Known] = []


def _owner(row: str) -> str:
    return row.split("\x01", 3)[2].lower()


def _read_tables(do: DurableObjectStorage, text: str) -> dict[str, TableInfo]:
    rows = text.split("\x00") if text else []
    current = frozenset(rows)
    base = _LAST_READ[0] if _LAST_READ else _EMPTY
    changed = current - base.rows
    removed = base.rows - current
    if len(changed) + len(removed) > 64 + len(rows) // 4:
        # another database: every table from scratch (rows hashed once, not diffed)
        base, changed, removed = _EMPTY, current, frozenset()
    changed_by: dict[str, list[str]] = {}
    for row in rows if base is _EMPTY else changed:
        changed_by.setdefault(_owner(row), []).append(row)
    affected = set(changed_by) | {_owner(row) for row in removed}
    known = _Known(
        current,
        dict(base.by_table),
        dict(base.sqls),
        dict(base.raws),
        dict(base.by_lower),
        dict(base.tables),
        dict(base.children),
    )
    owned = {
        low: tuple(r for r in base.by_table.get(low, ()) if r not in removed)
        + tuple(changed_by.get(low, ()))
        for low in affected
    }
    _update(do, known, owned)
    known.tables = dict(sorted(known.tables.items()))
    _LAST_READ[:] = [known]
    return known.tables


def _update(
    do: DurableObjectStorage, known: _Known, owned: dict[str, tuple[str, ...]]
) -> dict[str, TableInfo | None]:
    """Bring ``known`` (changed in place) to the ``sqlite_master`` rows ``owned`` gives for
    each table name (lower case) they belong to; the other tables' rows are as they were.

    Returns the tables described again (the changed ones and their children), each with what
    it was before (None: it is new).
    """
    by_table, sqls, raws = known.by_table, known.sqls, known.raws
    by_lower, children, tables = known.by_lower, known.children, known.tables
    olds = {low: by_lower.get(low) for low in owned}
    for low, mine in owned.items():
        old = olds[low]
        if old is not None:
            for fk in raws[old].fks:
                parent = fk[1].lower()
                children[parent] = children.get(parent, frozenset()) - {old}
            sqls.pop(old, None)
            raws.pop(old, None)
            del by_lower[low]
        if mine:
            by_table[low] = mine
        else:
            by_table.pop(low, None)
        table: tuple[str, str] | None = None
        index_entries: list[str] = []
        for row in mine:
            typ, name, _, sql = row.split("\x01", 3)
            if typ == "table":
                table = (name, "" if sql == "\x02" else sql)
            elif typ == "index":
                index_sql = None if sql == "\x02" else sql
                index_entries.append(f"{name}\x01{index_sql}")
        if table is None:
            continue
        name, sql = table
        if not is_user_table(name) or sql.upper().startswith("CREATE VIRTUAL"):
            continue
        key = (name, sql, *sorted(index_entries))
        raw = _TABLE_CACHE.get(key)
        if raw is None:
            raw = _raw_table(do, name)
            if len(_TABLE_CACHE) >= 8192:
                _TABLE_CACHE.clear()
            _TABLE_CACHE[key] = raw
        if raw.kind != "table":
            continue
        raws[name] = raw
        sqls[name] = sql
        by_lower[low] = name
        for fk in raw.fks:
            parent = fk[1].lower()
            children[parent] = children.get(parent, frozenset()) | {name}
    # the tables read again, and the ones whose parents were (a foreign key's parent columns
    # and names are resolved against the parent)
    redo = {by_lower[low] for low in owned if low in by_lower}
    for low in owned:
        redo.update(children.get(low, ()))
    for old in olds.values():
        if old is not None and old not in raws:
            tables.pop(old, None)
    before: dict[str, TableInfo | None] = {}
    for name in redo:
        if name in raws:
            before[name] = tables.get(name)
            tables[name] = _table_info(name, raws, by_lower, sqls)
    return before


class SchemaTracker:
    """The user tables of one DO, kept up to date statement by statement.

    Why: :func:`read_tables` reads the whole ``sqlite_master`` (one text, diffed with the last
    read) to find what changed; applied after every migration of a long bundle that costs in
    proportion to the schema at every step. The tracker is told the statements that ran and
    reads again only the tables they name, plus what that implies: both names of a renamed
    table, the table of a dropped index, the children whose ``REFERENCES`` clauses a table or
    column rename rewrites, and (resolved again, not read) the children of every changed
    table. A statement it cannot analyse (``CREATE VIRTUAL TABLE``, ``TEMP`` objects, another
    schema, an unknown ``PRAGMA``, non-ASCII names, ...) makes it read everything, as
    :func:`read_tables` does. The result always equals what :func:`read_tables` returns, in
    whatever order (``tests/test_seed.py`` checks each kind of DDL statement).
    """

    def __init__(self, do: DurableObjectStorage) -> None:
        self.do = do
        #: how many times the whole schema was read (1 at the start, then one per fallback)
        self.full_reads = 0
        self._known = _EMPTY
        self._index_owner: dict[str, str] = {}
        self._read_all()

    @property
    def tables(self) -> dict[str, TableInfo]:
        """The user tables now (the tracker's own dict: it changes with :meth:`after`)."""
        return self._known.tables

    def real_name(self, name: str) -> str | None:
        """The table called ``name`` in any case, if there is one."""
        return self._known.by_lower.get(name.lower())

    def children(self, name: str) -> frozenset[str]:
        """The tables with a foreign key that names table ``name`` (in any case)."""
        return self._known.children.get(name.lower(), frozenset())

    def after(self, statements: Iterable[str]) -> set[str]:
        """Take in the statements that just ran (each text one statement, as
        :func:`~pytest_dosqlite.sqltext.split` cuts them); returns the tables that are new or
        whose :class:`TableInfo` changed."""
        known = self._known
        owners: set[str] = set()
        for text in statements:
            effect = _ddl_effect(text)
            if effect is None:
                return self._read_all()
            touched, rewritten, indexes = effect
            owners.update(n.lower() for n in touched)
            for n in rewritten:
                # their REFERENCES clauses name the table: SQLite rewrites them (a table
                # whose clause is rewritten twice names the first name before the first)
                owners.update(c.lower() for c in known.children.get(n.lower(), ()))
            for n, if_exists in indexes:
                owner = self._index_owner.get(n.lower())
                if owner is not None:
                    owners.add(owner)
                elif not if_exists:
                    # every index of the schema is known: a DROP INDEX of another one ran
                    # only if the tracker is wrong
                    return self._read_all()
        if not owners:
            return set()
        if not all(n.isascii() for n in owners):
            return self._read_all()  # SQLite folds only ASCII case
        fetched: dict[str, list[str]] = {}
        names = sorted(owners)
        for start in range(0, len(names), _EXISTS_PER_QUERY):
            part = names[start : start + _EXISTS_PER_QUERY]
            marks = ", ".join("?" for _ in part)
            for (row,) in self.do.sql.exec(f"{_OWNED_SQL} ({marks})", *part).raw():
                text = str(row)
                fetched.setdefault(_owner(text), []).append(text)
        owned = {low: tuple(fetched.get(low, ())) for low in owners}
        for low in owners:
            for row in known.by_table.get(low, ()):
                typ, name, _ = row.split("\x01", 2)
                if typ == "index" and self._index_owner.get(name.lower()) == low:
                    del self._index_owner[name.lower()]
            self._note_indexes(low, owned[low])
        before = _update(self.do, known, owned)
        return {n for n, was in before.items() if was != known.tables[n]}

    def _note_indexes(self, low: str, rows: Iterable[str]) -> None:
        for row in rows:
            typ, name, _ = row.split("\x01", 2)
            if typ == "index":
                self._index_owner[name.lower()] = low

    def _read_all(self) -> set[str]:
        previous = self._known.tables
        text = str(self.do.sql.exec(_MASTER_SQL).raw().to_array()[0][0] or "")
        _read_tables(self.do, text)
        last = _LAST_READ[0]
        # a copy: the tracker changes its state in place, read_tables diffs from this one
        self._known = _Known(
            frozenset(),
            dict(last.by_table),
            dict(last.sqls),
            dict(last.raws),
            dict(last.by_lower),
            dict(last.tables),
            dict(last.children),
        )
        self._index_owner = {}
        for low, rows in last.by_table.items():
            self._note_indexes(low, rows)
        self.full_reads += 1
        return {
            n
            for n, t in self._known.tables.items()
            if previous.get(n) is not t and previous.get(n) != t
        }


#: (tables a statement can change, tables whose children it can rewrite, dropped indexes with
#: whether the statement said IF EXISTS)
_Effect = tuple[list[str], list[str], list[tuple[str, bool]]]
#: the ``sqlite_master`` rows of some tables (by lower-case name), as :data:`_MASTER_SQL` joins
#: them (names are ASCII here, where SQLite's NOCASE and Python's ``lower`` agree; a comparison
#: costs less than calling ``lower`` on every row)
_OWNED_SQL = (
    "SELECT type || char(1) || name || char(1) || tbl_name || char(1) || coalesce(sql, char(2)) "
    "FROM sqlite_master WHERE tbl_name COLLATE NOCASE IN"
)
#: statements that change no table definition
_NO_DDL = frozenset({"INSERT", "REPLACE", "UPDATE", "DELETE", "SELECT", "VALUES", "WITH"})
#: pragmas that change no table definition (drizzle-kit writes foreign_keys around rebuilds)
_SAFE_PRAGMAS = frozenset(
    {
        "foreign_keys",
        "defer_foreign_keys",
        "foreign_key_check",
        "foreign_key_list",
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "quick_check",
        "integrity_check",
    }
)


def _head_tokens(text: str, limit: int = 12) -> list[str]:
    """The texts of the first tokens of a statement (comments and ``;`` skipped), read lazily:
    a long ``INSERT`` is not read past its head."""
    out: list[str] = []
    for tok in scan(text):
        if tok.kind != "comment" and tok.text != ";":
            out.append(tok.text)
            if len(out) >= limit:
                break
    return out


def _ident(tok: str | None) -> str | None:
    if not tok:
        return None
    first = tok[0]
    if first in "\"`'" and len(tok) >= 2 and tok[-1] == first:
        return tok[1:-1].replace(first * 2, first)
    if first == "[" and tok[-1] == "]":
        return tok[1:-1]
    if first.isalpha() or first == "_":
        return tok
    return None


def _ddl_effect(text: str) -> _Effect | None:
    """What one statement can do to table definitions: (the tables it can change, the tables
    whose children's ``REFERENCES`` clauses it can rewrite, the indexes it drops with whether
    ``IF EXISTS`` was said); None when it cannot be told."""
    if ";" in text.rstrip().rstrip(";"):
        # maybe several statements (or a ';' in a literal): each one on its own
        pieces = [p.text for p in split(text) if p.has_statement]
        if len(pieces) != 1:
            effects = [_ddl_effect(p) for p in pieces]
            if any(e is None for e in effects):
                return None
            return (
                [n for e in effects if e for n in e[0]],
                [n for e in effects if e for n in e[1]],
                [n for e in effects if e for n in e[2]],
            )
    toks = _head_tokens(text)
    words = [t.upper() for t in toks]
    pos = 0

    def word(i: int) -> str:
        return words[i] if i < len(words) else ""

    def qname(i: int) -> tuple[str | None, int]:
        """A possibly schema-qualified name at ``i``: (name, next position); a schema other
        than ``main`` gives no name."""
        name = _ident(toks[i]) if i < len(toks) else None
        if name is not None and word(i + 1) == ".":
            if name.lower() != "main":
                return None, i
            return qname(i + 2)[0], i + 3
        return name, i + 1

    def skip(i: int, *phrase: str) -> int:
        if tuple(words[i : i + len(phrase)]) == phrase:
            return i + len(phrase)
        return i

    if not words:
        return [], [], []
    head = words[0]
    if head in _NO_DDL:
        return [], [], []
    if head == "PRAGMA":
        name, _ = qname(1)
        return ([], [], []) if name is not None and name.lower() in _SAFE_PRAGMAS else None
    if head == "CREATE":
        pos = skip(1, "UNIQUE")
        if word(pos) == "INDEX":
            _, pos = qname(skip(pos + 1, "IF", "NOT", "EXISTS"))
            if word(pos) != "ON":
                return None
            table, _ = qname(pos + 1)
            return None if table is None else ([table], [], [])
        if word(1) == "TABLE":
            table, _ = qname(skip(2, "IF", "NOT", "EXISTS"))
            return None if table is None else ([table], [], [])
        if word(1) in ("VIEW", "TRIGGER"):
            return [], [], []
        return None  # TEMP, VIRTUAL, ...
    if head == "DROP":
        if word(1) in ("VIEW", "TRIGGER"):
            return [], [], []
        if word(1) not in ("TABLE", "INDEX"):
            return None
        at = skip(2, "IF", "EXISTS")
        name, _ = qname(at)
        if name is None:
            return None
        return ([name], [], []) if word(1) == "TABLE" else ([], [], [(name, at > 2)])
    if head == "ALTER" and word(1) == "TABLE":
        table, pos = qname(2)
        if table is None:
            return None
        if word(pos) == "RENAME":
            if word(pos + 1) == "TO":
                new = _ident(toks[pos + 2]) if pos + 2 < len(toks) else None
                return None if new is None else ([table, new], [table], [])
            return [table], [table], []  # RENAME [COLUMN] a TO b
        if word(pos) in ("ADD", "DROP"):
            return [table], [], []
    return None


def _table_info(
    name: str, raws: dict[str, _RawTable], by_lower: dict[str, str], sqls: dict[str, str]
) -> TableInfo:
    raw = raws[name]

    def pk_of(table: str | None) -> tuple[str, ...]:
        raw = raws.get(table or "")
        if raw is None:
            return ()
        return tuple(c.name for c in sorted((c for c in raw.columns if c.pk), key=lambda c: c.pk))

    # a table whose definition and whose parents' are unchanged: the same TableInfo
    parents = tuple(by_lower.get(fk[1].lower()) for fk in raw.fks)
    deps = (raw, *(None if p is None else raws[p] for p in parents))
    info_key = (name, sqls[name], parents, *(id(d) for d in deps))
    hit = _INFO_CACHE.get(info_key)
    if hit is not None and all(a is b for a, b in zip(hit[0], deps, strict=True)):
        return hit[1]
    own = [c.name for c in raw.columns]
    fks: list[ForeignKeyInfo] = []
    for fid, parent, frm, tos, on_update, on_delete in raw.fks:
        # by_lower: _real_name(parent, raws) scanned every table for every foreign key
        real = by_lower.get(parent.lower())
        parent_cols: tuple[str, ...]
        if any(x is None for x in tos):
            parent_cols = pk_of(real) or ("rowid",)
        else:
            parent_cols = tuple(str(x) for x in tos)
        parent_names = [c.name for c in raws[real].columns] if real is not None else []
        fks.append(
            ForeignKeyInfo(
                id=fid,
                parent=real or parent,
                columns=tuple(_real_name(c, own) or c for c in frm),
                parent_columns=tuple(_real_name(c, parent_names) or c for c in parent_cols),
                on_update=on_update,
                on_delete=on_delete,
            )
        )
    unique_sets: list[tuple[str, ...]] = []
    if pk_of(name):
        unique_sets.append(pk_of(name))
    for cols in raw.unique:
        if cols not in unique_sets:
            unique_sets.append(cols)
    info = TableInfo(
        name=name,
        sql=sqls[name],
        columns=raw.columns,
        foreign_keys=tuple(fks),
        unique=tuple(unique_sets),
        without_rowid=raw.without_rowid,
        strict=raw.strict,
    )
    if len(_INFO_CACHE) >= 8192:
        _INFO_CACHE.clear()
    _INFO_CACHE[info_key] = (deps, info)
    return info


def _real_name(name: str, known: Iterable[str]) -> str | None:
    low = name.lower()
    for k in known:
        if k.lower() == low:
            return k
    return None


def seed_order(tables: dict[str, TableInfo]) -> list[str]:
    """Parents before children (self references ignored).

    A foreign-key cycle is broken at a table inside the cycle whose unmet foreign keys are
    nullable if there is one (its rows start with NULL there), then by name.
    """
    deps: dict[str, set[str]] = {}
    for name, t in tables.items():
        deps[name] = {
            fk.parent for fk in t.foreign_keys if fk.parent != name and fk.parent in tables
        }
    order: list[str] = []
    done: set[str] = set()

    def in_cycle(start: str, rest: set[str]) -> bool:
        stack, seen = list(deps[start] & rest), set()
        while stack:
            n = stack.pop()
            if n == start:
                return True
            if n not in seen:
                seen.add(n)
                stack.extend(deps[n] & rest)
        return False

    def nullable_unmet(name: str) -> bool:
        t = tables[name]
        for fk in t.foreign_keys:
            if fk.parent in done or fk.parent == name or fk.parent not in tables:
                continue
            cols = [t.column(c) for c in fk.columns]
            if all(c is not None and c.notnull for c in cols):
                return False
        return True

    while len(done) < len(tables):
        ready = sorted(n for n in tables if n not in done and deps[n] <= done)
        if not ready:
            rest = {n for n in tables if n not in done}
            cyclic = [n for n in rest if in_cycle(n, rest)] or sorted(rest)
            ready = [min(cyclic, key=lambda n: (not nullable_unmet(n), len(deps[n] - done), n))]
        for n in ready:
            order.append(n)
            done.add(n)
    return order


# ----------------------------------------------------------------------------- CHECK hints


@dataclass
class ColumnHints:
    """What simple CHECK constraints say about one column's values."""

    choices: tuple[object, ...] | None = None
    low: float | None = None
    low_strict: bool = False
    high: float | None = None
    high_strict: bool = False
    min_len: int | None = None
    max_len: int | None = None
    json: bool = False
    not_values: set[object] = field(default_factory=set)
    like_prefix: str | None = None
    typeof: str | None = None


_HINT_CACHE: dict[str, dict[str, ColumnHints]] = {}
_NO_HINTS = ColumnHints()
_IN_RE = re.compile(
    r"""[`"\[]?(\w+)[`"\]]?\s+IN\s*\(((?:\s*(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?)\s*,?)+)\)""",
    re.IGNORECASE,
)


def check_hints(create_sql: str) -> dict[str, ColumnHints]:
    """Per-column hints from the CHECK constraints of a ``CREATE TABLE`` (lower-case keys).

    Understands ``col IN (...)``, comparisons of a column or ``length(col)`` with a number,
    ``BETWEEN``, ``json_valid(col)``, ``typeof(col) = '...'``, ``col LIKE 'x%'``, ``col <> v``
    and ``col IS NULL OR ...``, joined with AND. Anything else is left to retries.
    """
    cached = _HINT_CACHE.get(create_sql)
    if cached is not None:
        return cached
    hints: dict[str, ColumnHints] = {}
    if "check" in create_sql.lower():
        try:
            hints = _parse_checks(create_sql)
        except Exception:  # sqlglot cannot read every SQLite text; fall back to a regex
            hints = _regex_checks(create_sql)
    if len(_HINT_CACHE) > 4096:
        _HINT_CACHE.clear()
    _HINT_CACHE[create_sql] = hints
    return hints


def _regex_checks(sql: str) -> dict[str, ColumnHints]:
    hints: dict[str, ColumnHints] = {}
    for m in _IN_RE.finditer(sql):
        values: list[object] = []
        for part in re.findall(r"'(?:[^']|'')*'|-?\d+(?:\.\d+)?", m.group(2)):
            if part.startswith("'"):
                values.append(part[1:-1].replace("''", "'"))
            else:
                values.append(float(part) if "." in part else int(part))
        if values:
            hints.setdefault(m.group(1).lower(), ColumnHints()).choices = tuple(values)
    return hints


def _parse_checks(sql: str) -> dict[str, ColumnHints]:
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="sqlite")
    hints: dict[str, ColumnHints] = {}
    for check in tree.find_all(exp.CheckColumnConstraint):
        cond = check.this
        if cond is not None:
            for part in _conjuncts(cond, exp):
                _apply(part, hints, exp)
    return hints


def _conjuncts(node: Any, exp: Any) -> list[Any]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this, exp) + _conjuncts(node.expression, exp)
    return [node]


def _literal(node: Any, exp: Any) -> tuple[bool, object]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Neg):
        ok, v = _literal(node.this, exp)
        if ok and isinstance(v, int | float):
            return True, -v
        return False, None
    if isinstance(node, exp.Boolean):
        return True, 1 if node.this else 0
    if isinstance(node, exp.Null):
        return True, None
    if isinstance(node, exp.Literal):
        if node.is_string:
            return True, str(node.this)
        text = str(node.this)
        try:
            return True, int(text)
        except ValueError:
            try:
                return True, float(text)
            except ValueError:
                return False, None
    return False, None


def _column_name(node: Any, exp: Any) -> str | None:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Column):
        return str(node.name).lower()
    return None


def _func_of_column(node: Any, exp: Any, names: tuple[str, ...]) -> str | None:
    """Column name when ``node`` is ``f(col)`` for one of ``names``."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Length) and "length" in names:
        return _column_name(node.this, exp)
    if isinstance(node, exp.Func):
        fname = (
            str(node.name).lower() if isinstance(node, exp.Anonymous) else node.sql_name().lower()
        )
        if fname in names:
            args = list(node.expressions) if isinstance(node, exp.Anonymous) else [node.this]
            if len(args) == 1:
                return _column_name(args[0], exp)
    return None


def _apply(node: Any, hints: dict[str, ColumnHints], exp: Any) -> None:
    while isinstance(node, exp.Paren):
        node = node.this

    def h(col: str) -> ColumnHints:
        return hints.setdefault(col, ColumnHints())

    if isinstance(node, exp.Or):
        # ``col IS NULL OR cond`` -> cond; ``col = a OR col = b`` -> choices
        parts = _disjuncts(node, exp)
        rest = [p for p in parts if not _is_null_test(p, exp)]
        if len(rest) == 1:
            _apply(rest[0], hints, exp)
            return
        values: list[object] = []
        col_seen: str | None = None
        for p in rest:
            if not isinstance(p, exp.EQ):
                return
            col = _column_name(p.this, exp)
            ok, v = _literal(p.expression, exp)
            if col is None or not ok or (col_seen is not None and col != col_seen):
                return
            col_seen = col
            values.append(v)
        if col_seen is not None:
            h(col_seen).choices = tuple(values)
        return
    if isinstance(node, exp.In) and not node.args.get("query"):
        col = _column_name(node.this, exp)
        if col is None:
            return
        values = []
        for e in node.expressions:
            ok, v = _literal(e, exp)
            if not ok:
                return
            values.append(v)
        h(col).choices = tuple(values)
        return
    if isinstance(node, exp.Between):
        col = _column_name(node.this, exp)
        ok1, lo = _literal(node.args.get("low"), exp)
        ok2, hi = _literal(node.args.get("high"), exp)
        if col and ok1 and ok2 and isinstance(lo, int | float) and isinstance(hi, int | float):
            ch = h(col)
            ch.low, ch.high = float(lo), float(hi)
        return
    if isinstance(node, exp.Like):
        col = _column_name(node.this, exp)
        ok, pat = _literal(node.expression, exp)
        if col and ok and isinstance(pat, str):
            m = re.match(r"^([^%_]*)", pat)
            if m and m.group(1) and pat[len(m.group(1)) :] in ("%", ""):
                h(col).like_prefix = m.group(1)
        return
    if isinstance(node, exp.Func) and not isinstance(node, exp.Binary):
        col = _func_of_column(node, exp, ("json_valid",))
        if col:
            h(col).json = True
        return
    if isinstance(node, exp.EQ | exp.NEQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
        left, right = node.this, node.expression
        flip = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE}
        kind: type = type(node)
        ok, value = _literal(right, exp)
        if not ok:
            ok, value = _literal(left, exp)
            if not ok:
                return
            left = right
            kind = flip.get(kind, kind)
        col = _column_name(left, exp)
        length_col = _func_of_column(left, exp, ("length", "char_length"))
        typeof_col = _func_of_column(left, exp, ("typeof",))
        if typeof_col and kind is exp.EQ and isinstance(value, str):
            h(typeof_col).typeof = value.lower()
            return
        if length_col and isinstance(value, int | float):
            ch = h(length_col)
            n = int(value)
            if kind is exp.GT:
                ch.min_len = max(ch.min_len or 0, n + 1)
            elif kind is exp.GTE:
                ch.min_len = max(ch.min_len or 0, n)
            elif kind is exp.LT:
                ch.max_len = n - 1
            elif kind is exp.LTE:
                ch.max_len = n
            elif kind is exp.EQ:
                ch.min_len = ch.max_len = n
            elif kind is exp.NEQ and n == 0:
                ch.min_len = max(ch.min_len or 0, 1)
            return
        if col is None:
            return
        ch = h(col)
        if kind is exp.EQ:
            ch.choices = (value,)
        elif kind is exp.NEQ:
            ch.not_values.add(value)
        elif isinstance(value, int | float):
            if kind in (exp.GT, exp.GTE):
                ch.low, ch.low_strict = float(value), kind is exp.GT
            else:
                ch.high, ch.high_strict = float(value), kind is exp.LT


def _disjuncts(node: Any, exp: Any) -> list[Any]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Or):
        return _disjuncts(node.this, exp) + _disjuncts(node.expression, exp)
    return [node]


def _is_null_test(node: Any, exp: Any) -> bool:
    return isinstance(node, exp.Is) and isinstance(node.expression, exp.Null)


# ----------------------------------------------------------------------------- values

_FIRST = ("Ada", "Grace", "Alan", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Radia", "Tim")
_LAST = ("Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson")
_WORDS = (
    "alpha", "harbor", "quiet", "lantern", "orbit", "maple", "signal", "river", "copper",
    "meadow", "vector", "summit", "pixel", "ember", "falcon", "garden",
)  # fmt: skip
_ENUM = ("active", "pending", "archived", "draft", "done")
_BOOL_NAMES = {
    "active", "enabled", "disabled", "archived", "favourited", "favorited", "deleted", "done",
    "completed", "public", "private", "verified", "published", "pinned", "read", "hidden",
    "visible", "locked", "admin", "approved", "starred", "muted", "flagged", "default",
}  # fmt: skip
_TIME_WORDS = {"at", "date", "time", "timestamp", "datetime", "when", "deadline", "expires"}
_JSON_WORDS = {
    "json", "metadata", "meta", "settings", "config", "payload", "options", "attributes",
    "properties", "extra", "scopes", "tags", "data", "params", "headers", "context",
}  # fmt: skip
_TEXT_WORDS = {
    "description", "body", "content", "text", "note", "notes", "summary", "bio", "comment",
    "message", "prompt", "html", "markdown", "details", "reason", "caption",
}  # fmt: skip
_NAME_WORDS = {"name", "username", "nickname", "author", "publisher", "owner", "handle"}
_TITLE_WORDS = {"title", "label", "heading", "subject", "headline"}
_ENUM_WORDS = {"status", "state", "type", "kind", "role", "provider", "source", "mode", "level"}
_TOKEN_WORDS = {"token", "hash", "secret", "salt", "signature", "password", "key", "nonce"}
_COUNT_WORDS = {
    "count", "size", "quantity", "qty", "age", "offset", "position", "order", "index", "rank",
    "score", "version", "priority", "number", "num", "total", "length", "width", "height",
    "duration", "port", "year", "seconds", "minutes", "limit", "retries", "attempts", "code",
}  # fmt: skip
_DECIMAL_WORDS = {"price", "cost", "amount", "balance", "rate", "ratio", "lat", "latitude", "lng"}
_URL_WORDS = {"url", "uri", "link", "href", "website", "favicon", "homepage", "image", "avatar"}


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t]


_KIND_CACHE: dict[tuple[ColumnInfo, bool, bool], str] = {}


def _kind(col: ColumnInfo, hints: ColumnHints) -> str:
    """What the column probably holds, from its name, declared type, default and CHECKs."""
    if hints.choices:
        return "choice"
    key = (col, hints.json, bool(hints.typeof))
    kind = _KIND_CACHE.get(key)
    if kind is None:
        if len(_KIND_CACHE) > 65536:
            _KIND_CACHE.clear()
        kind = _KIND_CACHE[key] = _kind_uncached(col, hints)
    return kind


def _kind_uncached(col: ColumnInfo, hints: ColumnHints) -> str:
    toks = _tokens(col.name)
    last = toks[-1] if toks else ""
    t = col.decl_type.lower()
    dflt = (col.default or "").strip().lower()
    aff = col.affinity
    jsonish = hints.json or "json" in t or dflt.startswith(("'[", "'{"))
    if ((jsonish or set(toks) & _JSON_WORDS) and aff in ("TEXT", "BLOB")) or (
        aff == "NUMERIC" and "json" in t
    ):
        return "json"
    if "bool" in t or dflt in ("false", "true") or (toks and toks[0] in ("is", "has", "can")):
        return "bool"
    if (last in _BOOL_NAMES or last == "flag") and aff in ("INTEGER", "NUMERIC"):
        return "bool"
    if last in _TIME_WORDS or "date" in t or "time" in t or last.endswith("time"):
        return "time"
    if "email" in toks or "mail" in toks:
        return "email"
    if last in _URL_WORDS or "url" in toks:
        return "url"
    if last == "id" or last == "uuid" or "uuid" in t:
        return "id"
    if "color" in toks or "colour" in toks:
        return "color"
    if "phone" in toks:
        return "phone"
    if last in _TITLE_WORDS:
        return "title"
    if last in _NAME_WORDS or (toks and toks[0] in ("first", "last") and last == "name"):
        return "name"
    if last == "slug":
        return "slug"
    if last in _TEXT_WORDS:
        return "sentence"
    if last in _ENUM_WORDS:
        return "enum"
    if last in _TOKEN_WORDS:
        return "token"
    if last in _DECIMAL_WORDS:
        return "decimal"
    if last in _COUNT_WORDS:
        return "count"
    return "generic"


def _is_ms(col: ColumnInfo) -> bool:
    toks = _tokens(col.name)
    dflt = (col.default or "").lower()
    return bool(toks and toks[-1] == "ms") or "1000" in dflt or "subsec" in dflt


def _number(rng: random.Random, kind: str, hints: ColumnHints, integer: bool) -> float | int:
    lo, hi = {
        "count": (0.0, 500.0),
        "decimal": (1.0, 999.0),
        "bool": (0.0, 1.0),
    }.get(kind, (1.0, 100_000.0))
    if hints.low is not None:
        lo = hints.low + (1 if hints.low_strict and integer else 0.01 if hints.low_strict else 0)
        hi = max(hi, lo + 10)
    if hints.high is not None:
        hi = hints.high - (1 if hints.high_strict and integer else 0.01 if hints.high_strict else 0)
        lo = min(lo, hi)
    if integer:
        a, b = math.ceil(lo), math.floor(hi)
        return rng.randint(a, b) if a <= b else a
    return round(rng.uniform(lo, hi), 2)


def _text(kind: str, rng: random.Random, serial: int, col: ColumnInfo, table: str) -> str:
    first, last, word = rng.choice(_FIRST), rng.choice(_LAST), rng.choice(_WORDS)
    if kind == "email":
        return f"{first.lower()}.{last.lower()}{serial}@example.com"
    if kind == "url":
        return f"https://example.com/{word}/{serial}"
    if kind == "id":
        bits = rng.getrandbits(128)
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
    if kind == "color":
        return f"#{rng.getrandbits(24):06x}"
    if kind == "phone":
        return f"+1-555-01{rng.randint(0, 99):02d}"
    if kind == "title":
        return f"{word.capitalize()} {rng.choice(_WORDS)} {serial}"
    if kind == "name":
        return f"{first} {last}"
    if kind == "slug":
        return f"{word}-{rng.choice(_WORDS)}-{serial}"
    if kind == "sentence":
        n = rng.randint(4, 9)
        words = [rng.choice(_WORDS) for _ in range(n)]
        return " ".join(words).capitalize() + "."
    if kind == "enum":
        return rng.choice(_ENUM)
    if kind == "token":
        return f"{rng.getrandbits(128):032x}"
    if kind == "json":
        if _tokens(col.name)[-1:] in (["tags"], ["scopes"]) or (col.default or "").startswith("'["):
            return json.dumps([word, rng.choice(_WORDS)])
        return json.dumps({"key": word, "n": rng.randint(1, 99)})
    if kind == "time":
        return (
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:00:00"
        )
    if kind == "bool":
        return rng.choice(("true", "false"))
    return f"{word} {rng.choice(_WORDS)}"


def _value(
    col: ColumnInfo,
    table: TableInfo,
    hints: ColumnHints,
    rng: random.Random,
    serial: int,
    unique: bool,
) -> object:
    """One realistic value for ``col``."""
    kind = _kind(col, hints)
    aff = col.affinity
    if col.decl_type.upper() == "ANY" and table.strict:
        aff = "TEXT"
    if kind == "choice" and hints.choices:
        return rng.choice(hints.choices)
    if hints.typeof in ("integer", "real"):
        aff = hints.typeof.upper()
    elif hints.typeof == "text":
        aff = "TEXT"
    elif hints.typeof == "blob":
        aff = "BLOB_STRICT"
    if aff == "BLOB_STRICT" or (
        aff == "BLOB" and col.decl_type and "BLOB" in col.decl_type.upper()
    ):
        return rng.randbytes(8) + serial.to_bytes(4, "big")
    if aff in ("INTEGER", "NUMERIC", "REAL"):
        integer = aff != "REAL" and kind != "decimal"
        if kind == "bool" and hints.low is None and hints.high is None:
            return rng.randint(0, 1)
        if kind == "time":
            base = 1_700_000_000 + rng.randint(0, 40_000_000)
            value: float | int = base * 1000 + rng.randint(0, 999) if _is_ms(col) else base
            if unique:
                value += serial
            return value if integer else float(value)
        if unique and integer and hints.low is None and hints.high is None:
            return serial + (0 if kind == "count" else 1000 * rng.randint(1, 9))
        v = _number(rng, kind, hints, integer)
        if unique and not integer:
            v = float(v) + serial / 1000
        return v
    # TEXT or no affinity
    text = _text(kind, rng, serial, col, table.name)
    if unique and kind not in ("email", "url", "id", "slug", "title", "token", "json"):
        text = f"{text} {serial}"
    elif unique and kind == "json":
        text = json.dumps({"key": text, "serial": serial})
    if hints.like_prefix:
        text = hints.like_prefix + text
    if hints.min_len is not None and len(text) < hints.min_len:
        text = text + "x" * (hints.min_len - len(text))
    if hints.max_len is not None and len(text) > hints.max_len:
        text = text[-hints.max_len :] if unique else text[: hints.max_len]
    if text in hints.not_values:
        text = text + "!"
    return text


# ----------------------------------------------------------------------------- seeding


@dataclass
class SeedReport:
    """What :func:`seed` / :func:`bulk_seed` did."""

    #: rows inserted per table, in seeding order (parents first)
    rows: dict[str, int] = field(default_factory=dict)
    #: table -> reasons some or all of its rows could not be inserted
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def note(self, table: str, reason: str) -> None:
        reasons = self.problems.setdefault(table, [])
        if reason not in reasons:
            reasons.append(reason)

    def render(self) -> str:
        lines = [f"{t}: {n} row(s)" for t, n in self.rows.items()]
        for t, reasons in self.problems.items():
            lines.extend(f"{t}: not seeded: {r}" for r in reasons)
        return "\n".join(lines)


Row = dict[str, object]
_JS_SAFE = 2**53


def _insert_sql(table: TableInfo, rows: Sequence[Row], returning: str) -> tuple[str, list[object]]:
    """``INSERT ... VALUES (?, ...), ...`` with bindings; stable text so it is prepared once.

    Values a JS binding would change (integers for columns without numeric affinity, integers
    beyond 2^53) are written as literals instead.
    """
    name = quote_ident(table.name)
    if not rows[0]:
        return f"INSERT INTO {name} DEFAULT VALUES RETURNING {returning}", []
    cols = list(rows[0])
    numeric = {
        c: (col is not None and col.affinity in ("INTEGER", "NUMERIC", "REAL"))
        for c in cols
        for col in [table.column(c)]
    }
    bindings: list[object] = []
    tuples: list[str] = []
    for row in rows:
        parts: list[str] = []
        for c in cols:
            v = row[c]
            if isinstance(v, bool):
                v = int(v)
            if isinstance(v, int) and (not numeric[c] or not -_JS_SAFE <= v <= _JS_SAFE):
                parts.append(sql_literal(v))
            else:
                parts.append("?")
                bindings.append(v)
        tuples.append("(" + ", ".join(parts) + ")")
    collist = ", ".join(quote_ident(c) for c in cols)
    sql = f"INSERT INTO {name} ({collist}) VALUES {', '.join(tuples)} RETURNING {returning}"
    return sql, bindings


class _Pool:
    """Rows known per table (pre-existing and seeded), for parent keys and unique checks."""

    def __init__(
        self,
        do: DurableObjectStorage,
        tables: dict[str, TableInfo],
        needed: Iterable[str] | None = None,
    ) -> None:
        self.do = do
        self.tables = tables
        self.rows: dict[str, list[Row]] = {}
        #: rows inserted by this seed() call, per table
        self.new: dict[str, list[Row]] = {}
        #: foreign keys point at rows of this call when the parent got some (``link_new``)
        self.link_new = False
        # counted up front, in a few statements, only for the tables a seed() call needs (the
        # ones it seeds and their parents): counting every table for a seed of one table made
        # data_preserved's per-version batches quadratic
        self.counts: dict[str, int] = {}
        self._count([n for n in (tables if needed is None else needed) if n in tables])

    def _count(self, names: list[str]) -> None:
        for start in range(0, len(names), 90):
            part = names[start : start + 90]
            sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM {quote_ident(n)})" for n in part)
            values = self.do.sql.exec(sql).raw().to_array()[0]
            self.counts.update({n: int(v) for n, v in zip(part, values, strict=True)})

    def count(self, table: str) -> int:
        """Rows ``table`` held when the pool was made (or when first asked, if not counted)."""
        if table not in self.counts and table in self.tables:
            self._count([table])
        return self.counts.get(table, 0)

    def of(self, table: str) -> list[Row]:
        rows = self.rows.get(table)
        if rows is None:
            t = self.tables.get(table)
            rows = []
            if t is not None and self.count(table):
                names = [c.name for c in t.writable]
                cols = ", ".join(quote_ident(c) for c in names)
                data = self.do.sql.exec(
                    f"SELECT {cols} FROM {quote_ident(table)} LIMIT {_CANDIDATE_LIMIT}"
                ).raw()
                rows = [dict(zip(names, r, strict=True)) for r in data]
            self.rows[table] = rows
        return rows


_PLAN_CACHE: dict[tuple[object, ...], tuple[list[tuple[int, Row]], list[str], Any, int]] = {}


class _TableSeeder:
    def __init__(
        self,
        do: DurableObjectStorage,
        table: TableInfo,
        pool: _Pool,
        rng: random.Random,
        rows: int,
        nulls: bool,
        report: SeedReport,
        seed_key: str = "",
    ) -> None:
        self.seed_key = seed_key
        self.do = do
        self.t = table
        self.pool = pool
        self.rng = rng
        self.n = rows
        self.nulls = nulls
        self.report = report
        self.hints = check_hints(table.sql)
        self.writable = table.writable
        self.returning = ", ".join(quote_ident(c.name) for c in self.writable)
        self.unique_cols = {c.lower() for u in table.unique for c in u}
        self.self_ref = any(fk.parent == table.name for fk in table.foreign_keys)
        existing = pool.of(table.name)
        self.used: dict[tuple[str, ...], set[tuple[object, ...]]] = {u: set() for u in table.unique}
        for r in existing:
            self._remember_unique(r)
        self.candidates: dict[int, list[tuple[object, ...]]] = {}
        for fk in table.foreign_keys:
            parents = pool.of(fk.parent)
            if pool.link_new and (fk.parent in pool.new or fk.parent == table.name):
                parents = pool.new.get(fk.parent, [])
            keys = (tuple(r.get(c) for c in fk.parent_columns) for r in parents)
            self.candidates[fk.id] = list(
                dict.fromkeys(k for k in keys if all(v is not None for v in k))
            )
        # the row index that holds NULL in each nullable column (mixed mode)
        self.null_row: dict[str, int] = {}
        for c in self.writable:
            if not c.notnull and not c.pk and rows >= 2:
                self.null_row[c.name] = self.rng.randrange(rows)
        self.serial = pool.count(table.name)
        self.next_rowid: int | None = None

    # -- bookkeeping
    def _remember_unique(self, row: Row) -> None:
        for u, seen in self.used.items():
            key = tuple(row.get(c) for c in u)
            if all(v is not None for v in key):
                seen.add(key)

    def _forget_unique(self, row: Row) -> None:
        for u, seen in self.used.items():
            seen.discard(tuple(row.get(c) for c in u))

    def _remember(self, row: Row) -> None:
        self._remember_unique(row)
        self.pool.of(self.t.name).append(row)
        self.pool.new.setdefault(self.t.name, []).append(row)
        for fk in self.t.foreign_keys:
            if fk.parent == self.t.name:
                key = tuple(row.get(c) for c in fk.parent_columns)
                if all(v is not None for v in key):
                    self.candidates[fk.id].append(key)

    # -- inserting
    def _insert(self, rows: Sequence[Row]) -> list[Row]:
        sql, bindings = _insert_sql(self.t, rows, self.returning)
        result = self.do.sql.exec(sql, *bindings).raw().to_array()
        names = [c.name for c in self.writable]
        return [dict(zip(names, r, strict=False)) for r in result]

    def run(self) -> int:
        if self.self_ref:
            return sum(self._one(i) for i in range(self.n))
        # build every row first, insert them in as few statements as possible
        planned = self._plan()
        inserted = 0
        groups: dict[tuple[str, ...], list[tuple[int, Row]]] = {}
        for i, row in planned:
            groups.setdefault(tuple(row), []).append((i, row))
        per_statement = max(1, 100 // max(1, len(self.writable)))
        for cols, group in groups.items():
            size = per_statement if cols else 1  # DEFAULT VALUES inserts one row
            for start in range(0, len(group), size):
                batch = group[start : start + size]
                try:
                    returned = self._insert([r for _, r in batch])
                except SqlError:
                    for _, r in batch:
                        self._forget_unique(r)
                    inserted += sum(self._one(i) for i, _ in batch)
                    continue
                for r in returned:
                    self._remember(r)
                inserted += len(returned)
        return inserted

    def _plan(self) -> list[tuple[int, Row]]:
        """The rows to insert. Memoised: the same table definition with the same parent keys
        and no rows of its own plans the same rows (seeding every version of a bundle meets
        the same tables again and again)."""
        key: tuple[object, ...] | None = None
        if not self.pool.count(self.t.name):
            cands = tuple(tuple(self.candidates[fk.id]) for fk in self.t.foreign_keys)
            key = (self.seed_key, self.nulls, self.n, self.t, cands)
            memo = _PLAN_CACHE.get(key)
            if memo is not None:
                memo_rows, memo_notes, state, serial = memo
                for note in memo_notes:
                    self.report.note(self.t.name, note)
                self.rng.setstate(state)
                self.serial = serial
                for _, row in memo_rows:
                    self._remember_unique(row)
                return [(i, dict(row)) for i, row in memo_rows]
        planned: list[tuple[int, Row]] = []
        notes: list[str] = []
        for i in range(self.n):
            for attempt in range(MAX_ATTEMPTS):
                self.serial += 1
                built = self._build(i, attempt)
                if isinstance(built, str):
                    notes.append(built)
                    break
                if built is None:
                    continue
                self._remember_unique(built)
                planned.append((i, built))
                break
            else:
                notes.append("no distinct value left for a unique column set")
        for note in notes:
            self.report.note(self.t.name, note)
        if key is not None:
            if len(_PLAN_CACHE) > 4096:
                _PLAN_CACHE.clear()
            _PLAN_CACHE[key] = (
                [(i, dict(r)) for i, r in planned],
                notes,
                self.rng.getstate(),
                self.serial,
            )
        return planned

    def _one(self, i: int) -> int:
        """Insert row ``i`` on its own, retrying with other values; 1 if it went in."""
        last_error = "no distinct value left for a unique column set"
        for attempt in range(MAX_ATTEMPTS):
            self.serial += 1
            built = self._build(i, attempt)
            if isinstance(built, str):
                self.report.note(self.t.name, built)
                return 0
            if built is None:
                continue
            try:
                returned = self._insert([built])
            except SqlError as exc:
                last_error = str(exc)
                continue
            self._remember(returned[0])
            return 1
        self.report.note(
            self.t.name, f"a row was given up after {MAX_ATTEMPTS} tries: {last_error}"
        )
        return 0

    def _build(self, i: int, attempt: int) -> dict[str, object] | str | None:
        rng = self.rng
        row: dict[str, object] = {}
        self_point: list[ForeignKeyInfo] = []
        mixed = self.nulls and attempt < MAX_ATTEMPTS // 2
        # composite keys first: a column shared by several foreign keys (``userId`` in
        # ``(userId, listId)`` and ``(userId, tagId)``) must agree with all of them
        for fk in sorted(self.t.foreign_keys, key=lambda f: (-len(f.columns), f.id)):
            fixed = {j: row[c] for j, c in enumerate(fk.columns) if c in row}
            if len(fixed) == len(fk.columns):
                continue
            free = [c for c in fk.columns if c not in row]
            cols = [self.t.column(c) for c in free]
            # MATCH SIMPLE: a NULL in any column of the key satisfies the constraint
            nullable = any(c is not None and not c.notnull for c in cols)
            nulls = {c: None for c in free if (col := self.t.column(c)) and not col.notnull}
            cands = self.candidates.get(fk.id, [])
            if fixed:
                cands = [k for k in cands if all(k[j] == v for j, v in fixed.items())]
            is_self = fk.parent == self.t.name
            if nullable and mixed and self.null_row.get(free[0]) == i:
                row.update(nulls)
                continue
            if not cands:
                if nullable:
                    row.update(nulls)
                elif is_self and not fixed:
                    self_point.append(fk)
                elif fixed:
                    return None  # the shared columns picked so far have no match: redraw
                else:
                    return f"parent table {fk.parent} has no rows for {fk.describe(self.t.name)}"
                continue
            pick = self._pick(fk, cands, attempt)
            row.update(dict(zip(fk.columns, pick, strict=True)))
        for c in self.writable:
            if c.name in row:
                continue
            if c.name == self.t.rowid_alias and not any(
                c.name in fk.parent_columns for fk in self_point
            ):
                continue  # the rowid: let SQLite number the rows
            hints = self.hints.get(c.name.lower(), _NO_HINTS)
            unique = c.name.lower() in self.unique_cols
            if c.default is not None and not c.pk:
                use_default = rng.random() < (0.35 if attempt < 3 and not unique else 0.0)
                if use_default:
                    continue
            if not c.notnull and not c.pk and mixed and self.null_row.get(c.name) == i:
                row[c.name] = None
                continue
            if c.name == self.t.rowid_alias:
                row[c.name] = self._next_rowid()
                continue
            row[c.name] = _value(c, self.t, hints, rng, self.serial, unique)
        for fk in self_point:
            values = [row.get(pc) for pc in fk.parent_columns]
            if any(v is None for v in values):
                return f"cannot point {fk.describe(self.t.name)} at its own row"
            row.update(dict(zip(fk.columns, values, strict=True)))
        for u in self.t.unique:
            if all(c in row for c in u):
                key = tuple(row[c] for c in u)
                if all(v is not None for v in key) and key in self.used[u]:
                    # a picked parent key or value repeats a unique key: draw again
                    return None
        return row

    def _pick(
        self, fk: ForeignKeyInfo, cands: list[tuple[object, ...]], attempt: int
    ) -> tuple[object, ...]:
        # prefer parent keys not yet used by this FK when the FK columns are unique
        cols = tuple(fk.columns)
        for u in self.t.unique:
            if set(u) <= set(cols):
                idx = [cols.index(c) for c in u]
                free = [k for k in cands if tuple(k[j] for j in idx) not in self.used[u]]
                if free:
                    return self.rng.choice(free)
        return self.rng.choice(cands)

    def _next_rowid(self) -> int:
        if self.next_rowid is None:
            alias = quote_ident(self.t.rowid_alias or "rowid")
            rows = self.do.sql.exec(
                f"SELECT coalesce(max({alias}), 0) FROM {quote_ident(self.t.name)}"
            ).raw()
            self.next_rowid = int(rows.to_array()[0][0])
        self.next_rowid += 1
        return self.next_rowid


def seed(
    do: DurableObjectStorage,
    *,
    rows_per_table: int = 3,
    rng_seed: int = 0,
    nulls: bool = True,
    tables: Sequence[str] | None = None,
    link_new: bool = False,
    schema: dict[str, TableInfo] | None = None,
) -> SeedReport:
    """Insert ``rows_per_table`` realistic rows into every user table of ``do``.

    Tables are seeded parents first; foreign-key columns get keys that exist in the parent
    (composite keys as whole tuples), self references start NULL (or point at their own row
    when NOT NULL) and then point at earlier rows. With ``nulls`` (the default) every nullable
    column holds NULL in one row and values in the others, so a recreation that copies NULLs
    into a NOT NULL column fails; ``nulls=False`` fills them all. Columns with a DEFAULT are
    sometimes left out so the default applies. UNIQUE columns get distinct values, CHECK
    constraints are read for hints and a row that still fails is retried with other values and
    finally given up (listed in the report). Generated columns are skipped. The result is
    deterministic for a given database state and ``rng_seed`` (each table draws from its own
    generator, so adding a table does not change the others' rows). Runs in one
    ``transactionSync``.

    ``tables`` limits the seeding to those tables (their foreign keys point at the rows their
    parents already hold). With ``link_new`` a foreign key points only at rows of this call
    when its parent got some here (self references only at rows of this call), so each call
    adds a batch of rows linked among themselves to a database that already has rows.
    ``schema``: what :func:`read_tables` returns for ``do`` now, when the caller has it.
    """
    report = SeedReport()

    known = schema

    def body() -> None:
        schema = known if known is not None else read_tables(do)
        if tables is None:
            pool = _Pool(do, schema)
            order = seed_order(schema)
        else:
            # only the wanted tables are ordered and counted (and their parents counted): a
            # seed of a few tables costs the same in a schema of 10 tables or of 1000
            wanted = {n: schema[n] for n in tables if n in schema}
            parents = {fk.parent for t in wanted.values() for fk in t.foreign_keys}
            pool = _Pool(do, schema, [*wanted, *sorted(parents - set(wanted))])
            order = seed_order(wanted)
        pool.link_new = link_new
        for name in order:
            key = f"{rng_seed}:{name}"
            rng = random.Random(key)
            try:
                seeder = _TableSeeder(
                    do, schema[name], pool, rng, rows_per_table, nulls, report, key
                )
                report.rows[name] = seeder.run()
            except SqlError as exc:  # a table the seeder cannot even read: note it, go on
                report.rows.setdefault(name, 0)
                report.note(name, str(exc))

    do.transaction_sync(body)
    return report


# ----------------------------------------------------------------------------- bulk


def _bulk_expr(
    col: ColumnInfo, table: TableInfo, hints: ColumnHints, unique: bool, var: str = "i"
) -> str:
    """A deterministic SQL expression of the row number ``var`` (1..n) for ``col``."""
    kind = _kind(col, hints)
    aff = col.affinity
    if hints.choices:
        whens = " ".join(
            f"WHEN {j} THEN {sql_literal(v)}" for j, v in enumerate(hints.choices[:50])
        )
        return f"CASE {var} % {min(len(hints.choices), 50)} {whens} END"
    if aff == "BLOB" and "BLOB" in col.decl_type.upper():
        return f"CAST(printf('%012d', {var}) AS BLOB)"
    if aff in ("INTEGER", "NUMERIC", "REAL"):
        lo = hints.low if hints.low is not None else None
        hi = hints.high if hints.high is not None else None
        if kind == "bool" and not unique:
            return f"({var} % 2)"
        if kind == "time":
            scale = " * 1000" if _is_ms(col) else ""
            return f"((1700000000 + {var} * 37){scale})"
        if lo is not None or hi is not None:
            a = math.ceil(lo + (1 if hints.low_strict else 0)) if lo is not None else 1
            b = math.floor(hi - (1 if hints.high_strict else 0)) if hi is not None else a + 999
            if unique:
                return f"({a} + {var})"
            return f"({a} + ({var} * 7919) % {max(b - a + 1, 1)})"
        if unique or col.pk:
            return f"({var})"
        if aff == "REAL":
            return f"(({var} * 7919) % 100000 / 100.0)"
        return f"(({var} * 7919) % 100000)"
    if kind == "email":
        return f"('user' || {var} || '@example.com')"
    if kind == "url":
        return f"('https://example.com/item/' || {var})"
    if kind == "json":
        return f"json_object('n', {var}, 'key', 'value')"
    if kind == "time":
        return f"datetime(1700000000 + {var} * 37, 'unixepoch')"
    if kind == "bool":
        return f"CASE {var} % 2 WHEN 0 THEN 'false' ELSE 'true' END"
    prefix = re.sub(r"[^a-z0-9]+", "-", col.name.lower()).strip("-") or "v"
    if hints.like_prefix:
        prefix = hints.like_prefix + prefix
    expr = f"('{prefix}-' || {var})"
    if hints.min_len:
        expr = f"({expr} || '{'x' * hints.min_len}')"
    if hints.max_len is not None:
        expr = (
            f"substr({expr}, -{max(hints.max_len, 1)})"
            if unique
            else (f"substr({expr}, 1, {max(hints.max_len, 1)})")
        )
    return expr


def bulk_seed(
    do: DurableObjectStorage, rows: int, tables: Collection[str] | None = None
) -> SeedReport:
    """Fill every empty user table with ``rows`` rows, one ``INSERT ... SELECT`` per table.

    ``tables``: only these (names as in the schema; default every user table).

    For timing estimates: values are deterministic functions of the row number (distinct where
    a column is unique), nullable columns are filled, and foreign keys point at existing parent
    rows (row ``i`` of the child at row ``i mod parents`` of the parent, through a numbered CTE
    of the parent's keys), self references at an earlier row. Tables that already hold rows
    are left alone (so it can top up a database between migrations). A table whose insert
    fails (a CHECK the hints do not satisfy, say) is retried with only its NOT NULL columns,
    then left empty and listed in the report.
    """
    report = SeedReport()
    if rows <= 0:
        return report

    def count(name: str) -> int:
        return int(do.sql.exec(f"SELECT count(*) FROM {quote_ident(name)}").raw().to_array()[0][0])

    def has_rows(name: str) -> bool:
        return bool(do.sql.exec(f"SELECT 1 FROM {quote_ident(name)} LIMIT 1").raw().to_array())

    def body() -> None:
        schema = read_tables(do)
        if tables is None:
            order = seed_order(schema)
        else:
            wanted = set(tables)
            order = seed_order({n: t for n, t in schema.items() if n in wanted})
        # which tables hold rows, a few statements for all of them (count(*) per table scanned
        # every row of every table before each migration: quadratic in the bundle)
        triggers = do.sql.exec(_TRIGGER_SQL).raw().to_array()
        filled = set() if triggers else tables_with_rows(do, order)
        for name in order:
            # through a trigger an insert can fill or empty another table: then look again
            # right before each table, as the inserts go
            if has_rows(name) if triggers else name in filled:
                continue
            inserted = 0
            error = ""
            for minimal in (False, True):
                sql = _bulk_sql(do, schema[name], schema, rows, minimal)
                if sql.startswith("!"):
                    error = sql[1:]
                    break
                try:
                    do.sql.exec(sql)
                except SqlError as exc:
                    error = str(exc)
                    continue
                inserted = count(name)
                break
            report.rows[name] = inserted
            if not inserted and error:
                report.note(name, error)

    do.transaction_sync(body)
    return report


_TRIGGER_SQL = "SELECT 1 FROM sqlite_master WHERE type = 'trigger' LIMIT 1"
#: result columns per statement (a DO allows 100; compound SELECTs only 5 terms)
_EXISTS_PER_QUERY = 90


def tables_with_rows(do: DurableObjectStorage, names: Sequence[str]) -> set[str]:
    """The tables of ``names`` that hold at least one row (one statement per 90 tables)."""
    found: set[str] = set()
    for i in range(0, len(names), _EXISTS_PER_QUERY):
        batch = names[i : i + _EXISTS_PER_QUERY]
        probes = ", ".join(f"EXISTS (SELECT 1 FROM {quote_ident(n)})" for n in batch)
        row = do.sql.exec(f"SELECT {probes}").raw().to_array()[0]
        found.update(n for n, hit in zip(batch, row, strict=True) if hit)
    return found


def _bulk_sql(
    do: DurableObjectStorage,
    t: TableInfo,
    schema: dict[str, TableInfo],
    rows: int,
    minimal: bool,
) -> str:
    hints = check_hints(t.sql)
    unique_cols = {c.lower() for u in t.unique for c in u}
    ctes = [f"n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})"]
    joins: list[str] = []
    exprs: dict[str, str] = {}
    for fk in t.foreign_keys:
        if any(c in exprs for c in fk.columns):
            continue
        fk_cols = [t.column(c) for c in fk.columns]
        nullable = all(fc is not None and not fc.notnull for fc in fk_cols)
        if fk.parent == t.name:
            # self reference: row i points at row i // 2 (row 1 at itself when NOT NULL)
            earlier = "(max(i / 2, 1))"
            parent_cols = [t.column(pc) for pc in fk.parent_columns]
            if all(pc is not None for pc in parent_cols):
                for c, pcol in zip(fk.columns, parent_cols, strict=True):
                    assert pcol is not None
                    h = hints.get(pcol.name.lower(), ColumnHints())
                    target = _bulk_expr(pcol, t, h, True, earlier)
                    exprs[c] = (
                        f"CASE WHEN i = 1 THEN NULL ELSE {target} END" if nullable else target
                    )
                continue
            for c in fk.columns:
                exprs[c] = "NULL"
            continue
        parent = schema.get(fk.parent)
        if parent is None:
            if nullable:
                exprs.update({c: "NULL" for c in fk.columns})
                continue
            return f"!parent table {fk.parent} does not exist"
        cond = " AND ".join(f"{quote_ident(pc)} IS NOT NULL" for pc in fk.parent_columns)
        pcount = int(
            do.sql.exec(f"SELECT count(*) FROM {quote_ident(parent.name)} WHERE {cond}")
            .raw()
            .to_array()[0][0]
        )
        if pcount == 0:
            if nullable:
                exprs.update({c: "NULL" for c in fk.columns})
                continue
            return f"!parent table {fk.parent} has no rows for {fk.describe(t.name)}"
        alias = f"p{fk.id}"
        pcols = ", ".join(f"{quote_ident(pc)} AS k{j}" for j, pc in enumerate(fk.parent_columns))
        ctes.append(
            f"{alias} AS MATERIALIZED (SELECT row_number() OVER () AS rn, {pcols} "
            f"FROM {quote_ident(parent.name)} WHERE {cond})"
        )
        joins.append(f"JOIN {alias} ON {alias}.rn = ((n.i - 1) % {pcount}) + 1")
        for j, c in enumerate(fk.columns):
            exprs[c] = f"{alias}.k{j}"
    for col in t.writable:
        if col.name in exprs:
            continue
        if minimal and not col.pk and (not col.notnull or col.default is not None):
            continue
        h = hints.get(col.name.lower(), ColumnHints())
        exprs[col.name] = _bulk_expr(col, t, h, col.name.lower() in unique_cols or bool(col.pk))
    if not exprs:
        return f"WITH RECURSIVE {ctes[0]} INSERT INTO {quote_ident(t.name)} (rowid) SELECT i FROM n"
    cols = ", ".join(quote_ident(c) for c in exprs)
    vals = ", ".join(exprs.values())
    return (
        f"WITH RECURSIVE {', '.join(ctes)} INSERT INTO {quote_ident(t.name)} ({cols}) "
        f"SELECT {vals} FROM n {' '.join(joins)}"
    )
