"""The report routes: ``POST /trigger_report``, ``GET /get_report``, ``GET /reports`` (see
``uptime.web.app`` for the whole API) and their schemas."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import pymongo
from fastapi import APIRouter, Body, Depends, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from uptime.platform import asof
from uptime.report import pipeline, queue, storage
from uptime.report.quality import IgnoredCount
from uptime.web.errors import (
    error_responses,
    invalid_input,
    query_instant,
)
from uptime.report.pipeline import check_version
from uptime.web.period_params import period_of_query
from uptime.web.deps import DbDep, ServiceDep, SettingsDep, require_token
from uptime.web.bounds import limit_s

log = logging.getLogger(__name__)


# -- schemas -------------------------------------------------------------------------------
#: The report pipeline versions the API offers (``pipelines/store_uptime.<version>.json``).
ReportVersion = Literal["v1", "v2"]


class TriggerRequest(BaseModel):
    """Optional body of ``POST /trigger_report``. An unknown key is a 422 naming it (a
    misspelled ``asof`` must not silently give a report for the latest poll)."""

    model_config = ConfigDict(extra="forbid")

    as_of: datetime | None = Field(
        default=None,
        description="Instant the report is for (ISO 8601; no offset = UTC). "
        "Default: the latest poll in store_status.",
    )
    pipeline: ReportVersion | None = Field(
        default=None,
        description="Report pipeline version, v1 or v2 (same CSV). Default: v2 when the "
        "status timeline is current, else v1 at once; the report records which ran.",
    )

    @field_validator("as_of", mode="before")
    @classmethod
    def _iso_text_only(cls, value: Any) -> Any:
        """ISO 8601 text only (``uptime.platform.asof``): pydantic alone would read ``12`` or
        ``"1700000000"`` as seconds since 1970 (issue 9 item 9)."""
        if value is None:
            return None
        return asof.parse_as_of(value)  # AsOfError is a ValueError: a 422 naming the form


class TriggerResponse(BaseModel):
    report_id: str


class ReportStatus(BaseModel):
    """A report that is not (yet) a CSV: Running or Failed."""

    report_id: str
    status: Literal["Running", "Complete", "Failed"]
    progress: float = Field(description="0.0-1.0: rows written / stores in the report")
    as_of: datetime | None = None
    pipeline: str = Field(description="the pipeline that produced (or produces) the report, "
                          'e.g. "store_uptime@v1"; chosen when generation starts')
    pipeline_requested: str | None = Field(
        default=None, description='"default", "v1" or "v2": what the trigger asked for')
    pipeline_reason: str | None = Field(
        default=None, description="why that pipeline runs (e.g. the status timeline's state)")
    kind: str | None = Field(default=None, description='"period" for a period report')
    period: dict[str, Any] | None = Field(
        default=None, description="A period report's {kind, label, from, to}")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    rows: int | None = None
    error: str | None = None
    ignored: list[IgnoredCount] | None = Field(
        default=None, description="Input documents the report ignored (null until counted)"
    )
    phases: dict[str, float] | None = Field(
        default=None, description="Where the generation's time went: {phase: seconds} "
        "(uptime.report.phases; while Running the phases so far, updated with the progress; "
        "null before generation starts). A Complete report's CSV carries them in the "
        "X-Report-Phases header (JSON).")
    store_ranges: int | None = Field(
        default=None, description="How many store ranges the report pipeline ran in "
        "(pipeline v3: UPTIME_REPORT_PARALLEL of them at once; 1 otherwise); set at Complete")


class ReportSummary(BaseModel):
    report_id: str
    status: Literal["Running", "Complete", "Failed"]
    progress: float
    as_of: datetime | None = None
    pipeline: str
    pipeline_reason: str | None = None
    kind: str | None = None
    period: dict[str, Any] | None = None
    created_at: datetime
    finished_at: datetime | None = None
    rows: int | None = None
    timezone_fallbacks: int | None = None
    error: str | None = None
    ignored: list[IgnoredCount] | None = None
    phases: dict[str, float] | None = None
    store_ranges: int | None = None


def _status_of(doc: dict[str, Any]) -> ReportStatus:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    if doc.get("status") == storage.FAILED and doc.get("pipeline") != pipeline.pipeline_tag("v1"):
        fields["error"] = (f"{doc.get('error')}; POST /trigger_report?pipeline=v1 computes the "
                           "report from the polls alone")
    return ReportStatus(report_id=doc["_id"], **fields)


ReportId = Annotated[
    str,
    Query(
        pattern=storage.REPORT_ID_PATTERN,
        description="The id returned by POST /trigger_report (32 URL-safe characters).",
    ),
]

# -- routes --------------------------------------------------------------------------------
router = APIRouter(dependencies=[Depends(require_token)])
open_router = APIRouter()


def pipeline_version(query: ReportVersion | None, body: ReportVersion | None) -> str | None:
    """The report version asked for (query or body; issue 8, item 4), None when neither gives
    one (the default choice: v2 on a current status timeline, else v1, issue 14); 422 if the
    two differ. An unknown version never gets here: ``ReportVersion`` is validated first."""
    if query is not None and body is not None and query != body:
        raise invalid_input(
            ("body", "pipeline"), "pipeline given twice (query and body) with different values",
            body,
        )
    asked = query if query is not None else body
    return None if asked is None else check_version(asked)


@router.post(
    "/trigger_report",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TriggerResponse,
    summary="Start generating a report in the background",
    responses=error_responses(429, 503),
)
async def trigger_report(
    service: ServiceDep,
    settings: SettingsDep,
    as_of: Annotated[
        str | None,
        Query(
            description="ISO 8601 date-time (no offset = UTC; encode + as %2B); default: the "
            "latest poll. A space before an offset (an unencoded +) is read as +.",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    body: Annotated[TriggerRequest | None, Body()] = None,
    pipeline: Annotated[
        ReportVersion | None,
        Query(description="Report pipeline version: v1 or v2 (default: v2 when the status "
              "timeline is current, else v1)"),
    ] = None,
    period: Annotated[
        str | None,
        Query(
            max_length=20,
            description="A period report (issue 18): YYYY-MM, YYYY-Qn, YYYY or YYYY-Www (ISO "
            "week), each in every store's local time. CSV columns: store_id, period_start, "
            "period_end, uptime_hours, downtime_hours, uptime_percent.",
        ),
    ] = None,
    period_from: Annotated[
        str | None,
        Query(alias="from", description="A period report for the UTC range [from, to) "
              "(ISO 8601; encode + as %2B)", json_schema_extra={"format": "date-time"}),
    ] = None,
    period_to: Annotated[
        str | None,
        Query(alias="to", description="End of the from/to range (exclusive)",
              json_schema_extra={"format": "date-time"}),
    ] = None,
) -> TriggerResponse:
    """Create a report for ``as_of`` (query or body; default the latest poll) with pipeline
    ``pipeline`` (default v2) and return its id; while a report for the same ``as_of`` and
    pipeline is still Running, return that report's id. With ``period`` or ``from``/``to``
    it is a period report (``uptime.report.period``; 422 for a bad period)."""
    chosen_period = period_of_query(period, period_from, period_to)
    query_as_of = query_instant("as_of", as_of)
    body_as_of = body.as_of if body is not None else None
    if query_as_of is not None and body_as_of is not None and query_as_of != body_as_of:
        raise invalid_input(
            ("body", "as_of"), "as_of given twice (query and body) with different values",
            body_as_of.isoformat(),
        )
    chosen = storage.as_utc(query_as_of or body_as_of)
    too_early = None if chosen_period is not None else asof.report_as_of_problem(chosen)
    if too_early is not None:
        where = ("query", "as_of") if query_as_of is not None else ("body", "as_of")
        raise invalid_input(where, too_early, chosen.isoformat() if chosen else None)
    version = pipeline_version(pipeline, body.pipeline if body is not None else None)
    if chosen_period is not None and version is not None:
        raise invalid_input(
            ("query", "pipeline"), "pipeline chooses the hour/day/week report's pipeline; a "
            "period report always runs period_uptime@v1: leave pipeline out", version)
    existing = await queue.admit(
        service.db, chosen, limit=settings.max_queued_reports, version=version,
        period=chosen_period,
    )
    return TriggerResponse(
        report_id=existing or await service.trigger(chosen, version, chosen_period)
    )


@router.get(
    "/get_report",
    summary="Report status, or its CSV once complete",
    responses={
        200: {
            "description": "Running/Failed: JSON status. Complete: the CSV (text/csv).",
            "content": {"text/csv": {}, "application/json": {}},
        },
        **error_responses(404, 410, 503),
    },
    response_model=ReportStatus,
)
async def get_report(db: DbDep, settings: SettingsDep, report_id: ReportId) -> Any:
    """Running → JSON with progress; Failed → JSON with the error; Complete → the CSV."""
    # Its own limits (uptime.web.bounds): the reads below, then each CSV chunk, get
    # UPTIME_REQUEST_TIMEOUT_S (UPTIME_DB_TIMEOUT_S while no server is known: bounds.limit_s);
    # the download as a whole may take as long as the client reads.
    with pymongo.timeout(limit_s(db, settings.request_timeout_s, settings.db_timeout_s)):
        doc = await storage.get_report(db, report_id)
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                detail=f"no report with id {report_id}")
        if doc["status"] != storage.COMPLETE:
            return _status_of(doc)
        length = await db[f"{storage.BUCKET_NAME}.files"].find_one(
            {"_id": doc["file_id"]}, {"length": 1}
        )
    if length is None:
        raise HTTPException(
            status.HTTP_410_GONE,
            detail=f"the CSV of report {report_id} was removed; trigger a new report",
        )
    return StreamingResponse(
        _each_within(storage.iter_csv_chunks(db, doc["file_id"]), settings.request_timeout_s),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="report-{report_id}.csv"',
            "Content-Length": str(length["length"]),
            "X-Report-Pipeline": str(doc.get("pipeline") or ""),
            "X-Report-Phases": json.dumps(doc.get("phases") or {}, separators=(",", ":")),
        },
    )


async def _each_within(chunks: AsyncIterator[bytes], seconds: float) -> AsyncIterator[bytes]:
    """``chunks``, each one read under its own database time limit of ``seconds``."""
    iterator = chunks.__aiter__()
    while True:
        with pymongo.timeout(seconds):
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
        yield chunk


@router.get(
    "/reports",
    response_model=list[ReportSummary],
    summary="Recent reports",
    responses=error_responses(503),
)
async def list_reports(
    db: DbDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[ReportSummary]:
    """The most recent reports, newest first."""
    docs = await storage.list_reports(db, limit)
    return [ReportSummary(report_id=d["_id"], **{k: v for k, v in d.items() if k != "_id"})
            for d in docs]
