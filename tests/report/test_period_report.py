"""Period reports (issue 18, items 1-3): ``pipelines/period_uptime.v1.json`` through
``uptime.report.period``, on the status timeline and on runs derived on the fly from the polls.

Checked against (a) the normal report's ``*_last_week`` columns for the week ending at
``as_of`` (to the cent), (b) a pure-Python reference of the rules (README 1-6, local periods
resolved like rule 4) built on ``tests/reference_model.py``, (c) hand-computed values.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from fractions import Fraction

import pytest

from support import reference_model
from support.pipeline import load, poll, prepare_v2, report_list, utc, hours as hrow, zone
from support.pipeline_synth import random_store
from uptime.report import period as P
from uptime.report.pipeline import known_timezones

ZONES = ["America/New_York", "Asia/Beirut", "Australia/Sydney", "America/Chicago"]


async def _rows(db, period, as_of, mode):
    return [r async for r in P.iter_period_rows(db, period, as_of=as_of, mode=mode)]


async def _raw(db, period, as_of, mode) -> dict[str, dict]:
    """Raw ms sums (before rounding) per store: the pipeline without its rounding stage."""
    timezones = await known_timezones(db)
    let = P.period_let(period, as_of, timezones)
    if mode == P.TIMELINE:
        stages, coll = P.load_period_pipeline(), "status_runs"
    else:
        stages, coll = P.on_the_fly_pipeline(), "store_status"
        let.update({"windows": None, "since": None, "batch": None})
    stages = [s for s in stages if "uptime_hours" not in s.get("$project", {})]
    cursor = await db[coll].aggregate(stages, let=let, allowDiskUse=True)
    return {d["store_id"]: d async for d in cursor}


# ---------------------------------------------------------------- parsing (item 1) -------

@pytest.mark.parametrize(
    "text, kind, first, end",
    [
        ("2024-03", "month", date(2024, 3, 1), date(2024, 4, 1)),
        ("2024-12", "month", date(2024, 12, 1), date(2025, 1, 1)),
        ("2024-Q1", "quarter", date(2024, 1, 1), date(2024, 4, 1)),
        ("2024-Q4", "quarter", date(2024, 10, 1), date(2025, 1, 1)),
        ("2024", "year", date(2024, 1, 1), date(2025, 1, 1)),
        ("2024-W01", "week", date(2024, 1, 1), date(2024, 1, 8)),
        ("2020-W53", "week", date(2020, 12, 28), date(2021, 1, 4)),
    ],
)
def test_parse_period_gives_local_first_day_and_day_after(text, kind, first, end):
    """A calendar period is its first local date and the date after its last one (ISO weeks
    start on Monday; 2020 has a week 53)."""
    p = P.parse_period(text)
    assert (p.kind, p.label, p.first_day, p.end_day) == (kind, text, first, end)


@pytest.mark.parametrize(
    "text, says",
    [("2024-13", "month must be 01..12"), ("2024-00", "month"), ("2024-Q5", "quarter"),
     ("2024-Q0", "quarter"), ("2021-W53", "no week 53"), ("2024-W00", "no week"),
     ("March", "expected YYYY-MM"), ("", "expected"), ("0000", "year")],
)
def test_bad_period_is_refused_naming_it(text, says):
    """Bad periods raise PeriodError (a ValueError) whose message names the value."""
    with pytest.raises(P.PeriodError) as err:
        P.parse_period(text)
    assert says in str(err.value) and repr(text) in str(err.value)


def test_range_must_be_increasing():
    """from >= to is refused; the label is the two instants in ISO ms Z."""
    with pytest.raises(P.PeriodError, match="must be before"):
        P.period_from_range(utc("2024-03-02T00:00:00Z"), utc("2024-03-02T00:00:00Z"))
    r = P.period_from_range(utc("2024-03-01T00:00:00Z"), utc("2024-03-02T00:00:00Z"))
    assert r.label == "2024-03-01T00:00:00.000Z/2024-03-02T00:00:00.000Z"


# ------------------------------------------------------- hand-computed (items 1-2) -------

@pytest.mark.parametrize("mode", [P.TIMELINE, P.ON_THE_FLY])
async def test_month_in_new_york_hand_computed(db, mode):
    """March 2024 in New York (spring forward on the 10th: the month has 743 hours), 24x7
    store, active until its inactive poll at 2024-03-20T12:00Z and again from
    2024-03-21T12:00Z (polled 2024-03-19T12:00Z before): status changes at the midpoints (rule 2) -> inactive from
    2024-03-20T00:00Z to 2024-03-21T00:00Z = 24 h down. as_of = 2024-04-01T04:00Z = the
    period's end (local midnight is 04:00Z in EDT); the period started at 05:00Z (EST)."""
    polls = [poll("s1", "2024-02-20T00:00:00Z"), poll("s1", "2024-03-19T12:00:00Z"),
             poll("s1", "2024-03-20T12:00:00Z", "inactive"),
             poll("s1", "2024-03-21T12:00:00Z"), poll("s1", "2024-04-01T04:00:00Z")]
    await load(db, polls, [], [zone("s1", "America/New_York")])
    await prepare_v2(db)
    rows = await _rows(db, P.parse_period("2024-03"), utc("2024-04-01T04:00:00Z"), mode)
    assert rows == [{
        "store_id": "s1",
        "period_start": utc("2024-03-01T05:00:00Z"), "period_end": utc("2024-04-01T04:00:00Z"),
        "uptime_hours": 719.0, "downtime_hours": 24.0,
        "uptime_percent": round(719 / 743 * 100, 2), "timezone_fallback": False,
    }]


