"""``uptime-monitor bench``: the report against its floor and its alternative (issue 5, "Benchmark").

For every scale (1.0 = the v1 shape: 14,092 stores, 9 days of hourly polls, ~2.9M rows) the
benchmark, on one server (``MONGODB_URI``, else the embedded mongod) and in a fresh database
``uptime_bench_<random>`` dropped at the end:

1. **generate** the dataset (``uptime.tools.generate``; cached under the cache dir, keyed by scale,
   seed and the generator's source, so repeated runs do not regenerate);
2. **import** it with ``uptime.ingest.importer.import_files`` — status rows/s end to end from CSV;
3. **migrate**: ``uptime.platform.migrations.ensure_current(db, apply=True)`` (the indexes);
4. ``runs`` times, in this order:

   - **T_report**: the full report through the report service (``ReportService.trigger`` →
     pipeline → CSV into GridFS → Complete), in a fresh child Python process whose own
     peak RSS (``ru_maxrss``) is the "peak RSS of the process generating the report";
   - **T_floor**: one ``$setWindowFields`` (partitionBy store_id, sortBy timestamp_utc, one
     ``$shift``) over the same polls (``timestamp_utc <= as_of``, valid status), then
     ``$count`` — what any ordered per-store read costs;
   - **T_alt**: ``uptime.tools.alt_report`` in a fresh child process — fetch polls, hours and
     timezones with PyMongo and compute the same report with polars;

5. checks that the alternative's CSV equals the stored report's CSV byte for byte.

The pipeline itself runs inside mongod, so mongod's RSS is sampled too (every 0.1 s during
each phase, with psutil when mongod runs on this machine — the embedded child or a local
server — else from ``serverStatus().mem.resident``); its peak is reported separately.
Times are wall-clock seconds; min and median over the runs are reported. Results are printed
as a table and written to ``<results-dir>/<UTC timestamp>.json``.

Targets (printed pass/fail, on medians): T_report <= 3 × T_floor; T_report < T_alt;
T_report(2) / T_report(1) <= 2.3; peak RSS of the report process <= 300 MB; import >= 50,000
status rows/s; and the alternative's CSV equal to the report's.

Defaults: the reference scale 1 timed 3 times, scales 0.25 and 2 once each (3 runs at all
three scales would take ~18 minutes on 2 cores; this plan takes ~8-11 minutes, the first
time ~20 s more to generate the data).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import platform
import resource
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from uptime.tools.generate import V1_STORES, generate_dataset

MB = 1_000_000
DEFAULT_SCALES = "0.25,1,2"
DEFAULT_SCALE = 1.0
DEFAULT_RUNS = 3
DEFAULT_OTHER_RUNS = 1
TARGET_FLOOR_RATIO = 3.0
TARGET_GROWTH = 2.3
TARGET_RSS_BYTES = 300 * MB
TARGET_IMPORT_RPS = 50_000
DATASET_META = "dataset.json"


# --------------------------------------------------------------------------- dataset cache
def _generator_key() -> str:
    """Short hash of the generator's source: a changed generator invalidates the cache."""
    import uptime.tools.generate as gen

    return hashlib.sha256(Path(gen.__file__).read_bytes()).hexdigest()[:10]


def default_cache_dir() -> Path:
    """``UPTIME_BENCH_CACHE`` or the per-user cache dir (e.g. ``~/.cache/uptime/bench``)."""
    configured = os.environ.get("UPTIME_BENCH_CACHE")
    if configured:
        return Path(configured)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("uptime", appauthor=False)) / "bench"


