"""Malformed journals, migrations.js texts and bytes: only BundleError or a Bundle comes out."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_dosqlite.bundle import PROBLEM_CODES, Bundle, load_bundle
from pytest_dosqlite.errors import BundleError

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

GOOD_JS = (
    "import journal from './meta/_journal.json';\n"
    "import m0000 from './0000_a.sql';\nimport m0001 from './0001_b.sql';\n"
    "export default { journal, migrations: { m0000, m0001 } };\n"
)
GOOD_JOURNAL = {
    "version": "7",
    "dialect": "sqlite",
    "entries": [
        {"idx": 0, "version": "6", "when": 1, "tag": "0000_a", "breakpoints": True},
        {"idx": 1, "version": "6", "when": 2, "tag": "0001_b", "breakpoints": True},
    ],
}


@contextmanager
def bundle_dir(
    *,
    journal: str | bytes | None = None,
    js: str | bytes | None = GOOD_JS,
    sql: dict[str, bytes] | None = None,
    snapshots: dict[str, bytes] | None = None,
) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "drizzle"
        (out / "meta").mkdir(parents=True)
        if journal is None:
            journal = json.dumps(GOOD_JOURNAL)
        data = journal.encode("utf-8", "surrogatepass") if isinstance(journal, str) else journal
        (out / "meta" / "_journal.json").write_bytes(data)
        if js is not None:
            js_data = js.encode("utf-8", "surrogatepass") if isinstance(js, str) else js
            (out / "migrations.js").write_bytes(js_data)
        for name, content in (sql or {"0000_a": b"SELECT 1;", "0001_b": b"SELECT 2;"}).items():
            (out / f"{name}.sql").write_bytes(content)
        for name, content in (snapshots or {}).items():
            (out / "meta" / f"{name}_snapshot.json").write_bytes(content)
        yield out


def check(load: Callable[[], Bundle]) -> Bundle | None:
    try:
        bundle = load()
    except BundleError as exc:
        assert str(exc)  # names something
        return None
    assert isinstance(bundle, Bundle)
    for p in bundle.problems:
        assert p.code in PROBLEM_CODES
        assert p.severity in ("error", "warning")
        assert str(p)
    assert len(bundle.fingerprint) == 64
    for m in bundle.migrations:
        assert isinstance(m.sql, str)
        m.chunks  # noqa: B018 - must not raise
    bundle.prefix(len(bundle.migrations) // 2)
    return bundle


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)

entry_values = st.fixed_dictionaries(
    {},
    optional={
        "idx": st.one_of(
            st.integers(-3, 12), st.floats(allow_nan=False), st.text(max_size=3), st.none()
        ),
        "when": st.one_of(
            st.integers(-(2**60), 2**60), st.floats(allow_nan=False), st.text(max_size=3)
        ),
        "tag": st.one_of(
            st.sampled_from(["0000_a", "0001_b", "0002_c", "../x", "/abs", "a\0b", ""]),
            st.text(max_size=10),
            st.integers(),
        ),
        "breakpoints": st.one_of(st.booleans(), st.integers()),
        "version": st.one_of(st.text(max_size=3), st.integers()),
    },
)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_journal_text(text: str) -> None:
    with bundle_dir(journal=text) as out:
        check(lambda: load_bundle(out))


@FUZZ
@given(json_values)
def test_arbitrary_json_journal(value: object) -> None:
    with bundle_dir(journal=json.dumps(value)) as out:
        check(lambda: load_bundle(out))


@FUZZ
@given(st.lists(entry_values, max_size=6), st.sampled_from(["sqlite", "mysql", 3, None]))
def test_structured_journals(entries: list[dict[str, object]], dialect: object) -> None:
    journal = json.dumps({"version": "7", "dialect": dialect, "entries": entries})
    with bundle_dir(journal=journal) as out:
        check(lambda: load_bundle(out))
    with bundle_dir(journal=journal, js=None) as out:
        check(lambda: load_bundle(out))


JS_PIECES = [
    "import journal from './meta/_journal.json';",
    'import journal from "./meta/_journal.json"',
    "import m0000 from './0000_a.sql';",
    "import m0001 from './0001_b.sql'",
    "import m0002 from './missing.sql';",
    "import x from 'bare-package';",
    "import * as ns from './0000_a.sql';",
    "import { a as m0001 } from './0001_b.sql';",
    "const m0003 = require('./0000_a.sql');",
    "const cfg = { journal, migrations };",
    "const migrations = { m0000, m0001 };",
    "export default",
    "export default {}",
    "export default cfg;",
    "module.exports =",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "journal",
    "migrations:",
    "migrations",
    "m0000",
    "m0001: m0001",
    '"m0001": m0000',
    "[k]: v",
    "...rest",
    ",",
    ":",
    ";",
    "'SELECT 1;'",
    "`SELECT ${x}`",
    "`SELECT 2`",
    "'\\u{1F600}\\x41\\",
    "/*",
    "*/",
    "// comment",
    "\n",
    " ",
    "\\",
    "\ud800",
]


@FUZZ
@given(st.lists(st.sampled_from(JS_PIECES), max_size=30))
def test_migrations_js_from_fragments(pieces: list[str]) -> None:
    with bundle_dir(js=" ".join(pieces)) as out:
        check(lambda: load_bundle(out))


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_migrations_js(text: str) -> None:
    with bundle_dir(js=text) as out:
        check(lambda: load_bundle(out))


@FUZZ
@given(st.binary(max_size=300), st.binary(max_size=300), st.binary(max_size=200))
def test_arbitrary_bytes(sql: bytes, snapshot: bytes, js: bytes) -> None:
    with bundle_dir(js=js, sql={"0000_a": sql, "0001_b": b""}, snapshots={"0000": snapshot}) as out:
        check(lambda: load_bundle(out))
        check(lambda: load_bundle(out, full_snapshots=True))
    with bundle_dir(journal=sql + snapshot) as out:
        check(lambda: load_bundle(out / "meta" / "_journal.json"))


snapshot_texts = st.one_of(
    json_values.map(json.dumps),
    st.builds(
        lambda sid, prev, pad, at_end: json.dumps(
            {"tables": {"t": {"id": {"id": "x"}}}, "pad": pad, "id": sid, "prevId": prev}
            if at_end
            else {"id": sid, "prevId": prev, "pad": pad}
        ),
        st.one_of(st.text(max_size=8), st.integers()),
        st.one_of(st.text(max_size=8), st.none()),
        st.text(max_size=50),
        st.booleans(),
    ),
)


@FUZZ
@given(snapshot_texts, snapshot_texts)
def test_snapshot_identity(a: str, b: str) -> None:
    snaps = {"0000": a.encode(), "0001": b.encode()}
    with bundle_dir(snapshots=snaps) as out:
        fast = check(lambda: load_bundle(out))
        full = check(lambda: load_bundle(out, full_snapshots=True))
        assert fast is not None and full is not None
        # reading only the head/tail never invents a chain problem the full parse would not see
        assert len(fast.problems_with("snapshot-chain")) <= len(
            full.problems_with("snapshot-chain")
        )


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.from_regex(r"\A[0-9]{14}_[a-z_\-A-Z]{1,8}\Z"),
                st.text(
                    alphabet=st.characters(
                        blacklist_categories=["Cs"], blacklist_characters="/\\\0"
                    ),
                    min_size=1,
                    max_size=16,
                ),
            ),
            st.binary(max_size=40),
        ),
        max_size=5,
        unique_by=lambda t: t[0].lower(),
    ),
    st.booleans(),
)
def test_v1_folders(folders: list[tuple[str, bytes]], with_js: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "drizzle"
        out.mkdir()
        made = []
        for name, sql in folders:
            if name in (".", "..") or name.strip() != name:
                continue
            if with_js and any(c in name for c in "'\n\r\u2028\u2029"):
                continue  # cannot be written unescaped in the import's single-quoted string
            try:
                (out / name).mkdir()
            except OSError:
                continue
            (out / name / "migration.sql").write_bytes(sql)
            made.append(name)
        if with_js:
            imports = "".join(
                f"import m{i} from './{n}/migration.sql';\n" for i, n in enumerate(made)
            )
            keys = ",".join(f"{json.dumps(n)}: m{i}" for i, n in enumerate(made))
            (out / "migrations.js").write_text(
                imports + "export default { migrations: {" + keys + "} };", "utf-8"
            )
        bundle = check(lambda: load_bundle(out))
        if bundle is not None and made:
            assert bundle.format == "v1"
            assert sorted(m.name or "" for m in bundle.migrations) == sorted(made)
