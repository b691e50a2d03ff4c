"""The default report works on every MongoDB a user brings and never waits on the timeline
(issue 14): on a standalone server and on a replica set (``server_kind``), the default report
of the CLI and of the API completes, is byte-identical to ``--pipeline v1`` at the same
``as_of``, and records (and shows) the pipeline that produced it; a lagging or crashed
follower makes the report take v1 at once instead of waiting or failing."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.reports import T0, insert_stores
from support.app import poll_until_done, running_app
from support.public import sample_rows
from uptime.cli import app
from uptime.platform.settings import get_settings
from uptime.report import pipeline, storage
from uptime.report.service import ReportService
from uptime.timeline import RunsFollower, timeline_freshness, wait_current


@pytest.fixture
def cli_env(monkeypatch, any_uri, db_name):
    """The CLI pointed at the ``server_kind`` server and this test's database."""
    monkeypatch.setenv("MONGODB_URI", any_uri)
    monkeypatch.setenv("MONGODB_DATABASE", db_name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_cli_default_report_equals_v1(any_db, cli_env, server_kind, tmp_path: Path):
    """Issue 14 items 1 and 5: ``report`` with no ``--pipeline`` exits 0 on both kinds of
    server, its CSV is byte-identical to ``--pipeline v1`` at the same as_of, and the output
    names the pipeline that ran: v1 on a standalone (no change streams, so the timeline cannot
    be known current) with the reason. On today's main the standalone case exits 1
    (TimelineNotCurrentError)."""
    await insert_stores(any_db, 30)
    runner = CliRunner()
    started = time.monotonic()
    default = await asyncio.to_thread(
        runner.invoke, app, ["report", "--output", str(tmp_path / "d.csv")])
    took = time.monotonic() - started
    assert default.exit_code == 0, default.output
    v1 = await asyncio.to_thread(
        runner.invoke, app, ["report", "--pipeline", "v1", "--as-of", T0.isoformat(),
                             "--output", str(tmp_path / "v1.csv")])
    assert v1.exit_code == 0, v1.output
    assert (tmp_path / "d.csv").read_bytes() == (tmp_path / "v1.csv").read_bytes()
    assert (tmp_path / "d.csv").read_text().count("\n") == 31
    doc = await any_db.reports.find_one({"pipeline_requested": "default"})
    assert doc["status"] == "Complete" and doc["as_of"] == T0
    assert f"pipeline: {doc['pipeline']}" in default.output
    if server_kind == "standalone":
        assert doc["pipeline"] == "store_uptime@v1"
        assert doc["pipeline_reason"].startswith("timeline standalone")
        assert "standalone" in default.output
    assert took < 30, f"default report took {took:.1f} s"


async def test_api_default_report_equals_v1_and_shows_pipeline(any_db, any_settings,
                                                               server_kind):
    """Issue 14 items 1, 4 and 5: through ``uptime-monitor serve``'s app (follower inside), a default
    ``POST /trigger_report`` completes on both kinds of server with the CSV of
    ``?pipeline=v1``; ``/get_report`` names the pipeline (status JSON while Running, the
    ``X-Report-Pipeline`` header of the CSV) and ``/reports`` lists it. On a replica set
    whose follower is current the default runs v2; on a standalone it runs v1, and
    ``/healthz`` says ``degraded`` (200) with mode fallback, its reason and the last
    rebuild's age, and ``/metrics`` ``uptime_timeline_degraded 1``."""
    await insert_stores(any_db, 25)
    async with running_app(any_settings) as http:
        if server_kind == "replset":  # the app's follower: first start (a rebuild), then live
            deadline = time.monotonic() + 30
            while not await wait_current(any_db, 1.0):
                assert time.monotonic() < deadline, "the app's follower never became current"
                await asyncio.sleep(0.1)
        default_id = (await http.post("/trigger_report")).json()["report_id"]
        status = await http.get("/get_report", params={"report_id": default_id})
        if status.headers["content-type"].startswith("application/json"):
            assert status.json()["pipeline"].startswith("store_uptime@v")
            assert status.json()["pipeline_requested"] == "default"
        done = await poll_until_done(http, default_id)
        v1_id = (await http.post("/trigger_report", params={
            "pipeline": "v1", "as_of": T0.isoformat()})).json()["report_id"]
        v1 = await poll_until_done(http, v1_id)
        listed = {r["report_id"]: r for r in (await http.get("/reports")).json()}
        health = await http.get("/healthz")
        scraped = (await http.get("/metrics")).text
    assert done.headers["content-type"].startswith("text/csv"), done.text
    assert done.text == v1.text and done.text.count("\n") == 26
    expected = "store_uptime@v1" if server_kind == "standalone" else "store_uptime@v2"
    assert done.headers["x-report-pipeline"] == expected
    assert listed[default_id]["pipeline"] == expected
    assert listed[v1_id]["pipeline"] == "store_uptime@v1"
    assert health.status_code == 200, health.text
    body = health.json()
    if server_kind == "standalone":
        assert body["status"] == "degraded"
        assert body["timeline"]["mode"] == "fallback"
        assert "standalone" in body["timeline"]["reason"]
        assert body["follower"].startswith("degraded: mode fallback")
        assert listed[default_id]["pipeline_reason"].startswith("timeline standalone")
        assert "\nuptime_timeline_degraded 1.0\n" in scraped
        assert re.search(r"\nuptime_timeline_last_rebuild_age_seconds \d", scraped)
    else:
        assert body["status"] == "ok" and body["timeline"]["mode"] == "change_stream"
        assert "\nuptime_timeline_degraded 0.0\n" in scraped


async def test_lagging_follower_gives_v1_at_once(db, settings):
    """Issue 14 item 2: a follower that has not applied the latest writes (here a real one
    holding its batch open for 30 s) never makes a report wait for it: the default report
    runs v1 within about the wait budget (far below the 30 s), equal to v1."""
    await insert_stores(db, 10)
    follower = RunsFollower(db, batch_wait_s=30.0)
    await follower.start()
    try:
        assert await wait_current(db, 30.0)
        await db.store_status.insert_one(
            {"store_id": "s000000", "timestamp_utc": T0 + timedelta(minutes=30),
             "status": "inactive"})
        fresh = await timeline_freshness(db, 0.3)
        assert not fresh.current and fresh.state == "lagging" and fresh.waited_s < 1.0
        service = ReportService(db, settings)
        await service.start(recover=False)
        try:
            started = time.monotonic()
            rid = await service.trigger()
            doc = await service.wait(rid)
            took = time.monotonic() - started
        finally:
            await service.stop()
    finally:
        await follower.stop()
    assert doc["status"] == "Complete" and doc["pipeline"] == "store_uptime@v1"
    assert doc["pipeline_reason"].startswith("timeline lagging")
    assert took < 10, f"the report waited {took:.1f} s"
    v1 = [r async for r in pipeline.iter_report_rows(db, as_of=doc["as_of"], version="v1")]
    assert doc["rows"] == len(v1) == 10


async def test_crashed_follower_gives_v1_at_once(db, settings):
    """Issue 14 item 2: a follower of this process whose task ended (crashed) is never waited
    for: freshness says ``stopped`` at once and the default report runs v1."""
    await insert_stores(db, 8)
    follower = RunsFollower(db)
    await follower.start()
    try:
        assert await wait_current(db, 30.0)
        follower._task.cancel()  # the task ends as a crash would; it stays registered
        await asyncio.sleep(0.05)
        fresh = await timeline_freshness(db, 5.0)
        assert fresh.state == "stopped" and fresh.waited_s < 1.0
        version, reason = await pipeline.choose_version(db)
        assert version == "v1" and reason.startswith("timeline stopped")
    finally:
        await follower.stop()


async def test_runs_status_on_standalone_says_degraded(cli_env, any_db, server_kind):
    """Issue 14 item 4: on a standalone server ``runs status`` shows mode ``fallback`` with
    its reason, says the timeline is DEGRADED with the last rebuild's age, and that reports
    run pipeline v1; on the replica set, a live follower is shown as live."""
    await insert_stores(any_db, 3)
    follower = RunsFollower(any_db)
    await follower.start()
    try:
        deadline = time.monotonic() + 30
        while not (follower.state.get("last_rebuild") and follower.state.get("pending") == 0
                   and (server_kind == "standalone" or follower.state.get("mode") == "change_stream")):
            assert time.monotonic() < deadline, follower.state
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.1)  # one idle persist: the heartbeat of a live follower
        result = await asyncio.to_thread(CliRunner().invoke, app, ["runs", "status"])
    finally:
        await follower.stop()
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps at the terminal width
    if server_kind == "standalone":
        assert "mode: fallback — standalone server" in text
        assert re.search(r"timeline: DEGRADED — not kept live \(last rebuild \d+ s ago\); "
                         r"reports run pipeline v1", text), text
    else:
        assert "timeline: live" in text, text


