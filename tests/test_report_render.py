"""The report renders: its Markdown goes through a GFM parser (``marked``) and its Mermaid ER
diagrams through Mermaid itself, in headless Chromium, as GitHub would show them.

Needs Node/npm (Mermaid and marked are installed once, pinned, into the user cache, not the
repository) and Chromium (``apt-get install chromium``); skipped with the reason otherwise.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_dosqlite.bundle import load_bundle
from pytest_dosqlite.images import ImageCache
from pytest_dosqlite.report import render_report
from test_report import EXAMPLE, check_markdown, tricky_bundle

pytestmark = pytest.mark.slow

MERMAID = "11.12.0"
MARKED = "18.2.1"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass(frozen=True)
class Toolchain:
    chromium: str
    mermaid_js: Path
    marked_js: Path


def _cache_dir() -> Path:
    from pytest_dosqlite.workerd.install import cache_root

    return cache_root() / f"report-render-mermaid-{MERMAID}-marked-{MARKED}"


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        pytest.skip("no Chromium to render Mermaid in (apt-get install chromium)")
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("no Node.js/npm to install Mermaid with")
    target = _cache_dir()
    mermaid_js = target / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
    marked_js = target / "node_modules" / "marked" / "lib" / "marked.umd.js"
    if not (mermaid_js.exists() and marked_js.exists()):
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        proc = subprocess.run(
            [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund",
             "--ignore-scripts", "--no-package-lock", f"mermaid@{MERMAID}", f"marked@{MARKED}"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"npm install failed:\n{proc.stdout}\n{proc.stderr}"
        try:
            staging.rename(target)  # atomic: a concurrent worker may have won the race
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    assert mermaid_js.exists() and marked_js.exists()
    return Toolchain(browser, mermaid_js, marked_js)


PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<style>
body {{ font-family: sans-serif; margin: 16px; max-width: 1200px; }}
table {{ border-collapse: collapse; margin: 8px 0; }}
td, th {{ border: 1px solid #bbb; padding: 2px 6px; font-size: 12px; vertical-align: top; }}
</style>
<script src="{marked}"></script>
<script src="{mermaid}"></script>
</head><body><div id="doc"></div><pre id="status">pending</pre>
<script>
(async () => {{
  const results = [];
  try {{
    const md = {markdown};
    document.getElementById("doc").innerHTML = marked.parse(md, {{ gfm: true }});
    mermaid.initialize({{ startOnLoad: false, securityLevel: "strict" }});
    const blocks = [...document.querySelectorAll("code.language-mermaid")];
    for (let n = 0; n < blocks.length; n++) {{
      try {{
        const {{ svg }} = await mermaid.render("diagram" + n, blocks[n].textContent);
        const div = document.createElement("div");
        div.className = "diagram";
        div.innerHTML = svg;
        blocks[n].parentElement.replaceWith(div);
        results.push("ok");
      }} catch (e) {{
        results.push("error: " + ((e && e.message) || e));
      }}
    }}
  }} catch (e) {{
    results.push("page error: " + e);
  }}
  document.getElementById("status").textContent = JSON.stringify(results);
}})();
</script></body></html>
"""


@dataclass(frozen=True)
class Rendered:
    dom: str
    #: one entry per ```mermaid block: "ok" or the error Mermaid raised
    statuses: list[str]
    svgs: list[str]


