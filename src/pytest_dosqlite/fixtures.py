"""Fixtures for users' own tests: fresh DOs, at head or at any version of a bundle.

Every test gets its own private DO: a copy of a cached database image, so a migrated DO costs a
memory copy. ``dosqlite_bundle`` is parametrized over the bundles found in the project (override
it in a ``conftest.py`` to pin one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .bundle import Bundle
    from .images import ImageCache
    from .storage import DurableObjectStorage

__all__ = ["do_at", "do_storage", "dosqlite_bundle", "dosqlite_images", "migrated_do"]


@pytest.fixture(scope="session")
def dosqlite_images() -> ImageCache:
    """The session's cache of bundle images (one per bundle version)."""
    from .images import default_cache

    return default_cache()


@pytest.fixture(scope="session")
def dosqlite_bundle(request: pytest.FixtureRequest) -> Bundle:
    """The bundle under test (parametrized over every bundle the project has)."""
    param = getattr(request, "param", None)
    if param is None:
        raise pytest.UsageError(
            "dosqlite_bundle: no drizzle bundle was found for this project. Point pytest at it "
            "with --dosqlite-bundle PATH (or ini dosqlite_bundles), or override the "
            "dosqlite_bundle fixture in conftest.py with pytest_dosqlite.load_bundle(...)."
        )
    bundle: Bundle = param.bundle
    return bundle


@pytest.fixture
def do_storage() -> Iterator[DurableObjectStorage]:
    """A fresh, empty SQLite-backed DO storage (in memory)."""
    from .storage import DurableObjectStorage

    do = DurableObjectStorage()
    yield do
    do.close()


@pytest.fixture
def migrated_do(
    dosqlite_bundle: Bundle, dosqlite_images: ImageCache
) -> Iterator[DurableObjectStorage]:
    """A fresh DO with every migration of the bundle applied (a copy of a cached image)."""
    do = dosqlite_images.fresh(dosqlite_bundle)
    yield do
    do.close()


@pytest.fixture
def do_at(
    dosqlite_bundle: Bundle, dosqlite_images: ImageCache
) -> Iterator[Callable[[str], DurableObjectStorage]]:
    """Factory: ``do_at("0002_add_posts")`` is a fresh DO migrated through that tag.

    Insert data at an old version, then ``pytest_dosqlite.migrate(do, dosqlite_bundle)`` and
    assert on the result: the data-migration test pattern.
    """
    made: list[Any] = []

    def factory(tag: str) -> DurableObjectStorage:
        migration = dosqlite_bundle.migration(tag)
        count = dosqlite_bundle.migrations.index(migration) + 1
        do = dosqlite_images.fresh(dosqlite_bundle, count)
        made.append(do)
        return do

    yield factory
    for do in made:
        do.close()
