"""The Markdown report a reviewer reads in a pull request (``--dosqlite-report PATH``).

Why: a failing check tells the author what is wrong, but a reviewer of a migration pull request
needs to see what the database *becomes*: the schema at head as a diagram GitHub renders
(Mermaid ``erDiagram``), what every migration does to it (computed by diffing the real database
images before and after it, so it is what SQLite did, not what the SQL text seems to say), the
lint findings with links to the lines, and the check results. ``render_report`` is a plain
function (the CLI uses it too); ``write_report`` is what the pytest plugin calls at session end.

Mermaid's ER grammar is small and strict (no spaces, quotes or keywords such as ``one``,
``to``, ``class`` or ``PK`` as names), so names are sanitized and the renamings listed under the
diagram.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .bundle import Bundle, Migration, when_moment
from .schema import (
    LEDGER_TABLE,
    Difference,
    Schema,
    Table,
    Tok,
    differences,
    introspect,
    is_internal_name,
    tokenize,
)

if TYPE_CHECKING:
    from .images import ImageCache
    from .session import DosqliteSession

__all__ = [
    "MigrationChange",
    "er_diagram",
    "migration_changes",
    "render_report",
    "write_report",
]

#: outcome of a check -> how the report shows it
_OUTCOME = {"passed": "✅ passed", "failed": "❌ failed", "skipped": "⏭️ skipped"}


# --------------------------------------------------------------------------------------------
# Markdown helpers


def _code(text: str) -> str:
    """``text`` as an inline code span that is safe inside a table cell."""
    text = " ".join(text.split("\n"))
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")


def _text(text: str) -> str:
    """Plain text escaped for a Markdown table cell (one line, no HTML, no emphasis)."""
    lines = [_MD_SPECIAL.sub(r"\\\1", line.strip()) for line in text.strip().splitlines()]
    return "<br>".join(line for line in lines if line)


def _prose(text: str) -> str:
    """Like :func:`_text` (one line), but keeps the message's own `code spans` as code."""
    flat = " ".join(text.split())
    parts: list[str] = []
    pos = 0
    for m in re.finditer(r"(`+)(.+?)\1", flat):
        parts.append(_MD_SPECIAL.sub(r"\\\1", flat[pos : m.start()]))
        parts.append(_code(m.group(2)))
        pos = m.end()
    parts.append(_MD_SPECIAL.sub(r"\\\1", flat[pos:]))
    return "".join(parts)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table; cells must already be escaped."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        assert len(row) == len(header)
        out.append("| " + " | ".join(cell.replace("\n", " ") or " " for cell in row) + " |")
    return out


def _github_blob(path: Path) -> str | None:
    """Under GitHub Actions, the URL of ``path`` at the commit being checked: the report goes
    into the job summary, where links relative to the report's file lead nowhere. None
    elsewhere, or for a file outside the checkout."""
    env = os.environ
    server, repo, sha = (
        env.get("GITHUB_SERVER_URL"),
        env.get("GITHUB_REPOSITORY"),
        env.get("GITHUB_SHA"),
    )
    workspace = env.get("GITHUB_WORKSPACE")
    if not (env.get("GITHUB_ACTIONS") == "true" and server and repo and sha and workspace):
        return None
    where = path.resolve()
    top = Path(workspace).resolve()
    if not where.is_relative_to(top):
        return None
    kind = "tree" if where.is_dir() else "blob"
    return f"{server}/{repo}/{kind}/{sha}/{quote(where.relative_to(top).as_posix())}"


def _rel(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` as a URL path (absolute when on another drive); on
    GitHub Actions, the file's URL in the repository (see :func:`_github_blob`)."""
    blob = _github_blob(path)
    if blob is not None:
        return blob
    try:
        rel = os.path.relpath(path.resolve(), base.resolve())
    except ValueError:
        rel = str(path.resolve())
    return quote(Path(rel).as_posix())


def _link(label: str, path: Path | None, base: Path, line: int | None = None) -> str:
    if path is None:
        return _text(label)
    anchor = f"#L{line}" if line else ""
    return f"[{_text(label)}]({_rel(path, base)}{anchor})"


def _duration(seconds: float | None) -> str:
    if not seconds:
        return "–"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.2f} ms"


def _when(m: Migration) -> str:
    moment = when_moment(m.when) if m.when_valid and m.when > 0 else None
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "–"


# --------------------------------------------------------------------------------------------
# Mermaid erDiagram

#: words Mermaid's ER lexer reads as keywords where an entity name is expected (any case)
_ENTITY_RESERVED = frozenset(
    {"erdiagram", "one", "many", "only", "zero", "to", "optionally", "u", "class", "classdef",
     "style", "direction", "acctitle", "accdescr"}
)  # fmt: skip
#: words the lexer reads as keys inside an entity block (any case)
_ATTRIBUTE_RESERVED = frozenset({"pk", "fk", "uk"})


def _mermaid_word(name: str, reserved: frozenset[str], extra: str = "") -> str:
    """A word Mermaid's ER lexer reads as one name: ASCII letters, digits, ``_`` (+``extra``),
    not starting with a digit, not a keyword."""
    allowed = re.escape(extra)
    word = re.sub(rf"[^A-Za-z0-9_{allowed}]", "_", name) or "_"
    if not re.match(r"[A-Za-z_]", word):
        word = "_" + word
    if word.lower() in reserved:
        word += "_"
    return word


def _comment(text: str) -> str:
    """A Mermaid quoted string: no double quotes, backslashes, ``%``, ``#`` or HTML."""
    clean = re.sub(r"[\"\\%#<>`;{}\r\n\t]", " ", text)
    clean = re.sub(r" +", " ", clean).strip()
    return clean if len(clean) <= 40 else clean[:39] + "…"


