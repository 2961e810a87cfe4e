"""The workerd harness protocol, answered by the emulator.

``worker.mjs`` runs requests (``exec``, ``batch``, ``txn``, ``script``, ``migrate``, ``dump``,
``ctor``...) against real SQLite-backed DOs. :class:`EmulatedHarness` answers the same requests
with :class:`~pytest_dosqlite.storage.DurableObjectStorage` and drizzle's migrator re-implemented
in :mod:`pytest_dosqlite.migrator`, in the same JSON shape. Replaying the recordings of the real
runtime through it is how the emulator is proven to match production, answer for answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bundle import Bundle, Migration
from ..errors import (
    DurableObjectInternalError,
    DurableObjectResetError,
    MigrationError,
    SqlError,
)
from ..migrator import migrate
from ..storage import DurableObjectStorage
from .codec import BigInt, decode_binding, decode_text, js_binding

__all__ = ["EmulatedHarness", "bundle_from_js"]

Json = dict[str, Any]
SCHEMA_QUERY = (
    "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' "
    "ESCAPE '\\' ORDER BY type, name"
)
JOURNAL_QUERY = (
    "SELECT rowid, id, hash, created_at, typeof(id) AS id_type, typeof(created_at) AS "
    'created_at_type FROM "__drizzle_migrations" ORDER BY rowid'
)


class _Fatal(Exception):
    """The request fails (``stub.fetch`` rejects) with this message."""

    def __init__(self, message: str, name: str = "Error") -> None:
        super().__init__(message)
        self.message = message
        self.name = name


class _DeliberateThrow(Exception):
    pass


def bundle_from_js(journal: Mapping[str, Any], migrations: Mapping[str, Any]) -> Bundle:
    """The bundle a Worker passes to ``migrate(db, {journal, migrations})``."""
    ms: list[Migration] = []
    missing: list[str] = []
    for entry in journal.get("entries", []):
        idx = int(entry["idx"])
        key = f"m{idx:04d}"
        tag = str(entry.get("tag"))
        sql = migrations.get(key)
        if not sql:
            missing.append(tag)
            sql = ""
        ms.append(
            Migration(
                idx=idx,
                tag=tag,
                when=int(entry.get("when", 0)),
                key=key,
                sql=decode_text(sql) if not isinstance(sql, str) else sql,
                path=Path(f"{tag}.sql"),
                breakpoints=bool(entry.get("breakpoints", True)),
            )
        )
    return Bundle(
        root=Path("drizzle"),
        format="durable-sqlite",
        migrations=tuple(ms),
        missing=tuple(missing),
        drizzle_error=f"Missing migration: {missing[0]}" if missing else None,
    )


def _encode(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return {"$num": "NaN"}
        if math.isinf(value):
            return {"$num": "Infinity" if value > 0 else "-Infinity"}
        if value == 0 and math.copysign(1.0, value) < 0:
            return {"$num": "-0"}
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, bytes | bytearray):
        return {"$blob": bytes(value).hex()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


class _Thrown(SqlError):
    """An exec step's error thrown on (``propagate``), with the JS error's name."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


def _error(exc: BaseException) -> Json:
    if isinstance(exc, _Fatal):
        return {"ok": False, "error": exc.message, "errorName": exc.name}
    name = exc.name if isinstance(exc, _Thrown) else "Error"
    return {"ok": False, "error": str(exc), "errorName": name}


@dataclass
class _Object:
    storage: DurableObjectStorage
    seq: int = 0
    alive: bool = False
    ctor_log: list[Json] | None = None
    plans: list[Json] = field(default_factory=list)


