"""Ingestion benchmark: sustained ``POST /polls`` throughput (issue 8 item 6, "Ingestion").

The server is the real ``uptime-monitor serve`` in a child process (with whatever runs inside it --
the runs follower once it is part of the service), on the benchmark's MongoDB server and a
fresh database ``uptime_bench_ingest_<random>`` dropped at the end. ``clients`` concurrent
httpx clients push pre-encoded JSON batches of ``batch`` polls: a fleet of ``stores`` stores
polled hourly, hour after hour (each batch holds one poll of ``batch`` different stores).

Figures: polls/s = polls stored / wall time from the first request to the last answer
(after one warm-up batch, not counted); request latency p50/p99 in ms; peak RSS of the
service process (psutil); with the runs follower in the service, the seconds from the last
answer until the runs are current (``uptime.timeline.wait_current``) and the polls/s counted
until then. Every poll must be stored exactly once (checked by count).
Target: >= 20,000 polls/s on a 2-core machine.

**A report during the push** (issue 14, item 2; ``report_after_s``, default 2 s): a default
``POST /trigger_report`` is sent that long into the push and timed until ``/get_report``
returns its CSV (``report_during_push_s``, with the pipeline that produced it); after the push
(and the follower's catch-up) a ``?pipeline=v1`` report for the same ``as_of`` is timed the
same way (``report_v1_after_s``) and the CSVs compared. Target: the report during the push
takes at most 2 x v1's time + 2 s (it never waits on the lagging timeline).

Run alone: ``python -m uptime.tools.bench.ingest [POLLS]`` (server: ``MONGODB_URI`` or the
embedded one); ``uptime-monitor bench`` runs it after the report scales (``--no-ingest`` skips it).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Callable

import httpx
import orjson

from uptime.platform.db import make_client, server_uri
from uptime.platform.embedded import free_port
from uptime.platform.settings import get_settings
from uptime.timeline import wait_current

DEFAULT_POLLS = 400_000
DEFAULT_BATCH = 5_000
DEFAULT_CLIENTS = 4
DEFAULT_STORES = 20_000
TARGET_POLLS_PER_S = 20_000
CATCH_UP_TIMEOUT_S = 300.0
_START = datetime(2024, 1, 1, tzinfo=UTC)


def make_batches(polls: int, batch: int, stores: int, offset: int = 0) -> list[bytes]:
    """``polls`` polls as JSON array bodies of ``batch`` items: store ``s<i>`` polled at
    ``2024-01-01 + hour h + i ms`` (hour-major), ~10 % inactive. ``offset`` shifts the poll
    numbers so separate calls give different polls."""
    bodies = []
    for first in range(offset, offset + polls, batch):
        items = []
        for n in range(first, min(first + batch, offset + polls)):
            hour, store = divmod(n, stores)
            ts = _START + timedelta(hours=hour, milliseconds=store)
            items.append({
                "store_id": f"s{store:06d}",
                "timestamp_utc": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "status": "inactive" if (store * 7 + hour) % 10 == 0 else "active",
            })
        bodies.append(orjson.dumps(items))
    return bodies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"uptime-monitor serve exited with code {proc.returncode}")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"uptime-monitor serve did not answer /healthz within {timeout:.0f} s")


def stop_service(proc: subprocess.Popen) -> None:
    """Stop the ``uptime-monitor serve`` child: SIGTERM, up to 30 s for its graceful shutdown,
    then SIGKILL."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _follower_catch_up(db: Any, timeout_s: float | None = None) -> float | None:
    """Seconds until the runs follower (``uptime.timeline.wait_current``) has applied every
    poll acknowledged so far; ``None`` when it does not catch up within ``timeout_s``."""
    started = time.perf_counter()
    deadline = started + (timeout_s or CATCH_UP_TIMEOUT_S)
    # wait_current answers False at once while the follower rebuilds (no heartbeat then):
    # ask again until the deadline
    while not await wait_current(db, timeout_s=min(5.0, max(0.0, deadline - time.perf_counter()))):
        if time.perf_counter() >= deadline:
            return None
        await asyncio.sleep(0.5)
    return time.perf_counter() - started


