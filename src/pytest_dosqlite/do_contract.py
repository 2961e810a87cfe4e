"""``do_contract``: the project's OWN Durable Object migrates itself on the real runtime.

Why: every other check runs the bundle; none runs the code that ships. A Worker can pass them
all and still never migrate: ``migrations.js`` imported from a wrong path, no ``Text`` rule for
``.sql`` (the bundler fails, or imports nothing), ``migrate()`` not awaited inside
``blockConcurrencyWhile``, or not called at all. This check (only with
``--dosqlite-backend=workerd``) builds the Worker from its wrangler config exactly as wrangler
would (its ``main``, module rules plus wrangler's default rules for its version, esbuild),
starts it in Miniflare with its SQLite DO classes (``useSQLite`` per ``new_sqlite_classes``)
and a persist directory, cold-starts every SQLite DO class that uses the bundle with several
concurrent requests to fresh ``idFromName`` instances, stops the runtime and reads each DO's
database file (``<persist>/<worker>-<Class>/<id>.sqlite``). Its schema and
``__drizzle_migrations`` ledger must equal a fresh emulated DO migrated with the bundle.

Package resolution: the project's own ``node_modules`` wins (esbuild's normal lookup); a package
it does not have installed (a fresh clone) resolves from the harness install through esbuild's
``nodePaths`` (drizzle-orm 0.45.4). The check names which drizzle-orm it bundled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CheckFailure, CheckSkipped, MigrationError

if TYPE_CHECKING:
    from .checks import CheckContext
    from .discovery import WranglerConfig
    from .workerd import Installation

__all__ = [
    "BENIGN_ERRORS",
    "ContractRun",
    "DoState",
    "build_spec",
    "do_contract",
    "module_rules",
    "run_contract",
]

#: request errors that only say the DO has no ``fetch`` handler: the constructor (and its
#: blockConcurrencyWhile) ran before the request was refused
BENIGN_ERRORS = ("Handler does not export a fetch() function.",)
#: fresh instances cold-started per DO class
INSTANCES = 2
_DIFF_LINES = 12
#: the runner next to the harness files
RUNNER = Path(__file__).resolve().parent / "workerd" / "contract.mjs"
_SCHEMA_Q = (
    "SELECT type, name, tbl_name, sql FROM sqlite_master "
    "WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY type, name"
)
_LEDGER_Q = 'SELECT rowid, id, hash, created_at FROM "__drizzle_migrations" ORDER BY rowid'


@dataclass(frozen=True)
class DoState:
    """Schema (``sqlite_master`` rows, ``_cf_*`` left out) and ledger rows of one DO database."""

    schema: tuple[tuple[Any, ...], ...] = ()
    ledger: tuple[tuple[Any, ...], ...] = ()
    exists: bool = True

    def lines(self) -> list[str]:
        out = [f"{t} {name}: {' '.join(str(sql).split())}" for t, name, _tbl, sql in self.schema]
        out += [f"ledger row: created_at={r[3]!r} hash={r[2]!r} id={r[1]!r}" for r in self.ledger]
        return out


@dataclass
class ContractRun:
    """What the runner reported, plus the persisted DO databases."""

    build_ok: bool
    build_errors: list[dict[str, Any]] = field(default_factory=list)
    packages: dict[str, Any] = field(default_factory=dict)
    start_error: str | None = None
    #: (class name, DO name) -> the responses of the concurrent cold-start requests
    responses: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    #: (class name, DO name) -> the DO's database after the runtime stopped
    states: dict[tuple[str, str], DoState] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    fatal: str | None = None


# ---------------------------------------------------------------------------- config -> spec


def _raw_config(path: Path) -> dict[str, Any]:
    """The wrangler config as data (discovery already reported any parse problem)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix == ".toml":
            import tomllib

            data: Any = tomllib.loads(text)
        else:
            import json5

            data = json5.loads(text)
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def module_rules(w: WranglerConfig, version: tuple[int, int, int] | None) -> list[dict[str, Any]]:
    """The module rules wrangler applies: the config's, then its defaults for ``version``.

    A rule without ``fallthrough`` ends its type: later rules of that type (the defaults
    included) are ignored, as wrangler does. The ``**/*.sql`` Text default exists from wrangler
    4.57.0 on (an unknown version counts as older, as in ``wrangler_contract``).
    """
    from .contract import DEFAULT_SQL_RULE_SINCE

    text_defaults = ["**/*.txt", "**/*.html"]
    if version is not None and version >= DEFAULT_SQL_RULE_SINCE:
        text_defaults.append("**/*.sql")
    candidates: list[tuple[str, tuple[str, ...], bool]] = [
        (r.type, tuple(r.globs), r.fallthrough) for r in w.rules
    ]
    candidates += [
        ("Text", tuple(text_defaults), True),
        ("Data", ("**/*.bin",), True),
        ("CompiledWasm", ("**/*.wasm", "**/*.wasm?module"), True),
    ]
    closed: set[str] = set()
    rules: list[dict[str, Any]] = []
    for kind, globs, fallthrough in candidates:
        if kind in closed:
            continue
        rules.append({"type": kind, "globs": list(globs)})
        if not fallthrough:
            closed.add(kind)
    return rules


