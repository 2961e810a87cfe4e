"""Shared test helpers: where ``../shared`` is, and skipping cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EXAMPLES = Path(__file__).resolve().parent / "examples"


def shared_path(*parts: str) -> Path:
    """A path under ``../shared``; skips the calling test when it does not exist."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared not available ({path.relative_to(SHARED.parent)} missing)")
    return path


@pytest.fixture
def shared_dir() -> Path:
    return shared_path()


@pytest.fixture(autouse=True)
def _not_on_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report links files to the repository on GitHub Actions (see report._github_blob):
    the tests expect the links of a local run, wherever CI runs them."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