async def run_ingest_bench(
    uri: str,
    *,
    polls: int = DEFAULT_POLLS,
    batch: int = DEFAULT_BATCH,
    clients: int = DEFAULT_CLIENTS,
    stores: int = DEFAULT_STORES,
    say: Callable[[str], Any] = print,
    report_after_s: float | None = 2.0,
) -> dict[str, Any]:
    """Start ``uptime-monitor serve`` on ``uri``, push ``polls`` polls, return the figures:
    ``{polls, batch, clients, seconds, polls_per_s, latency_p50_ms, latency_p99_ms,
    service_peak_rss_bytes, follower, follower_catch_up_s, polls_per_s_until_runs_current,
    target, pass}`` (the catch-up: seconds from the last answer until ``status_runs`` holds
    every pushed poll, when the service runs the follower) and, with ``report_after_s`` (None
    skips it), ``report``: :func:`_report_figures`.

    Raises:
        RuntimeError: the service did not start, a request failed, or the stored count is
            not the number of polls pushed.
    """
    import psutil  # optional (extra "bench"/"test"): only the benchmark samples RSS

    database = f"uptime_bench_ingest_{secrets.token_hex(4)}"
    port = free_port()
    env = {**os.environ, "MONGODB_URI": uri, "MONGODB_DATABASE": database}
    env.pop("UPTIME_API_TOKEN", None)
    bodies = make_batches(polls, batch, stores)
    warmup = make_batches(batch, batch, stores, offset=polls)[0]
    say(f"ingest: {polls:,} polls in {len(bodies)} batches of {batch:,}, {clients} clients, "
        f"{stores:,} stores; starting uptime-monitor serve on port {port}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uptime.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        env=env,
    )
    client = make_client(uri)
    base = f"http://127.0.0.1:{port}"
    rss_peak = 0
    try:
        await _wait_healthy(base, proc)
        service = psutil.Process(proc.pid)
        headers = {"content-type": "application/json"}
        latencies: list[float] = []
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)

        async def worker(http: httpx.AsyncClient) -> None:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                resp = await http.post("/polls", content=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                if resp.status_code != 200 or resp.json()["rejected"]:
                    raise RuntimeError(
                        f"POST /polls answered {resp.status_code}: {resp.text[:300]}"
                    )

        async def sample_rss(stop: asyncio.Event) -> None:
            nonlocal rss_peak
            while not stop.is_set():
                rss_peak = max(rss_peak, service.memory_info().rss)
                try:
                    await asyncio.wait_for(stop.wait(), 0.1)
                except TimeoutError:
                    pass

        limits = httpx.Limits(max_connections=clients)
        # the report's requests on a client of their own (not queued behind the pushers)
        async with httpx.AsyncClient(base_url=base, timeout=120.0, limits=limits) as http, \
                httpx.AsyncClient(base_url=base, timeout=600.0) as reporter:
            resp = await http.post("/polls", content=warmup, headers=headers)
            if resp.status_code != 200:
                raise RuntimeError(f"warm-up POST /polls answered {resp.status_code}: {resp.text}")
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_rss(stop))
            started = time.perf_counter()
            during = None
            if report_after_s is not None:
                during = asyncio.create_task(_timed_report(reporter, delay_s=report_after_s))
            await asyncio.gather(*(worker(http) for _ in range(clients)))
            seconds = time.perf_counter() - started
            stop.set()
            await sampler
            db = client[database]
            catch_up = await _follower_catch_up(db)
            report = None
            if during is not None:
                report = await _report_figures(reporter, db, await during)
        stored = await db.store_status.count_documents({})
        if stored != polls + batch:
            raise RuntimeError(f"{stored:,} polls stored, expected {polls + batch:,}")
        follower = "runs_follower" in await db.list_collection_names()
    finally:
        stop_service(proc)
        await client.drop_database(database)
        await client.close()
    rate = polls / seconds
    result = {
        "polls": polls,
        "batch": batch,
        "clients": clients,
        "stores": stores,
        "seconds": seconds,
        "polls_per_s": rate,
        "latency_p50_ms": 1000 * statistics.median(latencies),
        "latency_p99_ms": 1000 * _percentile(latencies, 0.99),
        "service_peak_rss_bytes": rss_peak,
        "follower": follower,
        "follower_catch_up_s": catch_up,
        "polls_per_s_until_runs_current": (
            polls / (seconds + catch_up) if catch_up is not None else None
        ),
        "target": f"POST /polls >= {TARGET_POLLS_PER_S:,} polls/s",
        "pass": rate >= TARGET_POLLS_PER_S,
        "report": report,
    }
    say(
        f"ingest: {rate:,.0f} polls/s ({polls:,} in {seconds:.2f} s), request p50 "
        f"{result['latency_p50_ms']:.0f} ms / p99 {result['latency_p99_ms']:.0f} ms, service "
        f"peak RSS {rss_peak / 1e6:.0f} MB; {_follower_text(result)}; target "
        f"{TARGET_POLLS_PER_S:,} polls/s: {'pass' if result['pass'] else 'FAIL'}"
    )
    if report is not None:
        say(
            f"ingest: default report triggered {report_after_s:g} s into the push: "
            f"{report['report_during_push_s']:.2f} s ({report['pipeline']}), v1 after the push "
            f"{report['report_v1_after_s']:.2f} s; limit 2 x v1 + 2 s = {report['limit_s']:.2f} s: "
            f"{'pass' if report['pass'] else 'FAIL'}; CSV equal to v1 at its as_of: "
            f"{report['csv_equal_v1']} ({report['rows_differing']} of {report['rows']} rows differ)"
        )
    return result


