"""Schema snapshots: a readable ``.sql`` file per bundle, managed by syrupy.

The file holds the normalized schema every DO ends up with, and pins the tag and sha256 of each
migration, so a pull request shows schema changes as a diff and editing a migration that is
already recorded fails with an explanation. Files live next to the bundle, in
``__snapshots__/dosqlite/<bundle>.sql`` under the bundle's parent folder: outside drizzle's
``out`` folder, which drizzle-kit reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bundle import Bundle

if TYPE_CHECKING:
    from syrupy.location import PyTestLocation

__all__ = [
    "PinnedMigration",
    "bundle_location",
    "read_pins",
    "renamed_from",
    "render_snapshot",
    "snapshot_extension",
    "snapshot_path",
]

HEADER = "-- pytest-dosqlite schema snapshot"
_PIN = re.compile(r"^--\s+pin\s+(\S+)\s+([0-9a-f]{64})\s*$")


@dataclass(frozen=True)
class PinnedMigration:
    tag: str
    sha256: str


def snapshot_dir(bundle_root: Path) -> Path:
    return bundle_root.parent / "__snapshots__" / "dosqlite"


def snapshot_name(bundle_root: Path) -> str:
    return bundle_root.name or "bundle"


def snapshot_path(bundle_root: Path) -> Path:
    """Where the snapshot of the bundle at ``bundle_root`` is stored."""
    return snapshot_dir(bundle_root) / f"{snapshot_name(bundle_root)}.sql"


def render_snapshot(bundle: Bundle, schema_sql: str, render_version: str | int) -> str:
    """The snapshot text: header, pinned migrations, then the normalized schema."""
    lines = [
        f"{HEADER} of {bundle.root.name}/ (render {render_version})",
        "-- The schema every Durable Object has after migrate(). Review changes in pull requests;",
        "-- regenerate with `pytest --dosqlite --snapshot-update`.",
        "-- Pinned migrations (tag, sha256 of the .sql file): editing one of them after it was",
        "-- recorded fails the check, because DOs that already applied it never see the edit.",
    ]
    lines += [f"-- pin {m.tag} {m.pin_sha256}" for m in bundle.migrations]
    lines.append("")
    lines.append(schema_sql.rstrip("\n"))
    return "\n".join(lines) + "\n"


def read_pins(path: Path) -> list[PinnedMigration] | None:
    """The migrations pinned in an existing snapshot file (None when there is none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    pins = []
    for line in text.splitlines():
        m = _PIN.match(line)
        if m:
            pins.append(PinnedMigration(m.group(1), m.group(2)))
    return pins


def snapshot_extension() -> type[Any]:
    """The syrupy extension class (built lazily: syrupy is imported only when used)."""
    global _EXTENSION
    if _EXTENSION is not None:
        return _EXTENSION
    from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

    class DosqliteSchemaExtension(SingleFileSnapshotExtension):
        file_extension = "sql"
        _write_mode = WriteMode.TEXT

        @classmethod
        def dirname(cls, *, test_location: PyTestLocation) -> str:
            bundle = getattr(test_location.item, "dosqlite_bundle", None)
            if bundle is None:  # an item that is not ours: syrupy's default layout
                return str(SingleFileSnapshotExtension.dirname(test_location=test_location))
            return str(snapshot_dir(bundle.root))

        @classmethod
        def discovery_dirname(cls, *, test_location: PyTestLocation) -> str:
            return cls.dirname(test_location=test_location)

        @classmethod
        def get_snapshot_name(cls, *, test_location: PyTestLocation, index: Any = 0) -> str:
            bundle = getattr(test_location.item, "dosqlite_bundle", None)
            if bundle is None:
                return str(
                    SingleFileSnapshotExtension.get_snapshot_name(
                        test_location=test_location, index=index
                    )
                )
            return snapshot_name(bundle.root)

        def serialize(self, data: Any, **kwargs: Any) -> Any:
            return str(data)

        def discover_snapshots(self, *, test_location: PyTestLocation, **kwargs: Any) -> Any:
            # what syrupy may report unused and delete on --snapshot-update: only the snapshot
            # of a bundle folder that is gone (renamed or deleted). A bundle that exists but
            # was deselected (-k, --deselect), or whose check failed before comparing, keeps
            # its snapshot and the pins that guard its recorded migrations; a file that is no
            # schema snapshot (a README) is the user's.
            from syrupy.data import SnapshotCollections

            found = super().discover_snapshots(test_location=test_location, **kwargs)
            if getattr(test_location.item, "dosqlite_bundle", None) is None:
                return found
            stale = SnapshotCollections()
            for collection in found:
                path = Path(collection.location)
                if path.suffix == ".sql" and not (path.parent.parent.parent / path.stem).is_dir():
                    stale.add(collection)
            return stale

    _EXTENSION = DosqliteSchemaExtension
    return _EXTENSION


_EXTENSION: type[Any] | None = None


def renamed_from(bundle: Bundle) -> tuple[Path, list[PinnedMigration]] | None:
    """A snapshot beside where this bundle's would be, recorded for a folder that no longer
    exists, whose pins start with this bundle's first migrations: the folder was renamed (the
    snapshot file is named after it). Its pins still protect the recorded migrations."""
    own = snapshot_path(bundle.root)
    folder = snapshot_dir(bundle.root)
    if not bundle.migrations:
        return None
    try:
        candidates = sorted(p for p in folder.glob("*.sql") if p != own)
    except OSError:
        return None
    current = [(m.tag, m.pin_sha256) for m in bundle.migrations]
    for path in candidates:
        if (bundle.root.parent / path.stem).exists():
            continue  # another bundle's snapshot
        pins = read_pins(path)
        if pins and [(p.tag, p.sha256) for p in pins[:1]] == current[:1]:
            return path, pins
    return None


_LOCATION: type[Any] | None = None


def bundle_location(item: Any) -> PyTestLocation:
    """syrupy's test location for a check item, which knows the snapshot is named after the
    bundle, not after the test: syrupy otherwise warns, on every snapshot it writes, that it
    "can not relate" the file to the test."""
    global _LOCATION
    if _LOCATION is None:
        from syrupy.location import PyTestLocation

        class BundleLocation(PyTestLocation):
            def _own(self) -> Path | None:
                bundle = getattr(self.item, "dosqlite_bundle", None)
                return None if bundle is None else snapshot_path(bundle.root)

            def matches_snapshot_name(self, snapshot_name: str) -> bool:
                own = self._own()
                if own is None:
                    return bool(super().matches_snapshot_name(snapshot_name))
                return snapshot_name == own.stem

            def matches_snapshot_location(self, snapshot_location: str) -> bool:
                own = self._own()
                if own is None:
                    return bool(super().matches_snapshot_location(snapshot_location))
                return Path(snapshot_location) == own

        _LOCATION = BundleLocation
    location: PyTestLocation = _LOCATION(item)
    return location
