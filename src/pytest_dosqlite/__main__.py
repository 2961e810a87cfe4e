"""Allows ``python -m pytest_dosqlite``."""

from .cli import main

raise SystemExit(main())
