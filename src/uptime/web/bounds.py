"""Every request bounded (issue 15, item 1): a time limit on its database work, and a client
that goes away cancels that work.

:class:`RequestBoundsMiddleware` (pure ASGI, so the route runs in a task it controls):

* **Time limit.** The whole request runs inside ``pymongo.timeout(UPTIME_REQUEST_TIMEOUT_S)``
  (PyMongo's client-side operation timeout, CSOT): every operation the request starts gets
  the remaining time as its socket timeout and as ``maxTimeMS`` on the server, so MongoDB
  itself stops the work when the limit is reached. A request past it ends in PyMongo's
  timeout error, answered 503 (``uptime.web.app``). ``/healthz`` has its own, shorter limit
  inside (the smaller one wins). Paths in ``own_limit`` (``/get_report``, which streams a CSV
  chunk by chunk for as long as the client reads) set their limits themselves.
* **Cancellation.** A GET/HEAD request (no body to read) runs in its own task with its own
  session bound to every operation it starts (``AsyncClientSession.bind``); the middleware
  listens for the client's disconnect meanwhile. When it comes, the task is cancelled and
  ``killSessions`` stops what MongoDB still runs for it (a cancelled PyMongo call only closes
  its connection, and MongoDB goes on with an aggregation in the middle of a stage: measured
  on the chatty store, ``uptime.tools.bench.chatty``) — so no aggregation runs on for a
  reader who has left.

Shutdown: ``uptime-monitor serve`` gives requests in flight :data:`SHUTDOWN_GRACE_S` seconds, then
cancels them (as a disconnect does).

Background work (report generation, the runs follower) never inherits a request's limit:
``uptime.platform.tasks.spawn`` starts tasks in a fresh context.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from typing import Any

import pymongo
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: ``uptime-monitor serve``: seconds a SIGTERM waits for requests in flight before cancelling them
#: (uvicorn's ``timeout_graceful_shutdown``; their database work stops with them).
SHUTDOWN_GRACE_S = 3.0


def limit_s(db: Any, timeout_s: float, outage_timeout_s: float | None) -> float:
    """A request's database time limit in seconds: ``timeout_s`` (``UPTIME_REQUEST_TIMEOUT_S``),
    or ``outage_timeout_s`` (``UPTIME_DB_TIMEOUT_S``) when ``db``'s client knows no writable
    server now. Under a ``pymongo.timeout`` block PyMongo waits the whole remaining limit for a
    server (not ``serverSelectionTimeoutMS``), so without this an outage would answer 503 only
    after ``UPTIME_REQUEST_TIMEOUT_S``. Used by the middleware and by the paths that set their
    own limits (``/get_report``)."""
    if outage_timeout_s is not None and db is not None:
        if not db.client.topology_description.has_writable_server():
            return min(timeout_s, outage_timeout_s)
    return timeout_s


class RequestBoundsMiddleware:
    """Run each HTTP request under a database time limit of ``timeout_s`` seconds (except the
    paths in ``own_limit``) and cancel a GET/HEAD request's work when its client disconnects."""

    def __init__(self, app: ASGIApp, timeout_s: float,
                 own_limit: Collection[str] = ("/get_report",),
                 outage_timeout_s: float | None = None) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.own_limit = set(own_limit)
        self.outage_timeout_s = outage_timeout_s

    def _limit_s(self, scope: Scope) -> float:
        """The request's limit (:func:`limit_s` on the app's database)."""
        state = getattr(scope.get("app"), "state", None)
        return limit_s(getattr(state, "db", None), self.timeout_s, self.outage_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (contextlib.nullcontext() if scope.get("path") in self.own_limit
                 else pymongo.timeout(self._limit_s(scope)))
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

        state = getattr(scope.get("app"), "state", None)
        db = getattr(state, "db", None)  # set by the app's lifespan
        session = db.client.start_session(causal_consistency=False) if db is not None else None

        async def run_route() -> None:
            if session is None:
                await self.app(scope, app_receive, send)
                return
            async with session.bind(end_session=False):  # every operation: this session
                await self.app(scope, app_receive, send)

        route = asyncio.ensure_future(run_route())

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
                if session is not None:  # shutdown: stop the request's server work too
                    await asyncio.shield(_kill(session))
                raise  # the server is shutting down: not ours to swallow
            # the client left: nothing to answer; stop what MongoDB still runs for it
            if session is not None:
                await _kill(session)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            if session is not None:
                with contextlib.suppress(Exception):
                    await session.end_session()


async def _kill(session: object) -> None:
    """``killSessions`` for the request's session: MongoDB stops every operation it runs for
    it (a cancelled PyMongo call only closes its connection, which does not stop an
    aggregation in the middle of a stage)."""
    with contextlib.suppress(Exception):
        client = session.client  # type: ignore[attr-defined]
        await client.admin.command({"killSessions": [session.session_id]})  # type: ignore[attr-defined]
