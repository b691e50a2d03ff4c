"""The pipeline registry (``uptime.platform.pipelines``): every pipeline is a file in
``pipelines/`` with its sidecar, read through one ``load(name)`` that checks its shape."""

from __future__ import annotations

import pytest

from uptime.platform import pipelines
from uptime.platform.resources import pipelines_dir


def test_every_pipeline_has_its_sidecar() -> None:
    """Rule (common brief): each ``pipelines/<name>.json`` has ``pipelines/<name>.md``."""
    names = pipelines.names()
    assert "store_uptime.v1" in names and "store_runs.v1" in names
    missing = [n for n in names if not (pipelines_dir() / f"{n}.md").is_file()]
    assert missing == []


@pytest.mark.parametrize("name", pipelines.names())
def test_every_pipeline_loads_as_stages(name: str) -> None:
    """Rule: each installed pipeline is a non-empty array of single-key stage documents."""
    stages = pipelines.load(name)
    assert stages and all(isinstance(s, dict) and len(s) == 1 for s in stages)


def test_load_gives_a_fresh_copy() -> None:
    """Rule: the cache is never changed through a returned list (callers may edit theirs)."""
    first = pipelines.load("store_runs.v1")
    first[0]["$match"] = {"changed": True}
    first.append({"$limit": 1})
    again = pipelines.load("store_runs.v1")
    assert again[0]["$match"] != {"changed": True} and again[-1] != {"$limit": 1}


@pytest.mark.parametrize("name", ["../store_uptime.v1", "store_uptime", "Store.v1", "x.v1.json"])
def test_bad_names_are_refused(name: str) -> None:
    """Rule: a name is ``<snake_case>.v<digits>``; anything else (paths included) is a ValueError."""
    with pytest.raises(ValueError, match="pipeline name"):
        pipelines.load(name)


def test_unknown_pipeline_is_file_not_found() -> None:
    """Rule: a well-formed name with no file raises FileNotFoundError."""
    with pytest.raises(FileNotFoundError):
        pipelines.load("no_such_pipeline.v1")
