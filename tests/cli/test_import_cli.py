"""``uptime-monitor import`` command (issue 2, item 5): summary, rejects, exit codes 0 / 1 / 2."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from uptime.cli import app

EXCEL = "edge_cases/bq-results-20230125-202210-1674678181880.excel_mangled.csv"
# The 12 rows of the Excel-mangled file whose ids have <= 16 digits, so Excel kept them exact.
EXCEL_VALID = {
    "2570905277901393",
    "3225796639170927",
    "8636530640121278",
    "257406274356679",
    "8190313151562460",
    "5256638191399657",
    "4647420561423097",
    "2843799253836859",
    "4518233183474396",
    "309081616338296",
    "7234497837508091",
    "5970103147320386",
}


def test_excel_mangled_file_rejects_with_line_numbers_exit_1(
    cli_db, public_data: Path, tmp_path: Path
) -> None:
    """Rule: scientific-notation ids are rejected with their line numbers, the 12 ids Excel kept
    exact are loaded, the summary prints the counts, and the exit code is 1."""
    result = CliRunner().invoke(
        app, ["import", "--timezones", str(public_data / EXCEL), "--rejects", str(tmp_path)]
    )
    assert result.exit_code == 1, result.output
    assert "loaded 12, already present 0, rejected 13,547" in result.output
    with (tmp_path / (Path(EXCEL).name + ".rejects.csv")).open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["line", "reason", "store_id", "timezone_str"]
    assert len(rows) == 1 + 13_547
    assert (
        rows[1][0] == "2" and rows[1][2] == "8.13992624246019E+018" and "scientific" in rows[1][1]
    )
    assert "2404" not in {r[0] for r in rows[1:]}  # line 2404 holds a valid id
    assert {d["store_id"] for d in cli_db.store_timezones.find()} == EXCEL_VALID
    # import applied the migrations first (UPTIME_AUTO_MIGRATE=true).
    assert "store_id_1" in cli_db.store_timezones.index_information()


def test_clean_import_exit_0_and_second_run_adds_nothing(cli_db, tmp_path: Path) -> None:
    """Rule: exit 0 without rejects; a second run of the same files loads 0 new rows."""
    status = tmp_path / "s.csv"
    status.write_text("store_id,status,timestamp_utc\n1,active,2023-01-22 12:00:00 UTC\n")
    hours = tmp_path / "h.csv"
    hours.write_text("store_id,day,start_time_local,end_time_local\n1,0,09:00:00,17:00:00\n")
    args = ["import", "--status", str(status), "--hours", str(hours)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert (
        "store_status <- " in first.output
        and "loaded 1, already present 0, rejected 0" in first.output
    )
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert second.output.count("loaded 0, already present 1, rejected 0") == 2
    assert cli_db.store_status.count_documents({}) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "at least one of"),
        (["--status", "/nonexistent/file.csv"], "does not exist"),
        (["--status", "{hours}"], "missing required column"),
    ],
)
def test_usage_and_file_errors_exit_2(
    cli_db, tmp_path: Path, args: list[str], message: str
) -> None:
    """Rule: no input, a missing file, or a file with the wrong header exits 2 with a message."""
    hours = tmp_path / "h.csv"
    hours.write_text("store_id,day,start_time_local,end_time_local\n")
    args = [a.replace("{hours}", str(hours)) for a in args]
    result = CliRunner().invoke(app, ["import", *args])
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " ") or message in (result.stderr or "")
