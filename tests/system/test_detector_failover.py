"""The live incident detector across a replica-set step-down (issue 17 item 7): a real
three-member set (tests/support/replset.py) and a real local receiver (pytest-httpserver)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.errors import PyMongoError

from support.pipeline import poll
from support.receiver import Receiver, failover_settings, serve
from uptime.incidents.detector import INCIDENTS, Detector, event_key
from uptime.notify import channels as ch
from uptime.notify import outbox
from uptime.platform.db import make_client
from uptime.platform.migrations import migrate_up

pytestmark = pytest.mark.replset
STORES = 300


async def test_step_down_while_detecting_loses_nothing_and_announces_once(
        rs, tmp_path, httpserver):
    """Rule: incident changes and their outbox entries commit together, under stable ids. While
    a detector opens 300 incidents (and a deliverer sends them), the primary steps down; the
    detector retries its tick on the new primary: every incident is stored once, the receiver
    gets an ``incident.opened`` for each, and every request carries the id derived from its
    incident's stable id (a redelivery keeps it) — nothing lost, nothing under a new id."""
    name = f"df_{uuid.uuid4().hex[:10]}"
    client = make_client(rs.uri)
    db = client[name]
    receiver = Receiver()
    url = serve(httpserver, receiver)
    settings = failover_settings(rs.uri, name, tmp_path / "d")
    as_of = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
    ids = [f"f{i:04d}" for i in range(STORES)]
    try:
        await migrate_up(db)
        await ch.add_channel(db, "hook", url, allow_private=True)
        await db["store_status"].insert_many(
            [poll(s, as_of - timedelta(hours=3), "active") for s in ids]
            + [poll(s, as_of - timedelta(hours=1), "inactive") for s in ids])
        detector = Detector(db, settings)
        detector.started = as_of
        detector._replset = True
        deliverer = outbox.Deliverer(db, settings, concurrency=4)
        await deliverer.start()
        try:
            detector.note(ids)
            ticking = asyncio.create_task(detector.tick(as_of))
            while await db[INCIDENTS].count_documents({}) < 20:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(rs.step_down, rs.primary())
            deadline = time.monotonic() + 180
            try:
                await ticking
            except PyMongoError:
                pass  # the tick met the step-down: its stores stay pending
            while True:
                try:
                    detector.note(ids)
                    await detector.tick(as_of)
                    break
                except PyMongoError:
                    assert time.monotonic() < deadline, "the detector never recovered"
                    await asyncio.sleep(0.5)
            while await db[outbox.OUTBOX].count_documents({"status": "delivered"}) < STORES:
                assert time.monotonic() < deadline, "not every notification delivered"
                await asyncio.sleep(0.2)
        finally:
            await deliverer.stop()
        docs = await db[INCIDENTS].find({}, {"_id": 1}).to_list(None)
        assert len(docs) == STORES
        expected = {event_key(d["_id"]) + ":opened" for d in docs}
        seen = receiver.ids()
        assert set(seen) == expected and len(expected) == STORES
        print(f"step-down: {len(seen)} requests for {STORES} incidents")
    finally:
        await asyncio.to_thread(rs.wait_healthy)
        await client.drop_database(name)
        await client.close()
