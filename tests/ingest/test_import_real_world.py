"""Import of real-world files (issue 9, import side): host-independent zones, NUL bytes,
UTF-16, UTC offsets as zones, spreadsheet-saved hours, `;`/tab delimiters, control
characters and formula-like ids. Each value named in the issue is a test here.
"""

from __future__ import annotations

import csv
import shutil
import zoneinfo
from datetime import datetime
from pathlib import Path

import pytest

from support.pipeline import ensure_indexes, utc
from support.reports import expected_csv
from uptime.platform.pollkey import poll_key
from uptime.ingest.importer import ImportFileError, RowError, import_file, import_files
from uptime.ingest.validate import parse_clock, parse_day, parse_store_id

ZONEINFO = Path("/usr/share/zoneinfo")


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def rejects(path: Path | None) -> list[list[str]]:
    assert path is not None
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))[1:]


async def import_three(db, folder: Path, *, timezones: bytes | None = None, hours: bytes,
                       status: bytes) -> list:
    """Write the given files (header included in each) and import them; the indexes first."""
    await ensure_indexes(db)
    paths = {
        name: write(folder / f"{name}.csv", data) if data is not None else None
        for name, data in (("timezones", timezones), ("hours", hours), ("status", status))
    }
    return await import_files(db, **paths)


def row_of(csv_text: str, store: str) -> str:
    return next(line for line in csv_text.splitlines() if line.split(",")[0] == store)


# --------------------------------------------------------------------------- 1. zones


