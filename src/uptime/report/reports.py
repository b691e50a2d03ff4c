"""Stored reports: create, generate in the background into GridFS as CSV, read back, expire.

Over 400 lines, not split yet (issue 16 names storage / one generation attempt / the scheduler
as its seams): the tests patch this module's attributes (``utcnow``, ``PROGRESS_INTERVAL_S``,
``CHUNK_SIZE_BYTES``, ``RETRY_BACKOFF_S``), so a split must move them with the code in one
step; left for its own commit.

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
     phases: {name: seconds} | null} # where the attempt's time went (uptime.report.phases),
                                     # set when it ends Complete or Failed

Lifecycle (all in :class:`ReportService`, one per process):

* ``trigger`` inserts the document as Running with progress 0 and schedules an asyncio task.
  At most ``UPTIME_MAX_CONCURRENT_REPORTS`` tasks generate at once (a semaphore); the others
  wait and are reported as Running with progress 0.
* Generation resolves ``as_of`` (default: the latest poll), picks the pipeline
  (``uptime.report.inputs_v2.choose_version``: v2 only on a current status timeline, else v1 at
  once — a report never fails or waits on the timeline, issue 14), then streams its rows
  (``uptime.report.pipeline.iter_report_rows``, one aggregation) into a GridFS upload as CSV: the
  header ``REPORT_COLUMNS``, then one line per store, numbers with 2 decimals. On any failure
  the upload is aborted (its chunks deleted) and the report marked Failed with the reason.
* Crash safety: every Running report of this process (waiting or generating) holds a lease
  ``{owner, expires_at}`` renewed every ``lease_seconds / 3``. On start and every
  ``lease_seconds``, the service claims reports whose lease expired (an atomic
  ``find_one_and_update``), removes their partial GridFS file and generates them again from
  scratch. Every write of a generator is fenced by ``(lease.owner, attempt)``, so a process
  that lost its lease stops and cleans up after itself. A report started
  ``MAX_ATTEMPTS`` times is marked Failed instead, so nothing stays Running forever.
  Lease times are the database server's clock (``$$NOW`` in an update pipeline), taken when
  the write is applied: a claim or renewal that waited out an outage never writes a lease that
  has already expired (issue 10, item 6b).
* Every row is also stored in ``report_rows`` (``uptime.report.rows``: queryable for the
  dashboard's summary); rows are deleted with the file (abort, restart, retention).
* Outages and failovers: a generation interrupted by a transient database error (connection
  lost, primary stepped down, no server selectable; ``uptime.platform.tasks.is_transient``) is
  started again in the same process, same attempt, after a short back-off, for as long as its
  lease is ours; so an outage shorter than the lease costs no attempt, a longer one one
  attempt (the lease expires and the report is claimed again).
* Retention: reports created more than ``UPTIME_REPORT_TTL_DAYS`` ago are deleted together
  with their GridFS files (on start and hourly).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from uptime.platform import limits
from uptime.platform import metrics, tasks
from uptime.platform.settings import Settings
from uptime.report import csvout, pipeline, quality, rows as stored_rows
from uptime.report import period as period_report
from uptime.report.phases import PhaseClock
from uptime.report.inputs_v2 import count_report_stores_v2

log = logging.getLogger(__name__)

REPORTS_COLLECTION = "reports"
BUCKET_NAME = "reports"
#: GridFS chunk size of report files (bytes); the download streams one chunk at a time.
CHUNK_SIZE_BYTES = 255 * 1024
#: A report whose generation was started this many times (crashes) is marked Failed.
MAX_ATTEMPTS = 5
#: Retention sweep interval (seconds).
RETENTION_INTERVAL_S = 3600.0
#: Progress is written at most this often (seconds), and once after the last row.
PROGRESS_INTERVAL_S = 0.5
#: CSV text buffered before it is written to the GridFS upload (characters).
WRITE_BUFFER_CHARS = 64 * 1024
#: Back-off before generating again after a transient database error (seconds: first, max).
RETRY_BACKOFF_S = (0.5, 5.0)
#: After this long (seconds) of transient failures in a row the report is marked Failed
#: (if the database takes that write; else its lease expires and it is recovered later).
RETRY_LIMIT_S = 120.0

RUNNING, COMPLETE, FAILED = "Running", "Complete", "Failed"
#: ``secrets.token_urlsafe(24)``: 24 random bytes (192 bits) as 32 URL-safe base64 chars.
REPORT_ID_PATTERN = r"^[A-Za-z0-9_-]{32}$"
_REPORT_ID_RE = re.compile(REPORT_ID_PATTERN)


class LeaseLostError(RuntimeError):
    """Another process took over this report (our lease expired); stop without writing."""


class TransientGenerationError(RuntimeError):
    """Generation was interrupted by a database outage or failover; start it again."""


class NoPollsError(RuntimeError):
    """``store_status`` holds no polls, so there is no default ``as_of``."""


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


def describe_error(exc: BaseException, version: str = pipeline.DEFAULT_VERSION) -> str:
    """A reason for a Failed report that tells the user what to do (never a traceback)."""
    if isinstance(exc, NoPollsError):
        return str(exc)
    if isinstance(exc, ConnectionFailure):
        return (
            f"lost the connection to MongoDB during generation ({exc.__class__.__name__}); "
            "check that the database is reachable, then trigger a new report"
        )
    if isinstance(exc, OperationFailure):
        message = (exc.details or {}).get("errmsg") or str(exc)
        return (
            f"MongoDB rejected the report pipeline {pipeline.pipeline_tag(version)} "
            f"(code {exc.code}): {message}; check the server version (6.0 or newer) and the "
            "input collections, then trigger a new report"
        )
    if isinstance(exc, PyMongoError):
        return f"database error during generation: {exc}; trigger a new report"
    return (
        f"report generation failed: {exc.__class__.__name__}: {exc}; "
        "see the service log and trigger a new report"
    )


async def count_stores(db: AsyncDatabase, as_of: datetime, version: str) -> int:
    """The number of rows the report will have (for progress), counted the version's way."""
    if version == "v1":
        return await pipeline.count_report_stores(db, as_of)
    return await count_report_stores_v2(db, as_of)


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


