"""Build and keep current the status timeline ``status_runs`` (issue 8, items 2-3).

A *run* is a maximal stretch of one status of one store, derived from ``store_status`` by the
report's rules 1-2 (polls at one ms instant count once, inactive wins; the status changes at
the midpoint between consecutive distinct poll instants, an exact midpoint belongs to the later
poll). Document shape (``/work/round2/CONTRACT.md``, "Data contract")::

    {_id: "<store_id>|<first_poll ISO ms>Z", store_id: str, status: "active"|"inactive",
     first_poll: Date, last_poll: Date, polls: int,        # distinct poll instants
     start2: long|null, end2: long|null,                   # 2 x epoch ms; null = open
     start: Date|null, end: Date|null,                     # floor(start2/2), floor(end2/2)
     batch: ObjectId}                                      # the recompute that wrote it

The computation is two aggregation pipelines (``pipelines/status_runs.v1.json`` and
``pipelines/status_runs_windows.v1.json``; sidecar ``status_runs.v1.md``). This module runs
them:

* :func:`rebuild_runs` — the whole collection in one pipeline run (``windows: null``), then
  deletes the runs that run did not write (``batch`` older than its own).
* :func:`uptime.timeline.fastpath.apply_polls` (its own module) — the follower's entry
  point: new polls strictly after a store's latest run's ``last_poll`` (the hourly case) are
  applied without any pipeline (one read of the stores' open runs, one unordered bulk write);
  every other change goes to :func:`recompute_stores`.
* :func:`recompute_stores` — only the runs around changed poll instants: the windows pipeline
  finds, per store, the stored run before the first changed instant and the one after the last
  (index ``store_id_1_first_poll_1``); the main pipeline re-reads only the polls between them
  (stored runs that end before the change enter as ready-made pieces); its runs are written
  with one unordered bulk of upserts (not its final ``$merge``, which is 4-5x slower with a
  large ``let``: see the sidecar) and the runs left in the window that it did not rewrite
  are deleted. Stores go in chunks of up to 5,000, two chunks at a time.

Why "merge, then delete stale" and not "build into a temporary collection and rename": the
incremental path has to do it this way anyway (a rename swaps whole collections), so the full
rebuild uses the same mechanism and the same pipeline file unchanged; readers never see an
empty collection. The price: between the ``$merge`` and the delete (milliseconds for a burst,
about a second for a full rebuild) a reader can see a stale run beside its replacement.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from bson import ObjectId
from pymongo import DeleteMany, ReplaceOne
from pymongo.errors import OperationFailure

from uptime.platform import pipelines
from uptime.platform.constants import RUNS_COLLECTION, STATUS_COLLECTION
from uptime.platform.retention import stored_horizon

PIPELINE_TAG = "status_runs@v1"
MAIN_FILE = "status_runs.v1.json"
WINDOWS_FILE = "status_runs_windows.v1.json"
#: stores per pipeline run of the incremental path (keeps the ``let`` document far below 16 MB)
STORES_PER_RUN = 5_000
#: chunks recomputed at once, and the fewest stores worth a chunk of their own
PARALLEL = 2
PARALLEL_MIN_STORES = 500
#: windows whose first poll to read is at most this much older than the newest one's share
#: one index range scan (one seek per store of the range; it reads every poll of those stores
#: since the oldest such window); older ones are read store by store ($lookup, ~0.2 ms each)
NEAR = timedelta(hours=1)
_EPOCH_MIN = datetime(1, 1, 1, tzinfo=timezone.utc)  # the windows pipeline's "no lower bound"

AsyncDb = Any  # pymongo.asynchronous.database.AsyncDatabase


def load_runs_pipeline(file_name: str = MAIN_FILE) -> list[dict]:
    """The stages of ``pipelines/<file_name>`` (``uptime.platform.pipelines.load``: cached,
    shape checked, a fresh copy).

    Raises:
        FileNotFoundError: the file is not installed.
        ValueError: the file is not a JSON array of single-key stage documents.
    """
    return pipelines.load(file_name.removesuffix(".json"))


#: the poll index (migration 20261129150000) the full rebuild reads alone
POLL_INDEX = "store_id_1_timestamp_utc_1_status_1"
#: the fields of a poll the runs need: exactly the keys of the poll index
_POLL_FIELDS = {"_id": 0, "store_id": 1, "timestamp_utc": 1, "status": 1}


@functools.lru_cache(maxsize=1)
def full_rebuild_pipeline() -> list[dict]:
    """``status_runs.v1.json``'s full mode (``windows: null``, every store) as a **covered**
    scan of ``store_id_1_timestamp_utc_1_status_1``: stage 1 without its ``$expr`` (the mode
    switch and store range: any ``$expr`` makes the planner fetch every poll document), then a
    ``$project`` of the three indexed fields (the planner then reads the index keys alone,
    ``PROJECTION_COVERED``), and without the recompute-only ``$unionWith`` stages (empty in
    full mode). Same runs as the file with ``windows: null``; measured 11.5 s instead of
    18.5 s at scale 1 (sidecar, "Timings"). Takes the same ``let`` (``batch`` is used)."""
    main = load_runs_pipeline()
    first = {k: v for k, v in main[0]["$match"].items() if k != "$expr"}
    # the control-character rule on store_id (a `$not` regex) cannot be checked on index
    # keys in a covered plan: it moves to the pieces (stage 5's `s`, one per stretch)
    store_rule = dict(first["store_id"])
    no_control = store_rule.pop("$not")
    first["store_id"] = store_rule
    rest = [stage for stage in main[1:] if "$unionWith" not in stage]
    pieces = next(i for i, stage in enumerate(rest) if "$project" in stage) + 1
    return [{"$match": first}, {"$project": _POLL_FIELDS}, *rest[:pieces],
            {"$match": {"s": {"$not": no_control}}}, *rest[pieces:]]


def utc_ms(moment: datetime) -> datetime:
    """``moment`` as tz-aware UTC, truncated to ms (BSON Date precision); naive = UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _not_batch(batch: ObjectId) -> dict[str, Any]:
    """Runs written before ``batch`` (or by something else): ObjectIds order by creation time,
    so a recompute that started later (another process) keeps its runs."""
    return {"$or": [{"batch": {"$lt": batch}}, {"batch": {"$not": {"$type": "objectId"}}}]}


