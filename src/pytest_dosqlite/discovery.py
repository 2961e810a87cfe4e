"""Find a Worker project's Durable Objects, drizzle configs and migration bundles.

Users should not have to tell pytest-dosqlite where their migrations are: the wrangler config
says which classes are SQLite-backed DOs, and the drizzle-kit config says where the bundle is.
Everything is read as data (TOML, JSON5, tree-sitter for ``drizzle*.config.*``); no user code
runs. Errors in a config become :class:`ConfigIssue` entries naming file and line, never
tracebacks.

Which DO classes use a bundle (``BundleRef.do_classes``) is a heuristic, tried in this order:

1. **imports**: a Worker's ``main`` source (followed through relative imports) imports the
   bundle's ``migrations.js`` (or any file inside the bundle folder). The classes are the SQLite
   DO classes of that worker declared in the importing file, else in a file that imports it,
   else the worker's only SQLite DO class.
2. **enclosing worker**: the nearest wrangler config whose folder contains the bundle has exactly
   one SQLite DO class (only for bundles with ``migrations.js`` or ``driver: 'durable-sqlite'``).
3. **only class**: the project has exactly one SQLite DO class in total (same condition).

Otherwise the bundle is not linked (``do_link`` says why). D1 bundles are linked to their
``d1_databases`` bindings through ``migrations_dir`` instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .jsmodule import RESOLVE_EXTENSIONS

if TYPE_CHECKING:
    from .bundle import Bundle
    from .jsmodule import ConfigValue

__all__ = [
    "BundleRef",
    "BundleSource",
    "ConfigIssue",
    "D1Database",
    "DOBinding",
    "DrizzleConfig",
    "DurableObjectClass",
    "Project",
    "TextRule",
    "WranglerConfig",
    "WranglerMigration",
    "discover",
    "is_config_name",
    "parse_drizzle_config_file",
    "parse_wrangler_config",
    "project_of",
    "worker_project_above",
]

#: folders never searched
SKIP_DIRS = frozenset({"node_modules", ".git", ".wrangler", "__pycache__", ".venv"})
WRANGLER_NAMES = ("wrangler.toml", "wrangler.jsonc", "wrangler.json")
_DRIZZLE_CONFIG = re.compile(r"^drizzle.*\.config\.(ts|mts|cts|js|mjs|cjs|json)$")
_SOURCE_EXTS = (".ts", ".tsx", ".mts", ".cts", ".js", ".mjs", ".cjs", ".jsx")
_MAX_DIRS = 20_000
_MAX_GRAPH_FILES = 2_000
_MAX_SOURCE_BYTES = 2 * 1024 * 1024
_MAX_CONFIG_BYTES = 5 * 1024 * 1024

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ConfigIssue:
    """A problem reading a config (or a hint about one), naming the file and line."""

    path: Path
    message: str
    line: int | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


# --------------------------------------------------------------------------- wrangler


@dataclass(frozen=True)
class DOBinding:
    """``durable_objects.bindings`` entry."""

    name: str
    class_name: str
    script_name: str | None = None
    #: None for the top level, else the ``env.<name>`` it is declared in
    env: str | None = None


@dataclass(frozen=True)
class WranglerMigration:
    """One ``[[migrations]]`` entry."""

    tag: str | None
    new_sqlite_classes: tuple[str, ...] = ()
    new_classes: tuple[str, ...] = ()
    renamed_classes: tuple[tuple[str, str], ...] = ()
    deleted_classes: tuple[str, ...] = ()
    transferred_classes: tuple[str, ...] = ()
    env: str | None = None


@dataclass(frozen=True)
class D1Database:
    """``d1_databases`` entry; ``migrations_dir`` as written (wrangler's default: migrations)."""

    binding: str
    database_name: str | None
    migrations_dir: str | None
    env: str | None = None


@dataclass(frozen=True)
class TextRule:
    """A ``[[rules]]`` entry (``type = "Text"`` makes ``import sql from './x.sql'`` a string)."""

    type: str
    globs: tuple[str, ...]
    fallthrough: bool = False


@dataclass(frozen=True)
class DurableObjectClass:
    """A DO class and its storage backend, after applying every migration in order."""

    name: str
    #: ``sqlite`` (new_sqlite_classes / exports storage "sqlite"), ``kv`` (new_classes),
    #: ``unknown`` (bound but never declared by a migration)
    storage: Literal["sqlite", "kv", "unknown"]
    #: ``new_sqlite_classes``, ``new_classes``, ``renamed_classes``, ``exports``, ``binding``
    declared_in: str
    migration_tag: str | None = None
    bindings: tuple[str, ...] = ()
    #: environments that mention it (``""`` = top level)
    envs: tuple[str, ...] = ()
    deleted: bool = False
    #: environments whose own migrations declare it in ``new_classes`` although another
    #: declares it SQLite-backed (each environment deploys its own copy of the class)
    kv_envs: tuple[str, ...] = ()

    @property
    def is_sqlite(self) -> bool:
        return self.storage == "sqlite" and not self.deleted


@dataclass(frozen=True)
class WranglerConfig:
    """A parsed ``wrangler.toml`` / ``wrangler.jsonc`` / ``wrangler.json``."""

    path: Path
    name: str | None = None
    main: str | None = None
    envs: tuple[str, ...] = ()
    bindings: tuple[DOBinding, ...] = ()
    migrations: tuple[WranglerMigration, ...] = ()
    d1_databases: tuple[D1Database, ...] = ()
    rules: tuple[TextRule, ...] = ()
    classes: tuple[DurableObjectClass, ...] = ()
    issues: tuple[ConfigIssue, ...] = ()

    @property
    def main_path(self) -> Path | None:
        if not self.main:
            return None
        return Path(os.path.normpath(self.path.parent / self.main))

    @property
    def sqlite_classes(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes if c.is_sqlite)

    @property
    def migration_tags(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.tag for m in self.migrations if m.tag))

    def text_rule_covers(self, filename: str) -> bool:
        """Whether a ``Text`` rule glob matches ``filename`` (so ``.sql`` imports are strings)."""
        from fnmatch import fnmatch

        for rule in self.rules:
            if rule.type.lower() != "text":
                continue
            for glob in rule.globs:
                pattern = glob[3:] if glob.startswith("**/") else glob
                if fnmatch(filename, pattern) or fnmatch(filename, glob):
                    return True
        return False


