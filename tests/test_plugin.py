"""`pytest --dosqlite` end to end, with pytester on small Worker projects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

BP = "--> statement-breakpoint"
CORE = "bundle_integrity,upgrade_from_empty,idempotent,schema_snapshot"

WRANGLER_TOML = """\
name = "app"
main = "src/index.ts"
compatibility_date = "2025-09-01"

[[durable_objects.bindings]]
name = "ROOMS"
class_name = "RoomDO"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["RoomDO"]

[[rules]]
type = "Text"
globs = ["**/*.sql"]
fallthrough = true
"""

DRIZZLE_CONFIG = """\
import { defineConfig } from 'drizzle-kit';
export default defineConfig({
  out: './drizzle',
  schema: './src/db/schema.ts',
  dialect: 'sqlite',
  driver: 'durable-sqlite',
});
"""


def write_bundle(
    out: Path,
    migrations: list[tuple[str, str]],
    *,
    base_when: int = 1700000000000,
    whens: list[int] | None = None,
) -> None:
    (out / "meta").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (tag, sql) in enumerate(migrations):
        (out / f"{tag}.sql").write_text(sql)
        when = whens[i] if whens else base_when + i * 1000
        entries.append({"idx": i, "version": "6", "when": when, "tag": tag, "breakpoints": True})
    (out / "meta" / "_journal.json").write_text(
        json.dumps({"version": "7", "dialect": "sqlite", "entries": entries}, indent=2)
    )
    imports = "\n".join(
        f"import m{i:04d} from './{tag}.sql';" for i, (tag, _) in enumerate(migrations)
    )
    keys = ",\n".join(f"m{i:04d}" for i in range(len(migrations)))
    (out / "migrations.js").write_text(
        f"import journal from './meta/_journal.json';\n{imports}\n\n  export default {{\n"
        f"    journal,\n    migrations: {{\n      {keys}\n    }}\n  }}\n"
    )


GOOD = [
    (
        "0000_init",
        f"CREATE TABLE `users` (`id` integer PRIMARY KEY, `name` text NOT NULL);{BP}\n"
        "CREATE INDEX `users_name` ON `users` (`name`);",
    ),
    ("0001_posts", "CREATE TABLE `posts` (`id` integer PRIMARY KEY, `title` text);"),
]


def make_project(
    root: Path,
    migrations: list[tuple[str, str]] = GOOD,
    *,
    wrangler: str = WRANGLER_TOML,
    wrangler_name: str = "wrangler.toml",
    **kw: object,
) -> Path:
    (root / wrangler_name).write_text(wrangler)
    (root / "drizzle.config.ts").write_text(DRIZZLE_CONFIG)
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "index.ts").write_text(
        "import migrations from '../drizzle/migrations';\nexport class RoomDO {}\n"
    )
    write_bundle(root / "drizzle", migrations, **kw)  # type: ignore[arg-type]
    return root


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--dosqlite", "-p", "no:cacheprovider", *args)


def run_user_tests(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    """A user's own test file (``test_data.py``) run without ``--dosqlite``: the fixtures alone."""
    pytester.makepyfile(test_data=source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_data.py")


def test_no_items_without_the_flag(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "dosqlite:" not in result.stdout.str()


def test_plugin_module_is_import_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pytest_dosqlite.plugin; "
        "print(sorted(m for m in ('apsw', 'sqlglot', 'syrupy', 'tree_sitter') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_clean_project_passes_and_snapshot_lifecycle(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    result = run(pytester, f"--dosqlite-checks-include={CORE}")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*no schema snapshot yet*", "*CREATE TABLE users*"])
    result = run(pytester, f"--dosqlite-checks-include={CORE}", "--snapshot-update")
    result.assert_outcomes(passed=4)
    # syrupy is told the file is named after the bundle: no "Can not relate snapshot" warning
    assert "Can not relate" not in result.stdout.str()
    snap = pytester.path / "__snapshots__" / "dosqlite" / "drizzle.sql"
    assert snap.exists()
    assert "-- pin 0001_posts " in snap.read_text()
    result = run(pytester, f"--dosqlite-checks-include={CORE}")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "dosqlite: bundle drizzle: 2 migrations (durable-sqlite)*(from drizzle.config.ts)",
            "drizzle: 2 migrations, 2 tables, checks 4 passed, 0 failed*",
        ]
    )
    # node ids anchor on the bundle: -k and --deselect work
    result = run(pytester, f"--dosqlite-checks-include={CORE}", "-k", "idempotent", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["drizzle/meta/_journal.json::idempotent PASSED*"])
    result = run(
        pytester,
        f"--dosqlite-checks-include={CORE}",
        "--deselect",
        "drizzle/meta/_journal.json::idempotent",
    )
    result.assert_outcomes(passed=3)


def test_a_crlf_checkout_is_not_an_edit_of_a_pinned_migration(pytester: pytest.Pytester) -> None:
    # git's core.autocrlf on Windows checks the .sql files out with CRLF line ends
    make_project(pytester.path)
    run(pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update")
    recorded = (pytester.path / "__snapshots__" / "dosqlite" / "drizzle.sql").read_text()
    for sql in (pytester.path / "drizzle").glob("*.sql"):
        text = sql.read_bytes()
        assert b"\r" not in text
        sql.write_bytes(text.replace(b"\n", b"\r\n"))
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot,upgrade_from_empty")
    result.assert_outcomes(passed=2)
    # a real edit is still one
    posts = pytester.path / "drizzle" / "0001_posts.sql"
    posts.write_bytes(posts.read_bytes().replace(b"`title` text", b"`title` text NOT NULL"))
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["Edited after it was recorded:", "    0001_posts"])
    assert (pytester.path / "__snapshots__" / "dosqlite" / "drizzle.sql").read_text() == recorded


def test_a_renamed_drizzle_folder_keeps_its_pins_and_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # syrupy leaves unused snapshots to the xdist controller when PYTEST_XDIST_WORKER is set,
    # which the inner pytest inherits when this suite runs under -n
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    make_project(pytester.path)
    run(pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update")
    (pytester.path / "drizzle").rename(pytester.path / "migrations")
    config = pytester.path / "drizzle.config.ts"
    config.write_text(config.read_text().replace("./drizzle", "./migrations"))
    index = pytester.path / "src" / "index.ts"
    index.write_text(index.read_text().replace("../drizzle/", "../migrations/"))
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "no schema snapshot for *migrations, but one for a folder that is gone",
            "*drizzle.sql: the snapshot of drizzle/, which no longer exists, pins 2 of this "
            "bundle's migrations (none edited): was the folder renamed from drizzle/ to "
            "migrations/?",
        ]
    )
    # the old pins still catch an edit of a recorded migration
    posts = pytester.path / "migrations" / "0001_posts.sql"
    original = posts.read_text()
    posts.write_text(original.replace("`title` text", "`title` text NOT NULL"))
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot")
    result.stdout.fnmatch_lines(["Edited after it was recorded:", "    0001_posts"])
    posts.write_text(original)
    # --snapshot-update records it under the new name and deletes the old file
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update")
    result.assert_outcomes(passed=1)
    snapshots = pytester.path / "__snapshots__" / "dosqlite"
    assert sorted(p.name for p in snapshots.iterdir()) == ["migrations.sql"]
    run(pytester, "--dosqlite-checks-include=schema_snapshot").assert_outcomes(passed=1)


