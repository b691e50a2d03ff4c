"""Business hours cached per UTC day for the report pipeline v3 (issue 19, item 2).

Report v2 expands every (time zone, weekly schedule) into business intervals on each report
(``store_uptime.v2`` stages 11-14: about a quarter of its time at scale 1). Those intervals do
not depend on the report's instant, only on the day: a **build** for UTC day ``D`` holds, per
store with a ``store_schedules`` document, the merged business intervals of every local date
from one day before ``D - 7 d`` to ``D + 1 d`` (pipeline ``pipelines/schedule_windows.v1.json``,
sidecar beside it), which covers the week ``[T - 7 d, T)`` of every ``T`` in ``[D, D + 1 d)``.
Report v3 (``pipelines/store_uptime.v3.json``) reads them and clips them to its week, and gives
v2's rows byte for byte (clipping a merged union = merging the clipped pieces).

Collections::

    schedule_windows        {_id: "<build>|<store_id>", b: build, s: store_id,
                             tz: zone in use, f: timezone_fallback (bool),
                             open: [{a, b}, ...]}     # epoch ms (UTC), sorted, disjoint
    schedule_window_builds  {_id: build, day: Date (UTC midnight), schedules_version: int,
                             timezones: [zone names the server knew], state: "building" |
                             "ready", started_at, built_at, retired_at: Date | null,
                             bounds: [{first: store_id, stores: n}, ...]}  # store_bounds
                            and {_id: "@schedules", n: int} (``uptime.ingest.schedules``)

**Never a wait, never a wrong row** (README rule on derived state): a report uses a build only
when it is ready, for the report's UTC day, built on the current ``store_schedules`` version
(bumped after every schedules write: an import of hours or zones, a refresh, a rebuild) and
with the zone names the report screens (:func:`usable_build`). Otherwise the report runs v2 at
once and a build for its day starts in the background (:func:`start_build`, one per day and
process); the next report uses it. So a change of a store's hours shows in the very next
report (v2, then v3 once rebuilt), and a report never waits for a build.

Retention: a new build retires (``retired_at``) the older builds of its day, those on an older
schedules version and all but the :data:`KEEP` newest; a retired build is deleted
:data:`GRACE_S` after it was retired (longer than any report attempt may run), so a report that
chose a build before it was retired still reads all of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from uptime.ingest.schedules import schedules_version
from uptime.platform import pipelines
from uptime.platform.constants import (
    RUNS_COLLECTION,
    SCHEDULES_COLLECTION,
    SCHEDULES_VERSION_ID,
    WINDOW_BUILDS_COLLECTION,
    WINDOWS_COLLECTION,
)
from uptime.platform.retention import REPORT_WINDOW

log = logging.getLogger(__name__)

PIPELINE = "schedule_windows.v1"
TAG = "schedule_windows@v1"
#: the stores' split points stored on a build (:func:`store_bounds`)
BOUNDS_PIPELINE = "store_bounds.v1"
BOUNDS_TAG = "store_bounds@v1"
#: builds kept usable (newest first) besides those retired
KEEP = 4
#: seconds a retired build stays readable: longer than a report attempt's default limit
#: (``UPTIME_REPORT_TIMEOUT_S``, 900 s)
GRACE_S = 3600.0
#: a build still "building" after this many seconds has failed (its process died): deleted
STALE_BUILD_S = GRACE_S

#: builds running in this process: (database name, day) -> task
_RUNNING: dict[tuple[int, str, datetime], asyncio.Task[str | None]] = {}


def window_day(as_of: datetime) -> datetime:
    """The UTC day (aware midnight) whose build serves a report at ``as_of`` (naive = UTC)."""
    moment = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def build_span(day: datetime) -> tuple[datetime, datetime]:
    """``(from, to)``, UTC: the instants a build for ``day`` covers — from the earliest week
    start of the day's reports (``day - 7 d``) to the end of the day (``day + 1 d``); the
    pipeline expands the local dates from one before ``from``'s to ``to``'s."""
    return day - REPORT_WINDOW, day + timedelta(days=1)


async def usable_build(
    db: Any, as_of: datetime, timezones: Sequence[str] | None = None, *, retired_ok: bool = False
) -> dict[str, Any] | None:
    """The newest ready build for ``as_of``'s UTC day on the current schedules version (and,
    given ``timezones``, screened with the same zone names), else ``None``. ``retired_ok``
    accepts a retired build not yet deleted (a report that chose it moments ago).

    Raises:
        pymongo.errors.PyMongoError: a database error.
    """
    query: dict[str, Any] = {"day": window_day(as_of), "state": "ready"}
    if not retired_ok:
        query["retired_at"] = None
    version, build = await asyncio.gather(
        schedules_version(db),
        db[WINDOW_BUILDS_COLLECTION].find_one(query, sort=[("built_at", -1)]),
    )
    if build is None or build.get("schedules_version") != version:
        return None
    if timezones is not None and list(build.get("timezones") or []) != list(timezones):
        return None
    return build


async def build_windows(
    db: Any, as_of: datetime, zones: Callable[[Any], Awaitable[Sequence[str]]]
) -> str:
    """Build the cache for ``as_of``'s UTC day now (one ``schedule_windows.v1`` run on
    ``store_schedules``, ``$merge`` into ``schedule_windows``), mark it ready, retire and delete
    older builds (module doc); return the build id. ``zones(db)`` gives the zone names the
    server knows (``uptime.report.pipeline.known_timezones``).

    Raises:
        pymongo.errors.PyMongoError: a database error (the build stays "building", unused,
            and is deleted later).
    """
    day = window_day(as_of)
    version = await schedules_version(db)  # read first: a write after it makes this stale
    timezones = list(await zones(db))
    build_id = f"{day:%Y%m%d}-{ObjectId()}"
    builds = db[WINDOW_BUILDS_COLLECTION]
    await builds.insert_one({
        "_id": build_id, "day": day, "schedules_version": version, "timezones": timezones,
        "state": "building", "started_at": datetime.now(UTC), "built_at": None,
        "retired_at": None,
    })
    start, end = build_span(day)
    cursor = await db[SCHEDULES_COLLECTION].aggregate(
        pipelines.load(PIPELINE),
        let={"from": start, "to": end, "timezones": timezones, "build": build_id},
        comment=TAG, allowDiskUse=True,
    )
    await cursor.to_list()
    bounds = await store_bounds(db)
    now = datetime.now(UTC)
    await builds.update_one({"_id": build_id}, {"$set": {
        "state": "ready", "built_at": now, "bounds": bounds}})
    await _retire_and_purge(db, build_id, day, version, now)
    return build_id


async def _retire_and_purge(
    db: Any, build_id: str, day: datetime, version: int, now: datetime
) -> None:
    """Retire the builds the new one supersedes; delete those retired more than GRACE_S ago
    and those stuck in "building" for STALE_BUILD_S."""
    builds = db[WINDOW_BUILDS_COLLECTION]
    live = [b async for b in builds.find(
        {"_id": {"$ne": SCHEDULES_VERSION_ID}, "state": "ready", "retired_at": None},
        {"day": 1, "schedules_version": 1}, sort=[("built_at", -1)])]
    kept = 0
    retire = []
    for b in live:
        if b["_id"] == build_id:
            kept += 1
        elif b["day"] == day or b.get("schedules_version") != version or kept >= KEEP:
            retire.append(b["_id"])
        else:
            kept += 1
    if retire:
        await builds.update_many({"_id": {"$in": retire}}, {"$set": {"retired_at": now}})
    old = now - timedelta(seconds=GRACE_S)
    gone = [b["_id"] async for b in builds.find({"$or": [
        {"retired_at": {"$lt": old}},
        {"state": "building", "started_at": {"$lt": now - timedelta(seconds=STALE_BUILD_S)}},
    ]}, {"_id": 1})]
    for b in gone:
        await db[WINDOWS_COLLECTION].delete_many({"_id": {"$gte": f"{b}|", "$lt": f"{b}}}"}})
        await builds.delete_one({"_id": b})


async def store_bounds(db: Any) -> list[dict[str, Any]]:
    """The stores of ``status_runs`` in 64 consecutive store-id ranges of about equal size
    (pipeline ``store_bounds.v1``: its ``$bucketAuto``, after a DISTINCT_SCAN of
    ``store_id_1_first_poll_1``, one index key per store, no document; 0.05 s at scale 1):
    ``[{first: store_id, stores: n}, ...]`` in store-id order, each range from its ``first`` up
    to the next one's. Stored on a build as ``bounds``; a report splits its stores at some of them
    (``uptime.report.pipeline.store_ranges``). Fewer entries when there are fewer stores; none
    without runs.

    Raises:
        pymongo.errors.PyMongoError: a database error.
    """
    cursor = await db[RUNS_COLLECTION].aggregate(pipelines.load(BOUNDS_PIPELINE),
                                                 comment=BOUNDS_TAG)
    return [{"first": b["first"], "stores": b["stores"]} async for b in cursor]


def start_build(
    db: Any, as_of: datetime, zones: Callable[[Any], Awaitable[Sequence[str]]]
) -> asyncio.Task[str | None]:
    """Start :func:`build_windows` for ``as_of``'s day in the background unless one for that
    database and day already runs in this process; return its task. Never raises: a failed
    build is logged (reports go on with v2)."""
    key = (id(db.client), db.name, window_day(as_of))
    running = _RUNNING.get(key)
    if running is not None and not running.done():
        return running

    async def run() -> str | None:
        try:
            return await build_windows(db, as_of, zones)
        except Exception as exc:  # a cache: the report never depends on it
            log.warning("business-hours cache build for %s failed: %s", key[2].date(), exc)
            return None
        finally:
            _RUNNING.pop(key, None)

    task = asyncio.get_running_loop().create_task(run(), name=f"schedule-windows-{key[2]:%Y%m%d}")
    _RUNNING[key] = task
    return task
