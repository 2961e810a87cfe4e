"""The backend abstraction: emulator DOs vs DOs inside real workerd, behind one surface.

The first tests need no Node (message parsing, the bundle sent to drizzle, where each check
runs, the missing-Node usage error). Tests marked ``workerd`` start the pinned workerd; they
skip only when ``node`` is not on PATH.
"""

from __future__ import annotations

import datetime
import decimal
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pytest_dosqlite as dosqlite
from pytest_dosqlite.backends import (
    EmulatorBackend,
    RemoteDurableObject,
    RemoteMigrationRun,
    WorkerdImages,
    WorkerdRuntime,
    WorkerdUnsupported,
    harness_bundle,
    sql_error,
    upgrade_from_every_version_workerd,
)
from pytest_dosqlite.checks import CheckContext, Settings, idempotent, upgrade_from_empty
from pytest_dosqlite.errors import CheckFailure, DurableObjectResetError, SqlError
from pytest_dosqlite.registry import CHECK_NAMES, get_check, runs_on
from pytest_dosqlite.storage import DurableObjectStorage
from pytest_dosqlite.workerd import cache_root, codec
from test_plugin import GOOD, make_project, write_bundle
from test_workerd_backend import _wait_gone

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
EXAMPLE = Path(__file__).resolve().parents[1] / "example_project"
#: the harness cache as seen before pytester swaps HOME
CACHE = cache_root()


# -- no Node needed ------------------------------------------------------------------------------


def test_sql_error_parses_workerd_messages() -> None:
    e = sql_error('near "TO": syntax error at offset 58: SQLITE_ERROR')
    assert type(e) is SqlError and str(e) == 'near "TO": syntax error at offset 58: SQLITE_ERROR'
    assert (e.code, e.offset, e.extended, e.sqlite_message) == (
        "SQLITE_ERROR",
        58,
        None,
        'near "TO": syntax error',
    )
    e = sql_error(
        "UNIQUE constraint failed: users.name: SQLITE_CONSTRAINT (extended: "
        "SQLITE_CONSTRAINT_UNIQUE)"
    )
    assert (e.code, e.extended, e.offset) == ("SQLITE_CONSTRAINT", "SQLITE_CONSTRAINT_UNIQUE", None)
    assert e.sqlite_message == "UNIQUE constraint failed: users.name"
    own = sql_error("SQL code did not contain a statement.")
    assert own.code is None and own.sqlite_message == "SQL code did not contain a statement."
    reset = sql_error(
        "Durable Object was reset and rolled back to its last known good state because the "
        "application left the database in a state where constraints were violated: "
        "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT"
    )
    assert isinstance(reset, DurableObjectResetError)


def test_harness_bundle_is_what_drizzle_reads(tmp_path: Path) -> None:
    write_bundle(tmp_path / "d", GOOD)
    bundle = dosqlite.load_bundle(tmp_path / "d")
    journal, migrations = harness_bundle(bundle)
    assert [(e["idx"], e["tag"], e["when"]) for e in journal["entries"]] == [
        (0, "0000_init", 1700000000000),
        (1, "0001_posts", 1700000001000),
    ]
    assert migrations == {"m0000": GOOD[0][1], "m0001": GOOD[1][1]}
    # a key migrations.js lacks is left out, so drizzle itself throws Missing migration
    js = tmp_path / "d" / "migrations.js"
    js.write_text(js.read_text().replace("m0001\n", "\n"))
    partial = dosqlite.load_bundle(tmp_path / "d")
    assert partial.missing == ("0001_posts",)
    assert set(harness_bundle(partial)[1]) == {"m0000"}


def test_registry_says_where_each_check_runs() -> None:
    assert "do_contract" in CHECK_NAMES
    assert runs_on("lint", "workerd") == "any"
    assert runs_on("upgrade_from_empty", "workerd") == "workerd"
    assert runs_on("upgrade_from_empty", "emulator") == "emulator"
    assert runs_on("crash_recovery", "workerd") == "emulator"
    assert get_check("upgrade_from_every_version", "workerd") is upgrade_from_every_version_workerd
    assert get_check("upgrade_from_every_version").__module__ == "pytest_dosqlite.fleet"
    assert get_check("idempotent", "workerd") is idempotent


