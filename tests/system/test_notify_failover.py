"""Notifications across a replica-set failover (issue 17, item 7): a real three-member set
(tests/replset.py) and a real local receiver (pytest-httpserver)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest

from support.receiver import Receiver, failover_settings, serve
from uptime.notify import channels as ch
from uptime.notify import outbox
from uptime.platform.db import make_client
from uptime.platform.migrations import migrate_up

pytestmark = pytest.mark.replset


@pytest.mark.parametrize("how", ["step-down", "kill -9"])
async def test_failover_while_delivering_loses_nothing(rs, tmp_path, httpserver, how):
    """Rule: while the deliverer works through 30 notifications, the primary steps down (or is
    killed with SIGKILL): every event still reaches the receiver, every request carries one of
    the 30 event ids (a redelivery keeps its id, so a receiver can drop it), and every outbox
    document ends delivered."""
    name = f"nf_{uuid.uuid4().hex[:10]}"
    client = make_client(rs.uri)
    db = client[name]
    # a receiver that takes a moment: the failover lands mid-stream
    receiver = Receiver(delay=0.05)
    url = serve(httpserver, receiver)
    settings = failover_settings(rs.uri, name, tmp_path / "d")
    ids = [f"inc-{n}:opened" for n in range(30)]
    try:
        await migrate_up(db)
        await ch.add_channel(db, "hook", url, allow_private=True)
        for event_id in ids:
            await outbox.enqueue(db, {"id": event_id, "type": "incident.opened",
                                      "store_id": event_id, "incident": {},
                                      "occurred_at": datetime.now(UTC)})
        deliverer = outbox.Deliverer(db, settings, concurrency=2)
        await deliverer.start()
        try:
            while len(receiver.ids()) < 5:
                await asyncio.sleep(0.02)
            primary = rs.primary()
            if how == "step-down":
                await asyncio.to_thread(rs.step_down, primary)
            else:
                await asyncio.to_thread(rs.kill, primary)
            deadline = time.monotonic() + 120
            while await db[outbox.OUTBOX].count_documents({"status": "delivered"}) < 30:
                assert time.monotonic() < deadline, "not every notification delivered"
                await asyncio.sleep(0.2)
        finally:
            await deliverer.stop()
        seen = receiver.ids()
        assert set(seen) == set(ids)
        assert all(s in ids for s in seen)
        print(f"{how}: {len(seen)} requests for {len(ids)} events "
              f"({len(seen) - len(ids)} redeliveries with the same id)")
    finally:
        await asyncio.to_thread(rs.wait_healthy)
        await client.drop_database(name)
        await client.close()
