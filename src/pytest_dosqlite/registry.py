"""The names of the built-in checks and where each one lives (import-cheap).

The plugin validates include/exclude lists and shows help from this table without importing
any check module; a check's module is imported only when the check runs.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

__all__ = [
    "BACKEND_INDEPENDENT",
    "CHECK_NAMES",
    "CHECK_SOURCES",
    "WORKERD_ONLY",
    "WORKERD_SOURCES",
    "get_check",
    "runs_on",
]

#: check name -> "module:function", in collection order
CHECK_SOURCES: dict[str, str] = {
    "bundle_integrity": "checks:bundle_integrity",
    "upgrade_from_empty": "checks:upgrade_from_empty",
    "idempotent": "checks:idempotent",
    "schema_snapshot": "checks:schema_snapshot",
    "wrangler_contract": "contract:wrangler_contract",
    "do_contract": "do_contract:do_contract",
    "upgrade_from_every_version": "fleet:upgrade_from_every_version",
    "concurrent_starts": "fleet:concurrent_starts",
    "crash_recovery": "fleet:crash_recovery",
    "data_preserved": "preservation:data_preserved",
    "matches_drizzle_snapshot": "drizzle_snapshot:matches_drizzle_snapshot",
    "lint": "lint:lint_check",
    "startup_budget": "budget:startup_budget",
}

CHECK_NAMES: tuple[str, ...] = tuple(CHECK_SOURCES)

#: under ``--dosqlite-backend=workerd``: the checks that run on the real runtime, and the
#: function that does it (the same function when only its DOs change: ``ctx.images`` then
#: hands out DOs inside workerd)
WORKERD_SOURCES: dict[str, str] = {
    "upgrade_from_empty": "checks:upgrade_from_empty",
    "idempotent": "checks:idempotent",
    "schema_snapshot": "checks:schema_snapshot",
    "matches_drizzle_snapshot": "drizzle_snapshot:matches_drizzle_snapshot",
    "upgrade_from_every_version": "backends:upgrade_from_every_version_workerd",
    "do_contract": "do_contract:do_contract",
}

#: checks that run no DO at all (the same on every backend)
BACKEND_INDEPENDENT: frozenset[str] = frozenset({"bundle_integrity", "wrangler_contract", "lint"})

#: checks that exist only with the workerd backend (collected only then)
WORKERD_ONLY: frozenset[str] = frozenset({"do_contract"})


def runs_on(name: str, backend: str) -> str:
    """Where check ``name`` runs with ``backend``: ``workerd``, ``emulator`` or ``any``."""
    if name in BACKEND_INDEPENDENT:
        return "any"
    if backend == "workerd" and name in WORKERD_SOURCES:
        return "workerd"
    return "emulator"


def get_check(name: str, backend: str = "emulator") -> Callable[[Any], None]:
    """The check function registered under ``name`` (for ``backend``)."""
    source = CHECK_SOURCES[name]
    if backend == "workerd":
        source = WORKERD_SOURCES.get(name, source)
    module, _, func = source.partition(":")
    fn: Callable[[Any], None] = getattr(import_module(f"pytest_dosqlite.{module}"), func)
    return fn
