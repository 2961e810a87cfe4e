"""The real-runtime (workerd) backend: install, start/stop, round trips, recordings replay.

Tests marked ``workerd`` start the pinned workerd through Node; they skip only when ``node`` is
not on PATH (in CI Node is present, so the npm install runs). The recordings-format tests and
the missing-Node test need no Node at all.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import shared_path
from pytest_dosqlite.workerd import (
    PINNED_WORKERD,
    NodeNotFoundError,
    WorkerdBackend,
    do_id_hex,
    find_node,
    recordings,
)
from pytest_dosqlite.workerd.codec import (
    BigInt,
    Repeat,
    Undefined,
    decode_binding,
    decode_result,
    decode_text,
    encode_binding,
)

RECORDED = Path(__file__).resolve().parent / "data" / "workerd" / "recorded.json"
SRC = Path(__file__).resolve().parents[1] / "src"

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")


@pytest.fixture(scope="module")
def backend() -> Iterator[WorkerdBackend]:
    with WorkerdBackend() as wb:
        yield wb


def _unique(request: pytest.FixtureRequest) -> str:
    return f"{request.node.nodeid}:{time.monotonic_ns()}"


def _group_members(pgid: int) -> list[int]:
    """Live pids whose process group is ``pgid`` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _wait_gone(pgid: int, timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (alive := _group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


# -- no Node needed ------------------------------------------------------------------------------


def test_missing_node_gives_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(NodeNotFoundError, match=r"needs Node\.js >= 20 .*`node` is not on PATH"):
        find_node()
    backend = WorkerdBackend()
    with pytest.raises(NodeNotFoundError, match="`node` is not on PATH"):
        backend.start()
    assert not backend.running
    assert backend.pid is None


def test_missing_npm_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake_node = bindir / "node"
    fake_node.write_text("#!/bin/sh\necho v20.20.2\n")
    fake_node.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(NodeNotFoundError, match="`npm` is not on PATH"):
        find_node()


def test_too_old_node_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in (("node", "echo v18.19.0"), ("npm", "echo 10.0.0")):
        exe = bindir / name
        exe.write_text(f"#!/bin/sh\n{text}\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(NodeNotFoundError, match=r"found v18\.19\.0"):
        find_node()


def test_codec_round_trips() -> None:
    values = [None, "x", 3, 1.5, True, b"\x00\xff", Undefined(), BigInt(5), float("inf"), -0.0]
    for value in values:
        decoded = decode_binding(encode_binding(value))
        assert decoded == value or (isinstance(value, float) and str(decoded) == str(value))
    assert encode_binding(True) == {"$bool": True}  # not the number 1
    assert encode_binding(-0.0) == {"$num": "-0"}
    assert decode_text({"$concat": ["a", {"$repeat": ["é", 3]}]}) == "aééé"
    assert decode_result([[{"$blob": "00"}, {"$num": "NaN"}]])[0][0] == b"\x00"
    with pytest.raises(TypeError):
        encode_binding(object())


def test_do_id_depends_on_name_worker_and_class() -> None:
    # checked against real workerd in test_persisted_file_readable_after_stop
    assert len(do_id_hex("a")) == 64
    assert do_id_hex("a") != do_id_hex("b")
    assert do_id_hex("a", worker="w", class_name="C") != do_id_hex("a")


def test_recordings_are_well_formed() -> None:
    data = recordings.load(RECORDED)
    assert data["runtime"]["workerdPackage"] == PINNED_WORKERD
    assert data["runtime"]["sqlite"] == "3.54.1"
    names = [c["name"] for c in data["cases"]]
    assert len(names) == len(set(names))
    assert len(names) > 600
    actions = {"exec", "batch", "txn", "script", "migrate", "dump", "size", "ctor", "restart"}
    for case in data["cases"]:
        assert len(case["outcomes"]) == len(case["requests"]), case["name"]
        for request in case["setup"] + case["requests"]:
            assert request["action"] in actions, case["name"]
        # every bundle a case names is embedded (no ../shared at test time)
        recordings.resolve(case["requests"], data["bundles"])
    sections = {c["section"] for c in data["cases"]}
    assert {"3.2", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "3.9", "3.10"} <= sections


def test_recordings_hold_the_key_facts() -> None:
    """Spot checks that a broken recorder could not produce by accident."""
    data = recordings.load(RECORDED)
    by_name = {c["name"]: c for c in data["cases"]}
    assert by_name["stmt/BEGIN"]["outcomes"][0]["error"] == data["txnMessage"]
    assert by_name["limit/sql length 100001 bytes"]["outcomes"][0]["error"] == (
        "statement too long: SQLITE_TOOBIG"
    )
    assert by_name["limit/sql length 100000 bytes"]["outcomes"][0]["ok"] is True
    assert by_name["bind/typeof and value of 42"]["outcomes"][0]["rows"] == [["real", 42]]
    assert by_name["bind/typeof and value of true"]["outcomes"][0]["rows"] == [["text", "true"]]
    cascade = by_name["drizzle/step4 recreation deletes posts (cascade)"]["outcomes"]
    assert cascade[3]["rows"] == [[2, 3, "1,1,2"]]
    assert cascade[5]["rows"] == [[2, 0, None]]
    reset = by_name["implicit/deferred FK violation at commit resets the object"]["outcomes"]
    assert reset[0]["fatal"] and reset[0]["error"].startswith("Durable Object was reset")
    assert reset[1]["construction"] == 2


@pytest.mark.shared
def test_recorded_drizzle_dumps_equal_the_shared_expected_results() -> None:
    """The recordings (runtime C) reproduce the bundles' expected outputs (recorded on A)."""
    data = recordings.load(RECORDED)
    by_name = {c["name"]: c for c in data["cases"]}
    for step in [f"basic-step{i}" for i in range(1, 7)] + ["basic-nobp"]:
        expected = json.loads(shared_path("bundles", step, "expected.json").read_text())
        if "steps" in expected:
            expected = expected["steps"][-1]
        dump = by_name[f"drizzle/{step} on a fresh DO"]["outcomes"][1]
        assert dump["schema"] == expected["schema"], step
        assert dump["journal"] == expected["journal"], step
        # the recorded bundle is the shared one, byte for byte
        journal = json.loads(
            shared_path("bundles", step, "drizzle", "meta", "_journal.json").read_text()
        )
        assert data["bundles"][step]["journal"] == journal
    incremental = json.loads(shared_path("bundles", "incremental-expected.json").read_text())
    case = by_name["drizzle/basic steps 1..6 incrementally, migrate twice per step"]
    dumps = [
        o for r, o in zip(case["requests"], case["outcomes"], strict=True) if r["action"] == "dump"
    ]
    assert len(dumps) == len(incremental["steps"]) == 6
    for want, got in zip(incremental["steps"], dumps, strict=True):
        assert (got["schema"], got["journal"]) == (want["schema"], want["journal"]), want["step"]


def test_outcomes_match_status_mode() -> None:
    a = [{"ok": True, "columnNames": ["r"], "rows": [[1]], "rowsRead": 0}]
    b = [{"ok": True, "columnNames": ["r"], "rows": [[2]], "rowsRead": 0}]
    assert not recordings.outcomes_match(a, b)
    assert recordings.outcomes_match(a, b, "status")
    assert not recordings.outcomes_match(a, [{"ok": False, "error": "x"}], "status")


# -- real runtime -----------------------------------------------------------------------------


@pytest.mark.workerd
@needs_node
def test_exec_round_trip(backend: WorkerdBackend, request: pytest.FixtureRequest) -> None:
    name = _unique(request)
    res = backend.exec(
        name, "SELECT typeof(?), typeof(?), ?, typeof(?)", 42, True, b"\x01\x02", None
    )
    assert res["ok"] is True
    assert res["columnNames"] == ["typeof(?)", "typeof(?)", "?", "typeof(?)"]
    assert res["rows"] == [["real", "text", b"\x01\x02", "null"]]
    err = backend.exec(name, "SELECT * FROM nosuch")
    assert err == {
        "ok": False,
        "error": "no such table: nosuch: SQLITE_ERROR",
        "errorName": "Error",
        "construction": 1,
    }
    long = backend.exec(name, "SELECT length(?)", Repeat("é", 100_000))
    assert long["rows"] == [[100_000]]


@pytest.mark.workerd
@needs_node
def test_batch_continues_after_errors_in_one_event(
    backend: WorkerdBackend, request: pytest.FixtureRequest
) -> None:
    name = _unique(request)
    out = backend.batch(
        name,
        [
            "CREATE TABLE t(x NOT NULL)",
            ("INSERT INTO t VALUES (?)", [1]),
            "INSERT INTO t VALUES (NULL)",
            "INSERT INTO t VALUES (3)",
            "PRAGMA foreign_keys=OFF",  # after a write in the same turn: a no-op
            "PRAGMA foreign_keys",
            "SELECT x FROM t ORDER BY x",
        ],
    )
    results = out["results"]
    assert [r["ok"] for r in results] == [True, True, False, True, True, True, True]
    assert results[2]["error"].startswith("NOT NULL constraint failed: t.x")
    assert results[5]["rows"] == [[1]]
    assert results[6]["rows"] == [[1], [3]]


@pytest.mark.workerd
@needs_node
def test_txn_throw_rolls_back_and_commit_keeps(
    backend: WorkerdBackend, request: pytest.FixtureRequest
) -> None:
    name = _unique(request)
    backend.exec(name, "CREATE TABLE t(x)")
    thrown = backend.txn(name, ["INSERT INTO t VALUES (1)"], throw=True)
    assert thrown["results"][0]["error"] == "deliberate throw in transactionSync"
    assert backend.exec(name, "SELECT count(*) FROM t")["rows"] == [[0]]
    kept = backend.txn(name, ["INSERT INTO t VALUES (1)", "BEGIN"])
    assert kept["results"][0]["ok"] is True
    assert kept["results"][0]["steps"][1]["error"].startswith("To execute a transaction")
    assert backend.exec(name, "SELECT count(*) FROM t")["rows"] == [[1]]


JOURNAL = {
    "version": "7",
    "dialect": "sqlite",
    "entries": [
        {"idx": 0, "version": "6", "when": 1700000000000, "tag": "0000_init", "breakpoints": True}
    ],
}
MIGRATIONS = {
    "m0000": "CREATE TABLE `users` (`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL, "
    "`name` text NOT NULL);--> statement-breakpoint\n"
    "CREATE UNIQUE INDEX `users_name_unique` ON `users` (`name`);"
}


@pytest.mark.workerd
@needs_node
def test_migrate_and_dump(backend: WorkerdBackend, request: pytest.FixtureRequest) -> None:
    name = _unique(request)
    first = backend.migrate(name, JOURNAL, MIGRATIONS)
    assert first["ok"] is True
    again = backend.migrate(name, JOURNAL, MIGRATIONS)
    assert again["ok"] is True
    dump = backend.dump(name)
    names = [row["name"] for row in dump["schema"]]
    assert names == [
        "sqlite_autoindex___drizzle_migrations_1",
        "users_name_unique",
        "__drizzle_migrations",
        "sqlite_sequence",
        "users",
    ]
    assert dump["journal"] == [
        {
            "rowid": 1,
            "id": None,
            "hash": "",
            "created_at": 1700000000000,
            "id_type": "null",
            "created_at_type": "integer",
        }
    ]
    broken = dict(
        MIGRATIONS, m0000=MIGRATIONS["m0000"] + "--> statement-breakpoint\nCREATE TABL x;"
    )
    other = _unique(request) + "-broken"
    failed = backend.migrate(other, JOURNAL, broken)
    assert failed["ok"] is False
    assert failed["error"] == "DrizzleError: Rollback"
    assert backend.dump(other)["schema"] == []
    assert backend.size(other) == 4096


@pytest.mark.workerd
@needs_node
def test_handler_throw_and_constructor_plans(
    backend: WorkerdBackend, request: pytest.FixtureRequest
) -> None:
    name = _unique(request)
    backend.exec(name, "CREATE TABLE t(x)")
    fatal = backend.script(
        name, [{"op": "exec", "sql": "INSERT INTO t VALUES (1)"}, {"op": "throw"}]
    )
    assert fatal["fatal"] is True and fatal["error"] == "handler boom"
    assert backend.exec(name, "SELECT count(*) FROM t")["rows"] == [[1]]  # writes kept

    ctor = _unique(request) + "-ctor"
    backend.set_constructor(ctor, [{"steps": [{"op": "throw", "message": "ctor boom"}]}, {}])
    failed = backend.exec(ctor, "SELECT 1")
    assert failed["fatal"] is True and failed["error"] == "ctor boom"
    ok = backend.exec(ctor, "SELECT 1")
    assert ok["ok"] is True and ok["construction"] == 2


@pytest.mark.workerd
@needs_node
def test_persisted_file_readable_after_stop(tmp_path: Path) -> None:
    with WorkerdBackend(persist_dir=tmp_path / "state") as wb:
        assert wb.exec("persisted", "CREATE TABLE t(x)")["ok"]
        assert wb.exec("persisted", "INSERT INTO t VALUES ('kept')")["ok"]
        path = wb.sqlite_path("persisted")
    assert path.exists(), sorted(p.name for p in path.parent.iterdir())
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert con.execute("SELECT x FROM t").fetchall() == [("kept",)]
    finally:
        con.close()


@pytest.mark.workerd
@needs_node
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_stop_leaves_no_process() -> None:
    wb = WorkerdBackend().start()
    pid, pgid = wb.pid, wb.pgid
    assert pid is not None and pgid == pid
    members = _group_members(pgid)
    assert pid in members and len(members) >= 2, members  # node + workerd
    wb.stop()
    assert not wb.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert _wait_gone(pgid, timeout=2) == []
    wb.stop()  # idempotent


@pytest.mark.workerd
@needs_node
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_parent_killed_hard_leaves_no_process(tmp_path: Path) -> None:
    """The parent dies without cleanup (no atexit): the server sees stdin close and exits."""
    script = textwrap.dedent(
        """
        import os, sys
        from pytest_dosqlite.workerd import WorkerdBackend
        wb = WorkerdBackend(progress=False).start()
        print(wb.pgid, flush=True)
        os._exit(0)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    pgid = int(out.stdout.strip())
    assert _wait_gone(pgid) == []


@pytest.mark.workerd
@needs_node
@pytest.mark.slow
def test_recordings_replay_on_the_pinned_runtime(
    backend: WorkerdBackend, request: pytest.FixtureRequest
) -> None:
    """Every recorded case (except runtime restarts) gives the same outcomes again."""
    data = recordings.load(RECORDED)
    if backend.installation is None or not backend.installation.workerd_version:
        pytest.fail("backend has no installation")
    mismatches = []
    prefix = _unique(request)
    for index, case in enumerate(data["cases"]):
        if any(r["action"] == "restart" for r in case["requests"]):
            continue
        got = recordings.replay(backend, case, data["bundles"], f"{prefix}/{index}")
        if not recordings.outcomes_match(case["outcomes"], got, case.get("compare", "exact")):
            mismatches.append((case["name"], json.dumps(got)[:300]))
    assert mismatches == []


@pytest.mark.workerd
@needs_node
@pytest.mark.parametrize(
    "sql",
    [
        # a DEFAULT's function name reaches the authorizer as written: workerd ignores case
        "CREATE TABLE d(a, b TEXT DEFAULT CURRENT_TIMESTAMP, c DEFAULT (ABS(-3)), "
        "e DEFAULT (LOWER(HEX(RANDOMBLOB(2))))); INSERT INTO d(a) VALUES (1); "
        "SELECT b IS NOT NULL, c, length(e) FROM d",
        "CREATE TABLE t(a); ALTER TABLE t ADD b text DEFAULT CURRENT_DATE; SELECT 1",
        "SELECT LOG10(100)",  # not allowed in any case
        "SELECT json_error_position('{')",  # refused by workerd's allow-list
        # integers beyond 2**53 are doubles in the DO's JavaScript, on both backends
        "SELECT 1152921504606846976, -1152921504606846977, 9223372036854775807",
        "SELECT rtreecheck('x')",  # allowed (the error is the function's own)
        # a RENAME TO a reserved name is judged on the parsed statement, not its text
        "CREATE TABLE log(x); INSERT INTO log VALUES ('ALTER TABLE x RENAME TO _cf_z'); "
        "SELECT count(*) FROM log",
        "CREATE TABLE p(a); SELECT 1 AS x -- ALTER TABLE p RENAME TO _cf_c",
        "CREATE TABLE p(a); ALTER TABLE p RENAME TO /*c*/ _cf_y",
        'CREATE TABLE p(a); ALTER TABLE p RENAME TO "_cf_w"',
    ],
)
def test_statements_answer_as_in_workerd(
    backend: WorkerdBackend, request: pytest.FixtureRequest, sql: str
) -> None:
    from pytest_dosqlite import DurableObjectStorage
    from pytest_dosqlite.errors import SqlError

    real = backend.exec(_unique(request), sql)
    do = DurableObjectStorage()
    try:
        rows = do.sql.exec(sql).raw().to_array()
    except SqlError as exc:
        assert real["ok"] is False and real["error"] == str(exc)
    else:
        assert real["ok"] is True and real["rows"] == rows
    finally:
        do.close()