def test_console_script_is_uptime_monitor() -> None:
    """Issue 14 item 7: the console script is ``uptime-monitor`` (``uptime`` is the procps
    command on every Linux machine: no script of that name), and ``python -m uptime`` runs
    the same command line under that name."""
    import subprocess
    import sys
    import tomllib

    REPO_ROOT = Path(__file__).resolve().parents[2]

    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"uptime-monitor": "uptime.cli:main"}
    out = subprocess.run([sys.executable, "-m", "uptime", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "Usage: uptime-monitor " in out.stdout, out.stdout + out.stderr


async def _current_follower(db, server_kind: str) -> RunsFollower | None:
    """On the replica set, a follower of this process made current (so the default path
    takes v2); on a standalone none (the default path takes v1)."""
    if server_kind == "standalone":
        return None
    follower = RunsFollower(db)
    await follower.start()
    assert await wait_current(db, 30.0)
    return follower


# loop_v2_2024 only: the v1_2023 sample (5,000 stores) takes ~30 s per server kind here; the
# replica-set v1 == v2 check on both samples is test_report_v2.test_v2_csv_equals_v1_on_public_files
@pytest.mark.parametrize("folder,status", [("loop_v2_2024", "store_status_sample.csv")])
async def test_default_report_on_public_files(any_db, server_kind, public_data, tmp_path,
                                              folder, status):
    """Issue 14 item 5 on the public Loop files: imported with the importer, the default
    report of the report service is byte-identical to v1's on both kinds of server, and is
    produced by v2 on a replica set whose follower is current, by v1 on a standalone."""
    import io

    from support.pipeline import load
    from uptime.ingest.importer import import_files
    from uptime.platform.settings import Settings

    await load(any_db)  # the indexes
    src = public_data / folder
    # the hours and zones rows of the stores the poll sample has (the full files take ~20 s
    # to import on 2 shared cores; the report only reads these stores' rows anyway)
    hours, zones = sample_rows(src, status, tmp_path)
    await import_files(any_db, status=src / status, hours=hours, timezones=zones,
                       rejects=tmp_path / "rejects/")
    assert await any_db.store_hours.count_documents({}) > 100
    follower = await _current_follower(any_db, server_kind)
    try:
        service = ReportService(any_db, Settings(lease_seconds=30), owner="t")
        await service.start(background=False, recover=False)
        files, docs = {}, {}
        for version in (None, "v1"):
            as_of = None if version is None else docs[None]["as_of"]
            doc = await service.wait(await service.trigger(as_of, version))
            assert doc["status"] == "Complete", doc
            buf = io.BytesIO()
            await storage.write_csv(any_db, doc["file_id"], buf)
            files[version], docs[version] = buf.getvalue(), doc
        await service.stop()
    finally:
        if follower is not None:
            await follower.stop()
    assert files[None] == files["v1"] and files["v1"].count(b"\n") > 100
    expected = "store_uptime@v1" if server_kind == "standalone" else "store_uptime@v2"
    assert docs[None]["pipeline"] == expected, docs[None]["pipeline_reason"]


async def test_default_rows_match_reference_model(any_db, server_kind):
    """Issue 14 item 5, oracle-style: ``iter_report_rows`` on its default path (no version:
    v2 on a current timeline, else v1) gives the reference model's rows for random
    edge-case stores around New York's spring-forward, on both kinds of server."""
    from support import reference_model
    from support.pipeline import load, utc
    from test_pipeline_differential import DST_AS_OF, _dataset
    from uptime.report.pipeline import choose_version, known_timezones

    as_of = utc(DST_AS_OF[0])
    polls, hours, zones = _dataset(1000, as_of)
    await load(any_db, polls, hours, zones)
    expected = reference_model.report(polls, hours, zones, as_of,
                                      set(await known_timezones(any_db)))
    follower = await _current_follower(any_db, server_kind)
    try:
        version, _reason = await choose_version(any_db)
        rows = {r["store_id"]: r async for r in pipeline.iter_report_rows(any_db, as_of=as_of)}
    finally:
        if follower is not None:
            await follower.stop()
    assert version == ("v1" if server_kind == "standalone" else "v2")
    assert rows == {sid: m.row(sid) for sid, m in expected.items()}
