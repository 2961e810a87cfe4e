"""Recordings of real workerd behaviour: load them, and replay a case on a live backend.

Why: ``tests/data/workerd/recorded.json`` is the ground truth the emulator is tested against
without Node; the same code that wrote it (``tools/record_workerd.py``) must be able to replay
it on the real runtime, so that a new workerd pin shows exactly which recorded facts changed.
The file format is documented in ``tests/data/workerd/README.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..runtime import INTERNAL_ERROR_PREFIX
from .backend import WorkerdBackend
from .install import WorkerdError

__all__ = [
    "FORMAT",
    "SetupFailed",
    "load",
    "normalize",
    "outcome_failed",
    "outcomes_match",
    "replay",
    "resolve",
]

#: version of the recordings file format
FORMAT = 1

Json = dict[str, Any]


class SetupFailed(WorkerdError):
    """A case's setup request did not succeed on the runtime (the case is not meaningful)."""


def load(path: Path | str) -> Json:
    """Read a recordings file and check its format version. Its integers are JSON.stringify's
    of JS numbers, read as the backend reads a live answer (beyond 2**53: the double)."""
    from .backend import js_integer

    data: Json = json.loads(Path(path).read_text(encoding="utf-8"), parse_int=js_integer)
    if data.get("format") != FORMAT:
        raise WorkerdError(f"{path}: recordings format {data.get('format')!r}, expected {FORMAT}")
    return data


def resolve(obj: Any, bundles: Mapping[str, Json]) -> Any:
    """Replace every ``"bundle": name`` by that bundle's ``journal`` and ``migrations``."""
    if isinstance(obj, list):
        return [resolve(x, bundles) for x in obj]
    if isinstance(obj, dict):
        out = {k: resolve(v, bundles) for k, v in obj.items() if k != "bundle"}
        if "bundle" in obj:
            out.update(bundles[obj["bundle"]])
        return out
    return obj


def _strip(entry: Any) -> Any:
    """Drop timings (``ms``) everywhere; they are not behaviour."""
    if isinstance(entry, list):
        return [_strip(e) for e in entry]
    if isinstance(entry, dict):
        return {k: _strip(v) for k, v in entry.items() if k != "ms"}
    return entry


def normalize(action: str, answer: Json) -> Json:
    """The recorded outcome of one raw harness answer (timings, DO ids removed, exec flattened)."""
    answer = {k: v for k, v in _strip(answer).items() if not (k == "id" and isinstance(v, str))}
    if answer.get("fatal"):
        return answer
    if action == "exec":
        result = dict(answer["results"][0])
        result["construction"] = answer.get("construction")
        if "ctor" in answer:
            result["ctor"] = answer["ctor"]
        return result
    return answer


def outcome_failed(outcome: Json) -> bool:
    """True when a request (or any of its logged steps) failed."""
    if outcome.get("fatal") or outcome.get("ok") is False:
        return True
    results = outcome.get("results")
    return isinstance(results, list) and any(
        isinstance(r, dict) and r.get("ok") is False for r in results
    )


def send(
    backend: WorkerdBackend,
    do_name: str,
    request: Mapping[str, Any],
    bundles: Mapping[str, Json],
    restart: Callable[[], None] | None = None,
) -> Json:
    """Send one recorded request; ``restart`` handles ``{"action": "restart"}``."""
    action = str(request["action"])
    if action == "restart":
        if restart is None:
            raise WorkerdError("this case restarts the runtime: pass restart=")
        restart()
        return {"restarted": True}
    body = resolve({k: v for k, v in request.items() if k != "action"}, bundles)
    return normalize(action, backend.request(do_name, action, body))


def replay(
    backend: WorkerdBackend | Callable[[], WorkerdBackend],
    case: Mapping[str, Any],
    bundles: Mapping[str, Json],
    do_name: str,
    restart: Callable[[], None] | None = None,
) -> list[Json]:
    """Run a case (setup, then requests) on a fresh DO named ``do_name``; its outcomes.

    ``backend`` may be a callable returning the current backend (it changes on restart).
    """

    def current() -> WorkerdBackend:
        return backend if isinstance(backend, WorkerdBackend) else backend()

    for request in case["setup"]:
        outcome = send(current(), do_name, request, bundles, restart)
        if outcome_failed(outcome):
            raise SetupFailed(f"setup of {case['name']!r} failed: {request} -> {outcome}")
    return [send(current(), do_name, r, bundles, restart) for r in case["requests"]]


def _status(outcome: Any) -> Any:
    if isinstance(outcome, list):
        return [_status(o) for o in outcome]
    if isinstance(outcome, dict):
        return {
            k: _status(v)
            for k, v in outcome.items()
            if k not in ("rows", "rowsRead", "rowsWritten")
        }
    return outcome


_REFERENCE = re.compile(re.escape(INTERNAL_ERROR_PREFIX) + r"[0-9a-v]{24}$")


def _unreferenced(outcome: Any) -> Any:
    """The random reference of workerd's ``internal error; reference = ...`` replaced."""
    if isinstance(outcome, str):
        return INTERNAL_ERROR_PREFIX + "*" if _REFERENCE.match(outcome) else outcome
    if isinstance(outcome, list):
        return [_unreferenced(o) for o in outcome]
    if isinstance(outcome, dict):
        return {k: _unreferenced(v) for k, v in outcome.items()}
    return outcome


def outcomes_match(
    expected: Sequence[Json], actual: Sequence[Json], compare: str = "exact"
) -> bool:
    """Compare outcomes; ``compare="status"`` ignores rows and row counters (random values).

    The reference of an internal error is random on both sides and never compared."""
    expected, actual = _unreferenced(list(expected)), _unreferenced(list(actual))
    if compare == "status":
        return bool(_status(expected) == _status(actual))
    return bool(expected == actual)