def _line_from_error(message: str, text: str) -> int | None:
    match = re.search(r"at line (\d+)", message) or re.search(r"<string>:(\d+)", message)
    if match:
        return int(match.group(1))
    if "end of document" in message:
        return text.count("\n") + 1
    return None


def _read_config_text(path: Path, issues: list[ConfigIssue]) -> str | None:
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > _MAX_CONFIG_BYTES:
                issues.append(ConfigIssue(path, f"file is {size} bytes, too big for a config"))
                return None
            data = fh.read()
    except OSError as exc:
        issues.append(ConfigIssue(path, f"cannot read: {exc}"))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        issues.append(ConfigIssue(path, "not valid UTF-8", line))
        return None


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _section_line(text: str, needle: str) -> int | None:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else None


def parse_wrangler_config(path: Path | str) -> WranglerConfig:
    """Parse one wrangler config; problems are in ``issues`` (never raises on bad content)."""
    path = Path(path)
    issues: list[ConfigIssue] = []
    text = _read_config_text(path, issues)
    if text is None:
        return WranglerConfig(path=path, issues=tuple(issues))
    data: Any
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            import json

            try:
                data = json.loads(text)  # fast path: plain JSON
            except ValueError:
                import json5

                data = json5.loads(text) if text.strip() else None
    except (ValueError, RecursionError) as exc:
        # json5 says "<string>:5 Unexpected ...": the issue carries the line itself
        message = re.sub(r"^<string>:\d+\s*", "", str(exc)).replace("<string>:", "line ")
        # a newline or tab it did not expect is quoted as itself, which breaks the line
        message = re.sub(r'"([\x00-\x1f])"', lambda m: repr(m.group(1)).replace("'", '"'), message)
        issues.append(
            ConfigIssue(path, f"cannot parse: {message}", _line_from_error(str(exc), text))
        )
        return WranglerConfig(path=path, issues=tuple(issues))
    if not isinstance(data, dict):
        issues.append(ConfigIssue(path, "the config is not a table/object", 1))
        return WranglerConfig(path=path, issues=tuple(issues))

    sections: list[tuple[str | None, dict[str, Any]]] = [(None, data)]
    envs = data.get("env")
    if isinstance(envs, dict):
        for env_name, env_data in envs.items():
            if isinstance(env_data, dict):
                sections.append((str(env_name), env_data))
            else:
                issues.append(
                    ConfigIssue(
                        path, f"env.{env_name} is not a table", _section_line(text, env_name)
                    )
                )
    bindings: list[DOBinding] = []
    migrations: list[WranglerMigration] = []
    d1: list[D1Database] = []
    exports: list[tuple[str, str, str | None]] = []
    for env, section in sections:
        do = section.get("durable_objects")
        raw_bindings = do.get("bindings") if isinstance(do, dict) else None
        # shapes wrangler refuses: read leniently they declared nothing, and every check passed
        if do is not None and not isinstance(do, dict):
            issues.append(
                ConfigIssue(
                    path, "`durable_objects` is not a table", _section_line(text, "durable_objects")
                )
            )
        if raw_bindings is not None and not isinstance(raw_bindings, list):
            issues.append(
                ConfigIssue(
                    path,
                    "`durable_objects.bindings` is not an array (wrangler refuses it)",
                    _section_line(text, "bindings"),
                )
            )
        for b in raw_bindings if isinstance(raw_bindings, list) else []:
            if not isinstance(b, dict) or not isinstance(b.get("class_name"), str):
                issues.append(
                    ConfigIssue(
                        path,
                        f"a `durable_objects.bindings` entry without a string `class_name`: {b!r}",
                        _section_line(text, "bindings"),
                    )
                )
            if isinstance(b, dict) and isinstance(b.get("class_name"), str):
                bindings.append(
                    DOBinding(
                        name=str(b.get("name", "")),
                        class_name=b["class_name"],
                        script_name=b.get("script_name")
                        if isinstance(b.get("script_name"), str)
                        else None,
                        env=env,
                    )
                )
        raw_migrations = section.get("migrations")
        if raw_migrations is not None and not isinstance(raw_migrations, list):
            issues.append(
                ConfigIssue(path, "`migrations` is not an array", _section_line(text, "migrations"))
            )
            raw_migrations = []
        for m in raw_migrations or []:
            if not isinstance(m, dict):
                continue
            for listed in ("new_sqlite_classes", "new_classes", "deleted_classes"):
                if isinstance(m.get(listed), str):
                    issues.append(
                        ConfigIssue(
                            path,
                            f"`{listed}` is a string, not an array of class names (wrangler "
                            f'refuses it): write `{listed} = ["{m[listed]}"]`',
                            _section_line(text, listed),
                        )
                    )
            renamed = tuple(
                (r["from"], r["to"])
                for r in m.get("renamed_classes", []) or []
                if isinstance(r, dict)
                and isinstance(r.get("from"), str)
                and isinstance(r.get("to"), str)
            )
            transferred = tuple(
                t["to"]
                for t in m.get("transferred_classes", []) or []
                if isinstance(t, dict) and isinstance(t.get("to"), str)
            )
            migrations.append(
                WranglerMigration(
                    tag=m.get("tag") if isinstance(m.get("tag"), str) else None,
                    new_sqlite_classes=_strings(m.get("new_sqlite_classes")),
                    new_classes=_strings(m.get("new_classes")),
                    renamed_classes=renamed,
                    deleted_classes=_strings(m.get("deleted_classes")),
                    transferred_classes=transferred,
                    env=env,
                )
            )
        for db in section.get("d1_databases") or []:
            if isinstance(db, dict) and isinstance(db.get("binding"), str):
                d1.append(
                    D1Database(
                        binding=db["binding"],
                        database_name=db.get("database_name")
                        if isinstance(db.get("database_name"), str)
                        else None,
                        migrations_dir=db.get("migrations_dir")
                        if isinstance(db.get("migrations_dir"), str)
                        else None,
                        env=env,
                    )
                )
        raw_exports = section.get("exports")
        if isinstance(raw_exports, dict):
            for cls, spec in raw_exports.items():
                if isinstance(spec, dict) and spec.get("type") == "durable-object":
                    storage = spec.get("storage")
                    exports.append((str(cls), str(storage) if storage else "kv", env))
    raw_rules = data.get("rules")
    if raw_rules is not None and not isinstance(raw_rules, list):
        issues.append(
            ConfigIssue(
                path, "`rules` is not an array (wrangler refuses it)", _section_line(text, "rules")
            )
        )
        raw_rules = []
    for r in raw_rules or []:
        globs = r.get("globs") if isinstance(r, dict) else None
        if not isinstance(r, dict) or not isinstance(globs, list):
            issues.append(
                ConfigIssue(
                    path,
                    f"a `rules` entry whose `globs` is not an array of strings: {r!r} (wrangler "
                    "refuses it)",
                    _section_line(text, "globs") or _section_line(text, "rules"),
                )
            )
    rules = tuple(
        TextRule(
            type=str(r.get("type", "")),
            globs=_strings(r.get("globs")),
            fallthrough=bool(r.get("fallthrough", False)),
        )
        for r in (raw_rules or [])
        if isinstance(r, dict)
    )
    main = data.get("main")
    name = data.get("name")
    if isinstance(main, str) and main and bindings:
        entry = os.path.normpath(path.parent / main)
        if not os.path.exists(entry):
            key = re.search(r"""^\s*["']?main["']?\s*[=:]""", text, re.MULTILINE)
            issues.append(
                ConfigIssue(
                    path,
                    f"`main` {main!r} does not exist (an entry point a build step writes?): "
                    "wrangler cannot build the Worker until it does, and the Worker's source "
                    "is not read, so DO classes are linked to bundles by the config alone",
                    text.count("\n", 0, key.start()) + 1 if key else None,
                    "warning",
                )
            )
    return WranglerConfig(
        path=path,
        name=name if isinstance(name, str) else None,
        main=main if isinstance(main, str) else None,
        envs=tuple(env for env, _ in sections[1:] if env is not None),
        bindings=tuple(bindings),
        migrations=tuple(migrations),
        d1_databases=tuple(d1),
        rules=rules,
        classes=_classes(migrations, bindings, exports, path, issues),
        issues=tuple(issues),
    )


