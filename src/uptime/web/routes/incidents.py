"""``GET /incidents`` (issue 17, item 2): the incidents as of an instant, as JSON, filtered and
paginated. Registered by ``uptime.web.app.create_app`` with one line
(``app.include_router(incidents_api.router, dependencies=[Depends(require_token)])``), so it
needs the bearer token like every data endpoint when ``UPTIME_API_TOKEN`` is set.

Query (all optional): ``as_of`` (ISO 8601, no offset = UTC; default the report's: the latest
poll not after the server's time + 5 min), ``min_minutes`` (>= 0; default
``UPTIME_INCIDENT_MIN_MINUTES``), ``store_id`` (one store, exact), ``open`` (true: open only,
false: ended only), ``from``/``to`` (incidents overlapping ``[from, to)``), ``skip`` and
``limit`` (a page of the result; ``next_skip`` is the ``skip`` of the next page, null on the
last), ``order`` (``store``: by store_id then started_at, the default; ``longest``: most
business downtime first; ``recent``: latest ended_at first, an open incident counting as
ending at ``as_of`` — the dashboard's incidents page uses the last two). ``total`` and
``open_total`` count the incidents matching the filters before paging (null when ``skip`` is
past the end). Bad input is a 422 naming the parameter; the
query has a time limit (``QUERY_TIMEOUT_S``; past it a 503 saying so).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import pymongo
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from pymongo.errors import PyMongoError

from uptime.incidents.detector import start_detector
from uptime.incidents.query import Order, choose_source, find_incident_page
from uptime.report.pipeline import resolve_as_of
from uptime.web.errors import error_responses, invalid_input, query_instant

#: time limit of the request's database work (s): the from-polls path reads every poll
#: (~15-25 s at scale 1 on a loaded 2-core machine), the timeline path well under a second
QUERY_TIMEOUT_S = 60.0
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_SKIP = 1_000_000



@asynccontextmanager
async def _detector(app: FastAPI) -> AsyncIterator[None]:
    """Run the live incident detector (``uptime.incidents.detector``; ``UPTIME_DETECT_INCIDENTS``)
    while the app's own lifespan has opened a database."""
    db = getattr(app.state, "db", None)
    detector = None if db is None else await start_detector(db, app.state.settings)
    app.state.detector = detector
    try:
        yield
    finally:
        if detector is not None:
            await detector.stop()


router = APIRouter(lifespan=_detector)


class Incident(BaseModel):
    """One incident (issue 17 item 1). Times UTC, floored to the millisecond."""

    store_id: str
    started_at: datetime = Field(description="first instant of the inactive stretch inside "
                                 "business hours")
    ended_at: datetime | None = Field(description="recovery instant (midpoint to the first "
                                      "active poll); null while open")
    business_downtime_minutes: float = Field(description="overlap with business hours up to "
                                             "min(ended_at, as_of), minutes, 2 decimals")
    business_downtime_ms: float = Field(description="the same, exact, milliseconds")
    open: bool
    stretch_start: datetime = Field(description="start of the inactive stretch itself (may "
                                    "lie outside business hours)")
    duration_minutes: float = Field(description="whole stretch up to min(ended_at, as_of), "
                                    "minutes, 2 decimals")
    inactive_polls: int | None = Field(description="distinct inactive poll instants (null when "
                                       "the stored run also holds polls after as_of)")
    timezone: str = Field(description="zone the business hours were read in")
    timezone_fallback: bool = Field(description="the store's zone is unknown to MongoDB; "
                                    "America/Chicago was used")


class IncidentPage(BaseModel):
    as_of: datetime | None = Field(description="null: no polls at all")
    min_minutes: float
    source: str = Field(description="status_runs (timeline current) or store_status (runs "
                        "derived from the polls: the timeline was not current)")
    order: str = Field(description="store, longest or recent (see the order parameter)")
    skip: int
    limit: int
    total: int | None = Field(description="incidents matching the filters before paging; null "
                              "when skip is past the end")
    open_total: int | None = Field(description="how many of them are open; null as total")
    next_skip: int | None = Field(description="skip of the next page; null on the last page")
    incidents: list[Incident]


Instant = dict(json_schema_extra={"format": "date-time"})


@router.get("/incidents", response_model=IncidentPage, summary="Incidents as of an instant",
            responses=error_responses(503))
async def incidents(
    request: Request,
    as_of: Annotated[str | None, Query(description="ISO 8601 (no offset = UTC); default: the "
                                       "latest poll", **Instant)] = None,
    min_minutes: Annotated[float | None, Query(ge=0, le=10_000_000, allow_inf_nan=False,
                                               description="least business downtime, minutes; "
                                               "default UPTIME_INCIDENT_MIN_MINUTES")] = None,
    store_id: Annotated[str | None, Query(min_length=1, max_length=200,
                                          description="one store, exact id")] = None,
    open: Annotated[bool | None, Query(description="true: open only; false: ended only")] = None,  # noqa: A002
    start: Annotated[str | None, Query(alias="from", description="incidents overlapping "
                                       "[from, to): ended after from (or open)", **Instant)] = None,
    end: Annotated[str | None, Query(alias="to", description="... and started before to",
                                     **Instant)] = None,
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    order: Annotated[Order, Query(description="store: by store_id then started_at; longest: "
                                  "most business downtime first; recent: latest ended_at "
                                  "first (open = as_of); ties by store_id, started_at")] = "store",
) -> IncidentPage:
    """The incidents as of ``as_of`` (issue 17): maximal inactive stretches of each store
    whose overlap with its business hours is at least ``min_minutes``, sorted by ``order``,
    one page, with the counts of the whole result."""
    when = query_instant("as_of", as_of)
    lo, hi = query_instant("from", start), query_instant("to", end)
    if lo is not None and hi is not None and lo >= hi:
        raise invalid_input(("query", "from"), f"from ({lo.isoformat()}) must be before to "
                            f"({hi.isoformat()})", start)
    settings = request.app.state.settings
    minutes = settings.incident_min_minutes if min_minutes is None else min_minutes
    db = request.app.state.db
    try:
        with pymongo.timeout(QUERY_TIMEOUT_S):
            resolved = await resolve_as_of(db, when)
            source, pending = await choose_source(db)
            rows: list[dict[str, Any]] = []
            counts: dict[str, int] | None = {"total": 0, "open_total": 0}
            if resolved is not None:
                rows, counts = await find_incident_page(
                    db, resolved, minutes, store_id=store_id, open=open, started_from=lo,
                    started_to=hi, skip=skip, limit=limit + 1, source=source,
                    poll_stores=pending, order=order)
    except PyMongoError as exc:
        if exc.timeout:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                detail=f"the incident query took longer than {QUERY_TIMEOUT_S:g}"
                                " s; narrow it (store_id, from/to) or retry") from None
        raise
    more = len(rows) > limit
    return IncidentPage(
        as_of=resolved, min_minutes=minutes,
        source="status_runs" if source == "runs" and not pending else "store_status",
        order=order, skip=skip, limit=limit, next_skip=skip + limit if more else None,
        total=None if counts is None else counts["total"],
        open_total=None if counts is None else counts["open_total"],
        incidents=[Incident(**r) for r in rows[:limit]],
    )
