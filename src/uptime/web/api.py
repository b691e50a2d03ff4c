"""The HTTP API (FastAPI): trigger a report, poll it, download its CSV; OpenAPI at ``/docs``.

Endpoints (every one but ``/healthz`` requires ``Authorization: Bearer <UPTIME_API_TOKEN>``
when that setting is set):

* ``POST /trigger_report`` [``?as_of=ISO-8601`` or JSON ``{"as_of": "..."}``] → 202
  ``{"report_id": "..."}``; generation runs in the background (``uptime.report.reports``).
* ``GET /get_report?report_id=ID`` → 200 JSON ``{"status": "Running", "progress": 0.0-1.0,
  ...}``; 200 ``text/csv`` attachment streamed from GridFS chunk by chunk when Complete;
  200 JSON ``{"status": "Failed", "error": "..."}``; 404 JSON for an unknown id; 422 JSON
  for a missing or malformed id.
* ``GET /reports?limit=N`` → the most recent reports.
* ``POST /polls`` (``uptime.web.polls``) → push polls as a JSON array or NDJSON.
* ``GET /healthz`` → 200 ``{"status": "ok", ...}`` if MongoDB answers ``ping`` and every
  component is healthy, else 503 (``uptime.web.ops``); ``GET /metrics`` → Prometheus metrics.

Errors are always JSON ``{"detail": ...}`` (a list for 422, a string otherwise:
``uptime.web.errors``): client mistakes are 4xx (413 for a body over UPTIME_MAX_BODY_BYTES,
429 with Retry-After past UPTIME_MAX_QUEUED_REPORTS), an unreachable database is 503, and
anything else is a 500 without a stack trace (logged server-side).

The ``AsyncMongoClient`` is created in the app's lifespan (with the embedded mongod when
``MONGODB_URI`` is unset), closed at shutdown, and reaches routes through dependencies.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field, field_validator
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, PyMongoError

from uptime.platform import asof, metrics
from uptime.report import pipeline, queue, reports
from uptime.report.quality import IgnoredCount
from uptime.report.queue import QueueFullError
from uptime.web.errors import (
    BodyLimitMiddleware,
    error_responses,
    install_openapi,
    invalid_input,
    queue_full,
)
from uptime.platform.db import open_database
from uptime.web import ops
from uptime.platform.settings import Settings, get_settings
from uptime.timeline.cli import start_follower

log = logging.getLogger(__name__)


# -- schemas -------------------------------------------------------------------------------
#: The report pipeline versions the API offers (``pipelines/store_uptime.<version>.json``).
ReportVersion = Literal["v1", "v2"]


class TriggerRequest(BaseModel):
    """Optional body of ``POST /trigger_report``."""

    as_of: datetime | None = Field(
        default=None,
        description="Instant the report is for (ISO 8601; no offset = UTC). "
        "Default: the latest poll in store_status.",
    )
    pipeline: ReportVersion | None = Field(
        default=None,
        description="Report pipeline version, v1 or v2 (default v2; same CSV).",
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
    pipeline: str
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


class ReportSummary(BaseModel):
    report_id: str
    status: Literal["Running", "Complete", "Failed"]
    progress: float
    as_of: datetime | None = None
    pipeline: str
    kind: str | None = None
    period: dict[str, Any] | None = None
    created_at: datetime
    finished_at: datetime | None = None
    rows: int | None = None
    timezone_fallbacks: int | None = None
    error: str | None = None
    ignored: list[IgnoredCount] | None = None


def _status_of(doc: dict[str, Any]) -> ReportStatus:
    return ReportStatus(report_id=doc["_id"], **{k: v for k, v in doc.items() if k != "_id"})


# -- dependencies --------------------------------------------------------------------------
def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> AsyncDatabase:
    return request.app.state.db


def get_service(request: Request) -> reports.ReportService:
    return request.app.state.reports


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DbDep = Annotated[AsyncDatabase, Depends(get_db)]
ServiceDep = Annotated[reports.ReportService, Depends(get_service)]
_bearer = HTTPBearer(auto_error=False, description="UPTIME_API_TOKEN, when the service sets one")


async def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless ``UPTIME_API_TOKEN`` is unset or the request carries it as a bearer token."""
    expected = settings.api_token
    if expected is None:
        return
    if credentials is None or not secrets.compare_digest(
        credentials.credentials.encode(), expected.encode()
    ):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong bearer token (send Authorization: Bearer <UPTIME_API_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


ReportId = Annotated[
    str,
    Query(
        pattern=reports.REPORT_ID_PATTERN,
        description="The id returned by POST /trigger_report (32 URL-safe characters).",
    ),
]

# -- routes --------------------------------------------------------------------------------
router = APIRouter(dependencies=[Depends(require_token)])
open_router = APIRouter()


def pipeline_version(query: ReportVersion | None, body: ReportVersion | None) -> str:
    """The report version asked for (query or body; issue 8, item 4; default v2); 422 if the
    two differ. An unknown version never gets here: ``ReportVersion`` is validated first."""
    from uptime.report.pipeline import check_version

    if query is not None and body is not None and query != body:
        raise invalid_input(
            ("body", "pipeline"), "pipeline given twice (query and body) with different values",
            body,
        )
    return check_version(query if query is not None else body)


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
        ReportVersion | None, Query(description="Report pipeline version: v1 or v2 (default v2)")
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
    from uptime.web.period_params import period_of_query

    chosen_period = period_of_query(period, period_from, period_to)
    try:
        query_as_of = asof.parse_as_of(as_of, repair_plus=True) if as_of is not None else None
    except asof.AsOfError as exc:
        raise invalid_input(("query", "as_of"), str(exc), as_of[:200]) from None
    body_as_of = body.as_of if body is not None else None
    if query_as_of is not None and body_as_of is not None and query_as_of != body_as_of:
        raise invalid_input(
            ("body", "as_of"), "as_of given twice (query and body) with different values",
            body_as_of.isoformat(),
        )
    chosen = reports.as_utc(query_as_of or body_as_of)
    version = pipeline_version(pipeline, body.pipeline if body is not None else None)
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
async def get_report(db: DbDep, report_id: ReportId) -> Any:
    """Running → JSON with progress; Failed → JSON with the error; Complete → the CSV."""
    doc = await reports.get_report(db, report_id)
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no report with id {report_id}")
    if doc["status"] != reports.COMPLETE:
        return _status_of(doc)
    length = await db[f"{reports.BUCKET_NAME}.files"].find_one(
        {"_id": doc["file_id"]}, {"length": 1}
    )
    if length is None:
        raise HTTPException(
            status.HTTP_410_GONE,
            detail=f"the CSV of report {report_id} was removed; trigger a new report",
        )
    return StreamingResponse(
        reports.iter_csv_chunks(db, doc["file_id"]),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="report-{report_id}.csv"',
            "Content-Length": str(length["length"]),
        },
    )


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
    docs = await reports.list_reports(db, limit)
    return [ReportSummary(report_id=d["_id"], **{k: v for k, v in d.items() if k != "_id"})
            for d in docs]