@pytest.mark.parametrize("mode", [P.TIMELINE, P.ON_THE_FLY])
async def test_month_in_progress_and_store_polled_mid_period(db, mode):
    """as_of inside the month: only [period start, as_of) counts (the rest is neither up nor
    down). A store first polled mid-month holds its first poll's status back to the period
    start (rule 2). Business hours Mon 09:00-17:00 Chicago (CST, UTC-6) only: Mondays
    2024-01-01/08/15 before as_of = 2024-01-16T00:00Z -> 3 × 8 h business time, all active
    for s1 (polled from 01-10 on); s2's only poll is after as_of -> no row; s3 has no
    business hours on its one day (a Tuesday row only) -> empty percent."""
    polls = [poll("s1", "2024-01-10T00:00:00Z"), poll("s1", "2024-01-15T23:00:00Z"),
             poll("s2", "2024-01-16T00:00:01Z"), poll("s3", "2024-01-01T12:00:00Z", "inactive")]
    hours = [hrow("s1", 0, "09:00:00", "17:00:00"), hrow("s3", 1, "09:00:00", "10:00:00")]
    await load(db, polls, hours, [])
    await prepare_v2(db)
    as_of = utc("2024-01-16T00:00:00Z")
    rows = await _rows(db, P.parse_period("2024-01"), as_of, mode)
    assert [r["store_id"] for r in rows] == ["s1", "s3"]
    s1, s3 = rows
    assert (s1["uptime_hours"], s1["downtime_hours"], s1["uptime_percent"]) == (24.0, 0.0, 100.0)
    assert s1["period_start"] == utc("2024-01-01T06:00:00Z")
    assert s1["period_end"] == utc("2024-02-01T06:00:00Z")
    assert s1["timezone_fallback"] is False
    # s3: Tuesdays 2024-01-02 and 01-09 09:00-10:00 local, inactive -> 2 h down, 0 up.
    assert (s3["uptime_hours"], s3["downtime_hours"], s3["uptime_percent"]) == (0.0, 2.0, 0.0)
    early = await _rows(db, P.parse_period("2024-01"), utc("2024-01-02T10:00:00Z"), mode)
    # as_of 2024-01-02 04:00 local: s1's Monday 01-01 counted (8 h); s3 not open yet.
    assert [(r["store_id"], r["uptime_hours"], r["uptime_percent"]) for r in early] == [
        ("s3", 0.0, None)]


# ----------------------------------------- the week ending at as_of == last_week (item 2) --

