"""The timeline's fast path (issue 8 item 3): new polls strictly after a store's latest run's
``last_poll`` (the hourly case) are appended to ``status_runs`` without any pipeline; every
other change goes to :func:`uptime.timeline.runs.recompute_stores`.

The rules are the runs pipeline's (``pipelines/status_runs.v1.json``, rules 1-2 of the
report): polls at one ms instant count once, inactive wins; the status changes at the
midpoint between consecutive distinct poll instants (2 x epoch ms, ``start2``/``end2``).
Written documents have the pipeline's shape exactly (``tests/timeline/test_timeline_runs.py``
checks the fast path against the pipeline).

* :func:`fold_instants` — one store's new polls as distinct instants (rule 1).
* :func:`append_ops` — the writes that append them to the store's latest run (rule 2).
* :func:`apply_polls` — the follower's entry point: the fast path for every store it fits,
  :func:`uptime.timeline.runs.recompute_stores` for the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from bson import Int64, ObjectId
from pymongo import ReplaceOne, UpdateOne

from uptime.platform import constants
from uptime.platform.constants import RUNS_COLLECTION
from uptime.timeline.runs import PARALLEL, drain, recompute_stores, utc_ms

#: the fewest fast-path stores worth a bulk write of their own
FAST_MIN_STORES = 200
#: the two statuses of a valid poll (rule 1), and the flag "inactive" of each
VALID_STATUS = {"active": False, "inactive": True}
#: store ids the runs ignore (rule 1: control characters), as in the pipeline's stage 1
_CONTROL = constants.CONTROL_CHARS
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)

AsyncDb = Any  # pymongo.asynchronous.database.AsyncDatabase


def _epoch_ms(moment: datetime) -> int:
    """Exact integer epoch ms of a ms-precise UTC datetime (no float rounding)."""
    return (moment - _EPOCH) // _MS


def _ms_date(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def run_id(store: str, first_poll: datetime) -> str:
    """A run's ``_id``: ``"<store_id>|<first_poll as YYYY-MM-DDTHH:MM:SS.mmmZ>"`` — the same
    string as the pipeline's ``$dateToString`` (4-digit zero-padded year)."""
    d = first_poll
    return (f"{store}|{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:"
            f"{d.second:02d}.{d.microsecond // 1000:03d}Z")


