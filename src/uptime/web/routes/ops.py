"""Operations endpoints: ``GET /healthz`` and ``GET /metrics`` (issue 10, items 6a and 7).

* ``/healthz`` (never needs the token): pings MongoDB with its own short timeout
  (``UPTIME_HEALTH_TIMEOUT_S``, 1.5 s, through PyMongo's client-side operation timeout) and runs
  every registered component check (e.g. the runs follower). 200
  ``{"status": "ok", "database": "ok", ...}`` when all pass; 200 ``{"status": "degraded",
  "follower": "degraded: ...", "timeline": {mode, reason, last_rebuild_age_s}}`` when the
  status timeline is not kept live (mode ``fallback``: a standalone server, or a full rebuild
  in progress; reports still work, on pipeline v1, issue 14); 503
  ``{"detail": "...", "status": "unavailable", "database": "<reason>", ...}`` otherwise, within
  about the timeout even when the database is gone (a health probe gets an answer, not a
  timeout).
* ``/metrics``: the Prometheus text exposition of ``uptime.platform.metrics`` (bearer token
  when ``UPTIME_API_TOKEN`` is set, as for every other endpoint).

Component checks: ``register_check(app, name, check)`` where ``check()`` is an async callable
returning ``None`` when healthy or a one-line reason when not. The API's lifespan registers the
runs follower on its own: ``/healthz`` and ``/metrics`` find the follower this process runs
on the app's database (``uptime.timeline``'s registry) and check it with
:func:`follower_check` / read its lag with ``metrics.watch_follower``; a check registered
under ``"follower"`` takes precedence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pymongo
from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from pymongo.errors import PyMongoError

from uptime.platform import metrics
from uptime.platform.constants import HEARTBEAT_STALE_S
from uptime.platform.tasks import one_line
from uptime.timeline.control import running_follower

HealthCheck = Callable[[], Awaitable[str | None]]

health_router = APIRouter()
metrics_router = APIRouter()


def register_check(app: FastAPI, name: str, check: HealthCheck) -> None:
    """Add a component to ``/healthz``: ``check()`` returns ``None`` (healthy) or a reason."""
    checks: dict[str, HealthCheck] = getattr(app.state, "health_checks", None) or {}
    checks[name] = check
    app.state.health_checks = checks


#: A follower whose last sign of life (``state["heartbeat"]``) is older than this is stalled.
FOLLOWER_STALL_S = HEARTBEAT_STALE_S  # one threshold for "is the follower alive" (platform.constants)


def follower_check(follower: Any, stall_s: float = FOLLOWER_STALL_S) -> HealthCheck:
    """The ``/healthz`` check of a running ``uptime.timeline.RunsFollower``: unhealthy when its
    task ended (crashed or stopped) or when it has not written its state (``heartbeat``, at
    least every second while idle, after every batch) for ``stall_s`` seconds (plus its
    rebuild interval in ``fallback`` mode, e.g. on a standalone server), except while it
    rebuilds the whole collection (``pending == -1``). Use in the API lifespan::

        register_check(app, "follower", follower_check(follower))
    """

    async def check() -> str | None:
        if not follower.alive:
            return "not running"
        state = getattr(follower, "state", {}) or {}
        beat = state.get("heartbeat")
        if state.get("pending") == -1 or beat is None:
            return None  # rebuilding, or starting: alive
        age = (datetime.now(UTC) - beat).total_seconds()
        limit = stall_s
        if state.get("mode") == "fallback":  # periodic rebuilds (standalone): one per interval
            limit += float(getattr(follower, "standalone_interval_s", 0.0))
        if age > limit:
            return f"stalled: no progress for {age:.0f} s (mode {state.get('mode')})"
        return None

    return check


async def _database(request: Request) -> str | None:
    timeout = request.app.state.settings.health_timeout_s
    try:
        with pymongo.timeout(timeout):
            await request.app.state.db.command("ping")
    except PyMongoError as exc:
        return f"unavailable: {one_line(exc)}"
    return None


async def _component(check: HealthCheck, timeout: float) -> str | None:
    try:
        return await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        return f"no answer within {timeout} s"
    except Exception as exc:  # a broken check is an unhealthy component, never a 500
        return one_line(exc)


def _running_follower(db: Any) -> Any:
    """The runs follower this process runs on ``db``, or None: no follower
    (``UPTIME_FOLLOW_RUNS`` false)."""
    return running_follower(db)


def _timeline(db: Any) -> dict[str, Any] | None:
    """The status timeline's state for ``/healthz`` from this process's follower: ``mode``
    (``change_stream`` | ``fallback``), ``reason``, ``rebuilding`` (bool),
    ``last_rebuild_age_s`` (seconds, None before the first); None when no follower runs here."""
    follower = _running_follower(db)
    if follower is None:
        return None
    state = getattr(follower, "state", {}) or {}
    at = (state.get("last_rebuild") or {}).get("at")
    age = None
    if isinstance(at, datetime):
        age = round((datetime.now(UTC) - (at if at.tzinfo else at.replace(tzinfo=UTC)))
                    .total_seconds(), 1)
    return {"mode": state.get("mode"), "reason": state.get("reason"),
            "rebuilding": state.get("pending") == -1, "last_rebuild_age_s": age}


def _checks(request: Request) -> dict[str, HealthCheck]:
    """Registered checks, plus the follower's when one runs and none was registered."""
    checks = dict(getattr(request.app.state, "health_checks", None) or {})
    if "follower" not in checks:
        follower = _running_follower(request.app.state.db)
        if follower is not None:
            checks["follower"] = follower_check(follower)
            metrics.watch_follower(follower)
    return checks


