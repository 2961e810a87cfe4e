"""The schema of a (Durable Object) SQLite database as a comparable value.

Why: a migration is only right if the database it leaves behind is right. Tests need that state
as data they can assert on (``introspect``), as text reviewers can read in a pull request
(``render``), as the exact dump recorded on a real Durable Object (``dump_master`` +
``format_expected_schema``), and as a list of readable differences (``diff``).

Everything here reads the database through a *query function* (``Query``), so it works the same
on the emulator, on a plain APSW connection and on a real DO, and it uses only what a DO allows:
``sqlite_master`` reads and the allow-listed ``pragma_*`` table-valued functions
(``table_list``, ``table_xinfo``, ``index_list``, ``index_xinfo``, ``foreign_key_list``).
Internal objects (``_cf_*``, ``sqlite_*``, FTS shadow tables) and, by default, drizzle's ledger
``__drizzle_migrations`` are left out.

What the pragmas do not tell (AUTOINCREMENT, CHECKs, generated expressions, collations,
constraint names, expression index terms) is read from the stored ``CREATE`` text with a small
SQLite tokenizer: it is fast (introspection stays in the low milliseconds) and does not depend on
sqlglot, which is only imported lazily by :func:`render` to pretty-print view queries.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

__all__ = [
    "JOURNAL_QUERY",
    "KEYWORDS",
    "LEDGER_TABLE",
    "RENDER_VERSION",
    "SCHEMA_QUERY",
    "Check",
    "Column",
    "Difference",
    "ForeignKey",
    "Index",
    "IndexColumn",
    "MasterRow",
    "Query",
    "Schema",
    "Table",
    "Tok",
    "Trigger",
    "UniqueConstraint",
    "View",
    "canonical",
    "canonical_default",
    "canonical_type",
    "diff",
    "differences",
    "display",
    "dump_journal",
    "dump_master",
    "format_expected_journal",
    "format_expected_schema",
    "introspect",
    "is_internal_name",
    "normalize_sql",
    "parse_expected_journal",
    "parse_expected_schema",
    "quote_ident",
    "render",
    "strip_outer_parens",
    "tokenize",
]

#: Runs one read-only SQL statement and returns its rows as tuples.
Query = Callable[[str], list[tuple[object, ...]]]

#: ``(type, name, tbl_name, sql)`` of one ``sqlite_master`` row
MasterRow = tuple[str, str, str, str | None]

#: drizzle's bookkeeping table (the name cannot be configured)
LEDGER_TABLE = "__drizzle_migrations"

#: the query the recorded real-DO dumps (``expected-schema.txt``) were made with
SCHEMA_QUERY = (
    "SELECT type, name, tbl_name, sql FROM sqlite_master "
    "WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY type, name"
)

#: the query the recorded ledger dumps (``expected-journal-rows.txt``) were made with
JOURNAL_QUERY = (
    "SELECT rowid, id, hash, created_at, typeof(id) AS id_type, "
    'typeof(created_at) AS created_at_type FROM "__drizzle_migrations" ORDER BY rowid'
)

#: Bump when :func:`render` output changes for the same schema (snapshot files then change).
RENDER_VERSION = 1

_JOURNAL_HEADER = "rowid | id | hash | created_at | typeof(id) | typeof(created_at)"

# --------------------------------------------------------------------------------------------
# the model


@dataclass(frozen=True)
class Column:
    """One column, in declaration order. ``default`` is SQLite's ``dflt_value`` normalized."""

    name: str
    #: declared type as written (``text(256)``), ``""`` when none
    type: str
    notnull: bool = False
    #: SQL text of the DEFAULT expression (identifier quoting/whitespace normalized), or None
    default: str | None = None
    #: 1-based position in the primary key, 0 when not part of it
    pk: int = 0
    #: ``table_xinfo.hidden``: 0 normal, 1 hidden (virtual tables), 2 generated VIRTUAL,
    #: 3 generated STORED
    hidden: int = 0
    #: the generated-column expression (without its outer parentheses), or None
    generated: str | None = None
    autoincrement: bool = False
    #: declared COLLATE of the column, upper-cased, or None
    collation: str | None = None


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    #: as declared; empty when the REFERENCES clause names no columns (the parent's primary key)
    ref_columns: tuple[str, ...]
    on_update: str = "NO ACTION"
    on_delete: str = "NO ACTION"
    #: DEFERRABLE INITIALLY DEFERRED
    deferred: bool = False


@dataclass(frozen=True)
class UniqueConstraint:
    """A ``UNIQUE`` table or column constraint (an ``sqlite_autoindex_*`` with origin ``u``)."""

    columns: tuple[str, ...]
    #: ``CONSTRAINT <name>`` when the DDL gives one (not part of equality: SQLite keeps no name)
    name: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Check:
    #: the expression inside ``CHECK(...)``, normalized
    expr: str
    name: str | None = None
    #: set for a column constraint
    column: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    #: primary key column names in key order (``()`` for a plain rowid table)
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    unique_constraints: tuple[UniqueConstraint, ...] = ()
    checks: tuple[Check, ...] = ()
    without_rowid: bool = False
    strict: bool = False
    #: a ``CREATE VIRTUAL TABLE`` (for example FTS5)
    virtual: bool = False
    #: the stored CREATE text (None for schemas built from a drizzle snapshot)
    sql: str | None = field(default=None, compare=False, repr=False)

    def column(self, name: str) -> Column | None:
        low = name.lower()
        return next((c for c in self.columns if c.name.lower() == low), None)


@dataclass(frozen=True)
class IndexColumn:
    """One index term: a column name, or an expression when ``expression`` is true."""

    name: str
    expression: bool = False
    desc: bool = False
    #: collation when it is not the default BINARY, upper-cased
    collation: str | None = None


@dataclass(frozen=True)
class Index:
    """An explicit ``CREATE INDEX`` (constraint autoindexes live on :class:`Table`)."""

    name: str
    table: str
    columns: tuple[IndexColumn, ...]
    unique: bool = False
    #: the partial-index WHERE expression, normalized, or None
    where: str | None = None
    #: ``index_list.origin``: always ``c`` here (``u``/``pk`` indexes are table constraints)
    origin: str = "c"
    sql: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class View:
    name: str
    #: the SELECT after ``AS``, normalized
    definition: str
    sql: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    #: the whole CREATE TRIGGER statement, normalized
    definition: str
    sql: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Schema:
    """Tables, indexes, views and triggers, each sorted by name. Hashable and comparable.

    Equality ignores identifier quoting, whitespace and keyword case (the stored ``sql`` texts
    are carried along but not compared); :func:`diff` says what differs.
    """

    tables: tuple[Table, ...] = ()
    indexes: tuple[Index, ...] = ()
    views: tuple[View, ...] = ()
    triggers: tuple[Trigger, ...] = ()

    def table(self, name: str) -> Table | None:
        low = name.lower()
        return next((t for t in self.tables if t.name.lower() == low), None)

    def index(self, name: str) -> Index | None:
        low = name.lower()
        return next((i for i in self.indexes if i.name.lower() == low), None)

    def view(self, name: str) -> View | None:
        low = name.lower()
        return next((v for v in self.views if v.name.lower() == low), None)

    def indexes_of(self, table: str) -> tuple[Index, ...]:
        low = table.lower()
        return tuple(i for i in self.indexes if i.table.lower() == low)

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)

    def replacing(self, other: Schema, owners: Collection[str]) -> Schema:
        """This schema with the objects of the tables and views named in ``owners`` (names as
        stored, which is how ``sqlite_master.tbl_name`` gives them), and the indexes and
        triggers on them, taken from ``other`` instead (see ``introspect(only=...)``): the
        objects of every other table stay the same objects."""
        return Schema(
            tables=_merged(self.tables, other.tables, owners, lambda t: t.name),
            indexes=_merged(self.indexes, other.indexes, owners, lambda i: i.table),
            views=_merged(self.views, other.views, owners, lambda v: v.name),
            triggers=_merged(self.triggers, other.triggers, owners, lambda t: t.table),
        )


_Object = TypeVar("_Object", "Table", "Index", "View", "Trigger")


def _merged(
    old: tuple[_Object, ...],
    new: tuple[_Object, ...],
    owners: Collection[str],
    owner: Callable[[_Object], str],
) -> tuple[_Object, ...]:
    kept = [x for x in old if owner(x) not in owners]
    kept.extend(new)
    return tuple(sorted(kept, key=lambda x: _sort_key(x.name)))


def _sort_key(name: str) -> tuple[str, str]:
    return (name.lower(), name)


# --------------------------------------------------------------------------------------------
# a small SQLite tokenizer (enough to read stored CREATE statements)

