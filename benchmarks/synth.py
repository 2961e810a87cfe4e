"""Synthetic drizzle-kit bundles for the benchmarks: realistic shape, any length, reproducible.

Why: the corpus tops out at 94 migrations; a performance claim about "linear in the bundle"
needs 100, 300 and 1000. The generator keeps a schema model and writes what drizzle-kit 0.31
writes for SQLite with the durable-sqlite driver: ``NNNN_word_word.sql`` with
``--> statement-breakpoint`` between statements, ``meta/_journal.json``, ``migrations.js``
importing every file, and one ``meta/NNNN_snapshot.json`` per migration (id/prevId chain).

Mix of migrations (seeded ``random.Random``): new tables with foreign keys (cascade or set null)
and indexes, ``ALTER TABLE ... ADD`` columns (nullable, or NOT NULL with a default), indexes
added and dropped, custom ``UPDATE`` backfills (``--custom`` files, snapshot unchanged), and
drizzle-kit table recreations (``__new_X``, ``PRAGMA foreign_keys=OFF``, INSERT ... SELECT,
DROP, RENAME) of leaf tables, the ones no foreign key points at. Every generated bundle migrates
cleanly on a fresh Durable Object and upgrades from every version with data.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BP = "--> statement-breakpoint"
ORIGIN = "00000000-0000-0000-0000-000000000000"
WORDS = [
    "amber",
    "bold",
    "brave",
    "calm",
    "clever",
    "cosmic",
    "daring",
    "eager",
    "fancy",
    "gentle",
    "happy",
    "icy",
    "jolly",
    "keen",
    "lively",
    "lucky",
    "mellow",
    "merry",
    "nimble",
    "noisy",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "shiny",
    "silent",
    "smooth",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "zany",
]
NOUNS = [
    "falcon",
    "tiger",
    "otter",
    "raven",
    "panda",
    "lynx",
    "heron",
    "bison",
    "cobra",
    "dingo",
    "eagle",
    "gecko",
    "hyena",
    "ibis",
    "jackal",
    "koala",
    "lemur",
    "moose",
    "newt",
    "orca",
    "puma",
    "quail",
    "rhino",
    "sloth",
    "tapir",
    "urchin",
    "viper",
    "walrus",
    "yak",
    "zebra",
]
ENTITIES = [
    "account",
    "project",
    "task",
    "comment",
    "label",
    "file",
    "invite",
    "session",
    "device",
    "team",
    "member",
    "board",
    "card",
    "event",
    "note",
    "tag",
    "alert",
    "rule",
    "report",
    "webhook",
    "token",
    "audit",
    "feed",
    "item",
    "asset",
    "page",
    "plan",
    "quota",
]
CUSTOM_HEADER = "-- Custom SQL migration file, put your code below! --"


@dataclass
class Column:
    name: str
    type: str
    not_null: bool = False
    default: str | None = None  # SQL text of the default
    pk: bool = False
    autoincrement: bool = False

    def ddl(self) -> str:
        parts = [f"`{self.name}` {self.type}"]
        if self.pk:
            parts.append("PRIMARY KEY")
            if self.autoincrement:
                parts.append("AUTOINCREMENT")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if self.not_null:
            parts.append("NOT NULL")
        return " ".join(parts)

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "primaryKey": self.pk,
            "notNull": self.not_null,
            "autoincrement": self.autoincrement,
        }
        if self.default is not None:
            d = self.default
            out["default"] = int(d) if d.lstrip("-").isdigit() else d
        return out


@dataclass
class ForeignKey:
    column: str
    parent: str
    on_delete: str


@dataclass
class Index:
    name: str
    columns: list[str]
    unique: bool = False

    def ddl(self, table: str) -> str:
        cols = ", ".join(f"`{c}`" for c in self.columns)
        kind = "UNIQUE INDEX" if self.unique else "INDEX"
        return f"CREATE {kind} `{self.name}` ON `{table}` ({cols});"


@dataclass
class Table:
    name: str
    columns: list[Column]
    fks: list[ForeignKey] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    #: bumped on every change (the snapshot text of the table is cached per revision)
    rev: int = 0

    def ddl(self, as_name: str | None = None) -> str:
        lines = [c.ddl() for c in self.columns]
        lines += [
            f"FOREIGN KEY (`{fk.column}`) REFERENCES `{fk.parent}`(`id`) ON UPDATE no action "
            f"ON DELETE {fk.on_delete}"
            for fk in self.fks
        ]
        body = ",\n\t".join(lines)
        return f"CREATE TABLE `{as_name or self.name}` (\n\t{body}\n);\n"

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "columns": {c.name: c.snapshot() for c in self.columns},
            "indexes": {
                i.name: {"name": i.name, "columns": list(i.columns), "isUnique": i.unique}
                for i in self.indexes
            },
            "foreignKeys": {
                f"{self.name}_{fk.column}_{fk.parent}_id_fk": {
                    "name": f"{self.name}_{fk.column}_{fk.parent}_id_fk",
                    "tableFrom": self.name,
                    "tableTo": fk.parent,
                    "columnsFrom": [fk.column],
                    "columnsTo": ["id"],
                    "onDelete": fk.on_delete,
                    "onUpdate": "no action",
                }
                for fk in self.fks
            },
            "compositePrimaryKeys": {},
            "uniqueConstraints": {},
            "checkConstraints": {},
        }


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.tables: dict[str, Table] = {}
        self.counter = 0
        self._texts: dict[str, tuple[int, str]] = {}

    def fresh_name(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def referenced(self, name: str) -> bool:
        return any(fk.parent == name for t in self.tables.values() for fk in t.fks)

    # ------------------------------------------------------------------ migration kinds
    def create_table(self) -> list[str]:
        rng = self.rng
        name = self.fresh_name(rng.choice(ENTITIES))
        cols = [
            Column("id", "integer", True, None, True, True),
            Column("name", "text", True),
            Column("value", "integer", True, "0"),
            Column("note", "text"),
            Column("created_at", "integer", True, "(unixepoch())"),
        ]
        table = Table(name, cols)
        parents = list(self.tables)
        if parents and rng.random() < 0.8:
            parent = rng.choice(parents[-40:])
            if rng.random() < 0.7:
                table.columns.insert(1, Column(f"{parent}_id", "integer", True))
                table.fks.append(ForeignKey(f"{parent}_id", parent, "cascade"))
            else:
                table.columns.insert(1, Column(f"{parent}_id", "integer"))
                table.fks.append(ForeignKey(f"{parent}_id", parent, "set null"))
            table.indexes.append(Index(f"{name}_{parent}_id_idx", [f"{parent}_id"]))
        if rng.random() < 0.3:
            table.indexes.append(Index(f"{name}_name_unique", ["name"], unique=True))
        self.tables[name] = table
        return [table.ddl()] + [i.ddl(name) for i in table.indexes]

    def add_column(self) -> list[str]:
        rng = self.rng
        table = self.tables[rng.choice(list(self.tables))]
        name = self.fresh_name("col")
        if rng.random() < 0.6:
            col = Column(name, "text")
        else:
            col = Column(name, "integer", True, str(rng.choice((0, 1, 10))))
        table.columns.append(col)
        table.rev += 1
        out = [f"ALTER TABLE `{table.name}` ADD {col.ddl()};"]
        if rng.random() < 0.25:
            idx = Index(f"{table.name}_{name}_idx", [name])
            table.indexes.append(idx)
            out.append(idx.ddl(table.name))
        return out

    def add_index(self) -> list[str]:
        rng = self.rng
        table = self.tables[rng.choice(list(self.tables))]
        cols = [c.name for c in table.columns if not c.pk]
        indexed = {tuple(i.columns) for i in table.indexes}
        free = [c for c in cols if (c,) not in indexed]
        if not free:
            return self.add_column()
        col = rng.choice(free)
        idx = Index(f"{table.name}_{col}_idx", [col])
        table.indexes.append(idx)
        table.rev += 1
        return [idx.ddl(table.name)]

    def drop_index(self) -> list[str] | None:
        candidates = [
            (t, i)
            for t in self.tables.values()
            for i in t.indexes
            if not i.unique and not any(fk.column in i.columns for fk in t.fks)
        ]
        if not candidates:
            return None
        table, idx = self.rng.choice(candidates)
        table.indexes.remove(idx)
        table.rev += 1
        return [f"DROP INDEX `{idx.name}`;"]

    def backfill(self) -> tuple[list[str], bool] | None:
        targets = [
            (t, c)
            for t in self.tables.values()
            for c in t.columns
            if c.type == "text" and not c.not_null and c.name != "note"
        ]
        if not targets:
            return None
        table, col = self.rng.choice(targets[-60:])
        sql = (
            f"{CUSTOM_HEADER}\nUPDATE `{table.name}` SET `{col.name}` = 'n/a' "
            f"WHERE `{col.name}` IS NULL;"
        )
        return [sql], True

    def recreate_leaf(self) -> list[str] | None:
        leaves = [t for t in self.tables.values() if not self.referenced(t.name)]
        if not leaves:
            return None
        table = self.rng.choice(leaves[-60:])
        # the change drizzle-kit rebuilds a table for: a column's default
        value = next(c for c in table.columns if c.name == "value")
        value.default = str(int(value.default or "0") + 1)
        table.rev += 1
        cols = ", ".join(f'"{c.name}"' for c in table.columns)
        out = [
            "PRAGMA foreign_keys=OFF;",
            table.ddl(f"__new_{table.name}"),
            f"INSERT INTO `__new_{table.name}`({cols}) SELECT {cols} FROM `{table.name}`;",
            f"DROP TABLE `{table.name}`;",
            f"ALTER TABLE `__new_{table.name}` RENAME TO `{table.name}`;",
            "PRAGMA foreign_keys=ON;",
        ]
        out += [i.ddl(table.name) for i in table.indexes]
        return out

    def migration(self, i: int) -> tuple[list[str], bool]:
        """Statements of migration ``i`` and whether it is a custom (hand-written) one."""
        if i == 0 or len(self.tables) < 3:
            return self.create_table(), False
        r = self.rng.random()
        if r < 0.35:
            return self.create_table(), False
        if r < 0.65:
            return self.add_column(), False
        if r < 0.73:
            return self.add_index(), False
        if r < 0.78:
            dropped = self.drop_index()
            if dropped:
                return dropped, False
            return self.add_index(), False
        if r < 0.88:
            filled = self.backfill()
            if filled:
                return filled
            return self.add_column(), False
        rebuilt = self.recreate_leaf()
        if rebuilt:
            return rebuilt, False
        return self.create_table(), False

    def snapshot_text(self, ident: str, prev: str) -> str:
        """``json.dumps(snapshot, indent=2)``, with each table's part cached per revision
        (1000 snapshots of ~500 tables: dumping them whole took most of the generation)."""
        doc = {
            "version": "6",
            "dialect": "sqlite",
            "id": ident,
            "prevId": prev,
            "tables": "\x00tables",
            "views": {},
            "enums": {},
            "_meta": {"schemas": {}, "tables": {}, "columns": {}},
            "internal": {"indexes": {}},
        }
        parts = []
        for name in sorted(self.tables):
            table = self.tables[name]
            cached = self._texts.get(name)
            if cached is None or cached[0] != table.rev:
                text = json.dumps(table.snapshot(), indent=2).replace("\n", "\n    ")
                cached = self._texts[name] = (table.rev, f"    {json.dumps(name)}: {text}")
            parts.append(cached[1])
        tables = "{\n" + ",\n".join(parts) + "\n  }" if parts else "{}"
        return json.dumps(doc, indent=2).replace('"\\u0000tables"', tables, 1)


def generate_bundle(
    out: Path,
    count: int,
    *,
    seed: int = 1,
    base_when: int = 1_700_000_000_000,
    seed_rows: int = 0,
) -> Path:
    """Write a bundle of ``count`` migrations into ``out`` (created); returns ``out``.

    ``seed_rows``: the last migration is instead a hand-written data migration of that many
    ``INSERT`` statements into the first table, one per ``--> statement-breakpoint`` chunk
    (lookup data shipped as a migration: the huge-file case).
    """
    gen = _Generator(seed)
    id_rng = random.Random(seed * 7919 + count)
    (out / "meta").mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    tags: list[str] = []
    when = base_when
    prev = ORIGIN
    for i in range(count):
        if seed_rows and i == count - 1 and gen.tables:
            first = next(iter(gen.tables))
            rows = [
                f"INSERT INTO `{first}` (`name`) VALUES ('seed-{r}');" for r in range(seed_rows)
            ]
            statements, custom = [CUSTOM_HEADER + "\n" + f"\n{BP}\n".join(rows)], True
        else:
            statements, custom = gen.migration(i)
        tag = f"{i:04d}_{gen.rng.choice(WORDS)}_{gen.rng.choice(NOUNS)}"
        sql = statements[0] if custom else f"{BP}\n".join(s.rstrip("\n") for s in statements)
        (out / f"{tag}.sql").write_text(sql, encoding="utf-8")
        when += gen.rng.randint(60_000, 5_000_000)
        entries.append({"idx": i, "version": "6", "when": when, "tag": tag, "breakpoints": True})
        ident = str(uuid.UUID(int=id_rng.getrandbits(128), version=4))
        (out / "meta" / f"{i:04d}_snapshot.json").write_text(
            gen.snapshot_text(ident, prev), encoding="utf-8"
        )
        prev = ident
        tags.append(tag)
    journal = {"version": "7", "dialect": "sqlite", "entries": entries}
    (out / "meta" / "_journal.json").write_text(json.dumps(journal, indent=2), encoding="utf-8")
    imports = "\n".join(f"import m{i:04d} from './{tag}.sql';" for i, tag in enumerate(tags))
    keys = ",\n".join(f"m{i:04d}" for i in range(len(tags)))
    (out / "migrations.js").write_text(
        f"import journal from './meta/_journal.json';\n{imports}\n\n  export default {{\n"
        f"    journal,\n    migrations: {{\n      {keys}\n    }}\n  }}\n  ",
        encoding="utf-8",
    )
    return out


DRIZZLE_CONFIG = """\
import {{ defineConfig }} from 'drizzle-kit';

