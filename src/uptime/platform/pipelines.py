"""The pipeline registry: every aggregation pipeline the code runs is a file
``pipelines/<name>.json`` (Extended JSON, a sidecar ``<name>.md`` beside it) read through
:func:`load` — never pipeline text in a Python module.

``load("store_uptime.v1")`` reads the file once per process (cached), checks its shape (a JSON
array of single-key stage documents) and returns a fresh copy of the stages, which the caller
may change.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

from bson import json_util

from uptime.platform.resources import pipelines_dir

_NAME = re.compile(r"^[a-z][a-z0-9_]*\.v[0-9]+$")


def path_of(name: str) -> Path:
    """``"store_uptime.v1"`` -> the path of ``pipelines/store_uptime.v1.json``.

    Raises:
        ValueError: ``name`` is not ``<snake_case>.v<digits>``.
    """
    if not _NAME.match(name):
        raise ValueError(f"pipeline name must look like 'store_uptime.v1', got {name!r}")
    return pipelines_dir() / f"{name}.json"


@functools.lru_cache(maxsize=None)
def _read(name: str) -> list[dict]:
    path = path_of(name)
    stages = json_util.loads(path.read_text(encoding="utf-8"))
    if not isinstance(stages, list) or not all(isinstance(s, dict) and len(s) == 1 for s in stages):
        raise ValueError(f"{path}: expected a JSON array of single-key stage documents")
    return stages


def load(name: str) -> list[dict]:
    """The stages of ``pipelines/<name>.json`` (e.g. ``"status_runs.v1"``), a fresh copy.

    Raises:
        ValueError: a bad name, or the file is not a JSON array of single-key stage documents.
        FileNotFoundError: no such pipeline is installed.
    """
    return copy.deepcopy(_read(name))


def names() -> list[str]:
    """Every installed pipeline's name (``pipelines/*.json``), sorted."""
    return sorted(p.stem for p in pipelines_dir().glob("*.json"))
