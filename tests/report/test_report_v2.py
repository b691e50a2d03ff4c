"""Report pipeline v2 (issue 8, items 4-5): its CSV is byte-identical to v1's, on seeded
random stores over a long history (as_of before, at, between and after polls, in the middle
of the stored history, in DST weeks of New York, Beirut and Sydney; single-poll stores,
duplicates, gaps longer than the week) and on the public Loop files; version selection.

v2 reads ``status_runs`` built here by the contract's Python model (tests/support/runs_model.py) from
*all* stored polls, including those after as_of, as the live timeline would hold them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
from datetime import datetime, timedelta

import pytest

from support.pipeline import hours, load, poll, prepare_v2, report_list, utc, zone
from support.pipeline_synth import random_store
from support.public import sample_rows
from support.runs_model import runs_of
from uptime.report import pipeline as P
from uptime.report import storage, windows
from uptime.report.service import ReportService

ZONES = ["America/New_York", "Asia/Beirut", "Australia/Sydney", "America/Chicago"]


def csv_text(rows: list[dict]) -> str:
    """The report CSV the service writes for ``rows`` (header, 2-decimal numbers)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(P.REPORT_COLUMNS)
    for row in rows:
        writer.writerow(storage.csv_line_values(row))
    return out.getvalue()


async def both(db, as_of: datetime) -> tuple[str, str, list[dict]]:
    v1 = await report_list(db, as_of, version="v1")
    v2 = await report_list(db, as_of, version="v2", prepared=True)
    return csv_text(v1), csv_text(v2), v1


def _history(seed: int, end: datetime) -> tuple[list, list, list]:
    """40 random edge-case stores polled over the 40 days before ``end`` (some every 20 min,
    some every 3 h), plus hand-made ones: a single poll, a 12-day gap, duplicates only,
    polls only late in the history."""
    rng = random.Random(seed)
    polls, hrs, zs = [], [], []
    for i in range(40):
        sid = rng.choice([str(rng.randrange(10**18, 10**19)), f"{rng.getrandbits(48):012x}-{i}"])
        d = random_store(rng, sid, end, days=40, poll_minutes=rng.choice([20, 60, 180]),
                         zones=ZONES, realistic=False)
        polls += d.polls
        hrs += d.hours
        zs += d.timezones
    single = end - timedelta(days=20, minutes=7)
    polls.append(poll("single", single, "inactive"))
    gap_end = end - timedelta(days=10)
    polls += [poll("gap", gap_end - timedelta(days=12, hours=h), "inactive" if h % 2 else "active") for h in range(5)]
    polls += [poll("gap", gap_end + timedelta(hours=h), "active") for h in range(3)]
    polls += [poll("dups", end - timedelta(days=15), "active")] * 3 + [poll("dups", end - timedelta(days=15), "inactive")]
    polls += [poll("late", end - timedelta(days=2, hours=h)) for h in range(4)]
    hrs += [hours("gap", d, "08:00:00", "20:00:00") for d in range(5)]
    zs += [zone("gap", "Asia/Beirut"), zone("single", "Australia/Sydney")]
    return polls, hrs, zs


@pytest.mark.parametrize(
    ("end", "builder"),
    [("2024-04-10T12:00:00Z", "model"), ("2024-11-20T03:30:00Z", "model"),
     ("2024-10-15T16:00:00Z", "model"), ("2024-04-10T12:00:00Z", "timeline")],
    ids=["ny-beirut-spring", "ny-beirut-fall", "sydney-spring", "timeline-runs"],
)
async def test_v2_csv_equals_v1_over_history(db, end, builder):
    """Item 5: for as_of at every kind of place in a 40-day history — before the first poll,
    exactly at a poll, 1 ms before and after one, half-way between two, in the middle of the
    history (the timeline then holds later polls, which must not count), after the last
    poll, and weeks after it, across the DST changes of New York, Beirut and Sydney — the v2
    CSV is byte-identical to v1's, with the runs built by the contract's Python model and by
    the timeline's own pipeline (uptime.timeline.rebuild_runs)."""
    end_t = utc(end)
    polls, hrs, zs = _history(sum(map(ord, end)), end_t)
    await load(db, polls, hrs, zs)
    await prepare_v2(db, builder)
    instants = sorted({p["timestamp_utc"] for p in polls if p["status"] in ("active", "inactive")})
    rng = random.Random(3)
    picks = rng.sample(instants, 6)
    candidates = [instants[0] - timedelta(hours=1), instants[0], end_t + timedelta(days=9),
                  end_t - timedelta(days=10), end_t - timedelta(days=20, minutes=7), end_t]
    for t in picks:
        k = instants.index(t)
        candidates += [t, t - timedelta(milliseconds=1), t + timedelta(milliseconds=1)]
        if k + 1 < len(instants):
            candidates.append(t + (instants[k + 1] - t) / 2)
    candidates += [end_t - timedelta(days=d) for d in (4, 8, 16, 25, 33)]  # mid-history DST weeks
    nonempty = 0
    for as_of in candidates:
        as_of = P.to_utc(as_of)
        v1, v2, rows = await both(db, as_of)
        assert v2 == v1, f"as_of {as_of.isoformat()}"
        nonempty += bool(rows)
    assert nonempty >= len(candidates) - 1  # only "before the first poll" may be empty


