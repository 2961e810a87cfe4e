"""``wrangler_contract``: the Worker's wrangler config can run the bundle at all.

A bundle is only useful to a DO class whose storage is SQLite: a class declared in
``new_classes`` is KV-backed and ``ctx.storage.sql`` throws there; a class never declared in a
migration does not deploy. Durable Object migration tags must be unique, and ``migrations.js``
imports ``.sql`` files, which only become strings through a ``Text`` module rule (wrangler adds
one for ``**/*.sql`` by default from 4.57.0 on).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CheckFailure

if TYPE_CHECKING:
    from .checks import CheckContext

__all__ = [
    "DEFAULT_SQL_RULE_SINCE",
    "drizzle_orm_migrator",
    "package_version",
    "wrangler_contract",
    "wrangler_version",
]

#: first wrangler release whose default module rules import ``**/*.sql`` as Text
DEFAULT_SQL_RULE_SINCE = (4, 57, 0)


def wrangler_version(project_root: Path) -> tuple[tuple[int, int, int] | None, str]:
    """The wrangler version a project uses (installed, else the minimum its spec allows)."""
    spec, source = package_version("wrangler", [project_root])
    return (_parse(spec) if spec is not None else None), source


def drizzle_orm_migrator(start: Path, stop: Path) -> tuple[str | None, str]:
    """Which drizzle-orm migrator the Worker in ``start`` bundles: ``"v1"`` (1.0.0-beta.19 and
    later: ``<timestamp>_<name>`` folders, no journal), ``"v0"`` (0.x and 1.0.0-beta.1: the
    journal) or None when unknown; and where that was read, from ``start`` up to ``stop`` (a
    monorepo hoists it)."""
    folders = [start, *start.parents]
    folders = folders[: folders.index(stop) + 1] if stop in folders else folders[:1]
    spec, source = package_version("drizzle-orm", folders)
    return (_migrator_of(spec) if spec is not None else None), source


def package_version(name: str, folders: list[Path]) -> tuple[str | None, str]:
    """The version of npm package ``name`` the project in ``folders[0]`` builds with, as Node
    resolves it: the nearest ``node_modules/<name>`` of ``folders`` (nearest first), else the
    spec of the nearest ``package.json`` that declares it; and where that was read."""
    for folder in folders:
        try:
            data = json.loads((folder / "node_modules" / name / "package.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
        version = data.get("version") if isinstance(data, dict) else None
        if isinstance(version, str) and version:
            return version, f"installed {name} {version}"
    for folder in folders:
        try:
            data = json.loads((folder / "package.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for section in ("devDependencies", "dependencies"):
            deps = data.get(section) if isinstance(data, dict) else None
            spec = deps.get(name) if isinstance(deps, dict) else None
            if isinstance(spec, str):
                return spec, f"package.json {section} {name} {spec!r}"
    return None, f"{name} is in no package.json"


def _migrator_of(version: str) -> str | None:
    m = re.search(r"(\d+)\.(\d+)\.(\d+)(?:-(beta|rc)\.(\d+))?", version)
    if not m:
        return None
    if int(m.group(1)) == 0:
        return "v0"
    if m.group(4) == "beta" and int(m.group(5)) < 19:
        return "v0"  # 1.0.0-beta.1 still shipped the journal migrator (npm has no beta.2-18)
    return "v1"


def _parse(spec: str) -> tuple[int, int, int] | None:
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", spec)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def wrangler_contract(ctx: CheckContext) -> None:
    """Every DO class that uses the bundle is SQLite-backed and deployable, migration tags are
    unique, and the ``.sql`` files ``migrations.js`` imports are bundled as text."""
    project: Any = ctx.project
    if project is None:
        from .errors import CheckSkipped

        # a bundle given directly, without a Worker project: nothing to check it against
        raise CheckSkipped("no wrangler config: the bundle was given without its Worker project")
    broken = [e for e in getattr(project, "errors", ()) if getattr(e, "severity", "") == "error"]
    if broken:
        # a config that does not parse declares nothing: every class would look fine
        raise CheckFailure(
            "cannot check the Worker's contract: "
            + (
                "a config of its project has an error"
                if len(broken) == 1
                else f"the configs of its project have {len(broken)} errors"
            ),
            [("Config error", str(e)) for e in broken],
        )
    if not getattr(project, "wrangler_configs", ()):
        from .errors import CheckSkipped

        # a project known by its drizzle config alone: it passed vacuously, also for a DO that
        # wrangler would declare key-value backed
        raise CheckSkipped(f"no wrangler config in the project {project.root}")
    ref = project.bundle_at(ctx.bundle.root)
    sections: list[tuple[str, str]] = []
    classes = tuple(ref.do_classes) if ref is not None else ()
    wranglers = list(project.wrangler_configs)
    if ref is not None and ref.wrangler is not None:
        wranglers = [w for w in wranglers if w.path == ref.wrangler] or wranglers

    if not classes and ctx.bundle.migrations_js_path is not None:
        # a DO bundle nobody could link: the only candidates are classes that are not SQLite
        classes = tuple(c.name for w in wranglers for c in w.classes if not c.is_sqlite)
    for w in wranglers:
        by_name = {c.name: c for c in w.classes}
        for name in classes:
            cls = by_name.get(name)
            if cls is None:
                continue
            if cls.storage == "kv":
                sections.append(
                    (
                        f"{name} is KV-backed",
                        f"{w.path}: {name} is declared in `new_classes` (migration "
                        f"{cls.migration_tag!r}). A KV-backed Durable Object has no SQL API: "
                        "`ctx.storage.sql` throws, so drizzle's migrate() can never run. "
                        "Declare SQLite classes with `new_sqlite_classes`; an existing KV class "
                        "cannot be converted, so create a new class.",
                    )
                )
            elif cls.storage == "unknown":
                sections.append(
                    (
                        f"{name} is not declared",
                        f"{w.path}: {name} is bound but no `[[migrations]]` entry creates it. "
                        f'Add `{{ tag = "v1", new_sqlite_classes = ["{name}"] }}`.',
                    )
                )
            elif cls.deleted:
                sections.append((f"{name} is deleted", f"{w.path}: a migration deletes {name}."))
            if cls.storage == "sqlite" and cls.kv_envs:
                where = ", ".join(f"env.{e}" for e in cls.kv_envs)
                sections.append(
                    (
                        f"{name} is KV-backed in {where}",
                        f"{w.path}: the migrations of {where} declare {name} in `new_classes`. "
                        "Each environment deploys its own copy of the class, there without "
                        "the SQL API: `ctx.storage.sql` throws and migrate() never runs. Use "
                        "`new_sqlite_classes` there too.",
                    )
                )
        # each environment deploys its own copy of the classes: tags repeat across envs
        tags = [(m.env or "", m.tag) for m in w.migrations if m.tag]
        dupes = sorted({t for (env, t), n in Counter(tags).items() if n > 1})
        if dupes:
            sections.append(
                (
                    "Duplicate migration tags",
                    f"{w.path}: {', '.join(dupes)}. Each Durable Object migration needs a "
                    "unique tag; wrangler applies them in order and refuses repeated ones.",
                )
            )

    imports_sql = ctx.bundle.migrations_js_path is not None and any(
        m.path is not None and m.path.suffix == ".sql" for m in ctx.bundle.migrations
    )
    if imports_sql and wranglers and classes:
        uncovered = [w for w in wranglers if not w.text_rule_covers("0000_x.sql")]
        if uncovered:
            version, source = wrangler_version(uncovered[0].path.parent)
            if version is None:
                import warnings

                from .errors import DosqliteWarning

                warnings.warn_explicit(
                    DosqliteWarning(
                        f"{uncovered[0].path}: migrations.js imports .sql files and no Text rule "
                        f"covers them; whether wrangler bundles them as text depends on its "
                        f"version ({source}): 4.57.0 and later do by default. Add "
                        '`rules = [{ type = "Text", globs = ["**/*.sql"] }]` to be sure.'
                    ),
                    DosqliteWarning,
                    str(uncovered[0].path),
                    1,
                )
            elif version < DEFAULT_SQL_RULE_SINCE:
                since = ".".join(map(str, DEFAULT_SQL_RULE_SINCE))
                sections.append(
                    (
                        "No Text rule for .sql",
                        f"{uncovered[0].path}: migrations.js imports .sql files, but no "
                        f'`rules = [{{ type = "Text", globs = ["**/*.sql"] }}]` covers them and '
                        f"the project's wrangler ({source}) is older than {since}, whose "
                        "default rules include it. The Worker fails to build (or imports "
                        "nothing) and every DO fails to start. Add the rule or upgrade wrangler.",
                    )
                )
    for source, line, spec in ref.missing_imports if ref is not None else ():
        fix = (
            "drizzle-kit writes migrations.js next to the journal for `driver: "
            "'durable-sqlite'`: run `drizzle-kit generate` and commit the file (it must not be "
            "git-ignored)."
            if spec.rstrip("/").rsplit("/", 1)[-1].startswith("migrations")
            else "Restore the file, or import one that exists."
        )
        sections.append(
            (
                "The Worker imports a file that does not exist",
                f"{source}:{line} imports {spec!r}, and {ctx.bundle.root} has no such file: "
                f'wrangler\'s build stops with `Could not resolve "{spec}"`, so the Worker '
                f"cannot be deployed. {fix}",
            )
        )
    if ref is not None and ref.wrangler is not None and ctx.bundle.migrations_js_path is not None:
        sections += _migrator_mismatch(ctx.bundle, ref.wrangler.parent, project.root)
    if ref is not None and not classes and project.sqlite_classes and ctx.bundle.migrations_js_path:
        ctx.extra.setdefault("notes", []).append(
            f"no DO class was linked to {ctx.bundle.root} ({ref.do_link})"
        )
    if sections:
        raise CheckFailure(f"the wrangler config cannot run bundle {ctx.bundle.root}", sections)


def _migrator_mismatch(bundle: Any, worker: Path, root: Path) -> list[tuple[str, str]]:
    """The bundle's layout against the migrator of the drizzle-orm the Worker bundles."""
    migrator, source = drizzle_orm_migrator(worker, root)
    if migrator == "v1" and bundle.format != "v1":
        return [
            (
                "drizzle-orm 1.x runs a drizzle 0.x bundle",
                f"the Worker bundles {source}, whose durable-sqlite migrate() reads only the "
                "keys of migrations.js (`m0000`...) and ignores meta/_journal.json: a fresh DO "
                "records them with no timestamp, and every DO that drizzle 0.x migrated fails "
                "to start (its ledger upgrade matches no row to a `m0000` name, so the first "
                "migration runs again). Run `npx drizzle-kit up` with the drizzle-kit 1.x that "
                "matches, and commit the `<timestamp>_<name>` folders and migrations.js it "
                "writes.",
            )
        ]
    if migrator == "v0" and bundle.format == "v1":
        return [
            (
                "drizzle-orm 0.x runs a drizzle-kit 1.x bundle",
                f"the Worker bundles {source}, whose durable-sqlite migrate() reads "
                "`migrations.journal.entries`; this migrations.js has no journal, so every DO "
                "fails to start with `TypeError: Cannot read properties of undefined (reading "
                "'entries')`. Upgrade drizzle-orm to the 1.x of the drizzle-kit that wrote the "
                "bundle.",
            )
        ]
    return []