def test_schema_change_fails_the_snapshot_with_a_diff(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    run(pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update")
    write_bundle(
        pytester.path / "drizzle", [*GOOD, ("0002_bio", "ALTER TABLE `users` ADD `bio` text;")]
    )
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*differs from its snapshot*", "*+  bio TEXT*"])


def test_edited_recorded_migration_is_explained(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    run(pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update")
    (pytester.path / "drizzle" / "0001_posts.sql").write_text(
        "CREATE TABLE `posts` (`id` integer PRIMARY KEY, `title` text, `slug` text);"
    )
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*recorded migrations changed*",
            "*Edited after it was recorded:*",
            "*0001_posts*",
            "*will never run the new*",
        ]
    )


def test_failing_migration_names_migration_statement_and_cause(pytester: pytest.Pytester) -> None:
    bad = [*GOOD, ("0002_custom", "-- Custom SQL migration file, put your code below! --")]
    make_project(pytester.path, bad)
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "migration 0002_custom fails on a fresh Durable Object" in out
    assert "SQL code did not contain a statement." in out
    assert "DrizzleError: Rollback" in out
    assert "unedited `--custom` migration" in out
    assert "Traceback" not in out and "pytest_dosqlite/" not in out
    # the summary says where a fresh DO stops, and the tables it has up to there
    result.stdout.fnmatch_lines(
        [
            "drizzle: 3 migrations, a fresh DO stops at 0002_custom, 2 tables before it, "
            "checks 0 passed, 1 failed*"
        ]
    )


def test_summary_counts_in_the_singular(pytester: pytest.Pytester) -> None:
    make_project(pytester.path, GOOD[:1])
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["drizzle: 1 migration, 1 table, checks 1 passed, 0 failed*"])


def test_a_run_that_builds_no_image_does_not_build_them_for_the_summary(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester.path)
    # upgrade_from_empty deselected: no image is built, the line has no table count
    result = run(pytester, "-k", "bundle_integrity or idempotent_never")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["drizzle: 2 migrations, checks 1 passed, 0 failed, 0.*s"])
    assert "tables" not in result.stdout.str()
    # a user's fixture built the images: the line says what they hold
    pytester.makepyfile(test_data="def test_head(migrated_do):\n    pass\n")
    result = run(pytester, "-k", "bundle_integrity or test_head")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["drizzle: 2 migrations, 2 tables, checks 1 passed*"])
    # nothing runs under --co: no summary at all
    result = run(pytester, "--co")
    assert "dosqlite ---" not in result.stdout.str()
    assert "checks 0 passed" not in result.stdout.str()


def test_a_fresh_do_that_fails_is_reported_once_by_upgrade_from_empty(
    pytester: pytest.Pytester,
) -> None:
    custom = ("0002_custom", "-- Custom SQL migration file, put your code below! --")
    make_project(pytester.path, [*GOOD, custom])
    checks = "upgrade_from_empty,idempotent,schema_snapshot,crash_recovery"
    result = run(pytester, f"--dosqlite-checks-include={checks}", "-rs")
    result.assert_outcomes(failed=1, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "*cannot check idempotence: migrating a fresh DO fails "
            "(upgrade_from_empty reports the failure)",
        ]
    )
    # without upgrade_from_empty in the run, the check itself says it
    result = run(pytester, "--dosqlite-checks-include=idempotent")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["cannot check idempotence: migrating a fresh DO fails"])


def test_a_seed_file_that_cannot_be_read_fails_data_preserved(pytester: pytest.Pytester) -> None:
    # it used to be skipped as if upgrade_from_empty reported it (its summary starts "cannot")
    make_project(pytester.path)
    (pytester.path / "bad.json").write_text('{"0001_posts": ')
    for seed in ("missing.json", "bad.json"):
        result = run(
            pytester,
            "--dosqlite-checks-include=upgrade_from_empty,data_preserved",
            f"--dosqlite-seed={seed}",
        )
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines([f"cannot read the seed file *{seed}"])


def test_a_missing_migrations_js_the_worker_imports_fails_wrangler_contract(
    pytester: pytest.Pytester,
) -> None:
    # a deleted (or git-ignored) migrations.js: the journal and .sql files load, every DO check
    # passes, and the Worker does not build
    make_project(pytester.path)
    (pytester.path / "drizzle" / "migrations.js").unlink()
    result = run(pytester, "--dosqlite-checks-include=wrangler_contract,upgrade_from_empty")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "The Worker imports a file that does not exist:",
            "*src/index.ts:1 imports '../drizzle/migrations', and *drizzle has no such file: "
            'wrangler\'s build stops with `Could not resolve "../drizzle/migrations"`*'
            "run `drizzle-kit generate` and commit the file*",
        ]
    )


def test_a_missing_sql_file_is_a_build_failure_not_a_restart_loop(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester.path)
    (pytester.path / "drizzle" / "0001_posts.sql").unlink()
    result = run(
        pytester,
        "--dosqlite-checks-include=bundle_integrity,upgrade_from_empty,concurrent_starts",
        "-rs",
    )
    result.assert_outcomes(failed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "[[]missing-sql] 0001_posts:",
            'the Worker does not build: Could not resolve "./0001_posts.sql"',
            "Migration:",
            "    0001_posts",
            "*the Worker does not build: wrangler's bundler stops with*cannot be deployed at all.",
            # not "a fresh DO stops at 0001_posts, 1 table before it": no DO runs at all
            "*drizzle: 2 migrations, the Worker does not build: "
            'Could not resolve "./0001_posts.sql"*',
        ]
    )
    out = result.stdout.str()
    assert "migration None" not in out and "restart loop" not in out
    assert "cannot race starts: the Worker does not build" in out  # the skip reason (-rs)
    # the error a user's own test gets says the same, not "drizzle on a real DO reports"
    from pytest_dosqlite import load_bundle, migrate
    from pytest_dosqlite.errors import MigrationError
    from pytest_dosqlite.storage import DurableObjectStorage

    with pytest.raises(MigrationError) as info:
        migrate(DurableObjectStorage(), load_bundle(pytester.path / "drizzle"))
    assert info.value.tag == "0001_posts" and info.value.build_failure
    text = str(info.value).splitlines()
    assert text[-1] == 'the Worker does not build: Could not resolve "./0001_posts.sql"'


def test_integrity_problem_fails_bundle_integrity(pytester: pytest.Pytester) -> None:
    make_project(pytester.path, whens=[1700000005000, 1700000001000])
    result = run(pytester, "--dosqlite-checks-include=bundle_integrity")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*when-not-increasing*"])


def test_unknown_check_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty,nosuch_check")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown dosqlite check name(s): nosuch_check*Known checks:*"])
    pytester.makeini("[pytest]\ndosqlite_checks_exclude = lint nope\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown dosqlite check name(s): nope*"])


