"""Project discovery: wrangler configs, drizzle configs, bundles, and which DO classes use them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import shared_path
from pytest_dosqlite.discovery import (
    BundleRef,
    Project,
    discover,
    parse_drizzle_config_file,
    parse_wrangler_config,
)
from pytest_dosqlite.errors import BundleError
from pytest_dosqlite.jsmodule import parse_drizzle_config, parse_migrations_js
from test_plugin import make_project

EXAMPLES = Path(__file__).resolve().parent / "examples"


def ref(project: Project, rel: str) -> BundleRef:
    found = project.bundle_at(project.root / rel)
    assert found is not None, [str(b.path) for b in project.bundles]
    return found


def rels(project: Project) -> list[str]:
    return [str(b.path.relative_to(project.root)) for b in project.bundles]


# ------------------------------------------------------------------ wrangler


def test_toml_classes_migrations_rules_envs() -> None:
    w = parse_wrangler_config(EXAMPLES / "project-toml" / "wrangler.toml")
    assert w.issues == ()
    assert w.name == "chat" and w.main == "src/index.ts"
    assert w.main_path == EXAMPLES / "project-toml" / "src" / "index.ts"
    assert w.envs == ("staging",)
    assert w.migration_tags == ("v1", "v2", "v3", "v4")
    classes = {c.name: c for c in w.classes}
    assert classes["ChatRoom"].storage == "sqlite"
    assert classes["ChatRoom"].declared_in == "new_sqlite_classes"
    assert classes["ChatRoom"].migration_tag == "v2"
    assert classes["ChatRoom"].envs == ("", "staging")
    assert classes["ChatRoom"].bindings == ("ROOM",)
    assert classes["Presence"].storage == "sqlite"
    assert classes["Presence"].declared_in == "renamed_classes"
    assert classes["OldPresence"].deleted
    assert classes["LegacyCounter"].storage == "kv"
    assert classes["Scratch"].deleted and classes["Scratch"].storage == "kv"
    assert w.sqlite_classes == ("ChatRoom", "Presence")
    assert w.text_rule_covers("0000_init.sql") and not w.text_rule_covers("x.ts")
    assert [b.env for b in w.bindings] == [None, None, None, "staging"]


def test_jsonc_with_comments_trailing_commas_d1_and_envs() -> None:
    w = parse_wrangler_config(EXAMPLES / "project-jsonc" / "workers" / "api" / "wrangler.jsonc")
    assert w.issues == ()
    assert w.sqlite_classes == ("Counter", "Sessions")
    assert {c.name: c.migration_tag for c in w.classes} == {"Counter": "v1", "Sessions": "v2"}
    assert [(d.binding, d.migrations_dir, d.env) for d in w.d1_databases] == [
        ("DB", "../../db/d1", None),
        ("DB", "../../db/d1", "production"),
    ]
    assert w.envs == ("production",)
    assert w.rules[0].type == "Text" and w.rules[0].globs == ("**/*.sql",)


def test_json_exports_form() -> None:
    w = parse_wrangler_config(EXAMPLES / "project-json" / "wrangler.json")
    classes = {c.name: c for c in w.classes}
    assert classes["Notes"].storage == "sqlite" and classes["Notes"].declared_in == "exports"
    assert classes["Cache"].storage == "kv"
    assert w.sqlite_classes == ("Notes",)


def test_bad_toml_is_an_issue_with_line() -> None:
    w = parse_wrangler_config(EXAMPLES / "project-broken" / "wrangler.toml")
    assert len(w.issues) == 1
    issue = w.issues[0]
    assert issue.line == 3 and issue.severity == "error"
    assert "cannot parse" in issue.message
    assert str(issue).startswith(str(EXAMPLES / "project-broken" / "wrangler.toml") + ":3:")


def test_an_unexpected_newline_is_quoted_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "wrangler.jsonc"
    # a stray "]" after a trailing comma: json5 reports the newline after it
    path.write_text('{\n  "migrations": [\n    { "tag": "v1" }\n  ],\n  ]\n}\n')
    issue = parse_wrangler_config(path).issues[0]
    assert issue.line == 5 and "\n" not in issue.message
    assert issue.message.startswith('cannot parse: Unexpected "\\n"'), issue.message


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("wrangler.jsonc", '{\n  "name": "x",\n  "main": \n}', 4),
        ("wrangler.json", "[1, 2]", 1),
        ("wrangler.toml", "name = 'x'\n\n[[migrations]]\ntag = \n", 4),
        ("wrangler.jsonc", "", 1),
    ],
)
def test_wrangler_errors(tmp_path: Path, name: str, text: str, line: int) -> None:
    (tmp_path / name).write_text(text)
    w = parse_wrangler_config(tmp_path / name)
    assert w.issues and w.issues[0].line == line
    assert w.classes == ()


def test_wrangler_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "wrangler.toml").write_bytes(b'name = "a"\nmain = "\xff"\n')
    w = parse_wrangler_config(tmp_path / "wrangler.toml")
    assert w.issues[0].line == 2 and "UTF-8" in w.issues[0].message


# ------------------------------------------------------------------ drizzle configs


def test_drizzle_config_forms() -> None:
    d = parse_drizzle_config_file(EXAMPLES / "project-toml" / "drizzle.config.ts")
    assert (d.out.value, d.dialect.value, d.driver.value) == (
        "./drizzle",
        "sqlite",
        "durable-sqlite",
    )
    assert d.out.line == 4 and d.out.literal and d.is_durable
    assert d.out_dir == EXAMPLES / "project-toml" / "drizzle"

    mjs = parse_drizzle_config_file(
        EXAMPLES / "project-jsonc" / "workers" / "api" / "drizzle.config.mjs"
    )
    assert mjs.out.value == "./migrations/counter" and mjs.out.literal  # through `const out`
    assert mjs.schema.value == ("./src/counter-schema.ts", "./src/shared-schema.ts")

    computed = parse_drizzle_config_file(
        EXAMPLES / "project-jsonc" / "workers" / "api" / "drizzle.sessions.config.ts"
    )
    assert computed.out.present and not computed.out.literal and computed.out_dir is None
    assert "process.env.SESSIONS_OUT" in computed.out.describe()
    assert any("cannot tell where the bundle is" in i.message for i in computed.issues)
    assert computed.driver.value == "durable-sqlite"  # through `satisfies Config`

    js = parse_drizzle_config_file(EXAMPLES / "project-jsonc" / "db" / "drizzle.config.json")
    assert js.out.value == "./d1" and js.out.line == 2 and js.driver.present is False

    default = parse_drizzle_config_file(EXAMPLES / "project-json" / "drizzle.config.ts")
    assert default.out_defaulted and default.out_dir == EXAMPLES / "project-json" / "drizzle"


def test_broken_drizzle_configs() -> None:
    syntax = parse_drizzle_config_file(EXAMPLES / "project-broken" / "drizzle.config.ts")
    assert syntax.issues and syntax.issues[0].line in (6, 7)
    assert "syntax error" in syntax.issues[0].message
    assert syntax.out_dir is None and not syntax.schema.present  # no guessing from a broken file
    dynamic = parse_drizzle_config_file(EXAMPLES / "project-broken" / "drizzle.dynamic.config.js")
    assert any("no argument" in i.message for i in dynamic.issues)
    assert dynamic.out_dir is None


@pytest.mark.parametrize(
    ("text", "out", "literal"),
    [
        ("export default defineConfig({ out: 'a' })", "a", True),
        ("const c = { out: `b` } as const;\nexport default c;", "b", True),
        ("module.exports = { out: './c', dialect: 'sqlite' };", "./c", True),
        ("const o = './d'; export default defineConfig({ out: o });", "./d", True),
        ("export default { out: `${root}/e` };", None, False),
        ("const cfg = defineConfig({ out: 'f' }); export { cfg as default };", "f", True),
        ("export default { out: env.OUT! };", None, False),
    ],
)
def test_config_values(text: str, out: str | None, literal: bool) -> None:
    values = parse_drizzle_config(text, "drizzle.config.ts")
    assert values.found
    assert values.out.value == out and values.out.literal is literal


def test_migrations_js_reader_details() -> None:
    mjs = parse_migrations_js(
        "import journal from './meta/_journal.json'\n"
        "import a from './0000_a.sql'\n"
        "const b = require('./0001_b.sql');\n"
        "const extra = { m0002: 'SELECT 1;' };\n"
        "export default { journal, migrations: { m0000: a, 'm0001': b, ...extra, [k]: a } }\n"
    )
    assert mjs.journal_import is not None and mjs.journal_import.local == "journal"
    assert [(e.key, e.kind, e.source) for e in mjs.entries] == [
        ("m0000", "import", "./0000_a.sql"),
        ("m0001", "import", "./0001_b.sql"),
    ]
    assert len(mjs.unsupported) == 2
    assert mjs.journal_property is not None


# ------------------------------------------------------------------ projects


def test_project_toml_links_bundle_through_imports() -> None:
    p = discover(EXAMPLES / "project-toml")
    assert p.errors == ()
    assert rels(p) == ["drizzle"]
    b = ref(p, "drizzle")
    assert b.do_classes == ("ChatRoom",)
    assert "src/chat-room.ts imports it" in b.do_link
    assert b.wrangler == EXAMPLES / "project-toml" / "wrangler.toml"
    assert b.has_migrations_js
    assert b.source == "drizzle.config.ts"
    assert b.describe().startswith(
        "found durable-sqlite bundle at drizzle (from drizzle.config.ts) for DO ChatRoom"
    )
    assert b.layout == "durable-sqlite"
    assert p.bundles_for("ChatRoom") == (b,) and p.bundles_for("Presence") == ()
    assert p.sqlite_classes == ("ChatRoom", "Presence")
    assert len(b.load().migrations) == 2


def test_a_main_that_does_not_exist_is_a_warning_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "wrangler.toml"
    config = (
        'name = "x"\n# the entry point\nmain = "src/index.ts"\n'
        '[[durable_objects.bindings]]\nname = "R"\nclass_name = "Room"\n'
    )
    path.write_text(config)
    (issue,) = parse_wrangler_config(path).issues
    assert issue.severity == "warning" and issue.line == 3
    assert "`main` 'src/index.ts' does not exist" in issue.message
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.ts").write_text("export class Room {}\n")
    assert parse_wrangler_config(path).issues == ()
    # no Durable Object: not our business
    (tmp_path / "src" / "index.ts").unlink()
    path.write_text('name = "x"\nmain = "src/index.ts"\n')
    assert parse_wrangler_config(path).issues == ()


def test_an_import_into_the_bundle_that_no_file_answers(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(EXAMPLES / "project-toml", root)
    b = ref(discover(root), "drizzle")
    assert b.missing_imports == ()
    (root / "drizzle" / "migrations.js").unlink()
    (root / "src" / "index.ts").write_text(
        (root / "src" / "index.ts").read_text() + "\nimport './nowhere';\n"
    )
    b = ref(discover(root), "drizzle")
    # only the import that points into the bundle folder is the bundle's
    assert [(src.name, spec) for src, _, spec in b.missing_imports] == [
        ("chat-room.ts", "../drizzle/migrations")
    ]
    source, line, spec = b.missing_imports[0]
    assert spec in source.read_text().splitlines()[line - 1]


def test_project_jsonc_several_bundles() -> None:
    p = discover(EXAMPLES / "project-jsonc")
    assert rels(p) == [
        "db/d1",
        "legacy/old-drizzle",
        "workers/api/migrations/counter",
        "workers/api/migrations/sessions",
    ]
    counter = ref(p, "workers/api/migrations/counter")
    assert counter.do_classes == ("Counter",)
    assert counter.source == "workers/api/drizzle.config.mjs"
    sessions = ref(p, "workers/api/migrations/sessions")
    # found by the scan (its config's `out` is computed); linked through src/store.ts, which
    # src/sessions.ts (declaring Sessions) imports
    assert [s.kind for s in sessions.sources] == ["scan"]
    assert sessions.do_classes == ("Sessions",)
    assert "store.ts imports it; workers/api/src/sessions.ts imports that" in sessions.do_link
    assert "no config points to it" in sessions.describe()
    d1 = ref(p, "db/d1")
    assert {s.kind for s in d1.sources} == {"drizzle-config", "wrangler-d1"}
    assert [b for _, b in d1.d1_bindings] == ["DB"]
    assert d1.do_classes == ()
    assert "for D1 DB" in d1.describe() and d1.layout == "journal"
    legacy = ref(p, "legacy/old-drizzle")
    assert legacy.do_classes == () and "ambiguous" in legacy.do_link
    assert any("cannot tell where the bundle is" in w.message for w in p.warnings)
    assert p.errors == ()
    text = "\n".join(p.describe())
    assert "wrangler config workers/api/wrangler.jsonc: worker api" in text


def test_project_json_only_sqlite_class() -> None:
    p = discover(EXAMPLES / "project-json")
    b = ref(p, "drizzle")
    assert b.do_classes == ("Notes",)
    assert "only SQLite DO class" in b.do_link
    assert "(default ./drizzle)" in b.sources[0].detail


def test_project_broken_reports_issues_not_tracebacks() -> None:
    p = discover(EXAMPLES / "project-broken")
    files = {(i.path.name, i.severity) for i in p.issues}
    assert ("wrangler.toml", "error") in files
    assert ("drizzle.config.ts", "error") in files
    assert ("drizzle.dynamic.config.js", "error") in files
    assert all(i.line is not None for i in p.issues if i.path.name != "drizzle.dynamic.config.js")
    b = ref(p, "drizzle")
    with pytest.raises(BundleError) as exc:
        b.load()
    assert exc.value.line == 5


def test_skips_node_modules_git_wrangler_and_hidden(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "project-json", tmp_path / "proj")
    for hidden in ("node_modules/pkg", ".git/x", ".wrangler/state", ".cache/y"):
        shutil.copytree(EXAMPLES / "bundle-durable-basic", tmp_path / "proj" / hidden / "drizzle")
    p = discover(tmp_path / "proj")
    assert rels(p) == ["drizzle"]


def test_missing_out_folder_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "drizzle.config.ts").write_text(
        "export default { out: './gen', dialect: 'sqlite' }"
    )
    p = discover(tmp_path)
    assert p.bundles == ()
    assert p.warnings and "does not exist yet" in p.warnings[0].message
    assert p.warnings[0].line == 1


def test_two_workers_enclosing_rule(tmp_path: Path) -> None:
    for worker, cls in (("a", "Alpha"), ("b", "Beta")):
        root = tmp_path / "apps" / worker
        root.mkdir(parents=True)
        (root / "wrangler.toml").write_text(
            f'name = "{worker}"\nmain = "src/index.ts"\n[[migrations]]\ntag = "v1"\n'
            f'new_sqlite_classes = ["{cls}"]\n'
        )
        shutil.copytree(EXAMPLES / "bundle-durable-basic", root / "drizzle")
    p = discover(tmp_path)
    assert ref(p, "apps/a/drizzle").do_classes == ("Alpha",)
    assert ref(p, "apps/b/drizzle").do_classes == ("Beta",)
    assert "enclosing apps/a/wrangler.toml" in ref(p, "apps/a/drizzle").do_link


def test_root_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(BundleError):
        discover(tmp_path / "nope")


def test_v1_bundle_found_by_scan(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "bundle-v1-folders", tmp_path / "db")
    p = discover(tmp_path)
    assert rels(p) == ["db"]
    assert p.bundles[0].load().format == "v1" and p.bundles[0].layout == "v1"


# ------------------------------------------------------------------ corpus projects


def test_corpus_sprintjam() -> None:
    p = discover(shared_path("corpus", "nicholasgriffintn__sprintjam.co.uk"))
    assert p.errors == ()
    assert len(p.wrangler_configs) == 4 and len(p.drizzle_configs) == 4
    assert sorted(p.sqlite_classes) == ["PlanningRoom", "StandupRoom", "WheelRoom"]
    for worker, cls in (
        ("room", "PlanningRoom"),
        ("standup", "StandupRoom"),
        ("wheel", "WheelRoom"),
    ):
        b = ref(p, f"apps/{worker}-worker/drizzle")
        assert b.do_classes == (cls,)
        assert b.source == f"apps/{worker}-worker/drizzle.config.ts"
    auth = ref(p, "apps/auth-worker/drizzle")
    assert auth.do_classes == () and [b for _, b in auth.d1_bindings] == ["DB"]
    history = [b for b in p.bundles if "_history" in str(b.path)]
    assert len(history) == 1 and history[0].sources[0].kind == "scan"
    rules = {w.path.parent.name: w.text_rule_covers("x.sql") for w in p.wrangler_configs}
    assert rules == {
        "auth-worker": False,
        "room-worker": True,
        "standup-worker": True,
        "wheel-worker": True,
    }


def test_corpus_unprice_two_classes_three_envs() -> None:
    p = discover(shared_path("corpus", "jhonsfran1165__unprice"))
    (w,) = p.wrangler_configs
    assert w.envs == ("prod", "preview", "dev")
    assert w.sqlite_classes == ("DurableObjectUsagelimiter", "DurableObjectProject")
    usage = next(c for c in w.classes if c.name == "DurableObjectUsagelimiter")
    assert usage.envs == ("prod", "preview", "dev") and usage.migration_tag == "v1"
    b = ref(p, "apps/api/drizzle")
    assert b.do_classes == () and "2 SQLite DO classes" in b.do_link


def test_corpus_crewhelm_exports_and_custom_runner() -> None:
    p = discover(shared_path("corpus", "fkrein1__crewhelm"))
    (w,) = p.wrangler_configs
    assert sorted(w.sqlite_classes) == [
        "CrewAgent",
        "CrewSession",
        "CrewhelmSandbox",
        "OwnerControlPlane",
    ]
    assert all(c.declared_in == "exports" for c in w.classes if c.is_sqlite)
    b = ref(p, "apps/worker/control-plane-migrations")
    assert b.do_classes == () and not b.has_migrations_js
    assert b.source == "apps/worker/drizzle.control-plane.config.ts"


def test_corpus_bitwobbly_d1() -> None:
    p = discover(shared_path("corpus", "nicholasgriffintn__bitwobbly.com"))
    b = ref(p, "packages/shared/drizzle")
    assert sorted(w.parent.parent.name + "/" + w.parent.name for w, _ in b.d1_bindings) == [
        "apps/app-worker",
        "packages/auth",
    ]
    assert {s.kind for s in b.sources} == {"drizzle-config", "wrangler-d1"}


@pytest.mark.parametrize(
    ("project", "bundle", "classes"),
    [
        ("Litengat__uno", "drizzle", ("GameRoom",)),
        ("GlennMm__typescript_backend_template", "drizzle/tenant", ()),
        ("karakeep-app__karakeep", "packages/db/drizzle", ()),
        ("openstatusHQ__openstatus", "packages/db/drizzle", ()),
    ],
)
def test_corpus_other_projects(project: str, bundle: str, classes: tuple[str, ...]) -> None:
    p = discover(shared_path("corpus", project))
    assert p.errors == ()
    assert ref(p, bundle).do_classes == classes
    assert all(d.out_dir is not None for d in p.drizzle_configs)


def test_corpus_glenn_two_configs() -> None:
    p = discover(shared_path("corpus", "GlennMm__typescript_backend_template"))
    outs = sorted(str(d.out.value) for d in p.drizzle_configs)
    assert outs == ["./drizzle/main", "./drizzle/tenant"]
    assert ref(p, "drizzle/tenant").source == "drizzle.tenant.config.ts"


# ------------------------------------------------------------------ fuzz


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(max_size=300), st.sampled_from(["wrangler.toml", "wrangler.jsonc", "drizzle.config.ts"])
)
def test_config_parsers_never_raise(text: str, name: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, "utf-8", errors="surrogatepass")
        if name.startswith("wrangler"):
            parse_wrangler_config(path)
        else:
            parse_drizzle_config_file(path)
        discover(tmp)


def test_json_values_in_wrangler_of_wrong_types(tmp_path: Path) -> None:
    cfg = {
        "main": 5,
        "durable_objects": {"bindings": [1, {"class_name": 3}, {"class_name": "A", "name": "X"}]},
        "migrations": [None, {"tag": 1, "new_sqlite_classes": "A"}, {"renamed_classes": [1]}],
        "d1_databases": [{"binding": None}],
        "rules": ["x", {"type": "Text", "globs": "*.sql"}],
        "exports": {"A": "x"},
        "env": {"e": 3},
    }
    (tmp_path / "wrangler.json").write_text(json.dumps(cfg))
    w = parse_wrangler_config(tmp_path / "wrangler.json")
    assert w.sqlite_classes == ("A",)
    assert w.main is None and w.rules[0].globs == ("*.sql",)
    assert any("env.e" in i.message for i in w.issues)


def test_an_extensionless_import_resolves_as_wranglers_esbuild_does(tmp_path: Path) -> None:
    # checked with `wrangler deploy --dry-run`: `../drizzle/migrations` does not resolve to a
    # migrations.mjs (the Worker does not build), and .tsx wins over .ts, .ts over .js
    from pytest_dosqlite.discovery import _resolve_import

    root = tmp_path / "p"
    shutil.copytree(EXAMPLES / "project-toml", root)
    drizzle = root / "drizzle"
    (drizzle / "migrations.js").rename(drizzle / "migrations.mjs")
    b = ref(discover(root), "drizzle")
    assert [spec for _, _, spec in b.missing_imports] == ["../drizzle/migrations"]
    target = str(drizzle / "migrations")
    for name in ("migrations.js", "migrations.ts", "migrations.tsx"):
        (drizzle / name).write_text("export default {};\n")
        assert _resolve_import(target, "../drizzle/migrations") == drizzle / name


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"durable_objects": {"bindings": "NOTES"}},
            "`durable_objects.bindings` is not an array",
        ),
        (
            {"durable_objects": {"bindings": [{"name": "NOTES"}]}},
            "a `durable_objects.bindings` entry without a string `class_name`",
        ),
        ({"rules": [{"type": "Text", "globs": "**/*.sql"}]}, "`globs` is not an array of strings"),
        ({"rules": {"type": "Text"}}, "`rules` is not an array"),
    ],
)
def test_wrangler_config_shapes_wrangler_refuses_are_errors(
    tmp_path: Path, config: dict[str, object], message: str
) -> None:
    # read leniently they declared nothing, and wrangler_contract passed; wrangler 4 refuses
    # each ("Expected "rules[0].globs" to be an array of strings", ...)
    (tmp_path / "wrangler.json").write_text(
        json.dumps({"name": "w", "main": "src/index.ts", **config}, indent=2)
    )
    project = discover(tmp_path)
    assert any(message in str(e) and e.severity == "error" for e in project.errors), project.errors


def test_a_config_name_that_is_a_folder_is_a_config_error(tmp_path: Path) -> None:
    # a folder named wrangler.jsonc declared nothing: the contract was skipped, exit 0
    make_project(tmp_path)
    (tmp_path / "wrangler.toml").unlink()
    (tmp_path / "wrangler.jsonc").mkdir()
    project = discover(tmp_path)
    assert [str(e) for e in project.errors] == [
        f"{tmp_path / 'wrangler.jsonc'}: is a folder, not a config file"
    ]
