"""Notifications (issue 17, items 4, 5 and 7): channels, the outbox and its deliverer, against
a real mongod and a real local HTTP receiver (pytest-httpserver)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner
from werkzeug import Request, Response

from support.app import LIFESPAN_TIMEOUT_S
from support.receiver import Receiver, serve
from uptime.notify import channels as ch
from uptime.notify import outbox
from uptime.platform import metrics
from uptime.platform.migrations import migrate_up
from uptime.platform.settings import Settings, get_settings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


def fast(settings: Settings, **extra) -> Settings:
    """Retry timings in tens of milliseconds, and loopback receivers allowed."""
    values = dict(notify_backoff_base_s=0.05, notify_backoff_cap_s=0.2,
                  notify_poll_interval_s=0.05, notify_timeout_s=2, notify_lease_s=5,
                  notify_allow_private=True)
    values.update(extra)
    return settings.model_copy(update=values)


def event(n: int | str, kind: str = "incident.opened") -> dict:
    return {"id": f"inc-{n}:opened", "type": kind, "store_id": f"store-{n}",
            "incident": {"started_at": T0, "ended_at": None, "business_downtime_minutes": 12.5},
            "occurred_at": T0}


async def wait_for(predicate, timeout: float = 60.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(step)


@pytest.fixture
async def mdb(db):
    """The test database with the shipped migrations applied (channel and outbox indexes)."""
    await migrate_up(db)
    return db


# -- delivery ----------------------------------------------------------------------------------
async def test_signed_webhook_verifies_and_attempt_is_recorded(mdb, settings, httpserver):
    """Rule: a webhook channel with a secret receives the JSON event with webhook-id = the event
    id, and a signature standardwebhooks' Webhook.verify accepts; the outbox records one
    delivered attempt with HTTP 200; latency and sent metrics count it."""
    receiver = Receiver()
    url = serve(httpserver, receiver)
    s = fast(settings)
    await ch.add_channel(mdb, "hook", url, SECRET, allow_private=True)
    sent_before = metrics.NOTIFY_SENT.labels("webhook")._value.get()
    assert await outbox.enqueue(mdb, event(1)) == ["inc-1:opened|hook"]
    assert await outbox.Deliverer(mdb, s).run_once() == 1
    assert receiver.ids() == ["inc-1:opened"]
    _, _, headers, body, _ = receiver.requests[0]
    payload = Webhook(SECRET).verify(body, headers)
    assert payload["id"] == "inc-1:opened" and payload["type"] == "incident.opened"
    assert payload["incident"]["started_at"] == "2024-03-04T12:00:00.000Z"
    with pytest.raises(Exception):  # a wrong secret does not verify
        Webhook("whsec_" + "A" * 32).verify(body, headers)
    doc = await mdb[outbox.OUTBOX].find_one({"_id": "inc-1:opened|hook"})
    assert doc["status"] == "delivered" and doc["attempt_count"] == 1
    assert doc["attempts"][0]["status_code"] == 200 and doc["attempts"][0]["error"] is None
    assert doc["attempts"][0]["duration_ms"] >= 0 and doc["delivered_at"] >= doc["created_at"]
    assert metrics.NOTIFY_SENT.labels("webhook")._value.get() == sent_before + 1
    text = metrics.exposition()[0].decode()
    for name in ("uptime_notifications_sent_total", "uptime_notifications_failed_total",
                 "uptime_notifications_retried_total",
                 "uptime_notification_delivery_seconds_bucket"):
        assert name in text


async def test_wake_all_sends_without_waiting_for_the_poll(mdb, settings, httpserver):
    """Rule: with a 60 s poll interval, wake_all() after enqueue makes a running deliverer
    send at once (what the detector calls after committing its transaction)."""
    receiver = Receiver()
    await ch.add_channel(mdb, "hook", serve(httpserver, receiver), allow_private=True)
    deliverer = outbox.Deliverer(mdb, fast(settings, notify_poll_interval_s=60))
    await deliverer.start()
    try:
        await asyncio.sleep(0.3)  # its first (empty) pass is done; it now sleeps 60 s
        await outbox.enqueue(mdb, event(1))
        outbox.wake_all()

        async def received():
            return receiver.ids()

        assert await wait_for(received, timeout=30) == ["inc-1:opened"]
    finally:
        await deliverer.stop()


async def test_enqueue_is_idempotent_and_joins_the_transaction(mdb, client):
    """Rule: enqueue inside a transaction commits or aborts with the caller's write; the same
    event enqueued twice is one document per channel."""
    await ch.add_channel(mdb, "a", "https://93.184.215.14/a")
    await ch.add_channel(mdb, "b", "https://93.184.215.14/b")
    if "incidents" not in await mdb.list_collection_names():  # the migrations may have made it
        await mdb.create_collection("incidents")  # (no collection is created in a transaction)
    async with client.start_session() as session:
        with pytest.raises(RuntimeError):
            async with await session.start_transaction():
                await mdb.incidents.insert_one({"_id": "inc-9"}, session=session)
                await outbox.enqueue(mdb, event(9), session=session)
                raise RuntimeError("abort")
    assert await mdb[outbox.OUTBOX].count_documents({}) == 0
    assert await mdb.incidents.count_documents({}) == 0
    async with client.start_session() as session:
        async with await session.start_transaction():
            await mdb.incidents.insert_one({"_id": "inc-9"}, session=session)
            await outbox.enqueue(mdb, event(9), session=session)
    await outbox.enqueue(mdb, event(9))
    ids = sorted(d["_id"] for d in await mdb[outbox.OUTBOX].find().to_list(None))
    assert ids == ["inc-9:opened|a", "inc-9:opened|b"]


async def test_bad_events_are_refused(mdb):
    """Rule: an event without a string id, a known type or a datetime occurred_at raises
    ValueError and writes nothing."""
    await ch.add_channel(mdb, "a", "https://93.184.215.14/a")
    for bad in ({**event(1), "id": ""}, {**event(1), "type": "boom"},
                {**event(1), "occurred_at": "yesterday"}):
        with pytest.raises(ValueError):
            await outbox.enqueue(mdb, bad)
    assert await mdb[outbox.OUTBOX].count_documents({}) == 0


async def test_receiver_down_then_back_delivers_each_event_once(mdb, settings):
    """Rule (item 7): with the receiver not listening, attempts fail and are retried with
    backoff; once it listens, every event is delivered, and each event id is received exactly
    once (no request for an event after its first success)."""
    probe = HTTPServer(host="127.0.0.1", port=0)
    probe.start()
    port = probe.port
    probe.stop()  # nothing listens on the port now: connection refused
    s = fast(settings)
    await ch.add_channel(mdb, "hook", f"http://127.0.0.1:{port}/hook", SECRET,
                         allow_private=True)
    for n in range(6):
        await outbox.enqueue(mdb, event(n))
    deliverer = outbox.Deliverer(mdb, s)
    retried_before = metrics.NOTIFY_RETRIED.labels("webhook")._value.get()
    await deliverer.start()
    receiver = Receiver()
    server = HTTPServer(host="127.0.0.1", port=port)
    try:
        async def all_failed_twice():
            return await mdb[outbox.OUTBOX].count_documents({"attempt_count": {"$gte": 2}}) == 6

        await wait_for(all_failed_twice)
        doc = await mdb[outbox.OUTBOX].find_one({"_id": "inc-0:opened|hook"})
        assert doc["status"] in ("pending", "sending") and doc["attempts"][0]["status_code"] is None
        assert "Connect" in doc["attempts"][0]["error"]
        server.expect_request("/hook", method="POST").respond_with_handler(receiver)
        server.start()

        async def all_delivered():
            return await mdb[outbox.OUTBOX].count_documents({"status": "delivered"}) == 6

        await wait_for(all_delivered)
        await asyncio.sleep(0.5)  # time for any wrong duplicate to arrive
    finally:
        await deliverer.stop()
        server.stop()
    assert sorted(receiver.ids()) == sorted(f"inc-{n}:opened" for n in range(6))
    assert metrics.NOTIFY_RETRIED.labels("webhook")._value.get() >= retried_before + 12


async def test_answer_4xx_is_a_permanent_failure_without_retries(mdb, settings, httpserver):
    """Rule (item 7): a 4xx other than 408/429 fails the notification at once: status failed,
    reason permanent, the 400 recorded and listed, one request only (no retry storm)."""
    receiver = Receiver(status=400)
    s = fast(settings)
    await ch.add_channel(mdb, "bad", serve(httpserver, receiver), allow_private=True)
    await outbox.enqueue(mdb, event(1))
    deliverer = outbox.Deliverer(mdb, s)
    await deliverer.start()
    try:
        async def failed():
            return await mdb[outbox.OUTBOX].count_documents({"status": "failed"}) == 1

        await wait_for(failed)
        await asyncio.sleep(0.5)
    finally:
        await deliverer.stop()
    assert receiver.ids() == ["inc-1:opened"]
    [row] = await outbox.list_deliveries(mdb, status="failed")
    assert (row["reason"], row["attempt_count"], row["last_attempt"]["status_code"]) == (
        "permanent", 1, 400)
    assert row["last_attempt"]["error"] == "HTTP 400"


async def test_429_forever_retries_with_backoff_then_expires(mdb, settings, httpserver):
    """Rule: 429 (and 5xx, 408, network errors) are retried with exponential backoff until
    UPTIME_NOTIFY_MAX_AGE_S after enqueue, then failed/expired; attempts stay bounded by the
    backoff (base 0.05 s doubling to the 0.2 s cap, jittered to at least half: within 1.5 s at
    most 2 + 1.5 / 0.1 = 17 attempts)."""
    receiver = Receiver(status=429)
    s = fast(settings, notify_max_age_s=1.5)
    await ch.add_channel(mdb, "busy", serve(httpserver, receiver), allow_private=True)
    await outbox.enqueue(mdb, event(1))
    deliverer = outbox.Deliverer(mdb, s)
    await deliverer.start()
    try:
        async def failed():
            return await mdb[outbox.OUTBOX].find_one({"status": "failed"})

        doc = await wait_for(failed)
    finally:
        await deliverer.stop()
    assert doc["reason"] == "expired"
    assert 3 <= doc["attempt_count"] <= 17
    assert len(receiver.ids()) == doc["attempt_count"]
    gaps = [(b["at"] - a["at"]).total_seconds() for a, b in zip(doc["attempts"],
                                                                  doc["attempts"][1:])]
    assert min(gaps) >= 0.025 - 0.005  # never sooner than half the first delay


async def test_backoff_doubles_with_jitter_and_caps():
    """Rule: the n-th retry waits in [d/2, d] with d = min(cap, base * 2**(n-1))."""
    s = Settings(notify_backoff_base_s=5, notify_backoff_cap_s=3600)
    for n, d in [(1, 5), (2, 10), (3, 20), (10, 2560), (11, 3600), (40, 3600)]:
        waits = [outbox.backoff_s(n, s) for _ in range(200)]
        assert d / 2 <= min(waits) and max(waits) <= d


async def test_abandoned_claim_is_redelivered_with_the_same_id(mdb, settings, httpserver):
    """Rule (item 7): a deliverer that claimed a notification and died holds it only until
    its lease expires; another deliverer then sends it, with the same webhook-id."""
    receiver = Receiver()
    s = fast(settings, notify_lease_s=0.6, notify_timeout_s=0.3)
    await ch.add_channel(mdb, "hook", serve(httpserver, receiver), allow_private=True)
    await outbox.enqueue(mdb, event(1))
    dead = outbox.Deliverer(mdb, s)
    assert (await dead.claim())["_id"] == "inc-1:opened|hook"  # ... and never delivers
    other = outbox.Deliverer(mdb, s)
    assert await other.run_once() == 0  # the lease holds
    await asyncio.sleep(0.7)
    assert await other.run_once() == 1
    assert receiver.ids() == ["inc-1:opened"]
    doc = await mdb[outbox.OUTBOX].find_one({})
    assert (doc["status"], doc["claims"], doc["attempt_count"]) == ("delivered", 2, 1)


_CHILD = """
import asyncio, sys
from uptime.platform.db import make_client
from uptime.platform.settings import Settings
from uptime.notify.outbox import Deliverer

