"""DO029 recreate-copies-missing-column: a recreation copies a column the old table lacks.

drizzle-kit 0.31 lists a column added in the same ``generate`` that recreates a table in the
``INSERT INTO __new_X(...) SELECT ... FROM X`` copy. ``X`` has no such column yet, and SQLite
reads the double-quoted name as a string literal: no error, and every row gets the column's name
as its value. These tests pin the lint finding and show the effect on the emulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import shared_path
from pytest_dosqlite.bundle import Bundle, load_bundle
from pytest_dosqlite.checks import CheckContext
from pytest_dosqlite.errors import CheckFailure, MigrationError
from pytest_dosqlite.lint import RULES, DosqliteLintWarning, Finding, lint_bundle, lint_check
from pytest_dosqlite.migrator import migrate
from pytest_dosqlite.storage import DurableObjectStorage

BP = "--> statement-breakpoint\n"

NOTES = (
    "CREATE TABLE `notes` (\n\t`id` integer PRIMARY KEY NOT NULL,\n\t`title` text NOT NULL\n);\n"
)


def recreation(
    copy_cols: str, select: str, check: str = 'length("__new_notes"."title") > 0'
) -> str:
    """drizzle-kit 0.31's recreation of ``notes`` adding ``pinned`` and a CHECK, as it writes it."""
    return (
        "PRAGMA foreign_keys=OFF;" + BP + "CREATE TABLE `__new_notes` (\n"
        "\t`id` integer PRIMARY KEY NOT NULL,\n"
        "\t`title` text NOT NULL,\n"
        "\t`pinned` integer DEFAULT false NOT NULL,\n"
        f'\tCONSTRAINT "notes_check" CHECK({check})\n'
        ");\n"
        + BP
        + f"INSERT INTO `__new_notes`({copy_cols}) SELECT {select} FROM `notes`;"
        + BP
        + "DROP TABLE `notes`;"
        + BP
        + "ALTER TABLE `__new_notes` RENAME TO `notes`;"
        + BP
        + "PRAGMA foreign_keys=ON;"
    )


#: exactly what drizzle-kit 0.31 generates: "pinned" is in the copy although `notes` lacks it
BROKEN = recreation('"id", "title", "pinned"', '"id", "title", "pinned"')
#: the hand-fixed version: the new column is left to its DEFAULT
FIXED = recreation('"id", "title"', '"id", "title"')


def write_bundle(root: Path, *sqls: str) -> Bundle:
    """A real durable-sqlite bundle on disk (journal, migrations.js, .sql), loaded as drizzle."""
    (root / "meta").mkdir(parents=True)
    entries = []
    imports = []
    keys = []
    for i, sql in enumerate(sqls):
        tag = f"{i:04d}_step{i}"
        (root / f"{tag}.sql").write_text(sql, encoding="utf-8")
        entries.append(
            {
                "idx": i,
                "version": "6",
                "when": 1_750_000_000_000 + i,
                "tag": tag,
                "breakpoints": True,
            }
        )
        imports.append(f"import m{i:04d} from './{tag}.sql';")
        keys.append(f"m{i:04d}")
    journal = {"version": "7", "dialect": "sqlite", "entries": entries}
    (root / "meta" / "_journal.json").write_text(json.dumps(journal, indent=2), encoding="utf-8")
    js = (
        "import journal from './meta/_journal.json';\n"
        + "\n".join(imports)
        + "\n\n  export default {\n    journal,\n    migrations: {\n      "
        + ",\n".join(keys)
        + "\n    }\n  }\n"
    )
    (root / "migrations.js").write_text(js, encoding="utf-8")
    bundle = load_bundle(root)
    assert not [p for p in bundle.problems if p.severity == "error"], bundle.problems
    return bundle


def do029(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.rule == "DO029"]


def line_of(path: Path | None, text: str) -> int:
    assert path is not None
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


# ------------------------------------------------------------------------------ the rule


def test_rule_is_registered() -> None:
    rule = RULES["DO029"]
    assert rule.name == "recreate-copies-missing-column"
    assert rule.severity == "error"
    assert "string literal" in rule.summary and "DEFAULT" in rule.fix


