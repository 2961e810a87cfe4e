"""Database images of a bundle at every version, built once and copied per test.

A fresh migrated DO should cost a memory copy, not a migration run: each bundle's images (the
empty DO with migrations ``0..k`` applied, for every ``k`` a check or fixture asks for) are built
once per session, incrementally (version ``k`` from version ``k-1``, so the cost is linear in the
bundle), and handed out as private in-memory copies via SQLite's deserialize. Images are keyed
by the bundle's fingerprint, so editing a migration file invalidates them.

Consecutive versions differ in a few pages, so the images are stored as tuples of shared pages
(1000 synthetic migrations: 1.9 GB of images, 20 MB of distinct pages) and joined into bytes
when asked for; the last few joined images are kept. The builds of consecutive versions reuse
one connection while no migration leaves connection state behind (see
:func:`sets_connection_state`), which saves re-reading the whole schema for every version.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .bundle import Bundle, Migration
from .errors import MigrationError
from .migrator import migrate
from .recycling import ConnectionPool
from .sqltext import split
from .storage import DurableObjectStorage

__all__ = [
    "ImageCache",
    "VersionImage",
    "default_cache",
    "reads_connection_state",
    "sets_connection_state",
    "user_table_count",
]

#: joined images kept per cache (the head and the versions a loop is walking through)
JOINED_IMAGES = 8


@dataclass(frozen=True)
class VersionImage:
    """The DO after a fresh start with the first ``count`` migrations (or the error it hit)."""

    count: int
    image: bytes | None
    error: MigrationError | None = None
    #: seconds the last migration of this version took when the image was built
    seconds: float = 0.0
    #: built from version ``count - 1`` by one ``migrate()`` that applied exactly the last
    #: migration (so it is what that version's DO becomes when it runs it); False when it had
    #: to be built from scratch
    incremental: bool = False


_PRAGMA_NAME = re.compile(
    r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*PRAGMA\s+(?:[\"`\[]?main[\"`\]]?\s*\.\s*)?[\"`\[]?(\w+)",
    re.IGNORECASE | re.DOTALL,
)
#: functions whose value carries over from one statement of a connection to the next
_CONNECTION_STATE_CALL = re.compile(r"\b(?:last_insert_rowid|changes|total_changes)\s*\(", re.I)


def sets_connection_state(m: Migration) -> bool:
    """A statement of ``m`` is a PRAGMA other than ``foreign_keys`` (a no-op inside the
    migrator's transaction), so its setting outlives the migration on the connection."""
    for chunk in m.chunks:
        if "pragma" not in chunk.lower():
            continue
        for piece in split(chunk):
            match = _PRAGMA_NAME.match(piece.text) if piece.has_statement else None
            if match is not None and match.group(1).lower() != "foreign_keys":
                return True
    return False


def reads_connection_state(m: Migration) -> bool:
    """``m`` calls ``changes()``, ``last_insert_rowid()`` or ``total_changes()``, whose values
    depend on what the connection ran before."""
    return _CONNECTION_STATE_CALL.search(m.sql) is not None


@dataclass
class _Stored:
    """A version as kept: the pages of its image (None when it failed) and its build facts."""

    pages: tuple[bytes, ...] | None
    error: MigrationError | None = None
    seconds: float = 0.0
    incremental: bool = False


@dataclass
class _BundleImages:
    versions: dict[int, _Stored] = field(default_factory=dict)


class ImageCache:
    """Per-process cache of version images; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_fingerprint: dict[str, _BundleImages] = {}
        self._joined: OrderedDict[tuple[str, int], VersionImage] = OrderedDict()
        self.builds = 0  # migrations runs performed (for tests and benchmarks)
        #: connections of closed DOs, lent again by :meth:`fresh`
        self.pool = ConnectionPool()
        # id(bundle) -> (weak reference, fingerprint): hashing every migration's SQL on each
        # lookup cost more than the copy of the image itself
        self._fingerprints: dict[int, tuple[weakref.ref[Bundle], str]] = {}

    def _fingerprint(self, bundle: Bundle) -> str:
        key = id(bundle)
        hit = self._fingerprints.get(key)
        if hit is not None and hit[0]() is bundle:
            return hit[1]
        fingerprints = self._fingerprints

        def forget(ref: weakref.ref[Bundle], key: int = key) -> None:
            if fingerprints.get(key, (None, ""))[0] is ref:
                del fingerprints[key]

        value = bundle.fingerprint
        fingerprints[key] = (weakref.ref(bundle, forget), value)
        return value

    def _entry(self, key: str, bundle: Bundle) -> _BundleImages:
        entry = self._by_fingerprint.get(key)
        if entry is None:
            entry = self._by_fingerprint[key] = _BundleImages()
            empty = DurableObjectStorage()
            try:
                if not bundle.migrations:
                    # version 0 is also head: a DO that ran migrate() with nothing to apply,
                    # which still creates drizzle's ledger table
                    migrate(empty, bundle)
                entry.versions[0] = _Stored(empty.image_pages())
            except MigrationError as exc:
                entry.versions[0] = _Stored(None, exc)
            finally:
                empty.close()
        return entry

    def _stored(self, bundle: Bundle, count: int) -> tuple[str, _Stored]:
        """The stored version ``count`` (built, with every version below it, if needed)."""
        count = bundle.version_count(count)
        key = self._fingerprint(bundle)
        entry = self._entry(key, bundle)
        stored = entry.versions.get(count)
        if stored is None:
            self._walk(bundle, entry, count)
            stored = entry.versions[count]
        return key, stored

    def version(self, bundle: Bundle, count: int) -> VersionImage:
        """Image after migrating a fresh DO with ``bundle.prefix(count)``."""
        with self._lock:
            key, stored = self._stored(bundle, count)
            joined = self._joined.get((key, count))
            if joined is not None:
                self._joined.move_to_end((key, count))
                return joined
            image = b"".join(stored.pages) if stored.pages is not None else None
            joined = VersionImage(count, image, stored.error, stored.seconds, stored.incremental)
            self._joined[(key, count)] = joined
            while len(self._joined) > JOINED_IMAGES:
                self._joined.popitem(last=False)
            return joined

    def built(self, bundle: Bundle, count: int | None = None) -> bool:
        """Version ``count`` (default: head) is already built: asking for it costs nothing."""
        k = len(bundle.migrations) if count is None else count
        with self._lock:
            entry = self._by_fingerprint.get(self._fingerprint(bundle))
            return entry is not None and k in entry.versions

    def reaches(self, bundle: Bundle, count: int) -> bool:
        """A fresh DO migrates to version ``count`` (its image exists); joins no image."""
        with self._lock:
            return self._stored(bundle, count)[1].pages is not None

    def pages(self, bundle: Bundle, count: int) -> tuple[bytes, ...] | None:
        """Version ``count``'s image as its database pages, shared with other versions (None
        when a fresh DO fails to reach it): ``b"".join(pages)`` is the image."""
        with self._lock:
            return self._stored(bundle, count)[1].pages

    def incremental(self, bundle: Bundle, count: int) -> bool:
        """Version ``count`` was built from version ``count - 1`` (``VersionImage.incremental``)."""
        with self._lock:
            return self._stored(bundle, count)[1].incremental

    def _walk(self, bundle: Bundle, entry: _BundleImages, count: int) -> None:
        """Build the versions from the nearest built one below ``count`` up to ``count``."""
        base = max(k for k in entry.versions if k < count)
        # a DO at the version just built, kept open while its connection is as fresh as one
        # opened on the image would be: no schema to read again for the next version
        live: DurableObjectStorage | None = None
        try:
            for k in range(base + 1, count + 1):
                entry.versions[k], live = self._build(bundle, entry.versions[k - 1], k, live)
        finally:
            if live is not None:
                live.close()

    def _build(
        self, bundle: Bundle, previous: _Stored, count: int, live: DurableObjectStorage | None
    ) -> tuple[_Stored, DurableObjectStorage | None]:
        if previous.error is not None and live is None:
            unreadable = bundle.read_error(count)
            if unreadable is not None and unreadable == bundle.read_error(count - 1):
                # the same error before any SQL: a journal of thousands of entries without
                # their files built every version anew (quadratic)
                return _Stored(None, previous.error), None
        prefix = bundle.prefix(count)
        last = prefix.migrations[-1]
        if previous.pages is not None and previous.error is None:
            do = live if live is not None else DurableObjectStorage(image=b"".join(previous.pages))
            keep = False
            try:
                started = time.thread_time()
                run = migrate(do, prefix)
                elapsed = time.thread_time() - started
                self.builds += 1
                # incremental build equals a fresh build unless the high-water mark skipped
                # the new entry; then build from scratch, as a fresh DO would be
                if run.applied == [last.tag]:
                    pages = do.image_pages(previous.pages)
                    following = bundle.migrations[count] if count < len(bundle.migrations) else None
                    keep = not sets_connection_state(last) and (
                        following is None or not reads_connection_state(following)
                    )
                    return _Stored(pages, None, elapsed, True), (do if keep else None)
            except MigrationError:
                pass
            finally:
                if not keep:
                    do.close()
        elif live is not None:
            live.close()
        do = DurableObjectStorage()
        try:
            started = time.thread_time()
            run = migrate(do, prefix)
            self.builds += 1
            seconds = run.timings.get(last.tag, 0.0)
            pages = do.image_pages(previous.pages or ())
            return _Stored(pages, None, seconds or time.thread_time() - started), None
        except MigrationError as exc:
            return _Stored(None, exc), None
        finally:
            do.close()

    def timings(self, bundle: Bundle) -> dict[str, float]:
        """Seconds each migration took when the images were built (incremental runs)."""
        out: dict[str, float] = {}
        with self._lock:
            self._stored(bundle, len(bundle.migrations))
            entry = self._by_fingerprint[self._fingerprint(bundle)]
            for k, m in enumerate(bundle.migrations, start=1):
                stored = entry.versions[k]
                if stored.error is not None:
                    break
                out[m.tag] = stored.seconds
        return out

    def head(self, bundle: Bundle) -> VersionImage:
        return self.version(bundle, len(bundle.migrations))

    def fresh(self, bundle: Bundle, count: int | None = None) -> DurableObjectStorage:
        """A private in-memory DO at version ``count`` (default: head). Raises on failure.

        Its connection is recycled when it is closed (:mod:`pytest_dosqlite.recycling`): the
        next DO of the same version then costs an undo of the last one's changes, not a new
        connection that reads the whole schema again.
        """
        k = len(bundle.migrations) if count is None else count
        v = self.version(bundle, k)
        if v.error is not None:
            # the error is cached with its version: raised again, it would carry the frames of
            # every earlier raise (one more per test that asked for this version)
            raise v.error.with_traceback(None)
        assert v.image is not None
        return self.pool.lend((self._fingerprint(bundle), k), v.image)


_DEFAULT = ImageCache()


def default_cache() -> ImageCache:
    """The process-wide cache the fixtures and checks share."""
    return _DEFAULT


def user_table_count(image: bytes) -> int:
    """Tables of the user's schema in an image (no ledger, no ``sqlite_*``, no ``_cf_*``)."""
    do = DurableObjectStorage(image=image)
    try:
        n = do.sql.exec(
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name != '__drizzle_migrations'"
        ).one()["n"]
    finally:
        do.close()
    return int(n)