async def main():
    client = make_client(sys.argv[1])
    s = Settings(notify_lease_s=1.5, notify_timeout_s=0.5, notify_allow_private=True,
                 notify_poll_interval_s=0.05)
    await Deliverer(client[sys.argv[2]], s).run_once()

asyncio.run(main())
"""


async def test_kill_9_mid_delivery_loses_nothing(mdb, settings, mongo_uri, db_name, httpserver):
    """Rule (item 7): a deliverer process killed with SIGKILL while its request is in flight
    (the receiver got it but never answered) loses nothing: after the lease another
    deliverer sends the event again with the same webhook-id, and it ends delivered."""
    first_seen = threading.Event()
    release = threading.Event()
    seen: list[str] = []

    def handler(request: Request) -> Response:
        seen.append(request.headers.get("webhook-id"))
        if len(seen) == 1:
            first_seen.set()
            release.wait(10)  # hold the first request open: the child is killed meanwhile
        return Response("ok", status=200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    await ch.add_channel(mdb, "hook", httpserver.url_for("/hook"), SECRET, allow_private=True)
    await outbox.enqueue(mdb, event(7))
    child = subprocess.Popen([sys.executable, "-c", _CHILD, mongo_uri, db_name])
    try:
        assert await asyncio.to_thread(first_seen.wait, 30), "child never sent"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        release.set()
    doc = await mdb[outbox.OUTBOX].find_one({})
    assert doc["status"] == "sending" and doc["attempt_count"] == 0
    s = fast(settings, notify_lease_s=1.5, notify_timeout_s=0.5)
    deliverer = outbox.Deliverer(mdb, s)
    await deliverer.start()
    try:
        async def delivered():
            return await mdb[outbox.OUTBOX].find_one({"status": "delivered"})

        doc = await wait_for(delivered)
    finally:
        await deliverer.stop()
    assert seen == ["inc-7:opened", "inc-7:opened"]
    assert doc["claims"] == 2 and doc["attempt_count"] == 1


async def test_muted_and_removed_channels_are_skipped(mdb, settings, httpserver):
    """Rule: a muted channel's notification is recorded as skipped (muted) and not sent; a
    channel removed after enqueue is skipped (channel_removed); unmuted, it is sent again."""
    receiver = Receiver()
    url = serve(httpserver, receiver)
    s = fast(settings)
    await ch.add_channel(mdb, "quiet", url, allow_private=True)
    await ch.add_channel(mdb, "gone", url, allow_private=True)
    await ch.set_muted(mdb, "quiet", True)
    await outbox.enqueue(mdb, event(1))
    await ch.remove_channel(mdb, "gone")
    await outbox.Deliverer(mdb, s).run_once()
    docs = {d["channel"]: d for d in await mdb[outbox.OUTBOX].find().to_list(None)}
    assert (docs["quiet"]["status"], docs["quiet"]["reason"]) == ("skipped", "muted")
    assert (docs["gone"]["status"], docs["gone"]["reason"]) == ("skipped", "channel_removed")
    assert receiver.ids() == []
    await ch.set_muted(mdb, "quiet", False)
    await outbox.enqueue(mdb, event(2))
    await outbox.Deliverer(mdb, s).run_once()
    assert receiver.ids() == ["inc-2:opened"]


async def test_apprise_json_channel_delivers(mdb, settings, httpserver):
    """Rule: a non-http(s) URL goes through Apprise; its generic json:// service posts a JSON
    message with the event's title to the local receiver."""
    bodies: list[dict] = []

    def handler(request: Request) -> Response:
        bodies.append(json.loads(request.get_data()))
        return Response("ok", status=200)

    httpserver.expect_request("/ap", method="POST").respond_with_handler(handler)
    await ch.add_channel(mdb, "ap", f"json://127.0.0.1:{httpserver.port}/ap", allow_private=True)
    await outbox.enqueue(mdb, event(3))
    await outbox.Deliverer(mdb, fast(settings)).run_once()
    doc = await mdb[outbox.OUTBOX].find_one({})
    assert doc["status"] == "delivered" and doc["kind"] == "apprise"
    assert bodies and bodies[0]["title"] == "Store store-3 is down"


