"""``python -m pytest_dosqlite``: schema, check and the help text, without pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dosqlite.cli import main
from test_plugin import GOOD, WRANGLER_TOML, make_project, write_bundle

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project" / "drizzle"
CUSTOM = ("0002_custom", "-- Custom SQL migration file, put your code below! --")


def test_schema_prints_the_head_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE users" in out and "CREATE TABLE notes" in out
    assert "__drizzle_migrations" not in out


def test_schema_of_a_bundle_that_does_not_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_project(tmp_path, [*GOOD, CUSTOM])
    assert main(["schema", str(tmp_path / "drizzle")]) == 1
    err = capsys.readouterr().err
    assert "migration 0002_custom failed: SQL code did not contain a statement." in err
    assert "0002_custom.sql:1" in err


def test_check_passes_and_fails_with_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(EXAMPLE), "--include", "bundle_integrity,idempotent"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 passed, 0 failed"

    make_project(tmp_path, [*GOOD, CUSTOM])
    code = main(["check", str(tmp_path / "drizzle"), "--include", "upgrade_from_empty"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED upgrade_from_empty" in out and "migration 0002_custom fails" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed"


def test_check_prints_a_checks_warnings_under_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the example's 0005 recreates `notes` with PRAGMA foreign_keys=OFF: lint warns (DO001)
    assert main(["check", str(EXAMPLE), "--include", "lint,bundle_integrity"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    at = lines.index("passed lint")
    assert lines[at + 1].startswith("    warning: ") and "DO001" in lines[at + 1]
    assert "0005_notes_pinned_check.sql:" in lines[at + 1]
    assert "DosqliteLintWarning" not in captured.out + captured.err


def test_check_rejects_unknown_names_and_bad_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(EXAMPLE), "--include", "idempotnet"]) == 2
    assert "unknown check(s): idempotnet; known: bundle_integrity" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "nosuch")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'nosuch'}: no such file or folder")


def test_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "schema PATH: print the normalized schema" in out and "``" not in out


def test_a_project_folder_stands_for_its_bundles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # one bundle: that bundle, read with the project's configs
    make_project(tmp_path)
    assert main(["check", str(tmp_path), "--include", "wrangler_contract"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"project: {tmp_path} (1 wrangler config")
    assert "passed wrangler_contract" in out
    assert main(["schema", str(tmp_path)]) == 0
    assert "CREATE TABLE posts" in capsys.readouterr().out
    # several: check and schema name them; the report takes them all
    (tmp_path / "chat").mkdir()
    make_project(tmp_path / "chat")
    for command in ("check", "schema"):
        assert main([command, str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "a project folder with 2 bundles: chat/drizzle, drizzle. Pass one of them" in err
        assert f"or run `pytest --dosqlite {tmp_path}`" in err
    assert main(["report", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    headings = [line for line in report.splitlines() if line.startswith("## `")]
    # labelled from the folder named, as pytest --dosqlite labels them from its project
    assert headings == ["## `chat/drizzle`", "## `drizzle`"]
    # a folder with no bundle under it keeps the plain message
    (tmp_path / "empty").mkdir()
    assert main(["check", str(tmp_path / "empty")]) == 2
    assert "not a drizzle-kit migrations folder: no meta/_journal.json" in capsys.readouterr().err


def test_check_reads_the_bundle_with_its_worker_projects_configs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the Worker declares RoomDO key-value backed: drizzle's migrator cannot run on it
    make_project(tmp_path, wrangler=WRANGLER_TOML.replace("new_sqlite_classes", "new_classes"))
    assert main(["check", str(tmp_path / "drizzle"), "--include", "wrangler_contract"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"project: {tmp_path} (1 wrangler config, 1 drizzle config)")
    assert "FAILED wrangler_contract" in out and "RoomDO is KV-backed" in out
    # a bundle without a Worker project: skipped, with the reason, not passed
    (tmp_path / "bare" / ".git").mkdir(parents=True)
    write_bundle(tmp_path / "bare" / "drizzle", GOOD)
    assert (
        main(["check", str(tmp_path / "bare" / "drizzle"), "--include", "wrangler_contract"]) == 0
    )
    out = capsys.readouterr().out
    assert "skipped wrangler_contract: no wrangler config" in out and "project:" not in out


def test_check_takes_the_lint_settings_its_failure_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_plugin import COPIES_MISSING

    make_project(tmp_path, COPIES_MISSING)
    bundle = str(tmp_path / "drizzle")
    assert main(["check", bundle, "--include", "lint,lint"]) == 1
    out = capsys.readouterr().out
    assert "DO029" in out and "--lint-severity DO0NN=off" in out and "--lint-baseline" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed"  # a name given twice runs once
    assert main(["check", bundle, "--include", "lint", "--lint-severity", "DO029=warning"]) == 0
    assert "warning: " in capsys.readouterr().out
    assert main(["check", bundle, "--include", "lint", "--lint-baseline", "0001_pinned"]) == 0
    capsys.readouterr()
    assert main(["check", bundle, "--include", "lint", "--lint-severity", "DO999=off"]) == 2
    assert "unknown lint rule DO999" in capsys.readouterr().err
    assert main(["check", bundle, "--lint-severity", "DO029"]) == 2
    assert "RULE=error|warning|off" in capsys.readouterr().err


def test_check_reports_a_config_that_does_not_parse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # it printed the project's config count, passed wrangler_contract and exited 0
    make_project(
        tmp_path,
        wrangler='{\n  "name": "x"\n  "main": "src/index.ts"\n}\n',
        wrangler_name="wrangler.jsonc",
    )
    assert main(["check", str(tmp_path), "--include", "wrangler_contract"]) == 1
    out = capsys.readouterr().out
    assert "ERROR " in out and "wrangler.jsonc:3: cannot parse" in out
    assert "FAILED wrangler_contract" in out and "has an error" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed, 1 config error"


def test_a_folder_that_cannot_be_read_is_an_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pytest_dosqlite.cli as cli

    def unreadable(path: str) -> object:
        raise PermissionError(13, "Permission denied", f"{path}/meta/_journal.json")

    monkeypatch.setattr(cli, "_load", unreadable)
    assert main(["check", "proj/drizzle"]) == 2
    assert capsys.readouterr().err == (
        "error: cannot read proj/drizzle/meta/_journal.json: Permission denied\n"
    )


def test_report_shows_the_do_classes_as_pytest_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the CLI's report had "–" where pytest --dosqlite --dosqlite-report shows the classes
    (tmp_path / "app").mkdir()
    make_project(tmp_path / "app")
    out = tmp_path / "reports" / "r.md"  # a folder to make, as --dosqlite-report makes it
    assert main(["report", str(tmp_path / "app"), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "`RoomDO`" in text


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "pytest.ini",
            "[pytest]\ndosqlite_checks_include = lint\ndosqlite_lint_severity =\n"
            "    DO029=warning\n",
        ),
        (
            "pyproject.toml",
            '[tool.pytest.ini_options]\ndosqlite_checks_include = ["lint"]\n'
            'dosqlite_lint_severity = ["DO029=warning"]\n',
        ),
        (
            "pytest.toml",
            '[pytest]\ndosqlite_checks_include = ["lint"]\n'
            'dosqlite_lint_severity = ["DO029=warning"]\n',
        ),
        (
            "pyproject.toml",
            '[tool.pytest]\ndosqlite_checks_include = ["lint"]\n'
            'dosqlite_lint_severity = ["DO029=warning"]\n',
        ),
        (
            "setup.cfg",
            "[tool:pytest]\ndosqlite_checks_include = lint\ndosqlite_lint_severity = "
            "DO029=warning\n",
        ),
    ],
)
def test_check_reads_the_projects_pytest_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str
) -> None:
    # pytest --dosqlite passed with these settings and the CLI failed: it read none of them
    from test_plugin import COPIES_MISSING

    make_project(tmp_path, COPIES_MISSING)
    (tmp_path / name).write_text(text)
    bundle = str(tmp_path / "drizzle")
    assert main(["check", bundle]) == 0
    out = capsys.readouterr().out
    assert f"settings: {tmp_path / name}" in out
    assert out.splitlines()[-1] == "1 passed, 0 failed"  # only lint, DO029 a warning
    # the options win over the file; --no-ini ignores it
    assert main(["check", bundle, "--lint-severity", "DO029=error"]) == 1
    capsys.readouterr()
    assert main(["check", bundle, "--no-ini", "--include", "lint"]) == 1
    assert "settings:" not in capsys.readouterr().out


def test_check_takes_the_start_and_a_broken_ini_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_plugin import RECREATION

    make_project(tmp_path, RECREATION)
    bundle = str(tmp_path / "drizzle")
    # DO024 is off under the start that turns foreign keys off, as in pytest
    assert main(["check", bundle, "--include", "lint"]) == 1
    capsys.readouterr()
    assert main(["check", bundle, "--include", "lint", "--start", "drizzle-fk-off"]) == 0
    capsys.readouterr()
    (tmp_path / "pytest.ini").write_text("[pytest]\ndosqlite_start = drizzle-fk-off\n")
    assert main(["check", bundle, "--include", "lint"]) == 0
    capsys.readouterr()
    assert main(["check", bundle, "--start", "nope"]) == 2
    assert "drizzle, drizzle-fk-off or module:function" in capsys.readouterr().err
    (tmp_path / "pytest.ini").unlink()
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options\n")
    assert main(["check", bundle]) == 2
    assert f"{tmp_path / 'pyproject.toml'}: cannot read it" in capsys.readouterr().err


def test_check_validates_settings_as_pytest_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_project(tmp_path)
    bundle = str(tmp_path / "drizzle")
    assert main(["check", bundle, "--include", "startup_budget", "--budget-rows", "0"]) == 2
    assert "--budget-rows must be at least 1, not 0" in capsys.readouterr().err
    for bad in ("0", "100000000"):
        (tmp_path / "pytest.ini").write_text(f"[pytest]\ndosqlite_concurrency = {bad}\n")
        assert main(["check", bundle, "--include", "concurrent_starts"]) == 2
        assert "dosqlite_concurrency must be between 1 and 64" in capsys.readouterr().err
    (tmp_path / "pytest.ini").write_text("[pytest]\ndosqlite_start = drizzle-fk-off  # x\n")
    assert main(["check", bundle]) == 2
    assert f"{tmp_path / 'pytest.ini'}: dosqlite_start must be" in capsys.readouterr().err
    (tmp_path / "pytest.ini").write_text("[pytest]\ndosqlite_start = drizzle-fk-off\n")
    assert main(["check", bundle, "--include", "idempotent"]) == 0
    assert "start: drizzle-fk-off" in capsys.readouterr().out
