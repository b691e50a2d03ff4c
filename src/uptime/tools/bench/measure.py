"""What one timed phase measures: T_report and T_alt each in a fresh child process
(``python -m uptime.tools.bench PHASE ...``, its own peak RSS), T_floor (one
``$setWindowFields`` over the polls) and mongod's RSS sampled while a phase runs."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from uptime.platform import pipelines
from uptime.platform.constants import STATUS_COLLECTION
from uptime.platform.db import make_client
from uptime.platform.settings import Settings
from uptime.report import storage
from uptime.report.service import ReportService

def load_average() -> str:
    """The 1/5/15-minute load averages as one string (``"3.21 4.05 5.10"``), printed beside a
    phase's figures; ``"?"`` where the platform has none."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux/macOS
        return "?"


#: The floor's pipeline file (``pipelines/bench_floor.v1.json``).
FLOOR_PIPELINE = "bench_floor.v1"


# --------------------------------------------------------------------------- RSS sampling
class _MongodRss:
    """Samples mongod's resident memory in a thread between ``start()`` and ``stop()``."""

    def __init__(self, pid: int | None, uri: str, interval: float = 0.1) -> None:
        self.pid = pid
        self.uri = uri
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> int:
        if self.pid is not None:
            import psutil  # optional (extra "bench"/"test"): only the benchmark samples RSS

            return psutil.Process(self.pid).memory_info().rss
        return self._client.admin.command("serverStatus")["mem"]["resident"] * 1024 * 1024

    def _loop(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, self._sample())
            except Exception:  # noqa: BLE001, S110 - sampling is best effort
                pass
            if self._stop.wait(self.interval):
                return

    def start(self) -> None:
        self.peak = 0
        self._stop.clear()
        if self.pid is None:

            self._client = MongoClient(self.uri)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.pid is None:
            self._client.close()
        return self.peak


async def _mongod_identity(client: Any) -> tuple[int | None, str, str]:
    """(pid usable with psutil or None, how RSS is measured, server version)."""
    status = await client.admin.command("serverStatus")
    version = str(status.get("version", "?"))
    pid = int(status.get("pid", 0)) or None
    if pid is not None:
        try:
            import psutil  # optional (extra "bench"/"test"): only the benchmark samples RSS

            if "mongod" in psutil.Process(pid).name():
                return pid, f"psutil RSS of local mongod pid {pid}", version
        except Exception:  # noqa: BLE001, S110 - not on this machine
            pass
    return None, "serverStatus mem.resident (remote mongod)", version


# --------------------------------------------------------------------------- child phases
async def _child_report(uri: str, database: str, as_of: datetime, out: Path) -> dict[str, Any]:
    """Run one report through the service path; write its CSV (from GridFS) to ``out``."""

    settings = Settings(
        mongodb_uri=uri, mongodb_database=database, data_dir=Path(tempfile.gettempdir())
    )
    client = make_client(uri)
    try:
        db = client[database]
        service = ReportService(db, settings)
        await service.start(recover=False)
        try:
            started = time.perf_counter()
            report_id = await service.trigger(as_of, "v1")  # v2: uptime.tools.bench.v2
            doc = await service.wait(report_id, poll_s=0.05)
            seconds = time.perf_counter() - started
        finally:
            await service.stop()
        result: dict[str, Any] = {
            "seconds": seconds,
            "status": doc["status"],
            "rows": doc.get("rows"),
            "error": doc.get("error"),
        }
        if doc["status"] == storage.COMPLETE:
            with out.open("wb") as f:
                await storage.write_csv(db, doc["file_id"], f)
        return result
    finally:
        await client.close()


def _child_alt(uri: str, database: str, as_of: datetime, out: Path) -> dict[str, Any]:
    from uptime.tools import alt_report  # optional: needs polars (extra "bench")

    started = time.perf_counter()
    rows, timings = alt_report.alt_report(uri, database, as_of)
    text = alt_report.to_csv(rows)
    seconds = time.perf_counter() - started
    out.write_text(text, encoding="utf-8")
    return {
        "seconds": seconds,
        "fetch_s": timings.fetch_s,
        "compute_s": timings.compute_s,
        "rows": len(rows),
    }


def phase_main(argv: list[str]) -> None:
    """Entry of a child process: ``python -m uptime.tools.bench PHASE URI DB AS_OF OUT``.

    Prints one JSON line: the phase's result plus ``max_rss_bytes`` (this process's peak).
    """
    phase, uri, database, as_of_text, out = argv
    as_of = datetime.fromisoformat(as_of_text)
    if phase == "report":
        result = asyncio.run(_child_report(uri, database, as_of, Path(out)))
    elif phase == "alt":
        result = _child_alt(uri, database, as_of, Path(out))
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    result["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


async def _run_child(phase: str, uri: str, database: str, as_of: datetime, out: Path) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uptime.tools.bench", phase, uri, database, as_of.isoformat(), str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(
            f"bench phase {phase} failed (exit {proc.returncode}): "
            f"{stderr.decode(errors='replace')[-2000:]}"
        )
    return json.loads(stdout.decode().strip().splitlines()[-1])


# --------------------------------------------------------------------------- floor
def floor_pipeline() -> list[dict[str, Any]]:
    """The floor: the polls report v1 reads (its first ``$match``), one ``$setWindowFields``
    with one ``$shift``, ``$count`` — ``pipelines/bench_floor.v1.json`` (sidecar ``.md``: why
    it has no ``as_of`` bound, and the covered index scan it is)."""
    return pipelines.load(FLOOR_PIPELINE)


async def run_floor(db: Any) -> tuple[float, int]:
    """Run the floor pipeline; return (seconds, polls counted)."""
    started = time.perf_counter()
    cursor = await db[STATUS_COLLECTION].aggregate(
        floor_pipeline(), allowDiskUse=True, comment="bench:floor"
    )
    docs = await cursor.to_list()
    return time.perf_counter() - started, (docs[0]["polls"] if docs else 0)
