"""data_preserved: upgrading a DO that has data keeps the rows it should.

Why: the worst Durable Object migration bugs pass every schema test. A drizzle-kit table
recreation inside drizzle's migrator runs with foreign keys ON (its ``PRAGMA foreign_keys=OFF``
is a no-op inside ``transactionSync``), so ``DROP TABLE parent`` silently cascades into children
or wipes ``SET NULL`` links, and ``INSERT INTO __new_X ... SELECT`` copies NULLs into a new NOT
NULL column. All of that needs rows to show, and every DO instance upgrades lazily from whatever
version it was at. :func:`data_preserved` therefore gives every historical version rows,
upgrades them, and compares rows and foreign-key values, blaming the exact statement. It does
so in one pass over the bundle (a batch of rows per version, seeded as the DO walks the
migrations), checking a version on its own only where the pass found something: checking
every version on its own cost n^2/2 migrations.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bundle import Bundle, Migration
from .errors import CheckFailure, DurableObjectInternalError, MigrationError, SqlError
from .images import newest_reached
from .migrator import migrate
from .seed import (
    ForeignKeyInfo,
    SchemaTracker,
    SeedReport,
    TableInfo,
    quote_ident,
    read_tables,
    seed,
    sql_literal,
    tables_with_rows,
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


# ----------------------------------------------------------------------------- statements

_IDENT = r'(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`|\[[^\]]+\]|[^\s(),;."`\[]+)'
_QNAME = rf"(?:{_IDENT}\s*\.\s*)?({_IDENT})"
_LEADING_COMMENTS = re.compile(r"^\ufeff?(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
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
            # the statement starts at its first word: a comment before it (`-- dosqlite:ignore
            # DO024 ...`) is neither its text nor its line
            lead = _LEADING_COMMENTS.match(text).end()  # type: ignore[union-attr]
            body = text[lead:].strip()
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
    end = nk + len(fk_cols)  # a table with neither selects the constant 1: nothing to read
    rows: dict[tuple[object, ...], tuple[object, ...]] = {}
    nonnull = {c: 0 for c in fk_cols}
    for r in data:
        for c, v in zip(fk_cols, r[nk:end], strict=True):
            if v is not None:
                nonnull[c] += 1
        if key:
            rows[tuple(_norm(v) for v in r[:nk])] = tuple(r[nk:end])
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

    def extend(self, key: object, versions: Iterable[int]) -> None:
        """More versions that show the finding ``key`` (one that was added)."""
        found = self.by_key[key]
        seen = set(found.versions)
        found.versions.extend(v for v in versions if v not in seen)


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


@dataclass(frozen=True)
class _UserSeed:
    """The user's rows: ``apply(tag, do)`` inserts the rows for the DO at migration ``tag``."""

    apply: Callable[[str, DurableObjectStorage], None]
    #: the tags that have rows (a JSON file); None when any tag may (a callable)
    tags: frozenset[str] | None
    #: where the rows come from, for messages: the file, or the function
    source: str = ""


def _load_user_seed(ctx: CheckContext) -> _UserSeed | None:
    spec = ctx.setting("seed", None)
    if spec is None:
        return None
    if callable(spec):
        fn: Callable[[str, DurableObjectStorage], None] = spec
        name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        return _UserSeed(fn, None, f"the function {name}")
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
                try:
                    do.sql.exec(sql)
                except SqlError as exc:
                    exc.add_note(f"row of {table}: {json.dumps(row, default=str)}")
                    raise

    return _UserSeed(apply, frozenset(by_tag), str(path))


def _run_user_seed(user: _UserSeed, tag: str, do: DurableObjectStorage) -> None:
    try:
        do.transaction_sync(lambda: user.apply(tag, do))
    except SqlError as exc:
        sections = [("SQLite error", str(exc))]
        sections += [("Row", note) for note in getattr(exc, "__notes__", ())]
        sections += [("Seed", user.source), ("Version", f"the DO after migration {tag}")]
        raise CheckFailure(f"the user seed rows for {tag} cannot be inserted", sections) from None


# ----------------------------------------------------------------------------- the check


def _migrate(do: DurableObjectStorage, bundle: Bundle, fk_off: bool) -> list[str]:
    if fk_off:
        do.sql.exec("PRAGMA foreign_keys=OFF")
    return migrate(do, bundle).applied


def data_preserved(ctx: CheckContext) -> None:
    """Upgrading a DO that has data keeps its rows and its foreign-key values.

    Every version ``k`` (``0 < k < n``) of the bundle gets rows, and the rows must survive the
    upgrade to head. One pass does it for all versions: a DO starts from the image at the first
    version, every table is seeded (:func:`~pytest_dosqlite.seed.seed`: generated rows, NULLs in
    every nullable column of one row), then each migration is applied with drizzle's migrator
    (exactly what a DO at that version runs) and the tables it created, changed or wrote to (and
    any table left without rows) get a new batch of rows. Each batch's rows (by primary key) and
    foreign-key values are recorded and compared at head. Rows or foreign-key values may only go
    where a statement after the batch's version removes or changes them on purpose: ``DELETE``,
    ``UPDATE``, ``REPLACE``, a ``DROP TABLE`` that is not part of a table rebuild, ``DROP
    COLUMN`` (and the FK actions those fire).

    A version whose table kept its shape holds the rows seeded when the table last changed, so a
    loss of a batch stands for every version from the batch to the next seeding of its table.
    Only when something is found is one version checked on its own, as it always was: its image
    seeded with every table, upgraded to head, compared, and the upgrade replayed statement by
    statement to name the statement that lost data, with the foreign key whose action fired.

    When the pass fails on a migration that passes on the empty DO (NULLs copied into a new NOT
    NULL column, duplicates under a new unique index, children under a NO ACTION foreign key of
    a rebuilt parent), that is reported for the versions whose rows make it fail, the versions
    before it are checked again with every nullable column filled so other losses still show,
    and a new pass starts at the failing migration.

    The user's rows (``Settings.seed``) go into the image of their version, and those versions
    are checked on their own.

    Settings (``ctx.settings`` attributes or ``ctx.extra`` keys): ``seed`` (callable
    ``seed(tag, do)`` or a JSON file ``{tag: {table: [rows]}}``), ``seed_rows`` (3),
    ``seed_rng`` (0), ``foreign_keys_off`` (False: migrate as plain ``migrate()``; True: as a
    constructor that runs ``PRAGMA foreign_keys=OFF`` before it). ``ctx.extra["data_preserved"]``
    receives what was done: ``versions`` compared, ``seed_problems``, ``migrations_applied``
    (by every ``migrate()`` of the check) and ``rechecked`` (versions checked on their own).
    """
    target = newest_reached(ctx.images, ctx.bundle)
    if target < 2:
        return
    _Check(ctx, target).run()


