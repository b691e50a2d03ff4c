"""kill -9 of the primary during a stream of ``POST /polls`` with the runs follower running
(issue 10, item 3), on the three-member replica set, measured.

Uses ``POST /polls`` (``uptime.web.routes.polls``) and the runs follower (``uptime.timeline``).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from support.app import running_app
from uptime.platform.pollkey import poll_key
from uptime import timeline
from uptime.platform.db import make_client
from uptime.platform.probes import operation_time
from uptime.platform.settings import Settings

pytestmark = pytest.mark.replset

T_START = datetime(2024, 5, 6, tzinfo=UTC)
STORES = 40
REQUESTS = 150
PER_REQUEST = 40
KILL_AT = 50
#: The data contract's fields of a run (bookkeeping fields such as the writing batch differ
#: between an incremental build and a rebuild by design).
RUN_FIELDS = {k: 1 for k in ("store_id", "status", "first_poll", "last_poll", "polls", "start2",
                             "end2", "start", "end")}


def poll_request(r: int) -> list[dict]:
    """Request r: one poll for each of 40 stores at minute r (status flips every 7 minutes
    for some stores, so runs split), i.e. every request moves every store's timeline."""
    items = []
    for k in range(PER_REQUEST):
        sid = f"live{k % STORES:03d}"
        ts = T_START + timedelta(minutes=r, seconds=k // STORES)
        status = "inactive" if (r // 7 + k) % 5 == 0 else "active"
        items.append({"store_id": sid, "timestamp_utc": ts.isoformat().replace("+00:00", "Z"),
                      "status": status})
    return items


def poll_id(item: dict) -> bytes:
    """The stored ``_id`` of a pushed poll: the 16-byte poll key (issue 18)."""
    ts = datetime.fromisoformat(item["timestamp_utc"].replace("Z", "+00:00"))
    return poll_key(item["store_id"], ts, item["status"])


def _awaiting(task: asyncio.Task | None) -> str:
    """Where ``task`` waits: its chain of awaited coroutines (file:line function), following
    awaited tasks."""
    frames, coro, seen = [], task.get_coro() if task else None, 0
    while coro is not None and seen < 40:
        seen += 1
        if isinstance(coro, asyncio.Task):
            frames.append(f"task {coro.get_name()} ({'cancelling' if coro.cancelling() else 'pending'})")
            coro = coro.get_coro()
            continue
        frame = getattr(coro, "cr_frame", None)
        if frame is not None:
            frames.append(f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno} "
                          f"{frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None)
    return " > ".join(frames) or "-"


async def where_the_follower_is(served) -> str:
    """For a failure message: the follower's progress against the server's cluster time now,
    its state and where its task waits (round 5: it sat on a cancelled heartbeat)."""
    follower = timeline.running_follower(served)
    if follower is None:
        return "no follower runs in this process"
    target = await operation_time(served)
    state = {k: follower.state.get(k) for k in ("mode", "reason", "pending", "events", "batches")}
    return (f"applied_until {follower.applied_until} vs cluster time {target}; alive "
            f"{follower.alive}; state {state}; awaiting {_awaiting(follower._task)}")


async def test_primary_killed_during_poll_stream(rs, tmp_path):
    """Every poll POST /polls acknowledged (200) before, during and after kill -9 of the
    primary is in store_status afterwards; the follower applies all of them (wait_current),
    resuming from its stored token on the new primary without a full rebuild, and the runs it
    built incrementally equal a full rebuild (no gap, no duplicate effect). A failed request
    (503 while there is no primary) is retried by the poller, as a real poller would."""
    name = "live_failover"
    settings = Settings(mongodb_uri=rs.uri, mongodb_database=name, data_dir=tmp_path / "d",
                        db_timeout_s=3)
    check = make_client(rs.uri)
    db = check[name]
    await check.drop_database(name)
    acked: set[bytes] = set()
    instants: set[tuple[str, str]] = set()  # distinct (store, instant) acknowledged
    retries = 0
    killed_at = first_ack_after = None
    try:
        async with running_app(settings, timeout=60) as http:
            served = http.app.state.db  # the follower's own client: in-memory progress
            assert await timeline.wait_current(served, timeout_s=30)
            state0 = await db.runs_follower.find_one({})
            old = rs.primary()
            for r in range(REQUESTS):
                if r == KILL_AT:
                    await asyncio.to_thread(rs.kill, old)
                    killed_at = time.monotonic()
                items = poll_request(r)
                while True:
                    resp = await http.post("/polls", json=items)
                    if resp.status_code == 200:
                        break
                    assert resp.status_code == 503, resp.text
                    retries += 1
                    await asyncio.sleep(0.1)
                body = resp.json()
                assert body["rejected"] == 0, body
                acked.update(poll_id(i) for i in items)
                instants.update((i["store_id"], i["timestamp_utc"]) for i in items)
                if killed_at is not None and first_ack_after is None:
                    first_ack_after = time.monotonic() - killed_at
            t0 = time.monotonic()
            current = await timeline.wait_current(served, timeout_s=60)
            caught_up = time.monotonic() - t0
            stuck = "" if current else await where_the_follower_is(served)
            found = {d["_id"] async for d in db.store_status.find({}, {"_id": 1})}
            incremental = await db.status_runs.find({}, RUN_FIELDS, sort=[("_id", 1)]).to_list()
            state1 = await db.runs_follower.find_one({})
            health = (await http.get("/healthz")).json()
            scraped = (await http.get("/metrics")).text
        await timeline.rebuild_runs(db)
        rebuilt = await db.status_runs.find({}, RUN_FIELDS, sort=[("_id", 1)]).to_list()
    finally:
        await check.drop_database(name)
        await check.close()
    polls_in_runs = sum(r["polls"] for r in incremental)
    lag = next(float(line.split()[-1]) for line in scraped.splitlines()
               if line.startswith("uptime_follower_lag_seconds "))
    print(f"kill -9 of primary m{old.index} after {KILL_AT} of {REQUESTS} requests: first "
          f"acknowledged request {first_ack_after:.2f} s later ({retries} retried 503s); "
          f"polls acknowledged {len(acked):,}, found {len(acked & found):,} "
          f"(store_status {len(found):,}); follower current {caught_up:.2f} s after the last "
          f"ack; runs {len(incremental):,} holding {polls_in_runs:,} poll instants; full "
          f"rebuilds {state0.get('rebuilds', 0)} -> {state1.get('rebuilds', 0)}; "
          f"healthz {health}, follower lag metric {lag:.2f} s")
    assert acked <= found and len(found) == len(acked)
    assert current, f"the follower did not apply every acknowledged poll: {stuck}"
    assert polls_in_runs == len(instants)
    assert incremental == rebuilt
    assert state1.get("rebuilds", 0) == state0.get("rebuilds", 0), "fell back to a rebuild"
    assert state1["mode"] == "change_stream"
    assert {k: health[k] for k in ("status", "database", "follower")} == {
        "status": "ok", "database": "ok", "follower": "ok"}
    assert health["timeline"]["mode"] == "change_stream"  # issue 14: the timeline's state
    assert 0 <= lag < 10
