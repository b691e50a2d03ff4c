"""The dashboard's JSON API (issue 11, item 1) against a real mongod, on hand-built stores."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from bson import json_util

from support.dashboard_data import (DST_BUSINESS_UTC, DST_ROW, DST_RUNS, DST_STORE, EXPECTED_HISTOGRAM,
                            T, W, _z, insert_dashboard_stores)
from support.reports import insert_stores
from support.app import poll_until_done, running_app
from uptime.report import interval, pipeline
from uptime.platform.migrations import ensure_current


async def _report(http, as_of=T) -> tuple[str, dict[str, dict]]:
    resp = await http.post("/trigger_report", params={"as_of": as_of.isoformat()})
    report_id = resp.json()["report_id"]
    done = await poll_until_done(http, report_id)
    rows = {r["store_id"]: r for r in csv.DictReader(io.StringIO(done.text))}
    return report_id, rows


def test_interval_pipeline_file_is_derived_from_v1():
    """pipelines/store_interval.v1.json is exactly derive_interval_pipeline(store_uptime v1):
    the interval uptime applies the report's stages, so it cannot drift from them."""
    derived = interval.derive_interval_pipeline(pipeline.load_pipeline("v1"))
    assert interval.interval_path().read_text() == interval.render(derived)
    assert json_util.loads(interval.render(derived)) == interval.load_interval_pipeline()
    assert "604800000" not in interval.interval_path().read_text()


async def test_uptime_equals_report_windows_for_dst_store(db, settings):
    """/stores/{id}/uptime over the report's week, day and hour windows equals the report
    row (CSV) and the hand-computed numbers of the DST store (57 h business, 28 h down)."""
    await insert_dashboard_stores(db)
    async with running_app(settings) as http:
        _rid, rows = await _report(http)
        for start, minutes_or_hours in ((T - timedelta(days=7), "week"),
                                        (T - timedelta(days=1), "day"),
                                        (T - timedelta(hours=1), "hour")):
            r = await http.get(f"/stores/{DST_STORE}/uptime",
                               params={"from": start.isoformat(), "to": T.isoformat()})
            assert r.status_code == 200, r.text
            body = r.json()
            unit = "minutes" if minutes_or_hours == "hour" else "hours"
            for kind in ("uptime", "downtime"):
                column = f"{kind}_last_{minutes_or_hours}"
                assert f"{body[f'{kind}_{unit}']:.2f}" == rows[DST_STORE][column]
                assert body[f"{kind}_{unit}"] == DST_ROW[column]
        week = (await http.get(f"/stores/{DST_STORE}/uptime",
                               params={"to": T.isoformat()})).json()
    assert week["business_seconds"] == 57 * 3600
    assert week["downtime_seconds"] == 28 * 3600 and week["uptime_seconds"] == 29 * 3600
    assert week["uptime_pct"] == 50.88
    assert week["timezone"] == "America/New_York" and week["timezone_fallback"] is False
    assert week["from"].startswith("2024-03-05T15:00:00")


async def test_uptime_equals_report_for_many_stores(db, settings):
    """For 30 generated stores (alternating statuses, hourly polls), every window's interval
    uptime equals the report's CSV cell."""
    await insert_stores(db, 30, polls_per_store=30, as_of=T)
    async with running_app(settings) as http:
        _rid, rows = await _report(http)
        for store, row in list(rows.items())[::3]:
            for start, suffix, unit in ((T - timedelta(days=7), "week", "hours"),
                                        (T - timedelta(days=1), "day", "hours"),
                                        (T - timedelta(hours=1), "hour", "minutes")):
                body = (await http.get(f"/stores/{store}/uptime", params={
                    "from": start.isoformat(), "to": T.isoformat()})).json()
                assert f"{body[f'uptime_{unit}']:.2f}" == row[f"uptime_last_{suffix}"]
                assert f"{body[f'downtime_{unit}']:.2f}" == row[f"downtime_last_{suffix}"]


