"""Tests of the DO migration lint: every rule fires where it should, with the right line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from conftest import EXAMPLES, shared_path
from pytest_dosqlite.bundle import Bundle, Migration
from pytest_dosqlite.checks import CheckContext, Settings
from pytest_dosqlite.errors import CheckFailure
from pytest_dosqlite.lint import (
    RULES,
    DosqliteLintWarning,
    Finding,
    baseline_tags,
    lint_bundle,
    lint_check,
)

BP = "--> statement-breakpoint\n"

# ----------------------------------------------------------------------------- helpers


def make_bundle(root: Path, *sqls: str | tuple[str, bool]) -> Bundle:
    """A bundle of migrations ``0000_m0`` ... written as real .sql files under ``root``."""
    migrations = []
    for i, item in enumerate(sqls):
        sql, breakpoints = (item, True) if isinstance(item, str) else item
        tag = f"{i:04d}_m{i}"
        path = root / f"{tag}.sql"
        path.write_bytes(sql.encode("utf-8"))
        migrations.append(
            Migration(
                idx=i,
                tag=tag,
                when=1_700_000_000_000 + i,
                key=f"m{i:04d}",
                sql=sql,
                path=path,
                breakpoints=breakpoints,
            )
        )
    return Bundle(root=root, format="durable-sqlite", migrations=tuple(migrations))


def read_bundle(root: Path) -> Bundle:
    """``load_bundle`` when it is implemented, else a minimal journal + .sql reader."""
    from pytest_dosqlite import bundle as bundle_mod

    try:
        return bundle_mod.load_bundle(root)
    except NotImplementedError:
        pass
    journal = json.loads((root / "meta" / "_journal.json").read_text(encoding="utf-8"))
    migrations = []
    for e in journal["entries"]:
        path = root / f"{e['tag']}.sql"
        migrations.append(
            Migration(
                idx=e["idx"],
                tag=e["tag"],
                when=e["when"],
                key=f"m{e['idx']:04d}",
                sql=path.read_text(encoding="utf-8"),
                path=path,
                breakpoints=bool(e.get("breakpoints", True)),
            )
        )
    return Bundle(root=root, format="journal", migrations=tuple(migrations))


def of(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def lint(tmp_path: Path, *sqls: str | tuple[str, bool], **kw: object) -> list[Finding]:
    return lint_bundle(make_bundle(tmp_path, *sqls), **kw)  # type: ignore[arg-type]


USERS = (
    "CREATE TABLE `users` (\n\t`id` integer PRIMARY KEY NOT NULL,\n"
    "\t`name` text NOT NULL,\n\t`bio` text\n);\n"
)
POSTS_CASCADE = (
    "CREATE TABLE `posts` (\n\t`id` integer PRIMARY KEY NOT NULL,\n"
    "\t`author_id` integer NOT NULL,\n"
    "\tFOREIGN KEY (`author_id`) REFERENCES `users`(`id`) "
    "ON UPDATE no action ON DELETE cascade\n);\n"
)
USERS_LOG_TRIGGER = (
    "CREATE TRIGGER `users_log` AFTER INSERT ON `users` BEGIN\n"
    "  INSERT INTO `log` VALUES (NEW.`name`);\nEND;"
)
USERS_WITH_LOG_TRIGGER = USERS + BP + "CREATE TABLE `log` (`msg` text);" + BP + USERS_LOG_TRIGGER
RECREATE_USERS = (
    "PRAGMA foreign_keys=OFF;"
    + BP
    + "CREATE TABLE `__new_users` (\n\t`id` integer PRIMARY KEY NOT NULL,\n"
    "\t`name` text NOT NULL,\n\t`bio` text DEFAULT '' NOT NULL\n);\n"
    + BP
    + 'INSERT INTO `__new_users`("id", "name", "bio") SELECT "id", "name", COALESCE("bio", \'\') '
    "FROM `users`;"
    + BP
    + "DROP TABLE `users`;"
    + BP
    + "ALTER TABLE `__new_users` RENAME TO `users`;"
    + BP
    + "PRAGMA foreign_keys=ON;"
)

# ------------------------------------------------------------------------------ registry


def test_rule_registry_is_complete_and_stable() -> None:
    ids = list(RULES)
    assert ids == [f"DO{i:03d}" for i in range(1, len(ids) + 1)]
    assert len(ids) >= 27
    names = [r.name for r in RULES.values()]
    assert len(set(names)) == len(names)
    for rule in RULES.values():
        assert rule.severity in ("error", "warning")
        assert rule.name == rule.name.lower() and " " not in rule.name
        assert rule.summary.strip() and rule.fix.strip()
    # the ids the docs and users rely on
    assert RULES["DO001"].name == "pragma-foreign-keys"
    assert RULES["DO024"].name == "recreate-referenced-table"
    assert RULES["DO024"].severity == "error"
    assert RULES["DO019"].severity == "warning"


# ------------------------------------------------------------------- each rule fires

# (case id, migrations, rule, index of the migration, line, text the message contains)
FIRES: list[tuple[str, list[str | tuple[str, bool]], str, int, int, str]] = [
    (
        "fk-pragma-off",
        [
            "CREATE TABLE a (id integer);",
            "CREATE TABLE b (x integer);\n" + BP + "PRAGMA foreign_keys=OFF;",
        ],
        "DO001",
        1,
        3,
        "foreign_keys=OFF",
    ),
    ("begin", ["CREATE TABLE a (x);" + BP + "\nBEGIN TRANSACTION;"], "DO002", 0, 3, "BEGIN"),
    ("commit", ["CREATE TABLE a (x);" + BP + "COMMIT;"], "DO002", 0, 2, "COMMIT"),
    ("end", ["END TRANSACTION;"], "DO002", 0, 1, "END"),
    ("savepoint", ["SAVEPOINT sp;"], "DO002", 0, 1, "SAVEPOINT"),
    ("release", ["RELEASE SAVEPOINT sp;"], "DO002", 0, 1, "RELEASE"),
    ("rollback", ["ROLLBACK TO sp;"], "DO002", 0, 1, "ROLLBACK"),
    ("journal-mode", ["PRAGMA journal_mode=WAL;"], "DO003", 0, 1, "journal_mode"),
    (
        "user-version",
        ["CREATE TABLE a (x);" + BP + "PRAGMA user_version = 3;"],
        "DO003",
        0,
        2,
        "user_version",
    ),
    ("bad-bool", ["PRAGMA foreign_keys = 2;"], "DO003", 0, 1, "refuses this argument"),
    ("temp-schema-pragma", ["PRAGMA temp.foreign_keys = ON;"], "DO003", 0, 1, "foreign_keys"),
    (
        "power",
        ["CREATE TABLE t (a real);" + BP + "\n\nUPDATE t SET a = power(a, 2);"],
        "DO004",
        0,
        4,
        "not authorized to use function: power",
    ),
    (
        "log10",
        ["CREATE TABLE t (a real);\n" + BP + "UPDATE t SET a = log10(a);"],
        "DO004",
        0,
        3,
        "log10",
    ),
    (
        "regexp-op",
        ["CREATE TABLE t (a text);" + BP + "DELETE FROM t WHERE a REGEXP 'x';"],
        "DO004",
        0,
        2,
        "no such function: regexp",
    ),
    (
        "md5",
        ["CREATE TABLE t (a text);" + BP + "UPDATE t SET a = md5(a);"],
        "DO004",
        0,
        2,
        "no such function: md5",
    ),
    ("load-extension", ["SELECT load_extension('x');"], "DO004", 0, 1, "not authorized"),
    (
        "in-default",
        ["CREATE TABLE t (a text DEFAULT (sqlite_version()));"],
        "DO004",
        0,
        1,
        "sqlite_version",
    ),
    (
        "trigger-fallback",  # sqlglot cannot parse triggers: the token scan still finds power(
        [
            "CREATE TABLE t (a real);"
            + BP
            + "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = power(2, 3); END;"
        ],
        "DO004",
        0,
        2,
        "power",
    ),
    ("attach", ["ATTACH DATABASE ':memory:' AS aux;"], "DO005", 0, 1, "ATTACH"),
    ("detach", ["DETACH aux;"], "DO005", 0, 1, "DETACH"),
    ("temp-table", ["CREATE TEMP TABLE tt (x);"], "DO006", 0, 1, "`tt`"),
    ("temporary-view", ["CREATE TEMPORARY VIEW tv AS SELECT 1;"], "DO006", 0, 1, "`tv`"),
    ("temp-schema", ["CREATE TABLE temp.tx (x);"], "DO006", 0, 1, "`tx`"),
    ("vacuum", ["CREATE TABLE a (x);" + BP + "VACUUM;"], "DO007", 0, 2, "VACUUM"),
    ("fts4", ["CREATE VIRTUAL TABLE f USING fts4(body);"], "DO008", 0, 1, "fts4"),
    ("dbstat", ["CREATE VIRTUAL TABLE s USING dbstat;"], "DO008", 0, 1, "dbstat"),
    ("cf-table", ["CREATE TABLE _cf_mine (x);"], "DO009", 0, 1, "_cf_mine"),
    ("cf-any-case", ['CREATE TABLE "_Cf_z" (x);'], "DO009", 0, 1, "_Cf_z"),
    (
        "cf-index",
        ["CREATE TABLE t (a);" + BP + "CREATE INDEX _CF_i ON t (a);"],
        "DO009",
        0,
        2,
        "_CF_i",
    ),
    (
        "cf-rename",
        ["CREATE TABLE t (a);", "ALTER TABLE t RENAME TO _cf_t;"],
        "DO009",
        1,
        1,
        "_cf_t",
    ),
    (
        "sqlite-name",
        ["CREATE TABLE sqlite_mine (x);"],
        "DO009",
        0,
        1,
        "reserved for internal use: sqlite_mine",
    ),
    (
        "too-long",
        ["CREATE TABLE t (a text);" + BP + "INSERT INTO t VALUES ('" + "a" * 100_000 + "');"],
        "DO010",
        0,
        2,
        "100,000",
    ),
    (
        "too-long-utf8",  # 60,000 characters, 120,000 bytes
        ["CREATE TABLE t (a text);" + BP + "INSERT INTO t VALUES ('" + "é" * 60_000 + "');"],
        "DO010",
        0,
        2,
        "bytes",
    ),
    (
        "columns-101",
        [
            "CREATE TABLE wide ("
            + ", ".join(f"c{i} integer" for i in range(101))
            + ", PRIMARY KEY (c0));"
        ],
        "DO011",
        0,
        1,
        "101 columns",
    ),
    (
        "add-101st",
        [
            "CREATE TABLE wide (" + ", ".join(f"c{i} integer" for i in range(100)) + ");",
            "ALTER TABLE wide ADD c100 integer;",
        ],
        "DO011",
        1,
        1,
        "101 columns",
    ),
    (
        "compound-6",
        [
            "CREATE TABLE t (a);"
            + BP
            + "INSERT INTO t "
            + " UNION ALL ".join(f"SELECT {i}" for i in range(6))
            + ";"
        ],
        "DO012",
        0,
        2,
        "6 terms",
    ),
    (
        "like-51",
        ["CREATE TABLE t (a text);" + BP + "DELETE FROM t WHERE a LIKE '" + "x" * 51 + "';"],
        "DO013",
        0,
        2,
        "51 bytes",
    ),
    (
        "glob-utf8",
        ["CREATE TABLE t (a text);" + BP + "DELETE FROM t WHERE a GLOB '" + "é" * 26 + "';"],
        "DO013",
        0,
        2,
        "52 bytes",
    ),
    (
        "custom-unedited",
        ["CREATE TABLE a (x);", "-- Custom SQL migration file, put your code below! --"],
        "DO014",
        1,
        1,
        "--custom",
    ),
    (
        "comments-only",
        ["CREATE TABLE a (x);" + BP + "\n-- nothing here\n/* really */\n"],
        "DO014",
        0,
        3,
        "only comments",
    ),
    ("trailing-breakpoint", ["CREATE TABLE a (x);\n" + BP], "DO015", 0, 2, "ends with"),
    (
        "double-breakpoint",
        ["CREATE TABLE a (x);\n" + BP + BP + "CREATE TABLE b (y);"],
        "DO015",
        0,
        2,
        "in a row",
    ),
    ("empty-file", ["CREATE TABLE a (x);", ""], "DO015", 1, 1, "empty"),
    (
        "trailing-comment",
        ["CREATE TABLE a (x);" + BP + "CREATE TABLE b (y); -- done"],
        "DO016",
        0,
        2,
        "only a comment",
    ),
    (
        "trailing-comment-line",
        ["CREATE TABLE a (x);\n-- done\n" + BP + "CREATE TABLE b (y);"],
        "DO016",
        0,
        2,
        "chunk 0",
    ),
    ("stray-semicolon", ["CREATE TABLE a (x);;"], "DO016", 0, 1, "stray `;`"),
    (
        "two-in-a-chunk",
        ["CREATE TABLE a (x);\nCREATE TABLE b (y);"],
        "DO017",
        0,
        2,
        "several statements",
    ),
    ("drop-table", ["CREATE TABLE a (x);", "\n" + "DROP TABLE `a`;"], "DO018", 1, 2, "`a`"),
    (
        "drop-column",
        ["CREATE TABLE a (x, y);", "ALTER TABLE `a` DROP COLUMN `y`;"],
        "DO019",
        1,
        1,
        "`a`.`y`",
    ),
    (
        "rename-table",
        ["CREATE TABLE a (x);", "ALTER TABLE a RENAME TO b;"],
        "DO020",
        1,
        1,
        "renamed to `b`",
    ),
    (
        "rename-column",
        ["CREATE TABLE a (x);", "ALTER TABLE a RENAME COLUMN x TO z;"],
        "DO021",
        1,
        1,
        "`a`.`x`",
    ),
    (
        "rename-column-short",
        ["CREATE TABLE a (x);", "ALTER TABLE a RENAME x TO z;"],
        "DO021",
        1,
        1,
        "`z`",
    ),
    (
        "add-not-null",
        [
            "CREATE TABLE a (x);",
            "CREATE INDEX ax ON a (x);" + BP + "ALTER TABLE `a` ADD `pos` integer NOT NULL;",
        ],
        "DO022",
        1,
        2,
        "`a`.`pos`",
    ),
    (
        "add-not-null-default-null",
        ["CREATE TABLE a (x);", "ALTER TABLE a ADD COLUMN p text NOT NULL DEFAULT NULL;"],
        "DO022",
        1,
        1,
        "Cannot add a NOT NULL column",
    ),
    (
        "unique-existing",
        ["CREATE TABLE a (x);", "CREATE UNIQUE INDEX `a_x_unique` ON `a` (`x`);"],
        "DO023",
        1,
        1,
        "`a_x_unique`",
    ),
    (
        "recreate-cascade",
        [USERS, POSTS_CASCADE, RECREATE_USERS],
        "DO024",
        2,
        9,
        "`posts.author_id ON DELETE cascade` deletes every row of `posts`",
    ),
    (
        "recreate-restrict",
        [USERS, POSTS_CASCADE.replace("cascade", "restrict"), RECREATE_USERS],
        "DO024",
        2,
        9,
        "FOREIGN KEY constraint failed",
    ),
    (
        "recreate-self-reference",
        [
            "CREATE TABLE c (id integer PRIMARY KEY,"
            " parent_id integer REFERENCES c(id) ON DELETE set null);",
            "CREATE TABLE __new_c (id integer PRIMARY KEY,"
            " parent_id integer REFERENCES c(id) ON DELETE set null, n text);"
            + BP
            + "INSERT INTO __new_c (id, parent_id) SELECT id, parent_id FROM c;"
            + BP
            + "DROP TABLE c;"
            + BP
            + "ALTER TABLE __new_c RENAME TO c;",
        ],
        "DO024",
        1,
        3,
        "self-reference",
    ),
    (
        "recreate-copies-null",
        [USERS, RECREATE_USERS.replace("COALESCE(\"bio\", '')", '"bio"')],
        "DO025",
        1,
        8,
        "`users`.`bio` is nullable",
    ),
    (
        "recreate-leaves-out-not-null",
        [
            USERS,
            "CREATE TABLE `__new_users` (`id` integer PRIMARY KEY NOT NULL,"
            " `name` text NOT NULL, `pos` integer NOT NULL);"
            + BP
            + 'INSERT INTO `__new_users`("id", "name") SELECT "id", "name" FROM `users`;'
            + BP
            + "DROP TABLE `users`;"
            + BP
            + "ALTER TABLE `__new_users` RENAME TO `users`;",
        ],
        "DO025",
        1,
        2,
        "`__new_users`.`pos` has no DEFAULT",
    ),
    (
        "drop-parent",
        [USERS, POSTS_CASCADE.replace("cascade", "no action"), "DROP TABLE `users`;"],
        "DO026",
        2,
        1,
        "`posts.author_id ON DELETE no action`",
    ),
    (
        "drop-parent-child-kept",
        [USERS, POSTS_CASCADE, "DROP TABLE `users`;"],
        "DO026",
        2,
        1,
        "deletes every row of `posts`",
    ),
    (
        "libsql-alter-column",
        ["CREATE TABLE a (x text);", 'ALTER TABLE `a` ALTER COLUMN "x" TO "x" text NOT NULL;'],
        "DO027",
        1,
        1,
        "syntax error",
    ),
    (
        "unknown-ignore",
        ["CREATE TABLE a (x);", "-- dosqlite:ignore DO999\nDROP TABLE a;"],
        "DO028",
        1,
        1,
        "DO999",
    ),
    (
        "recreate-copies-missing-column",
        [
            "CREATE TABLE `notes` (`id` integer PRIMARY KEY, `title` text);",
            "CREATE TABLE `__new_notes` (`id` integer PRIMARY KEY, `title` text, "
            "`pinned` integer DEFAULT false NOT NULL);"
            + BP
            + '\nINSERT INTO `__new_notes`("id", "title", "pinned") SELECT "id", "title", '
            '"pinned" FROM `notes`;'
            + BP
            + "\nDROP TABLE `notes`;"
            + BP
            + "\nALTER TABLE `__new_notes` RENAME TO `notes`;",
        ],
        "DO029",
        1,
        3,
        "pinned",
    ),
    (
        "returning",
        ["CREATE TABLE a (x);", "CREATE TABLE b (y);" + BP + "\nUPDATE a SET x = 1 RETURNING x;"],
        "DO030",
        1,
        3,
        "UPDATE ... RETURNING",
    ),
    (
        "returning-after-cte",
        [
            "CREATE TABLE a (x);",
            "WITH v(n) AS (SELECT 1) INSERT INTO a SELECT n FROM v RETURNING *;",
        ],
        "DO030",
        1,
        1,
        "internal error",
    ),
    (
        "or-rollback",
        ["CREATE TABLE a (x UNIQUE);", "INSERT OR ROLLBACK INTO a VALUES (1);"],
        "DO031",
        1,
        1,
        "`INSERT OR ROLLBACK`",
    ),
    (
        "update-or-rollback",
        ["CREATE TABLE a (x UNIQUE);", "UPDATE OR ROLLBACK a SET x = 2;"],
        "DO031",
        1,
        1,
        "`UPDATE OR ROLLBACK`",
    ),
    (
        "on-conflict-rollback",
        ["CREATE TABLE a (\n  x integer,\n  y text UNIQUE ON CONFLICT ROLLBACK\n);"],
        "DO031",
        0,
        1,
        "`ON CONFLICT ROLLBACK`",
    ),
    (
        "add-expression-default",
        [
            "CREATE TABLE a (x);",
            "ALTER TABLE a ADD `b` integer DEFAULT (unixepoch()) NOT NULL;"
            + BP
            + "ALTER TABLE a ADD `c` text DEFAULT CURRENT_TIMESTAMP;",
        ],
        "DO032",
        1,
        1,
        "DEFAULT (unixepoch()), which is not a constant",
    ),
    (
        "recreate-drops-trigger",
        [
            USERS_WITH_LOG_TRIGGER,
            RECREATE_USERS,
        ],
        "DO033",
        1,
        9,
        "drops its trigger `users_log`",
    ),
    (
        "select-then-drop",
        [
            "CREATE TABLE a (x);" + BP + "CREATE TABLE b (y);",
            "-- check\nSELECT count(*) FROM a;",
            "DROP TABLE b;",
        ],
        "DO034",
        1,
        2,
        "`database table is locked`",
    ),
    (
        "add-references-with-default",
        [
            "CREATE TABLE a (x integer PRIMARY KEY);" + BP + "CREATE TABLE t (v);",
            "ALTER TABLE t ADD p integer DEFAULT 0 REFERENCES a(x);",
        ],
        "DO035",
        1,
        1,
        "non-NULL DEFAULT",
    ),
    (
        "raise-rollback",
        [
            "CREATE TABLE a (x);",
            "CREATE TRIGGER t BEFORE INSERT ON a BEGIN SELECT RAISE(ROLLBACK, 'no'); END;",
        ],
        "DO031",
        1,
        1,
        "`RAISE(ROLLBACK)`",
    ),
]


@pytest.mark.parametrize(
    ("migrations", "rule", "index", "line", "text"),
    [pytest.param(*case[1:], id=case[0]) for case in FIRES],
)
def test_rule_fires_with_line(
    tmp_path: Path,
    migrations: list[str | tuple[str, bool]],
    rule: str,
    index: int,
    line: int,
    text: str,
) -> None:
    bundle = make_bundle(tmp_path, *migrations)
    found = of(lint_bundle(bundle), rule)
    assert found, f"{rule} did not fire"
    tag = bundle.migrations[index].tag
    here = [f for f in found if f.tag == tag]
    assert here, [str(f) for f in found]
    f = here[0]
    assert f.line == line, str(f)
    assert text in f.message, f.message
    assert f.path == bundle.migrations[index].path
    assert f.severity == RULES[rule].severity
    # the statement text is the one at that line of the file
    file_lines = bundle.migrations[index].sql.splitlines()
    if f.statement and line <= len(file_lines):
        first = f.statement.splitlines()[0]
        assert first[:40] in file_lines[line - 1], (first, file_lines[line - 1])


# --------------------------------------------------------------- and stays quiet

QUIET: list[tuple[str, list[str | tuple[str, bool]], str]] = [
    ("fk-pragma-read", ["PRAGMA foreign_keys;"], "DO001"),
    (
        "trigger-begin-end",
        ["CREATE TABLE t (a);" + BP + "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;"],
        "DO002",
    ),
    (
        "allowed-pragmas",
        [
            "PRAGMA defer_foreign_keys = ON;"
            + BP
            + "PRAGMA optimize;"
            + BP
            + "PRAGMA main.foreign_keys = 'off';"
        ],
        "DO003",
    ),
    ("table-info", ["CREATE TABLE t (a);" + BP + "PRAGMA table_info(`t`);"], "DO003"),
    (
        "allowed-functions",
        [
            "CREATE TABLE t (a real, b text, c decimal(10, 2), d varchar(255),"
            " e integer DEFAULT (unixepoch()),"
            " f text CHECK (length(f) < 9));" + BP + "WITH b(x) AS (SELECT 1), c2(y) AS (SELECT 2)"
            " INSERT INTO t (a) SELECT pow(x, 2) FROM b, c2;"
            + BP
            + "UPDATE t SET b = json_set(coalesce(b, '{}'), '$.x', ceil(a)),"
            " a = log(10, a) WHERE b LIKE 'x%';"
            + BP
            + "UPDATE t SET b = printf('%d', iif(a > 1, 1, 0))"
            " || strftime('%s', 'now') || cast(a AS text);"
        ],
        "DO004",
    ),
    ("temperature", ["CREATE TABLE temperature (x);" + BP + "CREATE TABLE temp_x (y);"], "DO006"),
    ("fts5", ["CREATE VIRTUAL TABLE f USING fts5(body, tokenize='trigram');"], "DO008"),
    (
        "cf-lookalikes",
        ["CREATE TABLE _cf (a);" + BP + "CREATE TABLE _cfx (_cf_col text);"],
        "DO009",
    ),
    (
        "long-but-ok",
        ["CREATE TABLE t (a text);" + BP + "INSERT INTO t VALUES ('" + "a" * 99_000 + "');"],
        "DO010",
    ),
    (
        "columns-100",
        [
            "CREATE TABLE wide ("
            + ", ".join(f"c{i} integer" for i in range(100))
            + ", UNIQUE (c1));"
        ],
        "DO011",
    ),
    (
        "compound-5",
        [
            "CREATE TABLE t (a);"
            + BP
            + "INSERT INTO t "
            + " UNION ALL ".join(f"SELECT {i}" for i in range(5))
            + ";"
            + BP
            + "INSERT INTO t VALUES "
            + ", ".join(f"({i})" for i in range(50))
            + ";"
        ],
        "DO012",
    ),
    (
        "like-50",
        ["CREATE TABLE t (a text);" + BP + "DELETE FROM t WHERE a LIKE '" + "x" * 50 + "';"],
        "DO013",
    ),
    (
        "custom-filled",
        [
            "CREATE TABLE a (x);",
            "-- Custom SQL migration file, put your code below! --\nUPDATE a SET x = 1;",
        ],
        "DO014",
    ),
    ("no-trailing", ["CREATE TABLE a (x);\n" + BP + "CREATE TABLE b (y);\n"], "DO015"),
    (
        "leading-comment",
        ["-- first\nCREATE TABLE a (x);\n" + BP + "/* why */\nCREATE TABLE b (y);  \n\t"],
        "DO016",
    ),
    ("nobp", [("CREATE TABLE a (x);\nCREATE TABLE b (y);", False)], "DO017"),
    (
        "one-trigger",
        [
            "CREATE TABLE t (a);"
            + BP
            + "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 1;"
            " DELETE FROM t WHERE a = 2; END;"
        ],
        "DO017",
    ),
    ("drop-new-table", ["CREATE TABLE a (x);" + BP + "DROP TABLE a;"], "DO018"),
    ("drop-in-recreation", [USERS, RECREATE_USERS], "DO018"),
    (
        "drop-column-new-table",
        ["CREATE TABLE a (x, y);" + BP + "ALTER TABLE a DROP COLUMN y;"],
        "DO019",
    ),
    ("rename-in-recreation", [USERS, RECREATE_USERS], "DO020"),
    (
        "add-nullable",
        [
            "CREATE TABLE a (x);",
            "ALTER TABLE a ADD p text;" + BP + "ALTER TABLE a ADD q text NOT NULL DEFAULT 'x';",
        ],
        "DO022",
    ),
    (
        "add-not-null-new-table",
        ["CREATE TABLE a (x);" + BP + "ALTER TABLE a ADD p text NOT NULL;"],
        "DO022",
    ),
    (
        "unique-new-table",
        ["CREATE TABLE a (x);" + BP + "CREATE UNIQUE INDEX ux ON a (x);"],
        "DO023",
    ),
    (
        "unique-already-unique",
        ["CREATE TABLE a (x UNIQUE, y);", "CREATE UNIQUE INDEX ux ON a (x);"],
        "DO023",
    ),
    (
        "unique-recreated",
        [
            USERS + BP + "CREATE UNIQUE INDEX `users_name_unique` ON `users` (`name`);",
            RECREATE_USERS + BP + "CREATE UNIQUE INDEX `users_name_unique` ON `users` (`name`);",
        ],
        "DO023",
    ),
    ("recreate-unreferenced", [USERS, RECREATE_USERS], "DO024"),
    ("coalesce-copy", [USERS, POSTS_CASCADE, RECREATE_USERS], "DO025"),
    (
        "backfilled-copy",
        [
            USERS,
            "UPDATE `users` SET `bio` = '' WHERE `bio` IS NULL;"
            + BP
            + RECREATE_USERS.replace("COALESCE(\"bio\", '')", '"bio"'),
        ],
        "DO025",
    ),
    (
        "filtered-copy",
        [
            USERS,
            "CREATE TABLE names (n text NOT NULL);"
            + BP
            + "INSERT INTO names (n) SELECT bio FROM users WHERE bio IS NOT NULL;",
        ],
        "DO025",
    ),
    (
        "drop-child-first",
        [USERS, POSTS_CASCADE, "DROP TABLE `posts`;" + BP + "DROP TABLE `users`;"],
        "DO026",
    ),
    (
        "drop-parent-then-child",
        [USERS, POSTS_CASCADE, "DROP TABLE `users`;" + BP + "DROP TABLE `posts`;"],
        "DO026",
    ),
    ("valid-sql", [USERS, POSTS_CASCADE, RECREATE_USERS], "DO027"),
    # RETURNING in a subquery or a string, a column named returning, RETURNING in a SELECT
    (
        "returning-elsewhere",
        [
            'CREATE TABLE a (x, "returning");',
            "INSERT INTO a (x) VALUES ('RETURNING x');"
            + BP
            + 'UPDATE a SET "returning" = 1 WHERE x IN (SELECT 1);'
            + BP
            + "SELECT 'x RETURNING y';",
        ],
        "DO030",
    ),
    (
        "add-constant-default",
        [
            "CREATE TABLE a (x);",
            "ALTER TABLE a ADD b integer DEFAULT (1) NOT NULL;"
            + BP
            + "ALTER TABLE a ADD c text DEFAULT 'x';"
            + BP
            + "ALTER TABLE a ADD d integer DEFAULT -1;"
            + BP
            + "ALTER TABLE a ADD e integer DEFAULT (-2);"
            + BP
            + "ALTER TABLE a ADD f integer DEFAULT NULL;"
            + BP
            + "ALTER TABLE a ADD g integer DEFAULT false;"
            + BP
            + "ALTER TABLE a ADD h integer;"
            + BP
            + "CREATE TABLE n (x);"
            + BP
            + "ALTER TABLE n ADD y integer DEFAULT (unixepoch());"  # a new, empty table
            + BP
            + "ALTER TABLE a ADD p integer REFERENCES n(x) ON DELETE SET DEFAULT;",
        ],
        "DO032",
    ),
    (
        "recreate-keeps-trigger",
        [
            USERS_WITH_LOG_TRIGGER,
            RECREATE_USERS + BP + USERS_LOG_TRIGGER,
            # a plain DROP TABLE takes its trigger on purpose
            "DROP TABLE `users`;",
        ],
        "DO033",
    ),
    (
        "trigger-recreated-later-or-renamed",
        [
            USERS_WITH_LOG_TRIGGER,
            # recreated by a later migration of the bundle: the same start runs both
            RECREATE_USERS,
            USERS_LOG_TRIGGER.replace("TRIGGER", "TRIGGER IF NOT EXISTS", 1),
            # recreated under another name in the same migration
            RECREATE_USERS
            + BP
            + "CREATE TRIGGER `users_log3` AFTER INSERT ON `users` BEGIN SELECT 1; END;",
        ],
        "DO033",
    ),
    (
        "select-without-a-drop-after",
        [
            "CREATE TABLE a (x);" + BP + "CREATE TABLE b (y);" + BP + "DROP TABLE b;",
            "SELECT count(*) FROM a;"
            + BP
            + "SELECT 1;"
            + BP
            + "INSERT INTO a SELECT x FROM a;"
            + BP
            + "CREATE TABLE c AS SELECT x FROM a;",
        ],
        "DO034",
    ),
    (
        "add-references-without-default",
        [
            "CREATE TABLE a (x integer PRIMARY KEY);" + BP + "CREATE TABLE t (v);",
            "ALTER TABLE t ADD p integer REFERENCES a(x);"
            + BP
            + "ALTER TABLE t ADD q integer DEFAULT NULL REFERENCES a(x);"
            + BP
            + "ALTER TABLE t ADD r integer DEFAULT 0;"
            + BP
            + "CREATE TABLE n (v);"
            + BP
            + "ALTER TABLE n ADD p integer DEFAULT 0 REFERENCES a(x);",  # a new, empty table
        ],
        "DO035",
    ),
    (
        "rollback-elsewhere",
        [
            "CREATE TABLE a (x UNIQUE ON CONFLICT ABORT, y);",
            "INSERT OR ABORT INTO a VALUES (1, 'OR ROLLBACK');"
            + BP
            + "INSERT INTO a VALUES (2, 3) ON CONFLICT DO NOTHING;"
            + BP
            + "CREATE TRIGGER t BEFORE INSERT ON a BEGIN SELECT RAISE(ABORT, 'no'); END;",
        ],
        "DO031",
    ),
]


@pytest.mark.parametrize(
    ("migrations", "rule"), [pytest.param(*case[1:], id=case[0]) for case in QUIET]
)
def test_rule_stays_quiet(
    tmp_path: Path, migrations: list[str | tuple[str, bool]], rule: str
) -> None:
    found = of(lint(tmp_path, *migrations), rule)
    assert found == [], [str(f) for f in found]


def test_every_rule_has_a_firing_case() -> None:
    fired = {case[2] for case in FIRES}
    assert fired == set(RULES)


def test_clean_bundle_has_no_findings(tmp_path: Path) -> None:
    findings = lint(
        tmp_path,
        USERS + BP + "CREATE INDEX `users_name_idx` ON `users` (`name`);",
        "ALTER TABLE `users` ADD `age` integer DEFAULT 0 NOT NULL;",
        POSTS_CASCADE + BP + "CREATE INDEX `posts_author_idx` ON `posts` (`author_id`);",
    )
    assert findings == []


def test_unparsable_sql_never_crashes(tmp_path: Path) -> None:
    garbage = [
        "CREATE TABLE (",
        "'unterminated",
        '"unterminated',
        "/* unterminated",
        "SELECT ((((((",
        "ALTER TABLE;",
        "PRAGMA;",
        "INSERT INTO x(a SELECT",
        "CREATE VIRTUAL TABLE;",
        "DROP TABLE",
        "\x00\x01 ☃ ;",
    ]
    findings = lint(tmp_path, *garbage)
    assert all(isinstance(f, Finding) for f in findings)
    assert of(findings, "DO027")  # SQLite's own parser rejects them


def test_finding_str_and_properties(tmp_path: Path) -> None:
    (f,) = of(lint(tmp_path, "CREATE TABLE a (x);", "ALTER TABLE a DROP COLUMN x;"), "DO019")
    assert f.name == "drop-column"
    assert f.fix == RULES["DO019"].fix
    assert f.location == f"{tmp_path / '0001_m1.sql'}:1"
    assert str(f).startswith(f"{f.location}: DO019 drop-column (warning): ")
    assert f.statement == "ALTER TABLE a DROP COLUMN x;"
    assert f.chunk == 0


def test_chunk_index_and_multiline_statement_line(tmp_path: Path) -> None:
    sql = USERS + BP + "CREATE TABLE b (y);" + BP + "\n\n-- why\nDROP\n  TABLE `users`;"
    (f,) = of(lint(tmp_path, "CREATE TABLE users (id);", sql), "DO018")
    assert (f.chunk, f.line) == (2, 11)
    assert f.statement.startswith("DROP\n  TABLE")


# ------------------------------------------------------------------------ suppression


def test_ignore_on_line_before(tmp_path: Path) -> None:
    findings = lint(
        tmp_path,
        "CREATE TABLE a (x, y);\n" + BP + "CREATE TABLE b (z);",
        "-- dosqlite:ignore DO019\nALTER TABLE a DROP COLUMN y;" + BP + "DROP TABLE b;",
    )
    assert of(findings, "DO019") == []
    assert [f.line for f in of(findings, "DO018")] == [3]  # the next statement is not silenced


def test_ignore_only_listed_rules(tmp_path: Path) -> None:
    findings = lint(
        tmp_path, USERS, POSTS_CASCADE, "-- dosqlite:ignore DO018 (gone)\nDROP TABLE `users`;"
    )
    assert of(findings, "DO018") == []
    assert len(of(findings, "DO026")) == 1


def test_ignore_without_ids_silences_all(tmp_path: Path) -> None:
    findings = lint(tmp_path, USERS, POSTS_CASCADE, "-- dosqlite:ignore\nDROP TABLE `users`;")
    assert findings == []


def test_ignore_by_name_and_in_block_comment_on_same_line(tmp_path: Path) -> None:
    findings = lint(
        tmp_path,
        "CREATE TABLE a (x, y, z);",
        "ALTER TABLE a DROP COLUMN y /* dosqlite:ignore drop-column */;"
        + BP
        + "-- dosqlite:ignore DO019, DO018\nALTER TABLE a DROP COLUMN z;",
    )
    assert of(findings, "DO019") == []


def test_same_line_trailing_comment_applies_but_is_itself_an_error(tmp_path: Path) -> None:
    findings = lint(
        tmp_path, "CREATE TABLE a (x, y);", "ALTER TABLE a DROP COLUMN y; -- dosqlite:ignore DO019"
    )
    assert of(findings, "DO019") == []
    # a comment after the last `;` of a chunk makes sql.exec fail on a DO
    assert [f.line for f in of(findings, "DO016")] == [1]


def test_ignore_file(tmp_path: Path) -> None:
    findings = lint(
        tmp_path,
        "CREATE TABLE a (x, y, z);\n" + BP + "CREATE TABLE b (x, y);",
        "ALTER TABLE a DROP COLUMN y;"
        + BP
        + "ALTER TABLE a DROP COLUMN z;"
        + BP
        + "-- dosqlite:ignore-file DO019\nALTER TABLE b RENAME COLUMN x TO w;",
        "ALTER TABLE b DROP COLUMN y;",
    )
    assert [(f.tag, f.line) for f in of(findings, "DO019")] == [("0002_m2", 1)]
    assert len(of(findings, "DO021")) == 1


def test_ignore_file_without_ids(tmp_path: Path) -> None:
    findings = lint(
        tmp_path,
        "CREATE TABLE a (x, y);",
        "/* dosqlite:ignore-file */\nALTER TABLE a DROP COLUMN y;",
    )
    assert findings == []


# ---------------------------------------------------------------- configuration


def test_severity_overrides(tmp_path: Path) -> None:
    bundle = make_bundle(
        tmp_path, "CREATE TABLE a (x, y);", "ALTER TABLE a DROP COLUMN y;" + BP + "VACUUM;"
    )
    default = {f.rule: f.severity for f in lint_bundle(bundle)}
    assert default == {"DO019": "warning", "DO007": "error"}
    changed = {
        f.rule: f.severity
        for f in lint_bundle(bundle, severities={"DO019": "error", "vacuum": "warning"})
    }
    assert changed == {"DO019": "error", "DO007": "warning"}
    off = lint_bundle(bundle, severities={"do019": "OFF"})
    assert [f.rule for f in off] == ["DO007"]


def test_unknown_rule_or_level_raises(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, "CREATE TABLE a (x);")
    with pytest.raises(ValueError, match="DO999") as info:
        lint_bundle(bundle, severities={"DO999": "off"})
    assert "DO001 (pragma-foreign-keys)" in str(info.value)
    assert "DO024 (recreate-referenced-table)" in str(info.value)
    with pytest.raises(ValueError, match="error, warning or off"):
        lint_bundle(bundle, severities={"DO001": "fatal"})


def test_only_after_skips_accepted_but_keeps_their_schema(tmp_path: Path) -> None:
    bundle = make_bundle(
        tmp_path, USERS, POSTS_CASCADE, RECREATE_USERS, "ALTER TABLE `users` DROP COLUMN `bio`;"
    )
    all_tags = [m.tag for m in bundle.migrations]
    assert of(lint_bundle(bundle), "DO024")
    later = lint_bundle(bundle, only_after=set(all_tags[:3]))
    assert {f.tag for f in later} == {all_tags[3]}
    # users existed in an accepted migration: the DROP COLUMN still knows it
    assert [f.rule for f in later] == ["DO019"]
    assert lint_bundle(bundle, only_after=set(all_tags)) == []


# ------------------------------------------------------------------------ lint_check


def test_lint_check_raises_with_errors_and_warns(tmp_path: Path) -> None:
    bundle = make_bundle(
        tmp_path, USERS, POSTS_CASCADE, RECREATE_USERS, "ALTER TABLE `users` DROP COLUMN `bio`;"
    )
    ctx = CheckContext(bundle=bundle)
    with pytest.warns(DosqliteLintWarning) as record, pytest.raises(CheckFailure) as info:
        lint_check(ctx)
    text = str(info.value)
    assert "lint: 1 error in bundle" in text
    assert f"{tmp_path / '0002_m2.sql'}:9 DO024 recreate-referenced-table" in text
    assert "DROP TABLE `users`;" in text
    assert "how to fix:" in text and "blockConcurrencyWhile" in text
    assert "dosqlite:ignore" in text
    found = [(w.filename, w.lineno, str(w.message)) for w in record]
    # located at the .sql file and line, which is not repeated in the message
    assert any(
        f == str(tmp_path / "0003_m3.sql") and n == 1 and m.startswith("DO019 drop-column")
        for f, n, m in found
    )
    assert any("DO001" in m for _, _, m in found)
    assert not any(str(tmp_path) in m for _, _, m in found)


def test_lint_check_uses_settings_and_the_baseline(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, USERS, POSTS_CASCADE, RECREATE_USERS)
    tags = [m.tag for m in bundle.migrations]
    quiet = Settings(lint_severity={"DO024": "off", "DO001": "off"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lint_check(CheckContext(bundle=bundle, settings=quiet))
        # the baseline names the last migration: nothing is left to lint
        lint_check(CheckContext(bundle=bundle, settings=Settings(lint_baseline=(tags[-1],))))
    assert baseline_tags(bundle, ["nope", tags[1]]) == (set(tags[:2]), tags[1])
    assert baseline_tags(bundle, ["nope"]) == (set(), None)
    for baseline in ((), (tags[1],), ("elsewhere",)):
        with pytest.raises(CheckFailure) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lint_check(CheckContext(bundle=bundle, settings=Settings(lint_baseline=baseline)))
        named_none = "names none of this bundle's migrations (elsewhere)" in info.value.render()
        assert named_none == (baseline == ("elsewhere",))


def test_lint_check_reports_bad_severity_setting(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, "CREATE TABLE a (x);")
    ctx = CheckContext(bundle=bundle, settings=Settings(lint_severity={"DO404": "off"}))
    with pytest.raises(CheckFailure, match="invalid dosqlite_lint_severity") as info:
        lint_check(ctx)
    assert "DO404" in str(info.value) and "DO001 (pragma-foreign-keys)" in str(info.value)


# -------------------------------------------------------------------- committed example


def test_example_bundle(tmp_path: Path) -> None:
    root = EXAMPLES / "lint-hazards" / "drizzle"
    bundle = read_bundle(root)
    findings = lint_bundle(bundle)
    got = {(f.tag, f.rule, f.line) for f in findings}
    assert got == {
        ("0001_posts", "DO022", 1),
        ("0002_recreate_users", "DO001", 1),
        ("0002_recreate_users", "DO024", 10),
        ("0002_recreate_users", "DO025", 9),
        ("0002_recreate_users", "DO001", 12),
        ("0003_custom", "DO014", 1),
    }


# ------------------------------------------------------------- real drizzle-kit bundles


def test_basic_step4_recreation_cascade() -> None:
    bundle = read_bundle(shared_path("bundles", "basic-step4", "drizzle"))
    findings = lint_bundle(bundle)
    (f,) = of(findings, "DO024")
    assert f.tag == "0003_bio_not_null" and f.line == 11
    assert "`users`" in f.message
    assert "posts.author_id ON DELETE cascade" in f.message
    assert f.statement == "DROP TABLE `users`;"
    (g,) = of(findings, "DO025")  # bio was nullable: INSERT ... SELECT copies NULLs
    assert g.line == 10 and "`users`.`bio`" in g.message


@pytest.mark.parametrize("step", ["basic-step1", "basic-step2", "basic-step3"])
def test_basic_steps_before_the_recreation_have_no_errors(step: str) -> None:
    bundle = read_bundle(shared_path("bundles", step, "drizzle"))
    assert [f for f in lint_bundle(bundle) if f.severity == "error"] == []


def test_basic_step5_errors_are_only_the_step4_recreation() -> None:
    bundle = read_bundle(shared_path("bundles", "basic-step5", "drizzle"))
    findings = lint_bundle(bundle)
    assert {f.tag for f in findings if f.severity == "error"} == {"0003_bio_not_null"}
    assert [(f.tag, f.rule) for f in of(findings, "DO019")] == [("0004_drop_age", "DO019")]
    accepted = {m.tag for m in bundle.migrations[:4]}  # pinned at step4
    later = lint_bundle(bundle, only_after=accepted)
    assert [f for f in later if f.severity == "error"] == []
    assert [f.rule for f in later] == ["DO019"]


def test_basic_nobp_has_no_missing_breakpoint_warning() -> None:
    bundle = read_bundle(shared_path("bundles", "basic-nobp", "drizzle"))
    findings = lint_bundle(bundle)
    assert of(findings, "DO017") == []
    assert [f.line for f in of(findings, "DO024")] == [11]


CORPUS = ("corpus",)


def _corpus(*parts: str) -> list[Finding]:
    return lint_bundle(read_bundle(shared_path(*CORPUS, *parts)))


def test_corpus_crewhelm_recreations() -> None:
    findings = _corpus("fkrein1__crewhelm", "apps", "worker", "control-plane-migrations")
    by_tag = {(f.tag, f.rule): f for f in findings}
    restrict = by_tag[("0017_messy_argent", "DO024")]
    assert "`agent_revisions`" in restrict.message
    assert "ON DELETE restrict` fails with `FOREIGN KEY constraint failed`" in restrict.message
    for tag in ("0023_abnormal_sister_grimm", "0027_classy_switch"):
        msgs = [f.message for f in findings if f.tag == tag and f.rule == "DO024"]
        assert any(
            "`agent_workflows`" in m and "agent_workflow_stages.workflow_id ON DELETE cascade" in m
            for m in msgs
        ), msgs
    # 0014: a hand-written prelude puts two UPDATEs in one chunk
    assert [f.tag for f in of(findings, "DO017")] == ["0014_closed_patriot"]


def test_corpus_openstatus() -> None:
    findings = _corpus("openstatusHQ__openstatus", "packages", "db", "drizzle")
    cascade = [f for f in of(findings, "DO024") if "ON DELETE cascade" in f.message]
    assert {f.tag for f in cascade} >= {"0006_tired_anita_blake", "0042_great_epoch"}
    monitor = next(f for f in cascade if f.tag == "0006_tired_anita_blake")
    assert "`monitor`" in monitor.message and "monitors_to_pages.monitor_id" in monitor.message
    # libSQL-only ALTER COLUMN does not parse on a DO
    assert {f.tag for f in of(findings, "DO027")} == {"0041_nasty_jigsaw", "0064_dusty_sunfire"}


def test_corpus_karakeep_findings() -> None:
    bundle = read_bundle(
        shared_path(*CORPUS, "karakeep-app__karakeep", "packages", "db", "drizzle")
    )
    assert len(bundle.migrations) == 94
    # its cost is measured by benchmarks/run.py, not asserted here
    findings = lint_bundle(bundle)
    (f,) = of(findings, "DO024")
    assert f.tag == "0084_rule_engine_multi_list_support"
    assert "`ruleEngineRules`" in f.message
    assert "ruleEngineActions.ruleId ON DELETE cascade" in f.message
    # the backup table it uses for the workaround is TEMP, which a DO refuses
    assert [g.tag for g in of(findings, "DO006")] == ["0084_rule_engine_multi_list_support"]


def make_tiny() -> Bundle:
    m = Migration(idx=0, tag="0000_t", when=1, key="m0000", sql="CREATE TABLE t (a);")
    return Bundle(root=Path("."), format="durable-sqlite", migrations=(m,))


@pytest.mark.parametrize(
    ("parts", "tag", "where"),
    [
        (("Litengat__uno", "drizzle"), "0005_massive_blade", "`players_table`.`position`"),
        (
            ("GlennMm__typescript_backend_template", "drizzle", "tenant"),
            "0003_wealthy_metal_master",
            "`customers`.`name`",
        ),
    ],
)
def test_corpus_add_not_null_without_default(parts: tuple[str, ...], tag: str, where: str) -> None:
    findings = _corpus(*parts)
    hits = of(findings, "DO022")
    assert [(f.tag, where in f.message) for f in hits] == [(tag, True)]
    path = hits[0].path
    assert path is not None
    line = path.read_text(encoding="utf-8").splitlines()[hits[0].line - 1]
    assert "NOT NULL" in line and "ADD" in line


@pytest.mark.parametrize(
    ("sql", "inside"),
    [
        ("INSERT INTO a VALUES ('x --> statement-breakpoint y');", "a string literal"),
        ("/* note --> statement-breakpoint */ INSERT INTO a VALUES (1);", "a comment"),
        ('CREATE TABLE "odd --> statement-breakpoint name" (x);', "a quoted name"),
    ],
)
def test_a_breakpoint_marker_inside_a_literal_is_named_as_the_cut(
    tmp_path: Path, sql: str, inside: str
) -> None:
    findings = of(lint(tmp_path, "CREATE TABLE a (x);", sql), "DO027")
    assert findings and all(f.tag == "0001_m1" for f in findings)
    assert f"a `--> statement-breakpoint` inside {inside} cut it" in findings[0].message


def test_a_syntax_error_away_from_any_cut_says_nothing_of_markers(tmp_path: Path) -> None:
    sql = "CREATE TABLE b (x);\n--> statement-breakpoint\nSELECT ((((;"
    (finding,) = of(lint(tmp_path, "CREATE TABLE a (x);", sql), "DO027")
    assert "statement-breakpoint" not in finding.message


def test_a_do_that_turns_foreign_keys_off_is_not_told_to_do_so(tmp_path: Path) -> None:
    # --dosqlite-start=drizzle-fk-off is DO024's own fix: lint still failed on it
    bundle = make_bundle(tmp_path, USERS, POSTS_CASCADE, RECREATE_USERS)
    quiet_pragma = {"DO001": "off"}
    with pytest.raises(CheckFailure, match="DO024"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lint_check(CheckContext(bundle=bundle, settings=Settings(lint_severity=quiet_pragma)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lint_check(
            CheckContext(
                bundle=bundle,
                settings=Settings(lint_severity=quiet_pragma),
                extra={"fleet_start": "drizzle-fk-off"},
            )
        )
    # a severity the user set for the rule wins
    with pytest.raises(CheckFailure, match="DO024"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lint_check(
            CheckContext(
                bundle=bundle,
                settings=Settings(lint_severity={**quiet_pragma, "DO024": "error"}),
                extra={"fleet_start": "drizzle-fk-off"},
            )
        )


@pytest.mark.parametrize(
    "default",
    [
        "(unixepoch())",
        "CURRENT_TIMESTAMP",
        "current_date",
        "(json_array())",
        "(1 + 1)",
        "(abs(-1))",
        "(lower('A'))",
        "'x'",
        "-1",
        "+2.5",
        "(1)",
        "('x')",
        "(-1)",
        "NULL",
        "(NULL)",
        "TRUE",
        "x'00'",
        "(CAST(1 AS text))",
        '"abc"',
        "abc",
        "(-(-5))",
        "(- -5)",
        "(+-5)",
        "(CAST(CAST(1 AS int) AS text))",
        "(CAST(abs(1) AS text))",
        "(- abs(1))",
        "current_time",
    ],
)
def test_do032_agrees_with_sqlite(tmp_path: Path, default: str) -> None:
    from pytest_dosqlite import DurableObjectStorage, SqlError

    do = DurableObjectStorage()
    do.sql.exec("CREATE TABLE a (x); INSERT INTO a VALUES (1)")
    try:
        do.sql.exec(f"ALTER TABLE a ADD b DEFAULT {default}")
        sqlite_refuses = False
    except SqlError as exc:
        assert "non-constant default" in str(exc)
        sqlite_refuses = True
    found = of(
        lint(tmp_path, "CREATE TABLE a (x);", f"ALTER TABLE a ADD b DEFAULT {default};"), "DO032"
    )
    assert bool(found) is sqlite_refuses


def test_a_recreation_that_drops_two_triggers_and_creates_one(tmp_path: Path) -> None:
    trig = "CREATE TRIGGER `{}` AFTER INSERT ON `users` BEGIN SELECT 1; END;"
    schema = USERS + BP + trig.format("t_a") + BP + trig.format("t_b")
    found = of(lint(tmp_path, schema, RECREATE_USERS + BP + trig.format("t_new")), "DO033")
    assert len(found) == 1 and "`t_b`" in found[0].message


def test_recreation_names_the_cascade_through_grandchildren(tmp_path: Path) -> None:
    # reactions -> messages -> users, all cascade, plus reactions -> users with no action:
    # the drop deletes messages and reactions; the NO ACTION key raises nothing
    schema = (
        USERS
        + BP
        + "CREATE TABLE `messages` (`id` integer PRIMARY KEY, `user_id` integer NOT NULL "
        "REFERENCES `users`(`id`) ON DELETE cascade);"
        + BP
        + "CREATE TABLE `reactions` (`id` integer PRIMARY KEY, `message_id` integer NOT NULL "
        "REFERENCES `messages`(`id`) ON DELETE cascade, `user_id` integer NOT NULL "
        "REFERENCES `users`(`id`));"
        + BP
        + "CREATE TABLE `audit` (`msg_id` integer REFERENCES `messages`(`id`) ON DELETE set null);"
    )
    found = of(lint(tmp_path, schema, RECREATE_USERS), "DO024")
    assert len(found) == 1
    text = found[0].message
    assert "`messages.user_id ON DELETE cascade` deletes every row of `messages`" in text
    assert (
        "`reactions.message_id ON DELETE cascade` deletes every row of `reactions` that "
        "references a deleted row of `messages` (through the cascade from `users`)"
    ) in text
    assert "`audit.msg_id ON DELETE set null` sets msg_id to NULL" in text
    assert "`reactions.user_id ON DELETE no action` raises no error" in text
    assert "FOREIGN KEY constraint failed" not in text


def test_no_action_rows_spared_only_when_the_cascade_takes_them_all(tmp_path: Path) -> None:
    # r.p_id is nullable: a row of r with p_id NULL survives the cascade and still references a
    # deleted q, so the DROP fails (checked on SQLite)
    schema = (
        "CREATE TABLE `p` (`id` integer PRIMARY KEY);"
        + BP
        + "CREATE TABLE `q` (`id` integer PRIMARY KEY, `p_id` integer NOT NULL REFERENCES "
        "`p`(`id`) ON DELETE cascade);"
        + BP
        + "CREATE TABLE `r` (`id` integer PRIMARY KEY, `q_id` integer REFERENCES `q`(`id`), "
        "`p_id` integer REFERENCES `p`(`id`) ON DELETE cascade);"
    )
    recreate = (
        "CREATE TABLE `__new_p` (`id` integer PRIMARY KEY, `x` integer);"
        + BP
        + "INSERT INTO `__new_p`(`id`) SELECT `id` FROM `p`;"
        + BP
        + "DROP TABLE `p`;"
        + BP
        + "ALTER TABLE `__new_p` RENAME TO `p`;"
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    text = of(lint(tmp_path / "a", schema, recreate), "DO024")[0].message
    assert "`r.q_id ON DELETE no action` fails with `FOREIGN KEY constraint failed`" in text
    # with r.p_id NOT NULL every row of r goes with the cascade: nothing fails
    strict = schema.replace(
        "`p_id` integer REFERENCES `p`", "`p_id` integer NOT NULL REFERENCES `p`"
    )
    text = of(lint(tmp_path / "b", strict, recreate), "DO024")[0].message
    assert "`r.q_id ON DELETE no action` raises no error" in text


def test_the_new_copys_other_keys_are_not_called_self_references(tmp_path: Path) -> None:
    schema = (
        "CREATE TABLE `users` (`id` integer PRIMARY KEY, `last_post_id` integer);"
        + BP
        + "CREATE TABLE `posts` (`id` integer PRIMARY KEY, `author_id` integer NOT NULL "
        "REFERENCES `users`(`id`) ON DELETE cascade);"
    )
    recreate = (
        "CREATE TABLE `__new_users` (`id` integer PRIMARY KEY, `last_post_id` integer "
        "REFERENCES `posts`(`id`) ON DELETE set null);"
        + BP
        + "INSERT INTO `__new_users` SELECT `id`, `last_post_id` FROM `users`;"
        + BP
        + "DROP TABLE `users`;"
        + BP
        + "ALTER TABLE `__new_users` RENAME TO `users`;"
    )
    text = of(lint(tmp_path, schema, recreate), "DO024")[0].message
    assert "self-reference" not in text
    assert "`__new_users` (the new copy of `users`) that references `posts`" in text


def test_a_byte_order_mark_hides_nothing(tmp_path: Path) -> None:
    # SQLite skips the mark; the lint read it as the statement's first word
    found = of(
        lint(tmp_path, "CREATE TABLE a (x);", "\ufeff-- c\nUPDATE a SET x = 1 RETURNING x;"),
        "DO030",
    )
    assert [f.line for f in found] == [2]