class EmulatedHarness:
    """Serves the harness protocol (``request(do_name, action, body)``) from the emulator."""

    def __init__(self) -> None:
        self._objects: dict[str, _Object] = {}

    # --------------------------------------------------------------------- instances
    def _object(self, name: str) -> _Object:
        obj = self._objects.get(name)
        if obj is None:
            obj = self._objects[name] = _Object(DurableObjectStorage())
        return obj

    def restart(self) -> None:
        """The runtime restarts: every instance ends, data stays."""
        for obj in self._objects.values():
            if obj.alive:
                obj.storage.restart()
            obj.alive = False
            obj.seq = 0

    def _construct(self, obj: _Object) -> None:
        obj.seq += 1
        obj.ctor_log = None
        plan = obj.plans[obj.seq - 1] if obj.seq - 1 < len(obj.plans) else None
        if plan is None:
            obj.alive = True
            return
        if plan.get("syncThrow"):
            raise _Fatal(str(plan["syncThrow"]).replace("#", f"#{obj.seq}", 1))
        obj.ctor_log = []
        log = obj.ctor_log
        try:
            obj.storage.block_concurrency_while(
                lambda: self._steps(obj, plan.get("steps") or [], log, in_ctor=True)
            )
        except _Fatal:
            raise
        except (_DeliberateThrow, SqlError, MigrationError) as exc:
            raise _Fatal(*_fatal_parts(exc)) from None
        obj.alive = True

    # --------------------------------------------------------------------- protocol
    def request(self, do_name: str, action: str, body: Mapping[str, Any]) -> Json:
        obj = self._object(do_name)
        if action == "ctor":
            obj.plans = list(body.get("plans") or [])
            return {"ok": True}
        try:
            if not obj.alive:
                self._construct(obj)
        except _Fatal as exc:
            obj.alive = False
            return {"fatal": True, **_error(exc)}
        meta: Json = {"construction": obj.seq}
        if obj.ctor_log is not None:
            meta["ctor"] = obj.ctor_log
        steps = self._action_steps(action, body)
        log: list[Json] = []
        storage = obj.storage
        try:
            with storage.event():
                try:
                    self._steps(obj, steps, log, in_ctor=False)
                except _DeliberateThrow as exc:
                    raise _Fatal(str(exc)) from None
        except DurableObjectResetError as exc:
            obj.alive = False
            return {"fatal": True, "ok": False, "error": str(exc), "errorName": "Error"}
        except _Fatal as exc:
            return {"fatal": True, **_error(exc)}
        if action == "dump":
            schema, journal = log
            out: Json = {**meta, "ok": schema["ok"]}
            out["schema"] = schema["rows"] if schema["ok"] else None
            if not schema["ok"]:
                out["schemaError"] = schema["error"]
            out["journal"] = journal["rows"] if journal["ok"] else None
            if not journal["ok"]:
                out["journalError"] = journal["error"]
            return out
        return {**meta, "results": log}

    def _action_steps(self, action: str, body: Mapping[str, Any]) -> list[Json]:
        if action == "exec":
            return [{"op": "exec", **{k: body.get(k) for k in ("sql", "bindings", "mode")}}]
        if action == "batch":
            return [{"op": "exec", **s} for s in body.get("statements") or []]
        if action == "txn":
            propagate = body.get("catchErrors") is False
            return [
                *(body.get("before") or []),
                {
                    "op": "txn",
                    "throw": body.get("throw") or False,
                    "steps": [
                        {"op": "exec", "propagate": propagate, **s}
                        for s in body.get("statements") or []
                    ],
                },
                *(body.get("after") or []),
            ]
        if action == "migrate":
            return [
                *(body.get("before") or []),
                {"op": "migrate", "journal": body["journal"], "migrations": body["migrations"]},
                *([{"op": "sleep", "ms": 0}] if body.get("awaitBeforeAfter") else []),
                *(body.get("after") or []),
            ]
        if action == "script":
            return list(body.get("steps") or [])
        if action == "dump":
            return [
                {"op": "exec", "sql": SCHEMA_QUERY, "mode": "objects"},
                {"op": "exec", "sql": JOURNAL_QUERY, "mode": "objects"},
            ]
        if action == "size":
            return [{"op": "size"}]
        raise ValueError(f"harness: unknown action {action}")

    # --------------------------------------------------------------------- steps
    def _exec(self, storage: DurableObjectStorage, step: Mapping[str, Any]) -> Json:
        sql = decode_text(step["sql"])
        raw = [decode_binding(b) for b in step.get("bindings") or []]
        if any(isinstance(b, BigInt) for b in raw):
            return {
                "ok": False,
                "error": "Cannot convert a BigInt value to a number",
                "errorName": "TypeError",
            }
        bindings = [js_binding(b) for b in raw]
        try:
            cursor = storage.sql.exec(sql, *bindings)
            mode = step.get("mode") or "raw"
            rows: Any
            if mode == "raw":
                rows = cursor.raw().to_array()
            elif mode == "objects":
                rows = cursor.to_array()
            elif mode == "one":
                rows = [cursor.one()]
            else:
                rows = None
            return {
                "ok": True,
                "columnNames": cursor.column_names,
                "rows": None if rows is None else _encode(rows),
                "rowsRead": cursor.rows_read,
                "rowsWritten": cursor.rows_written,
            }
        except SqlError as exc:
            return {"ok": False, "error": str(exc), "errorName": "Error"}

    def _sync_step(self, obj: _Object, step: Mapping[str, Any], log: list[Json]) -> None:
        storage = obj.storage
        op = step["op"]
        if op == "exec":
            result = self._exec(storage, step)
            log.append(result)
            if not result["ok"] and step.get("propagate"):
                raise _Thrown(result["error"], result.get("errorName") or "Error")
            return
        if op == "txn":
            inner: list[Json] = []
            entry: Json = {"op": "txn", "steps": inner}
            log.append(entry)

            def body() -> str:
                for s in step.get("steps") or []:
                    self._sync_step(obj, s, inner)
                if step.get("throw"):
                    thrown = step["throw"]
                    raise _DeliberateThrow(
                        "deliberate throw in transactionSync" if thrown is True else str(thrown)
                    )
                return "returned"

            try:
                entry["value"] = storage.transaction_sync(body)
                entry["ok"] = True
            except DurableObjectResetError:
                raise
            except (SqlError, _DeliberateThrow) as exc:
                entry.update(_error(exc))
                if step.get("propagate"):
                    raise
            return
        if op == "size":
            log.append({"op": "size", "ok": True, "databaseSize": storage.sql.database_size})
            return
        if op == "throw":
            raise _DeliberateThrow(str(step.get("message") or "handler boom"))
        raise ValueError(f"harness: step {op} cannot run synchronously")

    def _steps(self, obj: _Object, steps: list[Json], log: list[Json], *, in_ctor: bool) -> None:
        storage = obj.storage
        for step in steps:
            op = step["op"]
            if op == "sleep":
                storage.end_turn()
                log.append({"op": "sleep", "ok": True})
            elif op == "microtask":
                log.append({"op": "microtask", "ok": True})
            elif op == "migrate":
                entry: Json = {"op": "migrate"}
                log.append(entry)
                try:
                    migrate(storage, bundle_from_js(step["journal"], step["migrations"]))
                    entry["ok"] = True
                except MigrationError as exc:
                    if isinstance(exc.cause, DurableObjectInternalError):
                        raise exc.cause from None  # workerd fails the whole request
                    name, message = _drizzle_error(exc)
                    entry.update(ok=False, error=f"{name}: {message}", errorName=name)
                    if step.get("propagate") or in_ctor:
                        raise _Fatal(*_fatal_parts(exc)) from None
            elif op == "asynctxn":
                inner: list[Json] = []
                entry = {"op": "asynctxn", "steps": inner}
                log.append(entry)
                try:
                    entry["value"] = self._async_txn(obj, step, inner, in_ctor)
                    entry["ok"] = True
                except DurableObjectResetError:
                    raise
                except (SqlError, _DeliberateThrow) as exc:
                    entry.update(_error(exc))
                    if step.get("propagate"):
                        raise
            elif op == "kvput":
                storage.put(str(step["key"]), decode_binding(step.get("value")))
                log.append({"op": "kvput", "ok": True})
            elif op == "alarm":
                storage.set_alarm(3_600_000 + float(step.get("ms") or 0))
                log.append({"op": "alarm", "ok": True})
            elif op == "bcw":
                inner = []
                entry = {"op": "bcw", "steps": inner}
                log.append(entry)
                try:
                    bcw_steps: list[Json] = list(step.get("steps") or [])
                    bcw_log = inner

                    def bcw_body(
                        bcw_steps: list[Json] = bcw_steps, bcw_log: list[Json] = bcw_log
                    ) -> None:
                        self._steps(obj, bcw_steps, bcw_log, in_ctor=True)

                    storage.block_concurrency_while(bcw_body)
                    entry["ok"] = True
                except _Fatal:
                    obj.alive = False
                    raise
                except (_DeliberateThrow, SqlError, MigrationError) as exc:
                    # a throw out of blockConcurrencyWhile breaks the object: the request
                    # fails whatever catches it, and the next one constructs a new instance
                    obj.alive = False
                    raise _Fatal(*_fatal_parts(exc)) from None
            else:
                self._sync_step(obj, step, log)

    def _async_txn(
        self, obj: _Object, step: Mapping[str, Any], inner: list[Json], in_ctor: bool
    ) -> str:
        storage = obj.storage

        class _Rollback(Exception):
            pass

        def body() -> str:
            self._steps(obj, step.get("steps") or [], inner, in_ctor=in_ctor)
            if step.get("throw"):
                thrown = step["throw"]
                raise _DeliberateThrow(
                    "deliberate throw in transaction" if thrown is True else str(thrown)
                )
            if step.get("rollback"):
                raise _Rollback
            return "returned"

        try:
            return storage.transaction_sync(body)
        except _Rollback:
            return "returned"


def _drizzle_error(exc: MigrationError) -> tuple[str, str]:
    """(name, message) of the error drizzle's migrate() rejects with."""
    text = exc.drizzle_message
    if text.startswith("DrizzleError: "):
        return "DrizzleError", text[len("DrizzleError: ") :]
    return "Error", text


def _fatal_parts(exc: BaseException) -> tuple[str, str]:
    """What a caller sees when this escapes a constructor: ``Name: message`` unless ``Error``."""
    if isinstance(exc, MigrationError):
        name, message = _drizzle_error(exc)
        return (message if name == "Error" else f"{name}: {message}"), "Error"
    return str(exc), "Error"
