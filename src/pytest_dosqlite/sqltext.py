"""Where SQLite's prepare would cut a SQL text into statements.

workerd's ``sql.exec`` prepares the text, executes the statement, skips whitespace and prepares
the rest, again and again; a remainder that prepares to no statement (only ``;`` or comments) is
an error. To reproduce that exactly we need the statement boundaries SQLite itself would find:
strings, quoted identifiers and comments hide ``;``, and ``CREATE TRIGGER ... BEGIN ... END``
bodies hold several (``apsw.complete`` is SQLite's own ``sqlite3_complete`` for those).

The lint, the start-up budget and the seeder also read the head of each statement (its kind and
the names it touches); :func:`tokens` is the one tokenizer they share, so a quoting rule fixed
here is fixed for all three.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import apsw

__all__ = [
    "WHITESPACE",
    "Piece",
    "Token",
    "TokenKind",
    "comments",
    "has_statement",
    "next_statement",
    "scan",
    "split",
    "tokens",
]

#: what workerd skips after a statement before preparing the rest
WHITESPACE = " \t\n\r\v\f"

_SPECIAL = re.compile(r"[;'\"`\[]|--|/\*")
_CLOSERS = {
    "'": re.compile(r"'(?:[^']|'')*'"),
    '"': re.compile(r'"(?:[^"]|"")*"'),
    "`": re.compile(r"`(?:[^`]|``)*`"),
}
#: SQLite's blanks are ASCII only (a no-break space is a token it cannot read)
_NON_BLANK = re.compile(r"[^ \t\n\f\r;]")


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
        if tok == "/*" and stop + 2 >= n:
            # SQLite reads a `/*` that ends the text as the operator `/`, not a comment
            seen = True
            i = stop + 1
            continue
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


# --------------------------------------------------------------------------------- tokens

TokenKind = Literal["word", "qid", "str", "blob", "num", "var", "op", "comment"]

# Unterminated strings, quoted names and block comments run to the end of the text, as SQLite
# reads them before it reports the error.
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*(?:.*?\*/|.*\Z))
  | (?P<blob>[xX]'[^']*'?)
  | (?P<str>'(?:[^']|'')*'?)
  | (?P<qid>"(?:[^"]|"")*"?|`(?:[^`]|``)*`?|\[[^\]]*\]?)
  | (?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[^\W\d][\w$]*)
  | (?P<var>[?:@$][\w$]*)
  | (?P<op>->>|->|\|\||<<|>>|<=|>=|==|!=|<>|.)
    """,
    re.X | re.S,
)
#: group name -> kind (None: blanks), typed (``Match.lastgroup`` is a plain ``str | None``)
_KINDS: dict[str | None, TokenKind | None] = {
    "ws": None,
    "comment": "comment",
    "blob": "blob",
    "str": "str",
    "qid": "qid",
    "num": "num",
    "word": "word",
    "var": "var",
    "op": "op",
}


class Token:
    """One SQL token: ``text`` is ``source[start:end]``; ``up`` is the upper-cased text of a
    bare word (keywords compare against it) and "" for anything else.

    A plain class with ``__slots__`` rather than a dataclass: the lint makes one for every token
    of every statement of a bundle.
    """

    __slots__ = ("end", "kind", "start", "text", "up")

    kind: TokenKind
    text: str
    start: int
    end: int
    up: str

    def __init__(self, kind: TokenKind, text: str, start: int, end: int) -> None:
        self.kind = kind
        self.text = text
        self.start = start
        self.end = end
        self.up = text.upper() if kind == "word" else ""

    def __repr__(self) -> str:
        return f"Token({self.kind!r}, {self.text!r}, {self.start}, {self.end})"

    @property
    def value(self) -> str:
        """The name or string a token stands for: quotes removed, doubled quotes undone (for a
        token the end of the text cut off, see :attr:`closed`, only the opening quote is
        removed). Other kinds give their text."""
        t = self.text
        if self.kind != "str" and self.kind != "qid":
            return t
        q = t[0]
        inner = t[1:-1] if self.closed else t[1:]
        return inner if q == "[" else inner.replace(q + q, q)

    @property
    def is_name(self) -> bool:
        """Whether SQLite may read the token as a name: a bare word, a quoted name, or a string
        where a name is expected (``CREATE TABLE 't'``)."""
        return self.kind in ("word", "qid", "str")

    @property
    def closed(self) -> bool:
        """False for a string, quoted name, blob or block comment the end of the text cut off
        (callers that only accept complete tokens need to tell)."""
        t = self.text
        kind = self.kind
        if kind in ("str", "qid"):
            q = t[0]
            if q == "[":
                return t.endswith("]")
            # a closed one ends in an odd run of quotes: doubled ones, then the closing one
            run = len(t) - len(t.rstrip(q))
            return (run - (run == len(t))) % 2 == 1
        if kind == "blob":
            return len(t) > 2 and t.endswith("'")
        if kind == "comment" and t.startswith("/*"):
            return len(t) > 3 and t.endswith("*/")
        return True


def scan(text: str) -> Iterator[Token]:
    """Every token, comments included (kind ``comment``), lazily: for callers that stop after
    a statement's first words."""
    kinds = _KINDS
    for m in _TOKEN_RE.finditer(text):
        kind = kinds[m.lastgroup]
        if kind is not None:
            yield Token(kind, m.group(), m.start(), m.end())


def tokens(text: str) -> list[Token]:
    """The code tokens of ``text`` (comments left out)."""
    out: list[Token] = []
    kinds = _KINDS
    append = out.append
    # SQLite skips a byte order mark that starts the text (an editor's "UTF-8 with BOM")
    start = 1 if text.startswith("\ufeff") else 0
    for m in _TOKEN_RE.finditer(text, start):
        kind = kinds[m.lastgroup]
        if kind is not None and kind != "comment":
            append(Token(kind, m.group(), m.start(), m.end()))
    return out


def comments(text: str) -> list[Token]:
    """The comments of ``text`` with their offsets (``--`` inside a string is not one)."""
    return [
        Token("comment", m.group(), m.start(), m.end())
        for m in _TOKEN_RE.finditer(text)
        if m.lastgroup == "comment"
    ]
