"""``do_contract``: the project's own Worker, built and cold-started in workerd.

The config-to-spec tests need no Node. The ``workerd`` tests build ``example_project`` (copied
without ``node_modules``, as on a fresh clone: drizzle-orm then comes from the harness install)
and broken copies of it, each of which must fail with the reason a developer needs.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_dosqlite.backends import WorkerdRuntime
from pytest_dosqlite.checks import CheckContext, Settings
from pytest_dosqlite.discovery import TextRule, discover, parse_wrangler_config
from pytest_dosqlite.do_contract import build_spec, do_contract, module_rules
from pytest_dosqlite.errors import CheckFailure, CheckSkipped
from pytest_dosqlite.workerd import Installation

EXAMPLE = Path(__file__).resolve().parents[1] / "example_project"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")


def _copy(dest: Path) -> Path:
    shutil.copytree(
        EXAMPLE, dest, ignore=shutil.ignore_patterns("node_modules", ".wrangler", "__pycache__")
    )
    return dest


def _ctx(root: Path, runtime: WorkerdRuntime | None) -> CheckContext:
    project = discover(root)
    (ref,) = project.bundles
    extra = {"workerd": runtime} if runtime is not None else {}
    return CheckContext(
        bundle=ref.load(),
        settings=Settings(concurrency=4),
        project=project,
        do_classes=ref.do_classes,
        extra=extra,
    )


# -- no Node needed ------------------------------------------------------------------------------


def test_module_rules_follow_wrangler(tmp_path: Path) -> None:
    w = parse_wrangler_config(EXAMPLE / "wrangler.jsonc")
    rules = module_rules(w, (4, 86, 0))
    assert rules[0] == {"type": "Text", "globs": ["**/*.sql"]}  # the config's, fallthrough
    assert {"type": "Text", "globs": ["**/*.txt", "**/*.html", "**/*.sql"]} in rules
    old = module_rules(w, (4, 20, 0))
    assert {"type": "Text", "globs": ["**/*.txt", "**/*.html"]} in old
    # a Text rule without fallthrough ends the Text type: wrangler ignores its defaults
    closed = type(w)(path=w.path, rules=(TextRule("Text", ("**/*.md",), False),))
    assert [r for r in module_rules(closed, (4, 86, 0)) if r["type"] == "Text"] == [
        {"type": "Text", "globs": ["**/*.md"]}
    ]
    assert not any("**/*.sql" in r["globs"] for r in module_rules(closed, None))


def test_spec_from_the_example_wrangler_config(tmp_path: Path) -> None:
    w = parse_wrangler_config(EXAMPLE / "wrangler.jsonc")
    inst = Installation(tmp_path / "h", "node", tmp_path / "workerd", "workerd x", False, 0.0)
    spec = build_spec(w, ("NotesDurableObject", "Unbound"), inst, tmp_path / "work")
    assert spec["entry"] == str(EXAMPLE / "src" / "index.ts")
    assert spec["name"] == "dosqlite-example-notes"
    assert spec["compatibilityDate"] == "2026-04-26"
    assert spec["durableObjects"]["NOTES"] == {
        "className": "NotesDurableObject",
        "useSQLite": True,
    }
    assert spec["durableObjects"]["__DOSQLITE_Unbound"]["className"] == "Unbound"
    targets = {t["className"]: t for t in spec["targets"]}
    assert targets["NotesDurableObject"]["binding"] == "NOTES"
    assert targets["NotesDurableObject"]["concurrency"] == 8
    assert len(targets["NotesDurableObject"]["names"]) == 2
    assert spec["nodePaths"] == [str(tmp_path / "h" / "node_modules")]
    assert spec["persist"] == str(tmp_path / "work" / "state")


def test_skipped_without_the_workerd_backend() -> None:
    with pytest.raises(CheckSkipped, match="--dosqlite-backend=workerd"):
        do_contract(_ctx(EXAMPLE, None))


def test_skipped_for_a_bundle_outside_a_worker_project() -> None:
    ctx = CheckContext.for_bundle(EXAMPLE / "drizzle", extra={"workerd": WorkerdRuntime()})
    with pytest.raises(CheckSkipped, match="no Worker project"):
        do_contract(ctx)


# -- real runtime -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime() -> Iterator[WorkerdRuntime]:
    rt = WorkerdRuntime()
    yield rt
    rt.stop()


def _fails(root: Path, runtime: WorkerdRuntime) -> str:
    with pytest.raises(CheckFailure) as info:
        do_contract(_ctx(root, runtime))
    return info.value.render()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


@pytest.mark.workerd
@needs_node
def test_example_project_passes(runtime: WorkerdRuntime, tmp_path: Path) -> None:
    root = _copy(tmp_path / "example")
    ctx = _ctx(root, runtime)
    do_contract(ctx)
    assert "do_contract bundled drizzle-orm 0.45.4 from the harness install" in " ".join(
        ctx.extra["notes"]
    )


@pytest.mark.workerd
@needs_node
def test_no_migrate_call_fails(runtime: WorkerdRuntime, tmp_path: Path) -> None:
    root = _copy(tmp_path / "example")
    _edit(
        root / "src" / "index.ts",
        "await migrate(this.db, migrations);",
        "void migrations; void migrate;",
    )
    text = _fails(root, runtime)
    assert "NotesDurableObject does not migrate itself to the bundle's head on workerd" in text
    assert "its constructor does not run drizzle's migrate()" in text
    assert "-table users: CREATE TABLE `users`" in text
    assert "idFromName('dosqlite-contract-0', 'dosqlite-contract-1')" in text


@pytest.mark.workerd
@needs_node
def test_wrong_import_path_fails_the_build_with_file_and_line(
    runtime: WorkerdRuntime, tmp_path: Path
) -> None:
    root = _copy(tmp_path / "example")
    index = root / "src" / "index.ts"
    _edit(index, "from '../drizzle/migrations';", "from '../migrations/migrations';")
    line = next(i for i, t in enumerate(index.read_text().splitlines(), 1) if "../migrations/" in t)
    text = _fails(root, runtime)
    assert "the Worker of wrangler.jsonc does not build" in text
    assert f'src/index.ts:{line}:23: Could not resolve "../migrations/migrations"' in text
    assert "Fix the import path" in text


@pytest.mark.workerd
@needs_node
def test_missing_text_rule_on_old_wrangler_fails_the_build(
    runtime: WorkerdRuntime, tmp_path: Path
) -> None:
    root = _copy(tmp_path / "example")
    config = root / "wrangler.jsonc"
    text = config.read_text()
    config.write_text(re.sub(r',\s*"rules": \[.*?\n  \]', "", text, flags=re.S))
    assert '"rules"' not in config.read_text()
    package = json.loads((root / "package.json").read_text())
    package["devDependencies"]["wrangler"] = "4.20.0"  # before the default **/*.sql rule
    (root / "package.json").write_text(json.dumps(package))
    out = _fails(root, runtime)
    assert (
        'drizzle/migrations.js:2:18: No loader is configured for ".sql" files: '
        "drizzle/0000_init.sql" in out
    )
    assert "Add a Text module rule to wrangler.jsonc" in out
    # with wrangler 4.57+ the default rule covers it: the same config builds and migrates
    package["devDependencies"]["wrangler"] = "4.86.0"
    (root / "package.json").write_text(json.dumps(package))
    do_contract(_ctx(root, runtime))


@pytest.mark.workerd
@needs_node
def test_throwing_constructor_fails_with_its_error(runtime: WorkerdRuntime, tmp_path: Path) -> None:
    root = _copy(tmp_path / "example")
    _edit(
        root / "src" / "index.ts",
        "super(ctx, env);",
        "super(ctx, env);\n    if (env.NOTES) throw new Error('constructor boom');",
    )
    text = _fails(root, runtime)
    assert "every cold start failed with:\n      constructor boom" in text
    assert "the constructor throws; nothing it wrote was kept" in text


@pytest.mark.workerd
@needs_node
def test_failing_bundle_gives_drizzles_error_and_the_emulators_cause(
    runtime: WorkerdRuntime, tmp_path: Path
) -> None:
    root = _copy(tmp_path / "example")
    drizzle = root / "drizzle"
    (drizzle / "0006_dup.sql").write_text("CREATE TABLE `users` (`id` integer);")
    journal = json.loads((drizzle / "meta" / "_journal.json").read_text())
    last = journal["entries"][-1]
    journal["entries"].append({**last, "idx": 6, "tag": "0006_dup", "when": last["when"] + 1000})
    (drizzle / "meta" / "_journal.json").write_text(json.dumps(journal, indent=2))
    _edit(
        drizzle / "migrations.js",
        "import m0005 from './0005_notes_pinned_check.sql';",
        "import m0005 from './0005_notes_pinned_check.sql';\nimport m0006 from './0006_dup.sql';",
    )
    _edit(drizzle / "migrations.js", "m0005\n", "m0005,\nm0006\n")
    text = _fails(root, runtime)
    assert "every cold start failed with:\n      DrizzleError: Rollback" in text
    assert "the emulator cannot migrate this bundle either: table `users` already exists" in text
    assert "statement: CREATE TABLE `users` (`id` integer);" in text
