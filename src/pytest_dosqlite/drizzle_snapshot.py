"""drizzle-kit's ``meta/NNNN_snapshot.json`` (SQLite dialect) as a :class:`~.schema.Schema`.

Why: the snapshot is what drizzle-kit *believes* the schema is after a migration; the database
is what the SQL really produced. When hand edits, custom migrations or generator bugs make the
two drift apart, the next ``drizzle-kit generate`` diffs against a fiction. Reading the snapshot
into the same model as :func:`~.schema.introspect` lets :func:`compare` list the drift, with the
harmless spelling differences (type case, identifier quoting, ``false`` vs ``0``, redundant
parentheses in ``(unixepoch())``, ``no action`` casing) normalized away.

Snapshot versions "5" and "6" are read (they share the table layout; "6" adds ``views``), and
drizzle-kit v1's "7" (``<folder>/snapshot.json``: a flat ``ddl`` list of tables, columns, pks,
fks, uniques, checks, indexes and views). A file that is not valid JSON, or not a SQLite
snapshot of those versions, raises :class:`~.errors.BundleError` naming the file and line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .bundle import skip_bom
from .errors import BundleError
from .schema import (
    Check,
    Column,
    ForeignKey,
    Index,
    IndexColumn,
    Schema,
    Table,
    UniqueConstraint,
    View,
    differences,
    display,
    strip_outer_parens,
    tokenize,
)

__all__ = [
    "SUPPORTED_VERSIONS",
    "compare",
    "load_snapshot",
    "matches_drizzle_snapshot",
    "parse_snapshot",
]

SUPPORTED_VERSIONS = ("5", "6", "7")


def load_snapshot(path: str | Path) -> Schema:
    """Read one ``NNNN_snapshot.json``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BundleError(f"cannot read drizzle snapshot: {e}", p) from None
    return parse_snapshot(text, path=p)


def parse_snapshot(text: str, *, path: str | Path | None = None) -> Schema:
    """A snapshot's JSON text as a :class:`Schema` (no stored SQL; views without
    ``isExisting``; no triggers, drizzle snapshots have none)."""
    try:  # a byte order mark: bundle_integrity reports it (drizzle-kit rejects it)
        data = json.loads(skip_bom(text))
    except json.JSONDecodeError as e:
        raise BundleError(f"invalid JSON in drizzle snapshot: {e.msg}", path, e.lineno) from None
    return _Reader(text, path).schema(data)


