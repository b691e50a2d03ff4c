"""Delivering one event to one notification channel, once (issue 17, item 4): no outbox, no
retry — the outbox's deliverer (``uptime.notify.outbox.Deliverer``) decides what an attempt
means for the next one.

The generic webhook is an HTTP POST (httpx, no redirects followed) of the event as JSON
(:func:`event_json`: times ISO 8601 UTC with milliseconds and ``Z``) with the Standard Webhooks
headers ``webhook-id`` (the event id), ``webhook-timestamp`` (Unix seconds of this attempt)
and, when the channel has a secret, ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` by the
``standardwebhooks`` package; a receiver checks it with ``Webhook(secret).verify(body,
headers)``). Apprise channels get a title and a text body through ``Apprise.notify`` (in a
thread); Apprise reports only success or failure, so every Apprise failure is retried. An
attempt's outcome: ``delivered`` (2xx), ``retry`` (408, 429, 5xx, network errors, timeouts
after ``UPTIME_NOTIFY_TIMEOUT_S``, any Apprise failure) or ``permanent`` (any other 4xx, a 3xx,
an address refused by ``uptime.notify.channels.check_host``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook

from uptime.platform.settings import Settings
from uptime.platform.tasks import one_line
from uptime.notify.channels import ChannelError, check_host, get_channel, kind_of, scrub

#: 4xx answers that are worth retrying (Request Timeout, Too Many Requests).
RETRYABLE_4XX = frozenset({408, 429})


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def event_json(event: dict[str, Any]) -> str:
    """The event as compact JSON, datetimes as ISO 8601 UTC with milliseconds and ``Z``."""

    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
            return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        return str(value)

    return json.dumps(event, default=default, separators=(",", ":"), sort_keys=True)


def _apprise_text(event: dict[str, Any]) -> tuple[str, str]:
    store = event.get("store_id")
    inc = event.get("incident") or {}
    kind = event.get("type")
    titles = {
        "incident.opened": f"Store {store} is down",
        "incident.resolved": f"Store {store} is back up",
        "incident.reminder": f"Store {store} is still down",
        "test": "Uptime Monitor: test notification",
    }
    lines = [f"event {event.get('id')} ({kind})"]
    for key in ("started_at", "ended_at", "business_downtime_minutes"):
        if inc.get(key) is not None:
            lines.append(f"{key}: {inc[key]}")
    return titles.get(kind, str(kind)), "\n".join(lines)


class Attempt(dict):
    """One delivery attempt: ``{at, status_code, error, duration_ms, outcome}``; outcome
    ``delivered`` | ``retry`` | ``permanent``."""


async def send(channel: dict[str, Any], event: dict[str, Any], settings: Settings,
               client: httpx.AsyncClient | None = None) -> Attempt:
    """Deliver ``event`` to ``channel`` once (no retry) and describe the attempt.

    Never raises for a delivery problem: it is the attempt's ``error`` (credentials of the
    URL redacted) and ``outcome``.
    """
    started = time.perf_counter()
    at = utcnow()
    status_code: int | None = None
    error: str | None = None
    outcome = "retry"
    url = channel["url"]
    try:
        parts = urlsplit(url)
        if kind_of(url) == "webhook" or parts.scheme.lower() in {"json", "jsons", "xml",
                                                                  "xmls", "form", "forms"}:
            await check_host(parts.hostname, parts.port,
                             allow_private=settings.notify_allow_private)
        if kind_of(url) == "webhook":
            status_code = await _post_webhook(channel, event, settings, client)
            if 200 <= status_code < 300:
                outcome = "delivered"
            elif status_code in RETRYABLE_4XX or status_code >= 500:
                outcome, error = "retry", f"HTTP {status_code}"
            else:
                outcome, error = "permanent", f"HTTP {status_code}"
        else:
            ok, detail = await asyncio.wait_for(
                asyncio.to_thread(_apprise_notify, url, event), settings.notify_timeout_s
            )
            outcome, error = ("delivered", None) if ok else ("retry", detail or "Apprise failed")
    except ChannelError as exc:
        outcome, error = "permanent", str(exc)
    except Exception as exc:  # noqa: BLE001 - network errors, timeouts: retried
        outcome, error = "retry", one_line(exc)
    if error:
        error = scrub(error, url)[:500]
    return Attempt(at=at, status_code=status_code, error=error, outcome=outcome,
                   duration_ms=round((time.perf_counter() - started) * 1000, 1))


async def _post_webhook(channel: dict[str, Any], event: dict[str, Any], settings: Settings,
                        client: httpx.AsyncClient | None) -> int:
    body = event_json(event)
    now = utcnow()
    headers = {
        "content-type": "application/json",
        "user-agent": "uptime-monitor",
        "webhook-id": event["id"],
        "webhook-timestamp": str(int(now.timestamp())),
    }
    if channel.get("secret"):
        headers["webhook-signature"] = Webhook(channel["secret"]).sign(event["id"], now, body)
    own = client is None
    client = client or httpx.AsyncClient(follow_redirects=False)
    try:
        # a total limit (httpx's is per read/write), in this task (no task per request)
        async with asyncio.timeout(settings.notify_timeout_s):
            response = await client.post(channel["url"], content=body.encode(),
                                         headers=headers, timeout=settings.notify_timeout_s)
        return response.status_code
    finally:
        if own:
            await client.aclose()


def _apprise_notify(url: str, event: dict[str, Any]) -> tuple[bool, str | None]:
    # deferred: importing apprise (its 100+ service plugins) takes ~0.25 s, which every CLI
    # command would pay at start; only a delivery to an Apprise channel needs it
    import apprise

    title, body = _apprise_text(event)
    ap = apprise.Apprise()
    if not ap.add(url):
        return False, "Apprise does not accept this URL"
    with apprise.LogCapture(level=apprise.logging.WARNING) as output:
        ok = ap.notify(body=body, title=title)
        detail = output.getvalue().strip().splitlines()
    return bool(ok), (detail[-1][:300] if detail else None)


async def send_test(db: Any, name: str, settings: Settings) -> Attempt:
    """Send a ``test`` event to channel ``name`` now (even when muted; not through the
    outbox) and return the attempt (with ``event_id``). Raises ChannelError (404) for an
    unknown channel."""
    return await send_test_to(await get_channel(db, name), settings)


async def send_test_to(channel: dict[str, Any], settings: Settings) -> Attempt:
    """Send a fresh ``test`` event (id ``test-<16 hex>``) to a stored channel document."""
    event = {"id": f"test-{secrets.token_hex(8)}", "type": "test", "store_id": None,
             "incident": {}, "occurred_at": utcnow()}
    attempt = await send(channel, event, settings)
    attempt["event_id"] = event["id"]
    return attempt
