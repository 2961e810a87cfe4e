"""drizzle-kit snapshots read into the schema model, and compared with migrated databases.

Self-contained tests use inline snapshots; ``../shared`` tests replay the real bundles and the
public corpus (where several projects really drifted from their snapshots: those differences
are asserted exactly, with the reason).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import EXAMPLES, shared_path
from pytest_dosqlite.bundle import load_bundle
from pytest_dosqlite.checks import CheckContext
from pytest_dosqlite.drizzle_snapshot import (
    compare,
    load_snapshot,
    matches_drizzle_snapshot,
    parse_snapshot,
)
from pytest_dosqlite.errors import BundleError, CheckFailure
from pytest_dosqlite.images import ImageCache
from pytest_dosqlite.schema import (
    Check,
    ForeignKey,
    IndexColumn,
    Schema,
    UniqueConstraint,
    introspect,
    render,
)
from test_schema import migrate_folder, new_db, query_of


def col(name: str, type_: str, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "type": type_,
        "primaryKey": kw.pop("pk", False),
        "notNull": kw.pop("notNull", False),
        "autoincrement": kw.pop("autoincrement", False),
    }
    out.update(kw)
    return out


def table(name: str, columns: list[dict[str, Any]], **parts: Any) -> dict[str, Any]:
    return {
        "name": name,
        "columns": {c["name"]: c for c in columns},
        "indexes": parts.get("indexes", {}),
        "foreignKeys": parts.get("foreignKeys", {}),
        "compositePrimaryKeys": parts.get("compositePrimaryKeys", {}),
        "uniqueConstraints": parts.get("uniqueConstraints", {}),
        "checkConstraints": parts.get("checkConstraints", {}),
    }


def snapshot(*tables: dict[str, Any], version: str = "6", **extra: Any) -> dict[str, Any]:
    snap: dict[str, Any] = {
        "version": version,
        "dialect": "sqlite",
        "id": "00000000-0000-0000-0000-000000000001",
        "prevId": "00000000-0000-0000-0000-000000000000",
        "tables": {t["name"]: t for t in tables},
        "enums": {},
        "_meta": {"schemas": {}, "tables": {}, "columns": {}},
    }
    if version == "6":
        snap["views"] = extra.pop("views", {})
        snap["internal"] = extra.pop("internal", {"indexes": {}})
    snap.update(extra)
    return snap


def load(data: dict[str, Any]) -> Schema:
    return parse_snapshot(json.dumps(data, indent=2))


# the basic project after step 6 (drizzle-kit 0.31.11 output), as SQL and as snapshot
BASIC_SQL = """
CREATE TABLE `users` (
\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
\t`name` text NOT NULL,
\t`email` text NOT NULL,
\t`bio` text DEFAULT '' NOT NULL
);
CREATE UNIQUE INDEX `users_email_unique` ON `users` (`email`);
CREATE INDEX `users_name_idx` ON `users` (`name`);
CREATE TABLE `posts` (
\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
\t`title` text NOT NULL,
\t`body` text,
\t`author_id` integer NOT NULL,
\tFOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
CREATE INDEX `posts_author_id_idx` ON `posts` (`author_id`);
"""

BASIC_SNAPSHOT = snapshot(
    table(
        "posts",
        [
            col("id", "integer", pk=True, notNull=True, autoincrement=True),
            col("title", "text", notNull=True),
            col("body", "text"),
            col("author_id", "integer", notNull=True),
        ],
        indexes={
            "posts_author_id_idx": {
                "name": "posts_author_id_idx",
                "columns": ["author_id"],
                "isUnique": False,
            }
        },
        foreignKeys={
            "posts_author_id_users_id_fk": {
                "name": "posts_author_id_users_id_fk",
                "tableFrom": "posts",
                "columnsFrom": ["author_id"],
                "tableTo": "users",
                "columnsTo": ["id"],
                "onUpdate": "no action",
                "onDelete": "cascade",
            }
        },
    ),
    table(
        "users",
        [
            col("id", "integer", pk=True, notNull=True, autoincrement=True),
            col("name", "text", notNull=True),
            col("email", "text", notNull=True),
            col("bio", "text", notNull=True, default="''"),
        ],
        indexes={
            "users_email_unique": {
                "name": "users_email_unique",
                "columns": ["email"],
                "isUnique": True,
            },
            "users_name_idx": {"name": "users_name_idx", "columns": ["name"], "isUnique": False},
        },
    ),
)


def applied(sql: str) -> Schema:
    return introspect(query_of(new_db(sql)))


# --------------------------------------------------------------------------------------------
# parsing


def test_parse_v6_snapshot_into_the_schema_model() -> None:
    s = load(BASIC_SNAPSHOT)
    assert s.table_names == ("posts", "users")
    users = s.table("users")
    assert users is not None and users.primary_key == ("id",)
    uid = users.column("id")
    assert uid is not None and uid.autoincrement and uid.notnull and uid.pk == 1
    bio = users.column("bio")
    assert bio is not None and bio.default == "''" and bio.notnull
    posts = s.table("posts")
    assert posts is not None
    assert posts.foreign_keys == (
        ForeignKey(("author_id",), "users", ("id",), "NO ACTION", "CASCADE"),
    )
    assert [(i.name, i.unique, i.columns) for i in s.indexes] == [
        ("posts_author_id_idx", False, (IndexColumn("author_id"),)),
        ("users_email_unique", True, (IndexColumn("email"),)),
        ("users_name_idx", False, (IndexColumn("name"),)),
    ]
    assert s.triggers == () and s.views == ()


def test_parse_v5_snapshot() -> None:
    v5 = copy.deepcopy(BASIC_SNAPSHOT)
    v5["version"] = "5"
    del v5["views"], v5["internal"]
    assert load(v5) == load(BASIC_SNAPSHOT)


def test_parse_composite_keys_checks_uniques_expressions_generated_views() -> None:
    snap = snapshot(
        table(
            "members",
            [
                col("team_id", "integer", notNull=True),
                col("user_id", "integer", notNull=True),
                col("role", "text", notNull=True, default="'member'"),
                col("active", "integer", notNull=True, default=True),
                col("slug", "text", generated={"as": '(lower("role"))', "type": "virtual"}),
            ],
            compositePrimaryKeys={
                "members_team_id_user_id_pk": {
                    "columns": ["team_id", "user_id"],
                    "name": "members_team_id_user_id_pk",
                }
            },
            uniqueConstraints={
                "members_role_u": {"name": "members_role_u", "columns": ["role", "team_id"]}
            },
            checkConstraints={
                "role_ck": {"name": "role_ck", "value": "\"members\".\"role\" IN ('a', 'b')"}
            },
            indexes={
                "members_lower_role": {
                    "name": "members_lower_role",
                    "columns": ['lower("role")', "user_id"],
                    "isUnique": False,
                    "where": '"members"."active" = 1',
                }
            },
        ),
        views={
            "admins": {
                "name": "admins",
                "columns": {},
                "definition": 'select "user_id" from "members" where "role" = \'a\'',
                "isExisting": False,
            },
            "legacy": {"name": "legacy", "columns": {}, "isExisting": True},
        },
        internal={
            "indexes": {
                "members_lower_role": {"columns": {'lower("role")': {"isExpression": True}}}
            }
        },
    )
    s = load(snap)
    m = s.table("members")
    assert m is not None
    assert m.primary_key == ("team_id", "user_id")
    assert [c.pk for c in m.columns] == [1, 2, 0, 0, 0]
    active, slug = m.column("active"), m.column("slug")
    assert active is not None and active.default == "true"
    assert slug is not None and slug.generated == "lower(role)" and slug.hidden == 2
    assert m.unique_constraints == (UniqueConstraint(("role", "team_id"), "members_role_u"),)
    assert m.checks == (Check("members.role IN ('a', 'b')", "role_ck"),)
    (index,) = s.indexes
    assert index.columns == (IndexColumn("lower(role)", expression=True), IndexColumn("user_id"))
    assert index.where == "members.active = 1"
    assert [v.name for v in s.views] == ["admins"]  # isExisting views are not migrations'
    assert s.views[0].definition == "SELECT user_id FROM members WHERE role = 'a'"


# --------------------------------------------------------------------------------------------
# compare


def test_compare_agrees_with_matching_sql() -> None:
    assert compare(applied(BASIC_SQL), load(BASIC_SNAPSHOT)) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "`title` text NOT NULL",
            "`title` integer NOT NULL",
            ["column posts.title: type INTEGER in the database, text in the snapshot"],
        ),
        (
            "CREATE INDEX `users_name_idx` ON `users` (`name`);",
            "",
            ["index users_name_idx: only in the snapshot"],
        ),
        (
            "ON DELETE cascade",
            "ON DELETE set null",
            [
                "foreign key posts(author_id) -> users: ON DELETE SET NULL in the database, "
                "CASCADE in the snapshot"
            ],
        ),
        (
            "ON UPDATE no action",
            "ON UPDATE restrict",
            [
                "foreign key posts(author_id) -> users: ON UPDATE RESTRICT in the database, "
                "NO ACTION in the snapshot"
            ],
        ),
        (
            "`body` text,",
            "`body` text NOT NULL,",
            ["column posts.body: nullability NOT NULL in the database, nullable in the snapshot"],
        ),
        (
            "DEFAULT '' NOT NULL",
            "DEFAULT 'n/a' NOT NULL",
            ["column users.bio: default 'n/a' in the database, '' in the snapshot"],
        ),
        (
            "`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n\t`title`",
            "`id` integer PRIMARY KEY NOT NULL,\n\t`title`",
            ["column posts.id: AUTOINCREMENT no in the database, yes in the snapshot"],
        ),
        (
            "CREATE UNIQUE INDEX `users_email_unique`",
            "CREATE INDEX `users_email_unique`",
            [
                "index users_email_unique: uniqueness not unique in the database, "
                "UNIQUE in the snapshot"
            ],
        ),
        (
            "ON `users` (`name`)",
            "ON `users` (`name`, `email`)",
            ["index users_name_idx: columns (name, email) in the database, (name) in the snapshot"],
        ),
        (
            "\t`body` text,\n",
            "",
            ["column posts.body: only in the snapshot"],
        ),
        (
            "CREATE INDEX `posts_author_id_idx`",
            "CREATE TABLE extra (x);\nCREATE INDEX `posts_author_id_idx`",
            ["table extra: only in the database"],
        ),
    ],
)
def test_compare_reports_hand_edits(old: str, new: str, expected: list[str]) -> None:
    assert old in BASIC_SQL
    assert compare(applied(BASIC_SQL.replace(old, new)), load(BASIC_SNAPSHOT)) == expected


def test_compare_normalizes_harmless_spelling() -> None:
    snap = snapshot(
        table(
            "t",
            [
                col("id", "integer", pk=True, notNull=True),
                col("flag", "integer", notNull=True, default=False),
                col("on", "integer", default=True),
                col("at", "integer", notNull=True, default="(unixepoch())"),
                col("ts", "integer", default="(strftime('%s', 'now'))"),
                col("kind", "text", default="'member'"),
                col("n", "real", default=1.5),
                col("name", "text(256)"),
            ],
            checkConstraints={"ck": {"name": "ck", "value": '"t"."n" > 0'}},
        )
    )
    # SQL written differently but meaning the same; CHECK rewritten as after a recreation
    sql = (
        'CREATE TABLE "__new_t" ("ID" INTEGER PRIMARY KEY NOT NULL, flag INTEGER NOT NULL'
        " DEFAULT 0, [on] integer DEFAULT TRUE, at integer NOT NULL DEFAULT (unixepoch()),"
        " ts integer DEFAULT (STRFTIME('%s', 'now')), kind TEXT DEFAULT \"member\","
        " n REAL DEFAULT 1.5, name TEXT (256),"
        ' CONSTRAINT ck CHECK ("__new_t"."n" > 0));'
        ' ALTER TABLE "__new_t" RENAME TO t;'
    )
    assert compare(applied(sql), load(snap)) == []
    # ... while a real difference in the same places still shows
    worse = sql.replace("DEFAULT 0,", "DEFAULT 2,").replace('"n" > 0', '"n" >= 0')
    assert compare(applied(worse), load(snap)) == [
        "column t.flag: default 2 in the database, false in the snapshot",
        "check t.ck: expression t.n >= 0 in the database, t.n > 0 in the snapshot",
    ]


def test_compare_expression_indexes_and_views() -> None:
    snap = snapshot(
        table(
            "page",
            [col("id", "integer", pk=True, notNull=True), col("slug", "text", notNull=True)],
            indexes={
                "page_lower_slug_idx": {
                    "name": "page_lower_slug_idx",
                    "columns": ['LOWER("slug")'],
                    "isUnique": True,
                },
                "page_slug_desc": {
                    "name": "page_slug_desc",
                    "columns": ['"slug" DESC'],
                    "isUnique": False,
                    "where": '"page"."id" > 10',
                },
            },
        ),
        views={
            "slugs": {
                "name": "slugs",
                "columns": {},
                "definition": 'select "slug" from "page"',
                "isExisting": False,
            }
        },
        internal={
            "indexes": {
                "page_lower_slug_idx": {"columns": {'LOWER("slug")': {"isExpression": True}}},
                "page_slug_desc": {"columns": {'"slug" DESC': {"isExpression": True}}},
            }
        },
    )
    sql = (
        "CREATE TABLE `page` (`id` integer PRIMARY KEY NOT NULL, `slug` text NOT NULL);"
        'CREATE UNIQUE INDEX `page_lower_slug_idx` ON `page` (LOWER("slug"));'
        'CREATE INDEX `page_slug_desc` ON `page` ("slug" DESC) WHERE "page"."id" > 10;'
        'CREATE VIEW `slugs` AS select "slug" from "page";'
    )
    assert compare(applied(sql), load(snap)) == []
    unmarked = copy.deepcopy(snap)  # older snapshots do not mark expression terms
    unmarked["internal"] = {"indexes": {}}
    assert compare(applied(sql), load(unmarked)) == []
    changed = sql.replace('LOWER("slug")', 'UPPER("slug")').replace('from "page"', "from page p")
    assert compare(applied(changed), load(snap)) == [
        "index page_lower_slug_idx: columns (UPPER(slug)) in the database, "
        "(LOWER(slug)) in the snapshot",
        "view slugs: definition SELECT slug FROM page p in the database, "
        "SELECT slug FROM page in the snapshot",
    ]


def test_compare_ignores_what_snapshots_cannot_express() -> None:
    sql = (
        "CREATE TABLE t (`id` integer PRIMARY KEY NOT NULL, `b` text COLLATE NOCASE,"
        " `a` text) STRICT;"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;"
    )
    snap = snapshot(
        table(
            "t",
            [col("id", "integer", pk=True, notNull=True), col("a", "text"), col("b", "text")],
        )
    )
    assert compare(applied(sql), load(snap)) == []


def test_render_of_a_snapshot() -> None:
    text = render(load(BASIC_SNAPSHOT))
    assert text.startswith(
        "CREATE TABLE posts (\n"
        "  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,\n"
        "  title TEXT NOT NULL,\n"
        "  body TEXT,\n"
        "  author_id INTEGER NOT NULL,\n"
        "  FOREIGN KEY (author_id) REFERENCES users(id) ON UPDATE NO ACTION ON DELETE CASCADE\n"
        ");\n\nCREATE INDEX posts_author_id_idx ON posts (author_id);\n"
    )
    # the database built from the same SQL renders the same text
    assert render(applied(BASIC_SQL)) == text


# --------------------------------------------------------------------------------------------
# bad snapshot files


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "0003_snapshot.json"
    path.write_text('{\n  "version": "6",\n  "dialect": "sqlite",\n  "tables": {,\n}\n')
    with pytest.raises(BundleError) as info:
        load_snapshot(path)
    err = info.value
    assert err.path == path and err.line == 4
    assert str(err).startswith(f"{path}:4: invalid JSON in drizzle snapshot")


@pytest.mark.parametrize(
    ("mutate", "message", "line_of"),
    [
        (lambda s: s.update(version="8"), "unsupported drizzle snapshot version '8'", '"version"'),
        (lambda s: s.update(version="7", ddl={}), "ddl must be a JSON list", '"ddl"'),
        (lambda s: s.update(dialect="mysql"), "not a SQLite drizzle snapshot", '"dialect"'),
        (lambda s: s.update(tables=[]), "tables must be a JSON object", '"tables"'),
        (
            lambda s: s["tables"]["users"]["columns"]["bio"].update(type=5),
            "column type must be a string",
            '"type": 5',
        ),
        (
            lambda s: s["tables"]["posts"]["foreignKeys"]["posts_author_id_users_id_fk"].update(
                columnsTo="id"
            ),
            "columnsTo must be a list of strings",
            '"posts_author_id_users_id_fk"',
        ),
        (
            lambda s: s["tables"]["posts"]["foreignKeys"]["posts_author_id_users_id_fk"].update(
                onDelete=1
            ),
            "onDelete action must be a string",
            '"onDelete"',
        ),
        (
            lambda s: s["tables"]["users"]["indexes"]["users_name_idx"].update(isUnique="no"),
            "isUnique must be true or false",
            '"isUnique"',
        ),
    ],
)
def test_invalid_snapshots_raise_bundle_error(
    tmp_path: Path, mutate: Any, message: str, line_of: str
) -> None:
    data = copy.deepcopy(BASIC_SNAPSHOT)
    mutate(data)
    text = json.dumps(data, indent=2)
    path = tmp_path / "meta" / "0001_snapshot.json"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(BundleError) as info:
        load_snapshot(path)
    assert message in str(info.value)
    assert info.value.path == path
    line = info.value.line
    assert line is not None and line_of in text.splitlines()[line - 1]


def test_unreadable_snapshot(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="cannot read drizzle snapshot"):
        load_snapshot(tmp_path / "missing.json")


# --------------------------------------------------------------------------------------------
# the real bundles


def _last_snapshot(folder: Path, idx: int) -> Path:
    return folder / "meta" / f"{idx:04d}_snapshot.json"


@pytest.mark.shared
def test_every_shared_bundle_matches_its_snapshots() -> None:
    root = shared_path("bundles")
    folders = sorted(p / "drizzle" for p in root.iterdir() if (p / "drizzle").is_dir())
    assert len(folders) >= 7
    for folder in folders:
        entries = json.loads((folder / "meta" / "_journal.json").read_text())["entries"]
        for entry in entries:  # every prefix against its own snapshot
            conn = new_db()
            migrate_folder(conn, folder, upto=entry["idx"])
            snap = load_snapshot(_last_snapshot(folder, entry["idx"]))
            assert compare(introspect(query_of(conn)), snap) == [], (folder, entry["tag"])


@pytest.mark.shared
@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "0002_add_posts.sql",
            "`title` text NOT NULL",
            "`title` integer NOT NULL",
            ["column posts.title: type INTEGER in the database, text in the snapshot"],
        ),
        (  # step 4 recreates users from scratch: an edit to 0000 would not survive
            "0003_bio_not_null.sql",
            "`bio` text DEFAULT '' NOT NULL",
            "`bio` text DEFAULT 'none' NOT NULL",
            ["column users.bio: default 'none' in the database, '' in the snapshot"],
        ),
        (
            "0003_bio_not_null.sql",
            "CREATE INDEX `users_name_idx` ON `users` (`name`);",
            "SELECT 1;",
            ["index users_name_idx: only in the snapshot"],
        ),
        (
            "0002_add_posts.sql",
            "ON DELETE cascade",
            "ON DELETE restrict",
            [
                "foreign key posts(author_id) -> users: ON DELETE RESTRICT in the database, "
                "CASCADE in the snapshot"
            ],
        ),
    ],
)
def test_hand_edited_real_bundle_is_reported(
    tmp_path: Path, file: str, old: str, new: str, expected: list[str]
) -> None:
    folder = tmp_path / "drizzle"
    shutil.copytree(shared_path("bundles", "basic-step6", "drizzle"), folder)
    sql = folder / file
    assert old in sql.read_text()
    sql.write_text(sql.read_text().replace(old, new))
    conn = new_db()
    migrate_folder(conn, folder)
    assert compare(introspect(query_of(conn)), load_snapshot(_last_snapshot(folder, 5))) == (
        expected
    )


# drizzle-kit writes ``ALTER TABLE x ADD c ... REFERENCES p(id)`` for a new FK column: the
# ON DELETE / ON UPDATE actions its snapshot records are silently dropped from the SQL.
_ADD_COLUMN_FK_DROPS_ACTION = "ADD COLUMN ... REFERENCES loses the snapshot's ON DELETE"

CORPUS: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("GlennMm__typescript_backend_template/drizzle/main", {}, [], "clean"),
    (
        "GlennMm__typescript_backend_template/drizzle/tenant",
        {},
        [
            "foreign key customers(branch_id) -> branches: ON DELETE NO ACTION in the database, "
            "CASCADE in the snapshot",
            "foreign key payments(shift_id) -> shifts: ON DELETE NO ACTION in the database, "
            "SET NULL in the snapshot",
        ],
        _ADD_COLUMN_FK_DROPS_ACTION + " (0003, 0004)",
    ),
    ("Litengat__uno/drizzle", {}, [], "clean"),
    ("jhonsfran1165__unprice/apps/api/drizzle", {}, [], "clean"),
    ("nicholasgriffintn__sprintjam.co.uk/apps/room-worker/drizzle", {}, [], "clean"),
    ("nicholasgriffintn__sprintjam.co.uk/apps/standup-worker/drizzle", {}, [], "clean"),
    ("nicholasgriffintn__sprintjam.co.uk/apps/wheel-worker/drizzle", {}, [], "clean"),
    (
        "nicholasgriffintn__sprintjam.co.uk/apps/auth-worker/drizzle",
        {},
        [
            "table standup_session_stats: only in the snapshot",
            "column teams.slug: only in the database",
            "index teams_slug_unique: only in the database",
        ],
        "journal diverged from disk: meta/0015_snapshot.json belongs to the orphan "
        "0015_cuddly_unicorn.sql, not to the journal's hand-written 0015_team_slugs",
    ),
    (
        "karakeep-app__karakeep/packages/db/drizzle",
        {},
        [
            "column apiKey.scopes: default '[\"fullaccess\"]' in the database, "
            "none in the snapshot",
            "column bookmarkLists.type: default 'manual' in the database, none in the snapshot",
            "column bookmarks.type: default 'text' in the database, none in the snapshot",
            "column bookmarks.lastSavedAt: default 0 in the database, none in the snapshot",
            "column tagsOnBookmarks.attachedAt: type TEXT in the database, integer in the snapshot",
            "column tagsOnBookmarks.attachedBy: nullability nullable in the database, "
            "NOT NULL in the snapshot",
        ],
        "hand-written ADD COLUMN ... DEFAULT (0025, 0037, 0083, 0092) that the schema.ts never "
        "got; and snapshot 0001 changed tagsOnBookmarks' column types with no SQL to do it",
    ),
    (
        "fkrein1__crewhelm/apps/worker/control-plane-migrations",
        {"foreign_keys": False},  # its own runner turns FKs off outside the transaction
        [
            "foreign key tool_approvals(grant_id) -> capability_grants: ON DELETE NO ACTION in "
            "the database, RESTRICT in the snapshot"
        ],
        _ADD_COLUMN_FK_DROPS_ACTION + " (0006)",
    ),
    (
        "nicholasgriffintn__bitwobbly.com/packages/shared/drizzle",
        {"skip_missing": True},  # journal entry 0007 has no .sql (a real defect)
        [
            "foreign key monitors(group_id) -> monitor_groups: ON DELETE NO ACTION in the "
            "database, SET NULL in the snapshot"
        ],
        _ADD_COLUMN_FK_DROPS_ACTION + " (0010)",
    ),
    ("openstatusHQ__openstatus/packages/db/drizzle", {"upto": 2}, [], "clean up to 0002"),
    (
        "openstatusHQ__openstatus/packages/db/drizzle",
        {"upto": 3},
        [
            "column incident.workspace_id: nullability NOT NULL in the database, "
            "nullable in the snapshot",
            "foreign key incident(workspace_id) -> workspace: ON DELETE CASCADE in the database, "
            "NO ACTION in the snapshot",
        ],
        "0003 is a hand-written recreation of incident with NOT NULL and ON DELETE cascade "
        "that the schema never declared (from 0041 on it also uses libSQL-only ALTER COLUMN)",
    ),
]


@pytest.mark.shared
@pytest.mark.parametrize(
    ("rel", "options", "expected", "why"), CORPUS, ids=[f"{c[0]}-{c[1]}" for c in CORPUS]
)
def test_corpus_bundles_against_their_last_snapshot(
    rel: str, options: dict[str, Any], expected: list[str], why: str
) -> None:
    folder = shared_path("corpus", *rel.split("/"))
    conn = new_db()
    if not options.get("foreign_keys", True):
        conn.execute("PRAGMA foreign_keys=OFF")
    migrate_folder(
        conn, folder, upto=options.get("upto"), skip_missing=options.get("skip_missing", False)
    )
    entries = json.loads((folder / "meta" / "_journal.json").read_text())["entries"]
    last = options.get("upto", entries[-1]["idx"])
    assert compare(introspect(query_of(conn)), load_snapshot(_last_snapshot(folder, last))) == (
        expected
    ), why


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_broken_snapshot_gives_bundle_error_or_a_schema(data: st.DataObject) -> None:
    snap = copy.deepcopy(BASIC_SNAPSHOT)
    path = data.draw(st.sampled_from(_paths(snap)[1:]))
    value = data.draw(_JSON)
    node = snap
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        result = parse_snapshot(json.dumps(snap, indent=2), path="meta/0005_snapshot.json")
    except BundleError as e:
        assert str(e).startswith("meta/0005_snapshot.json")
    else:
        assert isinstance(result, Schema)
        render(result)
        compare(applied(BASIC_SQL), result)


def test_a_byte_order_mark_is_read_past() -> None:
    # bundle_integrity warns about it; the schema comparison itself goes on
    text = json.dumps(BASIC_SNAPSHOT, indent=2)
    assert parse_snapshot("\ufeff" + text) == parse_snapshot(text)
    with pytest.raises(BundleError) as exc:
        parse_snapshot("\ufeff{\n  oops\n}", path="meta/0001_snapshot.json")
    assert exc.value.line == 2


# --------------------------------------------------------------------------------------------
# drizzle-kit v1 (snapshot version "7"): bundles written by drizzle-kit 1.0.0-rc.5 `generate`
# (bundle-v1-drizzle-kit, bundle-v1-kit-features) and `up` of example_project (bundle-v1-kit-up)

V1_KIT = ("bundle-v1-drizzle-kit", "bundle-v1-kit-up", "bundle-v1-kit-features")


@pytest.mark.parametrize("name", V1_KIT)
def test_drizzle_kit_v1_snapshots_match_what_their_sql_builds(name: str) -> None:
    # version "7" was refused: no drizzle-kit v1 project could pass this check
    bundle = load_bundle(EXAMPLES / name)
    assert bundle.format == "v1"
    matches_drizzle_snapshot(CheckContext(bundle=bundle, images=ImageCache()))


def test_parse_v7_snapshot_into_the_schema_model() -> None:
    bundle = load_bundle(EXAMPLES / "bundle-v1-kit-features")
    snapshot = bundle.migrations[-1].snapshot
    assert snapshot is not None
    s = load_snapshot(snapshot)
    orgs, members = s.table("orgs"), s.table("members")
    assert orgs is not None and members is not None
    assert orgs.primary_key == ("id",) and members.primary_key == ("org_id", "user_id")
    assert [u.columns for u in orgs.unique_constraints] == [("slug",)]
    assert [u.columns for u in members.unique_constraints] == [("email", "role")]
    assert [c.expr for c in orgs.checks] == ["seats > 0"]
    slug_lower = orgs.column("slug_lower")
    assert slug_lower is not None and slug_lower.hidden == 2 and slug_lower.generated
    plan = orgs.column("plan")
    assert plan is not None and plan.default == "'free'" and plan.notnull
    assert members.foreign_keys == (
        ForeignKey(("org_id",), "orgs", ("id",), "NO ACTION", "CASCADE"),
    )
    by_name = {i.name: i for i in s.indexes}
    assert by_name["members_lower_email"].columns[0].expression
    assert by_name["orgs_active_idx"].where is not None
    assert [v.name for v in s.views] == ["active_orgs"]


def test_v7_snapshot_finds_a_hand_edit(tmp_path: Path) -> None:
    out = tmp_path / "drizzle"
    shutil.copytree(EXAMPLES / "bundle-v1-kit-features", out)
    sql = next(out.glob("*/migration.sql"))
    sql.write_text(
        sql.read_text() + "\n--> statement-breakpoint\nALTER TABLE `orgs` ADD `extra` text;"
    )
    with pytest.raises(CheckFailure) as info:
        matches_drizzle_snapshot(CheckContext(bundle=load_bundle(out), images=ImageCache()))
    assert "column orgs.extra: only in the database" in str(info.value)
