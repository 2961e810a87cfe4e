"""The DO emulator: ``ctx.storage`` of a SQLite-backed Durable Object, in Python.

It reproduces what decides whether a migration works on a real DO: SQLite 3.54.1 (APSW bundles
the same version production runs), foreign keys on by default, workerd's limits and authorizer,
its ``exec`` loop (several statements, only the last one returning rows or taking bindings, an
empty remainder is an error), its error messages byte for byte, JS value binding, and the
implicit transaction every event runs in, with ``transactionSync`` as a savepoint inside it. That
last point is why ``PRAGMA foreign_keys=OFF`` is a no-op inside drizzle's migrator.
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import apsw

from . import runtime as rt
from .errors import (
    DurableObjectInternalError,
    DurableObjectResetError,
    EmulatorLimitation,
    SqlError,
)
from .sqltext import Piece, Token, split, tokens

__all__ = ["Cursor", "DurableObjectStorage", "RawCursor", "SqlStorage", "sqlite_version"]

T = TypeVar("T")
Row = tuple[Any, ...]

_JS_SAFE = 2**53
# internal statements carry a nonce so a user's identical text can never hit their cached,
# already-authorized prepared statement
_NONCE = secrets.token_hex(6)
_BEGIN = f"BEGIN IMMEDIATE /*{_NONCE}*/"
_COMMIT = f"COMMIT /*{_NONCE}*/"
_ROLLBACK = f"ROLLBACK /*{_NONCE}*/"

_A = apsw
#: the hidden tables workerd creates on first use of the KV API and of alarms (exact DDL)
_KV_DDL = (
    "CREATE TABLE IF NOT EXISTS _cf_KV (\n        key TEXT PRIMARY KEY,\n        value BLOB\n"
    "      ) WITHOUT ROWID"
)
_METADATA_DDL = (
    "CREATE TABLE IF NOT EXISTS _cf_METADATA (\n        key INTEGER PRIMARY KEY,\n"
    "        value BLOB\n      )"
)
_OK = apsw.SQLITE_OK
_DENY = apsw.SQLITE_DENY
_PLAN_CACHE: dict[str, tuple[_Step, ...]] = {}
_PLAN_CACHE_MAX = 4096


def _is_data_version(text: str) -> bool:
    """``PRAGMA [main.]data_version`` (comments and quotes anywhere), the plain query form."""
    if "data_version" not in text.lower():
        return False
    t = [x for x in tokens(text) if x.text != ";"]
    if len(t) > 2 and t[0].up == "PRAGMA" and t[2].text == ".":
        if t[1].value.lower() != "main":
            return False
        t = [t[0], *t[3:]]
    return len(t) == 2 and t[0].up == "PRAGMA" and t[1].value.lower() == "data_version"


#: the flag pragmas whose setting lives in the connection, not in the database
_CONNECTION_FLAGS = frozenset(
    [
        "case_sensitive_like",
        "foreign_keys",
        "defer_foreign_keys",
        "ignore_check_constraints",
        "legacy_alter_table",
        "recursive_triggers",
        "reverse_unordered_selects",
    ]
)


def _statistics(text: str) -> bool:
    """ANALYZE or PRAGMA optimize (also under EXPLAIN, after empty statements or comments)."""
    low = text.lower()
    if "analyze" not in low and "optimize" not in low:
        return False
    t = _statement_tokens(text)
    if t and t[0].up == "EXPLAIN":
        return False  # EXPLAIN runs no ANALYZE (and a flag pragma is seen by its own check)
    if t and t[0].up == "ANALYZE":
        return True
    return len(t) > 1 and t[0].up == "PRAGMA" and "optimize" in {x.value.lower() for x in t[1:4]}


def _is_ddl(text: str) -> bool:
    """CREATE, DROP or ALTER (the statement changes the schema)."""
    t = _statement_tokens(text)
    return bool(t) and t[0].up in ("CREATE", "DROP", "ALTER")


_READS: dict[str, bool] = {}


def _reads_database(do: DurableObjectStorage, text: str, values: list[object] | None) -> bool:
    """Whether the statement ``text`` reads the database (its program opens a transaction on
    it): SQLite counts only those against a DROP. Asked of SQLite with EXPLAIN, once per
    text; a statement that no longer prepares read a table that has changed since."""
    known = _READS.get(text)
    if known is None:
        try:
            ops = do._internal(f"EXPLAIN {text}", tuple(values or ()))
            known = any(row[1] == "Transaction" for row in ops)
        except apsw.Error:
            known = True
        if len(_READS) >= _PLAN_CACHE_MAX:
            _READS.clear()
        _READS[text] = known
    return known


def _drops(text: str) -> bool:
    """DROP TABLE / DROP INDEX (on the statement's first words)."""
    if "drop" not in text.lower():
        return False
    t = _statement_tokens(text)
    return len(t) > 1 and t[0].up == "DROP" and t[1].up in ("TABLE", "INDEX")


def _changes_connection(text: str) -> bool:
    """Statements that change what no undo log sees: statistics (ANALYZE, ``PRAGMA
    optimize``) and the connection's settings (a flag pragma set, also under EXPLAIN, which
    SQLite applies while preparing); a DO that ran one is not recycled (see
    :mod:`pytest_dosqlite.recycling`). Decided on the statement's tokens (comments may sit
    anywhere), once per text, so a cached statement counts too."""
    low = text.lower()
    if "pragma" not in low and "analyze" not in low:
        return False
    t = _statement_tokens(text)
    i = 0
    if t and t[0].up == "EXPLAIN":
        i = 3 if len(t) > 2 and t[1].up == "QUERY" and t[2].up == "PLAN" else 1
    if i >= len(t):
        return False
    if t[i].up == "ANALYZE":
        return True
    if t[i].up != "PRAGMA" or i + 1 >= len(t):
        return False
    j = i + 1
    if j + 2 < len(t) and t[j + 1].text == ".":
        j += 2
    name = t[j].value.lower()
    if name == "optimize":
        return True
    return name in _CONNECTION_FLAGS and j + 1 < len(t) and t[j + 1].text in ("=", "(")


def _statement_tokens(text: str) -> list[Token]:
    """The tokens of a statement piece, without the empty statements (``;``) before it."""
    t = tokens(text)
    i = 0
    while i < len(t) and t[i].text == ";":
        i += 1
    return t[i:]


def _renames_to_reserved(text: str) -> bool:
    """workerd (B/C) also checks the RENAME TO destination against the _cf_ prefix.

    On the statement's tokens, as workerd checks the parsed name: a text search refused the
    words in a string or a comment and missed ``RENAME TO /* c */ _cf_x``."""
    if "rename" not in text.lower():
        return False
    t = _statement_tokens(text)
    if len(t) < 6 or t[0].up != "ALTER" or t[1].up != "TABLE":
        return False
    for i in range(3, len(t) - 2):
        if t[i].up == "RENAME" and t[i + 1].up == "TO":
            target = t[i + 2]
            if target.kind not in ("word", "qid", "str"):
                return False
            return not rt.is_allowed_name(_unquoted(target.text))
    return False


def _unquoted(name: str) -> str:
    if name[:1] in ('"', "`", "'") and len(name) >= 2 and name[-1] == name[0]:
        return name[1:-1].replace(name[0] * 2, name[0])
    if name[:1] == "[" and name.endswith("]"):
        return name[1:-1]
    return name


def sqlite_version() -> str:
    """The SQLite version the emulator runs (the DO runtime's own, not the system's)."""
    return str(apsw.sqlite_lib_version())


#: how long a file-backed DO waits for another process's write lock, in seconds
LOCK_TIMEOUT = 60.0
_LOCK_POLL = 0.001


def _wait_for_lock(attempts: int) -> bool:
    """Busy handler of file-backed DOs: poll the lock every millisecond, up to LOCK_TIMEOUT.

    SQLite's own busy timeout backs off to 100 ms sleeps, so starts racing for one database
    (the fleet checks) mostly sleep after the holder is done; a DO has one writer anyway.
    """
    if attempts * _LOCK_POLL >= LOCK_TIMEOUT:
        return False
    time.sleep(_LOCK_POLL)
    return True


def statement_of(item: Any) -> tuple[str, tuple[Any, ...]]:
    """One statement of :meth:`DurableObjectStorage.batch` or ``transaction``: SQL text, or
    ``(sql, bindings)`` with the bindings as a list or tuple or following the SQL."""
    if isinstance(item, str):
        return item, ()
    sql, *rest = item
    bindings = rest[0] if len(rest) == 1 and isinstance(rest[0], list | tuple) else rest
    return str(sql), tuple(bindings)


@dataclass(frozen=True, slots=True)
class _Step:
    """One statement of an ``exec`` text, with what workerd decides from its text alone."""

    piece: Piece
    #: a RENAME TO a reserved ``_cf_`` name (workerd refuses it; SQLite's authorizer is not asked)
    refused: bool
    #: ``PRAGMA data_version``, whose value a DO reports one higher than plain SQLite
    data_version: bool
    #: ANALYZE, ``PRAGMA optimize`` or a pragma set (see ``_changes_connection``)
    changes_connection: bool
    #: DROP TABLE or DROP INDEX, which SQLite refuses while a read statement runs
    drops: bool
    #: ANALYZE or PRAGMA optimize, which write the statistics tables
    statistics: bool
    #: CREATE, DROP or ALTER: the schema changes
    ddl: bool


def _plan(sql: str) -> tuple[_Step, ...]:
    """The statements of ``sql`` as workerd runs them, computed once per distinct text."""
    steps = _PLAN_CACHE.get(sql)
    if steps is None:
        steps = tuple(
            _Step(
                p,
                _renames_to_reserved(p.text),
                _is_data_version(p.text),
                _changes_connection(p.text),
                _drops(p.text),
                _statistics(p.text),
                _is_ddl(p.text),
            )
            for p in split(sql)
        )
        if len(_PLAN_CACHE) >= _PLAN_CACHE_MAX:
            _PLAN_CACHE.clear()
        _PLAN_CACHE[sql] = steps
    return steps


#: workerd's error for a BigInt binding (a Python int no double holds stands for one)
_BIGINT_MESSAGE = "Cannot convert a BigInt value to a number"


def js_number_string(value: float) -> str:
    """JS ``String(number)``: the shortest digits that read back, in JS's notation
    (``1e+21``, ``1.5e-7``, ``1152921504606847000``, ``-0`` as ``0``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    from decimal import Decimal

    sign = "-" if value < 0 else ""
    # repr() gives the shortest digits that read back, as JS does: value = 0.<digits> x 10**n
    _, ds, exp = Decimal(repr(abs(value))).as_tuple()
    n = len(ds) + int(exp)
    digits = "".join(map(str, ds)).rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{head}e{'+' if e >= 0 else '-'}{abs(e)}"


def js_string(value: object, *, in_array: bool = False) -> str:
    """JS ``String(value)`` of the JS value a Python value stands for (an array joins its
    elements with commas, null and undefined as empty); other Python objects: ``str()``."""
    if value is None:
        return "" if in_array else "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return js_number_string(float(value))
        except OverflowError:
            return str(value)  # a BigInt
    if isinstance(value, float):
        return js_number_string(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, list | tuple):
        return ",".join(js_string(v, in_array=True) for v in value)
    if isinstance(value, bytes | bytearray | memoryview):
        return ",".join(str(b) for b in bytes(value))  # a Uint8Array
    return str(value)


def _kv_key(key: object) -> str:
    """A KV key as workerd takes it: ``String(key)``; an object is the ``put(entries)`` form."""
    if isinstance(key, str):
        return key
    if isinstance(key, dict | list | tuple):
        raise TypeError(
            "put(entries)/get(keys) with an object or a list of keys is not emulated; pass one "
            "string key"
        )
    return js_string(key)


def to_js_binding(value: object) -> object:
    """Bind a Python value the way workerd binds the JS value it stands for.

    None, bools, numbers, strings and bytes are JS's own; a dict is an object and a list an
    array (bound as their ``String()``); the workerd codec's stand-ins (``Undefined``, ``Date``,
    ``BigInt``...) as the JS values; any other object as its ``str()`` (the workerd backend
    sends the same text).
    """
    __tracebackhide__ = True  # pytest: an error of the DO's API shows at the user's line
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise SqlError(_BIGINT_MESSAGE) from None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list | tuple):
        return js_string(value)
    if type(value).__module__ == "pytest_dosqlite.workerd.codec":
        from .workerd.codec import BigInt, js_binding

        if isinstance(value, BigInt):
            raise SqlError(_BIGINT_MESSAGE)
        return to_js_binding(js_binding(value))
    return str(value)


def _to_js_value(value: object) -> object:
    """A result value as the JS caller sees it (integers are doubles)."""
    if type(value) is int and not -_JS_SAFE <= value <= _JS_SAFE:
        return int(float(value))
    return value


def format_error(exc: apsw.Error) -> str:
    """workerd's message: ``<errmsg>[ at offset N]: <CODE>[ (extended: <EXT>)]``."""
    msg = str(exc.args[0]) if exc.args else str(exc)
    offset = getattr(exc, "error_offset", -1)
    result = getattr(exc, "result", None)
    ext = getattr(exc, "extendedresult", None)
    code = apsw.mapping_result_codes.get(result, "SQLITE_ERROR") if result is not None else None
    if code is None:
        return msg
    text = msg
    if isinstance(offset, int) and offset >= 0:
        text += f" at offset {offset}"
    text += f": {code}"
    if ext is not None and ext != result:
        ext_name = apsw.mapping_extended_result_codes.get(ext)
        if ext_name:
            text += f" (extended: {ext_name})"
    return text