def test_ini_keys_and_provenance(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    pytester.makeini("[pytest]\ndosqlite_checks_include = upgrade_from_empty idempotent\n")
    result = run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "dosqlite: checks: upgrade_from_empty, idempotent (from ini dosqlite_checks_include)",
            "dosqlite: start: drizzle (migrate() in blockConcurrencyWhile; from default)",
        ]
    )
    # the start the checks assume is in the header; names on the command line may be
    # separated by spaces as in the ini
    result = run(
        pytester,
        "--dosqlite-start=drizzle-fk-off",
        "--dosqlite-checks-include=upgrade_from_empty idempotent",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["dosqlite: start: drizzle-fk-off (foreign keys off around migrate(); from command line)"]
    )


def test_header_says_a_workerd_only_check_does_not_run_on_the_emulator(
    pytester: pytest.Pytester,
) -> None:
    # do_contract was listed with the checks, but not collected: a user asking for it by name
    # got "no tests ran" and no word why
    make_project(pytester.path)
    pytester.makeini("[pytest]\ndosqlite_checks_include = idempotent do_contract\n")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "dosqlite: checks: idempotent (from ini dosqlite_checks_include); do_contract only "
            "with --dosqlite-backend=workerd"
        ]
    )
    # -q prints no header: the summary says it
    result = run(pytester, "-q")
    result.stdout.fnmatch_lines(["not run: do_contract (only with --dosqlite-backend=workerd)"])
    # the default list names it too, but a run with the default list is not told every time
    pytester.makeini("[pytest]\n")
    assert "not run:" not in run(pytester, "-q").stdout.str()


def test_a_run_pointed_at_the_bundle_folder_names_it(pytester: pytest.Pytester) -> None:
    # `pytest --dosqlite drizzle`: the bundle is the project root, and was labelled "."
    make_project(pytester.path)
    result = run(pytester, "-q", "--dosqlite-checks-include=idempotent", "drizzle")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["drizzle: 2 migrations, * checks 1 passed, 0 failed*"])
    assert "\n.: " not in result.stdout.str()


def test_a_bundle_folder_named_alone_is_checked_with_its_projects_configs(
    pytester: pytest.Pytester,
) -> None:
    # the Worker declares RoomDO key-value backed: drizzle's migrator cannot run on it
    make_project(pytester.path, wrangler=WRANGLER_TOML.replace("new_sqlite_classes", "new_classes"))
    write_bundle(pytester.path / "other" / "drizzle", GOOD)
    result = run(pytester, "--dosqlite-checks-include=wrangler_contract", "drizzle")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "dosqlite: note: *drizzle has no wrangler or drizzle config: its bundles are checked "
            "with the configs of the Worker project above it, *",
            "*RoomDO*",
        ]
    )
    assert "other/drizzle" not in result.stdout.str()  # that folder's bundles only
    # a bundle folder with no project above it is checked on its own, labelled by its name
    alone = pytester.mkdir("alone")
    write_bundle(alone / "drizzle", GOOD)
    (alone / ".git").mkdir()
    result = run(pytester, "--dosqlite-checks-include=idempotent", "alone/drizzle")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["drizzle: 2 migrations, * checks 1 passed, 0 failed*"])


def test_a_project_with_only_a_named_drizzle_config_is_found_above_its_bundle(
    pytester: pytest.Pytester,
) -> None:
    # drizzle-do.config.ts marks the project as drizzle.config.ts does
    (pytester.path / "drizzle-do.config.ts").write_text(DRIZZLE_CONFIG)
    write_bundle(pytester.path / "drizzle", GOOD)
    result = run(pytester, "--dosqlite-checks-include=idempotent", "drizzle")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "dosqlite: note: *drizzle has no wrangler or drizzle config: its bundles are checked "
            "with the configs of the Worker project above it, *"
        ]
    )


def test_a_broken_config_above_a_bundle_folder_named_alone_is_reported(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester.path, wrangler=WRANGLER_TOML + "\n[[[broken\n")
    include = "--dosqlite-checks-include=idempotent"
    result = run(pytester, include, "drizzle")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["dosqlite could not load *wrangler.toml*"])
    # a run of the user's tests alone does not check the bundle, nor read its configs
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    run(pytester, include, "tests").assert_outcomes(passed=1)


@pytest.mark.parametrize("name", ["wrangler.jsonc", "wrangler.json"])
def test_jsonc_and_json_wrangler_configs(pytester: pytest.Pytester, name: str) -> None:
    comment = "// a comment\n" if name.endswith("jsonc") else ""
    trailing = "," if name.endswith("jsonc") else ""
    config = (
        "{\n" + comment + '  "name": "app", "main": "src/index.ts",\n'
        '  "durable_objects": {"bindings": [{"name": "R", "class_name": "RoomDO"}]},\n'
        '  "migrations": [{"tag": "v1", "new_sqlite_classes": ["RoomDO"]}]' + trailing + "\n}\n"
    )
    make_project(pytester.path, wrangler=config, wrangler_name=name)
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["dosqlite: bundle drizzle*for RoomDO*"])


def test_several_bundles_in_one_run(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    other = pytester.path / "packages" / "chat"
    other.mkdir(parents=True)
    (other / "drizzle.config.ts").write_text(DRIZZLE_CONFIG)
    write_bundle(other / "drizzle", [("0000_msgs", "CREATE TABLE `msgs` (`id` integer);")])
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines_random(
        [
            "drizzle/meta/_journal.json::upgrade_from_empty PASSED*",
            "packages/chat/drizzle/meta/_journal.json::upgrade_from_empty PASSED*",
        ]
    )


def test_dosqlite_bundle_option(pytester: pytest.Pytester) -> None:
    write_bundle(pytester.path / "db" / "out", GOOD)
    result = run(
        pytester, "--dosqlite-bundle", "db/out", "--dosqlite-checks-include=upgrade_from_empty"
    )
    result.assert_outcomes(passed=1)


def test_dosqlite_bundle_option_reads_the_worker_projects_configs(
    pytester: pytest.Pytester,
) -> None:
    # the Worker declares RoomDO key-value backed: drizzle's migrator cannot run on it
    make_project(pytester.path, wrangler=WRANGLER_TOML.replace("new_sqlite_classes", "new_classes"))
    include = "--dosqlite-checks-include=wrangler_contract"
    result = run(pytester, "--dosqlite-bundle", "drizzle", include)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RoomDO is KV-backed*"])
    # a bundle outside any Worker project: nothing to check it against, and it says so
    (pytester.path / "bare" / ".git").mkdir(parents=True)
    write_bundle(pytester.path / "bare" / "out", GOOD)
    result = run(pytester, "--dosqlite-bundle", "bare/out", include, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no wrangler config: the bundle was given without its Worker*"])


def test_broken_journal_is_a_clear_error(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    (pytester.path / "drizzle" / "meta" / "_journal.json").write_text(
        '{"entries": [\n  {"idx": 0,,}\n'
    )
    pytester.makepyfile(
        test_own="""
        import pytest_dosqlite as dosqlite

        def test_load():
            dosqlite.load_bundle("drizzle")
    """
    )
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty")
    out = result.stdout.str()
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of dosqlite load*",
            "dosqlite could not load *drizzle:",
            "*drizzle/meta/_journal.json:2: meta/_journal.json is not valid JSON*",
        ]
    )
    # the user's own load_bundle call fails at their line, with the same message
    result.stdout.fnmatch_lines(
        [
            '>       dosqlite.load_bundle("drizzle")',
            "E       pytest_dosqlite.errors.BundleError: *_journal.json:2: *not valid JSON*",
        ]
    )
    # no frames of the plugin, of pytest or of the json module
    assert "pytest_dosqlite/" not in out and "_pytest/" not in out and "json/" not in out
    assert "Traceback" not in out and "direct cause" not in out


def test_a_file_of_a_broken_bundle_named_on_the_command_line_gets_the_load_error(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester.path)
    (pytester.path / "drizzle" / "meta" / "_journal.json").write_text('{"entries": [\n')
    for named in ("drizzle/0001_posts.sql", "drizzle/meta/_journal.json"):
        result = run(pytester, named)
        assert result.ret == pytest.ExitCode.TESTS_FAILED  # not pytest's "not found" (4)
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "dosqlite could not load *drizzle:",
                "*drizzle/meta/_journal.json:2: meta/_journal.json is not valid JSON*",
            ]
        )
    # named together with its folder: reported once
    run(pytester, "drizzle", "drizzle/0001_posts.sql").assert_outcomes(errors=1)


