"""Change events of ``store_status`` folded into what the runs need (pure, no I/O): which
stores and instants a batch of events touches, which of them are plain appends (the follower's
fast path), and the cluster time in a resume token. Used by
:class:`uptime.timeline.follower.RunsFollower`; shapes in :class:`EventBatch`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any


from uptime.platform.pollkey import instant_of
from uptime.platform.probes import token_time  # noqa: F401 - re-exported (one home: platform)

_POLL_ID = re.compile(
    r"^(?P<store>.+)\|(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})(?:Z|\+00:00)?\|[ai]$"
)


def poll_from_id(_id: Any) -> tuple[str, datetime] | None:
    """``(store_id, instant)`` from an importer poll ``_id`` ``"<store>|<ISO ms>|<a|i>"``,
    else None (another system's ``_id``)."""
    if not isinstance(_id, str):
        return None
    m = _POLL_ID.match(_id)
    if not m:
        return None
    try:
        return m["store"], datetime.fromisoformat(m["ts"]).replace(tzinfo=UTC)
    except ValueError:
        return None


def _poll_of(doc: Any) -> tuple[str, datetime] | None:
    """(store_id, timestamp_utc) of a poll document, None unless both have the right types."""
    if not isinstance(doc, dict):
        return None
    store, ts = doc.get("store_id"), doc.get("timestamp_utc")
    if isinstance(store, str) and isinstance(ts, datetime):
        return store, ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return None


def changes_of(
    events: Iterable[dict[str, Any]], horizon: datetime | None = None
) -> tuple[dict[str, tuple[datetime, datetime]], bool]:
    """Turn change events into ``({store_id: (first, last)}, unknown)``; ``unknown`` is True
    when an event touched a poll whose old store/instant cannot be known (no pre-image, not an
    importer ``_id``): only a full rebuild is safe then.

    ``horizon`` (UTC; ``uptime.platform.retention.stored_horizon``): a **delete** of a poll
    before it is ignored — the compaction (issue 18) removes those polls and the runs before
    the horizon are the record; the instant comes from the pre-image, the old string ``_id``
    or the 16-byte ``_id`` (``uptime.platform.pollkey.instant_of``)."""
    touched: dict[str, list[datetime]] = {}
    unknown = False

    def add(p: tuple[str, datetime] | None) -> None:
        if p is not None:
            touched.setdefault(p[0], []).append(p[1])

    for ev in events:
        op = ev.get("operationType")
        if op in ("insert", "update", "replace"):
            add(_poll_of(ev.get("fullDocument")))
            if op == "insert":
                continue
        elif op != "delete":
            continue
        elif horizon is not None:
            instant = _deleted_instant(ev)
            if instant is not None and instant < horizon:
                continue  # issue 18: removed by the compaction (or frozen): runs unchanged
        before = ev.get("fullDocumentBeforeChange")
        if before is not None:
            add(_poll_of(before))
            continue
        parsed = poll_from_id((ev.get("documentKey") or {}).get("_id"))
        if parsed is None:
            unknown = True
        add(parsed)
    return {s: (min(ts), max(ts)) for s, ts in touched.items()}, unknown


def _deleted_instant(ev: dict[str, Any]) -> datetime | None:
    """The instant of the poll a delete event removed: pre-image, else the ``_id``."""
    p = _poll_of(ev.get("fullDocumentBeforeChange"))
    if p is not None:
        return p[1]
    key = (ev.get("documentKey") or {}).get("_id")
    parsed = poll_from_id(key)
    return parsed[1] if parsed is not None else instant_of(key)


class EventBatch:
    """Change events folded as they arrive (a batch can hold 100,000 events: only what the
    runs need is kept, not the event documents). ``appends`` = ``{store_id: [(timestamp_utc,
    status), ...]}`` of inserted polls (fast-path candidates; a non-string status becomes
    None, i.e. not a poll); ``others`` = the other events (updates, replaces, deletes), for
    :func:`changes_of`. Inserts of documents without a string ``store_id`` and a Date
    ``timestamp_utc`` are no polls and change no run: dropped (counted in ``events``)."""

    def __init__(self) -> None:
        self.appends: dict[str, list[tuple[datetime, Any]]] = {}
        self.others: list[dict[str, Any]] = []
        self.events = 0
        self.last: dict[str, Any] | None = None
        #: the stream's resume token right after this batch (set by the reader)
        self.token: dict[str, Any] | None = None

    def add(self, ev: dict[str, Any]) -> None:
        self.events += 1
        self.last = ev
        if ev.get("operationType") != "insert":
            self.others.append(ev)
            return
        doc = ev.get("fullDocument")
        p = _poll_of(doc)
        if p is not None:
            status = doc.get("status")
            self.appends.setdefault(p[0], []).append(
                (p[1], status if isinstance(status, str) else None))

    def split(self, horizon: datetime | None = None) -> tuple[
            dict[str, list[tuple[datetime, Any]]], dict[str, tuple[datetime, datetime]], bool]:
        """``(appends, changes, unknown)`` for :func:`uptime.timeline.fastpath.apply_polls`;
        ``changes``/``unknown`` as :func:`changes_of` over the non-insert events (deletes
        before ``horizon`` ignored)."""
        changes, unknown = changes_of(self.others, horizon)
        return self.appends, changes, unknown


def split_events(
    events: Iterable[dict[str, Any]],
) -> tuple[dict[str, list[tuple[datetime, Any]]], dict[str, tuple[datetime, datetime]], bool]:
    """Turn change events into ``(appends, changes, unknown)`` (see :class:`EventBatch`)."""
    batch = EventBatch()
    for ev in events:
        batch.add(ev)
    return batch.split()
