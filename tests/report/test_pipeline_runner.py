"""The Python runner around the pipeline (src/uptime/pipeline.py) and the mongosh runner
(pipelines/run.mongosh.js): parameters, buckets, timezone screening, provenance."""

from __future__ import annotations

import json
import random
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from support.pipeline import hours, load, poll, report_list, utc, zone
from support.pipeline_synth import random_store
from uptime.report import pipeline as P

REPO = Path(__file__).resolve().parents[2]


def test_names_and_loading():
    """The interface: tag, columns, and version files; a bad version is a clear error."""
    assert P.pipeline_tag() == "store_uptime@v2" and P.DEFAULT_VERSION == "v2" and P.pipeline_tag("v2") == "store_uptime@v2"
    assert P.REPORT_COLUMNS[0] == "store_id" and len(P.REPORT_COLUMNS) == 7
    stages = P.load_pipeline("v1")
    assert "$match" in stages[0] and "$group" in stages[1]
    with pytest.raises(ValueError, match="v1"):
        P.load_pipeline("../x")
    with pytest.raises(FileNotFoundError, match="store_uptime@v99"):
        P.load_pipeline("v99")


async def test_resolve_as_of(db):
    """as_of given -> that instant in UTC (naive = UTC, ms precision); None -> the latest
    timestamp_utc in store_status (any store); no polls -> None."""
    await load(db)
    assert await P.resolve_as_of(db, None) is None
    await load(db, [poll("a", "2024-05-01T10:00:00Z"), poll("b", "2024-05-01T11:30:00.250Z", "inactive"),
                    poll("b", "2024-05-01T09:00:00Z")])
    assert await P.resolve_as_of(db, None) == utc("2024-05-01T11:30:00.250Z")
    naive = datetime(2024, 5, 1, 12, 0, 0, 123456)
    assert await P.resolve_as_of(db, naive) == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)
    got = await P.resolve_as_of(db, datetime.fromisoformat("2024-05-01T14:00:00+02:00"))
    assert got == utc("2024-05-01T12:00:00Z") and got.tzinfo is not None


async def test_known_timezones_screened_by_mongodb(db):
    """Rule 5: the distinct timezone_str values that MongoDB accepts, sorted; typos, empty and
    non-string values are left out (and so fall back to America/Chicago in the report)."""
    await load(db, zones=[zone("a", "America/New_York"), zone("b", "US/Chicagoo"), zone("c", ""),
                          zone("d", "Asia/Beirut"), zone("e", None), zone("f", 5), zone("g", "America/New_York")])
    assert await P.known_timezones(db) == ["America/New_York", "Asia/Beirut"]