def _by_name(items: Any, key: str, value_key: str | None = None) -> Any:
    out: Any = [] if value_key is None else {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get(key), str):
            continue
        if value_key is None:
            out.append(item[key])
        else:
            out[item[key]] = str(item.get(value_key) or item[key])
    return out


def build_spec(
    w: WranglerConfig,
    classes: tuple[str, ...],
    inst: Installation,
    workdir: Path,
    *,
    concurrency: int = 8,
    instances: int = INSTANCES,
) -> dict[str, Any]:
    """The runner's input: build options, Miniflare options, and the DOs to cold-start."""
    from .contract import wrangler_version

    raw = _raw_config(w.path)
    main = w.main_path
    assert main is not None
    version, _ = wrangler_version(w.path.parent)
    sqlite = set(w.sqlite_classes)
    durable: dict[str, dict[str, Any]] = {}
    for b in w.bindings:
        if b.env is None and b.script_name is None:
            durable[b.name] = {"className": b.class_name, "useSQLite": b.class_name in sqlite}
    targets = []
    for name in classes:
        binding = next((k for k, v in durable.items() if v["className"] == name), None)
        if binding is None:  # a class nothing binds: address it through a binding of our own
            binding = f"__DOSQLITE_{name}"
            durable[binding] = {"className": name, "useSQLite": True}
        targets.append(
            {
                "binding": binding,
                "className": name,
                "names": [f"dosqlite-contract-{i}" for i in range(instances)],
                "concurrency": concurrency,
            }
        )
    vars_ = raw.get("vars")
    flags = raw.get("compatibility_flags")
    return {
        "harness": str(inst.directory),
        "workerd": str(inst.workerd),
        "entry": str(main),
        "root": str(w.path.parent),
        "outfile": str(workdir / "dist" / "worker.js"),
        "nodePaths": [str(inst.directory / "node_modules")],
        "rules": module_rules(w, version),
        "name": w.name or "worker",
        "compatibilityDate": str(raw.get("compatibility_date") or "2025-09-01"),
        "compatibilityFlags": [f for f in flags if isinstance(f, str)]
        if isinstance(flags, list)
        else [],
        "durableObjects": durable,
        "persist": str(workdir / "state"),
        "vars": {k: v for k, v in vars_.items() if isinstance(k, str)}
        if isinstance(vars_, dict)
        else {},
        "kvNamespaces": _by_name(raw.get("kv_namespaces"), "binding"),
        "d1Databases": _by_name(raw.get("d1_databases"), "binding", "database_id"),
        "r2Buckets": _by_name(raw.get("r2_buckets"), "binding"),
        "targets": targets,
    }


# ---------------------------------------------------------------------------- run


def _read_state(path: Path) -> DoState:
    if not path.exists():
        return DoState(exists=False)
    import apsw

    conn = apsw.Connection(str(path))
    try:
        schema = tuple(tuple(r) for r in conn.execute(_SCHEMA_Q))
        names = {r[1] for r in schema}
        ledger: tuple[tuple[Any, ...], ...] = ()
        if "__drizzle_migrations" in names:
            ledger = tuple(tuple(r) for r in conn.execute(_LEDGER_Q))
        return DoState(schema, ledger)
    finally:
        conn.close()


