"""One scale of the benchmark: generate (or reuse) the dataset, import it, migrate, then time
T_report, T_floor and T_alt ``runs`` times, plus the timeline, incident and v2 phases."""

from __future__ import annotations

import secrets
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uptime.ingest.importer import import_files
from uptime.platform.constants import STATUS_COLLECTION
from uptime.platform.migrations import ensure_current
from uptime.report.pipeline import resolve_as_of
from uptime.tools.bench import report as bench_report
from uptime.tools.bench import v2 as bench_v2
from uptime.tools.bench.dataset import ensure_dataset
from uptime.tools.bench.incidents import bench_incidents  # issue 17: T_incidents
from uptime.tools.bench.measure import _MongodRss, _run_child, run_floor
from uptime.tools.bench.runs import bench_runs


# --------------------------------------------------------------------------- the run
@dataclass
class ScaleResult:
    """Everything measured at one scale (seconds, bytes, rows/s)."""

    scale: float
    dataset: dict[str, Any]
    generated_now: bool
    database: str = ""
    import_s: float = 0.0
    import_status_rows_per_s: float = 0.0
    import_summaries: list[dict[str, Any]] = field(default_factory=list)
    migrate_s: float = 0.0
    migrations_applied: list[str] = field(default_factory=list)
    as_of: str = ""
    report_s: list[float] = field(default_factory=list)
    floor_s: list[float] = field(default_factory=list)
    alt_s: list[float] = field(default_factory=list)
    alt_fetch_s: list[float] = field(default_factory=list)
    alt_compute_s: list[float] = field(default_factory=list)
    report_rss_bytes: list[int] = field(default_factory=list)
    alt_rss_bytes: list[int] = field(default_factory=list)
    mongod_rss_report_bytes: list[int] = field(default_factory=list)
    mongod_rss_floor_bytes: list[int] = field(default_factory=list)
    mongod_rss_alt_bytes: list[int] = field(default_factory=list)
    report_rows: int | None = None
    floor_polls: int | None = None
    csv_equal: bool | None = None
    csv_lines_differing: int | None = None
    report_runs_identical: bool | None = None
    timeline: dict[str, Any] | None = None  # uptime.tools.bench.runs: runs rebuild, burst freshness
    notes: list[str] = field(default_factory=list)
    v2: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """Min/median of every per-run series."""
        out: dict[str, Any] = {}
        for name in (
            "report_s", "floor_s", "alt_s", "alt_fetch_s", "alt_compute_s", "report_rss_bytes",
            "alt_rss_bytes", "mongod_rss_report_bytes", "mongod_rss_floor_bytes",
            "mongod_rss_alt_bytes",
        ):
            series = getattr(self, name)
            if series:
                out[name] = {"min": min(series), "median": statistics.median(series),
                             "max": max(series)}
        return out


def _median(series: list[float]) -> float | None:
    return statistics.median(series) if series else None


_POLL_INDEX = [("store_id", 1), ("timestamp_utc", 1), ("status", 1)]


async def _index_present(db: Any) -> bool:
    """True if store_status has the covering poll index the report relies on."""
    async for index in await db[STATUS_COLLECTION].list_indexes():
        if list(index["key"].items()) == _POLL_INDEX:
            return True
    return False


