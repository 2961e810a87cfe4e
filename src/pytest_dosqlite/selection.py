"""Which bundles a run takes in: the paths on the command line select bundles as they select tests.

Why: ``pytest --dosqlite tests/test_backfill.py`` is a run of that file, not of every bundle's
checks; ``pytest --dosqlite drizzle/0003_x.sql`` is a run of that file's bundle. Without paths,
every bundle of the project is taken in, also one outside ``testpaths``; ``--ignore`` takes a
folder out, as it does for tests. Plain functions of the pytest config and the bundles found,
used by collection (collect.py, plugin.py) and the terminal summary.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .collect import anchor_of

if TYPE_CHECKING:
    from .session import FoundBundle

__all__ = [
    "bundle_of_file",
    "explicit_paths",
    "ignored",
    "named_bundle_file",
    "named_load_error",
    "selected",
]


def explicit_paths(config: pytest.Config) -> list[Path] | None:
    """The paths named on the command line (node ids cut at ``::``), resolved; None when
    pytest collects its defaults (``testpaths``, or the folder it was started in).

    Named paths select the bundles under them, as they select test files: ``pytest --dosqlite
    tests/test_backfill.py`` runs that file, not every bundle's checks. Without paths, every
    bundle of the project is checked, wherever it lies (``testpaths = ["tests"]`` does not
    hide ``drizzle/``).
    """
    cached = config.stash.get(_EXPLICIT, _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    paths = None
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        base = config.invocation_params.dir
        paths = [(base / str(arg).split("::")[0]).resolve() for arg in config.args]
    config.stash[_EXPLICIT] = paths
    return paths


_UNSET = object()
_EXPLICIT = pytest.StashKey[object]()


def selected(found: FoundBundle, paths: list[Path] | None) -> bool:
    """Whether the command line's ``paths`` (see :func:`explicit_paths`) take in the bundle:
    a folder holding it, its own folder, or one of its files. A bundle named with
    ``--dosqlite-bundle`` is always taken: it was asked for by name."""
    if paths is None or found.source == "--dosqlite-bundle":
        return True
    root = found.bundle.root.resolve()
    anchor = anchor_of(found.bundle).resolve()
    return any(
        p == anchor or root.is_relative_to(p) or (p.is_relative_to(root) and p.is_file())
        for p in paths
    )


def ignored(found: FoundBundle, config: pytest.Config) -> bool:
    """Whether ``--ignore`` or ``--ignore-glob`` names the bundle's folder or one above it:
    pytest would not walk into it, so its checks are not added either."""
    paths = [Path(os.path.abspath(p)) for p in config.getoption("ignore", None) or []]
    globs = [os.path.abspath(g) for g in config.getoption("ignore_glob", None) or []]
    if not paths and not globs:
        return False
    root = Path(os.path.abspath(found.bundle.root))
    for folder in (root, *root.parents):
        if folder in paths or any(fnmatch.fnmatch(str(folder), g) for g in globs):
            return True
    return False


def bundle_of_file(path: Path, found: Iterable[FoundBundle]) -> FoundBundle | None:
    """The bundle whose folder holds ``path`` (the innermost, if folders nest)."""
    real = path.resolve()
    best: FoundBundle | None = None
    for f in found:
        root = f.bundle.root.resolve()
        if real.is_relative_to(root) and (
            best is None or root.is_relative_to(best.bundle.root.resolve())
        ):
            best = f
    return best


def _named(path: Path, config: pytest.Config) -> tuple[Path, list[Path]] | None:
    """``path`` resolved, with the command line's paths, when it is one of them."""
    paths = explicit_paths(config)
    # called for every file pytest walks: a name no path has settles it without a stat
    if not paths or all(path.name != p.name for p in paths):
        return None
    real = path.resolve()
    return (real, paths) if real in paths else None


def named_bundle_file(
    path: Path, config: pytest.Config, found: Iterable[FoundBundle]
) -> tuple[FoundBundle, bool] | None:
    """The bundle of a file named on the command line that is not the bundle's anchor
    (``pytest --dosqlite drizzle/0003_x.sql`` or ``drizzle/migrations.js``), and whether its
    checks are collected elsewhere: through another path given that holds the anchor, or
    through another of its files named earlier (they would run twice)."""
    named = _named(path, config)
    if named is None:
        return None
    real, paths = named
    bundle = bundle_of_file(real, found)
    if bundle is None:
        return None
    anchor = anchor_of(bundle.bundle).resolve()
    earlier = paths[: paths.index(real)]
    elsewhere = any(p != real and anchor.is_relative_to(p) for p in paths) or any(
        p.is_file() and bundle_of_file(p, [bundle]) is not None for p in earlier
    )
    return bundle, elsewhere


def named_load_error(path: Path, config: pytest.Config, errors: Iterable[Any]) -> Any | None:
    """The load error of the bundle folder holding a file named on the command line
    (``pytest --dosqlite drizzle/0003_x.sql`` when the journal is broken): reported there,
    rather than pytest's ``not found``."""
    named = _named(path, config)
    if named is None:
        return None
    real = named[0]
    for error in errors:
        where = Path(error.path).resolve()
        if real == where or real.is_relative_to(where):
            return error
    return None