def test_config_problems_are_shown_with_file_and_line(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    # a second drizzle config whose out folder does not exist: discovery works around it, and
    # says so in the header
    other = pytester.path / "packages" / "old"
    other.mkdir(parents=True)
    (other / "drizzle.config.ts").write_text(DRIZZLE_CONFIG.replace("./drizzle", "./gone"))
    # a broken JSONC wrangler config next to it
    (other / "wrangler.jsonc").write_text('{\n  "name": "old",\n  "main": "x" "y"\n}\n')
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty")
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "dosqlite: bundle drizzle: 2 migrations (durable-sqlite) for RoomDO (from *)",
            "dosqlite: could not load *packages/old/wrangler.jsonc:3: cannot parse: *",
            "dosqlite: note: *packages/old/drizzle.config.ts:3: out './gone' → *gone does not "
            "exist yet (run `drizzle-kit generate`)",
        ]
    )
    assert "line 3" not in out  # the line is said once, as file:line


def test_run_from_the_tests_folder_checks_the_worker_project_above(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(pytester.path)
    monkeypatch.chdir(pytester.mkdir("tests"))
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "dosqlite: note: *tests holds no drizzle bundle: checking the Worker project above "
            "it, *",
            "drizzle: 2 migrations, 2 tables, checks 1 passed, 0 failed*",
        ]
    )
    # named explicitly, the project is taken as given, its bundles labelled relative to it
    result = run(pytester, "--dosqlite-project", "..", "--dosqlite-checks-include=idempotent")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["drizzle: 2 migrations, 2 tables, checks 1 passed, 0 failed*"])
    assert "holds no drizzle bundle" not in result.stdout.str()


def test_run_inside_one_package_checks_that_package(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\n")  # the repository's rootdir
    for name in ("api", "chat"):
        pkg = pytester.path / "packages" / name
        pkg.mkdir(parents=True)
        make_project(pkg)
    monkeypatch.chdir(pytester.path / "packages" / "chat")
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["dosqlite: project: *packages/chat (from current directory)", "drizzle: 2 migrations*"]
    )
    assert "packages/api" not in result.stdout.str()
    # from the repository root: every package
    monkeypatch.chdir(pytester.path)
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty")
    result.assert_outcomes(passed=2)


def test_paths_on_the_command_line_select_bundles_as_they_select_tests(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester.path)
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_x.py").write_text(
        "def test_head(migrated_do):\n    migrated_do.sql.exec('SELECT * FROM posts')\n"
    )
    two = "--dosqlite-checks-include=upgrade_from_empty,idempotent"
    # a test file named: that file, not every bundle's checks
    result = run(pytester, two, "tests/test_x.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "collected 1 item",
            "drizzle: 2 migrations*checks: not under the paths given",
        ]
    )
    # a bundle named with --dosqlite-bundle was asked for by name
    result = run(pytester, two, "--dosqlite-bundle=drizzle", "tests/test_x.py")
    result.assert_outcomes(passed=3)
    # a file of the bundle named: that bundle's checks, once, however many of its files are
    # named, under the same node ids (they were under the file named: --lf and --deselect of
    # drizzle/meta/_journal.json::<check> missed them)
    journal = "drizzle/meta/_journal.json"
    for args in (
        ["drizzle/0001_posts.sql"],
        ["drizzle/migrations.js", "drizzle/0001_posts.sql"],
        ["drizzle", "drizzle/0001_posts.sql"],
        ["drizzle/0001_posts.sql", journal],
    ):
        result = run(pytester, two, "-v", *args)
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines([f"{journal}::upgrade_from_empty PASSED*"])
    result = run(pytester, two, "drizzle/0001_posts.sql", f"--deselect={journal}::idempotent")
    result.assert_outcomes(passed=1, deselected=1)
    # one check by node id: that check alone
    result = run(pytester, two, "drizzle/meta/_journal.json::idempotent")
    result.assert_outcomes(passed=1)
    # every check deselected: the summary says so rather than counting none
    result = run(pytester, two, "-k", "not upgrade and not idempotent")
    result.stdout.fnmatch_lines(["drizzle: 2 migrations*checks: none selected"])


def test_a_bundle_outside_testpaths_is_checked_and_counted(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    two = "--dosqlite-checks-include=upgrade_from_empty,idempotent"
    result = run(pytester, two)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["collected 3 items"])
    result = run(pytester, two, "--co", "-q")
    result.stdout.fnmatch_lines(
        ["drizzle/meta/_journal.json::upgrade_from_empty", "3 tests collected*"]
    )
    # --ignore takes a bundle out as it takes a folder of tests out
    result = run(pytester, two, "--ignore=drizzle")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["drizzle: 2 migrations, checks: ignored (--ignore)"])


