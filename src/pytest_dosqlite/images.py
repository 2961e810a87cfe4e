"""Database images of a bundle at every version, built once and copied per test.

A fresh migrated DO should cost a memory copy, not a migration run: each bundle's images (the
empty DO with migrations ``0..k`` applied, for every ``k`` a check or fixture asks for) are built
once per session, incrementally (version ``k`` from version ``k-1``, so the cost is linear in the
bundle), and handed out as private in-memory copies via SQLite's deserialize. Images are keyed
by the bundle's fingerprint, so editing a migration file invalidates them.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field

from .bundle import Bundle
from .errors import MigrationError
from .migrator import migrate
from .storage import DurableObjectStorage

__all__ = ["ImageCache", "VersionImage", "default_cache"]


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


@dataclass
class _BundleImages:
    versions: dict[int, VersionImage] = field(default_factory=dict)


class ImageCache:
    """Per-process cache of version images; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_fingerprint: dict[str, _BundleImages] = {}
        self.builds = 0  # migrations runs performed (for tests and benchmarks)
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

    def _entry(self, bundle: Bundle) -> _BundleImages:
        key = self._fingerprint(bundle)
        entry = self._by_fingerprint.get(key)
        if entry is None:
            entry = self._by_fingerprint[key] = _BundleImages()
            empty = DurableObjectStorage()
            entry.versions[0] = VersionImage(0, empty.image())
            empty.close()
        return entry

    def version(self, bundle: Bundle, count: int) -> VersionImage:
        """Image after migrating a fresh DO with ``bundle.prefix(count)``."""
        if not 0 <= count <= len(bundle.migrations):
            raise ValueError(f"version {count} out of range 0..{len(bundle.migrations)}")
        with self._lock:
            entry = self._entry(bundle)
            cached = entry.versions.get(count)
            if cached is not None:
                return cached
            # walk up from the nearest built version below
            base = max(k for k in entry.versions if k < count)
            for k in range(base + 1, count + 1):
                entry.versions[k] = self._build(bundle, entry.versions[k - 1], k)
            return entry.versions[count]

    def _build(self, bundle: Bundle, previous: VersionImage, count: int) -> VersionImage:
        prefix = bundle.prefix(count)
        if previous.image is not None and previous.error is None:
            do = DurableObjectStorage(image=previous.image)
            try:
                started = time.thread_time()
                run = migrate(do, prefix)
                elapsed = time.thread_time() - started
                self.builds += 1
                # incremental build equals a fresh build unless the high-water mark skipped
                # the new entry; then build from scratch, as a fresh DO would be
                if run.applied == [prefix.migrations[-1].tag]:
                    return VersionImage(count, do.image(), None, elapsed, incremental=True)
            except MigrationError:
                pass
            finally:
                do.close()
        do = DurableObjectStorage()
        try:
            started = time.thread_time()
            run = migrate(do, prefix)
            self.builds += 1
            last = prefix.migrations[-1].tag if prefix.migrations else None
            seconds = run.timings.get(last, 0.0) if last else 0.0
            return VersionImage(count, do.image(), None, seconds or time.thread_time() - started)
        except MigrationError as exc:
            return VersionImage(count, None, exc)
        finally:
            do.close()

    def timings(self, bundle: Bundle) -> dict[str, float]:
        """Seconds each migration took when the images were built (incremental runs)."""
        out: dict[str, float] = {}
        for k, m in enumerate(bundle.migrations, start=1):
            v = self.version(bundle, k)
            if v.error is not None:
                break
            out[m.tag] = v.seconds
        return out

    def head(self, bundle: Bundle) -> VersionImage:
        return self.version(bundle, len(bundle.migrations))

    def fresh(self, bundle: Bundle, count: int | None = None) -> DurableObjectStorage:
        """A private in-memory DO at version ``count`` (default: head). Raises on failure."""
        v = self.version(bundle, len(bundle.migrations) if count is None else count)
        if v.error is not None:
            raise v.error
        assert v.image is not None
        return DurableObjectStorage(image=v.image)


_DEFAULT = ImageCache()


def default_cache() -> ImageCache:
    """The process-wide cache the fixtures and checks share."""
    return _DEFAULT
