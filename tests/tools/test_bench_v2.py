"""``uptime-monitor bench``'s report-v2 phases (issue 8, item 6): a tiny smoke run against the real
test server, and the DuckDB alternative's CSV against the pipelines' on edge-case files."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from uptime.platform.settings import Settings
from uptime.tools.bench import run_bench


async def test_v2_phases_time_v1_v2_duckdb_and_history(mongo_uri: str, tmp_path: Path) -> None:
    """Rule: with v2 on, one bench run (scale 0.01) also builds the runs and schedules, times
    `uptime-monitor report --pipeline v1|v2` and the DuckDB alternative (from the CSV files), finds the
    three CSVs byte-identical, times the 1-week / 6-week history (20 stores; v2 and v1 once
    each, the suite's budget — the bench's default runs v2 3 times, v1 twice), reports the v2
    targets in the JSON, and drops every database it made."""
    settings = Settings(mongodb_uri=mongo_uri, mongodb_database="unused", data_dir=tmp_path / "d")
    buf = io.StringIO()
    _, path = await run_bench(
        settings, [(0.01, 1)], seed=5, cache_dir=tmp_path / "cache", results_dir=tmp_path / "r",
        console=Console(file=buf, width=200), v2_scale=0.01, history_stores=20,
        history_order=("v2", "v1"),
    )
    saved = json.loads(path.read_text())
    rep = saved["v2"]["report"]
    assert rep["csv_v2_equals_v1"] is True and rep["csv_duckdb_equals_v2"] is True
    assert rep["rows"] == 141 and rep["build"]["runs"] >= 141
    assert len(rep["v1_s"]) == len(rep["v2_s"]) == len(rep["duckdb_s"]) == 1
    hist = saved["v2"]["history"]
    assert len(hist["6w"]["v2_s"]) == len(hist["6w"]["v1_s"]) == 1
    assert hist["stores"] == 20 and hist["6w"]["polls"] > 4 * hist["1w"]["polls"] > 0
    assert hist["6w"]["csv_equal"] and hist["1w"]["csv_equal"]
    names = {t["target"].split(" (")[0] for t in saved["targets"]}
    assert {"T_v2 <= 0.25 x T_v1", "T_v2 < fastest alternative", "CSV v2 == v1", "CSV DuckDB == v2",
            "T_v2(6 w) / T_v2(1 w) <= 1.2"} <= names
    from pymongo import MongoClient

    with MongoClient(mongo_uri) as client:
        assert not [n for n in client.list_database_names() if n.startswith("uptime_bench_")]
