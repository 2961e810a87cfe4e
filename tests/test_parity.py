"""Emulator vs real workerd on every shared bundle: the same schema, ledger, data and errors.

Each bundle of ``../shared/bundles`` and ``../shared/corpus`` is migrated by the emulator and by
drizzle-orm's real ``migrate()`` inside workerd, twice: on a fresh DO (one run applies
everything) and incrementally (versions 1..n applied in turn to ONE DO, the way a deployed DO
upgrades). After every step ``sqlite_master``, the ``__drizzle_migrations`` ledger and (after
the last step) every table's rows must be identical. When a run fails, drizzle only says
``DrizzleError: Rollback``; drizzle's statement sequence is then replayed in one
``transactionSync`` in workerd, statement by statement, and the first failing statement and its
SQLite message must be exactly the emulator's ``MigrationError`` (migration, chunk, cause).

Skipped without ``../shared``; marked ``workerd`` (skipped only when ``node`` is absent). Any
difference is an emulator bug. ``.notes/parity.md`` lists what cannot be compared and why.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import SHARED, shared_path
from pytest_dosqlite import Bundle, DurableObjectStorage, MigrationError, load_bundle, migrate
from pytest_dosqlite.backends import harness_bundle, remote_statements
from pytest_dosqlite.sqltext import split
from pytest_dosqlite.workerd import WorkerdBackend

pytestmark = [
    pytest.mark.workerd,
    pytest.mark.shared,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH"),
]

SCHEMA_Q = (
    "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' "
    "ESCAPE '\\' ORDER BY type, name"
)
JOURNAL_Q = (
    "SELECT rowid, id, hash, created_at, typeof(id) AS id_type, typeof(created_at) AS "
    'created_at_type FROM "__drizzle_migrations" ORDER BY rowid'
)


def _roots() -> list[str]:
    """Every bundle folder under ../shared/bundles and ../shared/corpus (empty without it)."""
    found: set[Path] = set()
    for top in ("bundles", "corpus"):
        base = SHARED / top
        if base.is_dir():
            found |= {j.parent.parent for j in base.rglob("meta/_journal.json")}
            found |= {j.parent for j in base.rglob("migrations.js")}
    return sorted(str(p.relative_to(SHARED)) for p in found)


ROOTS = _roots()


@pytest.fixture(scope="module")
def wb() -> Iterator[WorkerdBackend]:
    with WorkerdBackend(progress=False) as backend:
        yield backend


@dataclass
class State:
    """What a DO holds after a migrate() call, comparable across backends."""

    error: str | None
    schema: list[dict[str, Any]]
    journal: list[dict[str, Any]] | None
    data: dict[str, list[str]] = field(default_factory=dict)


def _value(v: Any) -> Any:
    """JS numbers: an integral REAL and an INTEGER are the same number to the caller."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return v
    return ("num", float(v)) if not (isinstance(v, float) and math.isnan(v)) else ("nan",)


def _tables(schema: list[dict[str, Any]]) -> list[str]:
    return [
        r["name"]
        for r in schema
        if r["type"] == "table" and not str(r["sql"] or "").upper().startswith("CREATE VIRTUAL")
    ]


def _rows(rows: list[list[Any]]) -> list[str]:
    return sorted(repr([_value(v) for v in row]) for row in rows)


def _emulated_state(do: DurableObjectStorage, error: str | None, data: bool) -> State:
    schema = do.sql.exec(SCHEMA_Q).to_array()
    names = {r["name"] for r in schema}
    journal = do.sql.exec(JOURNAL_Q).to_array() if "__drizzle_migrations" in names else None
    state = State(error, schema, journal)
    if data:
        for t in _tables(schema):
            quoted = '"' + t.replace('"', '""') + '"'
            state.data[t] = _rows(do.sql.exec(f"SELECT * FROM {quoted}").raw().to_array())
    return state


def _real_state(wb: WorkerdBackend, name: str, error: str | None, data: bool) -> State:
    dump = wb.dump(name)
    state = State(error, dump["schema"], dump["journal"])
    if data:
        for t in _tables(dump["schema"]):
            quoted = '"' + t.replace('"', '""') + '"'
            answer = wb.exec(name, f"SELECT * FROM {quoted}")
            assert answer.get("ok"), answer
            state.data[t] = _rows(answer["rows"])
    return state


def _real_message(answer: dict[str, Any]) -> str | None:
    if answer.get("ok"):
        return None
    message = str(answer.get("error"))
    if answer.get("errorName") == "Error" and message.startswith("Error: "):
        message = message[len("Error: ") :]  # a plain Error reaches the caller bare
    return message


def _emulate(do: DurableObjectStorage, bundle: Bundle) -> MigrationError | None:
    try:
        migrate(do, bundle)
    except MigrationError as exc:
        return exc
    return None


