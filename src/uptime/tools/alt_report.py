"""The alternative the benchmark compares against: the report computed in Python with polars.

This is "what a user would write instead" of the aggregation pipeline (issue 5, T_alt): fetch
the polls, hours and timezones into Python with PyMongo, then compute the same report with
polars. It follows the rules of issue 3 (the v1 report contract) exactly and produces the
same CSV as ``pipelines/store_uptime.v1.json`` — the benchmark checks that byte for byte.
It is a benchmark baseline and a cross-check, not a product code path.

How it computes (times are integer milliseconds since the epoch, UTC; durations that involve
a midpoint between two polls are kept exact in half-milliseconds, like the pipeline's
``$divide`` by 2, so every sum is exact):

1. Polls (rule 1): ``store_status`` documents with a string ``store_id`` without control
   characters, a Date ``timestamp_utc`` from year 1 up to ``as_of`` and status
   ``active``/``inactive``; polls of one store at one instant are merged, inactive if any is.
2. Status (rule 2): poll *i* of a store holds from the midpoint with its predecessor
   (inclusive; unbounded for the first poll) to the midpoint with its successor (exclusive;
   ``as_of`` for the last poll). Only the inactive stretches are kept: downtime is their
   overlap with business hours, uptime = business time − downtime (as in the pipeline).
3. Business hours (rules 3–4): for each local date from the day before the week window's
   start date through ``as_of``'s local date, each row of that weekday opens at its start
   and closes at its end (next date if end <= start; midnight if the end is ``23:59:59``).
   Local → UTC takes, of the two readings a wall-clock time can have, the later instant —
   which is what MongoDB's ``$dateFromParts`` does both for a time skipped by a DST jump
   (read with the offset before the jump) and for one that occurs twice. The intervals are
   clipped to the week window and unioned (touching ones merged). No hours rows → 24×7.
4. Timezone (rule 5): the smallest valid zone name of the store's rows; none valid or no
   rows → ``America/Chicago``. "Valid" means ``zoneinfo`` knows it.
5. Sums per window (rule 6), then minutes (last hour) or hours (day, week) rounded to 2
   decimals half-to-even on the double's exact value — Python's ``round``, which matches
   MongoDB's ``$round`` on doubles (polars' ``round`` does not, at ties like 5254.355).

Memory: the polls are fetched in batches into polars frames (no Python object per poll
kept), so the process holds about 30 bytes per poll plus the store id strings.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
from bson.codec_options import CodecOptions, DatetimeConversion
from pymongo import MongoClient

from uptime.platform.constants import STATUS_COLLECTION
from uptime.report import csvout
from uptime.report.pipeline import EARLIEST_POLL, REPORT_COLUMNS

DEFAULT_ZONE = "America/Chicago"
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
FETCH_BATCH = 200_000
_EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class AltTimings:
    """Where the alternative's time went (seconds): fetching into Python, computing."""

    fetch_s: float
    compute_s: float


def _to_ms(value: datetime) -> int:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return (value.replace(tzinfo=None) - _EPOCH) // _MS


@cache
def _zone(name: str) -> ZoneInfo | None:
    if not name or name != name.strip():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@lru_cache(maxsize=200_000)
def _local_to_utc_ms(zone_name: str, ordinal: int, seconds: int) -> int:
    """UTC ms of local (date ordinal, seconds after local midnight) in ``zone_name``.

    Of the two readings (fold 0/1) the later instant wins: a skipped time is read with the
    offset before the jump, a repeated time as its second occurrence (rule 4, MongoDB).
    """
    zone = _zone(zone_name)
    naive = datetime.fromordinal(ordinal) + timedelta(seconds=seconds)
    offsets = (
        naive.replace(tzinfo=zone, fold=0).utcoffset(),
        naive.replace(tzinfo=zone, fold=1).utcoffset(),
    )
    return (naive - _EPOCH - min(offsets)) // _MS  # type: ignore[type-var]


def _local_date(zone_name: str, ms: int) -> date:
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return instant.astimezone(_zone(zone_name)).date()


def _parse_clock(value: Any) -> tuple[int, int, int] | None:
    """``HH:MM:SS`` (anything after ignored) -> (h, m, s), or None if not a valid clock."""
    if not isinstance(value, str):
        return None
    try:
        h, m, s = int(value[0:2]), int(value[3:5]), int(value[6:8])
    except ValueError:
        return None
    if not (0 <= h <= 23 and 0 <= m <= 59 and 0 <= s <= 59):
        return None
    return h, m, s