async def drain(cursor: Any) -> list[dict]:
    """Every document of an aggregation or find ``cursor`` as a list (the cursor closed)."""
    async with cursor:
        return await cursor.to_list()


async def rebuild_runs(
    db: AsyncDb, *, store_range: tuple[str | None, str | None] = (None, None)
) -> dict[str, Any]:
    """Rebuild ``status_runs`` from every valid poll in ``store_status``: one run of
    ``status_runs.v1.json`` with ``windows: null`` (issue 8 item 3, ``uptime-monitor runs rebuild``);
    for the whole collection as the covered scan of :func:`full_rebuild_pipeline`.

    ``store_range`` = ``(store_from, store_to)`` limits it to ``store_from <= store_id <
    store_to`` (``None`` = unbounded). Runs of the range that the rebuild did not write (stores
    without polls any more, runs that no longer exist) are deleted afterwards.

    After a compaction (issue 18: a stored retention horizon,
    ``uptime.platform.retention.stored_horizon``) the raw polls before each store's boundary
    are gone: the rebuild then keeps the runs before the boundary as they are and recomputes
    every store from its boundary on (:func:`_rebuild_after_compaction`), joined exactly to the
    kept run before it — the same runs as before the compaction.

    Returns ``{"runs": runs in the collection afterwards, "deleted": stale runs removed,
    "seconds": wall time (float), "batch": the batch id (str)}``.

    Raises:
        pymongo.errors.PyMongoError: the server failed the aggregation or the delete.
    """
    started = time.perf_counter()
    horizon = await stored_horizon(db)
    if horizon is not None:  # issue 18: polls before the horizon are gone; keep their runs
        return await _rebuild_after_compaction(db, horizon, store_range, started)
    batch = ObjectId()
    store_from, store_to = store_range
    let = {"windows": None, "store_from": store_from, "store_to": store_to, "since": None,
           "batch": batch}
    options: dict[str, Any] = {"comment": f"{PIPELINE_TAG}:rebuild", "allowDiskUse": True}
    if store_from is None and store_to is None:
        try:  # the poll index in store/time order, read alone (not e.g. status_1)
            await drain(await db[STATUS_COLLECTION].aggregate(
                full_rebuild_pipeline(), let=let, hint=POLL_INDEX, **options))
        except OperationFailure as exc:
            if exc.code != 2:  # BadValue: no such index (migrations not applied)
                raise
            await drain(await db[STATUS_COLLECTION].aggregate(
                full_rebuild_pipeline(), let=let, **options))
    else:
        await drain(await db[STATUS_COLLECTION].aggregate(load_runs_pipeline(), let=let,
                                                        **options))
    stale: dict[str, Any] = _not_batch(batch)
    if store_from is not None or store_to is not None:
        bounds: dict[str, Any] = {}
        if store_from is not None:
            bounds["$gte"] = store_from
        if store_to is not None:
            bounds["$lt"] = store_to
        stale = {"$and": [stale, {"store_id": bounds}]}
    deleted = (await db[RUNS_COLLECTION].delete_many(stale)).deleted_count
    runs = await db[RUNS_COLLECTION].count_documents({})
    return {"runs": runs, "deleted": deleted, "seconds": time.perf_counter() - started,
            "batch": str(batch)}


