"""What the report pipeline v2 reads besides its parameters, made ready before it runs
(issue 8, item 4): the status timeline ``status_runs`` and the schedules ``store_schedules``.

* ``store_schedules``: built in full if it is empty while hours/timezone rows exist
  (``uptime.ingest.schedules.ensure_schedules``); imports keep it current after that.
* ``status_runs`` (owned by ``uptime.timeline``) must hold every poll written before the
  report starts:

  - a follower runs in this process: wait until it has applied every write acknowledged
    before the call (``wait_current``, up to ``WAIT_S``); if it lags longer, the report runs on
    and says so in the log;
  - a follower elsewhere has a heartbeat younger than ``LIVE_HEARTBEAT_S``: wait for it the
    same way; if it does not catch up (it may have just stopped), go on as below;
  - no follower runs (e.g. ``uptime report`` after ``uptime import`` with no ``uptime serve``):
    a follower is started here for the report — it resumes from the stored change-stream token
    and applies what was written since (cheap), or, with no usable token, rebuilds the
    collection once (about 15-30 s at 2.8M polls; later reports resume) — and stopped once
    current.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from uptime.ingest.schedules import ensure_schedules
from uptime.platform.constants import RUNS_COLLECTION
from uptime.timeline.control import active_follower, wait_current
from uptime.timeline.follower import STATE_COLLECTION, STATE_ID, RunsFollower

log = logging.getLogger(__name__)

RUNS = RUNS_COLLECTION
#: a follower whose heartbeat is younger than this is taken to be running elsewhere (s)
LIVE_HEARTBEAT_S = 30.0
#: how long a report waits for a running follower (s)
WAIT_S = 5.0
#: how long a report waits for the follower it started itself (s; covers a full rebuild)
CATCH_UP_S = 600.0


class TimelineNotCurrentError(RuntimeError):
    """The status timeline could not be brought up to date for a v2 report."""


async def prepare_inputs(db: Any) -> None:
    """Make ``store_schedules`` and ``status_runs`` ready for a v2 report (see module doc).

    Raises:
        TimelineNotCurrentError: the follower started for this report did not catch up
            within ``CATCH_UP_S`` (the report fails rather than give a stale answer).
        pymongo.errors.PyMongoError: a database error.
    """
    await ensure_schedules(db)
    if active_follower(db) is not None:
        # The follower of this process (`uptime serve`): never report on a timeline it has not
        # caught up on (e.g. its first rebuild is still running); a stale v2 report would
        # silently differ from v1.
        if await wait_current(db, WAIT_S):
            return
        log.warning("report v2: the runs follower lags more than %.0f s behind; waiting up "
                    "to %.0f s", WAIT_S, CATCH_UP_S)
        if not await wait_current(db, CATCH_UP_S):
            raise TimelineNotCurrentError(
                "the status timeline (status_runs) did not catch up; check `uptime runs "
                "status`, or run the report with --pipeline v1"
            )
        return
    state = await db[STATE_COLLECTION].find_one({"_id": STATE_ID}, {"heartbeat": 1}) or {}
    beat = state.get("heartbeat")
    if isinstance(beat, datetime):
        beat = beat if beat.tzinfo else beat.replace(tzinfo=UTC)
        if datetime.now(UTC) - beat < timedelta(seconds=LIVE_HEARTBEAT_S):
            if await wait_current(db, WAIT_S):
                return
            log.warning("report v2: no runs follower caught up within %.0f s; running one for "
                        "this report", WAIT_S)
    follower = RunsFollower(db)
    await follower.start()
    try:
        if not await wait_current(db, CATCH_UP_S):
            raise TimelineNotCurrentError(
                "the status timeline (status_runs) could not be brought up to date; check "
                "`uptime runs status`, or run the report with --pipeline v1"
            )
        # Let it store its resume token (its first idle round), so the next report resumes
        # from there instead of rebuilding.
        for _ in range(100):
            if follower.state.get("token") is not None:
                break
            await asyncio.sleep(0.02)
    finally:
        await follower.stop()
        # This follower is gone: clear its heartbeat so the next report does not take it for
        # a live one and wait for it in vain.
        await db[STATE_COLLECTION].update_one(
            {"_id": STATE_ID, "owner": follower.state.get("owner")}, {"$set": {"heartbeat": None}}
        )


async def count_report_stores_v2(db: Any, as_of: datetime) -> int:
    """Stores the v2 report for ``as_of`` has rows for: stores whose first run (``start2``
    null) begins at or before ``as_of`` (an index count on ``runs_start2_first_poll``)."""
    return await db[RUNS].count_documents({"start2": None, "first_poll": {"$lte": as_of}})
