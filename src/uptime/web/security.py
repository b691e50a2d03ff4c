"""Security headers on every response (issue 15, item 3).

:class:`SecurityHeadersMiddleware` adds to **every** response:

* ``X-Content-Type-Options: nosniff`` — a JSON or CSV answer is never run as a script;
* ``Referrer-Policy: no-referrer`` — page URLs hold store and report ids; no other site
  learns them;
* ``X-Frame-Options: DENY`` (older browsers; ``frame-ancestors`` below for the others);

and to every **HTML** response a ``Content-Security-Policy`` (:data:`PAGE_CSP`): scripts,
styles, fetches and forms from the service itself only, images from itself or ``data:`` (the
pages' empty favicon), no plugins, no ``<base>``, never inside a frame. The dashboard's pages
have no inline script or style. The API documentation pages (``/docs``, ``/redoc``, from
``fastapi-offline``, served locally as well) carry one small inline script each: its
SHA-256 hash is added to ``script-src`` (computed from the page itself, so only that exact
script runs), and since Swagger UI and ReDoc inject their own ``<style>`` elements, those
pages (:data:`DOCS_PATHS`) also get ``style-src 'unsafe-inline'`` and ReDoc's ``blob:`` worker.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The policy of every HTML page of the dashboard.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
#: API documentation pages (Swagger UI, ReDoc): they inject styles and ReDoc runs a worker.
DOCS_PATHS = ("/docs", "/redoc")
_DOCS_EXTRA = {"style-src": "'unsafe-inline'", "worker-src": "'self' blob:"}
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def policy_for(path: str, html: bytes) -> str:
    """The CSP of the HTML page ``html`` served at ``path``."""
    directives = dict(part.split(" ", 1) for part in PAGE_CSP.split("; "))
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
        for m in _INLINE_SCRIPT.finditer(html) if m.group(1).strip()
    ]
    if hashes:
        directives["script-src"] += " " + " ".join(hashes)
    if path.startswith(DOCS_PATHS):
        for name, value in _DOCS_EXTRA.items():
            directives[name] = (directives.get(name, "") + " " + value).strip()
    return "; ".join(f"{k} {v}" for k, v in directives.items())


class SecurityHeadersMiddleware:
    """Add :data:`HEADERS` to every HTTP response and a CSP to every HTML one (pure ASGI;
    an HTML body is held until complete to hash its inline scripts — pages are small)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in dict(HEADERS)]
                message = {**message, "headers": headers + HEADERS}
                ctype = dict((k.lower(), v) for k, v in headers).get(b"content-type", b"")
                if ctype.startswith(b"text/html"):
                    start = message  # sent with the CSP once the body is complete
                    return
                await send(message)
            elif message["type"] == "http.response.body" and start is not None:
                body.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                html = b"".join(body)
                csp = policy_for(scope.get("path", ""), html).encode()
                headers = [(k, v) for k, v in start["headers"]
                           if k.lower() != b"content-length"]
                headers += [(b"content-security-policy", csp),
                            (b"content-length", str(len(html)).encode())]
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": html})
            else:
                await send(message)

        await self.app(scope, receive, send_with_headers)
