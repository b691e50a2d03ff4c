"""Connecting to MongoDB: the configured server (``MONGODB_URI``) or the embedded one.

``server_uri`` is a sync context manager yielding a connection string; ``open_client`` wraps
it into an async context manager yielding a ``pymongo.AsyncMongoClient`` (PyMongo's native
async API; Motor is deprecated since 2025-05-14). Clients are ``tz_aware`` with UTC, so every
``datetime`` read back is timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timezone

from bson.codec_options import DatetimeConversion
from pymongo import AsyncMongoClient

from uptime.platform.embedded import EmbeddedMongo
from uptime.platform.settings import Settings

APP_NAME = "uptime-monitor"


@contextmanager
def server_uri(settings: Settings) -> Iterator[str]:
    """Yield the MongoDB URI to use: ``MONGODB_URI``, else the embedded server's.

    Raises:
        uptime.platform.embedded.EmbeddedServerError: MONGODB_URI unset and no embedded server could
            be started.
    """
    if settings.mongodb_uri:
        yield settings.mongodb_uri
        return
    with EmbeddedMongo(settings.data_dir, settings.mongod) as server:
        assert server.uri is not None
        yield server.uri


def make_client(uri: str) -> AsyncMongoClient:
    """Return an ``AsyncMongoClient`` for ``uri`` (tz-aware UTC datetimes).

    ``datetime_conversion="datetime_auto"``: a BSON Date that Python's ``datetime`` cannot
    hold (before year 1 or after 9999, written by another system) decodes as
    ``bson.datetime_ms.DatetimeMS`` instead of raising while a cursor or a change stream is
    read (issue 9, item 2); every in-range Date is still a tz-aware UTC ``datetime``.
    """
    return AsyncMongoClient(
        uri, tz_aware=True, tzinfo=timezone.utc, appname=APP_NAME,
        datetime_conversion=DatetimeConversion.DATETIME_AUTO,
    )


@asynccontextmanager
async def open_client(settings: Settings) -> AsyncIterator[AsyncMongoClient]:
    """Async context: the server (embedded if needed) and a client on it, closed at the end."""
    with server_uri(settings) as uri:
        client = make_client(uri)
        try:
            yield client
        finally:
            await client.close()


@asynccontextmanager
async def open_database(settings: Settings, *, migrate: bool = True) -> AsyncIterator:
    """Async context yielding the ``AsyncDatabase`` named by ``MONGODB_DATABASE``.

    With ``migrate`` (the default for ``serve``/``import``/``report``) pending migrations are
    applied first when ``UPTIME_AUTO_MIGRATE`` is true, else
    ``uptime.platform.migrations.MigrationsPendingError`` is raised naming them.
    """
    async with open_client(settings) as client:
        db = client[settings.mongodb_database]
        if migrate:
            from uptime.platform.migrations import ensure_current

            await ensure_current(db, apply=settings.auto_migrate)
        yield db
