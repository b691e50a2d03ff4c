"""``uptime-monitor polls compact`` (issue 18 item 4): removes what the retention horizon
allows, once, now; the status timeline keeps the history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from uptime.cli import app


def test_compact_removes_old_polls_and_keeps_runs(cli_db, monkeypatch) -> None:
    """Rule: with UPTIME_POLL_RETENTION_DAYS=8, polls of a store before the first poll of its
    run in force at now - 8 d are removed (hand-built: hourly polls of one store, active for
    the first 20 days, inactive from then on; the horizon falls in the inactive run, which
    starts at day 20, so exactly the 480 polls of days 0-19 go); the runs are unchanged and
    the horizon is stored. Exit 0 and a one-line summary."""
    monkeypatch.setenv("UPTIME_POLL_RETENTION_DAYS", "8")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=30)
    cli_db.store_status.insert_many([
        {"store_id": "a", "timestamp_utc": start + timedelta(hours=h),
         "status": "active" if h < 480 else "inactive"} for h in range(24 * 30)])
    result = CliRunner().invoke(app, ["runs", "rebuild"])
    assert result.exit_code == 0, result.output
    runs_before = list(cli_db.status_runs.find({}, {"batch": 0}).sort("first_poll", 1))
    assert [r["polls"] for r in runs_before] == [480, 240]

    result = CliRunner().invoke(app, ["polls", "compact"])
    assert result.exit_code == 0, result.output
    assert "polls compacted: 480 polls before" in result.output
    assert cli_db.store_status.count_documents({}) == 240
    first = cli_db.store_status.find_one(sort=[("timestamp_utc", 1)])["timestamp_utc"]
    assert first.replace(tzinfo=UTC) == start + timedelta(hours=480)
    assert list(cli_db.status_runs.find({}, {"batch": 0}).sort("first_poll", 1)) == runs_before
    horizon = cli_db.polls_retention.find_one({"_id": "store_status"})["horizon"]
    # the horizon is the time of the compaction (not the hour the test data is aligned to)
    assert abs(horizon.replace(tzinfo=UTC) - (datetime.now(UTC) - timedelta(days=8))) < timedelta(minutes=5)