async def test_timeline_of_dst_week(db, settings):
    """The time line of the DST store's week: business hours shift by one hour in UTC after
    the spring-forward Sunday (local 09:00-17:00 both sides), the three runs are clipped to
    the week at the hand-computed midpoints, and the week's polls are listed."""
    await insert_dashboard_stores(db)
    async with running_app(settings) as http:
        r = await http.get(f"/stores/{DST_STORE}/timeline", params={"to": T.isoformat()})
        capped = await http.get(f"/stores/{DST_STORE}/timeline",
                                params={"to": T.isoformat(), "poll_limit": 1})
    assert r.status_code == 200, r.text
    t = r.json()
    assert [(_z(o["start"][:16]), _z(o["end"][:16])) for o in t["business_hours"]] == [
        (_z(a), _z(b)) for a, b in DST_BUSINESS_UTC]
    assert t["business_hours"][1]["start_local"] == "2024-03-06T09:00:00-05:00"
    assert t["business_hours"][5]["start_local"] == "2024-03-10T09:00:00-04:00"
    assert [(x["status"], x["start"][:16], x["end"][:16]) for x in t["runs"]] == DST_RUNS
    assert t["runs"][1]["first_poll"].startswith("2024-03-08T12:00")
    assert t["runs"][1]["polls"] == 2 and t["runs"][0]["run_start"] is None
    assert [p["t"][:16] for p in t["polls"]] == ["2024-03-08T12:00", "2024-03-08T16:00",
                                                 "2024-03-10T20:00", "2024-03-12T14:00"]
    assert t["timezone_source"] == "store" and t["polls_truncated"] is False
    c = capped.json()
    assert len(c["polls"]) == 1 and c["polls_total"] == 4 and c["polls_truncated"] is True


async def test_timeline_default_is_week_before_latest_poll(db, settings):
    """Without from/to the time line covers the week before the store's latest valid poll
    (03-12 14:00Z), not another store's later poll nor its own later invalid one."""
    await insert_dashboard_stores(db)
    await db.store_status.insert_many([
        {"store_id": "other", "timestamp_utc": T + timedelta(days=1), "status": "active"},
        {"store_id": DST_STORE, "timestamp_utc": T + timedelta(days=1), "status": "closed"}])
    async with running_app(settings) as http:
        t = (await http.get(f"/stores/{DST_STORE}/timeline")).json()
    assert t["to"].startswith("2024-03-12T14:00:00") and t["from"].startswith("2024-03-05T14:00:00")


async def test_bad_intervals_and_unknown_store(db, settings):
    """from >= to and intervals over 92 days are 422 naming the problem; a store with no
    poll is 404; never a 500."""
    await insert_dashboard_stores(db)
    async with running_app(settings) as http:
        rev = await http.get(f"/stores/{DST_STORE}/uptime",
                             params={"from": T.isoformat(), "to": W.isoformat()})
        long = await http.get(f"/stores/{DST_STORE}/uptime",
                              params={"from": (T - timedelta(days=93)).isoformat(),
                                      "to": T.isoformat()})
        bad = await http.get(f"/stores/{DST_STORE}/timeline", params={"from": "soon"})
        missing = await http.get("/stores/nope/timeline")
    assert rev.status_code == 422 and "must be before" in rev.json()["detail"][0]["msg"]
    assert long.status_code == 422 and "92 days" in long.json()["detail"][0]["msg"]
    assert bad.status_code == 422
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


