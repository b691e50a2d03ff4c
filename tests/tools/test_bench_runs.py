"""The timeline phases of ``uptime-monitor bench`` (issue 8, item 6): ``uptime.tools.bench.runs``."""

from __future__ import annotations

from support.timeline import poll, reference_runs, runs_of
from uptime.platform.migrations import ensure_current
from uptime.tools.bench.runs import bench_runs


async def test_bench_runs_times_rebuild_and_burst_and_leaves_data_as_found(db) -> None:
    """bench_runs rebuilds the runs, pushes one poll per store with the follower running,
    reports freshness percentiles over exactly those polls, then removes them: store_status
    and the runs are as before."""
    await ensure_current(db, apply=True)
    await db["store_status"].insert_many(
        [poll(f"s{i}", ms, "inactive" if (i + ms) % 3 == 0 else "active")
         for i in range(7) for ms in (0, 3_600_000, 7_200_000)])
    before = await db["store_status"].count_documents({})
    lines: list[str] = []
    out = await bench_runs(db, lines.append)
    assert out["runs"] == len(reference_runs(await db["store_status"].find({}, {"_id": 0}).to_list()))
    burst = out["burst"]
    assert burst["polls"] == 7 and burst["chunks"] == 1
    assert 0 <= burst["p50_s"] <= burst["p99_s"] <= burst["max_s"] <= burst["total_s"]
    assert any("T_runs_rebuild" in x for x in lines) and any("freshness p50" in x for x in lines)
    assert await db["store_status"].count_documents({}) == before
    assert await runs_of(db) == reference_runs(
        await db["store_status"].find({}, {"_id": 0}).to_list())
