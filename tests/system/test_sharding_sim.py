"""Sharding, simulated (issue 10, item 5): no ``mongos`` is installable here, so the stores are
split by ``store_id`` range across two separate ``mongod`` servers (each a one-member replica
set, as a shard is), the report pipeline runs on each half in parallel with its
``store_from``/``store_to`` let parameters, and the two CSV bodies are concatenated in range
order — what a ``mongos`` merging a range-sharded, store-co-located report would return.
The result must equal the single-server CSV byte for byte; wall times are printed beside it
(docs/scaling.md quotes them)."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import time

import pytest

from uptime.ingest.importer import import_file
from uptime.platform.db import make_client
from uptime.platform.migrations import migrate_up
from uptime.report import pipeline
from uptime.tools.generate import generate_dataset

pytestmark = pytest.mark.replset

COLLECTIONS = ("store_status", "store_hours", "store_timezones")
#: stores in the simulated dataset. The rule (range halves concatenated == one server) holds at
#: any size, so the suite uses 500 (~100k polls); docs/scaling.md's figures were measured with
#: UPTIME_SHARD_SIM_STORES=2000 (402k polls), the size to set when re-measuring them.
SIM_STORES = int(os.environ.get("UPTIME_SHARD_SIM_STORES", "500"))


async def report_csv(db, as_of, store_range=(None, None), *, header=True) -> str:
    """The report CSV (the service's formatting) for the stores in ``store_range``."""
    from uptime.report.storage import csv_line_values

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(pipeline.REPORT_COLUMNS)
    async for row in pipeline.iter_report_rows(db, as_of=as_of, store_range=store_range):
        writer.writerow(csv_line_values(row))
    return out.getvalue()


async def copy_range(source, target, lo, hi) -> int:
    """Copy the documents of the three input collections with lo <= store_id < hi."""
    copied = 0
    bounds = {}
    if lo is not None:
        bounds["$gte"] = lo
    if hi is not None:
        bounds["$lt"] = hi
    query = {"store_id": bounds}
    for name in COLLECTIONS:
        batch = []
        async for doc in source[name].find(query):
            batch.append(doc)
            if len(batch) == 10_000:
                await target[name].insert_many(batch)
                copied += len(batch)
                batch = []
        if batch:
            await target[name].insert_many(batch)
            copied += len(batch)
    return copied


async def test_two_range_shards_give_the_single_server_csv(db, tmp_path):
    """Rule: with every store's polls, hours and zone on one shard (ranged store_id shard
    key), report(range A) on shard A + report(range B) on shard B, concatenated in range order,
    is byte-identical to the report on one server holding everything."""
    from support.replset import ReplicaSet

    files = generate_dataset(tmp_path / "csv", stores=SIM_STORES, days=9, seed=11)
    for kind, path in (("timezones", files.timezones), ("hours", files.hours),
                       ("status", files.status)):
        await import_file(db, kind, path, rejects=tmp_path / "rej/")
    await migrate_up(db)
    stores = sorted(await db.store_status.distinct("store_id"))
    split = stores[len(stores) // 2]  # shard A: [None, split), shard B: [split, None)
    as_of = await pipeline.resolve_as_of(db, None)

    t0 = time.monotonic()
    single = await report_csv(db, as_of)
    t_single = time.monotonic() - t0

    shards = [ReplicaSet(tmp_path / f"shard{i}", size=1) for i in range(2)]
    clients = []
    try:
        for rs in shards:
            rs.start()
        clients = [make_client(rs.uri) for rs in shards]
        shard_dbs = [c["sim"] for c in clients]
        ranges = [(None, split), (split, None)]
        for shard_db, (lo, hi) in zip(shard_dbs, ranges):
            await migrate_up(shard_db)
            await copy_range(db, shard_db, lo, hi)
        counts = [await d.store_status.count_documents({}) for d in shard_dbs]

        async def half(shard_db, store_range, header):
            start = time.monotonic()
            body = await report_csv(shard_db, as_of, store_range, header=header)
            return body, time.monotonic() - start

        t0 = time.monotonic()
        (a, t_a), (b, t_b) = await asyncio.gather(
            half(shard_dbs[0], ranges[0], True), half(shard_dbs[1], ranges[1], False)
        )
        t_parallel = time.monotonic() - t0
    finally:
        for c in clients:
            await c.close()
        for rs in shards:
            rs.stop()
    merged = a + b
    n = len(stores)
    print(f"{n:,} stores, {files.status_rows:,} polls; split at {split!r}: shard A "
          f"{counts[0]:,} polls {t_a:.2f} s, shard B {counts[1]:,} polls {t_b:.2f} s; "
          f"in parallel {t_parallel:.2f} s vs one server {t_single:.2f} s "
          f"({t_single / n * 1000:.3f} ms per store); CSV equal: {merged == single}")
    assert sum(counts) == await db.store_status.count_documents({})
    assert merged.count("\n") == n + 1
    assert merged == single