def test_a_bundle_reached_through_symlinks_is_checked_once(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    (pytester.path / "mirror").symlink_to("drizzle", target_is_directory=True)
    (pytester.path / "a").mkdir()
    (pytester.path / "a" / "loop").symlink_to("..", target_is_directory=True)
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty,idempotent")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["drizzle: 2 migrations, 2 tables, checks 2 passed, 0 failed*"])


def test_no_bundle_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*found no drizzle bundle*"])


def test_fixtures_in_user_tests(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    result = run_user_tests(
        pytester,
        """
        import pytest
        import pytest_dosqlite as dosqlite

        def test_at_version(do_at, dosqlite_bundle):
            do = do_at("0000_init")
            assert [r[0] for r in do.sql.exec(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='posts'").raw()] == []
            do.sql.exec("INSERT INTO users (id, name) VALUES (1, 'a')")
            dosqlite.migrate(do, dosqlite_bundle)
            assert do.sql.exec("SELECT name FROM users").one() == {"name": "a"}

        @pytest.mark.parametrize("n", range(3))
        def test_isolated(migrated_do, n):
            migrated_do.sql.exec("INSERT INTO posts (title) VALUES ('x')")
            assert migrated_do.sql.exec("SELECT count(*) AS c FROM posts").one() == {"c": 1}

        def test_empty(do_storage):
            assert do_storage.sql.exec("SELECT count(*) AS c FROM sqlite_master").one() == {"c": 0}
    """,
    )
    result.assert_outcomes(passed=5)


def test_fixtures_on_a_broken_bundle_fail_cleanly(pytester: pytest.Pytester) -> None:
    custom = ("0002_custom", "-- Custom SQL migration file, put your code below! --")
    make_project(pytester.path, [*GOOD, custom])
    result = run_user_tests(
        pytester,
        """
        import pytest

        @pytest.mark.parametrize("n", range(3))
        def test_head(migrated_do, n):
            pass

        def test_before_the_broken_one(do_at):
            assert do_at("0001_posts").sql.exec("SELECT count(*) AS c FROM posts").one() == {"c": 0}

        def test_at_the_broken_one(do_at):
            do_at("0002_custom")

        def test_unknown_tag(do_at):
            do_at("0009_nope")
    """,
    )
    result.assert_outcomes(passed=1, failed=2, errors=3)
    out = result.stdout.str()
    # the long report, without the short summary, which on CI (the CI variable set) repeats
    # each message in full
    long = out.split("short test summary info")[0]
    # the migration, the file and line, the cause: once per test, without our frames
    assert long.count("migrated_do: a fresh Durable Object of ") == 3
    assert out.count("0002_custom.sql:1") >= 4
    assert "do_at('0002_custom'): a fresh Durable Object of " in out
    assert "SQL code did not contain a statement." in out
    assert "no migration '0009_nope' in this bundle; known tags: 0000_init" in out
    assert "pytest_dosqlite/" not in out and "Traceback" not in out
    assert "During handling" not in out


def test_a_failing_migrate_in_a_users_test_points_at_their_line(
    pytester: pytest.Pytester,
) -> None:
    custom = ("0002_custom", "-- Custom SQL migration file, put your code below! --")
    make_project(pytester.path, [*GOOD, custom])
    result = run_user_tests(
        pytester,
        """
        import pytest_dosqlite as dosqlite

        def test_upgrade(do_at, dosqlite_bundle):
            do = do_at("0001_posts")
            dosqlite.migrate(do, dosqlite_bundle)
    """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       dosqlite.migrate(do, dosqlite_bundle)",
            "E       pytest_dosqlite.errors.MigrationError: migration 0002_custom failed: *",
            "E       migration 0002_custom, chunk 0 (*0002_custom.sql:1)",
        ]
    )
    assert "pytest_dosqlite/" not in result.stdout.str()


def test_a_failing_statement_in_a_users_test_points_at_their_line(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester.path)
    result = run_user_tests(
        pytester,
        """
        def test_exec(migrated_do):
            migrated_do.sql.exec("INSERT INTO nosuch VALUES (1)")

        def test_in_transaction(migrated_do):
            def body():
                migrated_do.sql.exec("INSERT INTO posts (id) VALUES (1)")
                migrated_do.sql.exec("INSERT INTO posts (id) VALUES (1)")
            migrated_do.transaction_sync(body)

        def test_one(migrated_do):
            migrated_do.sql.exec("SELECT * FROM posts").one()
    """,
    )
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            '>       migrated_do.sql.exec("INSERT INTO nosuch VALUES (1)")',
            "E       pytest_dosqlite.errors.SqlError: no such table: nosuch: SQLITE_ERROR",
            '>       migrated_do.sql.exec("INSERT INTO posts (id) VALUES (1)")',
            "E       pytest_dosqlite.errors.SqlError: UNIQUE constraint failed: posts.id: *",
            '>       migrated_do.sql.exec("SELECT * FROM posts").one()',
            "E       pytest_dosqlite.errors.SqlError: *",
        ]
    )
    assert "pytest_dosqlite/" not in result.stdout.str()


def test_a_cached_failure_raised_again_carries_no_earlier_frames(tmp_path: Path) -> None:
    from pytest_dosqlite import load_bundle
    from pytest_dosqlite.errors import MigrationError
    from pytest_dosqlite.images import ImageCache

    custom = ("0002_custom", "-- Custom SQL migration file, put your code below! --")
    make_project(tmp_path, [*GOOD, custom])
    images, bundle = ImageCache(), load_bundle(tmp_path / "drizzle")
    depths = []
    for _ in range(3):
        with pytest.raises(MigrationError) as info:
            images.fresh(bundle)
        depths.append(len(info.traceback))
    assert depths[0] == depths[1] == depths[2]


def test_junit_xml_carries_the_check_names(pytester: pytest.Pytester) -> None:
    import xml.etree.ElementTree as ET

    make_project(pytester.path)
    result = run(
        pytester, "--dosqlite-checks-include=upgrade_from_empty,idempotent", "--junitxml=out.xml"
    )
    result.assert_outcomes(passed=2)
    cases = ET.parse(pytester.path / "out.xml").getroot().iter("testcase")
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert names == {
        ("drizzle.meta._journal.json", "upgrade_from_empty"),
        ("drizzle.meta._journal.json", "idempotent"),
    }


def test_example_ci_workflow_runs_the_plugin() -> None:
    workflow = (
        Path(__file__).resolve().parents[1]
        / "example_project"
        / ".github"
        / "workflows"
        / "migrations.yml"
    ).read_text()
    assert 'pip install "pytest-dosqlite==' in workflow
    assert "pytest --dosqlite" in workflow and "--junitxml=" in workflow
    assert "permissions: {}" in workflow and "timeout-minutes:" in workflow


# a recreation that copies a column the old table does not have (DO029, an error)
COPIES_MISSING = [
    ("0000_init", "CREATE TABLE `notes` (`id` integer PRIMARY KEY, `title` text);"),
    (
        "0001_pinned",
        "CREATE TABLE `__new_notes` (`id` integer PRIMARY KEY, `title` text, `pinned` integer "
        f"DEFAULT false);{BP}\n"
        'INSERT INTO `__new_notes`("id", "title", "pinned") SELECT "id", "title", "pinned" '
        f"FROM `notes`;{BP}\nDROP TABLE `notes`;{BP}\n"
        "ALTER TABLE `__new_notes` RENAME TO `notes`;",
    ),
]


def test_snapshot_update_does_not_accept_lint_errors(pytester: pytest.Pytester) -> None:
    # recording the schema used to pin the new migration and stop linting it, in the same run
    # and in every later one: CI went green on the PR that added it
    make_project(pytester.path, COPIES_MISSING)
    for extra in (["--snapshot-update"], []):
        result = run(pytester, "--dosqlite-checks-include=schema_snapshot,lint", *extra)
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*0001_pinned.sql:* DO029 recreate-copies-missing-column*"])
    # the explicit baseline accepts what shipped; a tag of no migration of the bundle says so
    pytester.makeini("[pytest]\ndosqlite_lint_baseline = 0000_init\n")
    result = run(pytester, "--dosqlite-checks-include=lint")
    result.assert_outcomes(failed=1)
    assert "names none of this bundle's migrations" not in result.stdout.str()
    pytester.makeini("[pytest]\ndosqlite_lint_baseline = 0001_pinnd\n")
    result = run(pytester, "--dosqlite-checks-include=lint")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*names none of this bundle's migrations (0001_pinnd)*"])
    pytester.makeini("[pytest]\ndosqlite_lint_baseline = 0001_pinned\n")
    run(pytester, "--dosqlite-checks-include=lint").assert_outcomes(passed=1)


