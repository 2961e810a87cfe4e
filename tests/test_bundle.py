"""The bundle loader on small bundles built here: every format and every problem code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_dosqlite import DurableObjectStorage, migrate
from pytest_dosqlite import bundle as bundle_mod
from pytest_dosqlite.bundle import (
    BREAKPOINT,
    PROBLEM_CODES,
    Bundle,
    Migration,
    js_locale_compare_key,
    load_bundle,
    v1_folder_millis,
)
from pytest_dosqlite.errors import BundleError

EXAMPLES = Path(__file__).resolve().parent / "examples"
ORIGIN = "00000000-0000-0000-0000-000000000000"

Entry = tuple[str, int, str]  # tag, when, sql


def kit_js(tags: Sequence[str], idxs: Sequence[int] | None = None) -> str:
    """migrations.js exactly as drizzle-kit 0.31 writes it."""
    idxs = list(range(len(tags))) if idxs is None else list(idxs)
    imports = "import journal from './meta/_journal.json';\n" + "".join(
        f"import m{i:04d} from './{t}.sql';\n" for i, t in zip(idxs, tags, strict=True)
    )
    keys = ",\n".join(f"m{i:04d}" for i in idxs)
    return (
        imports
        + "\n  export default {\n    journal,\n    migrations: {\n      "
        + keys
        + "\n    }\n  }\n  "
    )


def write_bundle(
    root: Path,
    entries: Sequence[Entry],
    *,
    js: str | bool = True,
    snapshots: bool = True,
    idxs: Sequence[int] | None = None,
    dialect: str = "sqlite",
) -> Path:
    out = root / "drizzle"
    (out / "meta").mkdir(parents=True, exist_ok=True)
    idxs = list(range(len(entries))) if idxs is None else list(idxs)
    journal = {
        "version": "7",
        "dialect": dialect,
        "entries": [
            {"idx": i, "version": "6", "when": w, "tag": t, "breakpoints": True}
            for i, (t, w, _) in zip(idxs, entries, strict=True)
        ],
    }
    (out / "meta" / "_journal.json").write_text(json.dumps(journal, indent=2))
    prev = ORIGIN
    for n, (tag, _, sql) in enumerate(entries):
        (out / f"{tag}.sql").write_bytes(sql.encode())
        if snapshots:
            sid = f"aaaaaaaa-0000-4000-8000-{n:012d}"
            snap = {"version": "6", "dialect": "sqlite", "id": sid, "prevId": prev, "tables": {}}
            (out / "meta" / f"{tag.split('_')[0]}_snapshot.json").write_text(
                json.dumps(snap, indent=2)
            )
            prev = sid
    if js is True:
        (out / "migrations.js").write_text(kit_js([t for t, _, _ in entries], idxs))
    elif isinstance(js, str):
        (out / "migrations.js").write_text(js)
    return out


BASIC: list[Entry] = [
    ("0000_init", 1700000000000, "CREATE TABLE `a` (`id` integer);\n" + BREAKPOINT + "\nSELECT 1;"),
    ("0001_more", 1700000001000, "ALTER TABLE `a` ADD `b` text;"),
    ("0002_last", 1700000002000, "CREATE INDEX `i` ON `a` (`b`);"),
]


def codes(bundle: Bundle) -> list[str]:
    return sorted(p.code for p in bundle.problems)


def only(bundle: Bundle, code: str) -> list[bundle_mod.Problem]:
    found = [p for p in bundle.problems if p.code == code]
    assert found, f"no {code} in {[str(p) for p in bundle.problems]}"
    return found


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            st = (Path(dirpath) / f).stat()
            out[os.path.join(dirpath, f)] = (st.st_size, st.st_mtime_ns)
    return out


# ------------------------------------------------------------------ durable-sqlite


def test_durable_bundle_in_journal_order(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    b = load_bundle(out)
    assert b.format == "durable-sqlite"
    assert b.problems == ()
    assert b.drizzle_error is None and b.missing == ()
    assert [m.tag for m in b.migrations] == ["0000_init", "0001_more", "0002_last"]
    assert [m.key for m in b.migrations] == ["m0000", "m0001", "m0002"]
    assert [m.when for m in b.migrations] == [1700000000000, 1700000001000, 1700000002000]
    assert b.migrations[0].sql == BASIC[0][2]
    assert b.migrations[0].chunks == ("CREATE TABLE `a` (`id` integer);\n", "\nSELECT 1;")
    assert b.migrations[0].path == out / "0000_init.sql"
    assert b.migrations[0].snapshot == out / "meta" / "0000_snapshot.json"
    assert b.migrations[1].line is not None and b.migrations[1].line > b.migrations[0].line  # type: ignore[operator]
    assert b.js_keys == ("m0000", "m0001", "m0002")
    assert b.journal_version == "7" and b.journal_dialect == "sqlite"
    assert len(b.snapshot_paths) == 3
    assert b.migrations_js_path == out / "migrations.js"


@pytest.mark.parametrize(
    "target",
    ["", "meta/_journal.json", "meta", "migrations.js", "0001_more.sql", "meta/0001_snapshot.json"],
)
def test_any_path_inside_the_bundle_finds_its_root(tmp_path: Path, target: str) -> None:
    out = write_bundle(tmp_path, BASIC)
    b = load_bundle(out / target if target else out)
    assert b.root == out
    assert len(b.migrations) == 3


def test_file_text_kept_byte_for_byte(tmp_path: Path) -> None:
    sql = "\ufeffCREATE TABLE `a` (\r\n\t`id` integer\r\n);\r\n" + BREAKPOINT + "\r\n"
    out = write_bundle(tmp_path, [("0000_crlf", 1, sql)])
    m = load_bundle(out).migrations[0]
    assert m.sql == sql
    assert m.chunks[-1] == "\r\n"
    assert m.sha256 == __import__("hashlib").sha256(sql.encode()).hexdigest()


def test_journal_array_order_wins_over_idx_and_when(tmp_path: Path) -> None:
    entries = [BASIC[2], BASIC[0], BASIC[1]]
    out = write_bundle(tmp_path, entries, idxs=[2, 0, 1])
    b = load_bundle(out)
    assert [m.tag for m in b.migrations] == ["0002_last", "0000_init", "0001_more"]
    assert [m.key for m in b.migrations] == ["m0002", "m0000", "m0001"]
    assert {"idx-sequence", "when-not-increasing"} <= set(codes(b))
    assert all(p.severity == "warning" for p in b.problems_with("idx-sequence"))


def test_formatter_rewritten_migrations_js(tmp_path: Path) -> None:
    js = (
        'import m0000 from "./0000_init.sql"\n'
        'import m0001 from "./0001_more.sql"\n'
        'import m0002 from "./0002_last.sql"\n'
        'import journal from "./meta/_journal.json"\n\n'
        "export default {\n  journal,\n  migrations: {\n    m0000,\n    m0001: m0001,\n"
        '    "m0002": m0002,\n  },\n}\n'
    )
    b = load_bundle(write_bundle(tmp_path, BASIC, js=js))
    assert b.problems == ()
    assert [m.sql for m in b.migrations] == [e[2] for e in BASIC]


@pytest.mark.parametrize(
    "members",
    [
        "m0000,\n    \\u006d0001,\n    ['m0002']: m0002,",
        'm0000,\n    m0001: \\u{6d}0001,\n    ["m0002"]: m0002,',
    ],
)
def test_escaped_and_bracketed_keys(tmp_path: Path, members: str) -> None:
    # node: Object.keys({ \u006d0001, ['m0002']: m0002 }) is ['m0001', 'm0002']; both were
    # read as missing keys, and every DO "failed" with Missing migration
    js = (
        'import m0000 from "./0000_init.sql"\n'
        'import \\u006d0001 from "./0001_more.sql"\n'
        'import m0002 from "./0002_last.sql"\n'
        'import journal from "./meta/_journal.json"\n\n'
        f"export default {{\n  journal,\n  migrations: {{\n    {members}\n  }},\n}}\n"
    )
    b = load_bundle(write_bundle(tmp_path, BASIC, js=js))
    assert b.problems == (), [str(p) for p in b.problems]
    assert [m.sql for m in b.migrations] == [e[2] for e in BASIC]


def test_committed_examples_load_clean() -> None:
    for name in ("bundle-durable-basic", "bundle-durable-formatted", "bundle-journal"):
        b = load_bundle(EXAMPLES / name)
        assert b.problems == (), (name, [str(p) for p in b.problems])
        assert [m.tag for m in b.migrations] == ["0000_create_rooms", "0001_add_topic"]
        assert b.migrations[0].chunks[1].startswith("\nCREATE UNIQUE INDEX")  # untrimmed
    assert load_bundle(EXAMPLES / "bundle-journal").format == "journal"
    assert load_bundle(EXAMPLES / "bundle-durable-formatted").format == "durable-sqlite"


def test_committed_defects_example() -> None:
    b = load_bundle(EXAMPLES / "bundle-defects")
    assert set(codes(b)) == {
        "missing-key",
        "orphan-sql",
        "when-not-increasing",
        "missing-snapshot",
    }
    assert b.missing == ("0002_add_owner",)
    assert b.drizzle_error == "Missing migration: 0002_add_owner"
    # the missing entry still carries its SQL so lint can see it
    assert b.migration("0002").sql == "ALTER TABLE `rooms` ADD `owner` text;"


def test_key_value_form_runs_the_imported_file(tmp_path: Path) -> None:
    js = (
        "import journal from './meta/_journal.json';\n"
        "import a from './0000_init.sql';\nimport other from './0002_last.sql';\n"
        "import c from './0002_last.sql';\n"
        "export default { journal, migrations: { m0000: a, m0001: other, m0002: c } };\n"
    )
    b = load_bundle(write_bundle(tmp_path, BASIC, js=js))
    assert b.migrations[1].sql == BASIC[2][2]
    assert b.migrations[1].path is not None and b.migrations[1].path.name == "0002_last.sql"
    mismatch = only(b, "tag-mismatch")
    assert mismatch[0].migration == "0001_more" and mismatch[0].line == 3
    # its own file is named by the tag-mismatch; an orphan-sql said it was not in the journal
    # and to delete it
    assert "'./0001_more.sql'" in mismatch[0].message
    assert "orphan-sql" not in codes(b)


def test_missing_key(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC, js=kit_js(["0000_init", "0001_more"]))
    b = load_bundle(out)
    assert codes(b) == ["missing-key"]
    problem = b.problems[0]
    assert problem.migration == "0002_last"
    assert problem.path == out / "migrations.js"
    assert problem.fix and "drizzle-kit generate" in problem.fix
    assert b.missing == ("0002_last",)
    assert b.drizzle_error == "Missing migration: 0002_last"
    m = b.migrations[2]
    assert m.error == "Missing migration: 0002_last"
    assert m.sql == BASIC[2][2]  # decided: the .sql text is still there for lint
    assert b.prefix(2).missing == () and b.prefix(2).drizzle_error is None
    assert b.prefix(3).drizzle_error == "Missing migration: 0002_last"


def test_missing_key_without_sql_file(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC, js=kit_js(["0000_init", "0001_more"]))
    (out / "0002_last.sql").unlink()
    b = load_bundle(out)
    assert b.migrations[2].sql == "" and b.migrations[2].path is None
    assert b.missing == ("0002_last",)


def test_no_migrations_object(tmp_path: Path) -> None:
    js = "import journal from './meta/_journal.json';\nexport default { journal };\n"
    b = load_bundle(write_bundle(tmp_path, BASIC, js=js))
    assert "missing-key" in codes(b)
    assert b.drizzle_error == "TypeError: Cannot read properties of undefined (reading 'm0000')"
    assert len(b.missing) == 3


def test_missing_sql_journal_format(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC, js=False)
    (out / "0001_more.sql").unlink()
    b = load_bundle(out)
    assert b.format == "journal"
    problem = only(b, "missing-sql")[0]
    assert problem.migration == "0001_more" and problem.path == out / "meta" / "_journal.json"
    assert problem.line is not None
    text = (out / "meta" / "_journal.json").read_text().splitlines()
    assert '"0001_more"' in text[problem.line - 1]
    assert b.drizzle_error == f"No file {out}/0001_more.sql found in {out} folder"
    assert b.missing == ()


def test_missing_sql_import_target(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    (out / "0001_more.sql").unlink()
    b = load_bundle(out)
    problem = only(b, "missing-sql")[0]
    assert problem.path == out / "migrations.js" and problem.line == 3
    assert b.migrations[1].error == 'Could not resolve "./0001_more.sql"'
    assert b.drizzle_error == 'Could not resolve "./0001_more.sql"'


def test_orphans_and_duplicate_keys(tmp_path: Path) -> None:
    js = kit_js(["0000_init", "0001_more", "0002_last"]).replace(
        "import m0000",
        "import m0009 from './0009_extra.sql';\nimport unused from './u.sql';\nimport m0000",
    )
    js = js.replace("m0002\n", "m0002,\nm0009,\nm0002\n")
    out = write_bundle(tmp_path, BASIC, js=js)
    (out / "0009_extra.sql").write_text("SELECT 1;")
    (out / "u.sql").write_text("SELECT 2;")
    (out / "0005_stray.sql").write_text("SELECT 3;")
    b = load_bundle(out)
    orphan_keys = only(b, "orphan-key")
    assert any("m0009" in p.message for p in orphan_keys)
    assert any("'./u.sql'" in p.message for p in orphan_keys)
    assert all(p.severity == "warning" for p in orphan_keys)
    assert [p.path.name for p in only(b, "orphan-sql") if p.path] == ["0005_stray.sql"]
    assert len(only(b, "duplicate-key")) == 1
    assert b.drizzle_error is None


def test_duplicate_prefix(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC, js=False)
    (out / "0001_branch.sql").write_text("SELECT 1;")
    b = load_bundle(out)
    dup = only(b, "duplicate-prefix")[0]
    assert dup.path == out / "0001_branch.sql"
    assert "0001_more.sql" in dup.message
    assert "orphan-sql" in codes(b)


@pytest.mark.parametrize("when", [1699999999999, 1700000001000], ids=["older", "equal"])
def test_when_not_increasing(tmp_path: Path, when: int) -> None:
    entries = [BASIC[0], BASIC[1], ("0002_last", when, BASIC[2][2])]
    out = write_bundle(tmp_path, entries)
    b = load_bundle(out)
    problem = only(b, "when-not-increasing")[0]
    assert problem.migration == "0002_last"
    assert "skips 0002_last forever" in problem.message
    assert problem.line is not None
    line = (out / "meta" / "_journal.json").read_text().splitlines()[problem.line - 1]
    assert f'"when": {when}' in line


def test_when_compared_with_running_maximum(tmp_path: Path) -> None:
    entries = [
        ("0000_a", 1000, "SELECT 1;"),
        ("0001_b", 3000, "SELECT 1;"),
        ("0002_c", 2000, "SELECT 1;"),
        ("0003_d", 2500, "SELECT 1;"),
    ]
    b = load_bundle(write_bundle(tmp_path, entries))
    assert [p.migration for p in only(b, "when-not-increasing")] == ["0002_c", "0003_d"]


def test_a_newest_when_later_than_now_is_a_warning(tmp_path: Path) -> None:
    import time

    now = int(time.time() * 1000)
    day = 24 * 3600 * 1000
    for last, warned in ((now + 30 * day, True), (now + 3600 * 1000, False), (now - day, False)):
        entries = [BASIC[0], ("0001_more", last, BASIC[1][2])]
        b = load_bundle(write_bundle(tmp_path / str(last), entries))
        assert ("when-in-future" in codes(b)) is warned
    (problem,) = only(
        load_bundle(
            write_bundle(tmp_path / "w", [BASIC[0], ("0001_more", now + 30 * day, "SELECT 1;")])
        ),
        "when-in-future",
    )
    assert problem.severity == "warning" and problem.migration == "0001_more"
    assert problem.line is not None and "later than now" in problem.message
    assert "will skip it forever" in problem.message


def test_duplicate_tag_and_idx(tmp_path: Path) -> None:
    entries = [BASIC[0], BASIC[1], ("0001_more", 1700000005000, BASIC[1][2])]
    out = write_bundle(tmp_path, entries, idxs=[0, 1, 1], js=kit_js(["0000_init", "0001_more"]))
    b = load_bundle(out)
    assert only(b, "duplicate-tag")[0].migration == "0001_more"
    dup_idx = [p for p in only(b, "idx-sequence") if p.severity == "error"]
    assert dup_idx and "m0001" in dup_idx[0].message
    assert b.migrations[1].sql == b.migrations[2].sql


def test_a_repeated_tag_is_one_problem_not_a_broken_snapshot_chain(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    journal = out / "meta" / "_journal.json"
    data = json.loads(journal.read_text())
    data["entries"][2]["tag"] = "0001_more"
    journal.write_text(json.dumps(data, indent=2))
    b = load_bundle(out, full_snapshots=True)
    # the second 0001_more reuses 0001_snapshot.json: no "same id as itself", no prevId error
    assert codes(b) == ["duplicate-tag", "orphan-snapshot", "tag-mismatch", "tag-mismatch"]
    assert "both entries run 0001_more.sql" in only(b, "duplicate-tag")[0].message
    assert [m.snapshot for m in b.migrations][2] is None


def test_tag_prefix_mismatch(tmp_path: Path) -> None:
    entries = [BASIC[0], ("0007_more", 1700000001000, "SELECT 1;"), ("custom", 1700000002000, "")]
    b = load_bundle(write_bundle(tmp_path, entries, js=False))
    mism = only(b, "tag-mismatch")
    assert [p.migration for p in mism] == ["0007_more", "custom"]
    assert all(p.severity == "warning" for p in mism)
    assert "empty-sql" in codes(b)


def test_empty_sql_is_missing_on_durable_objects(tmp_path: Path) -> None:
    entries = [BASIC[0], ("0001_empty", 1700000001000, "")]
    b = load_bundle(write_bundle(tmp_path, entries))
    assert only(b, "empty-sql")[0].migration == "0001_empty"
    assert b.missing == ("0001_empty",)
    assert b.drizzle_error == "Missing migration: 0001_empty"


def test_placeholder_with_journal(tmp_path: Path) -> None:
    b = load_bundle(write_bundle(tmp_path, BASIC, js="export default {}\n"))
    assert codes(b) == ["placeholder-migrations-js"]
    assert b.problems[0].line == 1
    assert b.drizzle_error is not None and "reading 'entries'" in b.drizzle_error
    assert len(b.missing) == 3


def test_placeholder_without_journal(tmp_path: Path) -> None:
    out = tmp_path / "drizzle"
    out.mkdir()
    (out / "migrations.js").write_text("export default {};\n")
    b = load_bundle(out)
    assert b.format == "durable-sqlite" and b.migrations == ()
    assert codes(b) == ["placeholder-migrations-js"]


def test_journal_not_imported(tmp_path: Path) -> None:
    js = "import m0000 from './0000_init.sql';\nexport default { migrations: { m0000 } };\n"
    b = load_bundle(write_bundle(tmp_path, BASIC[:1], js=js))
    assert set(codes(b)) == {"journal-not-imported"}
    assert b.drizzle_error is not None and "reading 'entries'" in b.drizzle_error


def test_journal_imported_but_not_exported(tmp_path: Path) -> None:
    js = kit_js(["0000_init"]).replace("journal,\n", "")
    b = load_bundle(write_bundle(tmp_path, BASIC[:1], js=js))
    assert codes(b) == ["journal-not-imported"]
    assert "no `journal` property" in b.problems[0].message


def test_other_folders_journal(tmp_path: Path) -> None:
    js = kit_js(["0000_init"]).replace("./meta/_journal.json", "../other/meta/_journal.json")
    b = load_bundle(write_bundle(tmp_path, BASIC[:1], js=js))
    assert codes(b) == ["journal-not-imported"]
    assert b.problems[0].line == 1


def test_unbound_key(tmp_path: Path) -> None:
    js = kit_js(["0000_init"]).replace("m0000\n    }", "m0000,\nm0001\n    }")
    b = load_bundle(write_bundle(tmp_path, BASIC[:2], js=js))
    assert codes(b) == ["unbound-key"]
    assert b.migrations[1].error == "ReferenceError: m0001 is not defined"
    assert b.migrations[1].sql == BASIC[1][2]


def test_inline_string_and_const(tmp_path: Path) -> None:
    js = (
        "import journal from './meta/_journal.json';\n"
        "const second = `ALTER TABLE x ADD y text;`;\n"
        "export default { journal, migrations: { m0000: 'SELECT 1;', m0001: second } };\n"
    )
    b = load_bundle(write_bundle(tmp_path, BASIC[:2], js=js))
    assert [m.sql for m in b.migrations] == ["SELECT 1;", "ALTER TABLE x ADD y text;"]
    assert b.migrations[0].path == b.migrations_js_path


def inline_js(sqls: Sequence[str]) -> str:
    """A hand-written migrations.js holding each migration's SQL as a template literal."""
    consts = "".join(
        f"const m{i:04d} = `{sql.replace('`', chr(92) + '`')}`;\n" for i, sql in enumerate(sqls)
    )
    keys = ", ".join(f"m{i:04d}" for i in range(len(sqls)))
    return (
        "import journal from './meta/_journal.json';\n"
        + consts
        + f"export default {{ journal, migrations: {{ {keys} }} }};\n"
    )


