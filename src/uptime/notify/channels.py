"""Notification channels, stored in MongoDB (issue 17, item 4).

Collection ``notification_channels``, one document per channel::

    {_id: ObjectId, name: str (unique, index name_1), url: str, secret: str | null,
     muted: bool, created_at: Date (UTC)}

``url`` is either

* an ``http://`` or ``https://`` URL → the **generic webhook**: an HTTP POST of the JSON
  event, signed the Standard Webhooks way when the channel has a ``secret`` (``whsec_…``);
* any other URL Apprise understands (``slack://…``, ``ntfy://…``, ``mailto://…``,
  ``json://…``) → delivered by Apprise. A ``secret`` is refused for these (Apprise signs
  nothing).

Hostile URLs (README, "Notifications"), checked by :func:`check_url` when a channel is added
and again before every delivery (DNS may have changed): a scheme that is neither http(s) nor
an Apprise service (``file://``, ``gopher://``, ``ftp://``) is refused; a host that is, or
resolves to, a non-global address (loopback, private, link-local, CGNAT, multicast, reserved,
unspecified, IPv4-mapped forms of those) is refused unless ``UPTIME_NOTIFY_ALLOW_PRIVATE`` is
true. For Apprise's generic HTTP services (``json``, ``xml``, ``form`` and their ``s``
variants) the host is resolved and checked like a webhook's; for other Apprise services the
host part is often a token (``slack://TokenA/…``), so it is never sent to DNS: only a
literal IP address or ``localhost`` is checked.

Secrets are never echoed back: :func:`public_view` gives the name, a redacted URL
(Apprise's own ``url(privacy=True)`` for Apprise URLs; for webhooks the user info, every
query value and every path segment of 16 or more characters are replaced by ``***``),
``has_secret``, ``muted`` and ``created_at``.

Errors: :class:`ChannelError` (a ``ValueError``) names the field and the reason; the API
turns it into a 422 (409 for a duplicate name, 404 for an unknown one).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import re
import socket
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

# Apprise logs the URLs it is given (e.g. "Unparseable URL <url>"), credentials included: its
# records never reach the service's log. A failed Apprise delivery records Apprise's last
# warning, scrubbed (``scrub``), in the outbox attempt instead.
_apprise_log = logging.getLogger("apprise")
_apprise_log.propagate = False
_apprise_log.addHandler(logging.NullHandler())

CHANNELS = "notification_channels"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_URL_CHARS = 2048
#: Apprise services that POST to a host the user chooses (checked like a webhook's host).
APPRISE_HTTP_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})
WEBHOOK_SCHEMES = frozenset({"http", "https"})
_LONG_SEGMENT = 16


class ChannelError(ValueError):
    """A channel's input is not acceptable. ``field``: ``name``, ``url`` or ``secret``;
    ``status``: the HTTP status the API answers (422, 404 unknown, 409 duplicate)."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        if status == 422 and field in ("url", "secret"):  # decided refusals, one marker
            message = f"channel {field} refused: {message}"
        super().__init__(message)
        self.field = field
        self.status = status


def kind_of(url: str) -> str:
    """``"webhook"`` for an http(s) URL, else ``"apprise"``."""
    return "webhook" if urlsplit(url).scheme.lower() in WEBHOOK_SCHEMES else "apprise"


def _non_global(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not addr.is_global or addr.is_multicast


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def _resolve(host: str, port: int | None) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port or 80, type=socket.SOCK_STREAM), timeout=5
        )
    except (OSError, TimeoutError):
        return []
    return [info[4][0] for info in infos]


