"""The fleet checks: upgrades from every version (and git history), racing starts, crashes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import apsw
import pytest

from conftest import EXAMPLES, shared_path
from pytest_dosqlite import _start, fleet, forkserver
from pytest_dosqlite.bundle import load_bundle
from pytest_dosqlite.checks import CheckContext, Settings
from pytest_dosqlite.errors import CheckFailure, DosqliteWarning
from pytest_dosqlite.images import ImageCache
from pytest_dosqlite.storage import DurableObjectStorage

HOOKS = EXAMPLES / "fleet-hooks"
CLEAN = EXAMPLES / "fleet-safe" / "drizzle"
GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")


def context(path: Path, *, git_history: bool = False, **extra: Any) -> CheckContext:
    settings = Settings(git_history=git_history, concurrency=extra.pop("concurrency", 8))
    return CheckContext(
        bundle=load_bundle(path), settings=settings, images=ImageCache(), extra=extra
    )


def failure_of(check: Any, ctx: CheckContext) -> CheckFailure:
    with pytest.raises(CheckFailure) as info:
        check(ctx)
    return info.value


def section(failure: CheckFailure, prefix: str) -> str:
    bodies = [body for title, body in failure.sections if title.startswith(prefix)]
    assert bodies, f"no section {prefix!r} in {[t for t, _ in failure.sections]}"
    return "\n".join(bodies)


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The defective start functions, importable here and in the child processes."""
    monkeypatch.syspath_prepend(str(HOOKS))


