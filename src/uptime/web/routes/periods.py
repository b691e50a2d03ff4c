"""The period page's JSON API (issue 18, item 6); included by ``uptime.web.app`` behind the
bearer token (``require_token``) like every data endpoint.

* ``POST /periods/reports?period=YYYY-MM|YYYY-Qn|YYYY|YYYY-Www`` (or ``from``/``to``)
  ``[&as_of=]`` — the period report the page shows: ``as_of`` is resolved first (default: the
  latest poll, as ``POST /trigger_report``); a **Complete** period report for the same period
  and that very ``as_of`` whose CSV is still stored is reused (200, ``reused: true``);
  otherwise one is triggered for that resolved ``as_of`` (202; a Running one for the same
  period and ``as_of`` is joined, as ``/trigger_report`` does). 422 for a bad period or
  ``as_of`` (``uptime.web.period_params``), 429 when the queue is full.
* ``GET /periods/reports/{report_id}?target=&limit=`` — the report's state (``status``,
  ``progress``, ``error``) and, once Complete, ``summary``: the chain's uptime %, the count
  and the worst ``limit`` stores below ``target`` (percent, 0..100; default
  ``UPTIME_UPTIME_TARGET_PERCENT``), computed from the CSV (``uptime.report.period_view``).
  404 unknown id, 409 not a period report, 410 its CSV was removed.
* ``GET /stores/{store_id}/monthly?months=12&as_of=`` — the store's uptime % per local calendar
  month, ``months`` (1..``period_view.MAX_MONTHS``) months up to the one holding ``as_of``
  (default: the store's latest valid poll), each reported up to ``as_of``; by the period
  pipeline restricted to the store (timeline when current, else the store's polls: never
  waits for the timeline). 404 when the store has no valid poll at or before ``as_of``.

Every database operation runs under the request's time limit (``UPTIME_REQUEST_TIMEOUT_S``,
``uptime.web.bounds``; aggregations and finds get what is left of it as ``maxTimeMS``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from gridfs.errors import NoFile
from pydantic import BaseModel, Field

from uptime.platform import asof, limits
from uptime.report import period_view, queue, storage
from uptime.report.pipeline import resolve_as_of
from uptime.web.deps import DbDep, ServiceDep, SettingsDep
from uptime.web.errors import error_responses, invalid_input
from uptime.web.period_params import period_of_query
from uptime.web.routes.dashboard import StoreId, ReportIdPath, _latest_poll

#: Most below-target stores one summary lists (the count covers them all).
MAX_BELOW_LIMIT = 5_000
_ECHO = 200


# -- schemas -------------------------------------------------------------------------------
class PeriodTrigger(BaseModel):
    report_id: str
    reused: bool = Field(description="true: a Complete report for the same period and as_of")
    as_of: datetime | None = Field(description="the report's instant (UTC); null when there "
                                   "is no poll yet (the report then says why it failed)")


class BelowTarget(BaseModel):
    store_id: str
    period_start: str = Field(description="the store's period start, UTC ISO 8601 (as in the CSV)")
    period_end: str
    uptime_hours: float
    downtime_hours: float
    uptime_percent: float | None


class PeriodSummary(BaseModel):
    stores: int = Field(description="rows of the CSV")
    no_business_hours: int = Field(description="stores with no business time in the period "
                                   "up to as_of (empty uptime_percent)")
    uptime_hours: float = Field(description="Σ uptime_hours of the CSV")
    downtime_hours: float
    business_hours: float = Field(description="Σ (uptime_hours + downtime_hours)")
    chain_uptime_percent: float | None = Field(
        description="100 × Σ uptime_hours / Σ business hours, 2 decimals; null without "
        "business time")
    target_percent: float
    below_target: int = Field(description="stores whose uptime_percent < target_percent")
    below_target_stores: list[BelowTarget] = Field(
        description="the worst `limit` of them: uptime % ascending, then downtime descending, "
        "then store_id")


class PeriodView(BaseModel):
    report_id: str
    status: Literal["Running", "Complete", "Failed"]
    progress: float
    error: str | None = None
    as_of: datetime | None = None
    period: dict[str, Any] | None = Field(description="{kind, label, from, to}")
    runs_source: str | None = None
    pipeline_reason: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    csv_url: str = Field(description="GET it for the CSV (with the token)")
    summary: PeriodSummary | None = Field(description="null until Complete")


class Month(BaseModel):
    month: str = Field(description="YYYY-MM, the store's local calendar month")
    period_start: datetime = Field(description="local midnight of its first day, UTC")
    period_end: datetime
    uptime_hours: float
    downtime_hours: float
    business_hours: float = Field(description="business time counted: up to as_of")
    uptime_percent: float | None = Field(description="null: no business time")
    partial: bool = Field(description="the month ends after as_of (counted up to as_of)")
    timezone_fallback: bool
    runs_source: str = Field(description='"timeline" or "on_the_fly"; a month before the '
                             "retention horizon always reads the timeline")


class Monthly(BaseModel):
    store_id: str
    as_of: datetime
    runs_source: str = Field(description='"timeline" or "on_the_fly" (from the store\'s polls)')
    months: list[Month] = Field(description="oldest first")


# -- routes --------------------------------------------------------------------------------
router = APIRouter(tags=["periods"])

PeriodQ = Annotated[str | None, Query(max_length=20, description="YYYY-MM, YYYY-Qn, YYYY or "
                                      "YYYY-Www, each in every store's local time")]
FromQ = Annotated[str | None, Query(alias="from", description="a UTC range [from, to) instead "
                                    "(ISO 8601)", json_schema_extra={"format": "date-time"})]
ToQ = Annotated[str | None, Query(alias="to", json_schema_extra={"format": "date-time"})]
AsOfQ = Annotated[str | None, Query(description="ISO 8601 (no offset = UTC; encode + as %2B)",
                                    json_schema_extra={"format": "date-time"})]


def _as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return asof.parse_as_of(text, repair_plus=True)
    except asof.AsOfError as exc:
        raise invalid_input(("query", "as_of"), str(exc), text[:_ECHO]) from None


@router.post("/periods/reports", response_model=PeriodTrigger,
             status_code=status.HTTP_202_ACCEPTED,
             summary="The period report for the page: reuse a finished one or trigger it",
             responses={200: {"model": PeriodTrigger, "description": "reused"},
                        **error_responses(429, 503)})
async def period_report_for_page(
    response: Response, db: DbDep, service: ServiceDep, settings: SettingsDep,
    period: PeriodQ = None, start: FromQ = None, end: ToQ = None, as_of: AsOfQ = None,
) -> dict[str, Any]:
    """202 and a new (or Running) report's id; 200 with ``reused: true`` for a Complete
    report of the same period and resolved ``as_of``. 422: no period, or a bad one."""
    chosen = period_of_query(period, start, end)
    if chosen is None:
        raise invalid_input(("query", "period"), "give period (YYYY-MM, YYYY-Qn, YYYY, "
                            "YYYY-Www) or from and to", None)
    instant = await resolve_as_of(db, _as_of(as_of))
    if instant is not None:
        found = await period_view.find_reusable(db, chosen, instant)
        if found is not None:
            response.status_code = status.HTTP_200_OK
            return {"report_id": found, "reused": True, "as_of": instant}
    existing = await queue.admit(db, instant, limit=settings.max_queued_reports,
                                 period=chosen)
    report_id = existing or await service.trigger(instant, None, chosen)
    return {"report_id": report_id, "reused": False, "as_of": instant}


@router.get("/periods/reports/{report_id}", response_model=PeriodView,
            summary="A period report's state and, once complete, the chain's uptime % and "
            "the stores below the target", responses=error_responses(404, 409, 410, 503))
async def period_view_of(
    db: DbDep, settings: SettingsDep, report_id: ReportIdPath,
    target: Annotated[float | None, Query(ge=0, le=100, description="percent; default "
                                          "UPTIME_UPTIME_TARGET_PERCENT")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_BELOW_LIMIT,
                                description="most below-target stores listed")] = 100,
) -> dict[str, Any]:
    """Running/Failed: the state, ``summary`` null. Complete: ``summary`` from its CSV."""
    doc = await db[storage.REPORTS_COLLECTION].find_one(
        {"_id": report_id}, {"lease": 0}, **limits.find_time())
    if doc is None:
        raise HTTPException(404, detail=f"no report with id {report_id}")
    if doc.get("kind") != "period":
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"report {report_id} is not a period report; its page is "
                            f"/ui/reports/{report_id}")
    summary = None
    if doc["status"] == storage.COMPLETE:
        try:
            rows = await period_view.read_rows(db, doc.get("file_id"))
        except NoFile:
            raise HTTPException(status.HTTP_410_GONE, detail=f"the CSV of report {report_id} "
                                "was removed; show the period again") from None
        goal = settings.uptime_target_percent if target is None else target
        summary = period_view.summarize(rows, goal, limit)
    return {
        "report_id": report_id, "status": doc["status"], "progress": doc.get("progress", 0.0),
        "error": doc.get("error"), "as_of": doc.get("as_of"), "period": doc.get("period"),
        "runs_source": doc.get("runs_source"), "pipeline_reason": doc.get("pipeline_reason"),
        "created_at": doc["created_at"], "finished_at": doc.get("finished_at"),
        "csv_url": f"/get_report?report_id={report_id}", "summary": summary,
    }


@router.get("/stores/{store_id:path}/monthly", response_model=Monthly,
            summary="One store's uptime % per local calendar month up to as_of",
            responses=error_responses(404, 503))
async def store_monthly(
    db: DbDep, store_id: StoreId, as_of: AsOfQ = None,
    months: Annotated[int, Query(ge=1, le=period_view.MAX_MONTHS,
                                 description="how many months, the last one holding as_of")]
    = 12,
) -> dict[str, Any]:
    """Each month as the period report computes it for ``YYYY-MM`` (the store's zone; the
    part after ``as_of`` counts as neither uptime nor downtime). 404: no valid poll at or
    before ``as_of``."""
    instant = _as_of(as_of) or await _latest_poll(db, store_id)
    found, mode = await period_view.store_monthly(db, store_id, instant, months,
                                                  max_time_ms=limits.remaining_ms())
    if not found:
        raise HTTPException(404, detail=f"store {store_id[:_ECHO]!r} has no valid poll at or "
                                        f"before {instant.isoformat()}")
    return {"store_id": store_id, "as_of": instant, "runs_source": mode, "months": found}
