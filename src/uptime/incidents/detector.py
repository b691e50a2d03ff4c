"""Live incident detection (issue 17 item 3): keep the ``incidents`` collection current as polls
arrive *and as time passes*, and announce ``incident.opened`` / ``incident.resolved`` /
``incident.reminder`` through the notification outbox (``uptime.notify.outbox``).

Why this module is over 400 lines: one job, the detector's tick (which stores to evaluate, the
pipeline, the guarded state changes and their outbox entries in one transaction), kept together
so the exactly-once rules read in one place.

**One definition.** Every evaluation runs the incident pipeline
(``pipelines/incidents.v1.json`` through :func:`uptime.incidents.query.find_incidents`) as of
*now* (the server clock, UTC), restricted through its ``let`` to the stores being evaluated
(``source: "stores"``, ``poll_stores``: each store's runs derived from its own polls through
one indexed ``$lookup``). So an incident here is exactly a row of ``GET /incidents`` as of
that instant, with ``UPTIME_INCIDENT_MIN_MINUTES``.

**Derived-state rule: derive from polls.** The detector never reads ``status_runs``
for its decisions, so a lagging, rebuilding or absent runs follower (or a standalone server)
neither delays nor falsifies an event, and the detector never makes anything else wait: it
is one background task with its own time limits; a failed tick is logged and retried at the
next one.

**Which stores each tick** (every ``UPTIME_DETECTOR_TICK_S``, default 1 s; a new poll wakes
it at once, and such a wake-up between full ticks evaluates only the stores with new polls;
polls that arrive *during* a tick are evaluated before the rest of it — between its chunks of
watched stores and of its re-watch — and the runs follower yields meanwhile,
``uptime.platform.priority``):
the stores with new polls since the last tick (evaluated first) (except an active poll of a store
that is not watched: nothing to open or end) — from a change stream on ``store_status``
filtered to inactive polls (replica set; the embedded server is one) and from :func:`poke` (called
by ``POST /polls`` of this process after the write is acknowledged: the only source on a
standalone server) — plus every **watched** store: its latest poll is inactive (an open
stretch's business downtime grows with the clock, so it can cross ``min_minutes`` between
polls) or it has an open incident. At start the watch list is seeded from the open
incidents of the collection and the stores whose latest poll is inactive — from the status
timeline when it is current (two index reads: ``Detector._seed_from_timeline``), else from
the polls (``pipelines/inactive_stores.v1.json``, one pass over the poll index: 14 s of server
CPU at scale 1, beside the service's first reports); from then on a store's
membership follows its own latest poll. A store whose latest poll lies in the future is
evaluated again when that poll's time comes.

**Business hours written straight** (issue 17: the definition is exact, the same
everywhere). The pipeline reads ``store_schedules``, derived from ``store_hours`` and
``store_timezones``, which other systems also write directly. A second task of the detector
(``incident-schedules``, :meth:`Detector.check_schedules`) makes the same check the reports
make first (``uptime.ingest.schedules.schedules_current``: on a replica set the input's change
stream since the stored token; on a standalone server a ``dbHash`` fingerprint) every
``UPTIME_DETECTOR_TICK_S`` on a replica set and every :data:`STANDALONE_SCHEDULES_S` on a
standalone server, in its own task so it never delays or fails a tick. The stores it
refreshes are evaluated at once and the next tick is a full one, so a store whose new hours
put its inactive stretch inside (outside) business hours gets its incident opened (resolved,
``vanished``) within about two ticks, announced once by the rules below. Limit: a store that
is not watched (latest poll active, no open incident) is re-evaluated only when this check
itself refreshed its schedule (not when an import or a report's check did it first); for it
new hours can only turn an already ended stretch into an incident after the fact.

**State** (collection ``incidents``, indexes: migration ``20261207030000-incidents.json``)::

    {_id: "<store_id>|<stretch start, epoch ms>", store_id, stretch_start, started_at,
     ended_at (null while open), business_downtime_minutes, open: bool,
     maintenance: bool (in a maintenance window when opened: recorded, not announced),
     announced: {opened: Date|null, resolved: Date|null, reminders: int,
                 last_reminder: Date|null},
     event_key: str, created_at, updated_at}

**Exactly one announcement per incident and kind.** Each state change is one conditional
update guarded by the state it changes (``announced.opened: null`` → set, ``open: true`` →
false, ``announced.reminders: n`` → n + 1; a new incident is an upsert on the stable
``_id``), and its outbox entries (``enqueue``: event ids ``<event_key>:opened`` /
``:resolved`` / ``:reminder-<n>``, deterministic) are written **in the same transaction** on
a replica set — one transaction per evaluated chunk of stores (:meth:`Detector._commit_batch`:
all its creates, guarded updates and outbox entries; aborted as a whole and replayed one
incident per transaction when a create meets a duplicate key or a guard no longer holds).
On a standalone server (no transactions) the idempotent ``enqueue`` is
written first, then the guarded update: a crash between the two re-enqueues the same event
id next time, which adds nothing. So a restart, a failover or a second detector never
announces an incident twice under a new id. ``event_key`` = ``inc_`` + the first 32 hex
digits of the SHA-256 of the ``_id`` (event ids may not contain ``|`` and are limited to 200
characters; store ids may be anything).

**Maintenance and mute.** A store inside a maintenance window
(``uptime.notify.maintenance.in_maintenance``) when its incident opens gets it recorded with
``maintenance: true`` and not announced; if the window ends while the incident is still open
it is announced then. A resolved incident is announced only if its opening was. Per-store
mute = a maintenance window on that store (``kind: once`` with a far end), per-channel mute =
``channels mute``.

Metrics: ``uptime_incidents_open`` (gauge), ``uptime_incident_detector_tick_seconds``,
``uptime_incident_detector_schedules_seconds`` (one schedules check).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
import weakref
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from uptime.incidents.query import find_incidents
from uptime.ingest.schedules import SyncResult, ensure_schedules, schedules_current
from uptime.notify import outbox
from uptime.notify.maintenance import in_maintenance
from uptime.platform import metrics, pipelines
from uptime.platform.priority import urgent
from uptime.platform.constants import RUNS_COLLECTION
from uptime.platform.probes import is_replica_set
from uptime.platform.settings import Settings
from uptime.platform.tasks import one_line, spawn
from uptime.report.pipeline import known_timezones
from uptime.timeline.freshness import timeline_freshness

log = logging.getLogger(__name__)

INCIDENTS = "incidents"
#: the stores whose latest poll is inactive, read once at start (``pipelines/inactive_stores.v1.json``)
SEED_PIPELINE = "inactive_stores.v1"
SEED_TAG = "inactive_stores@v1"
#: seconds the start-up seed waits for the change stream on store_status to open, and for the
#: status timeline to be current, before it reads the polls instead (``Detector._seed_from_timeline``)
SEED_WATCH_WAIT_S = 2.0
SEED_TIMELINE_WAIT_S = 2.0
#: stores evaluated by one pipeline run (its ``poll_stores`` list)
CHUNK = 200
#: an ended incident never seen open is recorded (and announced) only if it ended at most this
#: long before the detector started (a restart announces what ended while it was down)
CATCH_UP = timedelta(hours=1)
#: every watched store's latest poll is re-read this often (s), so a store that came back
#: through a poll this process did not see leaves the watch list
REWATCH_ALL_S = 10.0
#: seconds the accepted zone names are reused (a new zone is seen within a minute)
ZONES_TTL_S = 60.0
#: incidents changed concurrently (each its own transaction)
APPLY_CONCURRENCY = 16
#: concurrent reads of the latest poll of the stores whose polls changed
REWATCH_CONCURRENCY = 16
#: time limit (s) of each step of a tick (the seed, one chunk of stores, the re-watch): a
#: step past it fails, the tick is retried; what earlier chunks committed stays
STEP_TIMEOUT_S = 60.0
#: the business downtime stored in an open incident is refreshed when it grew this much (min)
REFRESH_MINUTES = 1.0
#: seconds between two checks that ``store_schedules`` is current on a **standalone** server
#: (no change stream: the check is a ``dbHash`` of ``store_hours``/``store_timezones``,
#: 0.1-1.5 s of server time holding a shared lock on them at 100k rows — too dear every
#: tick); on a replica set the check runs every ``UPTIME_DETECTOR_TICK_S``
STANDALONE_SCHEDULES_S = 60.0

_RUNNING: weakref.WeakSet[Detector] = weakref.WeakSet()
#: one state change of an incident (``Detector._plan``): ``("create", doc, events)``,
#: ``("change", doc, guard, update, events)`` or ``("refresh", filter, update)``
Step = tuple[Any, ...]


class _Stale(Exception):
    """A guard of a chunk's transaction no longer held: abort it, apply one by one."""


