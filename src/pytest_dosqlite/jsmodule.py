"""JavaScript/TypeScript modules read as data, never executed.

``migrations.js`` decides which SQL a Durable Object runs, and ``drizzle*.config.*`` decides where
drizzle-kit writes it. Running them would need Node and would execute user code, so they are
parsed with tree-sitter and only literal structure is read: imports, ``export default {...}``,
string literals, and ``const`` bindings of the module's top level. Anything that is not a literal
is reported as such, never guessed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

__all__ = [
    "ConfigValue",
    "DrizzleConfigValues",
    "JsImport",
    "JsModule",
    "JsProperty",
    "JsSyntaxError",
    "JsValue",
    "MigrationsJs",
    "MigrationsJsEntry",
    "SourceClass",
    "SourceInfo",
    "parse_drizzle_config",
    "parse_migrations_js",
    "parse_module",
    "scan_source",
]

Dialect = Literal["javascript", "typescript", "tsx"]

#: how deep identifiers are followed to top-level ``const`` bindings
_MAX_RESOLVE = 8

#: the extensions esbuild (wrangler's bundler) tries, in this order, for an import written
#: without one (its default ``resolveExtensions``). Checked with ``wrangler deploy --dry-run``:
#: ``migrations.tsx`` wins over ``.ts``, ``.ts`` and ``.jsx`` over ``.js``, and
#: ``./migrations`` does not resolve to ``migrations.mjs``.
RESOLVE_EXTENSIONS = (".tsx", ".ts", ".jsx", ".js", ".css", ".json")


@functools.cache
def _parser(dialect: Dialect) -> Parser:
    """One tree-sitter parser per grammar, created on first use."""
    from tree_sitter import Language, Parser

    if dialect == "javascript":
        import tree_sitter_javascript as grammar

        lang = Language(grammar.language())
    else:
        import tree_sitter_typescript as ts_grammar

        raw = (
            ts_grammar.language_typescript()
            if dialect == "typescript"
            else ts_grammar.language_tsx()
        )
        lang = Language(raw)
    return Parser(lang)


def dialect_for(path: Path | str) -> Dialect:
    """The grammar for a file name (``.ts`` → typescript, ``.tsx/.jsx`` → tsx, else javascript)."""
    name = str(path).lower()
    if name.endswith((".tsx", ".jsx")):
        return "tsx"
    if name.endswith((".ts", ".mts", ".cts")):
        return "typescript"
    return "javascript"


@dataclass(frozen=True)
class JsSyntaxError:
    """Where tree-sitter could not parse the text (1-based line and column)."""

    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class JsImport:
    """A module binding: ``import x from 's'``, ``* as x``, ``{a as x}``, ``require('s')``."""

    local: str
    source: str
    line: int
    kind: Literal["default", "namespace", "named", "require", "side-effect", "re-export"]


@dataclass(frozen=True)
class JsValue:
    """An expression as data. ``kind`` says what could be read; ``text`` is the source text."""

    kind: Literal["string", "number", "boolean", "identifier", "object", "array", "call", "other"]
    text: str
    line: int
    #: the string value (``kind == "string"``, also templates without ``${}``)
    string: str | None = None
    #: identifier name (``identifier``) or callee text (``call``)
    name: str | None = None
    #: object properties in source order (``object``)
    properties: tuple[JsProperty, ...] = ()
    #: array items or call arguments
    items: tuple[JsValue, ...] = ()

    def get(self, key: str) -> JsProperty | None:
        """The last property named ``key`` (JS semantics: the last duplicate wins)."""
        found = None
        for prop in self.properties:
            if prop.key == key:
                found = prop
        return found


@dataclass(frozen=True)
class JsProperty:
    """One object member. ``key`` is None for spreads and computed keys."""

    key: str | None
    value: JsValue
    line: int
    shorthand: bool = False
    spread: bool = False


@dataclass(frozen=True)
class JsModule:
    """The top level of a module: imports, ``const`` bindings and the default export."""

    imports: tuple[JsImport, ...]
    #: top-level ``const/let/var name = value`` (the last binding of a name wins)
    bindings: Mapping[str, JsValue]
    default_export: JsValue | None
    default_export_line: int | None
    errors: tuple[JsSyntaxError, ...]
    #: ``module.exports = ...`` was used instead of ``export default``
    commonjs: bool = False

    def import_of(self, local: str) -> JsImport | None:
        for imp in self.imports:
            if imp.local == local:
                return imp
        return None

    def resolve(self, value: JsValue | None) -> JsValue | None:
        """Follow identifiers to top-level bindings (not to imports); unwrap nothing else."""
        seen = 0
        while value is not None and value.kind == "identifier" and seen < _MAX_RESOLVE:
            bound = self.bindings.get(value.name or "")
            if bound is None:
                return value
            value = bound
            seen += 1
        return value


def _line(node: Node) -> int:
    return int(node.start_point[0]) + 1


def _text(node: Node) -> str:
    raw = node.text
    return raw.decode("utf-8", "replace") if raw is not None else ""


_IDENT_ESCAPE = re.compile(r"\\u(?:\{([0-9a-fA-F]+)\}|([0-9a-fA-F]{4}))")


def _name(node: Node) -> str:
    """An identifier's name: ``\\u006d0003`` is ``m0003`` (JS decodes escapes in names)."""
    text = _text(node)
    if "\\" not in text:
        return text
    return _IDENT_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unescape(seq: str) -> str:
    """Value of one JS escape sequence (``\\n``, ``\\x41``, ``\\u0041``, ``\\u{1F600}``...)."""
    body = seq[1:]
    if not body:
        return ""
    if body[0] in _ESCAPES and not (body[0] == "0" and len(body) > 1):
        return _ESCAPES[body[0]]
    if body[0] in "\r\n\u2028\u2029":
        return ""  # line continuation
    try:
        if body[0] == "x" and len(body) == 3:
            return chr(int(body[1:], 16))
        if body.startswith("u{") and body.endswith("}"):
            return chr(int(body[2:-1], 16))
        if body[0] == "u" and len(body) == 5:
            return chr(int(body[1:], 16))
    except ValueError:
        return body
    return body