async def check_host(host: str | None, port: int | None, *, allow_private: bool,
                     resolve: bool = True) -> None:
    """Refuse a host that is, or (``resolve``) resolves to, a non-global address.

    A name that does not resolve is accepted here (checked again before each delivery).

    Raises:
        ChannelError: field ``url``, naming the host and the address.
    """
    if allow_private or not host:
        return
    literal = _literal(host)
    if literal is not None:
        if _non_global(literal):
            raise ChannelError("url", f"host {host} is an internal address ({literal}); "
                               "set UPTIME_NOTIFY_ALLOW_PRIVATE=true to allow it")
        return
    if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
        raise ChannelError("url", f"host {host} is loopback; "
                           "set UPTIME_NOTIFY_ALLOW_PRIVATE=true to allow it")
    if not resolve:
        return
    for address in await _resolve(host, port):
        ip = _literal(address)
        if ip is not None and _non_global(ip):
            raise ChannelError("url", f"host {host} resolves to an internal address ({ip}); "
                               "set UPTIME_NOTIFY_ALLOW_PRIVATE=true to allow it")


def _apprise_instance(url: str) -> Any:
    # deferred: importing apprise (its 100+ service plugins) takes ~0.25 s, which every CLI
    # command would pay at start; only a channel check or delivery needs it
    import apprise

    return apprise.Apprise.instantiate(url, suppress_exceptions=True)


async def check_url(url: str, *, allow_private: bool) -> str:
    """Check a channel URL and return its kind, ``"webhook"`` or ``"apprise"``.

    Raises:
        ChannelError: field ``url``: too long, control characters, no scheme, a scheme that
            is neither http(s) nor an Apprise service, a webhook without a host, an internal
            address (module docstring).
    """
    if not isinstance(url, str) or not url.strip():
        raise ChannelError("url", "url is empty")
    if len(url) > MAX_URL_CHARS:
        raise ChannelError("url", f"url is longer than {MAX_URL_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise ChannelError("url", "url contains control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ChannelError("url", f"url does not parse: {exc}") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise ChannelError("url", "url has no scheme (http://, https:// or an Apprise URL)")
    if scheme in WEBHOOK_SCHEMES:
        if not parts.hostname:
            raise ChannelError("url", "a webhook url needs a host")
        await check_host(parts.hostname, port, allow_private=allow_private)
        return "webhook"
    instance = await asyncio.to_thread(_apprise_instance, url)
    if instance is None:
        raise ChannelError(
            "url", f"unsupported scheme {scheme}://: generic webhooks take http:// or "
            "https:// only; anything else must be an Apprise service URL")
    host = getattr(instance, "host", None)
    await check_host(host if isinstance(host, str) else None, port,
                     allow_private=allow_private, resolve=scheme in APPRISE_HTTP_SCHEMES)
    return "apprise"


def check_secret(secret: str | None, kind: str) -> None:
    """Refuse a secret that is not a Standard Webhooks secret (``whsec_`` + strict base64 of
    24-64 bytes, the spec's bounds), or a secret on an Apprise channel.

    Raises:
        ChannelError: field ``secret``.
    """
    if secret is None:
        return
    if kind != "webhook":
        raise ChannelError("secret", "a secret is only used by http(s) webhook channels")
    if not secret.startswith("whsec_"):
        raise ChannelError("secret", "secret must be a Standard Webhooks secret: whsec_<base64>")
    try:
        key = base64.b64decode(secret[len("whsec_"):], validate=True)
    except (binascii.Error, ValueError):
        raise ChannelError("secret", "secret is not whsec_ followed by valid base64") from None
    if not 24 <= len(key) <= 64:
        raise ChannelError("secret", "secret must decode to 24-64 bytes (Standard Webhooks "
                           f"spec), got {len(key)}")


def check_name(name: str) -> None:
    """Raises ChannelError (field ``name``) unless ``name`` matches ``NAME_PATTERN``."""
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise ChannelError(
            "name", "name must be 1-64 characters: letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)")


def redact_url(url: str) -> str:
    """The URL with its credentials hidden (module docstring); never raises."""
    try:
        if kind_of(url) == "apprise":
            instance = _apprise_instance(url)
            if instance is not None:
                return instance.url(privacy=True)
            return urlsplit(url).scheme + "://***"
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
        if parts.username is not None or parts.password is not None:
            netloc = "***@" + netloc
        path = "/".join(
            "***" if len(seg) >= _LONG_SEGMENT else seg for seg in parts.path.split("/")
        )
        query = "&".join(
            (pair.split("=", 1)[0] + "=***") if "=" in pair else "***"
            for pair in parts.query.split("&") if pair
        )
        return urlunsplit((parts.scheme, netloc, path, query, ""))
    except Exception:  # noqa: BLE001 - a redaction must never leak by failing
        return "***"


def scrub(text: str, url: str) -> str:
    """``text`` with the URL and its credential-like parts (user, password; path segments of
    8+ characters; query values and an Apprise URL's host of 4+) replaced by ``***``; never
    raises."""
    try:
        text = text.replace(url, redact_url(url))
        parts = urlsplit(url)
        secrets = {s for s in (parts.username, parts.password) if s}
        raw_host = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]  # as written, not lowered
        token_host = raw_host if kind_of(url) == "apprise" else None
        others = [token_host] + [seg for seg in parts.path.split("/") if len(seg) >= 8]
        others += [pair.split("=", 1)[1] for pair in parts.query.split("&") if "=" in pair]
        secrets |= {s for s in others if s and len(s) >= 4}
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text
    except Exception:  # noqa: BLE001 - a scrub must never leak by failing
        return "***"


