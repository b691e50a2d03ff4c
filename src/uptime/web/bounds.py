"""Every request bounded (issue 15, item 1): a time limit on its database work, and a client
that goes away cancels that work.

:class:`RequestBoundsMiddleware` (pure ASGI, so the route runs in a task it controls):

* **Time limit.** The whole request runs inside ``pymongo.timeout(UPTIME_REQUEST_TIMEOUT_S)``
  (PyMongo's client-side operation timeout, CSOT): every operation the request starts gets
  the remaining time as its socket timeout and as ``maxTimeMS`` on the server, so MongoDB
  itself stops the work when the limit is reached. A request past it ends in PyMongo's
  timeout error, answered 503 (``uptime.web.api``). ``/healthz`` has its own, shorter limit
  inside (the smaller one wins). Paths in ``own_limit`` (``/get_report``, which streams a CSV
  chunk by chunk for as long as the client reads) set their limits themselves.
* **Cancellation.** For a GET/HEAD request (no body to read) the middleware listens for the
  client's disconnect while the route runs; when it comes, the route's task is cancelled.
  PyMongo then closes the connection the operation ran on, and MongoDB kills an operation
  whose client disconnected — so no aggregation runs on for a reader who has left.

Shutdown: ``uptime serve`` gives requests in flight :data:`SHUTDOWN_GRACE_S` seconds, then
cancels them (as a disconnect does).

Background work (report generation, the runs follower) never inherits a request's limit:
``uptime.platform.tasks.spawn`` starts tasks in a fresh context.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection

import pymongo
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: ``uptime serve``: seconds a SIGTERM waits for requests in flight before cancelling them
#: (uvicorn's ``timeout_graceful_shutdown``; their database work stops with them).
SHUTDOWN_GRACE_S = 3.0


class RequestBoundsMiddleware:
    """Run each HTTP request under a database time limit of ``timeout_s`` seconds (except the
    paths in ``own_limit``) and cancel a GET/HEAD request's work when its client disconnects."""

    def __init__(self, app: ASGIApp, timeout_s: float,
                 own_limit: Collection[str] = ("/get_report",)) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.own_limit = set(own_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (contextlib.nullcontext() if scope.get("path") in self.own_limit
                 else pymongo.timeout(self.timeout_s))
        with limit:  # the route's task (created below) copies this context: the limit holds
            if scope.get("method") in ("GET", "HEAD"):
                await self._cancellable(scope, receive, send)
            else:
                await self.app(scope, receive, send)

    async def _cancellable(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] == "http.disconnect":
            return
        if first.get("more_body"):  # a GET with a body: the route reads it; no watcher
            replay: list[Message] = [first]

            async def with_first() -> Message:
                return replay.pop() if replay else await receive()

            await self.app(scope, with_first, send)
            return
        gone = asyncio.Event()
        given = False

        async def app_receive() -> Message:
            nonlocal given
            if not given:
                given = True
                return first
            await gone.wait()
            return {"type": "http.disconnect"}

        route = asyncio.ensure_future(self.app(scope, app_receive, send))

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    route.cancel()
                    return

        watcher = asyncio.ensure_future(watch())
        try:
            await route
        except asyncio.CancelledError:
            if not gone.is_set():
                raise  # the server is shutting down: not ours to swallow
            # the client left: nothing to answer, the work is stopped
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