async def test_summary_histogram_and_worst(db, settings):
    """/reports/{id}/summary aggregates the stored rows: 8 stores, the hand-computed
    histogram, the most downtime first (zero-1: 168 h, half-1: 76 h, dst-ny: 28 h); the rows
    search finds stores by id prefix."""
    await insert_dashboard_stores(db)
    async with running_app(settings) as http:
        report_id, rows = await _report(http)
        s = (await http.get(f"/reports/{report_id}/summary", params={"worst": 3})).json()
        row = (await http.get(f"/reports/{report_id}/rows/{DST_STORE}")).json()
        found = (await http.get(f"/reports/{report_id}/rows", params={"prefix": "m"})).json()
        none = (await http.get(f"/reports/{report_id}/rows", params={"prefix": "."})).json()
        unknown = await http.get(f"/reports/{'x' * 32}/summary")
    assert s["stores"] == 8 and s["timezone_fallbacks"] == 0 and s["pipeline"] == (await db.reports.find_one({"_id": report_id}))["pipeline"]
    assert {b["from"]: b["stores"] for b in s["histogram"]} == EXPECTED_HISTOGRAM
    assert [w["store_id"] for w in s["worst"]] == ["zero-1", "half-1", DST_STORE]
    assert s["worst"][0]["downtime_last_week"] == 168.0
    assert s["stores_with_downtime"] == 5
    assert {k: row[k] for k in DST_ROW} == DST_ROW
    assert all(f"{row[k]:.2f}" == rows[DST_STORE][k] for k in DST_ROW)
    assert unknown.status_code == 404
    assert [(r["store_id"], r["uptime_pct_last_week"]) for r in found] == [
        ("most-1", 95.24), ("most-2", 95.24)]
    assert none == []  # the prefix is text, not a regular expression


async def test_report_rows_deleted_with_report(db, settings):
    """report_rows holds the CSV's 8 rows (one document: up to 1,000 rows each) and retention
    deletes them with the report."""
    from uptime.report import storage

    await insert_dashboard_stores(db)
    async with running_app(settings) as http:
        report_id, _rows = await _report(http)
    docs = await db.report_rows.find({"report_id": report_id}).to_list()
    assert [d["n"] for d in docs] == [8] and len(docs[0]["rows"]) == 8
    await db.reports.update_one({"_id": report_id},
                                {"$set": {"created_at": T - timedelta(days=30)}})
    assert await storage.delete_expired(db, 7) == 1
    assert await db.report_rows.count_documents({}) == 0


async def test_summary_of_running_report_is_409(db, settings):
    """The summary needs a Complete report: Running is 409."""
    from uptime.report import storage

    await db.reports.insert_one({"_id": "r" * 32, "status": storage.RUNNING})
    async with running_app(settings) as http:
        r = await http.get(f"/reports/{'r' * 32}/summary")
    assert r.status_code == 409 and "Running" in r.json()["detail"]


async def test_interval_pipeline_reads_one_store_through_the_index(db):
    """The interval pipeline's store range is an index range on store_status (IXSCAN: only
    that store's 5 polls are examined, of 19), not a scan of every poll like the report."""
    await db.store_status.create_index([("store_id", 1), ("timestamp_utc", 1), ("status", 1)])
    await insert_dashboard_stores(db)
    let = pipeline.report_let(T, ["America/New_York"], (DST_STORE, interval.next_store_id(DST_STORE)))
    let["from"] = W
    plan = await db.command("explain", {"aggregate": "store_status",
                                        "pipeline": interval.load_interval_pipeline(),
                                        "cursor": {}, "let": let}, verbosity="executionStats")
    text = json_util.dumps(plan)
    assert "IXSCAN" in text and "COLLSCAN" not in text.split('"$unionWith"')[0]
    stats = plan["stages"][0]["$cursor"]["executionStats"]
    # its 5 polls (of 19): the $expr on the store range fetches them, but only them
    assert stats["totalDocsExamined"] == 5 and stats["totalKeysExamined"] <= 6


