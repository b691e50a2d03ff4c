"""What the connected MongoDB server supports, asked once per question: is it a replica set
(or mongos; change streams, transactions, ``commitQuorum``), and is a time zone name known."""

from __future__ import annotations

from typing import Any

from bson import Timestamp
from pymongo.errors import OperationFailure

from uptime.platform import pipelines
from uptime.platform.constants import DEFAULT_VERSION, PIPELINE_NAME

AsyncDb = Any  # pymongo.asynchronous.database.AsyncDatabase (kept loose for annotations)

_UNKNOWN_ZONE_CODES = {40485, 40517}  # "unrecognized time zone identifier", bad tz type


async def is_replica_set(db: Any) -> bool:
    """True if the server supports change streams (a replica-set member or mongos)."""
    hello = await db.client.admin.command("hello")
    return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"


async def operation_time(db: Any) -> Timestamp | None:
    """The server's latest cluster time (``operationTime`` of a ``ping``); None on a
    standalone server (no cluster time)."""
    res = await db.command("ping")
    return res.get("operationTime")


def token_time(token: dict[str, Any] | None) -> Timestamp | None:
    """The cluster time encoded in a change-stream resume token (``_data`` hex: ``82`` then
    4 bytes seconds, 4 bytes increment, big-endian), or None if it is not of that form."""
    data = (token or {}).get("_data")
    if not isinstance(data, str) or len(data) < 18 or not data.startswith("82"):
        return None
    try:
        return Timestamp(int(data[2:10], 16), int(data[10:18], 16))
    except ValueError:
        return None


async def zone_known(db: AsyncDb, name: str) -> bool:
    """True if the MongoDB server accepts ``name`` as a time zone (it raises on an unknown one).

    The one probe the report (``known_timezones``), the import and the maintenance windows use,
    so they agree (``pipelines/zone_probe.v1.json``).

    Raises:
        pymongo.errors.OperationFailure: any other server error.
    """
    try:
        await (
            await db.aggregate(
                pipelines.load("zone_probe.v1"),  # $dateToParts of one date in zone $$tz
                let={"tz": name},
                comment=f"{PIPELINE_NAME}@{DEFAULT_VERSION}:timezones",
            )
        ).to_list()
    except OperationFailure as exc:
        if exc.code in _UNKNOWN_ZONE_CODES or "time zone" in str(exc):
            return False
        raise
    return True
