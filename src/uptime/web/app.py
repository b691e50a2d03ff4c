"""The HTTP API (FastAPI): trigger a report, poll it, download its CSV; OpenAPI at ``/docs``.

Endpoints (every one but ``/healthz`` requires ``Authorization: Bearer <UPTIME_API_TOKEN>``
when that setting is set):

* ``POST /trigger_report`` [``?as_of=ISO-8601`` or JSON ``{"as_of": "..."}``] → 202
  ``{"report_id": "..."}``; generation runs in the background (``uptime.report.service``).
* ``GET /get_report?report_id=ID`` → 200 JSON ``{"status": "Running", "progress": 0.0-1.0,
  ...}``; 200 ``text/csv`` attachment streamed from GridFS chunk by chunk when Complete;
  200 JSON ``{"status": "Failed", "error": "..."}``; 404 JSON for an unknown id; 422 JSON
  for a missing or malformed id.
* ``GET /reports?limit=N`` → the most recent reports.
* ``POST /polls`` (``uptime.web.routes.polls``) → push polls as a JSON array or NDJSON.
* ``GET /healthz`` → 200 ``{"status": "ok", ...}`` if MongoDB answers ``ping`` and every
  component is healthy, else 503 (``uptime.web.routes.ops``); ``GET /metrics`` → Prometheus metrics.

Errors are always JSON ``{"detail": ...}`` (a list for 422, a string otherwise:
``uptime.web.errors``): client mistakes are 4xx (413 for a body over UPTIME_MAX_BODY_BYTES,
429 with Retry-After past UPTIME_MAX_QUEUED_REPORTS), an unreachable database is 503, and
anything else is a 500 without a stack trace (logged server-side).

Every request runs under ``uptime.web.bounds.RequestBoundsMiddleware`` (database time limit
``UPTIME_REQUEST_TIMEOUT_S``, work cancelled when a GET's client leaves; a time-limit expiry
is 503 naming it) and ``uptime.web.security.SecurityHeadersMiddleware`` (CSP on HTML,
nosniff, Referrer-Policy, X-Frame-Options on every answer). Issue 15.

The ``AsyncMongoClient`` is created in the app's lifespan (with the embedded mongod when
``MONGODB_URI`` is unset), closed at shutdown, and reaches routes through dependencies.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError

from uptime.platform import metrics
from uptime.report import pipeline
from uptime.report.service import ReportService
from uptime.report.queue import QueueFullError
from uptime.web.errors import (
    MAX_ECHO,
    BodyLimitMiddleware,
    install_openapi,
    queue_full,
)
from uptime.platform.db import open_database
from uptime.web.bounds import RequestBoundsMiddleware  # issue 15: time limits, cancel
from uptime.web.deps import require_token
from uptime.web import pages
from uptime.web.routes import dashboard as dashboard_api
from uptime.web.routes import incidents as incident_routes
from uptime.web.routes import notify as notify_routes
from uptime.web.routes import ops, polls
from uptime.web.routes import periods as period_routes
from uptime.web.routes import reports as report_routes
from uptime.platform.settings import Settings, get_settings
from uptime.web.security import SecurityHeadersMiddleware  # issue 15: CSP, nosniff...
from uptime.timeline.control import start_follower
from uptime.timeline.retention import compact_forever
from uptime.platform.tasks import spawn

log = logging.getLogger(__name__)


# -- error handlers ------------------------------------------------------------------------
async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, with each rejected input cut to ``MAX_ECHO`` characters (a 2 MB bad
    value must not come back as a 2 MB answer)."""
    errors = []
    for error in exc.errors():  # type: ignore[attr-defined]
        error = dict(error)
        ctx = error.pop("ctx", None) or {}
        if error.get("type") == "json_invalid":  # say what and where, not "JSON decode error"
            at = error.get("loc", ("body", None))[-1]
            error["msg"] = (f"the request body is not valid JSON: {ctx.get('error', 'decode error')}"
                            + (f" at character {at}" if isinstance(at, int) else ""))
        text = repr(error.get("input"))
        if len(text) > MAX_ECHO:
            error["input"] = text[:MAX_ECHO] + "…"
        errors.append(error)
    return JSONResponse(
        status_code=422,
        content={"detail": jsonable_encoder(errors)},
    )


def _over_time_limit(request: Request, exc: Exception) -> JSONResponse | None:
    """503 naming the limit when ``exc`` is PyMongo's time limit (CSOT) running out, not an
    outage (issue 15 item 1); None otherwise."""
    if not getattr(exc, "timeout", False) or isinstance(exc, ServerSelectionTimeoutError):
        return None
    limit = request.app.state.settings.request_timeout_s
    log.warning("%s %s: over the time limit (%g s): %s", request.method, request.url.path,
                limit, exc)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": f"the request took longer than its time limit "
                           f"(UPTIME_REQUEST_TIMEOUT_S = {limit:g} s); ask for less (e.g. a "
                           f"shorter interval) or try again when the service is less busy"},
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    over = _over_time_limit(request, exc)
    if over is not None:
        return over
    log.error("database unavailable: %s", exc)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": "the database is unavailable; try again shortly"},
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    over = _over_time_limit(request, exc)
    if over is not None:
        return over
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
            service = ReportService(db, settings)
            await service.start()
            app.state.db = db
            app.state.reports = service
            follower = await start_follower(db, settings)  # status_runs kept current (follow_runs)
            compactor = spawn(compact_forever(  # issue 18: raw polls past the retention
                db, settings.poll_retention_days, settings.poll_compact_interval_s),
                "poll-compaction")
            try:
                yield
            finally:
                compactor.cancel()
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
    app.add_middleware(RequestBoundsMiddleware, timeout_s=settings.request_timeout_s,
                       outage_timeout_s=settings.db_timeout_s)
    app.add_middleware(  # POST /polls takes batches and enforces UPTIME_POLLS_MAX_BYTES itself
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, per_path={"/polls": None}
    )
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: on every answer
    install_openapi(app, token_configured=settings.api_token is not None)
    app.include_router(report_routes.router)
    app.include_router(report_routes.open_router)
    app.include_router(polls.router)
    app.include_router(dashboard_api.router, dependencies=[Depends(require_token)])
    app.include_router(incident_routes.router, dependencies=[Depends(require_token)])
    # the period page's API (issue 18 item 6): /periods/reports, /stores/{id}/monthly
    app.include_router(period_routes.router, dependencies=[Depends(require_token)])
    # /channels, /notifications, /maintenance; its lifespan runs the notification deliverer
    app.include_router(notify_routes.router, dependencies=[Depends(require_token)])
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
