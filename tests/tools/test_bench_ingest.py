"""The ingestion benchmark (issue 8 item 6): the batches it pushes, and one tiny run through
a real ``uptime-monitor serve`` child process on the test server."""

from __future__ import annotations

import orjson
from pymongo import MongoClient

from uptime.tools.bench.ingest import ingest_target, make_batches, run_ingest_bench


def test_batches_are_distinct_hourly_polls() -> None:
    """Rule: N polls in ceil(N / batch) bodies, store-major within an hour, every poll distinct,
    and an offset call gives other polls."""
    bodies = make_batches(7, 3, stores=4)
    items = [i for b in bodies for i in orjson.loads(b)]
    assert [len(orjson.loads(b)) for b in bodies] == [3, 3, 1]
    assert [(i["store_id"], i["timestamp_utc"]) for i in items[:5]] == [
        ("s000000", "2024-01-01T00:00:00.000Z"),
        ("s000001", "2024-01-01T00:00:00.001Z"),
        ("s000002", "2024-01-01T00:00:00.002Z"),
        ("s000003", "2024-01-01T00:00:00.003Z"),
        ("s000000", "2024-01-01T01:00:00.000Z"),
    ]
    later = orjson.loads(make_batches(2, 2, stores=4, offset=7)[0])
    keys = {(i["store_id"], i["timestamp_utc"]) for i in items + later}
    assert len(keys) == 9


async def test_tiny_run_through_uptime_serve(mongo_uri: str) -> None:
    """Rule: the run starts uptime-monitor serve, stores every pushed poll exactly once (else it
    raises), reports polls/s and latencies and the report-during-the-push figures, and drops
    its database."""
    with MongoClient(mongo_uri) as client:
        before = set(client.list_database_names())
    result = await run_ingest_bench(mongo_uri, polls=3_000, batch=1_000, clients=2, stores=500,
                                    say=lambda _m: None, report_after_s=0.0)
    assert (result["polls"], result["batch"], result["clients"]) == (3_000, 1_000, 2)
    assert result["polls_per_s"] > 0 and result["latency_p99_ms"] >= result["latency_p50_ms"] > 0
    assert result["service_peak_rss_bytes"] > 10_000_000
    # a default report triggered during the push (issue 14, item 2) completed, never waiting
    # on the lagging timeline, with v1 timed after the push for the same as_of
    report = result["report"]
    assert report["error"] is None and report["rows"] and report["as_of"]
    assert report["pipeline"] in ("store_uptime@v1", "store_uptime@v2", "store_uptime@v3")
    assert report["report_v1_after_s"] > 0 and report["limit_s"] == 2 * report["report_v1_after_s"] + 2
    assert report["report_during_push_s"] < 60
    row = ingest_target(result)
    assert row["target"].startswith("POST /polls >= 20,000 polls/s")
    with MongoClient(mongo_uri) as client:
        assert not {n for n in client.list_database_names() if n.startswith("uptime_bench_ingest")
                    } - before
