"""The benchmark's alternative (uptime.tools.alt_report): the issue-3 worked examples, by hand.

The alternative must follow the report rules exactly (the bench also checks it against the
pipeline's CSV); these tests pin it to the hand-computed values of issue 3.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from uptime.tools.alt_report import _to_ms, compute_report, to_csv


def _z(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _polls(*polls: tuple[str, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "store_id": [p[0] for p in polls],
            "t": [_to_ms(_z(p[1])) for p in polls],
            "inactive": [p[2] == "inactive" for p in polls],
        },
        schema={"store_id": pl.String, "t": pl.Int64, "inactive": pl.Boolean},
    )


def _hours(store: str, *rows: tuple[int, str, str]) -> list[dict]:
    return [
        {"store_id": store, "dayOfWeek": d, "start_time_local": s, "end_time_local": e}
        for d, s, e in rows
    ]


def _one(polls, hours, zones, as_of) -> dict:
    rows = compute_report(polls, hours, zones, _z(as_of))
    assert len(rows) == 1
    return rows[0]


def test_24x7_midpoint_rule() -> None:
    """Rule 2 + example 1: 24x7, 10:00Z active, 11:00Z inactive, T=11:00Z -> status flips
    at 10:30Z: hour 30/30 min, day 23.5/0.5 h, week 167.5/0.5 h."""
    r = _one(
        _polls(("s", "2024-05-01T10:00:00Z", "active"), ("s", "2024-05-01T11:00:00Z", "inactive")),
        [], [], "2024-05-01T11:00:00Z",
    )
    assert (r["uptime_last_hour"], r["downtime_last_hour"]) == (30.0, 30.0)
    assert (r["uptime_last_day"], r["downtime_last_day"]) == (23.5, 0.5)
    assert (r["uptime_last_week"], r["downtime_last_week"]) == (167.5, 0.5)


def test_spec_example_last_hour() -> None:
    """Example 2: T=18:13Z, polls 17:05Z inactive, 17:50Z active -> flip at 17:27:30Z:
    last hour [17:13, 18:13): down 14.5 min, up 45.5 min."""
    r = _one(
        _polls(("s", "2024-05-01T17:05:00Z", "inactive"), ("s", "2024-05-01T17:50:00Z", "active")),
        [], [], "2024-05-01T18:13:00Z",
    )
    assert (r["uptime_last_hour"], r["downtime_last_hour"]) == (45.5, 14.5)


@pytest.mark.parametrize(
    ("end", "as_of", "expected"),
    [
        ("04:00:00", "2024-03-11T12:00:00Z", 3.0),  # spring forward: 02:00-03:00 skipped
        ("03:00:00", "2024-11-04T12:00:00Z", 4.0),  # fall back: 01:00-02:00 twice
        ("23:59:59", "2024-03-11T12:00:00Z", 23.0),  # 23:59:59 = midnight; 23-hour day
    ],
)
def test_dst_in_new_york(end: str, as_of: str, expected: float) -> None:
    """Rule 4: New York store open Sundays 00:00-<end>, one active poll -> week uptime."""
    r = _one(
        _polls(("s", "2024-03-01T00:00:00Z", "active")),
        _hours("s", (6, "00:00:00", end)),
        [{"store_id": "s", "timezone_str": "America/New_York"}],
        as_of,
    )
    assert r["uptime_last_week"] == expected
    assert r["downtime_last_week"] == 0.0


def test_missing_zone_overnight_overlapping_rows() -> None:
    """Rules 3+5: no timezone (Chicago), Fri 22:00-02:00, Mon 10-14 and Mon 12-16, always
    active, T=2024-05-06T00:00Z (Sun 19:00 CDT) -> Fri 4 h + Mon 6 h = 10.0 h."""
    r = _one(
        _polls(("s", "2024-05-01T00:00:00Z", "active")),
        _hours("s", (4, "22:00:00", "02:00:00"), (0, "10:00:00", "14:00:00"),
               (0, "12:00:00", "16:00:00")),
        [], "2024-05-06T00:00:00Z",
    )
    assert r["uptime_last_week"] == 10.0
    assert r["timezone_fallback"] is False


def test_closed_hour_and_unknown_zone_fallback() -> None:
    """Rules 3+5: open Wed 09-17, T=Wed 07:00 Chicago -> last hour 0/0; an unknown zone
    falls back to Chicago and is flagged."""
    r = _one(
        _polls(("s", "2024-04-30T12:00:00Z", "inactive")),
        _hours("s", (2, "09:00:00", "17:00:00")),
        [{"store_id": "s", "timezone_str": "US/Chicagoo"}],
        "2024-05-01T12:00:00Z",
    )
    assert (r["uptime_last_hour"], r["downtime_last_hour"]) == (0.0, 0.0)
    assert r["timezone_fallback"] is True
    # Tue 09-17 is not open (Wednesday only): the week holds last Wednesday 09-17 = 8 h down
    assert r["downtime_last_week"] == 8.0


def test_duplicates_inactive_wins_and_csv() -> None:
    """Rule 1: two polls at one instant count once, inactive if any; stores sorted; CSV
    numbers with 2 decimals."""
    polls = _polls(
        ("b", "2024-05-01T10:00:00Z", "active"),
        ("b", "2024-05-01T10:00:00Z", "inactive"),
        ("a", "2024-05-01T10:30:00Z", "active"),
    )
    rows = compute_report(polls, [], [], _z("2024-05-01T11:00:00Z"))
    assert [r["store_id"] for r in rows] == ["a", "b"]
    assert rows[1]["downtime_last_hour"] == 60.0
    assert to_csv(rows).splitlines()[1] == "a,60.00,24.00,168.00,0.00,0.00,0.00"
