"""The report scheduler of one process: trigger, at most ``UPTIME_MAX_CONCURRENT_REPORTS``
generations at once, leases, crash recovery, retries after outages, retention.

Lifecycle (all in :class:`ReportService`, one per process; the document it keeps is described
in ``uptime.report.storage``, one generation attempt in ``uptime.report.generation``):

* ``trigger`` inserts the document as Running with progress 0 and schedules an asyncio task.
  At most ``UPTIME_MAX_CONCURRENT_REPORTS`` tasks generate at once (a semaphore); the others
  wait and are reported as Running with progress 0.
* Generation (one attempt: ``uptime.report.generation.Generation``) resolves ``as_of``
  (default: the latest poll), picks the pipeline (``uptime.report.inputs_v2.choose_version``:
  v2 only on a current status timeline, else v1 at once — a report never fails or waits on the
  timeline, issue 14), then streams its rows (``uptime.report.pipeline.iter_report_rows``, one
  aggregation) into a GridFS upload as CSV. On any failure the upload is aborted (its chunks
  deleted) and the report marked Failed with the reason.
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
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from uptime.platform import limits, metrics, tasks
from uptime.platform.settings import Settings
from uptime.report import pipeline, storage, rows as stored_rows
from uptime.report.generation import Generation, TransientGenerationError, report_tag
from uptime.report.storage import FAILED, REPORTS_COLLECTION, RUNNING

log = logging.getLogger(__name__)

#: A report whose generation was started this many times (crashes) is marked Failed.
MAX_ATTEMPTS = 5
#: Retention sweep interval (seconds).
RETENTION_INTERVAL_S = 3600.0
#: Back-off before generating again after a transient database error (seconds: first, max).
RETRY_BACKOFF_S = (0.5, 5.0)
#: After this long (seconds) of transient failures in a row the report is marked Failed
#: (if the database takes that write; else its lease expires and it is recovered later).
RETRY_LIMIT_S = 120.0


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
        report_id = storage.new_report_id()
        # An upsert with an update pipeline, so created_at and the lease are the server's
        # $$NOW when the write is applied (an insert can only carry the client's clock).
        fields = {
            "status": RUNNING,
            "as_of_requested": storage.as_utc(as_of),
            "as_of": None,
            "pipeline": report_tag(requested or pipeline.default_version(), period),
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
        self._schedule(report_id, 1, storage.as_utc(as_of), requested, period)
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
            doc = await storage.get_report(self.db, report_id)
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
        tag = report_tag(version or pipeline.default_version(), period)
        delay, max_delay = RETRY_BACKOFF_S
        first_failure: float | None = None
        async with self._semaphore:
            while True:
                started = time.monotonic()
                generation = Generation(self.db, report_id, self.owner, attempt, version,
                                         period)
                generation.triggered_at = self._triggered.get(report_id)
                generation.parallel = self.settings.report_parallel
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
            await storage.delete_file(self.db, doc.get("file_id"))
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
                            "finished_at": storage.utcnow(),
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
                storage.requested_version(doc), storage.period_of(doc),
            )
            claimed.append(doc["_id"])

    async def sweep_retention(self) -> int:
        """Delete reports older than ``UPTIME_REPORT_TTL_DAYS`` with their files."""
        return await storage.delete_expired(self.db, self.settings.report_ttl_days)

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


def _literal(value: Any) -> Any:
    """``value`` as a constant inside an update pipeline (a string starting with ``$`` would
    be read as a field path); expression documents (``$$NOW`` sums) are left as they are."""
    if isinstance(value, dict) and any(k.startswith("$") for k in value):
        return value
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    return {"$literal": value}