#: the latest instant a recompute window reaches (the last ms Python and the validator hold)
_FAR = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)


async def retention_boundaries(
    db: AsyncDb, horizon: datetime,
    store_range: tuple[str | None, str | None] = (None, None),
) -> dict[str, datetime]:
    """``{store_id: boundary}``: per store, the ``first_poll`` (UTC) of its last run starting
    at or before ``horizon`` (``pipelines/runs_horizon.v1.json``). Stores without such a run
    are absent. The compaction removes a store's polls before its boundary, no more.

    Raises:
        pymongo.errors.PyMongoError: a database error.
    """
    store_from, store_to = store_range
    cursor = await db[RUNS_COLLECTION].aggregate(
        pipelines.load("runs_horizon.v1"),
        let={"horizon": utc_ms(horizon), "store_from": store_from, "store_to": store_to},
        comment="runs_horizon@v1", allowDiskUse=True)
    return {d["store_id"]: utc_ms(d["boundary"]) for d in await drain(cursor)}


async def _rebuild_after_compaction(
    db: AsyncDb, horizon: datetime, store_range: tuple[str | None, str | None],
    started: float,
) -> dict[str, Any]:
    """:func:`rebuild_runs` once polls were compacted: every store with polls is recomputed
    from its boundary (:func:`retention_boundaries`; a store without one: its whole history)
    to the end of time by :func:`recompute_stores`. Its windows pipeline finds the kept run
    before the boundary (it ends before it, so it is not re-read but enters as a ready-made
    piece: the run straddling the horizon is joined exactly) and deletes the runs of the
    window the recompute did not write. Runs before the boundaries are never touched."""
    store_from, store_to = store_range
    boundaries = await retention_boundaries(db, horizon, store_range)
    stores = [s for s in await db["store_status"].distinct("store_id")
              if isinstance(s, str) and (store_from is None or s >= store_from)
              and (store_to is None or s < store_to)]
    changes = {s: (boundaries.get(s, _EPOCH_MIN), _FAR) for s in stores}
    result = await recompute_stores(db, changes)
    runs = await db[RUNS_COLLECTION].count_documents({})
    return {"runs": runs, "deleted": result["deleted"], "seconds": time.perf_counter() - started,
            "batch": None, "kept_before": utc_ms(horizon)}