#: SQLite's keywords (https://sqlite.org/lang_keywords.html)
KEYWORDS = frozenset(
    [
        "ABORT",
        "ACTION",
        "ADD",
        "AFTER",
        "ALL",
        "ALTER",
        "ALWAYS",
        "ANALYZE",
        "AND",
        "AS",
        "ASC",
        "ATTACH",
        "AUTOINCREMENT",
        "BEFORE",
        "BEGIN",
        "BETWEEN",
        "BY",
        "CASCADE",
        "CASE",
        "CAST",
        "CHECK",
        "COLLATE",
        "COLUMN",
        "COMMIT",
        "CONFLICT",
        "CONSTRAINT",
        "CREATE",
        "CROSS",
        "CURRENT",
        "CURRENT_DATE",
        "CURRENT_TIME",
        "CURRENT_TIMESTAMP",
        "DATABASE",
        "DEFAULT",
        "DEFERRABLE",
        "DEFERRED",
        "DELETE",
        "DESC",
        "DETACH",
        "DISTINCT",
        "DO",
        "DROP",
        "EACH",
        "ELSE",
        "END",
        "ESCAPE",
        "EXCEPT",
        "EXCLUDE",
        "EXCLUSIVE",
        "EXISTS",
        "EXPLAIN",
        "FAIL",
        "FILTER",
        "FIRST",
        "FOLLOWING",
        "FOR",
        "FOREIGN",
        "FROM",
        "FULL",
        "GENERATED",
        "GLOB",
        "GROUP",
        "GROUPS",
        "HAVING",
        "IF",
        "IGNORE",
        "IMMEDIATE",
        "IN",
        "INDEX",
        "INDEXED",
        "INITIALLY",
        "INNER",
        "INSERT",
        "INSTEAD",
        "INTERSECT",
        "INTO",
        "IS",
        "ISNULL",
        "JOIN",
        "KEY",
        "LAST",
        "LEFT",
        "LIKE",
        "LIMIT",
        "MATCH",
        "MATERIALIZED",
        "NATURAL",
        "NO",
        "NOT",
        "NOTHING",
        "NOTNULL",
        "NULL",
        "NULLS",
        "OF",
        "OFFSET",
        "ON",
        "OR",
        "ORDER",
        "OTHERS",
        "OUTER",
        "OVER",
        "PARTITION",
        "PLAN",
        "PRAGMA",
        "PRECEDING",
        "PRIMARY",
        "QUERY",
        "RAISE",
        "RANGE",
        "RECURSIVE",
        "REFERENCES",
        "REGEXP",
        "REINDEX",
        "RELEASE",
        "RENAME",
        "REPLACE",
        "RESTRICT",
        "RETURNING",
        "RIGHT",
        "ROLLBACK",
        "ROW",
        "ROWS",
        "SAVEPOINT",
        "SELECT",
        "SET",
        "TABLE",
        "TEMP",
        "TEMPORARY",
        "THEN",
        "TIES",
        "TO",
        "TRANSACTION",
        "TRIGGER",
        "UNBOUNDED",
        "UNION",
        "UNIQUE",
        "UPDATE",
        "USING",
        "VACUUM",
        "VALUES",
        "VIEW",
        "VIRTUAL",
        "WHEN",
        "WHERE",
        "WINDOW",
        "WITH",
        "WITHOUT",
    ]
)

# keywords that are written like functions: no space before their "("
_FUNC_KEYWORDS = frozenset({"CAST", "RAISE", "REPLACE", "LIKE", "GLOB", "MATCH", "REGEXP"})
# keywords after which a "-" or "+" is still a binary operator
_VALUE_KEYWORDS = frozenset({"NULL", "END", "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP"})

_TOKEN_RE = re.compile(
    r"""\s+|--[^\n]*|/\*[\s\S]*?(?:\*/|\Z)"""  # blanks, comments
    r"""|[xX]'[^']*'"""  # blob literal
    r"""|'(?:[^']|'')*'?"""  # string
    r"""|"(?:[^"]|"")*"?|`(?:[^`]|``)*`?|\[[^\]]*\]?"""  # quoted identifiers
    r"""|0[xX][0-9A-Fa-f]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?"""  # numbers
    r"""|(?:[A-Za-z_]|[^\x00-\x7f])(?:[\w$]|[^\x00-\x7f])*"""  # words (any non-ASCII too)
    r"""|\?\d*|[:@$]\w+"""  # parameters
    r"""|\|\||->>|->|<<|>>|<=|>=|==|!=|<>|.""",  # operators, anything else
    re.DOTALL,
)
_QUOTE_END = {'"': '"', "`": "`", "[": "]"}


class Tok(NamedTuple):
    """``kind``: kw, id, str, num, blob, param, op. ``value``: the unquoted name (id), the
    upper-case keyword (kw), else the text."""

    kind: str
    text: str
    value: str


def tokenize(sql: str) -> list[Tok]:
    """Tokens of ``sql`` without whitespace and comments. Never raises."""
    out: list[Tok] = []
    append = out.append
    for text in _TOKEN_RE.findall(sql):
        c = text[0]
        if c.isspace() or (len(text) > 1 and text[:2] in ("--", "/*")):
            continue
        if c.isalpha() or c == "_" or c > "\x7f":
            if c in "xX" and len(text) > 1 and text[1] == "'":
                append(Tok("blob", text, text))
                continue
            up = text.upper()
            if up in KEYWORDS:
                append(Tok("kw", text, up))
            else:
                append(Tok("id", text, text))
        elif c == "'":
            append(Tok("str", text, text))
        elif c in _QUOTE_END:
            end = _QUOTE_END[c]
            body = text[1:-1] if len(text) > 1 and text.endswith(end) else text[1:]
            append(Tok("id", text, body if c == "[" else body.replace(end + end, end)))
        elif c.isdigit() or (c == "." and len(text) > 1):
            append(Tok("num", text, text))
        elif c in "?:@$":
            append(Tok("param", text, text))
        else:
            append(Tok("op", text, text))
    return out


_BARE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: bare true/false are literals, not names
_BOOLEANS = ("true", "false")


def quote_ident(name: str) -> str:
    """``name`` bare when that is unambiguous, else double-quoted (the normalized spelling)."""
    if _BARE_RE.match(name) and name.upper() not in KEYWORDS and name.lower() not in _BOOLEANS:
        return name
    return '"' + name.replace('"', '""') + '"'


def _is_op(tok: Tok, text: str) -> bool:
    return tok.kind == "op" and tok.text == text


def _name_of(tok: Tok) -> str:
    """An identifier's name; keywords and string literals also serve as names in SQLite."""
    if tok.kind == "str":
        return tok.text[1:-1].replace("''", "'")
    if tok.kind == "kw":
        return tok.text
    return tok.value


def _spaced(tokens: Sequence[Tok], texts: Sequence[str]) -> str:
    """``texts`` (one per token) joined with SQL spacing: single spaces, none inside
    parentheses, before commas, around dots, after a unary sign or before a call's ``(``."""
    parts: list[str] = []
    prev: Tok | None = None
    prev_unary = False
    for tok, text in zip(tokens, texts, strict=True):
        kind = tok.kind
        if prev is not None:
            space = True
            if (
                (kind == "op" and tok.text in (",", ")", ".", ";"))
                or (prev.kind == "op" and prev.text in ("(", "."))
                or prev_unary
                or (
                    kind == "op"
                    and tok.text == "("
                    and (prev.kind == "id" or (prev.kind == "kw" and prev.value in _FUNC_KEYWORDS))
                )
            ):
                space = False
            if space:
                parts.append(" ")
        parts.append(text)
        prev_unary = (
            kind == "op"
            and tok.text in ("-", "+", "~")
            and (
                prev is None
                or (prev.kind == "op" and prev.text != ")")
                or (prev.kind == "kw" and prev.value not in _VALUE_KEYWORDS)
            )
        )
        prev = tok
    return "".join(parts)


def display(tokens: Sequence[Tok], *, upper_ids: bool = False) -> str:
    """Tokens joined as normalized SQL: keywords upper-case, identifiers minimally quoted
    (``upper_ids``: bare identifiers upper-cased too, for type names), single spaces."""
    texts: list[str] = []
    for tok in tokens:
        if tok.kind == "kw":
            texts.append(tok.value)
        elif tok.kind == "id":
            if tok.text == tok.value:  # bare: already unambiguous
                texts.append(tok.text.upper() if upper_ids else tok.text)
            else:
                texts.append(quote_ident(tok.value))
        else:
            texts.append(tok.text)
    return _spaced(tokens, texts)


def normalize_sql(sql: str) -> str:
    """``sql`` with whitespace, comments, identifier quoting and keyword case normalized."""
    return display(tokenize(sql))


def canonical(
    tokens: Sequence[Tok], *, table: str | None = None, strip_parens: bool = False
) -> str:
    """A comparison key for an expression: case-, quoting- and spacing-insensitive; ``t.col``
    written against the owning ``table`` counts as ``col``; ``!=``/``==`` as ``<>``/``=``.
    With ``strip_parens`` redundant outer parentheses do not count either."""
    toks = list(tokens)
    if table is not None:
        low = table.lower()
        keep: list[Tok] = []
        i = 0
        while i < len(toks):
            t = toks[i]
            if (
                t.kind == "id"
                and t.value.lower() == low
                and i + 2 < len(toks)
                and _is_op(toks[i + 1], ".")
                and (i == 0 or not _is_op(toks[i - 1], "."))
            ):
                i += 2
                continue
            keep.append(t)
            i += 1
        toks = keep
    if strip_parens:
        toks = strip_outer_parens(toks)
    texts: list[str] = []
    for t in toks:
        if t.kind in ("kw", "id"):
            texts.append(t.value.lower())
        elif t.kind == "op" and t.text in ("!=", "=="):
            texts.append("<>" if t.text == "!=" else "=")
        elif t.kind == "str":
            texts.append(t.text)
        else:
            texts.append(t.text.lower())
    return _spaced(toks, texts)


