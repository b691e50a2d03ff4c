"""An obviously-correct Python builder of ``status_runs`` (the contract in issue 8, item 2):
the report v2 tests build runs with it, independently of the timeline's pipeline
(``uptime.timeline``), so v2 is checked against runs built two ways.

Runs follow the report's rules 1-2 on the stored polls: valid polls only (string
``store_id``, Date ``timestamp_utc``, status active|inactive); the polls of one store at one
ms instant count once, inactive if any is; a run is a maximal stretch of equal status;
``start2``/``end2`` are the half-ms-exact bounds as 2 x epoch ms (the sum of the neighbouring
poll instants), ``None`` at the open ends.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // MS


def _date(ms: int) -> datetime:
    return EPOCH + ms * MS


def runs_of(polls: list[dict]) -> list[dict]:
    """The run documents of ``polls`` (storage-schema dicts), sorted by store and first poll."""
    instants: dict[str, dict[int, bool]] = defaultdict(dict)  # store -> ms -> inactive
    for p in polls:
        sid, ts, status = p.get("store_id"), p.get("timestamp_utc"), p.get("status")
        if not isinstance(sid, str) or not isinstance(ts, datetime):
            continue
        if status not in ("active", "inactive"):
            continue
        ms = _ms(ts)
        instants[sid][ms] = instants[sid].get(ms, False) or status == "inactive"
    out: list[dict] = []
    for sid in sorted(instants):
        runs: list[dict] = []
        for ms in sorted(instants[sid]):
            status = "inactive" if instants[sid][ms] else "active"
            if runs and runs[-1]["status"] == status:
                runs[-1]["last"] = ms
                runs[-1]["polls"] += 1
            else:
                runs.append({"status": status, "first": ms, "last": ms, "polls": 1})
        for k, r in enumerate(runs):
            start2 = runs[k - 1]["last"] + r["first"] if k else None
            end2 = r["last"] + runs[k + 1]["first"] if k + 1 < len(runs) else None
            first = _date(r["first"])
            out.append({
                "_id": f"{sid}|{first.strftime('%Y-%m-%dT%H:%M:%S.')}{r['first'] % 1000:03d}Z",
                "store_id": sid,
                "status": r["status"],
                "first_poll": first,
                "last_poll": _date(r["last"]),
                "polls": r["polls"],
                "start2": start2,
                "end2": end2,
                "start": None if start2 is None else _date(start2 // 2),
                "end": None if end2 is None else _date(end2 // 2),
            })
    return out


async def rebuild_runs_model(db, batch: int = 20_000) -> int:
    """Replace ``status_runs`` with the runs of every poll in ``store_status``; return the count.

    Streams the polls in (store_id, timestamp_utc) order (the covering poll index), one store
    at a time, so memory stays bounded; inserts runs in batches of ``batch``.
    """
    await db["status_runs"].delete_many({})
    cursor = db["store_status"].find(
        {"store_id": {"$type": "string"}}, {"_id": 0, "store_id": 1, "timestamp_utc": 1, "status": 1}
    ).sort([("store_id", 1), ("timestamp_utc", 1)])
    pending: list[dict] = []
    store: list[dict] = []
    written = 0

    async def flush(force: bool) -> None:
        nonlocal written
        if pending and (force or len(pending) >= batch):
            await db["status_runs"].insert_many(pending, ordered=False)
            written += len(pending)
            pending.clear()

    async for doc in cursor:
        if store and doc["store_id"] != store[0]["store_id"]:
            pending.extend(runs_of(store))
            store = []
            await flush(False)
        store.append(doc)
    pending.extend(runs_of(store))
    await flush(True)
    return written
