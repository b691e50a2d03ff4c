"""What the connected MongoDB server supports, asked once per question: is it a replica set
(or mongos; change streams, transactions, ``commitQuorum``), and is a time zone name known."""

from __future__ import annotations

from typing import Any

from pymongo.errors import OperationFailure

from uptime.platform import pipelines
from uptime.platform.constants import DEFAULT_VERSION, PIPELINE_NAME

AsyncDb = Any  # pymongo.asynchronous.database.AsyncDatabase (kept loose for annotations)

_UNKNOWN_ZONE_CODES = {40485, 40517}  # "unrecognized time zone identifier", bad tz type


async def is_replica_set(db: Any) -> bool:
    """True if the server supports change streams (a replica-set member or mongos)."""
    hello = await db.client.admin.command("hello")
    return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"


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