def test_inline_sql_the_same_as_its_files_is_no_problem(tmp_path: Path) -> None:
    # the .sql files drizzle-kit wrote are the journal's, not orphans; a CRLF checkout of one
    # is the same text (a template literal reads CRLF as LF)
    out = write_bundle(tmp_path, BASIC, js=inline_js([sql for _, _, sql in BASIC]))
    (out / "0001_more.sql").write_bytes(BASIC[1][2].replace("\n", "\r\n").encode())
    b = load_bundle(out)
    assert b.problems == ()
    assert [m.sql for m in b.migrations] == [sql for _, _, sql in BASIC]


def test_inline_sql_that_differs_from_its_file_is_an_error(tmp_path: Path) -> None:
    ran = "ALTER TABLE `a` ADD `c` text;"
    out = write_bundle(tmp_path, BASIC, js=inline_js([BASIC[0][2], ran, BASIC[2][2]]))
    b = load_bundle(out)
    problem = only(b, "inline-sql-differs")[0]
    assert codes(b) == ["inline-sql-differs"] and problem.severity == "error"
    assert problem.path == out / "migrations.js" and problem.line == 5  # its const
    assert problem.migration == "0001_more"
    assert "`m0001` holds the SQL of 0001_more inline, and it differs from 0001_more.sql" in str(
        problem
    )
    assert b.migrations[1].sql == ran  # what the DO runs


