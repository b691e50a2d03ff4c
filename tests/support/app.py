"""The app under test, in process: ``running_app`` runs ``create_app`` through its lifespan
(asgi-lifespan) and yields an httpx client on it; ``poll_until_done`` waits for a report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager

from uptime.platform.settings import Settings
from uptime.web import app as api


#: Seconds the app's lifespan may take to start or to stop.
LIFESPAN_TIMEOUT_S = 30.0


@asynccontextmanager
async def running_app(settings: Settings, *, timeout: float = 5.0,
                      **overrides) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on ``create_app(settings)`` (with ``overrides`` applied to a copy of the
    settings), its lifespan running (database, report service, runs follower) while in use.
    ``timeout``: the client's request timeout in seconds. The app itself (for a test that
    reaches its state or registers a health check) is ``http.app``."""
    app = api.create_app(settings.model_copy(update=overrides) if overrides else settings)
    # asgi-lifespan's default 5 s for startup/shutdown is too short on a loaded 2-core machine
    # (the lifespan opens the database, recovers reports and starts the follower)
    async with LifespanManager(app, startup_timeout=LIFESPAN_TIMEOUT_S,
                               shutdown_timeout=LIFESPAN_TIMEOUT_S) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     timeout=timeout) as http:
            http.app = app  # type: ignore[attr-defined] - the FastAPI app under test
            yield http


async def poll_until_done(http: httpx.AsyncClient, report_id: str, timeout: float = 60) -> httpx.Response:
    """Poll /get_report until it is not Running; return the final response."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await http.get("/get_report", params={"report_id": report_id})
        assert resp.status_code == 200, resp.text
        if not resp.headers["content-type"].startswith("application/json"):
            return resp
        body = resp.json()
        assert 0.0 <= body["progress"] <= 1.0
        if body["status"] != "Running":
            return resp
        assert asyncio.get_running_loop().time() < deadline, "report still Running"
        await asyncio.sleep(0.05)