def test_a_start_function_that_does_not_import_fails_at_once(pytester: pytest.Pytester) -> None:
    # it used to hang each child until the timeout, then blame the migrations
    make_project(pytester.path)
    pytester.makeini("[pytest]\ndosqlite_timeout = 60\n")
    for spec in ("nosuchmod:fn", "os:nosuchfn", "os:sep"):
        result = run(
            pytester,
            "--dosqlite-checks-include=upgrade_from_every_version,concurrent_starts,crash_recovery",
            f"--dosqlite-start={spec}",
        )
        result.assert_outcomes(failed=3)
        out = result.stdout.str()
        # each failure's first line (the short summary repeats it, untruncated under CI)
        heads = (f"cannot load the start function '{spec}'", f"the start function '{spec}'")
        assert sum(line.startswith(heads) for line in out.splitlines()) == 3, out
        assert "Traceback" not in out and "never sent" not in out
        assert result.duration < 50


def test_zero_on_the_command_line_is_checked_and_names_are_counted_once(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester.path)
    # 0 == False: a command-line 0 was dropped in favour of the ini value or the default
    result = run(pytester, "--dosqlite-concurrency", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dosqlite_concurrency must be at least 1, not 0*"])
    pytester.makeini("[pytest]\ndosqlite_checks_include = , ,\n")
    result = run(pytester)  # it named no check, and ran them all
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dosqlite_checks_include names no check*"])
    pytester.makeini("[pytest]\n")
    # a value meant as a row count forked processes until the machine had none left
    result = run(pytester, "--dosqlite-concurrency", "100000000")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dosqlite_concurrency must be at most 64, not 100000000*"])
    pytester.makeini("[pytest]\ndosqlite_git_history_limit = 0\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dosqlite_git_history_limit must be above 0*history = false*"])
    pytester.makeini("[pytest]\n")
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty,upgrade_from_empty")
    result.assert_outcomes(passed=1)


def test_a_command_line_seed_path_is_relative_to_where_pytest_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it was read relative to the rootdir, unlike --dosqlite-report and --dosqlite-bundle
    make_project(pytester.path)
    pytester.makeini("[pytest]\n")
    sub = pytester.path / "sub"
    sub.mkdir()
    (sub / "seed.json").write_text('{"0001_posts": {"users": [{"id": 7, "name": "x"}]}}')
    monkeypatch.chdir(sub)
    result = run(pytester, "--dosqlite-checks-include=data_preserved", "--dosqlite-seed=seed.json")
    result.assert_outcomes(passed=1)


BUNDLE_IDS_TEST = """
def test_bundle(dosqlite_bundle):
    print("BUNDLE", dosqlite_bundle.root.parent.name)
"""


def test_a_test_file_or_folder_finds_the_bundles_its_project_has(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `pytest tests` in a monorepo whose configs live in its packages, and a test file named from
    # another folder: the fixture had no bundle (or every bundle found under the rootdir)
    pytester.makeini("[pytest]\n")
    for app in ("room", "chat", "room/inner"):
        (pytester.path / "apps" / app).mkdir(parents=True)
    make_project(pytester.path / "apps" / "room")
    make_project(pytester.path / "apps" / "chat")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_b.py").write_text(BUNDLE_IDS_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "tests")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*BUNDLE chat*", "*BUNDLE room*"])
    make_project(pytester.path / "apps" / "room" / "inner")
    (pytester.path / "apps" / "room" / "inner" / "tests").mkdir()
    result.stdout.fnmatch_lines(["*BUNDLE chat*", "*BUNDLE room*"])
    test_file = pytester.path / "apps" / "room" / "inner" / "tests" / "test_b.py"
    test_file.write_text(BUNDLE_IDS_TEST)
    (pytester.path / "elsewhere").mkdir()
    monkeypatch.chdir(pytester.path / "elsewhere")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", str(test_file))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*BUNDLE inner*"])


def test_a_test_can_pick_its_bundle_and_same_named_bundles_are_told_apart(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\n")
    for app in ("room", "chat"):
        (pytester.path / "apps" / app).mkdir(parents=True)
        make_project(pytester.path / "apps" / app)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_b.py").write_text(
        BUNDLE_IDS_TEST
        + """
import pytest

# a parametrization of its own used to be a collection error: "duplicate parametrization"
@pytest.mark.parametrize("dosqlite_bundle", ["apps/room/drizzle"], indirect=True)
def test_room_only(dosqlite_bundle):
    assert dosqlite_bundle.root.parent.name == "room"
"""
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-v", "tests", "apps/room", "apps/chat"
    )
    result.assert_outcomes(passed=3)
    # both are `drizzle` relative to their projects: [drizzle0] and [drizzle1] said neither
    result.stdout.fnmatch_lines_random(
        [
            "*test_bundle?apps/chat/drizzle? PASSED*",
            "*test_bundle?apps/room/drizzle? PASSED*",
            "*test_room_only?apps/room/drizzle? PASSED*",
        ]
    )


