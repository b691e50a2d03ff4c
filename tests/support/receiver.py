"""A real local webhook receiver for the notification tests (pytest-httpserver): one recorder
shared by tests/notify/, tests/incidents/ and the failover tests in tests/system/, and
``failover_settings``, the settings of the failover tests (short backoff, poll and lease)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, NamedTuple

from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from uptime.platform.settings import Settings


class Received(NamedTuple):
    """One request the receiver got."""

    id: str | None  # the webhook-id header
    status: int  # the HTTP status answered
    headers: dict[str, str]  # lower-case names (as standardwebhooks' verify wants them)
    body: bytes
    at: float  # time.monotonic() when it arrived


class Receiver:
    """A handler for pytest-httpserver: answers ``status`` (settable while it runs), after
    ``delay`` seconds (a receiver that takes a moment), and records every request (thread-safe:
    the server answers on its own thread)."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.requests: list[Received] = []
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            status = self.status
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append(Received(headers.get("webhook-id"), status, headers,
                                          request.get_data(), time.monotonic()))
        if self.delay:
            time.sleep(self.delay)
        return Response("ok", status=status)

    def ids(self, status: int | None = None) -> list[str | None]:
        """The webhook-ids received, in order (only the requests answered ``status``)."""
        with self.lock:
            return [r.id for r in self.requests if status is None or r.status == status]

    def events(self) -> list[dict[str, Any]]:
        """The JSON bodies received, in order."""
        with self.lock:
            return [json.loads(r.body) for r in self.requests]


def serve(httpserver: HTTPServer, receiver: Receiver, path: str = "/hook") -> str:
    """Route ``POST path`` of ``httpserver`` to ``receiver``; return its URL."""
    httpserver.expect_request(path, method="POST").respond_with_handler(receiver)
    return httpserver.url_for(path)


def failover_settings(uri: str, database: str, data_dir: Path) -> Settings:
    """Settings of a failover test against ``uri``: the local receiver allowed, quick retries
    (0.1 s doubling to 0.5 s), a 0.1 s outbox poll, a 1 s attempt and a 3 s lease (a delivery
    a killed primary interrupted is claimed again soon)."""
    return Settings(mongodb_uri=uri, mongodb_database=database, data_dir=data_dir,
                    notify_allow_private=True, notify_backoff_base_s=0.1,
                    notify_backoff_cap_s=0.5, notify_poll_interval_s=0.1,
                    notify_timeout_s=1, notify_lease_s=3)
