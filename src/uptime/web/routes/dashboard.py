"""JSON API behind the dashboard (issue 11, item 1); included by ``uptime.web.app``.

Why this module is over 400 lines: one resource (the dashboard's store and report views), its
five routes and their bounds (issue 15) kept together; each route is thin over a pipeline.

* ``GET /stores/{store_id}/timeline?from=&to=&poll_limit=`` — one store's interval: business
  hours (UTC and local), status runs clipped to the interval, its polls (capped), the zone used.
* ``GET /stores/{store_id}/uptime?from=&to=`` — uptime/downtime within business hours over
  ``[from, to)`` by the report's rules (``pipelines/store_interval.v1.json``).
* ``GET /reports/{report_id}/summary?worst=`` — a complete report's headline numbers, uptime
  histogram and most-downtime stores (``pipelines/report_summary.v2.json`` over ``report_rows``).
* ``GET /reports/{report_id}/rows?prefix=`` — rows whose store id starts with ``prefix``.
* ``GET /reports/{report_id}/rows/{store_id}`` — one store's row of a report (the CSV's numbers).

Intervals are half-open ``[from, to)`` in UTC (ISO 8601; no offset = UTC). Default ``to``: the
store's latest valid poll (its last week; one indexed lookup, where the chain's latest poll
costs one lookup per store, ~1 s at 14k stores); default ``from``: ``to − 7 d``.
Longest interval: ``interval.MAX_INTERVAL`` (92 days). As in a report as of ``to``, polls
after ``to`` are ignored and the last status holds up to ``to``.
All routes need the bearer token when ``UPTIME_API_TOKEN`` is set (``require_token``).

Bounded (issue 15): a store's interval holds at most ``UPTIME_INTERVAL_MAX_POLLS`` of its
polls (422 on ``from`` naming the longest interval ending at ``to`` that fits:
``_poll_budget``), the time line returns at most ``poll_limit`` polls and ``run_limit`` runs
and reads only the interval's runs; every cursor gets ``maxTimeMS`` from the request's time
limit (``uptime.platform.limits``). Store ids may hold ``/`` (``{store_id:path}`` routes) and
are at most ``MAX_STORE_ID_LENGTH`` characters, as on every input path.

Over 400 lines: one resource, the dashboard's JSON API (store list, one store's interval, its
time line, its polls), each handler short; splitting would scatter the shared bounds and row
shapes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import AfterValidator, BaseModel, Field

from uptime.ingest.validate import MAX_STORE_ID_LENGTH, too_long_reason

from uptime.platform import limits
from uptime.platform.constants import STATUS_COLLECTION, TIMEZONES_COLLECTION
from uptime.report import interval, pipeline, storage
from uptime.report import rows as stored_rows
from uptime.web import runs as store_runs
from uptime.web.errors import error_responses, invalid_input, query_instant

#: Polls returned by the time line by default / at most (the earliest ones of the interval).
DEFAULT_POLL_LIMIT = 2_000
MAX_POLL_LIMIT = 20_000
#: Runs returned by the time line by default / at most (the earliest ones of the interval).
DEFAULT_RUN_LIMIT = 2_000
MAX_RUN_LIMIT = 20_000
_MS = 1000


# -- schemas -------------------------------------------------------------------------------
class Interval(BaseModel):
    start: datetime = Field(description="UTC")
    end: datetime = Field(description="UTC (exclusive)")
    start_local: str = Field(description="local wall-clock time with offset, ISO 8601")
    end_local: str


class Run(BaseModel):
    status: Literal["active", "inactive"]
    start: datetime = Field(description="clipped to the interval (UTC, ms)")
    end: datetime = Field(description="clipped to the interval (UTC, ms; exclusive)")
    start_ms: float = Field(description="epoch ms, clipped; a run may start on a half ms")
    end_ms: float
    run_start: datetime | None = Field(description="unclipped start (null: the first run)")
    first_poll: datetime
    last_poll: datetime
    polls: int = Field(description="distinct poll instants in the run (as of `to`)")


class Poll(BaseModel):
    t: datetime
    status: Literal["active", "inactive"]


class IntervalUptime(BaseModel):
    store_id: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    timezone: str
    timezone_fallback: bool = Field(
        description="the store's timezone row names a zone MongoDB does not know; "
        "America/Chicago was used (as in the report)"
    )
    business_seconds: float
    uptime_seconds: float
    downtime_seconds: float
    uptime_minutes: float = Field(description="rounded to 2 decimals, as the report's hour column")
    downtime_minutes: float
    uptime_hours: float = Field(description="rounded to 2 decimals, as the report's day/week columns")
    downtime_hours: float
    uptime_pct: float | None = Field(description="uptime / business time × 100; null if closed")

    model_config = {"populate_by_name": True}


class Timeline(IntervalUptime):
    timezone_source: Literal["store", "default", "fallback"] = Field(
        description="store: its timezone row; default: no row (America/Chicago); "
        "fallback: an unknown zone (America/Chicago)"
    )
    business_hours: list[Interval]
    runs: list[Run]
    polls: list[Poll] = Field(description="valid polls in [from, to), earliest first, capped")
    polls_total: int
    polls_truncated: bool
    runs_total: int = Field(description="runs overlapping [from, to); `runs` holds at most "
                            "run_limit of them, the earliest")
    runs_truncated: bool


class Bucket(BaseModel):
    from_pct: float = Field(alias="from")
    to_pct: float = Field(alias="to")
    stores: int

    model_config = {"populate_by_name": True}


class StoreRow(BaseModel):
    store_id: str
    uptime_last_hour: float
    uptime_last_day: float
    uptime_last_week: float
    downtime_last_hour: float
    downtime_last_day: float
    downtime_last_week: float
    timezone_fallback: bool
    uptime_pct_last_week: float | None = None
    as_of: datetime | None = Field(default=None, description="the report's as_of (row endpoint)")


class Summary(BaseModel):
    report_id: str
    as_of: datetime
    pipeline: str
    created_at: datetime
    finished_at: datetime | None
    stores: int
    timezone_fallbacks: int
    stores_with_downtime: int = Field(description="stores with downtime_last_week > 0")
    uptime_last_week: float = Field(description="hours, all stores")
    downtime_last_week: float
    uptime_pct_last_week: float | None
    no_business_hours: int = Field(description="stores with no business time in the week")
    histogram: list[Bucket] = Field(
        description="uptime % last week per store, 10-point buckets [from, to); the last "
        "bucket (from = to = 100) holds stores with no downtime"
    )
    worst: list[StoreRow] = Field(description="most downtime last week first, then store_id")


# -- helpers -------------------------------------------------------------------------------
def _db(request: Request) -> Any:
    return request.app.state.db


def _fits(store_id: str) -> str:
    """The import's length rule (one maximum on every input path, issue 15 item 4)."""
    reason = too_long_reason(store_id)
    if reason is not None:
        raise ValueError(reason)
    return store_id


