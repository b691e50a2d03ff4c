"""Period reports through the service, the HTTP API and the CLI (issue 18, item 1): same
lifecycle as the hour/day/week report (id, Running, CSV in GridFS, progress, leases), the
report records its kind and period, and bad periods are 422s / usage errors naming them."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient
from typer.testing import CliRunner

from support.reports import T0, insert_stores
from support.app import poll_until_done, running_app
from uptime.report import period as P
from uptime.report import storage
from uptime.report.service import ReportService


async def _expected(db, period, as_of) -> str:
    out = io.StringIO()
    await P.write_period_csv(db, period, as_of, out)
    return out.getvalue()


async def test_month_report_by_http_is_stored_like_a_report(db, settings):
    """POST /trigger_report?period=2024-03 -> 202 and an id; /get_report gives the CSV, equal
    to the pipeline's rows (header of item 2); the report document says kind "period",
    the period {kind, label, from, to}, the period pipeline, progress 1, rows; GET /reports
    lists it with its period. 40 stores of T0 = 2024-03-12T15:00Z: March is in progress."""
    await insert_stores(db, 40)
    async with running_app(settings) as http:
        resp = await http.post("/trigger_report", params={"period": "2024-03"})
        assert resp.status_code == 202, resp.text
        report_id = resp.json()["report_id"]
        done = await poll_until_done(http, report_id)
        listed = (await http.get("/reports")).json()
    assert done.headers["content-type"].startswith("text/csv")
    expected = await _expected(db, P.parse_period("2024-03"), T0)
    assert done.text == expected
    lines = done.text.splitlines()
    assert lines[0] == "store_id,period_start,period_end,uptime_hours,downtime_hours,uptime_percent"
    assert len(lines) == 41
    # New York: March starts at 05:00Z (EST) and ends at 04:00Z (EDT)
    assert lines[1].split(",")[1:3] == ["2024-03-01T05:00:00.000Z", "2024-04-01T04:00:00.000Z"]
    doc = await db.reports.find_one({"_id": report_id})
    assert doc["status"] == "Complete" and doc["rows"] == 40 and doc["progress"] == 1.0
    assert doc["kind"] == "period" and doc["pipeline"] == P.PIPELINE_TAG
    assert doc["period"] == {"kind": "month", "label": "2024-03", "from": None, "to": None}
    assert doc["as_of"].replace(tzinfo=UTC) == T0 and doc["total_stores"] == 40
    assert doc["runs_source"] in (P.TIMELINE, P.ON_THE_FLY)
    mine = next(r for r in listed if r["report_id"] == report_id)
    assert mine["kind"] == "period" and mine["period"]["label"] == "2024-03"


async def test_range_report_by_http_equals_last_week(db, settings):
    """?from=T0-7d&to=T0 (UTC range): the CSV's hours equal the normal report's last-week
    columns for as_of T0 (item 2), and the period records the range."""
    await insert_stores(db, 12, polls_per_store=30)
    start = (T0 - timedelta(days=7)).isoformat().replace("+00:00", "Z")
    async with running_app(settings) as http:
        period_id = (await http.post("/trigger_report", params={
            "from": start, "to": "2024-03-12T15:00:00Z"})).json()["report_id"]
        normal_id = (await http.post("/trigger_report")).json()["report_id"]
        period_csv = (await poll_until_done(http, period_id)).text
        normal_csv = (await poll_until_done(http, normal_id)).text
    week = {r.split(",")[0]: r.split(",")[3:5] for r in period_csv.splitlines()[1:]}
    normal = {r.split(",")[0]: [r.split(",")[3], r.split(",")[6]] for r in normal_csv.splitlines()[1:]}
    assert week == normal and len(week) == 12
    doc = await db.reports.find_one({"_id": period_id})
    assert doc["period"]["kind"] == "range"
    assert doc["period"]["from"].replace(tzinfo=UTC) == T0 - timedelta(days=7)


@pytest.mark.parametrize(
    "params, name, says",
    [
        ({"period": "2024-13"}, "period", "month must be 01..12"),
        ({"period": "2024-Q5"}, "period", "quarter"),
        ({"period": "2021-W53"}, "period", "no week 53"),
        ({"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"}, "from", "must be before"),
        ({"from": "2024-03-02T00:00:00Z", "to": "2024-03-02T00:00:00Z"}, "from", "must be before"),
        ({"period": "2024-03", "from": "2024-03-01T00:00:00Z"}, "period", "not both"),
        ({"from": "2024-03-01T00:00:00Z"}, "to", "go together"),
        ({"from": "last week", "to": "2024-03-01T00:00:00Z"}, "from", ""),
        ({"period": "2024-03", "pipeline": "v2"}, "pipeline", "leave pipeline out"),
    ],
)
async def test_bad_period_is_a_422_naming_it(db, settings, params, name, says):
    """Bad periods are 422 JSON errors whose loc names the query parameter; nothing is stored."""
    async with running_app(settings) as http:
        resp = await http.post("/trigger_report", params=params)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"][0]
    assert detail["loc"] == ["query", name] and says in detail["msg"]
    assert await db.reports.count_documents({}) == 0


async def test_period_report_recovered_after_lost_lease(db, settings):
    """A Running period report whose lease expired (its process died) is claimed by a new
    service and generated again as the same period report."""
    await insert_stores(db, 5)
    first = ReportService(db, settings, owner="dead")
    report_id = await first.trigger(T0, period=P.parse_period("2024-W11"))
    await first.stop()  # releases the lease (expired at once), as a crash would later
    await db.reports.update_one({"_id": report_id}, {"$set": {"status": "Running"}})
    second = ReportService(db, settings, owner="alive")
    await second.start(background=False)
    try:
        doc = await second.wait(report_id)
    finally:
        await second.stop()
    assert doc["status"] == "Complete" and doc["attempt"] == 2 and doc["kind"] == "period"
    buf = io.BytesIO()
    await storage.write_csv(db, doc["file_id"], buf)
    assert buf.getvalue().decode() == await _expected(db, P.parse_period("2024-W11"), T0)


def test_cli_month_report(cli_env, mongo_uri, db_name, tmp_path):
    """`report --period 2024-03 --as-of T --output FILE` writes the period CSV; a bad period
    and --period with --from are usage errors (exit 2) naming the option."""
    client = MongoClient(mongo_uri)
    try:
        db = client[db_name]
        db.store_status.insert_many([
            {"store_id": "a", "timestamp_utc": datetime(2024, 3, 5, tzinfo=UTC), "status": "active"},
            {"store_id": "a", "timestamp_utc": datetime(2024, 3, 6, tzinfo=UTC), "status": "inactive"},
        ])
        db.store_timezones.insert_one({"store_id": "a", "timezone_str": "UTC"})
        out = tmp_path / "march.csv"
        result = CliRunner().invoke(
            __import__("uptime.cli", fromlist=["app"]).app,
            ["report", "--period", "2024-03", "--as-of", "2024-03-07T00:00:00Z", "--output", str(out)],
        )
        assert result.exit_code == 0, result.output
        # 24x7 UTC: active until the midpoint 03-05T12:00, inactive to as_of 03-07T00:00
        assert out.read_text().splitlines() == [
            "store_id,period_start,period_end,uptime_hours,downtime_hours,uptime_percent",
            "a,2024-03-01T00:00:00.000Z,2024-04-01T00:00:00.000Z,108.00,36.00,75.00",
        ]
        assert db.reports.find_one({})["period"]["label"] == "2024-03"
        # --from/--to (the README's second form): [03-04, 03-07) UTC, the first poll's status
        # before it: active 03-04T00:00 -> midpoint 03-05T12:00 (36 h), inactive to 03-07 (36 h)
        ranged = tmp_path / "range.csv"
        result = CliRunner().invoke(
            __import__("uptime.cli", fromlist=["app"]).app,
            ["report", "--from", "2024-03-04T00:00:00Z", "--to", "2024-03-07T00:00:00Z",
             "--as-of", "2024-03-07T00:00:00Z", "--output", str(ranged)],
        )
        assert result.exit_code == 0, result.output
        assert ranged.read_text().splitlines()[1] == (
            "a,2024-03-04T00:00:00.000Z,2024-03-07T00:00:00.000Z,36.00,36.00,50.00")
        for args, says in ((["--period", "2024-Q5"], "quarter"),
                           (["--period", "2024-03", "--from", "2024-03-01"], "not both")):
            bad = CliRunner().invoke(__import__("uptime.cli", fromlist=["app"]).app,
                                     ["report", *args, "--output", str(out)])
            assert bad.exit_code == 2 and says in " ".join(bad.output.split()), bad.output
    finally:
        client.close()


async def test_timeline_when_current_else_runs_derived_from_the_polls(db, settings):
    """Rule (common brief, derived state): a period report reads the timeline when it is
    current (a follower has applied every write), and otherwise — here a follower in another
    process is alive (fresh heartbeat) but has not applied a poll that arrived — derives the
    runs from store_status after its short wait budget: the report still completes without
    waiting on the follower, and its CSV includes the new poll (exact), equal to a report on a
    rebuilt timeline. (A follower that stopped cleanly says so, and the report then resumes one
    from its token instead: tests/timeline.)"""
    from support.pipeline import ensure_indexes
    from uptime.timeline import RunsFollower, rebuild_runs, wait_current
    from uptime.timeline.follower import STATE_COLLECTION, STATE_ID

    await ensure_indexes(db)
    await insert_stores(db, 6, polls_per_store=48)
    follower = RunsFollower(db)
    await follower.start()
    service = ReportService(db, settings)
    await service.start(background=False, recover=False)
    week = P.parse_period("2024-W11")  # 2024-03-11 .. 03-17, in progress at T0
    try:
        assert await wait_current(db, 60)
        first = await service.wait(await service.trigger(T0, period=week))
        await follower.stop()
        # another process's follower: alive (fresh heartbeat) but not applying anything
        await db[STATE_COLLECTION].update_one(
            {"_id": STATE_ID}, {"$set": {"heartbeat": datetime.now(UTC), "owner": "elsewhere:1"}})
        # s000001 goes inactive for the last hour: the timeline does not know it
        await db.store_status.insert_one(
            {"store_id": "s000001", "timestamp_utc": T0 - timedelta(minutes=1), "status": "inactive"})
        assert not await wait_current(db, 0)
        second = await service.wait(await service.trigger(T0, period=week))
    finally:
        await service.stop()
        await follower.stop()
    assert (first["status"], second["status"]) == ("Complete", "Complete")
    assert (first["runs_source"], second["runs_source"]) == (P.TIMELINE, P.ON_THE_FLY)
    csvs = []
    for doc in (first, second):
        buf = io.BytesIO()
        await storage.write_csv(db, doc["file_id"], buf)
        csvs.append(buf.getvalue().decode())
    assert csvs[0] != csvs[1]
    row0 = [r for r in csvs[0].splitlines() if r.startswith("s000001,")][0].split(",")
    row1 = [r for r in csvs[1].splitlines() if r.startswith("s000001,")][0].split(",")
    assert float(row1[4]) > float(row0[4])  # more downtime with the new poll
    await rebuild_runs(db)
    rows = [r async for r in P.iter_period_rows(db, week, as_of=T0, mode=P.TIMELINE)]
    assert [P.csv_line_values(r) for r in rows] == [
        line.split(",") for line in csvs[1].splitlines()[1:]]


async def test_bench_period_phase_small(client, tmp_path):
    """The bench phase (uptime.tools.bench.period) on 25 generated stores: it times the floor,
    the pipeline and the service, reports a ratio, finds the on-the-fly rows equal to the
    timeline's, and drops its database."""
    from uptime.tools.bench import period as bench_period

    before = set(await client.list_database_names())
    result = await bench_period.bench_period(client, tmp_path / "cache", tmp_path, stores=25,
                                             days=33, runs=1, say=lambda *_: None)
    assert result["rows"] == 25 and result["floor_runs"] > 25
    assert result["on_the_fly_equal"] is True
    assert result["ratio"] == min(result["period_s"]) / min(result["floor_s"]) > 0
    target = bench_period.target(result)
    assert target["pass"] == (result["ratio"] <= 3.0)
    assert "month 2023-01" in target["target"]
    assert bench_period.targets({"month": result, "year": None}) == [target]
    assert set(await client.list_database_names()) == before
