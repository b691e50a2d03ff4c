"""Given rows -> expected rows for the store_uptime v1 pipeline (issue 3: worked examples and rules).

Expected values are computed by hand in each docstring. Hour values are minutes, day and
week values hours. Stores without a timezone row use America/Chicago; stores without
hours rows are open 24x7.
"""

from __future__ import annotations

import pytest

from support.pipeline import hours, load, poll, raw_sums, report, report_list, utc, zone

# Every test here runs on both report versions (issue 8, item 5: v2 gives v1's rows).
pytestmark = pytest.mark.usefixtures("report_version")


ZERO = {
    "uptime_last_hour": 0.0, "uptime_last_day": 0.0, "uptime_last_week": 0.0,
    "downtime_last_hour": 0.0, "downtime_last_day": 0.0, "downtime_last_week": 0.0,
}


def sums(row: dict) -> tuple[float, ...]:
    return tuple(row[k] for k in ZERO)


# --- worked examples -------------------------------------------------------------------


async def test_example_24x7_two_polls(db):
    """24x7 store, polls 10:00Z active and 11:00Z inactive, T = 11:00Z: the status flips at
    10:30Z, so hour 30/30 min, day 23.5/0.5 h, week 167.5/0.5 h (rule 2: first poll's
    status holds before it; a poll exactly at T counts)."""
    await load(db, [poll("s", "2024-05-01T10:00:00Z"), poll("s", "2024-05-01T11:00:00Z", "inactive")])
    rows = await report(db, "2024-05-01T11:00:00Z")
    assert sums(rows["s"]) == (30.0, 23.5, 167.5, 30.0, 0.5, 0.5)
    assert rows["s"]["timezone_fallback"] is False


async def test_example_midpoint_in_last_hour(db):
    """T = 18:13Z, polls 17:05Z inactive and 17:50Z active: flip at 17:27:30Z; the hour
    [17:13, 18:13) has 14.5 min down and 45.5 min up."""
    await load(db, [poll("s", "2023-01-25T17:05:00Z", "inactive"), poll("s", "2023-01-25T17:50:00Z")])
    row = (await report(db, "2023-01-25T18:13:00Z"))["s"]
    assert (row["uptime_last_hour"], row["downtime_last_hour"]) == (45.5, 14.5)


@pytest.mark.parametrize(
    ("end", "as_of", "expected"),
    [
        # Sun 2024-03-10 00:00 EST = 05:00Z .. 04:00 EDT = 08:00Z: 3 h (spring forward)
        ("04:00:00", "2024-03-11T12:00:00Z", 3.0),
        # Sun 2024-11-03 00:00 EDT = 04:00Z .. 03:00 EST = 08:00Z: 4 h (fall back)
        ("03:00:00", "2024-11-04T12:00:00Z", 4.0),
        # Sun 2024-03-10 00:00 EST = 05:00Z .. Mon 00:00 EDT = 04:00Z: 23 h (23:59:59 = midnight)
        ("23:59:59", "2024-03-11T12:00:00Z", 23.0),
    ],
)
async def test_example_new_york_sundays_across_dst(db, end, as_of, expected):
    """New York store open Sundays 00:00-<end>, one active poll: local times become UTC with
    the offset in force (rule 4), so the 4-hour (3-hour) opening lasts 3 h (4 h) across
    spring forward (fall back), and a Sunday ending 23:59:59 lasts 23 h."""
    await load(db, [poll("s", "2024-03-01T00:00:00Z")], [hours("s", 6, "00:00:00", end)], [zone("s", "America/New_York")])
    row = (await report(db, as_of))["s"]
    assert row["uptime_last_week"] == expected
    assert row["downtime_last_week"] == 0.0


async def test_example_chicago_overnight_and_overlap(db):
    """No timezone -> Chicago. Rows Fri 22:00-02:00 (overnight), Mon 10:00-14:00 and
    Mon 12:00-16:00 (overlap counts once), always active, T = 2024-05-06T00:00Z (Sun 19:00
    CDT): week [Sun 04-28 19:00, Sun 05-05 19:00) CDT holds Mon 04-29 10:00-16:00 (6 h) and
    Fri 05-03 22:00 - Sat 02:00 (4 h) = 10 h."""
    rows_ = [hours("s", 4, "22:00:00", "02:00:00"), hours("s", 0, "10:00:00", "14:00:00"), hours("s", 0, "12:00:00", "16:00:00")]
    await load(db, [poll("s", "2024-05-01T12:00:00Z")], rows_)
    row = (await report(db, "2024-05-06T00:00:00Z"))["s"]
    assert row["uptime_last_week"] == 10.0
    assert row["downtime_last_week"] == 0.0
    assert row["timezone_fallback"] is False


