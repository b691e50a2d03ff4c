"""Replace stores' rows atomically: the step of an hours or time-zones import that makes the
file the new truth for the stores it mentions (issue 10, item 4).

The importer first writes the file's valid rows into a private *staging* collection
(:func:`staging_collection`; same documents, same deterministic ``_id``s), then calls
:func:`replace_from_staging`. That walks the staged stores in ``store_id`` order,
``STORES_PER_TRANSACTION`` at a time, and in ONE multi-document transaction per group:

* inserts the staged rows the target does not hold yet (*loaded*),
* deletes the target rows of those stores that are not staged (*replaced*),
* leaves identical rows alone (*already present*).

So a reader (a report's ``$lookup`` of a store's hours) sees either all of a store's old rows
or all of its new ones, never both (the old importer inserted everything first and deleted
afterwards: for a while a store had both). Groups stay small (a few thousand documents, far
below the transaction limits of 16 MB of oplog and the 60 s ``transactionLifetimeLimitSeconds``),
and ``with_transaction`` retries a group on a transient error (write conflict, failover).

On a standalone server (no transactions) the same steps run without one, in the same
order per group. The staging collection is dropped at the end, also when the replacement
fails; one left by an import that died before this step is dropped by the next import into
the same collection once it is an hour old (its name carries an ObjectId, so its age).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.errors import CollectionInvalid

from uptime.platform.probes import is_replica_set

#: Age after which a staging collection left by a dead import is dropped.
STALE_STAGING = timedelta(hours=1)

#: Stores whose rows are replaced by one transaction.
STORES_PER_TRANSACTION = 500


@dataclass
class ReplaceCounts:
    """``loaded``: staged rows inserted; ``already_present``: staged rows the target held
    already; ``replaced``: target rows of the staged stores deleted (not in the file);
    ``changed``: the store ids with a row inserted or deleted (their schedules need a
    refresh; an unchanged re-import leaves it empty)."""

    loaded: int = 0
    already_present: int = 0
    replaced: int = 0
    changed: set[str] = field(default_factory=set)


def staging_collection(db: Any, target: str) -> Any:
    """A fresh, uniquely named staging collection for an import into ``target``
    (``_import.<target>.<ObjectId>``)."""
    return db[f"_import.{target}.{ObjectId()}"]


async def _drop_stale_staging(db: Any, target: str) -> None:
    prefix = f"_import.{target}."
    for name in await db.list_collection_names(filter={"name": {"$regex": f"^_import\\."}}):
        if not name.startswith(prefix):
            continue
        try:
            born = ObjectId(name[len(prefix):]).generation_time
        except InvalidId:
            continue
        if datetime.now(UTC) - born > STALE_STAGING:
            await db.drop_collection(name)


async def replace_rows(db: Any, target: Any, staging: Any, summary: Any) -> None:
    """The importer's replacement step: :func:`replace_from_staging`, then the counts into
    ``summary`` (an ``ImportSummary`` whose ``loaded``/``already_present`` the staging writer
    filled: rows repeated inside the file are already counted as present)."""
    counts = await replace_from_staging(db, target, staging)
    summary.loaded = counts.loaded
    summary.already_present += counts.already_present
    summary.replaced = counts.replaced
    summary.changed_stores = counts.changed


async def _supports_transactions(db: Any) -> bool:
    return await is_replica_set(db)


async def _staged_stores(staging: Any) -> list[str]:
    cursor = await staging.aggregate([{"$group": {"_id": "$store_id"}}, {"$sort": {"_id": 1}}])
    return [doc["_id"] async for doc in cursor]


async def replace_from_staging(
    db: Any, target: Any, staging: Any, *, stores_per_transaction: int = STORES_PER_TRANSACTION
) -> ReplaceCounts:
    """Make ``target`` hold exactly the ``staging`` rows for every staged store, one
    transaction per ``stores_per_transaction`` stores; drop ``staging``; return the counts.

    Raises:
        pymongo.errors.PyMongoError: a group failed after the driver's transaction retries
            (the groups before it are committed; the staging collection is dropped).
    """
    counts = ReplaceCounts()
    try:
        await _drop_stale_staging(db, target.name)
        with_txn = await _supports_transactions(db)
        try:  # a collection cannot be created implicitly inside every server's transaction
            await db.create_collection(target.name)
        except CollectionInvalid:
            pass
        stores = await _staged_stores(staging)
        for start in range(0, len(stores), stores_per_transaction):
            group = stores[start : start + stores_per_transaction]
            staged = await staging.find({"store_id": {"$in": group}}).to_list()
            staged_ids = {doc["_id"] for doc in staged}

            async def apply(session: Any) -> ReplaceCounts:
                held = {
                    doc["_id"]: doc.get("store_id")
                    async for doc in target.find(
                        {"store_id": {"$in": group}}, {"_id": 1, "store_id": 1}, session=session
                    )
                }
                new = [doc for doc in staged if doc["_id"] not in held]
                stale = [i for i in held if i not in staged_ids]
                changed = {doc["store_id"] for doc in new} | {held[i] for i in stale}
                if new:
                    await target.insert_many(new, ordered=False, session=session)
                removed = 0
                if stale:
                    removed = (
                        await target.delete_many({"_id": {"$in": stale}}, session=session)
                    ).deleted_count
                return ReplaceCounts(len(new), len(staged) - len(new), removed, changed)

            if with_txn:
                async with db.client.start_session() as session:
                    done = await session.with_transaction(apply)
            else:
                done = await apply(None)
            counts.loaded += done.loaded
            counts.already_present += done.already_present
            counts.replaced += done.replaced
            counts.changed |= done.changed
    finally:
        await staging.drop()
    return counts
