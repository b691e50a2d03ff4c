"""Operations endpoints (issue 10, items 6a and 7): /metrics in the Prometheus text format and
/healthz with component checks."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from support.app import running_app
from support.reports import T0, insert_stores
from uptime.platform import metrics
from uptime.report import pipeline
from uptime.web.routes import ops


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_count_a_report_and_ingest(db, settings):
    """Rule: /metrics (Prometheus text format, parsed here by prometheus-client's own parser)
    counts one more complete report under the pipeline that produced it (the default choice:
    v2 on a current timeline, else v1; issue 14) with its 3 rows, observes its duration once,
    marks v2 as the default pipeline, and shows ingest counts recorded through
    metrics.record_ingest (the hook POST /polls and the importer call)."""
    await insert_stores(db, 3)
    default_tag = pipeline.pipeline_tag(pipeline.default_version())
    async with running_app(settings) as http:
        before = samples((await http.get("/metrics")).text)
        report_id = (await http.post("/trigger_report", params={"as_of": T0.isoformat()})
                     ).json()["report_id"]
        for _ in range(200):
            if (await http.get("/get_report", params={"report_id": report_id})
                    ).headers["content-type"].startswith("text/csv"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # the outcome is recorded right after the document
        metrics.record_ingest("store_status", "api", stored=5, already_present=2,
                              rejected=1)
        resp = await http.get("/metrics")
    after = samples(resp.text)
    assert resp.headers["content-type"].startswith("text/plain")
    tag = (await db.reports.find_one({"_id": report_id}))["pipeline"]
    assert tag in ("store_uptime@v1", "store_uptime@v2", "store_uptime@v3")

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("uptime_reports_total", pipeline=tag, outcome="complete") == 1
    assert delta("uptime_report_rows_total", pipeline=tag) == 3
    assert delta("uptime_report_duration_seconds_count", pipeline=tag, outcome="complete") == 1
    assert after[("uptime_report_last_rows", (("pipeline", tag),))] == 3
    assert after[("uptime_report_pipeline_info", (("pipeline", default_tag),))] == 1
    ingest = {"collection": "store_status", "source": "api"}
    assert delta("uptime_ingest_rows_total", **ingest, result="stored") == 5
    assert delta("uptime_ingest_rows_total", **ingest, result="already_present") == 2
    assert delta("uptime_ingest_rows_total", **ingest, result="rejected") == 1


async def test_metrics_need_the_token_healthz_does_not(settings):
    """Rule: with UPTIME_API_TOKEN set, /metrics is 401 without the bearer token and 200 with
    it; /healthz never needs it."""
    async with running_app(settings, api_token="tok") as http:
        assert (await http.get("/metrics")).status_code == 401
        ok = await http.get("/metrics", headers={"Authorization": "Bearer tok"})
        health = await http.get("/healthz")
    assert ok.status_code == 200 and "uptime_reports_total" in ok.text
    assert health.status_code == 200


async def test_healthz_names_an_unhealthy_component(settings):
    """Rule: a registered component check that fails (the follower: not running; another:
    raises) makes /healthz 503 naming each problem, while the database is fine."""

    class Stopped:
        alive = False
        state: dict = {}

    async def broken() -> str | None:
        raise RuntimeError("boom")

    async with running_app(settings) as http:
        ops.register_check(http.app, "follower", ops.follower_check(Stopped()))
        ops.register_check(http.app, "other", broken)
        resp = await http.get("/healthz")
    assert resp.status_code == 503
    assert resp.json() == {
        "detail": "unhealthy: follower, other", "status": "unavailable", "database": "ok",
        "follower": "not running", "other": "RuntimeError: boom",
    }


async def test_follower_check_stalled_and_alive():
    """Rule: the follower check is healthy while the follower's heartbeat is recent or it is
    rebuilding; stalled when the heartbeat is older than stall_s (plus the rebuild interval
    in fallback mode); "not running" when its task ended."""
    from datetime import UTC, datetime, timedelta

    class Follower:
        standalone_interval_s = 60.0

        def __init__(self, state):
            self.state = state
            self._task = asyncio.get_running_loop().create_future()

        @property
        def alive(self):  # as RunsFollower.alive
            return not self._task.done()

    now = datetime.now(UTC)
    fresh = Follower({"heartbeat": now, "mode": "change_stream", "pending": 0})
    old = Follower({"heartbeat": now - timedelta(seconds=45), "mode": "change_stream",
                    "pending": 0})
    old_fallback = Follower({"heartbeat": now - timedelta(seconds=45), "mode": "fallback",
                             "pending": 0})
    rebuilding = Follower({"heartbeat": now - timedelta(seconds=500), "pending": -1})
    ended = Follower({"heartbeat": now})
    ended._task.set_result(None)
    results = [await ops.follower_check(f, stall_s=30)() for f in
               (fresh, old, old_fallback, rebuilding, ended)]
    assert results[0] is None and results[2] is None and results[3] is None
    assert results[1].startswith("stalled: no progress for 45 s")
    assert results[4] == "not running"


async def test_metrics_count_pushed_polls(settings):
    """Rule: POST /polls adds its counts to uptime_ingest_rows_total{source="api"}: a request
    of 3 polls, one of them invalid, then the same 2 valid ones again → stored 2, already
    present 2, rejected 1."""
    polls = [{"store_id": "m1", "timestamp_utc": "2024-05-06T12:00:00Z", "status": "active"},
             {"store_id": "m2", "timestamp_utc": "2024-05-06T12:00:00Z", "status": "inactive"}]
    labels = {"collection": "store_status", "source": "api"}

    def value(text: str, result: str) -> float:
        key = ("uptime_ingest_rows_total", tuple(sorted({**labels, "result": result}.items())))
        return samples(text).get(key, 0.0)

    async with running_app(settings) as http:
        before = (await http.get("/metrics")).text
        first = await http.post("/polls", json=[*polls, {"store_id": "m3"}])
        again = await http.post("/polls", json=polls)
        after = (await http.get("/metrics")).text
    assert first.status_code == again.status_code == 200
    assert value(after, "stored") - value(before, "stored") == 2
    assert value(after, "already_present") - value(before, "already_present") == 2
    assert value(after, "rejected") - value(before, "rejected") == 1
