"""The emulator replays every recording of the real runtime and gets the same answers.

``tests/data/workerd/recorded.json`` holds 744 cases recorded on workerd 1.20261117.1 (every
statement, PRAGMA, limit, reserved-name, binding, transaction, constructor and drizzle scenario
of the research notes). Each case runs on a fresh emulated DO through the same harness protocol,
and every outcome must equal the recorded one: rows, column names, error messages byte for byte,
constructions and resets. Only ``rowsRead``/``rowsWritten`` are not compared: workerd counts them
with a patched SQLite statement counter that plain SQLite does not have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_dosqlite.workerd.emulated import EmulatedHarness
from pytest_dosqlite.workerd.recordings import load, outcomes_match, replay

RECORDED = Path(__file__).parent / "data" / "workerd" / "recorded.json"
DATA = load(RECORDED)
CASES = DATA["cases"]


def _without_counters(value: Any) -> Any:
    """Drop the row counters; compare numbers as the JS doubles they are."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return float(value)
    if isinstance(value, list):
        return [_without_counters(v) for v in value]
    if isinstance(value, dict):
        return {
            k: _without_counters(v)
            for k, v in value.items()
            if k not in ("rowsRead", "rowsWritten")
        }
    return value


def test_recordings_are_from_the_target_runtime() -> None:
    assert DATA["runtime"]["workerdPackage"] == "1.20261117.1"
    assert DATA["runtime"]["sqlite"] == "3.54.1"
    assert len(CASES) > 600


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_emulator_matches_the_real_runtime(case: dict[str, Any]) -> None:
    harness = EmulatedHarness()
    got = replay(lambda: harness, case, DATA["bundles"], case["name"], restart=harness.restart)  # type: ignore[arg-type,return-value]
    expected = _without_counters(case["outcomes"])
    actual = _without_counters(got)
    assert outcomes_match(expected, actual, case.get("compare", "exact")), (
        f"{case['name']}\nrequests: {case['requests']}\nexpected: {expected}\nactual:   {actual}"
    )