def _edge_stores(as_of: datetime, window_start: datetime) -> list[dict]:
    """Stores whose rows depend on polls after as_of being ignored (rules 1-2):
    ``gap`` polled active until 40 days before the window, next poll (inactive) 1 day after
    as_of: the midpoint lies before the window, yet the last status at or before as_of
    (active) holds over the whole window; ``tail`` inactive 3 days before as_of, next poll
    (active) 1 day after it: the midpoint is before as_of, yet inactive holds up to as_of;
    ``later`` polled only after as_of: no row."""
    day = timedelta(days=1)
    out = [poll("gap", window_start - 50 * day + i * timedelta(hours=1)) for i in range(200)]
    out.append(poll("gap", as_of + day, "inactive"))
    out += [poll("tail", as_of - 10 * day + i * timedelta(hours=1)) for i in range(7 * 24)]
    out.append(poll("tail", as_of - 3 * day, "inactive"))
    out.append(poll("tail", as_of + day))
    out.append(poll("later", as_of + timedelta(minutes=1)))
    return out


def _dataset(seed: int, as_of: datetime, stores: int = 25, days=(1.5, 8.5, 9, 40)):
    rng = random.Random(seed)
    status, hours, zones = [], [], []
    for i in range(stores):
        sid = rng.choice([str(rng.randrange(10**18, 10**19)), f"{rng.getrandbits(64):016x}-{i}"])
        d = random_store(rng, sid, as_of, days=rng.choice(days), poll_minutes=rng.choice([20, 60, 180]),
                         zones=ZONES, realistic=False)
        status += d.polls
        hours += d.hours
        zones += d.timezones
    return status, hours, zones


@pytest.mark.parametrize("as_of", ["2024-03-12T15:00:00Z", "2024-11-05T03:30:00Z",
                                   "2024-04-01T21:00:00Z"])
async def test_week_ending_at_as_of_equals_last_week_columns(db, as_of):
    """A period report for [as_of - 7 d, as_of) gives, store by store, exactly the normal
    report's uptime_last_week / downtime_last_week (same stores, same cents), on the timeline
    and on runs derived on the fly (random edge-case stores, DST weeks of New York/Beirut)."""
    t = utc(as_of)
    status, hours, zones = _dataset(sum(map(ord, as_of)), t + timedelta(days=2))
    status += _edge_stores(t, t - timedelta(days=7))
    await load(db, status, hours, zones)
    await prepare_v2(db)
    normal = await report_list(db, t, version="v2", prepared=True)
    assert len(normal) > 10 and {"gap", "tail"} <= {r["store_id"] for r in normal}
    assert "later" not in {r["store_id"] for r in normal}
    week = P.period_from_range(t - timedelta(days=7), t)
    for mode in (P.TIMELINE, P.ON_THE_FLY):
        rows = await _rows(db, week, t, mode)
        assert [r["store_id"] for r in rows] == [r["store_id"] for r in normal]
        for got, want in zip(rows, normal):
            assert f"{got['uptime_hours']:.2f}" == f"{want['uptime_last_week']:.2f}", got
            assert f"{got['downtime_hours']:.2f}" == f"{want['downtime_last_week']:.2f}", got
            assert got["timezone_fallback"] == want["timezone_fallback"]
            assert (got["period_start"], got["period_end"]) == (t - timedelta(days=7), t)


# --------------------------------------------- a month against the reference (item 2) -----

def _reference_month(status, hours, zones, first_day, end_day, as_of, accepted):
    """Pure-Python period sums: for each store with a valid poll <= as_of, the business time
    and downtime (ms, Fractions) in [local midnight of first_day, min(local midnight of
    end_day, as_of)), by the same sweep as reference_model.store_result."""
    from bisect import bisect_right

    as_of_ms = reference_model.epoch_ms(as_of)
    polls: dict[str, dict[int, bool]] = {}
    for doc in status:
        sid, ts, st = doc.get("store_id"), doc.get("timestamp_utc"), doc.get("status")
        if not isinstance(sid, str) or not isinstance(ts, datetime) or st not in ("active", "inactive"):
            continue
        t = reference_model.epoch_ms(ts)
        if t <= as_of_ms:
            inst = polls.setdefault(sid, {})
            inst[t] = inst.get(t, False) or st == "inactive"
    out = {}
    for sid, instants in sorted(polls.items()):
        times = sorted(instants)
        rows = [r for r in hours if r["store_id"] == sid]
        names = [z.get("timezone_str") for z in zones if z["store_id"] == sid]
        good = sorted(z for z in names if isinstance(z, str) and z in accepted)
        tz = good[0] if good else reference_model.FALLBACK_TIMEZONE
        p0 = reference_model.local_to_epoch_ms(first_day, time(0), tz)
        p1 = reference_model.local_to_epoch_ms(end_day, time(0), tz)
        end = max(p0, min(p1, as_of_ms))
        opens = reference_model.business_intervals(rows, tz, p0, end)

        def inactive_at(x):
            i = bisect_right(times, x)
            near = times[max(0, i - 1): i + 1]
            return instants[min(near, key=lambda t: (abs(x - t), -t))]

        cuts = {Fraction(p0), Fraction(end)}
        for a, b in opens:
            cuts |= {Fraction(min(max(a, p0), end)), Fraction(min(max(b, p0), end))}
        for t1, t2 in zip(times, times[1:]):
            m = Fraction(t1 + t2, 2)
            if p0 < m < end:
                cuts.add(m)
        points = sorted(cuts)
        business = down = Fraction(0)
        for p, q in zip(points, points[1:]):
            mid = (p + q) / 2
            if any(a <= mid < b for a, b in opens):
                business += q - p
                down += (q - p) if inactive_at(mid) else 0
        out[sid] = (business, down, p0, p1)
    return out


