"""What the report pipeline v2 reads besides its parameters (issue 8, item 4): the status
timeline ``status_runs`` and the schedules ``store_schedules``; and which pipeline a report
runs (issue 14).

**Which pipeline a report runs** (:func:`choose_version`, every report: CLI, API, dashboard):
derived state makes a report faster, it never makes it fail or wait. v2 runs only when the
timeline is current now, asked through ``uptime.timeline.timeline_freshness`` with a budget far
below what v1 would take (:func:`wait_budget_s`: a quarter of v1's estimated time, between
``MIN_WAIT_S`` and ``MAX_WAIT_S``); otherwise v1 runs at once on the polls, which is exact.
So on a standalone server (no change streams: which polls came after the last periodic
rebuild cannot be told) every report is v1; on a replica set a report is v1 while the
follower lags (sustained ingestion), rebuilds, has stopped or crashed, and v2 otherwise.
Measured (README, round 2, scale 1): v1 5.15 s in the service; a full rebuild of the runs
13.0-13.9 s, so catching up synchronously by a rebuild never pays. With no follower running
and a stored resume token (``uptime-monitor report`` after ``uptime-monitor serve`` ran), a follower is
started for the report and given the same budget to resume (cheap when little was written);
without a token (first use) the report is v1 and no rebuild is started. The report records
the pipeline that produced it (``reports.pipeline``) and why (``pipeline_reason``).

The rest of this module (:func:`prepare_inputs`) brings the timeline up to date, waiting as
long as it takes; only tools use it (the benchmark builds v2's inputs with it):

* ``store_schedules``: built in full if it is empty while hours/timezone rows exist
  (``uptime.ingest.schedules.ensure_schedules``); imports keep it current after that.
* ``status_runs`` (owned by ``uptime.timeline``) must hold every poll written before the
  report starts:

  - a follower runs in this process: wait until it has applied every write acknowledged
    before the call (``wait_current``, up to ``WAIT_S``); if it lags longer, the report runs on
    and says so in the log;
  - a follower elsewhere has a heartbeat younger than ``HEARTBEAT_STALE_S``: wait for it the
    same way; if it does not catch up (it may have just stopped), go on as below;
  - no follower runs (e.g. ``uptime-monitor report`` after ``uptime-monitor import`` with no ``uptime-monitor serve``):
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

from pymongo.errors import PyMongoError

from uptime.ingest.schedules import ensure_schedules, schedules_current
from uptime.platform.constants import HEARTBEAT_STALE_S, RUNS_COLLECTION, STATUS_COLLECTION
from uptime.platform.retention import REPORT_WINDOW, stored_horizon
from uptime.timeline.control import running_follower, timeline_freshness, wait_current
from uptime.timeline.follower import STATE_COLLECTION, STATE_ID, RunsFollower, operation_time

log = logging.getLogger(__name__)

RUNS = RUNS_COLLECTION
#: how long a report waits for a running follower (s)
WAIT_S = 5.0
#: how long ``prepare_inputs`` (tools) waits for the follower it started (s; covers a rebuild)
CATCH_UP_S = 600.0
#: v1's cost per stored poll, seconds: T_report 5.15 s at 2,837,791 polls (README, round 2,
#: scale 1, this 2-core machine); estimates what the exact alternative to waiting costs
V1_SECONDS_PER_POLL = 1.8e-6
#: the share of v1's estimated time a report may wait for the timeline to be current
WAIT_FRACTION = 0.25
#: shortest wait (s): the follower's batch window (50 ms) plus applying one small batch
MIN_WAIT_S = 0.2
#: longest wait (s), whatever the data size
MAX_WAIT_S = 2.0


class TimelineNotCurrentError(RuntimeError):
    """The status timeline could not be brought up to date for a v2 report."""


async def wait_budget_s(db: Any) -> float:
    """Seconds a report may wait for the timeline: ``WAIT_FRACTION`` of v1's estimated time
    (``estimated_document_count(store_status) * V1_SECONDS_PER_POLL``), clamped to
    ``[MIN_WAIT_S, MAX_WAIT_S]``."""
    polls = await db[STATUS_COLLECTION].estimated_document_count()
    return min(MAX_WAIT_S, max(MIN_WAIT_S, WAIT_FRACTION * polls * V1_SECONDS_PER_POLL))


async def choose_version(
    db: Any, requested: str | None = None, as_of: datetime | None = None
) -> tuple[str, str]:
    """Pick the pipeline for a report now: ``(version, reason)`` (see the module doc).

    Retention (issue 18): when the week before ``as_of`` (UTC) reaches before the stored
    retention horizon, v1 cannot answer (its polls are gone: ``pipeline.check_v1_horizon``),
    so a timeline that is not current still gives v2 on the runs — exact before the horizon
    (frozen runs), as of the timeline's last applied write after it — and the reason says so.

    ``requested`` ``"v1"`` -> v1. ``None`` (the default) or ``"v2"`` -> v2 when the status
    timeline is current within :func:`wait_budget_s` and the schedules are proven to match
    the hours/timezone rows (``uptime.ingest.schedules.schedules_current``: refreshed from the
    change stream or rebuilt; a database error there -> v1 with the reason), else v1 with the
    timeline's state as the reason. Never raises for a
    stale, stopped, rebuilding or standalone timeline.

    Raises:
        pymongo.errors.PyMongoError: a database error.
    """
    if requested == "v1":
        return "v1", "requested"
    # On a replica set the schedules' proof (a change-stream read) runs beside the timeline's
    # wait (issue 19: one after the other they took 0.04-0.07 s of every report); its answer
    # is used only on a current timeline. Not on a standalone server: its timeline is never
    # current, and its proof is a dbHash of the input collections, too dear to run for nothing.
    proof = (asyncio.ensure_future(schedules_current(db))
             if await operation_time(db) is not None else None)
    try:
        current, why = await timeline_ready(db)
    except BaseException:
        if proof is not None:
            proof.cancel()
            await asyncio.gather(proof, return_exceptions=True)
        raise
    if not current and proof is not None:
        await asyncio.gather(proof, return_exceptions=True)  # refreshed schedules: no harm
    horizon = await stored_horizon(db) if as_of is not None and not current else None
    if horizon is not None and (as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)) - REPORT_WINDOW < horizon:
        log.warning("report: pipeline v2 on a timeline that is not current (%s): the polls "
                    "before the retention horizon %s are compacted, v1 cannot answer",
                    why, horizon.isoformat())
        await ensure_schedules(db)
        return "v2", (f"{why}; but the week before as_of reaches before the retention "
                      f"horizon {horizon.isoformat()}: v1 cannot answer (raw polls "
                      "compacted), so v2 on the runs")
    if not current:
        log.info("report: pipeline v1 (exact, on the polls): the status timeline is not "
                 "current: %s", why)
        return "v1", why
    try:  # rows written straight into store_hours/store_timezones: refresh their schedules
        synced = await proof if proof is not None else await schedules_current(db)
    except PyMongoError as exc:
        log.warning("report: pipeline v1: store_schedules could not be proven current: %s", exc)
        return "v1", f"{why}; but store_schedules could not be proven current ({exc})"
    return "v2", why if not (synced.refreshed or synced.rebuilt) else f"{why}; {synced.how}"


async def timeline_ready(db: Any) -> tuple[bool, str]:
    """Is ``status_runs`` current now, within :func:`wait_budget_s`? ``(current, reason)``.

    The one decision every reader of the timeline takes before trusting it (the report's
    v1/v2 choice, period reports, incidents; issue 14): a follower of this process or another
    one is given the budget to apply every write acknowledged before the call; with none alive
    on a replica set and a stored resume token (``uptime-monitor report`` after ``serve``
    ran), one is started here for the budget (it resumes cheaply) and stopped. Never raises for
    a stale, stopped, rebuilding or standalone timeline: the caller takes its exact path on the
    polls when ``current`` is False; ``reason`` says why (``"timeline <state>: ..."``).

    Raises:
        pymongo.errors.PyMongoError: a database error.
    """
    budget = await wait_budget_s(db)
    started_here = None
    if running_follower(db) is None and await operation_time(db) is not None:
        state = await db[STATE_COLLECTION].find_one(
            {"_id": STATE_ID}, {"heartbeat": 1, "token": 1}) or {}
        beat = state.get("heartbeat")
        live = isinstance(beat, datetime) and datetime.now(UTC) - (
            beat if beat.tzinfo else beat.replace(tzinfo=UTC)) < timedelta(seconds=HEARTBEAT_STALE_S)
        if not live and state.get("token") is not None:
            started_here = RunsFollower(db)  # resumes from the stored token
            await started_here.start()
    try:
        fresh = await timeline_freshness(db, budget)
        if started_here is not None and fresh.current:
            # let it store its resume token (next report resumes from there)
            for _ in range(25):
                if started_here.state.get("token") is not None:
                    break
                await asyncio.sleep(0.02)
    finally:
        if started_here is not None:
            await started_here.stop()
            await db[STATE_COLLECTION].update_one(
                {"_id": STATE_ID, "owner": started_here.state.get("owner")},
                {"$set": {"heartbeat": None}})
    if not fresh.current:
        if fresh.state == "stopped" and started_here is None:
            why = ("no runs follower is running (start `uptime-monitor serve` or "
                   "`uptime-monitor runs follow` for v2)")
        else:
            why = fresh.reason
        return False, f"timeline {fresh.state}: {why}"
    return True, f"timeline current (waited {fresh.waited_s:.2f} s)"


async def prepare_inputs(db: Any) -> None:
    """Make ``store_schedules`` and ``status_runs`` ready for a v2 report, waiting up to
    ``CATCH_UP_S`` (tools only: the benchmark; reports use :func:`choose_version`).

    Raises:
        TimelineNotCurrentError: the follower started for this report did not catch up
            within ``CATCH_UP_S`` (the report fails rather than give a stale answer).
        pymongo.errors.PyMongoError: a database error.
    """
    await ensure_schedules(db)
    if running_follower(db) is not None:
        # The follower of this process (`uptime-monitor serve`): never report on a timeline it has not
        # caught up on (e.g. its first rebuild is still running); a stale v2 report would
        # silently differ from v1.
        if await wait_current(db, WAIT_S):
            return
        log.warning("report v2: the runs follower lags more than %.0f s behind; waiting up "
                    "to %.0f s", WAIT_S, CATCH_UP_S)
        if not await wait_current(db, CATCH_UP_S):
            raise TimelineNotCurrentError(
                "the status timeline (status_runs) did not catch up; check `uptime-monitor runs "
                "status`, or run the report with --pipeline v1"
            )
        return
    state = await db[STATE_COLLECTION].find_one({"_id": STATE_ID}, {"heartbeat": 1}) or {}
    beat = state.get("heartbeat")
    if isinstance(beat, datetime):
        beat = beat if beat.tzinfo else beat.replace(tzinfo=UTC)
        if datetime.now(UTC) - beat < timedelta(seconds=HEARTBEAT_STALE_S):
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
                "`uptime-monitor runs status`, or run the report with --pipeline v1"
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