def _same_failure(bundle: Bundle, emulated: MigrationError, real: str) -> None:
    """drizzle's own message: the emulator's ``drizzle_message`` exactly (see parity.md)."""
    if bundle.format == "journal" and emulated.cause is None and real.startswith("Missing"):
        # a journal entry without its .sql: the generic (D1/libSQL) migrator the emulator
        # follows for journal bundles names the file; the durable-sqlite migrator inside the DO
        # names the entry. Both refuse before touching the database.
        tag = real.removeprefix("Missing migration: ")
        assert f"{tag}.sql" in emulated.drizzle_message, (emulated.drizzle_message, real)
        return
    assert real == emulated.drizzle_message


def _statement_labels(bundle: Bundle) -> list[tuple[str | None, int | None]]:
    """(migration tag, chunk) of each statement of :func:`remote_statements`."""
    labels: list[tuple[str | None, int | None]] = [(None, None), (None, None)]
    for m in bundle.migrations:
        labels.extend((m.tag, i) for i in range(len(m.chunks)))
        labels.append((m.tag, None))
    return labels


def _first_real_failure(
    wb: WorkerdBackend, name: str, bundle: Bundle
) -> tuple[tuple[str | None, int | None], str, str]:
    """Run drizzle's statements one by one inside ONE transactionSync; the first error.

    Returns ``((tag, chunk), statement, message)``: the failing chunk is then re-run split into
    its single statements (SQLite's own boundaries) to name the exact statement.
    """
    statements = remote_statements(bundle)
    answer = wb.txn(f"{name}/chunks", statements)
    steps = answer["results"][0]["steps"]
    labels = _statement_labels(bundle)
    assert len(steps) == len(labels) == len(statements)
    at = next((i for i, step in enumerate(steps) if not step["ok"]), None)
    assert at is not None, "drizzle's migrate() failed in workerd, but no statement fails"
    pieces = split(statements[at][0])
    answer = wb.txn(f"{name}/pieces", [*statements[:at], *((p.text, []) for p in pieces)])
    single = answer["results"][0]["steps"][at:]
    first = next(i for i, step in enumerate(single) if not step["ok"])
    assert single[first]["error"] == steps[at]["error"]  # alone, the same error
    return labels[at], pieces[first].text.strip(), str(steps[at]["error"])


def test_parity_covers_every_shared_bundle() -> None:
    shared_path("corpus")
    assert len(ROOTS) >= 20, ROOTS
    assert any(r.startswith("bundles/") for r in ROOTS)


@pytest.mark.parametrize("rel", ROOTS, ids=ROOTS)
def test_bundle_parity(rel: str, wb: WorkerdBackend) -> None:
    bundle = load_bundle(shared_path(*rel.split("/")))
    if bundle.format == "v1":
        pytest.skip("drizzle-kit v1 bundle: the workerd harness pins drizzle-orm 0.45.4")
    name = f"parity/{rel}"

    # 1. a fresh DO migrated in one run
    local = DurableObjectStorage()
    emulated = _emulate(local, bundle)
    journal, migrations = harness_bundle(bundle)
    real = _real_message(wb.migrate(f"{name}/fresh", journal, migrations))
    assert (real is None) == (emulated is None), (real, emulated)
    want = _emulated_state(local, emulated and emulated.drizzle_message, data=True)
    got = _real_state(wb, f"{name}/fresh", emulated and emulated.drizzle_message, data=True)
    assert got.schema == want.schema
    assert got.journal == want.journal
    assert got.data == want.data
    if emulated is not None:
        assert real is not None
        _same_failure(bundle, emulated, real)
        if emulated.cause is not None:  # a statement failed: compare it and SQLite's message
            where, statement, message = _first_real_failure(wb, name, bundle)
            assert where == (emulated.tag, emulated.chunk)
            assert statement == emulated.statement
            assert message == str(emulated.cause)  # byte for byte

    # 2. the same versions applied in turn to one DO (a deployed DO upgrading)
    upgraded = DurableObjectStorage()
    for k in range(1, len(bundle.migrations) + 1):
        prefix = bundle.prefix(k)
        emulated = _emulate(upgraded, prefix)
        real = _real_message(wb.migrate(f"{name}/upgrade", *harness_bundle(prefix)))
        assert (real is None) == (emulated is None), (k, real, emulated)
        last = k == len(bundle.migrations) or emulated is not None
        want = _emulated_state(upgraded, None, data=last)
        got = _real_state(wb, f"{name}/upgrade", None, data=last)
        assert (got.schema, got.journal) == (want.schema, want.journal), f"after v{k}"
        assert got.data == want.data, f"after v{k}"
        if emulated is not None:
            assert real is not None
            _same_failure(prefix, emulated, real)
            break