MONTH_CASES = [
    # (period, as_of): March 2024 (NY spring forward, Beirut 03-31 midnight jump) complete;
    # November 2024 (NY fall back) still in progress; a year-boundary month.
    ("2024-03", "2024-04-02T00:00:00Z"),
    ("2024-11", "2024-11-15T10:00:00Z"),
    ("2024-12", "2025-01-03T12:00:00Z"),
]


@pytest.mark.parametrize("case", range(len(MONTH_CASES)), ids=[c[0] for c in MONTH_CASES])
async def test_month_matches_reference(db, case):
    """Every rule at once for a calendar month in each store's local time: the pipeline's
    raw sums (ms) equal the reference's exactly, on the timeline and on the fly, with random
    stores (polls starting mid-month or ending before it, overnight / 24h / 23:59:59 rows,
    24x7 stores, unknown zones falling back to Chicago, DST in New York, Beirut, Sydney);
    the period bounds are each zone's local midnights."""
    label, as_of_text = MONTH_CASES[case]
    as_of = utc(as_of_text)
    period = P.parse_period(label)
    # polls go on 3 days after as_of (ignored: rule 1), plus the edge stores
    status, hours, zones = _dataset(500 + case, as_of + timedelta(days=3), stores=30,
                                    days=(10, 25, 40))
    status += _edge_stores(as_of, datetime.combine(period.first_day, time(0), as_of.tzinfo))
    await load(db, status, hours, zones)
    await prepare_v2(db)
    accepted = set(await known_timezones(db))
    expected = _reference_month(status, hours, zones, period.first_day, period.end_day, as_of,
                                accepted)
    assert any(not [h for h in hours if h["store_id"] == s] for s in expected)  # a 24x7 store
    assert {"gap", "tail"} <= set(expected) and "later" not in expected
    assert expected["gap"][1] == 0 and expected["gap"][0] > 0  # active over the period
    for mode in (P.TIMELINE, P.ON_THE_FLY):
        raw = await _raw(db, period, as_of, mode)
        assert sorted(raw) == sorted(expected), mode
        for sid, (business, down, p0, p1) in expected.items():
            got = raw[sid]
            assert Fraction(got["business_ms"]) == business, (mode, sid, "business")
            assert Fraction(got["downtime_ms"]) == down, (mode, sid, "downtime")
            assert reference_model.epoch_ms(got["p0"].replace(tzinfo=None).replace(
                tzinfo=__import__("datetime").timezone.utc)) == p0
        rows = await _rows(db, period, as_of, mode)
        for r in rows:
            business, down, p0, p1 = expected[r["store_id"]]
            assert r["uptime_hours"] == round(float((business - down) / 3_600_000), 2)
            assert r["downtime_hours"] == round(float(down / 3_600_000), 2)
            if business:
                assert abs(r["uptime_percent"] - float((business - down) * 100 / business)) <= 0.005 + 1e-9
            else:
                assert r["uptime_percent"] is None
            assert reference_model.epoch_ms(r["period_end"]) == p1


