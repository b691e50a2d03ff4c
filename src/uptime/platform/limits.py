"""Server-side time limits from PyMongo's operation timeout (issue 15, item 1).

A request (``uptime.web.bounds``) and a report attempt (``uptime.report.reports``) run inside
``pymongo.timeout(seconds)``. PyMongo then bounds every operation on the client side and sends
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

from pymongo import _csot


def remaining_ms() -> int | None:
    """Milliseconds left of the enclosing ``pymongo.timeout`` block (at least 1), or None."""
    left = _csot.remaining()
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