def _in_default(text: str, function: str) -> bool:
    """``function`` is called in a column's DEFAULT clause of ``text``."""
    if "default" not in text.lower():
        return False
    t = tokens(text)
    for i, tok in enumerate(t):
        if tok.up != "DEFAULT":
            continue
        j = i + 1
        while j < len(t) and t[j].text == "(":
            j += 1
        if j + 1 < len(t) and t[j].value.lower() == function and t[j + 1].text == "(":
            return True
    return False


def _sql_error(exc: apsw.Error, note: tuple[str, str] | None = None, text: str = "") -> SqlError:
    msg = str(exc.args[0]) if exc.args else str(exc)
    result = getattr(exc, "result", None)
    if note is not None and note[0] == "txn" and result == apsw.SQLITE_AUTH:
        # (a syntax error after the authorizer saw BEGIN is still SQLite's syntax error)
        return SqlError(rt.TXN_MESSAGE)
    if note is not None and note[0] == "nosuch-table" and result == apsw.SQLITE_AUTH:
        return SqlError(f"no such table: {note[1]}: SQLITE_ERROR", code="SQLITE_ERROR")
    if note is not None and note[0] == "nosuch" and not _in_default(text, note[1]):
        # workerd's SQLite lacks the function: it fails to resolve it before asking the
        # authorizer, except in a DEFAULT, which is not resolved when the table is created
        prefix = "not authorized to use function: "
        if msg.startswith(prefix):
            exc.args = ("no such function: " + msg[len(prefix) :],)
            msg = exc.args[0]
    ext = getattr(exc, "extendedresult", None)
    offset = getattr(exc, "error_offset", -1)
    code = apsw.mapping_result_codes.get(result) if result is not None else None
    ext_name = apsw.mapping_extended_result_codes.get(ext) if ext not in (None, result) else None
    return SqlError(
        format_error(exc),
        code=str(code) if code is not None else None,
        extended=str(ext_name) if ext_name is not None else None,
        offset=offset if isinstance(offset, int) and offset >= 0 else None,
        sqlite_message=msg,
    )