async def test_example_closed_in_last_hour(db):
    """Open Wednesdays 09:00-17:00 (Chicago), T = 2024-05-01T12:00Z = Wed 07:00 CDT: the last
    hour and day are outside business hours: 0 up, 0 down. The week [Wed 04-24 07:00 CDT, T)
    holds Wed 04-24 09:00-17:00: 8 h, all down (one inactive poll)."""
    await load(db, [poll("s", "2024-05-01T11:00:00Z", "inactive")], [hours("s", 2, "09:00:00", "17:00:00")])
    row = (await report(db, "2024-05-01T12:00:00Z"))["s"]
    assert (row["uptime_last_hour"], row["downtime_last_hour"]) == (0.0, 0.0)
    assert (row["uptime_last_day"], row["downtime_last_day"]) == (0.0, 0.0)
    assert (row["uptime_last_week"], row["downtime_last_week"]) == (0.0, 8.0)


# --- rule 1: polls ---------------------------------------------------------------------


@pytest.mark.parametrize("order", [("active", "inactive"), ("inactive", "active")])
async def test_conflicting_polls_same_instant_inactive_wins(db, order):
    """Rule 1: two polls at 09:00Z (active and inactive, either insert order) are one
    inactive poll. Polls 08:00 A, 09:00 A+I, 10:00 A, 11:00 A, 12:00 A, T = 12:00Z: down
    from 08:30 to 09:30 = 1 h in the day, nothing in the last hour."""
    polls = [poll("s", "2024-05-01T08:00:00Z"), poll("s", "2024-05-01T09:00:00Z", order[0]),
             poll("s", "2024-05-01T09:00:00Z", order[1])]
    polls += [poll("s", f"2024-05-01T{h}:00:00Z") for h in (10, 11, 12)]
    await load(db, polls)
    assert sums((await report(db, "2024-05-01T12:00:00Z"))["s"]) == (60.0, 23.0, 167.0, 0.0, 1.0, 1.0)


@pytest.mark.parametrize("order", [("inactive", "active", "active"), ("active", "active", "inactive"),
                                   ("active", "inactive", "active")])
async def test_three_polls_same_instant_inactive_wins(db, order):
    """Rule 1: three polls at 09:00Z, one inactive (every insert order, which is the order the
    index returns equal keys in), between hourly active polls 08:00..12:00, T = 12:00Z: one
    inactive poll at 09:00 -> down 08:30-09:30 = 1 h (not 2 h: the 10:00 poll still counts)."""
    polls = [poll("s", "2024-05-01T08:00:00Z")] + [poll("s", "2024-05-01T09:00:00Z", st) for st in order]
    polls += [poll("s", f"2024-05-01T{h}:00:00Z") for h in (10, 11, 12)]
    await load(db, polls)
    assert sums((await report(db, "2024-05-01T12:00:00Z"))["s"]) == (60.0, 23.0, 167.0, 0.0, 1.0, 1.0)


async def test_exact_duplicate_polls_count_once(db):
    """Rule 1: an exact duplicate poll changes nothing: 10:00 A, 11:00 I twice, T = 11:00Z
    gives the first worked example's 30/30 min."""
    await load(db, [poll("s", "2024-05-01T10:00:00Z"), poll("s", "2024-05-01T11:00:00Z", "inactive"),
                    poll("s", "2024-05-01T11:00:00Z", "inactive")])
    row = (await report(db, "2024-05-01T11:00:00Z"))["s"]
    assert (row["uptime_last_hour"], row["downtime_last_hour"]) == (30.0, 30.0)


async def test_invalid_status_is_ignored(db):
    """Rule 1: a poll whose status is not active/inactive is no poll: 10:00 A, 10:40
    'unknown', 11:00 I, T = 11:00Z -> flip at 10:30 (not 10:20 or 10:50): 30/30 min. A store
    with only invalid polls has no row."""
    await load(db, [poll("s", "2024-05-01T10:00:00Z"), poll("s", "2024-05-01T10:40:00Z", "unknown"),
                    poll("s", "2024-05-01T11:00:00Z", "inactive"), poll("x", "2024-05-01T10:00:00Z", "ACTIVE")])
    rows = await report(db, "2024-05-01T11:00:00Z")
    assert list(rows) == ["s"]
    assert (rows["s"]["uptime_last_hour"], rows["s"]["downtime_last_hour"]) == (30.0, 30.0)


