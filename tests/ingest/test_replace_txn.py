"""An hours or time-zones import replaces each store's rows in one transaction (issue 10,
item 4): a reader never sees a store's old and new rows together."""

from __future__ import annotations

import asyncio

from pymongo.read_concern import ReadConcern

from uptime.ingest import replace
from uptime.ingest.importer import import_file

N_STORES = 1200


def hours_csv(path, start: str, end: str, stores=range(N_STORES)) -> None:
    lines = ["store_id,dayOfWeek,start_time_local,end_time_local"]
    lines += [f"s{i:05d},{d},{start},{end}" for i in stores for d in range(7)]
    path.write_text("\n".join(lines) + "\n")


async def mixed_stores(db) -> list[str]:
    """Stores whose rows, in one snapshot of store_hours, hold two different opening times."""
    snap = db.get_collection("store_hours", read_concern=ReadConcern("snapshot"))
    cursor = await snap.aggregate([
        {"$group": {"_id": "$store_id", "starts": {"$addToSet": "$start_time_local"}}},
        {"$match": {"starts.1": {"$exists": True}}},
    ])
    return [d["_id"] async for d in cursor]


async def test_hours_import_is_atomic_per_store(db, tmp_path, monkeypatch):
    """Rule: while an hours file replaces 1,200 stores' 09-17 rows with 08-18 rows (3 stores per
    transaction here, so 400 commits), every snapshot a concurrent reader takes shows each
    store with only old or only new rows; afterwards only new rows remain and the counts say
    8,400 loaded, 8,400 replaced. (The importer before issue 10 inserted all new rows first
    and deleted the old ones afterwards: every store was mixed for a while.)"""
    monkeypatch.setattr(replace, "STORES_PER_TRANSACTION", 3)
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    hours_csv(old, "09:00:00", "17:00:00")
    hours_csv(new, "08:00:00", "18:00:00")
    first = await import_file(db, "hours", old)
    assert (first.loaded, first.replaced) == (N_STORES * 7, 0)

    seen_mixed: list[str] = []
    snapshots = 0
    done = asyncio.Event()

    async def reader() -> None:
        nonlocal snapshots
        while not done.is_set():
            seen_mixed.extend(await mixed_stores(db))
            snapshots += 1

    watcher = asyncio.create_task(reader())
    try:
        second = await import_file(db, "hours", new)
    finally:
        done.set()
        await watcher
    print(f"{snapshots} snapshots read during the import; mixed stores seen: {len(seen_mixed)}")
    assert snapshots >= 2
    assert seen_mixed == []
    assert (second.loaded, second.already_present, second.replaced) == (N_STORES * 7, 0, N_STORES * 7)
    starts = await db.store_hours.distinct("start_time_local")
    assert starts == ["08:00:00"]
    assert not [n for n in await db.list_collection_names() if n.startswith("_import.")]


async def test_timezones_import_counts_and_cleans_up(db, tmp_path):
    """Rule: a time-zones file replaces the zone of the stores it lists (one row each), keeps an
    identical row as already present, leaves other stores alone, and drops its staging
    collection: 3 stores stored; re-import with one zone changed -> loaded 1, already present
    2, replaced 1; the unlisted store s9 keeps its zone."""
    await db.store_timezones.insert_one(
        {"_id": "s9|Asia/Tokyo", "store_id": "s9", "timezone_str": "Asia/Tokyo"}
    )
    path = tmp_path / "tz.csv"
    path.write_text("store_id,timezone_str\ns1,America/New_York\ns2,Europe/Paris\n"
                    "s3,America/Chicago\n")
    first = await import_file(db, "timezones", path)
    assert (first.loaded, first.already_present, first.replaced) == (3, 0, 0)
    path.write_text("store_id,timezone_str\ns1,America/New_York\ns2,Europe/Berlin\n"
                    "s3,America/Chicago\ns3,America/Chicago\n")
    second = await import_file(db, "timezones", path)
    assert (second.loaded, second.already_present, second.replaced) == (1, 3, 1)
    zones = {d["store_id"]: d["timezone_str"] async for d in db.store_timezones.find()}
    assert zones == {"s1": "America/New_York", "s2": "Europe/Berlin", "s3": "America/Chicago",
                     "s9": "Asia/Tokyo"}
    assert not [n for n in await db.list_collection_names() if n.startswith("_import.")]