class RawCursor:
    """``cursor.raw()``: rows as lists, with ``to_array()``."""

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor

    def __iter__(self) -> Iterator[list[Any]]:
        while True:
            row = self._cursor._take()
            if row is None:
                return
            yield list(row)

    def to_array(self) -> list[list[Any]]:
        return list(self)


class Cursor:
    """What ``sql.exec`` returns: the last statement's rows, consumed once."""

    def __init__(
        self, column_names: list[str], rows: list[Row], rows_read: int, rows_written: int
    ) -> None:
        self.column_names = column_names
        self._rows = rows
        self._pos = 0
        self._rows_read = rows_read
        self._rows_written = rows_written
        #: the DO whose statement this cursor keeps running until its rows are read to the end:
        #: unread RETURNING rows hold the transaction open (see
        #: :meth:`DurableObjectStorage._check_finishable`), unread rows of a read lock the
        #: tables against DROP (see :meth:`DurableObjectStorage._locked_by_readers`)
        self._holds: DurableObjectStorage | None = None

    def _done(self) -> None:
        holder, self._holds = self._holds, None
        if holder is not None:
            holder._unread.pop(id(self), None)
            holder._readers.pop(id(self), None)

    def _take(self) -> Row | None:
        if self._pos >= len(self._rows):
            if self._holds is not None:
                self._done()
            return None
        row = self._rows[self._pos]
        self._pos += 1
        return row

    def _as_object(self, row: Row) -> dict[str, Any]:
        return dict(zip(self.column_names, row, strict=False))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            row = self._take()
            if row is None:
                return
            yield self._as_object(row)

    def __next__(self) -> dict[str, Any]:
        row = self._take()
        if row is None:
            raise StopIteration
        return self._as_object(row)

    def to_array(self) -> list[dict[str, Any]]:
        """Remaining rows as objects (a duplicate column name keeps the last value)."""
        return list(self)

    def raw(self) -> RawCursor:
        return RawCursor(self)

    def one(self) -> dict[str, Any]:
        __tracebackhide__ = True
        remaining = len(self._rows) - self._pos
        self._done()  # one() reads to the end, or fails and resets the statement
        if remaining == 0:
            raise SqlError(rt.ONE_NO_RESULTS_MESSAGE)
        if remaining > 1:
            self._pos = len(self._rows)  # workerd stepped past the second row: nothing is left
            raise SqlError(rt.ONE_MANY_RESULTS_MESSAGE)
        row = self._take()
        assert row is not None
        return self._as_object(row)

    @property
    def rows_read(self) -> int:
        """Rows read so far (0 until the cursor is consumed, as in workerd; approximate)."""
        return self._rows_read if self._pos >= len(self._rows) else 0

    @property
    def rows_written(self) -> int:
        return self._rows_written if self._pos >= len(self._rows) else 0


class SqlStorage:
    """``ctx.storage.sql``."""

    def __init__(self, storage: DurableObjectStorage) -> None:
        self._storage = storage

    def exec(self, query: str, *bindings: object) -> Cursor:
        """Run one or more ``;``-separated statements, as workerd's ``sql.exec`` does."""
        __tracebackhide__ = True
        return self._storage._exec(query, bindings)

    @property
    def database_size(self) -> int:
        """``(page_count - freelist_count) * page_size``, as workerd reports it."""
        return self._storage._database_size()


