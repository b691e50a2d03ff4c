"""Is the status timeline current: :func:`timeline_freshness` -> :class:`Freshness` (every
reader of ``status_runs`` asks it, issue 14) and :func:`wait_current` (the round-2 contract:
wait until the follower applied every earlier write). Both read the in-process follower
(:func:`uptime.timeline.follower.running_follower`) or, for a follower in another process, its
state document ``runs_follower``; a follower whose heartbeat is older than
:data:`uptime.platform.constants.HEARTBEAT_STALE_S` is taken as not running."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import Timestamp

from uptime.platform.constants import HEARTBEAT_STALE_S
from uptime.timeline.follower import STATE_COLLECTION, STATE_ID, operation_time, running_follower


async def wait_current(db: Any, timeout_s: float = 5.0) -> bool:
    """Wait until the follower has applied every ``store_status`` write acknowledged before
    this call (True), or ``timeout_s`` seconds passed (False). Round-2 contract.

    The target is the server's ``operationTime`` at the call; the follower's progress is its
    ``applied_until`` cluster time — in memory when a :class:`RunsFollower` on the same
    database runs in this process, else read from ``runs_follower`` every 20 ms (an idle
    follower writes it every second, so expect up to ~1 s there). False at once when no
    follower's heartbeat is fresh (none running) and on a standalone server (no cluster time,
    periodic rebuilds).
    """
    target = await operation_time(db)
    if target is None:
        return False
    follower = running_follower(db)
    if follower is not None:
        return await follower.wait_applied(target, timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        doc = await db[STATE_COLLECTION].find_one(
            {"_id": STATE_ID}, {"applied_until": 1, "heartbeat": 1})
        until = (doc or {}).get("applied_until")
        if isinstance(until, Timestamp) and until >= target:
            return True
        beat = (doc or {}).get("heartbeat")
        if not isinstance(beat, datetime) or (
                datetime.now(UTC) - beat.astimezone(UTC)).total_seconds() > HEARTBEAT_STALE_S:
            return False  # no follower is running: waiting cannot help
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)


@dataclass(frozen=True)
class Freshness:
    """Whether ``status_runs`` holds every ``store_status`` write acknowledged before a call
    to :func:`timeline_freshness`, and if not, why.

    Attributes:
        current: True = every write acknowledged before the call is in ``status_runs``
            (anything derived from the runs is exact for data up to that moment).
        state: ``"current"``; ``"lagging"`` (a follower runs but did not catch up within the
            budget); ``"rebuilding"`` (its full rebuild is in progress: the runs are being
            replaced); ``"stopped"`` (no follower runs: none started, killed, or its task
            ended with an error); ``"standalone"`` (no replica set: no change streams, only
            periodic full rebuilds, so currency cannot be known).
        reason: one line for a person (logs, ``/healthz``).
        waited_s: seconds this call waited (never more than its budget, plus one query).
        last_rebuild_age_s: seconds since the last full rebuild finished (server's ``at``
            in ``runs_follower.last_rebuild``, compared with this host's clock), or None.
    """

    current: bool
    state: str
    reason: str
    waited_s: float = 0.0
    last_rebuild_age_s: float | None = None


def _age_s(moment: Any) -> float | None:
    if not isinstance(moment, datetime):
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())


async def timeline_freshness(db: Any, budget_s: float) -> Freshness:
    """Is the status timeline current, waiting at most ``budget_s`` seconds for it? (issue 14)

    The public question every reader of ``status_runs`` asks before trusting it (the report
    v2, period reports, incidents): derived state may make them faster, never make them fail
    or wait. So this answers promptly:

    * standalone server (no cluster time): ``state="standalone"`` at once — runs are rebuilt
      every ``UPTIME_RUNS_REBUILD_INTERVAL`` s and which polls came after the last rebuild
      cannot be told, so they are never "current";
    * no follower alive (none in this process, or its task ended; none elsewhere with a
      heartbeat younger than :data:`uptime.platform.constants.HEARTBEAT_STALE_S`): ``"stopped"`` at once;
    * a follower in the middle of a full rebuild (``pending == -1``): ``"rebuilding"`` at once;
    * otherwise wait until it has applied every write acknowledged before this call (target:
      the server's ``operationTime`` now) — ``"current"`` — or ``budget_s`` passed:
      ``"lagging"``. The in-process follower is awaited through its condition (no polling);
      another process's through ``runs_follower.applied_until`` every 20 ms.

    Args:
        db: the ``AsyncDatabase`` holding ``store_status``/``status_runs``/``runs_follower``.
        budget_s: the longest wait in seconds (0 = just look).

    Returns:
        :class:`Freshness`. Callers that need an exact answer take another path (e.g. the
        report's v1 pipeline on the polls) whenever ``current`` is False.

    Raises:
        pymongo.errors.PyMongoError: the server could not be asked.
    """
    started = time.monotonic()
    doc = await db[STATE_COLLECTION].find_one(
        {"_id": STATE_ID}, {"applied_until": 1, "heartbeat": 1, "pending": 1,
                            "last_rebuild.at": 1}) or {}
    rebuilt_age = _age_s((doc.get("last_rebuild") or {}).get("at"))

    def answer(current: bool, state: str, reason: str) -> Freshness:
        return Freshness(current, state, reason, time.monotonic() - started, rebuilt_age)

    target = await operation_time(db)
    if target is None:
        return answer(False, "standalone", "standalone server (no replica set): no change "
                      "streams, status_runs is only rebuilt periodically")
    follower = running_follower(db)
    if follower is not None:
        if not follower.alive:
            return answer(False, "stopped", "the runs follower of this process has stopped")
        if follower.state.get("pending") == -1:
            return answer(False, "rebuilding", "the runs follower is rebuilding status_runs")
        if await follower.wait_applied(target, budget_s):
            return answer(True, "current", "the runs follower has applied every write")
        return answer(False, "lagging",
                      f"the runs follower did not catch up within {budget_s:.2f} s")
    deadline = started + budget_s
    while True:
        # first: a rebuilding follower writes no heartbeat until the rebuild ends
        if doc.get("pending") == -1:
            return answer(False, "rebuilding", "the runs follower is rebuilding status_runs")
        if not _fresh_beat(doc.get("heartbeat")):
            return answer(False, "stopped", "no runs follower is running (no fresh heartbeat)")
        until = doc.get("applied_until")
        if isinstance(until, Timestamp) and until >= target:
            return answer(True, "current", "the runs follower has applied every write")
        if time.monotonic() >= deadline:
            return answer(False, "lagging",
                          f"the runs follower did not catch up within {budget_s:.2f} s")
        await asyncio.sleep(0.02)
        doc = await db[STATE_COLLECTION].find_one(
            {"_id": STATE_ID}, {"applied_until": 1, "heartbeat": 1, "pending": 1}) or {}


def _fresh_beat(beat: Any) -> bool:
    age = _age_s(beat)
    return age is not None and age <= HEARTBEAT_STALE_S