async def test_v2_long_gap_spanning_the_week(db):
    """A store polled 20 and 1 days before T... and then after T: for T inside the gap the
    last poll before the gap (inactive) holds the whole week on both versions, although the
    timeline's run around it ends (at the gap's midpoint) before the week starts. Hand value:
    168 h down; the store polled active only after T has no row."""
    t = utc("2024-05-20T12:00:00Z")
    await load(db, [poll("g", t - timedelta(days=20)), poll("g", t - timedelta(days=19), "inactive"),
                    poll("g", t + timedelta(days=1)), poll("h", t + timedelta(hours=1))])
    await prepare_v2(db)
    v1, v2, rows = await both(db, t)
    assert v1 == v2
    assert [(r["store_id"], r["downtime_last_week"], r["uptime_last_week"]) for r in rows] == [("g", 168.0, 0.0)]


async def test_v2_single_poll_and_poll_at_as_of(db):
    """Single-poll stores (before, at and after T) and a poll exactly at T: hand values as v1:
    'a' inactive 3 h before T -> 60 min / 24 h / 168 h down; 'b' active at T -> all up; 'c'
    after T -> no row."""
    t = utc("2024-03-10T08:30:00Z")  # New York spring-forward morning
    await load(db, [poll("a", t - timedelta(hours=3), "inactive"), poll("b", t), poll("c", t + timedelta(milliseconds=1))],
               zones=[zone("a", "America/New_York"), zone("b", "America/New_York")])
    await prepare_v2(db)
    v1, v2, rows = await both(db, t)
    assert v1 == v2
    assert [r["store_id"] for r in rows] == ["a", "b"]
    assert (rows[0]["downtime_last_hour"], rows[0]["downtime_last_day"], rows[0]["downtime_last_week"]) == (60.0, 24.0, 168.0)
    assert (rows[1]["uptime_last_hour"], rows[1]["uptime_last_week"]) == (60.0, 168.0)


async def test_v2_csv_equals_v1_on_public_files(db, public_data, tmp_path):
    """Item 5 on the public Loop files (v1 2023 and v2 2024 samples, imported with the
    importer, which also builds the schedules): both reports, and the default report once the
    day's business hours are cached (v3, issue 19), generated by the report service into
    GridFS, have the same bytes; the stored reports record their versions. (v2 runs only
    on a current timeline, issue 14: a follower keeps it current here.)"""
    from uptime.ingest.importer import import_files
    from uptime.platform.settings import Settings
    from uptime.timeline import RunsFollower, wait_current

    from support.runs_model import rebuild_runs_model

    await load(db)
    for folder, status in (("loop_v1_2023", "store_status_head_sample.csv"), ("loop_v2_2024", "store_status_sample.csv")):
        src = public_data / folder
        await db.store_status.delete_many({})
        # the hours and zones rows of the stores the poll sample has: the report reads only
        # these stores' rows (the full v1 files take ~20 s to import on 2 shared cores and
        # are imported in full by tests/ingest/test_import.py and test_hygiene.py)
        hours, zones = sample_rows(src, status, tmp_path / folder)
        await import_files(db, status=src / status, hours=hours, timezones=zones,
                           rejects=tmp_path / f"{folder}/")
        assert await db.store_schedules.count_documents({}) > 300
        follower = RunsFollower(db)
        await follower.start()
        assert await wait_current(db, 60.0)
        as_of = await P.resolve_as_of(db, None)
        service = ReportService(db, Settings(lease_seconds=30), owner="t")
        await service.start(background=False, recover=False)
        files = {}
        for version in ("v1", "v2", "v3"):
            if version == "v3":  # issue 19: the default report on the day's cached hours
                await windows.build_windows(db, as_of, P.known_timezones)
            rid = await service.trigger(as_of, None if version == "v3" else version)
            doc = await service.wait(rid)
            assert doc["status"] == "Complete" and doc["pipeline"] == f"store_uptime@{version}", doc
            buf = io.BytesIO()
            await storage.write_csv(db, doc["file_id"], buf)
            files[version] = buf.getvalue()
        await service.stop()
        await follower.stop()
        assert files["v1"] == files["v2"] == files["v3"] and files["v1"].count(b"\n") > 100, folder