# a store id may hold "/" (routes use the :path convertor), "?", "#", "%", spaces, any script
StoreId = Annotated[str, Path(min_length=1, description=f"a store_id, exact (at most "
                                                         f"{MAX_STORE_ID_LENGTH} characters)",
                              json_schema_extra={"maxLength": MAX_STORE_ID_LENGTH}),
                    AfterValidator(_fits)]
ReportIdPath = Annotated[str, Path(pattern=storage.REPORT_ID_PATTERN,
                                   description="a report id (32 URL-safe characters)")]
# ISO 8601 text, parsed by the same parser as as_of (issue 9 items 4, 9): numbers are refused.
From = Annotated[str | None, Query(alias="from", description="ISO 8601; default to − 7 d",
                                   json_schema_extra={"format": "date-time"})]
To = Annotated[str | None, Query(alias="to", description="ISO 8601; default the store's latest "
                                 "poll (not after the server's time + 5 min)",
                                 json_schema_extra={"format": "date-time"})]
#: Errors the store and report routes can answer (issue 9 item 11).
_STORE_ERRORS = error_responses(404, 503)
_REPORT_ERRORS = error_responses(404, 409, 410, 503)


async def _latest_poll(db: Any, store_id: str) -> datetime:
    """The store's latest valid poll (one backwards step on the store/time index); 404 if none."""
    bounded = {"$type": "date", "$gte": pipeline.EARLIEST_POLL,  # never decode year 10000
               "$lte": await pipeline.future_after(db)}  # future polls are not the default
    doc = await db[STATUS_COLLECTION].find_one(
        {"store_id": store_id, "timestamp_utc": bounded,
         "status": {"$in": list(pipeline.VALID_STATUSES)}},
        {"_id": 0, "timestamp_utc": 1}, sort=[("timestamp_utc", -1)], **limits.find_time(),
    )
    if doc is None:
        raise HTTPException(404, detail=f"store {store_id[:200]!r} has no valid poll")
    return doc["timestamp_utc"]


