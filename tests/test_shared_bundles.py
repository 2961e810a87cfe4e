"""Real drizzle-kit bundles migrated on the emulator give exactly what the real DO recorded.

``../shared/bundles/<name>/expected.json`` holds sqlite_master and the ledger after drizzle's
real ``migrate()`` ran in a real SQLite-backed Durable Object (workerd). Skipped without
``../shared``.
"""

from __future__ import annotations

import json

import pytest

from conftest import shared_path
from pytest_dosqlite import DurableObjectStorage, load_bundle, migrate

SCHEMA_Q = (
    "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' "
    "ESCAPE '\\' ORDER BY type, name"
)
JOURNAL_Q = (
    "SELECT rowid, id, hash, created_at, typeof(id) AS id_type, typeof(created_at) AS "
    'created_at_type FROM "__drizzle_migrations" ORDER BY rowid'
)
BUNDLES = [
    "basic-step1",
    "basic-step2",
    "basic-step3",
    "basic-step4",
    "basic-step5",
    "basic-step6",
    "basic-nobp",
]


def _rows(value: object) -> list[list[object]]:
    assert isinstance(value, list)
    return [list(r.values()) if isinstance(r, dict) else list(r) for r in value]


def _expected(name: str) -> tuple[list[list[object]], list[list[object]]]:
    data = json.loads(shared_path("bundles", name, "expected.json").read_text())
    if "schema" in data:
        return _rows(data["schema"]), _rows(data["journal"])
    if "steps" in data:  # a series recording: the last step is this bundle's state
        last = data["steps"][-1]
        return _rows(last["schema"]), _rows(last["journal"])
    raise AssertionError(f"unexpected expected.json layout for {name}: {list(data)}")


@pytest.mark.parametrize("name", BUNDLES)
def test_fresh_migrate_matches_the_real_do(name: str) -> None:
    schema, journal = _expected(name)
    bundle = load_bundle(shared_path("bundles", name, "drizzle"))
    do = DurableObjectStorage()
    migrate(do, bundle)
    assert do.sql.exec(SCHEMA_Q).raw().to_array() == schema
    assert do.sql.exec(JOURNAL_Q).raw().to_array() == journal
    assert migrate(do, bundle).applied == []
    assert do.sql.exec(SCHEMA_Q).raw().to_array() == schema


@pytest.mark.parametrize("name", BUNDLES)
def test_expected_schema_txt_matches(name: str) -> None:
    from pytest_dosqlite.schema import dump_master, format_expected_schema

    text = shared_path("bundles", name, "expected-schema.txt").read_text()
    do = DurableObjectStorage()
    migrate(do, load_bundle(shared_path("bundles", name, "drizzle")))
    rendered = format_expected_schema(
        dump_master(lambda q: [tuple(r) for r in do.sql.exec(q).raw()])
    )
    body = "\n".join(
        line for line in text.splitlines() if not line.startswith(("# ", "=== after "))
    )
    assert rendered.strip() == body.strip()


def test_incremental_upgrade_path_matches_the_real_do() -> None:
    data = json.loads(shared_path("bundles", "incremental-expected.json").read_text())
    do = DurableObjectStorage()
    for step in data["steps"]:
        bundle = load_bundle(shared_path("bundles", step["step"], "drizzle"))
        migrate(do, bundle)
        assert migrate(do, bundle).applied == []  # the second call is a no-op
        assert do.sql.exec(SCHEMA_Q).raw().to_array() == _rows(step["schema"]), step["step"]
        assert do.sql.exec(JOURNAL_Q).raw().to_array() == _rows(step["journal"]), step["step"]


def test_basic_step4_deletes_every_post_as_on_a_real_do() -> None:
    do = DurableObjectStorage()
    migrate(do, load_bundle(shared_path("bundles", "basic-step3", "drizzle")))
    do.sql.exec("INSERT INTO users (name, age, email, bio) VALUES ('a', 1, 'a@x', 'b')")
    do.sql.exec("INSERT INTO posts (title, author_id) VALUES ('p1', 1), ('p2', 1), ('p3', 1)")
    run = migrate(do, load_bundle(shared_path("bundles", "basic-step4", "drizzle")))
    assert run.applied == ["0003_bio_not_null"]
    assert do.sql.exec("SELECT count(*) AS n FROM posts").one() == {"n": 0}
    assert do.sql.exec("PRAGMA foreign_keys").raw().to_array() == [[1]]


def test_basic_step4_fails_on_a_null_bio_as_on_a_real_do() -> None:
    from pytest_dosqlite import MigrationError

    do = DurableObjectStorage()
    migrate(do, load_bundle(shared_path("bundles", "basic-step3", "drizzle")))
    do.sql.exec("INSERT INTO users (name, age, email) VALUES ('a', 1, 'a@x')")
    with pytest.raises(MigrationError) as info:
        migrate(do, load_bundle(shared_path("bundles", "basic-step4", "drizzle")))
    assert str(info.value.cause) == (
        "NOT NULL constraint failed: __new_users.bio: SQLITE_CONSTRAINT "
        "(extended: SQLITE_CONSTRAINT_NOTNULL)"
    )
    assert info.value.tag == "0003_bio_not_null" and info.value.chunk == 2
