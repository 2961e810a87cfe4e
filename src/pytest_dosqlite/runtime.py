"""What the production Durable Object runtime allows: limits, allow-lists and verbatim messages.

This is data, not logic: the emulator in :mod:`pytest_dosqlite.storage` enforces it. Every value
was measured on workerd (see ``research/workerd-do-sqlite.md``) and is replayed by the test suite
against recordings of the real runtime. We follow the newest runtime, the one current wrangler
ships.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RUNTIME", "Runtime"]

TXN_MESSAGE = (
    "To execute a transaction, please use the state.storage.transaction() or "
    "state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT "
    "statements. The JavaScript API is safer because it will automatically roll back on "
    "exceptions, and because it interacts correctly with Durable Objects' automatic atomic "
    "write coalescing."
)
NO_STATEMENT_MESSAGE = "SQL code did not contain a statement."
ONLY_LAST_PARAMS_MESSAGE = (
    "When executing multiple SQL statements in a single call, only the last statement can have "
    "parameters."
)
WRONG_BINDINGS_MESSAGE = "Wrong number of parameter bindings for SQL query."
ONE_NO_RESULTS_MESSAGE = "Expected exactly one result from SQL query, but got no results."
ONE_MANY_RESULTS_MESSAGE = "Expected exactly one result from SQL query, but got multiple results."
RESET_MESSAGE_PREFIX = (
    "Durable Object was reset and rolled back to its last known good state because the "
    "application left the database in a state where constraints were violated: "
)
TOO_LONG_MESSAGE = "statement too long: SQLITE_TOOBIG"
#: what a request that workerd cannot finish fails with; 24 random base32hex characters follow
INTERNAL_ERROR_PREFIX = "internal error; reference = "

# Pragma signatures (workerd util/sqlite.c++): how the argument is checked.
NO_ARG = "no-arg"
BOOLEAN = "boolean"
OBJECT_NAME = "object-name"
OPTIONAL_OBJECT_NAME = "optional-object-name"
NULL_OR_NUMBER = "null-or-number"
NULL_NUMBER_OR_OBJECT_NAME = "null-number-or-object-name"
TABLE_NAME = "table-name"  # table_info / table_xinfo: a name that is not reserved
ANY = "any"  # table_list

_CORE_FUNCTIONS = """
abs changes char coalesce concat concat_ws format glob hex ifnull iif instr last_insert_rowid
length like likelihood likely load_extension lower ltrim max_scalar min_scalar nullif
octet_length printf quote random randomblob replace round rtrim sign soundex substr substring
total_changes trim typeof unhex unicode unlikely upper zeroblob
date time datetime julianday unixepoch strftime timediff current_date current_time
current_timestamp
avg count group_concat max min string_agg sum total
row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
acos acosh asin asinh atan atan2 atanh ceil cos cosh degrees exp floor ln log log2 mod pi pow
radians sin sinh sqrt tan tanh trunc
json json_array json_array_length json_extract -> ->> json_insert json_object json_patch
json_remove json_replace json_set json_type json_valid json_quote json_group_array
json_group_object json_each json_tree
jsonb jsonb_array jsonb_extract jsonb_insert jsonb_object jsonb_patch jsonb_remove jsonb_replace
jsonb_set jsonb_group_array jsonb_group_object
match highlight bm25 snippet rtreecheck
sqlite_rename_column sqlite_rename_table sqlite_rename_test sqlite_drop_column
sqlite_rename_quotefix
"""

# Functions the workerd build of SQLite does not compile in: a call is "no such function",
# even where the name is on the allow-list (soundex) or APSW's SQLite has it.
_NOT_COMPILED = """
soundex regexp median percentile percentile_cont percentile_disc stddev decimal decimal_add
decimal_sub decimal_mul decimal_cmp decimal_sum uuid uuid_str uuid_blob sha1 sha3 sha3_query md5
crc32 ieee754 ieee754_mantissa ieee754_exponent ieee754_to_blob ieee754_from_blob base64 base85
readfile writefile edit eval sqlite_offset fts3_tokenizer matchinfo offsets sqlite_log
geopoly_area geopoly_bbox geopoly_blob geopoly_ccw geopoly_contains_point geopoly_debug
geopoly_group_bbox geopoly_json geopoly_overlap geopoly_regular geopoly_svg geopoly_within
geopoly_xform
"""


@dataclass(frozen=True)
class Runtime:
    """One version of the DO runtime, as far as SQL is concerned."""

    workerd: str
    sqlite: str
    #: sqlite3_limit values set by workerd (name without SQLITE_LIMIT_ -> value). workerd's
    #: source also sets VDBE_OP to 25,000, but the runtime accepts far bigger programs (an IN
    #: list of 40,000 values is recorded as OK), so it is not applied here.
    limits: tuple[tuple[str, int], ...]
    #: pragma name -> signature
    pragmas: tuple[tuple[str, str], ...]
    functions: frozenset[str]
    not_compiled: frozenset[str]
    #: virtual table modules that may be created
    vtable_modules: frozenset[str]
    #: pragma names compared case-insensitively (newest runtime) or not (older ones)
    pragma_names_case_insensitive: bool = True

    @property
    def limit_map(self) -> dict[str, int]:
        return dict(self.limits)

    @property
    def pragma_map(self) -> dict[str, str]:
        return dict(self.pragmas)


#: workerd 1.20261117.1, the runtime current wrangler (4.164) ships.
RUNTIME = Runtime(
    workerd="1.20261117.1",
    sqlite="3.54.1",
    limits=(
        ("LENGTH", 8_388_642),
        ("SQL_LENGTH", 100_000),
        ("COLUMN", 100),
        ("EXPR_DEPTH", 100),
        ("COMPOUND_SELECT", 5),
        ("FUNCTION_ARG", 127),
        ("ATTACHED", 0),
        ("LIKE_PATTERN_LENGTH", 50),
        ("VARIABLE_NUMBER", 100),
        ("TRIGGER_DEPTH", 10),
        ("WORKER_THREADS", 0),
    ),
    pragmas=(
        ("data_version", NO_ARG),
        ("page_size", NO_ARG),
        ("case_sensitive_like", BOOLEAN),
        ("foreign_keys", BOOLEAN),
        ("defer_foreign_keys", BOOLEAN),
        ("ignore_check_constraints", BOOLEAN),
        ("legacy_alter_table", BOOLEAN),
        ("recursive_triggers", BOOLEAN),
        ("reverse_unordered_selects", BOOLEAN),
        ("foreign_key_check", OPTIONAL_OBJECT_NAME),
        ("foreign_key_list", OBJECT_NAME),
        ("index_info", OBJECT_NAME),
        ("index_list", OBJECT_NAME),
        ("index_xinfo", OBJECT_NAME),
        ("quick_check", NULL_NUMBER_OR_OBJECT_NAME),
        ("optimize", NULL_OR_NUMBER),
        ("table_info", TABLE_NAME),
        ("table_xinfo", TABLE_NAME),
        ("table_list", ANY),
    ),
    functions=frozenset(_CORE_FUNCTIONS.split()),
    not_compiled=frozenset(_NOT_COMPILED.split()),
    vtable_modules=frozenset({"fts5", "fts5vocab", "rtree", "rtree_i32"}),
)


def is_allowed_name(name: str) -> bool:
    """workerd's rule: a name is reserved iff it starts with ``_cf_`` (case-insensitively)."""
    return len(name) < 4 or name[:4].lower() != "_cf_"


