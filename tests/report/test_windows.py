"""The business hours cached per UTC day (``uptime.report.windows``) and report v3 that reads
them (issue 19, item 2): v3 is chosen only on a usable cache, the cache is really read, a
change of a store's hours or a new day makes the next report right (v2, then v3 once rebuilt),
and old builds are retired and deleted."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from support.pipeline import hours, load, poll, prepare_v2, report, report_list, utc, zone
from uptime.ingest.schedules import refresh_schedules
from uptime.platform.constants import WINDOW_BUILDS_COLLECTION, WINDOWS_COLLECTION
from uptime.report import pipeline as P
from uptime.report import windows
from uptime.timeline.control import wait_current
from uptime.timeline.follower import RunsFollower

AS_OF = utc("2024-03-12T15:00:00Z")  # a Tuesday


async def _two_stores(db) -> None:
    """Store "a": open Mon-Fri 09:00-17:00 in New York, inactive all week; store "b": no hours
    (24x7, America/Chicago), inactive all week."""
    polls = []
    for store in ("a", "b"):
        t = AS_OF - timedelta(days=8)
        while t <= AS_OF:
            polls.append(poll(store, t, "inactive"))
            t += timedelta(hours=1)
    await load(db, polls, [hours("a", d, "09:00:00", "17:00:00") for d in range(5)],
               [zone("a", "America/New_York")])
    await prepare_v2(db)


async def _v3(db, as_of=AS_OF) -> dict[str, dict]:
    """``iter_report_rows`` asked for v3 on whatever the cache holds now (no new build)."""
    return {r["store_id"]: r async for r in P.iter_report_rows(
        db, as_of=as_of, version="v3", prepare=False)}


async def test_v3_reads_the_cache_and_a_change_of_hours_shows_at_once(db):
    """v3 reads the cached intervals (changing the cache changes its row: the test can fail);
    after a store's hours change (``refresh_schedules``, as an import does) the cache is not
    used any more: ``iter_report_rows`` asked for v3 runs v2 with the new hours; a new build
    gives v3 the new hours too. Hand-computed: Mon-Fri 09-17 EDT/EST over the week before
    Tue 2024-03-12 15:00Z (= 11:00 EDT): Tue 3/5 (from 15:00Z = 10:00 EST) 7 h, Wed-Fri 3 x 8 h,
    Mon 3/11 8 h, Tue 3/12 09:00-11:00 EDT 2 h = 41 h, all down."""
    await _two_stores(db)
    build = await windows.build_windows(db, AS_OF, P.known_timezones)
    rows = await _v3(db)
    assert rows["a"]["downtime_last_week"] == 41.0 and rows["a"]["uptime_last_week"] == 0.0
    assert rows["b"]["downtime_last_week"] == 168.0
    # the cache is what v3 reads: one interval less, one day's hours less
    doc = await db[WINDOWS_COLLECTION].find_one({"_id": f"{build}|a"})
    await db[WINDOWS_COLLECTION].update_one({"_id": doc["_id"]}, {"$pop": {"open": 1}})
    assert (await _v3(db))["a"]["downtime_last_week"] == 39.0
    await db[WINDOWS_COLLECTION].update_one({"_id": doc["_id"]}, {"$set": {"open": doc["open"]}})

    # store a now opens Mon-Fri 09:00-13:00 only
    await db.store_hours.delete_many({"store_id": "a"})
    await db.store_hours.insert_many([hours("a", d, "09:00:00", "13:00:00") for d in range(5)])
    await refresh_schedules(db, ["a"])
    assert await windows.usable_build(db, AS_OF) is None
    # Tue 3/5 10:00-13:00 EST 3 h, Wed-Fri 3 x 4 h, Mon 4 h, Tue 3/12 09:00-11:00 EDT 2 h = 21 h
    asked_v3 = await _v3(db)
    v1 = await report(db, AS_OF, version="v1")
    assert asked_v3 == v1 and v1["a"]["downtime_last_week"] == 21.0
    await windows.build_windows(db, AS_OF, P.known_timezones)
    assert await windows.usable_build(db, AS_OF) is not None
    assert await _v3(db) == v1


async def test_a_build_serves_one_utc_day_only(db):
    """A build for day D is used for every as_of of D (midnight included) and none of D+1 or
    D-1; the week of the day's last instant is still exact (equal to v1)."""
    await _two_stores(db)
    await windows.build_windows(db, AS_OF, P.known_timezones)
    day = windows.window_day(AS_OF)
    assert await windows.usable_build(db, day) is not None
    assert await windows.usable_build(db, day + timedelta(days=1) - timedelta(milliseconds=1))
    assert await windows.usable_build(db, day + timedelta(days=1)) is None
    assert await windows.usable_build(db, day - timedelta(milliseconds=1)) is None
    for as_of in (day, day + timedelta(hours=23, minutes=59)):
        assert await _v3(db, as_of) == await report(db, as_of, version="v1")