def _classes(
    migrations: list[WranglerMigration],
    bindings: list[DOBinding],
    exports: list[tuple[str, str, str | None]],
    path: Path,
    issues: list[ConfigIssue],
) -> tuple[DurableObjectClass, ...]:
    """Apply the migrations of every environment in order (top level first)."""
    state: dict[str, dict[str, Any]] = {}

    def touch(name: str, env: str | None) -> dict[str, Any]:
        entry = state.setdefault(
            name,
            {
                "storage": "unknown",
                "declared": "binding",
                "tag": None,
                "envs": [],
                "deleted": False,
                "kv_envs": [],
            },
        )
        key = env or ""
        if key not in entry["envs"]:
            entry["envs"].append(key)
        return entry

    for m in migrations:
        for cls in m.new_sqlite_classes:
            e = touch(cls, m.env)
            if e["storage"] == "kv" and e["declared"] == "new_classes":
                issues.append(
                    ConfigIssue(
                        path,
                        f"{cls} is in new_classes (KV storage) and in new_sqlite_classes: a "
                        "deployed class cannot switch storage",
                        severity="warning",
                    )
                )
            e.update(storage="sqlite", declared="new_sqlite_classes", tag=m.tag, deleted=False)
        for cls in m.new_classes:
            e = touch(cls, m.env)
            if e["storage"] != "sqlite":
                e.update(storage="kv", declared="new_classes", tag=m.tag, deleted=False)
            elif m.env is not None and m.env not in e["kv_envs"]:
                e["kv_envs"].append(m.env)
        for old, new in m.renamed_classes:
            before = state.get(old, {})
            e = touch(new, m.env)
            e.update(
                storage=before.get("storage", "unknown"),
                declared="renamed_classes",
                tag=m.tag,
                deleted=False,
            )
            if old in state:
                state[old]["deleted"] = True
        for cls in m.deleted_classes:
            touch(cls, m.env)["deleted"] = True
        for cls in m.transferred_classes:
            touch(cls, m.env)
    for cls, storage, env in exports:
        e = touch(cls, env)
        e.update(storage="sqlite" if storage == "sqlite" else "kv", declared="exports")
    names: dict[str, list[str]] = {}
    for b in bindings:
        touch(b.class_name, b.env)
        names.setdefault(b.class_name, [])
        if b.name not in names[b.class_name]:
            names[b.class_name].append(b.name)
    return tuple(
        DurableObjectClass(
            name=cls,
            storage=e["storage"],
            declared_in=e["declared"],
            migration_tag=e["tag"],
            bindings=tuple(names.get(cls, ())),
            envs=tuple(e["envs"]),
            deleted=e["deleted"],
            kv_envs=tuple(e["kv_envs"]),
        )
        for cls, e in state.items()
    )


