"""Per-store schedules for the report pipeline v2 (issue 8, item 4): collection ``store_schedules``.

One document per store that has ``store_hours`` or ``store_timezones`` rows, built by the
versioned pipeline ``pipelines/store_schedules.v1.json`` (sidecar ``store_schedules.v1.md``)::

    {_id: store_id (str),
     hours: [{d, sh, sm, ss, eh, em, es, ed}, ...],  # valid rows parsed as in store_uptime@v1
                                                      # (local clock parts; ed = closes next date),
                                                      # distinct, sorted; [] = open 24x7
     zones: [timezone_str, ...],                      # distinct stored values, sorted ("" for null)
     built_at: Date}                                  # when the pipeline wrote it (UTC)

The report screens ``zones`` against the server's known zones at report time (rule 5), so a
schedule never depends on which zones MongoDB knew when it was built. Equal schedules compare
equal, which lets the report expand each distinct (zone, schedule) once.

Kept current by ``uptime-monitor import`` (the stores an hours or timezones file mentions) and rebuilt
in full by ``rebuild_schedules`` (also done by the report when the collection is empty but
hours or timezones exist). Rows written straight into ``store_hours``/``store_timezones`` by
another system are picked up by ``refresh_schedules(db, stores)`` or a rebuild.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


from uptime.platform import pipelines
from uptime.platform.constants import (
    HOURS_COLLECTION,
    SCHEDULES_COLLECTION,
    SCHEDULES_VERSION_ID,
    TIMEZONES_COLLECTION,
    WINDOW_BUILDS_COLLECTION,
)

SCHEDULES = SCHEDULES_COLLECTION
PIPELINE_FILE = "store_schedules.v1.json"
TAG = "store_schedules@v1"
#: store ids per pipeline run ($documents of the ids; keeps the command far below 16 MB).
CHUNK = 20_000


def load_schedules_pipeline() -> list[dict]:
    """The stages of ``pipelines/store_schedules.v1.json`` (Extended JSON)."""
    return pipelines.load(PIPELINE_FILE.removesuffix(".json"))


async def refresh_schedules(db: Any, stores: Iterable[str]) -> int:
    """Recompute the schedule documents of ``stores`` (store ids) from their current hours and
    timezone rows; return how many were written. A store without rows gets an empty schedule
    (``hours: []``, ``zones: []``: 24x7, America/Chicago — the same as no document).

    Raises:
        pymongo.errors.PyMongoError: the server failed the pipeline.
    """
    ids = sorted({s for s in stores if isinstance(s, str)})
    for start in range(0, len(ids), CHUNK):
        await _run(db, ids[start : start + CHUNK])
    return len(ids)


async def _run(db: Any, stores: list[str] | None) -> None:
    """One run of the pipeline: ``stores`` = the ids to recompute, ``None`` = every store with
    rows. Cost: one scan of store_hours and store_timezones (a sort-merge through ``$group``;
    a per-store ``$lookup`` costs ~1 ms a store, 15 s for 14k)."""
    cursor = await db.aggregate(load_schedules_pipeline(), let={"stores": stores}, comment=TAG)
    await cursor.to_list()
    await bump_version(db)


async def bump_version(db: Any) -> int:
    """Count one more change of ``store_schedules`` (after it was written): the business
    hours cached per day (``uptime.report.windows``) built on an older count are no longer
    used. Returns the new count."""
    doc = await db[WINDOW_BUILDS_COLLECTION].find_one_and_update(
        {"_id": SCHEDULES_VERSION_ID}, {"$inc": {"n": 1}}, upsert=True, return_document=True)
    return int(doc["n"])


async def schedules_version(db: Any) -> int:
    """How many times ``store_schedules`` was written (:func:`bump_version`; 0 = never)."""
    doc = await db[WINDOW_BUILDS_COLLECTION].find_one({"_id": SCHEDULES_VERSION_ID})
    return int(doc["n"]) if doc else 0


async def rebuild_schedules(db: Any) -> int:
    """Rebuild ``store_schedules`` for every store with hours or timezone rows and delete the
    documents of stores that have neither any more; return the number of stores written."""
    ids: set[str] = set()
    for name in (HOURS_COLLECTION, TIMEZONES_COLLECTION):
        ids.update(i for i in await db[name].distinct("store_id") if isinstance(i, str))
    await _run(db, None)
    written = len(ids)
    stale = [d["_id"] async for d in db[SCHEDULES].find({}, {"_id": 1}) if d["_id"] not in ids]
    for start in range(0, len(stale), CHUNK):
        await db[SCHEDULES].delete_many({"_id": {"$in": stale[start : start + CHUNK]}})
    if stale:
        await bump_version(db)
    return written


async def ensure_schedules(db: Any) -> bool:
    """Build ``store_schedules`` if it is empty while hours or timezone rows exist (first
    report v2 after an upgrade); return True if it rebuilt."""
    if await db[SCHEDULES].find_one({}, {"_id": 1}) is not None:
        return False
    for name in (HOURS_COLLECTION, TIMEZONES_COLLECTION):
        if await db[name].find_one({}, {"_id": 1}) is not None:
            await rebuild_schedules(db)
            return True
    return False