# -- error handlers ------------------------------------------------------------------------
_MAX_ECHO = 200  # characters of a rejected input repeated back in a 422


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, with each rejected input cut to ``_MAX_ECHO`` characters (a 2 MB bad
    value must not come back as a 2 MB answer)."""
    errors = []
    for error in exc.errors():  # type: ignore[attr-defined]
        error = dict(error)
        error.pop("ctx", None)
        text = repr(error.get("input"))
        if len(text) > _MAX_ECHO:
            error["input"] = text[:_MAX_ECHO] + "…"
        errors.append(error)
    return JSONResponse(
        status_code=422,
        content={"detail": jsonable_encoder(errors)},
    )


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable: %s", exc)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": "the database is unavailable; try again shortly"},
    )


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("database error", exc_info=exc)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": "database error; try again shortly"},
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return JSONResponse(
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        content={"detail": "internal error; see the service log"},
    )


# -- app -----------------------------------------------------------------------------------
def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. The lifespan opens the MongoDB client (embedded server if
    ``MONGODB_URI`` is unset), applies or checks migrations, starts the report service
    (crash recovery, leases, retention) and undoes all of it at shutdown."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_database(
            settings, server_selection_timeout_s=settings.db_timeout_s
        ) as db:
            service = reports.ReportService(db, settings)
            await service.start()
            app.state.db = db
            app.state.reports = service
            follower = await start_follower(db)  # status_runs kept current (UPTIME_FOLLOW_RUNS)
            try:
                yield
            finally:
                if follower is not None:
                    await follower.stop()
                await service.stop()

    app = FastAPIOffline(  # Swagger UI and ReDoc assets served locally, no CDN needed
        title="Uptime Monitor",
        version="1.0",
        summary="Store uptime and downtime within business hours, as CSV reports.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(  # POST /polls takes batches and enforces UPTIME_POLLS_MAX_BYTES itself
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, per_path={"/polls": None}
    )
    install_openapi(app, token_configured=settings.api_token is not None)
    app.include_router(router)
    app.include_router(open_router)
    from uptime.web import polls  # POST /polls (issue 8 item 1); imports this module

    app.include_router(polls.router)
    from uptime.web import dashboard_api, pages  # the dashboard (issue 11): JSON API and page

    app.include_router(dashboard_api.router, dependencies=[Depends(require_token)])
    pages.mount(app)
    app.include_router(ops.health_router)
    app.include_router(ops.metrics_router, dependencies=[Depends(require_token)])
    metrics.PIPELINE_INFO.labels(pipeline.pipeline_tag(pipeline.DEFAULT_VERSION)).set(1)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(QueueFullError, queue_full)
    app.add_exception_handler(ConnectionFailure, _database_unavailable)
    app.add_exception_handler(PyMongoError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
    return app