def public_view(doc: dict[str, Any]) -> dict[str, Any]:
    """What list/API show of a channel: ``{name, kind, url (redacted), has_secret, muted,
    created_at}`` — never the URL's credentials nor the secret."""
    return {
        "name": doc["name"],
        "kind": kind_of(doc["url"]),
        "url": redact_url(doc["url"]),
        "has_secret": bool(doc.get("secret")),
        "muted": bool(doc.get("muted")),
        "created_at": doc.get("created_at"),
    }


async def add_channel(db: Any, name: str, url: str, secret: str | None = None, *,
                      allow_private: bool = False) -> dict[str, Any]:
    """Store a new channel and return its :func:`public_view`.

    Raises:
        ChannelError: bad name/url/secret (422); a channel of that name exists (409).
    """
    check_name(name)
    kind = await check_url(url, allow_private=allow_private)
    check_secret(secret, kind)
    doc = {"name": name, "url": url, "secret": secret, "muted": False,
           "created_at": datetime.now(UTC)}
    try:
        await db[CHANNELS].insert_one(doc)
    except DuplicateKeyError:
        raise ChannelError("name", f"a channel named {name} exists", status=409) from None
    return public_view(doc)


async def list_channels(db: Any) -> list[dict[str, Any]]:
    """Every channel's :func:`public_view`, sorted by name."""
    docs = await db[CHANNELS].find({}).sort("name", 1).to_list(None)
    return [public_view(d) for d in docs]


async def get_channel(db: Any, name: str) -> dict[str, Any]:
    """The stored channel document (with its URL and secret: internal use only).

    Raises:
        ChannelError: no channel of that name (404).
    """
    doc = await db[CHANNELS].find_one({"name": name})
    if doc is None:
        raise ChannelError("name", f"no channel named {name}", status=404)
    return doc


async def remove_channel(db: Any, name: str) -> None:
    """Delete a channel (its pending notifications are then skipped, reason
    ``channel_removed``). Raises ChannelError (404) for an unknown name."""
    result = await db[CHANNELS].delete_one({"name": name})
    if result.deleted_count == 0:
        raise ChannelError("name", f"no channel named {name}", status=404)


async def set_muted(db: Any, name: str, muted: bool) -> dict[str, Any]:
    """Mute or unmute a channel; return its :func:`public_view`. A muted channel's
    notifications are recorded as ``skipped`` (reason ``muted``), not sent.
    Raises ChannelError (404) for an unknown name."""
    doc = await db[CHANNELS].find_one_and_update(
        {"name": name}, {"$set": {"muted": muted}}, return_document=ReturnDocument.AFTER
    )
    if doc is None:
        raise ChannelError("name", f"no channel named {name}", status=404)
    return public_view(doc)