def _run_doc(store: str, inactive: bool, first: datetime, last: datetime, polls: int,
             start2: int | None, end2: int | None, batch: ObjectId) -> dict[str, Any]:
    """A run document in the pipeline's shape (longs for the 2 x ms bounds, floored Dates)."""
    return {
        "_id": run_id(store, first), "store_id": store,
        "status": "inactive" if inactive else "active",
        "first_poll": first, "last_poll": last, "polls": polls,
        "start2": None if start2 is None else Int64(start2),
        "end2": None if end2 is None else Int64(end2),
        "batch": batch,
        "start": None if start2 is None else _ms_date(start2 // 2),
        "end": None if end2 is None else _ms_date(end2 // 2),
    }


def fold_instants(polls: Iterable[tuple[datetime, str]]) -> list[tuple[datetime, bool]]:
    """New polls of one store as distinct instants in time order, ``(instant, inactive)``:
    polls at one ms instant count once, inactive if any is (rule 1). Invalid statuses are
    dropped (they are not polls); instants are truncated to ms (BSON Date precision)."""
    instants: dict[datetime, bool] = {}
    for moment, status in polls:
        if status not in VALID_STATUS:
            continue
        t = utc_ms(moment)
        instants[t] = instants.get(t, False) or VALID_STATUS[status]
    return sorted(instants.items())


def append_ops(store: str, latest: Mapping[str, Any] | None,
               instants: Sequence[tuple[datetime, bool]], batch: ObjectId) -> list[Any]:
    """The writes that append ``instants`` (``fold_instants``, every one strictly after
    ``latest["last_poll"]``) to a store whose latest run is ``latest`` (None: a store without
    runs). Rule 2 on the time line in 2 x ms: a poll of the latest run's status extends it
    (``last_poll``, ``polls`` + 1); a poll of the other status closes it at the midpoint
    (``end2 = last_poll ms + t ms``, ``end = floor(end2 / 2)``) and opens a new run there
    (``start2`` = the same, ``first_poll = last_poll = t``, ``end2`` null). Returns at most
    one ``UpdateOne`` of ``latest`` (filtered on its ``_id``, ``end2: null`` and its old
    ``last_poll``, so it matches nothing if the run changed meanwhile) and one upserting
    ``ReplaceOne`` per new run.

    Raises:
        ValueError: an instant at or before ``latest["last_poll"]`` (not an append).
    """
    ops: list[Any] = []
    if not instants:
        return ops
    if latest is not None and instants[0][0] <= latest["last_poll"]:
        raise ValueError(f"append_ops: store {store}: poll {instants[0][0]} is not after the "
                         f"latest run's last poll {latest['last_poll']}")
    # cur = the run being extended: [inactive, first, last, polls, start2]
    runs: list[list[Any]] = []
    if latest is not None:
        runs.append([latest["status"] == "inactive", latest["first_poll"], latest["last_poll"],
                     latest["polls"], latest.get("start2")])
    for t, inactive in instants:
        if runs and runs[-1][0] == inactive:
            runs[-1][2] = t
            runs[-1][3] += 1
        else:
            start2 = _epoch_ms(runs[-1][2]) + _epoch_ms(t) if runs else None
            runs.append([inactive, t, t, 1, start2])
    docs = []
    for k, (inactive, first, last, polls, start2) in enumerate(runs):
        end2 = runs[k + 1][4] if k + 1 < len(runs) else None
        docs.append(_run_doc(store, inactive, first, last, polls, start2, end2, batch))
    if latest is not None:
        head = docs.pop(0)
        ops.append(UpdateOne(
            {"_id": latest["_id"], "end2": None, "last_poll": latest["last_poll"]},
            {"$set": {k: head[k] for k in ("last_poll", "polls", "end2", "end", "batch")}}))
    ops.extend(ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs)
    return ops


async def apply_polls(
    db: AsyncDb,
    appends: Mapping[str, Sequence[tuple[datetime, str]]],
    changes: Mapping[str, tuple[datetime, datetime]] | None = None,
) -> dict[str, Any]:
    """Bring ``status_runs`` up to date after new polls and other changes (issue 8 item 3;
    the follower's entry point).

    ``appends`` maps ``store_id`` to the polls inserted into ``store_status`` as
    ``(timestamp_utc, status)`` (UTC; any order; invalid statuses are ignored);
    ``changes`` maps other stores to ``(first, last)`` changed instants as for
    :func:`recompute_stores` (deletes, updates, ...). A store in both goes the recompute way.

    **Fast path** (the hourly case): a store whose new polls are all strictly after its latest
    run's ``last_poll`` (or a store without runs) is updated without any pipeline: one query
    for the open runs of all such stores (``{end2: null, store_id: {$in}}``, index
    ``end2_1_store_id_1``), the polls folded in order per store (:func:`append_ops`), one
    unordered bulk write. A poll at or before ``last_poll`` (late, out of order, a duplicate
    at an existing instant, even at ``last_poll`` itself) sends the store to
    :func:`recompute_stores`, as do stores with several open runs and, should a latest run
    have changed between the read and the write (another writer), every fast-path store.

    Returns ``{"fast": stores appended, "recomputed": stores recomputed, "seconds": float}``.

    Raises:
        ValueError: a store id that is not a string (from :func:`recompute_stores`).
        pymongo.errors.PyMongoError: a server error.
    """
    started = time.perf_counter()
    slow: dict[str, tuple[datetime, datetime]] = dict(changes or {})
    folded: dict[str, list[tuple[datetime, bool]]] = {}
    for store, polls in appends.items():
        if not isinstance(store, str):
            raise ValueError(f"apply_polls: store id {store!r} is not a string")
        if _CONTROL.search(store):
            continue  # not a valid poll's store (rule 1): no runs
        instants = fold_instants(polls)
        if not instants:
            continue
        if store in slow:
            a, b = slow[store]
            slow[store] = (min(utc_ms(a), instants[0][0]), max(utc_ms(b), instants[-1][0]))
        else:
            folded[store] = instants
    fast = 0
    if folded:
        latest: dict[str, list[dict[str, Any]]] = {}
        stores = list(folded)
        for i in range(0, len(stores), 50_000):  # keeps the query far below 16 MB
            cursor = db[RUNS_COLLECTION].find(
                {"end2": None, "store_id": {"$in": stores[i : i + 50_000]}},
                {"store_id": 1, "status": 1, "first_poll": 1, "last_poll": 1, "polls": 1,
                 "start2": 1})
            for doc in await drain(cursor):
                latest.setdefault(doc["store_id"], []).append(doc)
        batch = ObjectId()
        per_store: list[tuple[str, list[Any]]] = []
        for store, instants in folded.items():
            open_runs = latest.get(store, [])
            if len(open_runs) > 1 or (open_runs and instants[0][0] <= open_runs[0]["last_poll"]):
                slow[store] = (instants[0][0], instants[-1][0])
                continue
            head = open_runs[0] if open_runs else None
            per_store.append((store, append_ops(store, head, instants, batch)))
        # PARALLEL bulks of disjoint stores at once (each bulk is one server thread)
        size = max(FAST_MIN_STORES, -(-len(per_store) // PARALLEL))
        groups = [per_store[i : i + size] for i in range(0, len(per_store), size)]

        async def write(group: list[tuple[str, list[Any]]]) -> int:
            ops = [op for _, store_ops in group for op in store_ops]
            result = await db[RUNS_COLLECTION].bulk_write(ops, ordered=False)
            # each upserting ReplaceOne matches or inserts; an UpdateOne that matched nothing
            # means that store's latest run changed between the read and the write (another
            # writer): recompute every store of this bulk (exact)
            if result.matched_count + result.upserted_count < len(ops):
                for store, _ in group:
                    slow[store] = (folded[store][0][0], folded[store][-1][0])
                return 0
            return len(group)

        fast = sum(await asyncio.gather(*(write(g) for g in groups)))
    recomputed = 0
    if slow:
        recomputed = (await recompute_stores(db, slow))["stores"]
    return {"fast": fast, "recomputed": recomputed, "seconds": time.perf_counter() - started}