def test_a_skipped_check_is_located_at_its_bundle(pytester: pytest.Pytester) -> None:
    # -rs printed the line of this plugin that called pytest.skip
    make_project(pytester.path)
    result = run(pytester, "--dosqlite-checks-include=matches_drizzle_snapshot", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED ?1? drizzle/meta/_journal.json:1: no drizzle-kit*"])
    assert "pytest_dosqlite" not in result.stdout.str()


def test_a_snapshot_that_cannot_be_read_is_named_as_such(pytester: pytest.Pytester) -> None:
    # it read as "no schema snapshot yet" (and the CLI ended in a UnicodeDecodeError)
    from pytest_dosqlite.cli import main

    make_project(pytester.path)
    run(pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update")
    snap = pytester.path / "__snapshots__" / "dosqlite" / "drizzle.sql"
    snap.write_bytes(b"garbage\x00\xff\xfe\n")
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cannot read the schema snapshot*", "*drizzle.sql: not UTF-8*"])
    assert "no schema snapshot yet" not in result.stdout.str()
    assert main(["check", str(pytester.path), "--include", "schema_snapshot"]) == 1
    run(pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update")
    run(pytester, "--dosqlite-checks-include=schema_snapshot").assert_outcomes(passed=1)


def test_fixture_arguments_of_the_wrong_kind_say_what_is_expected(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester.path, [*GOOD, ("0002_custom", "-- nothing --")])
    result = run_user_tests(
        pytester,
        """
        import pytest
        import pytest_dosqlite as dosqlite

        def test_by_index_and_by_migration(do_at, dosqlite_bundle):
            # an int idx and a Migration: "no migration 1", and the Migration's whole repr
            assert do_at(1).sql.exec("SELECT count(*) AS c FROM posts").one() == {"c": 0}
            do_at(dosqlite_bundle.migrations[0])

        def test_wrong_migrate_arguments(do_storage, dosqlite_bundle):
            with pytest.raises(TypeError, match="bundle is a Bundle .*not str 'drizzle'"):
                dosqlite.migrate(do_storage, "drizzle")  # an AttributeError from our internals
            with pytest.raises(TypeError, match="bundle is a Bundle .*not DurableObjectStorage"):
                dosqlite.migrate(dosqlite_bundle, do_storage)  # swapped
            with pytest.raises(TypeError, match="do is a Durable Object's storage .*not str"):
                dosqlite.migrate("do", dosqlite_bundle)

        def test_versions_are_checked(dosqlite_backend, dosqlite_bundle):
            bad_versions = ((4, ValueError), (-1, ValueError), ("2", TypeError), (2.0, TypeError))
            for bad, error in bad_versions:
                with pytest.raises(error, match="out of range 0..3|an int in 0..3"):
                    dosqlite_backend.fresh(dosqlite_bundle, bad)

        def test_the_failure_names_the_tag(do_at):
            do_at("0002_custom")
    """,
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*cannot be migrated to version 3 (through 0002_custom)*"])


def test_a_bundle_outside_the_rootdir_has_node_ids_a_command_line_can_select(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # run in the Worker's tests/ without an ini file: they read `::_journal.json::lint`
    make_project(pytester.path)
    (pytester.path / "tests").mkdir()
    monkeypatch.chdir(pytester.path / "tests")
    result = run(pytester, "--dosqlite-checks-include=lint,idempotent", "--rootdir=.", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["../drizzle/meta/_journal.json::lint PASSED*"])
    result = run(pytester, "--rootdir=.", "../drizzle/meta/_journal.json::lint")
    result.assert_outcomes(passed=1)


def test_option_precedence_and_where_they_apply(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(pytester.path)
    # a check named on the command line runs although the ini excludes it (none ran)
    pytester.makeini("[pytest]\ndosqlite_checks_exclude = idempotent\n")
    result = run(pytester, "--dosqlite-checks-include=idempotent")
    result.assert_outcomes(passed=1)
    # without syrupy, the way to record a snapshot says what --snapshot-update needs
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot", "-p", "no:syrupy")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--snapshot-update` (syrupy's option: without `-p no:syrupy`)*"])
    # --dosqlite-bundle names what is checked, also from a folder with bundles of its own
    make_project(_mkdir(pytester.path / "sub" / "other"))
    monkeypatch.chdir(pytester.path / "sub")
    result = run(pytester, "--dosqlite-checks-include=idempotent", "--dosqlite-bundle=../drizzle")
    result.assert_outcomes(passed=1)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_a_bundle_or_project_path_that_does_not_exist_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    # it was a load error (exit 1), and the project's own checks were not run
    make_project(pytester.path)
    for option in ("--dosqlite-bundle=nosuch/drizzle", "--dosqlite-project=nosuch"):
        result = run(pytester, option)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*: no such folder: *nosuch*"])


def test_setup_plan_writes_no_summary_of_checks_that_did_not_run(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester.path)
    result = run(pytester, "--dosqlite-checks-include=idempotent", "--setup-plan")
    assert "checks: none selected" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*_journal.json::idempotent*"])


def test_a_recorded_migration_renamed_with_the_same_sql_is_called_renamed(
    pytester: pytest.Pytester,
) -> None:
    # renumbered on a merge: it read "Removed after it was recorded ... fresh DOs never get
    # them", which was false, and told to restore the recorded text
    make_project(pytester.path)
    run(pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update")
    shutil.rmtree(pytester.path / "drizzle")
    write_bundle(pytester.path / "drizzle", [GOOD[0], ("0001_articles", GOOD[1][1])])
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*Renamed after it was recorded:*", "*0001_posts -> 0001_articles (the same SQL)*"]
    )
    assert "Removed after" not in result.stdout.str()
    assert "Restore the recorded" not in result.stdout.str()


RECREATION = [
    (
        "0000_init",
        f"CREATE TABLE `users` (`id` integer PRIMARY KEY, `name` text);{BP}\n"
        "CREATE TABLE `posts` (`id` integer PRIMARY KEY, `author_id` integer NOT NULL "
        "REFERENCES `users`(`id`) ON DELETE cascade);",
    ),
    (
        "0001_name_not_null",
        f"PRAGMA foreign_keys=OFF;{BP}\n"
        "CREATE TABLE `__new_users` (`id` integer PRIMARY KEY, `name` text DEFAULT '' NOT NULL);"
        f"{BP}\nINSERT INTO `__new_users`(`id`, `name`) SELECT `id`, coalesce(`name`, '') "
        f"FROM `users`;{BP}\nDROP TABLE `users`;{BP}\n"
        f"ALTER TABLE `__new_users` RENAME TO `users`;{BP}\nPRAGMA foreign_keys=ON;",
    ),
]
START_TEST = """
import pytest


def test_posts_after_the_recreation(do_at, dosqlite_start, dosqlite_bundle):
    do = do_at("0000_init")
    do.sql.exec("INSERT INTO users (id, name) VALUES (1, 'ada')")
    do.sql.exec("INSERT INTO posts (id, author_id) VALUES (1, 1)")
    run = dosqlite_start(do)
    assert run.applied == ["0001_name_not_null"]
    count = do.sql.exec("SELECT count(*) AS n FROM posts").one()["n"]
    print("POSTS", count)
    assert do.sql.exec("PRAGMA foreign_keys").one() == {"foreign_keys": 1}
    with pytest.raises(TypeError, match="bundle is a Bundle"):
        dosqlite_start(do, "drizzle")
"""


@pytest.mark.parametrize(("start", "posts"), [(None, 0), ("drizzle-fk-off", 1)])
def test_dosqlite_start_migrates_as_the_configured_start(
    pytester: pytest.Pytester, start: str | None, posts: int
) -> None:
    make_project(pytester.path, RECREATION)
    if start is not None:
        pytester.makeini(f"[pytest]\ndosqlite_start = {start}\n")
    pytester.makepyfile(test_data=START_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "test_data.py")
    result.assert_outcomes(passed=1)
    assert f"POSTS {posts}" in result.stdout.str()


@pytest.mark.workerd
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_dosqlite_start_runs_inside_workerd(pytester: pytest.Pytester) -> None:
    make_project(pytester.path, RECREATION)
    pytester.makeini("[pytest]\ndosqlite_start = drizzle-fk-off\n")
    pytester.makepyfile(test_data=START_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-s", "--dosqlite-backend=workerd", "test_data.py"
    )
    result.assert_outcomes(passed=1)
    assert "POSTS 1" in result.stdout.str()


def test_concurrent_starts_leaves_a_fresh_do_failure_to_upgrade_from_empty(
    pytester: pytest.Pytester,
) -> None:
    # it failed with the same statement and error as upgrade_from_empty: one cause, twice
    make_project(pytester.path, [*GOOD, ("0002_bad", "SELECT * FROM nosuch;")])
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty,concurrent_starts", "-rs")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*every one of * concurrent starts*(upgrade_from_empty reports the failure)*"]
    )


def test_a_bundle_that_does_not_load_has_a_stable_id_and_a_summary_line(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester.path)
    (pytester.path / "drizzle" / "meta" / "_journal.json").write_text("{bad")
    result = run(pytester, "--junitxml=j.xml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["drizzle: could not be loaded: *"])
    junit = (pytester.path / "j.xml").read_text()
    assert 'name="dosqlite-load"' in junit
    # relative to the rootdir, as check items are: the same on every machine and checkout
    listed = run(pytester, "--co", "-q")
    listed.stdout.fnmatch_lines(["drizzle/meta/_journal.json::dosqlite-load"])


def test_warnings_as_errors_fail_the_check_with_every_finding(pytester: pytest.Pytester) -> None:
    # -W error turned the first lint warning into a traceback out of the check
    make_project(pytester.path, RECREATION)
    result = run(
        pytester,
        "--dosqlite-checks-include=lint",
        "-W",
        "error",
        "-o",
        "dosqlite_start=drizzle-fk-off",
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "lint: 2 errors in bundle" in out and out.count("DO001 pragma-foreign-keys:") >= 2
    assert "Traceback" not in out and "_pytest" not in out


def test_tb_line_gives_one_line_per_failed_check(pytester: pytest.Pytester) -> None:
    make_project(pytester.path, [*GOOD, ("0002_bad", "SELECT * FROM nosuch;")])
    result = run(pytester, "--dosqlite-checks-include=upgrade_from_empty", "--tb=line")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["drizzle/meta/_journal.json:1: upgrade_from_empty: migration 0002_bad fails on a fresh*"]
    )
    out = result.stdout.str()
    assert "How to fix" not in out
    # pytest printed the first 50 characters of a plain text again after it
    assert [line.startswith("drizzle/meta/_journal.json:") for line in out.splitlines()] == [
        line.startswith("drizzle/meta/_journal.json:1: upgrade") for line in out.splitlines()
    ]


def test_tb_line_names_the_check_once(pytester: pytest.Pytester) -> None:
    make_project(pytester.path, [*GOOD, ("0002_bad", "PRAGMA journal_mode=WAL;")])
    result = run(pytester, "--dosqlite-checks-include=lint", "--tb=line")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["drizzle/meta/_journal.json:1: lint: 1 error in bundle *"])


def test_no_snapshot_yet_shows_the_start_of_a_large_schema(pytester: pytest.Pytester) -> None:
    tables = "".join(
        f"CREATE TABLE `t{i}` (`id` integer PRIMARY KEY, `a` text, `b` integer);{BP}\n"
        for i in range(30)
    )
    make_project(pytester.path, [("0000_init", tables.rstrip().removesuffix(BP))])
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no schema snapshot yet*", "*... (* more lines in the file)*"])
    assert "CREATE TABLE t29" not in result.stdout.str()
    run(pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update")
    snap = next(pytester.path.rglob("__snapshots__/dosqlite/*.sql")).read_text()
    assert "CREATE TABLE t29" in snap  # the file holds it all


def test_a_baseline_tag_of_no_migration_is_noted_in_the_header(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    pytester.makeini("[pytest]\ndosqlite_lint_baseline = 0000_intt\n")
    result = run(pytester, "--dosqlite-checks-include=lint")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["dosqlite: note: dosqlite_lint_baseline 0000_intt names no migration of the bundles*"]
    )


def test_junit_properties_are_plain_values(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    run(pytester, "--dosqlite-checks-include=upgrade_from_empty", "--junitxml=j.xml")
    import re

    junit = (pytester.path / "j.xml").read_text()
    value = re.search(r'name="dosqlite_slowest" value="([^"]*)"', junit)
    assert value is not None and re.fullmatch(r"\S+ \d+\.\d{6}", value.group(1)), junit


def test_a_worker_that_imports_migrations_js_by_name_is_checked_with_it(
    pytester: pytest.Pytester,
) -> None:
    # a stale hand-written migrations.ts next to drizzle-kit's migrations.js: the Worker names
    # migrations.js, so the .ts is never built; it was read instead ("Missing migration")
    make_project(pytester.path, [*GOOD, ("0002_tags", "CREATE TABLE `tags` (`id` integer);")])
    stale = (
        "import journal from './meta/_journal.json';\nimport m0000 from './0000_init.sql';\n"
        "import m0001 from './0001_posts.sql';\n"
        "export default { journal, migrations: { m0000, m0001 } };\n"
    )
    (pytester.path / "drizzle" / "migrations.ts").write_text(stale)
    index = pytester.path / "src" / "index.ts"
    checks = "--dosqlite-checks-include=upgrade_from_empty"
    run(pytester, checks).assert_outcomes(failed=1)  # extensionless: esbuild takes the .ts
    index.write_text("import migrations from '../drizzle/migrations.js';\nexport class RoomDO {}\n")
    run(pytester, checks).assert_outcomes(passed=1)


@pytest.mark.parametrize("name", ["wrangler.toml", "drizzle.config.ts"])
def test_a_config_that_is_a_symlink_loop_is_a_load_error(
    pytester: pytest.Pytester, name: str
) -> None:
    # the loader reported it, then collection resolved the path again: INTERNALERROR
    make_project(pytester.path)
    config = pytester.path / name
    config.unlink(missing_ok=True)
    config.symlink_to(name)
    result = run(pytester)
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"*{name}::dosqlite-load*"])


def test_snapshot_update_keeps_what_is_not_a_stale_snapshot(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --snapshot-update -k "not drizzle2" deleted drizzle2's recorded snapshot (and its pins)
    # and any other file of __snapshots__/dosqlite
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # syrupy: the controller's job
    make_project(pytester.path)
    write_bundle(pytester.path / "drizzle2", GOOD)
    result = run(pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update")
    result.assert_outcomes(passed=2)
    snaps = pytester.path / "__snapshots__" / "dosqlite"
    assert sorted(p.name for p in snaps.iterdir()) == ["drizzle.sql", "drizzle2.sql"]
    (snaps / "README.txt").write_text("reviewed schema snapshots\n")
    for selection in (["-k", "not drizzle2"], ["--deselect", "drizzle2/meta/_journal.json"]):
        result = run(
            pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update", *selection
        )
        result.assert_outcomes(passed=1)
        names = sorted(p.name for p in snaps.iterdir())
        assert names == ["README.txt", "drizzle.sql", "drizzle2.sql"], selection
    # a bundle folder that is gone: its snapshot is stale, and is removed
    (pytester.path / "drizzle2").rename(pytester.path / "drizzle3")
    run(pytester, "--dosqlite-checks-include=schema_snapshot", "--snapshot-update")
    assert sorted(p.name for p in snaps.iterdir()) == ["README.txt", "drizzle.sql", "drizzle3.sql"]


def test_a_configured_bundle_that_cannot_load_fails_whatever_the_paths_select(
    pytester: pytest.Pytester,
) -> None:
    # `pytest --dosqlite .` passed with a dosqlite_bundles folder outside `.` that does not load
    make_project(pytester.path)
    outside = pytester.path.parent / f"{pytester.path.name}-notabundle"
    outside.mkdir()
    pytester.makeini(f"[pytest]\ndosqlite_bundles = ../{outside.name}\n")
    result = run(pytester, ".")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*dosqlite-load*"])
