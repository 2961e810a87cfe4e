"""Where SQLite's prepare would cut a SQL text into statements.

workerd's ``sql.exec`` prepares the text, executes the statement, skips whitespace and prepares
the rest, again and again; a remainder that prepares to no statement (only ``;`` or comments) is
an error. To reproduce that exactly we need the statement boundaries SQLite itself would find:
strings, quoted identifiers and comments hide ``;``, and ``CREATE TRIGGER ... BEGIN ... END``
bodies hold several (``apsw.complete`` is SQLite's own ``sqlite3_complete`` for those).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import apsw

__all__ = ["WHITESPACE", "Piece", "has_statement", "line_at", "next_statement", "split"]

#: what workerd skips after a statement before preparing the rest
WHITESPACE = " \t\n\r\v\f"

_SPECIAL = re.compile(r"[;'\"`\[]|--|/\*")
_CLOSERS = {
    "'": re.compile(r"'(?:[^']|'')*'"),
    '"': re.compile(r'"(?:[^"]|"")*"'),
    "`": re.compile(r"`(?:[^`]|``)*`"),
}
_NON_BLANK = re.compile(r"[^\s;]")


@dataclass(frozen=True, slots=True)
class Piece:
    """One prepare step: ``sql[start:end]`` holds at most one statement (plus leading empties)."""

    start: int
    end: int
    text: str
    #: False when SQLite would prepare this text to no statement at all
    has_statement: bool


def _skip_token(sql: str, i: int, tok: str) -> int:
    """Position after the string/identifier/comment starting at ``i``."""
    n = len(sql)
    if tok in _CLOSERS:
        m = _CLOSERS[tok].match(sql, i)
        return m.end() if m else n
    if tok == "[":
        j = sql.find("]", i + 1)
        return n if j < 0 else j + 1
    if tok == "--":
        j = sql.find("\n", i + 2)
        return n if j < 0 else j + 1
    # "/*"
    j = sql.find("*/", i + 2)
    return n if j < 0 else j + 2


def next_statement(sql: str, pos: int) -> tuple[int, bool]:
    """End of the text one ``sqlite3_prepare`` starting at ``pos`` consumes.

    Returns ``(end, found)``. Leading empty statements (``;``) are consumed with the statement
    that follows them, as SQLite does; ``found`` is False when no statement follows at all.
    """
    n = len(sql)
    i = pos
    seen = False  # a token that is not whitespace, comment or ';'
    stmt_from = pos
    while i < n:
        m = _SPECIAL.search(sql, i)
        stop = m.start() if m else n
        if not seen and _NON_BLANK.search(sql, i, stop):
            seen = True
        if m is None:
            break
        tok = m.group()
        if tok == ";":
            if not seen:
                stmt_from = stop + 1
                i = stop + 1
                continue
            if apsw.complete(sql[stmt_from : stop + 1]):
                return stop + 1, True
            i = stop + 1
            continue
        if tok in ("'", '"', "`", "["):
            seen = True
        i = _skip_token(sql, stop, tok)
    return n, seen


def split(sql: str) -> list[Piece]:
    """Cut ``sql`` the way workerd's exec loop does; the last piece may have no statement."""
    nul = sql.find("\0")
    if nul >= 0:
        # SQLite stops reading at a NUL; workerd then prepares the rest, which holds nothing
        head = split(sql[:nul]) if nul else [Piece(0, 0, "", False)]
        if head[-1].has_statement:
            head.append(Piece(nul, len(sql), sql[nul:], False))
        return head
    pieces: list[Piece] = []
    n = len(sql)
    pos = 0
    while True:
        end, found = next_statement(sql, pos)
        pieces.append(Piece(pos, end, sql[pos:end], found))
        if not found:
            return pieces
        while end < n and sql[end] in WHITESPACE:
            end += 1
        if end >= n:
            return pieces
        pos = end


def has_statement(sql: str) -> bool:
    """True when the text holds at least one statement (not only comments and ``;``)."""
    return next_statement(sql, 0)[1]


def line_at(text: str, offset: int) -> int:
    """1-based line number of a character offset."""
    return text.count("\n", 0, offset) + 1
