"""The SQL tokenizer of sqltext, shared by the lint, the start-up budget and the seeder."""

from __future__ import annotations

import random

import pytest

from pytest_dosqlite import budget, seed
from pytest_dosqlite.sqltext import Token, comments, scan, tokens


def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokens(text)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"a""b"', 'a"b'),
        ("`a``b`", "a`b"),
        ("[a b]", "a b"),
        ("[a]]", "a"),  # brackets have no doubling: the second ] is an operator
        ('""', ""),
    ],
)
def test_quoted_names_of_every_kind_undo_doubled_quotes(text: str, value: str) -> None:
    tok = tokens(text)[0]
    assert (tok.kind, tok.value, tok.is_name, tok.closed, tok.up) == ("qid", value, True, True, "")


def test_strings_undo_doubled_quotes_and_may_be_names() -> None:
    (tok,) = tokens("'it''s'")
    assert (tok.kind, tok.value, tok.is_name, tok.closed) == ("str", "it's", True, True)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("SELECT 'abc", "str", "abc"),
        ("SELECT 'ab''", "str", "ab'"),
        ('SELECT "ab', "qid", "ab"),
        ('SELECT "ab""', "qid", 'ab"'),
        ('SELECT """', "qid", '"'),
        ("SELECT `ab", "qid", "ab"),
        ("SELECT [ab", "qid", "ab"),
        ("SELECT x'0f", "blob", "x'0f"),
        ("SELECT x'", "blob", "x'"),
    ],
)
def test_a_quote_the_text_never_closes_runs_to_the_end(text: str, kind: str, value: str) -> None:
    head, tok = tokens(text)
    assert head.up == "SELECT"
    assert (tok.kind, tok.start, tok.end, tok.value, tok.closed) == (
        kind,
        7,
        len(text),
        value,
        False,
    )


@pytest.mark.parametrize("text", ["/* open", "/*", "/*/", "/* a * /"])
def test_a_block_comment_the_text_never_closes_runs_to_the_end(text: str) -> None:
    assert tokens("SELECT 1 " + text)[-1].text == "1"
    (c,) = comments("SELECT 1 " + text)
    assert (c.kind, c.start, c.text, c.closed) == ("comment", 9, text, False)


def test_comments_are_kept_apart_with_their_offsets() -> None:
    text = "SELECT 1, -- one\n'--no' /* two\n */ , 2 -- three"
    assert kinds(text) == [
        ("word", "SELECT"),
        ("num", "1"),
        ("op", ","),
        ("str", "'--no'"),
        ("op", ","),
        ("num", "2"),
    ]
    found = comments(text)
    assert [(c.start, c.text) for c in found] == [
        (10, "-- one"),
        (24, "/* two\n */"),
        (39, "-- three"),
    ]
    assert all(text[c.start : c.end] == c.text and c.closed for c in found)
    assert [t.kind for t in scan(text)].count("comment") == 3