def run_contract(
    spec: dict[str, Any], inst: Installation, *, timeout: float = 120.0
) -> ContractRun:
    """Run the runner on ``spec`` (build, start, cold starts, stop) and read the databases."""
    from .workerd import WorkerdError, persist

    workdir = Path(spec["persist"]).parent
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "CLOUDFLARE_CF_FETCH_ENABLED": "false"}
    try:
        proc = subprocess.run(
            [inst.node, str(RUNNER), str(spec_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        raise WorkerdError(
            f"do_contract: building and cold-starting the Worker took more than {timeout:.0f} s"
        ) from None
    except OSError as exc:
        raise WorkerdError(f"do_contract: cannot run node: {exc}") from None
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise WorkerdError(f"do_contract runner failed (exit {proc.returncode}):\n{tail}")
    out = json.loads(lines[-1])
    build = out.get("build") or {}
    run = ContractRun(
        build_ok=bool(build.get("ok")),
        build_errors=list(build.get("errors") or []),
        packages=dict(build.get("packages") or {}),
        logs=[str(x) for x in out.get("logs") or []],
        fatal=out.get("fatal"),
    )
    start = out.get("start")
    if isinstance(start, dict) and not start.get("ok"):
        text = str(start.get("error"))
        run.start_error = "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith("stack:")
        )
    for result in out.get("results") or []:
        key = (str(result["className"]), str(result["name"]))
        run.responses[key] = list(result.get("responses") or [])
        path = persist.sqlite_path(spec["persist"], key[1], worker=spec["name"], class_name=key[0])
        run.states[key] = _read_state(path)
    return run


# ---------------------------------------------------------------------------- the check


def _wrangler_for(ctx: CheckContext) -> tuple[WranglerConfig, tuple[str, ...]]:
    project: Any = ctx.project
    if project is None:
        raise CheckSkipped("no Worker project: the bundle was given directly, not found in one")
    ref = project.bundle_at(ctx.bundle.root)
    classes = tuple(ref.do_classes) if ref is not None else ()
    configs = list(project.wrangler_configs)
    if ref is not None and ref.wrangler is not None:
        configs = [w for w in configs if w.path == ref.wrangler] or configs
    for w in configs:
        mine = tuple(c for c in classes if c in w.sqlite_classes)
        if mine:
            return w, mine
    raise CheckSkipped(
        "no SQLite Durable Object class of a wrangler config uses this bundle "
        + (f"({ref.do_link})" if ref is not None and ref.do_link else "")
    )


def _expected(ctx: CheckContext) -> tuple[DoState | None, MigrationError | None]:
    from .fleet import database_state

    images = ctx.extra.get("emulator_images")
    if images is None:
        from .images import default_cache

        images = default_cache()
    head = images.head(ctx.bundle)
    if head.error is not None or head.image is None:
        return None, head.error
    state = database_state(head.image, data=False)
    return DoState(tuple(state.schema), tuple(state.ledger)), None


def _where(err: dict[str, Any]) -> str:
    loc = ""
    if err.get("file"):
        loc = f"{err['file']}:{err.get('line')}:{err.get('column')}: "
    text = f"{loc}{err.get('text')}"
    if err.get("lineText"):
        text += f"\n    {err['lineText']}"
    for note in err.get("notes") or []:
        text += f"\n  note: {note}"
    return text


def _build_hint(errors: list[dict[str, Any]], w: WranglerConfig) -> str:
    texts = " ".join(str(e.get("text")) for e in errors)
    hints = []
    if 'No loader is configured for ".sql"' in texts:
        hints.append(
            f"Add a Text module rule to {w.path.name}: "
            '`"rules": [{ "type": "Text", "globs": ["**/*.sql"], "fallthrough": true }]` '
            "(or upgrade wrangler to 4.57.0+, whose default rules include it)."
        )
    if "Could not resolve" in texts:
        hints.append(
            "Fix the import path (relative imports are resolved from the importing file), or "
            "install the project's dependencies (`npm ci`) if a package is missing."
        )
    return "\n".join(hints)


def do_contract(ctx: CheckContext) -> None:
    """The project's own Worker builds, and each of its SQLite DO classes that uses this bundle
    migrates itself on a cold start in workerd, to exactly the emulator's schema and ledger."""
    runtime = ctx.extra.get("workerd")
    if runtime is None:
        raise CheckSkipped(
            "do_contract runs with --dosqlite-backend=workerd only (it builds your Worker and "
            "starts it in workerd)"
        )
    w, classes = _wrangler_for(ctx)
    if w.main_path is None:
        raise CheckFailure(
            f"{w.path} has no `main`: there is no Worker to build",
            [("How to fix", 'Set `"main": "src/index.ts"` (your Worker entry) in the config.')],
        )
    inst = runtime.install()
    timeout = float(ctx.extra.get("fleet_timeout", 120.0))
    workdir = Path(tempfile.mkdtemp(prefix="dosqlite-contract-"))
    try:
        spec = build_spec(w, classes, inst, workdir, concurrency=ctx.settings.concurrency)
        run = run_contract(spec, inst, timeout=timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _judge(ctx, w, classes, spec, run)


def _judge(
    ctx: CheckContext,
    w: WranglerConfig,
    classes: tuple[str, ...],
    spec: dict[str, Any],
    run: ContractRun,
) -> None:
    notes = ctx.extra.setdefault("notes", [])
    drizzle = run.packages.get("drizzle-orm")
    if drizzle:
        harness = str(drizzle["dir"]).startswith(str(spec["harness"]))
        source = "the harness install (not installed in the project)" if harness else "the project"
        notes.append(f"do_contract bundled drizzle-orm {drizzle.get('version')} from {source}")
    if run.fatal:
        raise CheckFailure("the do_contract runner crashed", [("Error", run.fatal)])
    if not run.build_ok:
        raise CheckFailure(f"the Worker of {w.path.name} does not build", _build_sections(w, run))
    if run.start_error is not None:
        raise CheckFailure(
            f"the Worker of {w.path.name} does not start in workerd",
            [("Error", run.start_error[:3000])],
        )
    expected, emulator_error = _expected(ctx)
    # instances of a class that ended the same way are reported once
    groups: dict[tuple[str, str], list[str]] = {}
    for (cls, name), state in sorted(run.states.items()):
        responses = run.responses.get((cls, name), [])
        errors = sorted(
            {
                str(r.get("error"))
                for r in responses
                if not r.get("ok") and str(r.get("error")) not in BENIGN_ERRORS
            }
        )
        label = f"{cls}, {len(responses)} concurrent cold-start requests"
        if expected is not None and state == expected:
            if errors:
                notes.append(f"{label}: migrated, but requests got: {'; '.join(errors)}")
            continue
        body = _failure_body(state, errors, expected, emulator_error)
        groups.setdefault((label, body), []).append(repr(name))
    sections = [
        (f"{label} to idFromName({', '.join(names)})", body)
        for (label, body), names in groups.items()
    ]
    if sections:
        sections.append(
            (
                "What ran",
                f"{w.main_path} bundled with esbuild (module rules: "
                + "; ".join(f"{r['type']} {', '.join(r['globs'])}" for r in spec["rules"])
                + f"), started in Miniflare as worker {spec['name']!r} with "
                + ", ".join(classes)
                + " as SQLite Durable Objects",
            )
        )
        verb = "does not migrate itself" if len(classes) == 1 else "do not migrate themselves"
        raise CheckFailure(f"{', '.join(classes)} {verb} to the bundle's head on workerd", sections)


def _build_sections(w: WranglerConfig, run: ContractRun) -> list[tuple[str, str]]:
    sections: list[tuple[str, str]] = [("Entry", f"{w.main_path} (main of {w.path})")]
    errors = run.build_errors
    shown = errors[:3]
    sections += [("Build error", _where(e)) for e in shown]
    if len(errors) > len(shown):
        sections.append(("More", f"{len(errors) - len(shown)} more build errors"))
    hint = _build_hint(errors, w)
    if hint:
        sections.append(("How to fix", hint))
    return sections


def _failure_body(
    state: DoState,
    errors: list[str],
    expected: DoState | None,
    emulator_error: MigrationError | None,
) -> str:
    import difflib

    body: list[str] = []
    empty = not state.exists or (not state.schema and not state.ledger)
    if errors:
        body.append("every cold start failed with:" if empty else "the requests got:")
        body.extend(f"  {e}" for e in errors)
    if emulator_error is not None:
        body.append(
            "the emulator cannot migrate this bundle either: "
            + str(emulator_error.cause or emulator_error.message)
            + (f"\nstatement: {emulator_error.statement}" if emulator_error.statement else "")
        )
        return "\n".join(body)
    if expected is None:
        return "\n".join(body)
    if empty and not errors:
        body.append(
            "the DO's database is empty after the cold starts: its constructor does not run "
            "drizzle's migrate() (call it inside ctx.blockConcurrencyWhile in the constructor "
            "and await it)"
        )
    elif empty:
        body.append("the DO's database is empty: the constructor throws; nothing it wrote was kept")
    diff = [
        line
        for line in difflib.unified_diff(expected.lines(), state.lines(), lineterm="", n=0)
        if not line.startswith(("---", "+++", "@@"))
    ]
    if len(diff) > _DIFF_LINES:
        diff = [*diff[:_DIFF_LINES], f"... {len(diff) - _DIFF_LINES} more lines"]
    body.append("schema and ledger (- emulator fresh DO, + real DO):\n" + "\n".join(diff))
    return "\n".join(body)
