"""The DuckDB alternative for ``uptime-monitor bench`` (issue 8, item 6): the report computed straight
from the three CSV files, without MongoDB — what a data engineer would pick instead.

Same rules and the same CSV as the pipelines (checked byte for byte by the bench), in the
shape of the polars alternative (``uptime.tools.alt_report``, whose business-hours helpers it
reuses):

1. DuckDB reads ``store_status.csv`` (``read_csv``, all columns as text) and keeps the rows the
   importer would store: trimmed ``store_id``, status ``active``/``inactive`` (trimmed, lower
   case), ``timestamp_utc`` in the generator's form ``YYYY-MM-DD HH:MM:SS[.ffffff] UTC``
   truncated to milliseconds (BSON Date precision); polls after ``as_of`` are dropped and
   polls of one store at one ms count once, inactive if any is (rule 1).
2. DuckDB finds each poll's neighbours (``lag``/``lead`` over the store's polls) and keeps the
   inactive stretches ``[prev + t, t + next)`` in half-milliseconds (2 x epoch ms; rule 2).
3. Python computes each store's business intervals in UTC ms from the hours and timezone
   files (``alt_report._business_intervals``; rules 3-5), written to a temporary CSV.
4. DuckDB sums business time and downtime (stretches ∩ business intervals) per window;
   Python rounds half-to-even on the double (as MongoDB's ``$round``) and writes the CSV.

Only the files' data rows that ``uptime-monitor import`` accepts unchanged are handled (the bench's
generated files): hours rows ``HH:MM:SS`` with a ``dayOfWeek`` 0..6, one zone per store.
"""

from __future__ import annotations

import csv
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from uptime.tools.alt_report import (
    DAY_MS,
    DEFAULT_ZONE,
    HOUR_MS,
    WEEK_MS,
    _business_intervals,
    _hours_rows,
    _store_zones,
    _to_ms,
)


@dataclass(frozen=True)
class DuckTimings:
    """Seconds: DuckDB's poll work (load + stretches), Python's business hours, DuckDB's sums."""

    polls_s: float
    hours_s: float
    sums_s: float


def _csv_dicts(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            yield {k.strip(): (v or "").strip() for k, v in row.items() if k}


def _hours_docs(path: Path) -> list[dict[str, Any]]:
    docs = []
    for row in _csv_dicts(path):
        day = row.get("dayOfWeek", row.get("day", ""))
        docs.append({"store_id": row["store_id"], "dayOfWeek": int(day) if day.isdigit() else None,
                     "start_time_local": row["start_time_local"], "end_time_local": row["end_time_local"]})
    return docs


def duckdb_report(
    status: Path, hours: Path, timezones: Path, as_of: datetime
) -> tuple[list[dict[str, Any]], DuckTimings]:
    """The report rows (``REPORT_COLUMNS`` + ``timezone_fallback``, sorted by store_id) for
    ``as_of`` from the three CSV files, and where the time went."""
    import duckdb  # optional (extra "bench"): the DuckDB alternative

    a = _to_ms(as_of)
    w = a - WEEK_MS
    starts = {"hour": a - HOUR_MS, "day": a - DAY_MS, "week": w}
    con = duckdb.connect()
    t0 = time.perf_counter()
    con.execute(
        f"""
        CREATE TEMP TABLE p AS
        WITH raw AS (
          SELECT trim(store_id) AS s, lower(trim(status)) AS st,
                 epoch_ms(try_cast(left(trim(timestamp_utc), length(trim(timestamp_utc)) - 4) AS TIMESTAMP)) AS t
          FROM read_csv(?, header = true, all_varchar = true)
          WHERE trim(timestamp_utc) LIKE '% UTC'
        )
        SELECT s, t, bool_or(st = 'inactive') AS i
        FROM raw
        WHERE st IN ('active', 'inactive') AND s <> '' AND t IS NOT NULL AND t <= {a}
        GROUP BY s, t
        """,
        [str(status)],
    )
    con.execute(
        f"""
        CREATE TEMP TABLE down AS
        SELECT s, greatest(coalesce(pt + t, {2 * w}), {2 * w}) AS s2, coalesce(t + nt, {2 * a}) AS e2
        FROM (SELECT s, t, i, lag(t) OVER w AS pt, lead(t) OVER w AS nt
              FROM p WINDOW w AS (PARTITION BY s ORDER BY t))
        WHERE i AND coalesce(t + nt, {2 * a}) > {2 * w}
        """
    )
    stores = [r[0] for r in con.execute("SELECT DISTINCT s FROM p ORDER BY s").fetchall()]
    t1 = time.perf_counter()
    hours_by_store = _hours_rows(_hours_docs(hours))
    zones = _store_zones(
        {"store_id": r["store_id"], "timezone_str": r["timezone_str"]} for r in _csv_dicts(timezones)
    )
    with tempfile.NamedTemporaryFile("w", suffix=".csv", newline="", delete=False) as f:
        iv_path = Path(f.name)
        out = csv.writer(f)
        out.writerow(("s", "a", "b"))
        for sid in stores:
            rows = hours_by_store.get(sid)
            zone = zones.get(sid, (DEFAULT_ZONE, False))[0]
            for x, y in _business_intervals(rows, zone, w, a) if rows else [(w, a)]:
                out.writerow((sid, x, y))
    t2 = time.perf_counter()
    try:
        con.execute(
            "CREATE TEMP TABLE iv AS SELECT * FROM read_csv(?, header = true, "
            "columns = {'s': 'VARCHAR', 'a': 'BIGINT', 'b': 'BIGINT'})",
            [str(iv_path)],
        )
    finally:
        iv_path.unlink()
    business = ", ".join(f"sum(greatest(0, b - greatest(a, {x}))) AS b_{n}" for n, x in starts.items())
    downtime = ", ".join(
        f"sum(greatest(0, least(e2, 2 * b) - greatest(s2, 2 * a, {2 * x}))) AS d2_{n}"
        for n, x in starts.items()
    )
    table = con.execute(
        f"""
        SELECT st.s, bs.b_hour, bs.b_day, bs.b_week,
               coalesce(ds.d2_hour, 0), coalesce(ds.d2_day, 0), coalesce(ds.d2_week, 0)
        FROM (SELECT DISTINCT s FROM p) st
        LEFT JOIN (SELECT s, {business} FROM iv GROUP BY s) bs USING (s)
        LEFT JOIN (SELECT down.s, {downtime} FROM down JOIN iv USING (s) GROUP BY down.s) ds USING (s)
        ORDER BY st.s
        """
    ).fetchall()
    con.close()
    rows_out = []
    for sid, *sums in table:
        b = dict(zip(("hour", "day", "week"), (int(x or 0) for x in sums[:3])))
        d2 = dict(zip(("hour", "day", "week"), (int(x) for x in sums[3:])))
        row: dict[str, Any] = {"store_id": sid}
        for name, unit in (("hour", 60_000), ("day", HOUR_MS), ("week", HOUR_MS)):
            row[f"uptime_last_{name}"] = round((2 * b[name] - d2[name]) / 2 / unit, 2)
            row[f"downtime_last_{name}"] = round(d2[name] / 2 / unit, 2)
        row["timezone_fallback"] = zones.get(sid, (DEFAULT_ZONE, False))[1]
        rows_out.append(row)
    t3 = time.perf_counter()
    return rows_out, DuckTimings(polls_s=t1 - t0, hours_s=t2 - t1, sums_s=t3 - t2)