async def test_default_report_builds_in_the_background_then_runs_v3(db):
    """Derived state never makes a report wait: with a current timeline and no cache the
    default choice is v2 (and a build starts); once built, v3 — same rows."""
    await _two_stores(db)
    follower = RunsFollower(db)
    await follower.start()
    try:
        assert await wait_current(db, 30.0)
        version, reason = await P.choose_version(db, None, AS_OF)
        assert version == "v2" and "not cached" in reason
        for _ in range(300):
            if await windows.usable_build(db, AS_OF) is not None:
                break
            await asyncio.sleep(0.1)
        version, reason = await P.choose_version(db, None, AS_OF)
        assert version == "v3" and "cached" in reason
        assert (await P.choose_version(db, "v2", AS_OF))[0] == "v2"  # asked: v2 it is
        rows = [r async for r in P.iter_report_rows(db, as_of=AS_OF, version="v3",
                                                     prepare=False)]
    finally:
        await follower.stop()
    assert {r["store_id"]: r for r in rows} == await report(db, AS_OF, version="v1")


async def test_old_builds_are_retired_then_deleted(db, monkeypatch):
    """A new build of the same day retires the older one (still readable: a report may have
    chosen it); a build retired more than GRACE_S ago is deleted with its documents."""
    await _two_stores(db)
    first = await windows.build_windows(db, AS_OF, P.known_timezones)
    second = await windows.build_windows(db, AS_OF, P.known_timezones)
    builds = db[WINDOW_BUILDS_COLLECTION]
    assert (await builds.find_one({"_id": first}))["retired_at"] is not None
    assert (await windows.usable_build(db, AS_OF))["_id"] == second
    assert await db[WINDOWS_COLLECTION].count_documents({"b": first}) == 1  # store a only
    monkeypatch.setattr(windows, "GRACE_S", 0.0)
    third = await windows.build_windows(db, AS_OF, P.known_timezones)
    assert await builds.find_one({"_id": first}) is None
    assert await db[WINDOWS_COLLECTION].count_documents({"b": first}) == 0
    assert await db[WINDOWS_COLLECTION].count_documents({"b": third}) == 1


def test_store_ranges_cut_at_the_bounds_into_equal_shares():
    """Issue 19 (the report in store ranges): 64 bounds of 220 stores, 2 at once -> two ranges
    of 32 buckets each, cut at bucket 32's first id; 3 -> cuts after 22 and 43 buckets (22 x 3
    = 66 >= 64, 43 x 3 = 129 >= 128); the outer ends are open (a store newer than the bounds
    still lands in a range); one range when asked for one or when there is nothing to cut."""
    bounds = [{"first": f"s{100 + i}", "stores": 220} for i in range(64)]
    assert P.store_ranges(bounds, 2) == [(None, "s132"), ("s132", None)]
    assert P.store_ranges(bounds, 3) == [(None, "s122"), ("s122", "s143"), ("s143", None)]
    assert P.store_ranges(bounds, 1) == [(None, None)]
    assert P.store_ranges(bounds[:1], 4) == [(None, None)]
    assert P.store_ranges([], 2) == [(None, None)]
    # more stores than RANGE_MAX_STORES per range: more ranges than asked, still equal shares
    big = [{"first": f"s{100 + i}", "stores": 2_200} for i in range(64)]  # 140,800 stores
    cut = P.store_ranges(big, 2, max_stores=25_000)  # ceil(140,800 / 25,000) = 6, even
    assert len(cut) == 6 and cut[0] == (None, "s111") and cut[-1][1] is None
    cut = P.store_ranges(big, 2, max_stores=50_000)  # 3, rounded up to 4 for 2 slots
    assert cut == [(None, "s116"), ("s116", "s132"), ("s132", "s148"), ("s148", None)]