@dataclass(frozen=True)
class _Segment:
    """One pass: a DO from the fresh image at ``start``, seeded at every version up to
    ``stop``, upgraded to the target; ``nulls``: the generated rows hold NULLs."""

    start: int
    stop: int
    nulls: bool


@dataclass
class _Batch:
    """The rows one version of a pass received, as they were at that version."""

    version: int
    #: the tables that got rows, and their ancestors, as they were at ``version``
    tables: dict[str, TableInfo]
    #: the batch's own rows, per table
    before: dict[str, _Snap]
    #: how many migrations the pass had applied after its start when the batch went in
    log_at: int


@dataclass
class _Pass:
    segment: _Segment
    batches: list[_Batch]
    #: the migrations the pass applied after its start, in order
    log: list[str]


@dataclass
class _LossConcern:
    """A batch lost rows or foreign-key values in a pass."""

    batch: _Batch
    loss: _Loss
    run: _Pass


@dataclass
class _FailureConcern:
    """Migration ``m`` failed in a pass, and not on the empty DO."""

    m: int
    exc: MigrationError
    run: _Pass
    #: the pass's DO right before migration ``m``
    image: bytes


@dataclass
class _Recheck:
    """What checking one version on its own found."""

    loss_keys: list[LossKey] = field(default_factory=list)
    failure_keys: list[FailureKey] = field(default_factory=list)
    #: (table, column) of every loss it saw, reported or deliberate (lower case)
    seen: set[tuple[str, str]] = field(default_factory=set)


class _StatementIndex:
    """The statements of the checked migrations, and where each table name is mentioned.

    Why: the fates of a batch's tables depend only on the statements naming them (or a name
    they get by a rename); walking every statement after every batch was quadratic.
    """

    def __init__(self, classified: Sequence[Sequence[Statement]]) -> None:
        self.flat: list[Statement] = []
        #: ``starts[k]``: index of the first statement after version ``k``
        self.starts: list[int] = []
        self.by_name: dict[str, list[int]] = {}
        self.renames: list[tuple[int, str, str]] = []
        for stmts in classified:
            self.starts.append(len(self.flat))
            for s in stmts:
                i = len(self.flat)
                self.flat.append(s)
                for n in {(s.table or "").lower(), (s.rebuilds or "").lower()} - {""}:
                    self.by_name.setdefault(n, []).append(i)
                if s.kind == "rename-table" and s.table and s.new_name:
                    self.renames.append((i, s.table.lower(), s.new_name.lower()))
        self.starts.append(len(self.flat))

    def after(self, version: int, names: Iterable[str]) -> list[Statement]:
        """The statements after ``version`` that can change the fates of tables ``names``."""
        start = self.starts[version]
        tracked = {n.lower() for n in names}
        for _, old, new in self.renames[bisect_left(self.renames, (start,)) :]:
            if old in tracked:
                tracked.add(new)
        picked: set[int] = set()
        for n in tracked:
            where = self.by_name.get(n)
            if where:
                picked.update(where[bisect_left(where, start) :])
        return [self.flat[i] for i in sorted(picked)]

    def between(self, first: int, last: int) -> list[Statement]:
        """The statements that take a DO from version ``first`` to version ``last``."""
        return self.flat[self.starts[first] : self.starts[last]]


#: statements that write rows of the table they name: its rows change, so it gets new ones
_WRITES = frozenset({"delete", "update", "replace", "upsert", "insert"})
#: statements that can remove rows (of the table they name, and through foreign keys)
_REMOVES = frozenset({"delete", "replace", "drop-table", "recreate-drop"})


