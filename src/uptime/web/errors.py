"""One shape for every API error, the request-size limit, and an OpenAPI document that says so.

Spec: issue 9 items 10 (413, 429) and 11 ("the OpenAPI document says what the service does").

Error bodies (every status):

* 422 — ``{"detail": [{"loc": [...], "msg": "...", "type": "...", "input": ...}]}``, a list
  as FastAPI documents it (``HTTPValidationError``), for every rejected input including
  ``as_of`` (no 422 carries a string ``detail``);
* every other error (400, 401, 404, 410, 413, 429, 500, 503) — ``{"detail": "<reason>"}``
  (:class:`ErrorMessage`).

The limit: a request body larger than ``UPTIME_MAX_BODY_BYTES`` is refused with 413 before
any route runs, on every endpoint (``Content-Length`` checked first; a body sent without one,
chunked, is counted while it is read). ``POST /polls`` takes batches and enforces its own
limit, ``UPTIME_POLLS_MAX_BYTES``, with its own messages (``per_path`` ``None``).

The bearer security scheme is in the OpenAPI document only when ``UPTIME_API_TOKEN`` is set;
``/docs``, ``/redoc`` and ``/openapi.json`` never need the token (they describe the API and
hold no data).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from uptime.platform import asof
from uptime.report.queue import QueueFullError

#: Characters of a rejected input repeated back in a 422 (the one home of this limit).
MAX_ECHO = 200


class ErrorMessage(BaseModel):
    """Body of every error but 422: a reason the client can act on."""

    detail: str


_DESCRIPTIONS = {
    400: "Malformed request (e.g. a body that is not valid JSON)",
    401: "Missing or wrong bearer token (only when UPTIME_API_TOKEN is set)",
    404: "No such report or store (or the store has no valid poll / no row)",
    409: "The report is not Complete yet",
    410: "The report's CSV or stored rows are gone; trigger a new report",
    413: "Request body larger than UPTIME_MAX_BODY_BYTES",
    429: "Too many reports queued (UPTIME_MAX_QUEUED_REPORTS); retry after Retry-After seconds",
    503: "MongoDB is unavailable or failed; try again shortly",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries (model :class:`ErrorMessage`) for the given statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": ErrorMessage, "description": _DESCRIPTIONS[code]}
        if code == 429:
            entry["headers"] = {
                "Retry-After": {"description": "seconds", "schema": {"type": "integer"}}
            }
        out[code] = entry
    return out


def invalid_input(loc: Iterable[str | int], message: str, value: Any) -> RequestValidationError:
    """A 422 in FastAPI's list shape for one input rejected by a route's own check."""
    return RequestValidationError(
        [{"loc": tuple(loc), "msg": message, "type": "value_error", "input": value}]
    )


def query_instant(name: str, text: str | None) -> datetime | None:
    """The instant query parameter ``name`` (``as_of``, ``from``, ``to``...) as an aware UTC
    ``datetime``; ``None`` when it is absent.

    ISO 8601 only (``uptime.platform.asof.parse_as_of``; no offset = UTC), with a ``+`` that a
    query string decoded to a space repaired (``repair_plus``).

    Raises:
        fastapi.exceptions.RequestValidationError: (a 422 in the list shape) located at
            ``("query", name)``, naming the expected form, echoing at most 200 characters.
    """
    if text is None:
        return None
    try:
        return asof.parse_as_of(text, repair_plus=True)
    except asof.AsOfError as exc:
        raise invalid_input(("query", name), str(exc), text[:MAX_ECHO]) from None


async def queue_full(_request: Request, exc: Exception) -> JSONResponse:
    """429 with ``Retry-After`` (item 10)."""
    assert isinstance(exc, QueueFullError)
    return JSONResponse(
        status_code=429,
        content={"detail": str(exc)},
        headers={"Retry-After": str(exc.retry_after)},
    )


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413 ``{"detail": ...}`` (pure ASGI, so it
    covers every route and streams nothing past the limit into the app)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, per_path: dict[str, int | None] | None = None
    ) -> None:
        self.app = app
        self.default_max = max_bytes
        self.per_path = per_path or {}

    def _too_large(self, limit: int) -> JSONResponse:
        return JSONResponse(
            status_code=413,
            content={"detail": f"request body larger than {limit} bytes"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.default_max)
        if limit is None:  # the route limits its own body
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit or declared < 0:
                    if declared < 0:
                        response: JSONResponse = JSONResponse(
                            status_code=400, content={"detail": "malformed Content-Length"}
                        )
                    else:
                        response = self._too_large(limit)
                    await response(scope, receive, send)
                    return
        seen = 0
        refused = False

        async def counted_receive() -> Message:
            # A body without Content-Length (chunked) is counted as it arrives: past the limit
            # the 413 goes out at once and the app sees a disconnect (its own answer is dropped).
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    await self._too_large(limit)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The 413 is out; what the app raised on the cut-off body (ClientDisconnect) is moot.


def install_openapi(app: FastAPI, *, token_configured: bool) -> None:
    """Make ``app.openapi()`` document what the service does: no bearer scheme (and no 401)
    when no token is configured; 400 and 413 on every operation that takes a body; 422 in
    FastAPI's list shape everywhere."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base()
        schema = json.loads(json.dumps(schema))  # a private copy to edit
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["ErrorMessage"] = ErrorMessage.model_json_schema()
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                if not token_configured:
                    operation.pop("security", None)
                    responses.pop("401", None)
                elif operation.get("security"):
                    responses.setdefault("401", _ref_response(401))
                for code in (400, 413):
                    responses.setdefault(str(code), _ref_response(code))
        if not token_configured:
            components.pop("securitySchemes", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _ref_response(code: int) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}},
    }