# -- hostile URLs and secrets -------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "gopher://127.0.0.1:70/_x", "ftp://example.com/x", "javascript:alert(1)",
    "no-scheme.example.com/hook",
])
async def test_hostile_schemes_are_refused(mdb, url):
    """Rule: a scheme that is neither http(s) nor an Apprise service is refused (422), also
    when internal addresses are allowed."""
    with pytest.raises(ch.ChannelError) as info:
        await ch.add_channel(mdb, "x", url, allow_private=True)
    assert info.value.status == 422 and info.value.field == "url"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "https://169.254.169.254/latest",
    "http://10.1.2.3/", "http://192.168.0.1/", "http://[::1]:80/", "http://[::ffff:127.0.0.1]/",
    "http://100.64.0.1/", "http://0.0.0.0/", "json://127.0.0.1:9/x", "ntfy://10.0.0.5/topic",
])
async def test_internal_addresses_are_refused_unless_allowed(mdb, url):
    """Rule: a loopback, private, link-local, CGNAT or unspecified host is refused (422)
    unless UPTIME_NOTIFY_ALLOW_PRIVATE allows it."""
    with pytest.raises(ch.ChannelError) as info:
        await ch.add_channel(mdb, "x", url)
    message = str(info.value)
    assert info.value.status == 422 and ("internal" in message or "loopback" in message)
    await ch.add_channel(mdb, "x", url, allow_private=True)