@pytest.fixture(params=["forked", "popen"])
def spawner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Children forked by the fork server (the default), or ordinary subprocesses."""
    if request.param == "popen":
        monkeypatch.setenv(forkserver.NO_FORKSERVER_ENV, "1")
    else:
        if not forkserver._supported():
            pytest.skip("no os.fork/SOCK_SEQPACKET on this platform")
        monkeypatch.delenv(forkserver.NO_FORKSERVER_ENV, raising=False)
    return str(request.param)


# ------------------------------------------------------------------ clean bundles pass


def test_clean_example_passes_every_fleet_check() -> None:
    ctx = context(CLEAN)
    fleet.upgrade_from_every_version(ctx)
    fleet.concurrent_starts(ctx)
    fleet.crash_recovery(ctx)


def test_clean_shared_bundle_passes_every_fleet_check() -> None:
    ctx = context(shared_path("bundles", "basic-step6", "drizzle"))
    fleet.upgrade_from_every_version(ctx)
    fleet.concurrent_starts(ctx)
    fleet.crash_recovery(ctx)


def test_a_tag_the_journal_repeats_is_not_a_race(tmp_path: Path) -> None:
    # migrations.js maps each idx to its own file: the run applies each entry once, and the
    # repeated tag is bundle_integrity's to report (concurrent_starts counted it twice)
    out = tmp_path / "drizzle"
    shutil.copytree(CLEAN, out)
    journal = out / "meta" / "_journal.json"
    data = json.loads(journal.read_text())
    assert len(data["entries"]) >= 2
    data["entries"][1]["tag"] = data["entries"][0]["tag"]
    journal.write_text(json.dumps(data, indent=2))
    ctx = context(out, concurrency=2)
    assert "duplicate-tag" in {p.code for p in ctx.bundle.problems}
    fleet.concurrent_starts(ctx)


def test_the_fleet_checks_close_their_childrens_pipes() -> None:
    import gc
    import warnings

    ctx = context(CLEAN, concurrency=2)
    gc.collect()  # what earlier tests left behind is not this test's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fleet.concurrent_starts(ctx)
        fleet.crash_recovery(ctx)
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


# ------------------------------------------------------------------ upgrade_from_every_version


def test_out_of_order_when_after_a_merge_is_skipped_on_deployed_dos() -> None:
    failure = failure_of(
        fleet.upgrade_from_every_version, context(EXAMPLES / "fleet-branch-merge" / "drizzle")
    )
    assert failure.summary.startswith("1 deployed version(s)")
    titles = [t for t, _ in failure.sections]
    assert titles[0] == "Deployed at v4 (after 0003_audit)"  # v1..v3 upgrade fine
    body = section(failure, "Deployed at v4")
    assert "silently skipped): 0004_feature_flags" in body
    assert "-table flags: CREATE TABLE `flags`" in body  # the fresh DO has it, v4 never will
    fix = section(failure, "How to fix")
    assert "strictly greater" in fix and "_journal.json" in fix


def test_equal_when_is_skipped_although_the_set_of_whens_matches() -> None:
    ctx = context(EXAMPLES / "fleet-same-when" / "drizzle")
    whens = [m.when for m in ctx.bundle.migrations]
    assert whens[-1] == whens[-2]
    failure = failure_of(fleet.upgrade_from_every_version, ctx)
    body = section(failure, "Deployed at v4 (after 0003_audit)")
    assert "0004_feature_flags" in body
    # the ledger of the upgraded DO holds every distinct `when`: only a multiset sees the gap
    image = ctx.images.version(ctx.bundle, 4).image
    assert image is not None
    do = DurableObjectStorage(image=image)
    fleet.drizzle_start(do, ctx.bundle)
    ledger = fleet.database_state(do, data=False).created_at()
    assert set(ledger) == set(whens)
    assert ledger != Counter(whens)


def test_head_failing_on_a_fresh_do_is_reported_not_crashed() -> None:
    failure = failure_of(
        fleet.upgrade_from_every_version, context(EXAMPLES / "fleet-restart-loop" / "drizzle")
    )
    assert "a fresh Durable Object fails" in failure.summary
    assert "Cannot add a NOT NULL column" in section(failure, "SQLite error")


# ------------------------------------------------------------------ git history


def git(repo: Path, *args: str) -> str:
    assert GIT is not None
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    out = subprocess.run(
        [GIT, *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def commit_folder(repo: Path, source: Path, message: str) -> str:
    """Make ``repo/app/drizzle`` exactly ``source`` and commit it; returns the commit id."""
    target = repo / "app" / "drizzle"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    git(repo, "add", "-A", "app")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def new_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    return repo


@needs_git
def test_edited_applied_migration_in_git_history(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    first = commit_folder(repo, CLEAN, "four migrations")
    init = repo / "app" / "drizzle" / "0000_init.sql"
    init.write_text(init.read_text().replace("`bio` text\n", "`bio` text,\n\t`email` text\n"))
    git(repo, "commit", "-q", "-am", "edit 0000 in place")
    bundle_dir = repo / "app" / "drizzle"

    fleet.upgrade_from_every_version(context(bundle_dir))  # without history: looks fine
    failure = failure_of(fleet.upgrade_from_every_version, context(bundle_dir, git_history=True))
    title, body = failure.sections[0]
    assert first[:10] in title and "head 0003_audit" in title
    assert "edited after deployment" in body and "0000_init" in body
    assert "-table users" in body and "`email` text" in body  # what deployed DOs miss
    assert "Never edit a migration" in section(failure, "How to fix")


@needs_git
def test_squashed_chain_in_git_history_fails_with_already_exists(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    old = commit_folder(repo, CLEAN, "four migrations")
    head_image = ImageCache().head(load_bundle(CLEAN)).image
    assert head_image is not None
    order = {"table": 0, "index": 1, "trigger": 2}
    rows = fleet.database_state(head_image).schema
    schema = [
        row[3]
        for row in sorted(rows, key=lambda r: order.get(r[0], 3))
        if row[3] and "__drizzle" not in row[1] and row[1] != "sqlite_sequence"
    ]
    squashed = tmp_path / "squashed"
    (squashed / "meta").mkdir(parents=True)
    (squashed / "0000_baseline.sql").write_text(
        "--> statement-breakpoint\n".join(s + ";\n" for s in schema)
    )
    (squashed / "meta" / "_journal.json").write_text(
        json.dumps(
            {
                "version": "7",
                "dialect": "sqlite",
                "entries": [
                    {
                        "idx": 0,
                        "version": "6",
                        "when": 1780000000000,
                        "tag": "0000_baseline",
                        "breakpoints": True,
                    }
                ],
            }
        )
    )
    (squashed / "migrations.js").write_text(
        "import journal from './meta/_journal.json';\n"
        "import m0000 from './0000_baseline.sql';\n\n"
        "export default { journal, migrations: { m0000 } }\n"
    )
    commit_folder(repo, squashed, "squash")
    ctx = context(repo / "app" / "drizzle", git_history=True)
    failure = failure_of(fleet.upgrade_from_every_version, ctx)
    title, body = failure.sections[0]
    assert old[:10] in title
    assert "already exists" in body and "0000_baseline" in body
    assert (
        "deleted after deployment: 0000_init, 0001_posts, 0002_posts_title_default, 0003_audit"
        in body
    )
    assert "squashed" in section(failure, "How to fix")


@needs_git
def test_history_whose_states_are_prefixes_passes(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    partial = tmp_path / "partial"
    shutil.copytree(CLEAN, partial)
    journal = json.loads((partial / "meta" / "_journal.json").read_text())
    journal["entries"] = journal["entries"][:2]
    (partial / "meta" / "_journal.json").write_text(json.dumps(journal))
    for tag in ("0002_posts_title_default", "0003_audit"):
        (partial / f"{tag}.sql").unlink()
    js = (partial / "migrations.js").read_text()
    (partial / "migrations.js").write_text(
        "\n".join(
            line for line in js.splitlines() if "0002" not in line and "0003" not in line
        ).replace("m0001,", "m0001")
    )
    commit_folder(repo, partial, "two migrations")
    commit_folder(repo, CLEAN, "four migrations")
    states = fleet.git_past_states(repo / "app" / "drizzle")
    assert [len(json.loads(s.files["meta/_journal.json"])["entries"]) for s in states] == [4, 2]
    fleet.upgrade_from_every_version(context(repo / "app" / "drizzle", git_history=True))


@needs_git
def test_git_past_states_reads_history_without_touching_the_work_tree(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit_folder(repo, CLEAN, "one")
    shutil.copy(CLEAN / "0000_init.sql", repo / "app" / "drizzle" / "meta" / "0000_snapshot.json")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a snapshot file only")  # same migrator-visible state
    second = git(repo, "rev-parse", "HEAD")
    (repo / "app" / "drizzle" / "0003_audit.sql").write_text("-- dirty work tree\n")
    status = git(repo, "status", "--porcelain")
    states = fleet.git_past_states(repo / "app" / "drizzle", limit=10)
    assert git(repo, "status", "--porcelain") == status
    assert [s.commit for s in states] == [second]  # deduplicated; snapshots are not read
    assert "meta/0000_snapshot.json" not in states[0].files
    assert states[0].files["0003_audit.sql"] == (CLEAN / "0003_audit.sql").read_bytes()
    assert fleet.git_past_states(tmp_path / "nowhere") == []
    outside = tmp_path / "plain"
    outside.mkdir()
    assert fleet.git_past_states(outside) == []


@needs_git
def test_sprintjam_do_history_squash_is_caught(tmp_path: Path) -> None:
    corpus = shared_path("corpus", "nicholasgriffintn__sprintjam.co.uk")
    old = corpus / "_history" / "b95d7d2642e1ef3c211ee12b63d4f009c8244c86"
    rel = Path("apps", "standup-worker", "drizzle")
    repo = new_repo(tmp_path)
    commit_folder(repo, old / rel, "before the squash")
    commit_folder(repo, corpus / rel, "squashed into 0000_mean_sprite")
    ctx = context(repo / "app" / "drizzle", git_history=True)
    failure = failure_of(fleet.upgrade_from_every_version, ctx)
    body = section(failure, "Deployed at commit")
    assert "0000_mean_sprite" in body and "already exists" in body
    assert "deleted after deployment: 0000_sturdy_thaddeus_ross" in body


# ------------------------------------------------------------------ concurrent_starts


@pytest.mark.usefixtures("spawner")
def test_a_migration_that_throws_on_every_start_is_a_restart_loop() -> None:
    failure = failure_of(
        fleet.concurrent_starts, context(EXAMPLES / "fleet-restart-loop" / "drizzle")
    )
    assert "every one of 8 concurrent starts" in failure.summary
    assert "restart loop" in failure.summary
    assert "Cannot add a NOT NULL column" in section(failure, "SQLite error")
    assert "0004_email" in section(failure, "Migration")


@pytest.mark.usefixtures("hooks")
@pytest.mark.usefixtures("spawner")
def test_racing_starts_without_block_concurrency_while_are_caught() -> None:
    ctx = context(CLEAN, fleet_start="fleet_hooks:racy_start")
    failure = failure_of(fleet.concurrent_starts, ctx)
    body = section(failure, "Simultaneous starts on a fresh DO")
    assert "table `users` already exists" in body
    assert "blockConcurrencyWhile" in section(failure, "How to fix")


@pytest.mark.usefixtures("hooks")
def test_a_start_that_swallows_the_error_breaks_the_restart_loop_contract() -> None:
    ctx = context(CLEAN, fleet_start="fleet_hooks:swallowing_start")
    failure = failure_of(fleet.concurrent_starts, ctx)
    body = section(failure, "Restart loop (start from v3 (after 0002_posts_title_default)")
    assert "did not fail although its last migration throws" in body
    assert [t for t, _ in failure.sections if t.startswith(("Simultaneous", "Starts racing"))] == []


def test_restart_loop_starts_fresh_when_the_last_entry_is_skipped_from_head_minus_one() -> None:
    # from v4 the high-water mark skips 0004 (upgrade_from_every_version's finding), so the
    # injected failure would never run there: the scenario starts from an empty DO instead
    fleet.concurrent_starts(context(EXAMPLES / "fleet-branch-merge" / "drizzle", concurrency=2))


def test_every_start_reports_what_it_applied(tmp_path: Path) -> None:
    bundle = load_bundle(CLEAN)
    spec = fleet._write_spec(tmp_path / "spec.pkl", bundle=bundle, start=None)
    with (tmp_path / "stderr").open("wb") as stderr:
        for hold in (False, True):
            db = tmp_path / f"race-{hold}.db"
            launcher = fleet._launch(db, spec, 4, hold, stderr)
            race = fleet._race(launcher, db, 4, hold, deadline=time.monotonic() + 60)
            applied = [r["applied"] for r in race.results]
            assert sorted(map(len, applied)) == [0, 0, 0, 4]
            if hold:
                assert applied[0] == [m.tag for m in bundle.migrations]  # the holder did it all
                # the others were waiting for the write lock while the holder kept it (they
                # say so, and the holder is let go only then: no fixed sleep)
                events = [(e.get("event"), e.get("child")) for e in launcher.events]
                holder_done = events.index(("done", 0))
                for child in (1, 2, 3):
                    assert events.index(("blocked", child)) < holder_done
            assert len(race.state.ledger) == 4


# ------------------------------------------------------------------ crash_recovery


def test_crash_points_are_every_statement_plus_each_ledger_insert() -> None:
    points = fleet.crash_points(load_bundle(CLEAN))
    assert len(points) == 2 + 4 + 7 + 3 + 4
    audit = [p for p in points if p.tag == "0003_audit"]
    assert [(p.chunk, p.statement) for p in audit] == [(0, 0), (0, 1), (0, 2), (None, None)]
    assert audit[1].text.startswith("CREATE TRIGGER") and audit[1].text.endswith("END;")
    assert audit[-1].label == "0003_audit: after the ledger INSERT, before commit"


def test_a_crash_at_every_statement_leaves_the_previous_version() -> None:
    ctx = context(CLEAN)  # 0002 is a drizzle-kit table recreation: 7 statements
    results = fleet.run_crash_points(ctx)
    assert len(results) == 20
    assert Counter(r.status for r in results) == {"ok": 20}


@pytest.mark.usefixtures("hooks")
def test_a_runner_that_commits_per_statement_is_caught_at_the_exact_statement() -> None:
    ctx = context(CLEAN, fleet_start="fleet_hooks:nonatomic_start")
    by_label = {r.point.label: r for r in fleet.run_crash_points(ctx)}
    # killed before DROP TABLE posts: the copy exists next to the original
    drop = by_label["0002_posts_title_default: before chunk 3 statement 0"]
    assert drop.status == "partial"
    assert "+table __new_posts" in drop.detail and "-table posts" not in drop.detail
    # killed before RENAME: posts is gone, only the copy is left
    rename = by_label["0002_posts_title_default: before chunk 4 statement 0"]
    assert "-table posts" in rename.detail and "+table __new_posts" in rename.detail
    # inside one chunk: the table and the trigger ran, the INSERT did not
    insert = by_label["0003_audit: before chunk 0 statement 2"]
    assert "+table audit" in insert.detail and "+trigger users_audit" in insert.detail
    assert "+data users: 2 rows" not in insert.detail
    failure = failure_of(fleet.crash_recovery, ctx)
    assert "crash points leave" in failure.summary
    assert "one transaction" in section(failure, "How to fix")


def test_the_fleet_checks_work_without_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_start.NO_FORK_ENV, "1")
    bundle = load_bundle(CLEAN).prefix(1)
    ctx = CheckContext(bundle=bundle, settings=Settings(concurrency=2, git_history=False))
    ctx.images = ImageCache()
    fleet.concurrent_starts(ctx)
    results = fleet.run_crash_points(ctx)
    assert [r.status for r in results] == ["ok"] * 3


@pytest.mark.usefixtures("hooks")
@pytest.mark.usefixtures("spawner")
def test_a_hung_start_is_reported_not_waited_for() -> None:
    ctx = context(CLEAN, fleet_start="fleet_hooks:hanging_start", fleet_timeout=0.5)
    ctx.bundle = ctx.bundle.prefix(1)
    started = time.monotonic()
    results = fleet.run_crash_points(ctx)
    assert time.monotonic() - started < 300  # the start sleeps for an hour
    assert [r.status for r in results] == ["error"] * 3
    assert all("timed out" in r.detail for r in results)


@pytest.mark.parametrize("example", ["fleet-branch-merge", "fleet-same-when", "fleet-safe"])
def test_parallel_upgrades_report_what_serial_ones_do(
    example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def outcome(parallel: bool) -> str:
        if parallel:
            monkeypatch.setattr(fleet, "PARALLEL_UPGRADE_STATEMENTS", 0)
        ctx = context(EXAMPLES / example / "drizzle", fleet_workers=2)
        try:
            fleet.upgrade_from_every_version(ctx)
        except CheckFailure as exc:
            return exc.render()
        return "passed"

    serial = outcome(False)
    assert serial == outcome(True)
    assert (serial == "passed") == (example == "fleet-safe")


@pytest.mark.slow
def test_crash_recovery_on_the_largest_corpus_bundle() -> None:
    bundle = load_bundle(
        shared_path("corpus", "karakeep-app__karakeep", "packages", "db", "drizzle")
    )
    # 0084 uses CREATE TEMPORARY TABLE, which a DO refuses: check everything before it
    ctx = CheckContext(bundle=bundle.prefix(84), settings=Settings(git_history=False))
    ctx.images = ImageCache()
    results = fleet.run_crash_points(ctx)
    assert len(results) == 300
    assert {r.status for r in results} == {"ok"}


# ------------------------------------------------------------------ pieces


def test_database_state_is_the_same_from_an_image_a_file_and_a_do(tmp_path: Path) -> None:
    image = ImageCache().head(load_bundle(CLEAN)).image
    assert image is not None
    path = tmp_path / "do.sqlite"
    fleet.write_image(path, image)
    from_image = fleet.database_state(image)
    assert fleet.database_state(path) == from_image
    check, state = fleet.inspect_file(path)
    assert check == "ok" and state == from_image
    with DurableObjectStorage(path) as do:
        assert fleet.database_state(do) == from_image
        assert fleet.database_state(do, data=False) == fleet.database_state(image, data=False)
    assert ("users", 2) in [(name, rows) for name, rows, _ in from_image.data]


def test_start_entry_point_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert _start.main([]) == 2
    assert _start.main(["bogus", "x"]) == 2
    assert "race SPEC DB COUNT" in capsys.readouterr().err


def test_fleet_start_must_be_importable() -> None:
    ctx = context(CLEAN, fleet_start=lambda do, bundle: None)
    failure = failure_of(fleet.concurrent_starts, ctx)
    assert "importable" in failure.summary


def test_states_differing_only_in_whitespace_or_far_into_the_sql_are_different() -> None:
    long = "CREATE TABLE t (" + ", ".join(f"c{i} text" for i in range(40)) + ")"
    base = fleet.DatabaseState(schema=(("table", "t", "t", long),), ledger=())
    far = fleet.DatabaseState(schema=(("table", "t", "t", long[:-1] + ", z text)"),), ledger=())
    spaced = fleet.DatabaseState(
        schema=(("table", "t", "t", long.replace(", ", ",  ")),), ledger=()
    )
    assert base.same_as(base) and not base.same_as(far) and not base.same_as(spaced)
    assert "z text" in base.diff(far)
    assert base.lines() == spaced.lines()  # collapsed for reading ...
    assert "c0 text,  c1" in base.diff(spaced)  # ... so the diff falls back to the exact text


@pytest.mark.usefixtures("hooks")
def test_crash_points_a_start_never_reaches_fail_unless_the_high_water_mark_skips_them() -> None:
    ctx = context(CLEAN, fleet_start="fleet_hooks:rewriting_start")
    ctx.bundle = ctx.bundle.prefix(2)
    results = fleet.run_crash_points(ctx)
    # "\nCREATE INDEX ..." chunks are stripped by this start: those points are never reached
    unreached = [r for r in results if r.status == "error"]
    assert unreached and all("cannot be crash-tested" in r.detail for r in unreached)
    merge = context(EXAMPLES / "fleet-branch-merge" / "drizzle")
    skipped = [r for r in fleet.run_crash_points(merge) if r.point.tag == "0004_feature_flags"]
    assert [r.status for r in skipped] == ["unreached", "unreached"]  # skipped from v4: fine


# ------------------------------------------------------------------ crash chains (the fast path)

CRASH_HOOKS = '''
import time

from pytest_dosqlite.fleet import drizzle_start
from pytest_dosqlite.migrator import INSERT_SQL, LEDGER_DDL, MigrationRun, js_number

LAST_WHEN = 'SELECT max(created_at) FROM "__drizzle_migrations"'


def _pending(do, bundle):
    do.sql.exec(LEDGER_DDL)
    rows = do.sql.exec(LAST_WHEN).raw().to_array()
    hwm = None if rows[0][0] is None else js_number(rows[0][0])
    return hwm, [m for m in bundle.migrations if hwm is None or hwm < m.when]


def ledger_apart_start(do, bundle):
    """Each migration's statements in one event, its ledger row in the next one."""
    hwm, pending = _pending(do, bundle)
    run = MigrationRun(high_water_mark=hwm)
    for m in pending:
        with do.event():
            for chunk in m.chunks:
                do.sql.exec(chunk)
        with do.event():
            do.sql.exec(INSERT_SQL, "", m.when)
        run.applied.append(m.tag)
    return run