async def test_schedules_follow_hours_and_timezone_imports(db, tmp_path):
    """An hours or timezones import recomputes the schedules of the stores it mentions
    (issue 8, item 4): a store moved to New York and given Monday hours gets them in
    store_schedules; a store absent from the file keeps its schedule."""
    from uptime.ingest.importer import import_file

    await load(db)
    (tmp_path / "tz.csv").write_text("store_id,timezone_str\na,America/New_York\nb,Asia/Beirut\n")
    (tmp_path / "h.csv").write_text("store_id,dayOfWeek,start_time_local,end_time_local\na,0,09:00:00,23:59:59\n")
    await import_file(db, "timezones", tmp_path / "tz.csv")
    await import_file(db, "hours", tmp_path / "h.csv")
    docs = {d["_id"]: d async for d in db.store_schedules.find()}
    assert docs["a"]["zones"] == ["America/New_York"] and docs["b"]["zones"] == ["Asia/Beirut"]
    assert docs["a"]["hours"] == [{"d": 0, "sh": 9, "sm": 0, "ss": 0, "eh": 0, "em": 0, "es": 0, "ed": 1}]
    assert docs["b"]["hours"] == []
    (tmp_path / "tz2.csv").write_text("store_id,timezone_str\na,Australia/Sydney\n")
    await import_file(db, "timezones", tmp_path / "tz2.csv")
    docs = {d["_id"]: d async for d in db.store_schedules.find()}
    assert docs["a"]["zones"] == ["Australia/Sydney"] and docs["b"]["zones"] == ["Asia/Beirut"]


def test_runs_model_follows_the_contract():
    """The test's own runs builder: polls 10:00 A, 10:00 I (inactive wins), 11:00 I,
    12:00:00.001 A, invalid ones ignored -> two runs; the bound is the half-ms-exact sum of
    11:00 and 12:00:00.001 (2 x epoch ms), open at both ends."""
    rows = [poll("s", "2024-05-01T10:00:00Z"), poll("s", "2024-05-01T10:00:00Z", "inactive"),
            poll("s", "2024-05-01T11:00:00Z", "inactive"), poll("s", "2024-05-01T12:00:00.001Z"),
            poll("s", "2024-05-01T11:30:00Z", "bad"), {"store_id": 5, "timestamp_utc": utc("2024-05-01T11:40:00Z"), "status": "active"}]
    runs = runs_of(rows)
    b = int(utc("2024-05-01T11:00:00Z").timestamp() * 1000) + int(utc("2024-05-01T12:00:00.001Z").timestamp() * 1000)
    assert [(r["_id"], r["status"], r["polls"], r["start2"], r["end2"]) for r in runs] == [
        ("s|2024-05-01T10:00:00.000Z", "inactive", 2, None, b),
        ("s|2024-05-01T12:00:00.001Z", "active", 1, b, None),
    ]
    assert runs[0]["end"] == utc("2024-05-01T11:30:00.000Z")