async def test_buckets_cover_the_report_exactly(db):
    """store_range: contiguous half-open ranges whose reports, concatenated, equal the
    unbucketed report (same rows, same order); count_report_stores = the number of rows,
    ignoring stores with only invalid or only later polls."""
    rng = random.Random(5)
    as_of = utc("2024-05-01T12:00:00Z")
    docs = [random_store(rng, f"{rng.getrandbits(40):010x}", as_of, days=2, realistic=False) for _ in range(40)]
    extra = [poll("zz-only-invalid", "2024-05-01T10:00:00Z", "broken"), poll("zz-later", "2024-05-02T10:00:00Z")]
    await load(db, [p for d in docs for p in d.polls] + extra, [h for d in docs for h in d.hours],
               [z for d in docs for z in d.timezones])
    whole = await report_list(db, as_of)
    assert await P.count_report_stores(db, as_of) == len(whole) > 20
    assert await P.report_store_ids(db, as_of) == [r["store_id"] for r in whole]
    ids = [r["store_id"] for r in whole]
    q1, q2, q3 = ids[len(ids) // 4], ids[len(ids) // 2], ids[3 * len(ids) // 4]
    ranges = [(None, q1), (q1, q2), (q2, q3), (q3, None)]  # store_from inclusive, store_to not
    parts = [await report_list(db, as_of, store_range=r) for r in ranges]
    assert all(parts) and sum(parts, []) == whole


async def test_aggregate_carries_comment(db):
    """Every report aggregate carries comment "store_uptime@v1" (findable in the profiler)."""
    await load(db, [poll("s", "2024-05-01T10:00:00Z")])
    await db.command({"profile": 2})
    try:
        await report_list(db, "2024-05-01T12:00:00Z")
    finally:
        await db.command({"profile": 0})
    entries = await db["system.profile"].find({"command.aggregate": "store_status"}).to_list()
    assert [e["command"]["comment"] for e in entries] == ["store_uptime@v1"]
    assert entries[0]["command"]["allowDiskUse"] is True


async def test_mongosh_runner_returns_the_same_rows(db, mongo_uri, mongosh):
    """pipelines/run.mongosh.js with let values on the command line (same timezone screening
    in JS) prints the same rows as iter_report_rows, for the whole report and a bucket, and
    writes them to a collection with out=."""
    rng = random.Random(11)
    as_of = utc("2024-03-12T15:00:00Z")
    docs = [random_store(rng, str(rng.randrange(10**18, 10**19)), as_of, days=8.5, realistic=False,
                         zones=["America/New_York", "Asia/Beirut", "Australia/Sydney"]) for _ in range(30)]
    await load(db, [p for d in docs for p in d.polls], [h for d in docs for h in d.hours],
               [z for d in docs for z in d.timezones] + [zone("x", "US/Chicagoo")])
    expected = await report_list(db, as_of)

    def run(eval_text: str) -> list[str]:
        eval_text = f'{eval_text}; db = db.getSiblingDB("{db.name}"); undefined'
        out = subprocess.run([mongosh, mongo_uri, "--quiet", "--eval", eval_text, str(REPO / "pipelines/run.mongosh.js")],
                             capture_output=True, text=True, timeout=120, check=True)
        return [line for line in out.stdout.splitlines() if line.strip()]

    rows = [json.loads(line) for line in run('var asOf="2024-03-12T15:00:00Z"')]
    normalise = lambda rs: [{k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)  # noqa: E731
                             for k, v in r.items()} for r in rs]
    assert normalise(rows) == normalise(expected) and len(rows) == 30
    lo, hi = expected[5]["store_id"], expected[12]["store_id"]
    part = [json.loads(line) for line in run(f'var asOf="2024-03-12T15:00:00Z", storeFrom="{lo}", storeTo="{hi}"')]
    assert normalise(part) == normalise(expected[5:12])
    latest = [json.loads(line) for line in run("var x=1")]  # default as_of = latest poll
    assert normalise(latest) == normalise(await report_list(db, await P.resolve_as_of(db, None)))
    msg = run('var asOf="2024-03-12T15:00:00Z", out="report_rows"')
    assert "wrote 30 rows" in msg[-1]
    stored = await db["report_rows"].find({}, {"_id": 0}).sort("store_id", 1).to_list()
    assert normalise(stored) == normalise(expected)


async def test_explain_execution_stats_works(db):
    """A DBA can profile the pipeline: explain with executionStats succeeds and reports the
    stages (regression: a $match after a $project inside $unionWith crashed mongod 6.0.5 under
    explain executionStats, so the v1 sub-pipelines avoid that shape)."""
    await load(db, [poll("s", "2024-05-01T10:00:00Z")], [hours("s", 2, "09:00:00", "17:00:00")], [zone("s", "Asia/Tokyo")])
    as_of = utc("2024-05-01T12:00:00Z")
    explained = await db.command({
        "explain": {"aggregate": "store_status", "pipeline": P.load_pipeline("v1"), "cursor": {},
                    "let": P.report_let(as_of, await P.known_timezones(db)), "allowDiskUse": True},
        "verbosity": "executionStats"})
    names = [next(iter(s)) for s in explained["stages"]]
    assert names[0] == "$cursor" and "$group" in names and "$unionWith" in names
    assert explained["stages"][0]["$cursor"]["executionStats"]["totalDocsExamined"] == 0


async def test_polls_are_read_from_the_index_alone(db):
    """Speed rule (sidecar, "Cost"): with the migrations' indexes the poll scan is covered by
    store_id_1_timestamp_utc_1_status_1 (no document fetch) and the per-store $group runs
    in the query layer; no stage before the $group may reference a field outside that index."""
    await load(db, [poll("s", "2024-05-01T10:00:00Z"), poll("s", "2024-05-01T11:00:00Z", "inactive")])
    as_of = utc("2024-05-01T12:00:00Z")
    explained = await db.command({
        "explain": {"aggregate": "store_status", "pipeline": P.load_pipeline("v1"), "cursor": {},
                    "let": P.report_let(as_of, []), "allowDiskUse": True},
        "verbosity": "queryPlanner"})
    plan = json.dumps(explained["stages"][0]["$cursor"]["queryPlanner"]["winningPlan"])
    assert "store_id_1_timestamp_utc_1_status_1" in plan
    assert '"FETCH"' not in plan and '"COLLSCAN"' not in plan
    assert await db.command("ping")