def strip_outer_parens(toks: list[Tok]) -> list[Tok]:
    """``toks`` without parentheses that wrap the whole expression (``((x))`` → ``x``)."""
    while len(toks) >= 2 and _is_op(toks[0], "(") and _is_op(toks[-1], ")"):
        end = _match_paren(toks, 0)
        if end != len(toks) - 1:
            break
        toks = toks[1:-1]
    return toks


def _match_paren(toks: Sequence[Tok], start: int) -> int:
    """Index of the ``)`` matching the ``(`` at ``start`` (``len(toks)`` when unbalanced)."""
    depth = 0
    for i in range(start, len(toks)):
        t = toks[i]
        if t.kind == "op":
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
                if depth == 0:
                    return i
    return len(toks)


def _split_commas(toks: Sequence[Tok]) -> list[list[Tok]]:
    parts: list[list[Tok]] = [[]]
    depth = 0
    for t in toks:
        if t.kind == "op":
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
            elif t.text == "," and depth == 0:
                parts.append([])
                continue
        parts[-1].append(t)
    return [p for p in parts if p]


# --------------------------------------------------------------------------------------------
# reading CREATE TABLE / CREATE INDEX text


_COLUMN_CONSTRAINT_START = frozenset(
    {
        "CONSTRAINT",
        "PRIMARY",
        "NOT",
        "NULL",
        "UNIQUE",
        "CHECK",
        "DEFAULT",
        "COLLATE",
        "REFERENCES",
        "GENERATED",
        "AS",
    }
)


@dataclass
class _ColumnDDL:
    name: str
    tokens: list[Tok]
    type_end: int  # tokens[1:type_end] are the type
    autoincrement: bool = False
    collation: str | None = None
    generated: list[Tok] | None = None


@dataclass
class _FkDDL:
    columns: tuple[str, ...]
    ref_table: str
    deferred: bool


@dataclass
class _TableDDL:
    head: list[Tok]
    defs: list[list[Tok]]
    options: list[Tok]
    columns: dict[str, _ColumnDDL] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    unique_names: dict[tuple[str, ...], str] = field(default_factory=dict)
    fks: list[_FkDDL] = field(default_factory=list)
    pk_autoincrement: set[str] = field(default_factory=set)


def _paren_names(toks: Sequence[Tok], start: int) -> tuple[tuple[str, ...], int, bool]:
    """Names in the ``( ... )`` at ``start``; returns (names, index after ``)``, autoincrement)."""
    end = _match_paren(toks, start)
    names: list[str] = []
    autoinc = False
    for part in _split_commas(toks[start + 1 : end]):
        if part:
            names.append(_name_of(part[0]))
            autoinc = autoinc or any(t.kind == "kw" and t.value == "AUTOINCREMENT" for t in part)
    return tuple(names), end + 1, autoinc


def _references(toks: Sequence[Tok], i: int) -> tuple[str, int, bool]:
    """At the token after REFERENCES: (parent table, index after the clause, deferred)."""
    ref = _name_of(toks[i]) if i < len(toks) else ""
    j = i + 1
    depth = 0
    deferred = False
    while j < len(toks):
        t = toks[j]
        if t.kind == "op" and t.text == "(":
            depth += 1
        elif t.kind == "op" and t.text == ")":
            depth -= 1
        elif depth == 0 and t.kind == "kw":
            if t.value in (
                "CONSTRAINT",
                "PRIMARY",
                "UNIQUE",
                "CHECK",
                "DEFAULT",
                "COLLATE",
                "GENERATED",
                "AS",
                "REFERENCES",
            ) or (t.value == "NOT" and j + 1 < len(toks) and toks[j + 1].value == "NULL"):
                break
            if t.value == "DEFERRABLE":
                prev_not = toks[j - 1].kind == "kw" and toks[j - 1].value == "NOT"
                k = j + 1
                if (
                    not prev_not
                    and k + 1 < len(toks)
                    and toks[k].value == "INITIALLY"
                    and toks[k + 1].value == "DEFERRED"
                ):
                    deferred = True
        j += 1
    return ref, j, deferred


@functools.lru_cache(maxsize=1024)
def _parse_create_table(sql: str) -> _TableDDL | None:
    """The parts of a stored CREATE TABLE text that the pragmas do not report (cached: the
    same texts come back on every introspection of a test session; treat as read-only)."""
    toks = tokenize(sql)
    open_at = next(
        (i for i, t in enumerate(toks) if t.kind == "op" and t.text == "("),
        None,
    )
    if open_at is None or any(t.kind == "kw" and t.value == "AS" for t in toks[:open_at]):
        return None
    if any(t.kind == "kw" and t.value == "VIRTUAL" for t in toks[:open_at]):
        return None
    close_at = _match_paren(toks, open_at)
    ddl = _TableDDL(
        head=toks[:open_at],
        defs=_split_commas(toks[open_at + 1 : close_at]),
        options=toks[close_at + 1 :],
    )
    for d in ddl.defs:
        first = d[0]
        second = d[1] if len(d) > 1 else None
        if first.kind == "kw" and first.value == "CONSTRAINT" and len(d) > 2:
            _table_constraint(ddl, _name_of(d[1]), d[2:])
        elif (
            first.kind == "kw"
            and second is not None
            and (
                (first.value in ("PRIMARY", "FOREIGN") and second.value == "KEY")
                or (first.value in ("UNIQUE", "CHECK") and _is_op(second, "("))
            )
        ):
            _table_constraint(ddl, None, d)
        else:
            _column_def(ddl, d)
    return ddl


def _table_constraint(ddl: _TableDDL, name: str | None, body: list[Tok]) -> None:
    kind = body[0].value
    if kind == "CHECK" and len(body) > 1 and _is_op(body[1], "("):
        end = _match_paren(body, 1)
        ddl.checks.append(Check(expr=display(body[2:end]), name=name))
    elif kind == "UNIQUE" and len(body) > 1 and _is_op(body[1], "("):
        cols, _, _ = _paren_names(body, 1)
        if name is not None:
            ddl.unique_names[tuple(c.lower() for c in cols)] = name
    elif kind == "PRIMARY" and len(body) > 2 and _is_op(body[2], "("):
        cols, _, autoinc = _paren_names(body, 2)
        if autoinc and cols:
            ddl.pk_autoincrement.add(cols[0].lower())
    elif kind == "FOREIGN" and len(body) > 2 and _is_op(body[2], "("):
        cols, after, _ = _paren_names(body, 2)
        if after < len(body) and body[after].value == "REFERENCES":
            ref, _, deferred = _references(body, after + 1)
            ddl.fks.append(_FkDDL(cols, ref, deferred))


def _column_def(ddl: _TableDDL, d: list[Tok]) -> None:
    name = _name_of(d[0])
    type_end = 1
    while type_end < len(d):
        t = d[type_end]
        if t.kind == "kw" and t.value in _COLUMN_CONSTRAINT_START:
            break
        if _is_op(t, "("):
            type_end = _match_paren(d, type_end) + 1
            continue
        type_end += 1
    col = _ColumnDDL(name=name, tokens=d, type_end=type_end)
    i = type_end
    cname: str | None = None
    while i < len(d):
        t = d[i]
        v = t.value if t.kind == "kw" else ""
        if v == "CONSTRAINT" and i + 1 < len(d):
            cname = _name_of(d[i + 1])
            i += 2
            continue
        if v == "AUTOINCREMENT":
            col.autoincrement = True
        elif v == "COLLATE" and i + 1 < len(d):
            col.collation = _name_of(d[i + 1]).upper()
            i += 1
        elif v == "CHECK" and i + 1 < len(d) and _is_op(d[i + 1], "("):
            end = _match_paren(d, i + 1)
            ddl.checks.append(Check(expr=display(d[i + 2 : end]), name=cname, column=name))
            i = end
        elif v == "AS" and i + 1 < len(d) and _is_op(d[i + 1], "("):
            end = _match_paren(d, i + 1)
            col.generated = d[i + 2 : end]
            i = end
        elif v == "DEFAULT" and i + 1 < len(d) and _is_op(d[i + 1], "("):
            i = _match_paren(d, i + 1)
        elif v == "UNIQUE" and cname is not None:
            ddl.unique_names[(name.lower(),)] = cname
        elif v == "REFERENCES" and i + 1 < len(d):
            ref, after, deferred = _references(d, i + 1)
            ddl.fks.append(_FkDDL((name,), ref, deferred))
            i = after
            cname = None
            continue
        if v in _COLUMN_CONSTRAINT_START:
            cname = None  # a CONSTRAINT name belongs to the one constraint after it
        i += 1
    ddl.columns[name.lower()] = col