async def test_v2_reads_only_the_weeks_runs_through_the_index(db):
    """Cost rule (sidecar v2): the runs are read through runs_end2_first_poll with bounds from
    the let variables, so runs that ended before the week are not examined: a store with 200
    status changes over 50 days and T at the end: keys examined <= runs overlapping the week
    + 1, never the whole history."""
    t = utc("2024-05-20T12:00:00Z")
    await load(db, [poll("s", t - timedelta(hours=6 * k), "inactive" if k % 2 else "active") for k in range(200)])
    await prepare_v2(db)
    explained = await db.command({
        "explain": {"aggregate": "status_runs", "pipeline": P.load_pipeline("v2"), "cursor": {},
                    "let": P.report_let(t, []), "allowDiskUse": True},
        "verbosity": "executionStats"})
    first = explained["stages"][0]["$cursor"]
    plan = str(first["queryPlanner"]["winningPlan"])
    assert "runs_end2_first_poll" in plan and "COLLSCAN" not in plan
    stats = first["executionStats"]
    assert stats["nReturned"] == 28 and stats["totalKeysExamined"] <= 29  # 7 d / 6 h = 28 runs
    assert await db.status_runs.count_documents({}) == 200


async def test_v3_reads_only_the_weeks_inactive_runs_and_one_key_per_store(db):
    """Cost rule (sidecar v3, issue 19): v3 fetches only the inactive runs that overlap the
    week (index runs_status_store_end2, bounds from the let variables) of its store range, and
    finds the report's stores by a DISTINCT_SCAN of store_id_1_first_poll_1 (one key per
    store, no fetch). Stores "s" and "u", each with 200 runs 6 h long over 50 days,
    alternating, T at the end (an active poll): each week holds 28 runs, 14 of them inactive,
    and the open run is active -> 28 documents fetched for both stores, never the whole
    history; with the range [t, ...) only u's 14."""
    from support.pipeline import prepare_v3

    t = utc("2024-05-20T12:00:00Z")
    await load(db, [poll(s, t - timedelta(hours=6 * k), "inactive" if k % 2 else "active")
                    for k in range(200) for s in "su"])
    await prepare_v2(db)
    build = await prepare_v3(db, t)
    for store_range, fetched in (((None, None), 28), (("t", None), 14)):
        let = P.report_let(t, [], store_range) | {"build": build}
        explained = await db.command({
            "explain": {"aggregate": "status_runs", "pipeline": P.load_pipeline("v3"),
                        "cursor": {}, "let": let, "allowDiskUse": True},
            "verbosity": "executionStats"})
        first = explained["stages"][0]["$cursor"]
        assert "DISTINCT_SCAN" in str(first["queryPlanner"]["winningPlan"])
        assert "store_id_1_first_poll_1" in str(first["queryPlanner"]["winningPlan"])
        assert first["executionStats"]["totalDocsExamined"] == 0
        reads = [s["$unionWith"] for s in explained["stages"] if "$unionWith" in s]
        inactive = reads[0]["pipeline"][0]["$cursor"]
        assert "runs_status_store_end2" in str(inactive["queryPlanner"]["winningPlan"])
        assert inactive["executionStats"]["nReturned"] == fetched
        assert inactive["executionStats"]["totalDocsExamined"] == fetched
    assert await db.status_runs.count_documents({}) == 400


def test_unknown_version_is_a_clear_error():
    """Selection (item 4): v1, v2 and v3 (issue 19) are installed; anything else is a
    ValueError naming the known versions; report documents name their version, older ones
    count as v1."""
    assert P.check_version("v1") == "v1" and P.check_version("v2") == "v2"
    assert P.check_version("v3") == "v3"
    with pytest.raises(ValueError, match="known: v1, v2, v3"):
        P.check_version("v4")
    assert P.version_of_tag("store_uptime@v2") == "v2" and P.version_of_tag(None) == "v1"
    assert P.version_of_tag("store_uptime@v3") == "v3"