@pytest.fixture
def host_without_us_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Python's tz database as on a host without tzdata-legacy: PYTHONTZPATH -> a copy of the
    zoneinfo folder without US/ (issue 9 item 1)."""
    if not (ZONEINFO / "US" / "Eastern").exists():
        pytest.skip("no system zoneinfo with US/ to copy")
    copy = tmp_path / "zoneinfo"
    shutil.copytree(ZONEINFO, copy, symlinks=True, ignore=shutil.ignore_patterns("US"))
    monkeypatch.setenv("PYTHONTZPATH", str(copy))
    zoneinfo.reset_tzpath()
    try:
        assert "US/Eastern" not in zoneinfo.available_timezones()  # the simulation holds
        yield
    finally:
        monkeypatch.delenv("PYTHONTZPATH")
        zoneinfo.reset_tzpath()


async def test_zone_validity_does_not_depend_on_host_tz_files(
    db, tmp_path: Path, host_without_us_links
) -> None:
    """Issue 9 item 1: with a host tz database lacking US/, `su,US/Eastern` is imported
    (MongoDB is the authority) and the report row is su,60.00,1.00,8.00,0.00,0.00,0.00."""
    summaries = await import_three(
        db,
        tmp_path,
        timezones=b"store_id,timezone_str\nsu,US/Eastern\n",
        hours=b"store_id,dayOfWeek,start_time_local,end_time_local\nsu,0,09:00:00,17:00:00\n",
        status=b"store_id,status,timestamp_utc\nsu,active,2024-05-06 12:00:00 UTC\n",
    )
    assert [s.rejected for s in summaries] == [0, 0, 0]
    assert await db.store_timezones.find_one({}, {"_id": 0}) == {
        "store_id": "su",
        "timezone_str": "US/Eastern",
    }
    report = await expected_csv(db, utc("2024-05-06T14:00:00Z"))
    assert row_of(report, "su") == "su,60.00,1.00,8.00,0.00,0.00,0.00"


async def test_utc_offsets_are_zones_and_counted(db, tmp_path: Path) -> None:
    """Issue 9, "UTC offsets as zones": +03, -05:00, +0530 are accepted (MongoDB accepts
    them) and the summary counts the 3 fixed-offset zones; +5 (MongoDB refuses it) is not."""
    s = await import_file(
        db,
        "timezones",
        write(
            tmp_path / "tz.csv",
            b"store_id,timezone_str\na,+03\nb,-05:00\nc,+0530\nd,America/Chicago\ne,+5\n",
        ),
    )
    assert (s.loaded, s.rejected, s.fixed_offset_zones) == (4, 1, 3)
    assert "3 store(s) have a UTC offset as time zone" in s.describe()
    zones = {d["store_id"]: d["timezone_str"] async for d in db.store_timezones.find()}
    assert zones == {"a": "+03", "b": "-05:00", "c": "+0530", "d": "America/Chicago"}


# --------------------------------------------------------------------------- 3. NUL, UTF-16


@pytest.mark.parametrize(
    ("kind", "data", "bad_line"),
    [
        (
            "status",
            b"store_id,status,timestamp_utc\n"
            b"s0,active,2024-10-14 23:00:00 UTC\n"
            b"\0\0s1,inactive,2024-10-14 23:30:00 UTC\n",
            3,
        ),
        (
            "status",  # a NUL in a field that would otherwise be valid
            b"store_id,status,timestamp_utc\n"
            b"s0,active,2024-10-14 23:00:00 UTC\n"
            b"s1,inactive\0,2024-10-14 23:30:00 UTC\n",
            3,
        ),
        (
            "hours",
            b"store_id,day,start_time_local,end_time_local\n"
            b"s0,0,09:00:00,17:00:00\n"
            b"\0\0s1,0,09:00:00,17:00:00\n",
            3,
        ),
        (
            "timezones",
            b"store_id,timezone_str\ns0,America/Chicago\n\0\0s1,America/Chicago\n",
            3,
        ),
    ],
)
async def test_nul_bytes_rejected_with_line_and_reason(
    db, tmp_path: Path, kind: str, data: bytes, bad_line: int
) -> None:
    """Issue 9 item 3: a line with NUL bytes is rejected with its line number and a reason
    naming the NUL byte, in all three files; no phantom store "\\0\\0s1" is stored."""
    s = await import_file(db, kind, write(tmp_path / f"{kind}.csv", data))  # type: ignore[arg-type]
    assert (s.loaded, s.rejected) == (1, 1)
    [[line, reason, *_]] = rejects(s.rejects_path)
    assert line == str(bad_line) and "NUL byte" in reason
    collection = {"status": "store_status", "hours": "store_hours", "timezones": "store_timezones"}
    assert await db[collection[kind]].distinct("store_id") == ["s0"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
async def test_utf16_with_bom_is_decoded(db, tmp_path: Path, encoding: str) -> None:
    """Issue 9 item 3: a file saved as UTF-16 with a BOM (FF FE or FE FF) is decoded properly
    (Excel's "Unicode text" is also tab-separated)."""
    text = "store_id\tstatus\ttimestamp_utc\r\nsé1\tactive\t2024-10-14 23:30:00 UTC\r\n"
    bom = b"\xff\xfe" if encoding.endswith("le") else b"\xfe\xff"
    s = await import_file(db, "status", write(tmp_path / "s.csv", bom + text.encode(encoding)))
    assert (s.loaded, s.rejected, s.encoding) == (1, 0, "utf-16")
    doc = await db.store_status.find_one({}, {"_id": 0})
    assert doc["store_id"] == "sé1" and doc["status"] == "active"


async def test_utf16_without_bom_or_broken_is_one_encoding_message(db, tmp_path: Path) -> None:
    """Issue 9 item 3: UTF-16 without a BOM, or a UTF-16 file that does not decode, is refused
    with one message about its encoding (not a header 'full of escape codes')."""
    body = "store_id,status,timestamp_utc\ns1,active,2024-10-14 23:30:00 UTC\n"
    no_bom = write(tmp_path / "a.csv", body.encode("utf-16-le"))
    with pytest.raises(ImportFileError, match="UTF-16 or UTF-32 saved without a byte-order mark"):
        await import_file(db, "status", no_bom)
    broken = write(tmp_path / "b.csv", b"\xff\xfe" + body.encode("utf-16-le") + b"\x00\xd8")
    with pytest.raises(ImportFileError, match="not valid UTF-16"):
        await import_file(db, "status", broken)
    assert await db.store_status.count_documents({}) == 0


# --------------------------------------------------------------------------- hours


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9:00", "09:00:00"),
        ("09:00", "09:00:00"),
        ("9:00:00", "09:00:00"),
        ("11:30:00 AM", "11:30:00"),
        ("12:30 PM", "12:30:00"),
        ("12:30:00 PM", "12:30:00"),
        ("12:00 am", "00:00:00"),
        ("1:05 pm", "13:05:00"),
        ("9:00 a.m.", "09:00:00"),
        ("23:59:59.999", "23:59:59"),
    ],
)
def test_spreadsheet_clock_times_normalised(text: str, expected: str) -> None:
    """Issue 9, "spreadsheet-saved hours": clock times are stored as HH:MM:SS."""
    assert parse_clock(text, "start_time_local") == expected


