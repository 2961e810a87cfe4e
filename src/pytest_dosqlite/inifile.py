"""The ``dosqlite_*`` settings of a project's pytest configuration, for the CLI.

Why: ``python -m pytest_dosqlite check`` and ``pytest --dosqlite`` must judge a bundle the same
way. The CLI does not run pytest, so it finds the configuration file as pytest does, with
pytest's own loaders where it has them (the first directory, from the project upwards, holding
``pytest.toml``, ``pytest.ini``, a ``pyproject.toml`` with ``[tool.pytest]`` or
``[tool.pytest.ini_options]``, a ``tox.ini`` with ``[pytest]`` or a ``setup.cfg`` with
``[tool:pytest]``) and reads the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["IniSettings", "find_ini"]


@dataclass
class IniSettings:
    """The ``dosqlite_*`` keys of one configuration file (``path`` None: none was found)."""

    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def text(self, key: str) -> str | None:
        """A single value (None when the key is absent or empty)."""
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        text = str(value).strip()
        return text or None

    def lines(self, key: str) -> list[str]:
        """A ``linelist`` value: one item per line (or per element of a TOML list)."""
        value = self.values.get(key)
        if value is None:
            return []
        items = value if isinstance(value, list) else str(value).splitlines()
        return [str(v).strip() for v in items if str(v).strip()]

    def names(self, key: str) -> list[str]:
        """An ``args`` value: names separated by spaces, commas or lines."""
        return " ".join(self.lines(key)).replace(",", " ").split()


def _read(candidate: Path) -> dict[str, Any] | None:
    """The pytest section of ``candidate``, or None when the file does not configure pytest."""
    name = candidate.name
    if name == "pyproject.toml":
        import tomllib

        data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        section = data.get("tool", {}).get("pytest", {}).get("ini_options")
        return dict(section) if isinstance(section, dict) else None
    import iniconfig

    parsed = iniconfig.IniConfig(str(candidate))
    wanted = {"pytest.ini": "pytest", ".pytest.ini": "pytest", "tox.ini": "pytest"}.get(
        name, "tool:pytest"
    )
    if wanted in parsed:
        return dict(parsed[wanted].items())
    # pytest.ini configures pytest even without a [pytest] section
    return {} if name in ("pytest.ini", ".pytest.ini") else None


def _pytest_loaders() -> dict[str, Any] | None:
    """pytest's own loaders of its configuration files by name, in its order of precedence
    (pytest 9: ``pytest.toml``, ``.pytest.toml``, ``pytest.ini``, ``.pytest.ini``,
    ``pyproject.toml`` with ``[tool.pytest]`` or ``[tool.pytest.ini_options]``, ``tox.ini``,
    ``setup.cfg``); None on a pytest without that table (then :func:`_read` is used)."""
    try:
        from _pytest.config.findpaths import CONFIG_LOADERS_BY_NAME
    except ImportError:  # pragma: no cover - older pytest
        return None
    return dict(CONFIG_LOADERS_BY_NAME)


def find_ini(start: Path) -> IniSettings:
    """The configuration pytest would read for a run started at ``start`` (a folder)."""
    folder = start.resolve()
    loaders = _pytest_loaders()
    if loaders is not None:
        for directory in (folder, *folder.parents):
            for name, loader in loaders.items():
                candidate = directory / name
                if not candidate.is_file():
                    continue
                try:
                    config = loader(candidate)
                except Exception as exc:  # pytest's UsageError: it stops there too
                    from .errors import DosqliteError

                    raise DosqliteError(f"{candidate}: cannot read it: {exc}") from None
                if config is None:
                    continue
                values = {
                    k: getattr(v, "value", v)
                    for k, v in config.items()
                    if k.startswith("dosqlite_")
                }
                return IniSettings(candidate, values)
        return IniSettings()
    for directory in (folder, *folder.parents):
        for name in ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"):
            candidate = directory / name
            if not candidate.is_file():
                continue
            try:
                section = _read(candidate)
            except Exception as exc:  # TOML or INI syntax, encoding: pytest stops there too
                from .errors import DosqliteError

                raise DosqliteError(f"{candidate}: cannot read it: {exc}") from None
            if section is None:
                continue
            values = {k: v for k, v in section.items() if k.startswith("dosqlite_")}
            return IniSettings(candidate, values)
    return IniSettings()
