"""Helpers for the report-service tests: input rows and the CSV the pipeline's rows give."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

T0 = datetime(2024, 3, 12, 15, 0, tzinfo=UTC)


async def insert_stores(db, n_stores: int, *, polls_per_store: int = 3, as_of: datetime = T0,
                        prefix: str = "s") -> None:
    """Insert ``n_stores`` 24x7 stores in New York, polled hourly before ``as_of``,
    alternating active/inactive by store so rows differ."""
    polls = []
    for i in range(n_stores):
        sid = f"{prefix}{i:06d}"
        for k in range(polls_per_store):
            polls.append({
                "store_id": sid,
                "timestamp_utc": as_of - timedelta(hours=k),
                "status": "inactive" if (i + k) % 3 == 0 else "active",
            })
    for start in range(0, len(polls), 50_000):
        await db.store_status.insert_many(polls[start:start + 50_000], ordered=False)
    await db.store_timezones.insert_many(
        [{"store_id": f"{prefix}{i:06d}", "timezone_str": "America/New_York"}
         for i in range(n_stores)]
    )


async def expected_csv(db, as_of: datetime) -> str:
    """The CSV built straight from the pipeline's rows (header, 2-decimal numbers)."""
    from uptime.report import pipeline

    out = io.StringIO()
    out.write(",".join(pipeline.REPORT_COLUMNS) + "\n")
    rows: AsyncIterator[dict] = pipeline.iter_report_rows(db, as_of=as_of)
    async for row in rows:  # the test data's ids need neither quoting nor a formula prefix
        out.write(",".join([row["store_id"], *(f"{row[c]:.2f}" for c in pipeline.REPORT_COLUMNS[1:])]) + "\n")
    return out.getvalue()