async def test_polls_after_as_of_are_ignored_and_poll_at_as_of_counts(db):
    """Rule 1: polls with timestamp_utc > T are ignored; one exactly at T counts. Polls
    10:00 A, 11:00 I (= T), 11:00:00.001 A -> 30/30 min; a store polled only after T has no row."""
    await load(db, [poll("s", "2024-05-01T10:00:00Z"), poll("s", "2024-05-01T11:00:00Z", "inactive"),
                    poll("s", "2024-05-01T11:00:00.001Z"), poll("late", "2024-05-01T11:00:01Z")])
    rows = await report(db, "2024-05-01T11:00:00Z")
    assert list(rows) == ["s"]
    assert (rows["s"]["uptime_last_hour"], rows["s"]["downtime_last_hour"]) == (30.0, 30.0)


# --- rule 2: status at an instant ---------------------------------------------------------


async def test_single_poll_holds_everywhere(db):
    """Rule 2: one inactive poll at 05:00Z, T = 12:00Z: inactive over the whole week
    (before the poll its status holds; after it up to T): 0 up; 60 min, 24 h, 168 h down."""
    await load(db, [poll("s", "2024-05-01T05:00:00Z", "inactive")])
    assert sums((await report(db, "2024-05-01T12:00:00Z"))["s"]) == (0.0, 0.0, 0.0, 60.0, 24.0, 168.0)


async def test_all_polls_precede_the_week(db):
    """Rule 2: polls 10 and 9 days before T (active, then inactive) -> the last one's status
    holds for the whole week: 168 h down; the store still has a row."""
    await load(db, [poll("s", "2024-04-21T12:00:00Z"), poll("s", "2024-04-22T12:00:00Z", "inactive")])
    assert sums((await report(db, "2024-05-01T12:00:00Z"))["s"]) == (0.0, 0.0, 0.0, 60.0, 24.0, 168.0)


async def test_change_point_is_exact_half_millisecond_midpoint(db):
    """Rule 2: polls 10:00:00.000 A and 10:00:00.003 I (= T): the status changes at the
    midpoint 10:00:00.0015 (not rounded to a millisecond), so the last hour has exactly 1.5 ms
    down. (The midpoint instant itself belongs to the later poll; a single instant has no
    duration, so that choice cannot change a sum.)"""
    await load(db, [poll("s", "2024-05-01T10:00:00.000Z"), poll("s", "2024-05-01T10:00:00.003Z", "inactive")])
    raw = (await raw_sums(db, utc("2024-05-01T10:00:00.003Z")))["s"]
    assert raw["downtime_ms"]["hour"] == 1.5
    assert raw["business_ms"]["hour"] == 3_600_000


async def test_flip_points_only_count_inside_windows(db):
    """Rule 2 + windows: hourly polls, inactive from 02:00 to 04:00 inclusive (flips at
    01:30 and 04:30), T = 2024-05-01T12:00Z: last hour 0 down, day 3 h down, week 3 h."""
    polls = [poll("s", f"2024-05-01T{h:02d}:00:00Z", "inactive" if 2 <= h <= 4 else "active") for h in range(13)]
    await load(db, polls)
    assert sums((await report(db, "2024-05-01T12:00:00Z"))["s"]) == (60.0, 21.0, 165.0, 0.0, 3.0, 3.0)


# --- rule 3: business hours ------------------------------------------------------------


async def test_no_hours_rows_is_24x7(db):
    """Rule 3: no hours rows -> open 24x7: an always-active store has 60 min, 24 h, 168 h up."""
    await load(db, [poll("s", "2024-05-01T11:00:00Z")])
    assert sums((await report(db, "2024-05-01T12:00:00Z"))["s"]) == (60.0, 24.0, 168.0, 0.0, 0.0, 0.0)


async def test_weekday_without_rows_is_closed(db):
    """Rule 3: rows only for Monday 09:00-17:00 (Chicago); T = Wed 2024-05-01T18:00Z: the hour
    and day are closed (0/0), the week holds Mon 04-29 (8 h)."""
    await load(db, [poll("s", "2024-04-20T00:00:00Z")], [hours("s", 0, "09:00:00", "17:00:00")])
    assert sums((await report(db, "2024-05-01T18:00:00Z"))["s"]) == (0.0, 0.0, 8.0, 0.0, 0.0, 0.0)


