"""Tests of the data generator (issue 5): formats, determinism, shapes, reuse of real files."""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from uptime.cli import app
from uptime.tools.generate import generate_dataset

TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})? UTC$")


def _parse_ts(text: str) -> datetime:
    body = text.removesuffix(" UTC")
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in body else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(body, fmt).replace(tzinfo=UTC)


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_formats_match_the_public_files(tmp_path: Path) -> None:
    """Rule: headers and value formats are exactly the originals' (status `... UTC` stamps,
    `dayOfWeek` 0..6 with HH:MM:SS clock times, IANA zones, integer ids below 2^63)."""
    files = generate_dataset(tmp_path, stores=60, days=3, seed=1)
    status = _rows(files.status)
    hours = _rows(files.hours)
    zones = _rows(files.timezones)
    assert status[0] == ["store_id", "status", "timestamp_utc"]
    assert hours[0] == ["store_id", "dayOfWeek", "start_time_local", "end_time_local"]
    assert zones[0] == ["store_id", "timezone_str"]
    assert len(status) - 1 == files.status_rows
    assert len(hours) - 1 == files.hours_rows
    assert len(zones) - 1 == files.timezone_rows
    for sid, st, ts in status[1:]:
        assert sid.isdigit() and int(sid) < 2**63
        assert st in ("active", "inactive")
        assert TS.match(ts), ts
        # trailing zeros of the fraction are dropped, like the BigQuery export
        assert not (("." in ts) and ts.removesuffix(" UTC").endswith("0")), ts
    clock = re.compile(r"^\d{2}:\d{2}:\d{2}$")
    for sid, day, start, end in hours[1:]:
        assert 0 <= int(day) <= 6
        assert clock.match(start) and clock.match(end)
        assert end >= start, "overnight openings are split at midnight like v1"
    assert {z for _, z in zones[1:]} <= {
        "America/New_York", "America/Los_Angeles", "America/Chicago", "America/Phoenix",
        "America/Denver", "America/Detroit", "America/Indiana/Indianapolis",
        "America/Edmonton", "Asia/Beirut", "America/Boise", "Pacific/Honolulu",
    }


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    """Rule: deterministic for a seed (byte-identical files); another seed gives other data."""
    a = generate_dataset(tmp_path / "a", stores=40, days=2, seed=7)
    b = generate_dataset(tmp_path / "b", stores=40, days=2, seed=7)
    c = generate_dataset(tmp_path / "c", stores=40, days=2, seed=8)
    for name in ("status", "hours", "timezones"):
        assert getattr(a, name).read_bytes() == getattr(b, name).read_bytes()
    assert a.status.read_bytes() != c.status.read_bytes()


def test_polls_hourly_within_period_latest_is_as_of(tmp_path: Path) -> None:
    """Rule: polls lie in [as_of - days, as_of], the latest one exactly at as_of, roughly one
    per store and hour (gaps make it a little less), with a few percent inactive."""
    as_of = datetime(2024, 3, 12, 15, 0, 0, 250000, tzinfo=UTC)
    files = generate_dataset(tmp_path, stores=300, days=4, seed=3, as_of=as_of)
    stamps = [_parse_ts(r[2]) for r in _rows(files.status)[1:]]
    assert max(stamps) == as_of == files.as_of
    assert min(stamps) >= as_of - timedelta(days=4)
    per_store_hour = files.status_rows / (300 * 4 * 24)
    assert 0.8 < per_store_hour < 1.02
    assert 0.005 < files.inactive_rows / files.status_rows < 0.08
    assert len({r[0] for r in _rows(files.status)[1:]}) == files.stores == 300


def test_default_shapes_model_v1(tmp_path: Path) -> None:
    """Rule: the defaults model v1 — ~79 % of stores with hours, ~96 % with a timezone,
    New_York the most common zone, most stores listing 7 days, ~7.8 hours rows per store."""
    files = generate_dataset(tmp_path, stores=2000, days=1, seed=0)
    hours = _rows(files.hours)[1:]
    zones = _rows(files.timezones)[1:]
    hour_stores = Counter(r[0] for r in hours)
    assert 0.74 < len(hour_stores) / 2000 < 0.84
    assert 0.93 < len(zones) / 2000 < 0.99
    assert Counter(z for _, z in zones).most_common(1)[0][0] == "America/New_York"
    days_listed = Counter(len({r[1] for r in hours if r[0] == s}) for s in list(hour_stores)[:300])
    assert days_listed[7] > 0.7 * 300
    assert 6.5 < len(hours) / len(hour_stores) < 9.0
    assert any(r[2] == "00:00:00" and r[3] in ("23:59:59", "23:59:00") for r in hours)


def test_reuses_real_hours_and_timezones(tmp_path: Path, public_data: Path) -> None:
    """Rule: --hours-from/--timezones-from reuse the real ids, hours and zones verbatim
    (v1's `day` column becomes `dayOfWeek`); extra stores get neither."""
    v1 = public_data / "loop_v1_2023"
    files = generate_dataset(
        tmp_path, stores=14_092, days=1, seed=0,
        hours_from=v1 / "menu_hours.csv", timezones_from=v1 / "timezones.csv",
    )
    assert files.hours_rows == 86_198
    assert files.timezone_rows == 13_559
    with (v1 / "menu_hours.csv").open(newline="") as f:
        original = sorted(tuple(r) for r in list(csv.reader(f))[1:])
    assert sorted(tuple(r) for r in _rows(files.hours)[1:]) == original
    polled = {r[0] for r in _rows(files.status)[1:]}
    assert len(polled) == 14_092


def test_generate_command(tmp_path: Path) -> None:
    """Rule: `uptime-monitor generate --out DIR --stores N --days D --as-of ISO` writes the files."""
    result = CliRunner().invoke(
        app,
        ["generate", "--out", str(tmp_path), "--stores", "5", "--days", "1",
         "--as-of", "2024-10-14T23:55:18Z"],
    )
    assert result.exit_code == 0, result.output
    status = _rows(tmp_path / "store_status.csv")
    assert max(_parse_ts(r[2]) for r in status[1:]) == datetime(2024, 10, 14, 23, 55, 18, tzinfo=UTC)


@pytest.mark.parametrize("kwargs", [{"stores": 0}, {"days": 0}])
def test_rejects_bad_sizes(tmp_path: Path, kwargs: dict) -> None:
    """Rule: stores < 1 or days <= 0 raise ValueError naming the argument."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        generate_dataset(tmp_path, **kwargs)
