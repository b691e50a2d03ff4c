"""The incident phase of ``uptime-monitor bench`` (issue 17, item 6): ``uptime.tools.bench.incidents``."""

from __future__ import annotations

from support.pipeline import load, poll
from uptime.timeline import rebuild_runs
from uptime.tools.bench.incidents import bench_incidents


async def test_bench_incidents_counts_the_same_runs_and_incidents(db) -> None:
    """bench_incidents times the query and its floor over the same runs: the floor counts the
    inactive runs up to as_of (here 3 stores x 1), the query finds their incidents (min 0),
    the polls source finds as many; the line names the ratio and the target."""
    await load(db, [poll(s, f"2024-05-06T{h}:00:00Z", st) for s in ("a", "b", "c")
                    for h, st in (("10", "active"), ("11", "inactive"), ("12", "active"))])
    await rebuild_runs(db)
    lines: list[str] = []
    out = await bench_incidents(db, lines.append, min_minutes=0, repeats=2)
    assert out["inactive_runs"] == 3 and out["incidents"] == 3 and out["open"] == 0
    assert out["incidents_s"] > 0 and out["floor_s"] > 0 and out["polls_s"] > 0
    assert len(out["incidents_all_s"]) == 2
    assert any("T_incidents" in x and "target <= 3x" in x for x in lines)
    assert not any("WARNING" in x for x in lines)
