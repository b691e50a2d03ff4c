"""CSV import (issue 2, items 4-5): formats, validation, rejects, dedup, replacement semantics.

Hand-written files are built inline (bytes, so BOM / CRLF / missing final newline are exact);
the public Loop files are used for the exact counts the issue names.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path

import pytest

from uptime.ingest.importer import (
    ImportFileError,
    RowError,
    import_file,
    import_files,
    parse_clock,
    parse_store_id,
    parse_timestamp,
    rejects_target,
)

UTC = timezone.utc
V1_ID = "8419537941919820732"  # > 2**53: a float would change it


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def rejects_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


# --------------------------------------------------------------------------- field parsers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-01-22 12:09:39.388884 UTC", datetime(2023, 1, 22, 12, 9, 39, 388884)),
        ("2023-01-24 20:11:11.866 UTC", datetime(2023, 1, 24, 20, 11, 11, 866000)),
        ("2023-01-24 20:11:11 UTC", datetime(2023, 1, 24, 20, 11, 11)),
        ("2023-01-24 20:11:11.5 UTC", datetime(2023, 1, 24, 20, 11, 11, 500000)),
        (" 2023-01-24T20:11:11Z ", datetime(2023, 1, 24, 20, 11, 11)),
        ("2023-01-24T22:11:11.25+02:00", datetime(2023, 1, 24, 20, 11, 11, 250000)),
        ("2023-01-24T00:30:00-05:00", datetime(2023, 1, 24, 5, 30)),
        ("2023-01-24 20:11:11", datetime(2023, 1, 24, 20, 11, 11)),
    ],
)
def test_parse_timestamp_accepts_loop_and_iso_forms(text: str, expected: datetime) -> None:
    """Rule: '... UTC' with 0-6 fraction digits and ISO 8601 with Z/offset parse to naive UTC."""
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2023-01-22",
        "2023-13-01 00:00:00 UTC",
        "2023-01-22 25:00:00 UTC",
        "yesterday",
        "20230122T120939",
        "2023-01-22 12:09:39+01:00 UTC",
        "1674389379",
    ],
)
def test_parse_timestamp_rejects_junk(text: str) -> None:
    """Rule: a date without time, out-of-range fields or junk is a RowError naming the value."""
    with pytest.raises(RowError, match="timestamp"):
        parse_timestamp(text)


def test_store_id_kept_exact_and_float_forms_rejected() -> None:
    """Rule: ids stay exact strings; float/scientific notation and empty ids are rejected."""
    assert parse_store_id(f" {V1_ID} ") == V1_ID
    assert (
        parse_store_id("b5d0a65d-6d54-47aa-95e9-9312f0353326")
        == "b5d0a65d-6d54-47aa-95e9-9312f0353326"
    )
    assert parse_store_id("1e5x") == "1e5x"  # not a number at all: an id like any other
    for bad in ["8.139926242460185E+018", "8.13992624246019E+018", "123.0", "1e5", ".5"]:
        with pytest.raises(RowError, match="scientific"):
            parse_store_id(bad)
    with pytest.raises(RowError, match="empty"):
        parse_store_id("  ")


def test_parse_clock_normalises_and_rejects() -> None:
    """Rule: H:MM:SS / HH:MM:SS[.frac] -> 'HH:MM:SS' (fraction truncated); out of range rejected
    (24:00 only as an end time, issue 9)."""
    assert parse_clock("23:59:59", "c") == "23:59:59"
    assert parse_clock("9:00:00", "c") == "09:00:00"
    assert parse_clock("23:59:59.999", "c") == "23:59:59"
    for bad in ["24:00:00", "24:00", "12:60:00", "noon", "", "12:00:00 XM", "25:00"]:
        with pytest.raises(RowError):
            parse_clock(bad, "c")


def test_rejects_target_rules(tmp_path: Path) -> None:
    """Rule: default <input>.rejects.csv; a directory -> <dir>/<name>.rejects.csv; a file as is,
    or <stem>.<kind>.csv with several inputs."""
    src = tmp_path / "in" / "s.csv"
    assert rejects_target(src, "status", None, False) == (
        tmp_path / "in" / "s.csv.rejects.csv",
        False,
    )
    assert rejects_target(src, "status", tmp_path, True) == (tmp_path / "s.csv.rejects.csv", True)
    assert rejects_target(src, "status", tmp_path / "bad.csv", False) == (
        tmp_path / "bad.csv",
        True,
    )
    assert rejects_target(src, "hours", tmp_path / "bad.csv", True) == (
        tmp_path / "bad.hours.csv",
        True,
    )


# --------------------------------------------------------------------------- status files


async def test_status_formats_bom_crlf_column_order_no_final_newline(db, tmp_path: Path) -> None:
    """Rule: BOM, CRLF, any column order, no final newline, trimmed/lower-cased status."""
    f = write(
        tmp_path / "s.csv",
        b"\xef\xbb\xbftimestamp_utc,Store_ID,status\r\n"
        b"2023-01-22 12:09:39.388884 UTC,8419537941919820732,active\r\n"
        b"2023-01-22T13:00:00Z,8419537941919820732, Inactive \r\n"
        b"2023-01-22 14:00:00.1 UTC,b5d0a65d-6d54-47aa-95e9-9312f0353326,ACTIVE",
    )
    s = await import_file(db, "status", f)
    assert (s.loaded, s.already_present, s.rejected, s.rejects_path) == (3, 0, 0, None)
    docs = await db.store_status.find({}, {"_id": 0}).sort("timestamp_utc", 1).to_list()
    assert docs == [
        {
            "store_id": V1_ID,
            "timestamp_utc": datetime(2023, 1, 22, 12, 9, 39, 388000, tzinfo=UTC),
            "status": "active",
        },
        {
            "store_id": V1_ID,
            "timestamp_utc": datetime(2023, 1, 22, 13, tzinfo=UTC),
            "status": "inactive",
        },
        {
            "store_id": "b5d0a65d-6d54-47aa-95e9-9312f0353326",
            "timestamp_utc": datetime(2023, 1, 22, 14, 0, 0, 100000, tzinfo=UTC),
            "status": "active",
        },
    ]
    assert not (tmp_path / "s.csv.rejects.csv").exists()


async def test_status_duplicates_and_conflicting_polls(db, tmp_path: Path) -> None:
    """Rule: an exact duplicate poll (same store, instant at ms precision, status) is stored
    once; a conflicting poll at the same instant is kept too; re-import adds nothing."""
    f = write(
        tmp_path / "s.csv",
        b"store_id,status,timestamp_utc\n"
        b"1,active,2023-01-22 12:00:00.123 UTC\n"
        b"1,active,2023-01-22 12:00:00.123 UTC\n"  # exact duplicate
        b"1,active,2023-01-22T12:00:00.123456Z\n"  # same instant at ms precision
        b"1,inactive,2023-01-22 12:00:00.123 UTC\n"  # conflicting: kept
        b"2,active,2023-01-22 12:00:00.123 UTC\n",
    )
    s = await import_file(db, "status", f)
    assert (s.loaded, s.already_present, s.rejected) == (3, 2, 0)
    assert await db.store_status.count_documents({"store_id": "1"}) == 2
    assert await db.store_status.count_documents({"store_id": "1", "status": "inactive"}) == 1
    again = await import_file(db, "status", f)
    assert (again.loaded, again.already_present, again.rejected) == (0, 5, 0)
    assert await db.store_status.count_documents({}) == 3


async def test_status_existing_duplicates_from_other_writers_are_no_problem(
    db, tmp_path: Path
) -> None:
    """Rule: no unique index on data fields: rows of other writers (even duplicated) stay."""
    row = {"store_id": "1", "status": "active", "timestamp_utc": datetime(2023, 1, 1, tzinfo=UTC)}
    await db.store_status.insert_many([dict(row), dict(row)])
    f = write(
        tmp_path / "s.csv", b"store_id,status,timestamp_utc\n1,active,2023-01-01 00:00:00 UTC\n"
    )
    s = await import_file(db, "status", f)
    assert (s.loaded, s.already_present) == (1, 0)  # other writers' ids differ from ours
    assert await db.store_status.count_documents({}) == 3


async def test_status_bad_rows_rejected_with_line_and_reason(db, tmp_path: Path) -> None:
    """Rule: each bad row goes to the rejects CSV (line, reason, raw fields); valid rows load."""
    f = write(
        tmp_path / "s.csv",
        b"store_id,status,timestamp_utc\n"
        b"1,active,2023-01-22 12:00:00 UTC\n"  # 2 ok
        b",active,2023-01-22 12:00:00 UTC\n"  # 3 empty id
        b"8.139926242460185E+018,active,2023-01-22 12:00:00 UTC\n"  # 4 sci
        b"1,unknown,2023-01-22 12:00:00 UTC\n"  # 5 status
        b"1,active,2023-02-30 12:00:00 UTC\n"  # 6 timestamp
        b"1,active\n"  # 7 column count
        b"\n"  # 8 blank: not a row
        b"1,active,2023-01-22 13:00:00 UTC,extra\n"  # 9 column count
        b"2,inactive,2023-01-22 12:00:00 UTC",  # 10 ok
    )
    s = await import_file(db, "status", f, rejects=tmp_path / "out")
    assert (s.loaded, s.already_present, s.rejected) == (2, 0, 6)
    assert s.rejects_path == tmp_path / "out"
    rows = rejects_rows(s.rejects_path)
    assert rows[0] == ["line", "reason", "store_id", "status", "timestamp_utc"]
    assert [r[0] for r in rows[1:]] == ["3", "4", "5", "6", "7", "9"]
    reasons = [r[1] for r in rows[1:]]
    assert "empty store_id" in reasons[0]
    assert "scientific" in reasons[1]
    assert "active/inactive" in reasons[2]
    assert "timestamp" in reasons[3]
    assert "2 fields, the header has 3" in reasons[4]
    assert "4 fields" in reasons[5]
    assert rows[2][2:] == ["8.139926242460185E+018", "active", "2023-01-22 12:00:00 UTC"]
    assert await db.store_status.count_documents({}) == 2


async def test_stale_rejects_file_removed_on_clean_run(db, tmp_path: Path) -> None:
    """Rule: a rejects file of an earlier run is removed when the input now has no bad row."""
    f = write(tmp_path / "s.csv", b"store_id,status,timestamp_utc\n1,bad,2023-01-22 12:00:00 UTC\n")
    s = await import_file(db, "status", f)
    assert s.rejects_path == tmp_path / "s.csv.rejects.csv" and s.rejects_path.exists()
    write(f, b"store_id,status,timestamp_utc\n1,active,2023-01-22 12:00:00 UTC\n")
    s = await import_file(db, "status", f)
    assert s.rejected == 0 and s.rejects_path is None
    assert not (tmp_path / "s.csv.rejects.csv").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"store_id,status\n1,active\n", "missing required column.*timestamp_utc"),
        (b"store_id,status,status,timestamp_utc\n", "appears twice"),
    ],
)
async def test_file_level_errors(db, tmp_path: Path, data: bytes, message: str) -> None:
    """Rule: an empty file, a missing or doubled column is a file error naming file and line."""
    f = write(tmp_path / "s.csv", data)
    with pytest.raises(ImportFileError, match=message):
        await import_file(db, "status", f)


async def test_import_files_checks_every_header_before_writing(db, tmp_path: Path) -> None:
    """Rule: a wrong file stops import_files before any row of any file is written."""
    tz = write(tmp_path / "tz.csv", b"store_id,timezone_str\n1,America/Chicago\n")
    bad = write(tmp_path / "s.csv", b"store_id,timestamp_utc\n1,2023-01-01 00:00:00 UTC\n")
    with pytest.raises(ImportFileError, match="status"):
        await import_files(db, timezones=tz, status=bad)
    assert await db.store_timezones.count_documents({}) == 0


# --------------------------------------------------------------------------- hours


async def test_hours_validation_and_normalisation(db, tmp_path: Path) -> None:
    """Rule: day or dayOfWeek 0..6; clock times HH:MM:SS (fraction truncated, H padded);
    end < start (overnight) is kept for the report to interpret; 24:00 only as an end."""
    f = write(
        tmp_path / "h.csv",
        b"store_id,day,start_time_local,end_time_local\r\n"
        b"1,0,9:00:00,17:00:00\r\n"  # 2 ok, padded
        b"1,6,22:00:00,23:59:59.999\r\n"  # 3 ok, fraction truncated
        b"1,4,22:00:00,02:00:00\r\n"  # 4 ok (overnight)
        b"1,7,09:00:00,17:00:00\r\n"  # 5 day out of range
        b"1,1.0,09:00:00,17:00:00\r\n"  # 6 day not an integer
        b"1,2,24:00:00,17:00:00\r\n"  # 7 24:00 as a start
        b"1,2,09:00 XM,17:00:00\r\n"  # 8 not a clock time
        b"1.5E+3,2,09:00:00,17:00:00",  # 9 sci id
    )
    s = await import_file(db, "hours", f)
    assert (s.loaded, s.already_present, s.rejected, s.replaced) == (3, 0, 5, 0)
    assert [r[0] for r in rejects_rows(s.rejects_path)[1:]] == ["5", "6", "7", "8", "9"]
    docs = await db.store_hours.find({}, {"_id": 0}).sort("dayOfWeek", 1).to_list()
    assert docs == [
        {
            "store_id": "1",
            "dayOfWeek": 0,
            "start_time_local": "09:00:00",
            "end_time_local": "17:00:00",
        },
        {
            "store_id": "1",
            "dayOfWeek": 4,
            "start_time_local": "22:00:00",
            "end_time_local": "02:00:00",
        },
        {
            "store_id": "1",
            "dayOfWeek": 6,
            "start_time_local": "22:00:00",
            "end_time_local": "23:59:59",
        },
    ]


async def test_hours_file_is_new_truth_for_the_stores_it_mentions(db, tmp_path: Path) -> None:
    """Rule: importing an hours file replaces all rows of the stores it mentions (identical rows
    count 'already present', others 'loaded', old ones 'replaced'); other stores keep theirs;
    rows written by other systems for a mentioned store are replaced too; a store's rows may be
    spread over the file (unsorted)."""
    await db.store_hours.insert_one(
        {
            "store_id": "A",
            "dayOfWeek": 3,
            "start_time_local": "01:00:00",
            "end_time_local": "02:00:00",
        }
    )
    first = write(
        tmp_path / "h1.csv",
        b"store_id,dayOfWeek,start_time_local,end_time_local\n"
        b"A,0,09:00:00,17:00:00\nB,0,10:00:00,11:00:00\nA,1,09:00:00,17:00:00\n",
    )
    s = await import_file(db, "hours", first)
    assert (s.loaded, s.already_present, s.replaced) == (3, 0, 1)
    second = write(
        tmp_path / "h2.csv",
        b"dayOfWeek,store_id,start_time_local,end_time_local\n"
        b"0,A,09:00:00,17:00:00\n2,A,08:00:00,12:00:00\n2,A,08:00:00,12:00:00\n",
    )
    s = await import_file(db, "hours", second)
    assert (s.loaded, s.already_present, s.rejected, s.replaced) == (1, 2, 0, 1)
    a_rows = (
        await db.store_hours.find({"store_id": "A"}, {"_id": 0, "store_id": 0})
        .sort("dayOfWeek", 1)
        .to_list()
    )
    assert a_rows == [
        {"dayOfWeek": 0, "start_time_local": "09:00:00", "end_time_local": "17:00:00"},
        {"dayOfWeek": 2, "start_time_local": "08:00:00", "end_time_local": "12:00:00"},
    ]
    assert await db.store_hours.count_documents({"store_id": "B"}) == 1
    again = await import_file(db, "hours", second)
    assert (again.loaded, again.already_present, again.replaced) == (0, 3, 0)


# --------------------------------------------------------------------------- timezones


async def test_timezones_validation_and_replacement(db, tmp_path: Path) -> None:
    """Rule: a zone must be a name MongoDB knows (offsets included, issue 9); a store listed
    twice with different zones keeps the first; a zone file replaces the zone of mentioned
    stores."""
    await import_file(
        db,
        "timezones",
        write(tmp_path / "t0.csv", b"store_id,timezone_str\nA,America/Chicago\nB,America/Denver\n"),
    )
    f = write(
        tmp_path / "t.csv",
        b"store_id,timezone_str\n"
        b"A,America/New_York\n"  # 2 ok: replaces Chicago
        b"C,US/Chicagoo\n"  # 3 unknown
        b"D,\n"  # 4 empty
        b"E,+5\n"  # 5 an offset MongoDB refuses (needs two digits)
        b"A,America/Denver\n"  # 6 conflicting with line 2
        b"A,America/New_York\n"  # 7 duplicate of line 2
        b"F,Asia/Beirut\n",  # 8 ok
    )
    s = await import_file(db, "timezones", f)
    assert (s.loaded, s.already_present, s.rejected, s.replaced) == (2, 1, 4, 1)
    rows = rejects_rows(s.rejects_path)[1:]
    assert [(r[0], r[2]) for r in rows] == [("3", "C"), ("4", "D"), ("5", "E"), ("6", "A")]
    assert "MongoDB server knows" in rows[0][1] and "empty" in rows[1][1]
    assert "line 2" in rows[3][1]
    zones = {d["store_id"]: d["timezone_str"] async for d in db.store_timezones.find()}
    assert zones == {"A": "America/New_York", "B": "America/Denver", "F": "Asia/Beirut"}


# --------------------------------------------------------------------------- public files


async def test_public_v1_hours_and_timezones_exact_counts_and_reimport(
    db, public_data: Path
) -> None:
    """Rule: v1 files load exactly 86,198 hours and 13,559 timezone rows; a second run adds
    nothing."""
    v1 = public_data / "loop_v1_2023"
    hours, tz = v1 / "menu_hours.csv", v1 / "timezones.csv"
    first = await import_files(db, hours=hours, timezones=tz)
    assert [(s.collection, s.loaded, s.already_present, s.rejected) for s in first] == [
        ("store_timezones", 13_559, 0, 0),
        ("store_hours", 86_198, 0, 0),
    ]
    second = await import_files(db, hours=hours, timezones=tz)
    assert [(s.loaded, s.already_present, s.rejected, s.replaced) for s in second] == [
        (0, 13_559, 0, 0),
        (0, 86_198, 0, 0),
    ]
    assert await db.store_hours.count_documents({}) == 86_198
    assert await db.store_timezones.count_documents({}) == 13_559
    # Ids above 2**53 stay exact.
    assert await db.store_timezones.find_one({"store_id": "8139926242460185114"}, {"_id": 0}) == {
        "store_id": "8139926242460185114",
        "timezone_str": "Asia/Beirut",
    }


async def test_public_v2_hours_and_timezones_exact_counts(db, public_data: Path) -> None:
    """Rule: v2 files (dayOfWeek header, no final newline) load 35,457 and 4,559 rows."""
    v2 = public_data / "loop_v2_2024"
    result = await import_files(db, hours=v2 / "menu_hours.csv", timezones=v2 / "timezones.csv")
    assert [(s.loaded, s.rejected) for s in result] == [(4_559, 0), (35_457, 0)]
    assert await db.store_hours.count_documents({}) == 35_457
    assert await db.store_timezones.count_documents({}) == 4_559


async def test_public_status_samples(db, public_data: Path) -> None:
    """Rule: the v1 head sample (store_id,status,timestamp_utc; 5,032 data rows in this copy --
    the data README says 5,031) and the v2 sample (BOM, 364 rows) load fully; re-import adds
    nothing."""
    v1 = public_data / "loop_v1_2023" / "store_status_head_sample.csv"
    v2 = public_data / "loop_v2_2024" / "store_status_sample.csv"
    s1 = await import_file(db, "status", v1)
    s2 = await import_file(db, "status", v2)
    assert (s1.loaded, s1.rejected, s2.loaded, s2.rejected) == (5_032, 0, 364, 0)
    assert await db.store_status.count_documents({"status": "inactive"}) == 58
    again = await import_file(db, "status", v2)
    assert (again.loaded, again.already_present) == (0, 364)
    assert await db.store_status.count_documents({}) == 5_032 + 364
    first = await db.store_status.find_one({"store_id": "b5d0a65d-6d54-47aa-95e9-9312f0353326"})
    assert first["timestamp_utc"] == datetime(2024, 10, 3, 23, 33, 20, 412000, tzinfo=UTC)


async def test_default_rejects_beside_read_only_input_go_to_cwd(
    db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: when the input's folder is read-only (e.g. the shared public data), the default
    rejects file goes to the current directory and the summary says so; the folder is untouched."""
    data = tmp_path / "ro"
    data.mkdir()
    f = write(data / "s.csv", b"store_id,status,timestamp_utc\n1,maybe,2023-01-22 12:00:00 UTC\n")
    data.chmod(0o555)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    try:
        s = await import_file(db, "status", f)
    finally:
        data.chmod(0o755)
    assert s.rejects_path == cwd / "s.csv.rejects.csv" and s.rejects_path.is_file()
    assert any("not writable" in n for n in s.notes)
    assert sorted(p.name for p in data.iterdir()) == ["s.csv"]