async def test_a_build_stores_its_store_bounds_and_v3_runs_in_ranges(db):
    """The build records the stores' split points (pipeline store_bounds.v1: 5 stores -> 5
    buckets of one, in id order); v3 run in ranges, 1 to 4 at once, gives v1's rows in v1's
    order (store id)."""
    await load(db, [poll(s, utc("2024-05-20T11:00:00Z"), "inactive" if s in "bd" else "active")
                    for s in "edcba"])
    await prepare_v2(db)
    as_of = utc("2024-05-20T12:00:00Z")
    build = await windows.build_windows(db, as_of, P.known_timezones)
    stored = await db[WINDOW_BUILDS_COLLECTION].find_one({"_id": build})
    assert stored["bounds"] == [{"first": s, "stores": 1} for s in "abcde"]
    expected = await report_list(db, as_of, version="v1")
    assert [r["store_id"] for r in expected] == list("abcde")
    for parallel in (1, 2, 3, 4):
        rows = [r async for r in P.iter_report_rows(
            db, as_of=as_of, version="v3", prepare=False, parallel=parallel)]
        assert rows == expected, parallel


async def test_ranges_run_in_order_and_stop_when_the_reader_does(db):
    """``_run_ranges`` (issue 19): 4 ranges, 2 at once, give the rows range after range in
    order; a reader that stops after the first row leaves no range task behind (they are
    cancelled, their cursors closed)."""
    await db.t.insert_many([{"k": k} for k in range(40)])
    stages = [{"$match": {"$expr": {"$and": [{"$gte": ["$k", "$$lo"]}, {"$lt": ["$k", "$$hi"]}]}}},
              {"$sort": {"k": 1}}, {"$project": {"_id": 0, "k": 1}}]
    lets = [{"lo": lo, "hi": lo + 10} for lo in (0, 10, 20, 30)]
    rows = [d["k"] async for d in P._run_ranges(db.t, stages, lets, "test", 2)]
    assert rows == list(range(40))
    before = {t for t in asyncio.all_tasks() if not t.done()}
    gen = P._run_ranges(db.t, stages, lets, "test", 2)
    assert (await anext(gen))["k"] == 0
    await gen.aclose()
    assert {t for t in asyncio.all_tasks() if not t.done()} <= before


async def test_closing_the_ranges_does_not_hang_on_a_call_that_ignores_cancellation(monkeypatch):
    """Seen in a clean-clone CI run (a mongod killed with -9 mid-report): a driver call can
    outlive its cancellation, and the test session could not close because ``_run_ranges``
    waited for it without a limit. Now it waits at most RANGE_CANCEL_WAIT_S. The stuck call is
    played by a stand-in collection whose ``aggregate`` swallows its cancellation (the
    driver's behaviour cannot be produced on demand)."""
    monkeypatch.setattr(P, "RANGE_CANCEL_WAIT_S", 0.2)
    release = asyncio.Event()

    class Stuck:
        async def aggregate(self, *args, **kwargs):
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    continue  # what the driver call did: go on as if not cancelled
            raise RuntimeError("released")

    gen = P._run_ranges(Stuck(), [], [{}, {}], "test", 2)
    first = asyncio.ensure_future(anext(gen))
    await asyncio.sleep(0.05)
    first.cancel()  # the reader goes away while both ranges are stuck
    started = asyncio.get_running_loop().time()
    done, _ = await asyncio.wait({first}, timeout=3)
    assert first in done and first.cancelled(), "the reader's cancellation did not reach it"
    await asyncio.wait_for(gen.aclose(), 5)
    assert asyncio.get_running_loop().time() - started < 2.0
    release.set()  # let the stand-in calls end
    await asyncio.sleep(0.05)
