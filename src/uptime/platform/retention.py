"""The poll retention horizon (issue 18 item 4): shared by ingestion, the timeline, the
reports and the compaction.

Two instants:

* the **configured horizon** ``now - UPTIME_POLL_RETENTION_DAYS`` (:func:`configured_horizon`):
  what the next compaction may remove up to;
* the **stored horizon** (:func:`stored_horizon`): the horizon of the last compaction, kept in
  ``polls_retention {_id: "store_status", horizon: Date (UTC), compacted_at: Date, removed:
  int, stores: int}``. It is written *before* the compaction deletes anything, so from then on
  every process knows that raw polls before it may be gone and that the runs before it
  (``status_runs``) are the record: the follower ignores deletes before it, a timeline rebuild
  keeps the runs before it, report v1 refuses a week reaching before it.

Per store, the compaction removes only the polls before the first poll of the store's last
run starting at or before the horizon (``uptime.timeline.retention``), so every instant from
the horizon on keeps the polls that decide its status (rule 2).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

#: the collection holding the stored horizon, and its one document's ``_id``
RETENTION_COLLECTION = "polls_retention"
RETENTION_ID = "store_status"
#: the report's longest window (rule: last week) — the least retention is this plus a margin
REPORT_WINDOW = timedelta(days=7)


def configured_horizon(retention_days: float, now: datetime | None = None) -> datetime:
    """``now - retention_days`` (UTC, truncated to ms): polls before it may be removed by the
    next compaction and are refused at ingestion. ``now`` default: the current time."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    moment = now - timedelta(days=retention_days)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _aware(moment: Any) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def stored_horizon(db: Any) -> datetime | None:
    """The horizon of the last compaction (UTC), or None when no compaction ever ran (every
    poll ever written is still there).

    Raises:
        pymongo.errors.PyMongoError: a database error.
    """
    doc = await db[RETENTION_COLLECTION].find_one({"_id": RETENTION_ID}, {"horizon": 1})
    return _aware((doc or {}).get("horizon"))


async def ingest_horizon(db: Any) -> datetime | None:
    """The earliest poll instant ingestion accepts (UTC), or None (no limit): the **stored**
    horizon. Decided (issue 18): not ``now - retention`` — that would refuse every import of
    historical data (the demo's 2023 files, a back-fill) although nothing was removed yet; a
    poll between the stored and the configured horizon is accepted, folded into the runs and
    removed by the next compaction. A poll before the stored horizon is refused: it would land
    among runs that are no longer recomputed (their polls are gone).

    Raises:
        pymongo.errors.PyMongoError: a database error.
    """
    return await stored_horizon(db)


def too_old_reason(instant: datetime, horizon: datetime) -> str | None:
    """The rejection reason of a poll at ``instant`` given the ingestion horizon (both UTC;
    naive = UTC), or None when it is recent enough."""
    instant, horizon = (m if m.tzinfo else m.replace(tzinfo=UTC) for m in (instant, horizon))
    if instant >= horizon:
        return None
    iso = lambda m: m.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")  # noqa: E731
    return (f"timestamp_utc {iso(instant)} is before the retention horizon {iso(horizon)} "
            f"(UPTIME_POLL_RETENTION_DAYS; polls before it were compacted into the status "
            f"timeline and are no longer accepted)")
