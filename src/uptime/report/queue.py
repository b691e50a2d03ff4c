"""Admission to the report queue: a bound on queued work, and one report per identical request.

Spec: issue 9 item 10 ("no limit on queued work").

* **Same request, same report.** A trigger for the same requested ``as_of`` (``None`` = the
  latest poll) and the same pipeline version as a report that is still Running (queued or
  generating) gets that report's id instead of a new report. Two triggers that arrive at the
  same instant may still create two reports (the check and the insert are not one atomic
  step); both are correct, the bound below still holds up to that race.
* **Bound.** When ``UPTIME_MAX_QUEUED_REPORTS`` reports are Running (in the whole database,
  every service process counted), a new trigger is refused with :class:`QueueFullError`; the
  API answers 429 with ``Retry-After``.

Both look-ups use the ``reports_status_lease`` index (``status`` first).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from uptime.report.period import PIPELINE_TAG
from uptime.report.storage import REPORTS_COLLECTION, RUNNING, as_utc

#: Seconds a refused client is told to wait (``Retry-After``): about one report at 14k stores.
RETRY_AFTER_S = 30


class QueueFullError(RuntimeError):
    """Too many reports are Running; try again after ``retry_after`` seconds."""

    def __init__(self, running: int, limit: int) -> None:
        super().__init__(
            f"{running} reports are already queued or generating (limit "
            f"UPTIME_MAX_QUEUED_REPORTS={limit}); try again in {RETRY_AFTER_S} s"
        )
        self.retry_after = RETRY_AFTER_S


async def admit(
    db: Any, as_of: datetime | None, *, limit: int, version: str | None = None,
    period: Any = None,
) -> str | None:
    """Decide whether a trigger for ``as_of`` (UTC; ``None`` = latest poll) may queue a report.
    ``period`` (an ``uptime.report.period.Period``, issue 18): a period report, the same
    only for the same period.

    Returns:
        the id of a Running report for the same ``as_of`` and requested pipeline (``version``;
        None = the default choice) (reuse it), or
        ``None`` (create a new report).

    Raises:
        QueueFullError: ``limit`` or more reports are Running.
    """
    reports = db[REPORTS_COLLECTION]
    if period is not None:
        same_request = {"pipeline": PIPELINE_TAG, "period": period.document()}
    else:
        same_request = {"pipeline_requested": version or "default", "kind": {"$ne": "period"}}
    same = await reports.find_one(
        {"status": RUNNING, "as_of_requested": as_utc(as_of), **same_request},
        {"_id": 1},
        sort=[("created_at", 1)],
    )
    if same is not None:
        return same["_id"]
    running = await reports.count_documents({"status": RUNNING}, limit=limit)
    if running >= limit:
        raise QueueFullError(running, limit)
    return None