def _chromium(tc: Toolchain, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tc.chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--allow-file-access-from-files", f"--user-data-dir={tmp / 'profile'}",
         "--virtual-time-budget=20000", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def render(tc: Toolchain, markdown: str, tmp: Path, screenshot: Path | None = None) -> Rendered:
    page = tmp / "report.html"
    page.write_text(
        PAGE.format(
            marked=tc.marked_js.as_uri(),
            mermaid=tc.mermaid_js.as_uri(),
            markdown=json.dumps(markdown).replace("</", "<\\/"),
        ),
        encoding="utf-8",
    )
    proc = _chromium(tc, tmp, "--dump-dom", page.as_uri())
    dom = proc.stdout
    status = re.search(r'<pre id="status">(.*?)</pre>', dom, re.S)
    assert status is not None, f"no page in the DOM dump:\n{proc.stderr[-3000:]}"
    text = html.unescape(status.group(1))
    assert text != "pending", "Mermaid did not finish within the virtual time budget"
    if screenshot is not None:
        shot = _chromium(
            tc, tmp, f"--screenshot={screenshot}", "--window-size=1300,2600",
            "--hide-scrollbars", page.as_uri(),
        )  # fmt: skip
        assert screenshot.exists() and screenshot.stat().st_size > 10_000, shot.stderr[-3000:]
    svgs = re.findall(r'<div class="diagram"><svg.*?</svg></div>', dom, re.S)
    return Rendered(dom, json.loads(text), svgs)


def _diagram_text(svg: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", svg))


def assert_rendered(r: Rendered, entities: list[str], attributes: list[str]) -> str:
    assert r.statuses == ["ok"], r.statuses
    # Mermaid's error diagram ("Syntax error in text") is not on the page
    assert "Syntax error in text" not in r.dom
    assert len(r.svgs) == 1
    svg = r.svgs[0]
    assert 'aria-roledescription="er"' in svg
    words = set(_diagram_text(svg).split())
    missing = [name for name in entities + attributes if name not in words]
    assert not missing, f"not in the rendered diagram: {missing}"
    return svg


def test_harness_reports_a_mermaid_syntax_error(toolchain: Toolchain, tmp_path: Path) -> None:
    # the negative control: `one` is an ER keyword, so an unsanitized entity name fails
    md = "# x\n\n```mermaid\nerDiagram\n  one {\n    text a\n  }\n```\n"
    r = render(toolchain, md, tmp_path)
    assert len(r.statuses) == 1 and r.statuses[0].startswith("error:"), r.statuses
    assert r.svgs == []


def test_example_project_report_renders(toolchain: Toolchain, tmp_path: Path) -> None:
    md = render_report([load_bundle(EXAMPLE)], base=tmp_path, images=ImageCache())
    tables = check_markdown(md)
    r = render(toolchain, md, tmp_path)
    svg = assert_rendered(
        r,
        ["users", "notes"],
        ["id", "email", "display_name", "user_id", "pinned", "PK", "FK", "UK", "NOT"],
    )
    assert "ON DELETE CASCADE" in _diagram_text(svg)
    assert svg.count("relationshipLine") >= 1 or "edgePaths" in svg
    # the GFM parser saw the same tables we wrote, cell for cell
    html_tables = re.findall(r"<table>(.*?)</table>", r.dom, re.S)
    assert len(html_tables) == len(tables)
    for got, want in zip(html_tables, tables, strict=True):
        rows = re.findall(r"<tr>(.*?)</tr>", got, re.S)
        assert len(rows) == len(want)
        for row, cells in zip(rows, want, strict=True):
            assert len(re.findall(r"<t[hd][ >]", row)) == len(cells)
    assert "<code>0000_init</code>" not in r.dom  # linked, not code
    assert ">0005_notes_pinned_check.sql:1</a>" in r.dom


def test_several_foreign_keys_and_a_self_reference_render(
    toolchain: Toolchain, tmp_path: Path
) -> None:
    md = render_report([tricky_bundle(tmp_path / "proj")], base=tmp_path, images=ImageCache())
    check_markdown(md)
    shot = Path(os.environ.get("DOSQLITE_REPORT_SCREENSHOT", tmp_path / "report.png"))
    r = render(toolchain, md, tmp_path, screenshot=shot)
    svg = assert_rendered(
        r,
        ["users", "posts", "categories", "profiles", "post_tags", "tags", "order_items", "one_"],
        ["author_id", "editor_id", "parent_id", "handle", "class", "Style", "u", "one"],
    )
    text = _diagram_text(svg)
    for label in (
        "author_id: ON DELETE CASCADE",
        "editor_id: ON DELETE SET NULL",
        "parent_id: ON DELETE SET NULL",
        "tag_id: ON DELETE RESTRICT",
    ):
        assert label in " ".join(text.split()), label
    # one drawn relationship per foreign key: seven between two tables, and the
    # self-reference, which Mermaid draws as a loop of three segments
    ids = re.findall(r'<path[^>]*id="([^"]+)"[^>]*class="[^"]*relationshipLine', svg)
    loops = [i for i in ids if "cyclic-special" in i]
    assert len(ids) - len(loops) == 7, ids
    assert {re.sub(r"-\d+-cyclic-special.*", "", i) for i in loops} == {"entity-categories"}
