"""data_preserved: upgrading a DO that has data keeps the rows it should.

Why: the worst Durable Object migration bugs pass every schema test. A drizzle-kit table
recreation inside drizzle's migrator runs with foreign keys ON (its ``PRAGMA foreign_keys=OFF``
is a no-op inside ``transactionSync``), so ``DROP TABLE parent`` silently cascades into children
or wipes ``SET NULL`` links, and ``INSERT INTO __new_X ... SELECT`` copies NULLs into a new NOT
NULL column. All of that needs rows to show, and every DO instance upgrades lazily from whatever
version it was at. :func:`data_preserved` therefore seeds the database at every historical
version, upgrades it, and compares rows and foreign-key values, blaming the exact statement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bundle import Bundle, Migration
from .errors import CheckFailure, MigrationError, SqlError
from .migrator import migrate
from .seed import (
    ForeignKeyInfo,
    TableInfo,
    quote_ident,
    read_tables,
    seed,
    sql_literal,
)
from .sqltext import split
from .storage import DurableObjectStorage

if TYPE_CHECKING:
    from .checks import CheckContext

__all__ = [
    "Statement",
    "classify_migration",
    "data_preserved",
]


# ----------------------------------------------------------------------------- settings


def _setting(ctx: CheckContext, name: str, default: Any) -> Any:
    value = getattr(ctx.settings, name, None)
    if value is None:
        value = ctx.extra.get(name, default)
    return value


# ----------------------------------------------------------------------------- statements

_IDENT = r'(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`|\[[^\]]+\]|[^\s(),;."`\[]+)'
_QNAME = rf"(?:{_IDENT}\s*\.\s*)?({_IDENT})"
_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("drop-table", re.compile(rf"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?{_QNAME}", re.I)),
    ("delete", re.compile(rf"DELETE\s+FROM\s+{_QNAME}", re.I)),
    ("update", re.compile(rf"UPDATE\s+(?:OR\s+\w+\s+)?{_QNAME}\s+SET\b", re.I)),
    ("replace", re.compile(rf"(?:REPLACE|INSERT\s+OR\s+REPLACE)\s+INTO\s+{_QNAME}", re.I)),
    ("insert", re.compile(rf"INSERT\s+(?:OR\s+\w+\s+)?INTO\s+{_QNAME}", re.I)),
    (
        "rename-table",
        re.compile(rf"ALTER\s+TABLE\s+{_QNAME}\s+RENAME\s+TO\s+({_IDENT})", re.I),
    ),
    (
        "rename-column",
        re.compile(
            rf"ALTER\s+TABLE\s+{_QNAME}\s+RENAME\s+(?:COLUMN\s+)?({_IDENT})\s+TO\s+({_IDENT})",
            re.I,
        ),
    ),
    (
        "drop-column",
        re.compile(rf"ALTER\s+TABLE\s+{_QNAME}\s+DROP\s+(?:COLUMN\s+)?({_IDENT})", re.I),
    ),
    (
        "create-table",
        re.compile(rf"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_QNAME}", re.I),
    ),
]
#: statements whose effects on rows are intended by the author
INTENTIONAL = frozenset({"delete", "update", "replace", "upsert", "drop-table", "drop-column"})


def _unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in '"`':
        return name[1:-1].replace(name[0] * 2, name[0])
    if len(name) >= 2 and name[0] == "[" and name[-1] == "]":
        return name[1:-1]
    return name


@dataclass(frozen=True)
class Statement:
    """One statement of a migration, with what it does to tables (see :func:`classify_migration`).

    ``kind`` is one of ``drop-table``, ``delete``, ``update``, ``replace``, ``upsert``,
    ``insert``, ``rename-table``, ``rename-column``, ``drop-column``, ``create-table``,
    ``recreate-create``, ``recreate-copy``, ``recreate-drop``, ``recreate-rename`` (the four
    steps of a table rebuild) or ``other``.
    """

    tag: str
    chunk: int
    #: offset of the statement inside its chunk
    start: int
    text: str
    line: int
    path: Path | None
    kind: str
    table: str | None = None
    #: rename target (table or column)
    new_name: str | None = None
    #: updated columns (``update``; None = unknown/all), dropped or renamed column
    columns: tuple[str, ...] | None = ()
    #: ``recreate-copy``: (new column, source expression) pairs
    copy: tuple[tuple[str, str], ...] = ()
    #: the table a ``recreate-*`` statement rebuilds
    rebuilds: str | None = None

    @property
    def where(self) -> str:
        loc = f"{self.path}:{self.line}" if self.path is not None else f"line {self.line}"
        return f"{loc} (migration {self.tag}, chunk {self.chunk})"

    @property
    def intentional(self) -> bool:
        return self.kind in INTENTIONAL


def _statement_kind(text: str) -> tuple[str, list[str]]:
    body = _LEADING_COMMENTS.sub("", text, count=1)
    for kind, pattern in _PATTERNS:
        m = pattern.match(body)
        if m:
            return kind, [_unquote(g) for g in m.groups() if g is not None]
    return "other", []


def _update_columns(text: str) -> tuple[str, ...] | None:
    """Columns an UPDATE sets (sqlglot; a regex fallback; None when unknown)."""
    try:
        import sqlglot
        from sqlglot import exp

        tree = sqlglot.parse_one(_LEADING_COMMENTS.sub("", text, count=1), read="sqlite")
        if isinstance(tree, exp.Update):
            cols: list[str] = []
            for e in tree.expressions:
                target = e.this if isinstance(e, exp.EQ) else None
                if isinstance(target, exp.Column):
                    cols.append(str(target.name))
                elif isinstance(target, exp.Tuple):
                    cols.extend(str(c.name) for c in target.expressions)
                else:
                    return None
            return tuple(cols)
    except Exception:
        pass
    m = re.search(r"\bSET\b(.*?)(?:\bWHERE\b|\bFROM\b|\bRETURNING\b|$)", text, re.I | re.S)
    if not m:
        return None
    found = re.findall(rf"(?:^|,)\s*({_IDENT})\s*=", m.group(1))
    return tuple(_unquote(f) for f in found) or None


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    quote: str | None = None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def _top_level(text: str) -> list[tuple[int, int]]:
    """(start, depth) of every word outside quotes, with its parenthesis depth."""
    out: list[tuple[int, int]] = []
    depth = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            j = text.find(close, i + 1)
            while j >= 0 and close != "]" and j + 1 < n and text[j + 1] == close:
                j = text.find(close, j + 2)
            i = n if j < 0 else j + 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif (ch.isalpha() or ch == "_") and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "_$")
        ):
            out.append((i, depth))
            while i < n and (text[i].isalnum() or text[i] in "_$"):
                i += 1
            continue
        i += 1
    return out


def _insert_select(text: str) -> tuple[list[str], list[str], str | None]:
    """``INSERT INTO t(a, b) SELECT x, y FROM s ...``: target columns, select list, source.

    Only the outermost SELECT and FROM count (subqueries in the select list are skipped).
    """
    words = _top_level(text)
    select = next((i for i, d in words if d == 0 and text[i : i + 6].upper() == "SELECT"), None)
    if select is None:
        return [], [], None
    frm = next(
        (
            i
            for i, d in words
            if d == 0 and i > select and re.match(r"FROM\b", text[i : i + 5], re.I)
        ),
        None,
    )
    targets: list[str] = []
    head = text[:select]
    m = re.search(r"\((.*)\)\s*$", head, re.S)
    if m:
        targets = [_unquote(t) for t in _split_top(m.group(1))]
    sources = _split_top(text[select + 6 : frm if frm is not None else len(text)])
    source = None
    if frm is not None:
        sm = re.match(rf"FROM\s+{_QNAME}", text[frm:], re.I)
        source = _unquote(sm.group(1)) if sm else None
    return targets, sources, source


def _copy_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """``INSERT INTO new(a, b) SELECT x, y FROM old`` -> ((a, x), (b, y))."""
    targets, sources, _ = _insert_select(text)
    if not targets or len(targets) != len(sources):
        return ()
    return tuple(zip(targets, sources, strict=True))


def _source_table(text: str) -> str | None:
    """The table the outermost SELECT reads (``FROM x``)."""
    return _insert_select(text)[2]


_CLASSIFY_CACHE: dict[tuple[str, str], list[Statement]] = {}


def classify_migration(m: Migration) -> list[Statement]:
    """The statements of ``m`` as the DO runs them, each with its kind and target table.

    Recreations are recognised as a unit inside one migration: a ``DROP TABLE X`` followed by
    ``ALTER TABLE Y RENAME TO X`` (drizzle-kit's ``__new_X`` rebuild, or any hand-written one),
    or ``ALTER TABLE X RENAME TO Y`` + ``CREATE TABLE X`` + copy + ``DROP TABLE Y`` (the older
    rename-first rebuild). Their drops are not intentional deletions.
    """
    key = (m.tag, m.sha256)
    cached = _CLASSIFY_CACHE.get(key)
    if cached is not None:
        return cached
    raw: list[Statement] = []
    for ci, chunk in enumerate(m.chunks):
        for piece in split(chunk):
            if not piece.has_statement:
                continue
            text = piece.text
            lead = len(text) - len(text.lstrip())
            body = text.strip()
            kind, names = _statement_kind(body)
            st = Statement(
                tag=m.tag,
                chunk=ci,
                start=piece.start + lead,
                text=body,
                line=m.line_of(ci, piece.start + lead),
                path=m.path,
                kind=kind,
                table=names[0] if names else None,
            )
            if kind in ("rename-table",):
                st = _replace(st, new_name=names[1])
            elif kind == "rename-column":
                st = _replace(st, columns=(names[1],), new_name=names[2])
            elif kind == "drop-column":
                st = _replace(st, columns=(names[1],))
            elif kind == "update":
                st = _replace(st, columns=_update_columns(body))
            elif kind == "insert" and re.search(r"\bON\s+CONFLICT\b.*\bDO\s+UPDATE\b", body, re.I):
                st = _replace(st, kind="upsert", columns=None)
            raw.append(st)
    out = _mark_recreations(raw)
    if len(_CLASSIFY_CACHE) > 8192:
        _CLASSIFY_CACHE.clear()
    _CLASSIFY_CACHE[key] = out
    return out


def _replace(st: Statement, **changes: Any) -> Statement:
    from dataclasses import replace

    return replace(st, **changes)


def _mark_recreations(stmts: list[Statement]) -> list[Statement]:
    out = list(stmts)
    low = [(s.table or "").lower() for s in stmts]
    for i, s in enumerate(stmts):
        if s.kind != "drop-table" or s.table is None:
            continue
        dropped = s.table.lower()
        rebuilt: str | None = None
        temp: str | None = None
        # new-table-first: DROP TABLE X ... ALTER TABLE Y RENAME TO X
        for j in range(i + 1, len(stmts)):
            r = stmts[j]
            if r.kind == "rename-table" and (r.new_name or "").lower() == dropped:
                rebuilt, temp = s.table, r.table
                out[j] = _replace(r, kind="recreate-rename", rebuilds=s.table)
                break
        if rebuilt is None:
            # rename-first: ALTER TABLE X RENAME TO Y; CREATE TABLE X; ...; DROP TABLE Y
            for j in range(i - 1, -1, -1):
                r = stmts[j]
                if r.kind == "rename-table" and (r.new_name or "").lower() == dropped:
                    original = (r.table or "").lower()
                    if any(
                        stmts[x].kind == "create-table" and low[x] == original
                        for x in range(j + 1, i)
                    ):
                        rebuilt, temp = r.table, r.table
                        out[j] = _replace(r, kind="recreate-rename", rebuilds=r.table)
                    break
        if rebuilt is None or temp is None:
            continue
        out[i] = _replace(s, kind="recreate-drop", rebuilds=rebuilt)
        temp_low = temp.lower()
        for j, r in enumerate(stmts):
            if r.kind == "create-table" and low[j] == temp_low and out[j].kind == "create-table":
                out[j] = _replace(r, kind="recreate-create", rebuilds=rebuilt)
            elif r.kind == "insert" and low[j] == temp_low:
                src = _source_table(r.text)
                if src is not None and src.lower() in (dropped, (rebuilt or "").lower()):
                    out[j] = _replace(
                        r, kind="recreate-copy", rebuilds=rebuilt, copy=_copy_pairs(r.text)
                    )
    return out


# ----------------------------------------------------------------------------- table fates


@dataclass
class _Fate:
    """What the remaining migrations do to one table of version k, on purpose."""

    original: str
    current: str | None
    names: list[str]
    columns: dict[str, str | None]
    dropped_by: Statement | None = None
    deleted: bool = False
    #: original column names updated on purpose; None = possibly all
    updated: set[str] | None = field(default_factory=set)

    def name_key(self) -> str:
        """``current`` in lower case ("" once dropped: no statement names that)."""
        return "" if self.current is None else self.current.lower()

    def mark_updated(self, cols: Iterable[str] | None) -> None:
        if self.updated is None:
            return
        if cols is None:
            self.updated = None
            return
        self.updated.update(cols)


def _fates(tables: dict[str, TableInfo], stmts: Sequence[Statement]) -> dict[str, _Fate]:
    fates = {
        name: _Fate(name, name, [name], {c.name: c.name for c in t.columns})
        for name, t in tables.items()
    }
    # current name (lower case) -> fates in table order: find() was a scan of every table for
    # every statement, cubic over data_preserved's versions
    order = {id(fate): i for i, fate in enumerate(fates.values())}
    by_current: dict[str, list[_Fate]] = {}
    for fate in fates.values():
        by_current.setdefault(fate.name_key(), []).append(fate)

    def find(name: str | None) -> _Fate | None:
        if not name:
            return None
        found = by_current.get(name.lower())
        return found[0] if found else None

    def set_current(f: _Fate, name: str | None) -> None:
        by_current[f.name_key()].remove(f)
        f.current = name
        same = by_current.setdefault(f.name_key(), [])
        same.append(f)
        same.sort(key=lambda g: order[id(g)])

    def orig_cols(f: _Fate, cols: Iterable[str]) -> list[str]:
        wanted = {c.lower() for c in cols}
        return [o for o, cur in f.columns.items() if cur is not None and cur.lower() in wanted]

    for s in stmts:
        f = find(s.table)
        if s.kind == "rename-table" and f is not None and s.new_name:
            set_current(f, s.new_name)
            f.names.append(s.new_name)
        elif s.kind == "recreate-copy" and s.rebuilds is not None:
            g = find(s.rebuilds)
            if g is None:
                continue
            new_cols: dict[str, str | None] = {}
            for orig, cur in g.columns.items():
                new_cols[orig] = None
                if cur is None:
                    continue
                for target, source in s.copy:
                    src = _unquote(source)
                    if src.lower() == cur.lower():
                        new_cols[orig] = target
                        break
                    idents = {_unquote(x).lower() for x in re.findall(_IDENT, source)}
                    if cur.lower() in idents:
                        new_cols[orig] = target
                        g.mark_updated([orig])  # computed on purpose (coalesce, cast, ...)
                        break
            if s.copy:
                g.columns = new_cols
        elif f is None:
            continue
        elif s.kind == "drop-table":
            f.dropped_by = s
            set_current(f, None)
        elif s.kind in ("delete", "replace"):
            f.deleted = True
        elif s.kind == "upsert":
            f.mark_updated(None)
        elif s.kind == "update":
            f.mark_updated(None if s.columns is None else orig_cols(f, s.columns))
        elif s.kind == "drop-column" and s.columns:
            for o in orig_cols(f, s.columns):
                f.columns[o] = None
        elif s.kind == "rename-column" and s.columns and s.new_name:
            for o in orig_cols(f, s.columns):
                f.columns[o] = s.new_name
    # deliberate deletes and updates cascade through the FKs on purpose too
    changed = True
    while changed:
        changed = False
        for name, t in tables.items():
            child = fates[name]
            for fk in t.foreign_keys:
                parent = fates.get(fk.parent)
                if parent is None or parent is child:
                    continue
                parent_touched = (
                    parent.deleted
                    or parent.updated is None
                    or bool(parent.updated and set(fk.parent_columns) & parent.updated)
                )
                if not parent_touched:
                    continue
                action = fk.on_delete.upper()
                if parent.deleted and action == "CASCADE" and not child.deleted:
                    child.deleted = True
                    changed = True
                if child.updated is not None and not set(fk.columns) <= child.updated:
                    child.mark_updated(fk.columns)
                    changed = True
    return fates


# ----------------------------------------------------------------------------- snapshots


def _norm(v: object) -> object:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, bytes):
        return v.hex()
    return v


@dataclass
class _Snap:
    key: tuple[str, ...] | None
    fk_cols: tuple[str, ...]
    rows: dict[tuple[object, ...], tuple[object, ...]]
    count: int
    nonnull: dict[str, int]


def _key_of(t: TableInfo) -> tuple[str, ...] | None:
    return t.pk or None


def _snapshot(do: DurableObjectStorage, tables: dict[str, TableInfo]) -> dict[str, _Snap]:
    snaps: dict[str, _Snap] = {}
    for name, t in tables.items():
        fk_cols = tuple(dict.fromkeys(c for fk in t.foreign_keys for c in fk.columns))
        snaps[name] = _read(do, name, _key_of(t), fk_cols)
    return snaps


def _read(
    do: DurableObjectStorage, table: str, key: tuple[str, ...] | None, fk_cols: tuple[str, ...]
) -> _Snap:
    cols = list(key or ()) + list(fk_cols)
    select = ", ".join(quote_ident(c) for c in cols) or "1"
    data = do.sql.exec(f"SELECT {select} FROM {quote_ident(table)}").raw().to_array()
    nk = len(key or ())
    rows: dict[tuple[object, ...], tuple[object, ...]] = {}
    nonnull = {c: 0 for c in fk_cols}
    for r in data:
        for c, v in zip(fk_cols, r[nk:], strict=True):
            if v is not None:
                nonnull[c] += 1
        if key:
            rows[tuple(_norm(v) for v in r[:nk])] = tuple(r[nk:])
    return _Snap(key, fk_cols, rows, len(data), nonnull)


# ----------------------------------------------------------------------------- findings


@dataclass
class _Damage:
    statement: Statement
    table: str
    column: str | None
    amount: int
    fks: list[ForeignKeyInfo]


@dataclass
class _Loss:
    table: str
    column: str | None
    lost: int
    total: int
    examples: list[str]
    culprits: list[_Damage] = field(default_factory=list)
    #: every changed foreign-key value became NULL
    nulled: bool = False


@dataclass
class _Finding:
    kind: str  # "loss" | "failure" | "seed"
    versions: list[int]
    sections: list[tuple[str, str]]
    headline: str


class _Findings:
    def __init__(self) -> None:
        self.by_key: dict[object, _Finding] = {}

    def add(self, key: object, version: int, make: Callable[[], _Finding]) -> None:
        found = self.by_key.get(key)
        if found is None:
            self.by_key[key] = make()
        elif version not in found.versions:
            found.versions.append(version)


def _version_label(bundle: Bundle, k: int) -> str:
    return f"version {k} ({bundle.migrations[k - 1].tag})"


def _versions_text(bundle: Bundle, versions: Iterable[int]) -> str:
    """``version 1 (tag)``, runs of three or more as ``version 4 (tag) ... version 9 (tag)``."""
    ordered = sorted(set(versions))
    runs: list[list[int]] = []
    for v in ordered:
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:
            parts.append(
                f"{_version_label(bundle, run[0])} ... {_version_label(bundle, run[-1])} "
                f"({len(run)} versions)"
            )
        else:
            parts.extend(_version_label(bundle, v) for v in run)
    return ", ".join(parts)


# ----------------------------------------------------------------------------- user seed


def _load_user_seed(ctx: CheckContext) -> Callable[[str, DurableObjectStorage], None] | None:
    spec = _setting(ctx, "seed", None)
    if spec is None:
        return None
    if callable(spec):
        fn: Callable[[str, DurableObjectStorage], None] = spec
        return fn
    path = Path(spec)
    if not path.is_absolute() and ctx.project is not None:
        root = getattr(ctx.project, "root", None)
        if root is not None:
            path = Path(root) / path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckFailure(f"cannot read the seed file {path}", [("Error", str(exc))]) from None
    if not isinstance(data, dict) or not all(
        isinstance(v, dict)
        and all(
            isinstance(rows, list) and all(isinstance(r, dict) for r in rows) for rows in v.values()
        )
        for v in data.values()
    ):
        raise CheckFailure(
            f"the seed file {path} is not {{tag: {{table: [row objects]}}}}",
            [("Expected", '{"0002_add_posts": {"users": [{"id": 1, "name": "Ada"}]}}')],
        )
    by_tag: dict[str, dict[str, list[dict[str, object]]]] = {}
    known = {m.tag for m in ctx.bundle.migrations}
    for key, tables in data.items():
        tag = key
        if key not in known:
            try:
                tag = ctx.bundle.migration(key).tag
            except Exception:
                raise CheckFailure(
                    f"the seed file {path} names migration {key!r}, which is not in the bundle",
                    [("Known migrations", "\n".join(m.tag for m in ctx.bundle.migrations))],
                ) from None
        by_tag.setdefault(tag, {}).update(tables)

    def apply(tag: str, do: DurableObjectStorage) -> None:
        for table, rows in by_tag.get(tag, {}).items():
            for row in rows:
                cols = ", ".join(quote_ident(c) for c in row)
                vals = ", ".join(sql_literal(v) for v in row.values())
                sql = (
                    f"INSERT INTO {quote_ident(table)} ({cols}) VALUES ({vals})"
                    if row
                    else f"INSERT INTO {quote_ident(table)} DEFAULT VALUES"
                )
                do.sql.exec(sql)

    return apply


def _run_user_seed(
    fn: Callable[[str, DurableObjectStorage], None] | None,
    tag: str,
    do: DurableObjectStorage,
) -> None:
    if fn is None:
        return
    try:
        do.transaction_sync(lambda: fn(tag, do))
    except SqlError as exc:
        raise CheckFailure(
            f"the user seed rows for {tag} cannot be inserted",
            [("SQLite error", str(exc)), ("Version", f"the DO after migration {tag}")],
        ) from None


# ----------------------------------------------------------------------------- the check


def _target(ctx: CheckContext) -> int:
    """The newest version a fresh DO reaches (head unless a migration fails when empty)."""
    n = len(ctx.bundle.migrations)
    k = n
    while k > 0 and ctx.images.version(ctx.bundle, k).error is not None:
        k -= 1
    return k


def _migrate(do: DurableObjectStorage, bundle: Bundle, fk_off: bool) -> list[str]:
    if fk_off:
        do.sql.exec("PRAGMA foreign_keys=OFF")
    return migrate(do, bundle).applied


def data_preserved(ctx: CheckContext) -> None:
    """Upgrading a DO that has data keeps its rows and its foreign-key values.

    For every version ``k`` (``0 < k < n``): the DO image at version ``k`` is seeded (the user's
    rows for that version from ``Settings.seed`` first, then :func:`~pytest_dosqlite.seed.seed`
    rows with NULLs in every nullable column of one row), every table's rows (by primary key)
    and foreign-key values are recorded, the DO is migrated to head with drizzle's migrator, and
    the rows are compared. Rows or foreign-key values may only go where a remaining statement
    removes or changes them on purpose: ``DELETE``, ``UPDATE``, ``REPLACE``, a ``DROP TABLE``
    that is not part of a table rebuild, ``DROP COLUMN`` (and the FK actions those fire). When
    something is lost, the upgrade is replayed statement by statement to name the statement
    that did it, with the foreign key whose action fired.

    When the seeded upgrade fails but the same upgrade of the empty DO passes (NULLs copied into
    a new NOT NULL column, duplicates under a new unique index, children under a NO ACTION
    foreign key of a rebuilt parent), that is reported too, and the version is checked again
    with every nullable column filled so other losses still show.

    Settings (``ctx.settings`` attributes or ``ctx.extra`` keys): ``seed`` (callable
    ``seed(tag, do)`` or a JSON file ``{tag: {table: [rows]}}``), ``seed_rows`` (3),
    ``seed_rng`` (0), ``foreign_keys_off`` (False: migrate as plain ``migrate()``; True: as a
    constructor that runs ``PRAGMA foreign_keys=OFF`` before it).
    """
    bundle = ctx.bundle
    target = _target(ctx)
    if target < 2:
        return
    upto = bundle if target == len(bundle.migrations) else bundle.prefix(target)
    rows = int(_setting(ctx, "seed_rows", 3))
    rng = int(_setting(ctx, "seed_rng", 0))
    fk_off = bool(_setting(ctx, "foreign_keys_off", False)) or (
        ctx.extra.get("fleet_start") == "drizzle-fk-off"
    )
    user_seed = _load_user_seed(ctx)
    classified = [classify_migration(m) for m in upto.migrations]
    findings = _Findings()
    head_defaults = _head_defaults(ctx, target)

    def seeded_copy(image: bytes, tag: str | None, nulls: bool) -> _Seeded:
        do = DurableObjectStorage(image=image)
        if tag is not None:
            _run_user_seed(user_seed, tag, do)
        report = seed(do, rows_per_table=rows, rng_seed=rng, nulls=nulls)
        for table, reasons in report.problems.items():
            for reason in reasons:
                seed_problems.setdefault(f"{table}: {reason}", tag or "")
        tables = read_tables(do)
        return _Seeded(do, do.image(), tables, _snapshot(do, tables))

    seed_problems: dict[str, str] = {}
    checked: list[int] = []
    ctx.extra["data_preserved"] = {"versions": checked, "seed_problems": seed_problems}
    for k in range(1, target):
        version = ctx.images.version(bundle, k)
        if version.image is None:
            continue
        tag = bundle.migrations[k - 1].tag
        state = seeded_copy(version.image, tag, nulls=True)
        try:
            applied = _migrate(state.do, upto, fk_off)
        except MigrationError as exc:
            state.do.close()
            if not _passes_empty(version.image, upto, fk_off):
                continue  # not data-dependent: the upgrade checks report it
            _add_failure(findings, bundle, k, exc, state.image, head_defaults)
            # check the rows again without NULLs (and without the user's rows)
            state = seeded_copy(version.image, None, nulls=False)
            try:
                applied = _migrate(state.do, upto, fk_off)
            except MigrationError as exc2:
                state.do.close()
                _add_failure(findings, bundle, k, exc2, state.image, head_defaults)
                continue
        do, seeded, tables, before = state.do, state.image, state.tables, state.before
        checked.append(k)
        applied_tags = set(applied)
        stmts = [
            s
            for m, ss in zip(upto.migrations, classified, strict=True)
            for s in ss
            if m.tag in applied_tags
        ]
        losses = _compare(do, tables, before, _fates(tables, stmts))
        do.close()
        if not losses:
            continue
        _attribute(losses, seeded, upto, fk_off, stmts)
        for loss in losses:
            if loss.culprits and all(
                d.statement.kind in ("delete", "update", "replace", "upsert") for d in loss.culprits
            ):
                continue  # FK actions of deliberate DML
            _add_loss(findings, bundle, k, upto.migrations[-1].tag, loss)

    if findings.by_key:
        failure = _failure(bundle, upto, target, list(findings.by_key.values()))
        if seed_problems:
            failure.sections.append(
                (
                    "Not seeded (the check is blind there)",
                    "\n".join(sorted(seed_problems)),
                )
            )
            failure.args = (failure.render(),)
        raise failure


@dataclass
class _Seeded:
    do: DurableObjectStorage
    image: bytes
    tables: dict[str, TableInfo]
    before: dict[str, _Snap]


def _passes_empty(image: bytes, bundle: Bundle, fk_off: bool) -> bool:
    do = DurableObjectStorage(image=image)
    try:
        _migrate(do, bundle, fk_off)
    except MigrationError:
        return False
    finally:
        do.close()
    return True


def _head_defaults(ctx: CheckContext, target: int) -> dict[tuple[str, str], str]:
    image = ctx.images.version(ctx.bundle, target).image
    if image is None:
        return {}
    do = DurableObjectStorage(image=image)
    out: dict[tuple[str, str], str] = {}
    for t in read_tables(do).values():
        for c in t.columns:
            if c.default is not None:
                out[(t.name.lower(), c.name.lower())] = c.default
    do.close()
    return out


def _compare(
    do: DurableObjectStorage,
    tables: dict[str, TableInfo],
    before: dict[str, _Snap],
    fates: dict[str, _Fate],
) -> list[_Loss]:
    after_tables = read_tables(do)
    by_low = {n.lower(): t for n, t in after_tables.items()}
    losses: list[_Loss] = []
    for name, snap in before.items():
        fate = fates[name]
        if snap.count == 0 or fate.current is None:
            continue
        after_t = by_low.get(fate.current.lower())
        if after_t is None:
            losses.append(_Loss(name, None, snap.count, snap.count, ["the table is gone"]))
            continue
        key = None
        if snap.key:
            mapped = [fate.columns.get(c) for c in snap.key]
            if all(m is not None and after_t.column(m) is not None for m in mapped):
                key = tuple(m for m in mapped if m is not None)
        fk_map: dict[str, str] = {}
        for c in snap.fk_cols:
            cur = fate.columns.get(c)
            if cur is not None and after_t.column(cur) is not None:
                fk_map[c] = cur
        after = _read(do, after_t.name, key, tuple(fk_map.values()))
        # rows
        if not fate.deleted:
            if key is not None:
                gone = [k for k in snap.rows if k not in after.rows]
                if gone:
                    losses.append(
                        _Loss(
                            name,
                            None,
                            len(gone),
                            snap.count,
                            [_fmt_key(snap.key, g) for g in gone[:3]],
                        )
                    )
            elif after.count < snap.count:
                losses.append(_Loss(name, None, snap.count - after.count, snap.count, []))
        # foreign-key values
        for i, c in enumerate(snap.fk_cols):
            if c not in fk_map or fate.updated is None or c in fate.updated:
                continue
            j = list(fk_map).index(c)
            total = snap.nonnull[c]
            if not total:
                continue
            if key is not None:
                changed = [
                    k
                    for k, vals in snap.rows.items()
                    if vals[i] is not None
                    and k in after.rows
                    and _norm(after.rows[k][j]) != _norm(vals[i])
                ]
                if changed:
                    nulled = all(after.rows[k][j] is None for k in changed)
                    examples = [
                        f"{_fmt_key(snap.key, k)}: {c} {snap.rows[k][i]!r} -> {after.rows[k][j]!r}"
                        for k in changed[:3]
                    ]
                    losses.append(_Loss(name, c, len(changed), total, examples, nulled=nulled))
            elif after.nonnull[fk_map[c]] < total and after.count >= snap.count:
                lost = total - after.nonnull[fk_map[c]]
                losses.append(_Loss(name, c, lost, total, [], nulled=True))
    return losses


def _fmt_key(cols: tuple[str, ...] | None, key: tuple[object, ...]) -> str:
    if not cols:
        return repr(key)
    return ", ".join(f"{c}={v}" for c, v in zip(cols, key, strict=True))


def _strip_new(name: str) -> str:
    return name[6:] if name.lower().startswith("__new_") else name


def _names_over_time(table: str, stmts: Sequence[Statement]) -> set[str]:
    """Every name (lower case) ``table`` goes by during the upgrade."""
    names = {table.lower()}
    for s in stmts:
        if s.kind == "rename-table" and s.table and s.new_name and s.table.lower() in names:
            names.add(s.new_name.lower())
    return names


def _attribute(
    losses: list[_Loss],
    seeded: bytes,
    bundle: Bundle,
    fk_off: bool,
    stmts: list[Statement],
) -> None:
    """Replay the upgrade statement by statement and blame the statements that lost data.

    The statements of the applied migrations run one by one inside one ``transactionSync``
    (like the migrator's); after each, the watched tables (and their ``__new_`` copies) are
    counted: rows and non-NULL foreign-key values. A drop between two counts of a table that
    exists before and after the statement is that statement's damage.
    """
    watch: set[str] = set()
    for loss in losses:
        watch |= _names_over_time(loss.table, stmts)
    do = DurableObjectStorage(image=seeded)
    if fk_off:
        do.sql.exec("PRAGMA foreign_keys=OFF")
    damages: list[_Damage] = []
    Metrics = dict[str, tuple[int, dict[str, int], tuple[ForeignKeyInfo, ...]]]

    def metrics() -> Metrics:
        out: Metrics = {}
        for name, t in read_tables(do).items():
            if _strip_new(name).lower() not in watch:
                continue
            fk_cols = list(dict.fromkeys(c for fk in t.foreign_keys for c in fk.columns))
            counts = "".join(f", count({quote_ident(c)})" for c in fk_cols)
            row = do.sql.exec(f"SELECT count(*){counts} FROM {quote_ident(name)}").raw()
            values = [int(x) for x in row.to_array()[0]]
            out[name] = (values[0], dict(zip(fk_cols, values[1:], strict=True)), t.foreign_keys)
        return out

    def fk_notes(
        s: Statement, fks: Sequence[ForeignKeyInfo], shrunk: set[str]
    ) -> list[ForeignKeyInfo]:
        """The foreign keys whose actions this statement fired on a table: the ones to the
        table it deletes from or drops, else the ones to tables that lost rows with it (a
        cascade through several levels)."""
        if s.kind not in ("drop-table", "recreate-drop", "delete", "update", "replace"):
            return []
        parent = (s.table or "").lower()
        direct = [fk for fk in fks if fk.parent.lower() == parent]
        return direct or [fk for fk in fks if _strip_new(fk.parent).lower() in shrunk]

    class _Done(Exception):
        pass

    def body() -> None:
        prev = metrics()
        for s in stmts:
            do.sql.exec(s.text)
            cur = metrics()
            shrunk = {
                _strip_new(n).lower()
                for n, (count, _, _) in prev.items()
                if n in cur and cur[n][0] < count
            }
            for name, (count, nonnull, fks) in prev.items():
                now = cur.get(name)
                if now is None:
                    continue
                related = fk_notes(s, fks, shrunk)
                if now[0] < count:
                    hit = [fk for fk in related if fk.on_delete.upper() == "CASCADE"] or related
                    damages.append(_Damage(s, _strip_new(name), None, count - now[0], hit))
                for col, n in nonnull.items():
                    if now[1].get(col, n) < n:
                        hit = [fk for fk in related if col in fk.columns] or related
                        damages.append(_Damage(s, _strip_new(name), col, n - now[1][col], hit))
            prev = cur
        raise _Done

    try:
        do.transaction_sync(body)
    except _Done:
        pass
    except SqlError:
        pass  # the replay diverged from the real run (it should not): keep what was found
    finally:
        do.close()
    for loss in losses:
        names = _names_over_time(loss.table, stmts)
        col = (loss.column or "").lower()
        loss.culprits = [
            d for d in damages if d.table.lower() in names and (d.column or "").lower() == col
        ]


# ----------------------------------------------------------------------------- reporting

_FK_OFF_FIX = (
    "Keep foreign keys off while the migrations run. On a Durable Object the PRAGMA only works "
    "outside a transaction, so do it in the constructor around migrate():\n"
    "    ctx.blockConcurrencyWhile(async () => {\n"
    "      ctx.storage.sql.exec('PRAGMA foreign_keys=OFF');\n"
    "      await migrate(db, migrations);\n"
    "      await new Promise((r) => setTimeout(r, 0)); // let the implicit transaction commit\n"
    "      ctx.storage.sql.exec('PRAGMA foreign_keys=ON'); // a no-op without the await\n"
    "    });\n"
    "and run the checks with `--dosqlite-start drizzle-fk-off` (ini `dosqlite_start`) so "
    "they migrate the same way. Or edit the "
    "migration so no row references `{parent}` when it is dropped (copy the child rows to a "
    "scratch table before the rebuild and restore them after the RENAME)."
)


def _why(d: _Damage) -> str:
    s = d.statement
    parent = s.table or "?"
    what = (
        f"deletes every `{d.table}` row that points at them"
        if d.column is None
        else f"sets `{d.table}.{d.column}` to NULL (or its default) in every row that points at "
        "them"
    )
    actions = ", ".join(sorted({f"ON DELETE {fk.on_delete.lower()}" for fk in d.fks}))
    via = sorted({_strip_new(fk.parent) for fk in d.fks} - {_strip_new(parent)})
    first = f"Dropping `{parent}` deletes its rows first"
    if via:
        # a cascade through several levels: the table points at the parent's children
        first += ", the cascade deletes rows of " + ", ".join(f"`{v}`" for v in via)
    if s.kind == "recreate-drop":
        rebuilt = s.rebuilds or parent
        text = (
            f"{s.text.rstrip(';')} is part of a rebuild of `{rebuilt}` (CREATE TABLE the new "
            "table, INSERT ... SELECT the rows, DROP TABLE the old one, RENAME the new one). "
            "drizzle-kit wraps it in `PRAGMA foreign_keys=OFF` ... `PRAGMA foreign_keys=ON`, but "
            "drizzle's migrator runs every migration inside ctx.storage.transactionSync(), and "
            "SQLite ignores `PRAGMA foreign_keys` inside a transaction: foreign keys stay ON, "
            f"the default on a Durable Object. {first}, and {actions or 'the foreign key'} "
            f"{what}."
        )
        if d.column is not None and d.table.lower() == _strip_new(parent).lower():
            text += (
                f" That includes the copy in `__new_{d.table}`: its foreign key names "
                f"`{parent}` too, so the self-references are wiped before the RENAME."
            )
        return text + " migrate() still reports success: the loss is silent."
    if s.kind == "drop-table":
        return (
            f"{first} (DROP TABLE deletes every row before dropping the table), and "
            f"{actions or 'the foreign key'} {what}. Dropping a parent table does not leave "
            "its children alone while foreign keys are on (always, inside drizzle's migrator)."
        )
    return f"This statement removed {d.amount} value(s) of `{d.table}`."


def _add_loss(findings: _Findings, bundle: Bundle, k: int, head: str, loss: _Loss) -> None:
    key = (
        "loss",
        loss.table.lower(),
        (loss.column or "").lower(),
        tuple((d.statement.tag, d.statement.chunk, d.statement.start) for d in loss.culprits),
    )

    def make() -> _Finding:
        if loss.column is None:
            headline = f"{loss.lost} of {loss.total} rows of `{loss.table}` are deleted"
        else:
            what = "set to NULL" if loss.nulled else "changed"
            headline = (
                f"{loss.lost} of {loss.total} `{loss.table}.{loss.column}` foreign-key values "
                f"are {what}"
            )
        if loss.culprits:
            first = loss.culprits[0].statement
            headline += f" by {first.text.rstrip(';')} in {first.tag}"
        sections: list[tuple[str, str]] = []
        lost = f"upgrading a DO at {_version_label(bundle, k)} to {head}"
        if loss.examples:
            lost += "\nfor example: " + "; ".join(loss.examples)
        sections.append(("What is lost", lost))
        seen: set[tuple[str, int, int]] = set()
        for d in loss.culprits:
            s = d.statement
            if (s.tag, s.chunk, s.start) in seen:
                continue
            seen.add((s.tag, s.chunk, s.start))
            sections.append(("Statement", f"{s.where}\n{s.text}"))
            if d.fks:
                sections.append(
                    (
                        "Foreign key",
                        "\n".join(_fk_text(fk, d.table, _strip_new(fk.parent)) for fk in d.fks),
                    )
                )
            sections.append(("Why", _why(d)))
            if s.kind in ("recreate-drop", "drop-table"):
                parent = s.table or "?"
                sections.append(("How to fix", _FK_OFF_FIX.replace("{parent}", parent)))
        if not loss.culprits:
            sections.append(
                (
                    "Why",
                    "No single statement could be blamed when the upgrade was replayed "
                    "statement by statement; compare the table before and after the upgrade.",
                )
            )
        return _Finding("loss", [k], sections, headline)

    findings.add(key, k, make)


def _fk_text(fk: ForeignKeyInfo, child: str, parent: str) -> str:
    cols = fk.columns[0] if len(fk.columns) == 1 else "(" + ", ".join(fk.columns) + ")"
    return f"{child}.{cols} -> {parent} ON DELETE {fk.on_delete.lower()}"


_NOT_NULL = re.compile(r"NOT NULL constraint failed: ([^\s:.]+)\.([^\s:]+)")


def _add_failure(
    findings: _Findings,
    bundle: Bundle,
    k: int,
    exc: MigrationError,
    seeded: bytes,
    head_defaults: dict[tuple[str, str], str],
) -> None:
    cause = str(exc.cause) if exc.cause is not None else exc.message
    key = ("failure", exc.tag, exc.chunk, exc.statement, cause)

    def make() -> _Finding:
        from .checks import migration_failure

        base = migration_failure(exc)
        sections = [(t, b) for t, b in base.sections if t != "How to fix"]
        hint = next((b for t, b in base.sections if t == "How to fix"), None)
        sections.append(
            (
                "Only with data",
                f"The same upgrade from {_version_label(bundle, k)} succeeds on a DO without "
                "rows, so tests on empty databases pass; with seeded rows it fails, and every "
                "deployed DO holding such rows fails to start.",
            )
        )
        m = _NOT_NULL.search(cause)
        if m:
            data, hint = _not_null_advice(exc, m.group(1), m.group(2), seeded, k, head_defaults)
            sections.append(("Data", data))
        elif not hint and "Cannot add a" not in cause:
            sections.append(
                (
                    "If the seeded rows are unrealistic",
                    "The rows were generated from the schema (realistic, but not yours). If real "
                    "rows can never look like that (a text column that always holds JSON, say), "
                    "give the check rows of your own with the `seed` setting: a callable "
                    "seed(tag, do) or a JSON file {tag: {table: [rows]}}.",
                )
            )
        if hint:
            sections.append(("How to fix", hint))
        return _Finding(
            "failure", [k], sections, f"migration {exc.tag} fails on a DO with data: {cause}"
        )

    findings.add(key, k, make)


def _not_null_advice(
    exc: MigrationError,
    target: str,
    col: str,
    seeded: bytes,
    k: int,
    head_defaults: dict[tuple[str, str], str],
) -> tuple[str, str]:
    """Evidence and a fix for NULLs copied into a NOT NULL column (or ADDed without default)."""
    statement = exc.statement or ""
    source = _source_table(statement) if re.match(r"\s*INSERT", statement, re.I) else None
    final = _strip_new(target)
    if source is None:
        source = final
    expr = col
    for new_col, src in _copy_pairs(statement):
        if new_col.lower() == col.lower():
            expr = src
            break
    default = head_defaults.get((final.lower(), col.lower()))
    value = default if default is not None else "<a value>"
    plain = _unquote(expr)
    if re.fullmatch(r"[\w$]+", plain):
        data = _null_evidence(seeded, source, plain, k)
        hint = (
            "A DEFAULT does not help: INSERT ... SELECT copies the NULL explicitly. Before "
            f"the INSERT INTO `{target}`, backfill the NULLs in its own statement:\n"
            f"    UPDATE `{source}` SET `{plain}` = {value} WHERE `{plain}` IS NULL;"
            "--> statement-breakpoint\n"
            f'or select coalesce("{plain}", {value}) in the INSERT ... SELECT.'
        )
    else:
        data = (
            f"The copy computes `{target}.{col}` as {expr}, which is NULL for some seeded rows "
            f"of `{source}` at version {k}."
        )
        hint = (
            f"Make the expression total: coalesce({expr}, {value}), or backfill the rows it "
            "leaves NULL before the copy."
        )
    return data, hint


def _null_evidence(seeded: bytes, table: str, col: str, k: int) -> str:
    do = DurableObjectStorage(image=seeded)
    try:
        t = {n.lower(): t for n, t in read_tables(do).items()}.get(table.lower())
        if t is None:
            return f"`{table}` does not exist at version {k}."
        if t.column(col) is None:
            return (
                f"`{table}.{col}` does not exist yet at version {k}: a later migration adds it "
                "as a nullable column, so every existing row holds NULL in it."
            )
        q = quote_ident
        row = (
            do.sql.exec(f"SELECT count(*), count(*) - count({q(col)}) FROM {q(t.name)}")
            .raw()
            .to_array()[0]
        )
        return f"{row[1]} of {row[0]} seeded rows of `{t.name}` have `{col}` NULL at version {k}."
    finally:
        do.close()


def _failure(bundle: Bundle, upto: Bundle, target: int, found: list[_Finding]) -> CheckFailure:
    head = upto.migrations[-1].tag
    if len(found) == 1:
        summary = f"data not preserved: {found[0].headline}"
    else:
        summary = f"data not preserved: {len(found)} problems upgrading Durable Objects with data"
    sections: list[tuple[str, str]] = []
    first_seen: dict[tuple[str, str], int] = {}
    for i, f in enumerate(found, 1):
        versions = _versions_text(bundle, f.versions)
        prefix = f"Problem {i}: " if len(found) > 1 else ""
        sections.append((f"{prefix}{f.headline}", f"seen when upgrading from {versions} to {head}"))
        for title, body in f.sections:
            if title == "How to fix":
                earlier = first_seen.setdefault((title, body), i)
                if earlier != i:
                    body = f"as for problem {earlier}"
            sections.append((title, body))
    if target < len(bundle.migrations):
        sections.append(
            (
                "Note",
                f"{bundle.migrations[target].tag} fails even on an empty DO (see "
                f"upgrade_from_empty); upgrades were checked up to {head}.",
            )
        )
    return CheckFailure(summary, sections)
