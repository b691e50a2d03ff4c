"""Helpers for the report-service tests: input rows, CSV expectations, and (only until
``uptime.pipeline`` exists) a stand-in pipeline module with the same interface."""

from __future__ import annotations

import csv
import io
import sys
import types
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

T0 = datetime(2024, 3, 12, 15, 0, tzinfo=timezone.utc)


def ensure_pipeline() -> None:
    """Install a stand-in ``uptime.pipeline`` if the real one has not landed yet."""
    try:
        import uptime.pipeline  # noqa: F401
        return
    except ImportError:
        pass
    mod = types.ModuleType("uptime.pipeline")
    mod.PIPELINE_NAME = "store_uptime"
    mod.DEFAULT_VERSION = "v1"
    mod.REPORT_COLUMNS = (
        "store_id", "uptime_last_hour", "uptime_last_day", "uptime_last_week",
        "downtime_last_hour", "downtime_last_day", "downtime_last_week",
    )

    def pipeline_tag(version: str = "v1") -> str:
        return f"store_uptime@{version}"

    async def resolve_as_of(db, as_of):
        if as_of is not None:
            return as_of
        doc = await db.store_status.find_one({}, sort=[("timestamp_utc", -1)])
        return None if doc is None else doc["timestamp_utc"]

    def _match(as_of, store_range=(None, None)):
        match: dict = {"timestamp_utc": {"$lte": as_of}, "status": {"$in": ["active", "inactive"]}}
        lo, hi = store_range
        rng = {}
        if lo is not None:
            rng["$gte"] = lo
        if hi is not None:
            rng["$lt"] = hi
        if rng:
            match["store_id"] = rng
        return match

    async def _ids(db, as_of):
        return sorted(await db.store_status.distinct("store_id", _match(as_of)))

    async def count_report_stores(db, as_of):
        return len(await _ids(db, as_of))

    async def split_store_ranges(db, as_of, parts):
        ids = await _ids(db, as_of)
        if not ids:
            return [(None, None)]
        step = max(1, -(-len(ids) // parts))
        bounds = ids[step::step]
        edges = [None, *bounds, None]
        return list(zip(edges[:-1], edges[1:]))

    async def iter_report_rows(db, *, as_of, version="v1", store_range=(None, None)):
        cursor = await db.store_status.aggregate(
            [
                {"$match": _match(as_of, store_range)},
                {"$group": {"_id": "$store_id",
                            "up": {"$sum": {"$cond": [{"$eq": ["$status", "active"]}, 1, 0]}},
                            "n": {"$sum": 1}}},
                {"$sort": {"_id": 1}},
            ]
        )
        async for d in cursor:
            f = d["up"] / d["n"]
            yield {
                "store_id": d["_id"],
                "uptime_last_hour": round(60 * f, 2),
                "uptime_last_day": round(24 * f, 2),
                "uptime_last_week": round(168 * f, 2),
                "downtime_last_hour": round(60 * (1 - f), 2),
                "downtime_last_day": round(24 * (1 - f), 2),
                "downtime_last_week": round(168 * (1 - f), 2),
                "timezone_fallback": False,
            }

    for fn in (pipeline_tag, resolve_as_of, count_report_stores, split_store_ranges,
               iter_report_rows):
        setattr(mod, fn.__name__, fn)
    sys.modules["uptime.pipeline"] = mod
    import uptime

    uptime.pipeline = mod  # type: ignore[attr-defined]


ensure_pipeline()


async def insert_stores(db, n_stores: int, *, polls_per_store: int = 3, as_of: datetime = T0,
                        prefix: str = "s") -> None:
    """Insert ``n_stores`` 24x7 stores in New York, polled hourly before ``as_of``,
    alternating active/inactive by store so rows differ."""
    polls = []
    for i in range(n_stores):
        sid = f"{prefix}{i:06d}"
        for k in range(polls_per_store):
            polls.append({
                "store_id": sid,
                "timestamp_utc": as_of - timedelta(hours=k),
                "status": "inactive" if (i + k) % 3 == 0 else "active",
            })
    for start in range(0, len(polls), 50_000):
        await db.store_status.insert_many(polls[start:start + 50_000], ordered=False)
    await db.store_timezones.insert_many(
        [{"store_id": f"{prefix}{i:06d}", "timezone_str": "America/New_York"}
         for i in range(n_stores)]
    )


async def expected_csv(db, as_of: datetime) -> str:
    """The CSV built straight from the pipeline's rows (header, 2-decimal numbers)."""
    from uptime import pipeline

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(pipeline.REPORT_COLUMNS)
    rows: AsyncIterator[dict] = pipeline.iter_report_rows(db, as_of=as_of)
    async for row in rows:
        writer.writerow([row["store_id"], *(f"{row[c]:.2f}" for c in pipeline.REPORT_COLUMNS[1:])])
    return out.getvalue()