def _string_value(node: Node) -> str | None:
    """The value of a ``string`` or substitution-free ``template_string`` node, else None."""
    parts: list[str] = []
    template = node.type == "template_string"
    for child in node.named_children:
        kind = child.type
        if kind == "string_fragment":
            text = _text(child)
            if template and "\r" in text:
                # a template literal reads its line terminators CRLF and CR as LF (its escapes
                # `\r` stay CR): a CRLF checkout runs the same SQL
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            parts.append(text)
        elif kind == "escape_sequence":
            parts.append(_unescape(_text(child)))
        elif kind == "template_substitution":
            return None
        elif kind in ("comment", "html_character_reference"):
            parts.append(_text(child))
        else:
            return None
    value = "".join(parts)
    if "\\u" in _text(node):
        # JS strings are UTF-16: \ud83d\ude00 escapes are one character
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return value


_WRAPPERS = frozenset(
    {
        "parenthesized_expression",
        "satisfies_expression",
        "as_expression",
        "non_null_expression",
        "type_assertion",
    }
)


def _unwrap(node: Node) -> Node:
    """Strip parentheses and TypeScript-only wrappers (``satisfies``, ``as``, ``!``)."""
    while node.type in _WRAPPERS and node.named_children:
        inner = node.named_children[0]
        if node.type == "type_assertion" and len(node.named_children) > 1:
            inner = node.named_children[-1]
        node = inner
    return node


def _value(node: Node, depth: int = 0) -> JsValue:
    node = _unwrap(node)
    kind = node.type
    line = _line(node)
    text = _text(node)
    if depth > 64:
        return JsValue("other", text, line)
    if kind in ("string", "template_string"):
        value = _string_value(node)
        if value is None:
            return JsValue("other", text, line)
        return JsValue("string", text, line, string=value)
    if kind == "number":
        return JsValue("number", text, line)
    if kind in ("true", "false"):
        return JsValue("boolean", text, line)
    if kind == "identifier":
        return JsValue("identifier", text, line, name=_name(node))
    if kind == "object":
        return JsValue("object", text, line, properties=_properties(node, depth + 1))
    if kind == "array":
        items = tuple(_value(c, depth + 1) for c in node.named_children if c.type != "comment")
        return JsValue("array", text, line, items=items)
    if kind == "call_expression":
        callee = node.child_by_field_name("function")
        args = node.child_by_field_name("arguments")
        items = ()
        if args is not None:
            items = tuple(_value(c, depth + 1) for c in args.named_children if c.type != "comment")
        return JsValue(
            "call", text, line, name=_text(callee) if callee is not None else None, items=items
        )
    return JsValue("other", text, line)