async def _timed_report(http: Any, *, delay_s: float = 0.0,
                        params: dict[str, str] | None = None) -> dict[str, Any]:
    """After ``delay_s``, ``POST /trigger_report`` (``params``), then poll ``/get_report``
    every 50 ms until it is not Running: ``{report_id, seconds (trigger -> CSV), csv (bytes,
    None if it failed), status JSON or headers}``."""
    await asyncio.sleep(delay_s)
    t0 = time.perf_counter()
    resp = await http.post("/trigger_report", params=params or {})
    if resp.status_code != 202:
        raise RuntimeError(f"POST /trigger_report answered {resp.status_code}: {resp.text}")
    report_id = resp.json()["report_id"]
    while True:
        got = await http.get("/get_report", params={"report_id": report_id})
        if got.headers["content-type"].startswith("text/csv"):
            return {"report_id": report_id, "seconds": time.perf_counter() - t0,
                    "csv": got.content, "pipeline": got.headers.get("x-report-pipeline")}
        body = got.json()
        if body.get("status") != "Running":
            return {"report_id": report_id, "seconds": time.perf_counter() - t0, "csv": None,
                    "pipeline": body.get("pipeline"), "error": body.get("error")}
        await asyncio.sleep(0.05)


async def _report_figures(http: Any, db: Any, during: dict[str, Any]) -> dict[str, Any]:
    """The report-during-push figures: ``{report_during_push_s, pipeline, pipeline_reason,
    as_of, report_v1_after_s, limit_s (2 x v1 + 2), pass, csv_equal_v1, rows_differing, rows,
    error}``;
    v1 is timed after the push for the same ``as_of``."""
    doc = await db.reports.find_one({"_id": during["report_id"]}) or {}
    as_of = doc.get("as_of")
    v1 = await _timed_report(http, params={"pipeline": "v1", **(
        {"as_of": as_of.isoformat()} if as_of is not None else {})})
    limit = 2 * v1["seconds"] + 2.0
    return {
        "report_during_push_s": during["seconds"],
        "pipeline": doc.get("pipeline"),
        "pipeline_reason": doc.get("pipeline_reason"),
        "as_of": as_of.isoformat() if as_of is not None else None,
        "rows": doc.get("rows"),
        "report_v1_after_s": v1["seconds"],
        "limit_s": limit,
        "pass": during["csv"] is not None and during["seconds"] <= limit,
        "csv_equal_v1": during["csv"] is not None and during["csv"] == v1["csv"],
        # rows that differ: polls at or before as_of pushed after the report read them (the
        # 4 clients' batches arrive out of order) are in v1's later read only
        "rows_differing": None if during["csv"] is None else len(
            set(during["csv"].splitlines()) ^ set(v1["csv"].splitlines())) // 2,
        "error": during.get("error"),
    }


def _follower_text(result: dict[str, Any]) -> str:
    if not result["follower"]:
        return "runs follower not running (not in this build)"
    catch_up = result["follower_catch_up_s"]
    if catch_up is None:
        return (
            f"runs follower running, runs NOT current {CATCH_UP_TIMEOUT_S:.0f} s after the "
            "last answer"
        )
    return (
        f"runs follower running, runs current {catch_up:.2f} s after the last answer "
        f"({result['polls_per_s_until_runs_current']:,.0f} polls/s until then)"
    )


def ingest_target(result: dict[str, Any]) -> dict[str, Any]:
    """The target row of ``uptime-monitor bench``'s targets table for a :func:`run_ingest_bench`
    result."""
    follower = "with" if result["follower"] else "without"
    return {
        "target": f"{result['target']} ({follower} the runs follower)",
        "value": result["polls_per_s"],
        "shown": f"{result['polls_per_s']:,.0f} polls/s",
        "limit": TARGET_POLLS_PER_S,
        "pass": result["pass"],
    }


def report_during_push_target(report: dict[str, Any]) -> dict[str, Any]:
    """The targets-table row of the report triggered during the push (issue 14, item 2):
    its seconds against 2 x v1's seconds (after the push) + 2 s."""
    return {
        "target": "default report during the push <= 2 x v1 + 2 s (never waits on the timeline)",
        "value": report["report_during_push_s"],
        "shown": f"{report['report_during_push_s']:.2f} s ({report['pipeline']})",
        "limit": report["limit_s"],
        "pass": report["pass"],
    }


def main(argv: list[str]) -> None:
    """``python -m uptime.tools.bench.ingest [POLLS [BATCH [CLIENTS]]]``."""

    args = [int(a) for a in argv]
    keys = ("polls", "batch", "clients")
    with server_uri(get_settings()) as uri:
        asyncio.run(run_ingest_bench(uri, **dict(zip(keys, args))))


if __name__ == "__main__":
    main(sys.argv[1:])