async def test_csv_format(db, tmp_path):
    """The CSV: header, ISO ms Z bounds, 2-decimal hours, empty percent without business time,
    formula-protected ids."""
    polls = [poll("=1+2", "2024-01-01T12:00:00Z"), poll("b", "2024-01-01T12:00:00Z")]
    await load(db, polls, [hrow("b", 6, "09:00:00", "10:00:00")], [zone("=1+2", "UTC"), zone("b", "UTC")])
    await prepare_v2(db)
    import io
    out = io.StringIO()
    n = await P.write_period_csv(db, P.parse_period("2024-01-01"[:7]), utc("2024-01-01T18:00:00Z"), out)
    assert n == 2
    assert out.getvalue() == (
        "store_id,period_start,period_end,uptime_hours,downtime_hours,uptime_percent\r\n"
        "'=1+2,2024-01-01T00:00:00.000Z,2024-02-01T00:00:00.000Z,18.00,0.00,100.00\r\n"
        "b,2024-01-01T00:00:00.000Z,2024-02-01T00:00:00.000Z,0.00,0.00,\r\n"
    ) or out.getvalue().replace("\r\n", "\n") == (
        "store_id,period_start,period_end,uptime_hours,downtime_hours,uptime_percent\n"
        "'=1+2,2024-01-01T00:00:00.000Z,2024-02-01T00:00:00.000Z,18.00,0.00,100.00\n"
        "b,2024-01-01T00:00:00.000Z,2024-02-01T00:00:00.000Z,0.00,0.00,\n"
    )


@pytest.mark.parametrize("source", ["timeline", "polls"])
async def test_mongosh_runner_gives_the_same_rows(db, mongo_uri, mongosh, source):
    """pipelines/period.mongosh.js (a DBA's way in) parses the period like the service and
    prints the same rows, on the timeline and with the runs derived from the polls."""
    import json
    import subprocess
    from pathlib import Path

    as_of = utc("2024-11-15T10:00:00Z")
    status, hours, zones = _dataset(77, as_of + timedelta(days=2), stores=15, days=(10, 40))
    await load(db, status + _edge_stores(as_of, utc("2024-11-01T00:00:00Z")), hours, zones)
    await prepare_v2(db)
    script = Path(__file__).resolve().parents[2] / "pipelines" / "period.mongosh.js"
    for spec, period in (('period="2024-11"', P.parse_period("2024-11")),
                         ('period="2024-W45"', P.parse_period("2024-W45")),
                         ('from="2024-11-03T00:00:00Z", to="2024-11-10T06:00:00Z"',
                          P.period_from_range(utc("2024-11-03T00:00:00Z"), utc("2024-11-10T06:00:00Z")))):
        out = subprocess.run(
            [mongosh, mongo_uri, "--quiet", "--eval",
             f'var {spec}, asOf="2024-11-15T10:00:00Z", source="{source}"; '
             f'db = db.getSiblingDB("{db.name}"); undefined', str(script)],
            capture_output=True, text=True, timeout=120, check=True)
        got = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        want = await _rows(db, period, as_of, P.TIMELINE)
        assert len(got) == len(want) > 10
        for g, w in zip(got, want):
            assert g["store_id"] == w["store_id"]
            assert utc(g["period_start"]["$date"] if isinstance(g["period_start"], dict) else g["period_start"]) == w["period_start"]
            assert (float(g["uptime_hours"]), float(g["downtime_hours"])) == (w["uptime_hours"], w["downtime_hours"])
            assert (None if g["uptime_percent"] is None else float(g["uptime_percent"])) == w["uptime_percent"]


# ------------------------------ long periods on disjoint schedules (item 3, the fast path) --

