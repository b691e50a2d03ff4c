"""The whole benchmark: every scale of the plan, ingestion, history growth; targets, table
and the JSON results file."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymongo
from rich.console import Console

from uptime.platform.db import make_client, server_uri
from uptime.tools.bench import alerts as bench_alerts
from uptime.tools.bench import period as bench_period
from uptime.tools.bench import report as bench_report
from uptime.tools.bench import v2 as bench_v2
from uptime.tools.bench.ingest import ingest_target, report_during_push_target, run_ingest_bench
from uptime.tools.bench.measure import _mongod_identity, _MongodRss
from uptime.tools.bench.scale import ScaleResult, bench_scale
from uptime.tools.bench.targets import evaluate_targets, render


def plan_runs(scale: float, scales: list[float], runs: int, other_runs: int) -> list[tuple[float, int]]:
    """(scale, runs) in ascending scale order: ``runs`` at the reference ``scale``,
    ``other_runs`` at every other scale of ``scales``."""
    chosen = sorted(set(scales) | {scale})
    return [(s, runs if s == scale else other_runs) for s in chosen]


async def run_bench(
    settings: Any,
    plan: list[tuple[float, int]],
    *,
    seed: int,
    cache_dir: Path,
    results_dir: Path,
    with_alt: bool = True,
    console: Any = None,
    ingest: bool = False,
    v2_scale: float | None = None,
    history_stores: int = 0,
    period_stores: int = 0,
    period_year_stores: int = 0,
    report_scales: tuple[float, ...] = (),
    alerts_stores: int = 0,
    history_order: tuple[str, ...] = bench_v2.HISTORY_ORDER,
) -> tuple[dict[str, Any], Path]:
    """Run the benchmark; return (the JSON document written, its path). ``report_scales``:
    scales at which the report through the API is also timed (issue 19's scale-10 figure;
    ``uptime.tools.bench.report.bench_api_scale``)."""

    console = console or Console(stderr=True)
    say = console.print
    started_at = datetime.now(UTC)
    results: list[ScaleResult] = []
    with server_uri(settings) as uri, tempfile.TemporaryDirectory(prefix="uptime-bench-") as tmp:
        client = make_client(uri)
        try:
            pid, rss_source, version = await _mongod_identity(client)
            server = "embedded mongod (child process)" if not settings.mongodb_uri else "MONGODB_URI"
            say(f"server: {server}, MongoDB {version}; mongod RSS from {rss_source}")
            mongod = _MongodRss(pid, uri)
            work = Path(tmp) / "work"
            work.mkdir()
            for scale, runs in plan:
                results.append(
                    await bench_scale(client, uri, scale, runs=runs, seed=seed,
                                      cache_dir=cache_dir, work_dir=work, mongod=mongod,
                                      with_alt=with_alt, say=say, v2=scale == v2_scale)
                )
            api_scales = []
            for extra in report_scales:  # issue 19 item 3: the API figures at scale 10
                api_scales.append(await bench_report.bench_api_scale(
                    client, uri, extra, seed=seed, cache_dir=cache_dir, work_dir=work,
                    runs=max(1, min(2, plan[0][1])), say=say))
                for line in bench_report.summary_lines(api_scales[-1]):
                    say(f"  scale {extra:g}: {line}")
            if ingest:  # POST /polls throughput (issue 8 item 6), uptime-monitor serve as a child

                ingest_result = await run_ingest_bench(uri, say=say)
            if history_stores:

                say(f"history growth: {history_stores:,} stores, 1 week vs 6 weeks of polls")
                history = await bench_v2.bench_history(client, uri, cache_dir, work, seed=seed,
                                                       stores=history_stores, say=say,
                                                       order=history_order)
            period_result = None
            if period_stores or period_year_stores:  # issue 18 item 3: month and year vs floor
                period_result = await bench_period.bench_periods(
                    client, cache_dir, work, seed=seed, month_stores=period_stores,
                    year_stores=period_year_stores, say=say)
            alerts_result = None
            if alerts_stores:  # issue 17 item 6: POST /polls -> webhook, serve in a child process
                say(f"alert latency: {alerts_stores:,} stores, 5 % going down, then back up")
                alerts_result = await bench_alerts.bench_alerts(
                    alerts_stores, 0.05, uri=uri, say=lambda line: say(f"  {line}"))
        finally:
            await client.close()
    targets = evaluate_targets(results)
    if alerts_result:
        targets += bench_alerts.targets(alerts_result)
    if ingest:
        targets.append(ingest_target(ingest_result))
        if ingest_result.get("report"):
            targets.append(report_during_push_target(ingest_result["report"]))
    v2_doc = {"report": next((r.v2 for r in results if r.v2), None),
              "history": history if history_stores else None}
    if v2_doc["report"] or v2_doc["history"]:

        polars_s = next((r.alt_s for r in results if r.v2), [])
        targets += bench_v2.targets(v2_doc, polars_s)
        targets += bench_report.targets((v2_doc["report"] or {}).get("api"))  # issue 19
        targets += bench_report.scale_targets((v2_doc["report"] or {}).get("api"), api_scales,
                                              v2_scale or 1.0)
    if period_result:
        targets += bench_period.targets(period_result)
    render(console, results, targets, rss_source)
    import polars  # optional (extra "bench"): the polars alternative

    doc = {
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "versions": {"mongodb": version, "pymongo": pymongo.version, "polars": polars.__version__},
        "server": server,
        "mongod_rss_source": rss_source,
        "plan": [{"scale": s, "runs": n} for s, n in plan],
        "seed": seed,
        "results": [
            {**{k: v for k, v in r.__dict__.items()}, "summary": r.summary()} for r in results
        ],
        "targets": targets,
        "ingest": ingest_result if ingest else None,
        "v2": v2_doc,
        "report_scales": api_scales,
        "period": period_result,
        "alerts": alerts_result,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(doc, indent=2, default=str))
    say(f"results written to {path}")
    return doc, path
