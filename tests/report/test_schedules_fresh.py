"""Derived schedules never make a report wrong (README, issue 14: "derived state makes the main
job faster; it never makes it fail, wait, or be wrong"): rows that another system writes
straight into ``store_hours`` / ``store_timezones`` (insert, update, delete — no import) are
seen by the default report (v2 on a current timeline) exactly as by v1, on the polls and the
rows themselves."""

from __future__ import annotations

import io

from support.pipeline import hours, load
from support.reports import T0, insert_stores
from uptime.ingest.schedules import rebuild_schedules
from uptime.platform.settings import Settings
from uptime.report import storage
from uptime.report.service import ReportService
from uptime.timeline import RunsFollower, wait_current


async def _csvs(db) -> dict[str, tuple[str, bytes]]:
    """The default report and ``v1`` at T0, through the report service: {name: (pipeline, CSV)}."""
    service = ReportService(db, Settings(lease_seconds=30), owner="t")
    await service.start(background=False, recover=False)
    out = {}
    try:
        for name, version in (("default", None), ("v1", "v1")):
            doc = await service.wait(await service.trigger(T0, version))
            assert doc["status"] == "Complete", doc
            buf = io.BytesIO()
            await storage.write_csv(db, doc["file_id"], buf)
            out[name] = (doc["pipeline"], buf.getvalue())
    finally:
        await service.stop()
    return out


async def test_default_report_sees_rows_written_straight_into_hours_and_zones(db):
    """Six New York stores polled hourly up to T0 (Tue 2024-03-12 15:00Z = 11:00 EDT), some
    with hours, schedules built. Then, straight in MongoDB: a Tuesday 00:00-01:00 row is
    inserted for s000001 (24x7 before: now closed in the last hour), s000000's Tue 09:00-17:00
    row is updated to end 10:30, s000002's Tuesday row is deleted (closed on Tuesday now), and
    s000003 moves to Asia/Tokyo (its 09:00-17:00 is 00:00-08:00Z). The default report runs v2
    (current timeline) and its CSV equals v1's; both differ from the CSV before the writes (so
    the writes matter). On main the v2 CSV kept the old schedules."""
    await load(db, hours_rows=[
        hours("s000000", 1, "09:00:00", "17:00:00"),
        hours("s000002", 1, "00:00:00", "23:59:59"),
        hours("s000002", 2, "00:00:00", "23:59:59"),
        hours("s000003", 1, "09:00:00", "17:00:00"),
    ])
    await insert_stores(db, 6, polls_per_store=30)
    await rebuild_schedules(db)
    follower = RunsFollower(db)
    await follower.start()
    try:
        assert await wait_current(db, 60.0)
        before = await _csvs(db)
        assert before["default"][0] == "store_uptime@v2"
        assert before["default"][1] == before["v1"][1]

        await db.store_hours.insert_one(hours("s000001", 1, "00:00:00", "01:00:00"))
        await db.store_hours.update_one({"store_id": "s000000"},
                                        {"$set": {"end_time_local": "10:30:00"}})
        await db.store_hours.delete_one({"store_id": "s000002", "dayOfWeek": 1})
        await db.store_timezones.update_one({"store_id": "s000003"},
                                            {"$set": {"timezone_str": "Asia/Tokyo"}})
        assert await wait_current(db, 60.0)
        after = await _csvs(db)
    finally:
        await follower.stop()
    assert after["default"][0] == "store_uptime@v2"
    assert after["v1"][1] != before["v1"][1]
    assert after["default"][1] == after["v1"][1]
