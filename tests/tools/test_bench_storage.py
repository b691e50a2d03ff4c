"""Issue 18 item 5: the storage bench (uptime.tools.bench.storage)."""

from __future__ import annotations

import pytest
from pymongo import AsyncMongoClient

from uptime.tools.bench import storage as bench_storage


def test_year_arithmetic_hand_computed() -> None:
    """Rule: a year of hourly polls for 14,000 stores = 122,640,000 polls; kept raw polls =
    14,000 x 24 x retention x kept factor; runs = polls x runs/poll. With 100 B/poll, 400 B/run,
    0.02 runs/poll, 14 days, factor 1.25: 5,880,000 polls x 100 = 0.588 GB, 2,452,800 runs x
    400 = 0.98112 GB, total 1.56912 GB (met); without retention 12.264 + 0.98112 GB."""
    year = bench_storage.extrapolate(100.0, 400.0, 0.02, 14, 1.25)
    assert year["polls_kept"] == pytest.approx(5_880_000)
    assert year["runs"] == pytest.approx(2_452_800)
    assert year["total_bytes"] == pytest.approx(588_000_000 + 981_120_000)
    assert year["without_retention_bytes"] == pytest.approx(12_264_000_000 + 981_120_000)
    assert year["target_met"] is True
    assert bench_storage.extrapolate(2000.0, 400.0, 0.02, 14)["target_met"] is False


async def test_measure_small_history(settings, mongo_uri) -> None:
    """Rule: the bench measures polls and runs from the server's storageStats (positive bytes
    per item, runs fewer than polls), the compaction removes the polls before the boundaries,
    and the scratch database is dropped afterwards."""
    doc = await bench_storage.measure(settings, stores=20, days=20, retention_days=8)
    assert doc["store_status"]["count"] > 20 * 20 * 20
    assert 0 < doc["status_runs"]["count"] < doc["store_status"]["count"]
    assert doc["bytes_per_poll"] > 0 and doc["bytes_per_run"] > 0
    assert doc["after_compaction"]["removed"] > 0
    assert "_id_" in doc["store_status"]["index_sizes"]
    assert any("runs/poll" in line for line in doc["year"]["lines"])
    client = AsyncMongoClient(mongo_uri)
    try:
        names = await client.list_database_names()
    finally:
        await client.close()
    assert f"{settings.mongodb_database}_bench_storage" not in names
