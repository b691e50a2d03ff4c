"""The runs follower (issue 8, item 3): a change stream on ``store_status`` keeps
``status_runs`` current; its resume token in ``runs_follower`` carries it across restarts; a
lost token falls back to a full rebuild. Real mongod (a single-node replica set)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from typer.testing import CliRunner

from support.timeline import at, poll, reference_runs, runs_of
from uptime.cli import app
from uptime.platform.constants import HEARTBEAT_STALE_S
from uptime.platform.db import make_client
from uptime.platform.migrations import ensure_current
from uptime.timeline import RunsFollower, wait_current
from uptime.timeline.follower import STANDALONE_BEAT_S, STATE_COLLECTION, STATE_ID
from uptime.timeline.events import changes_of, poll_from_id, split_events, token_time


def importer_id(store: str, ms: int, status: str) -> str:
    """The importer's poll _id: "<store>|<UTC ISO ms, naive>|<a|i>"."""
    return f"{store}|{at(ms).replace(tzinfo=None).isoformat(timespec='milliseconds')}|{status[0]}"


async def expected(db) -> list[dict]:
    return reference_runs(await db["store_status"].find({}, {"_id": 0}).to_list())


async def state(db) -> dict:
    return await db[STATE_COLLECTION].find_one({"_id": STATE_ID}) or {}


@pytest.fixture
async def fdb(db):
    await ensure_current(db, apply=True)
    return db


