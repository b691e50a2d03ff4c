"""Benchmark of the incident query (issue 17, item 6, first figure), called by ``uptime-monitor bench``
after the timeline phases (``status_runs`` current), or alone::

    python -m uptime.tools.bench.incidents [REPEATS] [--no-polls]   # on MONGODB_URI / MONGODB_DATABASE

* **T_incidents**: :func:`uptime.incidents.query.find_incidents` as of the latest poll with
  ``min_minutes`` = the setting, source ``runs`` (the timeline), all stores, every row read.
* **T_floor_incidents**: one ``$match`` + ``$count`` pass over the same runs: the incident
  pipeline's own first stage (the index-bounded ``$match`` of the inactive runs up to
  ``as_of``, taken from ``pipelines/incidents.v1.json``) followed by ``$count``. Target:
  T_incidents <= 3 x T_floor_incidents.
* **T_incidents_polls**: the same query with source ``polls`` (every store's runs derived
  from ``store_status``: what answers while the timeline is not current), for scale.

Minimum of ``repeats`` runs each, interleaved (floor, query, floor, query, ...); wall-clock
seconds on whatever else the machine is doing. When mongod runs on this machine (psutil sees
its pid) each run's **CPU seconds** are measured too: mongod's user + system time plus this
process's (decoding the rows), and their ratio is printed beside the wall-clock one. On a
shared machine the CPU ratio is the steadier figure: at scale 1 on 2 cores with load average
9-18 the query's wall clock varied 2.1-7.6 s within one run while its CPU time stayed at
1.02-1.14 s (``pipelines/incidents.v1.md``, round 5).
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from typing import Any

from uptime.incidents import query as Q
from uptime.ingest.schedules import ensure_schedules
from uptime.platform.constants import RUNS_COLLECTION
from uptime.platform.db import open_database
from uptime.platform.settings import get_settings
from uptime.report.pipeline import known_timezones, resolve_as_of
from uptime.tools.bench.measure import _mongod_identity, load_average


def _cpu_clock(pid: int | None) -> Any:
    """A function returning CPU seconds used so far by mongod ``pid`` (user + system, psutil)
    plus this process; ``None`` when mongod is not local (no pid) or psutil is missing."""
    if pid is None:
        return None
    try:
        import psutil  # optional (extra "bench"/"test")

        proc = psutil.Process(pid)
        proc.cpu_times()
    except Exception:  # noqa: BLE001 - not measurable here: wall clock only
        return None

    def clock() -> float:
        t = proc.cpu_times()
        return t.user + t.system + time.process_time()

    return clock


async def bench_incidents(db: Any, say: Any = print, *, as_of: datetime | None = None,
                          min_minutes: float | None = None, repeats: int = 3,
                          polls: bool = True) -> dict[str, Any]:
    """Time the incident query and its floor (see module doc); return ``{"as_of",
    "min_minutes", "incidents", "open", "inactive_runs", "incidents_s", "floor_s", "ratio",
    "incidents_all_s", "floor_all_s", "incidents_cpu_s", "floor_cpu_s", "cpu_ratio",
    "loadavg", "polls_s"}`` (seconds: minimum over ``repeats``; the ``*_cpu_s`` and
    ``cpu_ratio`` None unless mongod is local; ``polls_s`` None unless ``polls``;
    ``loadavg`` the 1/5/15-minute load averages after the runs, a string)."""

    minutes = get_settings().incident_min_minutes if min_minutes is None else min_minutes
    as_of = await resolve_as_of(db, as_of)
    if as_of is None:
        raise RuntimeError("no polls: nothing to measure")
    await ensure_schedules(db)
    zones = await known_timezones(db)
    let = Q.incidents_let(as_of=as_of, min_minutes=minutes, timezones=zones, source="runs")
    floor = [Q.load_pipeline()[0], {"$count": "n"}]
    pid, _, _ = await _mongod_identity(db.client)
    cpu = _cpu_clock(pid)
    inc_s: list[float] = []
    floor_s: list[float] = []
    inc_cpu: list[float] = []
    floor_cpu: list[float] = []
    polls_s: list[float] = []
    rows: list[dict] = []
    counted = 0
    for _ in range(repeats):
        c0 = cpu() if cpu else 0.0
        t0 = time.perf_counter()
        docs = await (await db[RUNS_COLLECTION].aggregate(floor, let=let, comment="bench:incidents_floor")).to_list()
        floor_s.append(time.perf_counter() - t0)
        if cpu:
            floor_cpu.append(cpu() - c0)
        counted = docs[0]["n"] if docs else 0
        c0 = cpu() if cpu else 0.0
        t0 = time.perf_counter()
        rows = await Q.find_incidents(db, as_of, minutes, source="runs", timezones=zones, prepare=False)
        inc_s.append(time.perf_counter() - t0)
        if cpu:
            inc_cpu.append(cpu() - c0)
    if polls:
        for _ in range(max(1, repeats - 1)):
            t0 = time.perf_counter()
            from_polls = await Q.find_incidents(db, as_of, minutes, source="polls", timezones=zones,
                                                prepare=False)
            polls_s.append(time.perf_counter() - t0)
        if len(from_polls) != len(rows):
            say(f"  WARNING: incidents from polls {len(from_polls)} != from runs {len(rows)} "
                "(is the timeline current?)")
    out = {"as_of": as_of.isoformat(), "min_minutes": minutes, "incidents": len(rows),
           "open": sum(1 for r in rows if r["open"]), "inactive_runs": counted,
           "incidents_s": min(inc_s), "floor_s": min(floor_s),
           "ratio": min(inc_s) / min(floor_s) if min(floor_s) > 0 else None,
           "incidents_all_s": inc_s, "floor_all_s": floor_s,
           "incidents_cpu_s": min(inc_cpu) if inc_cpu else None,
           "floor_cpu_s": min(floor_cpu) if floor_cpu else None,
           "cpu_ratio": (min(inc_cpu) / min(floor_cpu)
                         if inc_cpu and floor_cpu and min(floor_cpu) > 0 else None),
           "loadavg": load_average(),
           "polls_s": min(polls_s) if polls_s else None}
    say(f"  T_incidents {out['incidents_s']:.3f} s ({out['incidents']:,} incidents, "
        f"{out['open']:,} open, min {minutes:g} min) vs T_floor_incidents {out['floor_s']:.3f} s "
        f"($match+$count of {counted:,} inactive runs): {out['ratio']:.2f}x (target <= 3x)"
        + ("" if out["polls_s"] is None else f"; from polls {out['polls_s']:.2f} s")
        + ("" if out["cpu_ratio"] is None else
           f"; CPU (mongod + client) {out['incidents_cpu_s']:.3f} s vs {out['floor_cpu_s']:.3f} s: "
           f"{out['cpu_ratio']:.2f}x")
        + f"; load average {out['loadavg']}")
    return out


async def _main(repeats: int, polls: bool) -> None:

    async with open_database(get_settings()) as db:
        await bench_incidents(db, repeats=repeats, polls=polls)


if __name__ == "__main__":  # pragma: no cover
    # python -m uptime.tools.bench.incidents [REPEATS] [--no-polls]
    args = [a for a in sys.argv[1:] if a != "--no-polls"]
    asyncio.run(_main(int(args[0]) if args else 3, "--no-polls" not in sys.argv[1:]))