async def test_store_runs_follow_the_contract(db):
    """store_runs gives the status_runs contract's documents: polls at one instant count once
    with inactive winning, start2/end2 = sums of neighbouring poll ms (exact half ms kept),
    runs tile the line, and the last run holds up to as_of; polls after as_of are ignored."""
    from uptime.web.runs import clip_runs, store_runs

    t = [_z("2024-03-01T00:00"), _z("2024-03-01T00:00:00.001"), _z("2024-03-01T01:00")]
    ms = [int(x.timestamp() * 1000) for x in t]
    await db.store_status.insert_many([
        {"store_id": "c", "timestamp_utc": t[0], "status": "active"},
        {"store_id": "c", "timestamp_utc": t[1], "status": "active"},
        {"store_id": "c", "timestamp_utc": t[1], "status": "inactive"},  # same instant: inactive
        {"store_id": "c", "timestamp_utc": t[2], "status": "inactive"},
        {"store_id": "c", "timestamp_utc": t[2] + timedelta(hours=5), "status": "active"},
        {"store_id": "c", "timestamp_utc": t[0], "status": "unknown"},
    ])
    as_of = t[2] + timedelta(hours=1)
    runs = await store_runs(db, "c", as_of)
    assert [(r["_id"], r["status"], r["polls"], r["start2"], r["end2"]) for r in runs] == [
        ("c|2024-03-01T00:00:00.000Z", "active", 1, None, ms[0] + ms[1]),
        ("c|2024-03-01T00:00:00.001Z", "inactive", 2, ms[0] + ms[1],
         2 * int(as_of.timestamp() * 1000)),
    ]
    clipped = clip_runs(runs, ms[0] - 10, ms[2])
    assert [(r["start_ms"], r["end_ms"]) for r in clipped] == [
        (ms[0] - 10, ms[0] + 0.5), (ms[0] + 0.5, ms[2])]


async def test_store_runs_read_status_runs_cut_as_of(db):
    """With a runs follower current, store_runs reads the runs from status_runs: runs with
    first_poll <= as_of, the last holding up to as_of; a run going on after as_of keeps only
    its polls at or before as_of (last_poll, polls). Hand-computed: polls a@0 a@10 i@20 i@30
    i@40 a@50 (ms after t0): as of 35 ms -> active [.., 15 ms) 2 polls, inactive [15, 35) with
    polls 20 and 30 only; as of 19 ms -> one active run to 19 ms. The same as the on-the-fly
    path (no follower). A stored run changed by hand shows through (so it was read there);
    once the follower is stopped, the on-the-fly path answers again."""
    from uptime.timeline import RunsFollower, wait_current
    from uptime.web.runs import store_runs

    t0 = _z("2024-03-01T00:00")
    ms0 = int(t0.timestamp() * 1000)
    polls = [(0, "active"), (10, "active"), (20, "inactive"), (30, "inactive"),
             (40, "inactive"), (50, "active")]
    await db.store_status.insert_many([
        {"store_id": "r", "timestamp_utc": t0 + timedelta(milliseconds=m), "status": x}
        for m, x in polls])

    def shape(runs):
        return [(r["status"], r["first_poll"], r["last_poll"], r["polls"], r["start2"],
                 r["end2"]) for r in runs]

    def t(m):
        return t0 + timedelta(milliseconds=m)

    live_35 = await store_runs(db, "r", t(35))  # no follower: on the fly
    await ensure_current(db, apply=True)
    follower = RunsFollower(db)
    await follower.start()
    try:
        assert await wait_current(db, 30.0)
        stored_35 = await store_runs(db, "r", t(35))
        assert shape(stored_35) == [
            ("active", t(0), t(10), 2, None, 2 * ms0 + 30),
            ("inactive", t(20), t(30), 2, 2 * ms0 + 30, 2 * ms0 + 70),
        ]
        assert shape(stored_35) == shape(live_35)
        assert shape(await store_runs(db, "r", t(19))) == [
            ("active", t(0), t(10), 2, None, 2 * ms0 + 38)]
        assert await store_runs(db, "r", t(-1)) == []
        await db.status_runs.update_one({"store_id": "r", "first_poll": t(0)},
                                        {"$set": {"polls": 99}})
        assert shape(await store_runs(db, "r", t(60)))[0][3] == 99
    finally:
        await follower.stop()
    assert shape(await store_runs(db, "r", t(60)))[0][3] == 2


