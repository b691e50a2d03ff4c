"""Benchmark phases of the status timeline (issue 8, item 6), called by ``uptime-monitor bench``.

* **T_runs_rebuild**: :func:`uptime.timeline.rebuild_runs` over every poll (one pipeline run,
  ``$merge`` into ``status_runs``, stale runs deleted), beside **T_floor** (the single-``$shift``
  ``$setWindowFields`` pass over the same polls, ``uptime.tools.bench.run_floor``).
* **Burst freshness**: with a :class:`uptime.timeline.RunsFollower` running in this process,
  one new poll per store (the latest poll + 1 h ± 10 min: the next hourly round) is inserted
  in chunks of ``chunk`` polls, as pollers would push them. For every chunk: the wall time
  of its acknowledged insert and its ``operationTime``; the follower's progress (cluster time
  applied) is recorded as it advances. A poll's freshness = the first instant the follower had
  applied its write minus the instant the write was acknowledged; p50/p99/max over the polls
  (seconds), plus the burst's total time from the first insert to everything applied. The
  inserted polls are deleted afterwards (and the runs recomputed), leaving the data as found.

Times are wall-clock seconds on whatever else the machine is doing.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import timedelta
from typing import Any

from uptime.platform.constants import STATUS_COLLECTION
from uptime.report.pipeline import resolve_as_of
from uptime.timeline import RunsFollower, rebuild_runs, wait_current


async def time_rebuild(db: Any) -> dict[str, Any]:
    """Run a full rebuild; return ``{"seconds", "runs"}``."""
    result = await rebuild_runs(db)
    return {"seconds": result["seconds"], "runs": result["runs"]}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


async def burst_freshness(db: Any, *, chunk: int = 100, seed: int = 0) -> dict[str, Any]:
    """Insert one poll per store (at the latest poll + 1 h ± 10 min: the next hourly round of
    every poller) with the follower running; return
    ``{"polls", "chunks", "p50_s", "p99_s", "max_s", "total_s", "mean_chunk_insert_s"}``.

    Raises:
        RuntimeError: the follower did not catch up within 120 s.
    """

    rng = random.Random(seed)
    as_of = await resolve_as_of(db, None)
    if as_of is None:
        raise RuntimeError("no polls: nothing to burst on")
    stores = await db[STATUS_COLLECTION].distinct("store_id")
    polls = [{"store_id": s,
              "timestamp_utc": as_of + timedelta(hours=1, seconds=rng.uniform(-600, 600)),
              "status": "inactive" if rng.random() < 0.03 else "active",
              "bench_burst": True} for s in sorted(x for x in stores if isinstance(x, str))]
    follower = RunsFollower(db)
    await follower.start()
    progress: list[tuple[float, Any]] = []
    try:
        if not await wait_current(db, 300.0):  # first start may rebuild: not timed
            raise RuntimeError("runs follower did not start within 300 s")
        watching = True

        async def watch() -> None:
            async with follower._progress:
                while watching:
                    progress.append((time.perf_counter(), follower.applied_until))
                    await follower._progress.wait()

        watcher = asyncio.create_task(watch())
        acks: list[tuple[float, Any, int]] = []
        started = time.perf_counter()
        insert_s: list[float] = []
        async with db.client.start_session() as session:
            for i in range(0, len(polls), chunk):
                part = polls[i : i + chunk]
                t0 = time.perf_counter()
                await db[STATUS_COLLECTION].insert_many(part, ordered=False, session=session)
                t1 = time.perf_counter()
                insert_s.append(t1 - t0)
                acks.append((t1, session.operation_time, len(part)))
        if not await wait_current(db, 120.0):
            raise RuntimeError("the follower did not apply the burst within 120 s")
        total = time.perf_counter() - started
        watching = False
        async with follower._progress:
            follower._progress.notify_all()
        await watcher
        fresh: list[float] = []
        for ack_wall, optime, n in acks:
            done = next((w for w, until in progress if until is not None and until >= optime),
                        progress[-1][0])
            fresh.extend([max(0.0, done - ack_wall)] * n)
        result = {
            "polls": len(polls), "chunks": len(acks), "chunk": chunk,
            "p50_s": _pct(fresh, 0.50), "p99_s": _pct(fresh, 0.99), "max_s": max(fresh),
            "total_s": total, "mean_chunk_insert_s": statistics.mean(insert_s),
            "follower_batches": follower.state.get("batches"),
        }
        await db[STATUS_COLLECTION].delete_many({"bench_burst": True})
        await wait_current(db, 120.0)
        return result
    finally:
        await follower.stop()


async def bench_runs(db: Any, say: Any, *, burst: bool = True) -> dict[str, Any]:
    """The timeline phases for one scale: rebuild (timed), then the burst. Returns the figures
    (``rebuild_s``, ``runs``, and ``burst`` = :func:`burst_freshness`'s dict or None)."""
    rb = await time_rebuild(db)
    say(f"  T_runs_rebuild {rb['seconds']:.2f} s ({rb['runs']:,} runs)")
    out: dict[str, Any] = {"rebuild_s": rb["seconds"], "runs": rb["runs"], "burst": None}
    if burst:
        b = await burst_freshness(db)
        say(f"  burst of {b['polls']:,} polls (1 per store, chunks of {b['chunk']}): freshness "
            f"p50 {b['p50_s']:.3f} s, p99 {b['p99_s']:.3f} s, max {b['max_s']:.3f} s; "
            f"all applied {b['total_s']:.2f} s after the first insert")
        out["burst"] = b
    return out
