"""Where a persisted Durable Object's SQLite file lives (Miniflare's on-disk layout).

Why: with ``durableObjectsPersist: DIR`` each DO's database is
``DIR/<worker>-<Class>/<64-hex id>.sqlite`` (+ ``-wal``/``-shm``), where the id is workerd's
``idFromName(name)``. Computing that id in Python lets tests open the real runtime's file with
APSW/sqlite3 after the server stopped, without asking the runtime.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

__all__ = ["CLASS_NAME", "WORKER_NAME", "do_id_hex", "sqlite_path"]

#: the harness Worker's name and DO class (see server.mjs / worker.mjs)
WORKER_NAME = "dosqlite"
CLASS_NAME = "HarnessDO"


def do_id_hex(name: str, *, worker: str = WORKER_NAME, class_name: str = CLASS_NAME) -> str:
    """The 64-hex id of ``idFromName(name)`` under Miniflare's unique key ``<worker>-<Class>``."""
    key = hashlib.sha256(f"{worker}-{class_name}".encode()).digest()
    first = hmac.new(key, name.encode(), hashlib.sha256).digest()[:16]
    return (first + hmac.new(key, first, hashlib.sha256).digest()[:16]).hex()


def sqlite_path(
    persist_dir: Path | str,
    name: str,
    *,
    worker: str = WORKER_NAME,
    class_name: str = CLASS_NAME,
) -> Path:
    """``persist_dir/<worker>-<Class>/<id>.sqlite`` for the DO named ``name``."""
    folder = Path(persist_dir) / f"{worker}-{class_name}"
    return folder / f"{do_id_hex(name, worker=worker, class_name=class_name)}.sqlite"