# --------------------------------------------------------------------------- drizzle config


@dataclass(frozen=True)
class DrizzleConfig:
    """A drizzle-kit config read as data; ``out_dir`` is ``out`` resolved against its folder."""

    path: Path
    out: ConfigValue
    dialect: ConfigValue
    driver: ConfigValue
    schema: ConfigValue
    #: None when ``out`` is not a literal
    out_dir: Path | None
    #: ``out`` is absent and drizzle-kit's default ``./drizzle`` was assumed
    out_defaulted: bool = False
    issues: tuple[ConfigIssue, ...] = ()

    @property
    def is_durable(self) -> bool:
        return self.driver.string == "durable-sqlite"

    def describe(self) -> str:
        out = "'./drizzle' (default)" if self.out_defaulted else self.out.describe()
        return (
            f"out {out}, dialect {self.dialect.describe()}, driver {self.driver.describe()}, "
            f"schema {self.schema.describe()}"
        )


def parse_drizzle_config_file(path: Path | str) -> DrizzleConfig:
    """Read one ``drizzle*.config.*`` file (never raises on bad content)."""
    from .jsmodule import ConfigValue, parse_drizzle_config

    path = Path(path)
    issues: list[ConfigIssue] = []
    text = _read_config_text(path, issues)
    absent = ConfigValue(present=False)
    if text is None:
        return DrizzleConfig(path, absent, absent, absent, absent, None, issues=tuple(issues))
    values = parse_drizzle_config(text, path)
    if values.errors:
        err = values.errors[0]
        issues.append(
            ConfigIssue(
                path,
                f"syntax error: {err.message}; drizzle-kit cannot load it, its values are ignored",
                err.line,
            )
        )
        return DrizzleConfig(path, absent, absent, absent, absent, None, issues=tuple(issues))
    for line, message in values.issues:
        issues.append(ConfigIssue(path, message, line, "warning" if values.found else "error"))
    out_dir: Path | None = None
    defaulted = False
    if values.found and not values.out.present:
        defaulted = True
        out_dir = Path(os.path.normpath(path.parent / "drizzle"))
    elif values.out.string is not None:
        out_dir = Path(os.path.normpath(path.parent / values.out.string))
    elif values.out.present:
        issues.append(
            ConfigIssue(
                path,
                f"`out` is {values.out.describe()}; cannot tell where the bundle is",
                values.out.line,
                "warning",
            )
        )
    for name, value in (("dialect", values.dialect), ("driver", values.driver)):
        if value.present and not value.literal:
            issues.append(
                ConfigIssue(path, f"`{name}` is {value.describe()}", value.line, "warning")
            )
    return DrizzleConfig(
        path=path,
        out=values.out,
        dialect=values.dialect,
        driver=values.driver,
        schema=values.schema,
        out_dir=out_dir,
        out_defaulted=defaulted,
        issues=tuple(issues),
    )


