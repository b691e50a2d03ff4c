"""The benchmark's targets (T_report <= 3 x T_floor, growth, RSS, import rows/s) checked on
the medians, and the results table."""

from __future__ import annotations

import statistics
from typing import Any

from rich.table import Table

from uptime.tools.bench.scale import ScaleResult, _median

MB = 1_000_000
TARGET_FLOOR_RATIO = 3.0
TARGET_GROWTH = 2.3
TARGET_RSS_BYTES = 300 * MB
TARGET_IMPORT_RPS = 50_000


def evaluate_targets(results: list[ScaleResult]) -> list[dict[str, Any]]:
    """Pass/fail of every target (medians), per scale, plus the scale 1 -> 2 growth."""
    targets: list[dict[str, Any]] = []
    for r in results:
        rep, flo, alt = _median(r.report_s), _median(r.floor_s), _median(r.alt_s)
        tag = f"scale {r.scale:g}"
        if rep is not None and flo:
            ratio = rep / flo
            targets.append({"target": f"T_report <= 3 x T_floor ({tag})", "value": ratio,
                            "shown": f"{ratio:.2f} x", "limit": TARGET_FLOOR_RATIO,
                            "pass": ratio <= TARGET_FLOOR_RATIO})
        if rep is not None and alt:
            ratio = rep / alt
            targets.append({"target": f"T_report < T_alt ({tag})", "value": ratio,
                            "shown": f"{rep:.2f} s vs {alt:.2f} s ({ratio:.2f} x)", "limit": 1.0,
                            "pass": rep < alt})
        if r.report_rss_bytes:
            peak = max(r.report_rss_bytes)
            targets.append({"target": f"peak RSS of the report process <= 300 MB ({tag})",
                            "value": peak, "shown": f"{peak / MB:.0f} MB",
                            "limit": TARGET_RSS_BYTES, "pass": peak <= TARGET_RSS_BYTES})
        targets.append({"target": f"import >= 50,000 status rows/s ({tag})",
                        "value": r.import_status_rows_per_s,
                        "shown": f"{r.import_status_rows_per_s:,.0f} rows/s",
                        "limit": TARGET_IMPORT_RPS,
                        "pass": r.import_status_rows_per_s >= TARGET_IMPORT_RPS})
        if r.csv_equal is not None:
            targets.append({"target": f"alt CSV == report CSV ({tag})", "value": r.csv_equal,
                            "shown": "equal" if r.csv_equal
                            else f"{r.csv_lines_differing} lines differ",
                            "limit": True, "pass": bool(r.csv_equal)})
    by_scale = {r.scale: r for r in results}
    if 1.0 in by_scale and 2.0 in by_scale:
        one, two = _median(by_scale[1.0].report_s), _median(by_scale[2.0].report_s)
        if one and two:
            growth = two / one
            targets.append({"target": "T_report scale 1 -> 2 <= 2.3 x", "value": growth,
                            "shown": f"{growth:.2f} x", "limit": TARGET_GROWTH,
                            "pass": growth <= TARGET_GROWTH})
    return targets


def _fmt_s(series: list[float]) -> str:
    if not series:
        return "-"
    return f"{min(series):.2f} / {statistics.median(series):.2f}"


def _fmt_mb(series: list[int]) -> str:
    return f"{max(series) / MB:.0f}" if series else "-"


def render(console: Any, results: list[ScaleResult], targets: list[dict[str, Any]],
           rss_source: str) -> None:
    """Print the figures table and the targets table."""

    table = Table(title="uptime-monitor bench — seconds: min / median of the runs")
    table.add_column("figure")
    for r in results:
        table.add_column(f"scale {r.scale:g} ({len(r.report_s)} runs)", justify="right")

    def row(label: str, cell) -> None:
        table.add_row(label, *(cell(r) for r in results))

    def ratio(a: list[float], b: list[float]) -> str:
        return f"{_median(a) / _median(b):.2f} x" if a and b and _median(b) else "-"

    row("stores", lambda r: f"{r.dataset['stores']:,}")
    row("polls (status rows)", lambda r: f"{r.dataset['status_rows']:,}")
    row("import status rows/s", lambda r: f"{r.import_status_rows_per_s:,.0f}")
    row("import total s (3 files)", lambda r: f"{r.import_s:.1f}")
    row("migrations s", lambda r: f"{r.migrate_s:.1f}")
    row("T_report s", lambda r: _fmt_s(r.report_s))
    row("T_floor s", lambda r: _fmt_s(r.floor_s))
    row("T_report / T_floor", lambda r: ratio(r.report_s, r.floor_s))
    row("T_alt s", lambda r: _fmt_s(r.alt_s))
    row("  alt fetch / compute s", lambda r: f"{_median(r.alt_fetch_s):.2f} / "
        f"{_median(r.alt_compute_s):.2f}" if r.alt_s else "-")
    row("T_report / T_alt", lambda r: ratio(r.report_s, r.alt_s))
    row("T_runs_rebuild s (vs T_floor)", lambda r: f"{r.timeline['rebuild_s']:.2f} "
        f"({r.timeline['rebuild_s'] / _median(r.floor_s):.2f} x)" if r.timeline and r.floor_s else "-")
    row("burst freshness p50 / p99 s", lambda r: f"{r.timeline['burst']['p50_s']:.2f} / "
        f"{r.timeline['burst']['p99_s']:.2f}" if r.timeline and r.timeline["burst"] else "-")
    row("peak RSS report process MB", lambda r: _fmt_mb(r.report_rss_bytes))
    row("peak RSS alt process MB", lambda r: _fmt_mb(r.alt_rss_bytes))
    row("peak mongod RSS during report MB", lambda r: _fmt_mb(r.mongod_rss_report_bytes))
    row("peak mongod RSS during alt MB", lambda r: _fmt_mb(r.mongod_rss_alt_bytes))
    row("report rows", lambda r: f"{r.report_rows:,}" if r.report_rows is not None else "-")
    row("CSV alt == report", lambda r: "-" if r.csv_equal is None else (
        "yes" if r.csv_equal else f"NO ({r.csv_lines_differing} lines)"))
    console.print(table)
    console.print(
        "RSS report/alt: peak RSS (ru_maxrss) of the child process generating the report / "
        f"running the alternative; mongod RSS: peak during T_report, {rss_source}."
    )
    tt = Table(title="targets (medians)")
    tt.add_column("target")
    tt.add_column("measured", justify="right")
    tt.add_column("result")
    for t in targets:
        tt.add_row(t["target"], t["shown"], "[green]pass[/green]" if t["pass"] else "[red]FAIL[/red]")
    console.print(tt)
    for r in results:
        for note in r.notes:
            console.print(f"[yellow]note (scale {r.scale:g}):[/yellow] {note}")
