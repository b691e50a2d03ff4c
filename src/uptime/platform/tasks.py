"""Background tasks whose failures are never lost (issue 10, item 6c).

``spawn`` wraps ``asyncio.create_task``: when the task ends with an exception, a done callback
retrieves it, logs it as ONE line (``task <name> failed: <Type>: <message>``; the traceback
only at DEBUG level) and counts it in ``uptime_background_task_failures_total{task}``. So
asyncio never prints "Task exception was never retrieved" with a traceback, e.g. when the
database dies in the middle of a report. Cancellation is not a failure.

``is_transient`` tells a database outage or a replica-set failover (retry later) from an error
that retrying cannot fix.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from uptime.platform import metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

# Server error codes that mean "this node cannot serve you now", not "your request is bad":
# HostUnreachable, HostNotFound, NetworkTimeout, ShutdownInProgress, PrimarySteppedDown,
# InterruptedAtShutdown, InterruptedDueToReplStateChange, NotWritablePrimary,
# NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary, SocketException, CursorNotFound (the cursor
# died with its server), ExceededTimeLimit.
_TRANSIENT_CODES = {6, 7, 89, 91, 189, 11600, 11602, 10107, 13435, 13436, 9001, 43, 262}


def is_transient(exc: BaseException) -> bool:
    """True if ``exc`` is a database outage or failover that a later retry can get past:
    a connection failure or server-selection timeout, a not-primary/step-down/shutdown
    error, a lost cursor, or any error MongoDB labels retryable."""
    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, PyMongoError) and (
        exc.has_error_label("RetryableWriteError")
        or exc.has_error_label("TransientTransactionError")
    ):
        return True
    return isinstance(exc, OperationFailure) and exc.code in _TRANSIENT_CODES


def one_line(exc: BaseException) -> str:
    """``<Type>: <first line of the message>`` (at most 300 characters)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{exc.__class__.__name__}: {text[:300]}" if text else exc.__class__.__name__


def _log_outcome(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()  # retrieved: asyncio will not complain about it
    if exc is None:
        return
    name = task.get_name()
    metrics.TASK_FAILURES.labels(name.split("-", 1)[0]).inc()
    log.error("task %s failed: %s", name, one_line(exc))
    log.debug("task %s traceback", name, exc_info=exc)


def spawn(coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
    """``asyncio.create_task(coro, name=name)`` whose exception, if any, is logged as one line
    and counted (metric label: ``name`` up to its first ``-``).

    The task runs in a fresh ``contextvars`` context: background work outlives the request
    that started it and must not inherit that request's database time limit
    (``pymongo.timeout``, issue 15); it sets its own."""
    task = asyncio.create_task(coro, name=name, context=contextvars.Context())
    task.add_done_callback(_log_outcome)
    return task
