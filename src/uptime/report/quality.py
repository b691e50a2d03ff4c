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

Documents are read with ``datetime_conversion=DATETIME_AUTO``, so a Date outside Python's
years 1..9999 comes back as ``bson.DatetimeMS`` instead of failing the decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from bson import json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from pydantic import BaseModel

from uptime.platform.constants import HOURS_COLLECTION, STATUS_COLLECTION, TIMEZONES_COLLECTION
from uptime.platform.resources import pipelines_dir
from uptime.report import pipeline

#: Collections checked, in the order they are reported.
COLLECTIONS = (STATUS_COLLECTION, HOURS_COLLECTION, TIMEZONES_COLLECTION)
_CODEC = CodecOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO)
#: Check files may hold Dates Python cannot (year 10000): they stay ``bson.DatetimeMS``.
_JSON = json_util.JSONOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO)


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
    db: Any, *, as_of: datetime | None = None, timezones: list[str] | None = None
) -> list[dict[str, Any]]:
    """Count the documents every check selects, in ONE aggregation; zeros included.

    Returns:
        ``[{"collection": str, "reason": str, "count": int}, ...]`` in check order.

    Raises:
        pymongo.errors.PyMongoError: the server failed the aggregation.
    """
    checks = load_checks()
    stages: list[dict[str, Any]] = [{"$documents": []}]
    for check in checks:
        counting = check.count or [{"$match": check.filter}, {"$count": "n"}]
        stages.append({"$unionWith": {"coll": check.collection, "pipeline": [
            *counting,
            {"$project": {"_id": 0, "c": {"$literal": check.name}, "n": 1}},
        ]}})
    let = await check_let(db, as_of=as_of, timezones=timezones)
    cursor = await db.aggregate(stages, let=let, comment=f"{pipeline.PIPELINE_NAME}:quality")
    found = {doc["c"]: doc["n"] async for doc in cursor}
    return [
        {"collection": c.collection, "reason": c.reason, "count": int(found.get(c.name, 0))}
        for c in checks
    ]


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