async def test_overnight_row_closes_next_date(db):
    """Rule 3: Tue 20:00-03:00 (end < start, Chicago) is open Tue 20:00 CDT (Wed 01:00Z) to
    Wed 03:00 CDT (08:00Z). T = Wed 2024-05-01T06:00Z: hour [05:00Z, 06:00Z) 60 min; day 5 h
    (01:00Z-06:00Z); the week starts Wed 04-24 06:00Z (01:00 CDT), inside the night that began
    on the day before the window start's local date: +2 h (06:00Z-08:00Z) -> 7 h."""
    await load(db, [poll("s", "2024-04-20T06:00:00Z")], [hours("s", 1, "20:00:00", "03:00:00")])
    assert sums((await report(db, "2024-05-01T06:00:00Z"))["s"]) == (60.0, 5.0, 7.0, 0.0, 0.0, 0.0)


async def test_equal_start_and_end_is_open_24_hours(db):
    """Rule 3: Mon 09:00-09:00 means open from Mon 09:00 to Tue 09:00 local (24 h).
    Chicago, T = Wed 2024-05-01T12:00Z: week holds Mon 04-29 14:00Z .. Tue 04-30 14:00Z = 24 h;
    the day [Tue 12:00Z, Wed 12:00Z) holds 2 h of it."""
    await load(db, [poll("s", "2024-04-20T00:00:00Z")], [hours("s", 0, "09:00:00", "09:00:00")])
    assert sums((await report(db, "2024-05-01T12:00:00Z"))["s"]) == (0.0, 2.0, 24.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("end", ["23:59:59", "23:59:59.999", "23:59:59.5"])
async def test_2359_59_means_midnight(db, end):
    """Rule 3: an end of 23:59:59 (any fraction) closes at the next midnight: Tue 00:00 -
    23:59:59 (UTC store) is exactly 24 h, not 23:59:59."""
    await load(db, [poll("s", "2024-04-20T00:00:00Z")], [hours("s", 1, "00:00:00", end)], [zone("s", "UTC")])
    assert (await report(db, "2024-05-01T12:00:00Z"))["s"]["uptime_last_week"] == 24.0


async def test_overlapping_and_touching_rows_count_once(db):
    """Rule 3: Mon 08:00-12:00 + 10:00-13:00 (overlap) + 13:00-15:00 (touching) + 09:00-11:00
    (inside) are one opening 08:00-15:00 = 7 h (UTC store). Polls Mon 08:00Z A and 11:30Z I
    flip at 09:45Z -> 1.75 h up, 5.25 h down (not 9 h or 11 h of business time)."""
    rows_ = [hours("s", 0, "08:00:00", "12:00:00"), hours("s", 0, "10:00:00", "13:00:00"),
             hours("s", 0, "13:00:00", "15:00:00"), hours("s", 0, "09:00:00", "11:00:00")]
    await load(db, [poll("s", "2024-04-29T08:00:00Z"), poll("s", "2024-04-29T11:30:00Z", "inactive")],
               rows_, [zone("s", "UTC")])
    row = (await report(db, "2024-05-01T12:00:00Z"))["s"]
    assert (row["uptime_last_week"], row["downtime_last_week"]) == (1.75, 5.25)


async def test_hours_in_local_time_of_the_store(db):
    """Rule 3/4: Wed 09:00-17:00 in Los Angeles (PDT, UTC-7) = 16:00Z-00:00Z; T = Wed
    2024-05-01T18:00Z: last hour open (60 min), day 2 h (16:00Z-18:00Z); the week starts Wed
    04-24 18:00Z, so it holds 6 h of that Wednesday + 2 h = 8 h."""
    await load(db, [poll("s", "2024-04-20T00:00:00Z")], [hours("s", 2, "09:00:00", "17:00:00")],
               [zone("s", "America/Los_Angeles")])
    assert sums((await report(db, "2024-05-01T18:00:00Z"))["s"]) == (60.0, 2.0, 8.0, 0.0, 0.0, 0.0)


# --- rule 4: local time -> UTC ---------------------------------------------------------


async def test_skipped_local_time_counts_as_if_clock_had_not_jumped(db):
    """Rule 4: New York Sun 2024-03-10 02:30-03:30: 02:30 does not exist and resolves to
    07:30Z (EST), 03:30 EDT is 07:30Z too -> open 0 h. A 01:00-03:30 row gives 06:00Z-07:30Z."""
    await load(db, [poll("a", "2024-03-01T00:00:00Z"), poll("b", "2024-03-01T00:00:00Z")],
               [hours("a", 6, "02:30:00", "03:30:00"), hours("b", 6, "01:00:00", "03:30:00")],
               [zone("a", "America/New_York"), zone("b", "America/New_York")])
    rows = await report(db, "2024-03-11T12:00:00Z")
    assert rows["a"]["uptime_last_week"] == 0.0
    assert rows["b"]["uptime_last_week"] == 1.5


async def test_ambiguous_local_time_resolves_to_later_instant(db):
    """Rule 4: New York Sun 2024-11-03 01:30 happens twice (05:30Z EDT, 06:30Z EST); the later
    one is used, so 01:30-02:00 (02:00 EST = 07:00Z) is 0.5 h, not 1.5 h."""
    await load(db, [poll("s", "2024-11-01T00:00:00Z")], [hours("s", 6, "01:30:00", "02:00:00")],
               [zone("s", "America/New_York")])
    assert (await report(db, "2024-11-04T12:00:00Z"))["s"]["uptime_last_week"] == 0.5


async def test_rows_covering_every_day_equal_24x7_across_dst(db):
    """Rule 3/4: rows 00:00-23:59:59 on all 7 days in New York join into one opening across
    the spring-forward Sunday (which itself has 23 h), so the week 2024-03-04T12:00Z ..
    03-11T12:00Z has 168 h, the same as the 24x7 default (no rows)."""
    await load(db, [poll("s", "2024-03-01T00:00:00Z"), poll("t", "2024-03-01T00:00:00Z")],
               [hours("s", d, "00:00:00", "23:59:59") for d in range(7)],
               [zone("s", "America/New_York"), zone("t", "America/New_York")])
    rows = await report(db, "2024-03-11T12:00:00Z")
    assert rows["s"]["uptime_last_week"] == 168.0
    assert rows["t"]["uptime_last_week"] == 168.0


# --- rule 5: timezone ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zones", "expected_up", "fallback"),
    [
        ([], 30.0, False),  # missing -> Chicago: open from 14:00Z, T 14:30Z
        (["US/Chicagoo"], 30.0, True),  # unknown -> Chicago, recorded
        ([""], 30.0, True),  # empty -> Chicago, recorded
        (["America/New_York"], 60.0, False),  # open from 13:00Z
        (["Mars/Olympus", "America/New_York"], 60.0, False),  # the accepted one is used
    ],
)
async def test_timezone_fallback(db, zones, expected_up, fallback):
    """Rule 5: Wed 09:00-17:00, T = Wed 2024-05-01T14:30Z. Chicago (CDT) opens 14:00Z -> 30 min
    in the last hour; New York opens 13:00Z -> 60 min. Missing or unknown zones fall back to
    Chicago and never fail the report; an unknown one sets timezone_fallback."""
    await load(db, [poll("s", "2024-05-01T14:00:00Z"), poll("other", "2024-05-01T14:00:00Z")],
               [hours("s", 2, "09:00:00", "17:00:00")], [zone("s", z) for z in zones] + [zone("other", "Asia/Tokyo")])
    row = (await report(db, "2024-05-01T14:30:00Z"))["s"]
    assert row["uptime_last_hour"] == expected_up
    assert row["timezone_fallback"] is fallback