@dataclass
class _IndexDDL:
    terms: list[list[Tok]]
    where: list[Tok] | None


def _parse_create_index(sql: str) -> _IndexDDL | None:
    toks = tokenize(sql)
    on = next((i for i, t in enumerate(toks) if t.kind == "kw" and t.value == "ON"), None)
    if on is None:
        return None
    open_at = next((i for i in range(on, len(toks)) if _is_op(toks[i], "(")), None)
    if open_at is None:
        return None
    close_at = _match_paren(toks, open_at)
    rest = toks[close_at + 1 :]
    where = rest[1:] if rest and rest[0].kind == "kw" and rest[0].value == "WHERE" else None
    return _IndexDDL(terms=_split_commas(toks[open_at + 1 : close_at]), where=where)


def _strip_term(term: list[Tok]) -> list[Tok]:
    """An index term without its trailing ``COLLATE x`` and ``ASC``/``DESC``."""
    t = list(term)
    if t and t[-1].kind == "kw" and t[-1].value in ("ASC", "DESC"):
        t.pop()
    if len(t) >= 2 and t[-2].kind == "kw" and t[-2].value == "COLLATE":
        del t[-2:]
    return t


# --------------------------------------------------------------------------------------------
# introspection


def is_internal_name(name: str) -> bool:
    """True for objects that are not the user's schema: ``_cf_*`` (any case) and ``sqlite_*``."""
    low = name.lower()
    return low.startswith("_cf_") or low.startswith("sqlite_")


_NOT_INTERNAL = (
    "{a}.name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND {a}.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
    "AND {a}.tbl_name NOT LIKE '\\_cf\\_%' ESCAPE '\\'"
)
_Q_MASTER = "SELECT type, name, tbl_name, sql FROM sqlite_master"
_Q_TABLE_LIST = "SELECT name, type, wr, strict FROM pragma_table_list WHERE schema = 'main'"
_Q_COLUMNS = (
    'SELECT m.name, p.cid, p.name, p.type, p."notnull", p.dflt_value, p.pk, p.hidden '
    "FROM sqlite_master AS m JOIN pragma_table_xinfo(m.name) AS p "
    "WHERE m.type = 'table' AND " + _NOT_INTERNAL.format(a="m") + " ORDER BY m.name, p.cid"
)
_Q_FKS = (
    'SELECT m.name, f.id, f.seq, f."table", f."from", f."to", f.on_update, f.on_delete '
    "FROM sqlite_master AS m JOIN pragma_foreign_key_list(m.name) AS f "
    "WHERE m.type = 'table' AND " + _NOT_INTERNAL.format(a="m") + " ORDER BY m.name, f.id, f.seq"
)
_Q_INDEX_LIST = (
    'SELECT m.name, l.name, l."unique", l.origin, l.partial '
    "FROM sqlite_master AS m JOIN pragma_index_list(m.name) AS l "
    "WHERE m.type = 'table' AND " + _NOT_INTERNAL.format(a="m")
)
_Q_INDEX_COLUMNS = (
    'SELECT m.name, x.seqno, x.cid, x.name, x."desc", x.coll '
    "FROM sqlite_master AS m JOIN pragma_index_xinfo(m.name) AS x "
    "WHERE m.type = 'index' AND m.name NOT LIKE '\\_cf\\_%' ESCAPE '\\' "
    "AND m.tbl_name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND x.key = 1 ORDER BY m.name, x.seqno"
)


def _restrict(sql: str, clause: str) -> str:
    """``sql`` (a query with a WHERE) with ``AND clause``, before any ORDER BY."""
    head, order, tail = sql.partition(" ORDER BY ")
    return f"{head} AND {clause}{order}{tail}"


def _int(v: object) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float):
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return 0


def _str(v: object) -> str:
    return "" if v is None else str(v)


def _opt_str(v: object) -> str | None:
    return None if v is None else str(v)


#: a result row inside introspection (values checked where it matters; Any keeps it fast)
_Row = tuple[Any, ...]


def _rows(query: Query, sql: str, ints: tuple[int, ...]) -> list[_Row]:
    """``query(sql)`` with the given columns as Python ints (a DO hands integers back as
    doubles; an emulator may too)."""
    rows = query(sql)
    if not rows or all(type(rows[0][i]) is int for i in ints):  # one query, one type per column
        return rows
    out = []
    for r in rows:
        lst = list(r)
        for i in ints:
            lst[i] = _int(lst[i])
        out.append(tuple(lst))
    return out


def introspect(
    query: Query, *, include_ledger: bool = False, only: Collection[str] | None = None
) -> Schema:
    """The user-facing schema of the database behind ``query``.

    Internal objects (``_cf_*``, ``sqlite_*``, FTS shadow tables) are never included; drizzle's
    ``__drizzle_migrations`` only with ``include_ledger=True``. Six read-only queries in all.
    ``only`` (names as stored): just the tables and views of these names and the indexes and
    triggers on them, the rest of the database unread (a schema that changes one table per
    version is read one table per version: :meth:`Schema.replacing`).
    """

    def wanted(name: str) -> bool:
        if is_internal_name(name):
            return False
        return include_ledger or name != LEDGER_TABLE

    q_list, q_cols, q_fks, q_index_cols, q_index_list = (
        _Q_TABLE_LIST,
        _Q_COLUMNS,
        _Q_FKS,
        _Q_INDEX_COLUMNS,
        _Q_INDEX_LIST,
    )
    if only is not None:
        names = ", ".join(_string_literal(n) for n in sorted(only)) or "NULL"
        q_list = _restrict(q_list, f"name IN ({names})")
        q_cols, q_fks, q_index_list = (
            _restrict(q, f"m.name IN ({names})") for q in (q_cols, q_fks, q_index_list)
        )
        q_index_cols = _restrict(q_index_cols, f"m.tbl_name IN ({names})")
    master = [(_str(r[0]), _str(r[1]), _str(r[2]), _opt_str(r[3])) for r in query(_Q_MASTER)]
    if only is not None:
        master = [r for r in master if (r[1] if r[0] in ("table", "view") else r[2]) in only]
    kinds: dict[str, tuple[str, bool, bool]] = {}
    for r in _rows(query, q_list, (2, 3)):
        kinds[_str(r[0])] = (_str(r[1]), bool(r[2]), bool(r[3]))

    cols_by_table: dict[str, list[_Row]] = {}
    for r in _rows(query, q_cols, (1, 4, 6, 7)):
        cols_by_table.setdefault(_str(r[0]), []).append(r)
    fks_by_table: dict[str, dict[object, list[_Row]]] = {}
    for r in _rows(query, q_fks, (1, 2)):
        fks_by_table.setdefault(_str(r[0]), {}).setdefault(r[1], []).append(r)
    index_cols: dict[str, list[_Row]] = {}
    for r in _rows(query, q_index_cols, (1, 2, 4)):
        index_cols.setdefault(_str(r[0]), []).append(r)
    unique_index: dict[str, tuple[bool, bool]] = {}
    uniques_by_table: dict[str, list[tuple[str, ...]]] = {}
    for r in _rows(query, q_index_list, (2, 4)):
        iname = _str(r[1])
        unique_index[iname] = (bool(r[2]), bool(r[4]))
        if r[3] == "u":
            cols = tuple(_str(x[3]) for x in index_cols.get(iname, ()))
            uniques_by_table.setdefault(_str(r[0]), []).append(cols)

    tables: list[Table] = []
    indexes: list[Index] = []
    views: list[View] = []
    triggers: list[Trigger] = []
    for type_, name, tbl_name, sql in master:
        if type_ == "table":
            kind, wr, strict = kinds.get(name, ("table", False, False))
            if kind == "shadow" or not wanted(name):
                continue
            tables.append(
                _build_table(
                    name,
                    sql,
                    cols_by_table.get(name, []),
                    fks_by_table.get(name, {}),
                    uniques_by_table.get(name, []),
                    virtual=kind == "virtual",
                    without_rowid=wr,
                    strict=strict,
                )
            )
        elif type_ == "index":
            if sql is None or not wanted(name) or not wanted(tbl_name):
                continue
            if kinds.get(tbl_name, ("table", False, False))[0] == "shadow":
                continue
            unique, partial = unique_index.get(name, (False, True))
            indexes.append(
                _build_index(name, tbl_name, sql, unique, partial, index_cols.get(name, []))
            )
        elif type_ == "view":
            if wanted(name) and sql is not None:
                views.append(View(name=name, definition=_view_definition(sql), sql=sql))
        elif type_ == "trigger" and wanted(name) and sql is not None:
            triggers.append(
                Trigger(name=name, table=tbl_name, definition=normalize_sql(sql), sql=sql)
            )
    return Schema(
        tables=tuple(sorted(tables, key=lambda t: _sort_key(t.name))),
        indexes=tuple(sorted(indexes, key=lambda i: _sort_key(i.name))),
        views=tuple(sorted(views, key=lambda v: _sort_key(v.name))),
        triggers=tuple(sorted(triggers, key=lambda t: _sort_key(t.name))),
    )


