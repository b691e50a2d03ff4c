"""A stored report: its document in ``reports``, the cells of its CSV, its GridFS file, read
back, expire. Generating one is ``uptime.report.generation``; scheduling, leases and recovery
are ``uptime.report.service``.

A report is one document in the ``reports`` collection plus, once complete, one GridFS file
in the bucket ``reports`` (collections ``reports.files`` / ``reports.chunks``)::

    {_id: report_id (str, 32 URL-safe chars = 192 random bits),
     status: "Running" | "Complete" | "Failed",
     as_of_requested: Date | null,   # what the caller asked for (UTC)
     as_of: Date | null,             # the instant the report is for (UTC); null until resolved
     pipeline: "store_uptime@v2",    # the pipeline version that produced it (v1 or v2;
                                     # provisional = the requested one until generation picks)
     pipeline_requested: "default" | "v1" | "v2",
     pipeline_reason: str | null,    # why that pipeline ran (e.g. "timeline standalone: ...")
                                     # "period_uptime@v1" for a period report)
     kind: "period" (absent = the hour/day/week report),   # issue 18
     period: {kind: "month"|"quarter"|"year"|"week"|"range", label, from, to} (period only),
     runs_source: "timeline" | "on_the_fly"  (period only: where its runs came from),
     created_at, started_at, finished_at: Date | null (UTC),
     progress: float 0.0-1.0,        # rows written / stores in the report
     total_stores, rows, timezone_fallbacks: int | null,
     ignored: [{collection, reason, count}] | null,  # input documents ignored (issue 9 item 5)
     file_id: ObjectId | null,       # the GridFS file (set before the upload starts)
     error: str | null,              # Failed only: a reason the user can act on
     attempt: int,                   # how many times generation was started (crash recovery)
     lease: {owner: str, expires_at: Date} | null,
     phases: {name: seconds} | null, # where the attempt's time went (uptime.report.phases):
                                     # so far while Running (with the progress), all at the end
     store_ranges: int | null}       # store ranges the pipeline ran in (v3; set at Complete)
"""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gridfs import AsyncGridFSBucket
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from uptime.report import csvout, pipeline, rows as stored_rows
from uptime.report import period as period_report

REPORTS_COLLECTION = "reports"
BUCKET_NAME = "reports"
#: GridFS chunk size of report files (bytes); the download streams one chunk at a time.
CHUNK_SIZE_BYTES = 255 * 1024

RUNNING, COMPLETE, FAILED = "Running", "Complete", "Failed"
#: ``secrets.token_urlsafe(24)``: 24 random bytes (192 bits) as 32 URL-safe base64 chars.
REPORT_ID_PATTERN = r"^[A-Za-z0-9_-]{32}$"
_REPORT_ID_RE = re.compile(REPORT_ID_PATTERN)


