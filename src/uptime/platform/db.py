"""Connecting to MongoDB: the configured server (``MONGODB_URI``) or the embedded one.

``server_uri`` is a sync context manager yielding a connection string; ``open_client`` wraps
it into an async context manager yielding a ``pymongo.AsyncMongoClient`` (PyMongo's native
async API; Motor is deprecated since 2025-05-14). Clients are ``tz_aware`` with UTC, so every
``datetime`` read back is timezone-aware UTC.

Guarantees on a replica set (issue 10, item 2), set once here for every collection of every
client (polls, runs, reports and their GridFS chunks, migrations, leases):

* ``w="majority"`` (journaled): an acknowledged write is on a majority of members and survives
  the failover of the primary (a ``w:1`` write can be rolled back by the next election).
* ``readConcernLevel="majority"``: reads see only majority-committed data, so a report, a lease
  check or the follower never acts on a write that a failover could roll back. On the primary
  a majority write is visible to the majority read that follows it (read your own writes).
* ``retryWrites`` and ``retryReads``: an operation interrupted by a step-down or an election is
  retried once on the new primary; with deterministic ``_id``s an insert retried after a lost
  acknowledgement adds nothing.

Options written in the URI (``?w=1`` …) win over these defaults, for an operator who decides
otherwise. ``server_selection_timeout_s`` bounds how long an operation waits for a usable
server: the service uses ``UPTIME_DB_TIMEOUT_S`` (3 s) so an outage is a quick 503, the batch
commands keep the driver's 30 s so that they ride out an election.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timezone

from bson.codec_options import DatetimeConversion
from pymongo import AsyncMongoClient
from pymongo.uri_parser import parse_uri

from uptime.platform.embedded import EmbeddedMongo
from uptime.platform.migrations import ensure_current
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


#: Client options of every connection (see the module docstring); URI options override them.
GUARANTEES: dict[str, object] = {
    "w": "majority",
    "readConcernLevel": "majority",
    "retryWrites": True,
    "retryReads": True,
}


def make_client(uri: str, *, server_selection_timeout_s: float | None = None) -> AsyncMongoClient:
    """Return an ``AsyncMongoClient`` for ``uri``: tz-aware UTC datetimes, the write/read
    guarantees of ``GUARANTEES`` unless the URI sets them, and a server-selection timeout of
    ``server_selection_timeout_s`` seconds (``None``: the URI's, else the driver's 30 s).

    ``datetime_conversion=DATETIME_AUTO``: a BSON Date that Python's ``datetime`` cannot hold
    (before year 1 or after 9999, written by another system) decodes as
    ``bson.datetime_ms.DatetimeMS`` instead of raising while a cursor or a change stream is
    read (issue 9, item 2); every in-range Date is still a tz-aware UTC ``datetime``.
    """
    given = {key.lower() for key in parse_uri(uri, validate=False)["options"]}
    options = {k: v for k, v in GUARANTEES.items() if k.lower() not in given}
    if server_selection_timeout_s is not None and "serverselectiontimeoutms" not in given:
        options["serverSelectionTimeoutMS"] = int(server_selection_timeout_s * 1000)
    return AsyncMongoClient(
        uri, tz_aware=True, tzinfo=timezone.utc, appname=APP_NAME,
        datetime_conversion=DatetimeConversion.DATETIME_AUTO, **options,
    )


@asynccontextmanager
async def open_client(
    settings: Settings, *, server_selection_timeout_s: float | None = None
) -> AsyncIterator[AsyncMongoClient]:
    """Async context: the server (embedded if needed) and a client on it, closed at the end."""
    with server_uri(settings) as uri:
        client = make_client(uri, server_selection_timeout_s=server_selection_timeout_s)
        try:
            yield client
        finally:
            await client.close()


@asynccontextmanager
async def open_database(
    settings: Settings, *, migrate: bool = True, server_selection_timeout_s: float | None = None
) -> AsyncIterator:
    """Async context yielding the ``AsyncDatabase`` named by ``MONGODB_DATABASE``.

    With ``migrate`` (the default for ``serve``/``import``/``report``) pending migrations are
    applied first when ``UPTIME_AUTO_MIGRATE`` is true, else
    ``uptime.platform.migrations.MigrationsPendingError`` is raised naming them.
    """
    async with open_client(
        settings, server_selection_timeout_s=server_selection_timeout_s
    ) as client:
        db = client[settings.mongodb_database]
        if migrate:
            await ensure_current(db, apply=settings.auto_migrate)
        yield db
