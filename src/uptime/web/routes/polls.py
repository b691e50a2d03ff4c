"""``POST /polls``: pollers push status polls straight into ``store_status`` (issue 8 item 1).

Request: ``Content-Type: application/json`` with a JSON array of
``{"store_id": str, "timestamp_utc": str, "status": "active"|"inactive"}`` objects, or
``application/x-ndjson`` with one such object per line. Each item goes through the same
validation, normalisation and deterministic ``_id`` as ``uptime-monitor import``
(``uptime.ingest.polls``), so a retried request adds nothing.

Answers:

* 200 ``{"received", "stored", "already_present", "rejected", "rejects": [{"index",
  ["line",] "reason"}]}``: valid items are stored (write concern ``majority``) even when
  others are rejected;
* 400 malformed JSON (line, column, byte offset named); 413 body over
  ``UPTIME_POLLS_MAX_BYTES`` or more than ``UPTIME_POLLS_MAX_ITEMS`` items; 415 another
  Content-Type or a compressed body (``Content-Encoding``); 422 a JSON body that is not an array; 401 without the bearer token when
  ``UPTIME_API_TOKEN`` is set; 503 database unavailable.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from uptime.incidents.detector import poke

from uptime.ingest.polls import (
    MEDIA_JSON,
    MEDIA_NDJSON,
    PayloadError,
    decode_body,
    media_format,
    store_polls,
)
from uptime.ingest.store import StoreError
from uptime.web.deps import DbDep, SettingsDep, require_token

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(require_token)])


class PollIn(BaseModel):
    """One poll, as pushed (the same text forms as the CSV import accepts)."""

    store_id: str = Field(description="Kept exact; no control characters", examples=["s1"])
    timestamp_utc: str = Field(
        description="ISO 8601 (Z or an offset; none = UTC) or 'YYYY-MM-DD HH:MM:SS[.f] UTC'",
        examples=["2024-05-06T12:00:00Z"],
    )
    status: str = Field(description="active or inactive (any case)", examples=["active"])


class PollReject(BaseModel):
    index: int = Field(description="0-based position of the item in the request")
    line: int | None = Field(default=None, description="NDJSON only: the 1-based line")
    reason: str


class PollsResult(BaseModel):
    received: int
    stored: int = Field(description="polls inserted by this request")
    already_present: int = Field(description="valid polls stored before (or repeated here)")
    rejected: int
    rejects: list[PollReject]


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            MEDIA_JSON: {
                # Any array is taken: each item is checked on its own, and an item that is not
                # a valid poll is listed in "rejects" (200), not refused with the request.
                "schema": {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            PollIn.model_json_schema(),
                            {"description": "any other value: rejected item (see rejects)"},
                        ]
                    },
                },
                "example": [
                    {"store_id": "s1", "timestamp_utc": "2024-05-06T12:00:00Z", "status": "active"}
                ],
            },
            MEDIA_NDJSON: {
                "schema": {"type": "string", "description": "one poll object per line"},
            },
        },
    }
}


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadError(413, f"body of {int(declared):,} bytes; at most {limit:,} per request")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadError(413, f"body over {limit:,} bytes; at most {limit:,} per "
                                        "request")
            chunks.append(chunk)
    except ClientDisconnect:  # issue 15 item 6: a client gone mid-body is no server error
        log.info("POST /polls: the client went away after %d bytes of its body", size)
        raise PayloadError(400, "the client closed the connection before the body was complete"
                           ) from None
    return b"".join(chunks)


def _check_encoding(value: str | None) -> None:
    """415 for a compressed body (``Content-Encoding: gzip`` ...): polls come uncompressed."""
    if value is not None and value.strip().lower() not in ("", "identity"):
        raise PayloadError(415, f"Content-Encoding {value[:40]!r} is not supported; send the "
                                "body uncompressed")


@router.post(
    "/polls",
    summary="Push status polls (JSON array or NDJSON)",
    response_model=PollsResult,
    openapi_extra=_BODY_DOC,
    responses={
        400: {"description": "Malformed JSON (line, column and byte named)"},
        413: {"description": "Body or item count over the limit"},
        415: {"description": "Content-Type is not application/json or application/x-ndjson, "
                            "or the body is compressed (Content-Encoding)"},
        422: {"description": "The JSON body is not an array"},
        503: {"description": "MongoDB unavailable"},
    },
)
async def post_polls(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """Validate and store the polls; answer counts and each rejected item's index and reason."""
    try:
        kind = media_format(request.headers.get("content-type"))
        _check_encoding(request.headers.get("content-encoding"))
        body = await _read_body(request, settings.polls_max_bytes)
        items, lines = decode_body(body, kind, settings.polls_max_items)
    except PayloadError as exc:
        if exc.status == 422:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": str(exc), "type": "json_array_expected"}]
            ) from None
        raise HTTPException(exc.status, detail=str(exc)) from None
    try:
        result = await store_polls(db, items, lines)
    except StoreError as exc:
        raise RequestValidationError(  # 422s carry the list shape (issue 9 item 11)
            [{"loc": ("body",), "msg": f"MongoDB refused the polls: {exc}", "type": "value_error"}]
        ) from None
    # issue 17: the incident detector of this process evaluates these stores now
    poke((i["store_id"].strip(), str(i.get("status", "")).strip().lower()) for i in items
         if isinstance(i, dict) and isinstance(i.get("store_id"), str))
    return Response(orjson.dumps(result.as_json()), media_type=MEDIA_JSON)
