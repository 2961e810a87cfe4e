"""Run every built-in check on the docs example that makes it fail, and paste the real output.

Why: the "What a failure looks like" blocks in ``docs/checks/*.md`` must be what the checks
really print, not prose. This script runs each check on its example (below) exactly as
``python -m pytest_dosqlite check`` does, and with ``--write`` replaces the text between
``<!-- output:begin -->`` and ``<!-- output:end -->`` in the check's page. Paths are shown
relative to the repository root. ``tests/test_docs.py`` re-runs the examples to keep the pages
honest.

Usage, from the repository root::

    PYTHONPATH=src python docs/examples/run.py                 # print every output
    PYTHONPATH=src python docs/examples/run.py lint idempotent # some of them
    PYTHONPATH=src python docs/examples/run.py --write         # refresh the pages
"""

from __future__ import annotations

import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PAGES = REPO / "docs" / "checks"
BEGIN = "<!-- output:begin -->"
END = "<!-- output:end -->"


@dataclass(frozen=True)
class Example:
    """The example a check fails on, and how the check is configured for it."""

    #: bundle folder, relative to docs/examples
    bundle: str
    #: Worker project folder (for checks that read wrangler config), relative to docs/examples
    project: str | None = None
    #: Settings attributes
    settings: dict[str, Any] = field(default_factory=dict)
    #: CheckContext.extra entries
    extra: dict[str, Any] = field(default_factory=dict)
    #: a check whose finding is a warning (it does not raise)
    warns: bool = False
    #: "workerd": the check runs on the real runtime (needs Node and the workerd harness)
    backend: str = "emulator"


EXAMPLES: dict[str, Example] = {
    "bundle_integrity": Example("missing-key/drizzle"),
    "upgrade_from_empty": Example("unedited-custom/drizzle"),
    "idempotent": Example("rerun-hack/drizzle"),
    "schema_snapshot": Example("edited-migration/drizzle"),
    "wrangler_contract": Example("kv-class/drizzle", project="kv-class"),
    "do_contract": Example("no-migrate/drizzle", project="no-migrate", backend="workerd"),
    "upgrade_from_every_version": Example("merged-branch/drizzle", settings={"git_history": False}),
    "concurrent_starts": Example(
        "notes/drizzle",
        settings={"concurrency": 4},
        extra={"fleet_start": "starts:await_before_migrate"},
    ),
    "crash_recovery": Example("notes/drizzle", extra={"fleet_start": "starts:statement_per_event"}),
    "data_preserved": Example("recreate-parent/drizzle"),
    "matches_drizzle_snapshot": Example("snapshot-drift/drizzle"),
    "lint": Example("copies-missing-column/drizzle"),
    "startup_budget": Example("slow-backfill/drizzle", extra={"budget_sample_rows": 2_000}),
}


def context(check: str) -> Any:
    """The CheckContext the check runs with on its example."""
    from pytest_dosqlite.checks import CheckContext, Settings
    from pytest_dosqlite.images import ImageCache

    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # the fleet_start hooks live next to this file
    ex = EXAMPLES[check]
    settings = Settings(**ex.settings)
    path = HERE / ex.bundle
    if ex.project is None:
        ctx = CheckContext.for_bundle(path, settings=settings, images=ImageCache())
    else:
        from pytest_dosqlite.discovery import discover

        project = discover(HERE / ex.project)
        ref = project.bundle_at(path)
        assert ref is not None, f"{ex.project} does not find {ex.bundle}"
        ctx = CheckContext(
            bundle=ref.load(),
            settings=settings,
            images=ImageCache(),
            project=project,
            do_classes=tuple(ref.do_classes),
        )
    ctx.extra.update(ex.extra)
    return ctx


def run(check: str) -> tuple[bool, str]:
    """(found something, the text ``python -m pytest_dosqlite check`` prints for it)."""
    from pytest_dosqlite.errors import CheckFailure
    from pytest_dosqlite.registry import get_check

    ctx = context(check)
    backend = EXAMPLES[check].backend
    runtime = None
    if backend == "workerd":
        from pytest_dosqlite.backends import WorkerdRuntime

        runtime = WorkerdRuntime(emulator_images=ctx.images)
        ctx.extra["workerd"] = runtime
        ctx.extra["emulator_images"] = ctx.images
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            get_check(check, backend)(ctx)
        except CheckFailure as exc:
            return True, _relative(f"FAILED {check}\n{exc.render()}")
        finally:
            if runtime is not None:
                runtime.stop()
    shown = [f"{w.category.__name__}: {w.message}" for w in caught]
    if shown:
        return True, _relative(f"passed {check} (with warnings)\n" + "\n".join(shown))
    return False, f"passed {check}"


def _relative(text: str) -> str:
    return text.replace(str(REPO) + "/", "").replace(str(REPO), ".")


def summary(text: str) -> str:
    """The failure's first line, numbers masked (timings and counts vary between runs)."""
    lines = text.splitlines()
    first = lines[1] if len(lines) > 1 else ""
    return re.sub(r"\d+(?:[.,]\d+)*", "N", first)


def write(check: str, text: str) -> None:
    page = PAGES / f"{check}.md"
    body = page.read_text(encoding="utf-8")
    start, end = body.index(BEGIN) + len(BEGIN), body.index(END)
    block = "\n```text\n" + text.rstrip() + "\n```\n"
    page.write_text(body[:start] + block + body[end:], encoding="utf-8")


def main(argv: list[str]) -> int:
    do_write = "--write" in argv
    names = [a for a in argv if not a.startswith("--")] or list(EXAMPLES)
    for name in names:
        found, text = run(name)
        print(text, end="\n\n")
        if do_write and found:
            write(name, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
