"""The incident definition (issue 17, item 1) computed by ``pipelines/incidents.v1.json``:
hand-computed cases, on both sources of runs (``status_runs`` built by the timeline, and the
runs derived from ``store_status`` inside the pipeline), a differential test against an
independent Python model over random histories, and the mongosh runner."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from math import floor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.incidents_model import incidents as model_incidents
from support.pipeline import hours, load, poll, utc, zone
from uptime.incidents import query as Q
from uptime.report.pipeline import known_timezones
from uptime.ingest.schedules import rebuild_schedules
from uptime.timeline import rebuild_runs

REPO = Path(__file__).resolve().parents[2]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else Q.iso_ms(moment)


async def both_sources(db, as_of: str | datetime, min_minutes: float = 0, **kw) -> list[dict]:
    """The incidents from status_runs (rebuilt by the timeline) and from the polls; asserts
    both are equal and returns them."""
    when = utc(as_of) if isinstance(as_of, str) else as_of
    await rebuild_runs(db)
    await rebuild_schedules(db)
    tz = await known_timezones(db)
    runs = await Q.find_incidents(db, when, min_minutes, source="runs", timezones=tz, **kw)
    polls = await Q.find_incidents(db, when, min_minutes, source="polls", timezones=tz, **kw)
    # the one documented difference: a stored run cut at as_of cannot count its polls up to
    # as_of (inactive_polls None); the polls path can
    assert [{**p, "inactive_polls": None if r["inactive_polls"] is None else p["inactive_polls"]}
            for r, p in zip(runs, polls)] == runs and len(runs) == len(polls)
    return polls


def brief(rows: list[dict]) -> list[tuple]:
    return [(r["store_id"], iso(r["started_at"]), iso(r["ended_at"]), r["business_downtime_minutes"])
            for r in rows]


NY = "America/New_York"
# (id, polls, hours rows, zone rows, as_of, min_minutes, expected (store, started, ended, minutes))
CASES = [
    pytest.param(
        # NY spring forward, Sun 2024-03-10: hours 01:00-04:00 local = 06:00Z-08:00Z (2 h, the
        # 02:00-03:00 hour does not exist). Stretch [04:30Z, 09:30Z) -> 120 min from 06:00Z.
        [poll("s", "2024-03-10T04:00:00Z"), poll("s", "2024-03-10T05:00:00Z", "inactive"),
         poll("s", "2024-03-10T09:00:00Z", "inactive"), poll("s", "2024-03-10T10:00:00Z")],
        [hours("s", 6, "01:00:00", "04:00:00")], [zone("s", NY)], "2024-03-10T12:00:00Z", 0,
        [("s", "2024-03-10T06:00:00.000Z", "2024-03-10T09:30:00.000Z", 120.0)],
        id="dst-spring-forward"),
    pytest.param(
        # a skipped local time counts as if the clock had not jumped: 02:30 -> 07:30Z (rule 4);
        # 05:00 EDT = 09:00Z -> 90 min from 07:30Z
        [poll("s", "2024-03-10T04:00:00Z"), poll("s", "2024-03-10T05:00:00Z", "inactive"),
         poll("s", "2024-03-10T09:00:00Z", "inactive"), poll("s", "2024-03-10T10:00:00Z")],
        [hours("s", 6, "02:30:00", "05:00:00")], [zone("s", NY)], "2024-03-10T12:00:00Z", 0,
        [("s", "2024-03-10T07:30:00.000Z", "2024-03-10T09:30:00.000Z", 90.0)],
        id="dst-spring-skipped-start"),
    pytest.param(
        # NY fall back, Sun 2024-11-03: 00:00 EDT = 04:00Z to 04:00 EST = 09:00Z: a 5-hour
        # opening for 4 clock hours. Stretch [02:30Z, 10:30Z) -> 300 min.
        [poll("s", "2024-11-03T02:00:00Z"), poll("s", "2024-11-03T03:00:00Z", "inactive"),
         poll("s", "2024-11-03T10:00:00Z", "inactive"), poll("s", "2024-11-03T11:00:00Z")],
        [hours("s", 6, "00:00:00", "04:00:00")], [zone("s", NY)], "2024-11-03T12:00:00Z", 0,
        [("s", "2024-11-03T04:00:00.000Z", "2024-11-03T10:30:00.000Z", 300.0)],
        id="dst-fall-back"),
    pytest.param(
        # a local time that occurs twice is the later instant: 01:30 -> 06:30Z; 03:00 EST = 08:00Z
        [poll("s", "2024-11-03T02:00:00Z"), poll("s", "2024-11-03T03:00:00Z", "inactive"),
         poll("s", "2024-11-03T10:00:00Z", "inactive"), poll("s", "2024-11-03T11:00:00Z")],
        [hours("s", 6, "01:30:00", "03:00:00")], [zone("s", NY)], "2024-11-03T12:00:00Z", 0,
        [("s", "2024-11-03T06:30:00.000Z", "2024-11-03T10:30:00.000Z", 90.0)],
        id="dst-fall-back-ambiguous-start"),
    pytest.param(
        # overnight row Mon 22:00 -> Tue 02:00 (UTC); stretch Mon 20:30Z .. Tue 03:30Z -> 240 min
        [poll("s", "2024-05-06T20:00:00Z"), poll("s", "2024-05-06T21:00:00Z", "inactive"),
         poll("s", "2024-05-07T03:00:00Z", "inactive"), poll("s", "2024-05-07T04:00:00Z")],
        [hours("s", 0, "22:00:00", "02:00:00")], [zone("s", "UTC")], "2024-05-07T06:00:00Z", 0,
        [("s", "2024-05-06T22:00:00.000Z", "2024-05-07T03:30:00.000Z", 240.0)],
        id="overnight-hours"),
    pytest.param(
        # one stretch over a closed night (Mon and Tue 09-17 UTC): Mon 15:30-17:00 + Tue
        # 09:00-10:30 = 180 min, ONE incident from Mon 15:30Z to Tue 10:30Z
        [poll("s", "2024-05-06T15:00:00Z"), poll("s", "2024-05-06T16:00:00Z", "inactive"),
         poll("s", "2024-05-07T10:00:00Z", "inactive"), poll("s", "2024-05-07T11:00:00Z")],
        [hours("s", 0, "09:00:00", "17:00:00"), hours("s", 1, "09:00:00", "17:00:00")],
        [zone("s", "UTC")], "2024-05-07T12:00:00Z", 0,
        [("s", "2024-05-06T15:30:00.000Z", "2024-05-07T10:30:00.000Z", 180.0)],
        id="spans-a-closed-night"),
    pytest.param(
        # starts before opening (06:30Z) and ends after closing (19:30Z): started_at = the
        # opening 09:00Z, 480 min; a stretch wholly outside hours (02:30-03:30Z) is no incident
        [poll("s", "2024-05-06T02:00:00Z"), poll("s", "2024-05-06T03:00:00Z", "inactive"),
         poll("s", "2024-05-06T04:00:00Z"), poll("s", "2024-05-06T06:00:00Z"),
         poll("s", "2024-05-06T07:00:00Z", "inactive"), poll("s", "2024-05-06T19:00:00Z", "inactive"),
         poll("s", "2024-05-06T20:00:00Z")],
        [hours("s", 0, "09:00:00", "17:00:00")], [zone("s", "UTC")], "2024-05-06T22:00:00Z", 0,
        [("s", "2024-05-06T09:00:00.000Z", "2024-05-06T19:30:00.000Z", 480.0)],
        id="before-and-after-hours"),
    pytest.param(
        # no hours rows: open 24x7; stretch [10:30Z, 11:30Z) -> 60 min
        [poll("s", "2024-05-06T10:00:00Z"), poll("s", "2024-05-06T11:00:00Z", "inactive"),
         poll("s", "2024-05-06T12:00:00Z")],
        [], [], "2024-05-06T13:00:00Z", 0,
        [("s", "2024-05-06T10:30:00.000Z", "2024-05-06T11:30:00.000Z", 60.0)],
        id="24x7"),
    pytest.param(
        # an unknown zone falls back to America/Chicago (CDT, UTC-5): 09-17 local = 14-22Z;
        # stretch [12:30Z, 15:30Z) -> 90 min from 14:00Z
        [poll("s", "2024-05-06T12:00:00Z"), poll("s", "2024-05-06T13:00:00Z", "inactive"),
         poll("s", "2024-05-06T18:00:00Z")],
        [hours("s", 0, "09:00:00", "17:00:00")], [zone("s", "US/Chicagoo")], "2024-05-06T23:00:00Z", 0,
        [("s", "2024-05-06T14:00:00.000Z", "2024-05-06T15:30:00.000Z", 90.0)],
        id="zone-fallback"),
    pytest.param(
        # min_minutes is inclusive: exactly 60 min of business downtime with min 60 -> kept
        [poll("s", "2024-05-06T10:00:00Z"), poll("s", "2024-05-06T11:00:00Z", "inactive"),
         poll("s", "2024-05-06T12:00:00Z")], [], [], "2024-05-06T13:00:00Z", 60,
        [("s", "2024-05-06T10:30:00.000Z", "2024-05-06T11:30:00.000Z", 60.0)],
        id="min-minutes-equal-kept"),
    pytest.param(
        # ... and 60.01 > 60 -> dropped
        [poll("s", "2024-05-06T10:00:00Z"), poll("s", "2024-05-06T11:00:00Z", "inactive"),
         poll("s", "2024-05-06T12:00:00Z")], [], [], "2024-05-06T13:00:00Z", 60.01, [],
        id="min-minutes-above-dropped"),
    pytest.param(
        # open at as_of: the last status holds up to as_of (12:15Z) although an active poll
        # follows at 13:00Z (after as_of: ignored; its midpoint 12:00Z would be before as_of)
        [poll("s", "2024-05-06T10:00:00Z"), poll("s", "2024-05-06T11:00:00Z", "inactive"),
         poll("s", "2024-05-06T13:00:00Z")], [], [], "2024-05-06T12:15:00Z", 0,
        [("s", "2024-05-06T10:30:00.000Z", None, 105.0)],
        id="open-at-as-of"),
    pytest.param(
        # as_of in the middle of history: the incident before as_of is complete, the one
        # spanning as_of is cut (open), the one after as_of does not exist yet
        [poll("s", "2024-05-06T08:00:00Z"), poll("s", "2024-05-06T09:00:00Z", "inactive"),
         poll("s", "2024-05-06T10:00:00Z"), poll("s", "2024-05-06T11:00:00Z", "inactive"),
         poll("s", "2024-05-06T13:00:00Z", "inactive"), poll("s", "2024-05-06T14:00:00Z"),
         poll("s", "2024-05-06T15:00:00Z", "inactive"), poll("s", "2024-05-06T16:00:00Z")],
        [], [], "2024-05-06T12:00:00Z", 0,
        [("s", "2024-05-06T08:30:00.000Z", "2024-05-06T09:30:00.000Z", 60.0),
         ("s", "2024-05-06T10:30:00.000Z", None, 90.0)],
        id="as-of-mid-history"),
    pytest.param(
        # polls at one instant count once, inactive wins: 11:00Z is inactive
        [poll("s", "2024-05-06T10:00:00Z"), poll("s", "2024-05-06T11:00:00Z", "active"),
         poll("s", "2024-05-06T11:00:00Z", "inactive"), poll("s", "2024-05-06T12:00:00Z")],
        [], [], "2024-05-06T13:00:00Z", 0,
        [("s", "2024-05-06T10:30:00.000Z", "2024-05-06T11:30:00.000Z", 60.0)],
        id="duplicate-instant-inactive-wins"),
    pytest.param(
        # the timeline starts at the store's first poll: an inactive first poll at 10:00Z
        # starts the incident there, not before; recovery at the midpoint 10:30Z
        [poll("s", "2024-05-06T10:00:00Z", "inactive"), poll("s", "2024-05-06T11:00:00Z")],
        [], [], "2024-05-06T13:00:00Z", 0,
        [("s", "2024-05-06T10:00:00.000Z", "2024-05-06T10:30:00.000Z", 30.0)],
        id="starts-at-first-poll"),
]


@pytest.mark.parametrize(("polls", "hours_rows", "zones", "as_of", "min_minutes", "expected"), CASES)
async def test_hand_computed_incidents(db, polls, hours_rows, zones, as_of, min_minutes, expected):
    """Issue 17 item 1 on hand-computed stores (each case's comment states its rule and
    arithmetic): DST nights in New York, overnight hours, a closed night inside a stretch,
    24x7, zone fallback, min_minutes inclusive, open at as_of, as_of mid-history, duplicate
    instants, the first poll. Both run sources give the same rows."""
    await load(db, polls, hours_rows, zones)
    assert brief(await both_sources(db, as_of, min_minutes)) == expected


async def test_extra_fields_and_half_milliseconds(db):
    """The extra fields: exact business_downtime_ms (midpoints on half milliseconds:
    [10:30:00.0005, 11:30:00.0015) = 3,600,001 ms), times floored to the ms, open flag,
    stretch_start, duration, inactive polls (distinct instants), zone used and fallback."""
    await load(db, [poll("s", "2024-05-06T10:00:00.000Z"), poll("s", "2024-05-06T11:00:00.001Z", "inactive"),
                    poll("s", "2024-05-06T11:00:00.001Z", "inactive"), poll("s", "2024-05-06T12:00:00.002Z"),
                    poll("f", "2024-05-06T12:00:00Z"), poll("f", "2024-05-06T13:00:00Z", "inactive")],
               [hours("f", 0, "09:00:00", "17:00:00")], [zone("f", "US/Chicagoo")])
    rows = {r["store_id"]: r for r in await both_sources(db, "2024-05-06T14:00:00Z")}
    s = rows["s"]
    assert s["business_downtime_ms"] == 3_600_001 and s["business_downtime_minutes"] == 60.0
    assert iso(s["started_at"]) == "2024-05-06T10:30:00.000Z" and iso(s["ended_at"]) == "2024-05-06T11:30:00.001Z"
    assert s["open"] is False and s["inactive_polls"] == 1 and s["timezone"] == "America/Chicago"
    assert s["timezone_fallback"] is False
    # f: stretch from 12:30Z, business hours from 14:00Z (Chicago fallback), open at 14:00Z
    # -> no business time yet: not an incident; as of 15:00Z it is (60 min, open)
    assert "f" not in rows
    [f] = await both_sources(db, "2024-05-06T15:00:00Z", store_id="f")
    assert (iso(f["started_at"]), f["ended_at"], f["business_downtime_minutes"]) == (
        "2024-05-06T14:00:00.000Z", None, 60.0)
    assert f["open"] is True and iso(f["stretch_start"]) == "2024-05-06T12:30:00.000Z"
    assert f["duration_minutes"] == 150.0 and f["timezone_fallback"] is True


async def test_filters_and_pages(db):
    """Filters (issue 17 item 2): store_id, open, [from, to) overlap, skip/limit pages of the
    sorted result (store_id, then started_at)."""
    polls = []
    for s in ("a", "b", "c"):
        polls += [poll(s, "2024-05-06T08:00:00Z"), poll(s, "2024-05-06T09:00:00Z", "inactive"),
                  poll(s, "2024-05-06T10:00:00Z"), poll(s, "2024-05-06T11:00:00Z", "inactive")]
    await load(db, polls)
    everything = brief(await both_sources(db, "2024-05-06T12:00:00Z"))
    assert everything == [(s, f"2024-05-06T{h}", e, m) for s in ("a", "b", "c") for h, e, m in (
        ("08:30:00.000Z", "2024-05-06T09:30:00.000Z", 60.0), ("10:30:00.000Z", None, 90.0))]
    assert brief(await both_sources(db, "2024-05-06T12:00:00Z", store_id="b")) == everything[2:4]
    assert brief(await both_sources(db, "2024-05-06T12:00:00Z", open=True)) == everything[1::2]
    assert brief(await both_sources(db, "2024-05-06T12:00:00Z", open=False)) == everything[0::2]
    # overlapping [09:30, 10:31): the first ends exactly at 09:30 (not overlapping), the
    # second starts at 10:30 < 10:31
    assert brief(await both_sources(db, "2024-05-06T12:00:00Z", started_from=utc("2024-05-06T09:30:00Z"),
                                    started_to=utc("2024-05-06T10:31:00Z"))) == everything[1::2]
    assert brief(await both_sources(db, "2024-05-06T12:00:00Z", started_to=utc("2024-05-06T09:00:00Z"))) == everything[0::2]
    assert brief(await both_sources(db, "2024-05-06T12:00:00Z", skip=1, limit=3)) == everything[1:4]
    assert brief(await both_sources(db, "2024-05-06T12:00:00Z", skip=5, limit=3)) == everything[5:]


async def test_pending_stores_come_from_their_polls(db):
    """The plug-in for a "pending stores" list: with source "runs" and poll_stores = [a],
    store a's runs are derived from its polls (here status_runs lags: it lacks a's latest
    inactive poll) and the other stores' are read from status_runs; no store twice."""
    await load(db, [poll("a", "2024-05-06T10:00:00Z"), poll("b", "2024-05-06T10:00:00Z"),
                    poll("b", "2024-05-06T11:00:00Z", "inactive")])
    await rebuild_runs(db)
    await rebuild_schedules(db)
    await db["store_status"].insert_one(poll("a", "2024-05-06T11:00:00Z", "inactive"))  # not in the runs
    when = utc("2024-05-06T12:00:00Z")
    stale = brief(await Q.find_incidents(db, when, 0, source="runs"))
    assert stale == [("b", "2024-05-06T10:30:00.000Z", None, 90.0)]
    fixed = brief(await Q.find_incidents(db, when, 0, source="runs", poll_stores=["a"]))
    assert fixed == [("a", "2024-05-06T10:30:00.000Z", None, 90.0), *stale]
    assert brief(await Q.find_incidents(db, when, 0, source="polls")) == fixed


