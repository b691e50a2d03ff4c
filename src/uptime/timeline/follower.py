"""Keep ``status_runs`` current from a change stream on ``store_status`` (issue 8, item 3).

Why this module is over 400 lines: one class, :class:`RunsFollower`, whose loop, fallbacks and
state are one job; its event folding lives in :mod:`uptime.timeline.events`, "is the timeline
current" in :mod:`uptime.timeline.freshness` (both re-exported by
:mod:`uptime.timeline.control`).

:class:`RunsFollower` watches ``store_status`` (inserts, updates, replaces, deletes), collects
events into batches (up to ``batch_max`` events or ``batch_wait_s`` after the first one), splits
each batch into inserted polls per store and ``{store_id: (first instant, last instant)}`` of
the other changes (:func:`split_events`) and calls :func:`uptime.timeline.fastpath.apply_polls`:
stores whose new polls all come after their latest run (the hourly case) are appended to
without a pipeline (one read + one bulk write for the batch), the rest are recomputed by
:func:`uptime.timeline.runs.recompute_stores` — one windows + one main pipeline run per 5,000
stores. Only AFTER that recompute is the batch's resume token stored in ``runs_follower``
(at-least-once delivery; the recompute is idempotent), so a restart resumes from it and
misses no write made while the follower was stopped.

Which instants an event touches:

* insert / replace / update: the new document (``fullDocument``, with ``updateLookup``), plus
  the old one: the pre-image (``fullDocumentBeforeChange``; the follower enables
  ``changeStreamPreAndPostImages`` on ``store_status`` when it may) or, without one, the
  importer's deterministic ``_id`` ``"<store_id>|<UTC ISO ms>|<a|i>"``;
* delete: the pre-image, else the ``_id`` as above.
* An update/replace/delete of a document with another kind of ``_id`` and no pre-image
  cannot be placed: the follower then **rebuilds the whole collection** (safe, about
  15-30 s at 2.8M polls) and logs why.

Fallbacks (logged at WARNING, shown by ``uptime-monitor runs status`` as mode ``fallback`` + reason):

* the stored token is no longer in the oplog (``ChangeStreamHistoryLost`` and friends), or
  there is no stored token (first start): a new stream is opened at the current cluster time
  FIRST, then the whole collection is rebuilt, then the stream's events are applied — nothing
  written in between is lost;
* a bulk load (a full batch more than ``backlog_rebuild_s`` = 30 s behind the server): a new
  stream, then one full rebuild, instead of hundreds of recomputes;
* a standalone server (``MONGODB_URI`` without a replica set: no change streams): the whole
  collection is rebuilt every ``standalone_interval_s`` seconds (``UPTIME_RUNS_REBUILD_INTERVAL``,
  default 60 s). Runs can then be up to that interval (plus a rebuild) old, and
  :func:`wait_current` answers False.

State document ``runs_follower {_id: "store_status", token, mode: "change_stream"|"fallback",
reason, applied_until: Timestamp (cluster time up to which every store_status write is in the
runs), applied_at: Date, last_event: {op, store_id, cluster_time, wall}, events, batches,
last_batch: {events, stores, seconds, at}, rebuilds, last_rebuild: {reason, seconds, at},
pending: events being applied now, heartbeat: Date, owner}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

import pymongo
from bson import Timestamp
from pymongo.errors import OperationFailure, PyMongoError

from uptime.platform.constants import FOLLOWER_YIELD_MAX_S, STATUS_COLLECTION
from uptime.platform.priority import yield_to_urgent
from uptime.platform.probes import is_replica_set, operation_time  # noqa: F401 - re-exported
from uptime.timeline.events import (  # noqa: F401 - re-exported: the follower's event folding
    EventBatch, _poll_of, changes_of, poll_from_id, split_events, token_time,
)
from uptime.platform.retention import stored_horizon
from uptime.timeline.fastpath import apply_polls
from uptime.timeline.runs import rebuild_runs

log = logging.getLogger(__name__)

#: a standalone server's follower writes its heartbeat this often between full rebuilds (s)
STANDALONE_BEAT_S = 1.0
#: after a batch, the follower waits at most this long (s) for its cancelled busy heartbeat
#: to end, then goes on without it (a write stuck across a failover must not stall it)
BEAT_END_WAIT_S = 1.0

STATE_COLLECTION = "runs_follower"
#: time limit of the stop record (:meth:`RunsFollower._say_stopped`), seconds
STOP_WRITE_S = 1.0
STATE_ID = STATUS_COLLECTION  # one state document, named after the followed collection
#: ChangeStreamHistoryLost, InvalidResumeToken, ChangeStreamFatalError, BSONObjectTooLarge of
#: a token, "resume point may no longer be in the oplog" (older servers)
LOST_TOKEN_CODES = {280, 286, 260, 10334, 136}
#: operations of a standalone server that has no change streams
NO_CHANGE_STREAMS_CODES = {40573}
_ACTIVE: dict[tuple[int, str], RunsFollower] = {}
#: the event fields the follower reads: a smaller event means fewer getMores (16 MB each) and
#: less decoding (an insert event shrinks from ~400 to ~250 bytes)
_EVENT_FIELDS = {
    "operationType": 1, "clusterTime": 1, "wallTime": 1, "documentKey": 1,
    **{f"{doc}.{field}": 1 for doc in ("fullDocument", "fullDocumentBeforeChange")
       for field in ("store_id", "timestamp_utc", "status")},
}


class RunsFollower:
    """Follows ``store_status`` and keeps ``status_runs`` current (see the module doc).

    Args:
        db: the ``AsyncDatabase`` holding ``store_status`` / ``status_runs``.
        batch_max: events per batch at most (default 100,000). A batch closes
            ``batch_wait_s`` after its first event, so live traffic makes small batches;
            only a backlog (events already waiting) fills big ones, and those fold several
            polls of a store into one write: the further behind, the cheaper per poll.
        batch_wait_s: seconds a batch stays open after its first event (default 0.05).
        standalone_interval_s: seconds between full rebuilds on a standalone server.
        idle_persist_s: how often an idle follower writes its progress (applied_until), s;
            0.2 s so a report in another process (``uptime-monitor report`` beside ``serve``)
            sees an idle follower current within its wait budget (0.2-2 s).
        backlog_rebuild_s: a full batch whose last event is more than this many seconds
            behind the server's cluster time (a bulk load, e.g. ``uptime-monitor import`` while
            following) is dropped: a new stream is opened and the collection rebuilt.
        catch_up_s: an event written more than this many seconds ago (server wall clock)
            means a backlog: the batch then keeps filling past ``batch_wait_s``.

    ``start()`` runs the follower as an asyncio task; ``stop()`` ends it (the token of the last
    applied batch is already stored). ``status()`` returns the in-memory state.
    """

    def __init__(
        self,
        db: Any,
        *,
        batch_max: int = 100_000,
        batch_wait_s: float = 0.05,
        standalone_interval_s: float = 60.0,
        idle_persist_s: float = 0.2,
        backlog_rebuild_s: float = 30.0,
        catch_up_s: float = 1.0,
    ) -> None:
        self.db = db
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.standalone_interval_s = standalone_interval_s
        self.idle_persist_s = idle_persist_s
        self.backlog_rebuild_s = backlog_rebuild_s
        self.catch_up_s = catch_up_s
        self.state: dict[str, Any] = {"_id": STATE_ID}
        self.applied_until: Timestamp | None = None
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._progress = asyncio.Condition()
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._key = (id(db.client), db.name)
        self._beat_gen = 0  # bumped when a batch's busy heartbeat must end

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """True while the follower's task runs (started, not stopped, not crashed)."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start following in the background (returns at once)."""
        if self._task is not None:
            return
        self._stopping.clear()
        _ACTIVE[self._key] = self
        self._task = asyncio.create_task(self._main(), name="runs-follower")

    async def stop(self) -> None:
        """Stop following and wait for the task to end."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - logged in _main
                pass
            self._task = None
            await self._say_stopped()
        if _ACTIVE.get(self._key) is self:
            del _ACTIVE[self._key]

    async def _say_stopped(self) -> None:
        """Remove the heartbeat this follower wrote (if the state document is still its own),
        so a reader asking whether the timeline is current (``wait_current``, a report's
        choice) learns at once that nobody follows, instead of waiting out a heartbeat that
        looks fresh for up to ``HEARTBEAT_STALE_S``. Best effort, at most 1 s: an unreachable
        server leaves the heartbeat to go stale as before."""
        try:
            with pymongo.timeout(STOP_WRITE_S):
                await self.db[STATE_COLLECTION].update_one(
                    {"_id": STATE_ID, "owner": self._owner},
                    {"$unset": {"heartbeat": ""}, "$set": {"stopped_at": datetime.now(UTC)}})
        except PyMongoError as exc:
            log.info("runs follower: could not record its stop (%s)", exc)

    async def run_forever(self) -> None:
        """Follow until cancelled (``uptime-monitor runs follow``)."""
        await self.start()
        assert self._task is not None
        await self._task

    # -- state ---------------------------------------------------------------------------------
    async def _save(self, **fields: Any) -> None:
        self.state.update(fields)
        self.state["heartbeat"] = datetime.now(UTC)
        self.state["owner"] = self._owner
        await self.db[STATE_COLLECTION].replace_one({"_id": STATE_ID}, self.state, upsert=True)

    async def _advance(self, until: Timestamp | None) -> None:
        if until is not None and (self.applied_until is None or until > self.applied_until):
            self.applied_until = until
        async with self._progress:
            self._progress.notify_all()

    async def wait_applied(self, target: Timestamp, timeout_s: float) -> bool:
        """Wait until this follower has applied every write up to cluster time ``target``."""
        deadline = time.monotonic() + timeout_s
        async with self._progress:
            while self.applied_until is None or self.applied_until < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._task is None or self._task.done():
                    return False
                try:
                    await asyncio.wait_for(self._progress.wait(), left)
                except TimeoutError:
                    return False
        return True

    # -- main loop -----------------------------------------------------------------------------
    async def _main(self) -> None:
        doc = await self.db[STATE_COLLECTION].find_one({"_id": STATE_ID}) or {}
        self.state = {k: v for k, v in doc.items() if k != "pending"} | {"_id": STATE_ID,
                                                                          "pending": 0}
        self.state.setdefault("events", 0)
        self.state.setdefault("batches", 0)
        self.state.setdefault("rebuilds", 0)
        self.state["started_at"] = datetime.now(UTC)
        while not self._stopping.is_set():
            try:
                if not await is_replica_set(self.db):
                    await self._standalone_loop()
                else:
                    await self._stream_loop()
            except asyncio.CancelledError:
                raise
            except PyMongoError as exc:  # connection trouble: retry after a pause
                log.warning("runs follower: %s; retrying in 1 s", exc)
                await asyncio.sleep(1.0)

    async def _rebuild(self, reason: str) -> None:
        log.warning("runs follower: full rebuild of status_runs (%s)", reason)
        await self._save(mode="fallback", reason=reason, pending=-1)
        result = await rebuild_runs(self.db)
        self.state["rebuilds"] = self.state.get("rebuilds", 0) + 1
        await self._save(last_rebuild={"reason": reason, "seconds": result["seconds"],
                                       "runs": result["runs"], "at": datetime.now(UTC)},
                         pending=0)
        log.warning("runs follower: rebuild done in %.1f s (%d runs)",
                    result["seconds"], result["runs"])

    async def _standalone_loop(self) -> None:
        reason = ("standalone server (no replica set): change streams unsupported; full "
                  f"rebuild every {self.standalone_interval_s:g} s")
        while not self._stopping.is_set():
            await self._rebuild(reason)
            # between rebuilds the heartbeat goes on (every STANDALONE_BEAT_S), so
            # `runs status` and /healthz see a live follower, not a stopped one
            deadline = time.monotonic() + self.standalone_interval_s
            while not self._stopping.is_set() and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self._stopping.wait(), min(
                        STANDALONE_BEAT_S, max(0.0, deadline - time.monotonic())))
                except TimeoutError:
                    with contextlib.suppress(PyMongoError):  # a missed beat is no failure
                        await self._save()

    async def _enable_pre_images(self) -> None:
        """Best effort: pre-images let deletes/updates of any ``_id`` be placed exactly."""
        try:
            names = await self.db.list_collection_names(filter={"name": STATUS_COLLECTION})
            if not names:
                await self.db.create_collection(STATUS_COLLECTION)
            await self.db.command({"collMod": STATUS_COLLECTION,
                                   "changeStreamPreAndPostImages": {"enabled": True}})
        except PyMongoError as exc:
            log.info("runs follower: cannot enable pre-images on store_status (%s); deletes "
                     "of non-importer _ids will trigger a full rebuild", exc)

    async def _open(self, **kwargs: Any) -> Any:
        return await self.db[STATUS_COLLECTION].watch(
            [{"$match": {"operationType": {"$in": ["insert", "update", "replace", "delete"]}}},
             {"$project": _EVENT_FIELDS}],
            full_document="updateLookup",
            full_document_before_change="whenAvailable",
            max_await_time_ms=max(1, int(self.batch_wait_s * 1000)),
            **kwargs,
        )

    async def _fresh_stream(self, reason: str) -> Any:
        """Open a stream at the current cluster time, then rebuild (nothing is lost between)."""
        now = await operation_time(self.db)
        stream = await self._open(start_at_operation_time=now)
        await self._rebuild(reason)
        await self._advance(now)
        return stream

    async def _stream_loop(self) -> None:
        await self._enable_pre_images()
        token = self.state.get("token")
        if token is None:
            stream = await self._fresh_stream("no stored resume token (first start)")
        else:
            try:
                stream = await self._open(resume_after=token)
                first = await stream.try_next()  # a lost token fails here at the latest
            except OperationFailure as exc:
                if exc.code not in LOST_TOKEN_CODES and "resume" not in str(exc).lower():
                    raise
                reason = f"resume token no longer in the oplog ({exc.code}: {exc.details and exc.details.get('codeName')})"
                stream = await self._fresh_stream(reason)
                first = None
            else:
                await self._save(mode="change_stream", reason="resumed from the stored token")
            if first is not None:
                one = EventBatch()
                one.add(first)
                one.token = stream.resume_token
                await self._apply(one)
        if self.state.get("mode") != "change_stream":
            await self._save(mode="change_stream",
                             reason=f"following (after: {self.state.get('reason')})")
        # The stream is read by a task of its own, one batch ahead: collecting the next batch
        # (getMores, decoding) overlaps applying this one (the server's writes).
        reader, batches = self._reader(stream)
        try:
            last_persist = 0.0
            while not self._stopping.is_set():
                events = await self._next_batch(reader, batches)
                behind = await self._backlog_s(events)
                if behind is not None:
                    await self._stop_reader(reader)
                    await stream.close()
                    stream = await self._fresh_stream(
                        f"{events.events:,}-event batches {behind} s behind the server (a bulk "
                        "load): one rebuild is cheaper than catching up")
                    await self._save(mode="change_stream",
                                     reason=f"following (after: {self.state.get('reason')})")
                    reader, batches = self._reader(stream)
                elif events.events:
                    # the alert path first: a new incident's detection and webhook do not
                    # queue behind this batch (derived state lags at most this long more)
                    await yield_to_urgent(FOLLOWER_YIELD_MAX_S)
                    await self._apply(events)
                    last_persist = time.monotonic()
                else:
                    await self._advance(token_time(events.token))
                    if time.monotonic() - last_persist >= self.idle_persist_s:
                        await self._save(token=events.token,
                                         applied_until=self.applied_until,
                                         applied_at=datetime.now(UTC))
                        last_persist = time.monotonic()
        finally:
            await self._stop_reader(reader)
            await stream.close()

    def _reader(self, stream: Any) -> tuple[asyncio.Task, asyncio.Queue]:
        """Start the task that collects batches from ``stream`` into a queue (one batch
        ahead); each batch carries the stream's resume token as of its last event (an empty
        batch: as of the idle getMore)."""
        batches: asyncio.Queue[EventBatch] = asyncio.Queue(maxsize=1)

        async def read() -> None:
            while True:
                events = await self._collect(stream)
                events.token = stream.resume_token
                await batches.put(events)

        return asyncio.create_task(read(), name="runs-follower-reader"), batches

    @staticmethod
    async def _next_batch(reader: asyncio.Task, batches: asyncio.Queue) -> EventBatch:
        """The next batch, or the reader's exception (a stream error)."""
        get = asyncio.ensure_future(batches.get())
        try:
            done, _ = await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not get.done():
                get.cancel()  # stopped, or the reader ended: no batch is coming
        if get in done:
            return get.result()
        reader.result()  # raises what ended the reader
        raise RuntimeError("runs follower: the stream reader ended")

    @staticmethod
    async def _stop_reader(reader: asyncio.Task) -> None:
        reader.cancel()
        try:
            await reader
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - ending it is the point
            pass

    async def _backlog_s(self, events: EventBatch) -> int | None:
        """Seconds the stream is behind when a full batch is more than ``backlog_rebuild_s``
        behind the server's cluster time, else None."""
        if events.events < self.batch_max or events.last is None:
            return None
        last = events.last.get("clusterTime")
        now = await operation_time(self.db)
        if not isinstance(last, Timestamp) or not isinstance(now, Timestamp):
            return None
        behind = now.time - last.time
        return behind if behind > self.backlog_rebuild_s else None

    async def _collect(self, stream: Any) -> EventBatch:
        events = EventBatch()
        deadline: float | None = None
        while events.events < self.batch_max:
            ev = await stream.try_next()
            if ev is None:
                break
            events.add(ev)
            if deadline is None:
                deadline = time.monotonic() + self.batch_wait_s
            elif time.monotonic() >= deadline and not self._behind(ev):
                break
        return events

    def _behind(self, ev: dict[str, Any]) -> bool:
        """True when ``ev`` was written more than ``catch_up_s`` ago (its ``wallTime``, the
        server's clock): the stream holds a backlog, so the batch keeps filling up to
        ``batch_max`` (or until the stream has nothing more) instead of closing after
        ``batch_wait_s`` — a bigger batch folds more polls of a store into one write."""
        wall = ev.get("wallTime")
        if not isinstance(wall, datetime):
            return False
        if wall.tzinfo is None:
            wall = wall.replace(tzinfo=UTC)
        return (datetime.now(UTC) - wall).total_seconds() > self.catch_up_s

    async def _beat_while_busy(self, pending: int) -> None:
        """Write the heartbeat (and the batch size as ``pending``) every ``idle_persist_s``
        while a batch is applied; ends when cancelled.

        A beat only lands on a state document whose heartbeat is older than the beat itself:
        a beat the follower stopped waiting for (see :meth:`_end_beat`) that reaches the server
        after the batch's own ``_save`` cannot put the old batch back as ``pending``; and the
        loop also ends at its next round once :meth:`_end_beat` has been called, should a
        driver call have swallowed the cancellation."""
        beat = self._beat_gen
        while True:
            await asyncio.sleep(self.idle_persist_s)
            if beat != self._beat_gen:
                return  # its batch is over: ends even if a cancellation was swallowed
            now = datetime.now(UTC)
            with contextlib.suppress(Exception):  # a missed beat is no failure of the batch
                await self.db[STATE_COLLECTION].update_one(
                    {"_id": STATE_ID, "heartbeat": {"$lt": now}},
                    {"$set": {"heartbeat": now, "pending": pending}})

    async def _end_beat(self, beating: asyncio.Task) -> None:
        """Stop the busy heartbeat of a batch: cancel it and wait at most
        :data:`BEAT_END_WAIT_S` for it to end.

        Never longer: the heartbeat is best effort, and an ``update_one`` in flight when the
        primary is killed can outlive its cancellation (seen with PyMongo's async client in the
        kill -9 live test: the task stayed "cancelling" for 80+ s while the set had a healthy
        new primary, and the follower waiting on it applied nothing more). A beat still running
        is left to end on its own (its error, if any, is retrieved and dropped); it cannot undo
        the batch's saved state nor go on beating (see :meth:`_beat_while_busy`)."""
        self._beat_gen += 1
        beating.cancel()
        done, _ = await asyncio.wait({beating}, timeout=BEAT_END_WAIT_S)
        if not done:
            log.warning("runs follower: the busy heartbeat did not end within %.1f s of its "
                        "cancellation; going on without it", BEAT_END_WAIT_S)
        beating.add_done_callback(_drop_result)

    async def _apply(self, events: EventBatch) -> None:
        started = time.perf_counter()
        applied: dict[str, Any] = {}
        self.state["pending"] = events.events
        # issue 18: deletes before the retention horizon (the compaction) change no run
        horizon = await stored_horizon(self.db) if events.others else None
        appends, changes, unknown = events.split(horizon)
        # issue 15 item 6: a batch can take longer than HEARTBEAT_STALE_S (36k events); the
        # heartbeat goes on meanwhile, so `runs status` never calls a busy follower stopped
        beating = asyncio.create_task(self._beat_while_busy(events.events))
        try:
            if unknown:
                await self._rebuild("a change to a poll with an unknown _id and no pre-image")
                await self._save(mode="change_stream",
                                 reason="following (after a full rebuild)")
            elif changes or appends:
                applied = await apply_polls(self.db, appends, changes)
        finally:
            await self._end_beat(beating)
        last = events.last or {}
        until = token_time(events.token) or last.get("clusterTime")
        seconds = time.perf_counter() - started
        self.state["events"] = self.state.get("events", 0) + events.events
        self.state["batches"] = self.state.get("batches", 0) + 1
        store = _poll_of(last.get("fullDocument")) or poll_from_id(
            (last.get("documentKey") or {}).get("_id"))
        await self._save(
            token=events.token,
            applied_until=until,
            applied_at=datetime.now(UTC),
            pending=0,
            last_event={"op": last.get("operationType"),
                        "store_id": store[0] if store else None,
                        "cluster_time": last.get("clusterTime"),
                        "wall": last.get("wallTime")},
            last_batch={"events": events.events, "stores": len(set(appends) | set(changes)),
                        "fast": applied.get("fast", 0),
                        "recomputed": applied.get("recomputed", 0), "seconds": seconds,
                        "at": datetime.now(UTC)},
        )
        await self._advance(until)
        log.debug("runs follower: %d events, %d stores (%d appended, %d recomputed) in %.3f s",
                 events.events, len(set(appends) | set(changes)), applied.get("fast", 0),
                 applied.get("recomputed", 0), seconds)


def _drop_result(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" at exit


def running_follower(db: Any) -> RunsFollower | None:
    """The :class:`RunsFollower` this process runs on ``db`` (same client, same database
    name), started and not yet stopped, or None. Its task may have ended (crashed): check
    ``timeline_freshness`` or the ``/healthz`` check for that."""
    return _ACTIVE.get((id(db.client), db.name))