class _Names:
    """Sanitized, unique Mermaid names for tables, and the renamings made."""

    def __init__(self) -> None:
        self.by_table: dict[str, str] = {}
        self.used: set[str] = set()
        self.renamed: list[tuple[str, str]] = []

    def entity(self, table: str) -> str:
        key = table.lower()
        if key in self.by_table:
            return self.by_table[key]
        base = _mermaid_word(table, _ENTITY_RESERVED)
        word, n = base, 1
        while word.lower() in self.used:
            n += 1
            word = f"{base}_{n}"
        self.used.add(word.lower())
        self.by_table[key] = word
        if word != table:
            self.renamed.append((table, word))
        return word


def _visible(schema: Schema) -> list[Table]:
    return [t for t in schema.tables if not is_internal_name(t.name) and t.name != LEDGER_TABLE]


def _unique_sets(schema: Schema, t: Table) -> list[tuple[str, ...]]:
    sets = [tuple(c.lower() for c in u.columns) for u in t.unique_constraints]
    if t.primary_key:
        sets.append(tuple(c.lower() for c in t.primary_key))
    for i in schema.indexes_of(t.name):
        if i.unique and i.where is None and not any(c.expression for c in i.columns):
            sets.append(tuple(c.name.lower() for c in i.columns))
    return sets


def _never_null(t: Table, column: str) -> bool:
    c = t.column(column)
    if c is None:
        return False
    if c.notnull:
        return True
    if not c.pk:
        return False
    # a rowid alias and the key of a WITHOUT ROWID table cannot hold NULL; other PRIMARY KEY
    # columns of rowid tables can (SQLite's legacy quirk)
    rowid_alias = len(t.primary_key) == 1 and c.type.strip().upper() == "INTEGER"
    return rowid_alias or t.without_rowid


def er_diagram(schema: Schema) -> tuple[str, list[tuple[str, str]]]:
    """The Mermaid ``erDiagram`` source of ``schema`` (without the code fence) and the
    ``(table, name in the diagram)`` renamings sanitization made.

    Columns carry their declared type, ``PK``/``FK``/``UK`` markers and a comment with
    ``NOT NULL``, defaults and the like; each foreign key is a relationship labelled with its
    columns and ``ON DELETE`` action: ``}o--||`` when the child columns can't be NULL,
    ``}o--o|`` when they can (``|o`` instead of ``}o`` when the child columns are unique).
    """
    names = _Names()
    tables = _visible(schema)
    for t in tables:
        names.entity(t.name)
    lines = ["erDiagram"]
    for t in tables:
        fk_cols = {c.lower() for f in t.foreign_keys for c in f.columns}
        uniques = {u[0] for u in _unique_sets(schema, t) if len(u) == 1}
        pk_set = {c.lower() for c in t.primary_key}
        attrs: list[str] = []
        used: set[str] = set()
        for c in t.columns:
            if c.hidden == 1:  # a virtual table's hidden columns
                continue
            name = _mermaid_word(c.name, _ATTRIBUTE_RESERVED)
            while name.lower() in used:
                name += "_"
            used.add(name.lower())
            declared = re.sub(r"\s+", "", c.type.lower()) or "untyped"
            ctype = _mermaid_word(declared, _ATTRIBUTE_RESERVED, "()[]-")
            keys = []
            low = c.name.lower()
            if c.pk or low in pk_set:
                keys.append("PK")
            if low in fk_cols:
                keys.append("FK")
            if low in uniques and low not in pk_set:
                keys.append("UK")
            notes = []
            if name != c.name:
                notes.append(c.name)
            if c.notnull:
                notes.append("NOT NULL")
            if c.autoincrement:
                notes.append("AUTOINCREMENT")
            if c.generated is not None or c.hidden in (2, 3):
                notes.append("generated")
            elif c.default is not None:
                notes.append(f"default {c.default}")
            line = f"    {ctype} {name}"
            if keys:
                line += " " + ", ".join(keys)
            note = _comment(", ".join(notes))
            if note:
                line += f' "{note}"'
            attrs.append(line)
        entity = names.entity(t.name)
        lines += [f"  {entity} {{", *attrs, "  }"] if attrs else [f"  {entity} {{", "  }"]
    for t in tables:
        uniques_all = set(_unique_sets(schema, t))
        for f in t.foreign_keys:
            cols = tuple(c.lower() for c in f.columns)
            child = "|o" if cols in uniques_all else "}o"
            parent = "||" if all(_never_null(t, c) for c in f.columns) else "o|"
            label = _comment(f"{', '.join(f.columns)}: ON DELETE {f.on_delete.upper()}")
            pair = f"{names.entity(t.name)} {child}--{parent} {names.entity(f.ref_table)}"
            lines.append(f'  {pair} : "{label}"')
    return "\n".join(lines) + "\n", names.renamed


