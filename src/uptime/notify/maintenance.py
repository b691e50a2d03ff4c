"""Maintenance windows: times during which incidents are recorded and flagged but not
announced (issue 17, item 4, "noise controls").

Collection ``maintenance_windows`` (index ``name_1`` unique), one document per window::

    {_id: ObjectId, name: str (unique), stores: [store_id, ...] | null (= every store),
     kind: "once",   start: Date, end: Date            # one UTC range [start, end)
     kind: "weekly", days: [0..6] (0 = Monday), start_minute: 0..1439, end_minute: 1..1440
                                                      # local wall-clock minutes in each
                                                      # store's own zone; end <= start:
                                                      # ends the next day (overnight);
                                                      # end == start: 24 hours
     note: str | null, created_at: Date}

A weekly window opens on every local date whose weekday is in ``days`` at ``start_minute``
and closes at ``end_minute`` (that date, or the next one when overnight) — the shape of the
report's business-hours rule 3. Local time → UTC exactly as the report's rule 4 (MongoDB's
``$dateFromParts`` with the store's zone: a skipped local time counts as if the clock had not
jumped, a repeated one resolves to the later instant) and the zone as rule 5 (the store's
``store_timezones`` zone if MongoDB knows it — the smallest name if it has several — else
America/Chicago). That is computed by ``pipelines/maintenance.v1.json`` (sidecar beside it),
never by Python's zoneinfo.

:func:`in_maintenance` is what the incident detector calls.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from uptime.platform import pipelines
from uptime.platform.probes import zone_known

WINDOWS = "maintenance_windows"
PIPELINE = "maintenance.v1"
TAG = "maintenance@v1"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_STORES = 10_000
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_zone_cache: dict[str, bool] = {}


class WindowError(ValueError):
    """Bad window input. ``field`` names it; ``status``: 422, 404 unknown, 409 name in use."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        if status == 422:  # decided refusals, one marker (the API's 422s)
            message = f"maintenance window refused: {message}"
        super().__init__(message)
        self.field = field
        self.status = status


def parse_hhmm(text: str, field: str) -> int:
    """``"HH:MM"`` (00:00-23:59, or 24:00) → minutes since local midnight.
    Raises WindowError naming ``field``."""
    if not isinstance(text, str) or not _HHMM.match(text):
        raise WindowError(field, f"{field} must be HH:MM (00:00-24:00), got {str(text)[:20]!r}")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _check_common(name: str, stores: list[str] | None) -> None:
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise WindowError("name", "name must be 1-64 characters: letters, digits, '_', '.', '-'")
    if stores is not None:
        if not stores:
            raise WindowError("stores", "stores must be omitted (every store) or non-empty")
        if len(stores) > MAX_STORES:
            raise WindowError("stores", f"at most {MAX_STORES} stores per window")
        if not all(isinstance(s, str) and s for s in stores):
            raise WindowError("stores", "store ids must be non-empty strings")


def _utc(moment: datetime, field: str) -> datetime:
    if not isinstance(moment, datetime):
        raise WindowError(field, f"{field} must be a date-time")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def _insert(db: Any, doc: dict[str, Any]) -> dict[str, Any]:
    doc["created_at"] = datetime.now(UTC)
    try:
        await db[WINDOWS].insert_one(doc)
    except DuplicateKeyError:
        raise WindowError("name", f"a window named {doc['name']} exists", 409) from None
    return public_view(doc)


async def add_once(db: Any, name: str, start: datetime, end: datetime, *,
                   stores: list[str] | None = None, note: str | None = None) -> dict[str, Any]:
    """Add a one-off window ``[start, end)`` (UTC; a naive datetime is UTC) for ``stores``
    (None = every store). Raises WindowError (422 bad input, 409 name in use)."""
    _check_common(name, stores)
    start, end = _utc(start, "start"), _utc(end, "end")
    if not start < end:
        raise WindowError("end", "end must be after start")
    return await _insert(db, {"name": name, "kind": "once", "stores": stores, "start": start,
                              "end": end, "note": note})