class _Check:
    """One run of :func:`data_preserved` on a bundle up to version ``target``."""

    def __init__(self, ctx: CheckContext, target: int) -> None:
        self.ctx = ctx
        self.bundle = ctx.bundle
        self.target = target
        self.upto = (
            self.bundle if target == len(self.bundle.migrations) else self.bundle.prefix(target)
        )
        self.head = self.upto.migrations[-1].tag
        self.rows = int(ctx.setting("seed_rows", 3))
        self.rng = int(ctx.setting("seed_rng", 0))
        self.fk_off = ctx.foreign_keys_off
        self.user_seed = _load_user_seed(ctx)
        self.classified = [classify_migration(m) for m in self.upto.migrations]
        self.index = _StatementIndex(self.classified)
        self.tag_index = {m.tag: i for i, m in enumerate(self.upto.migrations, start=1)}
        self.findings = _Findings()
        self.head_defaults = _head_defaults(ctx, target)
        self.seed_problems: dict[str, str] = {}
        self.checked: set[int] = set()
        self.applied = 0
        self.rechecked: dict[int, _Recheck] = {}
        self.user_images: dict[int, bytes] = {}
        self.losses: list[_LossConcern] = []
        self.failures: list[_FailureConcern] = []

    # -- plumbing

    def migrate(self, do: DurableObjectStorage, bundle: Bundle) -> list[str]:
        applied = _migrate(do, bundle, self.fk_off)
        self.applied += len(applied)
        return applied

    def image(self, k: int) -> bytes | None:
        return self.ctx.images.version(self.bundle, k).image

    def next_start(self, k: int, stop: int) -> int | None:
        """The first version from ``k`` to ``stop`` a fresh DO reaches."""
        for v in range(k, stop + 1):
            if self.ctx.images.reaches(self.bundle, v):
                return v
        return None

    def passes_empty(self, m: int) -> bool:
        """Migration ``m`` runs on the empty DO at version ``m - 1`` (a failure with rows is
        then caused by the rows)."""
        image = self.image(m - 1)
        if image is None:
            return False
        do = DurableObjectStorage(image=image)
        try:
            self.migrate(do, self.upto.prefix(m))
        except MigrationError:
            return False
        finally:
            do.close()
        return True

    def note_problems(self, report: SeedReport, tag: str) -> None:
        for table, reasons in report.problems.items():
            for reason in reasons:
                self.seed_problems.setdefault(f"{table}: {reason}", tag)

    # -- the whole check

    def run(self) -> None:
        ctx = self.ctx
        ctx.extra["data_preserved"] = stats = {
            "versions": [],
            "seed_problems": self.seed_problems,
            "migrations_applied": 0,
            "rechecked": [],
        }
        self.user_versions()
        queue: list[_Segment] = []
        first = self.next_start(1, self.target - 1)
        if first is not None:
            queue.append(_Segment(first, self.target - 1, True))
        done: set[_Segment] = set()
        while queue:
            seg = queue.pop(0)
            if seg not in done:
                done.add(seg)
                self.segment(seg, queue)
        self.explain()
        stats["versions"] = sorted(self.checked)
        stats["migrations_applied"] = self.applied
        stats["rechecked"] = sorted(self.rechecked)
        if self.findings.by_key:
            # in the order the versions show them (as when every version was checked in turn)
            found = sorted(self.findings.by_key.values(), key=lambda f: min(f.versions))
            failure = _failure(self.bundle, self.upto, self.target, found)
            if self.seed_problems:
                failure.sections.append(
                    (
                        "Not seeded (the check is blind there)",
                        "\n".join(sorted(self.seed_problems)),
                    )
                )
                failure.args = (failure.render(),)
            raise failure

    def user_versions(self) -> None:
        """Insert the user's rows into the image of each version they are for; the versions
        that got some are checked on their own (their rows are the user's, not the pass's)."""
        user = self.user_seed
        if user is None:
            return
        for k in range(1, self.target):
            tag = self.bundle.migrations[k - 1].tag
            if user.tags is not None and tag not in user.tags:
                continue
            image = self.image(k)
            if image is None:
                continue
            do = DurableObjectStorage(image=image)
            try:
                _run_user_seed(user, tag, do)
                seeded = do.image()
            finally:
                do.close()
            if seeded != image:
                self.user_images[k] = seeded

    # -- one pass

    def segment(self, seg: _Segment, queue: list[_Segment]) -> None:
        image = self.image(seg.start)
        if image is None:
            return
        do = DurableObjectStorage(image=image)
        run = _Pass(seg, [], [])
        stop = seg.stop
        # tables seeded without getting a row: not tried again while their definition stays
        barren: dict[str, TableInfo] = {}
        try:
            # the schema after each migration: only the tables its statements name are read
            # again (reading all of it at every step cost in proportion to the schema)
            tracker = SchemaTracker(do)
            self.batch(do, run, seg.start, tracker, None, barren)
            for k in range(seg.start + 1, self.target + 1):
                tag = self.upto.migrations[k - 1].tag
                try:
                    applied = self.migrate(do, self.upto.prefix(k))
                except MigrationError as exc:
                    self.failed(run, stop, self.tag_index.get(exc.tag or "", k), exc, do, queue)
                    return
                run.log.extend(applied)
                if k > stop:
                    continue
                if applied != [tag]:
                    # the high-water mark skipped or added migrations: this DO is no longer what
                    # a fresh DO at version k is, so the versions from k on get their own pass
                    nxt = self.next_start(k, stop)
                    if nxt is not None:
                        queue.append(_Segment(nxt, stop, seg.nulls))
                    stop = k - 1
                    continue
                changed = tracker.after(s.text for s in self.classified[k - 1])
                wanted = self.wanted(do, k, tracker, changed, barren)
                self.batch(do, run, k, tracker, wanted, barren)
            self.compare(do, run)
        finally:
            do.close()

    def wanted(
        self,
        do: DurableObjectStorage,
        k: int,
        tracker: SchemaTracker,
        changed: set[str],
        barren: dict[str, TableInfo],
    ) -> set[str]:
        """The tables that get rows at version ``k``: the ones migration ``k`` created or
        changed (``changed``), the ones it wrote rows of, and the ones it left without any row.
        Only the tables concerned are looked at, not the whole schema."""
        new = tracker.tables
        wanted = set(changed)
        removing: set[str] = set()
        for s in self.classified[k - 1]:
            if s.kind in _WRITES and s.table:
                real = tracker.real_name(s.table)
                if real is not None:
                    wanted.add(real)
            if s.kind in _REMOVES:
                removing.update(n for n in (s.table, s.rebuilds) if n)
        if removing:
            # the tables that can have lost every row: the ones named and, through ON DELETE
            # actions, their descendants
            todo = [r for r in map(tracker.real_name, removing) if r is not None]
            hit: set[str] = set()
            while todo:
                n = todo.pop()
                if n not in hit:
                    hit.add(n)
                    todo.extend(tracker.children(n))
            names = sorted(hit - wanted)
            for n in set(names) - tables_with_rows(do, names):
                if barren.get(n) != new[n]:
                    wanted.add(n)
        return wanted

    def batch(
        self,
        do: DurableObjectStorage,
        run: _Pass,
        k: int,
        tracker: SchemaTracker,
        wanted: set[str] | None,
        barren: dict[str, TableInfo],
    ) -> None:
        """Seed version ``k``'s batch (every table when ``wanted`` is None) and record it.

        Tables joined by a unique foreign key (a one-to-one child and its parent) get rows
        together: the child needs parent rows no other row points at, and a version's seeding
        gives every parent row its one-to-one children (migrations rely on it: karakeep's 0025
        sets ``bookmarks.type`` NOT NULL from whichever subtype row a bookmark has). The batch's
        foreign keys point at the batch's own rows; other foreign keys point at rows the DO holds.
        """
        schema = tracker.tables
        if wanted is not None:
            todo = list(wanted)
            wanted = set()
            while todo:
                n = todo.pop()
                if n in schema and n not in wanted:
                    wanted.add(n)
                    todo.extend(_one_to_one(n, schema, tracker))
        # (in name order, as the schema is read)
        names = sorted(schema if wanted is None else wanted)
        if not names:
            return
        seen = {n: _keys(do, schema[n]) for n in names}
        report = seed(
            do,
            rows_per_table=self.rows,
            # every batch draws other values: a random key or a random value copied into a
            # unique column later must not repeat the one of another batch (a pass's first
            # batch draws what the version checked on its own does)
            rng_seed=self.rng if wanted is None else self.rng * 1_000_003 + k,
            nulls=run.segment.nulls,
            tables=None if wanted is None else names,
            link_new=True,
            schema=schema,
        )
        self.note_problems(report, self.bundle.migrations[k - 1].tag)
        before: dict[str, _Snap] = {}
        for n in names:
            snap = _new_rows(do, schema[n], seen[n])
            if snap.count:
                before[n] = snap
                barren.pop(n, None)
            else:
                barren[n] = schema[n]
        if not before:
            return
        tables: dict[str, TableInfo] = {}
        todo = list(before)
        while todo:
            n = todo.pop()
            if n in tables or n not in schema:
                continue
            tables[n] = schema[n]
            todo.extend(fk.parent for fk in schema[n].foreign_keys)
        run.batches.append(_Batch(k, tables, before, len(run.log)))

    def failed(
        self,
        run: _Pass,
        stop: int,
        m: int,
        exc: MigrationError,
        do: DurableObjectStorage,
        queue: list[_Segment],
    ) -> None:
        """Migration ``m`` failed in the pass (its run was rolled back: ``do`` is at ``m - 1``)."""
        seg = run.segment
        if m - 1 < stop:
            nxt = self.next_start(m, stop)
            if nxt is not None:
                queue.append(_Segment(nxt, stop, seg.nulls))
        if not self.passes_empty(m):
            return  # not caused by rows: the upgrade checks report it
        run.segment = _Segment(seg.start, min(stop, m - 1), seg.nulls)
        concern = _FailureConcern(m, exc, run, do.image())
        if not run.batches:
            return
        if not self.reproduced(concern):
            # the rows of several versions together fail where no version's rows alone do (a
            # row one batch added and the rows another would have given it): split the pass
            # until it is the versions' own rows that fail or pass
            versions = [b.version for b in run.batches]
            if len(versions) > 1:
                mid = versions[len(versions) // 2]
                queue.append(_Segment(seg.start, mid - 1, seg.nulls))
                queue.append(_Segment(mid, min(stop, m - 1), seg.nulls))
            return
        self.failures.append(concern)
        if seg.nulls:
            # the versions before m again with every nullable column filled, so the losses
            # after m still show (as a version checked on its own is)
            queue.append(_Segment(seg.start, min(stop, m - 1), False))
            return
        # rows without NULLs still fail: the older batches hold NULLs in columns added after
        # them, or values the newer shapes of the tables exclude. The versions from the newest
        # batch of the failing tables on can still pass (as they do checked on their own).
        newest = max((b.version for b in self.failing_batches(concern)), default=seg.start)
        if newest > seg.start:
            queue.append(_Segment(newest, min(stop, m - 1), False))

    def reproduced(self, f: _FailureConcern) -> bool:
        """A version checked on its own fails on the same migration (newest versions first:
        their upgrades are the shortest)."""
        batches = self.failing_batches(f)
        if len(f.run.batches) == 1 and not batches:
            batches = f.run.batches
        for b in sorted(batches, key=lambda b: -b.version):
            if any(key[1] == f.exc.tag for key in self.recheck(b.version).failure_keys):
                return True
        return False

    def compare(self, do: DurableObjectStorage, run: _Pass) -> None:
        """Compare every batch of a pass that reached the target with its rows at head."""
        after_tables = read_tables(do)
        after_low = {n.lower(): t for n, t in after_tables.items()}
        reads: dict[tuple[object, ...], _Snap] = {}
        pooled: list[_Pooled] = []
        consecutive = self.tag_index
        # how many of the pass's last migrations are the bundle's last ones, in order: a batch
        # whose migrations after it are all among them ran exactly the bundle's (found once,
        # not by comparing every batch's rest of the log with the bundle)
        tags = [m.tag for m in self.upto.migrations]
        same = 0
        while same < min(len(run.log), len(tags)) and run.log[-1 - same] == tags[-1 - same]:
            same += 1
        for b in run.batches:
            rest_len = len(run.log) - b.log_at
            if rest_len == len(tags) - b.version and rest_len <= same:
                stmts = self.index.after(b.version, b.tables)
            else:
                rest = run.log[b.log_at :]
                stmts = [s for tag in rest for s in self.classified[consecutive[tag] - 1]]
            fates = _fates(b.tables, stmts)
            for loss in _compare(
                do,
                b.tables,
                b.before,
                fates,
                after_tables=after_tables,
                after_low=after_low,
                reads=reads,
                pooled=pooled,
                version=b.version,
            ):
                self.losses.append(_LossConcern(b, loss, run))
            self.checked.add(b.version)
        for batch_version, loss in _pooled_losses(do, pooled, reads):
            b = next(x for x in run.batches if x.version == batch_version)
            self.losses.append(_LossConcern(b, loss, run))
        self.checked.update(range(run.segment.start, run.segment.stop + 1))

    # -- checking one version on its own

    def seeded_copy(self, image: bytes, tag: str, nulls: bool) -> _Seeded:
        do = DurableObjectStorage(image=image)
        report = seed(do, rows_per_table=self.rows, rng_seed=self.rng, nulls=nulls)
        self.note_problems(report, tag)
        tables = read_tables(do)
        return _Seeded(do, do.image(), tables, _snapshot(do, tables))

    def recheck(self, k: int) -> _Recheck:
        """Version ``k`` on its own: its image seeded (with the user's rows for it), upgraded
        to head, compared; losses attributed to statements, failures reported."""
        out = self.rechecked.get(k)
        if out is not None:
            return out
        out = self.rechecked[k] = _Recheck()
        version = self.ctx.images.version(self.bundle, k)
        if version.image is None:
            return out
        tag = self.bundle.migrations[k - 1].tag
        findings, head_defaults = self.findings, self.head_defaults
        state = self.seeded_copy(self.user_images.get(k, version.image), tag, nulls=True)
        try:
            applied = self.migrate(state.do, self.upto)
        except MigrationError as exc:
            state.do.close()
            if not self.passes_empty_from(version.image):
                return out  # not data-dependent: the upgrade checks report it
            out.failure_keys.append(
                _add_failure(
                    findings,
                    self.bundle,
                    k,
                    exc,
                    state.image,
                    head_defaults,
                    user_rows=k in self.user_images,
                )
            )
            # check the rows again without NULLs (and without the user's rows)
            state = self.seeded_copy(version.image, tag, nulls=False)
            try:
                applied = self.migrate(state.do, self.upto)
            except MigrationError as exc2:
                state.do.close()
                out.failure_keys.append(
                    _add_failure(findings, self.bundle, k, exc2, state.image, head_defaults)
                )
                return out
        do, seeded, tables, before = state.do, state.image, state.tables, state.before
        applied_tags = set(applied)
        stmts = [
            s
            for m, ss in zip(self.upto.migrations, self.classified, strict=True)
            for s in ss
            if m.tag in applied_tags
        ]
        losses = _compare(do, tables, before, _fates(tables, stmts))
        do.close()
        if not losses:
            return out
        _attribute(losses, seeded, self.upto, self.fk_off, stmts)
        for loss in losses:
            out.seen.add((loss.table.lower(), (loss.column or "").lower()))
            if loss.culprits and all(
                d.statement.kind in ("delete", "update", "replace", "upsert") for d in loss.culprits
            ):
                continue  # FK actions of deliberate DML
            out.loss_keys.append(_add_loss(findings, self.bundle, k, self.head, loss))
        return out

    def passes_empty_from(self, image: bytes) -> bool:
        do = DurableObjectStorage(image=image)
        try:
            self.migrate(do, self.upto)
        except MigrationError:
            return False
        finally:
            do.close()
        return True

    # -- from what the passes found to findings

    def explain(self) -> None:
        """Check the versions concerned on their own (in order, so the report reads as the
        versions do), then give each finding every version it stands for."""
        reps: list[tuple[_FailureConcern, list[_Batch]]] = [
            (f, self.failing_batches(f)) for f in self.failures
        ]
        groups: dict[tuple[str, str], list[_LossConcern]] = {}
        for c in sorted(self.losses, key=lambda c: c.batch.version):
            groups.setdefault((c.loss.table.lower(), (c.loss.column or "").lower()), []).append(c)
        versions = set(self.user_images)
        versions.update(c.batch.version for g in groups.values() for c in (g[0], g[-1]))
        versions.update(b.version for _, batches in reps for b in batches)
        for v in sorted(versions):
            self.recheck(v)
        for concern, batches in reps:
            self.explain_failure(concern, batches)
        for (table, col), group in groups.items():
            # the batches of one table losing the same thing: when its oldest and newest batch
            # checked on their own blame the same statements, so do the ones between
            first = self.recheck(group[0].batch.version)
            last = self.recheck(group[-1].batch.version)
            keys = [k for k in first.loss_keys if k[1] == table and k[2] == col]
            same = [k for k in last.loss_keys if k[1] == table and k[2] == col]
            if len(group) > 2 and keys and keys == same:
                for c in group:
                    for key in keys:
                        self.findings.extend(key, range(c.batch.version, self.loss_end(c, key) + 1))
                continue
            for c in group:
                self.explain_loss(c)

    def failing_batches(self, f: _FailureConcern) -> list[_Batch]:
        """The batches of the pass whose rows can be what migration ``m`` fails on."""
        batches = [b for b in f.run.batches if b.version < f.m]
        involved = _involved(f.exc, f.image)
        if involved is None:
            return batches
        # the names those tables had since the pass started (renames undone backwards)
        for s in reversed(self.index.between(f.run.segment.start, f.m - 1)):
            renamed = s.kind == "rename-table" and s.new_name and s.table
            if renamed and (s.new_name or "").lower() in involved:
                involved.add((s.table or "").lower())
        return [b for b in batches if any(n.lower() in involved for n in b.before)]

    def explain_failure(self, f: _FailureConcern, batches: list[_Batch]) -> None:
        stop = min(f.run.segment.stop, f.m - 1)
        found = False
        for i, b in enumerate(batches):
            end = batches[i + 1].version - 1 if i + 1 < len(batches) else stop
            for key in self.recheck(b.version).failure_keys:
                if key[1] == f.exc.tag:
                    found = True
                    self.findings.extend(key, range(b.version, end + 1))
        if found:
            return
        # the rows of several versions together fail where no version's rows alone do
        first = batches[0].version if batches else f.run.segment.start
        note = (
            f"The DO held the rows seeded at {_versions_text(self.bundle, range(first, f.m))} "
            "(each version's rows upgraded with the DO); the rows of any one version alone "
            "upgrade without this failure."
        )
        key = _add_failure(
            self.findings,
            self.bundle,
            f.m - 1,
            f.exc,
            f.image,
            self.head_defaults,
            rows_note=note,
        )
        self.findings.extend(key, range(first, f.m))

    def explain_loss(self, c: _LossConcern) -> None:
        b = c.batch
        table, col = c.loss.table.lower(), (c.loss.column or "").lower()
        recheck = self.recheck(b.version)
        keys: list[LossKey]
        if (table, col) in recheck.seen:
            keys = [k for k in recheck.loss_keys if k[1] == table and k[2] == col]
        else:
            note = (
                f"These rows were seeded at {_versions_text(self.bundle, [b.version])} in a DO "
                "that also got rows at later versions, and upgraded with it; the rows of "
                f"{_versions_text(self.bundle, [b.version])} alone upgrade without this loss."
            )
            keys = [_add_loss(self.findings, self.bundle, b.version, self.head, c.loss, note)]
        for key in keys:
            end = self.loss_end(c, key)
            self.findings.extend(key, range(b.version, end + 1))

    def loss_end(self, c: _LossConcern, key: LossKey) -> int:
        """The last version that holds the rows of ``c``'s batch for its table: the one before
        the table's next batch in the pass, and before the statement that loses them."""
        b = c.batch
        end = c.run.segment.stop
        for tag, _, _ in key[3]:
            end = min(end, self.tag_index.get(tag, end + 1) - 1)
        names = {c.loss.table.lower()}
        last = b.version
        for nb in c.run.batches:
            if nb.version <= b.version or nb.version > end:
                continue
            names = _names_over_time_from(names, self.index.between(last, nb.version))
            last = nb.version
            if any(n.lower() in names for n in nb.before):
                return nb.version - 1
        return end


def _one_to_one(name: str, schema: dict[str, TableInfo], tracker: SchemaTracker) -> list[str]:
    """The tables a unique foreign key joins table ``name`` to (both ways): its parents, and
    its children, the only tables that can point at it."""
    links = list(_unique_parents(schema[name]))
    for child in tracker.children(name):
        t = schema.get(child)
        if t is not None and name in _unique_parents(t):
            links.append(child)
    return links


def _unique_parents(t: TableInfo) -> tuple[str, ...]:
    """The parents ``t``'s unique foreign keys point at (itself left out)."""
    hit = _UNIQUE_PARENTS.get(id(t))
    if hit is None or hit[0] is not t:
        parents = tuple(
            fk.parent
            for fk in t.foreign_keys
            if fk.parent != t.name and any(set(u) <= set(fk.columns) for u in t.unique)
        )
        if len(_UNIQUE_PARENTS) > 8192:
            _UNIQUE_PARENTS.clear()
        hit = _UNIQUE_PARENTS[id(t)] = (t, parents)
    return hit[1]


#: id(TableInfo) -> (it, the parents its unique foreign keys point at); a schema's tables are
#: the same objects from one version to the next
_UNIQUE_PARENTS: dict[int, tuple[TableInfo, tuple[str, ...]]] = {}


def _names_over_time_from(names: set[str], stmts: Sequence[Statement]) -> set[str]:
    out = set(names)
    for s in stmts:
        if s.kind == "rename-table" and s.table and s.new_name and s.table.lower() in out:
            out.add(s.new_name.lower())
    return out


_FAILED_TABLE = re.compile(
    r"(?:NOT NULL|UNIQUE|CHECK) constraint failed: ([^\s:.,]+)\.", re.IGNORECASE
)
_INDEX_ON = re.compile(rf"\bINDEX\b.*?\bON\s+{_QNAME}", re.IGNORECASE | re.DOTALL)
_ALTER = re.compile(rf"^\s*ALTER\s+TABLE\s+{_QNAME}", re.IGNORECASE)


def _involved(exc: MigrationError, image: bytes) -> set[str] | None:
    """The tables (lower case) whose rows can make ``exc``'s statement fail; None if unknown."""
    statement = _LEADING_COMMENTS.sub("", exc.statement or "", count=1)
    cause = str(exc.cause) if exc.cause is not None else exc.message
    names: set[str] = set()
    kind, groups = _statement_kind(statement)
    if groups and kind not in ("other",):
        names.add(_strip_new(groups[0]))
    if kind == "insert":
        source = _source_table(statement)
        if source is not None:
            names.add(source)
    for pattern in (_INDEX_ON, _ALTER):
        m = pattern.search(statement)
        if m:
            names.add(_unquote(m.group(1)))
    m = _FAILED_TABLE.search(cause)
    if m:
        names.add(_strip_new(m.group(1)))
    if not names:
        return None
    low = {n.lower() for n in names}
    if "FOREIGN KEY" in cause.upper():
        # the children of a dropped parent, or the parents of copied rows, hold the rows
        do = DurableObjectStorage(image=image)
        try:
            tables = read_tables(do)
        finally:
            do.close()
        for t in tables.values():
            for fk in t.foreign_keys:
                if fk.parent.lower() in low:
                    low.add(t.name.lower())
                elif t.name.lower() in low:
                    low.add(fk.parent.lower())
    return low


@dataclass
class _Seeded:
    do: DurableObjectStorage
    image: bytes
    tables: dict[str, TableInfo]
    before: dict[str, _Snap]


def _keys(do: DurableObjectStorage, t: TableInfo) -> frozenset[tuple[object, ...]] | int:
    """What identifies the rows ``t`` holds now: their keys, or (no key) the highest rowid."""
    key = _key_of(t)
    if key:
        select = ", ".join(quote_ident(c) for c in key)
        data = do.sql.exec(f"SELECT {select} FROM {quote_ident(t.name)}").raw()
        return frozenset(tuple(_norm(v) for v in r) for r in data)
    row = do.sql.exec(f"SELECT coalesce(max(rowid), 0) FROM {quote_ident(t.name)}").raw()
    return int(row.to_array()[0][0])


def _new_rows(
    do: DurableObjectStorage, t: TableInfo, seen: frozenset[tuple[object, ...]] | int
) -> _Snap:
    """The rows of ``t`` that are not among ``seen`` (see :func:`_keys`)."""
    key = _key_of(t)
    fk_cols = tuple(dict.fromkeys(c for fk in t.foreign_keys for c in fk.columns))
    if key and not isinstance(seen, int):
        snap = _read(do, t.name, key, fk_cols)
        rows = {k: v for k, v in snap.rows.items() if k not in seen}
        nonnull = {
            c: sum(1 for v in rows.values() if v[i] is not None) for i, c in enumerate(fk_cols)
        }
        return _Snap(key, fk_cols, rows, len(rows), nonnull)
    last = seen if isinstance(seen, int) else 0
    select = ", ".join(quote_ident(c) for c in fk_cols) or "1"
    data = (
        do.sql.exec(f"SELECT {select} FROM {quote_ident(t.name)} WHERE rowid > ?", last)
        .raw()
        .to_array()
    )
    nonnull = {c: sum(1 for r in data if r[i] is not None) for i, c in enumerate(fk_cols)}
    return _Snap(None, fk_cols, {}, len(data), nonnull)


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


@dataclass
class _Pooled:
    """A keyless table's batch rows: only the count of the whole table can be compared."""

    version: int
    name: str
    head: str
    fate: _Fate
    snap: _Snap
    #: batch column -> head column of the compared foreign-key columns
    fk_map: dict[str, str]


def _pooled_losses(
    do: DurableObjectStorage, pooled: list[_Pooled], reads: dict[tuple[object, ...], _Snap]
) -> list[tuple[int, _Loss]]:
    """Losses of keyless tables: the head table holds fewer rows (or foreign-key values) than
    the batches put in (every batch that did is concerned)."""
    groups: dict[str, list[_Pooled]] = {}
    for p in pooled:
        groups.setdefault(p.head, []).append(p)
    out: list[tuple[int, _Loss]] = []
    for head, entries in groups.items():
        total = sum(p.snap.count for p in entries)
        cols: dict[str, int] = {}
        skip: set[str] = set()
        for p in entries:
            for c, hc in p.fk_map.items():
                if p.fate.updated is None or c in p.fate.updated:
                    skip.add(hc)
                cols[hc] = cols.get(hc, 0) + p.snap.nonnull[c]
        after = _cached_read(do, reads, head, None, tuple(cols))
        if not any(p.fate.deleted for p in entries) and after.count < total:
            lost = total - after.count
            out.extend((p.version, _Loss(p.name, None, lost, total, [])) for p in entries)
            continue
        for hc, n in cols.items():
            if hc in skip or after.nonnull[hc] >= n:
                continue
            for p in entries:
                for c, mapped in p.fk_map.items():
                    if mapped == hc:
                        loss = _Loss(p.name, c, n - after.nonnull[hc], n, [], nulled=True)
                        out.append((p.version, loss))
    return out


def _cached_read(
    do: DurableObjectStorage,
    reads: dict[tuple[object, ...], _Snap] | None,
    table: str,
    key: tuple[str, ...] | None,
    fk_cols: tuple[str, ...],
) -> _Snap:
    if reads is None:
        return _read(do, table, key, fk_cols)
    cache_key = (table, key, fk_cols)
    snap = reads.get(cache_key)
    if snap is None:
        snap = reads[cache_key] = _read(do, table, key, fk_cols)
    return snap


def _compare(
    do: DurableObjectStorage,
    tables: dict[str, TableInfo],
    before: dict[str, _Snap],
    fates: dict[str, _Fate],
    *,
    after_tables: dict[str, TableInfo] | None = None,
    after_low: dict[str, TableInfo] | None = None,
    reads: dict[tuple[object, ...], _Snap] | None = None,
    pooled: list[_Pooled] | None = None,
    version: int = 0,
) -> list[_Loss]:
    """The rows and foreign-key values of ``before`` that are gone from ``do``, except where
    ``fates`` says it is deliberate. A pass compares many batches with one DO: ``after_tables``
    (``after_low``: the same by lower-case name) and ``reads`` keep its schema and table reads,
    and ``pooled`` receives the keyless tables (their batches are compared together, by counts,
    see :func:`_pooled_losses`)."""
    if after_tables is None:
        after_tables = read_tables(do)
    by_low = after_low
    if by_low is None:
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
        if key is None and pooled is not None:
            pooled.append(_Pooled(version, name, after_t.name, fate, snap, fk_map))
            continue
        after = _cached_read(do, reads, after_t.name, key, tuple(fk_map.values()))
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
    "and run the checks with `--dosqlite-start drizzle-fk-off` (ini `dosqlite_start`; a "
    "`module:function` start of your own that does this counts too) so they migrate the "
    "same way. Or edit the "
    "migration so no row references `{parent}` when it is dropped ({keep})."
)
#: how to keep what a cascade deletes, and what SET NULL / SET DEFAULT overwrites
_KEEP_ROWS = (
    "copy the child rows to a scratch table before the rebuild and insert them back after the "
    "RENAME"
)
_KEEP_VALUES = (
    "save the child's key and `{column}` in a scratch table before the rebuild and set "
    "`{column}` back with an UPDATE ... FROM the scratch table after the RENAME: the rows "
    "themselves are not deleted, so inserting them back would add nothing"
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


LossKey = tuple[str, str, str, tuple[tuple[str, int, int], ...]]
FailureKey = tuple[str, str | None, int | None, str | None, str]


def _add_loss(
    findings: _Findings,
    bundle: Bundle,
    k: int,
    head: str,
    loss: _Loss,
    rows_note: str | None = None,
) -> LossKey:
    """Report ``loss`` (seen upgrading from version ``k``); ``rows_note`` replaces the "no single
    statement" explanation of a loss that was not replayed."""
    key: LossKey = (
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
                keep = (
                    _KEEP_ROWS
                    if d.column is None
                    else _KEEP_VALUES.replace("{column}", f"{d.table}.{d.column}")
                )
                fix = _FK_OFF_FIX.replace("{parent}", parent).replace("{keep}", keep)
                sections.append(("How to fix", fix))
        if rows_note is not None:
            sections.append(("Rows", rows_note))
        elif not loss.culprits:
            sections.append(
                (
                    "Why",
                    "No single statement could be blamed when the upgrade was replayed "
                    "statement by statement; compare the table before and after the upgrade.",
                )
            )
        return _Finding("loss", [k], sections, headline)

    findings.add(key, k, make)
    return key


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
    rows_note: str | None = None,
    user_rows: bool = False,
) -> FailureKey:
    """Report the data-dependent failure ``exc`` of the upgrade from version ``k`` (``seeded``:
    the seeded image it started from); ``rows_note`` says where rows came from when they were
    not seeded at ``k`` alone; ``user_rows``: the DO held the rows of the user's ``seed``."""
    cause = str(exc.cause) if exc.cause is not None else exc.message
    if isinstance(exc.cause, DurableObjectInternalError):
        cause = exc.cause.reason  # its message holds a random reference
    key: FailureKey = ("failure", exc.tag, exc.chunk, exc.statement, cause)

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
        if rows_note is not None:
            sections.append(("Rows", rows_note))
        if user_rows:
            sections.append(
                (
                    "Rows",
                    "The DO held the rows your `seed` setting gives this version (generated "
                    "rows filled the tables it leaves empty).",
                )
            )
        m = _NOT_NULL.search(cause)
        if m:
            data, hint = _not_null_advice(exc, m.group(1), m.group(2), seeded, k, head_defaults)
            sections.append(("Data", data))
        elif "constraint failed" in cause:
            hint = (
                "Rows that existing DOs already hold break the constraint when this statement "
                "writes them (a new CHECK, UNIQUE or FOREIGN KEY applied to old rows, e.g. when "
                "a table recreation copies them into the new table). Make the old rows valid "
                "first, in the same migration before this statement (an UPDATE to valid "
                "values, or a DELETE of rows that cannot be kept), or change the constraint so "
                "they pass."
            )
        if "Cannot add a" not in cause and not user_rows:
            # every such failure depends on the generated rows: a lookup into a table the
            # seeder could not fill reads NULL, an id column without a foreign key points
            # nowhere: say so
            caveat = (
                "The rows were generated from the schema (realistic, but not yours). If real "
                "rows can never look like that (a text column that always holds JSON, an id "
                "that always names an existing row, say), give the check rows of your own with "
                "the `seed` setting: a callable seed(tag, do) or a JSON file {tag: {table: "
                "[rows]}}. A table the seeder could not fill is listed under 'Not seeded': a "
                "lookup into it reads NULL."
            )
            sections.append(("If the seeded rows are unrealistic", caveat))
        if hint:
            sections.append(("How to fix", hint))
        return _Finding(
            "failure", [k], sections, f"migration {exc.tag} fails on a DO with data: {cause}"
        )

    findings.add(key, k, make)
    return key


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