def test_end_of_day_24_00() -> None:
    """Issue 9: an end of 24:00 / 24:00:00 means midnight ending the date, stored as 23:59:59
    (the report's rule 3 reads that as the same midnight); as a start it is rejected."""
    assert parse_clock("24:00", "end_time_local", end=True) == "23:59:59"
    assert parse_clock("24:00:00", "end_time_local", end=True) == "23:59:59"
    for bad in ("24:00", "24:00:00"):
        with pytest.raises(RowError, match="only valid as an end"):
            parse_clock(bad, "start_time_local")
    for bad in ("24:30", "24:00:01", "13:00 PM", "0:30 AM", "12:60", "9", "9h00"):
        with pytest.raises(RowError):
            parse_clock(bad, "end_time_local", end=True)


@pytest.mark.parametrize(
    ("text", "day"),
    [("Monday", 0), ("mon", 0), ("MON", 0), ("tue", 1), ("Tues", 1), ("Wednesday", 2),
     ("thu", 3), ("Thurs", 3), ("fri", 4), ("SATURDAY", 5), ("sun", 6), (" 6 ", 6)],
)
def test_day_names_any_case(text: str, day: int) -> None:
    """Issue 9: English day names and abbreviations in any case map to 0..6 (0 = Monday)."""
    assert parse_day(text) == day


def test_bad_days_rejected() -> None:
    """Rule: anything else than 0..6 or an English day name is rejected, naming the value."""
    for bad in ("7", "-1", "1.0", "Mo", "lundi", ""):
        with pytest.raises(RowError, match="dayOfWeek"):
            parse_day(bad)


async def test_spreadsheet_hours_s9_report(db, tmp_path: Path) -> None:
    """Issue 9's example: hours s9 saved by a spreadsheet, Chicago, one active poll
    2024-05-01 12:00 UTC, as_of 2024-05-10T05:00:00Z -> uptime_last_week 25.00 (Mon 8 + Tue 8
    + Wed 8 + Thu 1), uptime_last_day 1.00 (Thu 11:30-12:30); rows stored canonically."""
    summaries = await import_three(
        db,
        tmp_path,
        timezones=b"store_id,timezone_str\ns9,America/Chicago\n",
        hours=b"store_id,day,start_time_local,end_time_local\n"
        b"s9,0,9:00:00,17:00:00\n"
        b"s9,1,9:00,17:00\n"
        b"s9,Wednesday,09:00:00,17:00:00\n"
        b"s9,3,11:30:00 AM,12:30:00 PM\n",
        status=b"store_id,status,timestamp_utc\ns9,active,2024-05-01 12:00:00 UTC\n",
    )
    assert [s.rejected for s in summaries] == [0, 0, 0]
    stored = await db.store_hours.find({}, {"_id": 0, "store_id": 0}).sort("dayOfWeek").to_list()
    assert [(d["dayOfWeek"], d["start_time_local"], d["end_time_local"]) for d in stored] == [
        (0, "09:00:00", "17:00:00"),
        (1, "09:00:00", "17:00:00"),
        (2, "09:00:00", "17:00:00"),
        (3, "11:30:00", "12:30:00"),
    ]
    fields = row_of(await expected_csv(db, utc("2024-05-10T05:00:00Z")), "s9").split(",")
    assert (fields[3], fields[2]) == ("25.00", "1.00")  # uptime_last_week, uptime_last_day


async def test_end_24_00_counts_to_midnight(db, tmp_path: Path) -> None:
    """Issue 9: `s,4,22:00,24:00` is open until midnight ending Friday: 2 hours of Friday."""
    await import_three(
        db,
        tmp_path,
        hours=b"store_id,day,start_time_local,end_time_local\ns,4,22:00,24:00\n",
        status=b"store_id,status,timestamp_utc\ns,active,2024-05-10 12:00:00 UTC\n",
    )
    # Friday 2024-05-10 22:00-24:00 CDT = 05-11 03:00-05:00Z; as_of Saturday 12:00Z.
    fields = row_of(await expected_csv(db, utc("2024-05-11T12:00:00Z")), "s").split(",")
    assert fields[2] == "2.00"


# --------------------------------------------------------------------------- delimiters


@pytest.mark.parametrize(
    ("data", "delimiter", "first_data_line"),
    [
        (b"sep=;\r\nstore_id;status;timestamp_utc\r\ns1;active;2024-05-01 12:00:00 UTC\r\n"
         b"s2;bogus;2024-05-01 12:00:00 UTC\r\n", ";", 3),
        (b"store_id;status;timestamp_utc\ns1;active;2024-05-01 12:00:00 UTC\n"
         b"s2;bogus;2024-05-01 12:00:00 UTC\n", ";", 2),
        (b"store_id\tstatus\ttimestamp_utc\ns1\tactive\t2024-05-01 12:00:00 UTC\n"
         b"s2\tbogus\t2024-05-01 12:00:00 UTC\n", "\t", 2),
    ],
)
async def test_excel_european_delimiters_detected(
    db, tmp_path: Path, data: bytes, delimiter: str, first_data_line: int
) -> None:
    """Issue 9, "delimiters": a `;`-separated file (with or without Excel's `sep=;` line) or a
    tab-separated one is read with the right delimiter; line numbers count the sep= line."""
    s = await import_file(db, "status", write(tmp_path / "s.csv", data))
    assert (s.loaded, s.rejected, s.delimiter) == (1, 1, delimiter)
    assert rejects(s.rejects_path)[0][0] == str(first_data_line + 1)
    assert await db.store_status.distinct("store_id") == ["s1"]


