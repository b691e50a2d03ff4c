"""Tests of ``uptime-monitor bench`` (issue 5): a tiny-scale smoke run against the real test server,
plus the target arithmetic, the run plan and the dataset cache."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from uptime.tools.bench import (
    ScaleResult,
    ensure_dataset,
    evaluate_targets,
    floor_pipeline,
    plan_runs,
    run_bench,
)
from uptime.platform import pipelines
from uptime.platform.settings import Settings


def test_floor_reads_the_polls_report_v1_reads() -> None:
    """Rule (issue 16: one home per rule): the floor (pipelines/bench_floor.v1.json) reads
    exactly the polls of store_uptime v1's first $match, then one window and a $count."""
    floor = floor_pipeline()
    assert floor[0] == pipelines.load("store_uptime.v1")[0]
    assert [next(iter(s)) for s in floor] == ["$match", "$setWindowFields", "$count"]


@pytest.fixture(scope="module")
async def bench_run(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny bench run shared by the two tests below (the suite's budget: both used to run
    the same scale-0.01 phases each): scale 0.01, 1 run, with the v2 phases at that scale and
    the history growth on 20 stores (v2 and v1 once each — the bench's default runs v2 3
    times, v1 twice). Returns its console text, the JSON path and document."""
    tmp = tmp_path_factory.mktemp("bench")
    settings = Settings(mongodb_uri=mongo_uri, mongodb_database="unused", data_dir=tmp / "d")
    buf = io.StringIO()
    _, path = await run_bench(
        settings, [(0.01, 1)], seed=5, cache_dir=tmp / "cache", results_dir=tmp / "results",
        console=Console(file=buf, width=200), v2_scale=0.01, history_stores=20,
        history_order=("v2", "v1"),
    )
    return {"out": buf.getvalue(), "path": path, "results_dir": tmp / "results",
            "saved": json.loads(path.read_text())}


async def test_smoke_run_prints_figures_writes_json_and_csvs_agree(
    bench_run: dict, mongo_uri: str
) -> None:
    """Rule: one bench run (scale 0.01, 1 run) imports, times T_report/T_floor/T_alt,
    prints the table and targets, writes JSON under the results dir, finds the polars
    alternative's CSV byte-identical to the stored report's, and drops its database."""
    out, path, saved = bench_run["out"], bench_run["path"], bench_run["saved"]
    for figure in ("T_report s", "T_floor s", "T_alt s", "import status rows/s",
                   "peak RSS report process MB", "CSV alt == report", "targets"):
        assert figure in out, figure
    assert path.parent == bench_run["results_dir"] and path.suffix == ".json"
    (result,) = saved["results"]
    assert result["csv_equal"] is True
    assert result["report_rows"] == result["dataset"]["stores"] == 141
    assert result["floor_polls"] == result["dataset"]["status_rows"]
    assert len(result["report_s"]) == len(result["floor_s"]) == len(result["alt_s"]) == 1
    assert result["import_status_rows_per_s"] > 0
    assert 10 * 1_000_000 < result["report_rss_bytes"][0] < 2_000_000_000
    assert any(t["target"].startswith("T_report <= 3 x T_floor") for t in saved["targets"])
    from pymongo import MongoClient

    assert result["database"].startswith("uptime_bench_")
    with MongoClient(mongo_uri) as client:
        assert result["database"] not in client.list_database_names()


async def test_v2_phases_time_v1_v2_duckdb_and_history(bench_run: dict, mongo_uri: str) -> None:
    """Rule (issue 8, item 6): with v2 on, the same bench run also builds the runs and
    schedules, times `uptime-monitor report --pipeline v1|v2` and the DuckDB alternative (from
    the CSV files), finds the three CSVs byte-identical, times the 1-week / 6-week history (20 stores; v2 and v1 once
    each, the suite's budget — the bench's default runs v2 3 times, v1 twice), reports the v2
    targets in the JSON, and drops every database it made."""
    saved = bench_run["saved"]
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


def _result(scale: float, report: list[float], floor: list[float], alt: list[float],
            rss: int = 100_000_000, rps: float = 60_000.0) -> ScaleResult:
    r = ScaleResult(scale=scale, dataset={"stores": 1, "status_rows": 1}, generated_now=False)
    r.report_s, r.floor_s, r.alt_s = report, floor, alt
    r.report_rss_bytes = [rss]
    r.import_status_rows_per_s = rps
    return r


def test_targets_use_medians_and_limits() -> None:
    """Rule: targets compare medians — report/floor <= 3 (10/4 = 2.5 passes), report < alt
    (10 vs 9 fails), growth 1 -> 2 <= 2.3 (24/10 = 2.4 fails), RSS <= 300 MB (301 MB
    fails), import >= 50,000 rows/s (49,999 fails)."""
    one = _result(1.0, [9.0, 10.0, 30.0], [4.0, 4.0, 5.0], [9.0, 9.0, 9.0])
    two = _result(2.0, [24.0], [9.0], [30.0], rss=301_000_000, rps=49_999)
    got = {t["target"]: t["pass"] for t in evaluate_targets([one, two])}
    assert got["T_report <= 3 x T_floor (scale 1)"] is True
    assert got["T_report < T_alt (scale 1)"] is False
    assert got["T_report < T_alt (scale 2)"] is True
    assert got["T_report scale 1 -> 2 <= 2.3 x"] is False
    assert got["peak RSS of the report process <= 300 MB (scale 1)"] is True
    assert got["peak RSS of the report process <= 300 MB (scale 2)"] is False
    assert got["import >= 50,000 status rows/s (scale 2)"] is False


def test_plan_runs_reference_scale_gets_runs() -> None:
    """Rule: the reference scale is timed --runs times, the others --other-runs times,
    in ascending order; the reference scale is added when missing."""
    assert plan_runs(1.0, [0.25, 1.0, 2.0], 3, 1) == [(0.25, 1), (1.0, 3), (2.0, 1)]
    assert plan_runs(0.5, [], 2, 1) == [(0.5, 2)]
    assert plan_runs(1.0, [2.0], 3, 2) == [(1.0, 3), (2.0, 2)]


def test_dataset_cache_is_reused(tmp_path: Path) -> None:
    """Rule: a dataset is generated once per (scale, seed) and reused afterwards."""
    meta, generated = ensure_dataset(tmp_path, 0.001, 3)
    assert generated and meta["stores"] == 14
    status = Path(meta["status"])
    mtime = status.stat().st_mtime_ns
    again, generated_again = ensure_dataset(tmp_path, 0.001, 3)
    assert not generated_again and again == meta and status.stat().st_mtime_ns == mtime
    _, other = ensure_dataset(tmp_path, 0.001, 4)
    assert other