async def run_cli(args: list[str], settings, monkeypatch):
    """Invoke `uptime-monitor <args>` (CliRunner, in a thread) against this test's database;
    the test takes the ``fresh_settings`` fixture so the command reads this environment."""
    monkeypatch.setenv("MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("MONGODB_DATABASE", settings.mongodb_database)
    return await asyncio.to_thread(CliRunner().invoke, app, args)


async def started(db) -> RunsFollower:
    """A follower that has finished its start (first-start rebuild included) and stored a
    resume token."""
    follower = RunsFollower(db)
    await follower.start()
    for _ in range(500):
        s = await state(db)
        if s.get("mode") == "change_stream" and s.get("token") is not None:
            return follower
        await asyncio.sleep(0.02)
    await follower.stop()
    raise AssertionError(f"follower did not start: {await state(db)}")


async def test_inserts_through_the_change_stream_become_runs(fdb) -> None:
    """Polls inserted while the follower runs (including a late one and a conflicting one at
    one instant) are in status_runs once wait_current returns True, equal to the reference."""
    await fdb["store_status"].insert_many([poll("A", 0, "active"), poll("A", 100, "active")])
    follower = await started(fdb)
    try:
        assert (await state(fdb))["rebuilds"] == 1  # first start: no token -> rebuild
        await fdb["store_status"].insert_many([poll("A", 200, "inactive"), poll("B", 5, "active")])
        await fdb["store_status"].insert_one(poll("A", 50, "inactive"))  # late
        await fdb["store_status"].insert_one(poll("A", 100, "inactive"))  # conflict: inactive wins
        assert await wait_current(fdb, 10.0) is True
        runs = await runs_of(fdb)
        assert runs == await expected(fdb)
        assert [r["status"] for r in runs if r["store_id"] == "A"] == [
            "active", "inactive"]
        s = await state(fdb)
        assert s["events"] >= 4 and s["rebuilds"] == 1 and s["token"] is not None
    finally:
        await follower.stop()


async def test_restart_resumes_from_stored_token_without_missing_writes(fdb) -> None:
    """Writes made while the follower is stopped (insert, delete by importer _id, update of
    another system's document) are applied after a restart from the stored token, without a
    full rebuild."""
    await fdb["store_status"].insert_many([
        {"_id": importer_id("A", 0, "active"), **poll("A", 0, "active")},
        {"_id": importer_id("A", 10, "inactive"), **poll("A", 10, "inactive")},
        {"_id": "foreign-1", **poll("C", 0, "active")},
    ])
    follower = await started(fdb)
    await fdb["store_status"].insert_one(poll("A", 20, "active"))
    assert await wait_current(fdb, 10.0)
    await follower.stop()
    rebuilds = (await state(fdb))["rebuilds"]

    await fdb["store_status"].delete_one({"_id": importer_id("A", 10, "inactive")})
    await fdb["store_status"].insert_one(poll("B", 7, "inactive"))
    await fdb["store_status"].update_one({"_id": "foreign-1"},
                                         {"$set": {"timestamp_utc": at(30), "status": "inactive"}})
    follower = RunsFollower(fdb)
    await follower.start()
    try:
        assert await wait_current(fdb, 10.0)
        assert await runs_of(fdb) == await expected(fdb)
        assert [r["status"] for r in await runs_of(fdb, "A")] == ["active"]
        assert (await state(fdb))["rebuilds"] == rebuilds  # resumed, no rebuild
    finally:
        await follower.stop()


async def test_lost_token_falls_back_to_a_rebuild(fdb) -> None:
    """A stored token that is no longer in the oplog (here: its cluster time rewritten to
    2001) makes the follower rebuild status_runs, say so (mode/reason/last_rebuild), and keep
    following: writes from before and after are in the runs."""
    follower = await started(fdb)
    await fdb["store_status"].insert_one(poll("A", 0, "active"))
    assert await wait_current(fdb, 10.0)
    await follower.stop()
    token = (await state(fdb))["token"]
    old = dict(token)
    old["_data"] = "82" + "3B000000" + "00000001" + token["_data"][18:]
    await fdb[STATE_COLLECTION].update_one({"_id": STATE_ID}, {"$set": {"token": old}})
    rebuilds = (await state(fdb))["rebuilds"]
    await fdb["store_status"].insert_one(poll("A", 10, "inactive"))  # while stopped
    follower = await started_after_rebuild(fdb, rebuilds)
    try:
        s = await state(fdb)
        assert "no longer in the oplog" in s["last_rebuild"]["reason"]
        assert "no longer in the oplog" in s["reason"]
        await fdb["store_status"].insert_one(poll("A", 20, "active"))
        assert await wait_current(fdb, 10.0)
        assert await runs_of(fdb) == await expected(fdb)
        assert len(await runs_of(fdb)) == 3
    finally:
        await follower.stop()


async def started_after_rebuild(db, rebuilds: int) -> RunsFollower:
    follower = RunsFollower(db)
    await follower.start()
    for _ in range(500):
        s = await state(db)
        if s.get("rebuilds", 0) > rebuilds and s.get("mode") == "change_stream":
            return follower
        await asyncio.sleep(0.02)
    await follower.stop()
    raise AssertionError(f"no rebuild after a lost token: {await state(db)}")


async def test_delete_of_foreign_id_uses_the_pre_image(fdb) -> None:
    """A delete of a poll whose _id is not the importer's is placed through the pre-image the
    follower enables on store_status: its run disappears, and no full rebuild is needed."""
    follower = await started(fdb)
    try:
        rebuilds = (await state(fdb))["rebuilds"]
        oid = ObjectId()
        await fdb["store_status"].insert_many([{"_id": oid, **poll("F", 0, "inactive")},
                                               poll("F", 10, "active")])
        assert await wait_current(fdb, 10.0)
        assert len(await runs_of(fdb, "F")) == 2
        await fdb["store_status"].delete_one({"_id": oid})
        assert await wait_current(fdb, 10.0)
        assert await runs_of(fdb) == await expected(fdb)
        assert [r["status"] for r in await runs_of(fdb, "F")] == ["active"]
        assert (await state(fdb))["rebuilds"] == rebuilds
    finally:
        await follower.stop()


def test_changes_of_events() -> None:
    """Events become per-store (first, last) ranges: new documents, pre-images and importer
    _ids; a delete with neither a pre-image nor an importer _id is unknown (full rebuild)."""
    t1, t2 = at(5), at(9)
    events = [
        {"operationType": "insert", "fullDocument": poll("A", 9, "active")},
        {"operationType": "delete", "documentKey": {"_id": importer_id("A", 5, "inactive")}},
        {"operationType": "update", "fullDocument": None,
         "fullDocumentBeforeChange": poll("B", 5, "active"), "documentKey": {"_id": 1}},
        {"operationType": "insert", "fullDocument": {"store_id": 7, "timestamp_utc": t1}},
    ]
    assert changes_of(events) == ({"A": (t1, t2), "B": (t1, t1)}, False)
    assert changes_of([{"operationType": "delete", "documentKey": {"_id": ObjectId()}}])[1]
    assert poll_from_id("x|y|2023-01-22T00:00:00.005|i") == ("x|y", t1)
    assert poll_from_id("nope") is None
    assert token_time({"_data": "8263F0B2C5000000012B"}).time == 0x63F0B2C5
    assert token_time({"_data": "zz"}) is None


def test_split_events_sends_inserts_to_the_fast_path_candidates() -> None:
    """Inserted polls become per-store (timestamp, status) lists (fast-path candidates; a
    non-string status becomes None, i.e. no poll); inserts without a string store_id or a
    Date timestamp change no run and are dropped; updates and deletes become (first, last)
    ranges as in changes_of."""
    events = [
        {"operationType": "insert", "fullDocument": poll("A", 9, "active")},
        {"operationType": "insert", "fullDocument": poll("A", 7, "inactive")},
        {"operationType": "insert", "fullDocument": {"store_id": "C", "timestamp_utc": at(1),
                                                     "status": {"x": 1}}},
        {"operationType": "insert", "fullDocument": {"store_id": 7, "timestamp_utc": at(1)}},
        {"operationType": "delete", "documentKey": {"_id": importer_id("B", 5, "active")}},
    ]
    assert split_events(events) == (
        {"A": [(at(9), "active"), (at(7), "inactive")], "C": [(at(1), None)]},
        {"B": (at(5), at(5))}, False)


async def test_runs_status_command_reports_mode_lag_and_pending(
        fdb, settings, monkeypatch, fresh_settings) -> None:
    """`uptime-monitor runs status` prints whether the follower runs, its mode and reason, the lag,
    the last event applied and the pending writes."""
    follower = await started(fdb)
    try:
        await fdb["store_status"].insert_one(poll("Q", 0, "active"))
        assert await wait_current(fdb, 10.0)
        await asyncio.sleep(0.1)
    finally:
        await follower.stop()
    result = await run_cli(["runs", "status"], settings, monkeypatch)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "mode:          change_stream" in text
    assert "lag:" in text and "pending:       0 store_status writes" in text
    assert "last event:    insert store Q" in text
    assert "1 full rebuilds" in text
    assert datetime.now(UTC).year >= 2023


async def test_wait_current_without_a_running_follower_is_false_at_once(fdb, mongo_uri) -> None:
    """wait_current answers False without waiting out its timeout when no follower runs
    (no state, or a heartbeat older than HEARTBEAT_STALE_S = 10 s), and True once one has applied the writes —
    also from another client (another process: it reads runs_follower)."""
    import time

    from uptime.platform.db import make_client

    await fdb["store_status"].insert_one(poll("A", 0, "active"))
    started_at = time.monotonic()
    assert await wait_current(fdb, 30.0) is False
    assert time.monotonic() - started_at < 5
    follower = await started(fdb)
    other = make_client(mongo_uri)
    try:
        assert await wait_current(fdb, 10.0) is True
        await fdb["store_status"].insert_one(poll("A", 10, "inactive"))
        assert await wait_current(other[fdb.name], 10.0) is True
        assert [r["status"] for r in await runs_of(fdb)] == ["active", "inactive"]
    finally:
        await other.close()
        await follower.stop()


async def test_a_stopped_follower_is_known_stopped_at_once(fdb, mongo_uri) -> None:
    """Rule: a follower that stops removes its heartbeat (and records stopped_at), so another
    process asking wait_current right after learns at once that nobody follows instead of
    waiting out a heartbeat that still looks fresh (HEARTBEAT_STALE_S = 10 s)."""
    import time

    follower = await started(fdb)
    assert await wait_current(fdb, 10.0) is True
    assert (await state(fdb)).get("heartbeat") is not None
    await follower.stop()
    after = await state(fdb)
    assert "heartbeat" not in after and after["stopped_at"] is not None
    await fdb["store_status"].insert_one(poll("A", 0, "active"))
    other = make_client(mongo_uri)
    try:
        started_at = time.monotonic()
        assert await wait_current(other[fdb.name], 30.0) is False
        assert time.monotonic() - started_at < 5
    finally:
        await other.close()


async def test_a_backlog_of_full_batches_becomes_one_rebuild(fdb) -> None:
    """A full batch far behind the server (a bulk load written while the follower was
    stopped) is not applied event by event: the follower opens a new stream and rebuilds
    (reason names the backlog); the runs are right and it keeps following."""
    follower = await started(fdb)
    await follower.stop()
    rebuilds = (await state(fdb))["rebuilds"]
    await fdb["store_status"].insert_many([poll(f"s{i}", i, "active") for i in range(30)])
    follower = RunsFollower(fdb, batch_max=10, backlog_rebuild_s=-1)
    await follower.start()
    try:
        for _ in range(500):
            if (await state(fdb)).get("rebuilds", 0) > rebuilds:
                break
            await asyncio.sleep(0.02)
        s = await state(fdb)
        assert "behind the server" in s["last_rebuild"]["reason"], s
        assert await wait_current(fdb, 10.0)
        await fdb["store_status"].insert_one(poll("s1", 500, "inactive"))
        assert await wait_current(fdb, 10.0)
        assert await runs_of(fdb) == await expected(fdb)
    finally:
        await follower.stop()


async def test_standalone_server_falls_back_to_periodic_rebuilds(tmp_path) -> None:
    """On a standalone mongod (no replica set: no change streams) the follower rebuilds
    status_runs periodically, says so (mode fallback, reason "standalone"), picks up new polls
    at the next rebuild, and wait_current answers False (it cannot promise freshness)."""
    import subprocess

    from uptime.platform.db import make_client
    from uptime.platform.embedded import find_mongod, free_port

    port = free_port()
    (tmp_path / "db").mkdir()
    proc = subprocess.Popen(
        [str(find_mongod()), "--dbpath", str(tmp_path / "db"), "--bind_ip", "127.0.0.1",
         "--port", str(port), "--logpath", str(tmp_path / "mongod.log"), "--quiet"])
    client = make_client(f"mongodb://127.0.0.1:{port}/?directConnection=true")
    try:
        db = client["standalone_test"]
        for _ in range(300):
            try:
                await db.command("ping")
                break
            except Exception:  # noqa: BLE001 - still starting
                await asyncio.sleep(0.1)
        await ensure_current(db, apply=True)
        await db["store_status"].insert_one(poll("A", 0, "active"))
        follower = RunsFollower(db, standalone_interval_s=0.2)
        await follower.start()
        try:
            await db["store_status"].insert_one(poll("A", 10, "inactive"))
            for _ in range(300):
                if len(await runs_of(db)) == 2:
                    break
                await asyncio.sleep(0.05)
            assert await runs_of(db) == await expected(db)
            s = await state(db)
            assert s["mode"] == "fallback" and "standalone" in s["reason"]
            assert await wait_current(db, 1.0) is False
        finally:
            await follower.stop()
    finally:
        await client.close()
        proc.terminate()
        proc.wait(timeout=60)


async def test_runs_rebuild_command(fdb, settings, monkeypatch, fresh_settings) -> None:
    """`uptime-monitor runs rebuild` rebuilds status_runs and prints the number of runs."""
    await fdb["store_status"].insert_many([poll("R", 0, "active"), poll("R", 10, "inactive")])
    result = await run_cli(["runs", "rebuild"], settings, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "status_runs rebuilt: 2 runs, 0 stale runs removed" in result.output
    assert await runs_of(fdb) == await expected(fdb)


async def test_standalone_follower_keeps_its_heartbeat_between_rebuilds(standalone_uri, db_name):
    """Rule (issue 14 item 4, operators see the truth): on a standalone server the follower
    rebuilds every interval and writes its heartbeat every STANDALONE_BEAT_S (1 s) meanwhile,
    so `runs status` and /healthz never call a live follower stopped (a fresh-user trial saw
    "NOT running" 8 s after each 60 s rebuild)."""
    client = make_client(standalone_uri)
    db = client[db_name]
    follower = RunsFollower(db, standalone_interval_s=3600)
    try:
        await follower.start()
        await asyncio.sleep(3 * STANDALONE_BEAT_S + 0.5)  # well past the first rebuild
        state = await db[STATE_COLLECTION].find_one({"_id": STATE_ID})
        age = (datetime.now(UTC) - state["heartbeat"]).total_seconds()
        assert state["mode"] == "fallback"
        assert age <= 2 * STANDALONE_BEAT_S < HEARTBEAT_STALE_S, age
    finally:
        await follower.stop()
        await client.drop_database(db_name)
        await client.close()


async def test_a_heartbeat_that_outlives_its_cancellation_does_not_stall_the_follower(
        fdb, monkeypatch) -> None:
    """Rule (the kill -9 live test, round 5): the busy heartbeat is best effort, so the
    follower never waits on it for long. A beat whose database call ignores its cancellation
    (PyMongo's async ``update_one`` in flight across a kill -9 of the primary stayed
    "cancelling" for minutes) does not keep the follower from storing each batch and applying
    the next: every poll below is in the runs (wait_current True) while all the beats are
    still stuck."""
    release = asyncio.Event()
    stuck: list[asyncio.Task] = []

    async def stubborn_beat(self, pending: int) -> None:
        stuck.append(asyncio.current_task())
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # swallowed, as the stuck driver call did

    monkeypatch.setattr(RunsFollower, "_beat_while_busy", stubborn_beat)
    follower = await started(fdb)
    try:
        for k in range(3):  # three batches, one at a time: three stuck beats
            await fdb["store_status"].insert_one(poll("A", 100 * k, "active" if k else "inactive"))
            assert await wait_current(fdb, 30.0) is True  # budget, not speed: ~1 s each
        assert len(stuck) >= 3 and not any(t.done() for t in stuck)
        assert follower.alive
        assert [(r["status"], r["polls"]) for r in await runs_of(fdb, "A")] == [
            ("inactive", 1), ("active", 2)]
        assert await runs_of(fdb) == await expected(fdb)
    finally:
        release.set()
        await follower.stop()
        await asyncio.gather(*stuck, return_exceptions=True)


async def test_a_late_heartbeat_does_not_overwrite_the_saved_batch(fdb) -> None:
    """Rule: a busy heartbeat reaching the server after the batch's own save (whose
    heartbeat is newer) changes nothing, so a beat the follower stopped waiting for cannot
    put a finished batch back as ``pending``; a beat on an older state lands as before."""
    follower = RunsFollower(fdb, idle_persist_s=0.02)
    old = datetime.now(UTC) - timedelta(minutes=5)
    await fdb[STATE_COLLECTION].insert_one({"_id": STATE_ID, "heartbeat": old, "pending": 0})
    beating = asyncio.create_task(follower._beat_while_busy(36_000))
    try:
        for _ in range(500):  # the beat lands on the older state
            if (await state(fdb))["pending"] == 36_000:
                break
            await asyncio.sleep(0.02)
        assert (await state(fdb))["pending"] == 36_000
        saved = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)  # a later save
        await fdb[STATE_COLLECTION].replace_one(
            {"_id": STATE_ID}, {"_id": STATE_ID, "heartbeat": saved, "pending": 0})
        await asyncio.sleep(0.3)  # ~15 more beats
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
    after = await state(fdb)
    assert after["pending"] == 0 and after["heartbeat"] == saved


async def test_a_beat_outliving_its_batch_stops_at_its_next_round(fdb) -> None:
    """Rule: once its batch is over (``_end_beat`` bumps the beat generation before it
    cancels), a busy heartbeat ends at its next round by itself, so a beat whose cancellation
    a driver call swallowed does not go on writing the old batch as ``pending`` for ever. Here
    the beat is not cancelled at all and still ends."""
    follower = RunsFollower(fdb, idle_persist_s=0.02)
    old = datetime.now(UTC) - timedelta(minutes=5)
    await fdb[STATE_COLLECTION].insert_one({"_id": STATE_ID, "heartbeat": old, "pending": 0})
    beating = asyncio.create_task(follower._beat_while_busy(36_000))
    for _ in range(500):
        if (await state(fdb))["pending"] == 36_000:
            break
        await asyncio.sleep(0.02)
    assert (await state(fdb))["pending"] == 36_000 and not beating.done()
    follower._beat_gen += 1  # what _end_beat does first
    await asyncio.wait_for(beating, 30)  # budget, not speed: one round is 0.02 s
    assert beating.done() and not beating.cancelled()
