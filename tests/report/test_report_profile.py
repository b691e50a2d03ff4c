"""Issue 19: the per-phase profile recorded on every report, and the data-quality counts cached
per input version (exact: any write to an input collection invalidates them)."""

from __future__ import annotations

import asyncio

import json
from datetime import timedelta

from support.app import poll_until_done, running_app
from support.reports import T0, insert_stores
from uptime.platform.db import make_client
from uptime.report import quality
from uptime.report.phases import PHASES, PhaseClock, format_phases
from uptime.report.service import ReportService

#: phases every Complete report measures (the rest depend on the path taken)
CORE = {"as_of", "choose", "timezones", "pipeline", "csv", "gridfs", "report_rows", "finish",
        "total", "quality", "count_stores"}


def by_reason(counts):
    return {f"{c['collection']}.{c['reason']}": c["count"] for c in counts}


def test_phase_clock_adds_up_and_orders():
    """A phase entered twice accumulates; known phases come in PHASES order, others after;
    values have 4 decimals."""
    clock = PhaseClock()
    clock.add("extra", 0.5)
    clock.add("pipeline", 1.23456)
    clock.add("as_of", 0.1)
    clock.add("pipeline", 1.0)
    clock.add("csv", -1.0)  # a negative duration (clock oddity) counts as 0
    assert clock.as_dict() == {"as_of": 0.1, "pipeline": 2.2346, "csv": 0.0, "extra": 0.5}
    assert list(clock.as_dict()) == ["as_of", "pipeline", "csv", "extra"]
    assert format_phases({"as_of": 0.1, "pipeline": 2.2346}) == "as_of 0.100 s, pipeline 2.235 s"
    assert format_phases(None) == "-"


async def test_complete_report_records_its_phases(db, settings):
    """A Complete report stores phases {name: seconds}: every core phase, all >= 0, each
    sequential phase within the total, and the total within the wall time of the trigger."""
    await insert_stores(db, 30)
    service = ReportService(db, settings)
    await service.start(background=False)
    report_id = await service.trigger(T0)
    doc = await service.wait(report_id)
    await service.stop()
    assert doc["status"] == "Complete"
    phases = doc["phases"]
    assert CORE <= set(phases), phases
    assert set(phases) <= set(PHASES)
    assert all(v >= 0 for v in phases.values())
    sequential = sum(v for k, v in phases.items()
                     if k not in {"total", "quality", "count_stores", "queue"})
    assert sequential <= phases["total"] + 0.001
    wall = (doc["finished_at"] - doc["created_at"]).total_seconds()
    assert phases["total"] <= wall + 1.0  # finished_at/created_at: ms and two clocks


async def test_failed_report_records_its_phases(db, settings):
    """A Failed report (no polls) still tells where its time went."""
    service = ReportService(db, settings)
    await service.start(background=False)
    doc = await service.wait(await service.trigger())
    await service.stop()
    assert doc["status"] == "Failed"
    assert {"as_of", "total"} <= set(doc["phases"])


async def test_api_shows_phases(db, settings):
    """The status JSON of /reports and the Complete CSV's X-Report-Phases header carry the
    phases stored on the report."""
    await insert_stores(db, 5)
    async with running_app(settings, follow_runs=False) as http:
        resp = await http.post("/trigger_report", json={"as_of": T0.isoformat()})
        report_id = resp.json()["report_id"]
        done = await poll_until_done(http, report_id)
        assert done.headers["content-type"].startswith("text/csv")
        header = json.loads(done.headers["X-Report-Phases"])
        listed = (await http.get("/reports")).json()
    for _ in range(250):  # the follow-up write (below) lands right after Complete
        stored = (await db.reports.find_one({"_id": report_id}))["phases"]
        if "finish" in stored:
            break
        await asyncio.sleep(0.02)

    def settled(phases: dict) -> dict:
        # the Complete write stores the phases up to it (the CSV is available from then on);
        # a follow-up write adds that write's own time ("finish") and the final "total", so a
        # reader may see either: compare all the others
        return {k: v for k, v in phases.items() if k not in ("finish", "total")}

    assert settled(header) == settled(stored) and header["total"] <= stored["total"]
    assert CORE - {"finish"} <= set(header) and CORE <= set(stored)
    assert [settled(r["phases"]) for r in listed if r["report_id"] == report_id] == [
        settled(stored)]


