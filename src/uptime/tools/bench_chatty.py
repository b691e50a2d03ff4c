"""The chatty store (issue 15, item 1): one store polled every minute with alternating status.

100 days of one poll a minute, active and inactive in turn: 144,000 polls, one run per poll
(the last 92 days alone: 132,480 runs). Before issue 15 its 92-day ``/stores/{id}/uptime``
took 96 s and ``/stores/{id}/timeline`` 103 s and 33 MB, and both ran on in MongoDB for
minutes after the client had gone.

* :func:`chatty_polls` / :func:`insert_chatty` build it (also the tests' fixture,
  ``tests/test_request_bounds.py``);
* ``python -m uptime.tools.bench_chatty`` (a benchmark case, not a test: times are wall-clock
  on whatever else the machine does) builds it in a scratch database ``uptime_chatty_<hex>``
  (dropped at the end) on ``MONGODB_URI`` or the embedded server, serves the app with uvicorn
  on a free local port, and prints what the 92-day and 7-day ``uptime`` and ``timeline``
  requests answer (status, bytes, seconds), and how long MongoDB still runs an operation for
  a client that goes away after 1 s (``currentOp``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from datetime import datetime, timedelta, timezone
from typing import Any

CHATTY_STORE = "chatty-store"
#: the chatty store's last poll (UTC); polls run from END - DAYS to END
END = datetime(2024, 6, 1, tzinfo=timezone.utc)
DAYS = 100


def chatty_polls(store_id: str = CHATTY_STORE, *, end: datetime = END, days: int = DAYS,
                 every: timedelta = timedelta(minutes=1)) -> list[dict[str, Any]]:
    """Polls of one store every ``every`` over ``days`` days ending at ``end`` (inclusive),
    alternating active/inactive (so every poll is a run), in the importer's ``_id`` form."""
    count = int(timedelta(days=days) / every)
    out = []
    for k in range(count + 1):
        t = end - (count - k) * every
        status = "active" if k % 2 == 0 else "inactive"
        out.append({"_id": f"{store_id}|{t.strftime('%Y-%m-%dT%H:%M:%S.000')}Z|{status[0]}",
                    "store_id": store_id, "timestamp_utc": t, "status": status})
    return out


async def insert_chatty(db: Any, store_id: str = CHATTY_STORE, **kwargs: Any) -> int:
    """Insert :func:`chatty_polls` into ``db.store_status`` (batches of 10,000); return the
    number of polls."""
    polls = chatty_polls(store_id, **kwargs)
    for i in range(0, len(polls), 10_000):
        await db["store_status"].insert_many(polls[i:i + 10_000], ordered=False)
    return len(polls)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _lingering(db: Any, seconds: float) -> float:
    """Seconds until no operation on ``db``'s collections is running (at most ``seconds``)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        ops = await db.client.admin.aggregate([
            {"$currentOp": {"allUsers": True, "idleConnections": False}},
            {"$match": {"ns": {"$regex": "^" + db.name + r"\."}}},
        ])
        if not await ops.to_list():
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    return float("inf")


async def bench_chatty(db: Any, settings: Any) -> dict[str, Any]:
    """Serve ``db`` (holding the chatty store) and time its requests; return the figures."""
    import httpx
    import uvicorn

    from uptime.timeline import rebuild_runs
    from uptime.web.api import create_app

    await rebuild_runs(db)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", timeout_graceful_shutdown=3))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    out: dict[str, Any] = {}
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=300) as http:
            for days in (92, 7):
                for kind in ("uptime", "timeline"):
                    params = {"from": (END - timedelta(days=days)).isoformat(),
                              "to": END.isoformat()}
                    t0 = time.monotonic()
                    r = await http.get(f"/stores/{CHATTY_STORE}/{kind}", params=params)
                    took = time.monotonic() - t0
                    body = r.json()
                    summary = {"status": r.status_code, "bytes": len(r.content),
                               "seconds": round(took, 3)}
                    if r.status_code == 200 and kind == "timeline":
                        summary.update(runs=len(body["runs"]), runs_total=body["runs_total"],
                                       runs_truncated=body["runs_truncated"],
                                       polls_total=body["polls_total"])
                    elif r.status_code == 200:
                        summary.update(uptime_hours=body["uptime_hours"],
                                       downtime_hours=body["downtime_hours"])
                    else:
                        summary["detail"] = body["detail"]
                    out[f"{kind}_{days}d"] = summary
        # a client that goes away after 1 s: how long does MongoDB still work for it?
        async with httpx.AsyncClient(base_url=base, timeout=1) as http:
            t0 = time.monotonic()
            try:
                await http.get(f"/stores/{CHATTY_STORE}/uptime",
                               params={"from": (END - timedelta(days=15)).isoformat(),
                                       "to": END.isoformat()})
            except httpx.TimeoutException:
                pass
        out["gone_client_server_work_s"] = round(
            time.monotonic() - t0 + await _lingering(db, 120), 2)
    finally:
        server.should_exit = True
        t0 = time.monotonic()
        await serving
        out["shutdown_s"] = round(time.monotonic() - t0, 2)
    return out


async def main() -> None:  # pragma: no cover - a benchmark run
    """Build the chatty store in a scratch database, serve it, print the figures as JSON."""
    from uptime.platform.db import make_client, server_uri
    from uptime.platform.migrations import ensure_current
    from uptime.platform.settings import get_settings

    base = get_settings()
    with server_uri(base) as uri:
        name = f"uptime_chatty_{secrets.token_hex(4)}"
        settings = base.model_copy(update={"mongodb_uri": uri, "mongodb_database": name})
        client = make_client(uri)
        db = client[name]
        try:
            await ensure_current(db, apply=True)
            polls = await insert_chatty(db)
            figures = {"polls": polls, **await bench_chatty(db, settings)}
            print(json.dumps(figures, indent=2))
        finally:
            await client.drop_database(name)
            await client.close()


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(main())
