"""Polls pushed as JSON (``POST /polls``, issue 8 item 1): decode a request body, validate
each item through the importer's own code path (:class:`uptime.ingest.validate.PollValidator`)
and store the valid ones with their deterministic ``_id`` (so a retried request adds nothing).

Bodies:

* ``application/json``: a JSON array of ``{"store_id", "timestamp_utc", "status"}`` objects;
* ``application/x-ndjson`` (also ``application/ndjson``, ``application/jsonl``): one such
  object per line; blank lines are skipped.

Whole-request errors raise :class:`PayloadError` (an HTTP status and a message); item errors
are rejections listed in the result (the item's 0-based ``index``, and its 1-based ``line``
for NDJSON), and the valid items of the same request are stored all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pymongo import WriteConcern

from uptime.ingest.store import insert_unique
from uptime.ingest.validate import PollValidator, RowError
from uptime.platform.retention import ingest_horizon
from uptime.platform import metrics
from uptime.platform.constants import STATUS_COLLECTION

MEDIA_JSON = "application/json"
MEDIA_NDJSON = "application/x-ndjson"
#: Accepted ``Content-Type`` media types and the body format each means.
MEDIA_TYPES = {
    MEDIA_JSON: "json",
    MEDIA_NDJSON: "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
}
COLLECTION = STATUS_COLLECTION


class _DuplicateHint:
    """Whether the last stored request of this process was mostly duplicates (> 1 %): then
    the next one looks its ``_id``s up before inserting (MongoDB handles a batch full of
    duplicate keys about 3 times slower than a lookup plus the insert of what is missing;
    pollers that resend overlapping windows hit this). A hint only: correctness never
    depends on it."""

    precheck = False


class PayloadError(Exception):
    """The whole request is refused: ``status`` is the HTTP status (400 malformed JSON, 413 too
    many items, 415 unsupported media type, 422 not an array), ``str()`` the reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class PollBatch:
    """What one request did (the response body of ``POST /polls``).

    Attributes:
        received: items in the request.
        stored: polls inserted by this request.
        already_present: valid polls already stored (an earlier request, an import, or a
            repeat inside this request).
        rejected: ``[{"index": int, "line": int (NDJSON only), "reason": str}]``, in order.
    """

    received: int = 0
    stored: int = 0
    already_present: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "already_present": self.already_present,
            "rejected": len(self.rejected),
            "rejects": self.rejected,
        }


def media_format(content_type: str | None) -> str:
    """Return ``"json"`` or ``"ndjson"`` for a ``Content-Type`` header value.

    Raises:
        PayloadError(415): a missing or other media type, or a charset other than UTF-8.
    """
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    kind = MEDIA_TYPES.get(media)
    if kind is None:
        raise PayloadError(
            415,
            f"Content-Type {content_type or '(none)'!r} is not supported; send "
            f"{MEDIA_JSON} (a JSON array of polls) or {MEDIA_NDJSON} (one poll per line)",
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise PayloadError(415, f"charset {value.strip()!r} is not supported; send UTF-8")
    return kind


def _json_error(exc: orjson.JSONDecodeError) -> str:
    return f"malformed JSON at line {exc.lineno}, column {exc.colno} (byte {exc.pos}): {exc.msg}"


def decode_body(body: bytes, kind: str, max_items: int) -> tuple[list[Any], list[int] | None]:
    """Decode a request body into its items (and, for NDJSON, each item's 1-based line).

    Raises:
        PayloadError: 400 malformed JSON (naming line, column and byte offset), 422 a JSON
            body that is not an array, 413 more than ``max_items`` items.
    """
    if kind == "json":
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(400, _json_error(exc)) from None
        if not isinstance(items, list):
            raise PayloadError(
                422, "expected a JSON array of {store_id, timestamp_utc, status} objects"
            )
        lines = None
    else:
        items, lines = [], []
        for number, raw in enumerate(body.split(b"\n"), start=1):
            if not raw.strip():
                continue
            if len(items) >= max_items:  # stop decoding early: the request is refused anyway
                items.append(None)
                break
            try:
                items.append(orjson.loads(raw))
            except orjson.JSONDecodeError as exc:
                raise PayloadError(
                    400, f"line {number}: malformed JSON at column {exc.colno}: {exc.msg}"
                ) from None
            lines.append(number)
    if len(items) > max_items:
        count = f"more than {max_items:,}" if kind == "ndjson" else f"{len(items):,}"
        raise PayloadError(
            413, f"{count} items; at most {max_items:,} per request (split the batch)"
        )
    return items, lines


async def store_polls(db: Any, items: list[Any], lines: list[int] | None = None) -> PollBatch:
    """Validate ``items`` (decoded JSON) and insert the valid polls into ``store_status`` with
    write concern ``majority``.

    Raises:
        uptime.ingest.store.StoreError: MongoDB refused polls for a reason other than a
            duplicate ``_id``.
        pymongo.errors.PyMongoError: the database is unreachable or failed.
    """
    validate = PollValidator(horizon=await ingest_horizon(db)).from_json  # issue 18
    result = PollBatch(received=len(items))
    docs: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for index, item in enumerate(items):
        try:
            doc = validate(item)
        except RowError as exc:
            reject: dict[str, Any] = {"index": index, "reason": str(exc)}
            if lines is not None:
                reject["line"] = lines[index]
            result.rejected.append(reject)
            continue
        if doc["_id"] in seen:
            result.already_present += 1
            continue
        seen.add(doc["_id"])
        docs.append(doc)
    collection = db.get_collection(COLLECTION, write_concern=WriteConcern(w="majority"))
    inserted, present = await insert_unique(collection, docs, precheck=_DuplicateHint.precheck)
    _DuplicateHint.precheck = present * 100 > len(docs)
    result.stored = inserted
    result.already_present += present
    metrics.record_ingest(COLLECTION, "api", stored=inserted,
                          already_present=result.already_present, rejected=len(result.rejected))
    return result