async def bench_scale(
    client: Any,
    uri: str,
    scale: float,
    *,
    runs: int,
    seed: int,
    cache_dir: Path,
    work_dir: Path,
    mongod: _MongodRss,
    with_alt: bool,
    say: Any,
    v2: bool = False,
) -> ScaleResult:
    """Generate (or reuse), import, migrate, then time ``runs`` rounds at one scale."""

    dataset, generated = ensure_dataset(cache_dir, scale, seed)
    result = ScaleResult(scale=scale, dataset=dataset, generated_now=generated)
    say(
        f"scale {scale:g}: {dataset['stores']:,} stores, {dataset['status_rows']:,} polls "
        f"({'generated in ' + str(dataset['generate_s']) + ' s' if generated else 'cached'})"
    )
    name = f"uptime_bench_{secrets.token_hex(6)}"
    result.database = name
    db = client[name]
    try:
        started = time.perf_counter()
        summaries = await import_files(
            db,
            status=Path(dataset["status"]),
            hours=Path(dataset["hours"]),
            timezones=Path(dataset["timezones"]),
            rejects=work_dir,
        )
        result.import_s = time.perf_counter() - started
        for s in summaries:
            result.import_summaries.append(
                {"kind": s.kind, "loaded": s.loaded, "already_present": s.already_present,
                 "rejected": s.rejected, "seconds": s.seconds, "rows_per_second": s.rows_per_second}
            )
            if s.kind == "status":
                result.import_status_rows_per_s = s.rows_per_second
            if s.rejected:
                result.notes.append(f"import rejected {s.rejected} {s.kind} rows")
        say(f"  import {result.import_s:.1f} s ({result.import_status_rows_per_s:,.0f} status rows/s)")
        started = time.perf_counter()
        result.migrations_applied = list(await ensure_current(db, apply=True) or [])
        result.migrate_s = time.perf_counter() - started
        if not await _index_present(db):
            result.notes.append(
                "migrations left no store_status {store_id: 1, timestamp_utc: 1, status: 1} "
                "index; the bench created one (bench_poll_index) so the figures mean something"
            )
            await db[STATUS_COLLECTION].create_index(_POLL_INDEX, name="bench_poll_index")
            result.migrate_s = time.perf_counter() - started
        say(f"  migrations {result.migrate_s:.1f} s")
        as_of = await resolve_as_of(db, None)
        if as_of is None:
            raise RuntimeError("no polls were imported")
        result.as_of = as_of.isoformat()

        report_csvs: list[bytes] = []
        alt_csv: bytes | None = None
        for run in range(1, runs + 1):
            out = work_dir / f"report-{scale:g}-{run}.csv"
            mongod.start()
            rep = await _run_child("report", uri, name, as_of, out)
            result.mongod_rss_report_bytes.append(mongod.stop())
            if rep["status"] != "Complete":
                raise RuntimeError(f"report {rep['status']}: {rep.get('error')}")
            result.report_s.append(rep["seconds"])
            result.report_rss_bytes.append(rep["max_rss_bytes"])
            result.report_rows = rep["rows"]
            report_csvs.append(out.read_bytes())
            out.unlink()

            mongod.start()
            floor_s, polls = await run_floor(db)
            result.mongod_rss_floor_bytes.append(mongod.stop())
            result.floor_s.append(floor_s)
            result.floor_polls = polls
            line = f"  run {run}/{runs}: T_report {rep['seconds']:.2f} s, T_floor {floor_s:.2f} s"

            if with_alt:
                out = work_dir / f"alt-{scale:g}-{run}.csv"
                mongod.start()
                alt = await _run_child("alt", uri, name, as_of, out)
                result.mongod_rss_alt_bytes.append(mongod.stop())
                result.alt_s.append(alt["seconds"])
                result.alt_fetch_s.append(alt["fetch_s"])
                result.alt_compute_s.append(alt["compute_s"])
                result.alt_rss_bytes.append(alt["max_rss_bytes"])
                if alt_csv is None:
                    alt_csv = out.read_bytes()
                out.unlink()
                line += f", T_alt {alt['seconds']:.2f} s"
            say(line)
        result.report_runs_identical = all(c == report_csvs[0] for c in report_csvs)

        result.timeline = await bench_runs(db, say)

        result.timeline["incidents"] = await bench_incidents(db, say, as_of=as_of)
        if alt_csv is not None:
            result.csv_equal = alt_csv == report_csvs[0]
            a_lines = alt_csv.decode().splitlines()
            r_lines = report_csvs[0].decode().splitlines()
            result.csv_lines_differing = sum(x != y for x, y in zip(a_lines, r_lines)) + abs(
                len(a_lines) - len(r_lines)
            )
            if not result.csv_equal:
                (work_dir.parent / f"mismatch-{scale:g}-alt.csv").write_bytes(alt_csv)
                (work_dir.parent / f"mismatch-{scale:g}-report.csv").write_bytes(report_csvs[0])
        if v2:  # issue 8: report v2 vs v1 and the DuckDB alternative, same data, same run

            result.v2 = await bench_v2.bench_report_v2(db, uri, dataset, as_of, work_dir, runs=runs, say=say)
            # issue 19: trigger -> CSV through the API, with the report's phases
            result.v2["api"] = await bench_report.bench_api(db, uri, dataset, as_of, work_dir,
                                                            runs=runs, say=say, build=False)
        return result
    finally:
        await client.drop_database(name)
