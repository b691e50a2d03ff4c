"""Issue 18 item 4: compaction of raw polls before the retention horizon keeps the status
timeline exact — a rebuild after a compaction gives the same runs as before it, the follower
ignores the compaction's deletes, and ingestion refuses polls before the horizon."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from uptime.ingest.polls import store_polls
from uptime.platform.migrations import ensure_current
from uptime.platform.pollkey import poll_key
from uptime.platform.retention import stored_horizon
from uptime.timeline import rebuild_runs
from uptime.timeline.follower import changes_of
from uptime.timeline.retention import compact_polls

from support.timeline import reference_runs, runs_of

START = datetime(2024, 1, 1, tzinfo=UTC)
#: "now" of the compaction: 30 days after START; with 14 days' retention the horizon is
#: START + 16 d (2024-01-17), in the middle of the polls (they span 0..29 days)
NOW = START + timedelta(days=30)
HORIZON = NOW - timedelta(days=14)


def history(seed: int = 7, stores: int = 6, days: int = 29) -> list[dict]:
    """Hourly polls (with jitter of up to 20 min and gaps) of ``stores`` stores; each store
    flips status now and then, so runs of one to many polls straddle every instant."""
    rnd = random.Random(seed)
    out = []
    for k in range(stores):
        store = f"s{k}"
        status = "active"
        t = START + timedelta(minutes=rnd.randrange(60))
        while t < START + timedelta(days=days):
            if rnd.random() < 0.15:
                status = "inactive" if status == "active" else "active"
            if rnd.random() > 0.05:  # a missed poll now and then
                out.append({"_id": poll_key(store, t, status), "store_id": store,
                            "timestamp_utc": t, "status": status})
            t += timedelta(minutes=60 + rnd.randrange(-20, 21))
    # a store whose polls all end before the horizon, one whose polls all begin after it
    for h in range(5):
        t = START + timedelta(days=2, hours=h)
        out.append({"_id": poll_key("old", t, "active"), "store_id": "old",
                    "timestamp_utc": t, "status": "active" if h % 2 else "inactive"})
        t = HORIZON + timedelta(days=1, hours=h)
        out.append({"_id": poll_key("new", t, "active"), "store_id": "new",
                    "timestamp_utc": t, "status": "active"})
    return out


def without_batch(runs: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "batch"} for r in runs]


@pytest.fixture
async def rdb(db):
    await ensure_current(db, apply=True)
    return db


async def test_rebuild_after_compaction_gives_the_same_runs(rdb) -> None:
    """Rule (issue 18 item 4): every rebuild keeps the runs before the horizon and recomputes
    from it on, joined exactly: after `compact_polls` removed the old polls, `rebuild_runs`
    gives byte-identical runs (all fields but the batch id) to those before the compaction,
    which are the plain-Python reference runs of the full history."""
    polls = history()
    await rdb["store_status"].insert_many([dict(p) for p in polls])
    await rebuild_runs(rdb)
    before = without_batch(await runs_of(rdb))
    ref = reference_runs(polls)
    assert before == [{k: v for k, v in r.items()} for r in ref]

    out = await compact_polls(rdb, 14, now=NOW)
    assert out["horizon"] == HORIZON and out["rebuilt"]  # no follower: rebuilt first
    assert await stored_horizon(rdb) == HORIZON
    left = await rdb["store_status"].count_documents({})
    assert out["removed"] > len(polls) // 3 and left == len(polls) - out["removed"]
    # each store keeps every poll from the first poll of its run in force at the horizon
    for store in {p["store_id"] for p in polls}:
        runs = [r for r in before if r["store_id"] == store]
        starting = [r["first_poll"] for r in runs if r["first_poll"] <= HORIZON]
        boundary = max(starting) if starting else None
        kept = sorted(p["timestamp_utc"] for p in polls if p["store_id"] == store
                      and (boundary is None or p["timestamp_utc"] >= boundary))
        stored = [d["timestamp_utc"].replace(tzinfo=UTC) async for d in rdb["store_status"].find(
            {"store_id": store}, {"timestamp_utc": 1}).sort("timestamp_utc", 1)]
        assert stored == kept, store
    assert without_batch(await runs_of(rdb)) == before  # the compaction changed no run

    await rdb["status_runs"].delete_many({"first_poll": {"$gte": HORIZON}})  # damage after it
    await rebuild_runs(rdb)
    assert without_batch(await runs_of(rdb)) == before

    # a new poll after the horizon that flips the straddling run is recomputed exactly
    store = "s0"
    last = max(p["timestamp_utc"] for p in polls if p["store_id"] == store)
    extra = {"_id": poll_key(store, last + timedelta(minutes=30), "inactive"),
             "store_id": store, "timestamp_utc": last + timedelta(minutes=30),
             "status": "inactive"}
    await rdb["store_status"].insert_one(dict(extra))
    await rebuild_runs(rdb)
    assert without_batch(await runs_of(rdb)) == reference_runs(polls + [extra])


async def test_second_compaction_and_rebuild_stay_exact(rdb) -> None:
    """Rule: compacting again later (a later horizon) and rebuilding keeps the reference runs
    of the whole original history."""
    polls = history(seed=11)
    await rdb["store_status"].insert_many([dict(p) for p in polls])
    await rebuild_runs(rdb)
    await compact_polls(rdb, 14, now=NOW)
    second = await compact_polls(rdb, 8, now=NOW)
    assert second["horizon"] == NOW - timedelta(days=8) and second["removed"] > 0
    await rebuild_runs(rdb)
    assert without_batch(await runs_of(rdb)) == reference_runs(polls)


def test_follower_ignores_deletes_before_the_horizon() -> None:
    """Rule: a delete of a poll before the stored horizon (the compaction's) changes no run;
    one after it still does; a 16-byte `_id` without a pre-image after the horizon cannot be
    placed (unknown -> full rebuild)."""
    old = HORIZON - timedelta(hours=1)
    new = HORIZON + timedelta(hours=1)
    events = [
        {"operationType": "delete", "documentKey": {"_id": poll_key("a", old, "active")}},
        {"operationType": "delete", "documentKey": {"_id": "b"},
         "fullDocumentBeforeChange": {"store_id": "b", "timestamp_utc": old, "status": "active"}},
    ]
    assert changes_of(events, HORIZON) == ({}, False)
    assert changes_of(events, None) == ({"b": (old, old)}, True)
    after = [{"operationType": "delete", "documentKey": {"_id": "c"},
              "fullDocumentBeforeChange": {"store_id": "c", "timestamp_utc": new,
                                           "status": "active"}}]
    assert changes_of(after, HORIZON) == ({"c": (new, new)}, False)
    keyed = [{"operationType": "delete", "documentKey": {"_id": poll_key("d", new, "active")}}]
    assert changes_of(keyed, HORIZON) == ({}, True)


async def test_polls_before_the_stored_horizon_are_rejected(rdb) -> None:
    """Rule (item 4): a poll arriving before the retention horizon is rejected with its
    reason and counted (POST /polls' store_polls; the CSV importer shares the validator);
    one after it is stored."""
    await rdb["polls_retention"].insert_one({"_id": "store_status", "horizon": HORIZON})
    items = [{"store_id": "x", "timestamp_utc": "2024-01-10T00:00:00Z", "status": "active"},
             {"store_id": "x", "timestamp_utc": "2024-01-20T00:00:00Z", "status": "active"}]
    result = await store_polls(rdb, items)
    assert result.stored == 1 and len(result.rejected) == 1
    reason = result.rejected[0]["reason"]
    assert result.rejected[0]["index"] == 0
    assert "before the retention horizon 2024-01-17T00:00:00.000Z" in reason
    assert "UPTIME_POLL_RETENTION_DAYS" in reason
