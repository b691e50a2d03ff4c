"""A report's rows, queryable: collection ``report_rows`` next to the CSV (issue 11, item 1).

While a report streams its CSV into GridFS, its rows are also stored here, ``BLOCK_ROWS`` rows
per document (a *block*; rows in the CSV's order, so blocks hold disjoint ``store_id``
ranges)::

    {_id: "<report_id>#<block number, 6 digits>", report_id, first: store_id, last: store_id,
     n: rows in the block,
     rows: [{store_id, uptime_last_hour, downtime_last_hour (minutes), uptime_last_day,
             downtime_last_day, uptime_last_week, downtime_last_week (hours; the CSV's
             numbers, 2 decimals), timezone_fallback: bool}, ...]}

Why blocks (issue 19): one document per row made every report write 14,092 documents at
scale 1 (0.2-0.3 s) and put as many entries into the oplog, which the next report's proofs
(``uptime.ingest.schedules.schedules_current``, ``uptime.report.quality``) and the runs
follower then read through (0.15-0.3 s each, measured); 15 block documents cost neither.
Rows stored before that, one document per row (``{_id: "<report_id>|<store_id>", report_id,
store_id, <the columns>, timezone_fallback}``), are still read: every reader unwinds a
block's ``rows`` and takes any other document as one row.

Rows go with their report: deleted when an attempt is aborted or restarted and by retention
(``uptime.report.generation``). Index ``report_id_1_downtime_last_week_-1_store_id_1``
(migration ``20261130030000-report-rows``): its ``report_id`` prefix serves every read.

``summary`` runs ``pipelines/report_summary.v2.json`` over one report's rows (store count,
fallbacks, histogram of last-week uptime %, the stores with most downtime); ``find_rows``
searches them by store-id prefix; ``row`` reads one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from pymongo.errors import DuplicateKeyError

from uptime.platform import limits, pipelines
from uptime.report.pipeline import REPORT_COLUMNS

COLLECTION = "report_rows"
#: rows per stored document (block): ~150 kB at 18-digit store ids, 15 documents at scale 1;
#: at most ~0.4 MB with 200-character ids (the longest allowed), far below 16 MB
BLOCK_ROWS = 1_000
SUMMARY = "report_summary.v2"
SUMMARY_TAG = "report_summary@v2"
#: Largest ``worst`` list the summary returns.
MAX_WORST = 1_000
#: block inserts one report has in flight at once (issue 19: one at a time, the 15 inserts
#: of a scale-1 report took 0.06-0.07 s after its rows were all there; each insert is
#: ~150 kB, so at most ~0.6 MB is held unsent)
IN_FLIGHT = 4


class RowWriter:
    """Buffers a report's rows and stores them in ``report_rows``, ``BLOCK_ROWS`` per document.

    A full block is inserted in the background while the caller reads the next rows (at most
    :data:`IN_FLIGHT` inserts at once: issue 19, the rows are written while the report's
    cursor is read, not after); :meth:`flush` waits for everything, and :meth:`settle` (call it
    in a ``finally``) waits for the inserts still in flight without raising, so nothing is
    written after the caller gave up. Block ids follow the row order, so a restarted attempt
    racing a stale one (same as_of, same rows) writes the same ids: a block already stored is
    left as it is.
    """

    def __init__(self, db: Any, report_id: str) -> None:
        self.coll = db[COLLECTION]
        self.report_id = report_id
        self.buffer: list[Mapping[str, Any]] = []
        self.blocks = 0
        self._pending: list[asyncio.Task[None]] = []

    async def add(self, row: Mapping[str, Any]) -> None:
        """Queue one pipeline row (``REPORT_COLUMNS`` + ``timezone_fallback``; stored as given,
        so the caller must not change it afterwards)."""
        self.buffer.append(row)
        if len(self.buffer) >= BLOCK_ROWS:
            if len(self._pending) >= IN_FLIGHT:
                await self._wait_oldest()
            self._pending.append(asyncio.create_task(self._insert(self._block())))

    async def flush(self) -> None:
        """Store the queued rows and wait for every insert.

        Raises:
            pymongo.errors.PyMongoError: an insert failed (other than a block already stored).
        """
        if self.buffer:
            self._pending.append(asyncio.create_task(self._insert(self._block())))
        while self._pending:
            await self._wait_oldest()

    async def settle(self) -> None:
        """Wait for the inserts still in flight; their errors (if any) are dropped."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _block(self) -> dict[str, Any]:
        rows, self.buffer = self.buffer, []
        doc = {"_id": f"{self.report_id}#{self.blocks:06d}", "report_id": self.report_id,
               "first": rows[0]["store_id"], "last": rows[-1]["store_id"], "n": len(rows),
               "rows": [_stored(r) for r in rows]}
        self.blocks += 1
        return doc

    async def _wait_oldest(self) -> None:
        """Wait for the oldest insert in flight; its error is raised (the rest stay queued
        for :meth:`settle`)."""
        await self._pending.pop(0)

    async def _insert(self, doc: dict[str, Any]) -> None:
        try:
            await self.coll.insert_one(doc)
        except DuplicateKeyError:
            pass