async def test_default_source_follows_the_timeline(db):
    """Without a current timeline (no follower here) find_incidents derives every store's
    runs from the polls: status_runs empty, the answer is still exact (never waits, never
    fails on derived state)."""
    await load(db, [poll("a", "2024-05-06T10:00:00Z"), poll("a", "2024-05-06T11:00:00Z", "inactive")])
    assert await Q.timeline_current(db) is False
    assert await Q.choose_source(db) == ("polls", [])
    assert await db["status_runs"].count_documents({}) == 0
    rows = await Q.find_incidents(db, None, 0)  # as_of default: the latest poll, 11:00Z
    assert brief(rows) == [("a", "2024-05-06T10:30:00.000Z", None, 30.0)]
    # a stale timeline (runs of an older state: a long inactive run of a store) is not read
    await rebuild_runs(db)
    await db["status_runs"].update_many({}, {"$set": {"status": "inactive"}})
    assert brief(await Q.find_incidents(db, None, 0)) == brief(rows)
    assert len(await Q.find_incidents(db, None, 0, source="runs")) == 2  # reading them: two


# ------------------------------------------------------------------ differential
_ZONES = [NY, "Asia/Kolkata", "Australia/Sydney", "US/Chicagoo", None]
_CLOCKS = ["00:00:00", "02:30:00", "06:00:00", "09:15:00", "12:00:00", "17:45:00", "22:00:00",
           "23:59:59"]