def test_remote_do_refuses_python_callbacks_with_a_reason() -> None:
    do = RemoteDurableObject(WorkerdRuntime(), "never-started")
    with pytest.raises(WorkerdUnsupported, match=r"do\.transaction\(\[") as info:
        do.transaction_sync(lambda: None)
    # it passed for the callback's own error in a test's pytest.raises(RuntimeError)
    assert not isinstance(info.value, RuntimeError)
    # the KV API was an AttributeError
    for call in (lambda: do.put("k", 1), lambda: do.get("k"), lambda: do.set_alarm(1.0)):
        with pytest.raises(WorkerdUnsupported, match="reaches a DO's SQL only"):
            call()
    with pytest.raises(WorkerdUnsupported, match="callback cannot run inside the Worker"):
        do.block_concurrency_while(lambda: None)
    with pytest.raises(WorkerdUnsupported, match=r"do\.batch"), do.event():
        pass
    with pytest.raises(WorkerdUnsupported, match="no in-memory image"):
        do.image()
    do.close()  # a no-op, as fixtures call it


def test_migrate_dispatches_to_a_remote_do() -> None:
    class Fake:
        def dosqlite_migrate(self, bundle: Any) -> RemoteMigrationRun:
            return RemoteMigrationRun(applied=[f"ran {bundle}"])

    bundle = dosqlite.load_bundle(EXAMPLE / "drizzle")
    run = dosqlite.migrate(Fake(), bundle)  # type: ignore[arg-type]
    assert run.applied == [f"ran {bundle}"]


def test_install_progress_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import pytest_dosqlite.workerd as workerd

    fake = workerd.Installation(tmp_path, "node", tmp_path / "workerd", "workerd x", True, 42.0)
    monkeypatch.setattr(workerd, "harness_dir", lambda: tmp_path / "not-installed")
    monkeypatch.setattr(workerd, "ensure_installed", lambda progress: fake)
    lines: list[str] = []
    runtime = WorkerdRuntime(progress=lines.append)
    assert runtime.install() is fake
    assert runtime.install() is fake  # once per runtime
    assert len(lines) == 2
    assert lines[0].startswith("pytest-dosqlite: installing workerd ")
    assert lines[1] == "pytest-dosqlite: workerd harness installed in 42 s"


def test_emulator_backend_hands_out_image_copies(tmp_path: Path) -> None:
    write_bundle(tmp_path / "d", GOOD)
    bundle = dosqlite.load_bundle(tmp_path / "d")
    backend = EmulatorBackend()
    a, b = backend.fresh(bundle), backend.fresh(bundle, 1)
    assert isinstance(a, DurableObjectStorage)
    tables = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    assert ["posts"] in a.sql.exec(tables).raw().to_array()
    assert ["posts"] not in b.sql.exec(tables).raw().to_array()


def test_missing_node_is_one_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    make_project(pytester.path)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    pytester.makepyfile(test_x="def test_x(do_storage):\n    pass\n")
    old = os.environ["PATH"]
    os.environ["PATH"] = str(empty)
    try:
        result = pytester.runpytest_subprocess(
            "--dosqlite", "--dosqlite-backend=workerd", "-p", "no:cacheprovider"
        )
    finally:
        os.environ["PATH"] = old
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--dosqlite-backend=workerd: pytest-dosqlite's workerd backend needs Node.js" in err
    assert "`node` is not on PATH" in err
    assert "Traceback" not in err + result.stdout.str()


