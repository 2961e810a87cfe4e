"""The documentation in ``docs/`` covers every check, lint rule and problem code, and stays true.

Pages exist for every built-in check (``registry.CHECK_NAMES``), every lint rule (``lint.RULES``,
titled with its id and name, carrying the registry's summary and fix verbatim) and every bundle
problem code (``bundle.PROBLEM_CODES``, one row in ``docs/integrity.md``); every relative link
resolves; each check's example still fails that check with the output pasted in its page; each
lint example still fires its rule; and the public-project findings the pages cite are still what
the lint and the loader report on the corpus (skipped without ``../shared``).
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from conftest import REPO, shared_path
from pytest_dosqlite import registry
from pytest_dosqlite.bundle import PROBLEM_CODES, load_bundle
from pytest_dosqlite.lint import RULES, lint_bundle
from pytest_dosqlite.registry import CHECK_NAMES

DOCS = REPO / "docs"
CHECKS = DOCS / "checks"
LINT = DOCS / "lint"


def _module(path: Path) -> ModuleType:
    name = f"_dosqlite_docs_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def generator() -> ModuleType:
    return _module(DOCS / "generate.py")


def examples() -> ModuleType:
    return _module(DOCS / "examples" / "run.py")


def rule_page(rule_id: str) -> Path:
    return LINT / f"{rule_id}-{RULES[rule_id].name}.md"


def output_block(page: Path) -> str:
    text = page.read_text(encoding="utf-8")
    m = re.search(r"<!-- output:begin -->\n```text\n(.*?)\n```\n<!-- output:end -->", text, re.S)
    assert m, f"{page.name}: no pasted output between the output markers"
    return m.group(1)


# ------------------------------------------------------------------------------ coverage


@pytest.mark.parametrize("check", CHECK_NAMES)
def test_every_check_has_a_page(check: str) -> None:
    page = CHECKS / f"{check}.md"
    assert page.is_file(), f"docs/checks/{check}.md is missing"
    text = page.read_text(encoding="utf-8")
    assert text.splitlines()[0] == f"# `{check}`"
    for heading in (
        "## What it catches",
        "## Why it matters on a Durable Object",
        "## What a failure looks like",
        "## In public projects",
        "## How to fix it in a Drizzle project",
    ):
        assert heading in text, f"{page.name}: no '{heading}' section"
    assert output_block(page).startswith((f"FAILED {check}\n", f"passed {check} (with warnings)"))
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    assert f"(checks/{check}.md)" in index


def test_no_page_for_a_check_that_does_not_exist() -> None:
    pages = {p.stem for p in CHECKS.glob("*.md")}
    assert pages == set(CHECK_NAMES)
    assert set(examples().EXAMPLES) == set(CHECK_NAMES)


@pytest.mark.parametrize("rule_id", list(RULES))
def test_every_rule_has_a_page_with_the_registry_text(rule_id: str) -> None:
    rule = RULES[rule_id]
    page = rule_page(rule_id)
    assert page.is_file(), f"{page.name} is missing: run `python docs/generate.py`"
    text = page.read_text(encoding="utf-8")
    title = text.splitlines()[0]
    assert rule.id in title and rule.name in title
    assert f"| `{rule.id}` | `{rule.name}` | {rule.severity} |" in text
    stale = "is out of date: run `PYTHONPATH=src python docs/generate.py`"
    assert rule.summary in text, f"{page.name}: summary {stale}"
    assert rule.fix in text, f"{page.name}: fix {stale}"
    index = (LINT / "README.md").read_text(encoding="utf-8")
    assert f"[{rule.id}]({page.name})" in index


def test_no_page_for_a_rule_that_does_not_exist() -> None:
    assert {p.name for p in LINT.glob("DO*.md")} == {rule_page(r).name for r in RULES}
    assert set(generator().EXTRAS) == set(RULES)


@pytest.mark.parametrize("code", list(PROBLEM_CODES))
def test_every_problem_code_has_a_row(code: str) -> None:
    info = PROBLEM_CODES[code]
    text = (DOCS / "integrity.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith(f"| `{code}` |")]
    assert len(rows) == 1, f"docs/integrity.md has {len(rows)} rows for {code}"
    row = rows[0]
    assert row.startswith(f"| `{code}` | {info.severity} |")
    for part in (info.summary, info.explanation, info.fix):
        assert part.replace("|", "\\|") in row, f"{code}: run `python docs/generate.py`"


# -------------------------------------------------------------------------------- links

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.lstrip("#").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    out: set[str] = set()
    in_code = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            out.add(_anchor(line))
    return out


def _links_of(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in _LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def _broken(page: Path, target: str, root: Path) -> str | None:
    """Why the relative link ``target`` of ``page`` does not resolve (None: it does)."""
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    if not resolved.exists():
        return f"broken link {target}"
    if not resolved.is_relative_to(root):
        return f"{target} leaves the repository"
    if anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
        return f"no #{anchor} in {path or page.name}"
    return None


def _links() -> list[tuple[Path, str]]:
    return [(page, t) for page in sorted(DOCS.rglob("*.md")) for t in _links_of(page)]


def test_docs_have_relative_links() -> None:
    assert len(_links()) > 100  # the parser sees the links it should check


@pytest.mark.parametrize(
    ("page", "target"),
    [pytest.param(p, t, id=f"{p.relative_to(DOCS)}->{t}") for p, t in _links()],
)
def test_relative_link_resolves(page: Path, target: str) -> None:
    problem = _broken(page, target, REPO)
    assert problem is None, f"{page.relative_to(REPO)}: {problem}"


def test_link_checker_catches_broken_links(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "# Title\n## In public projects\n[a](p.md#title) [b](#in-public-projects) "
        "[c](missing.md) [d](p.md#nowhere) [e](https://x.org)\n```\n[f](code.md)\n```\n",
        encoding="utf-8",
    )
    links = _links_of(page)
    assert links == ["p.md#title", "#in-public-projects", "missing.md", "p.md#nowhere"]
    verdicts = [_broken(page, t, tmp_path) for t in links]
    assert verdicts[:2] == [None, None]
    assert verdicts[2] == "broken link missing.md"
    assert verdicts[3] == "no #nowhere in p.md"
    assert _broken(page, "../", tmp_path) == "../ leaves the repository"


def test_no_machine_paths_in_docs() -> None:
    for path in DOCS.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".py", ".sql", ".js", ".json", ".toml"):
            text = path.read_text(encoding="utf-8")
            for marker in ("/work/", "/tmp/", "/home/", str(REPO)):
                assert marker not in text, f"{path.relative_to(REPO)} contains {marker!r}"


# ------------------------------------------------------------------------ examples are real


#: checks that need the real runtime (Node and the workerd harness) to run their example
WORKERD_ONLY: frozenset[str] = getattr(registry, "WORKERD_ONLY", frozenset())
_NEEDS_NODE = [
    pytest.mark.workerd,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH"),
]


@pytest.mark.parametrize(
    "check",
    [pytest.param(c, marks=_NEEDS_NODE if c in WORKERD_ONLY else ()) for c in CHECK_NAMES],
)
def test_check_example_still_fails_with_the_pasted_output(check: str) -> None:
    run = examples()
    found, text = run.run(check)
    assert found, f"docs example for {check} no longer fails it"
    pasted = output_block(CHECKS / f"{check}.md")
    assert run.summary(text) == run.summary(pasted), (
        f"docs/checks/{check}.md shows another failure than the check reports now: "
        "run `PYTHONPATH=src python docs/examples/run.py --write`"
    )


@pytest.mark.parametrize("rule_id", list(RULES))
def test_lint_example_fires_and_its_output_is_pasted(rule_id: str) -> None:
    findings = generator().example_findings(rule_id)
    assert findings, f"the {rule_id} example does not fire the rule"
    text = rule_page(rule_id).read_text(encoding="utf-8")
    for line in findings:
        assert line in text, f"{rule_id}: page output is stale, run `python docs/generate.py`"


# --------------------------------------------------------------------- public projects


def _corpus_bundle(project: str, bundle: str) -> Path:
    return shared_path("corpus", project, *bundle.split("/"))


@functools.cache
def _corpus_findings(project: str, bundle: str) -> tuple[tuple[str, str, int], ...]:
    findings = lint_bundle(load_bundle(_corpus_bundle(project, bundle)))
    return tuple((f.rule, f.path.name if f.path else "", f.line) for f in findings)


def _cited_lint() -> list[tuple[str, object]]:
    gen = generator()
    return [(rule_id, seen) for rule_id, extra in gen.EXTRAS.items() for seen in extra.seen]


@pytest.mark.parametrize(
    ("rule_id", "seen"),
    [
        pytest.param(r, s, id=f"{r}-{s.project}-{s.file}:{s.line}")  # type: ignore[attr-defined]
        for r, s in _cited_lint()
    ],
)
def test_cited_lint_finding_is_real(rule_id: str, seen: object) -> None:
    project, bundle, file, line = (
        seen.project,  # type: ignore[attr-defined]
        seen.bundle,  # type: ignore[attr-defined]
        seen.file,  # type: ignore[attr-defined]
        seen.line,  # type: ignore[attr-defined]
    )
    where = [(name, ln) for rule, name, ln in _corpus_findings(project, bundle) if rule == rule_id]
    assert (file, line) in where, f"{rule_id} no longer reported at {file}:{line}: {where}"


@pytest.mark.parametrize(
    "problem", [pytest.param(p, id=p.code) for p in generator().INTEGRITY_SEEN]
)
def test_cited_integrity_problem_is_real(problem: object) -> None:
    code, seen = problem.code, problem.seen  # type: ignore[attr-defined]
    root = _corpus_bundle(seen.project, seen.bundle)
    problems = [p for p in load_bundle(root).problems if p.code == code]
    places = [
        (p.path.resolve().relative_to(root.resolve()).as_posix() if p.path else "", p.line or 0)
        for p in problems
    ]
    assert (seen.file, seen.line) in places, f"{code} not reported at {seen.file}: {places}"


def test_cited_github_links_name_the_commit_and_line() -> None:
    gen = generator()
    for rule_id, seen in _cited_lint():
        url = seen.url()  # type: ignore[attr-defined]
        assert url in rule_page(rule_id).read_text(encoding="utf-8")
        assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+/blob/[0-9a-f]{40}/\S+#L\d+", url)
    assert "_history" not in "".join(s.url() for _, s in _cited_lint())  # type: ignore[attr-defined]
    assert len(gen.PROJECTS) == 8
