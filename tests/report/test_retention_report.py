"""Issue 18 item 4: what the timeline holds stays answerable after the raw polls before the
retention horizon are removed — the default report (v2 on the runs), report v1 for a week
after the horizon, and the incident list give the same bytes after `compact_polls` as
before; v1 refuses a week reaching before the horizon, with a clear message."""

from __future__ import annotations

import io
import random
import subprocess
from pathlib import Path
from datetime import UTC, datetime, timedelta

import pytest

from uptime.incidents.query import find_incidents
from uptime.platform.migrations import ensure_current
from uptime.report import csvout, pipeline
from uptime.report import period as PR
from uptime.timeline import rebuild_runs
from uptime.timeline.retention import compact_polls
from uptime.ingest.schedules import rebuild_schedules

START = datetime(2024, 3, 1, tzinfo=UTC)
NOW = START + timedelta(days=30)
HORIZON = NOW - timedelta(days=14)  # 2024-03-17 (across the US DST change of 2024-03-10)


async def load_history(db) -> datetime:
    """Five stores in three zones with business hours (one overnight, one 24x7, one without
    rows), hourly polls with jitter and status flips over 29 days. Returns the latest poll."""
    rnd = random.Random(18)
    polls, latest = [], START
    for k in range(5):
        status, t = "active", START + timedelta(minutes=rnd.randrange(60))
        while t < START + timedelta(days=29):
            if rnd.random() < 0.12:
                status = "inactive" if status == "active" else "active"
            if rnd.random() > 0.07:
                polls.append({"store_id": f"st{k}", "timestamp_utc": t, "status": status})
                latest = max(latest, t)
            t += timedelta(minutes=60 + rnd.randrange(-15, 16))
    await db.store_status.insert_many(polls)
    await db.store_timezones.insert_many([
        {"store_id": "st0", "timezone_str": "America/New_York"},
        {"store_id": "st1", "timezone_str": "Europe/Berlin"},
        {"store_id": "st2", "timezone_str": "Asia/Kolkata"},
    ])
    await db.store_hours.insert_many(
        [{"store_id": "st0", "dayOfWeek": d, "start_time_local": "09:00:00",
          "end_time_local": "17:30:00"} for d in range(5)]
        + [{"store_id": "st1", "dayOfWeek": d, "start_time_local": "22:00:00",
            "end_time_local": "02:00:00"} for d in range(7)]
        + [{"store_id": "st2", "dayOfWeek": d, "start_time_local": "00:00:00",
            "end_time_local": "00:00:00"} for d in range(7)])
    return latest


async def csv_of(db, as_of: datetime, version: str | None) -> str:
    out = io.StringIO()
    out.write(",".join(pipeline.REPORT_COLUMNS) + "\n")
    async for row in pipeline.iter_report_rows(db, as_of=as_of, version=version,
                                               prepare=version is None):
        out.write(csvout.line(str(row[c]) for c in pipeline.REPORT_COLUMNS))
    return out.getvalue()


@pytest.fixture
async def rdb(db):
    await ensure_current(db, apply=True)
    return db


async def test_reports_and_incidents_unchanged_by_compaction(rdb) -> None:
    """Rule (item 4): report CSVs (v2 on the runs for as_of before, across and after the
    horizon; v1 for a week wholly after it) and the incident list (any as_of; after the
    compaction the default source is the runs) are identical before and after the compaction."""
    latest = await load_history(rdb)
    await rebuild_runs(rdb)
    await rebuild_schedules(rdb)
    instants = [HORIZON - timedelta(days=3, hours=5), HORIZON + timedelta(days=2), latest]
    before = {t: await csv_of(rdb, t, "v2") for t in instants}
    v1_before = await csv_of(rdb, latest, "v1")
    assert v1_before == before[latest]  # the two pipelines agree (sanity of the data)
    # the runs source: what a current timeline gives (the polls source differs from it only
    # in `inactive_polls` of an incident still open at an as_of inside its run: None there)
    inc_before = {t: await find_incidents(rdb, t, 15, source="runs") for t in instants}
    assert any(inc_before.values())  # the data has incidents to compare

    result = await compact_polls(rdb, 14, now=NOW)
    assert result["removed"] > 1000

    assert {t: await csv_of(rdb, t, "v2") for t in instants} == before
    assert await csv_of(rdb, latest, "v1") == v1_before  # week after the horizon: exact
    assert {t: await find_incidents(rdb, t, 15) for t in instants} == inc_before
    # the default choice (no follower here, so v1) goes to v2 for a week before the horizon
    version, reason = await pipeline.choose_version(rdb, None, instants[0])
    assert version == "v2" and "retention horizon" in reason
    assert await csv_of(rdb, instants[0], None) == before[instants[0]]