def checkpointing_start(do, bundle):
    """Every statement its own commit, each folded into the main file at once."""
    hwm, pending = _pending(do, bundle)
    run = MigrationRun(high_water_mark=hwm)
    for m in pending:
        for chunk in m.chunks:
            do.sql.exec(chunk)
            do._internal("PRAGMA wal_checkpoint(TRUNCATE)")
        do.sql.exec(INSERT_SQL, "", m.when)
        run.applied.append(m.tag)
    return run


def extra_table_start(do, bundle):
    """drizzle's start, then a table of its own (a fresh image has no such table)."""
    run = drizzle_start(do, bundle)
    with do.event():
        do.sql.exec("CREATE TABLE IF NOT EXISTS start_bookkeeping (x integer)")
    return run


def marker_start(do, bundle):
    """Commits a table of its own first, then drizzle's start (which may throw)."""
    with do.event():
        do.sql.exec("CREATE TABLE IF NOT EXISTS start_marker (x integer)")
    return drizzle_start(do, bundle)


def hang_on_second_start(do, bundle):
    """Hangs whenever the bundle ends with its second migration."""
    if bundle.migrations and bundle.migrations[-1].idx == 1:
        time.sleep(3600)
    return drizzle_start(do, bundle)
'''


@pytest.fixture
def crash_hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The module ``crash_hooks`` (start functions), importable here and in the workers."""
    folder = tmp_path / "hooks"
    folder.mkdir()
    (folder / "crash_hooks.py").write_text(CRASH_HOOKS)
    monkeypatch.syspath_prepend(str(folder))
    return "crash_hooks"


def make_bundle(folder: Path, count: int) -> Path:
    """A drizzle-kit style bundle of ``count`` migrations: tables, indexes, rows, columns."""
    folder.mkdir(parents=True)
    (folder / "meta").mkdir()
    bp = "--> statement-breakpoint\n"
    entries = []
    for i in range(count):
        tag = f"{i:04d}_step"
        statements = [
            f"CREATE TABLE `t{i}` (`id` integer PRIMARY KEY NOT NULL, `name` text NOT NULL);\n",
            f"CREATE INDEX `t{i}_name` ON `t{i}` (`name`);\n",
            f"INSERT INTO `t{i}` (`id`, `name`) VALUES (1, 'row {i}');\n",
        ]
        if i:
            statements.append(f"ALTER TABLE `t{i - 1}` ADD `extra{i}` integer;\n")
        (folder / f"{tag}.sql").write_text(bp.join(statements))
        entries.append(
            {"idx": i, "version": "6", "when": 1767225600000 + i, "tag": tag, "breakpoints": True}
        )
    journal = {"version": "7", "dialect": "sqlite", "entries": entries}
    (folder / "meta" / "_journal.json").write_text(json.dumps(journal))
    imports = "".join(f"import m{i:04d} from './{i:04d}_step.sql';\n" for i in range(count))
    keys = ", ".join(f"m{i:04d}" for i in range(count))
    (folder / "migrations.js").write_text(
        "import journal from './meta/_journal.json';\n"
        + imports
        + f"\nexport default {{ journal, migrations: {{ {keys} }} }}\n"
    )
    return folder


def chain_worker(ctx: CheckContext, tmp_path: Path, start: str | None = None) -> _start._Worker:
    """A crash worker in this process, on the spec run_crash_points would hand it."""
    tmp_path.mkdir(exist_ok=True)
    bundle = ctx.bundle
    images = fleet._write_images(ctx, tmp_path, range(len(bundle.migrations) + 1))
    spec = fleet._write_spec(tmp_path / "spec.pkl", bundle=bundle, start=start, images=images)
    return _start._Worker(str(spec))


def crash_job(bundle: Any, db: Path) -> dict[str, Any]:
    by_count: dict[int, list[dict[str, Any]]] = {}
    for point in fleet.crash_points(bundle):
        by_count.setdefault(point.count, []).append(point.job())
    units = [{"count": k, "points": by_count[k]} for k in sorted(by_count)]
    return {"op": "crash", "units": units, "db": str(db), "timeout": 60}


@pytest.mark.parametrize("count", [3, 12])
def test_a_crash_chain_costs_the_same_per_migration_whatever_the_versions(
    count: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context(make_bundle(tmp_path / "bundle", count))
    worker = chain_worker(ctx, tmp_path)
    calls: Counter[str] = Counter()

    def counting(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    for name in ("database_state", "inspect_file", "write_image"):
        monkeypatch.setattr(_start, name, counting(name, getattr(_start, name)))
    monkeypatch.setattr(worker, "holds", counting("holds", worker.holds))
    monkeypatch.setattr(worker, "holds_after", counting("holds_after", worker.holds_after))
    results = list(worker.crash(crash_job(ctx.bundle, tmp_path / "w.db")))
    assert len(results) == count
    assert {p["status"] for r in results for p in r["points"]} == {"ok"}
    # one image written for the whole chain, one open per migration (plus the last restart's),
    # no schema state read and no full file comparison: nothing per point or per version grows
    assert worker.fresh_files == calls["write_image"] == 1
    assert worker.opens == count + 1
    assert calls["database_state"] == calls["inspect_file"] == calls["holds"] == 0
    assert calls["holds_after"] == count  # each restart: the pages it wrote, against the store


def test_a_crash_chain_reports_what_separate_runs_report(tmp_path: Path) -> None:
    ctx = context(make_bundle(tmp_path / "bundle", 6), fleet_workers=1)
    chained = fleet.run_crash_points(ctx)
    assert len(chained) == len(fleet.crash_points(ctx.bundle)) == 4 + 5 * 5
    assert {r.status for r in chained} == {"ok"}
    # the same points one migration per job (every chain broken), judged the same way
    worker = chain_worker(ctx, tmp_path)
    job = crash_job(ctx.bundle, tmp_path / "w.db")
    alone = [
        point
        for unit in job["units"]
        for result in worker.crash(dict(job, units=[unit]))
        for point in result["points"]
    ]
    assert [p["status"] for p in alone] == [r.status for r in chained]
    assert worker.fresh_files == 6


def test_a_start_that_commits_the_migration_before_its_ledger_row_is_caught(
    crash_hooks: str,
) -> None:
    ctx = context(CLEAN, fleet_start=f"{crash_hooks}:ledger_apart_start")
    results = fleet.run_crash_points(ctx)
    by_label = {r.point.label: r for r in results}
    # inside the migration's event a kill rolls everything back: those points are fine
    assert by_label["0002_posts_title_default: before chunk 3 statement 0"].status == "ok"
    # between the two events the schema is new and the ledger old: every migration's last
    # point, which the chain would otherwise go on from (a fresh DO also keeps the ledger table
    # this start creates in an event of its own: v0 has none)
    torn = {r.point.label for r in results if r.status != "ok"}
    ledger_points = {
        f"{m.tag}: after the ledger INSERT, before commit" for m in ctx.bundle.migrations
    }
    assert ledger_points <= torn
    assert {label for label in torn - ledger_points if not label.startswith("0000_init")} == set()
    assert {r.status for r in results if r.point.label in torn} == {"partial"}
    posts = by_label["0001_posts: after the ledger INSERT, before commit"]
    assert "+table posts" in posts.detail and "+ledger row" not in posts.detail
    failure = failure_of(fleet.crash_recovery, ctx)
    assert failure.summary.startswith(f"{len(torn)} of 20 crash points leave")


def test_a_start_that_checkpoints_between_statements_is_caught_in_the_main_file(
    crash_hooks: str,
) -> None:
    ctx = context(CLEAN, fleet_start=f"{crash_hooks}:checkpointing_start")
    by_label = {r.point.label: r for r in fleet.run_crash_points(ctx)}
    # the WAL is empty at every point: what was done is in the main file only
    rename = by_label["0002_posts_title_default: before chunk 4 statement 0"]
    assert rename.status == "partial"
    assert "-table posts" in rename.detail and "+table __new_posts" in rename.detail
    insert = by_label["0003_audit: before chunk 0 statement 2"]
    assert "+table audit" in insert.detail and "+trigger users_audit" in insert.detail
    assert by_label["0001_posts: before chunk 0 statement 0"].status == "ok"


def test_a_restart_that_does_not_reach_the_fresh_image_is_reported(crash_hooks: str) -> None:
    ctx = context(CLEAN, fleet_start=f"{crash_hooks}:extra_table_start")
    results = fleet.run_crash_points(ctx)
    assert {r.status for r in results} == {"restart-differs"}
    assert all("+table start_bookkeeping" in r.detail for r in results)


def test_a_unit_that_times_out_takes_only_itself_with_it(crash_hooks: str) -> None:
    ctx = context(
        CLEAN, fleet_start=f"{crash_hooks}:hang_on_second_start", fleet_timeout=1, fleet_workers=1
    )
    statuses: dict[str, set[str]] = {}
    for r in fleet.run_crash_points(ctx):
        statuses.setdefault(r.point.tag, set()).add(r.status)
    assert statuses == {
        "0000_init": {"ok"},
        "0001_posts": {"error"},
        "0002_posts_title_default": {"ok"},  # run by a new worker, from a fresh image of v2
        "0003_audit": {"ok"},
    }


def test_wal_frames_are_read_as_sqlite_reads_them(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    writer = apsw.Connection(str(db))
    writer.execute(
        "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=2; "
        "PRAGMA cache_spill=1"
    )
    writer.execute("CREATE TABLE t (x blob)")
    committed = _start._wal_pages(f"{db}-wal")
    assert committed and _start._wal_may_commit(f"{db}-wal")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert _start._wal_pages(f"{db}-wal") == set() and not _start._wal_may_commit(f"{db}-wal")
    before = db.read_bytes()
    # a transaction too big for the cache spills uncommitted frames into the WAL
    writer.execute(
        "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
        "INSERT INTO t SELECT randomblob(3000) FROM n"
    )
    spilled = _start._wal_pages(f"{db}-wal")
    assert spilled and len(spilled) > 10
    assert not _start._wal_may_commit(f"{db}-wal")
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{db}{suffix}", tmp_path / f"copy.db{suffix}")
    copy = apsw.Connection(str(tmp_path / "copy.db"))
    assert copy.execute("SELECT count(*) FROM t").fetchall() == [(0,)]  # SQLite agrees
    copy.close()
    assert db.read_bytes() == before
    writer.execute("COMMIT")
    assert _start._wal_may_commit(f"{db}-wal")
    writer.close()
    (tmp_path / "junk-wal").write_bytes(b"not a wal at all, but long enough to have a header")
    assert _start._wal_may_commit(str(tmp_path / "junk-wal"))
    assert _start._wal_pages(str(tmp_path / "junk-wal")) is None


def test_holds_compares_every_page_that_can_differ(tmp_path: Path) -> None:
    ctx = context(make_bundle(tmp_path / "bundle", 3))
    worker = chain_worker(ctx, tmp_path)
    image = worker.image(3)
    assert image is not None
    path = tmp_path / "v3.db"
    fleet.write_image(path, image)  # WAL mode: the header differs, the pages do not
    assert worker.holds(path, 3) and not worker.holds(path, 2)
    pages = len(image) // 4096
    assert worker.holds_after(path, 3, set(range(1, pages + 1)))
    # a page equal in versions 2 and 3 that the restart did not write: found without reading
    # it only if the file is assumed unwritten there, so it must be read when it is listed
    old = worker.store["versions"][2]
    new = worker.store["versions"][3]
    same = next(n for n, (a, b) in enumerate(zip(new, old, strict=False), 1) if a == b and n > 1)
    data = bytearray(path.read_bytes())
    data[(same - 1) * 4096 + 200] ^= 0xFF
    path.write_bytes(bytes(data))
    assert not worker.holds(path, 3)
    assert not worker.holds_after(path, 3, {same})
    # a page that differs between the versions must have been written by the restart
    differs = [n for n, (a, b) in enumerate(zip(new, old, strict=False), 1) if a != b]
    assert differs
    fleet.write_image(path, image)
    assert not worker.holds_after(path, 3, set())
    assert worker.holds_after(path, 3, set(differs))


def test_a_failed_start_that_leaves_a_change_breaks_the_restart_loop(crash_hooks: str) -> None:
    ctx = context(CLEAN, fleet_start=f"{crash_hooks}:marker_start", concurrency=2)
    failure = failure_of(fleet.concurrent_starts, ctx)
    body = section(failure, "Restart loop (start from v3")
    assert "the failed start changed the database (- before, + after):\n+table start_marker" in body
    assert "differs from a fresh DO at head:\n+table start_marker" in body


@pytest.mark.parametrize("mtime_sees_writes", [True, False])
def test_the_main_file_check_with_and_without_trusting_the_mtime(
    mtime_sees_writes: bool, crash_hooks: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_start, "_MTIME_SEES_WRITES", mtime_sees_writes)
    ctx = context(CLEAN)
    clean = chain_worker(ctx, tmp_path / "clean")
    results = list(clean.crash(crash_job(ctx.bundle, tmp_path / "clean.db")))
    assert {p["status"] for r in results for p in r["points"]} == {"ok"}
    assert clean.fresh_files == 1
    torn = chain_worker(ctx, tmp_path / "torn", start=f"{crash_hooks}:checkpointing_start")
    results = list(torn.crash(crash_job(ctx.bundle, tmp_path / "torn.db")))
    # 0002 is a table recreation: killed before its RENAME, only the copy is left (in the main
    # file: this start folds every commit into it at once)
    rename = results[2]["points"][4]
    assert rename["status"] == "partial"
    assert "-table posts" in rename["detail"] and "+table __new_posts" in rename["detail"]


def _state(path: Path, migrations: list[tuple[str, str]], whens: list[int]) -> Path:
    from test_plugin import write_bundle

    write_bundle(path, migrations, whens=whens)
    return path


@needs_git
def test_history_is_the_branchs_first_parents_and_a_shallow_clone_says_so(
    tmp_path: Path,
) -> None:
    # a feature branch's own commit never deployed: after a merge that regenerated its
    # migration under another tag (drizzle-kit's way out of a journal conflict), every run of
    # main failed, "deleted after deployment" and "duplicate column name"
    base = [
        ("0000_init", "CREATE TABLE `users` (`id` integer PRIMARY KEY, `name` text);"),
        ("0001_posts", "CREATE TABLE `posts` (`id` integer PRIMARY KEY);"),
    ]
    color = "ALTER TABLE `users` ADD `color` text;"
    whens = [1_700_000_000_000, 1_700_000_001_000]
    repo = new_repo(tmp_path)
    commit_folder(repo, _state(tmp_path / "s0", base, whens), "base")
    main = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    feature = [*base, ("0002_color", color)]
    commit_folder(repo, _state(tmp_path / "s1", feature, [*whens, 1_700_000_002_000]), "color")
    git(repo, "checkout", "-q", main)
    git(repo, "merge", "-q", "--no-ff", "--no-commit", "-s", "ours", "feature")
    merged = [*base, ("0002_note_color", color)]
    target = repo / "app" / "drizzle"
    shutil.rmtree(target)
    shutil.copytree(_state(tmp_path / "s2", merged, [*whens, 1_700_000_003_000]), target)
    git(repo, "add", "-A", "app")
    git(repo, "commit", "-q", "-m", "merge feature")
    fleet.upgrade_from_every_version(context(target, git_history=True))
    # the states on main's own line are still checked: a deleted migration fails
    commit_folder(repo, _state(tmp_path / "s3", base, whens), "drop the color migration")
    failure = failure_of(fleet.upgrade_from_every_version, context(target, git_history=True))
    assert "deleted after deployment" in failure.render()
    assert "--dosqlite-no-git" in section(failure, "If a commit never deployed")
    # a shallow clone (actions/checkout's default) cannot show what deployed before it
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    with pytest.warns(DosqliteWarning, match="shallow git clone"):
        fleet.upgrade_from_every_version(context(clone / "app" / "drizzle", git_history=True))


@needs_git
def test_a_migration_renamed_in_history_is_not_deleted(tmp_path: Path) -> None:
    # the same SQL and `when` under another tag: a DO's ledger sees no change, but the check
    # said "deleted after deployment"
    base = [
        ("0000_init", "CREATE TABLE `users` (`id` integer PRIMARY KEY, `name` text);"),
        ("0001_posts", "CREATE TABLE `posts` (`id` integer PRIMARY KEY);"),
    ]
    whens = [1_700_000_000_000, 1_700_000_001_000]
    repo = new_repo(tmp_path)
    commit_folder(repo, _state(tmp_path / "s0", base, whens), "base")
    renamed = [base[0], ("0001_articles", base[1][1])]
    commit_folder(repo, _state(tmp_path / "s1", renamed, whens), "rename")
    fleet.upgrade_from_every_version(context(repo / "app" / "drizzle", git_history=True))


def test_an_internal_error_crosses_the_process_boundary_with_its_reason() -> None:
    from pytest_dosqlite.errors import DurableObjectInternalError, MigrationError
    from pytest_dosqlite.fleet import _error_from, error_fields

    cause = DurableObjectInternalError(
        "internal error; reference = 0123456789abcdefghijklmn",
        reason="why it failed",
        kind="rolled-back",
    )
    sent = MigrationError("migration 0001_x failed: why it failed", tag="0001_x", cause=cause)
    back = _error_from({"error": json.loads(json.dumps(error_fields(sent)))})
    assert isinstance(back.cause, DurableObjectInternalError)
    assert (back.cause.reason, back.cause.kind, str(back.cause)) == (
        "why it failed",
        "rolled-back",
        str(cause),
    )


def start_with_foreign_keys_off(do: Any, bundle: Any) -> Any:
    """A user's own start that turns foreign keys off around migrate()."""
    from pytest_dosqlite import migrate

    do.sql.exec("PRAGMA foreign_keys=OFF")
    run = migrate(do, bundle)
    do.sql.exec("PRAGMA foreign_keys=ON")
    return run


def start_that_fails(do: Any, bundle: Any) -> Any:
    raise RuntimeError("no")


def test_a_start_of_ones_own_is_probed_for_foreign_keys_off() -> None:
    from pytest_dosqlite.fleet import start_turns_foreign_keys_off

    here = __name__
    assert start_turns_foreign_keys_off(f"{here}:start_with_foreign_keys_off") is True
    assert start_turns_foreign_keys_off("pytest_dosqlite.fleet:drizzle_start") is False
    assert start_turns_foreign_keys_off(f"{here}:start_that_fails") is False
    assert start_turns_foreign_keys_off("drizzle-fk-off") is True
    assert start_turns_foreign_keys_off(None) is False
