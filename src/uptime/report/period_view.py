"""What the period page shows (issue 18, item 6): a finished period report's chain uptime % and
its stores below a target, a period report to reuse, and one store's uptime by month.

* :func:`summarize` / :func:`read_summary` — from a Complete period report's **CSV** (the file
  the page offers for download, so every number can be checked against it):

  - ``chain_uptime_percent`` = 100 × Σ ``uptime_hours`` / Σ (``uptime_hours`` +
    ``downtime_hours``) over the CSV's rows, i.e. the chain's uptime hours over the business
    hours covered (each store's business time in its period up to ``as_of``), summed exactly
    (integer hundredths) from the CSV's 2-decimal hours and rounded to 2 decimals (half even);
    ``None`` when no store had business time. Stores without business time (empty
    ``uptime_percent``) add 0 to both sums.
  - below target: the rows whose ``uptime_percent`` is **strictly** below ``target`` (a
    percentage, 0..100); stores without business time are never below it. Sorted worst
    first: ``uptime_percent`` ascending, then ``downtime_hours`` descending, then
    ``store_id``.
* :func:`find_reusable` — the latest Complete period report for the same period and the same
  (resolved) ``as_of`` whose CSV is still stored: the page shows it instead of computing the
  same numbers again.
* :func:`month_candidates` / :func:`store_monthly` — one store's uptime per **local calendar
  month** (its zone, README rules 4-5) for the ``months`` months up to the one holding
  ``as_of``, each reported up to ``as_of`` (the month in progress is partial), by the period
  pipeline restricted to the store (``store_range``: its reads and, when the runs are derived
  from the polls, its run derivation read only that store).
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from gridfs.errors import NoFile

from uptime.platform import limits
from uptime.platform.constants import RUNS_COLLECTION, STATUS_COLLECTION, VALID_STATUSES
from uptime.platform.retention import stored_horizon
from uptime.report import csvout, storage
from uptime.report import period as period_report
from uptime.report.interval import next_store_id
from uptime.report.pipeline import known_timezones, to_utc

AsyncDb = Any
#: Most months one monthly request may ask for (a few years: one aggregation per month).
MAX_MONTHS = 36
#: Zone offsets MongoDB knows lie within UTC−12 .. UTC+14 (a store's local month of an instant
#: is the UTC month of the instant moved by at most these).
_AHEAD, _BEHIND = timedelta(hours=14), timedelta(hours=12)
_CENT = Decimal("0.01")
#: Parsed period CSVs kept in this process (about 3 MB each at 14k stores).
_CACHED_FILES = 4
_cache: OrderedDict[tuple, list] = OrderedDict()


class PeriodRow(NamedTuple):
    """One CSV row: ``store_id`` exact (spreadsheet protection removed); hours and percent in
    **hundredths** (ints: the CSV's 2-decimal values exactly, ``45600`` = 456.00 h),
    ``uptime_percent`` ``None`` without business time; ``period_start``/``period_end`` the
    CSV's ISO text (UTC, ms, ``Z``)."""

    store_id: str
    period_start: str
    period_end: str
    uptime_hours: int
    downtime_hours: int
    uptime_percent: int | None


def _hundredths(text: str) -> int:
    """``"456.07"`` -> ``45607`` exactly: the CSV's values have 2 decimals, and a double holds
    ``x × 100`` within 0.5 of the integer for any value below 10^13."""
    return round(float(text) * 100)


def parse_csv(text: str) -> list[PeriodRow]:
    """The rows of a period report's CSV (header ``period.PERIOD_COLUMNS``).

    Raises:
        ValueError: the header is not the period CSV's, or a row is malformed.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if tuple(header or ()) != period_report.PERIOD_COLUMNS:
        raise ValueError(f"not a period report's CSV (header {header!r})")
    out = []
    for cells in reader:
        if not cells:
            continue
        store, start, end, up, down, pct = cells
        out.append(PeriodRow(csvout.unprotect(store), start, end, _hundredths(up),
                             _hundredths(down), _hundredths(pct) if pct else None))
    return out


def _float(hundredths: int) -> float:
    return hundredths / 100


def row_fields(row: PeriodRow) -> dict[str, Any]:
    """A row as JSON fields (hours, percent as floats with 2 decimals)."""
    return {
        "store_id": row.store_id, "period_start": row.period_start,
        "period_end": row.period_end, "uptime_hours": _float(row.uptime_hours),
        "downtime_hours": _float(row.downtime_hours),
        "uptime_percent": None if row.uptime_percent is None else _float(row.uptime_percent),
    }


def summarize(rows: Iterable[PeriodRow], target: float, limit: int) -> dict[str, Any]:
    """The page's numbers over ``rows`` (see the module doc): ``stores``,
    ``no_business_hours`` (stores with no business time), ``uptime_hours``,
    ``downtime_hours``, ``business_hours`` (sums, hours, 2 decimals), ``chain_uptime_percent``
    (or ``None``), ``target_percent``, ``below_target`` (count), ``below_target_stores`` (the
    worst ``limit`` of them, :func:`row_fields`). Sums are exact (integer hundredths)."""
    rows = list(rows)
    up = sum(r.uptime_hours for r in rows)
    down = sum(r.downtime_hours for r in rows)
    business = up + down
    # uptime_percent (an integer of hundredths) < target  <=>  it is < ceil(target × 100)
    bar = math.ceil(Decimal(str(target)) * 100)
    below = sorted((r for r in rows if r.uptime_percent is not None and r.uptime_percent < bar),
                   key=lambda r: (r.uptime_percent, -r.downtime_hours, r.store_id))
    chain = (Decimal(100 * up) / Decimal(business)).quantize(_CENT, ROUND_HALF_EVEN) \
        if business else None
    return {
        "stores": len(rows),
        "no_business_hours": sum(r.uptime_percent is None for r in rows),
        "uptime_hours": _float(up), "downtime_hours": _float(down),
        "business_hours": _float(business),
        "chain_uptime_percent": None if chain is None else float(chain),
        "target_percent": target,
        "below_target": len(below),
        "below_target_stores": [row_fields(r) for r in below[:limit]],
    }


async def read_rows(db: AsyncDb, file_id: Any) -> list[PeriodRow]:
    """A stored period report's CSV (GridFS, chunk by chunk) as rows. A stored CSV never
    changes, so the last ``_CACHED_FILES`` files read are kept in this process (a page that
    changes its target reads the file once; a removed file is read, and fails, again).

    Raises:
        gridfs.errors.NoFile: the file was removed. ValueError: not a period CSV.
    """
    key = (db.name, file_id)
    cached = _cache.get(key)
    if cached is not None:
        # still stored? (retention removes reports; the page then says so: 410)
        if await db[f"{storage.BUCKET_NAME}.files"].find_one(
                {"_id": file_id}, {"_id": 1}, **limits.find_time()) is None:
            _cache.pop(key, None)
            raise NoFile(f"no file with id {file_id!r}")
        return cached
    data = bytearray()
    async for chunk in storage.iter_csv_chunks(db, file_id):
        data += chunk
    rows = parse_csv(data.decode("utf-8"))
    _cache[key] = rows
    while len(_cache) > _CACHED_FILES:
        _cache.popitem(last=False)
    return rows


async def find_reusable(db: AsyncDb, period: period_report.Period, as_of: datetime
                        ) -> str | None:
    """The id of the newest Complete period report for ``period`` and the instant ``as_of``
    (UTC) whose CSV is still stored, or ``None``."""
    cursor = db[storage.REPORTS_COLLECTION].find(
        {"status": storage.COMPLETE, "kind": "period", "period": period.document(),
         "as_of": to_utc(as_of)},
        {"_id": 1, "file_id": 1}, sort=[("created_at", -1)], limit=5, **limits.find_time(),
    )
    async for doc in cursor:
        files = db[f"{storage.BUCKET_NAME}.files"]
        if doc.get("file_id") is not None and await files.count_documents(
                {"_id": doc["file_id"]}, limit=1, **limits.agg_time()):
            return doc["_id"]
    return None


def month_candidates(as_of: datetime, months: int) -> list[period_report.Period]:
    """Calendar months (oldest first) that hold the ``months`` local months up to the one of
    ``as_of`` in any zone: ``months`` of them, or one more when ``as_of`` lies within a zone
    offset of a UTC month boundary (the store's own month of ``as_of`` is then one of two).
    Months before year 1 and in year 9999 (``parse_period``'s range) are left out."""
    as_of = to_utc(as_of)
    late = (as_of + _AHEAD) if as_of.year < 9999 or as_of.month < 12 else as_of
    early = as_of - _BEHIND if as_of.year > 1 or as_of.month > 1 else as_of
    count = months + ((late.year, late.month) != (early.year, early.month))
    out = []
    year, month = late.year, late.month
    for _ in range(count):
        if year < 1:
            break
        try:
            out.append(period_report.parse_period(f"{year:04d}-{month:02d}"))
        except period_report.PeriodError:
            pass  # year 9999: beyond what a period report takes (parse_period)
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


async def has_history(db: AsyncDb, store_id: str, as_of: datetime, *,
                      max_time_ms: int | None = None) -> bool:
    """Whether ``store_id`` has a valid poll at or before ``as_of`` (UTC), or a run of the
    timeline whose first poll is at or before it (polls before the retention horizon are gone;
    their runs are the record). Two index-bounded lookups (``store_id_1_timestamp_utc_1_status_1``,
    ``store_id_1_first_poll_1``), so a store with no history is answered without preparing
    the period pipeline's inputs.

    Raises:
        pymongo.errors.PyMongoError: a lookup failed or ran out of time.
    """
    opts = {} if max_time_ms is None else {"max_time_ms": max_time_ms}
    poll = await db[STATUS_COLLECTION].find_one(
        {"store_id": store_id, "timestamp_utc": {"$lte": as_of},
         "status": {"$in": list(VALID_STATUSES)}}, {"_id": 1}, **opts)
    if poll is not None:
        return True
    run = await db[RUNS_COLLECTION].find_one(
        {"store_id": store_id, "first_poll": {"$lte": as_of}}, {"_id": 1}, **opts)
    return run is not None


async def store_monthly(db: AsyncDb, store_id: str, as_of: datetime, months: int,
                        *, max_time_ms: int | None = None) -> tuple[list[dict], str]:
    """One store's uptime by local month: ``([{month, period_start, period_end (aware UTC),
    uptime_hours, downtime_hours, business_hours (hours, 2 decimals), uptime_percent (or
    None), partial (the month ends after as_of), timezone_fallback, runs_source}],
    runs_source)``, oldest
    first, at most ``months`` (fewer near year 1); ``[]`` when the store has no valid poll at
    or before ``as_of``. One period-pipeline aggregation per month, run concurrently, each
    with ``max_time_ms``. ``runs_source`` as ``period.prepare`` chooses it, except that a
    month starting before the stored retention horizon reads the timeline when the choice
    was the polls.

    Raises:
        pymongo.errors.PyMongoError: an aggregation failed or ran out of time.
    """
    as_of = to_utc(as_of)
    if not await has_history(db, store_id, as_of, max_time_ms=max_time_ms):
        return [], period_report.TIMELINE  # answered before any preparation (cheap 404)
    mode, _why = await period_report.prepare(db)
    zones = await known_timezones(db)
    store_range = (store_id, next_store_id(store_id))
    # runs derived from the polls cannot answer before the retention horizon (the polls are
    # gone; the runs are the record there): such a month reads the timeline, as the report's
    # default choice does (README "Retention") — exact before the horizon
    horizon = await stored_horizon(db) if mode == period_report.ON_THE_FLY else None

    async def one(period: period_report.Period) -> dict | None:
        source = mode
        if horizon is not None and period.read_bounds()[0] < horizon:
            source = period_report.TIMELINE
        rows = [r async for r in period_report.iter_period_rows(
            db, period, as_of=as_of, mode=source, timezones=zones, store_range=store_range,
            max_time_ms=max_time_ms)]
        if not rows:
            return None
        r = rows[0]
        return {"month": period.label, "period_start": r["period_start"],
                "period_end": r["period_end"], "uptime_hours": r["uptime_hours"],
                "downtime_hours": r["downtime_hours"],
                "business_hours": round(r["uptime_hours"] + r["downtime_hours"], 2),
                "uptime_percent": r["uptime_percent"], "partial": r["period_end"] > as_of,
                "timezone_fallback": r["timezone_fallback"], "runs_source": source}

    found = await asyncio.gather(*(one(p) for p in month_candidates(as_of, months)))
    started = [m for m in found if m is not None and m["period_start"] <= as_of]
    return started[-months:], mode

