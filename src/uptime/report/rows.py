"""A report's rows, queryable: collection ``report_rows`` next to the CSV (issue 11, item 1).

While a report streams its CSV into GridFS, every row is also inserted here (batches of
``BATCH_ROWS``, unordered)::

    {_id: "<report_id>|<store_id>", report_id, store_id,
     uptime_last_hour, downtime_last_hour (minutes), uptime_last_day, downtime_last_day,
     uptime_last_week, downtime_last_week (hours; the CSV's numbers, 2 decimals),
     timezone_fallback: bool}

Rows go with their report: deleted when an attempt is aborted or restarted and by retention
(``uptime.report.generation``). Index ``report_id_1_downtime_last_week_-1`` (migration
``20261130030000-report-rows``) serves the per-report queries.

``summary`` runs ``pipelines/report_summary.v1.json`` over one report's rows (store count,
fallbacks, histogram of last-week uptime %, the stores with most downtime); ``row`` reads one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from pymongo.errors import BulkWriteError

from uptime.platform import limits, pipelines
from uptime.report.pipeline import REPORT_COLUMNS

COLLECTION = "report_rows"
BATCH_ROWS = 2_000
SUMMARY_TAG = "report_summary@v1"
#: Largest ``worst`` list the summary returns.
MAX_WORST = 1_000
_DUPLICATE_KEY = 11000


class RowWriter:
    """Buffers a report's rows and inserts them into ``report_rows`` in batches.

    A full batch is inserted in the background while the caller reads the next rows (at most
    one batch in flight: issue 19, the rows are written while the report's cursor is read, not
    after); :meth:`flush` waits for everything, and :meth:`settle` (call it in a ``finally``)
    waits for a batch still in flight without raising, so nothing is written after the caller
    gave up. Re-inserting a row that is already stored (a restarted attempt racing a stale one:
    same as_of, same data, same numbers) is ignored.
    """

    def __init__(self, db: Any, report_id: str) -> None:
        self.coll = db[COLLECTION]
        self.report_id = report_id
        self.buffer: list[dict[str, Any]] = []
        self._pending: asyncio.Task[None] | None = None

    async def add(self, row: Mapping[str, Any]) -> None:
        """Queue one pipeline row (``REPORT_COLUMNS`` + ``timezone_fallback``)."""
        doc = {"_id": f"{self.report_id}|{row['store_id']}", "report_id": self.report_id}
        doc.update((c, row[c]) for c in REPORT_COLUMNS)
        doc["timezone_fallback"] = bool(row.get("timezone_fallback"))
        self.buffer.append(doc)
        if len(self.buffer) >= BATCH_ROWS:
            await self._wait_pending()
            batch, self.buffer = self.buffer, []
            self._pending = asyncio.create_task(self._insert(batch))

    async def flush(self) -> None:
        """Insert the queued rows and wait for every batch to be stored.

        Raises:
            pymongo.errors.PyMongoError: an insert failed (other than a duplicate row).
        """
        await self._wait_pending()
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        await self._insert(batch)

    async def settle(self) -> None:
        """Wait for a batch still in flight; its error (if any) is dropped."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)

    async def _wait_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def _insert(self, batch: list[dict[str, Any]]) -> None:
        try:
            await self.coll.insert_many(batch, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise


async def delete_rows(db: Any, report_id: str) -> int:
    """Delete a report's rows; return how many."""
    return (await db[COLLECTION].delete_many({"report_id": report_id})).deleted_count


async def summary(db: Any, report_id: str, worst: int = 20) -> dict[str, Any] | None:
    """Aggregate one report's rows (``pipelines/report_summary.v1.json``).

    Returns ``None`` when the report has no rows, else ``{stores, timezone_fallbacks,
    stores_with_downtime, uptime_last_week, downtime_last_week (hours, summed over stores),
    uptime_pct_last_week (chain-wide %), no_business_hours (stores with no business time in the
    week), histogram: [{from, to, stores}] (uptime % last week = uptime / (uptime + downtime)
    of the CSV's week hours; 10-point buckets [from, to) and a last bucket from = to = 100 for
    stores with no downtime), worst: [row + uptime_pct_last_week] (most downtime last week
    first, then store_id; at most ``worst``)}``.

    Raises:
        ValueError: ``worst`` outside 1..``MAX_WORST``.
    """
    if not 1 <= worst <= MAX_WORST:
        raise ValueError(f"worst must be 1..{MAX_WORST}, got {worst}")
    stages = pipelines.load("report_summary.v1")
    cursor = await db[COLLECTION].aggregate(
        stages, let={"report_id": report_id, "worst": worst}, comment=SUMMARY_TAG,
        **limits.agg_time(),
    )
    async with cursor:
        docs = await cursor.to_list()
    return docs[0] if docs else None


_PCT_LAST_WEEK = {  # as report_summary.v1's `pct`: uptime % of the week's business hours
    "$let": {
        "vars": {"b": {"$add": ["$uptime_last_week", "$downtime_last_week"]}},
        "in": {"$cond": [{"$gt": ["$$b", 0]}, {"$round": [
            {"$multiply": [100, {"$divide": ["$uptime_last_week", "$$b"]}]}, 2]}, None]},
    }
}


async def find_rows(db: Any, report_id: str, prefix: str, limit: int = 100) -> list[dict[str, Any]]:
    """A report's rows whose ``store_id`` starts with ``prefix`` (exact characters, case
    sensitive), most downtime last week first, at most ``limit``; each with
    ``uptime_pct_last_week``."""
    cursor = db[COLLECTION].find(
        {"report_id": report_id, "store_id": {"$regex": "^" + re.escape(prefix)}},
        {"_id": 0, **{c: 1 for c in REPORT_COLUMNS}, "timezone_fallback": 1,
         "uptime_pct_last_week": _PCT_LAST_WEEK},
        sort=[("downtime_last_week", -1), ("store_id", 1)], limit=limit, **limits.find_time(),
    )
    return await cursor.to_list()


async def row(db: Any, report_id: str, store_id: str) -> dict[str, Any] | None:
    """One store's row of a report (without ``_id``/``report_id``), or ``None``."""
    return await db[COLLECTION].find_one(
        {"_id": f"{report_id}|{store_id}"}, {"_id": 0, "report_id": 0}
    )