def _key_name(node: Node) -> str | None:
    kind = node.type
    if kind in ("property_identifier", "identifier", "private_property_identifier"):
        return _name(node)
    if kind == "string":
        return _string_value(node)
    if kind == "number":
        text = _text(node)
        try:
            number = float(text.replace("_", ""))
        except ValueError:
            return text
        return str(int(number)) if number.is_integer() else text
    if kind == "computed_property_name":
        # ['m0003']: a literal in brackets names the key as written without them
        inner = [c for c in node.named_children if c.type != "comment"]
        if len(inner) == 1 and inner[0].type in ("string", "number"):
            return _key_name(inner[0])
    return None  # a computed key of an expression, and anything exotic


def _properties(node: Node, depth: int) -> tuple[JsProperty, ...]:
    props: list[JsProperty] = []
    for child in node.named_children:
        kind = child.type
        line = _line(child)
        if kind == "pair":
            key_node = child.child_by_field_name("key")
            value_node = child.child_by_field_name("value")
            key = _key_name(key_node) if key_node is not None else None
            if value_node is None:
                continue
            props.append(JsProperty(key, _value(value_node, depth), line))
        elif kind == "shorthand_property_identifier":
            name = _name(child)
            props.append(
                JsProperty(name, JsValue("identifier", name, line, name=name), line, shorthand=True)
            )
        elif kind == "spread_element":
            inner = child.named_children[0] if child.named_children else child
            props.append(JsProperty(None, _value(inner, depth), line, spread=True))
        elif kind == "method_definition":
            name_node = child.child_by_field_name("name")
            key = _key_name(name_node) if name_node is not None else None
            props.append(JsProperty(key, JsValue("other", _text(child), line), line))
    return tuple(props)


def _first_errors(root: Node, limit: int = 5) -> tuple[JsSyntaxError, ...]:
    if not root.has_error:
        return ()
    found: list[JsSyntaxError] = []
    stack = [root]
    while stack and len(found) < limit:
        node = stack.pop()
        if node.is_missing:
            found.append(
                JsSyntaxError(_line(node), int(node.start_point[1]) + 1, f"missing {node.type!r}")
            )
            continue
        if node.type == "ERROR":
            inner = _innermost_error(node)
            if inner is not node and inner.is_missing:
                found.append(
                    JsSyntaxError(
                        _line(inner), int(inner.start_point[1]) + 1, f"missing {inner.type!r}"
                    )
                )
                continue
            # error recovery wraps the whole statement (`export default {` ... `}`): the
            # innermost error is where the text stops making sense
            node = inner
            snippet = _text(node).strip().splitlines()
            first = snippet[0][:60] if snippet else ""
            found.append(
                JsSyntaxError(_line(node), int(node.start_point[1]) + 1, f"cannot parse {first!r}")
            )
            continue
        if node.has_error:
            stack.extend(reversed(node.children))
    found.sort(key=lambda e: (e.line, e.column))
    return tuple(found)


def _innermost_error(node: Node) -> Node:
    """The first ERROR (or missing) node inside ``node``, in text order, innermost; ``node``
    itself when it holds none."""
    for child in node.children:
        if child.is_missing or child.type == "ERROR":
            return _innermost_error(child) if child.type == "ERROR" else child
        if child.has_error:
            inner = _innermost_error(child)
            if inner is not child:
                return inner
    return node


def _import_bindings(stmt: Node) -> Iterator[JsImport]:
    source_node = stmt.child_by_field_name("source")
    if source_node is None:
        return
    source = _string_value(source_node)
    if source is None:
        return
    line = _line(stmt)
    clause = None
    for child in stmt.named_children:
        if child.type == "import_clause":
            clause = child
    if clause is None:
        yield JsImport("", source, line, "side-effect")
        return
    for part in clause.named_children:
        if part.type == "identifier":
            yield JsImport(_name(part), source, line, "default")
        elif part.type == "namespace_import":
            names = [c for c in part.named_children if c.type == "identifier"]
            if names:
                yield JsImport(_name(names[-1]), source, line, "namespace")
        elif part.type == "named_imports":
            for spec in part.named_children:
                if spec.type != "import_specifier":
                    continue
                alias = spec.child_by_field_name("alias")
                name = spec.child_by_field_name("name")
                target = alias if alias is not None else name
                if target is None:
                    continue
                imported = _text(name) if name is not None else ""
                kind: Literal["default", "named"] = "default" if imported == "default" else "named"
                yield JsImport(_name(target), source, line, kind)


