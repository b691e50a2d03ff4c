"""Compaction of raw polls older than the retention horizon (issue 18 item 4).

:func:`compact_polls` — ``uptime-monitor polls compact`` and the service's schedule
(``web/app.py``, every ``UPTIME_POLL_COMPACT_INTERVAL_S``):

1. the status timeline must hold every poll it removes: when it is not current
   (:func:`uptime.timeline.control.timeline_freshness`: no follower, lagging, standalone) it is
   rebuilt first (:func:`uptime.timeline.runs.rebuild_runs`, exact, keeps what an earlier
   compaction froze);
2. the new horizon ``now - UPTIME_POLL_RETENTION_DAYS`` is stored in ``polls_retention``
   *before* anything is deleted: from then on ingestion refuses polls before it, the follower
   ignores the deletes before it, and a rebuild keeps the runs before it;
3. per store, the polls before its boundary (:func:`uptime.timeline.runs.retention_boundaries`:
   the first poll of the run in force at the horizon) are deleted, ``batch_stores`` stores per
   unordered bulk of ``DeleteMany`` (each an index range of ``store_id_1_timestamp_utc_1_status_1``),
   yielding to the event loop between bulks: ingestion goes on meanwhile (a poll insert is
   never blocked by more than one bulk's document locks).

Polls whose ``store_id`` is not a string are never removed (no run holds them; the report
ignores and counts them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from pymongo import DeleteMany

from uptime.platform import constants
from uptime.platform.tasks import one_line
from uptime.platform.retention import (
    RETENTION_COLLECTION,
    RETENTION_ID,
    configured_horizon,
    stored_horizon,
)
from uptime.timeline.control import timeline_freshness
from uptime.timeline.runs import rebuild_runs, retention_boundaries

log = logging.getLogger(__name__)

#: how long the compaction waits for a running follower to be current before rebuilding
FRESHNESS_BUDGET_S = 5.0
#: stores per bulk of deletes
BATCH_STORES = 500


async def compact_polls(
    db: Any, retention_days: float, *, now: datetime | None = None,
    batch_stores: int = BATCH_STORES,
) -> dict[str, Any]:
    """Remove the raw polls the retention horizon allows, once, now (see the module doc).

    Args:
        db: the ``AsyncDatabase``.
        retention_days: ``UPTIME_POLL_RETENTION_DAYS`` (days, float).
        now: the current instant (UTC); default the clock. Tests pass a fixed one.
        batch_stores: stores per delete bulk.

    Returns:
        ``{"horizon": Date (UTC), "previous": Date|None, "removed": polls deleted (int),
        "stores": stores whose boundary was applied, "rebuilt": bool (the timeline was rebuilt first),
        "reason": str (why it was, or why nothing was done), "seconds": float}``.

    Raises:
        pymongo.errors.PyMongoError: a database error (a later run finishes the work: each
            step is idempotent).
    """
    started = time.perf_counter()
    horizon = configured_horizon(retention_days, now)
    previous = await stored_horizon(db)
    out: dict[str, Any] = {"horizon": horizon, "previous": previous, "removed": 0, "stores": 0,
                           "rebuilt": False, "reason": ""}
    if previous is not None and horizon < previous:
        horizon = previous  # never move back (a retention raised later keeps what is left)
        out["horizon"] = horizon
    fresh = await timeline_freshness(db, FRESHNESS_BUDGET_S)
    if not fresh.current:
        out["rebuilt"] = True
        out["reason"] = f"timeline {fresh.state}: rebuilt first ({fresh.reason})"
        await rebuild_runs(db)
    await db[RETENTION_COLLECTION].update_one(
        {"_id": RETENTION_ID},
        {"$set": {"horizon": horizon, "started_at": datetime.now(UTC)}}, upsert=True)
    boundaries = await retention_boundaries(db, horizon)
    items = sorted(boundaries.items())
    removed = 0
    stores = 0
    polls = db[constants.STATUS_COLLECTION]
    for i in range(0, len(items), batch_stores):
        chunk = items[i : i + batch_stores]
        result = await polls.bulk_write(
            [DeleteMany({"store_id": s, "timestamp_utc": {"$lt": b}}) for s, b in chunk],
            ordered=False)
        removed += result.deleted_count
        stores += len(chunk)
        await asyncio.sleep(0)  # let the requests of this process run between bulks
    await db[RETENTION_COLLECTION].update_one(
        {"_id": RETENTION_ID},
        {"$set": {"compacted_at": datetime.now(UTC), "removed": removed},
         "$inc": {"removed_total": removed}})
    out.update(removed=removed, stores=stores, seconds=time.perf_counter() - started)
    return out


async def compact_forever(db: Any, retention_days: float, interval_s: float) -> None:
    """The service's schedule (``web/app.py`` lifespan): :func:`compact_polls` every
    ``interval_s`` seconds, the first one ``interval_s`` after the start (a restart loop never
    hammers the database; a test app never compacts). A failed round is logged and retried at
    the next one. Runs until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            result = await compact_polls(db, retention_days)
            log.info("poll compaction: %d polls before %s removed in %.1f s%s",
                     result["removed"], result["horizon"].isoformat(), result["seconds"],
                     f" ({result['reason']})" if result["rebuilt"] else "")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - logged; the next round retries
            log.warning("poll compaction failed (%s); next try in %g s", one_line(exc),
                        interval_s)
