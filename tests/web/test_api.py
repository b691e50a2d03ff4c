"""The HTTP API, exercised through its lifespan (asgi-lifespan) against a real mongod."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from support.app import poll_until_done, running_app
from support.reports import T0, expected_csv, insert_stores
from uptime.report import generation, pipeline, queue, storage
from uptime.platform.settings import Settings


async def test_trigger_then_csv_equals_pipeline_rows(db, settings):
    """POST /trigger_report answers 202 with an id at once; /get_report says Running, then
    returns the CSV as an attachment equal to the pipeline's rows (header, 2 decimals)."""
    await insert_stores(db, 40)
    async with running_app(settings) as http:
        resp = await http.post("/trigger_report")
        assert resp.status_code == 202
        report_id = resp.json()["report_id"]
        assert storage.is_report_id(report_id)
        first = await http.get("/get_report", params={"report_id": report_id})
        assert first.status_code == 200
        if first.headers["content-type"].startswith("application/json"):
            assert first.json()["status"] == "Running"
        done = await poll_until_done(http, report_id)
    assert done.headers["content-type"].startswith("text/csv")
    assert done.headers["content-disposition"] == f'attachment; filename="report-{report_id}.csv"'
    assert done.text == await expected_csv(db, T0)
    assert done.text.count("\n") == 41
    doc = await db.reports.find_one({"_id": report_id})
    assert doc["status"] == "Complete" and doc["rows"] == 40 and doc["progress"] == 1.0
    assert doc["as_of"] == T0 and doc["pipeline_requested"] == "default"
    assert doc["pipeline"] in ("store_uptime@v1", "store_uptime@v2", "store_uptime@v3") and doc["pipeline_reason"]
    assert doc["timezone_fallbacks"] == 0


async def test_as_of_in_query_or_body(db, settings):
    """as_of may come as a query parameter or in a JSON body; the report records it (UTC);
    a value that is not a date, or a body that is not JSON, is a 422 JSON error."""
    await insert_stores(db, 5)
    earlier = "2024-03-12T13:30:00+01:00"  # = 12:30Z
    async with running_app(settings) as http:
        r1 = await http.post("/trigger_report", params={"as_of": earlier})
        r2 = await http.post("/trigger_report", json={"as_of": "2024-03-12T12:30:00Z"})
        bad = await http.post("/trigger_report", params={"as_of": "yesterday"})
        broken = await http.post("/trigger_report", content=b'{"as_of": ',
                                 headers={"content-type": "application/json"})
        assert (r1.status_code, r2.status_code, bad.status_code) == (202, 202, 422)
        assert bad.headers["content-type"] == "application/json"
        # a body that is not JSON: a 422 saying so and where (character 10), not a bare
        # "JSON decode error"
        assert broken.status_code == 422
        (error,) = broken.json()["detail"]
        assert error["msg"] == ("the request body is not valid JSON: Expecting value at "
                                "character 10"), error
        # an unknown key (a misspelled as_of) is a 422 naming it, not a report for the
        # latest poll
        misspelled = await http.post("/trigger_report", json={"asof": "2024-03-12T12:30:00Z"})
        assert misspelled.status_code == 422
        assert [e["loc"] for e in misspelled.json()["detail"]] == [["body", "asof"]]
        a = await poll_until_done(http, r1.json()["report_id"])
        b = await poll_until_done(http, r2.json()["report_id"])
    assert a.text == b.text
    doc = await db.reports.find_one({"_id": r1.json()["report_id"]})
    assert doc["as_of"].isoformat() == "2024-03-12T12:30:00+00:00"


async def test_unknown_missing_malformed_ids(db, settings):
    """An unknown well-formed id is 404 JSON; a missing or malformed id is 422 JSON; none is
    ever a 500."""
    async with running_app(settings) as http:
        unknown = await http.get("/get_report", params={"report_id": "A" * 32})
        missing = await http.get("/get_report")
        for bad_id in ["short", "x" * 33, "../../etc/passwd" + "a" * 16, "é" * 32, ""]:
            resp = await http.get("/get_report", params={"report_id": bad_id})
            assert resp.status_code == 422, bad_id
            assert resp.headers["content-type"] == "application/json"
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": f"no report with id {'A' * 32}"}
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["query", "report_id"]


async def test_bearer_token(db, settings):
    """With UPTIME_API_TOKEN set, every endpoint but /healthz needs the bearer token: 401
    without it or with a wrong one, 2xx with it."""
    settings = settings.model_copy(update={"api_token": "s3cret"})
    await insert_stores(db, 2)
    async with running_app(settings) as http:
        health = (await http.get("/healthz")).json()
        # open without the token; "degraded" while the new follower's first rebuild runs
        assert health["database"] == "ok" and health["status"] in ("ok", "degraded")
        no = await http.post("/trigger_report")
        wrong = await http.get("/reports", headers={"Authorization": "Bearer nope"})
        assert no.status_code == wrong.status_code == 401
        assert no.headers["www-authenticate"] == "Bearer"
        assert (await http.get("/get_report", params={"report_id": "A" * 32})).status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        ok = await http.post("/trigger_report", headers=auth)
        assert ok.status_code == 202
        listed = await http.get("/reports", headers=auth)
        assert listed.status_code == 200
        assert [r["report_id"] for r in listed.json()] == [ok.json()["report_id"]]