# Quick upper-case substring tests before any regex or tokenizing (introspection must stay fast).
_PARSE_WORDS = ("CHECK", "COLLATE", "DEFERRABLE", "CONSTRAINT")
_NEEDS_PARSE = re.compile(r"\b(?:CHECK|COLLATE|DEFERRABLE|CONSTRAINT)\b")
# AUTOINCREMENT is only valid right after "PRIMARY KEY [ASC|DESC] [ON CONFLICT x]"
_AUTOINC_COLUMN = re.compile(
    r"\bPRIMARY\s+KEY\s+(?:(?:ASC|DESC)\s+)?(?:ON\s+CONFLICT\s+\w+\s+)?AUTOINCREMENT\b"
)
_SIMPLE_DEFAULT = re.compile(r"-?\d+(?:\.\d+)?|'(?:[^']|'')*'|(?i:true|false)")


@functools.lru_cache(maxsize=4096)
def _normalize_default(value: object) -> str | None:
    """``dflt_value`` normalized. A lone identifier is what SQLite makes of it: a string
    (``DEFAULT "text"`` and ``DEFAULT text`` both store 'text'), except true/false."""
    if value is None:
        return None
    text = str(value)
    if _SIMPLE_DEFAULT.fullmatch(text):
        return text
    toks = tokenize(text)
    if len(toks) == 1 and toks[0].kind == "id" and toks[0].value.lower() not in _BOOLEANS:
        return _string_literal(toks[0].value)
    return display(toks)


def _string_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _build_table(
    name: str,
    sql: str | None,
    col_rows: list[_Row],
    fk_groups: dict[object, list[_Row]],
    unique_cols: list[tuple[str, ...]],
    *,
    virtual: bool,
    without_rowid: bool,
    strict: bool,
) -> Table:
    ddl: _TableDDL | None = None
    fast_autoinc: str | None = None
    if sql and not virtual:
        # Tokenizing is the slow part of introspection: do it only when the DDL holds something
        # the pragmas cannot tell. A lone AUTOINCREMENT is found with one regex.
        up = sql.upper()
        needs = any(r[7] in (2, 3) for r in col_rows) or (
            any(w in up for w in _PARSE_WORDS) and _NEEDS_PARSE.search(up) is not None
        )
        if not needs and "AUTOINCREMENT" in up:
            pks = [r for r in col_rows if r[6]]
            if len(pks) == 1 and _AUTOINC_COLUMN.search(up):
                fast_autoinc = _str(pks[0][2])
            else:
                needs = True
        if needs:
            ddl = _parse_create_table(sql)
    columns: list[Column] = []
    pk: list[tuple[int, str]] = []
    for r in col_rows:
        if r[7] == 1:  # a virtual table's hidden column (FTS5 rank, ...), not the user's
            continue
        cname = r[2]
        pkpos = r[6]
        dflt = r[5]
        if ddl is None:
            column = Column(
                cname,
                r[3],
                bool(r[4]),
                None if dflt is None else _normalize_default(dflt),
                pkpos,
                r[7],
                None,
                cname == fast_autoinc,
                None,
            )
        else:
            cd = ddl.columns.get(cname.lower())
            column = Column(
                cname,
                r[3],
                bool(r[4]),
                None if dflt is None else _normalize_default(dflt),
                pkpos,
                r[7],
                display(cd.generated) if cd and cd.generated is not None else None,
                bool(cd and cd.autoincrement) or cname.lower() in ddl.pk_autoincrement,
                cd.collation if cd else None,
            )
        columns.append(column)
        if pkpos:
            pk.append((pkpos, cname))
    fks: list[ForeignKey] = []
    for rows in fk_groups.values():
        rows = sorted(rows, key=lambda r: r[2])
        cols = tuple(_str(r[4]) for r in rows)
        refs = tuple(_str(r[5]) for r in rows if r[5] is not None)
        ref_table = _str(rows[0][3])
        deferred = False
        if ddl:
            key = (tuple(c.lower() for c in cols), ref_table.lower())
            deferred = any(
                (tuple(c.lower() for c in f.columns), f.ref_table.lower()) == key and f.deferred
                for f in ddl.fks
            )
        fks.append(
            ForeignKey(
                cols,
                ref_table,
                refs,
                _str(rows[0][6]).upper() or "NO ACTION",
                _str(rows[0][7]).upper() or "NO ACTION",
                deferred,
            )
        )
    uniques = {
        UniqueConstraint(
            cols, ddl.unique_names.get(tuple(c.lower() for c in cols)) if ddl else None
        )
        for cols in unique_cols
    }
    return Table(
        name=name,
        columns=tuple(columns),
        primary_key=tuple(n for _, n in sorted(pk)),
        foreign_keys=tuple(sorted(fks, key=lambda f: (f.columns, f.ref_table, f.ref_columns)))
        if len(fks) > 1
        else tuple(fks),
        unique_constraints=tuple(sorted(uniques, key=lambda u: u.columns)),
        checks=tuple(ddl.checks) if ddl else (),
        without_rowid=without_rowid,
        strict=strict,
        virtual=virtual,
        sql=sql,
    )


def _build_index(
    name: str,
    table: str,
    sql: str,
    unique: bool,
    partial: bool,
    col_rows: list[_Row],
) -> Index:
    ddl = None
    if partial or any(r[2] == -2 for r in col_rows):
        ddl = _parse_create_index(sql)
    terms = ddl.terms if ddl else []
    columns: list[IndexColumn] = []
    for pos, r in enumerate(col_rows):
        cid = r[2]
        coll = _str(r[5]).upper()
        collation = None if coll in ("", "BINARY") else coll
        desc = bool(r[4])
        if cid == -2:  # an expression
            term = _strip_term(terms[pos]) if pos < len(terms) else []
            columns.append(IndexColumn(display(term), True, desc, collation))
        else:
            cname = _str(r[3]) if cid >= 0 else "rowid"
            columns.append(IndexColumn(cname, False, desc, collation))
    where = display(ddl.where) if ddl and ddl.where else None
    return Index(
        name=name, table=table, columns=tuple(columns), unique=unique, where=where, sql=sql
    )


def _view_definition(sql: str) -> str:
    toks = tokenize(sql)
    return display(_view_select(toks))


def _view_select(toks: list[Tok]) -> list[Tok]:
    """The tokens after the ``AS`` that ends a CREATE VIEW header."""
    depth = 0
    for i, t in enumerate(toks):
        if t.kind == "op" and t.text == "(":
            depth += 1
        elif t.kind == "op" and t.text == ")":
            depth -= 1
        elif depth == 0 and t.kind == "kw" and t.value == "AS":
            return toks[i + 1 :]
    return toks


# --------------------------------------------------------------------------------------------
# the recorded dumps (expected-schema.txt / expected-journal-rows.txt)


def dump_master(query: Query) -> list[MasterRow]:
    """``sqlite_master`` exactly as the recorded real-DO dumps were taken (:data:`SCHEMA_QUERY`)."""
    return [(_str(r[0]), _str(r[1]), _str(r[2]), _opt_str(r[3])) for r in query(SCHEMA_QUERY)]


def format_expected_schema(rows: Iterable[MasterRow]) -> str:
    """The body of an ``expected-schema.txt`` (everything after its ``#`` header)."""
    blocks = []
    for type_, name, tbl_name, sql in rows:
        text = sql if sql is not None else "-- sql=NULL"
        blocks.append(f"-- type={type_} name={name} tbl_name={tbl_name}\n{text}\n")
    return "\n".join(blocks)


_BLOCK_RE = re.compile(r"^-- type=(\S*) name=(.*?) tbl_name=(.*)$", re.M)


def _sections(text: str) -> list[tuple[str, str]]:
    """``(section title, body)``: a ``=== title ===`` line starts a section; ``#`` lines and the
    blank lines right after them are the header. Files without sections give one ``""``."""
    lines = text.split("\n")
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        i += 1
    while i < len(lines) and lines[i] == "":
        i += 1
    out: list[tuple[str, list[str]]] = [("", [])]
    for line in lines[i:]:
        m = re.match(r"^=== (.*) ===$", line)
        if m:
            if not out[-1][0] and not out[-1][1]:
                out.pop()
            out.append((m.group(1), []))
            continue
        out[-1][1].append(line)
    return [(title, "\n".join(body)) for title, body in out]


def parse_expected_schema(text: str) -> dict[str, list[MasterRow]]:
    """Rows of a recorded ``expected-schema.txt``, by section title (``""`` when none)."""
    result: dict[str, list[MasterRow]] = {}
    for title, body in _sections(text):
        body = body.lstrip("\n")
        rows: list[MasterRow] = []
        matches = list(_BLOCK_RE.finditer(body))
        for n, m in enumerate(matches):
            end = matches[n + 1].start() if n + 1 < len(matches) else len(body)
            sql = body[m.end() + 1 : end]
            sql = sql[:-2] if n + 1 < len(matches) and sql.endswith("\n\n") else sql.rstrip("\n")
            rows.append((m.group(1), m.group(2), m.group(3), None if sql == "-- sql=NULL" else sql))
        result[title] = rows
    return result


