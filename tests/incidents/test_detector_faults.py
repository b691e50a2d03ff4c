"""Faults of the live incident detector (issue 17 item 7): a detector process killed with
``kill -9`` in the middle of announcing, then another detector taking over — against a real
mongod (the embedded single-node replica set: transactions)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pymongo.errors import PyMongoError

from support.pipeline import poll
from uptime.incidents.detector import INCIDENTS, Detector, event_key
from uptime.notify import channels as ch
from uptime.notify import outbox
from uptime.platform.migrations import migrate_up

CHILD = Path(__file__).resolve().parents[1] / "support" / "detector_child.py"
STORES = 240


async def test_detector_killed_mid_way_loses_nothing_and_announces_once(
        db, settings, mongo_uri):
    """Rule: each incident change commits with its outbox entries (one transaction), under a
    stable id. A detector process opening 240 incidents is killed with SIGKILL once some
    (not all) are stored; a second detector then finishes: every incident exists once, and
    each has exactly one ``incident.opened`` outbox entry with the id derived from its own
    stable id (``event_key``) — no incident without its notification, none announced twice
    or under a new id. The killed process's open transactions hold their documents until the
    server aborts them: the server's ``transactionLifetimeLimitSeconds`` is lowered to 5 s for
    this test (60 s by default) so the successor waits seconds, not a minute."""
    admin = db.client.admin
    before = (await admin.command({"getParameter": 1, "transactionLifetimeLimitSeconds": 1}))[
        "transactionLifetimeLimitSeconds"]
    await admin.command({"setParameter": 1, "transactionLifetimeLimitSeconds": 5})
    try:
        await _kill_and_take_over(db, settings, mongo_uri)
    finally:
        await admin.command({"setParameter": 1, "transactionLifetimeLimitSeconds": before})


async def _kill_and_take_over(db, settings, mongo_uri) -> None:
    await migrate_up(db)
    await ch.add_channel(db, "hook", "https://hooks.example.com/x")
    as_of = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
    ids = [f"k{i:05d}" for i in range(STORES)]
    await db["store_status"].insert_many(
        [poll(s, as_of - timedelta(hours=3), "active") for s in ids]
        + [poll(s, as_of - timedelta(hours=1), "inactive") for s in ids])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(CHILD.parents[1]), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, str(CHILD), mongo_uri, db.name, as_of.isoformat(),
                              *ids], stdout=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        while (stored := await db[INCIDENTS].count_documents({})) < 10:
            assert child.poll() is None, "the detector process ended"
            assert time.monotonic() < deadline, "the detector process stored nothing"
            await asyncio.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    stored = await db[INCIDENTS].count_documents({})
    assert 0 < stored < STORES, f"not killed mid-way ({stored} of {STORES} stored)"
    # every stored incident already has its outbox entry (same transaction)
    assert await db[outbox.OUTBOX].count_documents({}) == stored

    successor = Detector(db, settings)
    successor.started = as_of
    successor._replset = True
    # The killed process's open transactions hold their documents until the server aborts them
    # (transactionLifetimeLimitSeconds, lowered above): a tick meeting one fails its step
    # after STEP_TIMEOUT_S and is simply run again.
    deadline = time.monotonic() + 240
    while True:
        successor.note(ids)
        try:
            await successor.tick(as_of)
            break
        except PyMongoError:
            assert time.monotonic() < deadline, "the successor never finished"
    successor.note(ids)
    await successor.tick(as_of + timedelta(minutes=1))
    docs = await db[INCIDENTS].find({}, {"_id": 1, "event_key": 1, "announced": 1}).to_list(None)
    assert len(docs) == STORES
    assert all(d["announced"]["opened"] is not None for d in docs)
    entries = await db[outbox.OUTBOX].find({}, {"event_id": 1}).to_list(None)
    assert sorted(e["event_id"] for e in entries) == sorted(
        event_key(d["_id"]) + ":opened" for d in docs)