T0 = utc("2024-03-08T00:00:00Z")  # two days before New York's spring forward


@st.composite
def histories(draw):
    stores = []
    for k in range(draw(st.integers(1, 3))):
        sid = f"s{k}"
        n = draw(st.integers(1, 14))
        offsets = sorted(draw(st.lists(st.integers(0, 5 * 24 * 60), min_size=n, max_size=n)))
        polls = []
        for minute in offsets:
            ts = T0 + timedelta(minutes=minute, milliseconds=draw(st.integers(0, 1)))
            polls.append(poll(sid, ts, draw(st.sampled_from(["active", "inactive", "inactive"]))))
            if draw(st.integers(0, 9)) == 0:  # a conflicting poll at the same instant
                polls.append(poll(sid, ts, draw(st.sampled_from(["active", "inactive"]))))
        rows = [hours(sid, draw(st.integers(0, 6)), draw(st.sampled_from(_CLOCKS[:-1])),
                      draw(st.sampled_from(_CLOCKS)))
                for _ in range(draw(st.integers(0, 4)))]
        z = draw(st.sampled_from(_ZONES))
        stores.append((polls, rows, [] if z is None else [zone(sid, z)]))
    as_of = T0 + timedelta(minutes=draw(st.integers(0, 6 * 24 * 60)), milliseconds=draw(st.integers(0, 999)))
    return stores, as_of, draw(st.sampled_from([0, 0, 20, 90]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=histories())
async def test_differential_against_the_python_model(db, case):
    """Random histories over New York's spring-forward (1-3 stores, random polls with
    conflicting duplicates, random hours incl. overnight/24 h/23:59:59, zones incl. an
    unknown one, as_of anywhere, min_minutes 0/20/90): the pipeline, on both run sources,
    equals the independent zoneinfo model (tests/incidents_model.py) exactly — start, end,
    business ms."""
    stores, as_of, min_minutes = case
    for name in ("store_status", "store_hours", "store_timezones", "status_runs", "store_schedules"):
        await db[name].delete_many({})
    polls = [p for s in stores for p in s[0]]
    rows = [r for s in stores for r in s[1]]
    zones = [z for s in stores for z in s[2]]
    await load(db, polls, rows, zones)
    got = await both_sources(db, as_of, min_minutes)
    accepted = set(await known_timezones(db))
    want = model_incidents(polls, rows, zones, as_of, accepted, min_minutes)
    to_dt = lambda ms: EPOCH + timedelta(milliseconds=floor(ms))  # noqa: E731
    assert [(r["store_id"], r["started_at"], r["ended_at"], Fraction(r["business_downtime_ms"]))
            for r in got] == [
        (w["store_id"], to_dt(w["started_at_ms"]), None if w["ended_ms"] is None else to_dt(w["ended_ms"]),
         w["business_ms"]) for w in want]


# ------------------------------------------------------------------ mongosh
async def test_mongosh_runner_returns_the_same_rows(db, mongo_uri, mongosh):
    """pipelines/incidents.mongosh.js splices the run derivation of status_runs.v1.json the
    same way and prints the rows find_incidents returns (polls and runs sources, a filter)."""
    await load(db, [poll("a", "2024-03-10T04:00:00Z"), poll("a", "2024-03-10T05:00:00Z", "inactive"),
                    poll("a", "2024-03-10T09:00:00Z", "inactive"), poll("a", "2024-03-10T10:00:00Z"),
                    poll("b", "2024-03-10T10:00:00Z"), poll("b", "2024-03-10T11:00:00Z", "inactive")],
               [hours("a", 6, "01:00:00", "04:00:00")], [zone("a", NY), zone("b", "US/Chicagoo")])
    expected = await both_sources(db, "2024-03-10T12:00:00Z", 15)
    assert len(expected) == 2

    def run(eval_text: str) -> list[dict]:
        eval_text = f'{eval_text}; db = db.getSiblingDB("{db.name}"); undefined'
        out = subprocess.run([mongosh, mongo_uri, "--quiet", "--eval", eval_text,
                              str(REPO / "pipelines/incidents.mongosh.js")],
                             capture_output=True, text=True, timeout=120, check=True)
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def norm(rows):
        return [(r["store_id"], r["started_at"] if isinstance(r["started_at"], str) else iso(r["started_at"]),
                 r["ended_at"] if not isinstance(r["ended_at"], datetime) else iso(r["ended_at"]),
                 float(r["business_downtime_minutes"]), bool(r["open"])) for r in rows]

    def from_js(rows):
        return [(r["store_id"], iso(utc(r["started_at"]["$date"])),
                 None if r["ended_at"] is None else iso(utc(r["ended_at"]["$date"])),
                 float(r["business_downtime_minutes"]), r["open"]) for r in rows]

    want = norm(expected)
    assert from_js(run('var asOf="2024-03-10T12:00:00Z", minMinutes=15')) == want
    assert from_js(run('var asOf="2024-03-10T12:00:00Z", minMinutes=15, source="runs"')) == want
    assert from_js(run('var asOf="2024-03-10T12:00:00Z", minMinutes=15, open=true')) == want[1:]
