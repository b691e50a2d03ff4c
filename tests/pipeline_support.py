"""Helpers for the pipeline tests: load given rows, run the report, read raw sums."""

from __future__ import annotations

from datetime import datetime, timezone

from uptime.platform.migrations import ensure_current
from uptime.report.pipeline import iter_report_rows, known_timezones, load_pipeline, report_let


def utc(text: str) -> datetime:
    """'2024-03-11T12:00:00Z' -> tz-aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def poll(store_id: str, when: str | datetime, status: str = "active") -> dict:
    ts = utc(when) if isinstance(when, str) else when
    return {"store_id": store_id, "timestamp_utc": ts, "status": status}


def hours(store_id: str, day: int, start: str, end: str) -> dict:
    return {"store_id": store_id, "dayOfWeek": day, "start_time_local": start, "end_time_local": end}


def zone(store_id: str, name) -> dict:
    return {"store_id": store_id, "timezone_str": name}


async def ensure_indexes(db) -> None:
    """The indexes the pipeline relies on: the project's own migrations, applied."""
    await ensure_current(db, apply=True)


async def load(db, polls=(), hours_rows=(), zones=()) -> None:
    """Insert the given rows (copies, so callers' dicts stay without _id) and the indexes."""
    await ensure_indexes(db)
    for name, docs in (("store_status", polls), ("store_hours", hours_rows), ("store_timezones", zones)):
        docs = [dict(d) for d in docs]
        if docs:
            await db[name].insert_many(docs)


async def report(db, as_of: str | datetime, **kwargs) -> dict[str, dict]:
    """Run ``iter_report_rows`` and return store_id -> row."""
    when = utc(as_of) if isinstance(as_of, str) else as_of
    return {r["store_id"]: r async for r in iter_report_rows(db, as_of=when, **kwargs)}


async def report_list(db, as_of: str | datetime, **kwargs) -> list[dict]:
    when = utc(as_of) if isinstance(as_of, str) else as_of
    return [r async for r in iter_report_rows(db, as_of=when, **kwargs)]


async def raw_sums(db, as_of: datetime) -> dict[str, dict]:
    """Run the pipeline without its rounding stage: store_id -> raw ms sums document."""
    stages = [s for s in load_pipeline() if "uptime_last_hour" not in s.get("$project", {})]
    let = report_let(as_of, await known_timezones(db))
    cursor = await db["store_status"].aggregate(stages, let=let, allowDiskUse=True)
    return {d["store_id"]: d async for d in cursor}