# --------------------------------------------------------------------------- bundles


@dataclass(frozen=True)
class BundleSource:
    """Why a folder is considered a bundle."""

    #: ``drizzle-config`` (its ``out``), ``wrangler-d1`` (a ``migrations_dir``), ``scan`` (found
    #: while walking the project: a folder with meta/_journal.json, migrations.js or v1 folders)
    kind: Literal["drizzle-config", "wrangler-d1", "scan"]
    #: the config file (or the bundle folder itself for ``scan``)
    path: Path
    line: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class BundleRef:
    """A bundle folder in the project, where it was found, and which DO classes use it."""

    path: Path
    sources: tuple[BundleSource, ...]
    project_root: Path
    do_classes: tuple[str, ...] = ()
    #: the rule that linked ``do_classes`` (or why nothing was linked)
    do_link: str = ""
    #: the wrangler config of the linked worker
    wrangler: Path | None = None
    #: ``(wrangler config, D1 binding)`` pairs whose ``migrations_dir`` is this folder
    d1_bindings: tuple[tuple[Path, str], ...] = ()
    has_migrations_js: bool = False
    drizzle_configs: tuple[Path, ...] = field(default=())
    #: ``durable-sqlite`` (journal + migrations.js), ``journal``, ``v1`` or ``unknown``, from the
    #: files present (the bundle is not loaded by discovery)
    layout: str = "unknown"
    #: ``(file, line, specifier)`` of the Worker's imports into this folder that no file
    #: answers (a deleted or git-ignored ``migrations.js``): the Worker does not build
    missing_imports: tuple[tuple[Path, int, str], ...] = ()
    #: the ``migrations`` module of this folder the Worker imports, when its imports name one
    #: file (``../drizzle/migrations.js`` with a ``.js``: not the ``migrations.ts`` next to it,
    #: which an import without an extension would take); None: as an extensionless import
    worker_module: Path | None = None

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.project_root)) or "."
        except ValueError:
            return str(path)

    @property
    def source(self) -> str:
        """Where it came from, for humans: ``apps/api/drizzle.config.ts``, or
        ``a scan of the project``."""
        parts: list[str] = []
        for s in self.sources:
            if s.kind == "scan":
                parts.append("a scan of the project")
            elif s.kind == "wrangler-d1":
                parts.append(f"{self._rel(s.path)} {s.detail}".strip())
            else:
                parts.append(self._rel(s.path))
        return ", ".join(dict.fromkeys(parts))

    def describe(self) -> str:
        """``found durable-sqlite bundle at apps/api/drizzle (from apps/api/drizzle.config.ts)``."""
        where = f"found {self.layout} bundle at {self._rel(self.path)}"
        if all(s.kind == "scan" for s in self.sources):
            line = f"{where} (no config points to it)"
        else:
            line = f"{where} (from {self.source})"
        if self.do_classes:
            line += f" for DO {', '.join(self.do_classes)} [{self.do_link}]"
        elif self.d1_bindings:
            line += " for D1 " + ", ".join(b for _, b in self.d1_bindings)
        elif self.do_link:
            line += f" [{self.do_link}]"
        return line

    def load(self) -> Bundle:
        """Load it (raises :class:`~pytest_dosqlite.errors.BundleError` if it cannot be read)."""
        from .bundle import load_bundle

        return load_bundle(self.path)


@dataclass(frozen=True)
class Project:
    """Everything discovered under ``root``."""

    root: Path
    wrangler_configs: tuple[WranglerConfig, ...] = ()
    drizzle_configs: tuple[DrizzleConfig, ...] = ()
    bundles: tuple[BundleRef, ...] = ()
    issues: tuple[ConfigIssue, ...] = ()

    @property
    def errors(self) -> tuple[ConfigIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> tuple[ConfigIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "warning")

    @property
    def sqlite_classes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for w in self.wrangler_configs for c in w.sqlite_classes))

    def bundles_for(self, class_name: str) -> tuple[BundleRef, ...]:
        return tuple(b for b in self.bundles if class_name in b.do_classes)

    def bundle_at(self, path: Path | str) -> BundleRef | None:
        target = os.path.normcase(os.path.abspath(path))
        for b in self.bundles:
            if os.path.normcase(str(b.path)) == target:
                return b
        return None

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root)) or "."
        except ValueError:
            return str(path)

    def describe(self) -> list[str]:
        """Human-readable lines: configs, classes, bundles and their links, issues."""
        lines: list[str] = []
        for w in self.wrangler_configs:
            classes = ", ".join(
                f"{c.name} ({c.storage}{', deleted' if c.deleted else ''})" for c in w.classes
            )
            lines.append(
                f"wrangler config {self._rel(w.path)}: worker {w.name or '?'}"
                + (f", DO classes {classes}" if classes else ", no DO classes")
            )
        for d in self.drizzle_configs:
            lines.append(f"drizzle config {self._rel(d.path)}: {d.describe()}")
        for b in self.bundles:
            lines.append(b.describe())
        for issue in self.issues:
            lines.append(f"{issue.severity}: {issue}")
        return lines


