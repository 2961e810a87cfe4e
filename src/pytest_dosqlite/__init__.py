"""pytest-dosqlite: Drizzle migrations for SQLite-backed Durable Objects, tested before production.

The public API is importable from here. Names resolve lazily so that pytest loading the plugin
(``pytest_dosqlite.plugin``) does not pay for APSW, sqlglot or syrupy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "load_bundle": "bundle",
    "Bundle": "bundle",
    "Migration": "bundle",
    "Problem": "bundle",
    "DurableObjectStorage": "storage",
    "SqlStorage": "storage",
    "Cursor": "storage",
    "sqlite_version": "storage",
    "migrate": "migrator",
    "MigrationRun": "migrator",
    "SqlError": "errors",
    "MigrationError": "errors",
    "BundleError": "errors",
    "DurableObjectInternalError": "errors",
    "DurableObjectResetError": "errors",
    "DosqliteError": "errors",
    "DosqliteWarning": "errors",
    "IntegrityWarning": "errors",
    "DosqliteLintWarning": "lint",
    "DosqliteBudgetWarning": "budget",
    "RUNTIME": "runtime",
}

__all__ = [
    "RUNTIME",
    "Bundle",
    "BundleError",
    "Cursor",
    "DosqliteBudgetWarning",
    "DosqliteError",
    "DosqliteLintWarning",
    "DosqliteWarning",
    "DurableObjectInternalError",
    "DurableObjectResetError",
    "DurableObjectStorage",
    "IntegrityWarning",
    "Migration",
    "MigrationError",
    "MigrationRun",
    "Problem",
    "SqlError",
    "SqlStorage",
    "__version__",
    "load_bundle",
    "migrate",
    "sqlite_version",
]

if TYPE_CHECKING:
    from .budget import DosqliteBudgetWarning
    from .bundle import Bundle, Migration, Problem, load_bundle
    from .errors import (
        BundleError,
        DosqliteError,
        DosqliteWarning,
        DurableObjectInternalError,
        DurableObjectResetError,
        IntegrityWarning,
        MigrationError,
        SqlError,
    )
    from .lint import DosqliteLintWarning
    from .migrator import MigrationRun, migrate
    from .runtime import RUNTIME
    from .storage import Cursor, DurableObjectStorage, SqlStorage, sqlite_version


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_dosqlite' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