# --------------------------------------------------------------------------------------------
# what each migration does


@dataclass(frozen=True)
class MigrationChange:
    """What one migration did to the schema, as Markdown snippets (names in code spans)."""

    tag: str
    #: the journal ``when`` as ``YYYY-MM-DD HH:MM`` (UTC), or ``–``
    when: str
    #: seconds the migration took when its image was built, None when not measured
    seconds: float | None
    changes: tuple[str, ...] = ()
    #: data statements outside table recreations: ``INSERT``/``UPDATE``/``DELETE`` -> count
    data: Mapping[str, int] = field(default_factory=dict)
    #: why it does not apply on a fresh DO (or "not reached" after an earlier failure)
    error: str | None = None


@dataclass
class _Statements:
    """What the statements of one migration say, read with the SQLite tokenizer."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    #: ALTER TABLE a RENAME TO b
    renames: list[tuple[str, str]] = field(default_factory=list)
    #: (table, old, new) of ALTER TABLE ... RENAME [COLUMN] old TO new
    column_renames: list[tuple[str, str, str]] = field(default_factory=list)
    #: (target, target columns, source, source columns) of INSERT INTO t (...) SELECT ... FROM s
    copies: list[tuple[str, tuple[str, ...], str, tuple[str, ...]]] = field(default_factory=list)
    #: (INSERT|UPDATE|DELETE, table)
    data: list[tuple[str, str]] = field(default_factory=list)

    def recreations(self) -> dict[str, str]:
        """``table -> temporary name`` for each CREATE new / copy / DROP old / RENAME new TO
        old (drizzle-kit's ``__new_<table>`` recreation, or the same by hand)."""
        created = {c.lower() for c in self.created}
        dropped = {d.lower() for d in self.dropped}
        out: dict[str, str] = {}
        for old, new in self.renames:
            if old.lower() in created and (
                new.lower() in dropped or old.lower() == "__new_" + new.lower()
            ):
                out[new.lower()] = old.lower()
        return out


def _name(tok: Tok) -> str:
    if tok.kind == "str":
        return tok.text[1:-1].replace("''", "'")
    if tok.kind == "kw":
        return tok.text
    return tok.value


def _qualified(toks: Sequence[Tok], i: int) -> tuple[str | None, int]:
    """The (possibly ``schema.``-qualified) object name at ``toks[i]``: its last part."""
    if i >= len(toks) or toks[i].kind not in ("id", "kw", "str"):
        return None, i
    name = _name(toks[i])
    i += 1
    while i + 1 < len(toks) and toks[i].kind == "op" and toks[i].text == ".":
        name = _name(toks[i + 1])
        i += 2
    return name, i


def _is_kw(toks: Sequence[Tok], i: int, *words: str) -> bool:
    return i < len(toks) and toks[i].kind == "kw" and toks[i].value in words


def _paren_names(toks: Sequence[Tok], i: int) -> tuple[tuple[str, ...] | None, int]:
    """``(a, b, c)`` of plain names at ``toks[i]``; None when it is anything else."""
    if i >= len(toks) or not (toks[i].kind == "op" and toks[i].text == "("):
        return None, i
    names: list[str] = []
    i += 1
    while i < len(toks):
        tok = toks[i]
        if tok.kind not in ("id", "kw", "str"):
            return None, i
        names.append(_name(tok))
        i += 1
        if i < len(toks) and toks[i].kind == "op" and toks[i].text == ",":
            i += 1
            continue
        if i < len(toks) and toks[i].kind == "op" and toks[i].text == ")":
            return tuple(names), i + 1
        return None, i
    return None, i


def _select_columns(toks: Sequence[Tok], i: int) -> tuple[tuple[str, ...], str] | None:
    """``SELECT a, b FROM s`` (plain columns, one plain source) at ``toks[i]``."""
    if not _is_kw(toks, i, "SELECT"):
        return None
    i += 1
    cols: list[str] = []
    while i < len(toks):
        tok = toks[i]
        if tok.kind not in ("id", "str"):
            return None
        cols.append(_name(tok))
        i += 1
        if _is_kw(toks, i, "FROM"):
            source, j = _qualified(toks, i + 1)
            if source is None or (j != len(toks) and not _is_kw(toks, j, "WHERE")):
                return None
            return tuple(cols), source
        if i < len(toks) and toks[i].kind == "op" and toks[i].text == ",":
            i += 1
            continue
        return None
    return None


_VERBS = frozenset({"INSERT", "REPLACE", "UPDATE", "DELETE", "SELECT"})


def _main_verb(toks: Sequence[Tok]) -> int:
    """Index of the statement's verb, after a leading ``WITH`` clause."""
    if not _is_kw(toks, 0, "WITH"):
        return 0
    depth = 0
    for n, tok in enumerate(toks):
        if tok.kind == "op" and tok.text == "(":
            depth += 1
        elif tok.kind == "op" and tok.text == ")":
            depth -= 1
        elif depth == 0 and n and tok.kind == "kw" and tok.value in _VERBS:
            return n
    return 0


def _read_statement(toks: list[Tok], st: _Statements) -> None:
    toks = [t for t in toks if not (t.kind == "op" and t.text == ";")]
    if not toks:
        return
    i = _main_verb(toks)
    verb = toks[i].value if toks[i].kind == "kw" else ""
    if verb == "CREATE":
        j = i + 1
        while _is_kw(toks, j, "TEMP", "TEMPORARY", "VIRTUAL"):
            j += 1
        if _is_kw(toks, j, "TABLE"):
            j += 1
            if _is_kw(toks, j, "IF"):
                j += 3
            name, _ = _qualified(toks, j)
            if name is not None:
                st.created.append(name)
    elif verb == "DROP" and _is_kw(toks, i + 1, "TABLE"):
        j = i + 2
        if _is_kw(toks, j, "IF"):
            j += 2
        name, _ = _qualified(toks, j)
        if name is not None:
            st.dropped.append(name)
    elif verb == "ALTER" and _is_kw(toks, i + 1, "TABLE"):
        table, j = _qualified(toks, i + 2)
        if table is None or not _is_kw(toks, j, "RENAME"):
            return
        j += 1
        if _is_kw(toks, j, "TO"):
            new, _ = _qualified(toks, j + 1)
            if new is not None:
                st.renames.append((table, new))
            return
        if _is_kw(toks, j, "COLUMN"):
            j += 1
        if j + 2 < len(toks) and _is_kw(toks, j + 1, "TO"):
            st.column_renames.append((table, _name(toks[j]), _name(toks[j + 2])))
    elif verb in ("INSERT", "REPLACE"):
        j = i + 1
        if _is_kw(toks, j, "OR"):
            j += 2
        if _is_kw(toks, j, "INTO"):
            j += 1
        target, j = _qualified(toks, j)
        if target is None:
            return
        if _is_kw(toks, j, "AS"):
            j += 2
        cols, j = _paren_names(toks, j)
        select = _select_columns(toks, j)
        if cols is not None and select is not None and len(select[0]) == len(cols):
            st.copies.append((target, cols, select[1], select[0]))
        st.data.append(("INSERT", target))
    elif verb == "UPDATE":
        j = i + 1
        if _is_kw(toks, j, "OR"):
            j += 2
        target, _ = _qualified(toks, j)
        if target is not None:
            st.data.append(("UPDATE", target))
    elif verb == "DELETE" and _is_kw(toks, i + 1, "FROM"):
        target, _ = _qualified(toks, i + 2)
        if target is not None:
            st.data.append(("DELETE", target))


def _statements(m: Migration) -> _Statements:
    from .sqltext import split

    st = _Statements()
    for chunk in m.chunks:
        for piece in split(chunk):
            if piece.has_statement:
                _read_statement(tokenize(piece.text), st)
    return st


def _schema_of(image: bytes) -> Schema:
    return _SchemaWalk().schema(image)


class _SchemaWalk:
    """The schemas of consecutive versions, each read from its image: only the tables and views
    whose ``sqlite_master`` rows (their own, their indexes' and triggers') changed since the
    version before are introspected again, so a bundle of a thousand migrations costs a
    thousand small reads, not a thousand reads of the whole schema."""

    def __init__(self) -> None:
        self._rows: dict[str, frozenset[tuple[object, ...]]] | None = None
        self._schema = Schema()

    def schema(self, image: bytes) -> Schema:
        from .storage import DurableObjectStorage

        do = DurableObjectStorage(image=image)
        try:

            def query(sql: str) -> list[tuple[object, ...]]:
                # our own read: straight to SQLite, without a DO's value conversion
                return [tuple(r) for r in do._internal(sql)]

            grouped: dict[str, set[tuple[object, ...]]] = {}
            for row in query("SELECT type, name, tbl_name, sql FROM sqlite_master"):
                kind, name, table = str(row[0]), str(row[1]), str(row[2])
                owner = name if kind in ("table", "view") else table
                grouped.setdefault(owner, set()).add(row)
            rows = {owner: frozenset(r) for owner, r in grouped.items()}
            if self._rows is None:
                self._schema = introspect(query)
            else:
                changed = {
                    o for o in rows.keys() | self._rows.keys() if rows.get(o) != self._rows.get(o)
                }
                if changed:
                    self._schema = self._schema.replacing(introspect(query, only=changed), changed)
            self._rows = rows
            return self._schema
        finally:
            do.close()


def _diff(before: Schema, after: Schema, st: _Statements) -> list[str]:
    """What changed from ``before`` to ``after``, helped by what the statements say (renames,
    recreations)."""
    out: list[str] = []
    bt = {t.name.lower(): t for t in _visible(before)}
    at = {t.name.lower(): t for t in _visible(after)}
    renamed: dict[str, str] = {}
    for old, new in st.renames:
        if old.lower() in bt and new.lower() in at and old.lower() not in at:
            renamed[old.lower()] = new.lower()
    recreated = st.recreations()
    for key in sorted(at.keys() - bt.keys() - set(renamed.values())):
        out.append(f"table {_code(at[key].name)} added")
    for key in sorted(bt.keys() - at.keys() - set(renamed)):
        out.append(f"table {_code(bt[key].name)} dropped")
    pairs = [(k, k) for k in sorted(bt.keys() & at.keys())] + sorted(renamed.items())
    for old_key, new_key in pairs:
        x, y = bt[old_key], at[new_key]
        if old_key != new_key:
            out.append(f"table {_code(x.name)} renamed to {_code(y.name)}")
        if new_key in recreated:
            out.append(f"table {_code(y.name)} recreated")
        if x is not y:  # the same object: a table the migration did not touch (_SchemaWalk)
            out += _table_changes(x, y, st, recreated.get(new_key))
    out += _index_changes(before, after)
    for kind, xs, ys in (
        ("view", before.views, after.views),
        ("trigger", before.triggers, after.triggers),
    ):
        xm = {v.name.lower(): v for v in xs}
        ym = {v.name.lower(): v for v in ys}
        for key in sorted(ym.keys() - xm.keys()):
            out.append(f"{kind} {_code(ym[key].name)} added")
        for key in sorted(xm.keys() - ym.keys()):
            out.append(f"{kind} {_code(xm[key].name)} dropped")
        for key in sorted(xm.keys() & ym.keys()):
            if xm[key] != ym[key]:
                out.append(f"{kind} {_code(ym[key].name)} changed")
    return out


_KINDS = (
    ("unique constraint ", "unique constraint"),
    ("foreign key ", "foreign key"),
    ("column ", "column"),
    ("table ", "table"),
    ("check ", "CHECK"),
    ("index ", "index"),
    ("view ", "view"),
    ("trigger ", "trigger"),
)


def _short(value: str | None, limit: int = 60) -> str:
    text = " ".join((value or "").split()) or "none"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _difference(d: Difference) -> str:
    """A :class:`~.schema.Difference` as a Markdown snippet with names in code spans."""
    kind, name = next(
        ((shown, d.subject[len(p) :]) for p, shown in _KINDS if d.subject.startswith(p)),
        ("", d.subject),
    )
    head = f"{kind} {_code(name)}".strip()
    if d.aspect is None:
        return f"{head} {'added' if d.a is None else 'dropped'}"
    return f"{head}: {_text(d.aspect)} {_code(_short(d.a))} → {_code(_short(d.b))}"


def _table_changes(x: Table, y: Table, st: _Statements, temp: str | None) -> list[str]:
    out: list[str] = []
    xc = {c.name.lower(): c for c in x.columns}
    yc = {c.name.lower(): c for c in y.columns}
    renames: dict[str, str] = {}
    for table, old, new in st.column_renames:
        if table.lower() in (x.name.lower(), y.name.lower()):
            renames[old.lower()] = new.lower()
    if temp is not None:  # a recreation that copies column a into column b renames a to b
        for target, tcols, source, scols in st.copies:
            if target.lower() != temp or source.lower() != x.name.lower():
                continue
            for new, old in zip(tcols, scols, strict=True):
                if new.lower() != old.lower():
                    renames[old.lower()] = new.lower()
    renames = {
        o: n for o, n in renames.items() if o in xc and n in yc and o not in yc and n not in xc
    }
    for o, n in renames.items():
        out.append(f"column {_code(f'{y.name}.{xc[o].name}')} renamed to {_code(yc[n].name)}")
    for key in [c.name.lower() for c in y.columns]:
        if key not in xc and key not in renames.values():
            out.append(f"column {_code(f'{y.name}.{yc[key].name}')} added")
    for key in [c.name.lower() for c in x.columns]:
        if key not in yc and key not in renames:
            out.append(f"column {_code(f'{y.name}.{xc[key].name}')} dropped")
    # everything else (types, nullability, defaults, keys, CHECKs), compared under the new name
    renamed_cols = tuple(
        replace(c, name=yc[renames[c.name.lower()]].name) if c.name.lower() in renames else c
        for c in x.columns
    )
    x2 = replace(x, name=y.name, columns=renamed_cols)
    for d in differences(Schema(tables=(x2,)), Schema(tables=(y,))):
        if d.subject.startswith("column ") and d.aspect is None:
            continue  # added / dropped: listed above
        if d.aspect == "column order" and renames:
            continue
        out.append(_difference(d))
    return out


def _index_changes(before: Schema, after: Schema) -> list[str]:
    out: list[str] = []
    xi = {i.name.lower(): i for i in before.indexes if not is_internal_name(i.table)}
    yi = {i.name.lower(): i for i in after.indexes if not is_internal_name(i.table)}
    for key in sorted(yi.keys() - xi.keys()):
        i = yi[key]
        kind = "unique index" if i.unique else "index"
        out.append(f"{kind} {_code(i.name)} on {_code(i.table)} added")
    for key in sorted(xi.keys() - yi.keys()):
        out.append(f"index {_code(xi[key].name)} dropped")
    ix = {i.name.lower(): i for i in before.indexes}
    iy = {i.name.lower(): i for i in after.indexes}
    both = sorted(k for k in xi.keys() & yi.keys() if ix[k] is not iy[k])
    for d in differences(
        Schema(indexes=tuple(ix[k] for k in both)), Schema(indexes=tuple(iy[k] for k in both))
    ):
        out.append(_difference(d))
    return out


def _data_counts(st: _Statements, recreated: Mapping[str, str]) -> dict[str, int]:
    temps = set(recreated.values())
    counts: dict[str, int] = {}
    for verb, table in st.data:
        if table.lower() in temps:
            continue  # the copy step of a table recreation
        counts[verb] = counts.get(verb, 0) + 1
    return counts


def migration_changes(bundle: Bundle, images: ImageCache | None = None) -> list[MigrationChange]:
    """One :class:`MigrationChange` per migration of ``bundle``, in journal order, from the
    schemas of the database images before and after it (built once, shared with the checks)."""
    from .images import default_cache

    cache = images if images is not None else default_cache()
    timings = cache.timings(bundle)
    out: list[MigrationChange] = []
    previous: Schema | None = None
    walk = _SchemaWalk()
    failed = False
    for k, m in enumerate(bundle.migrations, start=1):
        when = _when(m)
        if failed:
            out.append(MigrationChange(m.tag, when, None, error="not reached"))
            continue
        if previous is None:
            base = cache.version(bundle, k - 1)
            previous = walk.schema(base.image) if base.image is not None else Schema()
        v = cache.version(bundle, k)
        if v.error is not None or v.image is None:
            failed = True
            message = str(v.error).splitlines()[0] if v.error is not None else "failed"
            out.append(MigrationChange(m.tag, when, None, error=message))
            continue
        after = walk.schema(v.image)
        st = _statements(m)
        out.append(
            MigrationChange(
                tag=m.tag,
                when=when,
                seconds=timings.get(m.tag),
                changes=tuple(_diff(previous, after, st)),
                data=_data_counts(st, st.recreations()),
            )
        )
        previous = after
    return out


# --------------------------------------------------------------------------------------------
# the report


@dataclass(frozen=True)
class _Entry:
    bundle: Bundle
    label: str
    do_classes: tuple[str, ...]
    results: Mapping[str, str]
    #: check name -> the first line of why it failed or was skipped
    reasons: Mapping[str, str] = field(default_factory=dict)
    #: the checks' own warnings
    warnings: Sequence[str] = ()


def _entries(
    bundles: Sequence[Any], results: Mapping[Path, Mapping[str, str]] | None, base: Path
) -> list[_Entry]:
    out: list[_Entry] = []
    by_root = {Path(p).resolve(): r for p, r in (results or {}).items()}
    for item in bundles:
        reasons: Mapping[str, str] = {}
        notes: list[str] = []
        if isinstance(item, Bundle):
            bundle, classes, found_results, label = item, (), None, None
        else:  # a session.FoundBundle
            bundle = item.bundle
            classes = tuple(item.do_classes)
            found_results = item.results
            label = item.label
            reasons = dict(getattr(item, "reasons", None) or {})
            notes = list(getattr(item, "warnings", None) or [])
        if label is None or Path(label).is_absolute():
            label = os.path.relpath(bundle.root.resolve(), base.resolve())
        given = by_root.get(bundle.root.resolve())
        out.append(
            _Entry(
                bundle=bundle,
                label=label,
                do_classes=classes,
                results=dict(given if given is not None else found_results or {}),
                reasons=reasons,
                warnings=tuple(notes),
            )
        )
    return out


def _check_order(results: Mapping[str, str]) -> list[str]:
    from .registry import CHECK_NAMES

    known = [n for n in CHECK_NAMES if n in results]
    return known + sorted(n for n in results if n not in CHECK_NAMES)


@dataclass(frozen=True)
class _LintSettings:
    """What the lint check of the session ran with."""

    severity: Mapping[str, str]
    baseline: Sequence[str] = ()
    start: str | None = None


def _bundle_section(e: _Entry, base: Path, images: ImageCache, lint: _LintSettings) -> list[str]:
    from .runtime import RUNTIME
    from .storage import sqlite_version

    b = e.bundle
    out = [f"## {_code(e.label)}", ""]
    classes = ", ".join(_code(c) for c in e.do_classes) or "–"
    out += _table(
        ["Bundle", "Durable Object classes", "Migrations", "SQLite", "Runtime emulated"],
        [
            [
                _link(e.label, b.root, base) + f" ({_text(b.format)})",
                classes,
                str(len(b.migrations)),
                _text(sqlite_version()),
                "workerd " + _text(RUNTIME.workerd),
            ]
        ],
    )
    out.append("")

    if e.results:
        names = _check_order(e.results)
        counts = {o: sum(1 for n in names if e.results[n] == o) for o in _OUTCOME}
        summary = ", ".join(f"{counts[o]} {o}" for o in _OUTCOME if counts[o])
        out += [f"### Checks: {summary}", ""]
        reasons = e.reasons
        out += _table(
            ["Check", "Result", "Why"],
            [
                [
                    _code(n),
                    _OUTCOME.get(e.results[n], _text(e.results[n])),
                    _prose(reasons.get(n, "")) if e.results[n] != "passed" else "",
                ]
                for n in names
            ],
        )
        out.append("")
    if e.warnings:
        out += ["### Warnings", ""]
        out += [f"* {_prose(w)}" for w in e.warnings]
        out.append("")

    changes = migration_changes(b, images)
    head_k = len(b.migrations)
    failed_at = next((k for k, c in enumerate(changes) if c.error is not None), None)
    if failed_at is not None:
        head_k = failed_at
    out += ["### Schema at head", ""]
    if failed_at is not None:
        out += [
            f"Migration {_code(changes[failed_at].tag)} does not apply on a fresh Durable Object; "
            f"this is the schema after the {head_k} migration(s) before it.",
            "",
        ]
    image = images.version(b, head_k).image
    schema = _schema_of(image) if image is not None else Schema()
    if _visible(schema):
        diagram, renamed = er_diagram(schema)
        out += ["```mermaid", diagram.rstrip("\n"), "```", ""]
        if renamed:
            out.append(
                "Names changed for the diagram: "
                + ", ".join(f"{_code(t)} → {_code(n)}" for t, n in renamed)
                + "."
            )
            out.append("")
    else:
        out += ["_No tables._", ""]
    for kind, items in (("Views", schema.views), ("Triggers", schema.triggers)):
        if items:
            out += [f"{kind}: " + ", ".join(_code(i.name) for i in items) + ".", ""]

    out += ["### Migrations", ""]
    rows = []
    paths = {m.tag: m.path for m in b.migrations}
    for n, c in enumerate(changes, start=1):
        what = list(c.changes)
        if c.data:
            what.append("data: " + ", ".join(f"{v} {k}" for k, v in sorted(c.data.items()) if v))
        if c.error is not None:
            what = ["❌ " + _text(c.error)] if c.error != "not reached" else ["not reached"]
        rows.append(
            [
                str(n),
                _link(c.tag, paths.get(c.tag), base),
                c.when,
                _duration(c.seconds),
                "<br>".join(what) or "no schema change",
            ]
        )
    if rows:
        out += _table(["#", "Migration", "When (UTC)", "Apply time", "What it does"], rows)
    else:
        out.append("_No migrations._")
    out.append("")

    out += _findings_section(b, base, lint)
    return out


def _findings_section(b: Bundle, base: Path, lint: _LintSettings) -> list[str]:
    from .errors import DosqliteError
    from .lint import RULES, baseline_tags, check_severities, lint_bundle

    out: list[str] = []
    try:
        # the findings the lint check judged the bundle by: same severities, same baseline
        accepted, _ = baseline_tags(b, tuple(lint.baseline))
        from .fleet import start_turns_foreign_keys_off

        findings = lint_bundle(
            b,
            severities=check_severities(lint.severity, start_turns_foreign_keys_off(lint.start)),
            only_after=accepted or None,
        )
    except (DosqliteError, ValueError) as exc:
        return ["### Lint findings", "", "Lint could not run: " + _text(str(exc)), ""]
    out += [f"### Lint findings: {len(findings)}", ""]
    if findings:
        rows = []
        for f in findings:
            name = f.path.name if f.path is not None else f"{f.tag}.sql"
            rows.append(
                [
                    _link(f"{name}:{f.line}", f.path, base, f.line),
                    f"{_code(f.rule)} {_text(RULES[f.rule].name)}",
                    _text(f.severity),
                    _prose(f.message),
                ]
            )
        out += _table(["Where", "Rule", "Severity", "Message"], rows)
        out.append("")
    if b.problems:
        out += [f"### Bundle integrity: {len(b.problems)}", ""]
        rows = []
        for p in b.problems:
            label = p.path.name if p.path is not None else "–"
            if p.line:
                label += f":{p.line}"
            rows.append(
                [
                    _link(label, p.path, base, p.line),
                    _code(p.code),
                    _text(p.severity),
                    _prose(p.message),
                ]
            )
        out += _table(["Where", "Problem", "Severity", "Message"], rows)
        out.append("")
    return out


def render_report(
    bundles: Sequence[Bundle | Any],
    results: Mapping[Path, Mapping[str, str]] | None = None,
    *,
    base: Path | None = None,
    images: ImageCache | None = None,
    lint_severity: Mapping[str, str] | None = None,
    load_errors: Sequence[tuple[Path, str]] = (),
    lint_baseline: Sequence[str] = (),
    start: str | None = None,
) -> str:
    """The Markdown report of ``bundles`` (:class:`~.bundle.Bundle` or the session's
    ``FoundBundle`` objects, whose DO classes and check results it then shows).

    ``results`` maps a bundle root to ``{check name: "passed" | "failed" | "skipped"}`` and
    overrides a FoundBundle's own. Links are relative to ``base`` (the folder the report is
    written to; default: the current directory). ``images`` is the cache of database images
    (default: the process-wide one the checks use). ``lint_severity``, ``lint_baseline`` and
    ``start`` are the session's settings: the findings listed are the ones the lint check
    judged by.
    """
    from .images import default_cache
    from .runtime import RUNTIME
    from .storage import sqlite_version

    where = (base or Path.cwd()).resolve()
    cache = images if images is not None else default_cache()
    entries = _entries(bundles, results, where)
    out = [
        "# pytest-dosqlite report",
        "",
        f"SQLite {_text(sqlite_version())}, emulating Durable Objects on workerd "
        f"{_text(RUNTIME.workerd)} (SQLite {_text(RUNTIME.sqlite)}).",
        "",
    ]
    if len(entries) > 1:
        rows = []
        for e in entries:
            r = e.results
            skipped = sum(v == "skipped" for v in r.values())
            checks = (
                f"{sum(v == 'passed' for v in r.values())} passed, "
                f"{sum(v == 'failed' for v in r.values())} failed"
                + (f", {skipped} skipped" if skipped else "")  # as the bundle's own section
                if r
                else "–"
            )
            rows.append([_code(e.label), str(len(e.bundle.migrations)), checks])
        out += _table(["Bundle", "Migrations", "Checks"], rows)
        out.append("")
    if not entries and not load_errors:
        out += ["_No drizzle bundle found._", ""]
    for path, message in load_errors:
        out += [
            f"**Could not load** {_link(path.name or str(path), path, where)}: "
            + _text(message.splitlines()[0] if message else ""),
            "",
        ]
    lint = _LintSettings(dict(lint_severity or {}), tuple(lint_baseline), start)
    for e in entries:
        out += _bundle_section(e, where, cache, lint)
    return "\n".join(out).rstrip("\n") + "\n"


def _resolve_path(ds: DosqliteSession, path: Path) -> Path:
    if path.is_absolute():
        return path
    if ds.settings.sources.get("report", "").startswith("ini"):
        return Path(str(ds.config.rootpath)) / path
    return Path(str(ds.config.invocation_params.dir)) / path


def write_report(ds: DosqliteSession, path: Path) -> Path | None:
    """Write the report of a ``pytest --dosqlite`` session to ``path`` (relative paths: to the
    invocation directory, or to the rootdir when set in the ini file). Returns where it was
    written, None on an xdist worker (the controller writes it) or when it cannot be written
    (said on the terminal, never a traceback)."""
    if hasattr(ds.config, "workerinput"):
        return None
    target = _resolve_path(ds, path)
    text = render_report(
        ds.found,
        base=target.parent,
        images=ds.images,
        lint_severity=ds.settings.lint_severity,
        load_errors=[(e.path, e.message) for e in ds.errors],
        lint_baseline=ds.settings.lint_baseline,
        start=ds.settings.fleet.get("fleet_start"),
    )
    # said in the terminal summary, which pytest writes after this (here the progress line
    # of the tests is not ended yet)
    terminal = ds.config.pluginmanager.has_plugin("terminalreporter")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        message = f"dosqlite: could not write the report to {target}: {exc.strerror or exc}"
        if terminal:
            ds.end_notes.append((message, True))
        else:
            import warnings

            warnings.warn(message, stacklevel=1)
        return None
    if terminal:
        ds.end_notes.append((f"dosqlite: report written to {target}", False))
    return target