def ensure_dataset(cache_dir: Path, scale: float, seed: int) -> tuple[dict[str, Any], bool]:
    """Return (dataset description, generated now?) for ``scale``/``seed``, generating if needed.

    The description has ``dir``, ``status``/``hours``/``timezones`` paths, ``stores``,
    ``status_rows``, ``hours_rows``, ``timezone_rows``, ``as_of`` (ISO) and ``generate_s``.
    A dataset is complete only once its ``dataset.json`` exists (written last).
    """
    stores = max(1, round(V1_STORES * scale))
    folder = cache_dir / f"g{_generator_key()}-stores{stores}-seed{seed}"
    meta_path = folder / DATASET_META
    if meta_path.is_file():
        return json.loads(meta_path.read_text()), False
    files = generate_dataset(folder, stores=stores, seed=seed)
    meta = {
        "dir": str(folder),
        "status": str(files.status),
        "hours": str(files.hours),
        "timezones": str(files.timezones),
        "stores": files.stores,
        "status_rows": files.status_rows,
        "inactive_rows": files.inactive_rows,
        "hours_rows": files.hours_rows,
        "timezone_rows": files.timezone_rows,
        "as_of": files.as_of.isoformat(),
        "generate_s": round(files.seconds, 3),
        "seed": seed,
        "scale": scale,
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta, True


# --------------------------------------------------------------------------- RSS sampling
class _MongodRss:
    """Samples mongod's resident memory in a thread between ``start()`` and ``stop()``."""

    def __init__(self, pid: int | None, uri: str, interval: float = 0.1) -> None:
        self.pid = pid
        self.uri = uri
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> int:
        if self.pid is not None:
            import psutil

            return psutil.Process(self.pid).memory_info().rss
        return self._client.admin.command("serverStatus")["mem"]["resident"] * 1024 * 1024

    def _loop(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, self._sample())
            except Exception:  # noqa: BLE001, S110 - sampling is best effort
                pass
            if self._stop.wait(self.interval):
                return

    def start(self) -> None:
        self.peak = 0
        self._stop.clear()
        if self.pid is None:
            from pymongo import MongoClient

            self._client = MongoClient(self.uri)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.pid is None:
            self._client.close()
        return self.peak


async def _mongod_identity(client: Any) -> tuple[int | None, str, str]:
    """(pid usable with psutil or None, how RSS is measured, server version)."""
    status = await client.admin.command("serverStatus")
    version = str(status.get("version", "?"))
    pid = int(status.get("pid", 0)) or None
    if pid is not None:
        try:
            import psutil

            if "mongod" in psutil.Process(pid).name():
                return pid, f"psutil RSS of local mongod pid {pid}", version
        except Exception:  # noqa: BLE001, S110 - not on this machine
            pass
    return None, "serverStatus mem.resident (remote mongod)", version


# --------------------------------------------------------------------------- child phases
async def _child_report(uri: str, database: str, as_of: datetime, out: Path) -> dict[str, Any]:
    """Run one report through the service path; write its CSV (from GridFS) to ``out``."""
    from uptime.report import reports
    from uptime.platform.db import make_client
    from uptime.platform.settings import Settings

    settings = Settings(
        mongodb_uri=uri, mongodb_database=database, data_dir=Path(tempfile.gettempdir())
    )
    client = make_client(uri)
    try:
        db = client[database]
        service = reports.ReportService(db, settings)
        await service.start(recover=False)
        try:
            started = time.perf_counter()
            report_id = await service.trigger(as_of, "v1")  # v2: uptime.tools.bench_v2
            doc = await service.wait(report_id, poll_s=0.05)
            seconds = time.perf_counter() - started
        finally:
            await service.stop()
        result: dict[str, Any] = {
            "seconds": seconds,
            "status": doc["status"],
            "rows": doc.get("rows"),
            "error": doc.get("error"),
        }
        if doc["status"] == reports.COMPLETE:
            with out.open("wb") as f:
                await reports.write_csv(db, doc["file_id"], f)
        return result
    finally:
        await client.close()


def _child_alt(uri: str, database: str, as_of: datetime, out: Path) -> dict[str, Any]:
    from uptime.tools import alt_report

    started = time.perf_counter()
    rows, timings = alt_report.alt_report(uri, database, as_of)
    text = alt_report.to_csv(rows)
    seconds = time.perf_counter() - started
    out.write_text(text, encoding="utf-8")
    return {
        "seconds": seconds,
        "fetch_s": timings.fetch_s,
        "compute_s": timings.compute_s,
        "rows": len(rows),
    }


def phase_main(argv: list[str]) -> None:
    """Entry of a child process: ``python -m uptime.tools.bench PHASE URI DB AS_OF OUT``.

    Prints one JSON line: the phase's result plus ``max_rss_bytes`` (this process's peak).
    """
    phase, uri, database, as_of_text, out = argv
    as_of = datetime.fromisoformat(as_of_text)
    if phase == "report":
        result = asyncio.run(_child_report(uri, database, as_of, Path(out)))
    elif phase == "alt":
        result = _child_alt(uri, database, as_of, Path(out))
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    result["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


async def _run_child(phase: str, uri: str, database: str, as_of: datetime, out: Path) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uptime.tools.bench", phase, uri, database, as_of.isoformat(), str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(
            f"bench phase {phase} failed (exit {proc.returncode}): "
            f"{stderr.decode(errors='replace')[-2000:]}"
        )
    return json.loads(stdout.decode().strip().splitlines()[-1])


# --------------------------------------------------------------------------- floor
def floor_pipeline(as_of: datetime) -> list[dict[str, Any]]:
    """The floor: the report's polls, one ``$setWindowFields`` with one ``$shift``, ``$count``.

    The ``store_id`` predicate makes the store/time index eligible, so the floor is the
    fastest ordered per-store read (a covered index scan with the migrations' indexes)
    rather than a collection scan plus a blocking sort, which is 2-3x slower.
    """
    return [
        {
            "$match": {
                "store_id": {"$type": "string"},
                "timestamp_utc": {"$type": "date", "$lte": as_of},
                "status": {"$in": ["active", "inactive"]},
            }
        },
        {
            "$setWindowFields": {
                "partitionBy": "$store_id",
                "sortBy": {"timestamp_utc": 1},
                "output": {"prev": {"$shift": {"output": "$timestamp_utc", "by": -1}}},
            }
        },
        {"$count": "polls"},
    ]


async def run_floor(db: Any, as_of: datetime) -> tuple[float, int]:
    """Run the floor pipeline; return (seconds, polls counted)."""
    started = time.perf_counter()
    cursor = await db["store_status"].aggregate(
        floor_pipeline(as_of), allowDiskUse=True, comment="bench:floor"
    )
    docs = await cursor.to_list()
    return time.perf_counter() - started, (docs[0]["polls"] if docs else 0)


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
    timeline: dict[str, Any] | None = None  # uptime.tools.bench_runs: runs rebuild, burst freshness
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
    async for index in await db["store_status"].list_indexes():
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
    from uptime.ingest.importer import import_files
    from uptime.platform.migrations import ensure_current
    from uptime.report.pipeline import resolve_as_of

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
            await db["store_status"].create_index(_POLL_INDEX, name="bench_poll_index")
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
            floor_s, polls = await run_floor(db, as_of)
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
        from uptime.tools.bench_runs import bench_runs

        result.timeline = await bench_runs(db, say)
        from uptime.tools.bench_incidents import bench_incidents  # issue 17: T_incidents

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
            from uptime.tools import bench_v2

            result.v2 = await bench_v2.bench_report_v2(db, uri, dataset, as_of, work_dir, runs=runs, say=say)
            from uptime.tools import bench_report  # issue 19: trigger -> CSV via the API, phases

            result.v2["api"] = await bench_report.bench_api(db, uri, dataset, as_of, work_dir, runs=runs, say=say, build=False)
        return result
    finally:
        await client.drop_database(name)


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
    from rich.table import Table

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
) -> tuple[dict[str, Any], Path]:
    """Run the benchmark; return (the JSON document written, its path)."""
    from rich.console import Console

    from uptime.platform.db import make_client, server_uri

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
            if ingest:  # POST /polls throughput (issue 8 item 6), uptime-monitor serve as a child
                from uptime.tools.bench_ingest import (
                    ingest_target, report_during_push_target, run_ingest_bench,
                )

                ingest_result = await run_ingest_bench(uri, say=say)
            if history_stores:
                from uptime.tools import bench_v2

                say(f"history growth: {history_stores:,} stores, 1 week vs 6 weeks of polls")
                history = await bench_v2.bench_history(client, uri, cache_dir, work, seed=seed,
                                                       stores=history_stores, say=say)
        finally:
            await client.close()
    targets = evaluate_targets(results)
    if ingest:
        targets.append(ingest_target(ingest_result))
        if ingest_result.get("report"):
            targets.append(report_during_push_target(ingest_result["report"]))
    v2_doc = {"report": next((r.v2 for r in results if r.v2), None),
              "history": history if history_stores else None}
    if v2_doc["report"] or v2_doc["history"]:
        from uptime.tools import bench_report, bench_v2

        polars_s = next((r.alt_s for r in results if r.v2), [])
        targets += bench_v2.targets(v2_doc, polars_s)
        targets += bench_report.targets((v2_doc["report"] or {}).get("api"))  # issue 19
    render(console, results, targets, rss_source)
    import polars
    import pymongo

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
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(doc, indent=2, default=str))
    say(f"results written to {path}")
    return doc, path


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
) -> None:
    """Benchmark the report (T_report) against its floor (T_floor) and a polars alternative
    (T_alt), with import rows/s and peak RSS; print a table and write JSON.

    Defaults (scale 1 x 3 runs, scales 0.25 and 2 x 1 run) take about 11 minutes on a
    2-core machine. Exit code 1 if the alternative's CSV differs from the report's.
    """
    from uptime.platform.settings import get_settings

    if scale <= 0:
        raise typer.BadParameter("--scale must be > 0")
    extra = _parse_scales(scales) if scales.strip() else []
    plan = plan_runs(scale, extra, runs, other_runs)
    doc, _ = asyncio.run(
        run_bench(get_settings(), plan, seed=seed,
                  cache_dir=cache_dir or default_cache_dir(), results_dir=results_dir,
                  with_alt=alt, ingest=ingest,
                  v2_scale=scale if v2 else None,
                  history_stores=history_stores if v2 else 0)
    )
    if any(r.get("csv_equal") is False for r in doc["results"]):
        raise typer.Exit(1)


if __name__ == "__main__":  # child phases: python -m uptime.tools.bench PHASE URI DB AS_OF OUT
    phase_main(sys.argv[1:])