_BOOLEAN_PREFIXES = ("true", "false", "yes", "no", "on", "off", "1", "0")


def pragma_allowed(runtime: Runtime, name: str, arg: str | None) -> bool:
    """Port of workerd's pragma check (argument rules per signature)."""
    key = name.lower() if runtime.pragma_names_case_insensitive else name
    sig = runtime.pragma_map.get(key)
    if sig is None:
        return False
    if sig == ANY:
        return True
    if sig == TABLE_NAME:
        return arg is not None and is_allowed_name(arg)
    if sig == NO_ARG:
        return arg is None
    if sig == BOOLEAN:
        if arg is None:
            return True
        val = arg
        if len(val) >= 2 and val[0] in "'\"" and val[-1] == val[0]:
            val = val[1:-1]
        low = val.lower()
        return any(low.startswith(p) for p in _BOOLEAN_PREFIXES)
    if sig == OBJECT_NAME:
        return arg is not None and is_allowed_name(arg)
    if sig == OPTIONAL_OBJECT_NAME:
        return arg is None or is_allowed_name(arg)
    if sig == NULL_OR_NUMBER:
        return arg is None or _parses_int32(arg)
    if sig == NULL_NUMBER_OR_OBJECT_NAME:
        return arg is None or _parses_uint(arg) or is_allowed_name(arg)
    return False


def _parses_int32(text: str) -> bool:
    """kj's ``tryParseAs<int32_t>``: decimal or 0x hex, optional sign, whole string."""
    t = text.strip()
    try:
        value = int(t, 0) if t.lower().lstrip("+-").startswith("0x") else int(t, 10)
    except ValueError:
        return False
    return -(2**31) <= value < 2**31


def _parses_uint(text: str) -> bool:
    t = text.strip()
    if t.startswith("-"):
        return False
    try:
        value = int(t, 0) if t.lower().lstrip("+").startswith("0x") else int(t, 10)
    except ValueError:
        return False
    return 0 <= value < 2**32