def _disjoint_hours(rng: random.Random, sid: str) -> list[dict]:
    """Hours rows that never overlap (v1-shaped, as ``uptime generate`` writes them): day
    hours, lunch/dinner splits, overnight rows split at midnight or left whole when the next
    day opens later, 24 h (``00:00:00``-``23:59:59``), closed days, and a lone ``end == start``
    24-hour row followed by a closed day."""
    kind = rng.choice(["day", "split", "overnight", "whole", "full", "lone24"])
    rows = []
    for d in range(7):
        if kind != "full" and rng.random() < 0.15:
            continue  # closed that day
        if kind == "day":
            rows.append(hrow(sid, d, f"{rng.randrange(6, 11):02d}:00:00", f"{rng.randrange(17, 23):02d}:30:00"))
        elif kind == "split":
            rows += [hrow(sid, d, "11:00:00", "14:00:00"), hrow(sid, d, "17:00:00", "22:15:00")]
        elif kind == "overnight":
            rows += [hrow(sid, d, "18:00:00", "23:59:59"), hrow(sid, d, "00:00:00", "02:00:00")]
        elif kind == "whole":
            rows.append(hrow(sid, d, "16:00:00", "03:00:00"))  # next day opens at 16:00
        elif kind == "full":
            rows.append(hrow(sid, d, "00:00:00", "23:59:59"))
        elif d % 2 == 0 and d < 6:
            rows.append(hrow(sid, d, "10:00:00", "10:00:00"))  # 24 h, the next day closed
    return rows


def _long_dataset(seed: int, first: datetime, as_of: datetime, stores: int):
    """Stores polled every 2-4 h from before ``first`` to ``as_of`` whose status holds for
    stretches of hours to weeks (long outages cross many days and DST changes)."""
    rng = random.Random(seed)
    status, hours, zones = [], [], []
    for i in range(stores):
        sid = f"L{i:02d}"
        t = first - timedelta(days=rng.choice([3, -20, -50]))  # some start mid-period
        inactive = rng.random() < 0.3
        left = timedelta(hours=rng.expovariate(1 / 150))
        while t <= as_of:
            status.append(poll(sid, t, "inactive" if inactive else "active"))
            step = timedelta(minutes=rng.randrange(120, 240))
            t += step
            left -= step
            if left <= timedelta(0):
                inactive = not inactive
                left = timedelta(hours=rng.expovariate(1 / (300 if inactive else 150)))
        hours += _disjoint_hours(rng, sid)
        zones.append(zone(sid, ZONES[i % len(ZONES)]))
    return status, hours, zones


@pytest.mark.parametrize("label, as_of_text", [("2024-Q1", "2024-04-03T00:00:00Z"),
                                               ("2024-Q4", "2024-12-20T00:00:00Z")])
async def test_quarter_on_disjoint_schedules_matches_reference(db, label, as_of_text):
    """Item 3's fast path (per down stretch only the business intervals of the days it covers):
    a quarter in each store's local time with schedules whose rows never overlap, long outages
    across DST changes (New York, Sydney, Beirut's midnight jump), stores polled from mid-period
    on, a quarter still in progress: raw sums (ms) equal the reference exactly, on the timeline
    and on the fly. Every store with hours takes the fast path (checked on the pipeline's
    ``fast`` flag), so the test covers it."""
    as_of = utc(as_of_text)
    period = P.parse_period(label)
    first = datetime.combine(period.first_day, time(0), as_of.tzinfo)
    status, hours, zones = _long_dataset(sum(map(ord, label)), first, as_of, stores=14)
    await load(db, status, hours, zones)
    await prepare_v2(db)
    accepted = set(await known_timezones(db))
    expected = _reference_month(status, hours, zones, period.first_day, period.end_day, as_of,
                                accepted)
    assert len(expected) == 14 and sum(1 for b, d, *_ in expected.values() if 0 < d < b) >= 5
    stages = P.load_period_pipeline()
    cut = next(i for i, s in enumerate(stages) if "fast" in s.get("$set", {})) + 1
    let = P.period_let(period, as_of, sorted(accepted))
    cursor = await db["status_runs"].aggregate(
        stages[:cut] + [{"$unwind": "$stores"}, {"$project": {"fast": 1, "n": {"$size": "$hours"}}}], let=let)
    flags = [(d["fast"], d["n"]) async for d in cursor]
    assert flags and all(fast for fast, n in flags if n), flags
    for mode in (P.TIMELINE, P.ON_THE_FLY):
        raw = await _raw(db, period, as_of, mode)
        assert sorted(raw) == sorted(expected), mode
        for sid, (business, down, p0, p1) in expected.items():
            assert Fraction(raw[sid]["business_ms"]) == business, (mode, sid, "business")
            assert Fraction(raw[sid]["downtime_ms"]) == down, (mode, sid, "downtime")
