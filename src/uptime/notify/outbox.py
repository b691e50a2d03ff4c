"""The notification outbox and its deliverer (issue 17, items 4 and 7).

Why this module is over 400 lines: one job, the outbox's life cycle — enqueue, the guarded
claims (one document or a batch), the workers, the guarded attempt records — kept together so
the at-least-once and "never held twice" rules read in one place (one attempt's HTTP and
Apprise work is in ``notify/delivery.py``).

**Events** (what the incident detector announces)::

    {id: str (stable: "<incident id>:opened"), type: "incident.opened" | "incident.resolved"
     | "incident.reminder" | "test", store_id: str | null, incident: {...}, occurred_at: Date}

**Outbox** (collection ``notification_outbox``), one document per (event, channel), written by
:func:`enqueue` — inside the caller's transaction when given its ``session``, so an incident
change and its notifications commit together (replica set; on a standalone server, call it
without a session)::

    {_id: "<event id>|<channel name>", event_id, event: {...}, channel: name,
     kind: "webhook" | "apprise", status, due_at: Date, created_at: Date (enqueue, UTC),
     attempt_count: int, claims: int, attempts: [{at, status_code, error, duration_ms}]
     (the last 50), owner: str | null, claim: str (the last batch claim's token),
     delivered_at, reason}

``status``: ``pending`` (``due_at`` = next attempt) → ``sending`` (claimed; ``due_at`` = the
lease's expiry) → ``delivered`` | ``failed`` (``reason``: ``permanent`` — a 4xx other than
408/429, a 3xx (redirects are not followed), a refused address — or ``expired`` — still
failing ``UPTIME_NOTIFY_MAX_AGE_S`` after enqueue) | ``skipped`` (``reason``: ``muted`` or
``channel_removed``). Enqueuing the same event twice adds nothing (the ``_id`` is
deterministic), so a retried transaction cannot double a notification.

**Deliverer** (:class:`Deliverer`, an asyncio task): claims due documents, ``concurrency`` at a
time, with one ``update_many`` whose filter is the claim's guard (``status`` pending and due, or
``sending`` with an expired lease) and that sets ``status: sending``, its ``owner`` token, a fresh
``claim`` token (to read back what it got) and the lease — each document's update atomic, so
:meth:`Deliverer.claim` (one document, ``find_one_and_update``) and a batch claim are the same
guarantee; so two processes never
hold one document at once, and a deliverer killed mid-delivery (``kill -9``) leaves a lease
that expires after ``UPTIME_NOTIFY_LEASE_S`` and is claimed again — the event is sent again
with the **same** ``webhook-id`` (the event id), so a receiver drops the duplicate. Every
attempt is recorded (time, HTTP status or error, duration in ms) by an update that only
applies while the lease is still ours. Retries: after the n-th failed attempt the next one is
due ``d/2 + uniform(0, d/2)`` seconds later with ``d = min(cap, base * 2**(n-1))``
(``UPTIME_NOTIFY_BACKOFF_BASE_S`` / ``_CAP_S``).

Delivery of one attempt (the webhook's JSON and headers, Apprise, what counts as a
permanent failure) is ``uptime.notify.delivery``.

Metrics (``uptime.platform.metrics``): ``uptime_notifications_sent_total``, ``_failed_total``,
``_retried_total`` and ``uptime_notification_delivery_seconds`` (enqueue → delivered).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import secrets
import weakref
from datetime import datetime, timedelta
from typing import Any

import httpx
from pymongo import ReturnDocument, UpdateOne

from uptime.platform import metrics
from uptime.platform.priority import urgent
from uptime.platform.settings import Settings
from uptime.platform.tasks import one_line, spawn
from uptime.notify.channels import CHANNELS, kind_of
from uptime.notify.delivery import send
from uptime.notify.delivery import utcnow as _utcnow

log = logging.getLogger(__name__)

OUTBOX = "notification_outbox"
EVENT_TYPES = frozenset({"incident.opened", "incident.resolved", "incident.reminder", "test"})
PENDING, SENDING, DELIVERED, FAILED, SKIPPED = (
    "pending", "sending", "delivered", "failed", "skipped"
)
STATUSES = (PENDING, SENDING, DELIVERED, FAILED, SKIPPED)
KEEP_ATTEMPTS = 50
#: keep-alive connections of one deliverer worker's pool (one per channel host it sends to)
WORKER_CONNECTIONS = 4
MAX_EVENT_ID_CHARS = 200


def _check_event(event: dict[str, Any]) -> None:
    if not isinstance(event, dict):
        raise ValueError("event must be a dict")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID_CHARS:
        raise ValueError(f"event id must be a non-empty string of at most "
                         f"{MAX_EVENT_ID_CHARS} characters, got {event_id!r}")
    if "|" in event_id:
        raise ValueError("event id must not contain '|'")
    if event.get("type") not in EVENT_TYPES:
        raise ValueError(f"event type must be one of {sorted(EVENT_TYPES)}, "
                         f"got {event.get('type')!r}")
    if not isinstance(event.get("occurred_at"), datetime):
        raise ValueError("event occurred_at must be a datetime (UTC)")


async def enqueue(db: Any, event: dict[str, Any], *, session: Any = None,
                  channels: list[str] | None = None) -> list[str]:
    """Write one outbox document per (event, channel) and return their ``_id``s.

    ``event``: ``{id, type, store_id, incident, occurred_at}`` (module docstring).
    ``session``: the caller's ``AsyncClientSession`` — every read and write here joins its
    transaction (so the incident change and these documents commit atomically). ``channels``:
    only these channel names (default: every channel). A muted channel's document is written
    as ``skipped`` (reason ``muted``). Idempotent: an event already enqueued for a channel is
    left as it is (upserts on the deterministic ``_id``, safe inside a transaction).

    Raises:
        ValueError: a malformed event (id, type, occurred_at).
    """
    return await enqueue_many(db, [event], session=session, channels=channels)


async def enqueue_many(db: Any, events: list[dict[str, Any]], *, session: Any = None,
                       channels: list[str] | None = None) -> list[str]:
    """:func:`enqueue` for several events at once: one read of the channels and one ordered
    ``bulk_write`` of upserts (the detector enqueues a chunk's events in one transaction).
    Same documents, same idempotence; returns every ``_id`` (event order, then channel).

    Raises:
        ValueError: a malformed event (nothing is written then).
    """
    for event in events:
        _check_event(event)
    if not events:
        return []
    query: dict[str, Any] = {} if channels is None else {"name": {"$in": list(channels)}}
    chans = await db[CHANNELS].find(query, session=session).to_list(None)
    now = _utcnow()
    ops = []
    ids = []
    for event in events:
        for chan in chans:
            _id = f"{event['id']}|{chan['name']}"
            ids.append(_id)
            muted = bool(chan.get("muted"))
            doc = {
                "_id": _id, "event_id": event["id"], "event": event, "channel": chan["name"],
                "kind": kind_of(chan["url"]), "status": SKIPPED if muted else PENDING,
                "reason": "muted" if muted else None, "due_at": None if muted else now,
                "created_at": now, "attempt_count": 0, "claims": 0, "attempts": [],
                "owner": None, "delivered_at": None,
            }
            ops.append(UpdateOne({"_id": _id}, {"$setOnInsert": doc}, upsert=True))
    if ops:
        await db[OUTBOX].bulk_write(ops, ordered=True, session=session)
    return ids


def backoff_s(attempts: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: ``d/2 + uniform(0, d/2)``
    with ``d = min(cap, base * 2**(attempts-1))`` (equal jitter)."""
    d = min(settings.notify_backoff_cap_s,
            settings.notify_backoff_base_s * 2 ** min(max(attempts - 1, 0), 60))
    return d / 2 + (rng or random).uniform(0, d / 2)


_RUNNING: weakref.WeakSet[Deliverer] = weakref.WeakSet()


def wake_all() -> None:
    """Wake every deliverer running in this process: call it after committing an
    :func:`enqueue` (e.g. the incident detector's transaction) so the notifications go out
    now rather than at the next poll (``UPTIME_NOTIFY_POLL_INTERVAL_S``)."""
    for deliverer in list(_RUNNING):
        deliverer.wake()


class Deliverer:
    """Sends due outbox documents until stopped (module docstring).

    ``start()`` spawns the loop (task ``notify-deliverer``); ``stop()`` ends it, letting the
    deliveries in progress finish (at most ``UPTIME_NOTIFY_TIMEOUT_S``); ``wake()`` makes it
    look for due documents now instead of after ``UPTIME_NOTIFY_POLL_INTERVAL_S``.
    ``run_once()`` claims and delivers everything due now and returns how many it handled
    (tests and one-shot commands use it directly). :func:`wake_all` wakes every deliverer
    started in this process.
    """

    def __init__(self, db: Any, settings: Settings, *, concurrency: int | None = None) -> None:
        self.db = db
        self.settings = settings
        self.owner = f"deliverer-{secrets.token_hex(6)}"
        # deliveries in flight (a bounded pool; UPTIME_NOTIFY_CONCURRENCY by default)
        self.concurrency = settings.notify_concurrency if concurrency is None else concurrency
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None  # deliver()'s (the first worker's)
        self._clients: list[httpx.AsyncClient] = []  # one per worker, once started

    @property
    def lease_s(self) -> float:
        return max(self.settings.notify_lease_s, self.settings.notify_timeout_s * 2)

    async def start(self) -> None:
        self._stop.clear()
        # one client (connection pool) per worker, sharing one TLS context: a worker sends
        # one request at a time, so its pool holds a few keep-alive connections (one per
        # channel host it sends to) and picking one costs nothing. One pool shared by all
        # workers checked every idle connection (a socket probe each) on every request:
        # half the CPU of a webhook POST with 32 workers (issue 17 item 6, py-spy).
        tls = httpx.create_ssl_context()
        self._clients = [
            httpx.AsyncClient(follow_redirects=False, verify=tls,
                              limits=httpx.Limits(max_connections=WORKER_CONNECTIONS,
                                                  max_keepalive_connections=WORKER_CONNECTIONS))
            for _ in range(max(1, self.concurrency))]
        self._client = self._clients[0]
        self._task = spawn(self._loop(), "notify-deliverer")
        _RUNNING.add(self)

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        _RUNNING.discard(self)
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, self.settings.notify_timeout_s + 5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            except Exception:  # noqa: BLE001 - already logged by spawn
                pass
            self._task = None
        for client in self._clients:
            await client.aclose()
        self._clients = []
        self._client = None

    async def _loop(self) -> None:
        while not self._stop.is_set():
            # cleared before the pass: a wake() during it (a commit it may have missed)
            # starts the next pass at once instead of waiting for the poll interval
            self._wake.clear()
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - a database outage: try again later
                log.warning("notification deliverer: %s", one_line(exc))
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.notify_poll_interval_s)
            except TimeoutError:
                pass

    async def claim(self, _id: str | None = None) -> dict[str, Any] | None:
        """Atomically take one due document (pending and due, or sending with an expired
        lease) for ``lease_s`` seconds — the earliest due, or the one with ``_id`` if it is
        still due; ``None`` if nothing (that one) is due."""
        now = _utcnow()
        query: dict[str, Any] = {"status": {"$in": [PENDING, SENDING]}, "due_at": {"$lte": now}}
        if _id is not None:
            query["_id"] = _id
        return await self.db[OUTBOX].find_one_and_update(
            query,
            {"$set": {"status": SENDING, "owner": self.owner,
                      "due_at": now + timedelta(seconds=self.lease_s)},
             "$inc": {"claims": 1}},
            sort=None if _id is not None else [("due_at", 1)],
            return_document=ReturnDocument.AFTER,
        )

    async def claim_many(self, ids: list[str]) -> tuple[list[dict[str, Any]],
                                                        dict[str, dict[str, Any] | None]]:
        """Atomically take those of ``ids`` that are still due (the same guard as
        :meth:`claim`, a lease longer by ``UPTIME_NOTIFY_TIMEOUT_S``: a document may wait
        for a free worker; one ``update_many`` marking them with a fresh claim token) and return
        them (one read by ``_id`` and token, in ``ids`` order) with their channels (one read;
        ``None``: the channel was removed). A document another deliverer took meanwhile is
        not returned. Three round trips for the batch instead of two per document."""
        if not ids:
            return [], {}
        now = _utcnow()
        token = secrets.token_hex(8)
        # the lease also covers the wait for a free worker (run_once: up to two deliveries)
        lease = self.lease_s + self.settings.notify_timeout_s
        # one causally consistent session: the read back sees the claim it follows (a
        # majority read right after a majority write, on any member)
        async with self.db.client.start_session(causal_consistency=True) as session:
            await self.db[OUTBOX].update_many(
                {"_id": {"$in": ids}, "status": {"$in": [PENDING, SENDING]},
                 "due_at": {"$lte": now}},
                {"$set": {"status": SENDING, "owner": self.owner, "claim": token,
                          "due_at": now + timedelta(seconds=lease)},
                 "$inc": {"claims": 1}}, session=session)
            got = {d["_id"]: d async for d in self.db[OUTBOX].find(
                {"_id": {"$in": ids}, "claim": token, "owner": self.owner,
                 "status": SENDING}, session=session)}
        docs = [got[i] for i in ids if i in got]
        names = sorted({d["channel"] for d in docs})
        channels: dict[str, dict[str, Any] | None] = dict.fromkeys(names)
        if names:
            async for chan in self.db[CHANNELS].find({"name": {"$in": names}}):
                channels[chan["name"]] = chan
        return docs, channels

    async def run_once(self) -> int:
        """Claim and deliver every document due now with ``concurrency`` workers; return the
        number handled. A claimer reads the ids of up to ``4 × concurrency`` due documents
        (earliest due first) and claims them ``concurrency`` at a time (:meth:`claim_many`:
        each claim still atomic and guarded by "still due", so a document another deliverer
        took meanwhile is skipped), the next group as soon as fewer than half a group is left
        for the workers to take — so claiming overlaps delivering — and reads more due ids
        when those are used up, until none is due. A claimed document waits at most two
        deliveries (``UPTIME_NOTIFY_TIMEOUT_S`` each) for a free worker; a batch claim's lease
        is ``lease_s`` + that timeout, so its attempt ends within it. Attempts are recorded
        in batches (:class:`_Recorder`, each update guarded by "still ours" as in
        :meth:`deliver`); it returns once they are all written.

        Raises:
            pymongo.errors.PyMongoError: the database failed (the first error of the claimer,
                a worker or the recorder; what was claimed is claimed again after its lease).
        """
        handled = 0
        ready: collections.deque[dict[str, Any]] = collections.deque()
        channels: dict[str, dict[str, Any] | None] = {}
        taken = asyncio.Event()  # the workers took every claimed document
        claimed = asyncio.Event()  # documents are ready, or the claimer is done
        done = False
        live = self.concurrency  # workers still running
        recorder = _Recorder(self.db[OUTBOX])

        async def claimer() -> None:
            nonlocal done
            try:
                with urgent():  # notifications due: the runs follower waits (priority)
                    await claim_all()
            finally:
                done = True
                claimed.set()

        async def claim_all() -> None:
            while not self._stop.is_set():
                queue = collections.deque([d["_id"] async for d in self.db[OUTBOX].find(
                    {"status": {"$in": [PENDING, SENDING]}, "due_at": {"$lte": _utcnow()}},
                    {"_id": 1}).sort("due_at", 1).limit(self.concurrency * 4)])
                if not queue:
                    return
                while queue and not self._stop.is_set():
                    # the next group once fewer than half a group is left to take: the
                    # workers do not run dry while it is claimed
                    while len(ready) > self.concurrency // 2 and live:
                        taken.clear()
                        await taken.wait()
                    if not live or self._stop.is_set():
                        return
                    take = [queue.popleft()
                            for _ in range(min(len(queue), self.concurrency))]
                    docs, chans = await self.claim_many(take)
                    channels.update(chans)
                    ready.extend(docs)
                    claimed.set()

        async def worker(client: httpx.AsyncClient | None) -> None:
            nonlocal handled, live
            try:
                while not self._stop.is_set():
                    if ready:
                        doc = ready.popleft()
                        if len(ready) <= self.concurrency // 2:
                            taken.set()
                        mine, record, _status, note = await self._attempt(
                            doc, channels.get(doc["channel"]), client)
                        recorder.add(mine, record, note)
                        handled += 1
                    elif done:
                        return
                    else:
                        claimed.clear()
                        await claimed.wait()
            finally:
                live -= 1
                taken.set()  # a claimer waiting for workers that are gone returns

        results = await asyncio.gather(
            claimer(), *(worker(self._clients[i] if i < len(self._clients) else None)
                         for i in range(self.concurrency)), return_exceptions=True)
        results.append(await recorder.close())
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return handled

    async def deliver(self, doc: dict[str, Any], *, channel: Any = ...) -> str:
        """Deliver one claimed document and record the attempt; return its new status.
        ``channel``: its channel document as read at the claim (``None``: removed); read
        now when not given."""
        mine, record, status, note = await self._attempt(doc, channel)
        result = await self.db[OUTBOX].update_one(mine, record)
        if result.matched_count == 0:  # our lease expired and another deliverer took it
            log.warning("notification %s: lease lost before recording the attempt", doc["_id"])
            return SENDING
        self._count(*note)
        return status

    async def _attempt(self, doc: dict[str, Any], channel: Any = ...,
                       client: httpx.AsyncClient | None = None
                       ) -> tuple[dict[str, Any], dict[str, Any], str, tuple[Any, ...]]:
        """Send one claimed document (or skip it: channel removed or muted) through
        ``client`` (default: the first worker's; none before ``start()``: one per request)
        and return what records it: ``(filter "still ours", update, new status, metrics
        note)`` — nothing is written here."""
        if channel is ...:
            channel = await self.db[CHANNELS].find_one({"name": doc["channel"]})
        mine = {"_id": doc["_id"], "owner": self.owner, "status": SENDING}
        if channel is None or channel.get("muted"):
            reason = "channel_removed" if channel is None else "muted"
            return (mine, {"$set": {"status": SKIPPED, "reason": reason, "due_at": None,
                                    "owner": None}}, SKIPPED, (SKIPPED, None, None, None, None))
        attempt = await send(channel, doc["event"], self.settings, client or self._client)
        kind = doc.get("kind") or kind_of(channel["url"])
        outcome = attempt.pop("outcome")
        record = {"$push": {"attempts": {"$each": [dict(attempt)], "$slice": -KEEP_ATTEMPTS}},
                  "$inc": {"attempt_count": 1}}
        now = _utcnow()
        if outcome == "delivered":
            status, fields = DELIVERED, {"delivered_at": now, "due_at": None, "reason": None}
        elif outcome == "permanent":
            status, fields = FAILED, {"due_at": None, "reason": "permanent"}
        else:
            created = doc["created_at"]
            age = (now - created).total_seconds()
            if age >= self.settings.notify_max_age_s:
                status, fields = FAILED, {"due_at": None, "reason": "expired"}
            else:
                delay = backoff_s(doc.get("attempt_count", 0) + 1, self.settings)
                status, fields = PENDING, {"due_at": now + timedelta(seconds=delay),
                                           "reason": None}
        record["$set"] = {"status": status, "owner": None, **fields}
        note = (status, kind, (now - doc["created_at"]).total_seconds(), fields.get("reason"),
                (doc["_id"], attempt.get("error")))
        return mine, record, status, note

    @staticmethod
    def _count(status: str, kind: str | None, age_s: float | None, reason: str | None,
               what: tuple[str, str | None] | None) -> None:
        """The metrics (and the failure's log line) of one recorded attempt."""
        if status == DELIVERED:
            metrics.NOTIFY_SENT.labels(kind).inc()
            metrics.NOTIFY_LATENCY.labels(kind).observe(age_s)
        elif status == FAILED:
            metrics.NOTIFY_FAILED.labels(kind, reason).inc()
            log.warning("notification %s failed (%s): %s", what[0], reason, what[1])
        elif status == PENDING:
            metrics.NOTIFY_RETRIED.labels(kind).inc()


