"""Report lifecycle (uptime.report.service, .generation, .storage) against a real mongod:
failures, waiting, leases and crash recovery, retention, chunk-by-chunk download."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from asgi_lifespan import LifespanManager
from pymongo.read_concern import ReadConcern

from support.app import LIFESPAN_TIMEOUT_S
from support.reports import T0, expected_csv, insert_stores
from uptime.report import generation, storage
from uptime.report import service as report_service
from uptime.web import app as api
from uptime.report.service import ReportService
from uptime.report.storage import utcnow


async def test_failure_midway_marks_failed_without_orphan_chunks(db, settings, monkeypatch):
    """A failure after some GridFS chunks were written aborts the upload: the report is Failed
    with the reason, and reports.files / reports.chunks are empty."""
    from uptime.report import pipeline

    small_chunks(monkeypatch)
    await insert_stores(db, 60)
    real = pipeline.iter_report_rows
    chunks_seen: list[int] = []
    n = 0

    async def failing(db_, **kwargs):
        nonlocal n
        async for row in real(db_, **kwargs):
            yield row
            n += 1
            if n == 30:
                # read "local": the chunks are written w:1 (generation.INTERMEDIATE_WRITES), so a
                # majority read may not see them yet (seen once in a loaded CI run: 0 chunks)
                local = db.with_options(read_concern=ReadConcern("local"))
                chunks_seen.append(await local.reports.chunks.count_documents({}))
                raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "iter_report_rows", failing)
    service = ReportService(db, settings)
    await service.start(background=False)
    report_id = await service.trigger()
    doc = await service.wait(report_id)
    await service.stop()
    assert chunks_seen and chunks_seen[0] > 0  # the failure really came after chunks were written
    assert doc["status"] == "Failed"
    assert "RuntimeError: disk on fire" in doc["error"]
    assert "trigger a new report" in doc["error"]
    assert await db.reports.chunks.count_documents({}) == 0
    assert await db.reports.files.count_documents({}) == 0


async def test_no_polls_fails_with_actionable_reason(db, settings):
    """With no polls there is no default as_of: the report fails telling the user to import."""
    service = ReportService(db, settings)
    await service.start(background=False)
    doc = await service.wait(await service.trigger())
    await service.stop()
    assert doc["status"] == "Failed"
    assert "uptime-monitor import --status" in doc["error"]


async def test_waiting_reports_are_running_with_progress_zero(db, settings, monkeypatch):
    """With UPTIME_MAX_CONCURRENT_REPORTS=1, a second report waits for the first: it is
    Running with progress 0 and no started_at until the slot frees; then both complete."""
    from uptime.report import pipeline

    await insert_stores(db, 5)
    release = asyncio.Event()
    real = pipeline.iter_report_rows

    async def gated(db_, **kwargs):
        await release.wait()
        async for row in real(db_, **kwargs):
            yield row

    monkeypatch.setattr(pipeline, "iter_report_rows", gated)
    service = ReportService(db, settings.model_copy(update={"max_concurrent_reports": 1}))
    await service.start(background=False)
    first, second = await service.trigger(), await service.trigger()
    for _ in range(100):
        if (await db.reports.find_one({"_id": first}))["started_at"] is not None:
            break
        await asyncio.sleep(0.02)
    waiting = await db.reports.find_one({"_id": second})
    assert (await db.reports.find_one({"_id": first}))["started_at"] is not None
    assert (waiting["status"], waiting["progress"], waiting["started_at"]) == ("Running", 0.0, None)
    release.set()
    done = [await service.wait(first), await service.wait(second)]
    await service.stop()
    assert [d["status"] for d in done] == ["Complete", "Complete"]


async def test_progress_is_rows_over_stores(db, settings, monkeypatch):
    """Progress reported while generating is rows written / stores (0 before the first row),
    below 1 until Complete."""
    from uptime.report import pipeline

    monkeypatch.setattr(generation, "PROGRESS_INTERVAL_S", 0.0)
    await insert_stores(db, 40)
    seen: list[tuple[float, int]] = []
    real = pipeline.iter_report_rows

    async def watching(db_, **kwargs):
        async for row in real(db_, **kwargs):
            doc = await db.reports.find_one({}, {"progress": 1, "rows": 1})
            seen.append((doc["progress"], doc["rows"] or 0))
            yield row

    monkeypatch.setattr(pipeline, "iter_report_rows", watching)
    service = ReportService(db, settings)
    await service.start(background=False)
    doc = await service.wait(await service.trigger())
    await service.stop()
    assert doc["status"] == "Complete" and doc["total_stores"] == 40
    assert seen[0] == (0.0, 0)
    assert all(p == round(r / 40, 4) for p, r in seen)
    assert seen[-1] == (round(39 / 40, 4), 39)


async def test_expired_lease_is_regenerated_from_scratch(db, settings):
    """A Running report whose lease expired (its process crashed) is claimed on start, its
    partial GridFS file removed, and generated again to completion (attempt 2)."""
    await insert_stores(db, 12)
    stale_file = await storage.bucket(db).upload_from_stream("partial.csv", b"store_id,partial\n")
    await db.reports.chunks.insert_one({"files_id": "orphan", "n": 0, "data": b"x"})
    now = utcnow()
    report_id = storage.new_report_id()
    await db.reports.insert_one({
        "_id": report_id, "status": "Running", "as_of_requested": None, "as_of": None,
        "pipeline": "store_uptime@v1", "created_at": now - timedelta(minutes=5),
        "started_at": now - timedelta(minutes=5), "finished_at": None, "progress": 0.4,
        "total_stores": 12, "rows": 5, "timezone_fallbacks": None, "file_id": stale_file,
        "error": None, "attempt": 1,
        "lease": {"owner": "dead-process", "expires_at": now - timedelta(seconds=1)},
    })
    live_id = storage.new_report_id()
    await db.reports.insert_one({
        "_id": live_id, "status": "Running", "created_at": now, "attempt": 1,
        "lease": {"owner": "live-process", "expires_at": now + timedelta(minutes=5)},
    })
    service = ReportService(db, settings)
    await service.start(background=False)
    doc = await service.wait(report_id)
    await service.stop()
    assert doc["status"] == "Complete" and doc["attempt"] == 2 and doc["rows"] == 12
    assert await db.reports.files.count_documents({"_id": stale_file}) == 0
    assert await db.reports.chunks.count_documents({"files_id": stale_file}) == 0
    out = await reports_csv(db, doc)
    assert out == await expected_csv(db, T0)
    live = await db.reports.find_one({"_id": live_id})
    assert live["lease"]["owner"] == "live-process"  # a live lease is not taken over


async def test_too_many_attempts_fail(db, settings):
    """A report already started MAX_ATTEMPTS times is marked Failed on recovery, not retried."""
    now = utcnow()
    await db.reports.insert_one({
        "_id": "r" * 32, "status": "Running", "created_at": now, "file_id": None,
        "attempt": report_service.MAX_ATTEMPTS,
        "lease": {"owner": "dead", "expires_at": now - timedelta(seconds=1)},
    })
    service = ReportService(db, settings)
    await service.start(background=False)
    doc = await db.reports.find_one({"_id": "r" * 32})
    await service.stop()
    assert doc["status"] == "Failed"
    assert f"interrupted {report_service.MAX_ATTEMPTS} times" in doc["error"]


async def test_lease_renewed_and_lost_lease_stops_generation(db, settings, monkeypatch):
    """The maintenance loop renews the lease of a generating report; if another process takes
    the report over, this one stops, deletes its partial upload and leaves the doc alone."""
    from uptime.report import pipeline

    monkeypatch.setattr(generation, "PROGRESS_INTERVAL_S", 0.0)
    small_chunks(monkeypatch)
    await insert_stores(db, 30)
    gate = asyncio.Event()
    real = pipeline.iter_report_rows

    n = 0

    async def slow(db_, **kwargs):
        nonlocal n
        async for row in real(db_, **kwargs):
            n += 1
            if n == 20:
                await gate.wait()
            yield row

    monkeypatch.setattr(pipeline, "iter_report_rows", slow)
    service = ReportService(db, settings.model_copy(update={"lease_seconds": 0.6}))
    await service.start()
    report_id = await service.trigger()
    first = (await db.reports.find_one({"_id": report_id}))["lease"]["expires_at"]
    await asyncio.sleep(0.8)
    doc = await db.reports.find_one({"_id": report_id})
    assert doc["lease"]["expires_at"] > first  # renewed
    local = db.with_options(read_concern=ReadConcern("local"))  # chunks are written w:1
    assert await local.reports.chunks.count_documents({}) > 0
    await db.reports.update_one(
        {"_id": report_id}, {"$set": {"lease.owner": "thief"}, "$inc": {"attempt": 1}}
    )
    gate.set()
    for _ in range(100):
        if service.active == 0:
            break
        await asyncio.sleep(0.02)
    await service.stop()
    doc = await db.reports.find_one({"_id": report_id})
    assert doc["status"] == "Running" and doc["lease"]["owner"] == "thief"
    assert await db.reports.chunks.count_documents({}) == 0


async def test_retention_removes_old_reports_and_files(db, settings):
    """Reports created more than UPTIME_REPORT_TTL_DAYS ago are deleted with their GridFS
    files; newer ones and old ones still Running under a live lease stay."""
    now = utcnow()
    gfs = storage.bucket(db)
    old_file = await gfs.upload_from_stream("old.csv", b"a\n" * 1000)
    new_file = await gfs.upload_from_stream("new.csv", b"b\n")
    await db.reports.insert_many([
        {"_id": "old", "status": "Complete", "created_at": now - timedelta(days=8),
         "file_id": old_file},
        {"_id": "new", "status": "Complete", "created_at": now - timedelta(days=6),
         "file_id": new_file},
        {"_id": "old-running", "status": "Running", "created_at": now - timedelta(days=8),
         "file_id": None, "lease": {"owner": "x", "expires_at": now + timedelta(minutes=1)}},
    ])
    deleted = await storage.delete_expired(db, ttl_days=7)
    assert deleted == 1
    assert sorted(await db.reports.distinct("_id")) == ["new", "old-running"]
    assert await db.reports.files.distinct("_id") == [new_file]
    assert await db.reports.chunks.distinct("files_id") == [new_file]


async def test_large_download_is_streamed_chunk_by_chunk(db, settings):
    """A Complete report's CSV (here 6 MB) is sent as one ASGI body message per GridFS chunk
    (255 KiB), never as one whole-file message, with the right length and bytes."""
    line = b"store-%06d,60.00,24.00,168.00,0.00,0.00,0.00\n"
    body = b"".join(line % i for i in range(140_000))
    file_id = await storage.bucket(db).upload_from_stream("big.csv", body)
    report_id = storage.new_report_id()
    await db.reports.insert_one({
        "_id": report_id, "status": "Complete", "created_at": utcnow(), "file_id": file_id,
        "progress": 1.0, "pipeline": "store_uptime@v1",
    })
    app = api.create_app(settings)
    messages: list[dict] = []
    async with LifespanManager(app, startup_timeout=LIFESPAN_TIMEOUT_S,
                                shutdown_timeout=LIFESPAN_TIMEOUT_S) as manager:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": "/get_report", "raw_path": b"/get_report",
            "query_string": f"report_id={report_id}".encode(), "headers": [],
            "server": ("test", 80), "client": ("test", 1234), "root_path": "",
            "state": dict(manager._state),
        }
        sent = False

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(3600)

        async def send(message):
            messages.append(message)

        await manager.app(scope, receive, send)
    start = messages[0]
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-length"] == str(len(body)).encode()
    parts = [m["body"] for m in messages[1:] if m.get("body")]
    n_chunks = await db.reports.chunks.count_documents({"files_id": file_id})
    assert n_chunks == -(-len(body) // storage.CHUNK_SIZE_BYTES)
    assert len(parts) == n_chunks
    assert max(len(p) for p in parts) == storage.CHUNK_SIZE_BYTES
    assert b"".join(parts) == body


def small_chunks(monkeypatch) -> None:
    """256-byte GridFS chunks, each inserted at once (PyMongo otherwise buffers up to 32 MB
    of chunks before inserting), so a failure midway really has chunks to clean up."""
    from gridfs.asynchronous import grid_file

    monkeypatch.setattr(storage, "CHUNK_SIZE_BYTES", 256)
    monkeypatch.setattr(generation, "WRITE_BUFFER_CHARS", 100)
    monkeypatch.setattr(grid_file, "_UPLOAD_BUFFER_SIZE", 1)


async def reports_csv(db, doc) -> str:
    import io

    out = io.BytesIO()
    await storage.write_csv(db, doc["file_id"], out)
    return out.getvalue().decode()