def test_fires_on_drizzle_kit_recreation_that_copies_a_new_column(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "drizzle", NOTES, BROKEN)
    (f,) = do029(lint_bundle(bundle))
    assert f.severity == "error"
    assert f.tag == "0001_step1"
    assert f.line == line_of(f.path, "INSERT INTO `__new_notes`")
    assert f.statement.startswith("INSERT INTO `__new_notes`")
    assert "`notes` has no column `pinned`" in f.message
    assert "the string 'pinned'" in f.message
    assert "into `__new_notes`.`pinned`" in f.message


def test_clean_recreation_stays_quiet(tmp_path: Path) -> None:
    findings = lint_bundle(write_bundle(tmp_path / "drizzle", NOTES, FIXED))
    assert do029(findings) == []
    assert {f.rule for f in findings} == {"DO001"}  # only the no-op PRAGMA warnings


def test_column_added_by_an_earlier_migration_is_known(tmp_path: Path) -> None:
    """'At that point': a column an earlier migration (or statement) added is a real column."""
    add = "ALTER TABLE `notes` ADD `pinned` integer DEFAULT false NOT NULL;"
    assert do029(lint_bundle(write_bundle(tmp_path / "a", NOTES, add, BROKEN))) == []
    same_migration = add + BP + BROKEN
    assert do029(lint_bundle(write_bundle(tmp_path / "b", NOTES, same_migration))) == []


@pytest.mark.parametrize(
    "select",
    [
        '"id", "title", false',  # the intended value, written as a literal
        '"id", "title", "rowid" % 2',  # rowid resolves on a rowid table
        '"id", "title", length("title") > 3',  # an expression over existing columns
        '"id", "title", "notes"."id" > 1',  # a qualified name is never a string
        '"id", "title", (SELECT count(*) FROM "notes" AS "n" WHERE "n"."id" = 1)',
        '"id", "title", 0 AS "pinned"',  # an alias names the output, not a column
    ],
)
def test_other_select_items_are_not_mistaken(tmp_path: Path, select: str) -> None:
    sql = recreation('"id", "title", "pinned"', select)
    findings = lint_bundle(write_bundle(tmp_path / "drizzle", NOTES, sql))
    assert do029(findings) == [], [str(f) for f in findings]


def test_missing_name_inside_an_expression_fires(tmp_path: Path) -> None:
    sql = recreation('"id", "title", "pinned"', '"id", "title", COALESCE("pinned", 0)')
    (f,) = do029(lint_bundle(write_bundle(tmp_path / "drizzle", NOTES, sql)))
    assert "the string 'pinned'" in f.message


def test_unquoted_missing_column_is_reported_as_a_failure(tmp_path: Path) -> None:
    """A bare or backtick name does not fall back to a string: the copy fails outright."""
    sql = recreation('"id", "title", "pinned"', '"id", "title", `pinned`')
    bundle = write_bundle(tmp_path / "drizzle", NOTES, sql)
    (f,) = do029(lint_bundle(bundle))
    assert "fails with `no such column`" in f.message
    with pytest.raises(MigrationError) as info:
        migrate(DurableObjectStorage(), bundle)
    assert "no such column: pinned" in str(info.value.cause)


def test_severity_override_and_ignore_comment(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "a", NOTES, BROKEN)
    assert do029(lint_bundle(bundle, severities={"DO029": "off"})) == []
    (w,) = do029(lint_bundle(bundle, severities={"recreate-copies-missing-column": "warning"}))
    assert w.severity == "warning"
    ignored = BROKEN.replace(
        "INSERT INTO", "-- dosqlite:ignore DO029 pinned is deliberate\nINSERT INTO"
    )
    assert do029(lint_bundle(write_bundle(tmp_path / "b", NOTES, ignored))) == []