async def test_unknown_delimiter_refused_with_one_message(db, tmp_path: Path) -> None:
    """Issue 9: a file that no delimiter among , ; tab splits into the required columns is
    refused with one message naming the delimiters, never loaded as one column."""
    f = write(
        tmp_path / "s.csv", b"store_id|status|timestamp_utc\ns1|active|2024-05-01 12:00:00 UTC\n"
    )
    with pytest.raises(ImportFileError) as info:
        await import_file(db, "status", f)
    message = str(info.value)
    assert "no delimiter among ',', ';', tab" in message and "store_id|status" in message
    hours_sep = write(tmp_path / "h.csv", b"sep=,\nstore_id;day;start_time_local;end_time_local\n")
    with pytest.raises(ImportFileError, match="delimiter ',' from the sep= line"):
        await import_file(db, "hours", hours_sep)
    assert await db.store_status.count_documents({}) == 0


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize(
    ("field", "what"),
    [
        (b'"a\rb"', "carriage return"),
        (b'"a\nb"', "line feed"),
        (b'"\ts1"', "tab"),
        (b'"s1\t"', "tab"),
        (b'"a\x7fb"', "DELETE (U+007F)"),
    ],
)
async def test_control_characters_in_ids_rejected(
    db, tmp_path: Path, field: bytes, what: str
) -> None:
    """Issue 9 item 8: ids with control characters (CR, LF, tab -- NUL above) are rejected with
    the character named; the valid row of the file is loaded."""
    data = (b"store_id,status,timestamp_utc\n" + field + b",active,2024-05-01 12:00:00 UTC\n"
            b"ok,active,2024-05-01 12:00:00 UTC\n")
    s = await import_file(db, "status", write(tmp_path / "s.csv", data))
    assert (s.loaded, s.rejected) == (1, 1)
    [[line, reason, *_]] = rejects(s.rejects_path)
    assert line in ("2", "3") and what in reason and "control characters" in reason


def test_control_characters_rejected_by_parser() -> None:
    """Issue 9 item 8: NUL, CR, LF and tab anywhere in an id are refused."""
    for bad in ("a\rb", "a\nb", "a\x00b", "\ts", "a\x1fb"):
        with pytest.raises(RowError, match="control characters"):
            parse_store_id(bad)


async def test_formula_like_ids_kept_exact(db, tmp_path: Path) -> None:
    """Issue 9 item 7 (input side): ids such as =1+2, +1+2, -1+2, @SUM(1+2) are data and are
    stored exactly as written (the CSV writer keeps spreadsheets from evaluating them)."""
    ids = ["=1+2", "+1+2", "-1+2", "@SUM(1+2)"]
    body = "".join(f'"{i}",active,2024-05-01 12:00:00 UTC\n' for i in ids)
    s = await import_file(
        db, "status", write(tmp_path / "s.csv", ("store_id,status,timestamp_utc\n" + body).encode())
    )
    assert (s.loaded, s.rejected) == (4, 0)
    assert sorted(await db.store_status.distinct("store_id")) == sorted(ids)
    doc = await db.store_status.find_one({"store_id": "=1+2"})
    # the poll key (issue 18: 16 bytes, time then a hash of store and status) of exactly
    # that id, time and status
    assert doc["_id"] == poll_key("=1+2", utc("2024-05-01T12:00:00Z"), "active")
    assert doc["timestamp_utc"] == utc("2024-05-01T12:00:00Z")
    assert isinstance(doc["timestamp_utc"], datetime)


async def test_a_pipe_is_refused_with_a_message(db, tmp_path: Path) -> None:
    """Rule: the import reads a file more than once (encoding, NUL scan, header); a named pipe
    is refused with one message instead of a traceback."""
    import os

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # keeps open() of the reader from blocking
    try:
        with pytest.raises(ImportFileError, match="not a regular file"):
            await import_file(db, "status", fifo)
    finally:
        os.close(writer)