def _split_pages(image: bytes, previous: tuple[bytes, ...] = ()) -> tuple[bytes, ...]:
    """``image`` cut into database pages, sharing the pages equal to ``previous``'s."""
    if len(image) < 100:
        return (image,) if image else ()
    size = int.from_bytes(image[16:18], "big")
    size = 65536 if size == 1 else size
    out: list[bytes] = []
    known = len(previous)
    for i, start in enumerate(range(0, len(image), size)):
        page = image[start : start + size]  # bytes == bytes is a memcmp (memoryview's is not)
        out.append(previous[i] if i < known and previous[i] == page else page)
    return tuple(out)


class DurableObjectStorage:
    """A fresh SQLite-backed DO storage, in memory or backed by a file.

    ``DurableObjectStorage()`` is empty and in memory; ``DurableObjectStorage(path)`` opens (or
    creates) a database file, which other processes may open too (for restart and crash tests).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, image: bytes | None = None):
        self._init_state(path)
        self._open(image)
        self.sql = SqlStorage(self)

    def _init_state(self, path: str | os.PathLike[str] | None) -> None:
        self.runtime = rt.RUNTIME
        self.path = Path(path) if path is not None else None
        self._trusted = False
        self._auth_note: tuple[str, str] | None = None
        self._event_depth = 0
        self._sp_depth = 0
        self._last_desc: Sequence[Any] = ()
        self._last_readonly = True
        #: (start, end) of the statement the last ``exec`` ran or failed on, in its text
        self.last_statement: tuple[int, int] = (0, 0)
        #: ran a statement whose effect no undo log sees (the connection is not recycled)
        self.changed_connection = False
        #: why workerd could not end the current transaction, once it cannot: (reason,
        #: statement, span in the ``exec`` text); see :meth:`_check_finishable`
        self._doomed: tuple[str, str, tuple[int, int]] | None = None
        #: cursors of write statements whose RETURNING rows are not read yet: id -> the note
        self._unread: dict[int, tuple[str, str, tuple[int, int]]] = {}
        #: read statements with rows not read yet (a cursor's id; a negative key for one before
        #: the last of its ``exec``, which nothing can read): (SQL, bindings). In workerd the
        #: statement stays running, and SQLite refuses to DROP a table or an index meanwhile
        self._readers: dict[int, tuple[str, list[object] | None]] = {}
        #: keys of the unreadable statements of the ``exec`` running now, and the last given
        self._exec_keys: list[int] = []
        self._last_key = 0
        #: the statement running now got past its prepare (the tracer saw it)
        self._traced = False
        #: the statement being prepared renames a table to a reserved ``_cf_`` name
        self._refuse_rename = False
        #: schema changes run on this DO, and the count when each SQL text last ran
        self._epoch = 0
        self._ran_at: dict[str, int] = {}
        #: the pool that lent this DO's connection (takes it back on close), if any, and
        #: what it needs to do so
        self._lender: Lender | None = None
        self._loan: Any = None

    @classmethod
    def _adopt(cls, conn: apsw.Connection, lender: Lender) -> DurableObjectStorage:
        """A DO on a connection a :class:`Lender` kept open (its schema already read)."""
        self = cls.__new__(cls)
        self._init_state(None)
        self._conn = conn
        conn.authorizer = self._authorize
        conn.exec_trace = self._trace
        self._lender = lender
        self.sql = SqlStorage(self)
        return self

    # ------------------------------------------------------------------ connection set-up
    def _open(self, image: bytes | None) -> None:
        if self.path is None:
            conn = apsw.Connection(":memory:")
            if image:
                conn.deserialize("main", image)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = apsw.Connection(str(self.path))
            conn.set_busy_handler(_wait_for_lock)
        self._conn = conn
        self._trusted = True
        try:
            if self.path is not None:
                mode = conn.execute("PRAGMA journal_mode").fetchall()[0][0]
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA recursive_triggers=OFF")
            # load the schema now: SQLite loses the error offset of a statement that fails
            # while the first prepare of a connection loads it, and a DO's connection is warm
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        finally:
            self._trusted = False
        conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)
        for name, value in self.runtime.limits:
            conn.limit(getattr(apsw, "SQLITE_LIMIT_" + name), value)
        conn.authorizer = self._authorize
        conn.exec_trace = self._trace

    def close(self) -> None:
        """Close the underlying database (the storage object becomes unusable)."""
        lender, self._lender = self._lender, None
        if lender is not None and lender.take_back(self):
            self._conn = _closed_connection()
            return
        self._conn.close()

    def __enter__(self) -> DurableObjectStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ authorizer / tracer
    def _authorize(
        self, op: int, p1: str | None, p2: str | None, db: str | None, trig: str | None
    ) -> int:
        if self._trusted:
            return _OK
        A = _A
        if op in (A.SQLITE_TRANSACTION, A.SQLITE_SAVEPOINT):
            self._auth_note = ("txn", "")
            return _DENY
        if op == A.SQLITE_ALTER_TABLE and self._refuse_rename:
            return _DENY
        if op in (A.SQLITE_ALTER_TABLE, A.SQLITE_DETACH):
            p1, p2, db = p2, db, p1
        if db is not None:
            if db == "temp":
                if op in (A.SQLITE_READ, A.SQLITE_UPDATE):
                    return _OK if p1 is not None and rt.is_allowed_name(p1) else _DENY
                return _DENY
            if db != "main":
                return _DENY
        allowed = rt.is_allowed_name
        if op == A.SQLITE_SELECT or op == A.SQLITE_ANALYZE or op == A.SQLITE_RECURSIVE:
            return _OK
        if op == A.SQLITE_READ and p1 in _NOT_COMPILED_TABLES:
            # table-valued functions of APSW's SQLite that workerd's build does not have
            self._auth_note = ("nosuch-table", p1)
            return _DENY
        if op in (
            A.SQLITE_CREATE_TABLE,
            A.SQLITE_DELETE,
            A.SQLITE_DROP_TABLE,
            A.SQLITE_INSERT,
            A.SQLITE_CREATE_VIEW,
            A.SQLITE_DROP_VIEW,
            A.SQLITE_REINDEX,
            A.SQLITE_ALTER_TABLE,
            A.SQLITE_READ,
            A.SQLITE_UPDATE,
        ):
            return _OK if p1 is None or allowed(p1) else _DENY
        if op in (
            A.SQLITE_CREATE_INDEX,
            A.SQLITE_DROP_INDEX,
            A.SQLITE_CREATE_TRIGGER,
            A.SQLITE_DROP_TRIGGER,
        ):
            ok = (p1 is None or allowed(p1)) and (p2 is None or allowed(p2))
            return _OK if ok else _DENY
        if op == A.SQLITE_PRAGMA:
            return _OK if p1 is not None and rt.pragma_allowed(self.runtime, p1, p2) else _DENY
        if op == A.SQLITE_FUNCTION:
            # SQLite passes a DEFAULT's function name as written (`CURRENT_TIMESTAMP`, `Abs`):
            # workerd's allow-list ignores case, so `DEFAULT (CURRENT_TIMESTAMP)` was refused
            name = (p2 or "").lower()
            if name in self.runtime.not_compiled:
                self._auth_note = ("nosuch", name)
                return _DENY
            return _OK if name in self.runtime.functions else _DENY
        if op in (A.SQLITE_CREATE_VTABLE, A.SQLITE_DROP_VTABLE):
            module = (p2 or "").lower()
            return _OK if module in self.runtime.vtable_modules else _DENY
        return _DENY

    def _trace(self, cursor: apsw.Cursor, sql: str, bindings: object) -> bool:
        if self._trusted:
            return True
        self._traced = True
        try:
            # get_description, not description: APSW keeps the latter for the whole execution,
            # and a cached statement that SQLite prepares again (the schema changed) would keep
            # its old columns (see _run)
            self._last_desc = cursor.get_description()
        except apsw.ExecutionCompleteError:  # pragma: no cover - defensive
            self._last_desc = ()
        self._last_readonly = cursor.is_readonly
        if not self._last_readonly:
            self._notify_write()
        return True

    # ------------------------------------------------------------------ transactions
    def _internal(self, sql: str, bindings: tuple[Any, ...] = ()) -> list[Row]:
        """Run our own statement (transactions, introspection): no authorizer, no plan cache."""
        self._trusted = True
        try:
            return list(self._conn.execute(sql, bindings))
        finally:
            self._trusted = False

    def _notify_write(self) -> None:
        """workerd's onWrite: the first write of an event opens the implicit transaction
        (not once a statement rolled it back: workerd still believes it open, so SQLite
        commits every later write at once)."""
        if self._conn.get_autocommit() and self._doomed is None:
            self._internal(_BEGIN)

    def _lost_transaction(self, statement: str, reason: str) -> None:
        """A statement rolled back the transaction workerd holds open (``OR ROLLBACK``,
        ``RAISE(ROLLBACK)``): the request is doomed (:meth:`_check_finishable`), and the
        writes after it until then are committed one by one, as in workerd."""
        if self._doomed is None:
            self._doomed = (reason, statement, self.last_statement)

    def _check_finishable(self, cause: BaseException | None = None) -> None:
        """workerd is about to release a savepoint or commit: when SQLite cannot (a write's
        RETURNING rows unread, or the transaction already rolled back), the request fails
        with an internal error and the DO is reset to its last commit."""
        rolled_back = self._doomed is not None
        note = self.unfinishable
        if note is None:
            return
        reason, statement, _span = note
        self._doomed = None
        self._unread.clear()
        if not self._conn.get_autocommit():
            self._internal(_ROLLBACK)
        self._reset_instance()
        reference = "".join(secrets.choice(_BASE32HEX) for _ in range(24))
        raise DurableObjectInternalError(
            rt.INTERNAL_ERROR_PREFIX + reference,
            reason=reason,
            statement=statement,
            kind="rolled-back" if rolled_back else "unread-returning",
        ) from cause

    @property
    def unfinishable(self) -> tuple[str, str, tuple[int, int]] | None:
        """Why the current transaction cannot end, once a statement made it so: (reason, the
        statement, its span in the ``exec`` text). None while it can."""
        return self._doomed or next(iter(self._unread.values()), None)

    def _end_event(self, cause: BaseException | None = None) -> None:
        """The event loop turn ends: commit the implicit transaction, as workerd does
        (``cause``: the error the event ends with, if any)."""
        self._check_finishable(cause)
        if self._conn.get_autocommit():
            return
        try:
            self._internal(_COMMIT)
        except apsw.Error as exc:
            message = format_error(exc)
            if not self._conn.get_autocommit():
                self._internal(_ROLLBACK)
            self._reset_instance()
            raise DurableObjectResetError(rt.RESET_MESSAGE_PREFIX + message) from None

    def _rollback_event(self) -> None:
        if not self._conn.get_autocommit():
            self._internal(_ROLLBACK)
        self._sp_depth = 0

    def _reset_instance(self) -> None:
        """A new instance of the same DO: connection state (foreign_keys, ...) starts over."""
        image = None
        if self.path is None:
            image = self.image()
        lender, self._lender = self._lender, None
        if lender is not None:
            lender.forget(self)
        self._conn.close()
        self._sp_depth = 0
        self._readers.clear()  # a new instance: its statements are gone
        self._open(image)

    @contextmanager
    def event(self) -> Iterator[DurableObjectStorage]:
        """The calls inside form one DO event (one implicit transaction, committed at the end).

        As on a DO, an exception escaping the block does not undo the writes before it.
        """
        if self._event_depth:
            yield self
            return
        self._event_depth = 1
        try:
            yield self
        finally:
            self._event_depth = 0
            self._end_event()

    def transaction_sync(self, fn: Callable[[], T]) -> T:
        """``ctx.storage.transactionSync(fn)``: a savepoint inside the implicit transaction."""
        __tracebackhide__ = True
        standalone = self._event_depth == 0
        self._event_depth += 1
        try:
            self._notify_write()
            name = f"_cf_savepoint_{self._sp_depth}"
            self._internal(f"SAVEPOINT {name} /*{_NONCE}*/")
            self._sp_depth += 1
            try:
                result = fn()
            except BaseException as exc:
                self._sp_depth = max(self._sp_depth - 1, 0)
                if self._unread:  # SQLite cannot roll back to the savepoint meanwhile
                    self._check_finishable(cause=exc)
                if self._doomed is None and not self._conn.get_autocommit():
                    self._internal(f"ROLLBACK TO {name} /*{_NONCE}*/")
                    self._internal(f"RELEASE {name} /*{_NONCE}*/")
                raise
            self._sp_depth -= 1
            if self._unread:  # nor release it
                self._check_finishable()
            if self._doomed is None:
                # (once a statement rolled the transaction back, the savepoint is gone too:
                # workerd goes on, the event's later writes commit one by one, and the request
                # fails when the event ends)
                self._internal(f"RELEASE {name} /*{_NONCE}*/")
            return result
        finally:
            self._event_depth -= 1
            if standalone:
                self._end_event(sys.exc_info()[1])

    def batch(self, statements: Sequence[Any]) -> list[Cursor | SqlError]:
        """Several ``sql.exec`` calls in one event; each cursor or error, in order.

        A statement is SQL text or ``(sql, bindings)``. Errors do not stop the batch (a
        ``try``/``catch`` around each ``exec`` in one handler); the event commits at the end.
        The workerd backend's DOs have the same method, so a test that uses it runs on both.
        """
        out: list[Cursor | SqlError] = []
        with self.event():
            for item in statements:
                sql, bindings = statement_of(item)
                try:
                    cursor = self.sql.exec(sql, *bindings)
                except SqlError as exc:
                    out.append(exc)
                else:
                    cursor._done()  # read in the handler, as the workerd backend's are
                    out.append(cursor)
        return out

    def transaction(self, statements: Sequence[Any]) -> list[Cursor]:
        """``transactionSync(() => { for (s of statements) sql.exec(s) })``: the first error
        rolls back everything the transaction wrote and is raised. The workerd backend's DOs
        have the same method (a Python callback cannot run inside the Worker)."""
        items = [statement_of(item) for item in statements]

        def body() -> list[Cursor]:
            cursors = [self.sql.exec(q, *b) for q, b in items]
            for cursor in cursors:
                cursor._done()  # read in the callback, as the workerd backend's are
            return cursors

        return self.transaction_sync(body)

    def block_concurrency_while(self, fn: Callable[[], T]) -> T:
        """``ctx.blockConcurrencyWhile(fn)`` in a constructor: ``fn`` runs as its own event.

        If ``fn`` raises, its uncommitted writes are rolled back and the instance is reset
        (the next access constructs a new one), then the error propagates, as on a DO.
        """
        __tracebackhide__ = True
        if self._event_depth:
            # inside a request: a throw breaks the object; writes since the last real await
            # are rolled back and the next access constructs a new instance
            try:
                return fn()
            except BaseException:
                self._rollback_event()
                self._reset_instance()
                raise
        self._event_depth = 1
        try:
            result = fn()
        except BaseException:
            self._event_depth = 0
            self._rollback_event()
            self._reset_instance()
            raise
        self._event_depth = 0
        self._end_event()
        return result

    def end_turn(self) -> None:
        """A real ``await`` (a timer, I/O): the event-loop turn ends and the implicit
        transaction commits; the event goes on in a new turn. A no-op outside a transaction."""
        if self._sp_depth:
            raise RuntimeError("cannot end the turn inside transaction_sync (it is synchronous)")
        self._end_event()

    # ------------------------------------------------------------------ KV and alarm API
    def put(self, key: str, value: object) -> None:
        """``ctx.storage.put(key, value)``: the KV API lives in the hidden ``_cf_KV`` table.
        A key that is not a string is JS's ``String(key)`` (``None`` is ``"null"``)."""
        from .v8 import serialize

        key = _kv_key(key)
        data = serialize(value)
        standalone = self._event_depth == 0
        self._event_depth += 1
        try:
            self._notify_write()
            self._internal(_KV_DDL)
            self._trusted = True
            try:
                self._conn.execute(
                    f"INSERT OR REPLACE INTO _cf_KV (key, value) VALUES (?, ?) /*{_NONCE}*/",
                    (key, data),
                )
            finally:
                self._trusted = False
        finally:
            self._event_depth -= 1
            if standalone:
                self._end_event()

    def get(self, key: str) -> object:
        """``ctx.storage.get(key)`` (None when absent, JS ``undefined``)."""
        from .v8 import deserialize

        key = _kv_key(key)
        self._trusted = True
        try:
            exists = self._conn.execute(
                f"SELECT 1 FROM sqlite_master WHERE name = '_cf_KV' /*{_NONCE}*/"
            ).fetchall()
            if not exists:
                return None
            rows = self._conn.execute(
                f"SELECT value FROM _cf_KV WHERE key = ? /*{_NONCE}*/", (key,)
            ).fetchall()
        finally:
            self._trusted = False
        if not rows or not isinstance(rows[0][0], bytes):
            return None
        return deserialize(rows[0][0])

    def set_alarm(self, scheduled_ms: float) -> None:
        """``ctx.storage.setAlarm(time)``: stored in the hidden ``_cf_METADATA`` table, in
        nanoseconds as workerd stores it; a time <= 0, or not a number, is refused as there."""
        __tracebackhide__ = True
        if isinstance(scheduled_ms, bool) or not isinstance(scheduled_ms, int | float):
            raise TypeError(
                "Failed to execute 'setAlarm' on 'DurableObjectStorage': parameter 1 is not of "
                "type 'date'."
            )
        if not scheduled_ms > 0:  # NaN too
            raise TypeError("setAlarm() cannot be called with an alarm time <= 0")
        standalone = self._event_depth == 0
        self._event_depth += 1
        try:
            self._notify_write()
            self._internal(_METADATA_DDL)
            self._trusted = True
            try:
                self._conn.execute(
                    f"INSERT OR REPLACE INTO _cf_METADATA (key, value) VALUES (1, ?) /*{_NONCE}*/",
                    (int(scheduled_ms) * 1_000_000,),
                )
            finally:
                self._trusted = False
        finally:
            self._event_depth -= 1
            if standalone:
                self._end_event()

    def on_lock_wait(self, first: Callable[[], None]) -> None:
        """Call ``first()`` the first time this file-backed DO waits for another connection's
        write lock (the fleet checks' races report it: the holder goes on only then)."""
        told = False

        def wait(attempts: int) -> bool:
            nonlocal told
            if not told:
                told = True
                first()
            return _wait_for_lock(attempts)

        self._conn.set_busy_handler(wait)

    def restart(self) -> None:
        """The runtime restarts the object on the same persisted storage."""
        if not self._conn.get_autocommit():
            self._end_event()
        self._reset_instance()

    # ------------------------------------------------------------------ images
    def image(self) -> bytes:
        """The whole database as bytes (for cheap copies: ``DurableObjectStorage(image=...)``)."""
        self._trusted = True
        try:
            data = self._conn.serialize("main")
        finally:
            self._trusted = False
        return bytes(data) if data is not None else b""

    def image_pages(self, previous: tuple[bytes, ...] = ()) -> tuple[bytes, ...]:
        """The database as its pages, sharing with ``previous`` every page equal to it.

        ``b"".join(...)`` is :meth:`image`. A copy of an image (the in-memory ``memdb`` file)
        is read page by page through the VFS, which costs half of serializing it whole and
        cutting the copy into pages: a migration changes a few pages of a database that
        grows with the bundle, and this runs once per version of it.
        """
        pages = self._read_pages(previous)  # VFS reads: no SQL, nothing to authorize
        return pages if pages is not None else _split_pages(self.image(), previous)

    def _read_pages(self, previous: tuple[bytes, ...]) -> tuple[bytes, ...] | None:
        # only a memdb file holds every committed page: a new DO's pages live in SQLite's
        # pager, and a DO on disk has its newest pages in the WAL
        if not (self._conn.vfsname("main") or "").startswith("memdb"):
            return None
        read = self._conn.read
        whole, header = read("main", 0, 0, 100)
        # the page count in the header is valid when its "version-valid-for" matches the
        # change counter, which SQLite has written on every commit since 3.7.0
        if not whole or header[24:28] != header[92:96]:
            return None
        size = int.from_bytes(header[16:18], "big")
        size = 65536 if size == 1 else size
        count = int.from_bytes(header[28:32], "big")
        known = len(previous)
        out: list[bytes] = []
        for i in range(count):
            whole, page = read("main", 0, i * size, size)
            if not whole:
                return None
            out.append(previous[i] if i < known and previous[i] == page else page)
        return tuple(out)

    @classmethod
    def from_image(cls, image: bytes) -> DurableObjectStorage:
        """A fresh in-memory storage holding a copy of ``image`` (costs a memory copy)."""
        return cls(image=image)

    # ------------------------------------------------------------------ exec
    def _exec(self, query: str, bindings: Sequence[object]) -> Cursor:
        __tracebackhide__ = True
        if not isinstance(query, str):
            raise SqlError(f"sql.exec() expects a string, got {type(query).__name__}")
        limit = self.runtime.limit_map["SQL_LENGTH"]
        if len(query) * 4 > limit and len(query.encode("utf-8", "surrogatepass")) > limit:
            raise SqlError(rt.TOO_LONG_MESSAGE, code="SQLITE_TOOBIG")
        values = [to_js_binding(b) for b in bindings]
        steps = _plan(query)
        standalone = self._event_depth == 0
        self._event_depth += 1
        self._exec_keys = []
        try:
            last = len(steps) - 1
            for i, step in enumerate(steps):
                piece = step.piece
                self.last_statement = (piece.start, piece.end)
                if not piece.has_statement:
                    self._forget_exec_statements()  # an error before it runs, as a prepare
                    raise SqlError(rt.NO_STATEMENT_MESSAGE)
                if i < last:
                    self._run(step, None, intermediate=True)
                else:
                    cursor = self._run(step, values, intermediate=False)
                    if standalone:
                        # the caller reads it before its turn ends (a DO commits then)
                        self._unread.pop(id(cursor), None)
                    return cursor
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            self._event_depth -= 1
            if standalone:
                self._end_event()

    def _run(self, step: _Step, values: list[object] | None, *, intermediate: bool) -> Cursor:
        __tracebackhide__ = True
        # a RENAME TO a reserved name is refused by the authorizer, so SQLite's own checks
        # (no such table, a view) come first, as in workerd
        self._refuse_rename = step.refused
        if step.changes_connection:
            self.changed_connection = True
        text = step.piece.text
        cur = self._conn.cursor()
        self._auth_note = None
        self._last_desc = ()
        self._last_readonly = True
        self._traced = False
        shadows = self._locked_by_readers() if step.drops and self._readers else ()
        # the first run of a text since the schema changed: APSW's cached statement, which
        # SQLite prepares again inside its first step, still names the old columns (an ADD
        # or RENAME COLUMN is missing from the rows' names) and fails without the error's
        # offset; workerd prepares every exec anew
        stale = self._epoch > 0 and self._ran_at.get(text, -1) < self._epoch
        changes = self._conn.total_changes()
        try:
            cur.execute(text, values if values else None)
            rows = [tuple(_to_js_value(v) for v in r) for r in cur]
            if stale and not intermediate and self._last_readonly:
                self._last_desc = self._fresh_description(text, values)
            self._ran_at[text] = self._epoch
            if step.ddl:
                self._epoch += 1
        except apsw.BindingsError:
            if intermediate:
                raise SqlError(rt.ONLY_LAST_PARAMS_MESSAGE) from None
            raise SqlError(rt.WRONG_BINDINGS_MESSAGE) from None
        except apsw.Error as exc:
            if stale:
                exc = self._prepare_error(exc, text, values)
            error = _sql_error(exc, self._auth_note, text)
            if not self._traced or intermediate:
                # it failed to prepare, or it is not the exec's last statement: workerd
                # finalizes the statements before it, and nothing of them is left running
                self._forget_exec_statements()
            if not self._last_readonly and self._conn.get_autocommit():
                self._lost_transaction(text, f"{_ROLLED_BACK} ({error})")
            raise error from None
        except UnicodeDecodeError:
            raise EmulatorLimitation(
                "a text value of the result is not valid UTF-8, which the emulator cannot "
                "return (a DO's JavaScript reads U+FFFD for each invalid byte); select "
                "hex(...) or CAST(... AS BLOB) instead"
            ) from None
        except UnicodeEncodeError:
            raise EmulatorLimitation(
                "the SQL or a bound string holds a lone surrogate (a half of a UTF-16 pair), "
                "which the emulator cannot pass to SQLite (workerd stores it as WTF-8)"
            ) from None
        finally:
            for shadow in shadows:
                shadow.close()
        if step.statistics and self._internal(_HAS_STAT4):
            # APSW's SQLite is built with STAT4, workerd's is not: ANALYZE and PRAGMA optimize
            # keep sqlite_stat1 only there
            self._internal(f"DROP TABLE sqlite_stat4 /*{_NONCE}*/")
        unread = reading = False
        if not self._last_readonly:
            if self._conn.get_autocommit():
                self._lost_transaction(text, _ROLLED_BACK)
            elif rows:
                unread = True
                if intermediate:  # its rows can never be read
                    key = self._unreadable_key()
                    self._unread[key] = (_UNREAD, text, self.last_statement)
                    self._exec_keys.append(key)
        elif rows:
            reading = True
            if intermediate:
                key = self._unreadable_key()
                self._readers[key] = (text, None)
                self._exec_keys.append(key)
        if intermediate:
            return _EMPTY
        if rows and step.data_version:
            # workerd's storage layer commits through its own VFS, which SQLite counts as a
            # change by another connection: a DO reports one more than plain SQLite does
            version = rows[0][0]
            rows = [(version + 1 if isinstance(version, int) else version,)]
        desc: Sequence[Sequence[Any]] = self._last_desc
        names: list[str] = [str(col[0]) for col in desc]
        # this statement's changes (changes() keeps the last INSERT/UPDATE/DELETE's count
        # through DDL), trigger and foreign-key actions included, as workerd counts them
        written = 0 if self._last_readonly else self._conn.total_changes() - changes
        cursor = Cursor(names, rows, len(rows), written)
        if unread:
            cursor._holds = self
            self._unread[id(cursor)] = (_UNREAD, text, self.last_statement)
        elif reading:
            cursor._holds = self
            self._readers[id(cursor)] = (text, values or None)
        return cursor

    def _fresh_description(self, text: str, values: list[object] | None) -> Sequence[Any]:
        """The columns of the read-only statement ``text``, from a prepare of its own."""
        self._trusted = True
        try:
            fresh = self._conn.cursor()
            fresh.execute(text, values if values else None, can_cache=False)
            try:
                return fresh.get_description()
            except apsw.ExecutionCompleteError:  # no row: the names SQLite gave before
                return self._last_desc
            finally:
                fresh.close()
        finally:
            self._trusted = False

    def _prepare_error(self, exc: apsw.Error, text: str, values: list[object] | None) -> apsw.Error:
        """The error of a text that ran before the schema changed: APSW's cached statement,
        prepared again by SQLite inside its first step, fails without the error's offset, which
        workerd (a fresh prepare) gives. A fresh prepare of ``text``, switched to EXPLAIN so
        that nothing of it runs, gives the error as workerd words it; ``exc`` when it prepares
        (the error was not the prepare's)."""
        if getattr(exc, "error_offset", -1) != -1:
            return exc
        trace, self._conn.exec_trace = self._conn.exec_trace, None
        probe = self._conn.cursor()
        try:
            probe.execute(text, values if values else None, can_cache=False, explain=1)
        except apsw.Error as fresh:
            return fresh if type(fresh) is type(exc) else exc
        finally:
            probe.close()
            self._conn.exec_trace = trace
        return exc

    def _unreadable_key(self) -> int:
        """A new key (negative: no cursor's id) for a statement nothing can read."""
        self._last_key -= 1
        return self._last_key

    def _forget_exec_statements(self) -> None:
        """The statements of this ``exec`` before a failed one are finalized: none runs on."""
        for key in self._exec_keys:
            self._unread.pop(key, None)
            self._readers.pop(key, None)
        self._exec_keys.clear()

    def _locked_by_readers(self) -> list[apsw.Cursor]:
        """Before a DROP: when a read statement left running reads the database (not
        ``SELECT 1``), a statement that reads the schema, stepped to its first row, stands for
        it, so SQLite itself refuses the DROP as in workerd (``database table is locked``),
        whatever happened to the data since. The caller closes it after the DROP."""
        if not any(_reads_database(self, text, values) for text, values in self._readers.values()):
            return []
        self._trusted = True
        try:
            shadow = self._conn.cursor()
            shadow.execute(f"SELECT rowid FROM sqlite_master /*{_NONCE}*/")
            if next(shadow, None) is None:  # pragma: no cover - a DROP has something to drop
                shadow.close()
                return []
        finally:
            self._trusted = False
        return [shadow]

    def _database_size(self) -> int:
        # a DO's database file always has its header page, even before the first write
        page_count = max(1, self._internal("PRAGMA page_count")[0][0])
        freelist = self._internal("PRAGMA freelist_count")[0][0]
        page_size = self._internal("PRAGMA page_size")[0][0]
        return int((page_count - freelist) * page_size)