def test_lint_check_fails_with_the_finding(tmp_path: Path) -> None:
    ctx = CheckContext(bundle=write_bundle(tmp_path / "drizzle", NOTES, BROKEN))
    with pytest.raises(CheckFailure) as info, pytest.warns(DosqliteLintWarning, match="DO001"):
        lint_check(ctx)
    text = info.value.render()
    assert "DO029 recreate-copies-missing-column" in text
    assert "0001_step1.sql:" in text


# --------------------------------------------------------------------- what it does on a DO


def seeded_at_first_version(bundle: Bundle) -> DurableObjectStorage:
    do = DurableObjectStorage()
    migrate(do, bundle.prefix(1))
    do.sql.exec("INSERT INTO notes (id, title) VALUES (1, 'groceries'), (2, 'ideas')")
    return do


def test_emulator_stores_the_column_name_in_every_row(tmp_path: Path) -> None:
    """What the lint warns about really happens: migrate() succeeds and pinned = 'pinned'."""
    bundle = write_bundle(tmp_path / "drizzle", NOTES, BROKEN)
    do = seeded_at_first_version(bundle)
    run = migrate(do, bundle)
    assert run.applied == ["0001_step1"]
    rows = do.sql.exec("SELECT id, pinned, typeof(pinned) FROM notes ORDER BY id").raw().to_array()
    assert rows == [[1, "pinned", "text"], [2, "pinned", "text"]]
    # a fresh DO (no rows) shows nothing: this is why only the lint and data checks catch it
    empty = DurableObjectStorage()
    migrate(empty, bundle)
    assert empty.sql.exec("SELECT count(*) FROM notes").raw().to_array() == [[0]]


def test_emulator_fixed_recreation_uses_the_default(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "drizzle", NOTES, FIXED)
    do = seeded_at_first_version(bundle)
    migrate(do, bundle)
    rows = do.sql.exec("SELECT id, pinned, typeof(pinned) FROM notes ORDER BY id").raw().to_array()
    assert rows == [[1, 0, "integer"], [2, 0, "integer"]]


def test_emulator_check_on_the_column_rolls_the_migration_back(tmp_path: Path) -> None:
    broken = recreation(
        '"id", "title", "pinned"',
        '"id", "title", "pinned"',
        check='"__new_notes"."pinned" IN (0, 1)',
    )
    bundle = write_bundle(tmp_path / "drizzle", NOTES, broken)
    assert len(do029(lint_bundle(bundle))) == 1
    do = seeded_at_first_version(bundle)
    with pytest.raises(MigrationError) as info:
        migrate(do, bundle)
    assert "CHECK constraint failed" in str(info.value.cause)
    assert info.value.drizzle_message == "DrizzleError: Rollback"
    # rolled back: still at the first version, rows intact
    cols = [r[1] for r in do.sql.exec("PRAGMA table_info(notes)").raw().to_array()]
    assert cols == ["id", "title"]
    assert do.sql.exec("SELECT count(*) FROM notes").raw().to_array() == [[2]]


# --------------------------------------------------------------------------- real world


def test_corpus_sprintjam_standup_history() -> None:
    """sprintjam's standup DO, before its chain was squashed: is_in_person was added in the same
    generate that recreated standup_responses (commit b95d7d2, 0002_remarkable_martin_li)."""
    root = shared_path(
        "corpus",
        "nicholasgriffintn__sprintjam.co.uk",
        "_history",
        "b95d7d2642e1ef3c211ee12b63d4f009c8244c86",
        "apps",
        "standup-worker",
        "drizzle",
    )
    bundle = load_bundle(root)
    (f,) = do029(lint_bundle(bundle))
    assert (f.tag, f.line) == ("0002_remarkable_martin_li", 18)
    assert "`standup_responses` has no column `is_in_person`" in f.message
    do = DurableObjectStorage()
    migrate(do, bundle.prefix(2))
    do.sql.exec(
        "INSERT INTO standup_responses (user_name, yesterday, today, submitted_at, updated_at) "
        "VALUES ('ada', 'a', 'b', 1, 1)"
    )
    migrate(do, bundle)
    got = do.sql.exec("SELECT is_in_person FROM standup_responses").raw().to_array()
    assert got == [["is_in_person"]]
