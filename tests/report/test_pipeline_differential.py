"""The pipeline against the obviously-correct reference model, and invariants, on seeded
random stores (tests/support/pipeline_synth.py with edge cases piled up: duplicates, conflicting
and invalid polls, gaps, polls at T, stores polled only before the week or only after T,
overnight / equal / 23:59:59 / overlapping rows, missing and unknown timezones), with T
placed in DST weeks of New York, Beirut and Sydney."""

from __future__ import annotations

import random
from datetime import datetime
from fractions import Fraction

import pytest

from support import reference_model
from support.pipeline import load, raw_sums, report, utc
from support.pipeline_synth import random_store
from uptime.report.pipeline import known_timezones

# Every test here runs on both report versions (issue 8, item 5: v2 gives v1's rows).
pytestmark = pytest.mark.usefixtures("report_version")


ZONES = ["America/New_York", "Asia/Beirut", "Australia/Sydney", "America/Chicago"]
DST_AS_OF = [
    "2024-03-12T15:00:00Z",  # New York spring forward (03-10)
    "2024-11-05T03:30:00Z",  # New York fall back (11-03)
    "2024-04-01T21:00:00Z",  # Beirut spring forward (03-31 00:00)
    "2024-10-27T22:15:00Z",  # Beirut fall back (10-27 00:00 -> 10-26 23:00)
    "2024-04-08T01:00:00Z",  # Sydney fall back (04-07 03:00 -> 02:00)
    "2024-10-06T16:00:00Z",  # Sydney spring forward (10-06 02:00 -> 03:00), T on that day
]
STORES_PER_CASE = 25


def _dataset(seed: int, as_of: datetime):
    rng = random.Random(seed)
    status, hours, zones = [], [], []
    for i in range(STORES_PER_CASE):
        sid = rng.choice([str(rng.randrange(10**18, 10**19)), f"{rng.getrandbits(64):016x}-{i}"])
        d = random_store(rng, sid, as_of, days=rng.choice([1.5, 8.5, 9]), poll_minutes=rng.choice([20, 60, 180]),
                         zones=ZONES, realistic=False)
        status += d.polls
        hours += d.hours
        zones += d.timezones
    return status, hours, zones


@pytest.mark.parametrize("case", range(len(DST_AS_OF)), ids=[t[:10] for t in DST_AS_OF])
async def test_pipeline_matches_reference_model(db, case):
    """Every rule at once: for random stores the pipeline's raw sums (ms, before rounding)
    equal the reference model's exactly, the same stores get rows, and the rounded rows
    (minutes / hours, 2 decimals) and timezone_fallback flags are equal too."""
    as_of = utc(DST_AS_OF[case])
    status, hours, zones = _dataset(1000 + case, as_of)
    await load(db, status, hours, zones)
    accepted = set(await known_timezones(db))
    assert accepted >= set(ZONES) and "US/Chicagoo" not in accepted
    expected = reference_model.report(status, hours, zones, as_of, accepted)

    raw = await raw_sums(db, as_of)
    assert sorted(raw) == sorted(expected)
    for sid, model in expected.items():
        got = raw[sid]
        for w in ("hour", "day", "week"):
            assert Fraction(got["business_ms"][w]) == model.business[w], (sid, w, "business")
            assert Fraction(got["downtime_ms"][w]) == model.downtime[w], (sid, w, "downtime")
        assert got["timezone"] == model.timezone

    rows = await report(db, as_of)
    assert rows == {sid: m.row(sid) for sid, m in expected.items()}


def _swap(status: str):
    return {"active": "inactive", "inactive": "active"}.get(status, status)


async def test_uptime_plus_downtime_is_business_time(db):
    """Rule 6 invariant on random data: uptime + downtime = business time in each window,
    and business time does not depend on the polls: with every status swapped (active <->
    inactive) the raw uptime and downtime swap exactly. 24x7 stores (no rows) have exactly
    60 min / 24 h / 168 h of business time. (Conflicting same-instant polls are left out
    here: "inactive wins" is deliberately not symmetric.)"""
    as_of = utc("2024-03-12T15:00:00Z")
    status, hours, zones = _dataset(7, as_of)
    seen: dict = {}
    for p in status:
        seen.setdefault((p["store_id"], p["timestamp_utc"]), p["status"])
    status = [p for p in status if seen[(p["store_id"], p["timestamp_utc"])] == p["status"]]
    await load(db, status, hours, zones)
    first = await raw_sums(db, as_of)
    await db["store_status"].delete_many({})
    await db["store_status"].insert_many([{**p, "status": _swap(p["status"])} for p in status])
    second = await raw_sums(db, as_of)
    assert sorted(first) == sorted(second) and first
    no_hours = set(first) - {h["store_id"] for h in hours}
    assert no_hours and set(first) - no_hours
    for sid, a in first.items():
        b = second[sid]
        for w, length in (("hour", 3_600_000), ("day", 86_400_000), ("week", 604_800_000)):
            up_a = a["business_ms"][w] - a["downtime_ms"][w]
            up_b = b["business_ms"][w] - b["downtime_ms"][w]
            assert a["business_ms"][w] == b["business_ms"][w]
            assert (up_a, a["downtime_ms"][w]) == (b["downtime_ms"][w], up_b)
            assert 0 <= a["downtime_ms"][w] <= a["business_ms"][w] <= length
            if sid in no_hours:
                assert a["business_ms"][w] == length