def poke(polls: Iterable[tuple[str, str | None]]) -> None:
    """Tell every detector of this process about new polls ``(store_id, status)`` (called by
    ``POST /polls`` after the write is acknowledged); they are evaluated at once (see
    :meth:`Detector.note` for which)."""
    pairs = [(s, st) for s, st in polls if isinstance(s, str)]
    if not pairs:
        return
    for detector in list(_RUNNING):
        detector.note(pairs)


def incident_id(store_id: str, stretch_start: datetime) -> str:
    """The stable id ``<store_id>|<stretch start, epoch ms>`` (UTC)."""
    ms = int(stretch_start.replace(tzinfo=stretch_start.tzinfo or UTC).timestamp() * 1000)
    return f"{store_id}|{ms}"


def event_key(incident: str) -> str:
    """``inc_`` + 32 hex digits of SHA-256(incident id): the prefix of its event ids."""
    return "inc_" + hashlib.sha256(incident.encode()).hexdigest()[:32]


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"], "store_id": doc["store_id"], "started_at": doc["started_at"],
        "ended_at": doc.get("ended_at"), "stretch_start": doc["stretch_start"],
        "business_downtime_minutes": doc["business_downtime_minutes"],
        "open": doc["open"], "maintenance": doc.get("maintenance", False),
    }


