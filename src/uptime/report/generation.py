"""One attempt at generating one report: resolve ``as_of``, pick the pipeline, stream its rows
into a GridFS upload as CSV and into ``report_rows``, end Complete or Failed.

Just over 400 lines: one attempt's steps and their fencing kept together, so what a lost lease
or a failure undoes reads in one place.

The attempt (:class:`Generation`, started by ``uptime.report.service.ReportService``):

* resolves ``as_of`` (default: the latest poll), picks the pipeline
  (``uptime.report.inputs_v2.choose_version``: v2 only on a current status timeline, else v1 at
  once — a report never fails or waits on the timeline, issue 14; a period report (issue 18)
  reads ``status_runs`` or derives its runs from the polls, ``uptime.report.period.prepare``);
* streams its rows (``uptime.report.pipeline.iter_report_rows``, one aggregation) into a
  GridFS upload as CSV: the header ``REPORT_COLUMNS`` (a period report's:
  ``uptime.report.period.PERIOD_COLUMNS``), then one line per store, numbers with 2 decimals
  (``uptime.report.storage.csv_line``), buffered ``WRITE_BUFFER_CHARS``
  characters at a time; progress (rows / stores) at most every ``PROGRESS_INTERVAL_S``
  seconds; every row of an hour/day/week report also into ``report_rows``
  (``uptime.report.rows``; a period report's rows are in its CSV only);
* fences every write by ``(lease.owner, attempt)``: a write that matches nothing raises
  :class:`LeaseLostError` and the attempt stops and deletes what it uploaded;
* on any failure aborts the upload (its chunks deleted) and marks the report Failed with a
  reason the user can act on (:func:`describe_error`), except a transient database error
  (``uptime.platform.tasks.is_transient``), raised as :class:`TransientGenerationError` for the
  service to start the attempt again.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from pymongo import WriteConcern
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from uptime.platform import tasks
from uptime.report import csvout, pipeline, quality, storage, rows as stored_rows
from uptime.report import period as period_report
from uptime.report.inputs_v2 import count_report_stores_v2
from uptime.report.phases import PhaseClock
from uptime.report.storage import COMPLETE, FAILED, REPORTS_COLLECTION, RUNNING

log = logging.getLogger(__name__)

#: Progress is written at most this often (seconds), and once after the last row.
PROGRESS_INTERVAL_S = 0.5
#: CSV text buffered before it is written to the GridFS upload (characters).
WRITE_BUFFER_CHARS = 64 * 1024
#: Write concern of an attempt's intermediate writes: the CSV's GridFS chunks and files
#: document and its ``report_rows`` (issue 19: at majority each waited for a journal
#: flush, 0.2-0.9 s a report on the shared machine). They need no majority of their own: the
#: Complete write that follows them is majority (the client's default), and a majority-committed
#: write implies every write before it in the oplog; nobody reads them before Complete (the
#: CSV and rows are served for Complete reports only, reads are majority). A failover that
#: rolls them back rolls back everything after them too: the report is not Complete and is
#: generated again (its leftovers deleted by file_id / report_id). Progress stays majority:
#: it is read (majority) while the report runs.
INTERMEDIATE_WRITES = WriteConcern(w=1)


class LeaseLostError(RuntimeError):
    """Another process took over this report (our lease expired); stop without writing."""


class TransientGenerationError(RuntimeError):
    """Generation was interrupted by a database outage or failover; start it again."""


class NoPollsError(RuntimeError):
    """``store_status`` holds no polls, so there is no default ``as_of``."""


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


def report_tag(version: str, period: Any) -> str:
    """The stored ``pipeline`` of a report: ``store_uptime@<version>``, or the period
    pipeline's tag for a period report."""
    if period is not None:
        return period_report.PIPELINE_TAG
    return pipeline.pipeline_tag(version)


def _period_line(row: Any) -> str:
    """One CSV line of a period report's row."""
    return csvout.line(period_report.csv_line_values(row))


