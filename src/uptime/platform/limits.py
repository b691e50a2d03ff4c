"""Server-side time limits from PyMongo's operation timeout (issue 15, item 1).

A request (``uptime.web.bounds``) runs inside ``pymongo.timeout(seconds)``; a report attempt
(``uptime.report.service``) inside :func:`deadline` (server-side limits only). PyMongo then bounds every operation on the client side and sends
``maxTimeMS`` with plain commands — but **not** with the first ``aggregate``/``find`` of a
cursor (the CSOT spec's cursor-lifetime mode): without one, a client timing out leaves the
aggregation running in MongoDB (measured: the chatty store's 92-day interval pipeline ran on
for minutes; an aggregation evaluating one huge expression is not even stopped by its
client's disconnect). So every cursor-opening call a request can make passes what is left
of the limit explicitly:

    await coll.aggregate(stages, **limits.agg_time())   # {"maxTimeMS": ms left} or {}
    coll.find(filter, **limits.find_time())             # {"max_time_ms": ms left} or {}

Outside a ``pymongo.timeout`` block both are ``{}`` (batch commands keep no limit).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

from pymongo import _csot

#: a server-side-only deadline (``time.monotonic()``), for work that must not run under
#: PyMongo's client-side timeout as a whole (a report attempt: its change-stream and GridFS
#: steps hang under it); :func:`deadline` sets it
_DEADLINE: ContextVar[float | None] = ContextVar("uptime_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Within the block, :func:`agg_time`/:func:`find_time` give at most what is left of
    ``seconds`` (``maxTimeMS`` on the server only; no client-side timeout)."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining_ms() -> int | None:
    """Milliseconds left of the enclosing ``pymongo.timeout`` block or :func:`deadline`,
    whichever ends first (at least 1), or None outside both."""
    left = _csot.remaining()
    own = _DEADLINE.get()
    if own is not None:
        own_left = own - time.monotonic()
        left = own_left if left is None else min(left, own_left)
    if left is None:
        return None
    return max(1, int(left * 1000))


def agg_time() -> dict[str, int]:
    """``{"maxTimeMS": remaining_ms()}`` for ``aggregate``/``count_documents``, or ``{}``."""
    ms = remaining_ms()
    return {} if ms is None else {"maxTimeMS": ms}


def find_time() -> dict[str, int]:
    """``{"max_time_ms": remaining_ms()}`` for ``find``/``find_one``, or ``{}``."""
    ms = remaining_ms()
    return {} if ms is None else {"max_time_ms": ms}
