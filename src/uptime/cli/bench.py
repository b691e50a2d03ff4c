"""``uptime-monitor bench``: the report against its floor and its alternatives (issue 5); the
phases live in :mod:`uptime.tools.bench`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from uptime.platform.settings import get_settings
from uptime.tools.bench import default_cache_dir, plan_runs, run_bench
from uptime.tools.bench import storage as bench_storage  # issue 18 item 5

DEFAULT_SCALES = "0.25,1,2"
DEFAULT_SCALE = 1.0
DEFAULT_RUNS = 3
DEFAULT_OTHER_RUNS = 1


def _parse_scales(text: str) -> list[float]:
    try:
        scales = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"--scales {text!r}: give numbers separated by commas") from None
    if any(s <= 0 for s in scales):
        raise typer.BadParameter(f"--scales {text!r}: every scale must be > 0")
    return scales


def bench_command(
    scale: Annotated[
        float,
        typer.Option(help="Reference scale, timed --runs times (1.0 = v1: 14,092 stores, "
                     "~2.9M polls)."),
    ] = DEFAULT_SCALE,
    scales: Annotated[
        str,
        typer.Option(help="Comma-separated scales for the growth curve, each timed "
                     "--other-runs times ('' = the reference scale only)."),
    ] = DEFAULT_SCALES,
    runs: Annotated[int, typer.Option(min=1, help="Timed runs at the reference scale.")] = DEFAULT_RUNS,
    other_runs: Annotated[
        int, typer.Option(min=1, help="Timed runs at the other scales.")
    ] = DEFAULT_OTHER_RUNS,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    alt: Annotated[bool, typer.Option("--alt/--no-alt", help="Also time the polars alternative.")] = True,
    ingest: Annotated[
        bool, typer.Option("--ingest/--no-ingest", help="Also time POST /polls throughput.")
    ] = True,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Where generated datasets are cached (default ~/.cache/uptime/bench, "
                     "or UPTIME_BENCH_CACHE)."),
    ] = None,
    results_dir: Annotated[
        Path, typer.Option(help="Where the JSON results go.")
    ] = Path("bench/results"),
    v2: Annotated[
        bool, typer.Option("--v2/--no-v2", help="Also time report v2 vs v1 (uptime-monitor report), the "
                           "DuckDB alternative and history growth (issue 8).")
    ] = True,
    history_stores: Annotated[
        int, typer.Option(min=0, help="Stores in the history-growth datasets (0 = skip).")
    ] = 3000,
    period_stores: Annotated[
        int, typer.Option(min=0, help="Stores in the period-report dataset: a month report "
                          "on 33 days of polls vs its floor (issue 18; 0 = skip).")
    ] = 14092,
    period_year_stores: Annotated[
        int, typer.Option(min=0, help="Stores in the period-report year dataset: the 2022 "
                          "report on 368 days of polls vs its floor (issue 18; 0 = skip).")
    ] = 1000,
    report_scale: Annotated[
        str, typer.Option(help="Comma-separated scales at which the report through the API "
                          "is also timed (issue 19: e.g. 10 = 140,920 stores; '' = none).")
    ] = "",
    alerts_stores: Annotated[
        int, typer.Option(min=0, help="Stores in the alert-latency phase: the service in "
                          "process, one poll per store (5 % going down, then back up) to a "
                          "local webhook receiver (issue 17 item 6; 0 = skip).")
    ] = 14092,
    storage: Annotated[bool, typer.Option("--storage/--no-storage", help="Also measure bytes "
                       "on disk per poll and per run (issue 18: uptime.tools.bench.storage).")] = True,
) -> None:
    """Benchmark the report (T_report) against its floor (T_floor) and a polars alternative
    (T_alt), with import rows/s and peak RSS; print a table and write JSON.

    Defaults (scale 1 x 3 runs, scales 0.25 and 2 x 1 run) take about 11 minutes on a
    2-core machine. Exit code 1 if the alternative's CSV differs from the report's.
    """

    if scale <= 0:
        raise typer.BadParameter("--scale must be > 0")
    extra = _parse_scales(scales) if scales.strip() else []
    plan = plan_runs(scale, extra, runs, other_runs)
    doc, _ = asyncio.run(
        run_bench(get_settings(), plan, seed=seed,
                  cache_dir=cache_dir or default_cache_dir(), results_dir=results_dir,
                  with_alt=alt, ingest=ingest,
                  v2_scale=scale if v2 else None,
                  history_stores=history_stores if v2 else 0,
                  period_stores=period_stores, period_year_stores=period_year_stores,
                  report_scales=tuple(_parse_scales(report_scale)) if report_scale.strip() else (),
                  alerts_stores=alerts_stores)
    )
    if storage:  # issue 18 item 5: 1,000 stores x 30 days, extrapolated to a year of 14k
        bench_storage.run(get_settings(), results=results_dir / "storage.json")
    if any(r.get("csv_equal") is False for r in doc["results"]):
        raise typer.Exit(1)