async def test_v1_refuses_a_week_before_the_horizon(rdb) -> None:
    """Rule (item 4): v1 refuses an as_of whose week [as_of - 7 d, as_of) starts before the
    stored horizon, naming the horizon, the week's start and what to do instead; a week
    starting at the horizon is accepted."""
    await load_history(rdb)
    await compact_polls(rdb, 14, now=NOW)
    as_of = HORIZON + timedelta(days=6)
    with pytest.raises(pipeline.BeforeHorizonError) as err:
        await csv_of(rdb, as_of, "v1")
    text = str(err.value)
    assert "retention horizon 2024-03-17T00:00:00.000+00:00" in text
    assert "starts at 2024-03-16T00:00:00.000+00:00" in text
    assert "use pipeline v2" in text
    await csv_of(rdb, HORIZON + timedelta(days=7), "v1")  # no error


async def test_mongosh_runner_v1_refuses_a_week_before_the_horizon(db, mongo_uri, mongosh) -> None:
    """Rule (item 4): pipelines/run.mongosh.js with pipelineVersion "v1" refuses an asOf whose
    week starts before the stored horizon (exit status non-zero, the message names the
    horizon), and runs for a week starting at it."""
    await ensure_current(db, apply=True)
    await db.store_status.insert_many([
        {"store_id": "a", "timestamp_utc": HORIZON + timedelta(hours=h), "status": "active"}
        for h in range(0, 24 * 8, 6)])
    await db.polls_retention.insert_one({"_id": "store_status", "horizon": HORIZON})
    script = str(Path(__file__).resolve().parents[2] / "pipelines/run.mongosh.js")

    def run(as_of: str) -> subprocess.CompletedProcess:
        text = (f'var asOf="{as_of}", pipelineVersion="v1"; '
                f'db = db.getSiblingDB("{db.name}"); undefined')
        return subprocess.run([mongosh, mongo_uri, "--quiet", "--eval", text, script],
                              capture_output=True, text=True, timeout=120)

    refused = run("2024-03-23T00:00:00Z")
    assert refused.returncode != 0
    assert "before the retention horizon 2024-03-17T00:00:00.000Z" in refused.stderr + refused.stdout
    ok = run("2024-03-24T00:00:00Z")
    assert ok.returncode == 0, ok.stderr
    assert '"store_id":"a"' in ok.stdout.replace(" ", "")


async def test_period_report_before_the_horizon_reads_the_timeline(rdb) -> None:
    """Rule (item 4): a period report for a range starting before the retention horizon gives
    the same rows after the compaction as before, although no follower keeps the timeline
    current here (its default source is then the polls, and the polls before the horizon are
    gone): ``period.prepare`` reads the timeline for such a period and says why; a period
    wholly after the horizon still takes the polls."""
    latest = await load_history(rdb)
    await rebuild_runs(rdb)
    await rebuild_schedules(rdb)
    early = PR.period_from_range(START, HORIZON - timedelta(days=1))
    late = PR.period_from_range(HORIZON + timedelta(days=1), latest)
    mode, _ = await PR.prepare(rdb, early)
    assert mode == PR.ON_THE_FLY  # no follower, no horizon yet: the polls, exact
    before = {p.label: [r async for r in PR.iter_period_rows(rdb, p, as_of=latest, mode=mode)]
              for p in (early, late)}
    assert any(r["downtime_hours"] for r in before[early.label])  # something to lose

    assert (await compact_polls(rdb, 14, now=NOW))["removed"] > 1000

    mode, why = await PR.prepare(rdb, early)
    assert mode == PR.TIMELINE and "retention horizon" in why
    assert [r async for r in PR.iter_period_rows(rdb, early, as_of=latest, mode=mode)] == \
        before[early.label]
    mode, _ = await PR.prepare(rdb, late)
    assert mode == PR.ON_THE_FLY
    assert [r async for r in PR.iter_period_rows(rdb, late, as_of=latest, mode=mode)] == \
        before[late.label]
