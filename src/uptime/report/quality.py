"""Data quality: the input documents a report ignores, counted and listed by rule.

Spec: issue 9 items 5 ("every report records what it ignored") and 6 (``uptime-monitor check``).

Each rule is one **check**, kept as data next to the pipelines:
``pipelines/checks/<collection>.<reason>.json`` =
``{"collection", "reason", "field", "rule", "filter"[, "count"]}``, where ``filter`` is a
``$match`` document (Extended JSON) that selects exactly the documents violating the rule (dbt
style: a query returning the bad rows), and the optional ``count`` is a pipeline on the same
collection returning ``{n}`` = the number of documents ``filter`` selects, by a cheaper plan
(control characters: a DISTINCT_SCAN of the store ids, then an indexed count per bad id,
instead of a regex over every poll key). Filters may use two ``let`` variables:

* ``$$future_after`` (Date): polls after it are *future polls* — the server's current time
  plus :data:`uptime.report.pipeline.CLOCK_SKEW` (5 minutes), or the report's ``as_of`` if
  that is later (a poll at or before ``as_of`` is used by the report, so it is not ignored);
* ``$$timezones`` (array of strings): the zone names MongoDB accepts
  (``pipeline.known_timezones``).

The store_status filters are written so each uses the poll index with tight bounds
(``store_id_1_timestamp_utc_1_status_1``; two are covered scans of the whole index: control
characters and unknown status). A document breaking several rules is listed under each.

* :func:`ignored_counts` — one aggregation (``$documents: []`` + one ``$unionWith`` per check
  ending in ``$count``): ``[{collection, reason, count}]`` for every check, zeros included.
  The report service runs it beside the report pipeline and stores it in ``reports.ignored``.
* :func:`run_checks` — per check, the first ``cap`` offending documents (``_id`` and the
  field's value) and the total; what ``uptime-monitor check`` prints.

**Cached per input version** (issue 19, item 2): the counts of the checks that do not depend on
the clock (all but those using ``$$future_after``) are stored in the collection
:data:`CACHE_COLLECTION` (one document, ``_id`` :data:`CACHE_ID`: ``{key, token, counts: [{c: check
name, n}], clock: [{c, after, n}]}``) with a change-stream resume token taken *before*
they were counted (a stream over the three input collections opened first, so every write after
the token is in the stream and every write before it is in the majority snapshot the count
reads). A later report reuses them only if the stream from that token holds no event on
``store_status``, ``store_hours`` or ``store_timezones`` up to the current cluster time (and
the checks and the server's zone list are the ones they were counted with: ``key``); otherwise,
and always on a standalone server (no change streams), everything is counted again. Each proof
moves the stored token up to where it was proven, so the next proof reads only the writes after
it. A clock check (future polls: after ``future_after``) is reused only when it found none
after a bound at or before this report's ``future_after`` on the same input (none after an
earlier instant implies none after a later one); else it is counted. Issue 19 measured the full
count at 0.87 s a report at scale 1 (2.85M polls, quiet machine); with the cache a report pays
the proof (one change-stream read of the writes since the previous report) and nothing else
while no poll lies in the future.

Documents are read with ``datetime_conversion=DATETIME_AUTO``, so a Date outside Python's
years 1..9999 comes back as ``bson.DatetimeMS`` instead of failing the decoding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from bson import json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from pydantic import BaseModel
from pymongo.errors import OperationFailure, PyMongoError

from uptime.platform.constants import (
    HOURS_COLLECTION, PROOF_AWAIT_MS, STATUS_COLLECTION, TIMEZONES_COLLECTION,
)
from uptime.platform.resources import pipelines_dir
from uptime.report import pipeline
from uptime.timeline.follower import operation_time, token_time

log = logging.getLogger(__name__)

#: Collections checked, in the order they are reported.
COLLECTIONS = (STATUS_COLLECTION, HOURS_COLLECTION, TIMEZONES_COLLECTION)
_CODEC = CodecOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO)
#: Check files may hold Dates Python cannot (year 10000): they stay ``bson.DatetimeMS``.
_JSON = json_util.JSONOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO)
#: Where the clock-independent counts are cached with the input version they hold for.
CACHE_COLLECTION = "quality_cache"
CACHE_ID = "ignored_counts"
#: A check whose filter or count pipeline uses this variable depends on the clock.
CLOCK_VARIABLE = "$$future_after"
#: Longest time (s) spent reading the change stream to prove the input unchanged; past it the
#: counts are taken again. A proof reads the oplog written since the last one (after a report:
#: its report_rows and GridFS writes, ~0.1 s quiet at scale 1, ~0.9 s on a loaded 2-core
#: machine); a recount costs ~10x that, so the limit is generous.
UNCHANGED_PROOF_S = 5.0


class IgnoredCount(BaseModel):
    """How many documents of ``collection`` a report ignored for ``reason``."""

    collection: str
    reason: str
    count: int


@dataclass(frozen=True)
class Check:
    """One rule: ``filter`` selects the documents of ``collection`` that break it."""

    name: str  # file stem, "<collection>.<reason>"
    collection: str
    reason: str
    field: str
    rule: str
    filter: dict[str, Any]
    count: list[dict[str, Any]] | None = None

    @property
    def clock_dependent(self) -> bool:
        """True if the check's result changes with the server's clock (``$$future_after``)."""
        return CLOCK_VARIABLE in json_util.dumps([self.filter, self.count])


@lru_cache
def load_checks() -> tuple[Check, ...]:
    """Every ``pipelines/checks/*.json``, ordered by :data:`COLLECTIONS` then file name.

    Raises:
        ValueError: a file lacks a key or names a collection outside :data:`COLLECTIONS`.
    """
    checks = []
    for path in sorted((pipelines_dir() / "checks").glob("*.json")):
        doc = json_util.loads(path.read_text(encoding="utf-8"), json_options=_JSON)
        try:
            check = Check(path.stem, doc["collection"], doc["reason"], doc["field"],
                          doc["rule"], doc["filter"], doc.get("count"))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a check file ({exc})") from None
        if check.collection not in COLLECTIONS or path.stem != f"{check.collection}.{check.reason}":
            raise ValueError(
                f"{path}: must be named <collection>.<reason>.json for a known collection"
            )
        checks.append(check)
    return tuple(sorted(checks, key=lambda c: (COLLECTIONS.index(c.collection), c.name)))


async def check_let(
    db: Any, *, as_of: datetime | None = None, timezones: list[str] | None = None
) -> dict[str, Any]:
    """The checks' ``let``: ``future_after`` = max(server time + 5 min, ``as_of``) and
    ``timezones`` (screened on the server when not given)."""
    future_after = await pipeline.future_after(db)
    if as_of is not None and pipeline.to_utc(as_of) > future_after:
        future_after = pipeline.to_utc(as_of)
    if timezones is None:
        timezones = await pipeline.known_timezones(db)
    return {"future_after": future_after, "timezones": list(timezones)}


async def ignored_counts(
    db: Any, *, as_of: datetime | None = None, timezones: list[str] | None = None,
    cache: bool = True,
) -> list[dict[str, Any]]:
    """Count the documents every check selects, in ONE aggregation; zeros included.

    With ``cache`` (the default), the clock-independent checks' counts are reused while the
    input collections are unchanged (see the module doc: exact, proven by a change stream;
    always recounted on a standalone server); ``cache=False`` counts everything.

    Returns:
        ``[{"collection": str, "reason": str, "count": int}, ...]`` in check order.

    Raises:
        pymongo.errors.PyMongoError: the server failed the aggregation.
    """
    checks = load_checks()
    let = await check_let(db, as_of=as_of, timezones=timezones)
    after = pipeline.to_utc(let["future_after"])
    stable = [c for c in checks if not c.clock_dependent]
    key = _cache_key(stable, let["timezones"])
    found: dict[str, int] = {}
    doc = token = None
    if cache:
        doc, token = await _proven_cache(db, key)
        if doc is not None:
            found.update((e["c"], int(e["n"])) for e in doc["counts"])
            for entry in doc.get("clock") or []:
                # none after the earlier bound, data unchanged: none after a later one
                if entry.get("n") == 0 and after >= pipeline.to_utc(entry["after"]):
                    found[entry["c"]] = 0
        else:
            token = await _current_token(db)
    to_count = [c for c in checks if c.name not in found]
    found.update(await _count(db, to_count, let))
    if token is not None:
        counted = {c.name for c in to_count}
        clock = [e for e in (doc or {}).get("clock") or [] if e.get("c") not in counted]
        clock += [{"c": c.name, "after": after, "n": found.get(c.name, 0)}
                  for c in to_count if c.clock_dependent]
        await _store_counts(db, key, token,
                            [{"c": c.name, "n": found.get(c.name, 0)} for c in stable], clock)
    return [
        {"collection": c.collection, "reason": c.reason, "count": int(found.get(c.name, 0))}
        for c in checks
    ]


async def _count(db: Any, checks: list[Check], let: dict[str, Any]) -> dict[str, int]:
    """``{check name: documents it selects}`` for ``checks``, in one aggregation."""
    if not checks:
        return {}
    stages: list[dict[str, Any]] = [{"$documents": []}]
    for check in checks:
        counting = check.count or [{"$match": check.filter}, {"$count": "n"}]
        stages.append({"$unionWith": {"coll": check.collection, "pipeline": [
            *counting,
            {"$project": {"_id": 0, "c": {"$literal": check.name}, "n": 1}},
        ]}})
    cursor = await db.aggregate(stages, let=let, comment=f"{pipeline.PIPELINE_NAME}:quality")
    return {doc["c"]: int(doc["n"]) async for doc in cursor}


def _cache_key(checks: list[Check], timezones: list[str]) -> str:
    """What cached counts depend on besides the data: the checks' text and the zone list."""
    text = json_util.dumps([[c.name, c.filter, c.count] for c in checks]) + json.dumps(
        sorted(timezones))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _input_changes(db: Any, **kwargs: Any) -> Any:
    """A change stream (awaitable) of every write to the input collections, and of drops
    and renames of them or of the database."""
    return db.watch(
        [{"$match": {"$or": [{"ns.coll": {"$in": list(COLLECTIONS)}},
                             {"ns.coll": {"$exists": False}}]}},
         {"$project": {"_id": 1}}],
        max_await_time_ms=PROOF_AWAIT_MS, **kwargs)


async def _current_token(db: Any) -> dict[str, Any] | None:
    """A resume token at the current majority-committed point of the input (None on a
    standalone server or if the server refuses change streams: nothing is cached then)."""
    if await operation_time(db) is None:
        return None
    try:
        async with await _input_changes(db) as stream:
            await stream.try_next()  # an event would only mean a write right now: no harm
            return stream.resume_token
    except PyMongoError as exc:
        log.info("data-quality counts not cached: %s", exc)
        return None


async def advance_cache(db: Any) -> bool:
    """Move the cache's token past the writes made since it (e.g. the report that just
    completed: its ``report_rows`` and GridFS writes) when none of them touched the input, so
    the next report's proof reads only what comes after; return True if it moved. Costs one
    change-stream read; meant to run after a report is Complete (off its critical path).
    Never raises for a database error (logged: the next proof just reads more)."""
    try:
        doc = await db[CACHE_COLLECTION].find_one({"_id": CACHE_ID}, {"key": 1, "token": 1})
        if not doc:
            return False
        proven, token = await _proven_cache(db, doc.get("key"))
        if proven is None:
            return False
        result = await db[CACHE_COLLECTION].update_one(
            {"_id": CACHE_ID, "token": doc["token"]}, {"$set": {"token": token}})
        return result.modified_count == 1
    except PyMongoError as exc:
        log.info("data-quality cache not advanced: %s", exc)
        return False


async def _proven_cache(db: Any, key: str) -> tuple[dict[str, Any] | None, Any]:
    """``(cache document, token)`` if the cached counts hold for the input now (no write since
    their token; ``token`` = where that was proven, stored next so the next proof reads only
    what came after), else ``(None, None)``."""
    doc = await db[CACHE_COLLECTION].find_one({"_id": CACHE_ID})
    if not doc or doc.get("key") != key or not isinstance(doc.get("counts"), list):
        return None, None
    now = await operation_time(db)
    if now is None:  # standalone: no change stream proves the input unchanged
        return None, None
    deadline = time.monotonic() + UNCHANGED_PROOF_S
    try:
        async with await _input_changes(db, start_after=doc["token"]) as stream:
            while time.monotonic() < deadline:
                if await stream.try_next() is not None:
                    return None, None  # a write since the counts were taken
                seen = token_time(stream.resume_token)
                if seen is not None and seen >= now:
                    return doc, stream.resume_token
    except OperationFailure as exc:  # e.g. the token fell off the oplog
        log.info("data-quality counts recounted: %s", exc)
    return None, None


async def _store_counts(
    db: Any, key: str, token: dict[str, Any], counts: list[dict[str, Any]],
    clock: list[dict[str, Any]],
) -> None:
    """Store ``counts`` ``[{c: check name, n}]`` and the clock checks' ``[{c, after, n}]`` as
    valid from ``token`` on (a failure only costs the next recount)."""
    try:
        await db[CACHE_COLLECTION].replace_one(
            {"_id": CACHE_ID},
            {"key": key, "token": token, "counts": counts, "clock": clock},
            upsert=True)
    except PyMongoError as exc:
        log.info("data-quality counts not cached: %s", exc)


@dataclass
class CheckResult:
    """The documents one check found: the first ``cap`` (``_id`` and value) and the total."""

    check: Check
    total: int
    rows: list[dict[str, Any]]


async def run_checks(db: Any, *, cap: int = 10) -> list[CheckResult]:
    """Run every check; each returns its first ``cap`` offending documents and its total.

    Each row is ``{"_id": ..., "value": <the field's value, or "(missing)">}``; Dates outside
    Python's range come back as ``bson.DatetimeMS``.
    """
    let = await check_let(db)
    results = []
    for check in load_checks():
        fields = check.field.split("/")
        value: Any = {f: {"$ifNull": [f"${f}", "(missing)"]} for f in fields}
        if len(fields) == 1:
            value = value[fields[0]]
        coll = db.get_collection(check.collection, codec_options=_CODEC)
        cursor = await coll.aggregate(
            [
                {"$match": check.filter},
                {"$facet": {
                    "rows": [{"$limit": cap},
                             {"$project": {"_id": 1, "value": value}}],
                    "total": [{"$count": "n"}],
                }},
            ],
            let=let,
            comment=f"{pipeline.PIPELINE_NAME}:check:{check.name}",
        )
        out = (await cursor.to_list())[0]
        total = out["total"][0]["n"] if out["total"] else 0
        results.append(CheckResult(check, total, out["rows"]))
    return results