def test_v1_inline_sql_against_its_folder(tmp_path: Path) -> None:
    out = write_v1(tmp_path, {"20250301120000_init": "SELECT 1;"}, js=False)
    (out / "migrations.js").write_text(
        "export default { migrations: { '20250301120000_init': `SELECT 1;` } };\n"
    )
    assert load_bundle(out).problems == ()
    (out / "migrations.js").write_text(
        "export default { migrations: { '20250301120000_init': `SELECT 2;` } };\n"
    )
    b = load_bundle(out)
    assert codes(b) == ["inline-sql-differs"]
    assert "differs from 20250301120000_init/migration.sql" in b.problems[0].message


#: inline SQL as JS source text, as hand-written modules have it (escapes, both quotes, line
#: terminators a Windows checkout writes inside a template literal)
INLINE_LITERALS = [
    "`CREATE TABLE a (id integer);\r\n--> statement-breakpoint\r\nSELECT 'x\ry';`",
    "`SELECT '\\r\\n', '\\t', '\\u{1F600}', '\\x41', '\\`', '\\\\', '\\${x}';`",
    "'SELECT \\'it\\'\\'s\\', \"q\", \\u00e9 \\\r\n;'",
    '"SELECT \\ud83d\\ude00, \\0;"',
]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_inline_sql_is_the_string_node_reads(tmp_path: Path) -> None:
    values = tmp_path / "values.mjs"
    values.write_bytes(f"export default [{', '.join(INLINE_LITERALS)}];\n".encode())
    script = "import(process.argv[1]).then(m => console.log(JSON.stringify(m.default)))"
    out = subprocess.run(
        ["node", "-e", script, values.as_uri()], capture_output=True, check=True
    ).stdout
    expected = json.loads(out)
    js = (
        "import journal from './meta/_journal.json';\n"
        + "".join(f"const m{i:04d} = {lit};\n" for i, lit in enumerate(INLINE_LITERALS))
        + "export default { journal, migrations: { "
        + ", ".join(f"m{i:04d}" for i in range(len(INLINE_LITERALS)))
        + " } };\n"
    )
    entries = [(f"{i:04d}_m", 1700000000000 + i, "SELECT 1;") for i in range(len(expected))]
    out_dir = write_bundle(tmp_path, entries, js=False)
    (out_dir / "migrations.js").write_bytes(js.encode())
    assert [m.sql for m in load_bundle(out_dir).migrations] == expected