def _hours_rows(docs: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[int, int, int, int]]]:
    """store_id -> [(weekday, start_s, end_s, end_day_offset)] of the valid hours rows."""
    out: dict[str, list[tuple[int, int, int, int]]] = defaultdict(list)
    for doc in docs:
        d = doc.get("dayOfWeek")
        if isinstance(d, bool) or not isinstance(d, (int, float)) or d not in range(7):
            continue
        start, end = _parse_clock(doc.get("start_time_local")), _parse_clock(doc.get("end_time_local"))
        if start is None or end is None:
            continue
        start_s = start[0] * 3600 + start[1] * 60 + start[2]
        end_s = end[0] * 3600 + end[1] * 60 + end[2]
        if doc["end_time_local"][0:8] == "23:59:59":  # midnight at the end of the date
            end_s, offset = 0, 1
        else:
            offset = 1 if end_s <= start_s else 0  # overnight, or 24 h when equal
        out[doc["store_id"]].append((int(d), start_s, end_s, offset))
    return out


def _store_zones(docs: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, bool]]:
    """store_id -> (zone used, fell back) for the stores with timezone rows."""
    names: dict[str, list[Any]] = defaultdict(list)
    for doc in docs:
        names[doc["store_id"]].append(doc.get("timezone_str"))
    out = {}
    for store_id, zs in names.items():
        valid = [z for z in zs if isinstance(z, str) and _zone(z) is not None]
        out[store_id] = (min(valid), False) if valid else (DEFAULT_ZONE, True)
    return out


def _business_intervals(
    rows: list[tuple[int, int, int, int]], zone: str, w: int, a: int
) -> list[tuple[int, int]]:
    """Open intervals (UTC ms) of one store, clipped to [w, a], sorted and unioned."""
    first = _local_date(zone, w).toordinal() - 1
    last = _local_date(zone, a).toordinal()
    by_day: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for d, start_s, end_s, offset in rows:
        by_day[d].append((start_s, end_s, offset))
    raw = []
    for ordinal in range(first, last + 1):
        weekday = (ordinal + 6) % 7  # date.fromordinal(1) is a Monday
        for start_s, end_s, offset in by_day.get(weekday, ()):
            s = max(_local_to_utc_ms(zone, ordinal, start_s), w)
            e = min(_local_to_utc_ms(zone, ordinal + offset, end_s), a)
            if s < e:
                raw.append((s, e))
    raw.sort()
    merged: list[tuple[int, int]] = []
    for s, e in raw:
        if merged and merged[-1][1] >= s:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def fetch_polls(db: Any, as_of: datetime, batch: int = FETCH_BATCH) -> pl.DataFrame:
    """The valid polls at or before ``as_of`` as a frame (store_id str, t i64 ms, inactive bool).

    ``db`` is a synchronous ``pymongo.database.Database``.
    """
    coll = db.get_collection(
        STATUS_COLLECTION,
        codec_options=CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_MS),
    )
    cursor = coll.find(
        {
            "store_id": {"$type": "string"},
            "timestamp_utc": {"$type": "date", "$gte": EARLIEST_POLL, "$lte": as_of},
            "status": {"$in": ["active", "inactive"]},
        },
        {"_id": 0, "store_id": 1, "timestamp_utc": 1, "status": 1},
        batch_size=10_000,
    )
    frames: list[pl.DataFrame] = []
    ids: list[str] = []
    ts: list[int] = []
    inactive: list[bool] = []

    def flush() -> None:
        frames.append(
            pl.DataFrame(
                {"store_id": ids, "t": ts, "inactive": inactive},
                schema={"store_id": pl.String, "t": pl.Int64, "inactive": pl.Boolean},
            )
        )
        ids.clear(), ts.clear(), inactive.clear()

    for doc in cursor:
        ids.append(doc["store_id"])
        ts.append(int(doc["timestamp_utc"]))
        inactive.append(doc["status"] == "inactive")
        if len(ids) >= batch:
            flush()
    flush()
    polls = pl.concat(frames, rechunk=True)
    return polls.filter(~polls["store_id"].str.contains(r"[\x00-\x1f\x7f]"))  # issue 9 item 8


