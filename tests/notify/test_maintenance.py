"""Maintenance windows (issue 17, item 4): in_maintenance against a real mongod, with
hand-computed instants (each store's local time by MongoDB's $dateFromParts, as the report's
rules 4-5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from support.app import LIFESPAN_TIMEOUT_S, running_app
from uptime.notify import maintenance as mw
from uptime.platform.migrations import migrate_up


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.fixture
async def mdb(db):
    await migrate_up(db)
    await db.store_timezones.insert_many([
        {"store_id": "ny", "timezone_str": "America/New_York"},
        {"store_id": "in", "timezone_str": "Asia/Kolkata"},
        {"store_id": "bad", "timezone_str": "US/Chicagoo"},   # unknown → America/Chicago
        {"store_id": "two", "timezone_str": "Asia/Kolkata"},  # several → the smallest name
        {"store_id": "two", "timezone_str": "America/New_York"},
    ])
    return db


ALL = ["ny", "in", "bad", "none", "two"]  # "none": no zone row → America/Chicago


async def test_one_off_window_is_half_open_and_per_store(mdb):
    """Rule: a one-off window covers [start, end) in UTC; without stores it covers every
    store asked about; with stores only those."""
    await mw.add_once(mdb, "all", z("2024-03-04T12:00:00Z"), z("2024-03-04T13:00:00Z"))
    await mw.add_once(mdb, "ny-only", z("2024-03-05T12:00:00Z"), z("2024-03-05T13:00:00Z"),
                      stores=["ny", "elsewhere"])
    assert await mw.in_maintenance(mdb, ALL, z("2024-03-04T11:59:59.999Z")) == set()
    assert await mw.in_maintenance(mdb, ALL, z("2024-03-04T12:00:00Z")) == set(ALL)
    assert await mw.in_maintenance(mdb, ALL, z("2024-03-04T13:00:00Z")) == set()
    assert await mw.in_maintenance(mdb, ALL, z("2024-03-05T12:30:00Z")) == {"ny"}
    assert await mw.in_maintenance(mdb, ["in"], z("2024-03-05T12:30:00Z")) == set()


async def test_weekly_window_in_each_stores_local_time(mdb):
    """Rule: Monday 09:00-10:00 local is 14:00-15:00Z in New York (EST), 03:30-04:30Z in
    Kolkata, 15:00-16:00Z in Chicago (CST; also the unknown zone and the store without one);
    a store with two zones uses the smallest name (America/New_York). 2024-03-04 is a Monday."""
    await mw.add_weekly(mdb, "mon", [0], "09:00", "10:00")
    assert await mw.in_maintenance(mdb, ALL, z("2024-03-04T14:30:00Z")) == {"ny", "two"}
    assert await mw.in_maintenance(mdb, ALL, z("2024-03-04T04:00:00Z")) == {"in"}
    assert await mw.in_maintenance(mdb, ALL, z("2024-03-04T15:30:00Z")) == {"bad", "none"}
    assert await mw.in_maintenance(mdb, ALL, z("2024-03-04T16:00:00Z")) == set()
    # a week later New York is on EDT (UTC-4): 09:30 local is 13:30Z; Chicago (CDT) 14:30Z
    assert await mw.in_maintenance(mdb, ALL, z("2024-03-11T13:30:00Z")) == {"ny", "two"}
    assert await mw.in_maintenance(mdb, ALL, z("2024-03-11T14:30:00Z")) == {"bad", "none"}
    assert await mw.in_maintenance(mdb, ALL, z("2024-03-05T14:30:00Z")) == set()  # Tuesday


async def test_overnight_window_continues_into_the_next_day(mdb):
    """Rule: end <= start ends the next local day: Monday 22:00-02:00 New York covers
    Tuesday 01:59 local (06:59Z) but not Tuesday 02:00 (07:00Z) nor Monday 21:59 (02:59Z Tue);
    a Sunday 22:00-24:00 window ends at local midnight."""
    await mw.add_weekly(mdb, "night", [0], "22:00", "02:00", stores=["ny"])
    await mw.add_weekly(mdb, "sun", [6], "22:00", "24:00", stores=["ny"])
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-05T03:00:00Z")) == {"ny"}
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-05T06:59:00Z")) == {"ny"}
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-05T07:00:00Z")) == set()
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-05T02:59:00Z")) == set()
    # Sunday 2024-03-03 22:00-24:00 EST = 03:00Z-05:00Z Monday
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-04T04:59:59Z")) == {"ny"}
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-04T05:00:00Z")) == set()


async def test_dst_nights_resolve_like_the_report(mdb):
    """Rule 4: on 2024-03-10 (New York springs forward at 02:00) a Sunday 01:30-03:30 window
    is 06:30Z-07:30Z (01:30 EST; 03:30 EDT); 02:00-03:00 is empty (02:00 counts as if the clock
    had not jumped: 07:00Z = 03:00 EDT). On 2024-11-03 (falls back) 01:00-01:30 resolves to
    the later 01:00 (EST): 06:00Z-06:30Z, so 05:15Z (01:15 EDT) is outside."""
    await mw.add_weekly(mdb, "spring", [6], "01:30", "03:30", stores=["ny"])
    await mw.add_weekly(mdb, "gap", [6], "02:00", "03:00", stores=["in"])  # not NY: control
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-10T06:29:00Z")) == set()
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-10T07:15:00Z")) == {"ny"}
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-10T07:30:00Z")) == set()
    await mw.remove_window(mdb, "spring")
    await mw.add_weekly(mdb, "empty", [6], "02:00", "03:00", stores=["ny"])
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-10T07:00:00Z")) == set()
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-10T06:59:00Z")) == set()
    await mw.remove_window(mdb, "empty")
    await mw.add_weekly(mdb, "fall", [6], "01:00", "01:30", stores=["ny"])
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-11-03T05:15:00Z")) == set()
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-11-03T06:15:00Z")) == {"ny"}
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-11-03T06:30:00Z")) == set()


async def test_bad_windows_are_refused_and_names_unique(mdb):
    """Rule: bad input raises WindowError naming the field (422), a name in use is 409, an
    unknown name on remove 404."""
    cases = [
        (lambda: mw.add_weekly(mdb, "w", [7], "09:00", "10:00"), "days"),
        (lambda: mw.add_weekly(mdb, "w", [], "09:00", "10:00"), "days"),
        (lambda: mw.add_weekly(mdb, "w", [1], "9am", "10:00"), "start"),
        (lambda: mw.add_weekly(mdb, "w", [1], "09:00", "24:01"), "end"),
        (lambda: mw.add_once(mdb, "w", z("2024-01-02T00:00:00Z"), z("2024-01-01T00:00:00Z")),
         "end"),
        (lambda: mw.add_once(mdb, "../w", z("2024-01-01T00:00:00Z"),
                             z("2024-01-02T00:00:00Z")), "name"),
        (lambda: mw.add_weekly(mdb, "w", [1], "09:00", "10:00", stores=[]), "stores"),
    ]
    for make, field in cases:
        with pytest.raises(mw.WindowError) as info:
            await make()
        assert (info.value.field, info.value.status) == (field, 422)
    await mw.add_weekly(mdb, "w", [1], "09:00", "10:00")
    with pytest.raises(mw.WindowError) as info:
        await mw.add_weekly(mdb, "w", [2], "09:00", "10:00")
    assert info.value.status == 409
    with pytest.raises(mw.WindowError) as info:
        await mw.remove_window(mdb, "nope")
    assert info.value.status == 404
    [view] = await mw.list_windows(mdb)
    assert (view["days"], view["start_local"], view["end_local"]) == ([1], "09:00", "10:00")


async def test_mongosh_runs_the_pipeline_as_the_sidecar_says(mdb, mongo_uri, mongosh):
    """Rule (house): the pipeline file runs in mongosh with the sidecar's command and gives
    what in_maintenance gives."""
    import asyncio
    import json
    import subprocess
    from pathlib import Path

    await mw.add_weekly(mdb, "mon", [0], "09:00", "10:00")
    path = Path(__file__).resolve().parents[2] / "pipelines" / "maintenance.v1.json"
    script = (
        f'db = db.getSiblingDB("{mdb.name}");'
        f'const stages = EJSON.parse(fs.readFileSync({json.dumps(str(path))}, "utf8"));'
        'print(EJSON.stringify(db.maintenance_windows.aggregate(stages, {let: {'
        'store_ids: ["ny", "in", "none"], at: ISODate("2024-03-04T14:30:00Z"),'
        'timezones: ["America/New_York", "Asia/Kolkata"]}, comment: "maintenance@v1"})'
        '.toArray()))')
    out = await asyncio.to_thread(
        subprocess.run, [mongosh, mongo_uri, "--quiet", "--eval", script],
        capture_output=True, text=True, timeout=120, check=True)
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert rows == [{"_id": "ny", "windows": ["mon"]}]
    assert await mw.in_maintenance(mdb, ["ny", "in", "none"], z("2024-03-04T14:30:00Z")) == {"ny"}


async def test_api_and_cli(mdb, settings, monkeypatch):
    """Rule: POST /maintenance adds (201), refuses bad input with a 422 naming the field and a
    duplicate with 409, GET lists, DELETE removes (204, then 404); the CLI adds a weekly window
    (exit 0), refuses a half-given one (exit 2) and lists it."""
    import asyncio

    import httpx
    from asgi_lifespan import LifespanManager
    from typer.testing import CliRunner

    from uptime.platform.settings import get_settings
    from uptime.web import app as api

    app = api.create_app(settings)
    async with LifespanManager(app, startup_timeout=LIFESPAN_TIMEOUT_S,
                                shutdown_timeout=LIFESPAN_TIMEOUT_S) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            once = await http.post("/maintenance", json={
                "name": "deploy", "kind": "once", "start": "2024-03-04T12:00:00Z",
                "end": "2024-03-04T14:00:00+01:00", "stores": ["ny"]})
            backwards = await http.post("/maintenance", json={
                "name": "b", "kind": "once", "start": "2024-03-04T12:00:00Z",
                "end": "2024-03-04T11:00:00Z"})
            digits = await http.post("/maintenance", json={
                "name": "b", "kind": "once", "start": "1700000000", "end": "1700003600"})
            nodays = await http.post("/maintenance", json={
                "name": "w", "kind": "weekly", "start_local": "09:00", "end_local": "10:00"})
            weekly = await http.post("/maintenance", json={
                "name": "w", "kind": "weekly", "days": [0], "start_local": "09:00",
                "end_local": "10:00"})
            dup = await http.post("/maintenance", json={
                "name": "w", "kind": "weekly", "days": [1], "start_local": "09:00",
                "end_local": "10:00"})
            listed = await http.get("/maintenance")
            gone = await http.delete("/maintenance/deploy")
            again = await http.delete("/maintenance/deploy")
    assert once.status_code == 201, once.text
    assert once.json()["end"].startswith("2024-03-04T13:00:00")  # 14:00+01:00 stored as UTC
    assert backwards.status_code == 422 and backwards.json()["detail"][0]["loc"] == [
        "body", "end"]
    assert digits.status_code == 422 and digits.json()["detail"][0]["loc"] == ["body", "start"]
    assert nodays.status_code == 422 and nodays.json()["detail"][0]["loc"] == ["body", "days"]
    assert (weekly.status_code, dup.status_code) == (201, 409)
    assert [w["name"] for w in listed.json()] == ["deploy", "w"]
    assert (gone.status_code, again.status_code) == (204, 404)

    monkeypatch.setenv("MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("MONGODB_DATABASE", settings.mongodb_database)
    get_settings.cache_clear()
    from uptime.cli import app as cli

    def run(*args):
        return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})

    try:
        half = await asyncio.to_thread(run, "maintenance", "add", "x", "--days", "0")
        add = await asyncio.to_thread(run, "maintenance", "add", "night", "--days", "0,1",
                                      "--from", "22:00", "--to", "02:00", "--store", "ny")
        listing = await asyncio.to_thread(run, "maintenance", "list")
    finally:
        get_settings.cache_clear()
    assert half.exit_code == 2
    assert add.exit_code == 0, add.output
    assert "night" in listing.output and "22:00-02:00" in listing.output
    assert await mw.in_maintenance(mdb, ["ny"], z("2024-03-05T04:00:00Z")) == {"ny"}


@pytest.mark.parametrize("body, where", [
    ({"name": "a", "kind": "weekly", "days": [1], "start_local": "01:00", "end_local": "02:00",
      "start": []}, ["body", "start"]),
    ({"name": "b", "kind": "once", "start": "2024-01-01T00:00:00Z",
      "end": "2024-01-02T00:00:00Z", "stores": [[]]}, ["body", "stores", 0]),
    ({"name": "c", "kind": "once", "start": "2024-01-01T00:00:00Z",
      "end": "2024-01-02T00:00:00Z", "stores": {}}, ["body", "stores"]),
    ({"kind": "once"}, ["body", "name"]),
])
async def test_schema_violating_bodies_are_422(mdb, settings, body, where):
    """Rule (issue 15 item 2): a POST /maintenance body that violates its schema (a start that
    is an array, stores that are not a list of strings, no name) is a 422 naming the field,
    and nothing is stored (the case schemathesis's negative run reported as accepted)."""
    async with running_app(settings, follow_runs=False) as http:
        r = await http.post("/maintenance", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == where
    assert await mdb.maintenance_windows.count_documents({}) == 0