def new_report_id() -> str:
    """Return a fresh random report id (192 bits, 32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def is_report_id(value: str) -> bool:
    """True if ``value`` has the shape of a report id (does not check that it exists)."""
    return bool(_REPORT_ID_RE.fullmatch(value))


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to milliseconds (BSON Date precision)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime | None) -> datetime | None:
    """Return ``value`` as aware UTC; a naive datetime is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_value(value: Any) -> str:
    """Format one CSV cell: numbers with 2 decimals, ``None`` empty, anything else ``str``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"{value:.2f}"
    return str(value)


def csv_line_values(row: Mapping[str, Any]) -> list[str]:
    """The cells of one report row in ``REPORT_COLUMNS`` order (``store_id`` protected from
    spreadsheet formulas by ``csvout.protect``; exact id = ``csvout.unprotect(cell)``)."""
    cells = [csvout.protect(str(row["store_id"]))]
    cells.extend(format_value(row[column]) for column in pipeline.REPORT_COLUMNS[1:])
    return cells


_NUMBER_COLUMNS = pipeline.REPORT_COLUMNS[1:]
#: a store id written as it is: no formula start (``csvout.FORMULA_STARTS``) and no character
#: that makes ``csvout.quote`` quote it
_PLAIN_ID = re.compile(r"[0-9A-Za-z_.][^,\"\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]*\Z")
#: the usual line: a plain id and six floats, two decimals each (``f"{v:.2f}"``)
_USUAL_LINE = "%s" + ",%.2f" * len(_NUMBER_COLUMNS) + "\n"


def csv_line(row: Mapping[str, Any]) -> str:
    """One report CSV line (``\\n``-terminated): exactly ``csvout.line(csv_line_values(row))``,
    with a shortcut for the usual row — a plain store id and six floats (a number cell is
    never protected nor quoted): one ``%`` format, about a third of the time per row
    (issue 19)."""
    store = row["store_id"]
    values = tuple([row[column] for column in _NUMBER_COLUMNS])
    if type(store) is str and _PLAIN_ID.match(store) and all(type(v) is float for v in values):
        return _USUAL_LINE % (store, *values)
    return csvout.line(csv_line_values(row))


def bucket(db: AsyncDatabase) -> AsyncGridFSBucket:
    """The GridFS bucket holding report CSVs."""
    return AsyncGridFSBucket(db, bucket_name=BUCKET_NAME, chunk_size_bytes=CHUNK_SIZE_BYTES)


async def delete_file(db: AsyncDatabase, file_id: Any) -> None:
    """Delete a GridFS report file and all its chunks, complete or partial (no error if absent)."""
    if file_id is None:
        return
    await db[f"{BUCKET_NAME}.files"].delete_one({"_id": file_id})
    await db[f"{BUCKET_NAME}.chunks"].delete_many({"files_id": file_id})


async def get_report(db: AsyncDatabase, report_id: str) -> dict[str, Any] | None:
    """The report document, or ``None`` if there is none with that id."""
    return await db[REPORTS_COLLECTION].find_one({"_id": report_id})


async def list_reports(db: AsyncDatabase, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent reports, newest first (documents without the lease)."""
    cursor = (
        db[REPORTS_COLLECTION]
        .find({}, {"lease": 0})
        .sort([("created_at", DESCENDING), ("_id", ASCENDING)])
        .limit(limit)
    )
    return await cursor.to_list()


async def iter_csv_chunks(db: AsyncDatabase, file_id: Any) -> AsyncIterator[bytes]:
    """Yield a stored report's CSV bytes one GridFS chunk at a time (never the whole file).

    Raises:
        gridfs.errors.NoFile: the file does not exist (raised on the first iteration).
    """
    stream = await bucket(db).open_download_stream(file_id)
    try:
        while True:
            chunk = await stream.readchunk()
            if not chunk:
                break
            yield chunk
    finally:
        await stream.close()


async def write_csv(db: AsyncDatabase, file_id: Any, out: io.BufferedIOBase | Any) -> int:
    """Copy a stored report's CSV into the binary file ``out``; return the bytes written."""
    written = 0
    async for chunk in iter_csv_chunks(db, file_id):
        out.write(chunk)
        written += len(chunk)
    return written


async def delete_expired(db: AsyncDatabase, ttl_days: float, *, now: datetime | None = None) -> int:
    """Delete reports created more than ``ttl_days`` ago, and their GridFS files.

    Returns the number of reports deleted. A report still Running with a live lease is kept
    until it finishes (it is deleted by a later sweep).
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=ttl_days)
    query = {
        "created_at": {"$lt": cutoff},
        # A Running report is kept while its lease lives (the server's clock, as leases are).
        "$or": [
            {"status": {"$ne": RUNNING}},
            {
                "lease.expires_at": {"$type": "date"},
                "$expr": {"$lt": ["$lease.expires_at", "$$NOW"]},
            },
        ],
    }
    deleted = 0
    async for doc in db[REPORTS_COLLECTION].find(query, {"file_id": 1}):
        await delete_file(db, doc.get("file_id"))
        await stored_rows.delete_rows(db, doc["_id"])
        result = await db[REPORTS_COLLECTION].delete_one({"_id": doc["_id"]})
        deleted += result.deleted_count
    return deleted


def requested_version(doc: Mapping[str, Any]) -> str | None:
    """The version a stored report asked for (None = the default choice); reports from
    before issue 14 have no ``pipeline_requested``: their ``pipeline`` was the request."""
    requested = doc.get("pipeline_requested")
    if requested == "default":
        return None
    if requested in pipeline.SOURCES:
        return requested
    return pipeline.version_of_tag(doc.get("pipeline"))


def period_of(doc: Mapping[str, Any]) -> Any:
    """The ``uptime.report.period.Period`` of a stored period report (``None`` for the hour/day/week report)."""
    if doc.get("kind") != "period" or not isinstance(doc.get("period"), Mapping):
        return None
    return period_report.period_of_document(doc["period"])
