"""The alert-latency phase's targets in ``uptime-monitor bench`` (issue 17 item 6:
p99 <= 2 s during the burst, the time-driven case within 5 s of the crossing)."""

from __future__ import annotations

from uptime.tools.bench.alerts import targets


def test_targets_pass_only_within_the_limits_with_every_event_once():
    """Rule: a burst phase passes when its p99 is at most 2 s, every expected event was
    received and none twice; the time-driven case passes at most 5 s after the crossing and
    fails when nothing came. Hand-made phase summaries on both sides of each limit."""
    rows = targets([
        {"phase": "burst: opened", "expected": 704, "received": 704, "duplicates": 0,
         "p50_s": 0.8, "p99_s": 2.0},
        {"phase": "burst: resolved", "expected": 704, "received": 704, "duplicates": 0,
         "p50_s": 1.1, "p99_s": 2.01},
        {"phase": "burst: opened", "expected": 10, "received": 9, "duplicates": 0,
         "p50_s": 0.1, "p99_s": 0.2},
        {"phase": "burst: opened", "expected": 10, "received": 10, "duplicates": 1,
         "p50_s": 0.1, "p99_s": 0.2},
        {"phase": "time-driven", "after_crossing_s": 5.0},
        {"phase": "time-driven", "after_crossing_s": None},
        {"phase": "detector", "ticks": 3},
    ])
    assert [r["pass"] for r in rows] == [True, False, False, False, True, False]
    assert rows[0]["shown"] == "p50 0.80 s / p99 2.00 s, 704/704, 0 dup"
    assert rows[5]["shown"] == "not received"
