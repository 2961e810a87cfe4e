"""startup_budget: the oldest instance's start-up migrations fit in blockConcurrencyWhile.

Why: every pending migration of an old instance runs at once in the constructor's
``blockConcurrencyWhile``, which the runtime cuts off after 30 seconds
(``Settings.budget_seconds``); an instance that never finishes its start-up never serves a
request again. :func:`estimate_startup` times each migration on large tables and extrapolates.
"""

from __future__ import annotations

import math
import string
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .bundle import Bundle, Migration
from .errors import CheckFailure, DosqliteWarning, MigrationError
from .migrator import MigrationRun, migrate
from .seed import bulk_seed, is_user_table, sql_literal, tables_with_rows
from .sqltext import Token, tokens
from .storage import DurableObjectStorage

if TYPE_CHECKING:
    from .checks import CheckContext

__all__ = ["BudgetEstimate", "DosqliteBudgetWarning", "estimate_startup", "startup_budget"]


class DosqliteBudgetWarning(DosqliteWarning):
    """The estimated start-up migration time gets close to the blockConcurrencyWhile limit.

    A ``UserWarning`` (through :class:`~pytest_dosqlite.errors.DosqliteWarning`).
    """


@dataclass
class BudgetEstimate:
    """Estimated time of every migration on tables of ``rows`` rows (see :func:`estimate_startup`).

    ``per_migration`` maps tag -> estimated seconds; ``measured`` maps each measured table size to
    tag -> measured seconds; ``failures`` names migrations that failed on the bulk rows (not
    timed); ``total`` is the estimated start-up of the oldest instance: every migration after
    the first on one DO, in one blockConcurrencyWhile.
    """

    rows: int
    per_migration: dict[str, float]
    measured: dict[int, dict[str, float]]
    failures: dict[str, str]
    limit_seconds: float
    #: seconds spent measuring
    cost: float = 0.0
    #: tag -> measured exponent p of t ~ rows ** p (only where the times are above noise)
    growth: dict[str, float] = field(default_factory=dict)

    def superlinear(self) -> list[str]:
        """Migrations whose time grows clearly faster than the row count."""
        return [t for t, p in self.growth.items() if p > _SUPERLINEAR]

    @property
    def total(self) -> float:
        return sum(self.per_migration.values())

    def slowest(self, count: int = 5) -> list[tuple[str, float]]:
        ranked = sorted(self.per_migration.items(), key=lambda kv: kv[1], reverse=True)
        return ranked[:count]

    def render(self) -> str:
        lines = [
            f"estimated start-up with {self.rows:,} rows per table: {self.total:.3f} s "
            f"(limit {self.limit_seconds:g} s)"
        ]
        sizes = sorted(self.measured)
        for tag, est in self.per_migration.items():
            measured = ", ".join(
                f"{self.measured[n][tag]:.4f} s @ {n:,}" for n in sizes if tag in self.measured[n]
            )
            lines.append(f"{tag}: {est:.4f} s (measured {measured})")
        for tag, why in self.failures.items():
            lines.append(f"{tag}: not timed: {why}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- what to fill
#
# A migration's time depends on the rows of the tables it reads or writes: the tables its
# statements name, the children of a table it deletes from or drops and of one whose referenced
# column it updates (each such parent row looks up, cascades to or nulls its children), the
# parents of every table it writes (each inserted row looks its parents up), the tables a trigger
# on a written table touches and the tables under a view it reads. Schema-only statements (ADD
# COLUMN without CHECK, RENAME, CREATE) read no row. Tables no later migration can reach that way
# only cost seeding time, so the estimate fills just the tables some migration can reach
# (``_Plan``), right before the first migration that needs them.

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
#: pragmas that read or change no table's rows
_SAFE_PRAGMAS = frozenset(
    [
        "foreign_keys",
        "defer_foreign_keys",
        "legacy_alter_table",
        "recursive_triggers",
        "ignore_check_constraints",
        "case_sensitive_like",
        "reverse_unordered_selects",
        "automatic_index",
        "trusted_schema",
        "query_only",
        "user_version",
        "application_id",
        "data_version",
        "schema_version",
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "collation_list",
        "function_list",
        "module_list",
        "pragma_list",
        "compile_options",
        "encoding",
        "busy_timeout",
        "cache_size",
        "temp_store",
        "synchronous",
    ]
)
#: pragmas that scan the table they name, or every table without one
_SCAN_PRAGMAS = frozenset(["integrity_check", "quick_check", "foreign_key_check"])
#: words of a table definition that make ALTER TABLE ADD COLUMN scan the table's rows
_CHECKED = frozenset(["CHECK", "STRICT", "GENERATED", "AS"])
_TRANSACTION = frozenset(["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"])


def _lower(name: str) -> str:
    """SQLite compares identifiers case-insensitively in ASCII only."""
    return name.translate(_ASCII_LOWER)


def _name(tok: Token) -> str | None:
    """The lower-cased name a token may stand for (None for numbers and punctuation)."""
    return _lower(tok.value) if tok.is_name else None


@dataclass
class _Effect:
    """What one statement does to tables, read from its text (names lower-case)."""

    #: a statement whose effect on rows is not known (ANALYZE, VACUUM, an unparsed form, ...)
    unknown: bool = False
    #: names whose rows it reads (or writes without deleting: ALTER, CREATE INDEX, ...)
    reads: set[str] = field(default_factory=set)
    #: tables it deletes from, replaces into or drops (their children are reached)
    writes: set[str] = field(default_factory=set)
    #: tables it updates -> the columns it sets (None: not known); children are reached
    #: when a set column is one a foreign key references
    updates: dict[str, frozenset[str] | None] = field(default_factory=dict)
    #: tables it only inserts into
    inserts: set[str] = field(default_factory=set)
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    #: tables it adds a column to (a schema change that reads no row unless ``checked``)
    added: list[str] = field(default_factory=list)
    #: tables whose rows ALTER TABLE ADD COLUMN checks: a CHECK constraint, STRICT, a
    #: generated column (SQLite then runs ``pragma_quick_check`` on the table)
    checked: list[str] = field(default_factory=list)
    #: (child, parent) foreign keys it declares
    #: (child, parent, referenced columns or None for the parent's primary key)
    fks: list[tuple[str, str, frozenset[str] | None]] = field(default_factory=list)
    #: (object, names): using the object (a view, an index, a trigger's table) reaches the names
    deps: list[tuple[str, set[str]]] = field(default_factory=list)
    #: a name that must be a table or index of the bundle (else: a collation, a schema: unknown)
    check_name: str | None = None


def _name_at(t: list[Token], i: int) -> tuple[str | None, int]:
    """The (schema-qualified) object name starting at token ``i`` and the index after it."""
    if i >= len(t):
        return None, i
    if i + 2 < len(t) and t[i + 1].kind == "op" and t[i + 1].text == ".":
        return _name(t[i + 2]), i + 3
    return _name(t[i]), i + 1


def _skip_kw(t: list[Token], i: int, *words: str) -> int:
    """``i`` moved past the keyword sequence ``words`` if it is there."""
    if all(i + k < len(t) and t[i + k].up == w for k, w in enumerate(words)):
        return i + len(words)
    return i


def _is(tok: Token, punct: str) -> bool:
    return tok.kind == "op" and tok.text == punct


def _names_in_parens(t: list[Token], i: int) -> tuple[frozenset[str] | None, int]:
    """The names of a ``( a, b )`` list at token ``i`` (None if there is none) and the end."""
    if i >= len(t) or not _is(t[i], "("):
        return None, i
    names: set[str] = set()
    j = i + 1
    while j < len(t) and not _is(t[j], ")"):
        if (name := _name(t[j])) is not None:
            names.add(name)
        j += 1
    return frozenset(names), j + 1


def _references(t: list[Token], child: str, e: _Effect) -> None:
    for i, tok in enumerate(t):
        if tok.up == "REFERENCES":
            parent, after = _name_at(t, i + 1)
            if parent is not None:
                e.fks.append((child, parent, _names_in_parens(t, after)[0]))


#: what ends the SET list of an UPDATE
_AFTER_SET = frozenset(["WHERE", "FROM", "RETURNING", "ORDER", "LIMIT"])


def _set_columns(t: list[Token], i: int) -> frozenset[str] | None:
    """The columns an UPDATE's ``SET`` list (at token ``i``) assigns; None if not understood."""
    if i >= len(t) or t[i].up != "SET":
        return None
    cols: set[str] = set()
    depth = 0
    expect = True  # a column (or a parenthesised column list) comes next
    j = i + 1
    while j < len(t):
        tok = t[j]
        if depth == 0 and tok.up in _AFTER_SET:
            break
        if expect:
            if _is(tok, "("):
                names, j = _names_in_parens(t, j)
                cols |= names or set()
            elif (name := _name(tok)) is not None:
                cols.add(name)
                j += 1
            else:
                return None
            expect = False
            continue
        if _is(tok, "("):
            depth += 1
        elif _is(tok, ")"):
            depth -= 1
        elif depth == 0 and _is(tok, ","):
            expect = True
        j += 1
    return frozenset(cols) if cols else None


def _analyse(sql: str) -> _Effect:
    """The tables one statement reads, writes, creates, drops or renames."""
    t = tokens(sql)
    e = _Effect()
    if not t:
        return e
    names = {n for tok in t if (n := _name(tok)) is not None}
    k0 = t[0].up
    if k0 in _TRANSACTION:
        return e
    if k0 in ("SELECT", "VALUES"):
        e.reads |= names
        return e
    if k0 == "WITH":  # its target is somewhere inside: every name may be written
        e.reads |= names
        e.writes |= names
        return e
    if k0 in ("INSERT", "REPLACE"):
        i = 1
        while i < len(t) and t[i].up != "INTO":
            i += 1
        target, _ = _name_at(t, i + 1)
        if target is None:
            e.unknown = True
            return e
        e.reads |= names
        kws = {tok.up for tok in t}
        if k0 == "REPLACE" or "REPLACE" in kws or "UPDATE" in kws:
            e.writes.add(target)
        else:
            e.inserts.add(target)
        return e
    if k0 in ("UPDATE", "DELETE"):
        i = _skip_kw(t, 1, "FROM") if k0 == "DELETE" else 1
        if t[i].up == "OR" if i < len(t) else False:
            i += 2
        target, after = _name_at(t, i)
        if target is None:
            e.unknown = True
            return e
        e.reads |= names
        if k0 == "DELETE":
            e.writes.add(target)
        else:
            e.updates[target] = _set_columns(t, after)
        return e
    if k0 == "CREATE":
        i = 1
        if i < len(t) and t[i].up in ("TEMP", "TEMPORARY"):
            i += 1
        unique = t[i].up == "UNIQUE" if i < len(t) else False
        i += unique
        what = t[i].up if i < len(t) else ""
        if what == "VIRTUAL":
            i = _skip_kw(t, i + 1, "TABLE") - 1
        i = _skip_kw(t, i + 1, "IF", "NOT", "EXISTS")
        name, i = _name_at(t, i)
        if name is None or what not in ("TABLE", "VIRTUAL", "INDEX", "VIEW", "TRIGGER"):
            e.unknown = True
            return e
        if what == "TABLE":
            e.created.append(name)
            _references(t, name, e)
            if _CHECKED & {tok.up for tok in t}:
                e.checked.append(name)
            if i < len(t) and t[i].up == "AS":  # CREATE TABLE ... AS SELECT reads its sources
                e.reads |= names - {name}
        elif what == "VIRTUAL":  # a module may read the tables it names (fts5 content=)
            e.created.append(name)
            e.reads |= names - {name}
            e.deps.append((name, names - {name}))
        elif what == "INDEX":
            if i >= len(t) or t[i].up != "ON":
                e.unknown = True
                return e
            table, _ = _name_at(t, i + 1)
            if table is None:
                e.unknown = True
                return e
            e.reads.add(table)
            e.deps.append((name, {table}))
        elif what == "VIEW":
            e.deps.append((name, names - {name}))
        else:  # TRIGGER ... ON table: writing the table runs the body on the others
            on = next((j for j in range(i, len(t)) if t[j].up == "ON"), None)
            table = _name_at(t, on + 1)[0] if on is not None else None
            if table is None:
                e.unknown = True
                return e
            e.deps.append((table, names - {name, table}))
        return e
    if k0 == "DROP":
        what = t[1].up if len(t) > 1 else ""
        name, _ = _name_at(t, _skip_kw(t, 2, "IF", "EXISTS"))
        if name is None or what not in ("TABLE", "INDEX", "VIEW", "TRIGGER"):
            e.unknown = True
            return e
        if what == "TABLE":  # an implicit DELETE: children are looked up, cascaded, nulled
            e.writes.add(name)
            e.dropped.append(name)
        elif what == "INDEX":  # freeing the index costs its pages
            e.reads.add(name)
        return e
    if k0 == "ALTER":
        name, i = _name_at(t, _skip_kw(t, 1, "TABLE"))
        if name is None or len(t) < 3 or t[1].up != "TABLE" or i >= len(t):
            e.unknown = True
            return e
        action = t[i].up
        e.altered.append(name)
        if action == "RENAME" and i + 1 < len(t) and t[i + 1].up == "TO":
            new, _ = _name_at(t, i + 2)
            if new is None:
                e.unknown = True
                return e
            e.renamed.append((name, new))
        elif action == "ADD":
            _references(t, name, e)
            e.added.append(name)
            kws = {tok.up for tok in t}
            if _CHECKED & kws:
                e.checked.append(name)
            default = next((j for j, tok in enumerate(t) if tok.up == "DEFAULT"), None)
            if (default is None and {"NOT", "NULL"} <= kws) or (
                default is not None and default + 1 < len(t) and _is(t[default + 1], "(")
            ):
                # NOT NULL without a default, or an expression default (unixepoch()): SQLite
                # refuses it on a table with rows, which an old instance has: fill it first
                e.reads.add(name)
        elif action == "DROP":  # the table is rewritten without the column
            e.reads.add(name)
        elif action != "RENAME":  # RENAME [COLUMN] a TO b rewrites only the schema
            e.unknown = True
        return e
    if k0 == "PRAGMA":
        pragma, i = _name_at(t, 1)
        arg = next((n for tok in t[i:] if (n := _name(tok)) is not None), None)
        if pragma in _SAFE_PRAGMAS:
            return e
        if pragma in _SCAN_PRAGMAS and arg is not None:
            e.reads.add(arg)
            e.check_name = arg
            return e
        e.unknown = True
        return e
    if k0 in ("ANALYZE", "REINDEX"):
        arg, _ = _name_at(t, 1)
        if arg is None:
            e.unknown = True  # every table (or every index)
        else:
            e.reads.add(arg)
            e.check_name = arg
        return e
    e.unknown = True
    return e


@dataclass(frozen=True)
class _Plan:
    """What each migration (0-based) needs filled and may change, from the SQL text alone.

    Names are lower-case; ``None`` means every table (a statement that cannot be analysed).
    ``need[i]``: the existing tables whose rows migration ``i`` can reach (its time depends on
    their size). ``ready[i]``: the tables that must be filled before it runs: ``need``, and the
    tables it adds a column to that a later migration reads (filled before, their old rows hold
    NULL in the new column, as on a real instance). ``fill[i]``: every existing table that a
    migration from ``i`` on needs ready; a fill before ``i`` tops all of them up, so that the
    fills are few. ``changed[i]``: the tables whose existence or emptiness it can change.
    ``independent[i]``: it reaches no table that exists before it, so its time cannot depend on
    how many rows the tables hold.
    """

    need: tuple[frozenset[str] | None, ...]
    ready: tuple[frozenset[str] | None, ...]
    fill: tuple[frozenset[str] | None, ...]
    changed: tuple[frozenset[str] | None, ...]
    independent: tuple[bool, ...]


def _closure(start: Iterable[str], *edges: dict[str, set[str]]) -> set[str]:
    seen = set(start)
    stack = list(seen)
    while stack:
        node = stack.pop()
        for edge in edges:
            for nxt in edge.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
    return seen


def _plan(migrations: Sequence[Migration]) -> _Plan:
    """Which tables each migration can reach (see the comment above ``_ASCII_LOWER``).

    Names are tracked across the bundle, not per version: a table renamed (drizzle's
    ``__new_x`` -> ``x``) is one node with all its names, and a foreign key, trigger, view or
    index declared anywhere counts everywhere. That can only fill more tables than needed.
    """
    from .sqltext import split

    effects = [
        [_analyse(p.text) for chunk in m.chunks for p in split(chunk) if p.has_statement]
        for m in migrations
    ]
    alias: dict[str, str] = {}

    def find(x: str) -> str:
        root = alias.setdefault(x, x)
        while root != alias[root]:
            root = alias[root]
        alias[x] = root
        return root

    objects: set[str] = set()
    for effs in effects:
        for e in effs:
            objects.update(e.created)
            objects.update(obj for obj, _ in e.deps)
            for old, new in e.renamed:
                objects.update((old, new))
                ra, rb = find(old), find(new)
                if ra != rb:
                    alias[ra] = rb
    parents: dict[str, set[str]] = {}
    children: dict[str, set[str]] = {}
    deps: dict[str, set[str]] = {}
    #: table -> the columns foreign keys reference ("*": its primary key, not named)
    referenced: dict[str, set[str]] = {}
    for effs in effects:
        for e in effs:
            for child, parent, cols in e.fks:
                if parent in objects and find(child) != find(parent):
                    parents.setdefault(find(child), set()).add(find(parent))
                    children.setdefault(find(parent), set()).add(find(child))
                if parent in objects:
                    referenced.setdefault(find(parent), set()).update(cols or {"*"})
            for obj, names in e.deps:
                deps.setdefault(find(obj), set()).update(find(n) for n in names if n in objects)
    checked = {find(n) for effs in effects for e in effs for n in e.checked if n in objects}
    members: dict[str, set[str]] = {}
    for name in objects:
        members.setdefault(find(name), set()).add(name)

    def nodes(names: Iterable[str]) -> set[str]:
        return {find(n) for n in names if n in objects}

    def names_of(group: Iterable[str]) -> set[str]:
        return {n for node in group for n in members[node]}

    def triggered(start: set[str]) -> set[str]:
        """What triggers on ``start`` reach (a trigger body may delete: children too)."""
        fired = _closure(start, deps) - start
        return _closure(fired, deps, children) if fired else set()

    need: list[frozenset[str] | None] = []
    altered: list[frozenset[str]] = []  # existing tables a migration adds columns to
    changed: list[frozenset[str] | None] = []
    independent: list[bool] = []
    before: list[set[str] | None] = []  # the tables that exist before each migration
    exists: set[str] | None = set()  # None once a statement cannot be analysed
    newest = -math.inf
    for m, effs in zip(migrations, effects, strict=True):
        unknown = any(
            e.unknown or (e.check_name is not None and e.check_name not in objects) for e in effs
        )
        if m.when <= newest:  # drizzle may never apply it: which tables exist is not known
            exists = None
        newest = max(newest, m.when)
        deletes = _closure(nodes(n for e in effs for n in e.writes), deps, children)
        updates = nodes(n for e in effs for n in e.updates)
        # an UPDATE that sets no referenced column neither looks up nor changes children
        rekeyed = {
            find(n)
            for e in effs
            for n, cols in e.updates.items()
            if n in objects
            and (cols is None or bool(referenced.get(find(n), set()) & (cols | {"*"})))
        }
        inserts = nodes(n for e in effs for n in e.inserts)
        reads = nodes(n for e in effs for n in e.reads)
        added = nodes(n for e in effs for n in e.added)
        reads |= added & checked
        fired = triggered(updates | inserts)
        reached = _closure(
            _closure(reads, deps)
            | deletes
            | updates
            | _closure(rekeyed, deps, children)
            | inserts
            | fired,
            parents,
        )
        touched = nodes(
            n for e in effs for n in (*e.created, *e.dropped, *(x for r in e.renamed for x in r))
        )
        before.append(None if exists is None else set(exists))
        if unknown or exists is None:
            exists = None
        if unknown:
            need.append(None)
            altered.append(frozenset())
            changed.append(None)
            independent.append(False)
            continue
        reach = names_of(reached)
        have = reach if exists is None else reach & exists
        need.append(frozenset(have))
        new_columns = names_of(added)
        altered.append(frozenset(new_columns if exists is None else new_columns & exists))
        changed.append(frozenset(names_of(deletes | fired | touched)))
        independent.append(exists is not None and not have)
        for e in effs:
            if exists is not None:
                exists.update(e.created)
                exists.difference_update(e.dropped)
                for old, new in e.renamed:
                    exists.discard(old)
                    exists.add(new)
    # ready[i]: need[i], and the tables i adds columns to when a later migration reads them
    # (filled before, their old rows hold NULL in the new column, as on a real instance);
    # fill[i]: the tables existing before i that a migration from i on needs ready
    ready: list[frozenset[str] | None] = [None] * len(effects)
    fill: list[frozenset[str] | None] = [None] * len(effects)
    later: set[str] | None = set()  # what migrations after i need
    pending: set[str] | None = set()  # what migrations from i on need ready
    for i in range(len(effects) - 1, -1, -1):
        own = need[i]
        if own is not None:
            ready[i] = own | (altered[i] if later is None else altered[i] & later)
        r = ready[i]
        pending = None if pending is None or r is None else pending | r
        later = None if later is None or own is None else later | own
        have_before = before[i]
        if pending is not None and have_before is not None:
            fill[i] = frozenset(pending & have_before)
    return _Plan(tuple(need), tuple(ready), tuple(fill), tuple(changed), tuple(independent))


def _fill(
    do: DurableObjectStorage, need: frozenset[str] | None, rows: int, known: set[str]
) -> None:
    """Fill the empty tables of ``need`` (every table when None) that are not in ``known``.

    The rows are :func:`~pytest_dosqlite.seed.bulk_seed`'s (its per-table ``INSERT ... SELECT``),
    parents first; a table whose insert fails is left empty, as there. ``known`` (lower-case
    names whose state is known: absent, holding rows, or unfillable) gains every name looked at.
    """
    asked = None if need is None else sorted(need - known)
    if asked == []:
        return
    where = ""
    if asked is not None:
        where = f" AND name COLLATE NOCASE IN ({', '.join(sql_literal(n) for n in asked)})"
    master = do.sql.exec(f"SELECT name, sql FROM sqlite_master WHERE type = 'table'{where}")
    tables = {
        _lower(str(name)): str(name)
        for name, sql in master.raw()
        if is_user_table(str(name)) and not str(sql or "").upper().startswith("CREATE VIRTUAL")
    }
    look = [name for low, name in tables.items() if low not in known]
    known.update(asked if asked is not None else tables)
    empty = set(look) - tables_with_rows(do, look)
    if empty:
        bulk_seed(do, rows, tables=empty)


def _progressive_run(
    bundle: Bundle,
    images: Any,
    target: int,
    rows: int,
    skip: Iterable[str] = (),
    plan: _Plan | None = None,
    prefixes: dict[int, Bundle] | None = None,
    fk_off: bool = False,
) -> tuple[dict[str, float], dict[str, str]]:
    """Time each migration on one DO whose tables hold ``rows`` rows when a migration needs them.

    Before a migration whose tables (``plan.ready``) are not all known to hold rows (or to be
    absent, or unfillable), every empty table that a migration from there on reaches
    (``plan.fill``) is filled with ``rows`` rows (see :func:`_fill`); which tables may have
    been emptied or created since is read from ``plan.changed``, so the database is not probed
    before every migration. Consecutive migrations with nothing to fill between them run in one
    ``migrate()`` call (as the real start-up runs them all in one), each timed on its own. A
    migration that fails on the bulk rows is timed again from the image before it with its
    tables freshly filled; migrations in ``skip`` are not run on this DO (the run continues from
    the image after them).
    """
    migrations = bundle.migrations
    plan = plan if plan is not None else _plan(migrations[:target])
    cache = prefixes if prefixes is not None else {}
    skipped = set(skip)
    times: dict[str, float] = {}
    failures: dict[str, str] = {}

    def prefix(count: int) -> Bundle:
        return _prefix(bundle, cache, count)

    def image(count: int) -> DurableObjectStorage:
        return DurableObjectStorage(image=images.version(bundle, count).image)

    def flush(do: DurableObjectStorage, start: int, end: int) -> tuple[int, str] | None:
        """Run migrations ``start..end`` (1-based); on failure, those before the failing one."""
        if end < start:
            return None
        try:
            times.update(_migrate(do, prefix(end), fk_off).timings)
            return None
        except MigrationError as exc:
            error = str(exc.cause or exc.message)
            tags = [m.tag for m in migrations[start - 1 : end]]
            at = start + tags.index(exc.tag) if exc.tag in tags else start
        return flush(do, start, at - 1) or (at, error)

    def failed(do: DurableObjectStorage, at: int, error: str) -> DurableObjectStorage:
        """The DO to go on with after migration ``at`` failed with ``error``."""
        do.close()
        tag = migrations[at - 1].tag
        if "constraint failed" in error:
            # rows carried over from earlier versions broke it (NULLs copied into a new NOT
            # NULL column, say: data_preserved reports that); time it on fresh rows instead
            do = image(at - 1)
            _fill(do, plan.fill[at - 1], rows, set())
            try:
                times[tag] = _migrate(do, prefix(at), fk_off).timings.get(tag, 0.0)
                return do
            except MigrationError as exc:
                do.close()
                error = str(exc.cause or exc.message)
        failures[tag] = error
        return image(at)

    do = image(0)
    known: set[str] = set()
    start = j = 1  # migrations start..j-1 are decided but not run yet
    while True:
        if j > target or migrations[j - 1].tag in skipped:
            broke = flush(do, start, j - 1)
            if broke is None and j > target:
                break
            if broke is None:
                do.close()
                do = image(j)
            else:
                j = broke[0]
                do = failed(do, j, broke[1])
            known.clear()
            start = j = j + 1
            continue
        ready = plan.ready[j - 1]
        if j > 1 and (ready is None or not ready <= known):
            broke = flush(do, start, j - 1)
            if broke is not None:
                j = broke[0]
                do = failed(do, j, broke[1])
                known.clear()
                start = j = j + 1
                continue
            start = j
            _fill(do, plan.fill[j - 1], rows, known)
        changed = plan.changed[j - 1]
        if changed is None:
            known.clear()
        else:
            known.difference_update(changed)
        j += 1
    do.close()
    return times, failures


#: below this many seconds a measurement is noise: extrapolate linearly
_NOISE = 0.005
#: a measured exponent above this grows clearly faster than the rows (n log n from 1k to 10k
#: rows is about 1.1): extrapolated as a power law
_SUPERLINEAR = 1.3
#: a measured exponent from here on is a scan per row (quadratic)
_QUADRATIC = 1.6
#: share of the limit a migration grown as a square must reach to have its growth timed again
_RETIME_SHARE = 0.1


def _extrapolate(na: int, ta: float, nb: int, tb: float, rows: int) -> float:
    """Time at ``rows`` from times ``ta`` at ``na`` and ``tb`` at ``nb`` rows (``na < nb``).

    Linear (``tb + slope * (rows - nb)``, slope >= 0, never below ``tb``) unless both times are
    above noise and grow faster than linearly; then a power law ``tb * (rows / nb) ** p`` with
    the measured exponent ``p`` capped at 2 (a scan per row: DROP TABLE of a parent whose child
    foreign-key column has no index, an UPDATE with a correlated subquery, ...). A measured
    exponent of 1.6 or more is taken as 2: a scan per row is quadratic, its fixed costs make it
    measure a little less, and extrapolating a noisy exponent 10-30 times further swings the
    estimate several-fold from run to run.
    """
    if ta >= _NOISE / 10 and tb >= _NOISE:
        p = math.log(tb / ta) / math.log(nb / na)
        if p > _SUPERLINEAR:
            return float(tb * (rows / nb) ** (2.0 if p >= _QUADRATIC else p))
    slope = max(0.0, (tb - ta) / (nb - na))
    return max(tb, tb + slope * (rows - nb))


def _migrate(do: DurableObjectStorage, bundle: Bundle, fk_off: bool) -> MigrationRun:
    """``migrate()``, after ``PRAGMA foreign_keys=OFF`` when the DO's start does that (the
    pragma only works before the event's first write: between runs here it always is)."""
    if fk_off:
        do.sql.exec("PRAGMA foreign_keys=OFF")
    return migrate(do, bundle)


def _prefix(bundle: Bundle, prefixes: dict[int, Bundle], count: int) -> Bundle:
    """``bundle.prefix(count)``, built once per estimate."""
    got = prefixes.get(count)
    if got is None:
        got = prefixes[count] = bundle.prefix(count)
    return got


def _time_alone(
    bundle: Bundle,
    images: Any,
    k: int,
    rows: int,
    plan: _Plan,
    prefixes: dict[int, Bundle],
    fk_off: bool = False,
) -> tuple[float, str | None]:
    """Migration ``k`` (1-based) timed on the image before it, with the tables it reaches
    (``plan.need``) filled to ``rows``: the cost is this one migration, wherever it is."""
    prefix = _prefix(bundle, prefixes, k)
    do = DurableObjectStorage(image=images.version(bundle, k - 1).image)
    try:
        _fill(do, plan.need[k - 1], rows, set())
        tag = bundle.migrations[k - 1].tag
        return _migrate(do, prefix, fk_off).timings.get(tag, 0.0), None
    except MigrationError as exc:
        return 0.0, str(exc.cause or exc.message)
    finally:
        do.close()


def _least(
    bundle: Bundle,
    images: Any,
    k: int,
    rows: int,
    plan: _Plan,
    prefixes: dict[int, Bundle],
    first: float,
    repeats: int,
    fk_off: bool = False,
) -> float:
    """The least of ``first`` and up to ``repeats`` more timings of migration ``k`` alone at
    ``rows`` (:func:`_time_alone`), stopping at a timing not 10% below the least so far (a run
    that fails is not a timing)."""
    best = first
    for _ in range(repeats):
        timed, error = _time_alone(bundle, images, k, rows, plan, prefixes, fk_off)
        if error is not None or timed >= 0.9 * best:
            return min(best, timed) if error is None else best
        best = timed
    return best


def _could_matter(nb: int, tb: float, rows: int, limit: float) -> bool:
    """Whether a migration timed ``tb`` at ``nb`` rows would take a noticeable share of the
    ``limit`` at ``rows`` if it grew like a square: only then is its growth worth timing again
    (each timing alone copies an image and fills tables)."""
    return tb * (rows / nb) ** 2 >= _RETIME_SHARE * limit


def _too_slow(sizes: tuple[int, int], t1: float, t_empty: float, cap: float) -> bool:
    """Whether a migration timed ``t1`` at ``sizes[0]`` rows (``t_empty`` on empty tables) could
    take more than ``cap`` seconds at ``sizes[1]``: its data-dependent part grown
    quadratically (a scan per row, the worst _extrapolate assumes) plus its schema work."""
    n1, n2 = sizes
    return max(t1 - t_empty, 0.0) * (n2 / n1) ** 2 + t_empty > cap


def _growth(na: int, ta: float, nb: int, tb: float) -> float | None:
    """The measured exponent ``p`` of ``t ~ n ** p``, when both times are above noise."""
    if ta >= _NOISE / 10 and tb >= _NOISE:
        return math.log(tb / ta) / math.log(nb / na)
    return None


def estimate_startup(
    bundle: Bundle,
    *,
    rows: int = 100_000,
    sample_rows: int = 10_000,
    images: Any = None,
    limit_seconds: float = 30.0,
    measure_cap: float = 1.0,
    foreign_keys_off: bool = False,
) -> BudgetEstimate:
    """Estimate how long every migration takes when each table holds ``rows`` rows.

    Method: one DO starts empty and takes the migrations in order; before each migration, the
    empty tables it can reach are filled with :func:`~pytest_dosqlite.seed.bulk_seed`'s rows (so
    each migration meets full tables, as on an old, busy instance) and the migration is timed as
    drizzle runs it (``migrate()``'s per-migration timing). The tables a migration can reach
    are read from the bundle's SQL (:func:`_plan`): the tables its statements name, the children
    of those it deletes from, updates or drops, the tables triggers and views on them use, and
    the parents of all of these; a statement that cannot be analysed (``ANALYZE``, an unknown
    form) makes it reach every table. Tables no migration reaches stay empty: their size changes
    no migration's time. When ``rows <= sample_rows`` this is done once at ``rows``. Otherwise
    it is done at ``sample_rows // 10`` and ``sample_rows`` rows, and each migration's time at
    ``rows`` is extrapolated from those two sizes (see :func:`_extrapolate`: linear, or a power
    law when the growth is clearly superlinear). A migration that could take more than
    ``measure_cap`` seconds at ``sample_rows`` (its time at ``sample_rows // 10``, less its time
    on empty tables, grown quadratically: :func:`_too_slow`) is timed at the geometric mean of
    the two sizes instead (about 3,162 rows for 10,000: a tenth of the cost of a quadratic
    migration at 10,000), on its own (on the image before it, with the tables it reaches
    filled); if its growth from there would still take it over the cap, it is left out of the
    run at ``sample_rows`` and extrapolated from the middle size. Both sizes are large enough
    for the growth of a slow migration to show, so its estimate does not depend on timing
    noise at small sizes. A migration that reaches no table existing before it (it creates its
    own tables, or only changes the schema) cannot depend on the row count: its estimate is
    its smallest measured time, not an extrapolation of timing noise, and it is never left
    out. Noise only adds time, and one slow sample at the small size would make a quadratic
    migration look linear: a migration whose growth is measured below a square, and that
    would take 10% of ``limit_seconds`` or more if it grew as a square, is timed again alone
    at the small size until a timing stops falling (the least is kept), and once more at the
    larger size when its growth is between linear and square. The times are this machine's
    SQLite (the DO's version) in memory, without the DO's storage I/O.
    """
    import time

    from .images import default_cache, newest_reached

    cache = images if images is not None else default_cache()
    fk = foreign_keys_off
    started = time.perf_counter()
    target = newest_reached(cache, bundle)
    measured: dict[int, dict[str, float]] = {}
    failures: dict[str, str] = {}
    tags = [m.tag for m in bundle.migrations[:target]]
    plan = _plan(bundle.migrations[:target])
    prefixes: dict[int, Bundle] = {}
    per: dict[str, float] = {}
    growth: dict[str, float] = {}
    if rows <= sample_rows or sample_rows < 100:
        size = max(rows, 1)
        measured[size], failures = _progressive_run(
            bundle, cache, target, size, (), plan, prefixes, fk
        )
        per = {t: measured[size].get(t, 0.0) for t in tags}
    else:
        n1, n2 = sample_rows // 10, sample_rows
        mid = round(math.sqrt(n1 * n2))
        measured[n1], failed = _progressive_run(bundle, cache, target, n1, (), plan, prefixes, fk)
        failures.update(failed)
        built = getattr(cache, "timings", None)
        empty: dict[str, float] = built(bundle) if callable(built) else {}
        slow = [
            i
            for i, t in enumerate(tags)
            if not plan.independent[i]
            and _too_slow((n1, n2), measured[n1].get(t, 0.0), empty.get(t, 0.0), measure_cap)
        ]
        if slow:
            measured[mid] = {}
            for i in slow:
                timed, error = _time_alone(bundle, cache, i + 1, mid, plan, prefixes, fk)
                if error is None:
                    measured[mid][tags[i]] = timed
                else:
                    failures.setdefault(tags[i], error)
        # left out at n2: what its growth from n1 to mid says would take over the cap there
        skip = [
            tags[i]
            for i in slow
            if tags[i] in measured[mid]
            and _extrapolate(n1, measured[n1].get(tags[i], 0.0), mid, measured[mid][tags[i]], n2)
            > measure_cap
        ]
        measured[n2], failed = _progressive_run(bundle, cache, target, n2, skip, plan, prefixes, fk)
        failures.update(failed)
        for i, t in enumerate(tags):
            if plan.independent[i]:
                continue
            nb = n2 if t in measured[n2] else mid
            ta, tb = measured[n1].get(t, 0.0), measured.get(nb, {}).get(t)
            if tb is None:  # failed at the larger size: linear from the one it has
                per[t] = _extrapolate(0, 0.0, n1, ta, rows)
                continue
            p = _growth(n1, ta, nb, tb)
            if p is not None and p < _QUADRATIC and _could_matter(nb, tb, rows, limit_seconds):
                # one sample at each size sets the exponent, and noise only ever adds time: one
                # slow sample at the small size turns a quadratic migration linear and its
                # estimate ten times smaller. Timed again there until a timing stops falling.
                ta = measured[n1][t] = _least(bundle, cache, i + 1, n1, plan, prefixes, ta, 2, fk)
                p = _growth(n1, ta, nb, tb)
                if p is not None and _SUPERLINEAR < p < _QUADRATIC:  # power law or square
                    tb = measured[nb][t] = _least(
                        bundle, cache, i + 1, nb, plan, prefixes, tb, 1, fk
                    )
            per[t] = _extrapolate(n1, ta, nb, tb, rows)
            p = _growth(n1, ta, nb, tb)
            if p is not None:
                growth[t] = p
    for i, t in enumerate(tags):
        # the first migration always runs on an empty DO; others may create all they touch
        if i == 0 or plan.independent[i]:
            per[t] = min((measured[n][t] for n in measured if t in measured[n]), default=0.0)
    per = {t: per.get(t, 0.0) for t in tags}
    return BudgetEstimate(
        rows=rows,
        per_migration=per,
        measured=measured,
        failures=failures,
        limit_seconds=limit_seconds,
        cost=time.perf_counter() - started,
        growth=growth,
    )


def startup_budget(ctx: CheckContext) -> None:
    """The oldest instance's start-up migrations fit in blockConcurrencyWhile's time limit.

    A DO migrates lazily in its constructor's ``blockConcurrencyWhile``; an instance at the
    oldest version runs every later migration there at once, and the runtime resets the object
    when the callback takes longer than ``Settings.budget_seconds`` (30 s on Cloudflare). The
    time is estimated by :func:`estimate_startup` with ``Settings.budget_rows`` rows per table
    (default 100,000; measured at up to ``budget_sample_rows`` rows, default 10,000, on the
    tables each migration reaches, and extrapolated). Rule: estimated total >
    ``budget_warn_ratio`` (0.5) x limit -> :class:`DosqliteBudgetWarning`; >
    ``budget_fail_ratio`` (1.0) x limit -> CheckFailure. The
    estimate is stored in ``ctx.extra["budget"]`` (a :class:`BudgetEstimate`;
    ``.per_migration`` is the per-migration dict) for reports.
    """
    limit = float(ctx.setting("budget_seconds", 30.0))
    rows = int(ctx.setting("budget_rows", 100_000))
    sample = int(ctx.setting("budget_sample_rows", 10_000))
    cap = float(ctx.setting("budget_measure_cap", 1.0))
    warn_ratio = float(ctx.setting("budget_warn_ratio", 0.5))
    fail_ratio = float(ctx.setting("budget_fail_ratio", 1.0))
    est = estimate_startup(
        ctx.bundle,
        rows=rows,
        sample_rows=sample,
        images=ctx.images,
        limit_seconds=limit,
        measure_cap=cap,
        foreign_keys_off=ctx.foreign_keys_off,
    )
    ctx.extra["budget"] = est
    total = est.total
    slowest = "\n".join(
        f"{tag}: {sec:.3f} s"
        + (f" (grows like rows^{est.growth[tag]:.1f})" if tag in est.superlinear() else "")
        for tag, sec in est.slowest()
    )
    fix = (
        "Split slow data migrations (backfills, table rebuilds) so they run in batches after "
        "start-up (an alarm or a background task), or add the indexes they need first."
    )
    if est.superlinear():
        fix += (
            " A migration that grows faster than the row count usually deletes from or drops a "
            "parent table whose child foreign-key column has no index: every deleted parent "
            "row scans the child table. Create an index on the child column (or drop the child "
            "table) before it."
        )
    extra: list[tuple[str, str]] = []
    if est.failures:
        extra.append(
            (
                "Not timed (they fail on filled tables; see data_preserved)",
                "\n".join(f"{t}: {e}" for t, e in est.failures.items()),
            )
        )
    method = (
        "each migration timed on the tables it reaches (named, foreign-key children it deletes "
        "from, parents, trigger and view sources) topped up to "
        f"{', '.join(f'{n:,}' for n in est.measured)} rows and extrapolated to {rows:,} rows "
        "(linearly, or as a power law where the time grows faster than the rows; migrations "
        "that reach no existing table are not extrapolated); SQLite in memory on this machine, "
        "without the DO's storage I/O"
    )
    if total > fail_ratio * limit:
        raise CheckFailure(
            f"start-up migrations would take about {total:.1f} s with {rows:,} rows per table, "
            f"over {fail_ratio:.0%} of blockConcurrencyWhile's {limit:g} s",
            [
                ("Slowest migrations", slowest),
                ("Estimate", method),
                (
                    "On a real Durable Object",
                    "an instance at the oldest version runs every pending migration in its "
                    "constructor's blockConcurrencyWhile; past the limit the runtime resets "
                    "the object and the next request starts the same migrations again.",
                ),
                ("How to fix", fix),
                *extra,
            ],
        )
    if total > warn_ratio * limit:
        warnings.warn(
            DosqliteBudgetWarning(
                f"start-up migrations would take about {total:.1f} s with {rows:,} rows per "
                f"table ({total / limit:.0%} of blockConcurrencyWhile's {limit:g} s); slowest: "
                + "; ".join(f"{tag} {sec:.2f} s" for tag, sec in est.slowest(3))
            ),
            stacklevel=2,
        )
