"""The chatty store (issue 15, item 1): one store polled every minute with alternating status.

100 days of one poll a minute, active and inactive in turn: 144,000 polls, one run per poll
(the last 92 days alone: 132,480 runs). Before issue 15 its 92-day ``/stores/{id}/uptime``
took 96 s and ``/stores/{id}/timeline`` 103 s and 33 MB, and both ran on in MongoDB for
minutes after the client had gone.

* :func:`chatty_polls` / :func:`insert_chatty` build it (also the tests' fixture,
  ``tests/test_request_bounds.py``);
* ``python -m uptime.tools.bench.chatty`` (a benchmark case, not a test: times are wall-clock
  on whatever else the machine does) builds it in a scratch database ``uptime_chatty_<hex>``
  (dropped at the end) on ``MONGODB_URI`` or the embedded server, serves the app with uvicorn
  on a free local port, and prints what its ``uptime`` and ``timeline`` requests answer
  (status, bytes, seconds; :func:`bench_chatty`), and how long MongoDB still runs an
  operation for a client that goes away after 1 s (``currentOp``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import uvicorn

from uptime.platform.constants import STATUS_COLLECTION
from uptime.platform.db import make_client, server_uri
from uptime.platform.migrations import ensure_current
from uptime.platform.settings import get_settings
from uptime.timeline import wait_current
from uptime.web.app import create_app
from uptime.web.bounds import SHUTDOWN_GRACE_S

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
        await db[STATUS_COLLECTION].insert_many(polls[i:i + 10_000], ordered=False)
    return len(polls)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _lingering(db: Any, seconds: float) -> float:
    """Seconds until no ``store_interval@v1`` aggregation on ``db`` runs (at most
    ``seconds``; ``inf`` if one still runs then)."""
    started = time.monotonic()
    mine = {"$regex": "^store_interval"}
    while time.monotonic() - started < seconds:
        ops = await db.client.admin.command({
            "currentOp": True, "ns": {"$regex": "^" + db.name + r"\."},
            "$or": [{"command.comment": mine}, {"cursor.originatingCommand.comment": mine}]})
        if not ops["inprog"]:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return float("inf")


@contextlib.asynccontextmanager
async def _serving(settings: Any, out: dict[str, Any], key: str) -> AsyncIterator[str]:
    """Serve the app with uvicorn on a free port; yield its base URL; record the seconds the
    shutdown took under ``out[key]``."""

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning",
                                           timeout_graceful_shutdown=SHUTDOWN_GRACE_S))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t0 = time.monotonic()
        await serving
        out[key] = round(time.monotonic() - t0, 2)


def _summary(kind: str, r: Any, took: float) -> dict[str, Any]:
    body = r.json()
    out: dict[str, Any] = {"status": r.status_code, "bytes": len(r.content),
                           "seconds": round(took, 3)}
    if r.status_code == 200 and kind == "timeline":
        out.update(runs=len(body["runs"]), runs_total=body["runs_total"],
                   runs_truncated=body["runs_truncated"], polls=len(body["polls"]),
                   polls_total=body["polls_total"], uptime_hours=body["uptime_hours"],
                   downtime_hours=body["downtime_hours"])
    elif r.status_code == 200:
        out.update(uptime_hours=body["uptime_hours"], downtime_hours=body["downtime_hours"])
    else:
        out["detail"] = body["detail"] if isinstance(body["detail"], str) else \
            body["detail"][0]["msg"]
    return out


async def bench_chatty(db: Any, settings: Any) -> dict[str, Any]:
    """Serve ``db`` (holding the chatty store) and time its requests; return the figures:

    * with the settings as given: the 92-day ``uptime`` and ``timeline`` (422 past
      ``UPTIME_INTERVAL_MAX_POLLS``), then the longest interval the 422 names, then one day;
    * with the poll budget off (the pipeline's own cost, bounded by the time limit only): the
      30-day ``uptime`` for a patient client (503 at ``UPTIME_REQUEST_TIMEOUT_S``), and for a
      client gone after 1 s — how long MongoDB still ran the aggregation afterwards.
    """

    out: dict[str, Any] = {"request_timeout_s": settings.request_timeout_s,
                           "interval_max_polls": settings.interval_max_polls}
    path = f"/stores/{CHATTY_STORE}"
    days92 = {"from": (END - timedelta(days=92)).isoformat(), "to": END.isoformat()}
    async with _serving(settings, out, "shutdown_s") as base, \
            httpx.AsyncClient(base_url=base, timeout=300) as http:
        t0 = time.monotonic()  # the follower's first start rebuilds status_runs
        while not await wait_current(db, 5) and time.monotonic() - t0 < 900:
            await asyncio.sleep(1)
        out["follower_rebuild_s"] = round(time.monotonic() - t0, 1)
        suggested = None
        for label, params in (("92d", days92), ("fits", None),
                              ("1d", {"from": (END - timedelta(days=1)).isoformat(),
                                      "to": END.isoformat()})):
            for kind in ("uptime", "timeline"):
                if params is None:
                    params = {"from": suggested, "to": END.isoformat()}
                t0 = time.monotonic()
                r = await http.get(f"{path}/{kind}", params=params)
                out[f"{kind}_{label}"] = _summary(kind, r, time.monotonic() - t0)
                if r.status_code == 422 and suggested is None:
                    suggested = r.json()["detail"][0]["msg"].rsplit("from=", 1)[1]
            if label == "92d":
                out["fits_from"] = suggested
    # 30 days, not 92: MongoDB checks for a kill between documents, and the interval
    # pipeline's one document per store grows with the interval (at 92 days one step ran on
    # for minutes after maxTimeMS); the poll budget keeps such an interval from starting
    unbudgeted = settings.model_copy(update={"interval_max_polls": 10**9})
    days30 = {"from": (END - timedelta(days=30)).isoformat(), "to": END.isoformat()}
    async with _serving(unbudgeted, out, "shutdown_no_budget_s") as base:
        async with httpx.AsyncClient(base_url=base, timeout=300) as http:
            t0 = time.monotonic()
            r = await http.get(f"{path}/uptime", params=days30)
            out["uptime_30d_no_budget"] = _summary("uptime", r, time.monotonic() - t0)
            out["uptime_30d_no_budget"]["server_work_after_answer_s"] = round(
                await _lingering(db, 300), 2)
        async with httpx.AsyncClient(base_url=base, timeout=1) as http:
            t0 = time.monotonic()
            with contextlib.suppress(httpx.TimeoutException):
                await http.get(f"{path}/uptime", params=days30)
            gone = time.monotonic()
            out["gone_client_server_work_after_s"] = round(await _lingering(db, 300), 2)
            out["gone_client_left_after_s"] = round(gone - t0, 2)
    return out


async def main() -> None:  # pragma: no cover - a benchmark run
    """Build the chatty store in a scratch database, serve it, print the figures as JSON."""

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