class _Recorder:
    """Writes the attempts of a :meth:`Deliverer.run_once` round in batches: each
    ``add`` queues one guarded update (``Deliverer._attempt``); one writer task sends all
    that queued up meanwhile as a single unordered ``bulk_write`` (each update still guarded
    by "still ours", so a lost lease changes nothing), so a worker goes on to its next
    notification at once instead of waiting for its own write. ``close`` writes the rest
    and returns the first database error, if any."""

    def __init__(self, coll: Any) -> None:
        self.coll = coll
        self.queued: list[tuple[UpdateOne, tuple[Any, ...]]] = []
        self.more = asyncio.Event()
        self.closing = False
        self.task = asyncio.ensure_future(self._write())

    def add(self, mine: dict[str, Any], record: dict[str, Any], note: tuple[Any, ...]) -> None:
        self.queued.append((UpdateOne(mine, record), note))
        self.more.set()

    async def _write(self) -> None:
        while True:
            await self.more.wait()
            self.more.clear()
            batch, self.queued = self.queued, []
            if batch:
                result = await self.coll.bulk_write([op for op, _ in batch], ordered=False)
                lost = len(batch) - result.matched_count
                if lost:  # leases that expired and were taken by another deliverer
                    log.warning("notifications: %d attempt(s) not recorded, lease lost", lost)
                for _, note in batch:
                    Deliverer._count(*note)
            if self.closing and not self.queued:
                return

    async def close(self) -> BaseException | None:
        self.closing = True
        self.more.set()
        try:
            await self.task
        except Exception as exc:  # noqa: BLE001 - handed to run_once, which raises it
            return exc
        return None


async def list_deliveries(db: Any, *, channel: str | None = None, status: str | None = None,
                          event_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Recent outbox documents, newest first: ``{id, event_id, type, channel, status, reason,
    attempt_count, created_at, delivered_at, due_at, last_attempt}`` (no event body, no URL).

    Raises:
        ValueError: an unknown ``status``.
    """
    query: dict[str, Any] = {}
    if channel is not None:
        query["channel"] = channel
    if status is not None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {list(STATUSES)}")
        query["status"] = status
    if event_id is not None:
        query["event_id"] = event_id
    docs = await db[OUTBOX].find(
        query, {"event.incident": 0, "attempts": {"$slice": -1}}
    ).sort("created_at", -1).limit(limit).to_list(None)
    return [
        {
            "id": d["_id"], "event_id": d["event_id"], "type": d["event"].get("type"),
            "channel": d["channel"], "status": d["status"], "reason": d.get("reason"),
            "attempt_count": d.get("attempt_count", 0), "created_at": d.get("created_at"),
            "delivered_at": d.get("delivered_at"), "due_at": d.get("due_at"),
            "last_attempt": (d.get("attempts") or [None])[-1],
        }
        for d in docs
    ]