def is_config_name(name: str) -> bool:
    """A wrangler config (``wrangler.toml``/``.json``/``.jsonc``) or a drizzle config
    (``drizzle.config.ts``, ``drizzle-do.config.ts``, ...): what marks a Worker project."""
    return name in WRANGLER_NAMES or _DRIZZLE_CONFIG.match(name) is not None


def worker_project_above(folder: Path) -> Path | None:
    """The nearest folder above ``folder`` with a wrangler or drizzle config, not past the
    repository root (a ``.git`` folder) or 8 levels: the Worker project a ``tests/`` or
    ``drizzle/`` folder belongs to."""
    for parent in list(folder.parents)[:8]:
        try:
            if any(is_config_name(entry.name) and entry.is_file() for entry in parent.iterdir()):
                return parent
        except OSError:
            pass
        if (parent / ".git").exists():
            return None
    return None


def project_of(bundle_root: Path) -> tuple[Project, BundleRef] | None:
    """The Worker project above a bundle folder named on its own (:func:`worker_project_above`),
    discovered, and its record of the bundle, when it knows the bundle: which DO classes use
    it, how its .sql files are bundled."""
    from .errors import DosqliteError

    above = worker_project_above(bundle_root)
    if above is None:
        return None
    try:
        project = discover(above)
    except DosqliteError:
        return None
    ref = project.bundle_at(bundle_root)
    return (project, ref) if ref is not None else None


