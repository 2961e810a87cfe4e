"""Real-runtime backend: drive workerd (Cloudflare's Durable Object runtime) from Python.

Why: recordings and parity tests need the ground truth the emulator imitates. The npm side
(``package.json`` + lock, ``server.mjs``, ``worker.mjs``, ``build.mjs``) is installed into a
per-user cache on first use; :class:`WorkerdBackend` starts it and talks HTTP on 127.0.0.1.
Everything here is stdlib-only and cheap to import.
"""

from __future__ import annotations

from .backend import DEFAULT_COMPAT_DATE, Statement, WorkerdBackend
from .install import (
    PINNED_WORKERD,
    Installation,
    NodeNotFoundError,
    WorkerdError,
    cache_root,
    ensure_installed,
    find_node,
    harness_dir,
)
from .persist import do_id_hex, sqlite_path

__all__ = [
    "DEFAULT_COMPAT_DATE",
    "PINNED_WORKERD",
    "Installation",
    "NodeNotFoundError",
    "Statement",
    "WorkerdBackend",
    "WorkerdError",
    "cache_root",
    "do_id_hex",
    "ensure_installed",
    "find_node",
    "harness_dir",
    "sqlite_path",
]