def _require_source(value: Node) -> str | None:
    value = _unwrap(value)
    if value.type != "call_expression":
        return None
    callee = value.child_by_field_name("function")
    args = value.child_by_field_name("arguments")
    if callee is None or args is None or _text(callee) != "require":
        return None
    arg_nodes = [a for a in args.named_children if a.type != "comment"]
    if len(arg_nodes) != 1 or arg_nodes[0].type not in ("string", "template_string"):
        return None
    return _string_value(arg_nodes[0])


def parse_module(text: str, *, dialect: Dialect = "javascript") -> JsModule:
    """Parse ``text`` and read its top level. Never raises on bad syntax: see ``errors``."""
    return _module_from_root(_parse(text, dialect))


def _parse(text: str, dialect: Dialect) -> Node:
    return _parser(dialect).parse(text.encode("utf-8", "surrogatepass")).root_node


def _module_from_root(root: Node) -> JsModule:
    imports: list[JsImport] = []
    bindings: dict[str, JsValue] = {}
    default: JsValue | None = None
    default_line: int | None = None
    commonjs = False

    def declare(decl: Node) -> None:
        for declarator in decl.named_children:
            if declarator.type != "variable_declarator":
                continue
            name = declarator.child_by_field_name("name")
            value = declarator.child_by_field_name("value")
            if name is None or value is None or name.type != "identifier":
                continue
            required = _require_source(value)
            if required is not None:
                imports.append(JsImport(_name(name), required, _line(declarator), "require"))
                continue
            bindings[_name(name)] = _value(value)

    for stmt in root.named_children:
        kind = stmt.type
        if kind == "import_statement":
            imports.extend(_import_bindings(stmt))
        elif kind in ("lexical_declaration", "variable_declaration"):
            declare(stmt)
        elif kind == "export_statement":
            decl = stmt.child_by_field_name("declaration")
            value = stmt.child_by_field_name("value")
            source_node = stmt.child_by_field_name("source")
            if decl is not None and decl.type in ("lexical_declaration", "variable_declaration"):
                declare(decl)
            elif value is not None and any(c.type == "default" for c in stmt.children):
                default = _value(value)
                default_line = _line(stmt)
            elif source_node is not None:
                source = _string_value(source_node)
                if source is not None:
                    imports.append(JsImport("", source, _line(stmt), "re-export"))
            else:
                for clause in stmt.named_children:
                    if clause.type != "export_clause":
                        continue
                    for spec in clause.named_children:
                        alias = spec.child_by_field_name("alias")
                        name = spec.child_by_field_name("name")
                        if alias is not None and name is not None and _text(alias) == "default":
                            default = JsValue(
                                "identifier", _text(name), _line(spec), name=_text(name)
                            )
                            default_line = _line(stmt)
        elif kind == "expression_statement" and stmt.named_children:
            expr = stmt.named_children[0]
            if expr.type == "assignment_expression":
                left = expr.child_by_field_name("left")
                right = expr.child_by_field_name("right")
                if (
                    left is not None
                    and right is not None
                    and _text(left).replace(" ", "") in ("module.exports", "exports.default")
                ):
                    default = _value(right)
                    default_line = _line(stmt)
                    commonjs = True
    return JsModule(
        imports=tuple(imports),
        bindings=bindings,
        default_export=default,
        default_export_line=default_line,
        errors=_first_errors(root),
        commonjs=commonjs,
    )


# --------------------------------------------------------------------------- migrations.js