async def test_delivery_rechecks_the_address(mdb, settings, httpserver):
    """Rule: the address is checked again at delivery: a loopback channel stored while
    allowed fails permanently once private addresses are no longer allowed."""
    receiver = Receiver()
    await ch.add_channel(mdb, "hook", serve(httpserver, receiver), allow_private=True)
    await outbox.enqueue(mdb, event(1))
    await outbox.Deliverer(mdb, fast(settings, notify_allow_private=False)).run_once()
    doc = await mdb[outbox.OUTBOX].find_one({})
    assert (doc["status"], doc["reason"]) == ("failed", "permanent")
    assert receiver.ids() == []


async def test_bad_secret_and_secret_on_apprise_are_refused(mdb):
    """Rule: a secret must be whsec_<base64> and only goes with an http(s) webhook."""
    for url, secret in [("https://93.184.215.14/h", "hunter2"),
                        ("https://93.184.215.14/h", "whsec_***notbase64***"),
                        ("slack://TokenA/TokenB/TokenC", SECRET)]:
        with pytest.raises(ch.ChannelError) as info:
            await ch.add_channel(mdb, "x", url, secret)
        assert info.value.field == "secret" and secret not in str(info.value)


CREDENTIAL_URL = ("https://alice:s3cr3tpw@93.184.215.14/services/T000/B000/"
                  "XXXXXXXXXXXXXXXXXXXXXXXX?token=tok123&x=1")
