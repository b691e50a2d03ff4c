"""Uptime of stores over any interval ``[from, to)``: ``pipelines/store_interval.v1.json``.

Spec: issue 11, item 1 (``GET /stores/{store_id}/uptime``, the business hours of
``GET /stores/{store_id}/timeline``).

The interval pipeline is **derived from the report pipeline** ``store_uptime.v1.json``, so it
applies the report's rules 1-6 by the very same stages (``derive_interval_pipeline``):

* a first ``$match`` restricts the poll scan to ``[$$store_from, $$store_to)`` (an indexed
  range on ``store_id_1_timestamp_utc_1_status_1``; the report scans every poll);
* every ``as_of − 7 d`` of v1 (the start of its week window) becomes ``$$from``; ``as_of``
  stays the end of the interval (``to``): polls after ``to`` are ignored, as in a report as of
  ``to``;
* v1's last three stages (per-window sums, rounding, sort) are replaced by one ``$project``
  giving the interval's business intervals ``open`` and inactive business segments ``down``
  (epoch ms, half ms possible), the exact sums in ms and the report's rounded units.

So for ``[T − 7 d, T)``, ``[T − 24 h, T)`` and ``[T − 1 h, T)`` the numbers equal the report's
week, day and hour columns as of T (tested). The JSON file is checked in (DBAs run it from
mongosh like v1: ``let`` = ``{as_of, from, timezones, store_from, store_to}``);
``tests/test_interval.py`` checks that it equals ``derive_interval_pipeline(v1)``.
Regenerate it with ``python -m uptime.report.interval``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bson import json_util

from uptime.platform import pipelines
from uptime.platform.constants import STATUS_COLLECTION
from uptime.platform.resources import pipelines_dir
from uptime.platform import limits
from uptime.report import pipeline

NAME = "store_interval"
VERSION = "v1"
TAG = f"{NAME}@{VERSION}"
#: Longest interval ``GET /stores/{id}/uptime`` accepts (the pipeline expands business hours
#: day by day and keeps the interval's poll instants per store in one array).
MAX_INTERVAL = timedelta(days=92)

_WEEK_MS = 604_800_000
_WEEK_START = {"$subtract": ["$$as_of", _WEEK_MS]}
_WEEK_START_MS = {"$subtract": [{"$toLong": "$$as_of"}, _WEEK_MS]}
_STORE_RANGE = {
    "$match": {
        "$expr": {
            "$and": [
                {"$gte": ["$store_id", {"$ifNull": ["$$store_from", ""]}]},
                {"$lt": ["$store_id", {"$ifNull": ["$$store_to", {"$literal": {}}]}]},
            ]
        }
    }
}


def _ms_to(unit_ms: int, field: str) -> dict[str, Any]:
    return {"$round": [{"$divide": [field, unit_ms]}, 2]}


_OUTPUT = [
    {
        "$project": {
            "_id": 0,
            "store_id": "$_id",
            "timezone": "$tz",
            "timezone_fallback": 1,
            "open": 1,
            "down": 1,
            # the same $sum over the same arrays as v1's week column: equal doubles
            "business_ms": {"$sum": {"$map": {"input": "$open", "as": "o",
                                              "in": {"$subtract": ["$$o.b", "$$o.a"]}}}},
            "downtime_ms": {"$sum": {"$map": {"input": "$down", "as": "o",
                                              "in": {"$subtract": ["$$o.b", "$$o.a"]}}}},
        }
    },
    {"$set": {"uptime_ms": {"$subtract": ["$business_ms", "$downtime_ms"]}}},
    {
        "$set": {
            "uptime_minutes": _ms_to(60_000, "$uptime_ms"),
            "downtime_minutes": _ms_to(60_000, "$downtime_ms"),
            "uptime_hours": _ms_to(3_600_000, "$uptime_ms"),
            "downtime_hours": _ms_to(3_600_000, "$downtime_ms"),
        }
    },
    {"$sort": {"store_id": 1}},
]


def _replace(node: Any) -> Any:
    """Return ``node`` with v1's week start (as_of − 7 d, Date or epoch ms) put as ``$$from``."""
    if node == _WEEK_START:
        return "$$from"
    if node == _WEEK_START_MS:
        return {"$toLong": "$$from"}
    if isinstance(node, dict):
        return {k: _replace(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace(v) for v in node]
    return node


def _mentions(node: Any, value: Any) -> bool:
    if node == value:
        return True
    if isinstance(node, dict):
        return any(_mentions(v, value) for v in node.values())
    if isinstance(node, list):
        return any(_mentions(v, value) for v in node)
    return False


def derive_interval_pipeline(v1: Sequence[dict]) -> list[dict]:
    """Return the interval pipeline made from the report pipeline's stages ``v1``.

    Raises:
        ValueError: ``v1`` no longer has the shape this derivation relies on (a week start
            written differently, or no ``$project`` computing ``business_ms``) — update the
            derivation together with the report pipeline.
    """
    stages = [_replace(copy.deepcopy(s)) for s in v1]
    if _mentions(stages, _WEEK_MS):
        raise ValueError("store_uptime v1 mentions the week (604800000 ms) in an unknown form")
    cut = next((i for i, s in enumerate(stages)
                if "$project" in s and "business_ms" in s["$project"]), None)
    if cut is None:
        raise ValueError("store_uptime v1 has no $project computing business_ms")
    return [copy.deepcopy(_STORE_RANGE), *stages[:cut], *copy.deepcopy(_OUTPUT)]


def interval_path():
    """Path of ``pipelines/store_interval.v1.json``."""
    return pipelines_dir() / f"{NAME}.{VERSION}.json"


def load_interval_pipeline() -> list[dict]:
    """The checked-in interval pipeline (Extended JSON)."""
    return pipelines.load(f"{NAME}.{VERSION}")


def render(stages: Sequence[dict]) -> str:
    """The file text of a pipeline: JSON, 2-space indent, trailing newline."""
    return json.dumps(json.loads(json_util.dumps(stages)), indent=2) + "\n"


def next_store_id(store_id: str) -> str:
    """The smallest string greater than ``store_id`` (``store_to`` for one store)."""
    return store_id + "\x00"


async def interval_rows(
    db: Any,
    *,
    start: datetime,
    end: datetime,
    store_range: tuple[str | None, str | None],
    timezones: Sequence[str] | None = None,
) -> list[dict]:
    """Run the interval pipeline for ``[start, end)`` (UTC) over ``store_range``.

    Returns one document per store that has a valid poll at or before ``end``, sorted by id:
    ``{store_id, timezone, timezone_fallback, open: [{a, b}], down: [{a, b}] (epoch ms, clipped
    to [start, end)), business_ms, downtime_ms, uptime_ms (ms, exact), uptime_minutes,
    downtime_minutes, uptime_hours, downtime_hours (rounded to 2 decimals as the report)}``.

    Raises:
        ValueError: ``start >= end``.
        pymongo.errors.PyMongoError: the server failed the aggregation.
    """
    start, end = pipeline.to_utc(start), pipeline.to_utc(end)
    if start >= end:
        raise ValueError(f"the interval is empty: from {start.isoformat()} >= to {end.isoformat()}")
    if timezones is None:
        timezones = await pipeline.known_timezones(db)
    let = pipeline.report_let(end, timezones, store_range)
    let["from"] = start
    cursor = await db[STATUS_COLLECTION].aggregate(
        load_interval_pipeline(), let=let, comment=TAG, allowDiskUse=True,
        **limits.agg_time(),  # issue 15: the server stops with the request's time limit
    )
    async with cursor:
        return await cursor.to_list()


if __name__ == "__main__":  # pragma: no cover - regenerates the checked-in file
    interval_path().write_text(render(derive_interval_pipeline(pipeline.load_pipeline("v1"))))
    print(f"wrote {interval_path()}")