def test_emulator_fixtures_are_unchanged(pytester: pytest.Pytester) -> None:
    make_project(pytester.path)
    pytester.makeconftest(
        "import pytest, pytest_dosqlite as d\n"
        "@pytest.fixture(scope='session')\n"
        "def dosqlite_bundle():\n"
        "    return d.load_bundle('drizzle')\n"
    )
    pytester.makepyfile(
        test_fix="""
        from pytest_dosqlite import DurableObjectStorage

        def test_types(migrated_do, do_at, do_storage, dosqlite_backend):
            assert dosqlite_backend.name == "emulator"
            for do in (migrated_do, do_at("0000_init"), do_storage):
                assert type(do) is DurableObjectStorage
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


# -- real runtime -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime() -> Iterator[WorkerdRuntime]:
    rt = WorkerdRuntime()
    yield rt
    rt.stop()


def _bundle(tmp_path: Path, migrations: list[tuple[str, str]], **kw: Any) -> dosqlite.Bundle:
    write_bundle(tmp_path / "drizzle", migrations, **kw)
    return dosqlite.load_bundle(tmp_path / "drizzle")


PARITY_SQL = [
    "SELECT * FROM nosuch",
    "INSERT INTO t (a) VALUES (NULL)",
    "INSERT INTO t (a) VALUES ('dup')",
    "SELEC 1",
    "BEGIN",
    "PRAGMA journal_mode=DELETE",
    "SELECT log10(100)",
    "SELECT 1; -- c",
    "SELECT 1;;",
    "CREATE TABLE _cf_x (a)",
]


@pytest.mark.workerd
@needs_node
def test_remote_exec_has_the_emulator_surface(runtime: WorkerdRuntime) -> None:
    remote = runtime.empty("surface")
    local = DurableObjectStorage()
    for do in (remote, local):
        do.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL UNIQUE, b BLOB)")
        do.sql.exec("INSERT INTO t (a, b) VALUES (?, ?), (?, ?)", "dup", b"\x00\x01", "x", None)
    for do in (remote, local):
        cur = do.sql.exec("SELECT id, a, b, typeof(?) AS t FROM t ORDER BY id", 42)
        assert cur.column_names == ["id", "a", "b", "t"]
        assert cur.to_array() == [
            {"id": 1, "a": "dup", "b": b"\x00\x01", "t": "real"},
            {"id": 2, "a": "x", "b": None, "t": "real"},
        ]
        assert do.sql.exec("SELECT a FROM t ORDER BY id").raw().to_array() == [["dup"], ["x"]]
        assert do.sql.exec("SELECT count(*) AS n FROM t").one() == {"n": 2}
        with pytest.raises(SqlError, match="Expected exactly one result"):
            do.sql.exec("SELECT a FROM t").one()
    for sql in PARITY_SQL:
        errors = []
        for do in (remote, local):
            try:
                do.sql.exec(sql)
                errors.append(None)
            except SqlError as exc:
                errors.append((str(exc), exc.code, exc.offset))
        assert errors[0] is not None, sql
        assert errors[0] == errors[1], sql
    assert remote.sql.database_size == local.sql.database_size


#: Python values with no JS counterpart or JS stand-ins: each backend must bind the same value
BINDINGS: list[Any] = [
    datetime.datetime(2024, 1, 2, 3, 4, 5),
    uuid.UUID(int=7),
    decimal.Decimal("1.25"),
    [1, [2, 3], None, True, 1.5, 2.0],
    {"$blob": "00"},
    {"$ref": "x"},
    {"a": datetime.date(2024, 1, 1)},
    2**70,
    codec.Undefined(),
    codec.Date(0),
    codec.ArrayBuffer(b"\x01"),
    codec.ZeroBlob(2),
    codec.JsObject({"a": 1}),
]


@pytest.mark.workerd
@needs_node
def test_both_backends_bind_a_python_value_alike(runtime: WorkerdRuntime) -> None:
    remote, local = runtime.empty("bindings"), DurableObjectStorage()
    for value in BINDINGS:
        got = [
            do.sql.exec("SELECT typeof(?1) AS t, ?1 AS v", value).one() for do in (remote, local)
        ]
        assert got[0] == got[1], value
    for do in (remote, local):
        for value in (10**400, codec.BigInt(5)):
            with pytest.raises(SqlError, match="Cannot convert a BigInt value to a number"):
                do.sql.exec("SELECT ?", value)
        with pytest.raises(SqlError, match="expects a string, got int"):
            do.sql.exec(5)  # type: ignore[arg-type]


@pytest.mark.workerd
@needs_node
def test_batch_is_one_event_and_transaction_rolls_back(runtime: WorkerdRuntime) -> None:
    do = runtime.empty("batch")
    out = do.batch(
        [
            "CREATE TABLE t (x NOT NULL)",
            ("INSERT INTO t VALUES (?)", [1]),
            "INSERT INTO t VALUES (NULL)",
            "PRAGMA foreign_keys=OFF",  # after a write in the same event: a no-op
            "PRAGMA foreign_keys",
        ]
    )
    assert isinstance(out[2], SqlError) and str(out[2]).startswith("NOT NULL constraint failed")
    assert not isinstance(out[4], SqlError) and out[4].raw().to_array() == [[1]]
    with pytest.raises(SqlError, match="no such table: nosuch"):
        do.transaction(["INSERT INTO t VALUES (2)", "INSERT INTO nosuch VALUES (1)"])
    assert do.sql.exec("SELECT x FROM t").raw().to_array() == [[1]]  # the 2 was rolled back
    kept = do.transaction([("INSERT INTO t VALUES (?)", [3]), "SELECT count(*) FROM t"])
    assert kept[1].raw().to_array() == [[2]]


@pytest.mark.workerd
@needs_node
def test_fresh_dos_and_public_migrate_run_real_drizzle(
    runtime: WorkerdRuntime, tmp_path: Path
) -> None:
    bundle = _bundle(
        tmp_path,
        [
            *GOOD,
            ("0002_backfill", "UPDATE `posts` SET `title` = 'untitled' WHERE `title` IS NULL;"),
        ],
    )
    old = runtime.fresh(bundle, 2)
    other = runtime.fresh(bundle, 2)
    assert old.name != other.name
    old.sql.exec("INSERT INTO posts (title) VALUES (NULL), ('kept')")
    run = dosqlite.migrate(old, bundle)  # the public API dispatches to workerd
    assert isinstance(run, RemoteMigrationRun)
    assert run.applied == ["0002_backfill"]
    assert run.not_applied == ["0000_init", "0001_posts"]
    assert run.high_water_mark == 1700000001000
    rows = old.sql.exec("SELECT title FROM posts ORDER BY id").raw().to_array()
    assert rows == [["untitled"], ["kept"]]
    assert dosqlite.migrate(old, bundle).applied == []
    assert other.sql.exec("SELECT count(*) AS n FROM posts").one() == {"n": 0}
    ledger = old.dump()["journal"]
    assert [r["created_at"] for r in ledger] == [1700000000000, 1700000001000, 1700000002000]


@pytest.mark.workerd
@needs_node
def test_failed_real_migrate_is_explained_by_the_emulator(
    runtime: WorkerdRuntime, tmp_path: Path
) -> None:
    unique = ("0002_unique", "CREATE UNIQUE INDEX `posts_title` ON `posts` (`title`);")
    bundle = _bundle(tmp_path, [*GOOD, unique])
    do = runtime.fresh(bundle, 2)
    do.sql.exec("INSERT INTO posts (title) VALUES (?), (?)", "same", "same")
    with pytest.raises(dosqlite.MigrationError) as info:
        dosqlite.migrate(do, bundle)
    err = info.value
    assert err.drizzle_message == "DrizzleError: Rollback"  # what workerd said
    assert err.tag == "0002_unique"
    assert str(err.cause) == (
        "UNIQUE constraint failed: posts.title: SQLITE_CONSTRAINT (extended: "
        "SQLITE_CONSTRAINT_UNIQUE)"
    )
    assert "workerd's migrate() rejected with `DrizzleError: Rollback`" in err.message
    assert "emulator's replay" in err.message
    # the real DO kept its state: the whole run was rolled back
    assert do.dump()["journal"] is not None and len(do.dump()["journal"]) == 2

    broken = _bundle(tmp_path / "b", [*GOOD, ("0002_dup", GOOD[1][1])])
    with pytest.raises(dosqlite.MigrationError) as fresh_info:
        runtime.fresh(broken)
    assert str(fresh_info.value.cause) == "table `posts` already exists at offset 13: SQLITE_ERROR"
    assert fresh_info.value.statement is not None
    assert fresh_info.value.statement.startswith("CREATE TABLE `posts`")


@pytest.mark.workerd
@needs_node
def test_core_checks_run_on_workerd(runtime: WorkerdRuntime, tmp_path: Path) -> None:
    from pytest_dosqlite.checks import _query
    from pytest_dosqlite.schema import introspect, render

    bundle = dosqlite.load_bundle(EXAMPLE / "drizzle")
    images = WorkerdImages(runtime)
    ctx = CheckContext(bundle=bundle, images=images)  # type: ignore[arg-type]
    upgrade_from_empty(ctx)
    idempotent(ctx)
    get_check("schema_snapshot", "workerd")(ctx)  # the committed snapshot matches workerd's DO
    get_check("matches_drizzle_snapshot", "workerd")(ctx)
    remote = images.fresh(bundle)
    assert isinstance(remote, RemoteDurableObject)
    local = EmulatorBackend().fresh(bundle)
    assert render(introspect(_query(remote))) == render(introspect(_query(local)))

    bad = _bundle(tmp_path, [*GOOD, ("0002_txn", "BEGIN;\nCREATE TABLE `x` (`a` integer);")])
    with pytest.raises(CheckFailure) as info:
        upgrade_from_empty(CheckContext(bundle=bad, images=images))  # type: ignore[arg-type]
    text = info.value.render()
    assert "migration 0002_txn fails on a fresh Durable Object" in text
    assert "To execute a transaction" in text and "DrizzleError: Rollback" in text


@pytest.mark.workerd
@needs_node
def test_upgrade_from_every_version_on_workerd(runtime: WorkerdRuntime, tmp_path: Path) -> None:
    settings = Settings(git_history=False, backend="workerd")
    good = _bundle(tmp_path / "g", GOOD)
    upgrade_from_every_version_workerd(
        CheckContext(bundle=good, settings=settings, extra={"workerd": runtime})
    )
    three = [*GOOD, ("0002_tags", "CREATE TABLE `tags` (`id` integer PRIMARY KEY);")]
    # a merged branch: 0001's `when` is newer than 0002's, so v2 DOs never get 0002
    merged = _bundle(tmp_path / "m", three, whens=[1700000000000, 1700000009000, 1700000005000])
    with pytest.raises(CheckFailure) as info:
        upgrade_from_every_version_workerd(
            CheckContext(bundle=merged, settings=settings, extra={"workerd": runtime})
        )
    text = info.value.render()
    assert "Deployed at v2 (after 0001_posts) [workerd]" in text
    assert "never applied" in text and "0002_tags" in text
    assert "+table tags" not in text and "-table tags" in text


@pytest.fixture
def shared_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester runs get a fresh HOME: point them at this user's harness install."""
    monkeypatch.setenv("DOSQLITE_CACHE_DIR", str(CACHE))


USER_TESTS = """
import json, os
from pathlib import Path
import pytest_dosqlite as dosqlite
from pytest_dosqlite.backends import RemoteDurableObject

def _note(backend):
    Path(os.environ["DOSQLITE_TEST_OUT"]).write_text(json.dumps({"pgid": backend.server.pgid}))

def test_fixtures_are_remote(migrated_do, do_at, do_storage, dosqlite_backend, dosqlite_bundle):
    assert dosqlite_backend.name == "workerd"
    old = do_at("0000_init")
    dos = [migrated_do, old, do_storage]
    assert all(isinstance(d, RemoteDurableObject) for d in dos)
    assert len({d.name for d in dos}) == 3
    assert migrated_do.sql.exec("SELECT count(*) AS n FROM posts").one() == {"n": 0}
    assert dosqlite.migrate(old, dosqlite_bundle).applied == ["0001_posts"]
    _note(dosqlite_backend)

def test_sql_errors_are_workerds(migrated_do):
    try:
        migrated_do.sql.exec("INSERT INTO users (name) VALUES (NULL)")
    except dosqlite.SqlError as exc:
        assert str(exc) == (
            "NOT NULL constraint failed: users.name: SQLITE_CONSTRAINT "
            "(extended: SQLITE_CONSTRAINT_NOTNULL)"
        )
    else:
        raise AssertionError("no error")
"""


@pytest.mark.workerd
@needs_node
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_plugin_end_to_end_on_workerd(
    pytester: pytest.Pytester, tmp_path: Path, shared_cache: None
) -> None:
    make_project(pytester.path)
    pytester.makeconftest(
        "import pytest, pytest_dosqlite as d\n"
        "@pytest.fixture(scope='session')\n"
        "def dosqlite_bundle():\n"
        "    return d.load_bundle('drizzle')\n"
    )
    pytester.makepyfile(test_user=USER_TESTS)
    out = tmp_path / "out.json"
    os.environ["DOSQLITE_TEST_OUT"] = str(out)
    try:
        result = pytester.runpytest_subprocess(
            "--dosqlite",
            "--dosqlite-backend=workerd",
            "--dosqlite-checks-include=upgrade_from_empty,idempotent,upgrade_from_every_version,"
            "lint,concurrent_starts,do_contract",
            "-p",
            "no:cacheprovider",
            "-rA",
        )
    finally:
        del os.environ["DOSQLITE_TEST_OUT"]
    result.assert_outcomes(passed=7, skipped=0, failed=1)
    stdout = result.stdout.str()
    assert (
        "dosqlite: on workerd (real drizzle migrate()): upgrade_from_empty, idempotent, "
        "upgrade_from_every_version" in stdout
    )
    assert "dosqlite: on the emulator (processes, crashes, timing): concurrent_starts" in stdout
    assert "dosqlite: backend-independent: lint" in stdout
    # make_project's Worker is a stub whose DO never migrates: do_contract says so
    assert "RoomDO does not migrate itself to the bundle's head on workerd" in stdout
    assert "its constructor does not run drizzle's migrate()" in stdout
    pgid = json.loads(out.read_text())["pgid"]
    assert not (alive := _wait_gone(pgid)), alive  # the session stopped its workerd


@pytest.mark.workerd
@needs_node
def test_xdist_summary_on_workerd_says_what_a_fresh_do_reaches(
    pytester: pytest.Pytester, shared_cache: None
) -> None:
    # upgrade_from_empty runs in workerd, which keeps no image to count tables in; a worker's
    # emulator images (concurrent_starts runs on the emulator) tell the controller
    make_project(pytester.path)
    result = pytester.runpytest_subprocess(
        "--dosqlite",
        "--dosqlite-backend=workerd",
        "--dosqlite-checks-include=upgrade_from_empty,concurrent_starts",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["drizzle: 2 migrations, 2 tables, checks 2 passed, 0 failed, slowest 000*"]
    )


@pytest.mark.workerd
@needs_node
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_crashed_session_leaves_no_workerd(
    pytester: pytest.Pytester, tmp_path: Path, shared_cache: None
) -> None:
    make_project(pytester.path)
    pytester.makepyfile(
        test_crash="""
        import json, os
        from pathlib import Path

        def test_crash(do_storage, dosqlite_backend):
            do_storage.sql.exec("SELECT 1")
            out = Path(os.environ["DOSQLITE_TEST_OUT"])
            out.write_text(json.dumps({"pgid": dosqlite_backend.server.pgid}))
            os._exit(3)  # no sessionfinish, no atexit
        """
    )
    out = tmp_path / "out.json"
    os.environ["DOSQLITE_TEST_OUT"] = str(out)
    try:
        result = pytester.runpytest_subprocess(
            "--dosqlite-backend=workerd", "-p", "no:cacheprovider"
        )
    finally:
        del os.environ["DOSQLITE_TEST_OUT"]
    assert result.ret == 3
    pgid = json.loads(out.read_text())["pgid"]
    assert not (alive := _wait_gone(pgid)), alive


RECREATE = [
    ("0000_users", "CREATE TABLE `users` (`id` integer PRIMARY KEY, `name` text);"),
    (
        "0001_posts",
        "CREATE TABLE `posts` (`id` integer PRIMARY KEY, `user_id` integer REFERENCES "
        "`users`(`id`));--> statement-breakpoint\n"
        "INSERT INTO `users` VALUES (1, 'a');--> statement-breakpoint\n"
        "INSERT INTO `posts` VALUES (1, 1);",
    ),
    (
        "0002_recreate_users",
        "PRAGMA foreign_keys=OFF;--> statement-breakpoint\n"
        "CREATE TABLE `__new_users` (`id` integer PRIMARY KEY, `name` text NOT NULL DEFAULT '');"
        "--> statement-breakpoint\n"
        "INSERT INTO `__new_users` SELECT `id`, coalesce(`name`, '') FROM `users`;"
        "--> statement-breakpoint\n"
        "DROP TABLE `users`;--> statement-breakpoint\n"
        "ALTER TABLE `__new_users` RENAME TO `users`;--> statement-breakpoint\n"
        "PRAGMA foreign_keys=ON;",
    ),
]


@pytest.mark.workerd
@needs_node
def test_fk_off_start_runs_on_workerd(runtime: WorkerdRuntime, tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, RECREATE)
    plain = runtime.empty("plain")
    with pytest.raises(dosqlite.MigrationError) as info:
        runtime.migrate(plain, bundle)
    assert info.value.drizzle_message == "DrizzleError: Rollback"
    assert str(info.value.cause).startswith("FOREIGN KEY constraint failed")
    assert info.value.tag == "0002_recreate_users"
    workaround = runtime.empty("fk-off")
    run = runtime.migrate(workaround, bundle, "drizzle-fk-off")
    assert run.applied == [t for t, _ in RECREATE]
    assert workaround.sql.exec("SELECT count(*) AS n FROM posts").one() == {"n": 1}
    assert workaround.sql.exec("PRAGMA foreign_keys").raw().to_array() == [[1]]
    with pytest.raises(WorkerdUnsupported, match="Python function"):
        runtime.migrate(runtime.empty(), bundle, "mymodule:start")


@pytest.mark.workerd
@needs_node
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_stopped_runtime_does_not_restart() -> None:
    from pytest_dosqlite.workerd import WorkerdError

    rt = WorkerdRuntime()
    assert not rt.started  # lazy: nothing runs before the first DO is used
    do = rt.empty("stop")
    assert not rt.started
    do.sql.exec("SELECT 1")
    assert rt.started and rt.startup_seconds is not None
    pgid = rt.server.pgid
    assert pgid is not None
    rt.stop()
    assert not rt.started and not _wait_gone(pgid)
    with pytest.raises(WorkerdError, match="was stopped"):
        do.sql.exec("SELECT 1")
    rt.stop()  # idempotent


PORTABLE_TESTS = """
import pytest
from pytest_dosqlite.errors import SqlError


def test_statement_lists(do_storage):
    out = do_storage.batch(
        ["CREATE TABLE t(x NOT NULL)", ("INSERT INTO t VALUES (?)", [1]),
         "INSERT INTO t VALUES (NULL)", ("INSERT INTO t VALUES (?)", 3)]
    )
    assert [isinstance(r, SqlError) for r in out] == [False, False, True, False]
    assert str(out[2]).startswith("NOT NULL constraint failed: t.x")
    with pytest.raises(SqlError, match="NOT NULL constraint failed"):
        do_storage.transaction(["INSERT INTO t VALUES (4)", "INSERT INTO t VALUES (NULL)"])
    done = do_storage.transaction(["INSERT INTO t VALUES (5)", "SELECT x FROM t ORDER BY x"])
    assert [r[0] for r in done[1].raw().to_array()] == [1, 3, 5]
    print("BACKEND", type(do_storage).__name__)


def test_a_callback_error_is_not_the_backends(do_storage):
    def ctor():
        raise RuntimeError("mine")
    try:
        do_storage.block_concurrency_while(ctor)
    except RuntimeError as exc:
        assert str(exc) == "mine"
"""


@pytest.mark.workerd
@needs_node
def test_statement_lists_run_on_both_backends(
    pytester: pytest.Pytester, shared_cache: None
) -> None:
    # batch() and transaction() existed on workerd only, and the workerd error for a Python
    # callback (a NotImplementedError, so a RuntimeError) passed a test's `except RuntimeError`
    make_project(pytester.path)
    pytester.makepyfile(test_portable=PORTABLE_TESTS)
    emulator = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    emulator.assert_outcomes(passed=2)
    emulator.stdout.fnmatch_lines(["*BACKEND DurableObjectStorage*"])
    workerd = pytester.runpytest_subprocess(
        "--dosqlite-backend=workerd", "-p", "no:cacheprovider", "-s"
    )
    workerd.assert_outcomes(passed=1, failed=1)
    workerd.stdout.fnmatch_lines(
        ["*BACKEND RemoteDurableObject*", "*WorkerdUnsupported: block_concurrency_while(fn)*"]
    )