export default defineConfig({{
  out: './{out}',
  schema: './src/db/schema.ts',
  dialect: 'sqlite',
  driver: 'durable-sqlite',
}});
"""

WRANGLER = """\
// generated by benchmarks/synth.py
{{
  "name": "bench-{name}",
  "main": "src/index.ts",
  "compatibility_date": "2025-09-01",
  "durable_objects": {{ "bindings": [{{ "name": "DB", "class_name": "{cls}" }}] }},
  "migrations": [{{ "tag": "v1", "new_sqlite_classes": ["{cls}"] }}],
  "rules": [{{ "type": "Text", "globs": ["**/*.sql"], "fallthrough": true }}]
}}
"""


def generate_project(root: Path, bundles: int, migrations: int, *, seed: int = 11) -> list[Path]:
    """A Worker monorepo: ``packages/svcN`` with its own wrangler + drizzle config and bundle."""
    out: list[Path] = []
    for b in range(bundles):
        pkg = root / "packages" / f"svc{b}"
        (pkg / "src").mkdir(parents=True, exist_ok=True)
        cls = f"Svc{b}Object"
        (pkg / "wrangler.jsonc").write_text(WRANGLER.format(name=b, cls=cls), encoding="utf-8")
        (pkg / "drizzle.config.ts").write_text(DRIZZLE_CONFIG.format(out="drizzle"), "utf-8")
        (pkg / "src" / "index.ts").write_text(
            "import migrations from '../drizzle/migrations';\n"
            f"export class {cls} {{}}\nexport default {{ migrations }};\n",
            encoding="utf-8",
        )
        out.append(generate_bundle(pkg / "drizzle", migrations, seed=seed + b))
    return out
