"""The poll ``_id``: 16 bytes (BSON BinData subtype 0), deterministic (issue 18 item 5).

Layout: bytes 0-7 = the poll instant as epoch milliseconds + 2**63, big-endian (so keys sort
by time, years 1..9999 and before 1970 included); bytes 8-15 = the first 8 bytes of
BLAKE2b-64 of ``"<store_id>\\x00<a|i>"`` (UTF-8). The same poll (store, ms instant, status)
always gets the same key, so a retried insert is a duplicate key (a no-op, as before); two
polls of different stores or statuses at one instant collide with probability ~2**-64 per
pair.

It replaces the string ``"<store_id>|<UTC ISO ms>|<a|i>"`` (45-60 bytes; its ``_id`` index
took 263 MB at scale 1). Keys sort by time first: hourly polls append to the right edge of
the ``_id`` B-tree, and the compaction can find old polls by ``_id`` range.
What the key cannot give back is the store id: the runs follower places a delete through the
change event's pre-image (enabled on ``store_status`` by the follower) or, for a delete before
the retention horizon, ignores it by the instant read here (:func:`instant_of`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Binary

KEY_BYTES = 16
_OFFSET = 1 << 63
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def poll_key(store_id: str, instant: datetime, status: str) -> bytes:
    """The ``_id`` of the poll ``(store_id, instant (UTC, ms are kept, finer digits dropped),
    status "active"|"inactive")``: 16 ``bytes`` — PyMongo stores ``bytes`` as BinData subtype 0
    and reads it back as ``bytes``, so a key compares equal to what ``find`` returns."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    ms = (instant - _EPOCH) // _MS
    digest = hashlib.blake2b(f"{store_id}\x00{status[:1]}".encode("utf-8", "surrogatepass"),
                             digest_size=8).digest()
    return (ms + _OFFSET).to_bytes(8, "big") + digest


def time_key(instant: datetime) -> bytes:
    """The least key of any poll at ``instant`` (UTC): ``{_id: {$lt: time_key(h)}}`` selects
    the keyed polls before ``h``."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    ms = (instant - _EPOCH) // _MS
    return (ms + _OFFSET).to_bytes(8, "big") + bytes(8)


def instant_of(key: Any) -> datetime | None:
    """The poll instant (UTC) encoded in a key made by :func:`poll_key`, else None (another
    kind of ``_id``)."""
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        return None
    if isinstance(key, Binary) and key.subtype != 0:
        return None
    ms = int.from_bytes(key[:8], "big") - _OFFSET
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return None