class Generation:
    """One attempt at generating one report, fenced by ``(owner, attempt)``."""

    def __init__(
        self, db: AsyncDatabase, report_id: str, owner: str, attempt: int,
        version: str | None = None, period: Any = None,
    ) -> None:
        self.db = db
        #: the requested version (None = default), then the one that runs
        self.requested = version
        self.version = version or pipeline.default_version()
        #: store ranges aggregated at once (``UPTIME_REPORT_PARALLEL``; the service sets it)
        self.parallel = 1
        #: how many store ranges the report pipeline ran in (stored as ``store_ranges``)
        self.store_ranges: int | None = None
        self.period = period  # uptime.report.period.Period: a period report (issue 18)
        self.mode: str | None = None  # period reports: where the runs come from
        self.reports = db[REPORTS_COLLECTION]
        #: the attempt's intermediate writes (CSV chunks, report_rows): ``w: 1``,
        #: see :data:`INTERMEDIATE_WRITES`
        self.intermediate = db.with_options(write_concern=INTERMEDIATE_WRITES)
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
        # the zone names the server knows (the pipeline's let) are listed while as_of and the
        # pipeline are chosen (issue 19: they do not depend on either)
        zones = asyncio.create_task(pipeline.known_timezones(self.db))
        zones.add_done_callback(lambda t: t.cancelled() or t.exception())
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
                    self.mode, why = await period_report.prepare(self.db, self.period)
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
                "started_at": storage.utcnow(), "progress": 0.0,
                "phases": clock.as_dict(),  # so far: visible while Running
            }
            if self.period is not None:
                started["runs_source"] = self.mode  # "timeline" or "on_the_fly"
            await self._update({"$set": started})
            upload = storage.bucket(self.intermediate).open_upload_stream_with_id(
                file_id,
                f"report-{self.report_id}.csv",
                metadata={
                    "report_id": self.report_id,
                    "as_of": as_of,
                    "pipeline": report_tag(self.version, self.period),
                    "contentType": "text/csv",
                },
            )
            # The store count (for progress) is listed while MongoDB runs the pipeline.
            total = asyncio.create_task(self._timed("count_stores", self._count(as_of)))
            try:
                rows, fallbacks = await self._stream_rows(upload, as_of, total, zones)
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
                                "store_ranges": self.store_ranges,
                                "finished_at": storage.utcnow(),
                                "lease": None,
                                "phases": self._phases(finish_started),
                            }
                        }
                    )
            except LeaseLostError:
                await storage.delete_file(self.db, file_id)
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
        finally:
            zones.cancel()  # no-op once done; a report that failed before needing the zones

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
                        "finished_at": storage.utcnow(),
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
            await storage.delete_file(self.db, upload._id)
            await stored_rows.delete_rows(self.db, self.report_id)
        except Exception as exc:  # the next claim of the report deletes the file by file_id
            log.warning("report %s: could not abort the GridFS upload: %s", self.report_id,
                        tasks.one_line(exc))

    async def _stream_rows(
        self, upload: Any, as_of: datetime, total: asyncio.Task[int],
        zones: asyncio.Task[list[str]],
    ) -> tuple[int, int]:
        """Write the CSV (header, one line per store) into ``upload``; return (rows, stores that
        fell back to America/Chicago). ``total`` counts the report's stores meanwhile; progress
        is rows / total once it is known; ``zones`` lists the zone names the server knows
        (``pipeline.known_timezones``, started earlier)."""
        clock = self.clock
        perf = time.perf_counter
        text = io.StringIO()
        line_of = storage.csv_line
        rows = fallbacks = 0
        row_store: Any = stored_rows.RowWriter(self.intermediate, self.report_id)  # issue 11
        with clock.phase("report_rows"):
            await stored_rows.delete_rows(self.db, self.report_id)  # left by an earlier attempt
        with clock.phase("timezones"):
            timezones = await zones
        last_progress = time.monotonic()
        if self.period is not None:
            text.write(csvout.line(period_report.PERIOD_COLUMNS))
            line_of = _period_line
            row_store = None  # report_rows holds hour/day/week rows only
            report_rows = period_report.iter_period_rows(
                self.db, self.period, as_of=as_of, mode=self.mode, timezones=timezones,
            )
        else:
            text.write(csvout.line(pipeline.REPORT_COLUMNS))
            report_rows = pipeline.iter_report_rows(
                self.db, as_of=as_of, version=self.version, timezones=timezones,
                prepare=False, parallel=self.parallel,
                on_ranges=lambda n: setattr(self, "store_ranges", n),
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
                text.write(line_of(row))
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
        update: dict[str, Any] = {"rows": rows, "phases": self.clock.as_dict()}
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