def dump_journal(query: Query) -> list[_Row]:
    """The ledger rows as the recorded dumps took them (:data:`JOURNAL_QUERY`)."""
    return [tuple(r) for r in query(JOURNAL_QUERY)]


def _journal_value(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, bytes):
        return "x'" + v.hex() + "'"
    return str(v)


def format_expected_journal(rows: Iterable[Sequence[object]]) -> str:
    """The body of an ``expected-journal-rows.txt``: header line, then ``a | b | ...`` rows."""
    lines = [_JOURNAL_HEADER]
    # values as JSON (NULL for null); the two typeof() columns are bare type names
    lines += [
        " | ".join(str(v) if i >= 4 else _journal_value(v) for i, v in enumerate(row))
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def parse_expected_journal(text: str) -> dict[str, str]:
    """Bodies (header line + rows, ``\\n``-terminated) of a recorded journal file, by section."""
    out: dict[str, str] = {}
    for title, body in _sections(text):
        stripped = body.strip("\n")
        out[title] = stripped + "\n" if stripped else ""
    return out


# --------------------------------------------------------------------------------------------
# differences


@dataclass(frozen=True)
class Difference:
    """One difference between schema ``a`` and ``b``; ``a``/``b`` is None when absent there."""

    subject: str
    aspect: str | None
    a: str | None
    b: str | None

    def describe(self, a_name: str = "before", b_name: str = "after") -> str:
        if self.aspect is None:
            if self.a is None:
                return f"{self.subject}: only in {b_name}"
            return f"{self.subject}: only in {a_name}"
        return f"{self.subject}: {self.aspect} {self.a} in {a_name}, {self.b} in {b_name}"

    def __str__(self) -> str:
        if self.aspect is None:
            return f"{self.subject} {'added' if self.a is None else 'removed'}"
        return f"{self.subject}: {self.aspect} {self.a} -> {self.b}"


Mode = Literal["full", "drizzle"]


def _canon_text(text: str | None, table: str | None = None, *, parens: bool = False) -> str:
    if text is None:
        return ""
    return canonical(tokenize(text), table=table, strip_parens=parens)


def canonical_type(declared: str) -> str:
    """``text(256)`` / ``TEXT (256)`` → ``TEXT(256)``."""
    return display(tokenize(declared), upper_ids=True).upper().replace(" (", "(")


def canonical_default(default: str | None) -> str | None:
    """A DEFAULT for comparison: outer parentheses, case and quoting ignored; true/false as 1/0."""
    if default is None:
        return None
    c = _canon_text(default, parens=True)
    return {"true": "1", "false": "0"}.get(c, c)


def _show(v: str | None) -> str:
    return "none" if v is None else v


def _index_key(col: IndexColumn, table: str) -> str:
    # an expression, or a "column" that is not a plain name (older snapshots list expression
    # terms without marking them): compared as SQL
    if col.expression or not _BARE_RE.match(col.name):
        key = _canon_text(col.name, table, parens=True)
    else:
        key = col.name.lower()
    if col.collation:
        key += " collate " + col.collation.lower()
    if col.desc:
        key += " desc"
    return key


def _fk_refs(fk: ForeignKey, schema: Schema) -> tuple[str, ...]:
    if fk.ref_columns:
        return tuple(c.lower() for c in fk.ref_columns)
    parent = schema.table(fk.ref_table)
    return tuple(c.lower() for c in parent.primary_key) if parent else ()


def differences(a: Schema, b: Schema, *, mode: Mode = "full") -> list[Difference]:
    """Structured differences from ``a`` to ``b``.

    ``mode="drizzle"`` compares only what a drizzle-kit snapshot can express: column order,
    collations, STRICT/WITHOUT ROWID, constraint names other than CHECK names, deferrable FKs
    and triggers are ignored.
    """
    out: list[Difference] = []
    full = mode == "full"
    ta = {t.name.lower(): t for t in a.tables}
    tb = {t.name.lower(): t for t in b.tables}
    for key in sorted(ta.keys() | tb.keys()):
        x, y = ta.get(key), tb.get(key)
        if x is None or y is None:
            out.append(_presence("table", x, y))
            continue
        out += _table_differences(x, y, a, b, full)
    ia = {i.name.lower(): i for i in a.indexes}
    ib = {i.name.lower(): i for i in b.indexes}
    for key in sorted(ia.keys() | ib.keys()):
        i, j = ia.get(key), ib.get(key)
        if i is None or j is None:
            out.append(_presence("index", i, j))
            continue
        subj = f"index {i.name}"
        if i.table.lower() != j.table.lower():
            out.append(Difference(subj, "table", i.table, j.table))
        ka = [_index_key(c, i.table) for c in i.columns]
        kb = [_index_key(c, j.table) for c in j.columns]
        if ka != kb:
            out.append(Difference(subj, "columns", _show_index_cols(i), _show_index_cols(j)))
        if i.unique != j.unique:
            out.append(Difference(subj, "uniqueness", _uniq(i.unique), _uniq(j.unique)))
        if _canon_text(i.where, i.table, parens=True) != _canon_text(j.where, j.table, parens=True):
            out.append(Difference(subj, "WHERE", _show(i.where), _show(j.where)))
    va = {v.name.lower(): v for v in a.views}
    vb = {v.name.lower(): v for v in b.views}
    for key in sorted(va.keys() | vb.keys()):
        v, w = va.get(key), vb.get(key)
        if v is None or w is None:
            out.append(_presence("view", v, w))
        elif _canon_text(v.definition) != _canon_text(w.definition):
            out.append(Difference(f"view {v.name}", "definition", v.definition, w.definition))
    if full:
        ga = {t.name.lower(): t for t in a.triggers}
        gb = {t.name.lower(): t for t in b.triggers}
        for key in sorted(ga.keys() | gb.keys()):
            g, h = ga.get(key), gb.get(key)
            if g is None or h is None:
                out.append(_presence("trigger", g, h))
            elif _canon_text(g.definition) != _canon_text(h.definition):
                out.append(
                    Difference(f"trigger {g.name}", "definition", g.definition, h.definition)
                )
    return out


class _Named(Protocol):
    @property
    def name(self) -> str: ...


def _presence(kind: str, x: _Named | None, y: _Named | None, *, sep: str = " ") -> Difference:
    """An object present on one side only."""
    some = x if x is not None else y
    assert some is not None
    return Difference(
        f"{kind}{sep}{some.name}", None, None if x is None else "", None if y is None else ""
    )


def _uniq(u: bool) -> str:
    return "UNIQUE" if u else "not unique"


def _show_index_cols(i: Index) -> str:
    parts = []
    for c in i.columns:
        s = c.name if c.expression else quote_ident(c.name)
        if c.collation:
            s += f" COLLATE {c.collation}"
        if c.desc:
            s += " DESC"
        parts.append(s)
    return "(" + ", ".join(parts) + ")"


def _cols(names: Sequence[str]) -> str:
    return "(" + ", ".join(quote_ident(n) for n in names) + ")"


def _table_differences(x: Table, y: Table, a: Schema, b: Schema, full: bool) -> list[Difference]:
    out: list[Difference] = []
    t = x.name
    ca = {c.name.lower(): c for c in x.columns}
    cb = {c.name.lower(): c for c in y.columns}
    for key in [c.name.lower() for c in x.columns] + [k for k in cb if k not in ca]:
        c, d = ca.get(key), cb.get(key)
        if c is None or d is None:
            out.append(_presence(f"column {t}.", c, d, sep=""))
            continue
        subj = f"column {t}.{c.name}"
        if canonical_type(c.type) != canonical_type(d.type):
            out.append(Difference(subj, "type", c.type or "(none)", d.type or "(none)"))
        if c.notnull != d.notnull:
            out.append(Difference(subj, "nullability", _nn(c.notnull), _nn(d.notnull)))
        if canonical_default(c.default) != canonical_default(d.default):
            out.append(Difference(subj, "default", _show(c.default), _show(d.default)))
        if c.autoincrement != d.autoincrement:
            out.append(
                Difference(subj, "AUTOINCREMENT", _yes(c.autoincrement), _yes(d.autoincrement))
            )
        ga = _gen(c, t)
        gb = _gen(d, y.name)
        if ga != gb:
            out.append(Difference(subj, "generated", _show_gen(c), _show_gen(d)))
        if full and (c.collation or "BINARY") != (d.collation or "BINARY"):
            out.append(Difference(subj, "collation", _show(c.collation), _show(d.collation)))
    if full:
        common_a = [c.name.lower() for c in x.columns if c.name.lower() in cb]
        common_b = [c.name.lower() for c in y.columns if c.name.lower() in ca]
        if common_a != common_b:
            out.append(
                Difference(
                    f"table {t}",
                    "column order",
                    _cols([c.name for c in x.columns]),
                    _cols([c.name for c in y.columns]),
                )
            )
    if [p.lower() for p in x.primary_key] != [p.lower() for p in y.primary_key]:
        out.append(
            Difference(f"table {t}", "primary key", _cols(x.primary_key), _cols(y.primary_key))
        )
    if full:
        if x.without_rowid != y.without_rowid:
            out.append(
                Difference(
                    f"table {t}", "WITHOUT ROWID", _yes(x.without_rowid), _yes(y.without_rowid)
                )
            )
        if x.strict != y.strict:
            out.append(Difference(f"table {t}", "STRICT", _yes(x.strict), _yes(y.strict)))
    # foreign keys, matched by (columns, parent table)
    fa = {(tuple(c.lower() for c in f.columns), f.ref_table.lower()): f for f in x.foreign_keys}
    fb = {(tuple(c.lower() for c in f.columns), f.ref_table.lower()): f for f in y.foreign_keys}
    for fkey in sorted(fa.keys() | fb.keys()):
        f, g = fa.get(fkey), fb.get(fkey)
        some = f or g
        assert some is not None
        subj = f"foreign key {t}{_cols(some.columns)} -> {some.ref_table}"
        if f is None or g is None:
            out.append(Difference(subj, None, None if f is None else "", None if g is None else ""))
            continue
        if _fk_refs(f, a) != _fk_refs(g, b):
            out.append(
                Difference(subj, "parent columns", _cols(f.ref_columns), _cols(g.ref_columns))
            )
        if f.on_delete != g.on_delete:
            out.append(Difference(subj, "ON DELETE", f.on_delete, g.on_delete))
        if f.on_update != g.on_update:
            out.append(Difference(subj, "ON UPDATE", f.on_update, g.on_update))
        if full and f.deferred != g.deferred:
            out.append(
                Difference(
                    subj, "DEFERRABLE INITIALLY DEFERRED", _yes(f.deferred), _yes(g.deferred)
                )
            )
    ua = {tuple(c.lower() for c in u.columns) for u in x.unique_constraints}
    ub = {tuple(c.lower() for c in u.columns) for u in y.unique_constraints}
    for cols in sorted(ua ^ ub):
        out.append(
            Difference(
                f"unique constraint {t}{_cols(cols)}",
                None,
                None if cols not in ua else "",
                None if cols not in ub else "",
            )
        )
    out += _check_differences(x, y)
    return out


def _check_differences(x: Table, y: Table) -> list[Difference]:
    out: list[Difference] = []

    def key(c: Check, table: str) -> str:
        return _canon_text(c.expr, table, parens=True)

    named_a = {c.name.lower(): c for c in x.checks if c.name}
    named_b = {c.name.lower(): c for c in y.checks if c.name}
    rest_a = [c for c in x.checks if not (c.name and c.name.lower() in named_b)]
    rest_b = [c for c in y.checks if not (c.name and c.name.lower() in named_a)]
    for name in sorted(named_a.keys() & named_b.keys()):
        c, d = named_a[name], named_b[name]
        if key(c, x.name) != key(d, y.name):
            out.append(Difference(f"check {x.name}.{c.name}", "expression", c.expr, d.expr))
    exprs_b = {key(c, y.name) for c in rest_b}
    exprs_a = {key(c, x.name) for c in rest_a}
    for c in rest_a:
        if key(c, x.name) not in exprs_b:
            out.append(Difference(f"check {x.name}.{c.name or '(' + c.expr + ')'}", None, "", None))
    for d in rest_b:
        if key(d, y.name) not in exprs_a:
            out.append(Difference(f"check {y.name}.{d.name or '(' + d.expr + ')'}", None, None, ""))
    return out


def _nn(v: bool) -> str:
    return "NOT NULL" if v else "nullable"


def _yes(v: bool) -> str:
    return "yes" if v else "no"


def _gen(c: Column, table: str) -> tuple[str, str]:
    if c.generated is None and c.hidden not in (2, 3):
        return ("", "")
    kind = "stored" if c.hidden == 3 else "virtual"
    return (kind, _canon_text(c.generated, table, parens=True))


def _show_gen(c: Column) -> str:
    if c.generated is None and c.hidden not in (2, 3):
        return "not generated"
    kind = "STORED" if c.hidden == 3 else "VIRTUAL"
    return f"AS ({c.generated}) {kind}"


def diff(a: Schema, b: Schema) -> list[str]:
    """Readable differences from ``a`` to ``b`` (empty when equivalent)."""
    return [str(d) for d in differences(a, b)]


# --------------------------------------------------------------------------------------------
# rendering


def render(schema: Schema) -> str:
    """Normalized, human-readable SQL for snapshot files (see :data:`RENDER_VERSION`).

    Tables by name, each followed by its indexes by name, then views, then triggers; one blank
    line between statements. Identifier quoting, whitespace and keyword case are normalized, so
    only real changes show (the backticks drizzle writes and the double quotes SQLite's RENAME
    leaves render alike). Objects without stored SQL (from drizzle snapshots) are written from
    the model. Never raises: text that cannot be read is rendered whitespace-normalized.

    Tables, indexes and triggers are laid out by our own tokenizer (one column or constraint
    per line, long CHECK/WHERE expressions wrapped at AND/OR), because sqlglot (30.x) reads
    STRICT / WITHOUT ROWID tables and every trigger as an opaque command, spreads
    ``REFERENCES users(id)`` over three lines, and changes its layout between versions. View
    queries go through sqlglot's pretty printer, kept only when it provably preserves every
    token (it may add ``AS``), else they get one line per clause.
    """
    parts: list[str] = []
    by_table: dict[str, list[Index]] = {}
    for i in schema.indexes:
        by_table.setdefault(i.table.lower(), []).append(i)
    seen: set[str] = set()
    for t in schema.tables:
        parts.append(_render_table(t))
        for i in sorted(by_table.get(t.name.lower(), []), key=lambda i: _sort_key(i.name)):
            parts.append(_render_index(i))
        seen.add(t.name.lower())
    for key in sorted(k for k in by_table if k not in seen):
        for i in sorted(by_table[key], key=lambda i: _sort_key(i.name)):
            parts.append(_render_index(i))
    for v in schema.views:
        parts.append(_render_view(v))
    for g in schema.triggers:
        parts.append(_render_trigger(g))
    return "\n\n".join(p + ";" for p in parts) + ("\n" if parts else "")


def _render_def(d: list[Tok], is_column: bool, type_end: int) -> str:
    if not is_column:
        return display(d)
    name = quote_ident(_name_of(d[0]))
    typ = display(d[1:type_end], upper_ids=True)
    rest: list[Tok] = []
    after_default = False
    for t in d[type_end:]:
        if after_default and t.kind == "id" and t.value.lower() not in _BOOLEANS:
            t = Tok("str", _string_literal(t.value), t.value)  # DEFAULT "x": the string 'x'
        elif t.kind == "id" and t.text.upper() == "STORED":
            t = Tok("kw", t.text, "STORED")
        after_default = t.kind == "kw" and t.value == "DEFAULT"
        rest.append(t)
    return " ".join(p for p in (name, typ, display(rest)) if p)


_FK_TAIL = frozenset({"ON", "MATCH", "DEFERRABLE", "NOT"})
_WIDTH = 100  # render wraps long CHECK / WHERE expressions to stay within this


def _split_top(toks: Sequence[Tok], word: str) -> list[list[Tok]]:
    """``toks`` split at the top-level keyword ``word`` (AND/OR); the AND of a
    ``BETWEEN x AND y`` and anything inside parentheses or CASE ... END stays whole."""
    parts: list[list[Tok]] = [[]]
    depth = 0
    between = 0
    for t in toks:
        if t.kind == "op":
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
        elif t.kind == "kw":
            if t.value == "CASE":
                depth += 1
            elif t.value == "END" and depth > 0:
                depth -= 1
            elif depth == 0 and t.value == "BETWEEN":
                between += 1
            elif depth == 0 and t.value == "AND" and between:
                between -= 1
            elif depth == 0 and t.value == word and parts[-1]:
                parts.append([])
                continue
        parts[-1].append(t)
    return parts


def _wrap(toks: list[Tok], indent: str) -> list[str]:
    """An expression as lines no wider than ``_WIDTH`` where it can: one term of the
    top-level OR (else AND) per line, parenthesized groups opened on their own lines."""
    line = display(toks)
    if len(indent) + len(line) <= _WIDTH:
        return [indent + line]
    if len(toks) >= 2 and _is_op(toks[0], "(") and _match_paren(toks, 0) == len(toks) - 1:
        return [indent + "(", *_wrap(toks[1:-1], indent + "  "), indent + ")"]
    for word in ("OR", "AND"):
        parts = _split_top(toks, word)
        if len(parts) > 1:
            lines: list[str] = []
            for k, part in enumerate(parts):
                sub = _wrap(part, indent)
                if k:
                    sub[0] = indent + word + " " + sub[0][len(indent) :]
                lines += sub
            return lines
    start = _open_of_last(toks)
    if start:  # a trailing list, as in x IN ('a', 'b', ...): one item per line
        items = _split_commas(toks[start + 1 : -1])
        if len(items) > 1:
            inner = [indent + "  " + display(item) + "," for item in items]
            inner[-1] = inner[-1][:-1]
            return [indent + display(toks[: start + 1]), *inner, indent + ")"]
    return [indent + line]


def _open_of_last(toks: Sequence[Tok]) -> int | None:
    """Index of the ``(`` that the final ``)`` of ``toks`` closes, if it ends with one."""
    if not toks or not _is_op(toks[-1], ")"):
        return None
    depth = 0
    for n in range(len(toks) - 1, -1, -1):
        t = toks[n]
        if t.kind == "op" and t.text == ")":
            depth += 1
        elif t.kind == "op" and t.text == "(":
            depth -= 1
            if depth == 0:
                return n
    return None


def _render_constraint(d: list[Tok]) -> list[str]:
    """A table constraint; a long CHECK is wrapped over several lines, a long FOREIGN KEY
    gets its ON UPDATE / ON DELETE actions on a second line."""
    line = "  " + display(d)
    if len(line) > _WIDTH and any(t.kind == "kw" and t.value == "REFERENCES" for t in d):
        on = next((n for n, t in enumerate(d) if t.kind == "kw" and t.value in _FK_TAIL), None)
        if on:
            return ["  " + display(d[:on]), "    " + display(d[on:])]
    check = next((n for n, t in enumerate(d) if t.kind == "kw" and t.value == "CHECK"), None)
    if len(line) < _WIDTH or check is None or check + 1 >= len(d) or not _is_op(d[check + 1], "("):
        return [line]
    end = _match_paren(d, check + 1)
    if end != len(d) - 1:
        return [line]
    head = display(d[: check + 1])
    return ["  " + head + " (", *_wrap(d[check + 2 : end], "    "), "  )"]


def _render_table(t: Table) -> str:
    ddl = _parse_create_table(t.sql) if t.sql else None
    if t.sql and (t.virtual or ddl is None):
        return normalize_sql(t.sql)
    if ddl is None:
        return _synth_table(t)
    defs: list[list[str]] = []
    for d in ddl.defs:
        col = ddl.columns.get(_name_of(d[0]).lower())
        if col is not None and col.tokens is d:
            defs.append(["  " + _render_def(d, True, col.type_end)])
        else:
            defs.append(_render_constraint(d))
    opts = [
        Tok("kw", tok.text, tok.text.upper()) if tok.kind == "id" else tok for tok in ddl.options
    ]
    tail = display(opts)
    body = ",\n".join("\n".join(lines) for lines in defs)
    return f"CREATE TABLE {quote_ident(t.name)} (\n{body}\n)" + (" " + tail if tail else "")


def _synth_table(t: Table) -> str:
    lines = []
    single_pk = len(t.primary_key) == 1
    for c in t.columns:
        s = quote_ident(c.name)
        if c.type:
            s += " " + canonical_type(c.type)
        if single_pk and c.pk:
            s += " PRIMARY KEY"
            if c.autoincrement:
                s += " AUTOINCREMENT"
        if c.generated is not None:
            s += f" GENERATED ALWAYS AS ({c.generated}) " + (
                "STORED" if c.hidden == 3 else "VIRTUAL"
            )
        if c.default is not None:
            dflt = c.default
            simple = re.fullmatch(r"-?[\w.]+|'(?:[^']|'')*'", dflt) is not None
            s += " DEFAULT " + (dflt if simple else f"({dflt})")
        if c.collation:
            s += f" COLLATE {c.collation}"
        if c.notnull:
            s += " NOT NULL"
        lines.append(s)
    if len(t.primary_key) > 1:
        lines.append("PRIMARY KEY " + _cols(t.primary_key))
    for u in t.unique_constraints:
        lines.append(
            (f"CONSTRAINT {quote_ident(u.name)} " if u.name else "") + "UNIQUE " + _cols(u.columns)
        )
    for f in t.foreign_keys:
        s = f"FOREIGN KEY {_cols(f.columns)} REFERENCES {quote_ident(f.ref_table)}"
        if f.ref_columns:
            s += _cols(f.ref_columns)
        s += f" ON UPDATE {f.on_update} ON DELETE {f.on_delete}"
        if f.deferred:
            s += " DEFERRABLE INITIALLY DEFERRED"
        lines.append(s)
    for ch in t.checks:
        text = (f"CONSTRAINT {quote_ident(ch.name)} " if ch.name else "") + f"CHECK ({ch.expr})"
        lines.append("\n".join(_render_constraint(tokenize(text)))[2:])
    opts = [o for o, on in (("WITHOUT ROWID", t.without_rowid), ("STRICT", t.strict)) if on]
    return (
        f"CREATE TABLE {quote_ident(t.name)} (\n  "
        + ",\n  ".join(lines)
        + "\n)"
        + (" " + ", ".join(opts) if opts else "")
    )


def _render_index(i: Index) -> str:
    ddl = _parse_create_index(i.sql) if i.sql else None
    where: list[Tok] | None
    if ddl is not None:
        cols = ", ".join(display(term) for term in ddl.terms)
        where = ddl.where or None
    else:
        cols = _show_index_cols(i)[1:-1]
        where = tokenize(i.where) if i.where else None
    unique = "UNIQUE " if i.unique else ""
    s = f"CREATE {unique}INDEX {quote_ident(i.name)} ON {quote_ident(i.table)} ({cols})"
    if len(s) >= _WIDTH:
        s = f"CREATE {unique}INDEX {quote_ident(i.name)}\n  ON {quote_ident(i.table)} ({cols})"
    if not where:
        return s
    lines = _wrap(where, "  ")
    lines[0] = "  WHERE " + lines[0][2:]
    return s + "\n" + "\n".join(lines)


def _render_view(v: View) -> str:
    select = v.definition
    if v.sql is not None:
        toks = tokenize(v.sql)
        sel_toks = _view_select(toks)
        header = display(toks[: len(toks) - len(sel_toks)])
        pretty = _pretty_select(sel_toks)
        return f"{header}\n{pretty}"
    return f"CREATE VIEW {quote_ident(v.name)} AS\n{_pretty_select(tokenize(select))}"


_CLAUSES = frozenset(
    {"FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "WINDOW", "UNION", "EXCEPT",
     "INTERSECT", "JOIN", "LEFT", "RIGHT", "FULL", "INNER", "CROSS", "NATURAL"}
)  # fmt: skip
_JOIN_WORDS = frozenset({"LEFT", "RIGHT", "FULL", "INNER", "CROSS", "NATURAL", "OUTER"})


def _clause_lines(toks: list[Tok]) -> str:
    """A SELECT with each top-level clause (FROM, JOIN, WHERE, ...) on its own line."""
    lines: list[list[Tok]] = [[]]
    depth = 0
    for t in toks:
        if t.kind == "op" and t.text == "(":
            depth += 1
        elif t.kind == "op" and t.text == ")":
            depth -= 1
        elif (
            depth == 0
            and t.kind == "kw"
            and t.value in _CLAUSES
            and lines[-1]
            and not (t.value == "JOIN" and lines[-1][-1].value in _JOIN_WORDS)
        ):
            lines.append([])
        lines[-1].append(t)
    return "\n".join(display(line) for line in lines if line)


def _pretty_select(toks: list[Tok]) -> str:
    """sqlglot's pretty SELECT when it provably keeps every token (it may add ``AS``), else
    our own clause-per-line layout."""
    fallback = _clause_lines(toks)
    try:
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ErrorLevel

        tree = sqlglot.parse_one(display(toks), read="sqlite", error_level=ErrorLevel.RAISE)
        if not isinstance(tree, exp.Query):
            return fallback
        for ident in tree.find_all(exp.Identifier):
            name = ident.this if isinstance(ident.this, str) else str(ident.this)
            ident.set("quoted", quote_ident(name) != name)
        pretty = tree.sql(dialect="sqlite", pretty=True)
    except Exception:  # sqlglot cannot read or write it: keep our layout
        return fallback
    if _without_as(tokenize(pretty)) != _without_as(toks):
        return fallback
    return pretty


def _without_as(toks: Sequence[Tok]) -> str:
    return canonical([t for t in toks if not (t.kind == "kw" and t.value == "AS")])


def _render_trigger(g: Trigger) -> str:
    if g.sql is None:
        return g.definition
    toks = tokenize(g.sql)
    begin = next((n for n, t in enumerate(toks) if t.kind == "kw" and t.value == "BEGIN"), None)
    if begin is None:
        return display(toks)
    body = toks[begin + 1 :]
    if body and body[-1].kind == "kw" and body[-1].value == "END":
        body = body[:-1]
    stmts: list[list[Tok]] = [[]]
    depth = 0
    for t in body:
        if t.kind == "op" and t.text == "(":
            depth += 1
        elif t.kind == "op" and t.text == ")":
            depth -= 1
        elif t.kind == "op" and t.text == ";" and depth == 0:
            stmts.append([])
            continue
        stmts[-1].append(t)
    lines = [display(toks[: begin + 1])]
    lines += ["  " + display(s) + ";" for s in stmts if s]
    lines.append("END")
    return "\n".join(lines)