@dataclass(frozen=True)
class MigrationsJsEntry:
    """One member of the ``migrations`` object: ``m0003`` (v0) or ``"2025…_name"`` (v1)."""

    key: str
    line: int
    #: ``import``: bound to a default import (``source`` is its specifier);
    #: ``string``: inline SQL text (``sql``); ``unbound``: an identifier nothing binds;
    #: ``other``: an expression that cannot be read as data
    kind: Literal["import", "string", "unbound", "other"]
    binding: str | None = None
    source: str | None = None
    sql: str | None = None
    text: str = ""
    import_line: int | None = None
    #: where the inline SQL text starts (``string``)
    sql_line: int | None = None


@dataclass(frozen=True)
class MigrationsJs:
    """What a ``migrations.js`` gives drizzle's migrator, read without running it."""

    module: JsModule
    #: the import whose specifier ends in ``_journal.json`` (None when there is none)
    journal_import: JsImport | None
    #: the default export is an object (``export default {...}``, possibly via a ``const``)
    has_default_export: bool
    #: ``export default {}``: the placeholder some templates ship before the first generate
    placeholder: bool
    #: the ``journal`` property of the default export, when there is one
    journal_property: JsProperty | None
    #: the ``migrations`` property resolved to an object literal
    migrations_found: bool
    migrations_line: int | None
    #: members of the migrations object, in source order (duplicates included)
    entries: tuple[MigrationsJsEntry, ...]
    #: things the reader could not take as data, as (line, message)
    unsupported: tuple[tuple[int, str], ...] = ()

    @property
    def errors(self) -> tuple[JsSyntaxError, ...]:
        return self.module.errors

    @property
    def imports(self) -> tuple[JsImport, ...]:
        return self.module.imports

    def entry(self, key: str) -> MigrationsJsEntry | None:
        """The member for ``key`` (the last one wins, as in a JS object literal)."""
        found = None
        for entry in self.entries:
            if entry.key == key:
                found = entry
        return found

    @property
    def keys(self) -> tuple[str, ...]:
        """Distinct keys in first-appearance order."""
        return tuple(dict.fromkeys(e.key for e in self.entries))


def _journal_import(module: JsModule) -> JsImport | None:
    for imp in module.imports:
        if imp.source.replace("\\", "/").rsplit("/", 1)[-1] == "_journal.json":
            return imp
    return None


def parse_migrations_js(text: str, *, dialect: Dialect = "javascript") -> MigrationsJs:
    """Read a drizzle-kit ``migrations.js``: v0 ``{journal, migrations}`` or v1 ``{migrations}``
    (``dialect="typescript"`` for a hand-written ``migrations.ts`` of the same shape)."""
    module = parse_module(text, dialect=dialect)
    unsupported: list[tuple[int, str]] = []
    export = module.resolve(module.default_export)
    has_object = export is not None and export.kind == "object"
    if export is not None and not has_object:
        unsupported.append(
            (
                export.line,
                f"the default export is `{_short(export.text)}`, not an object literal",
            )
        )
    placeholder = has_object and export is not None and not export.properties
    journal_prop = export.get("journal") if has_object and export is not None else None
    migrations_prop = export.get("migrations") if has_object and export is not None else None
    entries: list[MigrationsJsEntry] = []
    migrations_found = False
    migrations_line = None
    if has_object and export is not None:
        for prop in export.properties:
            if prop.spread:
                unsupported.append(
                    (prop.line, f"spread `...{_short(prop.value.text)}` in the default export")
                )
    if migrations_prop is not None:
        migrations_line = migrations_prop.line
        obj = module.resolve(migrations_prop.value)
        if obj is None or obj.kind != "object":
            value_text = obj.text if obj is not None else migrations_prop.value.text
            unsupported.append(
                (
                    migrations_prop.line,
                    f"`migrations` is `{_short(value_text)}`, not an object literal",
                )
            )
        else:
            migrations_found = True
            for prop in obj.properties:
                if prop.key is None:
                    what = "spread" if prop.spread else "computed key"
                    unsupported.append(
                        (prop.line, f"{what} `{_short(prop.value.text)}` in `migrations`")
                    )
                    continue
                entries.append(_entry(module, prop))
    return MigrationsJs(
        module=module,
        journal_import=_journal_import(module),
        has_default_export=has_object,
        placeholder=bool(placeholder),
        journal_property=journal_prop,
        migrations_found=migrations_found,
        migrations_line=migrations_line,
        entries=tuple(entries),
        unsupported=tuple(unsupported),
    )