async def test_api_pipeline_parameter(db, settings):
    """POST /trigger_report?pipeline=v1|v2 (or in the JSON body) selects the version, the report
    records it ("store_uptime@vN") and both CSVs are equal; an unknown version, or two
    different ones, is a 422 naming the problem and stores nothing."""
    from support.app import poll_until_done, running_app
    from support.reports import T0, insert_stores

    await insert_stores(db, 12)
    await load(db)
    await prepare_v2(db)
    async with running_app(settings) as http:
        bad = await http.post("/trigger_report", params={"pipeline": "v9"})
        assert bad.status_code == 422 and "'v1' or 'v2'" in bad.text and '"pipeline"' in bad.text
        both_ = await http.post("/trigger_report", params={"pipeline": "v1"}, json={"pipeline": "v2"})
        assert both_.status_code == 422 and "pipeline given twice" in both_.text
        assert await db.reports.count_documents({}) == 0
        texts = {}
        for version, kwargs in (("v1", {"params": {"pipeline": "v1"}}), ("v2", {"json": {"pipeline": "v2"}})):
            resp = await http.post("/trigger_report", **kwargs)
            assert resp.status_code == 202
            rid = resp.json()["report_id"]
            texts[version] = (await poll_until_done(http, rid)).text
            doc = await db.reports.find_one({"_id": rid})
            assert doc["pipeline"] == f"store_uptime@{version}" and doc["as_of"] == T0
            assert doc["total_stores"] == doc["rows"] == 12
    assert texts["v1"] == texts["v2"] and texts["v1"].count("\n") == 13


def test_cli_unknown_pipeline_is_exit_2(monkeypatch, fresh_settings):
    """`uptime-monitor report --pipeline v7` is a usage error (exit 2, names --pipeline and the known
    versions) found before any database is contacted."""
    from typer.testing import CliRunner

    from uptime.cli import app

    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200")
    result = CliRunner().invoke(app, ["report", "--pipeline", "v7", "--output", "-"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "--pipeline" in text and "v1, v2" in text


async def test_mongosh_runner_runs_v2(db, mongo_uri, mongosh):
    """pipelines/run.mongosh.js with pipelineVersion="v2" aggregates on status_runs and prints
    the same rows as v1 (same timezone screening)."""
    import json
    import subprocess
    from pathlib import Path

    t = utc("2024-03-12T15:00:00Z")
    polls, hrs, zs = _history(7, t)
    await load(db, polls, hrs, zs)
    await prepare_v2(db)
    expected = await report_list(db, t, version="v1")
    script = Path(__file__).resolve().parents[2] / "pipelines" / "run.mongosh.js"
    out = subprocess.run(
        [mongosh, mongo_uri, "--quiet", "--eval",
         f'var asOf="2024-03-12T15:00:00Z", pipelineVersion="v2"; db = db.getSiblingDB("{db.name}"); undefined',
         str(script)], capture_output=True, text=True, timeout=120, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    norm = lambda rs: [{k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)  # noqa: E731
                        for k, v in r.items()} for r in rs]
    assert norm(rows) == norm(expected) and len(rows) > 30


async def test_v2_report_catches_up_with_polls_written_without_a_follower(db, settings):
    """Freshness (issue 8 item 4, issue 14): with no follower running but a stored resume token
    (a follower ran before, e.g. ``uptime-monitor serve``), polls written straight into
    store_status afterwards are in the next default report — it resumes a follower from the
    token within its small wait budget and runs v2 — and its CSV equals v1's. Hand values:
    the late store 'late' is inactive for its single poll -> 60 min down in the last hour."""
    from uptime.timeline import RunsFollower, wait_current

    t = utc("2024-05-01T12:00:00Z")
    await load(db, [poll("a", t - timedelta(hours=2)), poll("a", t)])
    earlier = RunsFollower(db)
    await earlier.start()
    assert await wait_current(db, 30.0)
    for _ in range(100):  # its idle round stores the resume token
        if (await db.runs_follower.find_one({"_id": "store_status"}) or {}).get("token"):
            break
        await asyncio.sleep(0.05)
    await earlier.stop()
    await db.runs_follower.update_one({"_id": "store_status"}, {"$set": {"heartbeat": None}})
    service = ReportService(db, settings, owner="t")
    await service.start(background=False, recover=False)
    try:
        await db.store_status.insert_one(poll("late", t - timedelta(minutes=30), "inactive"))
        texts = {}
        for version in (None, "v1"):
            doc = await service.wait(await service.trigger(t, version))
            assert doc["status"] == "Complete" and doc["rows"] == 2, doc
            assert doc["pipeline"] == ("store_uptime@v1" if version else "store_uptime@v2"), doc
            buf = io.BytesIO()
            await storage.write_csv(db, doc["file_id"], buf)
            texts[version or "v2"] = buf.getvalue().decode()
    finally:
        await service.stop()
    assert texts["v2"] == texts["v1"]
    assert "late,0.00,0.00,0.00,60.00,24.00,168.00" in texts["v2"]
