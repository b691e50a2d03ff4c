"""Helpers shared by the status-timeline tests (issue 8): polls at B + ms, reading runs back,
and a plain-Python reference of the runs (rules 1-2, independent of the pipeline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

B = datetime(2023, 1, 22, tzinfo=UTC)
B_MS = int(B.timestamp() * 1000)


def at(ms: int) -> datetime:
    """B + ms milliseconds."""
    return B + timedelta(milliseconds=ms)


def poll(store: str, ms: int, status: str) -> dict:
    return {"store_id": store, "timestamp_utc": at(ms), "status": status}


async def runs_of(db, store: str | None = None) -> list[dict]:
    query = {} if store is None else {"store_id": store}
    docs = await (db["status_runs"].find(query, {"batch": 0}).sort(
        [("store_id", 1), ("first_poll", 1)])).to_list()
    return docs


def reference_runs(polls: list[dict]) -> list[dict]:
    """Plain-Python runs by rules 1-2 (independent of the pipeline)."""
    by_store: dict[str, dict[datetime, bool]] = {}
    for p in polls:
        if not isinstance(p["store_id"], str) or p["status"] not in ("active", "inactive"):
            continue
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in p["store_id"]):
            continue  # rule 1: ids with control characters are ignored
        inst = by_store.setdefault(p["store_id"], {})
        inst[p["timestamp_utc"]] = inst.get(p["timestamp_utc"], False) or p["status"] == "inactive"
    out = []
    for store in sorted(by_store):
        seq = sorted(by_store[store].items())
        groups: list[list[tuple[datetime, bool]]] = []
        for t, i in seq:
            if groups and groups[-1][-1][1] == i:
                groups[-1].append((t, i))
            else:
                groups.append([(t, i)])
        ms = lambda d: int(d.timestamp() * 1000)  # noqa: E731
        for k, g in enumerate(groups):
            s2 = None if k == 0 else ms(groups[k - 1][-1][0]) + ms(g[0][0])
            e2 = None if k == len(groups) - 1 else ms(g[-1][0]) + ms(groups[k + 1][0][0])
            out.append({
                "_id": f"{store}|{g[0][0].strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z",
                "store_id": store, "status": "inactive" if g[0][1] else "active",
                "first_poll": g[0][0], "last_poll": g[-1][0], "polls": len(g),
                "start2": s2, "end2": e2,
                "start": None if s2 is None else datetime.fromtimestamp(s2 // 2 / 1000, UTC),
                "end": None if e2 is None else datetime.fromtimestamp(e2 // 2 / 1000, UTC),
            })
    return out
