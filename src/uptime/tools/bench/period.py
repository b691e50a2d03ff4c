"""``uptime bench`` phase of the period reports (issue 18, item 3): a calendar-month report
and a calendar-year report, each against the floor of reading once the runs that overlap
the period.

Datasets: ``uptime generate --stores N --days D --as-of A``, imported into a fresh database,
migrated, its status timeline and schedules built (``bench_v2.build_inputs``):

* month (``MONTH``): 14,092 stores × 33 days ending at 2023-02-02T00:00Z, so January 2023 lies
  inside the polls in every zone; the report for ``2023-01``;
* year (``YEAR``): 1,000 stores × 368 days ending at 2023-01-03T00:00Z (polls from
  2021-12-31T00:00Z), so the calendar year 2022 lies inside the polls in every zone (local
  midnights are within ±14 h of UTC's); the report for ``2022``.

Per case and run, in one session, in this order:

* **T_floor**: one ``$match`` + ``$count`` on ``status_runs``: the runs with ``first_poll <=
  as_of`` that overlap the period's read bounds (``end2`` after its start or open, ``start2``
  before its end or null) — reading once what the report must read;
* **T_period**: the period pipeline on the timeline, every row drained
  (``uptime.report.period.iter_period_rows``, ``mode="timeline"``);
* **T_service**: the whole period report through ``ReportService`` into GridFS (status,
  progress, ignored-input counts, CSV).

Once per case: **T_on_the_fly** (the same pipeline with the runs derived from
``store_status``: what a report costs while the timeline lags) and a check that its rows equal
the timeline's. Target (each case): min T_period ≤ 3 × min T_floor.

Alone: ``python -m uptime.tools.bench.period [month|year|both [RUNS]]`` against
``MONGODB_URI`` (else the embedded mongod), data cached like ``uptime bench``'s
(``UPTIME_BENCH_CACHE``).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from uptime.ingest.importer import import_files
from uptime.platform.db import make_client, server_uri
from uptime.platform.migrations import ensure_current
from uptime.platform.settings import get_settings
from uptime.report.period import ON_THE_FLY, TIMELINE, iter_period_rows, parse_period
from uptime.report.service import ReportService
from uptime.report.storage import COMPLETE
from uptime.tools.bench.dataset import default_cache_dir
from uptime.tools.bench.v2 import build_inputs
from uptime.tools.generate import generate_dataset

#: the month dataset: stores, days, last poll (January 2023 is inside it in every zone)
STORES, DAYS = 14_092, 33
AS_OF = datetime(2023, 2, 2, tzinfo=UTC)
PERIOD = "2023-01"
#: the year dataset: 368 days ending at 2023-01-03T00:00Z hold 2022 in every zone
YEAR_STORES, YEAR_DAYS = 1_000, 368
YEAR_AS_OF = datetime(2023, 1, 3, tzinfo=UTC)
YEAR_PERIOD = "2022"
#: target: T_period ≤ this × T_floor
TARGET_RATIO = 3.0


def floor_filter(lo: datetime, hi: datetime, as_of: datetime) -> dict[str, Any]:
    """The runs a period report over the read bounds [lo, hi) must read (2 × epoch ms units
    as ``start2``/``end2``)."""
    lo2 = int(lo.timestamp() * 1000) * 2
    hi2 = int(hi.timestamp() * 1000) * 2
    return {
        "first_poll": {"$lte": as_of},
        "$and": [
            {"$or": [{"end2": {"$gt": lo2}}, {"end2": None}]},
            {"$or": [{"start2": {"$lt": hi2}}, {"start2": None}]},
        ],
    }


async def run_floor(db: Any, period: Any, as_of: datetime) -> tuple[float, int]:
    """(seconds, runs counted) of one ``$match`` + ``$count`` over the period's runs."""
    lo, hi = period.read_bounds()
    started = time.perf_counter()
    cursor = await db["status_runs"].aggregate(
        [{"$match": floor_filter(lo, hi, as_of)}, {"$count": "runs"}], comment="bench:period_floor")
    docs = await cursor.to_list()
    return time.perf_counter() - started, (docs[0]["runs"] if docs else 0)


async def run_period(db: Any, period: Any, as_of: datetime, mode: str) -> tuple[float, list[dict]]:
    """(seconds, rows) of the period pipeline with every row drained."""

    started = time.perf_counter()
    rows = [r async for r in iter_period_rows(db, period, as_of=as_of, mode=mode)]
    return time.perf_counter() - started, rows


async def run_service(db: Any, period: Any, as_of: datetime) -> float:
    """Seconds of a period report through ``ReportService`` (GridFS CSV, bookkeeping)."""

    service = ReportService(db, get_settings())
    await service.start(background=True, recover=False)
    try:
        started = time.perf_counter()
        doc = await service.wait(await service.trigger(as_of, period=period))
        elapsed = time.perf_counter() - started
    finally:
        await service.stop()
    if doc["status"] != COMPLETE:
        raise RuntimeError(f"period report failed: {doc.get('error')}")
    return elapsed


