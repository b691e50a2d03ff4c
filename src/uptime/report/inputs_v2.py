"""What the report pipeline v2 reads besides its parameters, made ready before it runs
(issue 8, item 4): the status timeline ``status_runs`` and the schedules ``store_schedules``.

* ``store_schedules``: built in full if it is empty while hours/timezone rows exist
  (``uptime.report.schedules.ensure_schedules``); imports keep it current after that.
* ``status_runs``: owned by the timeline (``uptime.timeline``). If the collection is empty
  while polls exist, it is built with ``uptime.timeline.rebuild_runs`` (one pipeline run);
  otherwise the report waits (``uptime.timeline.wait_current``) until the follower has applied
  every poll written before the report started, as far as the timeline offers that.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from uptime.report.schedules import ensure_schedules

log = logging.getLogger(__name__)

RUNS = "status_runs"


class TimelineMissingError(RuntimeError):
    """``status_runs`` is empty while polls exist and no timeline builder is installed."""


async def prepare_inputs(db: Any) -> None:
    """Make ``store_schedules`` and ``status_runs`` ready for a v2 report (see module doc).

    Raises:
        TimelineMissingError: no runs, polls exist, and ``uptime.timeline`` cannot build them.
        pymongo.errors.PyMongoError: a database error.
    """
    await ensure_schedules(db)
    try:
        from uptime import timeline
    except ImportError:
        timeline = None
    if await db[RUNS].find_one({}, {"_id": 1}) is None:
        if await db["store_status"].find_one({}, {"_id": 1}) is None:
            return
        if timeline is None or not hasattr(timeline, "rebuild_runs"):
            raise TimelineMissingError(
                "status_runs is empty but store_status holds polls, and no timeline builder "
                "is installed; run the report with pipeline v1"
            )
        log.info("status_runs is empty: building it from store_status")
        await timeline.rebuild_runs(db)
        return
    wait_current = getattr(timeline, "wait_current", None)
    if wait_current is not None and not await wait_current(db):
        log.warning("the status timeline may lag behind the latest polls (follower not current)")


async def count_report_stores_v2(db: Any, as_of: datetime) -> int:
    """Stores the v2 report for ``as_of`` has rows for: stores whose first run (``start2``
    null) begins at or before ``as_of`` (an index count on ``runs_start2_first_poll``)."""
    return await db[RUNS].count_documents({"start2": None, "first_poll": {"$lte": as_of}})
