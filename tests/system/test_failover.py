"""Failover on a real three-member replica set (issue 10, item 3), measured.

Each test prints what it measured (seconds to a new primary, to the first acknowledged write
after it, writes acknowledged vs found). The set is ``tests/support/replset.py``'s (elections in about
1-3 s); the service's client is ``uptime.platform.db.make_client`` with its guarantees
(w:majority, read concern majority, retryable reads and writes).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from pymongo.errors import BulkWriteError

from support.reports import T0, expected_csv, insert_stores
from uptime.platform.db import make_client
from uptime.platform.settings import Settings
from uptime.platform.tasks import is_transient
from uptime.report import storage
from uptime.report.service import ReportService

pytestmark = pytest.mark.replset

POLL_INDEX = [("store_id", 1), ("timestamp_utc", 1), ("status", 1)]


@pytest.fixture
async def rsdb(rs, tmp_path):
    """(client, database, settings) on the replica set; the database is dropped afterwards."""
    name = f"fo_{uuid.uuid4().hex[:10]}"
    client = make_client(rs.uri)
    settings = Settings(mongodb_uri=rs.uri, mongodb_database=name, data_dir=tmp_path / "d",
                        lease_seconds=3, db_timeout_s=3)
    try:
        yield client, client[name], settings
    finally:
        rs.wait_healthy()
        await client.drop_database(name)
        await client.close()


async def report_csv(db, doc) -> str:
    out = bytearray()
    async for chunk in storage.iter_csv_chunks(db, doc["file_id"]):
        out += chunk
    return out.decode()


@pytest.mark.parametrize("how", ["step-down", "kill -9"])
async def test_failover_while_report_generates(rs, rsdb, how):
    """replSetStepDown on the primary, or kill -9 of it, while a report is generating: the
    report completes (the aggregation survives a step-down, which only interrupts writes; a
    killed primary cuts it, and the driver's retryable read or, failing that, the service
    runs it again on the new primary) with the same CSV as an undisturbed run, and no report
    stays Running."""
    _client, db, settings = rsdb
    await insert_stores(db, 3000, polls_per_store=72)
    await db.store_status.create_index(POLL_INDEX)
    expected = await expected_csv(db, T0)
    from prometheus_client import REGISTRY

    def retried() -> float:
        return REGISTRY.get_sample_value(
            "uptime_reports_total", {"pipeline": "store_uptime@v1", "outcome": "retried"}
        ) or 0.0

    retried_before = retried()
    service = ReportService(db, settings)
    await service.start()
    try:
        report_id = await service.trigger(T0)
        while (await db.reports.find_one({"_id": report_id}))["started_at"] is None:
            await asyncio.sleep(0.01)
        at_step_down = await db.reports.find_one({"_id": report_id})
        old = rs.primary()
        t0 = time.monotonic()
        await asyncio.to_thread(rs.step_down if how == "step-down" else rs.kill, old)
        new = await asyncio.to_thread(rs.primary)
        elected = time.monotonic() - t0
        doc = await asyncio.wait_for(service.wait(report_id), 120)
        done = time.monotonic() - t0
    finally:
        await service.stop()
    print(f"{how} of m{old.index}: m{new.index} primary after {elected:.2f} s; report "
          f"{doc['status']} {done:.2f} s after the {how}, attempt {doc['attempt']} (it "
          f"was {at_step_down['status']}, {at_step_down['rows'] or 0} rows written, before "
          f"it); generations cut and restarted in-process: "
          f"{retried() - retried_before:.0f}")
    assert at_step_down["status"] == "Running"
    assert new.index != old.index
    assert doc["status"] == "Complete", doc.get("error")
    assert await report_csv(db, doc) == expected
    assert await db.reports.count_documents({"status": "Running"}) == 0


async def test_primary_killed_during_write_stream(rs, rsdb):
    """kill -9 of the primary during a stream of poll writes (w:majority, retryable, the
    importer's deterministic _id): every write the driver acknowledged is found afterwards on
    the new primary, and on the killed member once it rejoined; a retried batch adds nothing.

    (Direct ``insert_many`` batches stand in for ``POST /polls``, which uses the same write.)"""
    _client, db, _settings = rsdb
    coll = db.store_status
    acked: set[str] = set()
    batches, per_batch = 120, 200
    kill_at = 30
    failures = 0
    killed_at = recovered_at = None
    old = rs.primary()
    for b in range(batches):
        docs = []
        for k in range(per_batch):
            ts = T0 - timedelta(minutes=b * per_batch + k)
            sid = f"w{k % 50:03d}"
            docs.append({"_id": f"{sid}|{ts.isoformat(timespec='milliseconds')}|a",
                         "store_id": sid, "timestamp_utc": ts, "status": "active"})
        if b == kill_at:
            await asyncio.to_thread(rs.kill, old)
            killed_at = time.monotonic()
        while True:
            try:
                await coll.insert_many(docs, ordered=False)
                break
            except BulkWriteError as exc:  # a retried batch: duplicates only are fine
                if any(e["code"] != 11000 for e in exc.details["writeErrors"]):
                    raise
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                await asyncio.sleep(0.05)
        if killed_at is not None and recovered_at is None:
            recovered_at = time.monotonic()
        acked.update(d["_id"] for d in docs)
    new = rs.primary()
    found = {d["_id"] async for d in coll.find({}, {"_id": 1})}
    await asyncio.to_thread(rs.wait_healthy)  # the killed member restarts and catches up
    rejoined = old.direct()
    try:
        deadline = time.monotonic() + 30
        while (n_old := rejoined[db.name].store_status.count_documents({})) < len(acked):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        rejoined.close()
    print(f"kill -9 of primary m{old.index}: next acknowledged write after "
          f"{recovered_at - killed_at:.2f} s (m{new.index} primary, {failures} failed tries "
          f"retried); acknowledged {len(acked):,}, found {len(found & acked):,} on the new "
          f"primary, {len(found):,} in all; {n_old:,} on the rejoined member")
    assert len(acked) == batches * per_batch
    assert acked <= found and found <= acked
    assert n_old == len(acked)


async def test_secondary_down_for_the_whole_test(rs, rsdb, tmp_path):
    """With one secondary down from start to end, majority writes still succeed (two of
    three members), so the CSV import and a report work: the report's CSV equals the
    pipeline's rows for the imported files."""
    from uptime.ingest.importer import import_file
    from uptime.tools.generate import generate_dataset

    _client, db, settings = rsdb
    primary = rs.primary()
    down = next(m for m in rs.members if m is not primary)
    await asyncio.to_thread(rs.kill, down)
    files = generate_dataset(tmp_path / "csv", stores=300, days=3, seed=3)
    t0 = time.monotonic()
    summaries = [await import_file(db, kind, path, rejects=tmp_path / "rej/")
                 for kind, path in (("timezones", files.timezones), ("hours", files.hours),
                                    ("status", files.status))]
    t_import = time.monotonic() - t0
    from uptime.platform.migrations import migrate_up

    await migrate_up(db)
    service = ReportService(db, settings)
    await service.start()
    try:
        t0 = time.monotonic()
        doc = await asyncio.wait_for(service.wait(await service.trigger()), 120)
        t_report = time.monotonic() - t0
    finally:
        await service.stop()
    print(f"m{down.index} down: imported {sum(s.loaded for s in summaries):,} rows in "
          f"{t_import:.2f} s, report {doc['status']} in {t_report:.2f} s ({doc['rows']} rows)")
    assert [s.loaded for s in summaries] == [files.timezone_rows, files.hours_rows,
                                             files.status_rows]
    assert doc["status"] == "Complete" and doc["rows"] == files.stores
    assert await report_csv(db, doc) == await expected_csv(db, doc["as_of"])
    assert sorted(rs.states().values()) == ["(not reachable/healthy)", "PRIMARY", "SECONDARY"]


async def test_migrations_lock_and_changelog_survive_failover(rs, rsdb, tmp_path):
    """A step-down while ``migrate up`` holds the lock: the run finishes on the new primary
    (commands are sent again after a not-primary error, changelog writes are retryable); every
    file is recorded exactly once in the changelog, its indexes exist, and the lock is free."""
    import json

    from uptime.platform.migrations import CHANGELOG, LOCK_COLLECTION, migrate_up

    _client, db, _settings = rsdb
    await db.store_status.insert_one({"store_id": "x", "timestamp_utc": T0, "status": "active"})
    folder = tmp_path / "migrations"
    folder.mkdir()
    names = []
    for i in range(12):
        name = f"202601010000{i:02d}-idx{i}.json"
        names.append(name)
        (folder / name).write_text(json.dumps({
            "up": [{"createIndexes": "store_status",
                    "indexes": [{"key": {f"f{i}": 1}, "name": f"f{i}_1"}]}],
            "down": [{"dropIndexes": "store_status", "index": f"f{i}_1"}],
        }))
    run = asyncio.create_task(migrate_up(db, directory=folder, lock_ttl=3, lock_wait=30))
    while await db[CHANGELOG].count_documents({}) < 2 and not run.done():
        await asyncio.sleep(0.01)
    old = rs.primary()
    t0 = time.monotonic()
    recorded_before = await db[CHANGELOG].count_documents({})
    await asyncio.to_thread(rs.step_down, old)
    first_error = None
    try:
        await run
    except Exception as exc:  # e.g. interrupted by the step-down: run it again
        first_error = exc
        await migrate_up(db, directory=folder, lock_ttl=3, lock_wait=30)
    took = time.monotonic() - t0
    entries = [d["file_name"] async for d in db[CHANGELOG].find({})]
    indexes = {i["name"] for i in await (await db.store_status.list_indexes()).to_list()}
    print(f"step-down during migrate up ({recorded_before} of {len(names)} recorded): "
          f"done {took:.2f} s later "
          f"({'second run after ' + type(first_error).__name__ if first_error else 'first run'})"
          f"; changelog {len(entries)} entries")
    assert first_error is None
    assert sorted(entries) == names
    assert {f"f{i}_1" for i in range(12)} <= indexes
    assert await db[LOCK_COLLECTION].count_documents({}) == 0