async def _interval(db: Any, store_id: str, start_text: str | None, end_text: str | None
                    ) -> tuple[datetime, datetime]:
    start, end = query_instant("from", start_text), query_instant("to", end_text)
    try:
        end = end or await _latest_poll(db, store_id)
        start = start or end - timedelta(days=7)
        start, end = pipeline.to_utc(start), pipeline.to_utc(end)
    except OverflowError:
        raise invalid_input(("query", "from"), "from is out of range", start_text) from None
    if start >= end:
        raise invalid_input(("query", "from"), f"from ({start.isoformat()}) must be before to "
                            f"({end.isoformat()})", start_text)
    if end - start > interval.MAX_INTERVAL:
        raise invalid_input(("query", "from"), f"the interval is longer than "
                            f"{interval.MAX_INTERVAL.days} days", start_text)
    return start, end


async def _poll_budget(request: Request, store_id: str, start: datetime, end: datetime,
                       start_text: str | None) -> None:
    """422 when the store has more than ``UPTIME_INTERVAL_MAX_POLLS`` polls in ``[start,
    end)`` (issue 15 item 1: the interval pipeline's work grows with them; a store polled every
    minute has 132,480 in 92 days), naming the longest interval ending at ``end`` that fits.
    One indexed count that stops at the limit + 1."""
    limit = request.app.state.settings.interval_max_polls
    window = {"store_id": store_id, "timestamp_utc": {"$gte": start, "$lt": end}}
    db = _db(request)
    if await db[STATUS_COLLECTION].count_documents(window, limit=limit + 1,
                                                **limits.agg_time()) <= limit:
        return
    cut = await db[STATUS_COLLECTION].find(
        window, {"_id": 0, "timestamp_utc": 1}, sort=[("timestamp_utc", -1)], skip=limit - 1,
        limit=1, **limits.find_time()).to_list()
    fits = cut[0]["timestamp_utc"].isoformat() if cut else end.isoformat()
    raise invalid_input(
        ("query", "from"),
        f"store {store_id[:200]!r} has more than {limit} polls in [from, to) "
        f"(UPTIME_INTERVAL_MAX_POLLS); ask for a shorter interval: the longest one ending at "
        f"to ({end.isoformat()}) that fits starts at from={fits}", start_text)


async def _store_interval(db: Any, store_id: str, start: datetime, end: datetime) -> dict:
    docs = await interval.interval_rows(
        db, start=start, end=end, store_range=(store_id, interval.next_store_id(store_id))
    )
    if not docs:
        raise HTTPException(404, detail=f"store {store_id[:200]!r} has no valid poll at or "
                                        f"before {end.isoformat()}")
    return docs[0]


def _uptime_fields(doc: dict, start: datetime, end: datetime) -> dict[str, Any]:
    business = doc["business_ms"]
    return {
        "store_id": doc["store_id"], "from": start, "to": end,
        "timezone": doc["timezone"], "timezone_fallback": doc["timezone_fallback"],
        "business_seconds": business / _MS, "uptime_seconds": doc["uptime_ms"] / _MS,
        "downtime_seconds": doc["downtime_ms"] / _MS,
        "uptime_minutes": doc["uptime_minutes"], "downtime_minutes": doc["downtime_minutes"],
        "uptime_hours": doc["uptime_hours"], "downtime_hours": doc["downtime_hours"],
        "uptime_pct": round(100 * doc["uptime_ms"] / business, 2) if business else None,
    }


def _local(ms: float, zone: ZoneInfo | None) -> str:
    """Epoch ms as local time with offset; in UTC when the local date would be before year 1
    or after 9999 (Python cannot hold it; issue 15 item 2) or the zone is unknown to Python."""
    moment = _date(ms)
    try:
        return moment.astimezone(zone or ZoneInfo("UTC")).isoformat(timespec="seconds")
    except (OverflowError, ValueError):
        return moment.isoformat(timespec="seconds")


