"""Hostile store ids and a poll builder shared by the request-bounds tests and the browser
test of the dashboard's URL encoding (issue 15, items 4-5)."""

from __future__ import annotations

from datetime import datetime

from uptime.ingest.validate import MAX_STORE_ID_LENGTH

#: ids with / ? # % spaces, non-Latin scripts and the longest id allowed
HOSTILE_IDS = ["a/b", "../x", "q?x=1", "h#frag", "p%2Fq", "100%", "with space", " lead",
               "магазин-7", "店舗/東京", "x" * MAX_STORE_ID_LENGTH, "a/b/uptime"]


def _poll(store: str, t: datetime, status: str) -> dict:
    return {"store_id": store, "timestamp_utc": t.isoformat().replace("+00:00", "Z"),
            "status": status}