async def test_quality_counts_cached_until_an_input_changes(db):
    """The cached counts equal a full count; with no write they are reused (shown by planting
    a value in the cache: it comes back); a write to store_hours, store_timezones or
    store_status invalidates them and the next count is the true one."""
    await insert_stores(db, 4)
    first = await quality.ignored_counts(db)
    assert first == await quality.ignored_counts(db, cache=False)
    cache = db[quality.CACHE_COLLECTION]
    assert await cache.count_documents({"_id": quality.CACHE_ID}) == 1
    assert await quality.ignored_counts(db) == first
    await cache.update_one({"_id": quality.CACHE_ID}, {"$set": {"counts.$[e].n": 99}},
                           array_filters=[{"e.c": "store_status.status_unknown"}])
    assert by_reason(await quality.ignored_counts(db))["store_status.status_unknown"] == 99

    await db.store_hours.insert_one({"store_id": "s000001", "dayOfWeek": 9,
                                     "start_time_local": "09:00:00", "end_time_local": "17:00:00"})
    counts = by_reason(await quality.ignored_counts(db))
    assert counts["store_hours.day_of_week_invalid"] == 1
    assert counts["store_status.status_unknown"] == 0  # the planted 99 is gone
    await db.store_timezones.insert_one({"store_id": "s000009", "timezone_str": "Mars/Olympus"})
    await db.store_status.insert_one({"store_id": "s000001", "timestamp_utc": T0,
                                      "status": "sleeping"})
    counts = by_reason(await quality.ignored_counts(db))
    assert counts["store_timezones.timezone_unknown"] == 1
    assert counts["store_status.status_unknown"] == 1
    assert counts == by_reason(await quality.ignored_counts(db, cache=False))


async def test_future_polls_reused_only_when_none_after_an_earlier_bound(db):
    """Future polls depend on the clock: a cached count is reused only if it was 0 for a
    bound at or before this report's (none after an earlier instant, same data: none after a
    later one); a count > 0 or a later stored bound is counted again; the report's as_of
    moves the bound."""
    far = T0.replace(year=9000)
    await db.store_status.insert_one({"store_id": "s1", "timestamp_utc": far, "status": "active"})
    assert by_reason(await quality.ignored_counts(db))["store_status.future_poll"] == 1
    later = await quality.ignored_counts(db, as_of=far + timedelta(seconds=1))
    assert by_reason(later)["store_status.future_poll"] == 0  # not future for that as_of
    cache = db[quality.CACHE_COLLECTION]
    [entry] = (await cache.find_one({"_id": quality.CACHE_ID}))["clock"]
    assert entry["c"] == "store_status.future_poll" and entry["n"] == 0 and entry["after"] > far

    # a planted 0 for an early bound is reused (the true count is 1)...
    await cache.update_one({"_id": quality.CACHE_ID}, {"$set": {"clock": [
        {"c": "store_status.future_poll", "after": T0, "n": 0}]}})
    assert by_reason(await quality.ignored_counts(db))["store_status.future_poll"] == 0
    # ... but not for a bound after this report's, nor a count > 0
    await cache.update_one({"_id": quality.CACHE_ID}, {"$set": {"clock": [
        {"c": "store_status.future_poll", "after": T0.replace(year=9999), "n": 0}]}})
    assert by_reason(await quality.ignored_counts(db))["store_status.future_poll"] == 1
    await cache.update_one({"_id": quality.CACHE_ID}, {"$set": {"clock": [
        {"c": "store_status.future_poll", "after": T0, "n": 5}]}})
    assert by_reason(await quality.ignored_counts(db))["store_status.future_poll"] == 1


