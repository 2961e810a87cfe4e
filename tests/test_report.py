"""The Markdown report (``--dosqlite-report``): ER diagram text, migration timeline, findings,
check results, Markdown well-formedness, and the plugin writing it at the end of a session.

Rendering the Mermaid diagram in a real browser is in ``test_report_render.py`` (slow).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from pytest_dosqlite.bundle import Bundle, load_bundle
from pytest_dosqlite.images import ImageCache
from pytest_dosqlite.report import (
    _code,
    _prose,
    _text,
    er_diagram,
    migration_changes,
    render_report,
)
from pytest_dosqlite.schema import Column, ForeignKey, Schema, Table
from test_plugin import DRIZZLE_CONFIG, WRANGLER_TOML

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_project" / "drizzle"
BP = "--> statement-breakpoint"

# --------------------------------------------------------------------------------------------
# helpers (also used by test_report_render.py)


def write_bundle(out: Path, migrations: list[tuple[str, str]]) -> Path:
    """A drizzle-kit durable-sqlite bundle (journal + migrations.js + .sql files)."""
    (out / "meta").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (tag, sql) in enumerate(migrations):
        (out / f"{tag}.sql").write_text(sql)
        entries.append(
            {"idx": i, "version": "6", "when": 1767225600000 + i * 86_400_000, "tag": tag,
             "breakpoints": True}
        )  # fmt: skip
    (out / "meta" / "_journal.json").write_text(
        json.dumps({"version": "7", "dialect": "sqlite", "entries": entries}, indent=2)
    )
    imports = "\n".join(f"import m{i:04d} from './{t}.sql';" for i, (t, _) in enumerate(migrations))
    keys = ", ".join(f"m{i:04d}" for i in range(len(migrations)))
    (out / "migrations.js").write_text(
        f"import journal from './meta/_journal.json';\n{imports}\n\n"
        f"export default {{ journal, migrations: {{ {keys} }} }};\n"
    )
    return out


#: several foreign keys (NOT NULL and nullable, one-to-one, a self-reference, a junction
#: table), names Mermaid cannot take as they are, a rename, a recreation and data statements
TRICKY = [
    (
        "0000_init",
        f"""CREATE TABLE `users` (
\t`id` integer PRIMARY KEY NOT NULL,
\t`email` text NOT NULL,
\t`pk` text,
\t`class` integer
);
{BP}
CREATE UNIQUE INDEX `users_email_unique` ON `users` (`email`);{BP}
CREATE TABLE `categories` (
\t`id` integer PRIMARY KEY NOT NULL,
\t`parent_id` integer REFERENCES `categories`(`id`) ON DELETE set null,
\t`name` text NOT NULL
);
{BP}
CREATE TABLE `posts` (
\t`id` integer PRIMARY KEY NOT NULL,
\t`author_id` integer NOT NULL REFERENCES `users`(`id`) ON DELETE cascade,
\t`editor_id` integer REFERENCES `users`(`id`) ON DELETE set null,
\t`category_id` integer NOT NULL REFERENCES `categories`(`id`),
\t`price` numeric(10, 2),
\t`title` text DEFAULT 'untitled "draft"' NOT NULL
);
{BP}
CREATE TABLE `legacy` (`id` integer PRIMARY KEY);""",
    ),
    (
        "0001_more",
        f"""CREATE TABLE `profiles` (
\t`user_id` integer PRIMARY KEY NOT NULL REFERENCES `users`(`id`) ON DELETE cascade,
\t`bio` text
);
{BP}
CREATE TABLE `order items` (`id` integer PRIMARY KEY, `one` text, `Style` text);{BP}
CREATE TABLE `one` (`id` integer PRIMARY KEY, `u` integer REFERENCES `order items`(`id`));{BP}
CREATE TABLE `tags` (`id` integer PRIMARY KEY, `label` text NOT NULL UNIQUE);{BP}
CREATE TABLE `post_tags` (
\t`post_id` integer NOT NULL REFERENCES `posts`(`id`) ON DELETE cascade,
\t`tag_id` integer NOT NULL REFERENCES `tags`(`id`) ON DELETE restrict,
\tPRIMARY KEY(`post_id`, `tag_id`)
);
{BP}
CREATE VIEW `post_titles` AS SELECT `title` FROM `posts`;""",
    ),
    (
        "0002_changes",
        f"""ALTER TABLE `users` RENAME COLUMN `pk` TO `handle`;{BP}
