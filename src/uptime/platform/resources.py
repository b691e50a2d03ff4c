"""Locate the ``pipelines/`` and ``migrations/`` folders.

They live at the repository's top level (so DBAs find them) and are copied into the
installed package by the wheel build (``uptime/pipelines``, ``uptime/migrations``).
An editable install has no copy, so the repository folder is used instead.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_REPO_DIR = _PACKAGE_DIR.parent.parent


def _find(name: str) -> Path:
    for candidate in (_PACKAGE_DIR / name, _REPO_DIR / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"cannot find the {name}/ folder (looked in {_PACKAGE_DIR} and {_REPO_DIR}); "
        "reinstall the uptime-monitor package"
    )


def pipelines_dir() -> Path:
    """Return the folder holding the versioned aggregation pipelines (``*.vN.json``)."""
    return _find("pipelines")


def migrations_dir() -> Path:
    """Return the folder holding the migration files (``YYYYMMDDHHMMSS-slug.json``)."""
    return _find("migrations")
