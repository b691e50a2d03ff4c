"""``GET /incidents``' ``order`` and counts (issue 17 item 5: the dashboard's incidents page
lists open incidents longest first and resolved ones latest first, paginated, and a report's
page shows how many there are), against a real mongod, on both run sources.

Five 24×7 stores (no hours rows), as of 12:00Z, min_minutes 0 — hand-computed stretches
(midpoint rule; a 24×7 store's business downtime is the whole stretch):

* s0: active 10:00, inactive 11:00 -> open from 10:30, 90 min;
* s1: active 08:00, inactive 09:00, active 10:00 -> [08:30, 09:30), 60 min;
* s2: active 08:00, inactive 09:00 and 10:00, active 11:00 -> [08:30, 10:30), 120 min;
* s3: active 06:00, inactive 07:00, active 07:20 -> [06:30, 07:10), 40 min;
* s4: active 11:00, inactive 11:40 -> open from 11:20, 40 min.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support.app import running_app
from support.pipeline import load, poll, utc
from uptime.incidents import query as Q
from uptime.ingest.schedules import rebuild_schedules
from uptime.report.pipeline import known_timezones
from uptime.timeline import rebuild_runs

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2024-05-06T12:00:00Z"
D = "2024-05-06T"
LONGEST = ["s2", "s0", "s1", "s3", "s4"]  # 120, 90, 60, 40, 40 (tie: store_id)
RECENT = ["s0", "s4", "s2", "s1", "s3"]   # open (= as_of, tie: store_id), 10:30, 09:30, 07:10


async def _stores(db) -> None:
    await load(db, [
        poll("s0", D + "10:00:00Z"), poll("s0", D + "11:00:00Z", "inactive"),
        poll("s1", D + "08:00:00Z"), poll("s1", D + "09:00:00Z", "inactive"), poll("s1", D + "10:00:00Z"),
        poll("s2", D + "08:00:00Z"), poll("s2", D + "09:00:00Z", "inactive"),
        poll("s2", D + "10:00:00Z", "inactive"), poll("s2", D + "11:00:00Z"),
        poll("s3", D + "06:00:00Z"), poll("s3", D + "07:00:00Z", "inactive"), poll("s3", D + "07:20:00Z"),
        poll("s4", D + "11:00:00Z"), poll("s4", D + "11:40:00Z", "inactive"),
    ])


def _ids(body: dict) -> list[str]:
    return [i["store_id"] for i in body["incidents"]]


@pytest.mark.parametrize("source", ["runs", "polls"])
async def test_orders_and_counts_in_the_query(db, source):
    """find_incident_page: the three orders give the hand-computed sequences on both run
    sources; the counts are the whole result's (5, 2 open) on every page, 0/0 when nothing
    matches, None past the end; find_incidents' rows carry no count fields."""
    await _stores(db)
    await rebuild_runs(db)
    await rebuild_schedules(db)
    tz = await known_timezones(db)
    page = lambda **kw: Q.find_incident_page(db, utc(AS_OF), 0, source=source,  # noqa: E731
                                              timezones=tz, **kw)
    rows, counts = await page(order="longest")
    assert [r["store_id"] for r in rows] == LONGEST
    assert [r["business_downtime_minutes"] for r in rows] == [120.0, 90.0, 60.0, 40.0, 40.0]
    assert counts == {"total": 5, "open_total": 2}
    rows, _ = await page(order="recent")
    assert [r["store_id"] for r in rows] == RECENT
    rows, _ = await page()
    assert [r["store_id"] for r in rows] == ["s0", "s1", "s2", "s3", "s4"]
    rows, counts = await page(order="longest", skip=1, limit=2)
    assert [r["store_id"] for r in rows] == ["s0", "s1"] and counts == {"total": 5, "open_total": 2}
    assert await page(order="longest", skip=5, limit=2) == ([], None)
    assert await Q.find_incident_page(db, utc(AS_OF), 500, source=source, timezones=tz) == (
        [], {"total": 0, "open_total": 0})
    plain = await Q.find_incidents(db, utc(AS_OF), 0, source=source, timezones=tz)
    assert all("total" not in r and "open_total" not in r for r in plain) and len(plain) == 5
    with pytest.raises(ValueError, match="order"):
        await page(order="shortest")


async def test_get_incidents_order_counts_and_pages(db, settings):
    """GET /incidents: order=longest with open=true (the page's open list), order=recent with
    open=false (its resolved list), pages with next_skip and the counts of the whole result,
    the counts of a week-like window (from/to: the report page's), total null past the end."""
    await _stores(db)
    async with running_app(settings, incident_min_minutes=0, follow_runs=False) as http:
        q = lambda **p: http.get("/incidents", params={"as_of": AS_OF, **p})  # noqa: E731
        body = (await q(open="true", order="longest")).json()
        assert _ids(body) == ["s0", "s4"] and body["order"] == "longest"
        assert (body["total"], body["open_total"]) == (2, 2)
        body = (await q(open="false", order="recent")).json()
        assert _ids(body) == ["s2", "s1", "s3"] and (body["total"], body["open_total"]) == (3, 0)
        assert [i["ended_at"][:19] for i in body["incidents"]] == [
            D + "10:30:00", D + "09:30:00", D + "07:10:00"]
        p1 = (await q(order="longest", limit="2")).json()
        assert _ids(p1) == ["s2", "s0"] and p1["next_skip"] == 2 and p1["total"] == 5
        p3 = (await q(order="longest", limit="2", skip="4")).json()
        assert _ids(p3) == ["s4"] and p3["next_skip"] is None and p3["open_total"] == 2
        past = (await q(limit="2", skip="10")).json()
        assert past["incidents"] == [] and past["total"] is None
        default = (await q()).json()
        assert default["order"] == "store" and _ids(default) == ["s0", "s1", "s2", "s3", "s4"]
        window = (await q(**{"from": D + "09:45:00Z", "to": AS_OF}, limit="1")).json()
        assert (window["total"], window["open_total"]) == (3, 2)  # s2 (ends 10:30), s0, s4
        bad = await q(order="shortest")
        assert bad.status_code == 422 and any("order" in d["loc"] for d in bad.json()["detail"])


async def test_mongosh_runner_orders_and_counts(db, mongo_uri, mongosh):
    """pipelines/incidents.mongosh.js passes ``order`` (longest / recent as above, each row
    carrying total and open_total) and refuses an unknown order."""
    await _stores(db)

    def run(eval_text: str) -> subprocess.CompletedProcess:
        eval_text = f'var asOf="{AS_OF}", minMinutes=0, {eval_text}; db = db.getSiblingDB("{db.name}"); undefined'
        return subprocess.run([mongosh, mongo_uri, "--quiet", "--eval", eval_text,
                               str(REPO / "pipelines/incidents.mongosh.js")],
                              capture_output=True, text=True, timeout=120)

    for order, want in (("longest", LONGEST), ("recent", RECENT)):
        out = run(f'order="{order}"')
        assert out.returncode == 0, out.stderr
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        assert [r["store_id"] for r in rows] == want
        assert {(r["total"], r["open_total"]) for r in rows} == {(5, 2)}
    bad = run('order="shortest"')
    assert bad.returncode != 0 and "order" in bad.stderr + bad.stdout