async def bench_period(
    client: Any, cache_dir: Path, work: Path, *, seed: int = 0, stores: int = STORES,
    days: int = DAYS, runs: int = 3, say: Any = print, as_of: datetime = AS_OF,
    period_label: str = PERIOD, on_the_fly: bool = True,
) -> dict[str, Any]:
    """One case of the phase (module doc; default the month) in a fresh database that is
    dropped afterwards; returns the figures (seconds; min over ``runs``). ``on_the_fly=False``
    skips T_on_the_fly (``on_the_fly_s``/``on_the_fly_equal`` then None)."""

    name = f"period-stores{stores}-days{days}-seed{seed}"
    if as_of != AS_OF:
        name += f"-asof{as_of:%Y%m%d}"
    folder = cache_dir / name
    if not (folder / "done").is_file():
        generate_dataset(folder, stores=stores, days=days, seed=seed, as_of=as_of)
        (folder / "done").write_text("ok")
    db = client[f"uptime_bench_period_{secrets.token_hex(4)}"]
    period = parse_period(period_label)
    out: dict[str, Any] = {"stores": stores, "days": days, "period": period_label,
                           "as_of": as_of.isoformat(), "load_avg": list(os.getloadavg())}
    try:
        say(f"period report {period_label}: importing {stores:,} stores × {days} days")
        await import_files(db, status=folder / "store_status.csv", hours=folder / "menu_hours.csv",
                           timezones=folder / "timezones.csv", rejects=work)
        await ensure_current(db, apply=True)
        out["inputs"] = await build_inputs(db)
        out["polls"] = await db["store_status"].estimated_document_count()
        floor_s, period_s, service_s = [], [], []
        rows: list[dict] = []
        out["load_avg_timed"] = list(os.getloadavg())
        for _ in range(runs):
            t, out["floor_runs"] = await run_floor(db, period, as_of)
            floor_s.append(t)
            t, rows = await run_period(db, period, as_of, TIMELINE)
            period_s.append(t)
            service_s.append(await run_service(db, period, as_of))
        out.update(floor_s=floor_s, period_s=period_s, service_s=service_s, rows=len(rows))
        out["ratio"] = min(period_s) / min(floor_s)
        out["service_ratio"] = min(service_s) / min(floor_s)
        fly = ""
        out.update(on_the_fly_s=None, on_the_fly_equal=None)
        if on_the_fly:
            t, fly_rows = await run_period(db, period, as_of, ON_THE_FLY)
            out.update(on_the_fly_s=t, on_the_fly_equal=fly_rows == rows)
            fly = f", on the fly {t:.2f} s (rows equal: {out['on_the_fly_equal']})"
        say(f"  {out['polls']:,} polls, {out['inputs']['runs']:,} runs ({out['floor_runs']:,} "
            f"overlap {period_label}), {len(rows):,} rows; load average "
            f"{out['load_avg_timed'][0]:.1f}")
        say(f"  T_floor {min(floor_s):.2f} s, T_period {min(period_s):.2f} s "
            f"({out['ratio']:.2f}×, target ≤ {TARGET_RATIO:g}×), T_service {min(service_s):.2f} s "
            f"({out['service_ratio']:.2f}×){fly}")
        return out
    finally:
        await client.drop_database(db.name)


async def bench_periods(
    client: Any, cache_dir: Path, work: Path, *, seed: int = 0, month_stores: int = STORES,
    year_stores: int = YEAR_STORES, runs: int = 3, say: Any = print,
) -> dict[str, Any]:
    """Both cases of the phase (module doc): ``{"month": figures | None, "year": figures |
    None}`` (a case with 0 stores is skipped). The year case runs ``max(1, runs - 1)`` times
    and skips T_on_the_fly (a scan of every poll of the year, minutes on a shared machine)."""

    out: dict[str, Any] = {"month": None, "year": None}
    if month_stores:
        out["month"] = await bench_period(client, cache_dir, work, seed=seed, stores=month_stores,
                                          days=DAYS, runs=runs, say=say)
    if year_stores:
        out["year"] = await bench_period(client, cache_dir, work, seed=seed, stores=year_stores,
                                         days=YEAR_DAYS, runs=max(1, runs - 1), say=say,
                                         as_of=YEAR_AS_OF, period_label=YEAR_PERIOD,
                                         on_the_fly=False)
    return out


def target(result: dict[str, Any]) -> dict[str, Any]:
    """The target row of one case for ``uptime bench``'s table/JSON."""
    ratio = result["ratio"]
    kind = "year" if len(result["period"]) == 4 else "month"
    return {"target": f"T_period <= 3 x T_floor(runs) ({kind} {result['period']}, "
                      f"{result['stores']:,} stores x {result['days']} days)",
            "value": ratio, "shown": f"{ratio:.2f} x", "limit": TARGET_RATIO,
            "pass": ratio <= TARGET_RATIO}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The target rows of ``bench_periods``' result (month, then year; skipped cases left out)."""
    return [target(results[k]) for k in ("month", "year") if results.get(k)]


def main(argv: list[str]) -> None:
    """``python -m uptime.tools.bench.period [month|year|both [RUNS]]``."""

    which = argv[0] if argv else "both"
    if which not in ("month", "year", "both"):
        raise SystemExit("usage: python -m uptime.tools.bench.period [month|year|both [RUNS]]")
    runs = int(argv[1]) if len(argv) > 1 else 3

    async def go() -> dict[str, Any]:
        with server_uri(get_settings()) as uri, tempfile.TemporaryDirectory() as tmp:
            client = make_client(uri)
            try:
                return await bench_periods(
                    client, default_cache_dir(), Path(tmp), runs=runs,
                    month_stores=STORES if which in ("month", "both") else 0,
                    year_stores=YEAR_STORES if which in ("year", "both") else 0)
            finally:
                await client.close()

    print(json.dumps(asyncio.run(go()), default=str, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
