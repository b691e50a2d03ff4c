"""Issue 15: every request bounded and safe, against a real mongod (and a real uvicorn where a
client must really go away).

Rules checked: interval endpoints bound their work and their result (the chatty store: one
poll a minute, alternating, 100 days); a request's database work stops at its time limit and
when its client leaves; the runs of an interval read from the interval (not the store's whole
history) give the same runs; no 5xx for client input (year 1 / 9999 in any zone, NUL in a
prefix); any store id the API stores can be opened end to end, one maximum length everywhere;
security headers on every answer; a compressed /polls body is 415.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from support.app import poll_until_done, running_app
from support.hostile import HOSTILE_IDS, _poll
from uptime.ingest.validate import MAX_STORE_ID_LENGTH
from uptime.platform.migrations import ensure_current
from uptime.tools.bench.chatty import CHATTY_STORE, END, _lingering, _serving, insert_chatty
from uptime.web import runs as store_runs
from uptime.web.security import PAGE_CSP


@pytest.fixture
def no_follower(settings):
    """Runs derived from the polls (no runs follower): the path taken while the timeline lags."""
    settings.follow_runs = False


# -- the chatty store ----------------------------------------------------------------------
async def test_chatty_store_interval_is_bounded(db, settings, no_follower):
    """Rule (item 1): past UPTIME_INTERVAL_MAX_POLLS polls in [from, to) both interval
    endpoints answer 422 naming the longest interval ending at `to` that fits; that interval
    then answers with exact numbers (alternating every minute, open 24x7: 5,000 minutes =
    2,500 up + 2,500 down = 41.67 h each) and at most run_limit runs, saying it cut them."""
    await ensure_current(db, apply=True)
    assert await insert_chatty(db) == 144_001
    days92 = {"from": (END - timedelta(days=92)).isoformat(), "to": END.isoformat()}
    fits = (END - timedelta(minutes=5_000)).isoformat()
    async with running_app(settings) as http:
        for kind in ("uptime", "timeline"):
            r = await http.get(f"/stores/{CHATTY_STORE}/{kind}", params=days92)
            assert r.status_code == 422, r.text
            (error,) = r.json()["detail"]
            assert error["loc"] == ["query", "from"]
            assert "more than 5000 polls" in error["msg"] and error["msg"].endswith(
                f"from={fits}")
        up = await http.get(f"/stores/{CHATTY_STORE}/uptime",
                            params={"from": fits, "to": END.isoformat()})
        assert up.status_code == 200, up.text
        assert up.json()["uptime_hours"] == up.json()["downtime_hours"] == 41.67
        assert up.json()["uptime_seconds"] == up.json()["downtime_seconds"] == 2500 * 60
        tl = await http.get(f"/stores/{CHATTY_STORE}/timeline",
                            params={"from": fits, "to": END.isoformat()})
        assert tl.status_code == 200, tl.text
        body = tl.json()
    # a run per poll; the first holds [fits - 30 s, fits + 30 s), the last the poll at `to`
    # itself ([to - 30 s, to]): 5,001 runs overlap the window, which holds 5,000 polls
    assert body["runs_total"] == 5_001 and body["runs_truncated"] is True
    assert len(body["runs"]) == 2_000 and body["polls_total"] == 5_000
    first = body["runs"][0]
    assert first["polls"] == 1 and first["start"].startswith(fits[:19])
    # the first run is exact although only the interval's polls were read
    assert first["run_start"].startswith((END - timedelta(minutes=5_000, seconds=30))
                                         .isoformat()[:19])
    assert body["uptime_hours"] == 41.67


async def test_time_limit_and_gone_client_stop_the_server_work(db, settings, no_follower):
    """Rule (item 1): with the poll budget off, the chatty store's 30-day uptime (43,200 polls,
    ~15 s of work) is stopped in MongoDB at UPTIME_REQUEST_TIMEOUT_S (503 naming it), and a
    client that goes away after 1 s leaves no aggregation running for it (killSessions) —
    not when it is done. (Both at about 1 s: MongoDB checks for a kill between documents, and
    the pipeline's last steps work on one document per store that grows with the interval —
    measured, a 30-day one past its 10 s limit ran on for 78 s; the poll budget is what keeps
    such an interval from starting at all.)"""
    await ensure_current(db, apply=True)
    await insert_chatty(db)
    days92 = {"from": (END - timedelta(days=30)).isoformat(), "to": END.isoformat()}
    # 1 s: still in the pipeline's scan, where MongoDB checks for the limit between documents
    limited = settings.model_copy(update={"interval_max_polls": 10**9, "request_timeout_s": 1})
    figures: dict = {}
    async with _serving(limited, figures, "shutdown") as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            r = await http.get(f"/stores/{CHATTY_STORE}/uptime", params=days92)
        assert r.status_code == 503 and "UPTIME_REQUEST_TIMEOUT_S = 1 s" in r.json()["detail"]
        assert await _lingering(db, 10) < 10  # stopped by maxTimeMS, not run to its end
    patient = settings.model_copy(update={"interval_max_polls": 10**9, "request_timeout_s": 120})
    async with _serving(patient, figures, "shutdown") as base:
        async with httpx.AsyncClient(base_url=base, timeout=1) as http:
            with pytest.raises(httpx.TimeoutException):
                await http.get(f"/stores/{CHATTY_STORE}/uptime", params=days92)
        assert await _lingering(db, 10) < 10  # killed when the client left, not at 120 s
    assert figures["shutdown"] < 5


async def test_interval_runs_equal_whole_history(db, no_follower):
    """Rule: the runs overlapping [since, to) read from the interval on (status_runs: from the
    run holding `since`; derived live: from the last poll before `since`, the first run's
    first_poll/polls/start made exact) equal those cut from the store's whole history —
    with duplicate instants (inactive wins) and long runs of one status."""
    from uptime.timeline import rebuild_runs

    rng = random.Random(15)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    docs, t = [], base
    for _ in range(400):
        t += timedelta(minutes=rng.choice([1, 5, 30, 90]))
        status = "inactive" if rng.random() < (0.15 if len(docs) % 50 < 40 else 0.7) else "active"
        docs.append({"store_id": "s", "timestamp_utc": t, "status": status})
        if rng.random() < 0.05:  # a second poll at the same instant
            docs.append({"store_id": "s", "timestamp_utc": t,
                         "status": rng.choice(["active", "inactive"])})
    await db["store_status"].insert_many(docs)
    as_of = t - timedelta(minutes=7)
    end_ms = int(as_of.timestamp() * 1000)
    whole = await store_runs.store_runs(db, "s", as_of)
    await rebuild_runs(db)
    for k in range(25):
        since = base + (t - base) * rng.random()
        start_ms = int(since.timestamp() * 1000)
        expected = store_runs.clip_runs(whole, start_ms, end_ms)
        live = await store_runs.store_runs(db, "s", as_of, since=since)
        assert store_runs.clip_runs(live, start_ms, end_ms) == expected, since
        stored = await store_runs._stored_runs(db, "s", as_of, since)
        assert [{k: v for k, v in r.items() if k != "_id"} for r in
                store_runs.clip_runs(stored, start_ms, end_ms)] == \
            [{k: v for k, v in r.items() if k != "_id"} for r in expected], since


# -- client input never a 5xx --------------------------------------------------------------
@pytest.mark.parametrize("zone", ["America/Chicago", "Pacific/Kiritimati", "Etc/GMT+12"])
async def test_year_1_and_9999_in_any_zone(db, settings, no_follower, zone):
    """Rule (item 2): intervals touching year 1 or 9999 in zones from UTC-12 to UTC+14 answer
    200/404/422, never 5xx (a local time before year 1 is shown in UTC)."""
    await db["store_timezones"].insert_one({"store_id": "y1", "timezone_str": zone})
    async with running_app(settings) as http:
        r = await http.post("/polls", json=[
            _poll("y1", datetime(1, 1, 1, tzinfo=UTC), "active"),
            _poll("y1", datetime(1, 1, 2, 12, tzinfo=UTC), "inactive"),
            _poll("y1", datetime(9999, 12, 31, 23, tzinfo=UTC), "active")])
        assert r.json()["stored"] == 3, r.text
        for start, end in (("0001-01-01T00:00:00Z", "0001-01-08T00:00:00Z"),
                           (None, "0001-01-03T00:00:00Z"),
                           ("0001-01-01T00:00:00+14:00", "0001-01-05T00:00:00-12:00"),
                           ("9999-12-25T00:00:00Z", "9999-12-31T23:59:59.999Z"),
                           ("9999-12-31T00:00:00-12:00", None)):
            params = {k: v for k, v in (("from", start), ("to", end)) if v}
            for kind in ("uptime", "timeline"):
                resp = await http.get(f"/stores/y1/{kind}", params=params)
                assert resp.status_code in (200, 404, 422), (params, resp.text)
        r = await http.get("/stores/y1/timeline",
                           params={"from": "0001-01-01T00:00:00Z", "to": "0001-01-08T00:00:00Z"})
        assert r.status_code == 200, r.text
        assert r.json()["business_hours"][0]["start_local"].startswith("0001-01-01T00:00:00")


async def test_prefix_with_nul_is_422(db, settings):
    """Rule (item 2): a NUL (any control character) in the rows prefix is a 422 naming the
    parameter, not a 503 from MongoDB's regex."""
    async with running_app(settings) as http:
        r = await http.get("/reports/" + "A" * 32 + "/rows", params={"prefix": "\x00"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "prefix"]


# -- store ids -----------------------------------------------------------------------------
async def test_any_stored_id_opens_end_to_end(db, settings, no_follower):
    """Rule (item 4): every id POST /polls stores — with / ? # % spaces, non-Latin scripts,
    200 characters — opens: report row, store page, timeline, uptime. (" lead" is stored
    trimmed, as the import does.)"""
    t = datetime(2024, 3, 12, 15, tzinfo=UTC)
    async with running_app(settings) as http:
        polls = [_poll(s, t - timedelta(hours=h), "active" if h % 2 else "inactive")
                 for s in HOSTILE_IDS for h in range(3)]
        r = await http.post("/polls", json=polls)
        assert r.json()["stored"] == len(polls), r.text
        report_id = (await http.post("/trigger_report", params={"as_of": t.isoformat()})
                     ).json()["report_id"]
        await poll_until_done(http, report_id)
        for raw in HOSTILE_IDS:
            sid = raw.strip()
            enc = quote(sid, safe="")
            row = await http.get(f"/reports/{report_id}/rows/{enc}")
            assert row.status_code == 200 and row.json()["store_id"] == sid, (sid, row.text)
            for kind in ("uptime", "timeline"):
                r = await http.get(f"/stores/{enc}/{kind}")
                assert r.status_code == 200 and r.json()["store_id"] == sid, (sid, r.text)
            page = await http.get(f"/ui/stores/{enc}", params={"report": report_id})
            assert page.status_code == 200
            assert f'data-store-id="{sid}"'.replace("&", "&amp;") in page.text or \
                'data-store-id="' in page.text
            found = await http.get(f"/reports/{report_id}/rows",
                                   params={"prefix": sid[:5]})
            assert sid in [x["store_id"] for x in found.json()], sid


async def test_one_maximum_id_length_everywhere(db, settings, tmp_path):
    """Rule (item 4): an id of MAX_STORE_ID_LENGTH + 1 characters is refused with the same
    reason by POST /polls, the CSV import and the API's store paths."""
    from uptime.ingest.importer import import_file

    long_id = "L" * (MAX_STORE_ID_LENGTH + 1)
    reason = f"store_id is {MAX_STORE_ID_LENGTH + 1} characters long; at most " \
             f"{MAX_STORE_ID_LENGTH} are allowed"
    async with running_app(settings) as http:
        r = await http.post("/polls", json=[_poll(long_id, datetime(2024, 1, 1, tzinfo=UTC),
                                                  "active")])
        assert r.json()["rejected"] == 1 and reason in r.json()["rejects"][0]["reason"]
        for path in (f"/stores/{long_id}/uptime", f"/stores/{long_id}/timeline",
                     f"/reports/{'A' * 32}/rows/{long_id}"):
            resp = await http.get(path)
            assert resp.status_code == 422 and reason in resp.json()["detail"][0]["msg"], path
    csv_file = tmp_path / "status.csv"
    csv_file.write_text(f"store_id,status,timestamp_utc\n{long_id},active,2024-01-01 00:00:00 UTC\n")
    await ensure_current(db, apply=True)
    await import_file(db, "status", csv_file, rejects=tmp_path / "rej.csv")
    assert reason in (tmp_path / "rej.csv").read_text()


# -- headers, encodings --------------------------------------------------------------------
async def test_security_headers_on_every_answer(db, settings):
    """Rule (item 3): HTML pages carry the strict CSP (own scripts/styles only, frame-ancestors
    'none'); the API docs' one inline script is allowed by its hash only; every answer has
    nosniff, a Referrer-Policy and X-Frame-Options."""
    async with running_app(settings) as http:
        for path in ("/", "/ui/reports/" + "A" * 32, "/ui/stores/a%2Fb", "/ui/periods"):
            r = await http.get(path)
            assert r.status_code == 200 and r.headers["content-security-policy"] == PAGE_CSP
        docs = (await http.get("/docs")).headers["content-security-policy"]
        assert "'sha256-" in docs and "frame-ancestors 'none'" in docs
        assert "'unsafe-inline'" not in docs.split("script-src", 1)[1].split(";")[0]
        for path in ("/", "/reports", "/healthz", "/static/app.js", "/nope"):
            r = await http.get(path)
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["referrer-policy"] == "no-referrer"
            assert r.headers["x-frame-options"] == "DENY"
        assert "content-security-policy" not in (await http.get("/reports")).headers


async def test_compressed_polls_body_is_415(db, settings):
    """Rule (item 6): a gzip Content-Encoding is 415 naming it, not 400 "not valid UTF-8"."""
    import gzip

    async with running_app(settings) as http:
        r = await http.post("/polls", content=gzip.compress(b"[]"), headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 415 and "Content-Encoding 'gzip'" in r.json()["detail"]


async def test_busy_follower_keeps_its_heartbeat(db):
    """Rule (item 6): while the follower applies a batch (36k events can take longer than
    HEARTBEAT_STALE_S) its heartbeat goes on every idle_persist_s with the batch size as
    `pending`, so `runs status` reads it as running, not stopped."""
    from uptime.cli.runs import status_report
    from uptime.timeline.follower import STATE_COLLECTION, STATE_ID, RunsFollower

    old = datetime.now(UTC) - timedelta(minutes=5)
    await db[STATE_COLLECTION].insert_one({"_id": STATE_ID, "heartbeat": old, "pending": 0})
    assert (await status_report(db))["running"] is False
    follower = RunsFollower(db, idle_persist_s=0.1)
    beating = asyncio.create_task(follower._beat_while_busy(36_000))
    await asyncio.sleep(0.5)
    beating.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await beating
    doc = await db[STATE_COLLECTION].find_one({"_id": STATE_ID})
    assert doc["pending"] == 36_000 and doc["heartbeat"] > old + timedelta(minutes=4)
    assert (await status_report(db))["running"] is True


#: the README's list of paths open without the token (HTTP API), each with an example
OPEN_PATHS = ["/healthz", "/", "/ui/reports/" + "A" * 32, "/ui/stores/a%2Fb", "/ui/incidents",
              "/ui/periods", "/static/app.js",
              "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
              "/static-offline-docs/swagger-ui.css"]


async def test_exactly_the_listed_paths_are_open_without_the_token(db, settings):
    """Rule (item 6): with UPTIME_API_TOKEN set, the README's open paths answer without it,
    and every operation of the OpenAPI document but /healthz answers 401 without it."""
    guarded = settings.model_copy(update={"api_token": "s3cret"})
    async with running_app(guarded) as http:
        for path in OPEN_PATHS:
            r = await http.get(path)
            assert r.status_code == 200, (path, r.status_code)
        spec = (await http.get("/openapi.json")).json()
        for path, item in spec["paths"].items():
            concrete = path.replace("{report_id}", "A" * 32).replace("{store_id}", "s")
            for method in item:
                r = await http.request(method.upper(), concrete)
                expected = 200 if path == "/healthz" else 401
                assert r.status_code == expected or (path == "/healthz" and r.status_code == 503), \
                    (method, path, r.status_code)


async def test_report_attempt_has_a_time_limit(db, settings, no_follower):
    """Rule (item 1): a report attempt longer than UPTIME_REPORT_TIMEOUT_S ends Failed with a
    reason saying it hit the time limit (a 10 ms limit: the report's aggregation gets what is
    left of it as maxTimeMS, at least 1 ms),
    and the background generation does not inherit the trigger request's limit (a default
    limit still lets the same report complete)."""
    await ensure_current(db, apply=True)
    await insert_chatty(db, days=20)
    short = settings.model_copy(update={"report_timeout_s": 0.01})
    async with running_app(short) as http:
        rid = (await http.post("/trigger_report", params={"pipeline": "v1"})).json()["report_id"]
        done = (await poll_until_done(http, rid)).json()
    # MongoDB stops the aggregation at the limit (maxTimeMS), or the service names the limit
    assert done["status"] == "Failed" and ("time limit" in done["error"]
                                           or "UPTIME_REPORT_TIMEOUT_S" in done["error"]), done
    fast_requests = settings.model_copy(update={"request_timeout_s": 1.0})
    async with running_app(fast_requests) as http:
        rid = (await http.post("/trigger_report", params={"pipeline": "v1"})).json()["report_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            r = await http.get("/reports", params={"limit": 5})
            if r.status_code != 200:  # a 503 at this short limit under load: ask again
                await asyncio.sleep(0.2)
                continue
            status = next(x["status"] for x in r.json() if x["report_id"] == rid)
            if status != "Running":
                break
            await asyncio.sleep(0.2)
    assert status == "Complete"
