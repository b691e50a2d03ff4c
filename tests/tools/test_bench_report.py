"""``uptime.tools.bench.report`` (issue 19, item 3): a small run against the real test server."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from uptime.ingest.importer import import_files
from uptime.platform.migrations import ensure_current
from uptime.report.phases import PHASES
from uptime.tools.bench import report as bench_report
from uptime.tools.bench import ensure_dataset


async def test_bench_api_times_reports_with_phases_and_duckdb(db, mongo_uri: str, tmp_path: Path):
    """Rule: on imported generated data, bench_api times the untimed cold report and `runs`
    reports trigger -> CSV through the API (all v2 once the timeline is built), records each
    run's phases (the report's own) and store ranges, times DuckDB from the same CSV files, finds its CSV
    byte-identical to the API's, and states the three targets."""
    dataset, _ = ensure_dataset(tmp_path / "cache", 0.005, 3)
    await import_files(db, status=Path(dataset["status"]), hours=Path(dataset["hours"]),
                       timezones=Path(dataset["timezones"]), rejects=tmp_path)
    await ensure_current(db, apply=True)
    said: list[str] = []
    api = await bench_report.bench_api(
        db, mongo_uri, dataset, datetime.fromisoformat(dataset["as_of"]), tmp_path, runs=2,
        say=said.append)
    assert len(api["api_s"]) == 2 and len(api["duckdb_s"]) == 2
    assert all(t > 0 for t in api["api_s"]) and api["cold_s"] > 0
    assert api["pipeline"] == "store_uptime@v3"  # the day's business hours cached (issue 19)
    assert api["csv_duckdb_equals_api"] is True
    assert {"pipeline", "quality", "total"} <= set(api["phases"]) <= set(PHASES)
    assert api["phases"] in api["phases_runs"]
    assert any("T_api" in line for line in said)
    found = bench_report.targets(api)
    assert [t["target"].split(" (")[0] for t in found] == [
        "T_api", "T_api <= 0.3 x T_duckdb", "CSV DuckDB == API"]
    assert found[2]["pass"] is True
    lines = bench_report.summary_lines(api)
    assert lines[0].startswith("T_api min") and "phases (fastest run)" in lines[2]
    # v3 runs in store ranges, UPTIME_REPORT_PARALLEL (2) at once: each run says how many
    assert api["store_ranges"] == [2, 2] and "store ranges 2" in lines[2]