async def test_quality_counts_recounted_after_delete_and_drop(db):
    """Deleting a bad document or dropping an input collection invalidates the cache too."""
    await db.store_status.insert_one({"store_id": "a", "timestamp_utc": T0, "status": "x"})
    assert by_reason(await quality.ignored_counts(db))["store_status.status_unknown"] == 1
    await db.store_status.delete_many({"status": "x"})
    assert by_reason(await quality.ignored_counts(db))["store_status.status_unknown"] == 0
    await db.store_timezones.insert_one({"store_id": "a", "timezone_str": "Nowhere/None"})
    assert by_reason(await quality.ignored_counts(db))["store_timezones.timezone_unknown"] == 1
    await db.store_timezones.drop()
    assert by_reason(await quality.ignored_counts(db))["store_timezones.timezone_unknown"] == 0


async def test_quality_counts_exact_on_standalone(standalone_uri, db_name):
    """On a standalone server (no change streams) nothing is cached: every call counts."""
    client = make_client(standalone_uri)
    sdb = client[db_name]
    try:
        await sdb.store_status.insert_one({"store_id": "a", "timestamp_utc": T0, "status": "x"})
        assert by_reason(await quality.ignored_counts(sdb))["store_status.status_unknown"] == 1
        await sdb.store_status.insert_one({"store_id": "b", "timestamp_utc": T0, "status": "y"})
        assert by_reason(await quality.ignored_counts(sdb))["store_status.status_unknown"] == 2
        assert await sdb[quality.CACHE_COLLECTION].count_documents({}) == 0
    finally:
        await client.drop_database(db_name)
        await client.close()


async def test_advance_cache_moves_the_token_past_other_writes_only(db):
    """After writes outside the input (a report's rows), advance_cache moves the stored token
    on and the counts stay; after a write to the input it leaves the token (the next count
    must see that write) and the next ignored_counts is the true count."""
    await db.store_status.insert_one({"store_id": "a", "timestamp_utc": T0, "status": "x"})
    await quality.ignored_counts(db)
    cache = db[quality.CACHE_COLLECTION]
    before = (await cache.find_one({"_id": quality.CACHE_ID}))["token"]
    await db.report_rows.insert_many([{"report_id": "r", "n": i} for i in range(50)])
    assert await quality.advance_cache(db) is True
    moved = (await cache.find_one({"_id": quality.CACHE_ID}))["token"]
    assert moved != before
    await db.store_status.insert_one({"store_id": "b", "timestamp_utc": T0, "status": "y"})
    assert await quality.advance_cache(db) is False
    assert (await cache.find_one({"_id": quality.CACHE_ID}))["token"] == moved
    assert by_reason(await quality.ignored_counts(db))["store_status.status_unknown"] == 2


async def test_advance_cache_without_cache_is_a_no_op(db):
    """No cache document (first report, or a standalone server): nothing to advance."""
    assert await quality.advance_cache(db) is False


async def test_running_report_shows_its_phases_so_far_and_ranges_at_the_end(db, settings,
                                                                            monkeypatch):
    """Found by the fresh-user trial (issue 19): the status JSON of a Running report showed
    phases null. Now the phases so far are written when generation starts and with the
    progress: held inside its pipeline, the report is Running with as_of and choose recorded;
    once Complete it also says how many store ranges the pipeline ran in (v1: 1)."""
    from uptime.report import pipeline as report_pipeline

    await insert_stores(db, 5)
    gate = asyncio.Event()
    original = report_pipeline.iter_report_rows

    async def held(*args, **kwargs):
        await gate.wait()
        async for row in original(*args, **kwargs):
            yield row

    monkeypatch.setattr(report_pipeline, "iter_report_rows", held)
    service = ReportService(db, settings)
    await service.start()
    try:
        report_id = await service.trigger(T0)
        for _ in range(500):
            doc = await db.reports.find_one({"_id": report_id})
            if doc.get("phases"):
                break
            await asyncio.sleep(0.02)
        assert doc["status"] == "Running" and {"as_of", "choose"} <= set(doc["phases"])
        gate.set()
        done = await service.wait(report_id)
    finally:
        gate.set()
        await service.stop()
    assert done["status"] == "Complete" and done["store_ranges"] == 1