# --- report shape ---------------------------------------------------------------------------


async def test_store_only_in_hours_or_timezones_is_absent_and_rows_sorted(db):
    """Grain: one row per store with a valid poll <= T, sorted by store_id (string order);
    stores known only from hours or timezones have no row."""
    ids = ["b", "a", "10", "9", "A"]
    await load(db, [poll(i, "2024-05-01T11:00:00Z") for i in ids],
               [hours("only_hours", 0, "09:00:00", "10:00:00")], [zone("only_tz", "America/New_York")])
    rows = await report_list(db, "2024-05-01T12:00:00Z")
    assert [r["store_id"] for r in rows] == sorted(ids) == ["10", "9", "A", "a", "b"]
    assert set(rows[0]) == {*ZERO, "store_id", "timezone_fallback"}


async def test_rounding_to_two_decimals(db):
    """Units and rounding: down from 10:20Z (polls 10:00 A, 10:40 I), T = 11:00Z -> hour 40 min
    down; a 1/3-hour day remainder: day down 2/3 h -> 0.67, up 23.33 h."""
    await load(db, [poll("s", "2024-05-01T10:00:00Z"), poll("s", "2024-05-01T10:40:00Z", "inactive")])
    assert sums((await report(db, "2024-05-01T11:00:00Z"))["s"]) == (20.0, 23.33, 167.33, 40.0, 0.67, 0.67)


async def test_empty_database_gives_no_rows(db):
    """No polls -> no rows (and no error)."""
    await load(db)
    assert await report_list(db, "2024-05-01T12:00:00Z") == []