class _Reader:
    def __init__(self, text: str, path: str | Path | None) -> None:
        self.text = text
        self.path = path

    def fail(self, message: str, *keys: str) -> BundleError:
        return BundleError(message, self.path, _line_of(self.text, keys))

    def obj(self, value: object, what: str, *keys: str) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            raise self.fail(f"{what} must be a JSON object", *keys)
        return value

    def string(self, value: object, what: str, *keys: str) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{what} must be a string", *keys)
        return value

    def strings(self, value: object, what: str, *keys: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{what} must be a list of strings", *keys)
        return tuple(value)

    def boolean(self, value: object, what: str, *keys: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(f"{what} must be true or false", *keys)
        return value

    def generated(self, value: object, *keys: str) -> tuple[str | None, int]:
        """A column's ``generated`` ({as, type}): its expression and SQLite's ``hidden``."""
        if value is None:
            return None, 0
        g = self.obj(value, "generated", *keys)
        text = self.string(g.get("as"), "generated.as", *keys)
        return display(strip_outer_parens(tokenize(text))), 3 if g.get("type") == "stored" else 2

    def action(self, value: object, *keys: str) -> str:
        """``onDelete``/``onUpdate``: ``"set null"`` → ``SET NULL``; absent → NO ACTION."""
        if value is None:
            return "NO ACTION"
        text = self.string(value, f"{keys[-1]} action", *keys)
        return " ".join(text.upper().split()) or "NO ACTION"

    def schema(self, data: object) -> Schema:
        root = self.obj(data, "a drizzle snapshot")
        version = root.get("version")
        dialect = root.get("dialect")
        if dialect != "sqlite":
            raise self.fail(f"not a SQLite drizzle snapshot (dialect {dialect!r})", "dialect")
        if version not in SUPPORTED_VERSIONS:
            raise self.fail(
                f"unsupported drizzle snapshot version {version!r} "
                f"(supported: {', '.join(SUPPORTED_VERSIONS)})",
                "version",
            )
        if version == "7":
            return self.ddl(root.get("ddl"))
        tables = self.obj(root.get("tables", {}), "tables", "tables")
        internal = root.get("internal")
        expr_cols: Mapping[str, object] = {}
        if isinstance(internal, Mapping) and isinstance(internal.get("indexes"), Mapping):
            expr_cols = internal["indexes"]
        out_tables: list[Table] = []
        out_indexes: list[Index] = []
        for key, tv in tables.items():
            t = self.obj(tv, f"table {key!r}", "tables", key)
            table, indexes = self.table(key, t, expr_cols)
            out_tables.append(table)
            out_indexes += indexes
        views: list[View] = []
        for key, vv in self.obj(root.get("views", {}) or {}, "views", "views").items():
            v = self.obj(vv, f"view {key!r}", "views", key)
            if self.boolean(v.get("isExisting"), "isExisting", "views", key, "isExisting"):
                continue
            definition = v.get("definition")
            if definition is None:
                continue
            name = self.string(v.get("name", key), "view name", "views", key)
            text = self.string(definition, "view definition", "views", key, "definition")
            views.append(View(name=name, definition=display(tokenize(text))))

        return _sorted_schema(out_tables, out_indexes, views)

    def ddl(self, data: object) -> Schema:
        """drizzle-kit v1 (version "7"): one list of entities, each naming its table."""
        if not isinstance(data, list):
            raise self.fail("ddl must be a JSON list", "ddl")
        by_kind: dict[str, list[Mapping[str, object]]] = {}
        for entity in data:
            e = self.obj(entity, "a ddl entity", "ddl")
            kind = self.string(e.get("entityType"), "entityType", "entityType")
            by_kind.setdefault(kind, []).append(e)

        def of(kind: str, table: str) -> list[Mapping[str, object]]:
            return [e for e in by_kind.get(kind, []) if e.get("table") == table]

        out_tables: list[Table] = []
        out_indexes: list[Index] = []
        for t in by_kind.get("tables", []):
            name = self.string(t.get("name"), "table name", "name")
            primary_key: tuple[str, ...] = ()
            for pk in of("pks", name):
                primary_key = self.strings(pk.get("columns"), "primary key columns", "columns")
            pk_pos = {n.lower(): i + 1 for i, n in enumerate(primary_key)}
            columns: list[Column] = []
            for c in of("columns", name):
                where = ("columns", "name")
                cname = self.string(c.get("name"), "column name", *where)
                gen_expr, hidden = self.generated(c.get("generated"), "generated")
                default = c.get("default")
                columns.append(
                    Column(
                        name=cname,
                        type=self.string(c.get("type", ""), "column type", "type"),
                        notnull=self.boolean(c.get("notNull"), "notNull", "notNull"),
                        default=None if default is None else _default_sql(default),
                        pk=pk_pos.get(cname.lower(), 0),
                        hidden=hidden,
                        generated=gen_expr,
                        autoincrement=self.boolean(
                            c.get("autoincrement"), "autoincrement", "autoincrement"
                        ),
                    )
                )
            fks = [
                ForeignKey(
                    columns=self.strings(f.get("columns"), "foreign key columns", "columns"),
                    ref_table=self.string(f.get("tableTo"), "tableTo", "tableTo"),
                    ref_columns=self.strings(f.get("columnsTo"), "columnsTo", "columnsTo"),
                    on_update=self.action(f.get("onUpdate"), "onUpdate"),
                    on_delete=self.action(f.get("onDelete"), "onDelete"),
                )
                for f in of("fks", name)
            ]
            uniques = [
                UniqueConstraint(
                    columns=self.strings(u.get("columns"), "unique columns", "columns"),
                    name=str(u.get("name", "")),
                )
                for u in of("uniques", name)
            ]
            checks = [
                Check(
                    expr=display(tokenize(self.string(ch.get("value"), "check value", "value"))),
                    name=str(ch.get("name", "")),
                )
                for ch in of("checks", name)
            ]
            for ix in of("indexes", name):
                if ix.get("origin") == "auto":
                    continue  # SQLite's own index of a UNIQUE or PRIMARY KEY constraint
                raw_terms = ix.get("columns")
                if not isinstance(raw_terms, list):
                    raise self.fail("index columns must be a list", "columns")
                terms: list[tuple[str, bool]] = []
                for term in raw_terms:
                    tv = self.obj(term, "index column", "columns")
                    value = self.string(tv.get("value"), "index column value", "value")
                    expression = self.boolean(
                        tv.get("isExpression"), "isExpression", "isExpression"
                    )
                    terms.append((value, expression))
                out_indexes.append(
                    _index(
                        self.string(ix.get("name"), "index name", "name"),
                        name,
                        terms,
                        self.boolean(ix.get("isUnique"), "isUnique", "isUnique"),
                        ix.get("where"),
                    )
                )
            out_tables.append(_table(name, columns, primary_key, fks, uniques, checks))
        views: list[View] = []
        for v in by_kind.get("views", []):
            if self.boolean(v.get("isExisting"), "isExisting", "isExisting"):
                continue
            definition = v.get("definition")
            if definition is None:
                continue
            text = self.string(definition, "view definition", "definition")
            views.append(
                View(
                    name=self.string(v.get("name"), "view name", "name"),
                    definition=display(tokenize(text)),
                )
            )
        return _sorted_schema(out_tables, out_indexes, views)

    def table(
        self, key: str, t: Mapping[str, object], expr_cols: Mapping[str, object]
    ) -> tuple[Table, list[Index]]:
        name = self.string(t.get("name", key), "table name", "tables", key, "name")
        cols = self.obj(t.get("columns", {}), f"columns of {name}", "tables", key, "columns")
        composite: tuple[str, ...] = ()
        cpks = self.obj(
            t.get("compositePrimaryKeys", {}) or {}, "compositePrimaryKeys", "tables", key
        )
        for pk_key, pv in cpks.items():
            pk = self.obj(pv, "composite primary key", "tables", key, pk_key)
            composite = self.strings(pk.get("columns"), "primary key columns", key, pk_key)
        columns: list[Column] = []
        single_pk: list[str] = []
        for ckey, cv in cols.items():
            c = self.obj(cv, f"column {name}.{ckey}", "tables", key, "columns", ckey)
            where = ("tables", key, "columns", ckey)
            cname = self.string(c.get("name", ckey), "column name", *where)
            primary = self.boolean(c.get("primaryKey"), "primaryKey", *where, "primaryKey")
            if primary:
                single_pk.append(cname)
            gen_expr, hidden = self.generated(c.get("generated"), *where, "generated")
            columns.append(
                Column(
                    name=cname,
                    type=self.string(c.get("type", ""), "column type", *where, "type"),
                    notnull=self.boolean(c.get("notNull"), "notNull", *where, "notNull"),
                    default=_default_sql(c.get("default")) if "default" in c else None,
                    hidden=hidden,
                    generated=gen_expr,
                    autoincrement=self.boolean(
                        c.get("autoincrement"), "autoincrement", *where, "autoincrement"
                    ),
                )
            )
        primary_key = composite or tuple(single_pk)
        pk_pos = {n.lower(): i + 1 for i, n in enumerate(primary_key)}
        columns = [
            Column(
                name=c.name,
                type=c.type,
                notnull=c.notnull,
                default=c.default,
                pk=pk_pos.get(c.name.lower(), 0),
                hidden=c.hidden,
                generated=c.generated,
                autoincrement=c.autoincrement,
            )
            for c in columns
        ]
        fks: list[ForeignKey] = []
        fk_map = self.obj(t.get("foreignKeys", {}) or {}, "foreignKeys", "tables", key)
        for fkey, fv in fk_map.items():
            f = self.obj(fv, f"foreign key {fkey}", "tables", key, "foreignKeys", fkey)
            where = ("tables", key, "foreignKeys", fkey)
            fks.append(
                ForeignKey(
                    columns=self.strings(f.get("columnsFrom"), "columnsFrom", *where),
                    ref_table=self.string(f.get("tableTo"), "tableTo", *where),
                    ref_columns=self.strings(f.get("columnsTo"), "columnsTo", *where),
                    on_update=self.action(f.get("onUpdate"), *where, "onUpdate"),
                    on_delete=self.action(f.get("onDelete"), *where, "onDelete"),
                )
            )
        uniques: list[UniqueConstraint] = []
        u_map = self.obj(t.get("uniqueConstraints", {}) or {}, "uniqueConstraints", key)
        for ukey, uv in u_map.items():
            u = self.obj(uv, f"unique constraint {ukey}", "tables", key, ukey)
            uniques.append(
                UniqueConstraint(
                    columns=self.strings(u.get("columns"), "unique columns", key, ukey),
                    name=str(u.get("name", ukey)),
                )
            )
        checks: list[Check] = []
        ch_map = self.obj(t.get("checkConstraints", {}) or {}, "checkConstraints", key)
        for chkey, chv in ch_map.items():
            ch = self.obj(chv, f"check constraint {chkey}", "tables", key, chkey)
            value = self.string(ch.get("value"), "check value", key, chkey, "value")
            checks.append(Check(expr=display(tokenize(value)), name=str(ch.get("name", chkey))))
        indexes: list[Index] = []
        i_map = self.obj(t.get("indexes", {}) or {}, "indexes", "tables", key, "indexes")
        for ikey, iv in i_map.items():
            ix = self.obj(iv, f"index {ikey}", "tables", key, "indexes", ikey)
            where = ("tables", key, "indexes", ikey)
            iname = self.string(ix.get("name", ikey), "index name", *where)
            is_expr = _expression_columns(expr_cols.get(iname))
            index_cols = self.strings(ix.get("columns"), "index columns", *where, "columns")
            indexes.append(
                _index(
                    iname,
                    name,
                    [(col, col in is_expr) for col in index_cols],
                    self.boolean(ix.get("isUnique"), "isUnique", *where, "isUnique"),
                    ix.get("where"),
                )
            )
        return _table(name, columns, primary_key, fks, uniques, checks), indexes


def _table(
    name: str,
    columns: list[Column],
    primary_key: tuple[str, ...],
    fks: list[ForeignKey],
    uniques: list[UniqueConstraint],
    checks: list[Check],
) -> Table:
    """A table of a snapshot, its keys in a stable order (drizzle's order is a map's)."""
    return Table(
        name=name,
        columns=tuple(columns),
        primary_key=primary_key,
        foreign_keys=tuple(sorted(fks, key=lambda f: (f.columns, f.ref_table))),
        unique_constraints=tuple(sorted(uniques, key=lambda u: u.columns)),
        checks=tuple(checks),
    )


def _index(
    name: str, table: str, terms: list[tuple[str, bool]], unique: bool, where: object
) -> Index:
    """An index of a snapshot; ``terms``: (text, is an expression)."""
    return Index(
        name=name,
        table=table,
        columns=tuple(
            IndexColumn(display(tokenize(text)), expression=True)
            if expression
            else IndexColumn(text)
            for text, expression in terms
        ),
        unique=unique,
        where=display(tokenize(where)) if isinstance(where, str) else None,
    )


def _sorted_schema(tables: list[Table], indexes: list[Index], views: list[View]) -> Schema:
    def by_name(n: str) -> tuple[str, str]:
        return (n.lower(), n)

    return Schema(
        tables=tuple(sorted(tables, key=lambda t: by_name(t.name))),
        indexes=tuple(sorted(indexes, key=lambda i: by_name(i.name))),
        views=tuple(sorted(views, key=lambda v: by_name(v.name))),
    )


def _expression_columns(entry: object) -> set[str]:
    """Index terms drizzle-kit marks ``isExpression`` in ``internal.indexes``."""
    if not isinstance(entry, Mapping):
        return set()
    cols = entry.get("columns")
    if not isinstance(cols, Mapping):
        return set()
    return {k for k, v in cols.items() if isinstance(v, Mapping) and v.get("isExpression") is True}


def _default_sql(value: object) -> str | None:
    """A snapshot ``default`` as SQL text: drizzle stores SQL text for strings and
    expressions, and plain JSON for numbers and booleans."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return display(tokenize(value))
    return json.dumps(value)


def _line_of(text: str, keys: tuple[str, ...]) -> int | None:
    """Best-effort 1-based line of the JSON member at the path ``keys``: each key is searched
    for as ``"key":`` after the previous one."""
    if not keys:
        return None
    pos = 0
    found = False
    for k in keys:
        m = re.compile(re.escape(json.dumps(k)) + r"\s*:").search(text, pos)
        if m is None:
            break
        pos = m.start()
        found = True
    return text.count("\n", 0, pos) + 1 if found else None


def compare(applied: Schema, snapshot: Schema, *, pk_nullability: bool = True) -> list[str]:
    """What differs between the migrated database and drizzle-kit's snapshot, in the terms a
    snapshot can express; empty when they agree. Triggers, column order, collations,
    STRICT/WITHOUT ROWID and deferrable foreign keys are not part of a drizzle snapshot and are
    not compared. ``pk_nullability=False``: the NOT NULL of a primary-key column is not
    compared (drizzle-kit v1 records every primary-key column as ``notNull: false`` and treats
    the key as implying it, whether the SQL says NOT NULL, as 0.x generated it, or not)."""
    keys: set[str] = set()
    if not pk_nullability:
        keys = {f"column {t.name}.{c}".lower() for t in snapshot.tables for c in t.primary_key}
    return [
        d.describe("the database", "the snapshot")
        for d in differences(applied, snapshot, mode="drizzle")
        if not (d.aspect == "nullability" and d.subject.lower() in keys)
    ]


def matches_drizzle_snapshot(ctx: Any) -> None:
    """``matches_drizzle_snapshot``: the migrated schema equals drizzle-kit's last snapshot.

    drizzle-kit generates the next migration by diffing the TypeScript schema against the last
    ``meta/NNNN_snapshot.json``; when the SQL that DOs actually run says something else
    (hand-edited SQL, a change that was never generated, a drizzle-kit bug), the next
    ``generate`` is computed against a schema no DO has.
    """
    from .checks import _query, migration_failure
    from .errors import CheckFailure, CheckSkipped, MigrationError
    from .schema import introspect

    bundle = ctx.bundle
    if not bundle.migrations:
        raise CheckSkipped("the bundle has no migrations")
    last = bundle.migrations[-1].snapshot
    if last is None and bundle.snapshot_paths:
        last = bundle.snapshot_paths[-1]
    if last is None or not Path(last).exists():
        raise CheckSkipped(
            f"no drizzle-kit snapshot for the last migration {bundle.migrations[-1].tag}"
        )
    try:
        do = ctx.images.fresh(bundle)
    except MigrationError as exc:
        raise migration_failure(
            exc, "cannot compare with drizzle's snapshot: migrate fails", fresh_do=True
        ) from None
    try:
        applied = introspect(_query(do))
    finally:
        do.close()
    expected = load_snapshot(last)
    mismatches = compare(applied, expected, pk_nullability=bundle.format != "v1")
    if mismatches:
        raise CheckFailure(
            f"the migrated schema differs from drizzle-kit's snapshot {Path(last).name}",
            [
                ("Snapshot", str(last)),
                ("Differences", "\n".join(mismatches)),
                (
                    "Why it matters",
                    "drizzle-kit writes the next migration by diffing your schema.ts against "
                    "this snapshot, so it will generate SQL for a schema no Durable Object has.",
                ),
                (
                    "How to fix",
                    "If the SQL was edited by hand on purpose, mirror the change in schema.ts and "
                    "run `drizzle-kit generate` (it records a snapshot that matches); otherwise "
                    "restore the generated SQL. For drizzle-kit's own bugs (e.g. ADD COLUMN ... "
                    "REFERENCES dropping ON DELETE), write the missing part in a custom migration.",
                ),
            ],
        )