def compute_report(
    polls: pl.DataFrame,
    hours_docs: Iterable[Mapping[str, Any]],
    zone_docs: Iterable[Mapping[str, Any]],
    as_of: datetime,
) -> list[dict[str, Any]]:
    """The report rows (``REPORT_COLUMNS`` + ``timezone_fallback``), sorted by store_id.

    Args:
        polls: frame with ``store_id`` (str), ``t`` (int ms UTC), ``inactive`` (bool): the
            valid polls at or before ``as_of`` (duplicates allowed).
        hours_docs: ``store_hours`` documents; zone_docs: ``store_timezones`` documents.
        as_of: the report instant (aware, or naive = UTC).

    Returns:
        One dict per store with a poll: minutes for ``*_last_hour``, hours for the day and
        week, rounded to 2 decimals.
    """
    a = _to_ms(as_of)
    w = a - WEEK_MS
    windows = {"hour": a - HOUR_MS, "day": a - DAY_MS, "week": w}

    # rule 1: one poll per (store, instant), inactive if any
    p = (
        polls.group_by(["store_id", "t"])
        .agg(pl.col("inactive").any())
        .sort(["store_id", "t"])
    )
    same_prev = pl.col("store_id") == pl.col("store_id").shift(1)
    same_next = pl.col("store_id") == pl.col("store_id").shift(-1)
    # rule 2, in half-milliseconds: [t_prev + t, t + t_next) = [2*mid_prev, 2*mid_next)
    p = p.with_columns(
        s2=pl.when(same_prev).then(pl.col("t").shift(1) + pl.col("t")).otherwise(2 * w),
        e2=pl.when(same_next).then(pl.col("t") + pl.col("t").shift(-1)).otherwise(2 * a),
    )
    stores = p.get_column("store_id").unique(maintain_order=True).to_list()
    down = p.filter(pl.col("inactive") & (pl.col("e2") > 2 * w)).select(
        "store_id", pl.max_horizontal("s2", pl.lit(2 * w)).alias("s2"), "e2"
    )

    # rules 3-5: business intervals of every polled store, in Python (small: per store-day)
    hours = _hours_rows(hours_docs)
    zones = _store_zones(zone_docs)
    iv_store: list[str] = []
    iv_s: list[int] = []
    iv_e: list[int] = []
    for store_id in stores:
        zone, _ = zones.get(store_id, (DEFAULT_ZONE, False))
        rows = hours.get(store_id)
        intervals = _business_intervals(rows, zone, w, a) if rows else [(w, a)]
        for s, e in intervals:
            iv_store.append(store_id)
            iv_s.append(s)
            iv_e.append(e)
    iv = pl.DataFrame(
        {"store_id": iv_store, "s": iv_s, "e": iv_e},
        schema={"store_id": pl.String, "s": pl.Int64, "e": pl.Int64},
    )
    business = iv.group_by("store_id").agg(
        [
            (pl.col("e") - pl.max_horizontal("s", pl.lit(start))).clip(lower_bound=0).sum().alias(f"b_{name}")
            for name, start in windows.items()
        ]
    )
    # rule 6: downtime = inactive stretches ∩ business hours ∩ window (half-ms, exact)
    pairs = down.join(iv, on="store_id", how="inner")
    downtime = pairs.group_by("store_id").agg(
        [
            (
                pl.min_horizontal("e2", 2 * pl.col("e"))
                - pl.max_horizontal("s2", 2 * pl.col("s"), pl.lit(2 * start))
            )
            .clip(lower_bound=0)
            .sum()
            .alias(f"d2_{name}")
            for name, start in windows.items()
        ]
    )
    table = (
        pl.DataFrame({"store_id": stores}, schema={"store_id": pl.String})
        .join(business, on="store_id", how="left")
        .join(downtime, on="store_id", how="left")
        .fill_null(0)
        .sort("store_id")
    )
    out = []
    for r in table.iter_rows(named=True):
        row: dict[str, Any] = {"store_id": r["store_id"]}
        for name, unit in (("hour", 60_000), ("day", HOUR_MS), ("week", HOUR_MS)):
            down_ms = r[f"d2_{name}"] / 2
            up_ms = (2 * r[f"b_{name}"] - r[f"d2_{name}"]) / 2
            row[f"uptime_last_{name}"] = round(up_ms / unit, 2)
            row[f"downtime_last_{name}"] = round(down_ms / unit, 2)
        row["timezone_fallback"] = zones.get(r["store_id"], (DEFAULT_ZONE, False))[1]
        out.append(row)
    return out


def alt_report(uri: str, database: str, as_of: datetime) -> tuple[list[dict[str, Any]], AltTimings]:
    """Fetch everything with PyMongo (sync) and compute the report in Python/polars.

    Returns:
        (rows as from ``compute_report``, timings of the fetch and compute phases).
    """

    client: MongoClient = MongoClient(uri, tz_aware=True)
    try:
        db = client[database]
        started = time.perf_counter()
        polls = fetch_polls(db, as_of)
        hours = list(db.store_hours.find({}, {"_id": 0}))
        zones = list(db.store_timezones.find({}, {"_id": 0}))
        fetched = time.perf_counter()
        rows = compute_report(polls, hours, zones, as_of)
        done = time.perf_counter()
    finally:
        client.close()
    return rows, AltTimings(fetch_s=fetched - started, compute_s=done - fetched)


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """The report CSV text: header, then one line per row, numbers with 2 decimals.

    The same format as the stored reports (``uptime.report.storage.csv_line_values``).
    """
    text = io.StringIO()
    text.write(csvout.line(REPORT_COLUMNS))
    for row in rows:
        text.write(csvout.line(
            [csvout.protect(str(row["store_id"])), *(f"{row[c]:.2f}" for c in REPORT_COLUMNS[1:])]
        ))
    return text.getvalue()