def test_unsupported_js(tmp_path: Path) -> None:
    js = kit_js(["0000_init"]).replace("m0000\n    }", "m0000,\n...more\n    }")
    b = load_bundle(write_bundle(tmp_path, BASIC[:1], js=js))
    assert codes(b) == ["unsupported-js"]
    assert b.problems[0].severity == "warning"


def test_invalid_js_with_line(tmp_path: Path) -> None:
    js = kit_js(["0000_init"]).replace("migrations: {", "migrations: {{ (")
    out = write_bundle(tmp_path, BASIC[:1], js=js)
    b = load_bundle(out)
    problem = only(b, "invalid-js")[0]
    assert problem.line is not None and 4 <= problem.line <= 9
    assert b.drizzle_error is not None and "does not parse" in b.drizzle_error


def test_non_utf8_sql(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    (out / "0001_more.sql").write_bytes(b"-- ok\nSELECT '\xff';")
    b = load_bundle(out)
    problem = only(b, "non-utf8")[0]
    assert problem.path == out / "0001_more.sql" and problem.line == 2
    assert "\ufffd" in b.migrations[1].sql


def test_non_utf8_journal_is_a_bundle_error(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    (out / "meta" / "_journal.json").write_bytes(b'{\n"entries": [\xfe]}')
    with pytest.raises(BundleError) as exc:
        load_bundle(out)
    assert exc.value.line == 2 and "_journal.json" in str(exc.value)


@pytest.mark.parametrize("full", [False, True])
def test_byte_order_mark_in_the_json_files_is_a_warning(tmp_path: Path, full: bool) -> None:
    # esbuild builds the Worker from such a journal, drizzle-kit's JSON.parse refuses both files
    out = write_bundle(tmp_path, BASIC)
    for name in ("_journal.json", "0001_snapshot.json"):
        path = out / "meta" / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    b = load_bundle(out, full_snapshots=full)
    found = only(b, "byte-order-mark")
    assert [(p.path, p.line, p.migration) for p in found] == [
        (out / "meta" / "_journal.json", 1, None),
        (out / "meta" / "0001_snapshot.json", 1, "0001_more"),
    ]
    assert {p.severity for p in found} == {"warning"} and codes(b) == ["byte-order-mark"] * 2
    assert "drizzle-kit generate" in found[0].message
    assert [m.tag for m in b.migrations] == ["0000_init", "0001_more", "0002_last"]
    # an error further down the journal names the same line with the mark as without it
    journal = out / "meta" / "_journal.json"
    journal.write_bytes(journal.read_bytes().replace(b'"tag": "0001_more"', b'"tag": 1'))
    lines = []
    for data in (journal.read_bytes(), journal.read_bytes()[3:]):
        journal.write_bytes(data)
        with pytest.raises(BundleError) as exc:
            load_bundle(out)
        lines.append(exc.value.line)
    assert lines[0] == lines[1] is not None and lines[0] > 5


# ------------------------------------------------------------------ snapshots


def test_snapshot_chain_duplicate_and_break(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    s0 = (out / "meta" / "0000_snapshot.json").read_text()
    (out / "meta" / "0001_snapshot.json").write_text(s0)  # a copied snapshot
    b = load_bundle(out)
    chain = only(b, "snapshot-chain")
    assert any("same id" in p.message for p in chain)
    assert any("prevId" in p.message for p in chain)
    assert {p.migration for p in chain} >= {"0001_more"}


def test_snapshot_id_at_the_end(tmp_path: Path) -> None:
    """Old drizzle-kit wrote id/prevId after the tables."""
    out = write_bundle(tmp_path, BASIC[:2])
    for n, prev in ((0, ORIGIN), (1, "aaaaaaaa-0000-4000-8000-000000000000")):
        sid = f"aaaaaaaa-0000-4000-8000-{n:012d}"
        tables = {"t": {"columns": {"id": {"name": "id", "id": "nested"}}}}
        text = json.dumps({"version": "5", "tables": tables, "id": sid, "prevId": prev}, indent=2)
        (out / "meta" / f"000{n}_snapshot.json").write_text(text + "x" * 10000 + "\n")
    assert "snapshot-chain" not in codes(load_bundle(out, full_snapshots=False))


def test_missing_and_orphan_snapshot(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    (out / "meta" / "0001_snapshot.json").rename(out / "meta" / "0007_snapshot.json")
    b = load_bundle(out)
    assert only(b, "missing-snapshot")[0].migration == "0001_more"
    assert only(b, "orphan-snapshot")[0].path == out / "meta" / "0007_snapshot.json"
    assert "snapshot-chain" not in codes(b)  # no comparison across the gap
    assert b.migrations[1].snapshot is None


def test_invalid_snapshot_json(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    (out / "meta" / "0002_snapshot.json").write_text('{\n  "version": "6",\n  oops\n}')
    problem = only(load_bundle(out), "invalid-json")[0]
    assert problem.line == 3 and problem.migration == "0002_last"


def test_truncated_snapshot_found_only_with_full_parse(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    path = out / "meta" / "0002_snapshot.json"
    path.write_text(path.read_text()[:-3])
    assert "invalid-json" not in codes(load_bundle(out))
    assert "invalid-json" in codes(load_bundle(out, full_snapshots=True))


def test_snapshot_checks_can_be_skipped(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    (out / "meta" / "0001_snapshot.json").write_text(
        (out / "meta" / "0000_snapshot.json").read_text()
    )
    (out / "meta" / "0002_snapshot.json").unlink()
    assert {"snapshot-chain", "missing-snapshot"} <= set(codes(load_bundle(out)))
    quick = load_bundle(out, check_snapshots=False)
    assert quick.problems == ()
    assert quick.migrations[0].snapshot == out / "meta" / "0000_snapshot.json"
    assert quick.migrations[2].snapshot is None


def test_journal_dialect(tmp_path: Path) -> None:
    b = load_bundle(write_bundle(tmp_path, BASIC, js=False, dialect="mysql"))
    assert codes(b) == ["journal-dialect"]


# ------------------------------------------------------------------ v1


def test_v1_durable_example() -> None:
    b = load_bundle(EXAMPLES / "bundle-v1")
    assert b.format == "v1" and b.problems == ()
    assert [m.name for m in b.migrations] == [
        "20250301120000_create_rooms",
        "20250302093000_add_topic",
    ]
    assert [m.key for m in b.migrations] == [m.name for m in b.migrations]
    assert [m.when for m in b.migrations] == [1740830400000, 1740907800000]
    assert all(m.when_valid for m in b.migrations)
    assert (
        b.migrations[0].path
        == EXAMPLES / "bundle-v1" / "20250301120000_create_rooms" / "migration.sql"
    )
    assert b.js_keys is not None and len(b.snapshot_paths) == 2


def test_v1_folder_order_is_locale_compare() -> None:
    b = load_bundle(EXAMPLES / "bundle-v1-folders")
    assert b.format == "v1" and b.problems == ()
    # measured with Node 20: [...names].sort((a, b) => a.localeCompare(b))
    assert [m.name for m in b.migrations] == [
        "20250301120000_init",
        "20250302093000_a_b",
        "20250302093000_a-b",
        "20250302093000_alpha",
        "20250302093000_Zed",
    ]
    assert [m.idx for m in b.migrations] == [0, 1, 2, 3, 4]


def test_js_locale_compare_key_matches_node() -> None:
    names = ["x_1", "x1", "x_a", "xa", "a-b", "a_b", "ab", "aB", "Ab", "AB", "e", "é", "f", "E"]
    names += ["~x", "$x", "0x", " x", ".x", "Z", "z"]
    node_order = [" x", ".x", "~x", "$x", "0x", "a_b", "a-b", "ab", "aB", "Ab", "AB", "e", "E"]
    node_order += ["é", "f", "x_1", "x_a", "x1", "xa", "z", "Z"]
    assert sorted(names, key=js_locale_compare_key) == node_order


def write_v1(root: Path, folders: dict[str, str], *, js: bool = True) -> Path:
    out = root / "drizzle"
    out.mkdir(parents=True)
    prev = [ORIGIN]
    for n, (name, sql) in enumerate(folders.items()):
        (out / name).mkdir()
        (out / name / "migration.sql").write_text(sql)
        sid = f"bbbbbbbb-0000-4000-8000-{n:012d}"
        snap = {"version": "7", "dialect": "sqlite", "id": sid, "prevIds": prev}
        (out / name / "snapshot.json").write_text(json.dumps(snap))
        prev = [sid]
    if js:
        imports = "".join(
            f"import m{i:04d} from './{n}/migration.sql';\n" for i, n in enumerate(folders)
        )
        keys = ",\n".join(f'"{n}": m{i:04d}' for i, n in enumerate(folders))
        (out / "migrations.js").write_text(
            imports + "\n  export default {\n    migrations: {\n      " + keys + "\n}\n  }\n  "
        )
    return out


def test_v1_js_keys_sorted_by_code_units(tmp_path: Path) -> None:
    out = write_v1(
        tmp_path,
        {
            "20250302093000_alpha": "SELECT 1;",
            "20250302093000_Zed": "SELECT 2;",
            "20250301120000_init": "SELECT 3;",
        },
    )
    b = load_bundle(out)
    assert [m.name for m in b.migrations] == [
        "20250301120000_init",
        "20250302093000_Zed",
        "20250302093000_alpha",
    ]
    assert b.problems == ()


def test_v1_empty_sql_orphan_folder_and_bad_name(tmp_path: Path) -> None:
    out = write_v1(tmp_path, {"20250301120000_init": "SELECT 1;", "20250301130000_empty": ""})
    (out / "20250301140000_stray").mkdir()
    (out / "20250301140000_stray" / "migration.sql").write_text("SELECT 9;")
    (out / "custom_name").mkdir()
    (out / "custom_name" / "migration.sql").write_text("SELECT 8;")
    js = (
        (out / "migrations.js")
        .read_text()
        .replace("import m0000", "import mx from './custom_name/migration.sql';\nimport m0000")
    )
    (out / "migrations.js").write_text(
        js.replace(
            '"20250301120000_init": m0000', '"20250301120000_init": m0000,\n"custom_name": mx'
        )
    )
    b = load_bundle(out)
    assert b.missing == ("20250301130000_empty",)
    assert b.drizzle_error == "Missing migration: 20250301130000_empty"
    assert "empty-sql" in codes(b)
    assert [p.path.parent.name for p in only(b, "orphan-sql") if p.path] == ["20250301140000_stray"]
    bad = only(b, "v1-bad-name")[0]
    assert bad.migration == "custom_name"
    custom = b.migration("custom_name")
    assert not custom.when_valid and custom.when == 0
    assert "missing-snapshot" in codes(b)  # custom_name has no snapshot.json


def test_v1_snapshot_heads(tmp_path: Path) -> None:
    out = write_v1(
        tmp_path, {"20250301120000_a": "SELECT 1;", "20250301130000_b": "SELECT 1;"}, js=False
    )
    snap = json.loads((out / "20250301130000_b" / "snapshot.json").read_text())
    snap["prevIds"] = ["cccccccc-0000-4000-8000-000000000000"]
    (out / "20250301130000_b" / "snapshot.json").write_text(json.dumps(snap))
    chain = only(load_bundle(out), "snapshot-chain")
    assert any("no snapshot's id" in p.message for p in chain)
    assert any("2 heads" in p.message for p in chain)


def test_mixed_layout(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    (out / "20250301120000_new").mkdir()
    (out / "20250301120000_new" / "migration.sql").write_text("SELECT 1;")
    b = load_bundle(out)
    assert b.format == "durable-sqlite"
    assert codes(b) == ["mixed-layout"]


def test_a_journal_left_over_by_drizzle_kit_up_is_not_read(tmp_path: Path) -> None:
    # `drizzle-kit up` writes v1 folders and a migrations.js that does not import the journal:
    # drizzle 1.x migrates from that module alone (recorded in workerd, drizzle-orm rc.5); it
    # was read as a journal bundle whose migrate() failed
    out = tmp_path / "drizzle"
    shutil.copytree(EXAMPLES / "bundle-v1-kit-up", out)
    shutil.copytree(EXAMPLES.parent.parent / "example_project" / "drizzle" / "meta", out / "meta")
    b = load_bundle(out)
    assert b.format == "v1"
    assert codes(b) == ["leftover-journal"]
    assert next(p for p in b.problems if p.code == "leftover-journal").severity == "warning"
    do = DurableObjectStorage()
    assert len(migrate(do, b).applied) == 6


@pytest.mark.parametrize(
    ("name", "millis"),
    [
        ("20250301120000_init", 1740830400000),
        ("20251340256161_overflow", 1770688921000),  # Node: Date.UTC(2025, 12, 40, 25, 61, 61)
        ("00990101000000_two_digit_year", 915148800000),  # Node: Date.UTC(99, 0, 1)
        ("2025030112000a_partial", 1740830400000),  # parseInt("0a") === 0
        ("init", None),
        ("", None),
    ],
)
def test_v1_folder_millis(name: str, millis: int | None) -> None:
    assert v1_folder_millis(name) == millis


# ------------------------------------------------------------------ errors


def test_bundle_errors(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such file"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="not a drizzle-kit migrations folder"):
        load_bundle(tmp_path / "empty")
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(BundleError, match="not a bundle file"):
        load_bundle(tmp_path / "readme.txt")


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [
        ('{\n  "entries": [\n    {"idx": 0,}\n  ]\n}', 3, "not valid JSON"),
        ("[1, 2]", 1, "not a JSON object"),
        ('{"version": "7"}', 1, 'no "entries" array'),
        ('{"entries": [\n  {"tag": "0000_x", "when": 1}\n]}', 2, "integer `idx`"),
        ('{"entries": [\n  {"idx": 0, "tag": "0000_x",\n "when": "soon"}\n]}', 3, "integer `when`"),
        ('{"entries": [\n 5\n]}', 2, "not an object"),
        ('{"entries": [\n {"idx": 0, "tag": "a", "when": NaN}]}', 2, "NaN is not valid JSON"),
        ('{"entries": [\n {"idx": 0, "tag": "NaN", "when": -Infinity}]}', 2, "-Infinity is not"),
        ('{"entries": [\n\n {"idx": ' + "9" * 5000 + "}]}", 3, "a number of 5000 digits"),
    ],
)
def test_bad_journal(tmp_path: Path, text: str, line: int | None, match: str) -> None:
    out = write_bundle(tmp_path, BASIC)
    (out / "meta" / "_journal.json").write_text(text)
    with pytest.raises(BundleError, match=match) as exc:
        load_bundle(out)
    assert exc.value.line == line
    assert exc.value.path == out / "meta" / "_journal.json"


def test_journal_deleted_but_imported(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    (out / "meta" / "_journal.json").unlink()
    with pytest.raises(BundleError, match=r"meta/_journal\.json does not exist") as exc:
        load_bundle(out)
    assert exc.value.line == 1 and exc.value.path == out / "migrations.js"


def test_huge_file_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = write_bundle(tmp_path, BASIC)
    monkeypatch.setattr(bundle_mod, "MAX_FILE_BYTES", 40)
    with pytest.raises(BundleError, match="limit") as exc:
        load_bundle(out)
    assert exc.value.path is not None


def test_loader_never_writes(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC)
    (out / "0009_orphan.sql").write_text("SELECT 1;")
    before = tree_state(tmp_path)
    load_bundle(out, full_snapshots=True)
    assert tree_state(tmp_path) == before


# ------------------------------------------------------------------ codes & speed


def used_codes() -> Iterable[str]:
    src = Path(bundle_mod.__file__).read_text()
    import re

    return set(re.findall(r'_problem\(\s*"([a-z0-9-]+)"', src)) | {"unbound-key", "unsupported-js"}


def test_problem_codes_documented() -> None:
    assert set(used_codes()) <= set(PROBLEM_CODES)
    for code, info in PROBLEM_CODES.items():
        assert info.code == code and code == code.lower() and " " not in code
        assert info.severity in ("error", "warning")
        assert len(info.explanation) > 40 and len(info.fix) > 15


def test_every_code_is_exercised_by_this_file() -> None:
    text = Path(__file__).read_text()
    missing = [code for code in PROBLEM_CODES if f'"{code}"' not in text]
    assert missing == []


def test_problem_str_names_file_and_line(tmp_path: Path) -> None:
    out = write_bundle(tmp_path, BASIC, js=kit_js(["0000_init", "0001_more"]))
    text = str(load_bundle(out).problems[0])
    assert text.startswith(f"{out / 'migrations.js'}:") and "[missing-key]" in text


def test_94_migrations_load_quickly(tmp_path: Path) -> None:
    entries = [
        (f"{i:04d}_step_{i}", 1700000000000 + i * 1000, f"CREATE TABLE `t{i}` (`id` integer);")
        for i in range(94)
    ]
    out = write_bundle(tmp_path, entries)
    load_bundle(out)
    best = min(_timed(lambda: load_bundle(out)) for _ in range(5))
    assert best < 0.5, f"94 migrations took {best * 1000:.1f} ms CPU"
    assert len(load_bundle(out).migrations) == 94


def _timed(fn: object) -> float:
    start = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - start


_SQL_PIECES = st.lists(
    st.sampled_from(["SELECT 1;", "\n", "\r\n", "\r", BREAKPOINT, "-- c\n", " ", "x"]),
    max_size=40,
)


def _plain_line(sql: str, offset: int) -> int:
    """The line of ``offset``, counted the slow way: LF, CRLF (one) and CR alone end a line."""
    before = sql[:offset]
    ends = before.count("\r\n") + before.count("\n") - before.count("\r\n")
    ends += before.count("\r") - before.count("\r\n")
    if before.endswith("\r") and sql[offset : offset + 1] == "\n":
        ends -= 1  # the CR of a CRLF that ends at the offset: the same line end
    return ends + 1


@given(pieces=_SQL_PIECES, chunk=st.integers(0, 45), offset=st.integers(0, 30))
def test_line_of_counts_the_line_feeds_before_the_offset(
    pieces: list[str], chunk: int, offset: int
) -> None:
    # the line is computed once per migration (offsets and line feeds, then a bisection), not
    # by counting from the start of the file for every chunk: a 20,000-chunk seed migration
    # made data_preserved take minutes. It must still be the plain count.
    sql = "".join(pieces)
    m = Migration(idx=0, tag="0000_x", when=1, key="m0000", sql=sql)
    start = sum(len(c) + len(BREAKPOINT) for c in m.chunks[:chunk])
    assert m.line_of(chunk, offset) == _plain_line(sql, start + offset)
    assert m.chunk_line(chunk) == _plain_line(sql, start)


@pytest.mark.parametrize("with_js", [True, False])
def test_a_hand_written_migrations_ts_is_what_the_worker_runs(
    tmp_path: Path, with_js: bool
) -> None:
    # wrangler's esbuild resolves `import migrations from '../drizzle/migrations'` to
    # migrations.ts before migrations.js (checked with `wrangler deploy --dry-run`): a typed
    # module of drizzle-kit's shape is read instead of the generated .js, and what it lacks is
    # what the DO lacks
    tags = [tag for tag, _, _ in BASIC]
    root = write_bundle(tmp_path, BASIC, js=with_js)
    typed = kit_js(tags[:-1]).replace(
        "export default {", "const all: Record<string, unknown> = {};\n  export default {"
    )
    (root / "migrations.ts").write_text(typed, encoding="utf-8")
    bundle = load_bundle(root)
    assert bundle.format == "durable-sqlite"
    assert bundle.migrations_js_path == root / "migrations.ts"
    assert "unread-migrations-module" not in codes(bundle)
    assert bundle.missing == (tags[-1],)
    named = [p for p in bundle.problems if p.path == root / "migrations.ts"]
    assert [p.code for p in named] == ["missing-key"]
    assert all("migrations.js" not in p.message for p in bundle.problems)
    # drizzle-kit does not rewrite a hand-written module: the fix says so
    assert named[0].fix is not None and "edit migrations.ts" in named[0].fix


@pytest.mark.parametrize("with_js", [True, False])
def test_a_migrations_ts_of_another_shape_is_named_as_unread(tmp_path: Path, with_js: bool) -> None:
    # named exports (`migrate(db, { journal, migrations })` in the DO): not read, and said so
    root = write_bundle(tmp_path, BASIC, js=with_js)
    assert "unread-migrations-module" not in codes(load_bundle(root))
    (root / "migrations.ts").write_text(
        "import _journal from './meta/_journal.json';\n"
        "export const journal = _journal;\nexport const migrations = {};\n",
        encoding="utf-8",
    )
    bundle = load_bundle(root)
    found = [p for p in bundle.problems if p.code == "unread-migrations-module"]
    assert len(found) == 1 and found[0].severity == "warning"
    assert found[0].path == root / "migrations.ts"
    assert "export default { journal, migrations }" in found[0].message
    if with_js:
        assert "bundles migrations.ts" in found[0].message
        assert "pytest-dosqlite checks migrations.js" in found[0].message
    else:
        assert "not from what migrations.ts imports" in found[0].message
    assert bundle.format == ("durable-sqlite" if with_js else "journal")


def test_a_migrations_ts_that_does_not_parse_is_an_error_at_its_line(tmp_path: Path) -> None:
    # esbuild resolves the Worker's extensionless import to it and the build fails: it was
    # only the unread-migrations-module warning, and every check passed
    root = write_bundle(tmp_path, BASIC)
    (root / "migrations.ts").write_text("// hand-written\nexport default {{{\n", encoding="utf-8")
    bundle = load_bundle(root)
    (found,) = [p for p in bundle.problems if p.code == "invalid-js"]
    assert found.severity == "error" and found.path == root / "migrations.ts"
    assert found.line == 2 and "the Worker bundle will not build" in found.message
    assert "unread-migrations-module" not in codes(bundle)


def test_a_hand_written_migrations_ts_with_inline_sql_is_read(tmp_path: Path) -> None:
    # the DO runs the module's inline SQL; where it differs from the .sql file drizzle-kit
    # wrote, the problem names the module, and drizzle-kit rewriting it is not the reason
    root = write_bundle(tmp_path, BASIC)
    ran = "ALTER TABLE `a` ADD `c` text;"
    module = inline_js([BASIC[0][2], ran, BASIC[2][2]]).replace(
        "export default", "const typed: string = '';\nexport default"
    )
    (root / "migrations.ts").write_text(module, encoding="utf-8")
    bundle = load_bundle(root)
    assert bundle.migrations_js_path == root / "migrations.ts"
    assert bundle.migrations[1].sql == ran and bundle.migrations[1].path == root / "migrations.ts"
    assert codes(bundle) == ["inline-sql-differs"]
    (problem,) = bundle.problems
    assert problem.path == root / "migrations.ts" and problem.line == 5  # m0001's string
    assert "the DO runs the inline text of migrations.ts, not the 0001_more.sql" in problem.message
    assert "rewrites" not in problem.message
    assert problem.fix is not None and "edit migrations.ts" in problem.fix
    # the same SQL inline as in the files: read, nothing to say
    (root / "migrations.ts").write_text(inline_js([sql for _, _, sql in BASIC]), encoding="utf-8")
    assert load_bundle(root).problems == ()


def test_only_the_hand_written_modules_own_problems_are_renamed(tmp_path: Path) -> None:
    # a journal problem about what drizzle-kit writes keeps naming migrations.js
    entries = [*BASIC, BASIC[-1]]
    root = write_bundle(tmp_path, entries, js=False)
    (root / "migrations.ts").write_text(kit_js([t for t, _, _ in entries]), encoding="utf-8")
    bundle = load_bundle(root)
    assert bundle.migrations_js_path == root / "migrations.ts"
    (dup,) = [p for p in bundle.problems if p.code == "duplicate-tag"]
    assert dup.path == root / "meta" / "_journal.json"
    assert "drizzle-kit writes migrations.js from the journal" in dup.message


def test_a_syntax_error_in_migrations_js_is_reported_where_it_is_and_alone(
    tmp_path: Path,
) -> None:
    root = write_bundle(tmp_path, BASIC)
    js = root / "migrations.js"
    lines = js.read_text(encoding="utf-8").splitlines()
    # inside the migrations object: it was reported at `export default {`, lines above
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("m0001"))
    broken = [*lines[:at], lines[at].replace("m0001", "m0001,,,{"), *lines[at + 1 :]]
    js.write_text("\n".join(broken) + "\n", encoding="utf-8")
    (found,) = [p for p in load_bundle(root).problems if p.code == "invalid-js"]
    assert found.line == at + 1, found
    # an unterminated import string: invalid-js alone, not the made-up tag-mismatch,
    # unbound-key and orphan-sql of a misread module
    at = next(i for i, line in enumerate(lines) if "./0001_more.sql" in line)
    broken = [*lines[:at], lines[at].replace(".sql'", ".sql"), *lines[at + 1 :]]
    js.write_text("\n".join(broken) + "\n", encoding="utf-8")
    bundle = load_bundle(root)
    assert codes(bundle) == ["invalid-js"], bundle.problems
    assert bundle.problems[0].line == at + 1


def test_a_when_beyond_2_53_is_the_double_drizzle_reads(tmp_path: Path) -> None:
    # JSON.parse in the Worker rounds it; compared exactly, every DO seemed to apply the entry
    # twice (idempotent, concurrent_starts) or never (upgrade_from_every_version)
    from pytest_dosqlite.checks import CheckContext, idempotent
    from pytest_dosqlite.fleet import upgrade_from_every_version

    entries = [(tag, when, sql) for tag, when, sql in BASIC]
    entries[-1] = (entries[-1][0], 2**53 + 1, entries[-1][2])
    root = write_bundle(tmp_path, entries)
    bundle = load_bundle(root)
    assert bundle.migrations[-1].when == 2**53
    ctx = CheckContext(bundle=bundle, extra={"git_history": False})
    idempotent(ctx)
    upgrade_from_every_version(ctx)


def test_a_nul_byte_in_a_sql_file_is_named_where_it_is(tmp_path: Path) -> None:
    # it passed bundle_integrity; upgrade_from_empty then printed the raw byte and blamed comments
    entries = list(BASIC)
    entries[1] = (entries[1][0], entries[1][1], "ALTER TABLE `a` ADD `b` text;\n\x00 SELECT 1;")
    bundle = load_bundle(write_bundle(tmp_path, entries))
    (found,) = [p for p in bundle.problems if p.code == "nul-byte"]
    assert found.severity == "error" and found.line == 2 and found.migration == "0001_more"
    assert "at line 2, column 1" in found.message


def test_a_wrong_import_path_does_not_call_the_entrys_own_file_an_orphan(tmp_path: Path) -> None:
    # the entry's .sql was "not in meta/_journal.json" with the fix "delete it", and a typo
    # in the path read as a lost file to restore from version control
    root = write_bundle(tmp_path, BASIC)
    js = root / "migrations.js"
    text = js.read_text(encoding="utf-8")
    js.write_text(text.replace("./0001_more.sql", "./0000_init.sql"), encoding="utf-8")
    assert codes(load_bundle(root)) == ["tag-mismatch"]
    js.write_text(text.replace("./0001_more.sql", "./0001_mroe.sql"), encoding="utf-8")
    bundle = load_bundle(root)
    assert codes(bundle) == ["missing-sql"]
    assert "correct the import to './0001_more.sql'" in bundle.problems[0].message


def test_the_summary_of_a_bundle_drizzle_cannot_read_says_nothing_is_applied(
    tmp_path: Path,
) -> None:
    # it said "a fresh DO stops at 0002_last, 1 table before it": drizzle throws
    # `Missing migration` before any SQL runs, so a fresh DO of this bundle has no table
    from pytest_dosqlite.images import ImageCache, head_summary

    out = write_bundle(tmp_path, BASIC, js=kit_js(["0000_init", "0001_more"]))
    summary = head_summary(ImageCache(), load_bundle(out))
    assert summary.startswith("a fresh DO applies nothing: "), summary
    assert "0002_last" in summary


def test_a_key_left_behind_by_a_deleted_migration_breaks_the_build(tmp_path: Path) -> None:
    # 0002 deleted from the journal and the disk; migrations.js still imports and lists it
    out = write_bundle(tmp_path, BASIC[:2], js=kit_js([t for t, _, _ in BASIC]))
    b = load_bundle(out)
    problem = only(b, "missing-sql")[0]
    assert problem.severity == "error"
    assert problem.path == out / "migrations.js" and problem.line == 4
    assert "'./0002_last.sql', which does not exist" in problem.message
    assert b.drizzle_error == 'Could not resolve "./0002_last.sql"'
    assert "orphan-key" in codes(b)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_lines_count_every_line_ending_editors_count(end: str) -> None:
    # a file with classic-Mac CR line endings reported every statement on line 1
    sql = end.join(["-- a", "CREATE TABLE `a` (`x` integer);", "", "SELEC 3;"])
    m = Migration(0, "0000_a", 1, "m0000", sql)
    assert m.line_of(0, sql.index("SELEC")) == 4
    assert m.line_of(0, sql.index("CREATE")) == 2


def test_an_empty_journal_with_migrations_in_migrations_js_is_an_error(tmp_path: Path) -> None:
    # every check passed: a fresh DO "migrated to head" with no table, as every DO would
    out = write_bundle(tmp_path, BASIC)
    journal = json.loads((out / "meta" / "_journal.json").read_text())
    journal["entries"] = []
    (out / "meta" / "_journal.json").write_text(json.dumps(journal))
    b = load_bundle(out)
    empty = only(b, "empty-journal")
    assert empty[0].severity == "error" and "drizzle applies none of them" in empty[0].message