def _stored(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """The row as stored: the pipeline's row as it is when it has exactly the stored fields."""
    if len(row) == len(_FIELDS) and all(f in row for f in _FIELDS) and type(
            row["timezone_fallback"]) is bool:
        return row
    out = {c: row[c] for c in REPORT_COLUMNS}
    out["timezone_fallback"] = bool(row.get("timezone_fallback"))
    return out


_FIELDS = (*REPORT_COLUMNS, "timezone_fallback")
#: every reader's first stages after selecting a report's documents: one document per row,
#: from blocks (their ``rows``) and from documents stored one per row (as they are)
_AS_ROWS: list[dict[str, Any]] = [
    {"$unwind": {"path": "$rows", "preserveNullAndEmptyArrays": True}},
    {"$replaceWith": {"$ifNull": ["$rows", "$$ROOT"]}},
]


async def delete_rows(db: Any, report_id: str) -> int:
    """Delete a report's rows; return how many."""
    return (await db[COLLECTION].delete_many({"report_id": report_id})).deleted_count


async def summary(db: Any, report_id: str, worst: int = 20) -> dict[str, Any] | None:
    """Aggregate one report's rows (``pipelines/report_summary.v2.json``).

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
    stages = pipelines.load(SUMMARY)
    cursor = await db[COLLECTION].aggregate(
        stages, let={"report_id": report_id, "worst": worst}, comment=SUMMARY_TAG,
        **limits.agg_time(),
    )
    async with cursor:
        docs = await cursor.to_list()
    return docs[0] if docs else None


_PCT_LAST_WEEK = {  # as report_summary.v2's `pct`: uptime % of the week's business hours
    "$let": {
        "vars": {"b": {"$add": ["$uptime_last_week", "$downtime_last_week"]}},
        "in": {"$cond": [{"$gt": ["$$b", 0]}, {"$round": [
            {"$multiply": [100, {"$divide": ["$uptime_last_week", "$$b"]}]}, 2]}, None]},
    }
}


async def find_rows(db: Any, report_id: str, prefix: str, limit: int = 100) -> list[dict[str, Any]]:
    """A report's rows whose ``store_id`` starts with ``prefix`` (exact characters, case
    sensitive), most downtime last week first, at most ``limit``; each with
    ``uptime_pct_last_week``. Only the blocks whose id range can hold the prefix are read."""
    in_range: dict[str, Any] = {"last": {"$gte": prefix}}
    end = _prefix_end(prefix)
    if end is not None:
        in_range["first"] = {"$lt": end}
    bound = {"report_id": report_id, "$or": [{"rows": {"$exists": False}}, in_range]}
    cursor = await db[COLLECTION].aggregate([
        {"$match": bound}, *_AS_ROWS,
        {"$match": {"store_id": {"$regex": "^" + re.escape(prefix)}}},
        {"$sort": {"downtime_last_week": -1, "store_id": 1}}, {"$limit": limit},
        {"$project": {"_id": 0, **{c: 1 for c in REPORT_COLUMNS}, "timezone_fallback": 1,
                      "uptime_pct_last_week": _PCT_LAST_WEEK}},
    ], **limits.agg_time())
    return await cursor.to_list()


def _prefix_end(prefix: str) -> str | None:
    """An exclusive upper bound of the strings that start with ``prefix`` (code-point order,
    which is MongoDB's binary UTF-8 order): the prefix with its last character raised by one;
    ``None`` if there is none (every character U+10FFFF)."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1 if last + 1 != 0xD800 else 0xE000  # no surrogates in BSON strings
            return "".join(chars) + chr(nxt)
    return None


async def row(db: Any, report_id: str, store_id: str) -> dict[str, Any] | None:
    """One store's row of a report (without ``_id``/``report_id``), or ``None``."""
    doc = await db[COLLECTION].find_one(
        {"report_id": report_id, "$or": [
            {"_id": f"{report_id}|{store_id}"},
            {"first": {"$lte": store_id}, "last": {"$gte": store_id}}]},
        {"_id": 0, "report_id": 0, "first": 0, "last": 0, "n": 0})
    if doc is None or "rows" not in doc:
        return doc
    return next((dict(r) for r in doc["rows"] if r.get("store_id") == store_id), None)