ALTER TABLE `users` ADD `nick` text;{BP}
INSERT INTO `tags` (`label`) VALUES ('a'), ('b');{BP}
UPDATE `users` SET `nick` = `email`;{BP}
DELETE FROM `tags` WHERE `label` = 'b';{BP}
DROP TABLE `legacy`;{BP}
PRAGMA foreign_keys=OFF;{BP}
CREATE TABLE `__new_categories` (
\t`id` integer PRIMARY KEY NOT NULL,
\t`parent_id` integer REFERENCES `categories`(`id`) ON DELETE set null,
\t`title` text NOT NULL
);
{BP}
INSERT INTO `__new_categories`(`id`, `parent_id`, `title`)
	SELECT `id`, `parent_id`, `name` FROM `categories`;{BP}
DROP TABLE `categories`;{BP}
ALTER TABLE `__new_categories` RENAME TO `categories`;{BP}
PRAGMA foreign_keys=ON;{BP}
CREATE INDEX `posts_author_idx` ON `posts` (`author_id`);""",
    ),
]


def tricky_bundle(tmp: Path) -> Bundle:
    return load_bundle(write_bundle(tmp / "drizzle", TRICKY))


def check_markdown(md: str) -> list[list[list[str]]]:
    """Assert ``md`` is well-formed GitHub Markdown for our purposes and return its tables
    (rows of cells): fences balanced and labelled, every table row with as many cells as its
    header, the separator row right after the header, no raw HTML but ``<br>``."""
    lines = md.split("\n")
    assert md.endswith("\n") and not md.endswith("\n\n")
    fence_open: str | None = None
    tables: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for n, line in enumerate(lines, start=1):
        if line.startswith("```"):
            if fence_open is None:
                fence_open = line[3:]
                assert fence_open in ("mermaid",), f"line {n}: unlabelled fence {line!r}"
            else:
                assert line == "```", f"line {n}: bad closing fence {line!r}"
                fence_open = None
            current = None
            continue
        if fence_open is not None:
            assert "`" not in line, f"line {n}: backtick inside the mermaid block"
            continue
        if line.startswith("|"):
            assert line.endswith(" |") or line.endswith("|"), f"line {n}"
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if current is None:
                current = [cells]
                tables.append(current)
                continue
            if len(current) == 1:
                assert all(c == "---" for c in cells), f"line {n}: no separator row"
            assert len(cells) == len(current[0]), f"line {n}: {len(cells)} cells, header has "
            f"{len(current[0])}: {line!r}"
            current.append(cells)
        else:
            if current is not None:
                assert line == "", f"line {n}: a table must end with a blank line"
            current = None
            if line.startswith("#"):
                assert re.match(r"#{1,3} \S", line), f"line {n}: heading {line!r}"
        html = re.findall(r"<(?!br>)[A-Za-z/][^>]*>", re.sub(r"`[^`]*`", "", line))
        assert not html, f"line {n}: raw HTML {html}"
    assert fence_open is None, "unclosed code fence"
    return [[row for k, row in enumerate(t) if k != 1] for t in tables]


def links(md: str) -> list[tuple[str, str]]:
    return re.findall(r"\[([^\]]*)\]\(([^)\s]+)\)", md)


# --------------------------------------------------------------------------------------------
# escaping


def test_code_span_survives_backticks_and_pipes() -> None:
    assert _code("users") == "`users`"
    assert _code("a`b") == "``a`b``"
    assert _code("`x`") == "`` `x` ``"
    assert _code("a|b") == "`a\\|b`"
    assert _text("a_b *c* <d> | e\n\nf") == "a\\_b \\*c\\* \\<d\\> \\| e<br>f"
    assert _prose("run `a|b` then *x*") == "run `a\\|b` then \\*x\\*"


# --------------------------------------------------------------------------------------------
# the ER diagram


def test_er_diagram_relationships_cardinality_and_labels(tmp_path: Path) -> None:
    bundle = tricky_bundle(tmp_path)
    cache = ImageCache()
    from pytest_dosqlite.report import _schema_of

    image = cache.head(bundle).image
    assert image is not None
    text, renamed = er_diagram(_schema_of(image))
    lines = text.splitlines()
    assert lines[0] == "erDiagram"
    rels = [line.strip() for line in lines if "--" in line]
    assert sorted(rels) == sorted(
        [
            'categories }o--o| categories : "parent_id: ON DELETE SET NULL"',
            'one_ }o--o| order_items : "u: ON DELETE NO ACTION"',
            'post_tags }o--|| posts : "post_id: ON DELETE CASCADE"',
            'post_tags }o--|| tags : "tag_id: ON DELETE RESTRICT"',
            'posts }o--|| categories : "category_id: ON DELETE NO ACTION"',
            'posts }o--o| users : "editor_id: ON DELETE SET NULL"',
            'posts }o--|| users : "author_id: ON DELETE CASCADE"',
            'profiles |o--|| users : "user_id: ON DELETE CASCADE"',
        ]
    )
    # names Mermaid would misread are renamed, and the renamings are reported
    assert renamed == [("one", "one_"), ("order items", "order_items")]
    body = "\n".join(lines)
    assert "  order_items {" in body and "  one_ {" in body
    assert "    text Style\n" in body
    assert "    integer u FK\n" in body  # `u` and `one` are keywords only as entity names
    assert "    text one\n" in body
    assert "    text handle\n" in body
    assert "    integer class\n" in body
    # types keep their size, made one word; markers and comments
    assert "    numeric(10_2) price\n" in body
    assert '    integer author_id FK "NOT NULL"' in body
    assert "    integer editor_id FK\n" in body
    assert '    text email UK "NOT NULL"' in body
    assert '    text label UK "NOT NULL"' in body
    assert '    integer post_id PK, FK "NOT NULL"' in body
    assert '    integer user_id PK, FK "NOT NULL"' in body
    assert "    text title \"NOT NULL, default 'untitled draft '\"\n" in body
    assert "legacy" not in body  # dropped in 0002
    assert "__new_" not in body


def test_er_diagram_leaves_out_internal_tables_and_sanitizes_everything() -> None:
    def table(name: str, *cols: str, fks: tuple[ForeignKey, ...] = ()) -> Table:
        return Table(name, tuple(Column(c, "text") for c in cols), foreign_keys=fks)

    schema = Schema(
        tables=(
            table("__drizzle_migrations", "hash"),
            table("_cf_KV", "key"),
            table("sqlite_sequence", "name"),
            table("my-table", "PK", "fk", "2nd col", 'quote"d'),
            table("my table", "x"),
            table(
                "Class", "to", fks=(ForeignKey(("to",), "my table", ("x",), on_delete="cascade"),)
            ),
        )
    )
    text, renamed = er_diagram(schema)
    assert "drizzle" not in text and "_cf_" not in text and "sqlite_" not in text
    assert renamed == [("my-table", "my_table"), ("my table", "my_table_2"), ("Class", "Class_")]
    assert '    text PK_ "PK"' in text
    assert '    text fk_ "fk"' in text
    assert '    text _2nd_col "2nd col"' in text
    assert '    text quote_d "quote d"' in text
    assert 'Class_ }o--o| my_table_2 : "to: ON DELETE CASCADE"' in text
    for line in text.splitlines()[1:]:
        # every line is an entity open/close, an attribute, or a relationship
        assert re.fullmatch(
            r"  [A-Za-z_]\w* \{|  \}"
            r"|    [A-Za-z_][\w()\[\]-]* [A-Za-z_]\w*( (PK|FK|UK)(, (PK|FK|UK))*)?"
            r'( "[^"`\\%#<>]*")?'
            r'|  [A-Za-z_]\w* [|}][o|]--[|o][|{] [A-Za-z_]\w* : "[^"]*"',
            line,
        ), line


# --------------------------------------------------------------------------------------------
# the migration timeline


def test_timeline_of_the_example_project() -> None:
    changes = migration_changes(load_bundle(EXAMPLE), ImageCache())
    got = {c.tag: (list(c.changes), dict(c.data), c.error) for c in changes}
    assert got == {
        "0000_init": (
            ["table `users` added", "unique index `users_email_unique` on `users` added"],
            {},
            None,
        ),
        "0001_notes": (
            ["table `notes` added", "index `notes_user_id_idx` on `notes` added"],
            {},
            None,
        ),
        "0002_user_display_name": (["column `users.display_name` added"], {}, None),
        "0003_backfill_display_name": ([], {"UPDATE": 1}, None),
        "0004_notes_pinned": (["column `notes.pinned` added"], {}, None),
        "0005_notes_pinned_check": (
            ["table `notes` recreated", "CHECK `notes.notes_pinned_is_bool` added"],
            {},  # the INSERT INTO __new_notes is part of the recreation
            None,
        ),
    }
    assert [c.when for c in changes][:2] == ["2026-11-27 16:24", "2026-11-27 16:24"]
    assert all(c.seconds is not None and c.seconds > 0 for c in changes)


def test_timeline_renames_recreations_drops_and_data(tmp_path: Path) -> None:
    changes = migration_changes(tricky_bundle(tmp_path), ImageCache())
    assert [c.tag for c in changes] == ["0000_init", "0001_more", "0002_changes"]
    assert changes[0].when == "2026-01-01 00:00" and changes[2].when == "2026-01-03 00:00"
    assert changes[1].changes == (
        "table `one` added",
        "table `order items` added",
        "table `post_tags` added",
        "table `profiles` added",
        "table `tags` added",
        "view `post_titles` added",
    )
    assert changes[2].changes == (
        "table `legacy` dropped",
        "table `categories` recreated",
        "column `categories.name` renamed to `title`",
        "column `users.pk` renamed to `handle`",
        "column `users.nick` added",
        "index `posts_author_idx` on `posts` added",
    )
    assert changes[2].data == {"INSERT": 1, "UPDATE": 1, "DELETE": 1}


def test_timeline_shows_type_and_constraint_changes(tmp_path: Path) -> None:
    bundle = load_bundle(
        write_bundle(
            tmp_path / "drizzle",
            [
                ("0000_a", "CREATE TABLE `t` (`id` integer PRIMARY KEY, `n` integer);"),
                (
                    "0001_b",
                    f"CREATE TABLE `__new_t` (`id` integer PRIMARY KEY, `n` text NOT NULL);{BP}"
                    "INSERT INTO `__new_t`(`id`, `n`) SELECT `id`, `n` FROM `t`;"
                    f"{BP}DROP TABLE `t`;{BP}ALTER TABLE `__new_t` RENAME TO `t`;"
                    f"{BP}CREATE INDEX `t_n` ON `t` (`n`);",
                ),
                (
                    "0002_c",
                    f"DROP INDEX `t_n`;{BP}ALTER TABLE `t` DROP COLUMN `n`;{BP}"
                    "ALTER TABLE `t` RENAME TO `t2`;",
                ),
            ],
        )
    )
    b, c = migration_changes(bundle, ImageCache())[1:]
    assert b.changes == (
        "table `t` recreated",
        "column `t.n`: type `INTEGER` → `TEXT`",
        "column `t.n`: nullability `nullable` → `NOT NULL`",
        "index `t_n` on `t` added",
    )
    assert b.data == {}
    assert c.changes == (
        "table `t` renamed to `t2`",
        "column `t2.n` dropped",
        "index `t_n` dropped",
    )


def test_failing_migration_stops_the_timeline(tmp_path: Path) -> None:
    bundle = load_bundle(
        write_bundle(
            tmp_path / "drizzle",
            [
                ("0000_a", "CREATE TABLE `t` (`id` integer PRIMARY KEY);"),
                ("0001_b", "ALTER TABLE `nosuch` ADD `x` text;"),
                ("0002_c", "CREATE TABLE `u` (`id` integer PRIMARY KEY);"),
            ],
        )
    )
    changes = migration_changes(bundle, ImageCache())
    assert changes[0].error is None
    assert changes[1].error is not None and "no such table: nosuch" in changes[1].error
    assert changes[2].error == "not reached"
    md = render_report([bundle], base=tmp_path, images=ImageCache())
    check_markdown(md)
    assert "Migration `0001_b` does not apply on a fresh Durable Object" in md
    assert "t {" in md  # the schema before the failing migration is still drawn
    assert "| 3 | [0002\\_c](drizzle/0002_c.sql) | 2026-01-03 00:00 | – | not reached |" in md


# --------------------------------------------------------------------------------------------
# the whole report


def test_report_is_wellformed_markdown_with_working_links(tmp_path: Path) -> None:
    bundle = tricky_bundle(tmp_path / "proj")
    out = tmp_path / "reports"
    out.mkdir()
    outcomes = {"idempotent": "passed", "lint": "failed", "bundle_integrity": "skipped"}
    results = {bundle.root: outcomes}
    md = render_report([bundle], results, base=out, images=ImageCache())
    tables = check_markdown(md)
    assert md.count("```mermaid\nerDiagram\n") == 1
    # header table
    header = tables[0]
    assert header[0] == [
        "Bundle", "Durable Object classes", "Migrations", "SQLite", "Runtime emulated"
    ]  # fmt: skip
    assert header[1][2] == "3" and header[1][4] == "workerd 1.20261117.1"
    # checks in registry order, with outcomes
    checks = next(t for t in tables if t[0] == ["Check", "Result", "Why"])
    assert checks[1:] == [
        ["`bundle_integrity`", "⏭️ skipped", ""],
        ["`idempotent`", "✅ passed", ""],
        ["`lint`", "❌ failed", ""],
    ]
    assert "### Checks: 1 passed, 1 failed, 1 skipped" in md
    # timeline rows link to the files
    timeline = next(t for t in tables if t[0][0] == "#")
    assert [row[0] for row in timeline[1:]] == ["1", "2", "3"]
    assert "data: 1 DELETE, 1 INSERT, 1 UPDATE" in timeline[3][4]
    # lint findings point at the right lines, relative to the report's folder
    lint = next(t for t in tables if t[0] == ["Where", "Rule", "Severity", "Message"])
    assert {row[1] for row in lint[1:]} >= {"`DO001` pragma-foreign-keys"}
    for label, target in links(md):
        path, _, anchor = target.partition("#")
        assert not Path(unquote(path)).is_absolute()
        file = (out / unquote(path)).resolve()
        assert file.exists(), (label, target)
        if anchor:
            line = int(anchor.removeprefix("L"))
            text = file.read_text().splitlines()[line - 1]
            assert label.endswith(f":{line}")
            if "pragma" in md.split(target)[1].split("\n")[0]:
                assert "PRAGMA" in text
    assert "## `../proj/drizzle`" in md and "[../proj/drizzle](../proj/drizzle)" in md
    assert "](../proj/drizzle/0002_changes.sql#L7)" in md  # PRAGMA foreign_keys=OFF
    assert "Names changed for the diagram: `one` → `one_`, `order items` → `order_items`." in md
    assert "Views: `post_titles`." in md


def test_report_of_several_bundles_has_an_overview(tmp_path: Path) -> None:
    a = load_bundle(write_bundle(tmp_path / "a", TRICKY[:1]))
    b = load_bundle(EXAMPLE)
    results = {a.root: {"lint": "passed", "do_contract": "skipped"}}
    md = render_report([a, b], results, base=tmp_path, images=ImageCache())
    tables = check_markdown(md)
    assert tables[0][0] == ["Bundle", "Migrations", "Checks"]
    # the skipped ones were left out, unlike in the bundle's own section
    assert tables[0][1] == ["`a`", "1", "1 passed, 0 failed, 1 skipped"]
    assert tables[0][2][1:] == ["6", "–"]
    assert md.count("```mermaid") == 2
    assert md.count("## `") == 2


def test_empty_bundle_and_no_bundle(tmp_path: Path) -> None:
    md = render_report([], base=tmp_path)
    check_markdown(md)
    assert "_No drizzle bundle found._" in md
    empty = load_bundle(write_bundle(tmp_path / "drizzle", []))
    md = render_report([empty], base=tmp_path, images=ImageCache())
    check_markdown(md)
    assert "_No tables._" in md and "_No migrations._" in md and "```mermaid" not in md


# --------------------------------------------------------------------------------------------
# the plugin and the CLI


def test_pytest_dosqlite_report_writes_the_file(pytester: pytest.Pytester) -> None:
    root = pytester.path
    (root / "wrangler.toml").write_text(WRANGLER_TOML)
    (root / "drizzle.config.ts").write_text(DRIZZLE_CONFIG)
    (root / "src").mkdir()
    (root / "src" / "index.ts").write_text(
        "import migrations from '../drizzle/migrations';\nexport class RoomDO {}\n"
    )
    write_bundle(root / "drizzle", TRICKY[:2])
    checks = "bundle_integrity,upgrade_from_empty,idempotent"
    result = pytester.runpytest_subprocess(
        "--dosqlite",
        "-p",
        "no:cacheprovider",
        f"--dosqlite-checks-include={checks}",
        "--dosqlite-report",
        "reports/out.md",
    )
    result.assert_outcomes(passed=3)
    report = root / "reports" / "out.md"
    result.stdout.fnmatch_lines([f"dosqlite: report written to {report}"])
    md = report.read_text()
    tables = check_markdown(md)
    assert tables[0][1][0] == "[drizzle](../drizzle) (durable-sqlite)"
    assert tables[0][1][1] == "`RoomDO`"
    results = next(t for t in tables if t[0] == ["Check", "Result", "Why"])
    assert results[1:] == [
        ["`bundle_integrity`", "✅ passed", ""],
        ["`upgrade_from_empty`", "✅ passed", ""],
        ["`idempotent`", "✅ passed", ""],
    ]
    assert 'posts }o--|| users : "author_id: ON DELETE CASCADE"' in md
    assert "](../drizzle/0001_more.sql)" in md
    assert "Traceback" not in result.stdout.str()

    # without the option nothing is written; an unwritable path is said, not a traceback
    report.unlink()
    result = pytester.runpytest_subprocess(
        "--dosqlite", "-p", "no:cacheprovider", "--dosqlite-checks-include=idempotent"
    )
    result.assert_outcomes(passed=1)
    assert not report.exists()
    (root / "afile").write_text("")
    result = pytester.runpytest_subprocess(
        "--dosqlite",
        "-p",
        "no:cacheprovider",
        "--dosqlite-checks-include=idempotent",
        "--dosqlite-report=afile/out.md",
        "-q",  # on its own line, after the summary (not glued to the "[100%]" of -q)
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["drizzle: 2 migrations*", "dosqlite: could not write the report to *afile*out.md*"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # CI must not publish nothing silently
    result = pytester.runpytest_subprocess(
        "--dosqlite", "-p", "no:cacheprovider", "--dosqlite-report=adir/"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dosqlite_report needs a file name, not a folder: adir/*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_report_path_from_the_ini_file_is_relative_to_the_rootdir(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_bundle(pytester.path / "drizzle", TRICKY[:1])
    pytester.makeini("[pytest]\ndosqlite_report = build/dosqlite.md\n")
    monkeypatch.chdir(pytester.mkdir("sub"))
    result = pytester.runpytest_subprocess(
        "--dosqlite",
        "-p",
        "no:cacheprovider",
        "--dosqlite-bundle",
        "../drizzle",
        "--dosqlite-checks-include=idempotent",
    )
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "sub" / "build").exists()
    md = (pytester.path / "build" / "dosqlite.md").read_text()
    check_markdown(md)
    assert "## `../drizzle`" in md and "[../drizzle](../drizzle)" in md


def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_dosqlite.cli import main

    bundle = write_bundle(tmp_path / "drizzle", TRICKY[:1])
    out = tmp_path / "docs" / "schema.md"
    out.parent.mkdir()
    assert main(["report", str(bundle), "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"report written to {out}\n"
    md = out.read_text()
    check_markdown(md)
    assert "](../drizzle/0000_init.sql)" in md and "```mermaid\nerDiagram\n" in md
    assert main(["report", str(bundle)]) == 0
    assert "## `" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nosuch")]) == 2
    assert main(["report", str(bundle), "-o", str(tmp_path)]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_the_schema_walk_reads_each_version_as_a_full_introspection_would(
    tmp_path: Path,
) -> None:
    # migration_changes reads only the tables whose sqlite_master rows changed (a 1000-migration
    # bundle took 67 s when it read every table at every version); what it builds must be the
    # schema itself, including what a migration changes in tables it does not name (a RENAME
    # rewrites the foreign keys of the tables that point at the renamed one)
    from pytest_dosqlite.report import _SchemaWalk

    more = [
        (
            "0003_rename_and_trigger",
            f"ALTER TABLE `tags` RENAME TO `labels`;{BP}\n"
            "CREATE TRIGGER `users_nick` AFTER INSERT ON `users` BEGIN "
            f"UPDATE `users` SET `nick` = NEW.`email` WHERE `id` = NEW.`id`; END;{BP}\n"
            # names are matched as SQLite stores them, whatever case a statement uses
            f"CREATE TABLE `MixedCase` (`a` integer);{BP}\n"
            "CREATE INDEX `mc_a` ON `mixedcase` (`a`);",
        ),
        (
            "0004_drop_view",
            f"DROP VIEW `post_titles`;{BP}\nDROP INDEX `posts_author_idx`;{BP}\n"
            "ALTER TABLE `MIXEDCASE` ADD `b` text;",
        ),
    ]
    bundle = load_bundle(write_bundle(tmp_path / "drizzle", [*TRICKY, *more]))
    cache = ImageCache()
    walk = _SchemaWalk()
    for k in range(len(bundle.migrations) + 1):
        image = cache.version(bundle, k).image
        assert image is not None
        got = walk.schema(image)
        full = _introspected(image)
        assert got == full
        assert [x.sql for x in (*got.tables, *got.indexes, *got.views, *got.triggers)] == [
            x.sql for x in (*full.tables, *full.indexes, *full.views, *full.triggers)
        ]
    post_tags = got.table("post_tags")
    assert post_tags is not None and {f.ref_table for f in post_tags.foreign_keys} == {
        "posts",
        "labels",
    }


def _introspected(image: bytes) -> Schema:
    """The whole schema of ``image``, read at once through the DO's ``sql.exec``."""
    from pytest_dosqlite.schema import introspect
    from pytest_dosqlite.storage import DurableObjectStorage

    do = DurableObjectStorage(image=image)
    try:
        return introspect(lambda sql: [tuple(r) for r in do.sql.exec(sql).raw()])
    finally:
        do.close()