class _Generation:
    """One attempt at generating one report, fenced by ``(owner, attempt)``."""

    def __init__(
        self, db: AsyncDatabase, report_id: str, owner: str, attempt: int,
        version: str | None = None, period: Any = None,
    ) -> None:
        self.db = db
        #: the requested version (None = default), then the one that runs
        self.requested = version
        self.version = version or pipeline.default_version()
        self.period = period  # uptime.report.period.Period: a period report (issue 18)
        self.mode: str | None = None  # period reports: where the runs come from
        self.reports = db[REPORTS_COLLECTION]
        self.report_id = report_id
        self.owner = owner
        self.attempt = attempt
        self.fence = {"_id": report_id, "status": RUNNING, "lease.owner": owner, "attempt": attempt}
        #: where this attempt's time goes (stored as ``phases``)
        self.clock = PhaseClock()
        #: ``time.perf_counter()`` when the report was triggered in this process (None after
        #: a recovery): gives the ``queue`` and ``total`` phases
        self.triggered_at: float | None = None
        self._started = time.perf_counter()

    async def _update(self, update: dict[str, Any]) -> None:
        result = await self.reports.update_one(self.fence, update)
        if result.matched_count == 0:
            raise LeaseLostError(f"report {self.report_id}: lease lost (attempt {self.attempt})")

    async def run(self, as_of_requested: datetime | None) -> None:
        """Generate the report; on return its document is Complete, Failed, or not ours."""
        upload = None
        clock = self.clock
        self._started = time.perf_counter()
        if self.triggered_at is not None:
            clock.add("queue", self._started - self.triggered_at)
        # What the report ignores is counted beside everything else (future polls: after
        # max(as_of, server time + 5 min); a default as_of is never after the latter).
        ignored = asyncio.create_task(self._record_ignored(as_of_requested))
        # retrieved whatever happens (a failed count must not surface as "never retrieved")
        ignored.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            with clock.phase("as_of"):
                as_of = await pipeline.resolve_as_of(self.db, as_of_requested)
            if as_of is None:
                raise NoPollsError(
                    "store_status holds no polls, so there is nothing to report on; import "
                    "polls with `uptime-monitor import --status FILE` and trigger a new report"
                )
            with clock.phase("choose"):
                if self.period is not None:  # never waits for the timeline (issue 18 item 3)
                    self.mode, why = await period_report.prepare(self.db)
                    source = ("runs read from status_runs" if self.mode == period_report.TIMELINE
                              else "runs derived from the polls")
                    tag, reason = period_report.PIPELINE_TAG, f"{source} ({why})"
                else:
                    # v2 only on a current timeline (and schedules), else v1 at once (exact)
                    self.version, reason = await pipeline.choose_version(
                        self.db, self.requested, as_of)
                    if self.version == "v1":
                        # issue 18: Failed, saying why
                        await pipeline.check_v1_horizon(self.db, as_of)
                    tag = pipeline.pipeline_tag(self.version)
            file_id = ObjectId()
            started: dict[str, Any] = {
                "pipeline": tag, "pipeline_reason": reason, "as_of": as_of, "file_id": file_id,
                "started_at": utcnow(), "progress": 0.0,
            }
            if self.period is not None:
                started["runs_source"] = self.mode  # "timeline" or "on_the_fly"
            await self._update({"$set": started})
            upload = bucket(self.db).open_upload_stream_with_id(
                file_id,
                f"report-{self.report_id}.csv",
                metadata={
                    "report_id": self.report_id,
                    "as_of": as_of,
                    "pipeline": _tag(self.version, self.period),
                    "contentType": "text/csv",
                },
            )
            # The store count (for progress) is listed while MongoDB runs the pipeline.
            total = asyncio.create_task(self._timed("count_stores", self._count(as_of)))
            try:
                rows, fallbacks = await self._stream_rows(upload, as_of, total)
            finally:
                total.cancel()
                total.add_done_callback(lambda t: t.cancelled() or t.exception())
            with clock.phase("gridfs"):
                await upload.close()
            await ignored
            try:
                with clock.phase("finish"):
                    finish_started = time.perf_counter()
                    await self._update(
                        {
                            "$set": {
                                "status": COMPLETE,
                                "progress": 1.0,
                                "rows": rows,
                                "timezone_fallbacks": fallbacks,
                                "finished_at": utcnow(),
                                "lease": None,
                                "phases": self._phases(finish_started),
                            }
                        }
                    )
            except LeaseLostError:
                await delete_file(self.db, file_id)
                await stored_rows.delete_rows(self.db, self.report_id)
                raise
            upload = None  # Complete: nothing below may abort (delete) what it uploaded
            # the Complete write's own time and the total (the CSV is already available)
            with contextlib.suppress(PyMongoError):
                await self.reports.update_one(
                    {"_id": self.report_id, "attempt": self.attempt, "status": COMPLETE},
                    {"$set": {"phases": self._phases(time.perf_counter())}},
                )
            log.info("report %s complete: %d rows as of %s", self.report_id, rows, as_of)
            # after Complete (the CSV is available): the next report's data-quality proof
            # then skips this report's own writes (issue 19)
            await quality.advance_cache(self.db)
        except LeaseLostError:
            log.warning("report %s: lease lost; another process generates it", self.report_id)
            await self._abort(upload)
            ignored.cancel()
        except asyncio.CancelledError:
            # Service shutdown: leave the report Running; its lease is released by the
            # service (or expires), and the next start generates it again.
            ignored.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._abort(upload))
            raise
        except Exception as exc:  # every failure becomes a Failed report
            await self._abort(upload)
            if tasks.is_transient(exc):  # outage or failover: the service starts it again
                ignored.cancel()
                raise TransientGenerationError(tasks.one_line(exc)) from exc
            level = logging.WARNING if isinstance(exc, NoPollsError) else logging.ERROR
            log.log(level, "report %s failed: %s", self.report_id, tasks.one_line(exc))
            log.debug("report %s traceback", self.report_id, exc_info=exc)
            with contextlib.suppress(Exception):  # a Failed report shows what was ignored too
                await ignored
            await self.fail(exc)

    async def _count(self, as_of: datetime) -> int:
        if self.period is not None:
            return await period_report.count_stores(self.db, as_of, self.mode or "")
        return await count_stores(self.db, as_of, self.version)

    async def fail(self, exc: BaseException) -> None:
        """Mark the report Failed with ``describe_error(exc, version)`` unless it is no longer
        ours; if the database refuses the write, log it (the lease then expires and the report
        is recovered)."""
        try:
            await self._update(
                {
                    "$set": {
                        "status": FAILED,
                        "error": describe_error(exc, self.version),
                        "finished_at": utcnow(),
                        "lease": None,
                        "phases": self._phases(time.perf_counter()),
                    }
                }
            )
        except LeaseLostError:
            pass
        except PyMongoError as db_exc:
            log.warning("report %s: could not mark it Failed: %s", self.report_id,
                        tasks.one_line(db_exc))

    def _phases(self, until: float) -> dict[str, float]:
        """The phases so far, with ``total`` = trigger (or generation start) -> ``until``
        (a ``time.perf_counter()`` value)."""
        self.clock.seconds.pop("total", None)
        self.clock.add("total", until - (self.triggered_at or self._started))
        return self.clock.as_dict()

    async def _timed(self, name: str, work: Any) -> Any:
        """Await the coroutine ``work``, its time recorded as phase ``name``."""
        with self.clock.phase(name):
            return await work

    async def _record_ignored(self, as_of: datetime | None) -> None:
        """Store what the report ignores (``quality.ignored_counts``, one aggregation) in
        ``ignored``; a failure to count is logged and leaves it null (the report goes on)."""
        try:
            with self.clock.phase("quality"):
                counts = await quality.ignored_counts(self.db, as_of=as_of)
        except PyMongoError:
            log.warning("report %s: could not count the ignored input", self.report_id)
            return
        await self._update({"$set": {"ignored": counts}})

    async def _abort(self, upload: Any) -> None:
        """Delete everything this attempt uploaded: buffered and written chunks, and the files
        document if ``close`` already wrote it."""
        if upload is None:
            return
        try:
            await upload.abort()
            await delete_file(self.db, upload._id)
            await stored_rows.delete_rows(self.db, self.report_id)
        except Exception as exc:  # the next claim of the report deletes the file by file_id
            log.warning("report %s: could not abort the GridFS upload: %s", self.report_id,
                        tasks.one_line(exc))

    async def _stream_rows(
        self, upload: Any, as_of: datetime, total: asyncio.Task[int]
    ) -> tuple[int, int]:
        """Write the CSV (header, one line per store) into ``upload``; return (rows, stores that
        fell back to America/Chicago). ``total`` counts the report's stores meanwhile; progress
        is rows / total once it is known."""
        clock = self.clock
        perf = time.perf_counter
        text = io.StringIO()
        line_values = csv_line_values
        rows = fallbacks = 0
        row_store: Any = stored_rows.RowWriter(self.db, self.report_id)  # queryable (issue 11)
        with clock.phase("report_rows"):
            await stored_rows.delete_rows(self.db, self.report_id)  # left by an earlier attempt
        with clock.phase("timezones"):
            timezones = await pipeline.known_timezones(self.db)
        last_progress = time.monotonic()
        if self.period is not None:
            text.write(csvout.line(period_report.PERIOD_COLUMNS))
            line_values = period_report.csv_line_values
            row_store = None  # report_rows holds hour/day/week rows only
            report_rows = period_report.iter_period_rows(
                self.db, self.period, as_of=as_of, mode=self.mode, timezones=timezones,
            )
        else:
            text.write(csvout.line(pipeline.REPORT_COLUMNS))
            report_rows = pipeline.iter_report_rows(
                self.db, as_of=as_of, version=self.version, timezones=timezones,
                prepare=False,
            )
        # per-row timing adds up small pieces: time between marks goes to the phase named
        waited = formatted = stored = 0.0
        async with contextlib.AsyncExitStack() as cleanup:
            if row_store is not None:
                cleanup.push_async_callback(row_store.settle)  # no insert outlives a failure
            await cleanup.enter_async_context(contextlib.aclosing(report_rows))  # cursor
            mark = perf()
            async for row in report_rows:
                now = perf()
                waited += now - mark
                text.write(csvout.line(line_values(row)))
                mark = perf()
                formatted += mark - now
                if row_store is not None:
                    await row_store.add(row)
                now = perf()
                stored += now - mark
                rows += 1
                fallbacks += bool(row.get("timezone_fallback"))
                if text.tell() >= WRITE_BUFFER_CHARS:
                    with clock.phase("gridfs"):
                        await upload.write(text.getvalue().encode("utf-8"))
                    text.seek(0)
                    text.truncate()
                if time.monotonic() - last_progress >= PROGRESS_INTERVAL_S:
                    with clock.phase("progress"):
                        await self._progress(rows, total)
                    last_progress = time.monotonic()
                mark = perf()
            clock.add("pipeline", waited + perf() - mark)
            if row_store is not None:
                with clock.phase("report_rows"):
                    await row_store.flush()  # inside: its error fails the report
        clock.add("csv", formatted)
        clock.add("report_rows", stored)
        with clock.phase("progress"):
            await self._progress(rows, total)
        if text.tell():
            with clock.phase("gridfs"):
                await upload.write(text.getvalue().encode("utf-8"))
        return rows, fallbacks

    async def _progress(self, rows: int, total: asyncio.Task[int]) -> None:
        """Record rows written and progress = rows / stores. Rows only come once MongoDB has
        computed the report, and the store count is quicker than that, so from the first row
        on it is awaited (no wait in practice); before, progress stays 0."""
        update: dict[str, Any] = {"rows": rows}
        if rows or total.done():
            try:
                stores = await asyncio.shield(total)
            except Exception:  # only progress depends on the count: report on without it
                log.warning("report %s: could not count its stores", self.report_id)
                await self._update({"$set": update})
                return
            update["total_stores"] = stores
            update["progress"] = round(min(rows / stores, 0.99) if stores else 0.99, 4)
        await self._update({"$set": update})