async def add_weekly(db: Any, name: str, days: list[int], start: str, end: str, *,
                     stores: list[str] | None = None, note: str | None = None
                     ) -> dict[str, Any]:
    """Add a weekly window: on each local weekday in ``days`` (0 = Monday … 6 = Sunday) from
    ``start`` to ``end`` (``"HH:MM"`` local time of each store; ``end <= start`` ends the next
    day). Raises WindowError (422 bad input, 409 name in use)."""
    _check_common(name, stores)
    if not days or not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
        raise WindowError("days", "days must be a non-empty list of 0..6 (0 = Monday)")
    start_minute, end_minute = parse_hhmm(start, "start"), parse_hhmm(end, "end")
    if start_minute == 1440:
        raise WindowError("start", "start must be before 24:00")
    return await _insert(db, {"name": name, "kind": "weekly", "stores": stores,
                              "days": sorted(set(days)), "start_minute": start_minute,
                              "end_minute": end_minute, "note": note})


def public_view(doc: dict[str, Any]) -> dict[str, Any]:
    """``{name, kind, stores, start, end, days, start_local, end_local, note, created_at}``
    (times of a weekly window as ``HH:MM``; of a one-off one as UTC datetimes)."""
    view = {"name": doc["name"], "kind": doc["kind"], "stores": doc.get("stores"),
            "note": doc.get("note"), "created_at": doc.get("created_at"),
            "start": None, "end": None, "days": None, "start_local": None, "end_local": None}
    if doc["kind"] == "once":
        view.update(start=doc["start"], end=doc["end"])
    else:
        view.update(days=doc["days"],
                    start_local=f"{doc['start_minute'] // 60:02d}:{doc['start_minute'] % 60:02d}",
                    end_local=f"{doc['end_minute'] // 60:02d}:{doc['end_minute'] % 60:02d}")
    return view


async def list_windows(db: Any) -> list[dict[str, Any]]:
    """Every window's :func:`public_view`, by name."""
    return [public_view(d) for d in await db[WINDOWS].find({}).sort("name", 1).to_list(None)]


async def remove_window(db: Any, name: str) -> None:
    """Delete a window. Raises WindowError (404) for an unknown name."""
    if (await db[WINDOWS].delete_one({"name": name})).deleted_count == 0:
        raise WindowError("name", f"no window named {name}", 404)


async def _zone_known(db: Any, zone: str) -> bool:
    if zone not in _zone_cache:
        _zone_cache[zone] = await zone_known(db, zone)
    return _zone_cache[zone]


async def known_zones(db: Any, store_ids: list[str]) -> list[str]:
    """The distinct ``store_timezones`` zones of ``store_ids`` that MongoDB accepts (each
    probed once per process by ``uptime.platform.probes.zone_known``)."""
    names = await db["store_timezones"].distinct(
        "timezone_str", {"store_id": {"$in": store_ids}, "timezone_str": {"$type": "string"}})
    return sorted([n for n in names if await _zone_known(db, n)])


async def in_maintenance(db: Any, store_ids: list[str], instant: datetime, *,
                         session: Any = None) -> set[str]:
    """The subset of ``store_ids`` that is inside a maintenance window at ``instant`` (UTC;
    a naive datetime is UTC). One aggregation (``pipelines/maintenance.v1.json``) over the
    windows; a store's local time as the report's rules 4-5 (module docstring).

    Raises:
        pymongo.errors.PyMongoError: the database failed.
    """
    ids = sorted({s for s in store_ids if isinstance(s, str)})
    if not ids or await db[WINDOWS].estimated_document_count() == 0:
        return set()
    at = _utc(instant, "instant")
    zones = await known_zones(db, ids)
    cursor = await db[WINDOWS].aggregate(
        pipelines.load(PIPELINE), let={"store_ids": ids, "at": at, "timezones": zones},
        comment=TAG, session=session)
    return {row["_id"] for row in await cursor.to_list(None)}
