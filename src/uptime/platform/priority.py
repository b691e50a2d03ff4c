"""Alerts before derived state (issue 17 item 6): one process-wide "urgent work in progress"
count.

The alert path marks itself (:func:`urgent`): the incident detector while it evaluates stores
with new polls, the notification deliverer while notifications are due. Background work that
only keeps derived state current — the runs follower (``status_runs``) — calls
:func:`yield_to_urgent` before each batch and waits while the count is non-zero, at most
``max_wait_s`` (then it goes on anyway: derived state lags, it never stops). So during an
hourly burst the event loop's time goes to the new incidents and their webhooks first, and the
timeline catches up a second later. Nothing here waits on the alert path's behalf: it only
ever delays derived state (the rule: derived state never makes the main job wait).

Loop-agnostic (a plain counter and short sleeps, no ``asyncio.Event`` bound to one loop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

_URGENT = 0
#: how often a yielding task looks again (s)
POLL_S = 0.02


@contextmanager
def urgent() -> Iterator[None]:
    """Mark urgent work in progress for the duration of the ``with`` block (nestable)."""
    global _URGENT
    _URGENT += 1
    try:
        yield
    finally:
        _URGENT -= 1


def is_urgent() -> bool:
    """True while some urgent work is in progress in this process."""
    return _URGENT > 0


async def yield_to_urgent(max_wait_s: float) -> float:
    """Wait while urgent work is in progress, at most ``max_wait_s`` seconds; return the
    seconds waited (0.0 at once when there is none)."""
    if not _URGENT:
        return 0.0
    started = time.monotonic()
    while _URGENT and time.monotonic() - started < max_wait_s:
        await asyncio.sleep(POLL_S)
    return time.monotonic() - started