def _event(doc: dict[str, Any], kind: str, at: datetime, suffix: str | None = None
           ) -> dict[str, Any]:
    return {"id": f"{doc['event_key']}:{suffix or kind}", "type": f"incident.{kind}",
            "store_id": doc["store_id"], "incident": _public(doc), "occurred_at": at}


class Detector:
    """The live incident detector (module docstring). ``start()`` spawns its task
    (``incident-detector``), ``stop()`` ends it; ``tick(now)`` runs one evaluation (tests and
    the benchmark call it directly); ``note(store_ids)`` queues stores with new polls."""

    def __init__(self, db: Any, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.started = datetime.now(UTC)
        self.watch: set[str] = set()
        self.pending: set[str] = set()
        self.future: dict[str, datetime] = {}
        self._zone_cache: tuple[float, list[str]] | None = None
        self._resolved: set[str] = set()
        self._rewatched_at = time.monotonic()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._replset: bool | None = None
        self._seeded = False
        self._full_now = False  # the schedules changed: the next tick is a full one
        #: set once the change stream on store_status is open (the timeline seed needs it)
        self._watching = asyncio.Event()
        #: where the start-up seed came from: "timeline" (status_runs, current) or "polls"
        self.seed_source: str | None = None

    def note(self, polls: Iterable[tuple[str, str | None] | str]) -> None:
        """Queue stores with new polls, given as ``(store_id, status)`` (or a bare store id:
        status unknown). An **active** poll of a store that is not watched (its latest poll
        was active, no open incident) cannot open or end anything and is skipped; every
        other store is evaluated at the next tick, which starts now."""
        for item in polls:
            store, status = (item, None) if isinstance(item, str) else item
            if status == "active" and store not in self.watch:
                continue
            self.pending.add(store)
        if self.pending:
            self._wake.set()

    async def start(self) -> None:
        self._stop.clear()
        self._replset = await is_replica_set(self.db)
        self._tasks.append(spawn(self._loop(), "incident-detector"))
        self._tasks.append(spawn(self._keep_schedules(), "incident-schedules"))
        if self._replset:
            self._tasks.append(spawn(self._watch_polls(), "incident-watch"))
        _RUNNING.add(self)

    async def stop(self) -> None:
        _RUNNING.discard(self)
        self._stop.set()
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - logged by spawn
                pass
        self._tasks.clear()

    async def _watch_polls(self) -> None:
        """Queue the store of every inserted or replaced poll (change stream on
        ``store_status``), resuming after a transient error."""
        token = None
        while not self._stop.is_set():
            try:
                async with await self.db["store_status"].watch(
                    # inactive polls only: a watched store is evaluated every tick anyway,
                    # and an active poll of an unwatched one cannot open or end anything
                    [{"$match": {"operationType": {"$in": ["insert", "replace", "update"]},
                                 "fullDocument.status": "inactive"}},
                     {"$project": {"fullDocument.store_id": 1, "fullDocument.status": 1,
                                   "documentKey": 1}}],
                    full_document="updateLookup", resume_after=token,
                ) as stream:
                    self._watching.set()
                    async for change in stream:
                        token = stream.resume_token
                        full = change.get("fullDocument") or {}
                        store, status = full.get("store_id"), full.get("status")
                        if store is None:  # an _id "<store_id>|<time>|<a|i>"
                            key = str(change.get("documentKey", {}).get("_id", ""))
                            store = key.rsplit("|", 2)[0] if key.count("|") >= 2 else None
                        if isinstance(store, str):
                            self.note([(store, status if isinstance(status, str) else None)])
            except asyncio.CancelledError:
                raise
            except PyMongoError as exc:
                log.warning("incident detector change stream: %s", one_line(exc))
                token = None if "resume" in str(exc).lower() else token
                # a lost stream may have missed polls: evaluate the watched stores anyway
                await asyncio.sleep(1.0)

    async def _loop(self) -> None:
        """Tick until stopped: a full tick (new polls + every watched store) every
        ``UPTIME_DETECTOR_TICK_S``; in between, a wake-up by new polls evaluates only the
        stores with new polls, so under a burst a new incident does not wait behind the
        re-evaluation of every watched store (issue 17 item 6)."""
        last_full = float("-inf")
        while not self._stop.is_set():
            started = time.monotonic()
            full = self._full_now or started - last_full >= self.settings.detector_tick_s
            if full:
                self._full_now = False
            try:
                await self.tick(full=full)
                if full:
                    last_full = started
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a database outage: try next tick
                log.warning("incident detector: %s", one_line(exc))
            self._wake.clear()
            if self.pending or self._full_now:
                continue
            wait = last_full + self.settings.detector_tick_s - time.monotonic()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, wait))
            except TimeoutError:
                pass

    async def _keep_schedules(self) -> None:
        """Keep ``store_schedules`` current while the detector runs (its own task, so the
        check never delays a tick): :meth:`check_schedules` every ``UPTIME_DETECTOR_TICK_S``
        on a replica set, every :data:`STANDALONE_SCHEDULES_S` on a standalone server; a
        failed check is logged and tried again next time (the ticks go on with the schedules
        as they are). The first check waits for the start-up seed, which makes them current
        itself (two concurrent first checks would both rebuild in full)."""
        while not self._stop.is_set():
            try:
                if self._seeded:
                    with pymongo.timeout(STEP_TIMEOUT_S):
                        await self.check_schedules()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a database outage: try again later
                log.warning("incident detector: schedules check: %s", one_line(exc))
            every = (self.settings.detector_tick_s if self._replset
                     else STANDALONE_SCHEDULES_S)
            try:
                await asyncio.wait_for(self._stop.wait(), every)
            except TimeoutError:
                pass

    async def check_schedules(self) -> SyncResult:
        """One check that ``store_schedules`` matches ``store_hours``/``store_timezones``
        now — :func:`uptime.ingest.schedules.schedules_current`, the check the reports and
        the incident query make, so rows written straight into those collections by another
        system are seen here too — and the re-evaluation it calls for: the stores it
        refreshed from the change stream are evaluated at once (:meth:`note`; a store whose
        hours now include or exclude its inactive stretch gets its incident opened or
        resolved), and after any change (a full rebuild names no stores) the next tick is a
        full one (every watched store). Cost when nothing changed (replica set): a ``ping``,
        two ``find_one`` and one change-stream read of the oplog written since the previous
        check (metric ``uptime_incident_detector_schedules_seconds``).

        Raises:
            pymongo.errors.PyMongoError: a database error (nothing queued).
        """
        t0 = time.perf_counter()
        done = await schedules_current(self.db)
        metrics.DETECTOR_SCHEDULES.observe(time.perf_counter() - t0)
        if done.rebuilt or done.refreshed:
            log.info("incident detector: %s", done.how)
            self._full_now = True
            self.note(done.stores)  # wakes the loop (a rebuild names none: wake it anyway)
            self._wake.set()
        return done

    async def _seed(self) -> None:
        async for doc in self.db[INCIDENTS].find({"open": True}, {"store_id": 1}):
            self.watch.add(doc["store_id"])
        stores = await self._seed_from_timeline()
        if stores is not None:
            self.watch.update(stores)
            self.seed_source = "timeline"
        else:
            cursor = await self.db["store_status"].aggregate(
                pipelines.load(SEED_PIPELINE), let={"as_of": datetime.now(UTC)},
                comment=SEED_TAG, allowDiskUse=True)
            async with cursor:
                async for row in cursor:
                    self.watch.add(row["_id"])
            self.seed_source = "polls"
        await ensure_schedules(self.db)
        self._seeded = True

    async def _seed_from_timeline(self) -> set[str] | None:
        """The stores to watch from the status timeline, or None when it cannot be trusted
        (then the seed reads the polls: ``inactive_stores.v1``, one pass over the poll index,
        14 s of server CPU at scale 1 — measured 2026-12-07, while the service's first reports
        ran beside it).

        Only on a replica set, once this detector's change stream on ``store_status`` is open
        (within :data:`SEED_WATCH_WAIT_S`) and the timeline then holds every poll written
        before (``timeline_freshness``, at most :data:`SEED_TIMELINE_WAIT_S`): a poll written
        after that reaches the detector through the stream. Then a store's latest poll not
        after now is inactive exactly when its open run (``end2`` null) is inactive and began
        by now, or when it has a run beginning after now (a poll in the future: the store is
        watched and its own evaluation decides) — two index reads instead of the poll scan.
        Rule of the README on derived state: faster, never wrong, never a wait past those
        bounds."""
        if not self._replset:
            return None
        try:
            await asyncio.wait_for(self._watching.wait(), SEED_WATCH_WAIT_S)
        except TimeoutError:
            return None
        fresh = await timeline_freshness(self.db, SEED_TIMELINE_WAIT_S)
        if not fresh.current:
            log.info("incident detector: seed from the polls (%s)", fresh.reason)
            return None
        now = datetime.now(UTC)
        runs = self.db[RUNS_COLLECTION]
        stores = {d["store_id"] async for d in runs.find(
            {"end2": None, "status": "inactive", "first_poll": {"$lte": now}},
            {"_id": 0, "store_id": 1})}
        stores |= {d["store_id"] async for d in runs.find(
            {"first_poll": {"$gt": now}}, {"_id": 0, "store_id": 1})}
        return stores

    async def tick(self, now: datetime | None = None, *, full: bool = True) -> int:
        """One evaluation as of ``now`` (default the clock, UTC) of the stores with new polls
        and (``full``) the watched ones, the stores with new polls first; returns how many
        stores were evaluated.

        Raises:
            pymongo.errors.PyMongoError: the database failed (the stores stay queued).
        """
        t0 = time.perf_counter()
        if not self._seeded:
            with pymongo.timeout(STEP_TIMEOUT_S):
                await self._seed()
        clock = now is None  # a later chunk may take a later "now" (new polls meanwhile)
        now = _utc(now) or datetime.now(UTC)
        due = [s for s, at in self.future.items() if at <= now]
        for store in due:
            del self.future[store]
        changed, self.pending = self.pending | set(due), set()
        evaluated: set[str] = set()
        zones: list[str] = []

        async def evaluate(stores: list[str]) -> None:
            for i in range(0, len(stores), CHUNK):
                with pymongo.timeout(STEP_TIMEOUT_S):
                    await self._evaluate(stores[i:i + CHUNK], now, zones)
            evaluated.update(stores)

        async def new_polls_first() -> None:
            # stores with polls that arrived during this tick are evaluated before the rest
            # of it (the watched stores, the re-watch): a burst's new incident waits at most
            # one chunk, not a whole tick (issue 17 item 6)
            nonlocal now
            while self.pending:
                fresh, self.pending = self.pending, set()
                changed.update(fresh)
                if clock:
                    now = datetime.now(UTC)
                with urgent():
                    await evaluate(sorted(fresh))

        try:
            # new polls first: their chunks commit (and announce) before the re-evaluation
            # of the watched stores (time-driven changes; due at most once a tick)
            watched = sorted(self.watch - changed) if full else []
            if changed or watched:
                with pymongo.timeout(STEP_TIMEOUT_S):
                    zones = await self._zones()
                with urgent():  # new polls: the runs follower waits (platform.priority)
                    await evaluate(sorted(changed))
                for i in range(0, len(watched), CHUNK):
                    await new_polls_first()
                    await evaluate([s for s in watched[i:i + CHUNK] if s not in changed])
                await new_polls_first()
                again = changed | self._resolved
                if full and time.monotonic() - self._rewatched_at > REWATCH_ALL_S:
                    again |= self.watch  # stores whose active poll came from elsewhere
                    self._rewatched_at = time.monotonic()
                self._resolved = set()
                todo = sorted(again)
                while todo:
                    with pymongo.timeout(STEP_TIMEOUT_S):
                        await self._rewatch(todo[:CHUNK], now)
                    todo = todo[CHUNK:]
                    if self.pending:
                        await new_polls_first()
                        todo += sorted(changed - again)  # re-watched in this tick as well
                        again |= changed
            with pymongo.timeout(STEP_TIMEOUT_S):
                metrics.OPEN_INCIDENTS.set(
                    await self.db[INCIDENTS].count_documents({"open": True}))
        except BaseException:
            self.pending |= changed
            raise
        metrics.DETECTOR_TICK.observe(time.perf_counter() - t0)
        return len(evaluated)

    async def _zones(self) -> list[str]:
        """The accepted zone names (``known_timezones``: a distinct + one probe per zone),
        refreshed every ``ZONES_TTL_S``."""
        if self._zone_cache is None or time.monotonic() - self._zone_cache[0] > ZONES_TTL_S:
            self._zone_cache = (time.monotonic(), await known_timezones(self.db))
        return self._zone_cache[1]

    async def _rewatch(self, stores: list[str], now: datetime) -> None:
        """A store is watched while its latest valid poll not after ``now`` is inactive (one
        indexed read per store whose polls changed, ``REWATCH_CONCURRENCY`` at a time; at one
        instant inactive wins); a store with a poll after ``now`` is evaluated again then."""
        gate = asyncio.Semaphore(REWATCH_CONCURRENCY)
        valid = {"$in": ["active", "inactive"]}

        async def one(store: str) -> None:
            async with gate:
                last = await self.db["store_status"].find_one(
                    {"store_id": store, "status": valid}, {"status": 1, "timestamp_utc": 1},
                    sort=[("timestamp_utc", -1), ("status", -1)])
                if last is not None and _utc(last["timestamp_utc"]) > now:
                    nxt = await self.db["store_status"].find_one(
                        {"store_id": store, "timestamp_utc": {"$gt": now}, "status": valid},
                        {"timestamp_utc": 1}, sort=[("timestamp_utc", 1)])
                    self.future[store] = _utc(nxt["timestamp_utc"]) if nxt else now
                    last = await self.db["store_status"].find_one(
                        {"store_id": store, "timestamp_utc": {"$lte": now}, "status": valid},
                        {"status": 1}, sort=[("timestamp_utc", -1), ("status", -1)])
            if last is not None and last["status"] == "inactive":
                self.watch.add(store)
            else:
                self.watch.discard(store)

        await asyncio.gather(*(one(s) for s in stores))
        # stores with an open incident stay watched until it resolves
        async for doc in self.db[INCIDENTS].find(
                {"open": True, "store_id": {"$in": stores}}, {"store_id": 1}):
            self.watch.add(doc["store_id"])

    async def _evaluate(self, stores: list[str], now: datetime, zones: list[str]) -> None:
        async def stored() -> dict[str, dict[str, Any]]:
            return {d["_id"]: d async for d in self.db[INCIDENTS].find(
                {"store_id": {"$in": stores},
                 "$or": [{"open": True}, {"updated_at": {"$gte": now - CATCH_UP}}]})}

        # the three reads are independent: concurrently (one round trip's wait, not three);
        # the maintenance check covers every store of the chunk (those of the found and of
        # the stored open incidents among them)
        rows, known, quiet = await asyncio.gather(
            find_incidents(
                self.db, now, self.settings.incident_min_minutes, source="stores",
                poll_stores=stores, timezones=zones, prepare=False,
                started_from=min(self.started - CATCH_UP, now - CATCH_UP)),
            stored(), in_maintenance(self.db, stores, now))
        found: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row["ended_at"] is not None and row["ended_at"] < self.started - CATCH_UP:
                continue
            found[incident_id(row["store_id"], row["stretch_start"])] = row
        # (the changes one incident needs, the same done one incident at a time)
        work: list[tuple[list[Step], Any]] = []
        for _id, row in found.items():
            args = (_id, row, known.get(_id), now, row["store_id"] in quiet)
            work.append((self._plan(*args), functools.partial(self._apply, *args)))
        for _id, doc in known.items():
            if doc["open"] and _id not in found and doc["store_id"] in stores:
                # open, but no longer an incident as of now
                steps = self._vanish_plan(doc, now)
                work.append((steps, functools.partial(self._run, steps)))
        if not await self._commit_batch([step for steps, _ in work for step in steps]):
            gate = asyncio.Semaphore(APPLY_CONCURRENCY)  # distinct incidents: no conflicts

            async def bounded(one: Any) -> None:
                async with gate:
                    await one()

            await asyncio.gather(*(bounded(one) for _, one in work))
        if found or known:
            outbox.wake_all()

    def _plan(self, _id: str, row: dict[str, Any], doc: dict[str, Any] | None,
              now: datetime, quiet: bool) -> list[Step]:
        """The state changes (in order, no I/O) that the evaluated incident ``row`` needs
        given its stored state ``doc`` (``None``: not stored yet), each with the events it
        announces: ``("create", doc, events)``, ``("change", doc, guard, update, events)``
        (a guarded update), ``("refresh", filter, update)`` (the growing downtime; announces
        nothing)."""
        fields = {
            "store_id": row["store_id"], "stretch_start": row["stretch_start"],
            "started_at": row["started_at"], "ended_at": row["ended_at"],
            "business_downtime_minutes": row["business_downtime_minutes"],
            "open": row["ended_at"] is None,
        }
        steps: list[Step] = []
        if doc is None:
            # created open: an incident that also ended by now is resolved just below
            new = {"_id": _id, **fields, "open": True, "ended_at": None, "maintenance": quiet,
                   "event_key": event_key(_id),
                   "announced": {"opened": None, "resolved": None, "reminders": 0,
                                 "last_reminder": None},
                   "created_at": now, "updated_at": now}
            if not quiet:  # created and announced together: one insert + its outbox entries
                new["announced"]["opened"] = now
            steps.append(("create", new, [] if quiet else [_event(new, "opened", now)]))
            doc = new
        announced = doc["announced"]
        if announced["opened"] is None and not quiet:
            grown = {k: fields[k] for k in ("started_at", "business_downtime_minutes")}
            opened = {**doc, **grown}
            steps.append(("change", opened, {"_id": _id, "announced.opened": None},
                          {"$set": {**grown, "announced.opened": now, "updated_at": now}},
                          [_event(opened, "opened", now)]))
            announced = {**announced, "opened": now}
        if doc["open"] and not fields["open"]:
            self._resolved.add(doc["store_id"])
            doc = {**doc, **fields}
            events = [_event(doc, "resolved", now)] if announced["opened"] is not None else []
            steps.append(("change", doc, {"_id": _id, "open": True},
                          {"$set": {**fields, "announced.resolved": now if events else None,
                                    "updated_at": now}}, events))
            return steps
        every = self.settings.incident_reminder_minutes
        if fields["open"] and every > 0 and announced["opened"] is not None and not quiet:
            last = _utc(announced.get("last_reminder") or announced["opened"])
            if now - last >= timedelta(minutes=every):
                n = int(announced.get("reminders", 0))
                doc = {**doc, **fields}
                steps.append(("change", doc, {"_id": _id, "open": True,
                                              "announced.reminders": n},
                              {"$set": {**fields, "announced.reminders": n + 1,
                                        "announced.last_reminder": now, "updated_at": now}},
                              [_event(doc, "reminder", now, f"reminder-{n + 1}")]))
                return steps
        if abs(fields["business_downtime_minutes"]
               - doc.get("business_downtime_minutes", 0)) >= REFRESH_MINUTES:
            steps.append(("refresh", {"_id": _id, "open": True},
                          {"$set": {**fields, "updated_at": now}}))
        return steps

    def _vanish_plan(self, doc: dict[str, Any], now: datetime) -> list[Step]:
        """An open incident that the definition no longer yields (a late poll split or
        shortened its stretch below ``min_minutes``, polls removed): closed with
        ``vanished: true``; announced as resolved if its opening was."""
        self._resolved.add(doc["store_id"])
        events = ([_event({**doc, "open": False}, "resolved", now)]
                  if doc["announced"]["opened"] is not None else [])
        return [("change", doc, {"_id": doc["_id"], "open": True},
                 {"$set": {"open": False, "vanished": True, "updated_at": now,
                           "announced.resolved": now if events else None}}, events)]

    async def _apply(self, _id: str, row: dict[str, Any], doc: dict[str, Any] | None,
                     now: datetime, quiet: bool) -> None:
        """One incident's changes (:meth:`_plan`), each its own transaction: the path when
        a chunk's single transaction could not apply (another detector got there first) and
        on a standalone server. A create that meets a duplicate key (another detector
        created it) re-plans from the stored state."""
        steps = self._plan(_id, row, doc, now, quiet)
        if steps and steps[0][0] == "create":
            try:
                await self._create(steps[0][1], steps[0][2])
                steps = steps[1:]
            except DuplicateKeyError:  # another detector created it: its state decides
                stored = await self.db[INCIDENTS].find_one({"_id": _id})
                if stored is None:
                    return
                steps = self._plan(_id, row, stored, now, quiet)
        await self._run(steps)

    async def _run(self, steps: list[Step]) -> None:
        """Apply guarded changes and refreshes one by one (never a create)."""
        for step in steps:
            if step[0] == "change":
                await self._change(*step[1:])
            elif step[0] == "refresh":
                await self.db[INCIDENTS].update_one(step[1], step[2])

    async def _commit_batch(self, steps: list[Step]) -> bool:
        """Apply a chunk's changes in **one transaction** (replica set): its new incidents
        (``insert_many``), its guarded updates (one ordered ``bulk_write``) and every event
        they announce (``outbox.enqueue_many``); then the refreshes. All or nothing: if a
        create meets a duplicate key or a guard no longer holds (another detector changed
        that incident since it was read) the transaction is aborted and False returned — the
        caller then applies each incident on its own (:meth:`_apply`), where each change
        decides by its own guard. False at once on a standalone server (no transactions).
        Cost: one commit per chunk instead of one per incident (the burst's alert latency,
        issue 17 item 6)."""
        if not self._replset:
            return False
        creates = [step[1] for step in steps if step[0] == "create"]
        changes = [step for step in steps if step[0] == "change"]
        events = ([e for step in steps if step[0] == "create" for e in step[2]]
                  + [e for step in changes for e in step[4]])
        if creates or changes:
            async def body(session: Any) -> None:
                if creates:
                    await self.db[INCIDENTS].insert_many(creates, ordered=True, session=session)
                if changes:
                    res = await self.db[INCIDENTS].bulk_write(
                        [UpdateOne(step[2], step[3]) for step in changes], ordered=True,
                        session=session)
                    if res.matched_count != len(changes):
                        raise _Stale
                if events:
                    await outbox.enqueue_many(self.db, events, session=session)

            try:
                async with self.db.client.start_session() as session:
                    await session.with_transaction(body)
            except (_Stale, DuplicateKeyError, BulkWriteError):
                return False
        refresh = [UpdateOne(step[1], step[2]) for step in steps if step[0] == "refresh"]
        if refresh:
            await self.db[INCIDENTS].bulk_write(refresh, ordered=False)
        return True

    async def _create(self, doc: dict[str, Any], events: list[dict[str, Any]]) -> None:
        """Insert a new incident and enqueue ``events`` with it (one transaction on a replica
        set; standalone: enqueue first, idempotent). Raises DuplicateKeyError when another
        detector created it first (the transaction is then aborted: nothing enqueued)."""
        if self._replset:
            async def body(session: Any) -> None:
                await self.db[INCIDENTS].insert_one(doc, session=session)
                for event in events:
                    await outbox.enqueue(self.db, event, session=session)

            async with self.db.client.start_session() as session:
                await session.with_transaction(body)
            return
        for event in events:
            await outbox.enqueue(self.db, event)
        await self.db[INCIDENTS].insert_one(doc)

    async def _change(self, doc: dict[str, Any], guard: dict[str, Any],
                      update: dict[str, Any], events: list[dict[str, Any]]) -> bool:
        """Apply ``update`` where ``guard`` still holds and enqueue ``events`` with it: one
        transaction on a replica set; on a standalone server enqueue first (idempotent) then
        the guarded update. Returns whether the update applied."""
        if self._replset:
            applied = False

            async def body(session: Any) -> None:
                nonlocal applied
                res = await self.db[INCIDENTS].update_one(guard, update, session=session)
                applied = res.modified_count == 1
                if applied:
                    for event in events:
                        await outbox.enqueue(self.db, event, session=session)

            async with self.db.client.start_session() as session:
                await session.with_transaction(body)
            return applied
        for event in events:
            await outbox.enqueue(self.db, event)
        res = await self.db[INCIDENTS].update_one(guard, update)
        return res.modified_count == 1


async def start_detector(db: Any, settings: Settings) -> Detector | None:
    """Start a :class:`Detector` when ``settings.detect_incidents`` (``UPTIME_DETECT_INCIDENTS``),
    else ``None``."""
    if not settings.detect_incidents:
        return None
    detector = Detector(db, settings)
    await detector.start()
    return detector
