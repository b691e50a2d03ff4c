"""Bytes on disk per poll and per run, and a year of 14k stores extrapolated (issue 18 item 5).

``python -m uptime.tools.bench.storage [--stores N] [--days D] [--retention DAYS]``
(also part of ``uptime-monitor bench --storage``):

1. a fresh database ``<MONGODB_DATABASE>_bench_storage`` (dropped first and at the end) gets
   the migrations and a generated history (``uptime.tools.generate.generate_dataset``: N
   stores polled about hourly for D days, ending at the generator's ``as_of``), imported by
   the importer (the 16-byte poll ``_id``), and the timeline built (``rebuild_runs``);
2. after an ``fsync`` (a WiredTiger checkpoint, so sizes are of compressed pages on disk),
   ``$collStats.storageStats`` of ``store_status`` and ``status_runs``: ``storageSize`` (data
   files) + ``totalIndexSize`` (every index) / ``count`` = bytes per poll and per run;
3. the compaction with ``now = as_of`` and the retention (``compact_polls``), measured again;
4. ``$indexStats`` of both collections: which index served how many operations during all
   of it (an index no step uses is a candidate to drop);
5. the extrapolation, printed with its arithmetic: a year of hourly polls for 14,000 stores
   (14,000 x 24 x 365 = 122,640,000 polls) holds ``retention x 24 x 14,000 x kept_factor``
   raw polls (``kept_factor`` measured: what the compaction kept / stores x 24 x retention)
   x bytes/poll + (122,640,000 x runs/poll) runs x bytes/run.

Sizes come from the server's own accounting on whatever machine runs it. Bytes per poll are
measured before the compaction: WiredTiger does not return the freed space to the file system
but reuses it, so in steady state the files hold the retained polls at the fresh-insert cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from uptime.ingest.importer import import_files
from uptime.ingest.schedules import rebuild_schedules
from uptime.platform.db import open_client
from uptime.platform.migrations import ensure_current
from uptime.platform.settings import Settings, get_settings
from uptime.timeline.retention import compact_polls
from uptime.timeline.runs import rebuild_runs
from uptime.tools.generate import generate_dataset

YEAR_STORES = 14_000
YEAR_POLLS = YEAR_STORES * 24 * 365  # 122,640,000 hourly polls
TARGET_BYTES = 4 * 1024**3  # 4 GiB
#: the issue's measurement of the string `_id` (scale 1: 263 MB of `_id` index, 2.85M polls)
OLD_ID_INDEX_BYTES_PER_POLL = 263e6 / 2.85e6


async def coll_stats(db: Any, name: str) -> dict[str, Any]:
    """``{count, size (uncompressed data), storage (data files), indexes (all index files),
    index_sizes: {name: bytes}}`` of one collection, from ``$collStats.storageStats``."""
    cursor = await db[name].aggregate([{"$collStats": {"storageStats": {}}}])
    doc = (await cursor.to_list())[0]["storageStats"]
    return {"count": doc.get("count", 0), "size": doc.get("size", 0),
            "storage": doc.get("storageSize", 0), "indexes": doc.get("totalIndexSize", 0),
            "index_sizes": dict(doc.get("indexSizes", {}))}


async def index_stats(db: Any, name: str) -> dict[str, int]:
    """``{index name: operations served since the server started or the index was built}``."""
    cursor = await db[name].aggregate([{"$indexStats": {}}])
    return {d["name"]: int(d["accesses"]["ops"]) for d in await cursor.to_list()}


def per_item(stats: dict[str, Any]) -> float:
    """Bytes on disk (data files + indexes) per document."""
    return (stats["storage"] + stats["indexes"]) / max(1, stats["count"])


def extrapolate(bytes_per_poll: float, bytes_per_run: float, runs_per_poll: float,
                retention_days: float, kept_factor: float = 1.0) -> dict[str, Any]:
    """The year of 14,000 stores with the retention: ``{polls_kept, runs, polls_bytes,
    runs_bytes, total_bytes, lines: [the arithmetic as text]}``. ``kept_factor``: polls kept
    after a compaction / (stores x 24 x retention days), measured — above 1 because each store
    also keeps the rest of its run in force at the horizon."""
    kept = YEAR_STORES * 24 * retention_days * kept_factor
    runs = YEAR_POLLS * runs_per_poll
    polls_bytes, runs_bytes = kept * bytes_per_poll, runs * bytes_per_run
    total = polls_bytes + runs_bytes
    without = YEAR_POLLS * bytes_per_poll + runs_bytes
    lines = [
        f"raw polls kept: 14,000 x 24 x {retention_days:g} d x {kept_factor:.3f} (measured: "
        f"the run in force at the horizon stays whole) = {kept:,.0f} polls "
        f"x {bytes_per_poll:.1f} B = {polls_bytes / 1e9:.2f} GB",
        f"runs of a year: 122,640,000 polls x {runs_per_poll:.4f} runs/poll = {runs:,.0f} runs "
        f"x {bytes_per_run:.1f} B = {runs_bytes / 1e9:.2f} GB",
        f"total: {total / 1e9:.2f} GB = {total / 1024**3:.2f} GiB (target <= 4 GiB: "
        f"{'met' if total <= TARGET_BYTES else 'MISSED'}); without retention: "
        f"{without / 1e9:.1f} GB",
    ]
    return {"polls_kept": kept, "runs": runs, "polls_bytes": polls_bytes,
            "runs_bytes": runs_bytes, "total_bytes": total, "without_retention_bytes": without,
            "target_met": total <= TARGET_BYTES, "lines": lines}


async def measure(settings: Settings, *, stores: int, days: int, retention_days: float,
                  seed: int = 0) -> dict[str, Any]:
    """Generate, import, build, measure, compact, measure (see the module doc); returns the
    figures as a JSON-able dict. The scratch database is dropped at the end."""
    name = f"{settings.mongodb_database}_bench_storage"
    async with open_client(settings) as client:
        await client.drop_database(name)
        db = client[name]
        try:
            await ensure_current(db, apply=True)
            with tempfile.TemporaryDirectory() as tmp:
                files = generate_dataset(Path(tmp), stores=stores, days=days, seed=seed)
                started = time.perf_counter()
                await import_files(db, status=files.status, hours=files.hours,
                                   timezones=files.timezones)
                imported_s = time.perf_counter() - started
            await rebuild_runs(db)
            await rebuild_schedules(db)
            await client.admin.command("fsync")
            polls = await coll_stats(db, "store_status")
            runs = await coll_stats(db, "status_runs")
            as_of = files.as_of if files.as_of.tzinfo else files.as_of.replace(tzinfo=UTC)
            compacted = await compact_polls(db, retention_days, now=as_of)
            await client.admin.command("fsync")
            polls_after = await coll_stats(db, "store_status")
            runs_after = await coll_stats(db, "status_runs")
            used = {"store_status": await index_stats(db, "store_status"),
                    "status_runs": await index_stats(db, "status_runs")}
        finally:
            await client.drop_database(name)
    runs_per_poll = runs["count"] / max(1, polls["count"])
    bpp, bpr = per_item(polls), per_item(runs)
    kept_factor = polls_after["count"] / (stores * 24 * retention_days)
    id_index = polls["index_sizes"].get("_id_", 0) / max(1, polls["count"])
    return {
        "stores": stores, "days": days, "retention_days": retention_days,
        "import_seconds": imported_s,
        "store_status": polls, "status_runs": runs,
        "after_compaction": {"store_status": polls_after, "status_runs": runs_after,
                             "removed": compacted["removed"],
                             "horizon": compacted["horizon"].isoformat()},
        "bytes_per_poll": bpp, "bytes_per_run": bpr, "runs_per_poll": runs_per_poll,
        "id_index_bytes_per_poll": id_index,
        "old_id_index_bytes_per_poll": OLD_ID_INDEX_BYTES_PER_POLL,
        "index_ops": used,
        "kept_factor": kept_factor,
        "year": extrapolate(bpp, bpr, runs_per_poll, retention_days, kept_factor),
    }


def report_text(doc: dict[str, Any]) -> str:
    """The figures as a few lines of text (what ``bench`` prints)."""
    p, r = doc["store_status"], doc["status_runs"]
    out = [
        f"storage ({doc['stores']:,} stores x {doc['days']} days, retention "
        f"{doc['retention_days']:g} d):",
        f"  store_status: {p['count']:,} polls, data files {p['storage'] / 1e6:.1f} MB + "
        f"indexes {p['indexes'] / 1e6:.1f} MB = {doc['bytes_per_poll']:.1f} B/poll "
        f"({', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in p['index_sizes'].items())})",
        f"  _id index: {doc['id_index_bytes_per_poll']:.1f} B/poll (the string _id measured "
        f"{doc['old_id_index_bytes_per_poll']:.1f} B/poll at scale 1)",
        f"  status_runs: {r['count']:,} runs, data files {r['storage'] / 1e6:.1f} MB + "
        f"indexes {r['indexes'] / 1e6:.1f} MB = {doc['bytes_per_run']:.1f} B/run; "
        f"{doc['runs_per_poll']:.4f} runs/poll",
        f"  compaction: {doc['after_compaction']['removed']:,} polls removed (horizon "
        f"{doc['after_compaction']['horizon']}), store_status now "
        f"{doc['after_compaction']['store_status']['count']:,} polls",
        "  index operations: " + "; ".join(
            f"{c}: " + ", ".join(f"{k}={v}" for k, v in ops.items())
            for c, ops in doc["index_ops"].items()),
        "  a year of hourly polls, 14,000 stores:",
        *[f"    {line}" for line in doc["year"]["lines"]],
    ]
    return "\n".join(out)


def run(settings: Settings | None = None, *, stores: int = 1000, days: int = 30,
        retention_days: float | None = None, results: Path | None = None) -> dict[str, Any]:
    """Measure, print the text, write ``results`` (JSON) if given; return the figures."""
    settings = settings or get_settings()
    doc = asyncio.run(measure(settings, stores=stores, days=days,
                              retention_days=retention_days or settings.poll_retention_days))
    print(report_text(doc))
    if results is not None:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(doc, indent=2, default=str))
    return doc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m uptime.tools.bench.storage",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--retention", type=float, default=None,
                        help="retention in days (default UPTIME_POLL_RETENTION_DAYS)")
    parser.add_argument("--results", type=Path, default=Path("bench/results/storage.json"))
    args = parser.parse_args(argv)
    run(stores=args.stores, days=args.days, retention_days=args.retention, results=args.results)


if __name__ == "__main__":
    main()