def test_blobs() -> None:
    assert kinds("x'00ff' X'' x 'a'") == [
        ("blob", "x'00ff'"),
        ("blob", "X''"),
        ("word", "x"),
        ("str", "'a'"),
    ]
    blob = tokens("x'00'")[0]
    assert (blob.value, blob.is_name, blob.up, blob.closed) == ("x'00'", False, "", True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0x1F", [("num", "0x1F")]),
        ("1.5e-3", [("num", "1.5e-3")]),
        ("1e+5", [("num", "1e+5")]),
        ("1.", [("num", "1.")]),
        (".5", [("num", ".5")]),
        ("12abc", [("num", "12"), ("word", "abc")]),
        ("1.2.3", [("num", "1.2"), ("num", ".3")]),
        ("1_000", [("num", "1"), ("word", "_000")]),
    ],
)
def test_numbers(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


def test_variables() -> None:
    assert kinds("? ?12 :name @a $a$b") == [
        ("var", "?"),
        ("var", "?12"),
        ("var", ":name"),
        ("var", "@a"),
        ("var", "$a$b"),
    ]


def test_multi_character_operators() -> None:
    ops = ["->>", "->", "||", "<<", ">>", "<=", ">=", "==", "!=", "<>", ";", "%"]
    assert kinds(" ".join(ops)) == [("op", op) for op in ops]
    assert kinds("a||b") == [("word", "a"), ("op", "||"), ("word", "b")]
    # the longest operator wins, a comment opener beats any operator
    assert kinds("a->>>b") == [("word", "a"), ("op", "->>"), ("op", ">"), ("word", "b")]
    assert kinds("a-->b") == [("word", "a")]


def test_words_carry_their_keyword_and_offsets() -> None:
    text = "  create\tTABLE é_x$1 (\n"
    toks = tokens(text)
    assert [(t.kind, t.up, t.start, t.end) for t in toks] == [
        ("word", "CREATE", 2, 8),
        ("word", "TABLE", 9, 14),
        ("word", "É_X$1", 15, 20),
        ("op", "", 21, 22),
    ]
    assert repr(toks[0]) == "Token('word', 'create', 2, 8)"


def test_comments_are_no_code_tokens() -> None:
    text = "/* c */ DROP -- d\n TABLE t; SELECT 1"
    assert [t.text for t in tokens(text)] == ["DROP", "TABLE", "t", ";", "SELECT", "1"]
    assert tokens("") == [] == tokens("  -- only\n")


def test_scan_keeps_comments_and_is_lazy() -> None:
    text = "SELECT /* c */ 12, x'ab'"
    assert [(t.kind, t.text, t.start) for t in scan(text)] == [
        ("word", "SELECT", 0),
        ("comment", "/* c */", 7),
        ("num", "12", 15),
        ("op", ",", 17),
        ("blob", "x'ab'", 19),
    ]
    head = scan("SELECT 1" + " + 1" * 100_000)
    assert next(head).up == "SELECT"


def test_every_character_is_in_one_token_or_blank() -> None:
    rng = random.Random(7)
    alphabet = "\"'`[]()., ;\n-/*+|<>=!?:@$019xXeE_aé"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        found = sorted([*tokens(text), *comments(text)], key=lambda t: t.start)
        assert [(t.kind, t.start, t.text) for t in scan(text)] == [
            (t.kind, t.start, t.text) for t in found
        ]
        pos = 0
        for t in found:
            assert text[pos : t.start].isspace() or pos == t.start
            assert text[t.start : t.end] == t.text and t.end > t.start
            pos = t.end
        assert not text[pos:].strip()


def test_token_is_small() -> None:
    tok = Token("word", "a", 0, 1)
    assert not hasattr(tok, "__dict__")


# the callers' readings


def test_budget_reads_names_from_words_quoted_names_and_strings_only() -> None:
    names = [budget._name(t) for t in tokens("\"É\"\"B\" 1 'x' ?1 @a :b $c a.b 'It''s")]
    # lower-cased in ASCII only (as SQLite compares names); a bind variable is no name; a
    # string the text cuts off is read to its end
    assert names == ['É"b', None, "x", None, None, None, None, "a", None, "b", "it's"]


def test_seed_reads_the_head_of_a_statement_lazily() -> None:
    head = seed._head_tokens
    assert head('DROP TABLE "a""b";') == ["DROP", "TABLE", '"a""b"']
    assert head("/* x */ DROP -- y\n TABLE ; ; t") == ["DROP", "TABLE", "t"]
    assert head("ALTER TABLE t ADD c INT DEFAULT 12 -> x'0f' ?1", limit=9) == [
        "ALTER",
        "TABLE",
        "t",
        "ADD",
        "c",
        "INT",
        "DEFAULT",
        "12",
        "->",
    ]
    assert head("a ; ; b", limit=1) == ["a"]
