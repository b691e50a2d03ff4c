"""Maintenance windows (issue 17, item 4): in_maintenance against a real mongod, with
hand-computed instants (each store's local time by MongoDB's $dateFromParts, as the report's
rules 4-5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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
