"""Live incident detection (issue 17 item 3, the "Done when" scenario, items 6-7 in part): the
detector of ``uptime-monitor serve`` against a real mongod (the embedded single-node replica
set) and a real local webhook receiver (pytest-httpserver)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook

from support.app import running_app
from support.pipeline import hours, poll, zone
from support.receiver import Receiver, serve
from uptime.incidents.detector import INCIDENTS, Detector, event_key
from uptime.incidents.query import find_incidents, iso_ms
from uptime.ingest.schedules import rebuild_schedules
from uptime.notify import channels as ch
from uptime.notify import outbox
from uptime.notify.maintenance import add_once
from uptime.platform.migrations import migrate_up

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def wait_for(predicate, timeout: float = 30.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(step)


def fast(settings, **extra):
    values = dict(notify_backoff_base_s=0.05, notify_backoff_cap_s=0.2,
                  notify_poll_interval_s=0.2, notify_timeout_s=2, notify_lease_s=5,
                  notify_allow_private=True, follow_runs=False, detector_tick_s=0.2)
    values.update(extra)
    return settings.model_copy(update=values)


def hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M:00")


def body(polls: list[dict]) -> list[dict]:
    return [{**p, "timestamp_utc": iso_ms(p["timestamp_utc"])} for p in polls]


async def test_done_when_scenario(db, settings, httpserver: HTTPServer):
    """Issue 17 "Done when": serve, a signed webhook to a local receiver; a 24x7 store active
    3 h ago and inactive 1 h ago (inactive for the last 2 h: from the midpoint) gets exactly one
    signed ``incident.opened``; a store with the same polls whose business hours (UTC, every
    day, 4-6 h after now) exclude those hours gets nothing; an active poll for the first ->
    ``incident.resolved`` with ``ended_at`` = midpoint of its last inactive and the new poll."""
    await migrate_up(db)
    now = datetime.now(UTC).replace(microsecond=0)
    closed = [hours("closed", d, hhmm(now + timedelta(hours=4)), hhmm(now + timedelta(hours=6)))
              for d in range(7)]
    await db["store_hours"].insert_many(closed)
    await db["store_timezones"].insert_many([zone("closed", "UTC"), zone("open24", "UTC")])
    await rebuild_schedules(db)
    receiver = Receiver()
    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver)
    async with running_app(fast(settings)) as http:
        made = await http.post("/channels", json={"name": "hook", "secret": SECRET,
                                                  "url": httpserver.url_for("/hook")})
        assert made.status_code == 201, made.text
        polls = [poll(s, now - timedelta(hours=3), "active") for s in ("open24", "closed")]
        polls += [poll(s, now - timedelta(hours=1), "inactive") for s in ("open24", "closed")]
        sent = await http.post("/polls", json=body(polls))
        assert sent.status_code == 200 and sent.json()["stored"] == 4
        await wait_for(lambda: receiver.requests)
        await asyncio.sleep(2.0)  # more ticks: no duplicate, nothing for "closed"
        assert len(receiver.requests) == 1
        _, _, headers, raw, _ = receiver.requests[0]
        event = Webhook(SECRET).verify(raw, headers)  # raises if unsigned or tampered
        assert event["type"] == "incident.opened" and event["store_id"] == "open24"
        assert headers["webhook-id"] == event["id"] == event_key(
            f"open24|{int((now - timedelta(hours=2)).timestamp() * 1000)}") + ":opened"
        assert event["incident"]["started_at"] == iso_ms(now - timedelta(hours=2))
        assert event["incident"]["ended_at"] is None
        assert event["incident"]["business_downtime_minutes"] >= 120.0

        back = now + timedelta(seconds=2)
        sent = await http.post("/polls", json=body([poll("open24", back, "active")]))
        assert sent.status_code == 200
        await wait_for(lambda: len(receiver.requests) >= 2, timeout=60)
        await asyncio.sleep(1.0)
        events = receiver.events()
        assert [e["type"] for e in events] == ["incident.opened", "incident.resolved"]
        Webhook(SECRET).verify(receiver.requests[1].body, receiver.requests[1].headers)
        ended = now - timedelta(hours=1) + (back - (now - timedelta(hours=1))) / 2
        assert events[1]["incident"]["ended_at"] == iso_ms(ended)
        assert events[1]["id"] == events[0]["id"].replace(":opened", ":resolved")
    states = await db[INCIDENTS].find({}).to_list(None)
    assert [(s["store_id"], s["open"]) for s in states] == [("open24", False)]


async def test_time_driven_crossing_is_announced_within_5_s(db, settings, httpserver):
    """Issue 17 items 3/6: an open stretch crossing ``min_minutes`` with no new poll is
    announced by the timer. Polls written before the service starts (found by the start-up
    seed, not by a change event): a 24x7 store active 20 s ago, inactive 4 s ago (stretch from
    the midpoint, 12 s ago) and min_minutes = 0.25 (15 s): it crosses 3 s from now; the webhook
    must arrive within 5 s of the crossing and not before it."""
    await migrate_up(db)
    receiver = Receiver()
    await ch.add_channel(db, "hook", serve(httpserver, receiver), SECRET, allow_private=True)
    now = datetime.now(UTC)
    crossing = time.monotonic() + 3.0
    await db["store_status"].insert_many([
        poll("t", now - timedelta(seconds=20), "active"),
        poll("t", now - timedelta(seconds=4), "inactive")])
    async with running_app(fast(settings, incident_min_minutes=0.25)):
        await wait_for(lambda: receiver.requests, timeout=20)
    received = receiver.requests[0].at
    assert received >= crossing - 0.5, "announced before the crossing"
    assert received - crossing <= 5.0, f"announced {received - crossing:.2f} s after crossing"
    assert receiver.events()[0]["type"] == "incident.opened"


async def test_two_detectors_announce_once(db, settings):
    """Issue 17 item 3/7: a second detector (another process, a restart) evaluating the same
    store finds the incident by its stable id and announces nothing again: one outbox entry
    per (event, channel), the incident stored once."""
    await migrate_up(db)
    await ch.add_channel(db, "hook", "https://hooks.example.com/x", SECRET)
    now = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
    await db["store_status"].insert_many([
        poll("s", now - timedelta(hours=3), "active"),
        poll("s", now - timedelta(hours=1), "inactive")])
    cfg = fast(settings)
    first, second = Detector(db, cfg), Detector(db, cfg)
    for det in (first, second):
        det.started = now
        det._replset = True
    first.note(["s"])
    second.note(["s"])
    await asyncio.gather(first.tick(now), second.tick(now))
    await first.tick(now + timedelta(minutes=1))
    await second.tick(now + timedelta(minutes=1))
    assert await db[INCIDENTS].count_documents({}) == 1
    ids = sorted(d["event_id"] for d in await db[outbox.OUTBOX].find({}).to_list(None))
    assert len(ids) == 1 and ids[0].endswith(":opened")
    await db["store_status"].insert_one(poll("s", now + timedelta(minutes=2), "active"))
    second.note(["s"])
    first.note(["s"])
    await second.tick(now + timedelta(minutes=3))
    await first.tick(now + timedelta(minutes=3))
    ids = sorted(d["event_id"] for d in await db[outbox.OUTBOX].find({}).to_list(None))
    assert [i.rsplit(":", 1)[1] for i in ids] == ["opened", "resolved"]
    doc = await db[INCIDENTS].find_one({})
    # recovery = midpoint of the inactive poll (11:00) and the active one (12:02) = 11:31
    assert doc["open"] is False and doc["ended_at"] == datetime(2024, 5, 6, 11, 31, tzinfo=UTC)


@pytest.mark.parametrize("every", [1.0])
async def test_reminders_and_maintenance(db, settings, every):
    """Issue 17 items 3-4: a store in a maintenance window when its incident opens: recorded
    with ``maintenance: true``, not announced; after the window it is announced, then a
    reminder every ``UPTIME_INCIDENT_REMINDER_MINUTES`` while open."""
    await migrate_up(db)
    await ch.add_channel(db, "hook", "https://hooks.example.com/x", SECRET)
    now = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
    await add_once(db, "deploy", now - timedelta(hours=4), now + timedelta(minutes=5),
                   stores=["m"])
    await db["store_status"].insert_many([
        poll("m", now - timedelta(hours=3), "active"),
        poll("m", now - timedelta(hours=1), "inactive")])
    det = Detector(db, fast(settings, incident_reminder_minutes=every))
    det.started = now
    det.note(["m"])
    await det.tick(now)
    doc = await db[INCIDENTS].find_one({})
    assert doc["maintenance"] is True and doc["announced"]["opened"] is None
    assert await db[outbox.OUTBOX].count_documents({}) == 0
    await det.tick(now + timedelta(minutes=6))  # the window is over
    await det.tick(now + timedelta(minutes=6, seconds=30))  # < 1 min: no reminder yet
    await det.tick(now + timedelta(minutes=7, seconds=1))
    kinds = sorted(d["event"]["type"] for d in await db[outbox.OUTBOX].find({}).to_list(None))
    assert kinds == ["incident.opened", "incident.reminder"]


async def test_source_stores_is_the_polls_source_restricted(db):
    """The detector's restriction (pipeline ``source: "stores"``) gives exactly the rows of the
    ``polls`` source for the listed stores and nothing for the others. Stores: ``a`` (24x7,
    inactive 10:00-11:00 by midpoints -> 60 min), ``b`` (same), ``c`` (not listed)."""
    await migrate_up(db)
    base = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
    rows = []
    for s in ("a", "b", "c"):
        rows += [poll(s, base, "active"), poll(s, base + timedelta(hours=1), "inactive"),
                 poll(s, base + timedelta(hours=2), "active")]
    await db["store_status"].insert_many(rows)
    as_of = base + timedelta(hours=3)
    listed = await find_incidents(db, as_of, 15, source="stores", poll_stores=["a", "b"])
    every = await find_incidents(db, as_of, 15, source="polls")
    assert [(r["store_id"], r["business_downtime_minutes"]) for r in listed] == [
        ("a", 60.0), ("b", 60.0)]
    assert listed == [r for r in every if r["store_id"] in ("a", "b")]


async def test_chunk_transaction_falls_back_when_another_detector_created_one(db, settings):
    """Issue 17 item 6: a chunk's transitions commit in one transaction; when it cannot (here:
    another detector already created and announced ``b``'s incident, so the chunk's insert
    meets a duplicate key) the whole transaction is aborted and each incident is applied on
    its own: ``a`` and ``c`` are created and announced, ``b`` is left as the other detector
    stored it — three incidents, exactly one ``incident.opened`` entry each."""
    await migrate_up(db)
    await ch.add_channel(db, "hook", "https://hooks.example.com/x", SECRET)
    now = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
    for s in ("a", "b", "c"):
        await db["store_status"].insert_many([
            poll(s, now - timedelta(hours=3), "active"),
            poll(s, now - timedelta(hours=1), "inactive")])
    cfg = fast(settings)
    other, det = Detector(db, cfg), Detector(db, cfg)
    for one in (other, det):
        one.started, one._replset, one._seeded = now, True, True
    other.note(["b"])
    await other.tick(now)
    first_b = await db[INCIDENTS].find_one({"store_id": "b"})
    assert first_b is not None and await db[INCIDENTS].count_documents({}) == 1
    det.note(["a", "b", "c"])
    assert await det.tick(now + timedelta(seconds=1)) == 3
    docs = {d["store_id"]: d async for d in db[INCIDENTS].find({})}
    assert sorted(docs) == ["a", "b", "c"]
    assert docs["b"]["announced"] == first_b["announced"]
    entries = [d["event_id"] async for d in db[outbox.OUTBOX].find({})]
    assert sorted(entries) == sorted(f"{docs[s]['event_key']}:opened" for s in "abc")


async def test_a_chunk_announces_all_its_incidents_in_one_tick(db, settings):
    """Issue 17 item 6: 250 stores going down (two chunks of the detector): one tick opens
    and announces every incident once (one ``incident.opened`` outbox entry per incident,
    ids from each incident's stable id); their recovery then resolves all of them in one
    tick, again once each."""
    await migrate_up(db)
    await ch.add_channel(db, "hook", "https://hooks.example.com/x", SECRET)
    now = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
    ids = [f"z{i:03d}" for i in range(250)]
    await db["store_status"].insert_many(
        [poll(s, now - timedelta(hours=3), "active") for s in ids]
        + [poll(s, now - timedelta(hours=1), "inactive") for s in ids])
    det = Detector(db, fast(settings))
    det.started, det._replset, det._seeded = now, True, True
    det.note(ids)
    assert await det.tick(now) == 250
    docs = [d async for d in db[INCIDENTS].find({})]
    assert len(docs) == 250 and all(d["open"] and d["announced"]["opened"] for d in docs)
    opened = sorted([d["event_id"] async for d in db[outbox.OUTBOX].find({})])
    assert opened == sorted(f"{event_key(d['_id'])}:opened" for d in docs)
    await db["store_status"].insert_many([poll(s, now + timedelta(minutes=1), "active")
                                          for s in ids])
    det.note([(s, "active") for s in ids])
    await det.tick(now + timedelta(minutes=2))
    assert await db[INCIDENTS].count_documents({"open": False}) == 250
    kinds = [d["event"]["type"] async for d in db[outbox.OUTBOX].find({})]
    assert kinds.count("incident.resolved") == 250 and kinds.count("incident.opened") == 250


async def test_polls_arriving_during_a_tick_are_evaluated_and_watched_in_it(db, settings):
    """Issue 17 item 6: a store whose new poll is noted while a tick is re-watching other
    stores is evaluated before the rest of that tick (its incident opened and announced in
    it) and is itself re-watched in it: watched afterwards, so its incident keeps being
    re-evaluated as time passes (the time-driven case) without a further poll."""
    await migrate_up(db)
    await ch.add_channel(db, "hook", "https://hooks.example.com/x", SECRET)
    now = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
    ids = [f"w{i:03d}" for i in range(200)]  # one full chunk to re-watch
    await db["store_status"].insert_many(
        [poll(s, now - timedelta(hours=3), "active") for s in ids + ["late"]]
        + [poll(s, now - timedelta(hours=1), "inactive") for s in ["late"]])
    det = Detector(db, fast(settings))
    det.started, det._replset, det._seeded = now, True, True
    rewatch = det._rewatch
    calls: list[list[str]] = []

    async def noting(stores, at):
        calls.append(list(stores))
        if len(calls) == 1:
            det.note([("late", "inactive")])  # arrives during the first re-watch chunk
        await rewatch(stores, at)

    det._rewatch = noting
    det.note([(s, None) for s in ids])
    assert await det.tick(now) == 201
    assert "late" in {s for chunk in calls[1:] for s in chunk}
    assert "late" in det.watch and not det.pending
    entries = [d["event_id"] async for d in db[outbox.OUTBOX].find({})]
    late = await db[INCIDENTS].find_one({"store_id": "late"})
    assert entries == [f"{late['event_key']}:opened"]


async def test_hours_written_straight_are_picked_up_without_a_restart(db, settings, httpserver):
    """Issue 17 "the definition is exact, the same everywhere": business hours written straight
    into ``store_hours`` (``insert_one``: another system, no import) while the detector runs
    reach it without a restart, through the reports' own check (``schedules_current``).

    * ``late``: active 3 h ago, inactive 1 h ago (inactive from the midpoint, 2 h ago, up to
      now); hours (UTC, every day) 4-6 h after now: no business overlap, no incident. Then one
      row is inserted: weekday of (now - 3 h), opening then for 24 h (start == end) -> the
      whole stretch (120 min) is business time -> exactly one ``incident.opened``, started at
      the stretch start (now - 2 h).
    * ``gone``: the same polls, no hours rows (24x7) -> its incident opens and is announced.
      Then one row is inserted: weekday of (now + 4 h), 4-6 h after now -> rows exist, so
      only those hours count; the stretch [now - 2 h, now] lies outside them -> no longer an
      incident -> exactly one ``incident.resolved`` (``vanished``).
    """
    await migrate_up(db)
    now = datetime.now(UTC).replace(microsecond=0)
    later = [hours("late", d, hhmm(now + timedelta(hours=4)), hhmm(now + timedelta(hours=6)))
             for d in range(7)]
    await db["store_hours"].insert_many(later)
    await db["store_timezones"].insert_many([zone("late", "UTC"), zone("gone", "UTC")])
    await rebuild_schedules(db)
    receiver = Receiver()
    await ch.add_channel(db, "hook", serve(httpserver, receiver), SECRET, allow_private=True)
    polls = [poll(s, now - timedelta(hours=3), "active") for s in ("late", "gone")]
    polls += [poll(s, now - timedelta(hours=1), "inactive") for s in ("late", "gone")]
    await db["store_status"].insert_many(polls)
    async with running_app(fast(settings)):
        await wait_for(lambda: receiver.requests)
        await asyncio.sleep(1.0)  # more ticks: nothing for "late"
        assert [(e["type"], e["store_id"]) for e in receiver.events()] == [
            ("incident.opened", "gone")]

        open_from = now - timedelta(hours=3)
        await db["store_hours"].insert_one(
            hours("late", open_from.weekday(), hhmm(open_from), hhmm(open_from)))
        away = now + timedelta(hours=4)
        await db["store_hours"].insert_one(
            hours("gone", away.weekday(), hhmm(away), hhmm(now + timedelta(hours=6))))
        await wait_for(lambda: len(receiver.requests) >= 3)
        await asyncio.sleep(2.0)  # more ticks and schedule checks: no duplicate
        events = receiver.events()
    assert sorted((e["type"], e["store_id"]) for e in events) == [
        ("incident.opened", "gone"), ("incident.opened", "late"), ("incident.resolved", "gone")]
    assert len({e["id"] for e in events}) == 3
    opened = next(e for e in events if e["store_id"] == "late")
    assert opened["incident"]["started_at"] == iso_ms(now - timedelta(hours=2))
    assert opened["incident"]["ended_at"] is None
    docs = {d["store_id"]: d async for d in db[INCIDENTS].find({})}
    assert docs["late"]["open"] is True
    assert docs["gone"]["open"] is False and docs["gone"].get("vanished") is True


async def test_seed_reads_a_current_timeline_else_the_polls(db, settings):
    """Issue 19 (measured: the poll-index seed took 14 s of server CPU at scale 1 beside the
    service's first reports): with a current status timeline and the detector's change stream
    open, the start-up seed reads the timeline — the stores whose open run is inactive and
    began by now ("a"), plus any store with a run beginning after now ("d": active now, an
    inactive poll in the future; its own evaluation decides) — and not "b" or "c" (latest
    poll active, after an inactive one). Without a running follower it reads the polls as before:
    exactly the stores whose latest poll not after now is inactive ("a")."""
    from uptime.timeline.follower import RunsFollower
    from uptime.timeline.freshness import wait_current

    await migrate_up(db)
    now = datetime.now(UTC)
    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    await db["store_status"].insert_many([
        poll("a", ago(30), "active"), poll("a", ago(10), "inactive"),
        poll("b", ago(30), "inactive"), poll("b", ago(10), "active"),
        poll("c", ago(30), "inactive"), poll("c", ago(10), "active"),
        poll("d", ago(30), "active"), poll("d", now + timedelta(hours=1), "inactive"),
    ])
    quiet = fast(settings, detector_tick_s=30.0)

    async def seeded() -> Detector:
        detector = Detector(db, quiet)
        await detector.start()
        try:
            await wait_for(lambda: detector._seeded)
        finally:
            await detector.stop()
        return detector

    follower = RunsFollower(db)
    await follower.start()
    try:
        assert await wait_current(db, 30.0)
        detector = await seeded()
    finally:
        await follower.stop()
    assert (detector.seed_source, detector.watch) == ("timeline", {"a", "d"})
    # no follower running: the timeline cannot be trusted, the polls are read
    detector = await seeded()
    assert (detector.seed_source, detector.watch) == ("polls", {"a"})
