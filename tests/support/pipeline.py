"""Helpers for the pipeline tests: load given rows, run the report, read raw sums.

``VERSION`` is the report pipeline version the helpers run (set per test by the
``pipeline_version`` fixture of the parametrized modules). For v2 and v3 the status timeline and
the schedules are rebuilt from the stored rows right before each run (``prepare_v2``): the
timeline by the contract's own Python model (tests/support/runs_model.py), so v2 is checked against
runs built independently of the timeline helper's pipeline; for v3 the business hours of the
report's day are cached too (``uptime.report.windows.build_windows``), and the helpers check
that v3 ran on them.
"""

from __future__ import annotations

from datetime import datetime, timezone

from uptime.platform.migrations import ensure_current
from support.runs_model import rebuild_runs_model
from uptime.report.pipeline import (
    SOURCES,
    iter_report_rows,
    known_timezones,
    load_pipeline,
    report_let,
)
from uptime.report import windows
from uptime.ingest.schedules import rebuild_schedules

VERSION = "v1"


async def prepare_v2(db, builder: str = "model") -> None:
    """Rebuild store_schedules and status_runs from the stored rows: the runs with the
    contract's Python model (``"model"``) or the timeline's pipeline (``"timeline"``)."""
    if builder == "model":
        await rebuild_runs_model(db)
    else:
        from uptime.timeline import rebuild_runs

        await rebuild_runs(db)
    await rebuild_schedules(db)


async def prepare_v3(db, as_of: datetime) -> str:
    """Cache the business hours of ``as_of``'s UTC day for v3 and return the build id; fails
    the test if v3 would not use it (so a v3 run never silently runs v2)."""
    build = await windows.build_windows(db, as_of, known_timezones)
    usable = await windows.usable_build(db, as_of, await known_timezones(db))
    assert usable is not None and usable["_id"] == build, "v3 would not use its cache"
    return build


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
    return {r["store_id"]: r for r in await report_list(db, as_of, **kwargs)}


async def report_list(db, as_of: str | datetime, **kwargs) -> list[dict]:
    when = utc(as_of) if isinstance(as_of, str) else as_of
    version = kwargs.pop("version", VERSION)
    if version in ("v2", "v3") and not kwargs.pop("prepared", False):
        await prepare_v2(db)
    if version == "v3":
        await prepare_v3(db, when)
        # issue 19: every v3 test runs through the store ranges, two at once (the build's
        # bounds split even a handful of stores), as the service does
        kwargs.setdefault("parallel", 2)
    rows = iter_report_rows(db, as_of=when, version=version, prepare=False, **kwargs)
    return [r async for r in rows]


async def raw_sums(db, as_of: datetime, version: str | None = None) -> dict[str, dict]:
    """Run the pipeline without its rounding stage: store_id -> raw ms sums document."""
    version = version or VERSION
    if version in ("v2", "v3"):
        await prepare_v2(db)
    stages = [s for s in load_pipeline(version) if "uptime_last_hour" not in s.get("$project", {})]
    let = report_let(as_of, await known_timezones(db))
    if version == "v3":
        let["build"] = await prepare_v3(db, as_of)
    cursor = await db[SOURCES[version]].aggregate(stages, let=let, allowDiskUse=True)
    return {d["store_id"]: d async for d in cursor}