def newest_reached(images: Any, bundle: Bundle) -> int:
    """The newest version a fresh DO of ``bundle`` reaches: head, unless a migration fails on an
    empty DO (``images``: an :class:`ImageCache`, or anything with its ``version``)."""
    count = len(bundle.migrations)
    while count > 0 and images.version(bundle, count).error is not None:
        count -= 1
    return count


def head_summary(cache: ImageCache, bundle: Bundle) -> str:
    """What a fresh DO of ``bundle`` reaches, for the terminal summary: "N tables" at head, or
    where it stops and the tables of the last version it reaches (builds the images)."""

    def tables(image: bytes) -> str:
        n = user_table_count(image)
        return f"{n} table{'' if n == 1 else 's'}"

    head = cache.head(bundle)
    if head.image is not None:
        return tables(head.image)
    if (bundle.drizzle_error or bundle.missing) and head.error is not None:
        # drizzle throws before any SQL runs (`Missing migration: …`): the versions before the
        # entry build, but a fresh DO of this bundle applies none of them
        first = str(head.error).splitlines()[0]
        first = first if len(first) <= 100 else first[:99] + "…"
        if getattr(head.error, "build_failure", False):
            return f"the Worker does not build: {first}"
        return f"a fresh DO applies nothing: {first}"
    count = newest_reached(cache, bundle)
    stop = bundle.migrations[count].tag if count < len(bundle.migrations) else "?"
    reached = cache.version(bundle, count).image
    before = f", {tables(reached)} before it" if reached is not None else ""
    return f"a fresh DO stops at {stop}{before}"