async def recompute_stores(
    db: AsyncDb, changes: Mapping[str, tuple[datetime, datetime]]
) -> dict[str, Any]:
    """Recompute the runs of the given stores around changed poll instants (issue 8 item 3).

    ``changes`` maps ``store_id`` to ``(first, last)``: the earliest and latest poll instant
    (UTC; naive = UTC; truncated to ms) that was inserted, deleted or modified. Only polls
    between the stored run before ``first`` and the stored run after ``last`` are read again
    (that run before is re-read only when it reaches past ``first``), so the cost is in the
    changed stretch and its two neighbouring runs, not in the store's history. Late,
    out-of-order and duplicate polls are fine; running it again is harmless (idempotent).

    Returns ``{"stores": stores recomputed, "deleted": stale runs removed, "pipeline_runs":
    int, "seconds": float}``.

    Raises:
        ValueError: a change whose ``first`` is after its ``last``, or a store id that is
            not a string.
        pymongo.errors.PyMongoError: a server error.
    """
    started = time.perf_counter()
    items: list[dict[str, Any]] = []
    for store, (first, last) in sorted(changes.items()):
        if not isinstance(store, str):
            raise ValueError(f"recompute_stores: store id {store!r} is not a string")
        a, b = utc_ms(first), utc_ms(last)
        if a > b:
            raise ValueError(f"recompute_stores: store {store}: first {a} is after last {b}")
        items.append({"s": store, "a": a, "b": b})
    main = load_runs_pipeline() if items else []
    windows_pipeline = load_runs_pipeline(WINDOWS_FILE) if items else []
    # Chunks of disjoint stores are independent: PARALLEL of them run at once (the server
    # has cores to spare while one aggregation runs).
    size = min(STORES_PER_RUN, max(PARALLEL_MIN_STORES, -(-len(items) // PARALLEL)))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    gate = asyncio.Semaphore(PARALLEL)

    async def one(chunk: list[dict[str, Any]]) -> int:
        async with gate:
            return await _recompute_chunk(db, chunk, main, windows_pipeline)

    deleted = sum(await asyncio.gather(*(one(c) for c in chunks)))
    return {"stores": len(items), "deleted": deleted, "pipeline_runs": len(chunks),
            "seconds": time.perf_counter() - started}


async def _recompute_chunk(
    db: AsyncDb, chunk: Sequence[dict[str, Any]], main: list[dict], windows_pipeline: list[dict]
) -> int:
    """windows -> main pipeline ($merge) -> delete the window's runs it did not write."""
    batch = ObjectId()
    windows = await drain(
        await db[RUNS_COLLECTION].aggregate(
            windows_pipeline, let={"changes": list(chunk)}, comment=f"{PIPELINE_TAG}:windows"
        )
    )
    if not windows:
        return 0
    # Polls of windows starting at or after `since` are read by one index range scan over
    # their stores (one seek per store); older windows by one indexed lookup per store.
    newest = max(w["from"] for w in windows)
    near_from = [w["from"] for w in windows
                 if w["from"] > _EPOCH_MIN and newest - w["from"] <= NEAR]
    # a store without runs yet (from = year 1) is always read by lookup
    since = min(near_from) if near_from else datetime.max.replace(tzinfo=timezone.utc)
    near = [w["s"] for w in windows if w["from"] >= since]
    store_range = (min(near), max(near) + "\x00") if near else ("", "")
    # The pipeline's runs are drained and written here instead of by its final $merge: $merge
    # ships the whole `let` (the windows, ~1.5 MB per 5,000 stores) with every internal write
    # batch, measured 2.8 s instead of 0.6 s for 5,000 stores (see the sidecar).
    runs = await drain(
        await db[STATUS_COLLECTION].aggregate(
            main[:-1],
            let={"windows": windows, "store_from": store_range[0], "store_to": store_range[1],
                 "since": since, "batch": batch},
            comment=f"{PIPELINE_TAG}:recompute",
            allowDiskUse=True,
        )
    )
    if runs:
        await db[RUNS_COLLECTION].bulk_write(
            [ReplaceOne({"_id": r["_id"]}, r, upsert=True) for r in runs], ordered=False)
    # A window after the store's last run ("tail") holds at most that run; when it was
    # rewritten (same _id) nothing can be stale there.
    written = {(r["store_id"], r["first_poll"]) for r in runs}
    ops = [
        DeleteMany({"store_id": w["s"], "first_poll": {"$gte": w["lo"], "$lte": w["hi"]},
                    **_not_batch(batch)})
        for w in windows
        if not w.get("tail") or (w["lo"] > _EPOCH_MIN and (w["s"], w["lo"]) not in written)
    ]
    if not ops:
        return 0
    result = await db[RUNS_COLLECTION].bulk_write(ops, ordered=False)
    return result.deleted_count
