"""Crash safety end to end: an ``uptime-monitor serve`` process killed with SIGKILL mid-report, then
restarted, completes the report (lease expiry → recovery → regeneration from scratch)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support.reports import T0, expected_csv, insert_stores
from uptime.platform.embedded import free_port

LEASE_SECONDS = 2


def start_server(mongo_uri: str, db_name: str, data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        MONGODB_URI=mongo_uri,
        MONGODB_DATABASE=db_name,
        UPTIME_DATA_DIR=str(data_dir),
        UPTIME_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    env.pop("UPTIME_API_TOKEN", None)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uptime.cli", "serve", "--port", str(port),
             "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"uptime-monitor serve did not come up:\n{log.read_text()}")


async def test_killed_server_report_completes_after_restart(db, db_name, mongo_uri, tmp_path):
    """SIGKILL the service while a report is generating (started, not complete); the report stays
    Running only until its lease (2 s) expires: the restarted service claims it, deletes any
    partial file, regenerates it (attempt 2) and the CSV equals the pipeline's rows."""
    await insert_stores(db, 1500, polls_per_store=48)
    await db.store_status.create_index([("store_id", 1), ("timestamp_utc", 1)])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = start_server(mongo_uri, db_name, tmp_path / "data", port, log)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            posted = await http.post("/trigger_report")
            assert posted.status_code == 202, posted.text
            report_id = posted.json()["report_id"]
            deadline = time.monotonic() + 60
            while True:
                body = (await http.get("/get_report", params={"report_id": report_id})).json()
                assert body["status"] == "Running", "report finished before it could be killed"
                doc = await db.reports.find_one({"_id": report_id})
                if doc.get("started_at") is not None:
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed = await db.reports.find_one({"_id": report_id})
        assert killed["status"] == "Running" and killed["progress"] < 1
        assert killed["attempt"] == 1

        proc = start_server(mongo_uri, db_name, tmp_path / "data", port, log)
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            deadline = time.monotonic() + 120
            while True:
                resp = await http.get("/get_report", params={"report_id": report_id})
                assert resp.status_code == 200
                if resp.headers["content-type"].startswith("text/csv"):
                    break
                assert resp.json()["status"] == "Running", resp.text
                assert time.monotonic() < deadline, "report never completed after restart"
                await asyncio.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    done = await db.reports.find_one({"_id": report_id})
    assert done["status"] == "Complete" and done["attempt"] == 2 and done["rows"] == 1500
    assert resp.text == await expected_csv(db, T0)
    assert await db.reports.files.distinct("_id") == [done["file_id"]]
    assert await db.reports.chunks.distinct("files_id") == [done["file_id"]]