def _entry(module: JsModule, prop: JsProperty) -> MigrationsJsEntry:
    key = prop.key or ""
    value = prop.value
    if value.kind == "identifier":
        imp = module.import_of(value.name or "")
        if imp is not None and imp.kind in ("default", "require"):
            return MigrationsJsEntry(
                key,
                prop.line,
                "import",
                binding=value.name,
                source=imp.source,
                text=value.text,
                import_line=imp.line,
            )
        resolved = module.resolve(value)
        if resolved is not None and resolved.kind == "string":
            return MigrationsJsEntry(
                key,
                prop.line,
                "string",
                binding=value.name,
                sql=resolved.string,
                text=value.text,
                sql_line=resolved.line,
            )
        if imp is None and (resolved is None or resolved.kind == "identifier"):
            return MigrationsJsEntry(key, prop.line, "unbound", binding=value.name, text=value.text)
        return MigrationsJsEntry(key, prop.line, "other", binding=value.name, text=value.text)
    if value.kind == "string":
        return MigrationsJsEntry(
            key, prop.line, "string", sql=value.string, text=value.text, sql_line=value.line
        )
    return MigrationsJsEntry(key, prop.line, "other", text=value.text)


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --------------------------------------------------------------------------- drizzle config


@dataclass(frozen=True)
class ConfigValue:
    """One drizzle config option as written. ``value`` is set only when it is a literal."""

    present: bool
    value: str | tuple[str, ...] | None = None
    #: True when ``value`` comes from a string literal (or an array of them), possibly through a
    #: top-level ``const``; False for anything computed (``env.X``, template with ``${}``)
    literal: bool = False
    line: int | None = None
    #: the source text of the expression
    text: str | None = None

    @property
    def string(self) -> str | None:
        return self.value if isinstance(self.value, str) else None

    def describe(self) -> str:
        if not self.present:
            return "not set"
        if self.literal:
            return repr(self.value)
        return f"not a literal: `{_short(self.text or '')}`"


_ABSENT = ConfigValue(present=False)


@dataclass(frozen=True)
class DrizzleConfigValues:
    """``out``, ``dialect``, ``driver``, ``schema`` of a drizzle-kit config, read as data."""

    out: ConfigValue = _ABSENT
    dialect: ConfigValue = _ABSENT
    driver: ConfigValue = _ABSENT
    schema: ConfigValue = _ABSENT
    #: the config object was found (``export default {...}``, ``defineConfig({...})``, JSON)
    found: bool = False
    #: problems reading it, as (line, message); line None when it is about the whole file
    issues: tuple[tuple[int | None, str], ...] = ()
    errors: tuple[JsSyntaxError, ...] = field(default=())


_CONFIG_KEYS = ("out", "dialect", "driver", "schema")


def _config_value(module: JsModule | None, value: JsValue) -> ConfigValue:
    resolved = module.resolve(value) if module is not None else value
    if resolved is None:
        resolved = value
    if resolved.kind == "string":
        return ConfigValue(True, resolved.string, True, value.line, value.text)
    if resolved.kind == "array":
        strings = [item.string for item in resolved.items if item.kind == "string"]
        if len(strings) == len(resolved.items):
            return ConfigValue(
                True, tuple(s for s in strings if s is not None), True, value.line, value.text
            )
    return ConfigValue(True, None, False, value.line, value.text)


def parse_drizzle_config(text: str, path: Path | str) -> DrizzleConfigValues:
    """Read a ``drizzle*.config.{ts,js,mjs,cjs,mts,cts,json}`` without running it."""
    name = str(path).lower()
    if name.endswith(".json"):
        return _parse_json_config(text)
    module = parse_module(text, dialect=dialect_for(path))
    issues: list[tuple[int | None, str]] = []
    obj = _config_object(module, issues)
    if obj is None:
        return DrizzleConfigValues(issues=tuple(issues), errors=module.errors)
    values: dict[str, ConfigValue] = {}
    for prop in obj.properties:
        if prop.spread:
            issues.append(
                (prop.line, f"spread `...{_short(prop.value.text)}`: its keys cannot be read")
            )
            continue
        if prop.key in _CONFIG_KEYS:
            values[prop.key] = _config_value(module, prop.value)
    return DrizzleConfigValues(
        out=values.get("out", _ABSENT),
        dialect=values.get("dialect", _ABSENT),
        driver=values.get("driver", _ABSENT),
        schema=values.get("schema", _ABSENT),
        found=True,
        issues=tuple(issues),
        errors=module.errors,
    )