async def test_dashboard_needs_the_token_but_pages_load(db, settings):
    """With UPTIME_API_TOKEN set the dashboard's JSON routes are 401 without it and 200 with
    it; the HTML pages and static files load without it (their data comes from the API);
    the new routes are in the OpenAPI document, the pages are not."""
    await insert_dashboard_stores(db)
    secured = settings.model_copy(update={"api_token": "s3cret"})
    async with running_app(secured) as http:
        no = await http.get(f"/stores/{DST_STORE}/uptime")
        yes = await http.get(f"/stores/{DST_STORE}/uptime",
                             headers={"Authorization": "Bearer s3cret"})
        pages = [await http.get(p) for p in ("/", f"/ui/reports/{'a' * 32}",
                                             f"/ui/stores/{DST_STORE}?report=x",
                                             "/static/app.js", "/static/charts.js")]
        spec = (await http.get("/openapi.json", headers={"Authorization": "Bearer s3cret"})).json()
    assert no.status_code == 401 and yes.status_code == 200
    assert [p.status_code for p in pages] == [200] * 5
    assert 'data-store-id="dst-ny"' in pages[2].text and "<script" in pages[0].text
    assert {"/stores/{store_id}/uptime", "/stores/{store_id}/timeline",
            "/reports/{report_id}/summary", "/reports/{report_id}/rows/{store_id}"} <= set(spec["paths"])
    assert "/" not in spec["paths"]


async def test_rows_in_blocks_and_rows_stored_one_per_document_read_alike(db, settings, monkeypatch):
    """Issue 19: rows are stored in blocks (here 3 rows each: 8 stores -> blocks of 3, 3, 2 in
    store order); the summary, a prefix search across two blocks ("m": most-1 ends the second
    block, most-2 opens the third) and one row read from the last block answer the same as on
    rows stored one document per row (reports made before blocks), field for field."""
    from uptime.report import rows as stored_rows

    monkeypatch.setattr(stored_rows, "BLOCK_ROWS", 3)
    await insert_dashboard_stores(db)

    async def answers(http, report_id):
        return [(await http.get(url)).json() for url in (
            f"/reports/{report_id}/summary?worst=8", f"/reports/{report_id}/rows?prefix=m",
            f"/reports/{report_id}/rows?prefix=zero", f"/reports/{report_id}/rows/most-2",
            f"/reports/{report_id}/rows/full-3", f"/reports/{report_id}/rows?prefix=nope")]

    async with running_app(settings) as http:
        report_id, rows = await _report(http)
        blocks = await db.report_rows.find({"report_id": report_id}).sort("_id", 1).to_list()
        in_blocks = await answers(http, report_id)
        await db.report_rows.delete_many({"report_id": report_id})
        await db.report_rows.insert_many([
            {"_id": f"{report_id}|{r['store_id']}", "report_id": report_id, **r}
            for b in blocks for r in b["rows"]])
        one_per_document = await answers(http, report_id)
    assert [(b["first"], b["last"], b["n"]) for b in blocks] == [
        ("dst-ny", "full-2", 3), ("full-3", "most-1", 3), ("most-2", "zero-1", 2)]
    assert in_blocks == one_per_document
    summary, m, zero, most2, full3, nope = in_blocks
    assert summary["stores"] == 8 and [w["store_id"] for w in summary["worst"][:3]] == [
        "zero-1", "half-1", DST_STORE]
    assert [r["store_id"] for r in m] == ["most-1", "most-2"] and nope == []
    assert [r["store_id"] for r in zero] == ["zero-1"] and zero[0]["downtime_last_week"] == 168.0
    assert most2["store_id"] == "most-2" and f"{most2['downtime_last_week']:.2f}" == rows[
        "most-2"]["downtime_last_week"] == "8.00"
    assert full3["store_id"] == "full-3" and full3["downtime_last_week"] == 0.0