class ReportService:
    """Creates reports and generates them in background tasks of this process.

    Use ``await start()`` once (indexes, crash recovery, retention and the lease loop) and
    ``await stop()`` at shutdown (cancels generation, releases leases so the next start or
    another instance resumes them at once).

    Args:
        db: the database holding the input collections and ``reports``.
        settings: ``max_concurrent_reports``, ``lease_seconds``, ``report_ttl_days``.
        owner: this process's lease owner name (default: a fresh random one).
    """

    def __init__(self, db: AsyncDatabase, settings: Settings, *, owner: str | None = None) -> None:
        self.db = db
        self.reports = db[REPORTS_COLLECTION]
        self.settings = settings
        self.owner = owner or f"{uuid.uuid4().hex[:12]}"
        self.lease = timedelta(seconds=settings.lease_seconds)
        self._semaphore = asyncio.Semaphore(settings.max_concurrent_reports)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: ``time.perf_counter()`` at trigger, per report waiting or generating here
        self._triggered: dict[str, float] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._recover = True

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self, *, background: bool = True, recover: bool = True) -> None:
        """With ``recover`` (the service) resume reports whose lease expired,
        sweep retention and do both periodically; with ``background`` renew leases.

        The CLI's ``uptime-monitor report`` uses ``recover=False``: it generates its own report only.
        """
        self._recover = recover
        if recover:
            await self.recover()
            await self.sweep_retention()
        if background:
            self._loop_task = tasks.spawn(self._maintenance_loop(), name="reports-lease")

    async def stop(self) -> None:
        """Cancel generation tasks and the lease loop; release this process's leases."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(PyMongoError):
            await self.reports.update_many(
                {"status": RUNNING, "lease.owner": self.owner},
                {"$set": {"lease.expires_at": datetime(1970, 1, 1, tzinfo=UTC)}},
            )

    # -- public API --------------------------------------------------------------------
    async def trigger(
        self, as_of: datetime | None = None, version: str | None = None, period: Any = None
    ) -> str:
        """Create a Running report for ``as_of`` (UTC; ``None`` = latest poll) with pipeline
        ``version`` (``"v1"``/``"v2"``; ``None`` = ``pipeline.DEFAULT_VERSION``); return its id.
        With ``period`` (an ``uptime.report.period.Period``) it is a period report instead
        (issue 18: ``pipelines/period_uptime.v1.json``; ``version`` is then not used).

        Generation starts in the background (or waits for a free slot).

        Raises:
            ValueError: unknown pipeline version (nothing is stored).
        """
        requested = None if version is None else pipeline.check_version(version)
        report_id = new_report_id()
        # An upsert with an update pipeline, so created_at and the lease are the server's
        # $$NOW when the write is applied (an insert can only carry the client's clock).
        fields = {
            "status": RUNNING,
            "as_of_requested": as_utc(as_of),
            "as_of": None,
            "pipeline": _tag(requested or pipeline.default_version(), period),
            "pipeline_requested": requested or "default",
            # the pipeline above is provisional: generation picks it (issue 14)
            "pipeline_reason": "not chosen yet: chosen when generation starts",
            "created_at": "$$NOW",
            "started_at": None,
            "finished_at": None,
            "progress": 0.0,
            "total_stores": None,
            "rows": None,
            "timezone_fallbacks": None,
            "ignored": None,
            "phases": None,
            "file_id": None,
            "error": None,
            "attempt": 1,
            "lease": self._new_lease(),
        }
        if period is not None:
            fields.update({"kind": "period", "period": period.document()})
        await self.reports.update_one(
            {"_id": report_id},
            [{"$set": {k: v if k == "created_at" else _literal(v) for k, v in fields.items()}}],
            upsert=True,
        )
        self._triggered[report_id] = time.perf_counter()
        self._schedule(report_id, 1, as_utc(as_of), requested, period)
        return report_id

    async def wait(self, report_id: str, *, poll_s: float = 0.2) -> dict[str, Any]:
        """Wait until the report is no longer Running; return its document.

        Raises:
            KeyError: no such report.
        """
        while True:
            task = self._tasks.get(report_id)
            if task is not None:
                await asyncio.wait([task])
            doc = await get_report(self.db, report_id)
            if doc is None:
                raise KeyError(report_id)
            if doc["status"] != RUNNING:
                return doc
            await asyncio.sleep(poll_s)

    @property
    def active(self) -> int:
        """Reports of this process waiting or generating."""
        return len(self._tasks)

    # -- background --------------------------------------------------------------------
    def _new_lease(self) -> dict[str, Any]:
        """A lease for this process expiring ``lease_seconds`` after the server's ``$$NOW``
        (an aggregation expression: use it inside an update pipeline)."""
        return {
            "owner": {"$literal": self.owner},
            "expires_at": {"$add": ["$$NOW", int(self.lease.total_seconds() * 1000)]},
        }

    def _schedule(
        self, report_id: str, attempt: int, as_of: datetime | None, version: str | None,
        period: Any = None,
    ) -> None:
        task = tasks.spawn(
            self._run(report_id, attempt, as_of, version, period), name=f"report-{report_id}"
        )
        self._tasks[report_id] = task
        task.add_done_callback(
            lambda t, rid=report_id: (self._tasks.pop(rid), self._triggered.pop(rid, None))
            if self._tasks.get(rid) is t else None
        )

    async def _run(
        self, report_id: str, attempt: int, as_of: datetime | None, version: str | None,
        period: Any = None,
    ) -> None:
        """Generate the report (``version`` None = the default choice; ``period``: a period
        report); after a transient database error generate it again (same attempt, back-off
        ``RETRY_BACKOFF_S``) until it ends Complete, Failed or not ours."""
        tag = _tag(version or pipeline.default_version(), period)
        delay, max_delay = RETRY_BACKOFF_S
        first_failure: float | None = None
        async with self._semaphore:
            while True:
                started = time.monotonic()
                generation = _Generation(self.db, report_id, self.owner, attempt, version,
                                         period)
                generation.triggered_at = self._triggered.get(report_id)
                try:
                    # issue 15: the attempt's aggregations get maxTimeMS from what is left of
                    # UPTIME_REPORT_TIMEOUT_S (server side only: under PyMongo's client-side
                    # timeout as a whole, a v2 report's steps hung)
                    with limits.deadline(self.settings.report_timeout_s):
                        await generation.run(as_of)
                except TransientGenerationError as exc:
                    metrics.report_finished(tag, "retried", time.monotonic() - started)
                    first_failure = first_failure or started
                    if time.monotonic() - started >= self.settings.report_timeout_s:
                        log.error("report %s failed: over UPTIME_REPORT_TIMEOUT_S (%.0f s)",
                                  report_id, self.settings.report_timeout_s)
                        await generation.fail(RuntimeError(
                            f"report generation took longer than UPTIME_REPORT_TIMEOUT_S "
                            f"({self.settings.report_timeout_s:g} s)"))
                        break
                    if time.monotonic() - first_failure > RETRY_LIMIT_S:
                        log.error("report %s failed: database unavailable for %.0f s (%s)",
                                  report_id, RETRY_LIMIT_S, exc)
                        await generation.fail(exc.__cause__ or exc)
                        break
                    log.warning("report %s: database unavailable (%s); generating again in "
                                "%.1f s", report_id, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, max_delay)
                    continue
                if time.monotonic() - started >= self.settings.report_timeout_s:
                    # the attempt hit its limit: its own "Failed" write may have come too late
                    # (inside the limit); written here, outside it (no-op if already Failed)
                    await generation.fail(RuntimeError(
                        f"report generation took longer than UPTIME_REPORT_TIMEOUT_S "
                        f"({self.settings.report_timeout_s:g} s)"))
                break
        with contextlib.suppress(PyMongoError):
            doc = await self.reports.find_one(
                {"_id": report_id}, {"status": 1, "rows": 1, "timezone_fallbacks": 1,
                                     "attempt": 1, "lease": 1, "pipeline": 1}
            )
            tag = (doc or {}).get("pipeline") or tag  # the pipeline that actually ran
            outcome = "lease_lost"
            if doc is not None and doc.get("attempt") == attempt and doc["status"] != RUNNING:
                outcome = doc["status"].lower()
            metrics.report_finished(
                tag, outcome, time.monotonic() - started,
                rows=doc.get("rows") if outcome == "complete" else None,
                fallbacks=doc.get("timezone_fallbacks") if outcome == "complete" else None,
            )

    async def renew_leases(self) -> int:
        """Extend the lease of every report this process waits on or generates; return how many.

        Only reports with a live task here are renewed, so a report whose task vanished
        lets its lease expire and is recovered.
        """
        if not self._tasks:
            return 0
        result = await self.reports.update_many(
            {"_id": {"$in": list(self._tasks)}, "status": RUNNING, "lease.owner": self.owner},
            [{"$set": {"lease.expires_at": self._new_lease()["expires_at"]}}],
        )
        return result.modified_count

    async def recover(self) -> list[str]:
        """Claim Running reports whose lease expired and generate them again from scratch.

        Each claim is one atomic ``find_one_and_update``, so two service instances never
        claim the same report. A report already started ``MAX_ATTEMPTS`` times is marked
        Failed. Returns the ids claimed.
        """
        claimed: list[str] = []
        while True:
            # Expired and new expiry both by the server's clock when the claim is applied
            # (a report without a lease date is not claimed, as before).
            doc = await self.reports.find_one_and_update(
                {
                    "status": RUNNING,
                    "lease.expires_at": {"$type": "date"},
                    "$expr": {"$lt": ["$lease.expires_at", "$$NOW"]},
                },
                [
                    {
                        "$set": {
                            "lease": self._new_lease(),
                            "progress": 0.0,
                            "started_at": None,
                            "attempt": {"$add": [{"$ifNull": ["$attempt", 0]}, 1]},
                        }
                    }
                ],
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return claimed
            await delete_file(self.db, doc.get("file_id"))
            await stored_rows.delete_rows(self.db, doc["_id"])
            if doc["attempt"] > MAX_ATTEMPTS:
                await self.reports.update_one(
                    {"_id": doc["_id"], "lease.owner": self.owner, "attempt": doc["attempt"]},
                    {
                        "$set": {
                            "status": FAILED,
                            "error": (
                                f"generation was interrupted {MAX_ATTEMPTS} times (the service "
                                "crashed or was stopped each time); check the service log and "
                                "memory, then trigger a new report"
                            ),
                            "finished_at": utcnow(),
                            "file_id": None,
                            "lease": None,
                        }
                    },
                )
                continue
            await self.reports.update_one(
                {"_id": doc["_id"], "attempt": doc["attempt"]}, {"$set": {"file_id": None}}
            )
            log.warning("report %s: lease expired; generating again (attempt %d)",
                        doc["_id"], doc["attempt"])
            self._schedule(
                doc["_id"], doc["attempt"], doc.get("as_of_requested"),
                _requested_version(doc), _period_of(doc),
            )
            claimed.append(doc["_id"])

    async def sweep_retention(self) -> int:
        """Delete reports older than ``UPTIME_REPORT_TTL_DAYS`` with their files."""
        return await delete_expired(self.db, self.settings.report_ttl_days)

    async def _maintenance_loop(self) -> None:
        renew_every = max(0.2, self.settings.lease_seconds / 3)
        next_recover = time.monotonic() + self.settings.lease_seconds
        next_retention = time.monotonic() + RETENTION_INTERVAL_S
        while True:
            await asyncio.sleep(renew_every)
            try:
                await self.renew_leases()
                if not self._recover:
                    continue
                if time.monotonic() >= next_recover:
                    await self.recover()
                    next_recover = time.monotonic() + self.settings.lease_seconds
                if time.monotonic() >= next_retention:
                    await self.sweep_retention()
                    next_retention = time.monotonic() + RETENTION_INTERVAL_S
            except Exception as exc:  # one line per failed round; the next round retries
                log.warning("report lease/recovery loop: %s; retrying", tasks.one_line(exc))


def _requested_version(doc: Mapping[str, Any]) -> str | None:
    """The version a stored report asked for (None = the default choice); reports from
    before issue 14 have no ``pipeline_requested``: their ``pipeline`` was the request."""
    requested = doc.get("pipeline_requested")
    if requested == "default":
        return None
    if requested in pipeline.SOURCES:
        return requested
    return pipeline.version_of_tag(doc.get("pipeline"))


def _tag(version: str, period: Any) -> str:
    """The stored ``pipeline`` of a report: ``store_uptime@<version>``, or the period
    pipeline's tag for a period report."""
    if period is not None:
        return period_report.PIPELINE_TAG
    return pipeline.pipeline_tag(version)


def _period_of(doc: Mapping[str, Any]) -> Any:
    """The ``Period`` of a stored period report (``None`` for the hour/day/week report)."""
    if doc.get("kind") != "period" or not isinstance(doc.get("period"), Mapping):
        return None
    return period_report.period_of_document(doc["period"])


def _literal(value: Any) -> Any:
    """``value`` as a constant inside an update pipeline (a string starting with ``$`` would
    be read as a field path); expression documents (``$$NOW`` sums) are left as they are."""
    if isinstance(value, dict) and any(k.startswith("$") for k in value):
        return value
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    return {"$literal": value}