_EPOCH = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))


def _date(ms: float) -> datetime:
    """Epoch ms (a half ms rounds down, as the contract's ``start``/``end``) as a UTC Date."""
    return _EPOCH + timedelta(milliseconds=int(ms // 1))


# -- routes --------------------------------------------------------------------------------
router = APIRouter(tags=["dashboard"])


@router.get("/stores/{store_id:path}/uptime", response_model=IntervalUptime, response_model_by_alias=True,
            summary="Uptime/downtime of one store within business hours over [from, to)",
            responses=_STORE_ERRORS)
async def store_uptime(request: Request, store_id: StoreId, start: From = None, end: To = None
                       ) -> dict[str, Any]:
    """Same rules as the report (a report as of ``to``, with its week window starting at
    ``from``): for ``[T − 7 d, T)``, ``[T − 24 h, T)`` and ``[T − 1 h, T)`` the numbers equal
    the report's week, day and hour columns. Seconds are exact (a half ms possible); minutes
    and hours are rounded to 2 decimals as in the report. 404: no poll at or before ``to``."""
    db = _db(request)
    start_text = start
    start, end = await _interval(db, store_id, start, end)
    await _poll_budget(request, store_id, start, end, start_text)
    return _uptime_fields(await _store_interval(db, store_id, start, end), start, end)


@router.get("/stores/{store_id:path}/timeline", response_model=Timeline, response_model_by_alias=True,
            summary="One store's business hours, status runs and polls over [from, to)",
            responses=_STORE_ERRORS)
async def store_timeline(
    request: Request, store_id: StoreId, start: From = None, end: To = None,
    poll_limit: Annotated[int, Query(ge=0, le=MAX_POLL_LIMIT,
                                     description="most polls returned (the earliest)")]
    = DEFAULT_POLL_LIMIT,
    run_limit: Annotated[int, Query(ge=0, le=MAX_RUN_LIMIT,
                                    description="most runs returned (the earliest)")]
    = DEFAULT_RUN_LIMIT,
) -> dict[str, Any]:
    """Business hours as UTC and local intervals; runs (``status_runs`` shape) clipped to the
    interval, as of ``to``; the interval's valid polls, earliest first, at most ``poll_limit``
    (``polls_total`` counts them all); the runs likewise, at most ``run_limit``
    (``runs_total``). The uptime numbers of ``/uptime`` are included. 422 past
    ``UPTIME_INTERVAL_MAX_POLLS`` polls in the interval, as ``/uptime``."""
    db = _db(request)
    start_text = start
    start, end = await _interval(db, store_id, start, end)
    await _poll_budget(request, store_id, start, end, start_text)
    doc = await _store_interval(db, store_id, start, end)
    try:
        zone: ZoneInfo | None = ZoneInfo(doc["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        zone = None  # MongoDB knows it, Python does not: local times shown in UTC
    has_row = await db[TIMEZONES_COLLECTION].count_documents({"store_id": store_id}, limit=1,
                                                         **limits.agg_time())
    source = "fallback" if doc["timezone_fallback"] else ("store" if has_row else "default")
    start_ms, end_ms = int(start.timestamp() * _MS), int(end.timestamp() * _MS)
    runs = store_runs.clip_runs(await store_runs.store_runs(db, store_id, end, since=start),
                                start_ms, end_ms)
    runs_total, runs = len(runs), runs[:run_limit]
    poll_filter = {"store_id": store_id, "timestamp_utc": {"$gte": start, "$lt": end},
                   "status": {"$in": list(pipeline.VALID_STATUSES)}}
    polls = await db[STATUS_COLLECTION].find(
        poll_filter, {"_id": 0, "t": "$timestamp_utc", "status": 1},
        sort=[("timestamp_utc", 1), ("status", 1)], limit=poll_limit, **limits.find_time(),
    ).to_list() if poll_limit else []
    total = await db[STATUS_COLLECTION].count_documents(poll_filter, **limits.agg_time())
    return {
        **_uptime_fields(doc, start, end),
        "timezone_source": source,
        "business_hours": [
            {"start": _date(o["a"]), "end": _date(o["b"]),
             "start_local": _local(o["a"], zone), "end_local": _local(o["b"], zone)}
            for o in doc["open"]
        ],
        "runs": [
            {"status": r["status"], "start": _date(r["start_ms"]), "end": _date(r["end_ms"]),
             "start_ms": r["start_ms"], "end_ms": r["end_ms"],
             "run_start": None if r["start2"] is None else _date(r["start2"] / 2),
             "first_poll": r["first_poll"], "last_poll": r["last_poll"], "polls": r["polls"]}
            for r in runs
        ],
        "polls": polls, "polls_total": total, "polls_truncated": total > len(polls),
        "runs_total": runs_total, "runs_truncated": runs_total > len(runs),
    }


async def _complete_report(db: Any, report_id: str) -> dict[str, Any]:
    if not storage.is_report_id(report_id):
        raise invalid_input(("path", "report_id"), "report_id must be 32 URL-safe characters",
                            report_id[:200])
    doc = await storage.get_report(db, report_id)
    if doc is None:
        raise HTTPException(404, detail=f"no report with id {report_id}")
    if doc["status"] != storage.COMPLETE:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"report {report_id} is {doc['status']}, not Complete")
    if doc.get("kind") == "period":  # issue 18: its CSV has other columns, no stored rows
        label = (doc.get("period") or {}).get("label", "")
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"report {report_id} is a period report ({label}): it has "
                            f"no per-store dashboard rows; download its CSV from "
                            f"/get_report?report_id={report_id}")
    return doc


@router.get("/reports/{report_id}/summary", response_model=Summary, response_model_by_alias=True,
            summary="Headline numbers, uptime histogram and worst stores of a complete report",
            responses=_REPORT_ERRORS)
async def report_summary(
    request: Request, report_id: ReportIdPath,
    worst: Annotated[int, Query(ge=1, le=stored_rows.MAX_WORST)] = 20,
) -> dict[str, Any]:
    """Aggregated in MongoDB over the report's stored rows. 404 unknown id; 409 not Complete;
    410 the report has no stored rows (made before rows were stored)."""
    db = _db(request)
    doc = await _complete_report(db, report_id)
    found = await stored_rows.summary(db, report_id, worst)
    if found is None and doc.get("rows"):
        raise HTTPException(status.HTTP_410_GONE,
                            detail=f"report {report_id} has no stored rows; trigger a new report")
    found = found or {"stores": 0, "timezone_fallbacks": 0, "stores_with_downtime": 0,
                      "uptime_last_week": 0.0, "downtime_last_week": 0.0,
                      "uptime_pct_last_week": None, "no_business_hours": 0,
                      "histogram": [], "worst": []}
    return {"report_id": report_id, "as_of": doc["as_of"], "pipeline": doc["pipeline"],
            "created_at": doc["created_at"], "finished_at": doc.get("finished_at"), **found}


@router.get("/reports/{report_id}/rows", response_model=list[StoreRow],
            summary="A complete report's rows whose store_id starts with a prefix",
            responses=_REPORT_ERRORS)
async def report_rows_search(
    request: Request, report_id: ReportIdPath,
    prefix: Annotated[str, Query(min_length=1, max_length=MAX_STORE_ID_LENGTH,
                                 pattern=r"^[^\x00-\x1f\x7f]+$",  # ids never hold them (422)
                                 description="store_id prefix (no control characters)")],
    limit: Annotated[int, Query(ge=1, le=stored_rows.MAX_WORST)] = 100,
) -> list[dict[str, Any]]:
    """Most downtime last week first (the report page's search). 404/409 as the summary."""
    db = _db(request)
    await _complete_report(db, report_id)
    return await stored_rows.find_rows(db, report_id, prefix, limit)


@router.get("/reports/{report_id}/rows/{store_id:path}", response_model=StoreRow,
            summary="One store's row of a complete report (the CSV's numbers)",
            responses=_REPORT_ERRORS)
async def report_row(
    request: Request, report_id: ReportIdPath, store_id: StoreId
) -> dict[str, Any]:
    """404: unknown report, or the store has no row in it; 409: the report is not Complete."""
    db = _db(request)
    doc = await _complete_report(db, report_id)
    found = await stored_rows.row(db, report_id, store_id)
    if found is None:
        raise HTTPException(404, detail=f"store {store_id[:200]!r} has no row in report {report_id}")
    return {**found, "as_of": doc["as_of"]}