class Health(BaseModel):
    """``/healthz``'s answer: ``status`` and one entry per component (``database``, and
    ``follower`` when the runs follower runs here): ``"ok"`` or the reason it is not."""

    model_config = ConfigDict(extra="allow")
    status: str = Field(description='"ok"; "degraded" (200: the status timeline is not kept '
                        'live, reports run pipeline v1); or "unavailable" (503)')
    database: str = Field(description='"ok", or "unavailable: <reason>"')


class Unhealthy(Health):
    detail: str = Field(description="what is wrong, for a person")


@health_router.get(
    "/healthz",
    summary="Database ping and component checks (no token needed)",
    response_model=Health,
    responses={
        503: {
            "model": Unhealthy,
            "description": "MongoDB or a component (the runs follower) is unhealthy",
        }
    },
)
async def healthz(request: Request) -> Any:
    """200 with every component "ok", else 503 naming what is wrong (answers within about
    ``UPTIME_HEALTH_TIMEOUT_S`` seconds)."""
    timeout = request.app.state.settings.health_timeout_s
    problems: dict[str, str | None] = {"database": await _database(request)}
    metrics.DATABASE_UP.set(0 if problems["database"] else 1)
    for name, check in _checks(request).items():
        problems[name] = await _component(check, timeout)
    body: dict[str, Any] = {name: problem or "ok" for name, problem in problems.items()}
    registered = getattr(request.app.state, "health_checks", None) or {}
    # the timeline of this process's follower, unless another follower check was registered
    timeline = None if "follower" in registered else _timeline(request.app.state.db)
    degraded = timeline is not None and (timeline["mode"] == "fallback" or timeline["rebuilding"])
    if timeline is not None:
        body["timeline"] = timeline
        if degraded and body.get("follower") == "ok":
            age = timeline["last_rebuild_age_s"]
            body["follower"] = (
                f"degraded: mode fallback ({timeline['reason']}); last rebuild "
                + ("not finished yet" if age is None else f"{age:.0f} s ago")
                + "; reports run pipeline v1 (exact, slower) until the timeline is live")
    if not any(problems.values()):
        return {"status": "degraded" if degraded else "ok", **body}
    detail = (
        "the database is unavailable; try again shortly"
        if problems["database"]
        else "unhealthy: " + ", ".join(n for n, p in problems.items() if p)
    )
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": detail, "status": "unavailable", **body},
    )


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "Prometheus text format 0.0.4"}},
)
async def prometheus_metrics(request: Request) -> Response:
    """Report durations/outcomes/rows, pipeline version, ingest counts, follower lag, time-zone
    fallbacks, database up, background task failures, and the process metrics."""
    follower = _running_follower(request.app.state.db)
    if follower is not None:
        metrics.watch_follower(follower)
    payload, content_type = metrics.exposition()
    return Response(content=payload, media_type=content_type)