LEAKS = ("s3cr3tpw", "XXXXXXXXXXXXXXXXXXXXXXXX", "tok123", SECRET, "alice", "TokenB")


async def test_secrets_never_in_list_api_or_cli(mdb, settings, monkeypatch):
    """Rule: the secret, URL credentials, long path tokens and query values never appear in
    the channel list, the API answers (list, get, add, errors) or the CLI output."""
    await ch.add_channel(mdb, "hook", CREDENTIAL_URL, SECRET)
    await ch.add_channel(mdb, "slack", "slack://TokenA/TokenB/TokenC/#alerts")
    listed = json.dumps(await ch.list_channels(mdb), default=str)
    assert not [leak for leak in LEAKS if leak in listed]
    assert "93.184.215.14" in listed and "/services/T000/B000/***" in listed

    from uptime.web import app as api

    app = api.create_app(settings.model_copy(update={"api_token": "tkn"}))
    async with LifespanManager(app, startup_timeout=LIFESPAN_TIMEOUT_S,
                                shutdown_timeout=LIFESPAN_TIMEOUT_S) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                     headers={"Authorization": "Bearer tkn"}) as http:
            answers = [await http.get("/channels"), await http.get("/channels/hook"),
                       await http.post("/channels", json={"name": "h2", "url": CREDENTIAL_URL,
                                                          "secret": SECRET}),
                       await http.post("/channels", json={"name": "h3", "url": CREDENTIAL_URL,
                                                          "secret": "whsec_s3cr3tpw!"})]
            unauth = await http.get("/channels", headers={"Authorization": "Bearer no"})
    assert [a.status_code for a in answers] == [200, 200, 201, 422]
    assert unauth.status_code == 401
    assert answers[1].json()["has_secret"] is True
    for a in answers:
        assert not [leak for leak in LEAKS if leak in a.text], a.text

    monkeypatch.setenv("MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("MONGODB_DATABASE", settings.mongodb_database)
    get_settings.cache_clear()
    try:
        from uptime.cli import app as cli

        result = await asyncio.to_thread(  # the CLI runs its own event loop
            CliRunner().invoke, cli, ["channels", "list"], env={"COLUMNS": "300"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "hook" in result.output and "slack" in result.output
    assert not [leak for leak in LEAKS if leak in result.output]


async def test_api_crud_test_and_errors(mdb, settings, httpserver):
    """Rule: /channels add (201), duplicate (409), hostile URL (422 naming url), unknown
    (404), mute (PATCH), test (200, delivered to the receiver), delete (204); /notifications
    lists the outbox; bad input is never a 500."""
    receiver = Receiver()
    url = serve(httpserver, receiver)
    from uptime.web import app as api

    app = api.create_app(fast(settings))
    async with LifespanManager(app, startup_timeout=LIFESPAN_TIMEOUT_S,
                                shutdown_timeout=LIFESPAN_TIMEOUT_S) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            add = await http.post("/channels", json={"name": "rx", "url": url, "secret": SECRET})
            dup = await http.post("/channels", json={"name": "rx", "url": url})
            hostile = await http.post("/channels", json={"name": "f", "url": "file:///etc/x"})
            badname = await http.post("/channels", json={"name": "../x", "url": url})
            nobody = await http.post("/channels", content=b"{not json")
            missing = await http.get("/channels/nope")
            badpath = await http.get("/channels/..%2Fx")
            mute = await http.patch("/channels/rx", json={"muted": True})
            test = await http.post("/channels/rx/test")
            unmute = await http.patch("/channels/rx", json={"muted": False})
            await outbox.enqueue(app.state.db, event(5))

            async def delivered():
                r = await http.get("/notifications", params={"status": "delivered"})
                return r.json()

            rows = await wait_for(delivered)
            badstatus = await http.get("/notifications", params={"status": "nope"})
            delete = await http.delete("/channels/rx")
            again = await http.delete("/channels/rx")
    assert add.status_code == 201 and add.json()["kind"] == "webhook"
    assert dup.status_code == 409
    assert hostile.status_code == 422 and hostile.json()["detail"][0]["loc"] == ["body", "url"]
    assert badname.status_code == 422 and badname.json()["detail"][0]["loc"] == ["body", "name"]
    assert nobody.status_code == 422
    assert (missing.status_code, badpath.status_code) in [(404, 422), (404, 404)]
    assert mute.json()["muted"] is True and unmute.json()["muted"] is False
    assert test.status_code == 200 and test.json()["delivered"] is True
    assert test.json()["status_code"] == 200 and test.json()["event_id"].startswith("test-")
    assert [r["event_id"] for r in rows] == ["inc-5:opened"]
    assert badstatus.status_code == 422
    assert (delete.status_code, again.status_code) == (204, 404)
    assert sorted(receiver.ids()) == sorted([test.json()["event_id"], "inc-5:opened"])


def test_cli_add_test_remove(settings, monkeypatch, httpserver, tmp_path: Path):
    """Rule: `channels add` refuses a hostile URL with exit 2 naming it, adds a good one,
    `channels test` delivers a test event (exit 0) and `channels remove` removes it; an
    unknown channel is exit 2."""
    receiver = Receiver()
    url = serve(httpserver, receiver)
    monkeypatch.setenv("MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("MONGODB_DATABASE", settings.mongodb_database)
    monkeypatch.setenv("UPTIME_NOTIFY_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    from uptime.cli import app as cli

    run = CliRunner().invoke
    try:
        bad = run(cli, ["channels", "add", "x", "gopher://127.0.0.1/"])
        add = run(cli, ["channels", "add", "rx", url, "--secret", SECRET])
        test = run(cli, ["channels", "test", "rx"])
        mute = run(cli, ["channels", "mute", "rx"])
        rm = run(cli, ["channels", "remove", "rx"])
        unknown = run(cli, ["channels", "test", "rx"])
    finally:
        get_settings.cache_clear()
    assert bad.exit_code == 2 and "gopher" in bad.output
    assert add.exit_code == 0 and "webhook" in add.output and SECRET not in add.output
    assert test.exit_code == 0, test.output
    assert mute.exit_code == 0 and rm.exit_code == 0
    assert unknown.exit_code == 2 and "no channel named rx" in unknown.output
    assert len(receiver.ids()) == 1 and receiver.ids()[0].startswith("test-")


def test_scrub_hides_credentials_in_error_texts():
    """Rule: an attempt's error never carries the URL's credentials: user, password, long path
    segments, query values and an Apprise token host become ***."""
    url = "https://bob:pw123456@93.184.215.14/hooks/ABCDEFGHIJKL?key=zzzz"
    text = ch.scrub(f"POST {url} failed; key zzzz, segment ABCDEFGHIJKL, pw123456, bob", url)
    assert not [s for s in ("pw123456", "ABCDEFGHIJKL", "zzzz", "bob") if s in text], text
    slack = "slack://TokenAAAAAAAA/TokenBBBBBBBB/TokenCCCCCCCC"
    text = ch.scrub("failed for TokenAAAAAAAA and TokenCCCCCCCC", slack)
    assert "TokenAAAAAAAA" not in text and "TokenCCCCCCCC" not in text
