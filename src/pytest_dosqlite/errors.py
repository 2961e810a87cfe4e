"""The documented errors of pytest-dosqlite.

Everything the engine raises on bad input or on a failing migration is one of these; anything
else escaping is a bug in pytest-dosqlite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BundleError",
    "CheckFailure",
    "CheckSkipped",
    "DosqliteError",
    "DosqliteWarning",
    "DurableObjectInternalError",
    "DurableObjectResetError",
    "EmulatorLimitation",
    "IntegrityWarning",
    "MigrationError",
    "SqlError",
]


class DosqliteError(Exception):
    """Base class of every error pytest-dosqlite raises on purpose."""


class EmulatorLimitation(DosqliteError):
    """Something a real DO does that the emulator cannot (text that is not valid UTF-8, which
    workerd turns into U+FFFD): not an error of the DO; the message says what to do instead."""


class SqlError(DosqliteError):
    """An error thrown by the DO's ``sql.exec`` (a plain ``Error`` in workerd).

    ``str(error)`` is workerd's message, byte for byte, for example
    ``no such table: nosuch: SQLITE_ERROR``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        extended: str | None = None,
        offset: int | None = None,
        sqlite_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: primary SQLite result code name (``SQLITE_ERROR``), None for workerd's own messages
        self.code = code
        #: extended result code name when it differs from the primary one
        self.extended = extended
        #: byte offset of the error in the prepared statement text, when SQLite reports one
        self.offset = offset
        #: SQLite's own message without workerd's decorations
        self.sqlite_message = sqlite_message if sqlite_message is not None else message

    def __reduce__(self) -> tuple[object, ...]:  # picklable across processes (xdist, fleet)
        return (
            _rebuild_sql_error,
            (self.message, self.code, self.extended, self.offset, self.sqlite_message),
        )


def _rebuild_sql_error(
    message: str,
    code: str | None,
    extended: str | None,
    offset: int | None,
    sqlite_message: str | None,
) -> SqlError:
    return SqlError(
        message, code=code, extended=extended, offset=offset, sqlite_message=sqlite_message
    )


class DurableObjectResetError(SqlError):
    """The DO broke at commit time (a deferred constraint still violated) and was reset.

    Mirrors workerd: the uncommitted writes are lost and the next access constructs a new
    instance.
    """


class DurableObjectInternalError(DurableObjectResetError):
    """workerd failed the whole request with ``internal error; reference = ...`` and reset the DO.

    It happens when the transaction workerd manages cannot be ended: a write statement's
    ``RETURNING`` rows were never read (SQLite cannot release a savepoint or commit while the
    statement is in progress; drizzle's ``run()`` never reads them), or a statement rolled the
    whole transaction back (``OR ROLLBACK`` on a conflict, ``RAISE(ROLLBACK)``). ``str(error)``
    is workerd's message (its reference is random); ``reason`` says what happened and
    ``statement`` is the SQL that caused it.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "workerd failed the request with an internal error and reset the DO",
        statement: str | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.statement = statement
        #: ``"unread-returning"``, ``"rolled-back"``, or None when not known (from workerd)
        self.kind = kind

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_internal_error, (self.message, self.reason, self.statement, self.kind))


def _rebuild_internal_error(
    message: str, reason: str, statement: str | None, kind: str | None
) -> DurableObjectInternalError:
    return DurableObjectInternalError(message, reason=reason, statement=statement, kind=kind)


@dataclass
class BundleError(DosqliteError):
    """A bundle cannot be loaded at all (missing folder, unreadable journal, ...).

    Names the file, and the line (1-based) and migration where there is one.
    """

    message: str
    path: Path | str | None = None
    line: int | None = None
    migration: str | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = str(self.path)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        who = f"[{self.migration}] " if self.migration else ""
        return f"{where}{who}{self.message}"

    def __hash__(self) -> int:
        return id(self)


@dataclass
class MigrationError(DosqliteError):
    """A migration failed; unlike drizzle's ``DrizzleError: Rollback`` it says where and why.

    ``tag`` is the journal tag, ``chunk`` the 0-based index of the breakpoint chunk,
    ``statement`` the SQL text of the failing statement, ``line`` its 1-based line in ``path``,
    ``cause`` the real error (usually a :class:`SqlError`). ``drizzle_message`` is what drizzle's
    migrator would have reported on a real DO.
    """

    message: str
    tag: str | None = None
    chunk: int | None = None
    statement: str | None = None
    cause: BaseException | None = None
    path: Path | str | None = None
    line: int | None = None
    drizzle_message: str = "DrizzleError: Rollback"
    applied_before: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [self.message]
        if self.tag is not None:
            loc = f"migration {self.tag}"
            if self.chunk is not None:
                loc += f", chunk {self.chunk}"
            if self.path is not None:
                loc += f" ({self.path}{':' + str(self.line) if self.line else ''})"
            parts.append(loc)
        if self.statement is not None:
            parts.append(f"statement: {self.statement.strip()}")
        if self.cause is not None:
            parts.append(f"cause: {self.cause}")
        if self.build_failure:
            parts.append(f"the Worker does not build: {self.drizzle_message}")
        else:
            parts.append(f"drizzle on a real DO reports: {self.drizzle_message}")
        return "\n".join(parts)

    @property
    def build_failure(self) -> bool:
        """The Worker itself does not build (an import of migrations.js resolves to no file):
        no DO ever runs this version."""
        return self.drizzle_message.startswith("Could not resolve")

    def __hash__(self) -> int:
        return id(self)


class CheckFailure(AssertionError):
    """A built-in check failed. Reads like pytest-alembic's failures: titled context sections.

    ``sections`` is a list of ``(title, body)``; typical titles: "Migration", "Statement",
    "SQLite error", "On a real Durable Object", "How to fix".
    """

    def __init__(
        self,
        summary: str,
        sections: list[tuple[str, str]] | None = None,
        *,
        reported_by: str | None = None,
    ) -> None:
        self.summary = summary
        self.sections = list(sections or [])
        #: the check that reports this failure in full (a fresh DO that fails to migrate:
        #: ``upgrade_from_empty``); the check that raised it is then skipped, not failed again
        self.reported_by = reported_by
        super().__init__(self.render())

    def render(self) -> str:
        out = [self.summary]
        for title, body in self.sections:
            out.append("")
            out.append(f"{title}:")
            out.extend("    " + line if line else "" for line in str(body).splitlines())
        return "\n".join(out)


class CheckSkipped(DosqliteError):
    """A check does not apply to this bundle (the plugin reports it as skipped, with the reason)."""


class DosqliteWarning(UserWarning):
    """Base class of the warnings the built-in checks emit (filter them with ``-W``)."""


class IntegrityWarning(DosqliteWarning):
    """A bundle problem that does not break migrate() (missing snapshot, orphan key, ...)."""
