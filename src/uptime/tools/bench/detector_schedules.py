"""Cost of the live detector's schedules check (``Detector.check_schedules``: the reports'
``schedules_current``) next to the cost of one full detector tick, on the same data, interleaved
in one run. Runnable alone::

    python -m uptime.tools.bench.detector_schedules [--stores 14092] [--down 0.05] [--runs 20]
                                                    [--writes 1000] [--uri URI]

Data, in a fresh database ``uptime_bench_detsched_<random>`` dropped at the end (on ``--uri``,
else ``MONGODB_URI`` or the embedded server): ``--stores`` stores with 7 ``store_hours`` rows
(09:00-17:00 + one overnight row) and one ``store_timezones`` row each; two polls per store (active
3 h ago; 1 h ago, a fraction ``--down`` inactive: the watched stores of every full tick).

Phases (each ``--runs`` times, tick and check alternating; times in seconds):

* ``idle``: a full tick, then a check with nothing written since the previous check;
* ``polls``: ``--writes`` active polls of unwatched stores inserted before each pair (oplog
  the check's change stream reads past: about a second of a 14k-store hourly burst);
* ``changed``: one ``store_hours`` row inserted straight (``insert_one``) before each check
  (the check refreshes that store and queues it).

Prints one JSON line per phase: p50/mean/max of the check and of the tick, the ratio
check/tick of the medians, and the load averages. On a standalone server the check is a
``dbHash`` of the two input collections (the detector runs it every 60 s there, not every tick).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from uptime.incidents.detector import Detector
from uptime.platform.db import make_client, server_uri
from uptime.platform.migrations import migrate_up
from uptime.platform.probes import is_replica_set
from uptime.platform.settings import get_settings
from uptime.tools.bench.measure import load_average


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 4), "mean": round(statistics.fmean(values), 4),
            "max": round(max(values), 4)}


async def _setup(db: Any, stores: int, down: float) -> None:
    ids = [f"s{i:06d}" for i in range(stores)]
    rows = []
    for s in ids:
        rows += [{"store_id": s, "dayOfWeek": d, "start_time_local": "09:00:00",
                  "end_time_local": "17:00:00"} for d in range(6)]
        rows.append({"store_id": s, "dayOfWeek": 6, "start_time_local": "22:00:00",
                     "end_time_local": "02:00:00"})
    for i in range(0, len(rows), 20_000):
        await db["store_hours"].insert_many(rows[i:i + 20_000], ordered=False)
    await db["store_timezones"].insert_many(
        [{"store_id": s, "timezone_str": "America/New_York"} for s in ids], ordered=False)
    now = datetime.now(UTC)
    n_down = int(stores * down)
    polls = [{"store_id": s, "timestamp_utc": now - timedelta(hours=3), "status": "active"}
             for s in ids]
    polls += [{"store_id": s, "timestamp_utc": now - timedelta(hours=1),
               "status": "inactive" if i < n_down else "active"} for i, s in enumerate(ids)]
    for i in range(0, len(polls), 20_000):
        await db["store_status"].insert_many(polls[i:i + 20_000], ordered=False)


async def bench(stores: int = 14092, down: float = 0.05, runs: int = 20, writes: int = 1000,
                *, uri: str | None = None, say: Any = print) -> list[dict[str, Any]]:
    """Run the phases of the module doc; return (and ``say`` as JSON) one dict per phase."""
    if uri is None:
        with server_uri(get_settings()) as found:
            return await bench(stores, down, runs, writes, uri=found, say=say)
    client = make_client(uri)
    name = f"uptime_bench_detsched_{secrets.token_hex(4)}"
    db = client[name]
    out: list[dict[str, Any]] = []
    try:
        await migrate_up(db)
        await _setup(db, stores, down)
        settings = get_settings().model_copy(update={"follow_runs": False})
        det = Detector(db, settings)
        det._replset = await is_replica_set(db)
        await det.tick()  # the seed: watch list + the first (full) schedules build
        await det.check_schedules()
        det.pending.clear()
        n_down = int(stores * down)  # the watched stores: the polls phase writes to the others
        extra = 0
        for phase in ("idle", "polls", "changed"):
            checks: list[float] = []
            ticks: list[float] = []
            for r in range(runs):
                if phase == "polls":
                    at = datetime.now(UTC)
                    await db["store_status"].insert_many(
                        [{"store_id": f"s{n_down + (r * writes + i) % (stores - n_down):06d}",
                          "timestamp_utc": at, "status": "active"} for i in range(writes)])
                t0 = time.perf_counter()
                await det.tick(full=True)
                ticks.append(time.perf_counter() - t0)
                if phase == "changed":
                    extra += 1
                    await db["store_hours"].insert_one(
                        {"store_id": f"s{extra % stores:06d}", "dayOfWeek": 6,
                         "start_time_local": "03:00:00", "end_time_local": "04:00:00"})
                t0 = time.perf_counter()
                done = await det.check_schedules()
                checks.append(time.perf_counter() - t0)
                det.pending.clear()
                det._full_now = False
            row = {"phase": phase, "stores": stores, "watched": len(det.watch),
                   "replica_set": det._replset, "runs": runs, "check_s": _stats(checks),
                   "tick_s": _stats(ticks),
                   "check_per_tick": round(statistics.median(checks)
                                           / statistics.median(ticks), 3),
                   "last_check": done.how, "loadavg": load_average()}
            say(json.dumps(row))
            out.append(row)
    finally:
        await client.drop_database(name)
        await client.close()
    return out


def main(argv: list[str] | None = None) -> None:
    """The command line of the module doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=14092)
    parser.add_argument("--down", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--uri", default=None)
    args = parser.parse_args(argv)
    asyncio.run(bench(args.stores, args.down, args.runs, args.writes, uri=args.uri))


if __name__ == "__main__":
    main()
