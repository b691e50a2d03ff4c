"""Benchmark of the incident query (issue 17, item 6, first figure), called by ``uptime-monitor bench``
after the timeline phases (``status_runs`` current), or alone::

    python -m uptime.tools.bench.incidents [REPEATS]     # on MONGODB_URI / MONGODB_DATABASE

* **T_incidents**: :func:`uptime.incidents.query.find_incidents` as of the latest poll with
  ``min_minutes`` = the setting, source ``runs`` (the timeline), all stores, every row read.
* **T_floor_incidents**: one ``$match`` + ``$count`` pass over the same runs: the incident
  pipeline's own first stage (the index-bounded ``$match`` of the inactive runs up to
  ``as_of``, taken from ``pipelines/incidents.v1.json``) followed by ``$count``. Target:
  T_incidents <= 3 x T_floor_incidents.
* **T_incidents_polls**: the same query with source ``polls`` (every store's runs derived
  from ``store_status``: what answers while the timeline is not current), for scale.

Minimum of ``repeats`` runs each, interleaved; wall-clock seconds on whatever else the
machine is doing.
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


async def bench_incidents(db: Any, say: Any = print, *, as_of: datetime | None = None,
                          min_minutes: float | None = None, repeats: int = 3,
                          polls: bool = True) -> dict[str, Any]:
    """Time the incident query and its floor (see module doc); return ``{"as_of",
    "min_minutes", "incidents", "inactive_runs", "incidents_s", "floor_s", "ratio",
    "polls_s"}`` (seconds: minimum over ``repeats``; ``polls_s`` None unless ``polls``)."""

    minutes = get_settings().incident_min_minutes if min_minutes is None else min_minutes
    as_of = await resolve_as_of(db, as_of)
    if as_of is None:
        raise RuntimeError("no polls: nothing to measure")
    await ensure_schedules(db)
    zones = await known_timezones(db)
    let = Q.incidents_let(as_of=as_of, min_minutes=minutes, timezones=zones, source="runs")
    floor = [Q.load_pipeline()[0], {"$count": "n"}]
    inc_s: list[float] = []
    floor_s: list[float] = []
    polls_s: list[float] = []
    rows: list[dict] = []
    counted = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        docs = await (await db[RUNS_COLLECTION].aggregate(floor, let=let, comment="bench:incidents_floor")).to_list()
        floor_s.append(time.perf_counter() - t0)
        counted = docs[0]["n"] if docs else 0
        t0 = time.perf_counter()
        rows = await Q.find_incidents(db, as_of, minutes, source="runs", timezones=zones, prepare=False)
        inc_s.append(time.perf_counter() - t0)
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
           "polls_s": min(polls_s) if polls_s else None}
    say(f"  T_incidents {out['incidents_s']:.3f} s ({out['incidents']:,} incidents, "
        f"{out['open']:,} open, min {minutes:g} min) vs T_floor_incidents {out['floor_s']:.3f} s "
        f"($match+$count of {counted:,} inactive runs): {out['ratio']:.2f}x (target <= 3x)"
        + ("" if out["polls_s"] is None else f"; from polls {out['polls_s']:.2f} s"))
    return out


async def _main(repeats: int) -> None:

    async with open_database(get_settings()) as db:
        await bench_incidents(db, repeats=repeats)


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