def _looks_like_drizzle_js(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return False
    return b".sql" in head or b"_journal.json" in head or b"export default {}" in head


def _walk(root: Path, issues: list[ConfigIssue]) -> tuple[list[Path], list[Path], set[Path]]:
    wrangler: list[Path] = []
    drizzle: list[Path] = []
    bundles: set[Path] = set()
    for count, (dirpath, dirnames, filenames) in enumerate(os.walk(root), start=1):
        if count > _MAX_DIRS:
            issues.append(
                ConfigIssue(
                    root,
                    f"stopped searching after {_MAX_DIRS} folders; point --dosqlite-project at "
                    "the worker folder",
                    severity="warning",
                )
            )
            break
        here = Path(dirpath)
        for d in dirnames:
            if is_config_name(d):
                # wrangler and drizzle-kit read a file of that name: a folder there declares
                # nothing, and every check passed as if the project had no such config
                issues.append(ConfigIssue(here / d, "is a folder, not a config file"))
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        names = set(filenames)
        for n in WRANGLER_NAMES:
            if n in names:
                wrangler.append(here / n)
        for n in sorted(names):
            if _DRIZZLE_CONFIG.match(n):
                drizzle.append(here / n)
        if here.name == "meta" and "_journal.json" in names:
            bundles.add(here.parent)
        if "migrations.js" in names and _looks_like_drizzle_js(here / "migrations.js"):
            bundles.add(here)
        if "migration.sql" in names and "snapshot.json" in names:
            bundles.add(here.parent)
    return wrangler, drizzle, bundles


def _is_bundle_dir(path: Path) -> bool:
    try:
        if (path / "meta" / "_journal.json").is_file():
            return True
        if (path / "migrations.js").is_file():
            return True
        return any((c / "migration.sql").is_file() for c in path.iterdir() if c.is_dir())
    except OSError:
        return False


def _key(path: Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def discover(root: Path | str, *, follow_imports: bool = True) -> Project:
    """Search ``root`` for wrangler configs, drizzle configs and bundles, and link them.

    Never raises on bad configs (see ``Project.issues``); raises
    :class:`~pytest_dosqlite.errors.BundleError` only when ``root`` is not a folder.
    """
    from .errors import BundleError

    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise BundleError("project root is not a folder", root)
    issues: list[ConfigIssue] = []
    wrangler_paths, drizzle_paths, scanned = _walk(root, issues)
    wranglers = [parse_wrangler_config(p) for p in wrangler_paths]
    drizzles = [parse_drizzle_config_file(p) for p in drizzle_paths]
    for w in wranglers:
        issues.extend(w.issues)
    for d in drizzles:
        issues.extend(d.issues)

    sources: dict[str, list[BundleSource]] = {}
    paths: dict[str, Path] = {}
    configs_of: dict[str, list[DrizzleConfig]] = {}

    def add(path: Path, source: BundleSource) -> None:
        k = _key(path)
        paths.setdefault(k, Path(os.path.abspath(path)))
        sources.setdefault(k, []).append(source)

    for d in drizzles:
        if d.out_dir is None:
            continue
        line = d.out.line
        detail = "out (default ./drizzle)" if d.out_defaulted else f"out {d.out.describe()}"
        if _is_bundle_dir(d.out_dir):
            add(d.out_dir, BundleSource("drizzle-config", d.path, line, detail))
            configs_of.setdefault(_key(d.out_dir), []).append(d)
        elif not d.out_dir.exists():
            issues.append(
                ConfigIssue(
                    d.path,
                    f"{detail} → {d.out_dir} does not exist yet (run `drizzle-kit generate`)",
                    line,
                    "warning",
                )
            )
        else:
            issues.append(
                ConfigIssue(
                    d.path,
                    f"{detail} → {d.out_dir} has no meta/_journal.json, migrations.js or "
                    "migration folders",
                    line,
                    "warning",
                )
            )
    d1_links: dict[str, list[tuple[Path, str]]] = {}
    for w in wranglers:
        for db in w.d1_databases:
            if not db.migrations_dir:
                continue
            target = Path(os.path.normpath(w.path.parent / db.migrations_dir))
            if (target / "meta" / "_journal.json").is_file():
                pair = (w.path, db.binding)
                links = d1_links.setdefault(_key(target), [])
                if pair in links:
                    continue  # the same binding repeated in another env
                links.append(pair)
                detail = f"d1_databases[{db.binding}] migrations_dir"
                add(target, BundleSource("wrangler-d1", w.path, None, detail))
    for path in sorted(scanned):
        if _key(path) not in sources:
            add(path, BundleSource("scan", path))

    graphs = _import_graphs(wranglers) if follow_imports else {}
    all_sqlite = [(w, c) for w in wranglers for c in w.sqlite_classes]
    refs: list[BundleRef] = []
    for k in sorted(sources, key=lambda key: str(paths[key])):
        path = paths[k]
        configs = configs_of.get(k, [])
        has_js = (path / "migrations.js").is_file()
        has_journal = (path / "meta" / "_journal.json").is_file()
        layout = "v1" if not has_journal else "durable-sqlite" if has_js else "journal"
        durable = has_js or any(c.is_durable for c in configs)
        classes, link, worker = _link(path, durable, wranglers, graphs, all_sqlite, root)
        missing = tuple(
            (graph.files[src], line, spec)
            for graph in graphs.values()
            for src, wanted in graph.missing.items()
            for line, spec, target in wanted
            if _inside(target, k)
        )
        modules = {
            graph.files.get(target) or Path(target)
            for graph in graphs.values()
            for imported in graph.imports.values()
            for target in imported
            if _inside(target, k)
            and Path(target).parent == Path(k)
            and Path(target).stem == "migrations"
        }
        refs.append(
            BundleRef(
                path=path,
                sources=tuple(sources[k]),
                project_root=root,
                do_classes=classes,
                do_link=link,
                wrangler=worker,
                d1_bindings=tuple(d1_links.get(k, ())),
                has_migrations_js=has_js,
                drizzle_configs=tuple(c.path for c in configs),
                layout=layout,
                missing_imports=missing,
                worker_module=next(iter(modules)) if len(modules) == 1 else None,
            )
        )
    return Project(
        root=root,
        wrangler_configs=tuple(wranglers),
        drizzle_configs=tuple(drizzles),
        bundles=tuple(refs),
        issues=tuple(issues),
    )


# --------------------------------------------------------------------------- linking


@dataclass
class _Graph:
    """Files reachable from a worker's ``main`` through relative imports."""

    files: dict[str, Path] = field(default_factory=dict)
    #: file key -> resolved import targets
    imports: dict[str, list[str]] = field(default_factory=dict)
    #: file key -> top-level class names declared in it
    classes: dict[str, list[str]] = field(default_factory=dict)
    #: file key -> relative imports no file answers: (line, specifier, target key)
    missing: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)


def _import_target(base: Path, spec: str) -> str | None:
    """Where a relative import specifier points from ``base`` (None: a package import)."""
    if not spec.startswith(("./", "../")) and spec not in (".", ".."):
        return None
    return os.path.normpath(os.path.join(base, spec))


def _resolve_import(target: str, spec: str) -> Path | None:
    """The file the bundler takes for ``target`` (:func:`_import_target`), or None."""

    def candidates() -> Iterator[str]:  # in the bundler's order, built only as far as needed
        yield target
        stem, ext = os.path.splitext(target)
        if ext in (".js", ".mjs", ".cjs", ".jsx"):
            yield from (stem + ts for ts in (".ts", ".tsx", ".mts", ".cts"))
        yield from (target + ext for ext in RESOLVE_EXTENSIONS)
        yield from (os.path.join(target, "index" + ext) for ext in RESOLVE_EXTENSIONS)

    for c in candidates():
        try:
            if os.path.isfile(c):
                return Path(c)
        except (OSError, ValueError):
            continue
    return Path(target) if spec.endswith((".json", ".sql")) else None


def _build_graph(main: Path) -> _Graph:
    from .jsmodule import dialect_for, scan_source

    graph = _Graph()
    queue = [main]
    while queue and len(graph.files) < _MAX_GRAPH_FILES:
        path = queue.pop()
        k = _key(path)
        if k in graph.files:
            continue
        graph.files[k] = path
        if path.suffix not in _SOURCE_EXTS:
            continue
        try:
            with open(path, "rb") as fh:
                data = fh.read(_MAX_SOURCE_BYTES + 1)
        except OSError:
            continue
        if len(data) > _MAX_SOURCE_BYTES:
            continue
        info = scan_source(data.decode("utf-8", "replace"), dialect=dialect_for(path))
        graph.classes[k] = [c.name for c in info.classes]
        targets: list[str] = []
        for imp in info.imports:
            target = _import_target(path.parent, imp.source)
            if target is None:
                continue
            resolved = _resolve_import(target, imp.source)
            if resolved is None:  # the bundler cannot resolve it: the Worker does not build
                graph.missing.setdefault(k, []).append((imp.line, imp.source, _key(Path(target))))
                continue
            targets.append(_key(resolved))
            if resolved.suffix in _SOURCE_EXTS and _key(resolved) not in graph.files:
                queue.append(resolved)
            elif resolved.suffix not in _SOURCE_EXTS:
                graph.files.setdefault(_key(resolved), resolved)
        graph.imports[k] = targets
    return graph


def _import_graphs(wranglers: Iterable[WranglerConfig]) -> dict[str, _Graph]:
    graphs: dict[str, _Graph] = {}
    for w in wranglers:
        main = w.main_path
        if main is None or not w.sqlite_classes:
            continue
        try:
            if not main.is_file():
                continue
        except OSError:
            continue
        graphs[_key(w.path)] = _build_graph(main)
    return graphs


def _inside(child: str, folder: str) -> bool:
    return child == folder or child.startswith(folder.rstrip(os.sep) + os.sep)


def _importers(graph: _Graph, folder: str) -> list[str]:
    """Files importing something inside ``folder`` (files outside the folder first)."""
    hits = [
        src for src, imported in graph.imports.items() if any(_inside(t, folder) for t in imported)
    ]
    outside = [src for src in hits if not _inside(src, folder)]
    return outside or hits


def _link(
    bundle: Path,
    durable: bool,
    wranglers: list[WranglerConfig],
    graphs: dict[str, _Graph],
    all_sqlite: list[tuple[WranglerConfig, str]],
    root: Path,
) -> tuple[tuple[str, ...], str, Path | None]:
    folder = _key(bundle)
    for w in wranglers:
        graph = graphs.get(_key(w.path))
        if graph is None:
            continue
        importers = _importers(graph, folder)
        if not importers:
            continue
        sqlite = set(w.sqlite_classes)
        first = graph.files[importers[0]]
        rel = _short_rel(first, root)
        # the DO classes the importing code declares: SQLite ones first; else the ones the
        # config knows otherwise (bound but never created, KV-backed), which the contract
        # then explains, rather than some other SQLite class of the worker
        bound = {c.name for c in w.classes if not c.deleted}
        for depth, level in enumerate((importers, _parents(graph, importers))):
            declared = {c for f in level for c in graph.classes.get(f, [])}
            found = sorted(declared & sqlite) or sorted(declared & bound)
            declaring = [f for f in level if set(graph.classes.get(f, [])) & set(found)]
            if not found:
                continue
            if depth == 0:
                return tuple(found), f"{rel} imports it and declares the class", w.path
            parent = _short_rel(graph.files[declaring[0]], root)
            return (
                tuple(found),
                f"{rel} imports it; {parent} imports that and declares the class",
                w.path,
            )
        if len(sqlite) == 1:
            return (
                tuple(sqlite),
                f"{rel} imports it; the worker's only SQLite DO class",
                w.path,
            )
        return (), f"{rel} imports it, but the worker has {len(sqlite)} SQLite DO classes", w.path
    if not durable:
        return (), "no migrations.js and no driver 'durable-sqlite': not a DO bundle", None
    enclosing = [w for w in wranglers if _inside(folder, _key(w.path.parent))]
    if enclosing:
        nearest = max(enclosing, key=lambda w: len(str(w.path.parent)))
        classes = nearest.sqlite_classes
        if len(classes) == 1:
            return (
                classes,
                f"the only SQLite DO class of the enclosing {_short_rel(nearest.path, root)}",
                nearest.path,
            )
    distinct = sorted({c for _, c in all_sqlite})
    if len(distinct) == 1:
        owner = next(w for w, c in all_sqlite if c == distinct[0])
        return tuple(distinct), "the only SQLite DO class of the project", owner.path
    if not distinct:
        return (), "the project declares no SQLite DO class", None
    return (), f"ambiguous: {len(distinct)} SQLite DO classes and no import of it found", None


def _parents(graph: _Graph, files: list[str]) -> list[str]:
    wanted = set(files)
    return [src for src, imported in graph.imports.items() if wanted.intersection(imported)]


def _short_rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return path.name