def test_report_lists_the_findings_the_lint_check_judged_by(pytester: pytest.Pytester) -> None:
    # under the start that turns foreign keys off, lint passes without DO024: the report
    # listed DO024 as an error next to "lint: passed"
    from test_plugin import RECREATION, make_project

    make_project(pytester.path, RECREATION)
    pytester.makeini(
        "[pytest]\ndosqlite_start = drizzle-fk-off\ndosqlite_lint_severity = DO001=off\n"
    )
    result = pytester.runpytest_subprocess(
        "--dosqlite",
        "-p",
        "no:cacheprovider",
        "--dosqlite-checks-include=lint",
        "--dosqlite-report=out.md",
    )
    result.assert_outcomes(passed=1)
    md = (pytester.path / "out.md").read_text()
    assert "### Lint findings: 0" in md
    assert "DO024" not in md and "DO001" not in md
    # the CLI report reads the same settings from the ini
    from pytest_dosqlite.cli import main

    out = pytester.path / "cli.md"
    assert main(["report", str(pytester.path), "-o", str(out)]) == 0
    assert "### Lint findings: 0" in out.read_text()


def _report_run(pytester: pytest.Pytester, workers: str, checks: str) -> pytest.RunResult:
    """``pytest --dosqlite -n WORKERS`` with only ``checks``, writing ``out.md``."""
    return pytester.runpytest_subprocess(
        "--dosqlite",
        "-p",
        "no:cacheprovider",
        "-n",
        workers,
        f"--dosqlite-checks-include={checks}",
        "--dosqlite-report=out.md",
    )


