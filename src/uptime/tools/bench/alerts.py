"""Alert latency benchmark (issue 17 item 6): how long from the acknowledged ``POST /polls``
that opens or resolves an incident to the webhook request received by a local receiver, during
an hourly burst of one poll per store; and the time-driven case (an open stretch crossing
``min_minutes`` with no new poll). Runnable alone::

    python -m uptime.tools.bench.alerts [--stores 2000] [--down 0.1] [--batch 100]
                                        [--concurrency 4]

Set up as deployed: the service is the real ``uptime-monitor serve`` in a **child process**
(database, report service, runs follower, notification deliverer, incident detector — alone in
its process, as in production), on ``MONGODB_URI`` (or the embedded server) in a fresh
database ``uptime_bench_alerts_<random>`` dropped at the end, with
``UPTIME_NOTIFY_ALLOW_PRIVATE`` set for the loopback receiver. The benchmark process holds the
load client (pre-encoded JSON bodies) and the **receiver**: a minimal HTTP/1.1 server on this
process's event loop (keep-alive, answers 200 with no body; the channel is a signed generic
webhook). Both ends of the latency are read in this process with one clock
(``time.monotonic``): the ``POST /polls`` answer received and the webhook request read.

Phases, all stores 24x7 (no hours rows), ``min_minutes`` = ``UPTIME_INCIDENT_MIN_MINUTES``:

1. setup: one active poll per store stamped an hour ago;
2. burst "down": one poll per store stamped now, a fraction ``--down`` inactive (their stretch
   starts at the midpoint, 30 min ago >= 15 min: each opens an incident at once), in batches
   of ``--batch`` polls with ``--concurrency`` requests in flight; latency per store = webhook
   received - its batch's ``POST /polls`` acknowledged;
3. burst "up": one active poll per store (the down ones resolve), same measure;
4. time-driven: a store whose stretch crosses ``min_minutes`` 5 s after its polls are written
   (no poll after that): delay from the crossing to the webhook.

Prints p50/p99/max (seconds) per phase, split into ``detect`` (ack -> the outbox entry
written, from the outbox's ``created_at``) and ``deliver`` (entry -> received), the number of
events received, and duplicates (an event id received twice); then the service's detector
tick and outbox -> delivered means (from its ``GET /metrics``). Target: p99 <= 2 s;
time-driven <= 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from uptime.incidents.query import iso_ms
from uptime.platform.db import make_client, server_uri
from uptime.platform.embedded import free_port
from uptime.platform.settings import get_settings
from uptime.tools.bench.ingest import _wait_healthy, stop_service


_POST_S: list[float] = []  # duration of each POST /polls (s)
_HEAD_END = b"\r\n\r\n"
_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class _Receiver:
    """The webhook receiver: an HTTP/1.1 server (keep-alive) on the running event loop that
    records ``(event id, type, store, monotonic, wall)`` as each request's body is read and
    answers 200. Only what a webhook POST needs (``content-length`` bodies)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, float, float]] = []  # id, type, store, mono, wall
        self.server: asyncio.AbstractServer | None = None
        self.url = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(_HEAD_END)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                mono, wall = time.monotonic(), time.time()
                event = orjson.loads(body)
                self.events.append((event["id"], event["type"], event.get("store_id"),
                                    mono, wall))
                writer.write(_OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def of(self, kind: str) -> list[tuple[str, str, str, float, float]]:
        return [e for e in self.events if e[1] == kind]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


async def _burst(http: httpx.AsyncClient, polls: list[dict], batch: int, concurrency: int,
                 acked_wall: dict[str, float] | None = None) -> dict[str, float]:
    """POST the polls in batches; return store -> monotonic time its batch was acknowledged
    (and fill ``acked_wall``: store -> the same instant as Unix time)."""
    acked: dict[str, float] = {}
    acked_wall = {} if acked_wall is None else acked_wall
    gate = asyncio.Semaphore(concurrency)

    headers = {"content-type": "application/json"}

    async def send(chunk: list[dict], body: bytes) -> None:
        async with gate:
            for attempt in range(1, 4):
                t0 = time.monotonic()
                try:
                    answer = await http.post("/polls", content=body, headers=headers)
                    break
                except httpx.TransportError:  # a keep-alive connection closed under us:
                    if attempt == 3:         # the polls are idempotent, send them again
                        raise
            _POST_S.append(time.monotonic() - t0)
            answer.raise_for_status()
            at, wall = time.monotonic(), time.time()
            for item in chunk:
                acked[item["store_id"]] = at
                acked_wall[item["store_id"]] = wall

    chunks = [polls[i:i + batch] for i in range(0, len(polls), batch)]
    bodies = [orjson.dumps(chunk) for chunk in chunks]  # encoded before the clock runs
    await asyncio.gather(*(send(chunk, body) for chunk, body in zip(chunks, bodies)))
    return acked


async def _wait(receiver: _Receiver, kind: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len({e[0] for e in receiver.of(kind)}) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def _summary(name: str, receiver: _Receiver, kind: str, acked: dict[str, float],
                   acked_wall: dict[str, float], expected: set[str], db: Any,
                   say: Any) -> dict[str, Any]:
    """p50/p99/max of ack -> webhook received, and where it went: ``detect`` = ack -> the
    outbox entry written (the detector: change stream/poke, evaluation, its transaction),
    ``deliver`` = entry written -> received (the deliverer: claim, POST), from the outbox's
    ``created_at`` (wall clock, ms); ``deliver`` itself split into ``deliver_wait`` (entry
    written -> its first attempt started: the claim) and ``deliver_post`` (that attempt's
    duration as the service measured it: sign, POST, the receiver's answer)."""
    got = receiver.of(kind)
    first: dict[str, tuple[float, float, str]] = {}
    for _id, _t, store, mono, wall in got:
        if store in expected:
            first.setdefault(store, (mono, wall, _id))
    lat = [first[s][0] - acked[s] for s in first]
    dup = len(got) - len({e[0] for e in got})
    out: dict[str, Any] = {"phase": name, "expected": len(expected), "received": len(first),
                           "duplicates": dup}
    if lat:
        out.update(p50_s=round(_quantile(lat, 0.5), 3), p99_s=round(_quantile(lat, 0.99), 3),
                   max_s=round(max(lat), 3))
        made: dict[str, float] = {}
        waited: list[float] = []  # entry written -> its (first) attempt started
        posting: list[float] = []  # the attempt's duration, as the service saw it
        async for d in db["notification_outbox"].find(
                {"event.type": kind}, {"event_id": 1, "created_at": 1, "attempts": 1}):
            made[d["event_id"]] = d["created_at"].replace(tzinfo=UTC).timestamp()
            if d.get("attempts"):
                first_try = d["attempts"][0]
                waited.append(first_try["at"].replace(tzinfo=UTC).timestamp()
                              - made[d["event_id"]])
                posting.append(first_try["duration_ms"] / 1000)
        detect = [made[e] - acked_wall[s] for s, (_m, _w, e) in first.items() if e in made]
        deliver = [w - made[e] for s, (_m, w, e) in first.items() if e in made]
        for label, values in (("detect", detect), ("deliver", deliver),
                              ("deliver_wait", waited), ("deliver_post", posting)):
            if values:
                out[f"{label}_p50_s"] = round(_quantile(values, 0.5), 3)
                out[f"{label}_p99_s"] = round(_quantile(values, 0.99), 3)
    say(json.dumps(out))
    return out


def _metric_means(text: str) -> dict[str, float]:
    """From the service's Prometheus text (``GET /metrics``): the detector's ticks and mean
    tick (s), and the mean enqueue -> delivered of webhook notifications (s)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and " " in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)

    def mean(sum_key: str, count_key: str) -> float:
        count = values.get(count_key, 0.0)
        return round(values.get(sum_key, 0.0) / count, 3) if count else 0.0

    tick = "uptime_incident_detector_tick_seconds"
    sent = "uptime_notification_delivery_seconds"
    return {"ticks": int(values.get(f"{tick}_count", 0)),
            "tick_mean_s": mean(f"{tick}_sum", f"{tick}_count"),
            "outbox_to_delivered_mean_s": mean(f'{sent}_sum{{kind="webhook"}}',
                                               f'{sent}_count{{kind="webhook"}}')}


def _start_service(uri: str, database: str, port: int) -> subprocess.Popen:
    """``uptime-monitor serve`` on ``127.0.0.1:port`` in a child process, on ``database``."""
    env = {**os.environ, "MONGODB_URI": uri, "MONGODB_DATABASE": database,
           "UPTIME_NOTIFY_ALLOW_PRIVATE": "true"}
    env.pop("UPTIME_API_TOKEN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "uptime.cli", "serve", "--host", "127.0.0.1", "--port",
         str(port), "--log-level", "warning"], env=env)


async def bench_alerts(stores: int = 2000, down: float = 0.1, batch: int = 100,
                       concurrency: int = 4, timeout: float = 120.0, *,
                       uri: str | None = None, say: Any = print) -> list[dict[str, Any]]:
    """Run the phases of the module doc against ``uptime-monitor serve`` in a child process
    (on ``uri``, default ``MONGODB_URI`` or the embedded server); return one summary dict per
    phase (``say`` prints each as JSON).

    Raises:
        RuntimeError: the service did not start (or exited).
    """
    if uri is None:
        with server_uri(get_settings()) as found:
            return await bench_alerts(stores, down, batch, concurrency, timeout, uri=found,
                                      say=say)
    settings = get_settings()
    database = f"uptime_bench_alerts_{secrets.token_hex(4)}"
    receiver = _Receiver()
    await receiver.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start_service(uri, database, port)
    client = make_client(uri)
    db = client[database]
    results: list[dict[str, Any]] = []
    try:
        await _wait_healthy(base, proc)
        # keep-alive: the connections stay open across the bursts
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            made = await http.post("/channels", json={"name": "bench", "url": receiver.url})
            made.raise_for_status()
            ids = [f"bench-{i:06d}" for i in range(stores)]
            n_down = max(1, int(stores * down))
            downs = set(ids[:n_down])
            now = datetime.now(UTC)
            setup = [{"store_id": s, "timestamp_utc": iso_ms(now - timedelta(hours=1)),
                      "status": "active"} for s in ids]
            await _burst(http, setup, batch, concurrency)
            await asyncio.sleep(3.0)  # the detector settles (nothing to announce)
            _POST_S.clear()
            now = datetime.now(UTC)
            polls = [{"store_id": s, "timestamp_utc": iso_ms(now),
                      "status": "inactive" if s in downs else "active"} for s in ids]
            walls: dict[str, float] = {}
            acked = await _burst(http, polls, batch, concurrency, walls)
            await _wait(receiver, "incident.opened", n_down, timeout)
            results.append(await _summary("burst: opened", receiver, "incident.opened", acked,
                                          walls, downs, db, say))
            now = datetime.now(UTC) + timedelta(seconds=1)
            polls = [{"store_id": s, "timestamp_utc": iso_ms(now), "status": "active"}
                     for s in ids]
            await asyncio.sleep(max(0.0, (now - datetime.now(UTC)).total_seconds()))
            walls = {}
            acked = await _burst(http, polls, batch, concurrency, walls)
            await _wait(receiver, "incident.resolved", n_down, timeout)
            results.append(await _summary("burst: resolved", receiver, "incident.resolved",
                                          acked, walls, downs, db, say))
            # time-driven: stretch from the midpoint, crossing min_minutes 5 s from now
            minutes = settings.incident_min_minutes
            now = datetime.now(UTC)
            mid = now - timedelta(minutes=minutes) + timedelta(seconds=5)
            inactive_at = now - timedelta(seconds=10)
            active_at = mid - (inactive_at - mid)
            crossing_wall = (mid + timedelta(minutes=minutes)).timestamp()
            await _burst(http, [
                {"store_id": "bench-timer", "timestamp_utc": iso_ms(active_at),
                 "status": "active"},
                {"store_id": "bench-timer", "timestamp_utc": iso_ms(inactive_at),
                 "status": "inactive"}], batch, 1)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                hit = [e for e in receiver.of("incident.opened") if e[2] == "bench-timer"]
                if hit:
                    out = {"phase": "time-driven", "after_crossing_s":
                           round(hit[0][4] - crossing_wall, 3)}
                    say(json.dumps(out))
                    results.append(out)
                    break
                await asyncio.sleep(0.05)
            else:
                results.append({"phase": "time-driven", "after_crossing_s": None})
                say(json.dumps(results[-1]))
            scraped = await http.get("/metrics")
            scraped.raise_for_status()
        out = {"phase": "detector", **_metric_means(scraped.text),
               "post_polls_mean_s": round(sum(_POST_S) / max(1, len(_POST_S)), 3)}
        say(json.dumps(out))
        results.append(out)
    finally:
        stop_service(proc)
        await receiver.close()
        await client.drop_database(database)
        await client.close()
    return results


def main(argv: list[str] | None = None) -> None:
    """Command-line entry (``python -m uptime.tools.bench.alerts``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=2000, help="stores (one poll each per burst)")
    parser.add_argument("--down", type=float, default=0.1, help="fraction going down")
    parser.add_argument("--batch", type=int, default=100, help="polls per POST /polls")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    args = parser.parse_args(argv)
    asyncio.run(bench_alerts(args.stores, args.down, args.batch, args.concurrency))


if __name__ == "__main__":  # pragma: no cover
    main()


#: issue 17 item 6: alert latency p99 during the burst, and the time-driven case
TARGET_P99_S = 2.0
TARGET_TIME_DRIVEN_S = 5.0


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets-table rows of a :func:`bench_alerts` run: each burst phase's p99 against
    ``TARGET_P99_S`` (every event received, none twice) and the time-driven delay against
    ``TARGET_TIME_DRIVEN_S``."""
    rows = []
    for res in results:
        if res.get("phase", "").startswith("burst"):
            p99 = res.get("p99_s")
            ok = (p99 is not None and p99 <= TARGET_P99_S
                  and res["received"] == res["expected"] and res["duplicates"] == 0)
            rows.append({"target": f"alert latency p99, {res['phase']} ({res['expected']:,} "
                                   f"incidents), <= {TARGET_P99_S:g} s",
                         "value": p99, "limit": TARGET_P99_S, "pass": ok,
                         "shown": "none received" if p99 is None else
                         f"p50 {res['p50_s']:.2f} s / p99 {p99:.2f} s, "
                         f"{res['received']:,}/{res['expected']:,}, {res['duplicates']} dup"})
        elif res.get("phase") == "time-driven":
            after = res.get("after_crossing_s")
            rows.append({"target": f"time-driven alert after the crossing <= "
                                   f"{TARGET_TIME_DRIVEN_S:g} s",
                         "value": after, "limit": TARGET_TIME_DRIVEN_S,
                         "pass": after is not None and after <= TARGET_TIME_DRIVEN_S,
                         "shown": "not received" if after is None else f"{after:.2f} s"})
    return rows
