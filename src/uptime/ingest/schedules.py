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

**Current whoever writes the rows** (task H8; README: derived state never makes a report
wrong). The input collections are also written straight by other systems, so every reader of
``store_schedules`` (report v2's choice, period reports, incidents, the detector) first calls
:func:`ensure_schedules` (= :func:`schedules_current`), which proves the schedules match the
rows *now* or makes them match:

* replica set: the state document (collection ``store_schedules_state``, ``_id`` ``"sync"``:
  ``{token, mode, built_at, checked_at}``) holds a change-stream resume token taken *before*
  the schedules were last proven current. The check reads the stream of ``store_hours`` /
  ``store_timezones`` (and drops/renames of them, of ``store_schedules`` and of the database)
  from that token up to the cluster time at the start of the check, collects the stores the
  events touch (the new document and the pre-image: ``changeStreamPreAndPostImages`` is
  enabled on both collections when the state is first built, as the runs follower does for
  ``store_status``), refreshes just those (:func:`refresh_schedules`) and stores the token
  where it stopped. It rebuilds in full (:func:`rebuild_schedules`, new token taken first)
  when there is no token, the token fell off the oplog, an event lacks the image that names
  its store (collection without pre-images), a drop/rename, more than :data:`REFRESH_LIST_MAX`
  stores changed, or the stream is not read up to now within :data:`READ_S` seconds. Cost
  when nothing changed: a ``ping`` and one change-stream read of the oplog written since the
  previous check (measured in the task report).
* standalone server (no change streams): a fingerprint of the two collections (the
  ``dbHash`` command's per-collection md5 of every document: inserts, updates and deletes all
  change it) is compared with the one stored at the last rebuild; a difference rebuilds in
  full. Taken before the rebuild reads, so a write racing it only costs one more rebuild.
  A replica set that refuses the change stream (rights, ``$changeStream`` disabled) is
  checked the same way.
  ``dbHash`` holds a shared lock on each of the two collections while it hashes (writes to
  them wait; about 0.1-1.5 s at scale 1, 100k rows, depending on the machine's load).
* both: an empty ``store_schedules`` while rows exist rebuilds (first use, or dropped by hand).

Imports (:func:`schedules_after_import`) refresh only the stores whose rows the import
inserted or deleted (``uptime.ingest.replace``) plus the mentioned stores without a schedule
document; re-importing an unchanged file rewrites nothing. On a replica set this goes through
the stream (the import's own events name those stores), so the next report's check finds
nothing left; on a standalone server a changing import changes the fingerprint, so the next
reader rebuilds once.

Raises (every function here): ``pymongo.errors.PyMongoError`` for a database error; readers
that have an exact alternative take it then (report v2 -> v1, ``uptime.report.inputs_v2``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from uptime.platform import pipelines
from uptime.platform.constants import (
    HOURS_COLLECTION,
    PROOF_AWAIT_MS,
    SCHEDULES_COLLECTION,
    SCHEDULES_STATE_COLLECTION,
    SCHEDULES_VERSION_ID,
    TIMEZONES_COLLECTION,
    WINDOW_BUILDS_COLLECTION,
)
from uptime.platform.probes import operation_time, token_time

log = logging.getLogger(__name__)

SCHEDULES = SCHEDULES_COLLECTION
#: MongoDB's error code for a ``create`` of a collection that exists
NAMESPACE_EXISTS = 48
PIPELINE_FILE = "store_schedules.v1.json"
TAG = "store_schedules@v1"
#: store ids per `$in` list (the lookups and deletes of many schedule documents; keeps each
#: command far below 16 MB).
CHUNK = 20_000
#: Above this many stores a refresh rebuilds every schedule instead: the pipeline's ``$merge``
#: copies the ``let`` variables into each write, so a list of n ids costs O(n²) on the server
#: (measured on the public v1 files, 11,116 stores: 27.8 s of mongod CPU with the list, 4.3 s
#: for the full rebuild, 4.9 s with a 1,000-id list).
REFRESH_LIST_MAX = 1_000
#: the input collections a schedule is derived from
INPUTS = (HOURS_COLLECTION, TIMEZONES_COLLECTION)
STATE = SCHEDULES_STATE_COLLECTION
STATE_ID = "sync"
#: longest time (s) a check reads the change stream; past it the schedules are rebuilt
READ_S = 5.0


def load_schedules_pipeline() -> list[dict]:
    """The stages of ``pipelines/store_schedules.v1.json`` (Extended JSON)."""
    return pipelines.load(PIPELINE_FILE.removesuffix(".json"))


async def refresh_schedules(db: Any, stores: Iterable[str]) -> int:
    """Recompute the schedule documents of ``stores`` (store ids) from their current hours and
    timezone rows; return how many stores were asked for. More than :data:`REFRESH_LIST_MAX`
    stores: every schedule is rebuilt (:func:`rebuild_schedules`; same documents, cheaper). A
    store without rows gets an empty schedule (``hours: []``, ``zones: []``: 24x7,
    America/Chicago — the same as no document).

    Raises:
        pymongo.errors.PyMongoError: the server failed the pipeline.
    """
    ids = sorted({s for s in stores if isinstance(s, str)})
    if len(ids) > REFRESH_LIST_MAX:  # a full rebuild is cheaper than a long let list
        await rebuild_schedules(db)
    elif ids:  # at most REFRESH_LIST_MAX ids: one run, far below the command's 16 MB
        await _run(db, ids)
    return len(ids)


async def _run(db: Any, stores: list[str] | None) -> None:
    """One run of the pipeline: ``stores`` = the ids to recompute, ``None`` = every store with
    rows. Cost: one scan of store_hours and store_timezones (a sort-merge through ``$group``;
    a per-store ``$lookup`` costs ~1 ms a store, 15 s for 14k)."""
    await _ensure_collection(db)
    cursor = await db.aggregate(load_schedules_pipeline(), let={"stores": stores}, comment=TAG)
    await cursor.to_list()
    await bump_version(db)


async def _ensure_collection(db: Any) -> None:
    """Create ``store_schedules`` if it does not exist yet. Two ``$merge`` runs that both
    create it (a fresh database: the live detector's start and a request's check at once)
    can fail with "Cannot find index to verify that join fields will be unique" (code 51183);
    a ``create`` is atomic with its ``_id`` index, and one that finds the collection there
    already is fine."""
    try:
        await db.create_collection(SCHEDULES, check_exists=False)
    except OperationFailure as exc:
        if exc.code != NAMESPACE_EXISTS:
            raise


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


@dataclass
class SyncResult:
    """What :func:`schedules_current` did: ``how`` (one line, for logs and a report's
    ``pipeline_reason``), ``refreshed`` (stores recomputed), ``rebuilt`` (in full),
    ``stores`` (the ids recomputed from the change stream by this call; empty after a full
    rebuild, which does not tell which schedules changed — the live detector re-evaluates
    these stores)."""

    how: str
    refreshed: int = 0
    rebuilt: bool = False
    stores: frozenset[str] = frozenset()


async def ensure_schedules(db: Any) -> bool:
    """Make ``store_schedules`` match ``store_hours``/``store_timezones`` now (see the module
    doc; :func:`schedules_current`); return True if it rebuilt in full.

    Raises:
        pymongo.errors.PyMongoError: a database error.
    """
    return (await schedules_current(db)).rebuilt


async def schedules_current(db: Any) -> SyncResult:
    """Prove ``store_schedules`` matches the rows at the start of the call, refreshing the
    stores changed since the last proof or rebuilding in full (module doc). The one function
    every reader of the schedules calls first.

    Raises:
        pymongo.errors.PyMongoError: a database error (the schedules may then be stale: a
            reader with an exact alternative takes it).
    """
    now = await operation_time(db)
    state = await db[STATE].find_one({"_id": STATE_ID}) or {}
    if now is None:
        return await _standalone(db, state)
    token = state.get("token")
    if token is None:
        if state.get("fingerprint") is not None and not await _empty_with_rows(db):
            # the server refused change streams at the last rebuild: fingerprint instead
            if state["fingerprint"] == await _fingerprint(db):
                return SyncResult("schedules current (no change stream: input fingerprint "
                                  "unchanged)")
        return await _rebuild_replset(db, "no stored change-stream token")
    if await _empty_with_rows(db):
        return await _rebuild_replset(db, "store_schedules empty while rows exist")
    stores, reached, why = await _changed_stores(db, token, now)
    if why is not None:
        return await _rebuild_replset(db, why)
    if stores:
        await refresh_schedules(db, stores)
    if reached is not None and reached != token:
        await db[STATE].update_one(
            {"_id": STATE_ID, "token": token},
            {"$set": {"token": reached, "checked_at": datetime.now(UTC)}})
    return SyncResult(f"schedules current ({len(stores)} stores refreshed from the change "
                      "stream)", refreshed=len(stores), stores=frozenset(stores))


async def schedules_after_import(db: Any, changed: Iterable[str], mentioned: Iterable[str]) -> int:
    """After an hours/timezones import: refresh the stores whose rows it ``changed`` (inserted
    or deleted) and those it ``mentioned`` that have no schedule document; return how many
    stores were recomputed. On a replica set the changed ones come from the change stream
    (:func:`schedules_current`), which also catches other systems' writes.

    Raises:
        pymongo.errors.PyMongoError: a database error.
    """
    mentioned = sorted({s for s in mentioned if isinstance(s, str)})
    held: set[str] = set()
    for start in range(0, len(mentioned), CHUNK):
        part = mentioned[start:start + CHUNK]
        held.update([d["_id"] async for d in db[SCHEDULES].find({"_id": {"$in": part}}, {"_id": 1})])
    missing = [s for s in mentioned if s not in held]
    if await operation_time(db) is not None:
        done = await schedules_current(db)
        if done.rebuilt:
            return done.refreshed
        await refresh_schedules(db, missing)
        return done.refreshed + len(missing)
    todo = set(changed) | set(missing)
    return await refresh_schedules(db, todo) if todo else 0


async def _empty_with_rows(db: Any) -> bool:
    if await db[SCHEDULES].find_one({}, {"_id": 1}) is not None:
        return False
    for name in INPUTS:
        if await db[name].find_one({}, {"_id": 1}) is not None:
            return True
    return False


async def _fingerprint(db: Any) -> dict[str, str]:
    """``{collection: md5 of its documents}`` for the input collections (``dbHash``; absent
    collections are left out)."""
    res = await db.command("dbHash", collections=list(INPUTS))
    return dict(sorted((res.get("collections") or {}).items()))


async def _standalone(db: Any, state: dict[str, Any]) -> SyncResult:
    fingerprint = await _fingerprint(db)
    if state.get("fingerprint") == fingerprint and not await _empty_with_rows(db):
        return SyncResult("schedules current (standalone: input fingerprint unchanged)")
    written = await rebuild_schedules(db)
    await db[STATE].replace_one(
        {"_id": STATE_ID},
        {"mode": "fingerprint", "fingerprint": fingerprint, "built_at": datetime.now(UTC)},
        upsert=True)
    return SyncResult("schedules rebuilt (standalone: the input fingerprint changed)",
                      refreshed=written, rebuilt=True)


def _input_changes(db: Any, **kwargs: Any) -> Any:
    """A change stream (awaitable) of the writes to the input collections with the store ids
    of the new document and the pre-image, and of drops/renames of them, of
    ``store_schedules`` and of the database."""
    watched = [*INPUTS, SCHEDULES]
    return db.watch(
        [{"$match": {"$or": [{"ns.coll": {"$in": list(INPUTS)}},
                             {"ns.coll": SCHEDULES, "operationType": {"$in": ["drop", "rename"]}},
                             {"ns.coll": {"$exists": False}},
                             {"to.coll": {"$in": watched}}]}},
         {"$project": {"operationType": 1, "ns": 1, "fullDocument.store_id": 1,
                       "fullDocumentBeforeChange.store_id": 1}}],
        full_document="updateLookup", full_document_before_change="whenAvailable",
        max_await_time_ms=PROOF_AWAIT_MS, **kwargs)


def _stores_of(event: dict[str, Any]) -> tuple[set[str], str | None]:
    """``(stores, None)`` touched by one event, or ``(set(), why)`` if it cannot be placed."""
    op = event.get("operationType")
    if op not in ("insert", "update", "replace", "delete"):
        return set(), f"{op} event on {(event.get('ns') or {}).get('coll', 'the database')}"
    images = [event.get("fullDocument")]
    if op != "insert":
        before = event.get("fullDocumentBeforeChange")
        if before is None:
            return set(), f"a {op} without its pre-image (pre-images not enabled?)"
        images.append(before)
    return {d["store_id"] for d in images
            if isinstance(d, dict) and isinstance(d.get("store_id"), str)}, None


async def _changed_stores(db: Any, token: Any, now: Any) -> tuple[set[str], Any, str | None]:
    """Read the input's change stream from ``token`` up to cluster time ``now``:
    ``(stores touched, token reached, None)``, or ``(set(), None, why)`` when the schedules
    must be rebuilt instead."""
    stores: set[str] = set()
    deadline = time.monotonic() + READ_S
    try:
        async with await _input_changes(db, start_after=token) as stream:
            while True:
                event = await stream.try_next()
                if event is not None:
                    touched, why = _stores_of(event)
                    if why is not None:
                        return set(), None, why
                    stores |= touched
                    if len(stores) > REFRESH_LIST_MAX:
                        return set(), None, f"more than {REFRESH_LIST_MAX} stores changed"
                seen = token_time(stream.resume_token)
                if seen is not None and seen >= now:
                    return stores, stream.resume_token, None
                if time.monotonic() > deadline:
                    return set(), None, f"change stream not read up to now within {READ_S:g} s"
    except OperationFailure as exc:  # e.g. the token fell off the oplog
        return set(), None, f"change stream not resumable ({exc.code})"


async def _rebuild_replset(db: Any, why: str) -> SyncResult:
    """Rebuild in full; the new token is taken before the rebuild reads the rows."""
    log.info("store_schedules: full rebuild (%s)", why)
    await _enable_pre_images(db)
    token = None
    try:
        async with await _input_changes(db) as stream:
            await stream.try_next()  # an event would only be a write right now: no harm
            token = stream.resume_token
    except PyMongoError as exc:
        log.info("store_schedules: no change-stream token (%s): fingerprint instead", exc)
    fingerprint = None
    if token is None:
        try:
            fingerprint = await _fingerprint(db)
        except PyMongoError as exc:
            log.info("store_schedules: no fingerprint either (%s): the next check rebuilds", exc)
    written = await rebuild_schedules(db)
    await db[STATE].replace_one(
        {"_id": STATE_ID},
        {"mode": "change_stream" if token is not None else "fingerprint", "token": token,
         "fingerprint": fingerprint, "built_at": datetime.now(UTC), "why": why},
        upsert=True)
    return SyncResult(f"schedules rebuilt ({why})", refreshed=written, rebuilt=True)


async def _enable_pre_images(db: Any) -> None:
    """Best effort: pre-images name the store of a deleted or updated row (else such an event
    forces a rebuild)."""
    try:
        existing = set(await db.list_collection_names(filter={"name": {"$in": list(INPUTS)}}))
        for name in INPUTS:
            if name not in existing:
                await db.create_collection(name)
            await db.command({"collMod": name, "changeStreamPreAndPostImages": {"enabled": True}})
    except PyMongoError as exc:
        log.info("store_schedules: cannot enable pre-images (%s); deletes and updates "
                 "will rebuild the schedules", exc)