@pytest.mark.parametrize("workers", ["0", "2"])
def test_the_report_says_why_a_check_failed_or_was_skipped(
    pytester: pytest.Pytester, workers: str
) -> None:
    from test_plugin import GOOD, make_project

    make_project(
        pytester.path,
        [*GOOD, ("0002_custom", "-- Custom SQL migration file, put your code below! --")],
    )
    result = _report_run(pytester, workers, "upgrade_from_empty,idempotent")
    result.assert_outcomes(failed=1, skipped=1)
    tables = check_markdown((pytester.path / "out.md").read_text())
    checks = next(t for t in tables if t[0] == ["Check", "Result", "Why"])
    why = {row[0]: row[2] for row in checks[1:]}
    assert why["`upgrade_from_empty`"].startswith("migration 0002\\_custom fails on a fresh")
    assert "upgrade\\_from\\_empty reports the failure" in why["`idempotent`"]


def test_on_github_actions_links_point_into_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the workflow pastes the report into the job summary, where relative links lead nowhere
    write_bundle(tmp_path / "repo" / "drizzle", TRICKY[:2])
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/app")
    monkeypatch.setenv("GITHUB_SHA", "0123abc")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path / "repo"))
    bundle = load_bundle(tmp_path / "repo" / "drizzle")
    md = render_report([bundle], base=tmp_path / "repo" / "out", images=ImageCache())
    check_markdown(md)
    assert "(https://github.com/acme/app/blob/0123abc/drizzle/0001_more.sql)" in md
    assert "(https://github.com/acme/app/tree/0123abc/drizzle)" in md
    assert "](../" not in md


@pytest.mark.parametrize("workers", ["0", "2"])
def test_the_report_lists_a_checks_own_warnings(pytester: pytest.Pytester, workers: str) -> None:
    # a wrangler config without a Text rule for .sql files: wrangler_contract warns, and the
    # warning was only in the terminal
    from test_plugin import WRANGLER_TOML, make_project

    no_rule = WRANGLER_TOML.split("[[rules]]")[0]
    make_project(pytester.path, wrangler=no_rule)
    result = _report_run(pytester, workers, "wrangler_contract")
    md = (pytester.path / "out.md").read_text()
    check_markdown(md)
    assert "### Warnings" in md and "Text" in md.split("### Warnings")[1].split("###")[0], (
        result.stdout.str()
    )
