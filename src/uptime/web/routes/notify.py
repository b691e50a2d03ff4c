"""HTTP API of the notification channels and the outbox (issue 17, item 4).

Registered by ``uptime.web.app`` behind the bearer token like every other endpoint:

* ``GET /channels`` → ``[{name, kind, url (redacted), has_secret, muted, created_at}]``
* ``POST /channels`` ``{name, url, secret?}`` → 201 the channel; 422 naming the field for a
  bad name, URL (hostile scheme, internal address) or secret; 409 for a name in use.
* ``GET /channels/{name}`` → the channel; ``PATCH /channels/{name}`` ``{muted: bool}``;
  ``DELETE /channels/{name}`` → 204; 404 for an unknown name.
* ``POST /channels/{name}/test`` → 200 ``{delivered, event_id, status_code, error,
  duration_ms}`` (a test event sent now, also to a muted channel).
* ``GET /notifications?channel=&status=&event_id=&limit=`` → the outbox, newest first.

Secrets and URL credentials are never in an answer. Every database operation runs under
``pymongo.timeout(UPTIME_DB_TIMEOUT_S)``.

The router's lifespan runs a :class:`uptime.notify.outbox.Deliverer` for the service's
database (``app.state.db``), so ``serve`` delivers the outbox while it runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

import pymongo
from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from uptime.notify import channels as ch
from uptime.notify import maintenance as mw
from uptime.notify import delivery, outbox
from uptime.platform.asof import parse_as_of


@asynccontextmanager
async def _deliverer(app: FastAPI) -> AsyncIterator[None]:
    db = getattr(app.state, "db", None)
    if db is None:  # the app's own lifespan did not open a database: nothing to deliver
        yield
        return
    deliverer = outbox.Deliverer(db, app.state.settings)
    await deliverer.start()
    app.state.deliverer = deliverer
    try:
        yield
    finally:
        await deliverer.stop()


router = APIRouter(tags=["notifications"], lifespan=_deliverer)

ChannelName = Annotated[str, Path(pattern=ch.NAME_PATTERN, description="The channel's name")]


class ChannelIn(BaseModel):
    """Body of ``POST /channels``. ``url`` and ``secret`` are checked by
    ``uptime.notify.channels`` (not by pydantic), so a refused value is never echoed back;
    their patterns below are documentation."""

    name: str = Field(pattern=ch.NAME_PATTERN,
                      description="Unique: 1-64 letters, digits, '_', '.', '-'")
    url: str = Field(description="An Apprise URL, or an http(s):// URL (signed webhook)",
                     json_schema_extra={"maxLength": ch.MAX_URL_CHARS,
                                        "pattern": "^[A-Za-z][A-Za-z0-9+.-]*://"})
    secret: str | None = Field(
        default=None, description="Standard Webhooks secret whsec_<base64 of 24-64 bytes>",
        json_schema_extra={"pattern": "^whsec_[A-Za-z0-9+/]{32,88}={0,2}$"})


class ChannelOut(BaseModel):
    name: str
    kind: Literal["webhook", "apprise"]
    url: str = Field(description="redacted: credentials replaced by ***")
    has_secret: bool
    muted: bool
    created_at: datetime | None = None


class ChannelPatch(BaseModel):
    muted: bool


class TestResult(BaseModel):
    delivered: bool
    event_id: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: float


class Delivery(BaseModel):
    id: str
    event_id: str
    type: str | None = None
    channel: str
    status: str
    reason: str | None = None
    attempt_count: int
    created_at: datetime | None = None
    delivered_at: datetime | None = None
    due_at: datetime | None = None
    last_attempt: dict[str, Any] | None = None


@contextmanager
def _db_call(request: Request) -> Iterator[None]:
    """The database work of one route: under ``pymongo.timeout(UPTIME_DB_TIMEOUT_S)``, with a
    refused input (``ChannelError``, ``WindowError``: ``field``, ``status``) turned into its
    answer — 422 in FastAPI's list shape located at ``("body", field)``, else ``status``
    (404 unknown, 409 name in use) with the reason as ``detail``."""
    try:
        with pymongo.timeout(request.app.state.settings.db_timeout_s):
            yield
    except (ch.ChannelError, mw.WindowError) as exc:
        if exc.status == 422:
            raise HTTPException(422, detail=[{"type": "value_error", "loc": ["body", exc.field],
                                              "msg": str(exc)}]) from None
        raise HTTPException(exc.status, detail=str(exc)) from None


@router.get("/channels", response_model=list[ChannelOut], summary="Notification channels")
async def get_channels(request: Request) -> list[dict[str, Any]]:
    """Every channel, by name; URLs redacted, secrets never shown."""
    with _db_call(request):
        return await ch.list_channels(request.app.state.db)


@router.post("/channels", status_code=201, response_model=ChannelOut,
             summary="Add a notification channel",
             responses={409: {"description": "name in use"}})
async def post_channel(request: Request, body: ChannelIn) -> dict[str, Any]:
    """Add a channel; hostile URLs are refused with 422 (README, "Notifications")."""
    settings = request.app.state.settings
    with _db_call(request):
        return await ch.add_channel(request.app.state.db, body.name, body.url,
                                    body.secret,
                                    allow_private=settings.notify_allow_private)


@router.get("/channels/{name}", response_model=ChannelOut, summary="One channel",
            responses={404: {"description": "unknown channel"}})
async def get_channel(request: Request, name: ChannelName) -> dict[str, Any]:
    with _db_call(request):
        return ch.public_view(await ch.get_channel(request.app.state.db, name))


@router.patch("/channels/{name}", response_model=ChannelOut, summary="Mute or unmute",
              responses={404: {"description": "unknown channel"}})
async def patch_channel(request: Request, name: ChannelName, body: ChannelPatch
                        ) -> dict[str, Any]:
    """``{"muted": true}`` mutes the channel (its notifications are recorded as skipped)."""
    with _db_call(request):
        return await ch.set_muted(request.app.state.db, name, body.muted)


@router.delete("/channels/{name}", status_code=204, summary="Remove a channel",
               responses={404: {"description": "unknown channel"}})
async def delete_channel(request: Request, name: ChannelName) -> Response:
    with _db_call(request):
        await ch.remove_channel(request.app.state.db, name)
    return Response(status_code=204)


@router.post("/channels/{name}/test", response_model=TestResult,
             summary="Send a test event now", responses={404: {"description": "unknown"}})
async def test_channel_route(request: Request, name: ChannelName) -> dict[str, Any]:
    """Send a ``test`` event to the channel now (not through the outbox; also when muted)."""
    with _db_call(request):
        channel = await ch.get_channel(request.app.state.db, name)
    attempt = await delivery.send_test_to(channel, request.app.state.settings)
    return {"delivered": attempt["outcome"] == "delivered", **attempt}


@router.get("/notifications", response_model=list[Delivery], summary="The outbox")
async def get_notifications(
    request: Request,
    channel: Annotated[str | None, Query(pattern=ch.NAME_PATTERN)] = None,
    status: Annotated[Literal["pending", "sending", "delivered", "failed", "skipped"] | None,
                      Query()] = None,
    event_id: Annotated[str | None, Query(max_length=outbox.MAX_EVENT_ID_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """Recent notifications, newest first, each with its last attempt (a failed one shows
    why: ``reason`` permanent|expired and the HTTP status or error)."""
    with _db_call(request):
        return await outbox.list_deliveries(request.app.state.db, channel=channel,
                                            status=status, event_id=event_id, limit=limit)


# -- maintenance windows -------------------------------------------------------------------
class WindowIn(BaseModel):
    """Body of ``POST /maintenance``: ``kind`` once (``start``, ``end``: ISO 8601, no offset
    = UTC) or weekly (``days`` 0 = Monday … 6, ``start_local``/``end_local`` ``HH:MM`` in each
    store's own zone; end ≤ start ends the next day); ``stores`` omitted = every store."""

    name: str = Field(pattern=ch.NAME_PATTERN)
    kind: Literal["once", "weekly"]
    stores: list[str] | None = Field(default=None, max_length=10_000)
    start: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    end: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    days: list[int] | None = Field(default=None, max_length=7)
    start_local: str | None = Field(default=None, json_schema_extra={"pattern": r"^\d\d:\d\d$"})
    end_local: str | None = Field(default=None, json_schema_extra={"pattern": r"^\d\d:\d\d$"})
    note: str | None = Field(default=None, max_length=500)


class WindowOut(BaseModel):
    name: str
    kind: Literal["once", "weekly"]
    stores: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    days: list[int] | None = None
    start_local: str | None = None
    end_local: str | None = None
    note: str | None = None
    created_at: datetime | None = None


@router.get("/maintenance", response_model=list[WindowOut], summary="Maintenance windows")
async def get_windows(request: Request) -> list[dict[str, Any]]:

    with _db_call(request):
        return await mw.list_windows(request.app.state.db)


@router.post("/maintenance", status_code=201, response_model=WindowOut,
             summary="Add a maintenance window", responses={409: {"description": "name in use"}})
async def post_window(request: Request, body: WindowIn) -> dict[str, Any]:
    """Incidents inside a window are recorded and flagged but not announced."""

    db = request.app.state.db
    with _db_call(request):
        if body.kind == "once":
            moments = []
            for field in ("start", "end"):
                value = getattr(body, field)
                if value is None:
                    raise mw.WindowError(field, f"{field} is required for a one-off window")
                try:
                    moments.append(parse_as_of(value))
                except ValueError as exc:
                    raise mw.WindowError(field, f"{field}: {exc}") from None
            return await mw.add_once(db, body.name, moments[0], moments[1],
                                     stores=body.stores, note=body.note)
        for field in ("days", "start_local", "end_local"):
            if getattr(body, field) is None:
                raise mw.WindowError(field, f"{field} is required for a weekly window")
        return await mw.add_weekly(db, body.name, body.days, body.start_local,
                                   body.end_local, stores=body.stores, note=body.note)


@router.delete("/maintenance/{name}", status_code=204, summary="Remove a maintenance window",
               responses={404: {"description": "unknown window"}})
async def delete_window(request: Request, name: ChannelName) -> Response:

    with _db_call(request):
        await mw.remove_window(request.app.state.db, name)
    return Response(status_code=204)