_EMPTY = Cursor([], [], 0, 0)
_HAS_STAT4 = f"SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat4' /*{_NONCE}*/"
#: eponymous virtual tables of APSW's SQLite build that workerd's lacks
_NOT_COMPILED_TABLES = frozenset(["carray", "dbstat"])
_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
_UNREAD = (
    "a write statement returned rows that were never read (INSERT, UPDATE or DELETE with "
    "RETURNING, run by code that does not read its cursor, as drizzle's migrator does): "
    "SQLite cannot release a savepoint or commit while it is in progress, so workerd fails "
    "the request with an internal error and resets the Durable Object"
)
_ROLLED_BACK = (
    "the statement rolled back the whole transaction (OR ROLLBACK on a conflict, or "
    "RAISE(ROLLBACK) in a trigger), which workerd holds open: it fails the request with an "
    "internal error and resets the Durable Object"
)


class Lender(Protocol):
    """Who lent a DO its connection (:class:`pytest_dosqlite.recycling.ConnectionPool`)."""

    def take_back(self, do: DurableObjectStorage) -> bool:
        """``do`` is being closed: keep its connection (True) or let it be closed (False)."""

    def forget(self, do: DurableObjectStorage) -> None:
        """``do`` replaces its connection (a restart): the lent one will not come back."""


_CLOSED: list[apsw.Connection] = []


def _closed_connection() -> apsw.Connection:
    """A closed connection: what a closed DO holds, so using it fails as it always did."""
    if not _CLOSED:
        conn = apsw.Connection(":memory:")
        conn.close()
        _CLOSED.append(conn)
    return _CLOSED[0]
