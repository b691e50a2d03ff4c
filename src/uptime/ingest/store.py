"""Inserting documents with deterministic ``_id``s: a repeated document counts as already present.

Shared by the CSV importer and ``POST /polls`` (issue 8 item 1: "a retried request adds
nothing"). No unique index on data fields is involved: the ``_id`` index decides.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


class StoreError(Exception):
    """MongoDB refused documents for a reason other than a duplicate ``_id`` (validation,
    write concern...). ``str()`` is MongoDB's message for the first such error."""


async def insert_unique(
    collection: Any, docs: list[dict], *, precheck: bool = False
) -> tuple[int, int]:
    """Insert ``docs`` (unordered) into ``collection``; return ``(inserted, already_present)``.

    A document whose ``_id`` is stored already (or repeated earlier in ``docs``) is not
    written again and counts as already present. With ``precheck`` the ``_id``s are looked up
    first (one covered ``_id`` index read) and only the missing documents are sent: MongoDB
    handles a batch with many duplicate-key errors slowly, so this pays off when duplicates
    are likely (a re-import, a retried request).

    Raises:
        StoreError: any write error other than a duplicate key, or a write concern error.
    """
    total = len(docs)
    if precheck and docs:
        existing = {
            d["_id"]
            async for d in collection.find({"_id": {"$in": [d["_id"] for d in docs]}}, {"_id": 1})
        }
        if existing:
            docs = [d for d in docs if d["_id"] not in existing]
    if not docs:
        return 0, total
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        details = exc.details
        errors = details.get("writeErrors", [])
        other = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if other or details.get("writeConcernErrors"):
            first = other[0] if other else details["writeConcernErrors"][0]
            raise StoreError(str(first.get("errmsg"))) from exc
        inserted = details.get("nInserted", 0)
        return inserted, total - inserted
    return len(docs), total - len(docs)