async def test_reports_list(db, settings):
    """GET /reports lists recent reports newest first with status, as_of, pipeline and rows."""
    await insert_stores(db, 3)
    async with running_app(settings) as http:
        ids = [
            (await http.post("/trigger_report", params={"as_of": f"2024-03-12T1{h}:00:00Z"}))
            .json()["report_id"]
            for h in (5, 6, 7)
        ]
        for rid in ids:
            await poll_until_done(http, rid)
        listed = (await http.get("/reports", params={"limit": 2})).json()
    assert len(listed) == 2
    assert {r["report_id"] for r in listed} <= set(ids)
    assert all(r["status"] == "Complete" and r["rows"] == 3 for r in listed)
    # the default choice (issue 14): v2 on a current timeline, else v1; each says why
    assert all(r["pipeline"] in ("store_uptime@v1", "store_uptime@v2", "store_uptime@v3") and r["pipeline_reason"]
               for r in listed)
    created = [datetime.fromisoformat(r["created_at"]) for r in listed]
    assert created[0] >= created[1]


async def test_database_down_is_503(settings):
    """When MongoDB stops answering, /healthz and the report endpoints answer 503 JSON with a
    clear message, not a stack trace — within UPTIME_DB_TIMEOUT_S, not the request's 10 s
    limit (/get_report sets its own limits and must follow the same outage rule)."""
    from pymongo import AsyncMongoClient

    dead = AsyncMongoClient("mongodb://127.0.0.1:9", serverSelectionTimeoutMS=300)
    # each request waits UPTIME_DB_TIMEOUT_S for a server (default 3 s): 0.5 s keeps it short
    async with running_app(settings.model_copy(update={"db_timeout_s": 0.5})) as http:
        http.app.state.db = dead["x"]  # as if the server went away
        health = await http.get("/healthz")
        listed = await http.get("/reports")
        started = time.monotonic()
        got = await http.get("/get_report", params={"report_id": "A" * 32})
        get_report_s = time.monotonic() - started
    await dead.close()
    assert get_report_s < 5, get_report_s  # UPTIME_DB_TIMEOUT_S 0.5 s; the request limit is 10 s
    for resp in (health, listed, got):
        assert resp.status_code == 503, resp.text
        assert resp.json()["detail"] == "the database is unavailable; try again shortly"
    assert health.json()["status"] == "unavailable"
    assert health.json()["database"].startswith("unavailable: ServerSelectionTimeoutError")


@pytest.mark.parametrize("n_triggers", [20])
async def test_concurrent_triggers_identical_and_limited(db, settings, monkeypatch, n_triggers):
    """20 concurrent triggers all complete with byte-identical CSVs, and at most
    UPTIME_MAX_CONCURRENT_REPORTS (2) generate at the same time. (Admission is switched off
    here: it would hand the later identical triggers the first report's id.)"""
    await insert_stores(db, 30)

    async def admit_all(*_args, **_kwargs):
        return None

    monkeypatch.setattr(queue, "admit", admit_all)
    running = peak = 0
    original_run = generation.Generation.run

    async def tracked_run(self, as_of):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.02)  # make overlapping generations likely
            await original_run(self, as_of)
        finally:
            running -= 1

    monkeypatch.setattr(generation.Generation, "run", tracked_run)
    assert settings.max_concurrent_reports == 2
    async with running_app(settings) as http:
        posted = await asyncio.gather(*(http.post("/trigger_report") for _ in range(n_triggers)))
        ids = [r.json()["report_id"] for r in posted]
        assert len(set(ids)) == n_triggers
        waiting = [
            (await http.get("/get_report", params={"report_id": rid})).json() for rid in ids[-5:]
        ]
        done = await asyncio.gather(*(poll_until_done(http, rid, timeout=120) for rid in ids))
    assert any(w.get("status") == "Running" and w["progress"] == 0.0 for w in waiting)
    bodies = {resp.content for resp in done}
    assert len(bodies) == 1
    assert bodies.pop().decode() == await expected_csv(db, T0)
    assert peak == 2


async def test_openapi_documents_the_endpoints(settings):
    """/openapi.json (behind /docs) builds and lists the four endpoints."""
    async with running_app(settings) as http:
        schema = (await http.get("/openapi.json")).json()
        docs = await http.get("/docs")
    assert {"/trigger_report", "/get_report", "/reports", "/healthz"} <= set(schema["paths"])
    assert docs.status_code == 200


async def test_docs_page_needs_no_cdn(settings):
    """/docs works offline: the Swagger UI page loads its script from this service, not a CDN."""
    async with running_app(settings) as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        scripts = [line.split('src="')[1].split('"')[0] for line in page.text.splitlines()
                   if "<script src=" in line]
        assert scripts and all(src.startswith("/") for src in scripts)
        for src in scripts:
            asset = await http.get(src)
            assert asset.status_code == 200 and len(asset.content) > 1000


async def test_bad_input_gets_a_short_422(settings):
    """A client's mistake is a 422 naming the field, never a 500; a huge bad value is not
    echoed back whole; a JSON number is not taken as an as_of (it would mean 1970)."""
    async with running_app(settings) as http:
        huge = await http.get("/get_report", params={"report_id": "x" * 20_000})
        assert huge.status_code == 422 and len(huge.content) < 2_000
        number = await http.post("/trigger_report", json={"as_of": 12})
        assert number.status_code == 422 and "ISO 8601" in number.text
        text = await http.post("/trigger_report", json={"as_of": "yesterday"})
        assert text.status_code == 422 and "as_of" in text.text
        far = await http.post("/trigger_report", params={"as_of": "0001-01-01T00:00:00+05:00"})
        assert far.status_code == 422 and "out of range" in far.text
        # a week reaching before year 1 (as_of before 0001-01-08): a 422, not a failed report
        for where in ("params", "json"):
            early = await http.post("/trigger_report", **{where: {"as_of": "0001-01-07T23:59:59Z"}})
            assert early.status_code == 422 and "too early" in early.text, early.text
            assert early.json()["detail"][0]["loc"][0] == ("query" if where == "params" else "body")
