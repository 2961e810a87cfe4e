"""The names of the built-in checks and where each one lives (import-cheap).

The plugin validates include/exclude lists and shows help from this table without importing
any check module; a check's module is imported only when the check runs.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

__all__ = ["CHECK_NAMES", "CHECK_SOURCES", "get_check"]

#: check name -> "module:function", in collection order
CHECK_SOURCES: dict[str, str] = {
    "bundle_integrity": "checks:bundle_integrity",
    "upgrade_from_empty": "checks:upgrade_from_empty",
    "idempotent": "checks:idempotent",
    "schema_snapshot": "checks:schema_snapshot",
    "wrangler_contract": "contract:wrangler_contract",
    "upgrade_from_every_version": "fleet:upgrade_from_every_version",
    "concurrent_starts": "fleet:concurrent_starts",
    "crash_recovery": "fleet:crash_recovery",
    "data_preserved": "preservation:data_preserved",
    "matches_drizzle_snapshot": "drizzle_snapshot:matches_drizzle_snapshot",
    "lint": "lint:lint_check",
    "startup_budget": "preservation:startup_budget",
}

CHECK_NAMES: tuple[str, ...] = tuple(CHECK_SOURCES)


def get_check(name: str) -> Callable[[Any], None]:
    """The check function registered under ``name``."""
    module, _, func = CHECK_SOURCES[name].partition(":")
    fn: Callable[[Any], None] = getattr(import_module(f"pytest_dosqlite.{module}"), func)
    return fn
