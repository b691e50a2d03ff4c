"""One store's status runs as of an instant — the time line behind the dashboard (issue 11).

A *run* is a maximal stretch of one status of one store, in the shape of the ``status_runs``
contract (round-2 CONTRACT.md, "The status timeline")::

    {_id: "<store_id>|<first_poll ISO ms>", store_id, status: "active" | "inactive",
     first_poll: Date, last_poll: Date, polls: int (distinct instants),
     start2: long | null, end2: long | null}      # 2 × epoch ms; null = open

derived by the report's rules 1-2: valid polls only; polls at one ms instant count once,
inactive wins; the status changes at the midpoint between consecutive distinct instants of
different status (``start2`` = previous run's last poll ms + this run's first poll ms).

``store_runs`` is the one function the API reads runs through. It reads the store's runs
from the ``status_runs`` collection (kept current by ``uptime.timeline``'s follower; index
``store_id_1_first_poll_1``: ``{store_id, first_poll <= as_of}`` sorted by ``first_poll``)
and cuts them as of ``as_of`` (``_as_of_cut``) — when the collection is current: a runs
follower has applied every write acknowledged before the request
(``uptime.timeline.wait_current``, up to ``CURRENT_WAIT_S``). Otherwise (no follower running,
one still rebuilding or lagging, a standalone server) and for a store without any run, the
runs are derived on the fly from the store's polls (``RUNS_PIPELINE_NAME``, a ``$setWindowFields``
aggregation over that store's polls: ``pipelines/store_runs.v1.json``), which is always exact.

As of T (the report's view): only polls at or before T count, and the last run holds up to T.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from uptime.platform import pipelines
from uptime.platform.constants import RUNS_COLLECTION, STATUS_COLLECTION
from uptime.timeline.control import wait_current
from uptime.platform import limits
from uptime.report.pipeline import VALID_STATUSES, to_utc

#: One store's runs from its polls at or before ``$$as_of`` (``let``: ``store_id``, ``as_of``):
#: ``pipelines/store_runs.v1.json``.
RUNS_PIPELINE_NAME = "store_runs.v1"
#: One store's distinct valid poll instants in ``[$$from, $$until]`` -> ``[{last, polls}]``
#: (``let``: ``store_id``, ``from``, ``until``): ``pipelines/store_instants.v1.json``.
INSTANTS_PIPELINE_NAME = "store_instants.v1"
_MS = timedelta(milliseconds=1)  # BSON Dates are whole ms: t < b  <=>  t <= b - 1 ms


async def _instants(db: Any, store_id: str, start: datetime, until: datetime, comment: str
                    ) -> list[dict[str, Any]]:
    """``[{last, polls}]``: the latest and the number of the store's distinct valid poll
    instants in ``[start, until]`` (UTC, both inclusive); ``[]`` when there is none."""
    cursor = await db[STATUS_COLLECTION].aggregate(
        pipelines.load(INSTANTS_PIPELINE_NAME), comment=comment, **limits.agg_time(),
        let={"store_id": store_id, "from": start, "until": until})
    async with cursor:
        return await cursor.to_list()


def _as_of_cut(runs: list[dict[str, Any]], as_of: datetime) -> list[dict[str, Any]]:
    """Keep the runs a report as of ``as_of`` sees: ``first_poll <= as_of``; the last of them
    holds up to ``as_of`` (its ``end2`` becomes ``2 × as_of`` in ms)."""
    kept = [r for r in runs if r["first_poll"] <= as_of]
    if kept:
        kept[-1] = {**kept[-1], "end2": 2 * int(as_of.timestamp() * 1000)}
    return kept


#: how long a request waits for the runs follower to be current before deriving on the fly (s)
CURRENT_WAIT_S = 1.0
#: the contract's fields of a run (``status_runs`` also holds ``start``, ``end``, ``batch``)
_RUN_FIELDS = {"store_id": 1, "status": 1, "first_poll": 1, "last_poll": 1, "polls": 1,
               "start2": 1, "end2": 1}


async def _stored_runs(db: Any, store_id: str, as_of: datetime,
                       since: datetime | None = None) -> list[dict[str, Any]] | None:
    """The store's runs from ``status_runs`` cut as of ``as_of`` (from the run holding
    ``since`` on, when given); None when the collection has no run of the store at all (then
    only the polls can tell)."""
    first_poll: dict[str, Any] = {"$lte": as_of}
    if since is not None:  # issue 15: read the interval's runs, not the store's whole history
        holder = await db[RUNS_COLLECTION].find_one(
            {"store_id": store_id, "first_poll": {"$lte": min(since, as_of)}},
            {"first_poll": 1}, sort=[("first_poll", -1)], comment="store_runs@since",
            **limits.find_time())
        if holder is not None:
            first_poll["$gte"] = holder["first_poll"]
    runs = await db[RUNS_COLLECTION].find(
        {"store_id": store_id, "first_poll": first_poll}, _RUN_FIELDS,
        sort=[("first_poll", 1)], comment="store_runs@status_runs", **limits.find_time()
    ).to_list()
    if not runs:
        has_any = await db[RUNS_COLLECTION].count_documents({"store_id": store_id}, limit=1)
        return [] if has_any else None
    last = runs[-1]
    if last["last_poll"] > as_of:
        # the run goes on after as_of: its last poll and distinct instants up to as_of only
        # (polls after as_of are ignored, as in the report)
        cut = await _instants(db, store_id, last["first_poll"], as_of, "store_runs@cut")
        if cut:
            runs[-1] = {**last, "last_poll": cut[0]["last"], "polls": cut[0]["polls"]}
    return _as_of_cut(runs, as_of)


async def store_runs(db: Any, store_id: str, as_of: datetime,
                     since: datetime | None = None) -> list[dict[str, Any]]:
    """All runs of ``store_id`` as of ``as_of`` (UTC), oldest first, in the contract's shape;
    with ``since`` (UTC) read from ``status_runs``, only the runs from the one holding
    ``since`` on (every run that can overlap ``[since, as_of]``; issue 15: a store's history
    can hold 100,000s of runs);
    the last run's ``end2`` is ``2 × as_of`` ms (it holds up to ``as_of``), its ``last_poll``
    and ``polls`` count only polls at or before ``as_of``. ``[]`` when the store has no valid
    poll at or before ``as_of``. Read from ``status_runs`` when the runs follower is current;
    derived from the polls otherwise or when that collection has no run of the store (issue
    11; issue 8's status timeline).

    Raises:
        pymongo.errors.PyMongoError: the server failed the query or aggregation.
    """
    as_of = to_utc(as_of)
    if await wait_current(db, CURRENT_WAIT_S):
        stored = await _stored_runs(db, store_id, as_of, None if since is None else to_utc(since))
        if stored is not None:
            return stored
    valid = {"store_id": store_id, "status": {"$in": list(VALID_STATUSES)},
             "timestamp_utc": {"$type": "date"}}
    lower = None
    if since is not None:  # issue 15: from the last poll before `since` on, not all history
        before = await db[STATUS_COLLECTION].find_one(
            {**valid, "timestamp_utc": {"$lt": min(to_utc(since), as_of)}},
            {"_id": 0, "timestamp_utc": 1}, sort=[("timestamp_utc", -1)],
            comment="store_runs@live", **limits.find_time())
        lower = None if before is None else before["timestamp_utc"]
    stages = pipelines.load(RUNS_PIPELINE_NAME)
    if lower is not None:
        stages.insert(0, {"$match": {"store_id": store_id, "timestamp_utc": {"$gte": lower}}})
    cursor = await db[STATUS_COLLECTION].aggregate(
        stages, let={"store_id": store_id, "as_of": as_of}, comment="store_runs@live",
        **limits.agg_time(),
    )
    async with cursor:
        runs = await cursor.to_list()
    if lower is not None and runs:
        runs[0] = await _whole_first_run(db, valid, runs[0], lower)
    return _as_of_cut(runs, as_of)


async def _whole_first_run(db: Any, valid: dict[str, Any], run: dict[str, Any],
                           lower: datetime) -> dict[str, Any]:
    """``run``, derived from the polls at or after ``lower`` only, with the fields that depend
    on earlier polls made exact: ``first_poll``, ``start2``, ``polls``, ``_id`` (indexed reads
    of the store/time index back to the previous status change)."""
    coll = db[STATUS_COLLECTION]
    other_before = {**valid, "timestamp_utc": {"$lt": lower}}
    change = None  # the last instant before `lower` with the other status (rule 1: inactive wins)
    if run["status"] == "active":
        doc = await coll.find_one({**other_before, "status": "inactive"},
                                  {"_id": 0, "timestamp_utc": 1}, sort=[("timestamp_utc", -1)],
                                  **limits.find_time())
        change = None if doc is None else doc["timestamp_utc"]
    else:
        cursor = coll.find({**other_before, "status": "active"}, {"_id": 0, "timestamp_utc": 1},
                           sort=[("timestamp_utc", -1)], **limits.find_time())
        async for doc in cursor:  # an instant holding an inactive poll too is inactive
            t = doc["timestamp_utc"]
            if not await coll.count_documents({**valid, "timestamp_utc": t,
                                               "status": "inactive"}, limit=1,
                                              **limits.agg_time()):
                change = t
                break
        await cursor.close()
    after = {**valid, "timestamp_utc": {"$gt": change} if change is not None else {"$type": "date"}}
    first = (await coll.find_one(after, {"_id": 0, "timestamp_utc": 1},
                                 sort=[("timestamp_utc", 1)], **limits.find_time())
             )["timestamp_utc"]
    extra = await _instants(db, run["store_id"], first, lower - _MS, "store_runs@live")
    ms = lambda d: int(d.timestamp() * 1000)  # noqa: E731 - whole ms (BSON Dates)
    return {**run, "_id": f"{run['store_id']}|{first.strftime('%Y-%m-%dT%H:%M:%S.')}"
                          f"{first.microsecond // 1000:03d}Z",
            "first_poll": first, "polls": run["polls"] + (extra[0]["polls"] if extra else 0),
            "start2": None if change is None else ms(change) + ms(first)}


def clip_runs(runs: list[dict[str, Any]], start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """The runs overlapping ``[start_ms, end_ms)`` (epoch ms), each with ``start_ms``/``end_ms``
    clipped to the interval (floats: a run may start or end on a half millisecond)."""
    out = []
    for run in runs:
        a = -float("inf") if run["start2"] is None else run["start2"] / 2
        b = float("inf") if run["end2"] is None else run["end2"] / 2
        a, b = max(a, start_ms), min(b, end_ms)
        if a < b:
            out.append({**run, "start_ms": a, "end_ms": b})
    return out