def _config_object(module: JsModule, issues: list[tuple[int | None, str]]) -> JsValue | None:
    value = module.resolve(module.default_export)
    if value is None:
        issues.append((None, "no `export default` (or `module.exports =`) found"))
        return None
    for _ in range(_MAX_RESOLVE):
        if value is None or value.kind != "call":
            break
        # defineConfig({...}) and similar wrappers: the config is the first argument
        if not value.items:
            issues.append((value.line, f"`{_short(value.text)}` has no argument to read"))
            return None
        value = module.resolve(value.items[0])
    if value is None or value.kind != "object":
        text = value.text if value is not None else ""
        line = value.line if value is not None else module.default_export_line
        issues.append((line, f"the default export `{_short(text)}` is not an object literal"))
        return None
    return value


def _parse_json_config(text: str) -> DrizzleConfigValues:
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return DrizzleConfigValues(issues=((exc.lineno, f"invalid JSON: {exc.msg}"),))
    if not isinstance(data, dict):
        return DrizzleConfigValues(issues=((1, "the JSON config is not an object"),))
    values: dict[str, ConfigValue] = {}
    for key in _CONFIG_KEYS:
        if key not in data:
            continue
        raw = data[key]
        line = _json_key_line(text, key)
        if isinstance(raw, str):
            values[key] = ConfigValue(True, raw, True, line, json.dumps(raw))
        elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            values[key] = ConfigValue(True, tuple(raw), True, line, json.dumps(raw))
        else:
            values[key] = ConfigValue(True, None, False, line, json.dumps(raw))
    return DrizzleConfigValues(
        out=values.get("out", _ABSENT),
        dialect=values.get("dialect", _ABSENT),
        driver=values.get("driver", _ABSENT),
        schema=values.get("schema", _ABSENT),
        found=True,
    )


def _json_key_line(text: str, key: str) -> int | None:
    match = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return text.count("\n", 0, match.start()) + 1 if match else None


# --------------------------------------------------------------------------- worker sources


@dataclass(frozen=True)
class SourceClass:
    """A top-level class declaration: ``export class Room extends DurableObject``."""

    name: str
    extends: str | None
    line: int
    exported: bool


@dataclass(frozen=True)
class SourceInfo:
    """Module specifiers and top-level classes of a worker source file."""

    imports: tuple[JsImport, ...]
    classes: tuple[SourceClass, ...]
    errors: tuple[JsSyntaxError, ...] = ()


def _class_of(node: Node, exported: bool) -> SourceClass | None:
    name = node.child_by_field_name("name")
    if name is None:
        return None
    extends = None
    for child in node.named_children:
        if child.type == "class_heritage":
            clause = next((c for c in child.named_children if c.type == "extends_clause"), child)
            values = [c for c in clause.named_children if c.type != "type_arguments"]
            if values:
                extends = _text(values[0])
    return SourceClass(_text(name), extends, _line(node), exported)


def scan_source(text: str, *, dialect: Dialect = "typescript") -> SourceInfo:
    """Static imports/re-exports, ``import("x")`` with a literal, and top-level classes."""
    root = _parse(text, dialect)
    module = _module_from_root(root)
    imports = list(module.imports)
    classes: list[SourceClass] = []
    for stmt in root.named_children:
        if stmt.type in ("class_declaration", "abstract_class_declaration"):
            cls = _class_of(stmt, exported=False)
            if cls is not None:
                classes.append(cls)
        elif stmt.type == "export_statement":
            decl = stmt.child_by_field_name("declaration")
            if decl is not None and decl.type in (
                "class_declaration",
                "abstract_class_declaration",
            ):
                cls = _class_of(decl, exported=True)
                if cls is not None:
                    classes.append(cls)
    for match in _DYNAMIC_IMPORT.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        imports.append(JsImport("", match.group(2), line, "side-effect"))
    return SourceInfo(tuple(imports), tuple(classes), module.errors)


_DYNAMIC_IMPORT = re.compile(r"""\bimport\s*\(\s*(['"])([^'"\n]+)\1\s*\)""")
