"""The period page's API (issue 18, item 6) against a real mongod, on hand-built stores
(``support.period_page_data``: the numbers below are computed there by hand)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from support.app import poll_until_done, running_app
from support.period_page_data import (FORMULA_STORE, NY_AS_OF, T, insert_march_stores,
                                      insert_ny_store)
from uptime.platform.migrations import ensure_current
from uptime.platform.settings import Settings
from uptime.report import period_view
from uptime.timeline.retention import compact_polls
from uptime.timeline.runs import rebuild_runs

TOKEN = "s3cret-token"


async def _view(http, report_id: str, **params) -> dict:
    """GET /periods/reports/{id} until it is not Running."""
    for _ in range(1200):
        r = await http.get(f"/periods/reports/{report_id}", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] != "Running":
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("period report still Running")


def test_target_setting_default_and_range(monkeypatch):
    """UPTIME_UPTIME_TARGET_PERCENT: default 99.0, read from the environment, 0..100 only."""
    assert Settings().uptime_target_percent == 99.0
    monkeypatch.setenv("UPTIME_UPTIME_TARGET_PERCENT", "99.5")
    assert Settings().uptime_target_percent == 99.5
    for bad in ("-1", "100.5", "abc"):
        monkeypatch.setenv("UPTIME_UPTIME_TARGET_PERCENT", bad)
        with pytest.raises(ValueError, match="uptime_target_percent"):
            Settings()


def test_summary_of_a_csv_by_hand():
    """Chain % = Σ uptime hours / Σ business hours of the CSV (empty-percent stores add 0);
    below target is strictly below, worst first (ties: more downtime first, then id); a
    store without business time is never below; the ' protecting a formula is removed."""
    text = ("store_id,period_start,period_end,uptime_hours,downtime_hours,uptime_percent\n"
            "a,s,e,9.00,1.00,90.00\n"
            "b,s,e,18.00,2.00,90.00\n"
            "'=c,s,e,0.00,0.00,\n"
            "d,s,e,99.00,0.00,100.00\n"
            "e,s,e,97.01,2.99,97.01\n")
    rows = period_view.parse_csv(text)
    assert [r.store_id for r in rows] == ["a", "b", "=c", "d", "e"]
    out = period_view.summarize(rows, 97.01, limit=10)
    # up 9 + 18 + 99 + 97.01 = 223.01; business 10 + 20 + 99 + 100 = 229 -> 97.3843 %
    assert out["chain_uptime_percent"] == 97.38
    assert (out["uptime_hours"], out["downtime_hours"], out["business_hours"]) == (223.01, 5.99, 229.0)
    assert out["stores"] == 5 and out["no_business_hours"] == 1
    assert out["below_target"] == 2
    assert [r["store_id"] for r in out["below_target_stores"]] == ["b", "a"]  # e is not < 97.01
    assert period_view.summarize(rows, 100, limit=1)["below_target"] == 3
    assert [r["store_id"] for r in period_view.summarize(rows, 100, 1)["below_target_stores"]] == ["b"]
    empty = period_view.summarize(period_view.parse_csv(text.splitlines(True)[0]), 99, 10)
    assert empty["chain_uptime_percent"] is None and empty["below_target"] == 0
    with pytest.raises(ValueError, match="not a period report"):
        period_view.parse_csv("store_id,uptime_last_hour\n")


def test_month_candidates_near_a_month_boundary():
    """The months that may hold a store's local month of as_of: 03-20 is March in every zone
    (3 months asked, 3 candidates); 03-01 02:00Z is February in New York, March in UTC (one
    more candidate)."""
    labels = lambda c: [p.label for p in c]  # noqa: E731
    assert labels(period_view.month_candidates(T, 3)) == ["2024-01", "2024-02", "2024-03"]
    assert labels(period_view.month_candidates(datetime(2024, 3, 1, 2, tzinfo=UTC), 1)) == [
        "2024-02", "2024-03"]
    assert labels(period_view.month_candidates(datetime(1, 1, 5, tzinfo=UTC), 3)) == ["0001-01"]


async def test_period_page_numbers_by_hand_and_reuse(db, settings):
    """POST /periods/reports?period=2024-03&as_of=T triggers (202), the view gives the chain %
    (1,812 of 1,824 h = 99.34), the count and list below the default target 99 (c-worse,
    97.81) and below 99.9 (c-worse, b-bad: worst first), the CSV link; the same request again
    reuses the Complete report (200, same id); another as_of makes a new one; once its CSV
    is removed the view answers 410 and the page's request triggers a new report."""
    await insert_march_stores(db)
    async with running_app(settings) as http:
        r = await http.post("/periods/reports", params={"period": "2024-03",
                                                         "as_of": "2024-03-20T00:00:00Z"})
        assert r.status_code == 202, r.text
        first = r.json()
        assert first["reused"] is False and first["as_of"].startswith("2024-03-20T00:00:00")
        view = await _view(http, first["report_id"])
        csv_text = (await http.get(view["csv_url"])).text
        again = await http.post("/periods/reports", params={"period": "2024-03",
                                                             "as_of": "2024-03-20T00:00Z"})
        strict = await _view(http, first["report_id"], target=99.9, limit=1)
        other = await http.post("/periods/reports", params={"period": "2024-03",
                                                             "as_of": "2024-03-19T00:00Z"})
        default_as_of = await http.post("/periods/reports", params={"period": "2024-03"})
        # retention removed the CSV: the view says so (not a stale copy), no reuse
        doc = await db.reports.find_one({"_id": first["report_id"]})
        await db["reports.files"].delete_one({"_id": doc["file_id"]})
        removed = await http.get(f"/periods/reports/{first['report_id']}")
        after_removal = await http.post("/periods/reports", params={"period": "2024-03",
                                                                     "as_of": "2024-03-20T00:00Z"})
    assert view["status"] == "Complete" and view["period"]["label"] == "2024-03"
    s = view["summary"]
    assert s["stores"] == 4 and s["no_business_hours"] == 0
    assert (s["uptime_hours"], s["downtime_hours"], s["business_hours"]) == (1812.0, 12.0, 1824.0)
    assert s["chain_uptime_percent"] == 99.34 and s["target_percent"] == 99.0
    assert s["below_target"] == 1
    assert s["below_target_stores"] == [{
        "store_id": "c-worse", "period_start": "2024-03-01T00:00:00.000Z",
        "period_end": "2024-04-01T00:00:00.000Z", "uptime_hours": 446.0,
        "downtime_hours": 10.0, "uptime_percent": 97.81}]
    assert strict["summary"]["below_target"] == 2 and strict["summary"]["target_percent"] == 99.9
    assert [x["store_id"] for x in strict["summary"]["below_target_stores"]] == ["c-worse"]
    assert csv_text.splitlines()[0].startswith("store_id,period_start")
    assert "'" + FORMULA_STORE in csv_text
    assert again.status_code == 200 and again.json() == {**first, "reused": True}
    assert other.status_code == 202 and other.json()["report_id"] != first["report_id"]
    # the default as_of is the latest poll, T itself: the same report
    assert default_as_of.status_code == 200 and default_as_of.json()["report_id"] == first["report_id"]
    assert removed.status_code == 410 and "was removed" in removed.json()["detail"]
    assert after_removal.status_code == 202 and after_removal.json()["report_id"] != first["report_id"]


async def test_store_monthly_by_hand(any_settings, server_kind):
    """GET /stores/ny/monthly (New York, local months): February 670.5 of 696 h = 96.34 %,
    March 743 h (DST) all up, April up to as_of 224 h (partial); 12 months reach back to
    2023-05 (before the first poll its status holds, rule 2). as_of 03-01 02:00Z is still
    February in New York: one month, 667.5 of 693 h = 96.32 %, partial. Same on a standalone
    server (runs derived from the store's polls) as on the replica set."""
    async with running_app(any_settings) as http:
        db = http.app.state.db
        await insert_ny_store(db)
        r = await http.get("/stores/ny/monthly", params={"months": 3})
        twelve = await http.get("/stores/ny/monthly")
        edge = await http.get("/stores/ny/monthly", params={"months": 1,
                                                            "as_of": "2024-03-01T02:00:00Z"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["as_of"].startswith(NY_AS_OF.isoformat()[:19])
    if server_kind == "standalone":
        assert body["runs_source"] == "on_the_fly"
    got = [(m["month"], m["period_start"][:19], m["period_end"][:19], m["uptime_hours"],
            m["downtime_hours"], m["business_hours"], m["uptime_percent"], m["partial"])
           for m in body["months"]]
    assert got == [
        ("2024-02", "2024-02-01T05:00:00", "2024-03-01T05:00:00", 670.5, 25.5, 696.0, 96.34, False),
        ("2024-03", "2024-03-01T05:00:00", "2024-04-01T04:00:00", 743.0, 0.0, 743.0, 100.0, False),
        ("2024-04", "2024-04-01T04:00:00", "2024-05-01T04:00:00", 224.0, 0.0, 224.0, 100.0, True)]
    months = [m["month"] for m in twelve.json()["months"]]
    assert len(months) == 12 and months[0] == "2023-05" and months[-1] == "2024-04"
    [feb] = edge.json()["months"]
    assert (feb["month"], feb["business_hours"], feb["downtime_hours"], feb["uptime_percent"],
            feb["partial"]) == ("2024-02", 693.0, 25.5, 96.32, True)


async def test_bad_input_is_a_clear_4xx(db, settings):
    """422 naming the parameter for a bad period, no period, a bad as_of, months outside
    1..36, a target outside 0..100; 404 for an unknown report or a store without polls;
    409 for a report that is not a period report."""
    await insert_march_stores(db)
    async with running_app(settings) as http:
        cases = [
            (await http.post("/periods/reports", params={"period": "2024-13"}), "period"),
            (await http.post("/periods/reports"), "period"),
            (await http.post("/periods/reports", params={"period": "2024-03", "from": "2024-03-01"}), "period"),
            (await http.post("/periods/reports", params={"period": "2024-03", "as_of": "12"}), "as_of"),
            (await http.get("/stores/a-good/monthly", params={"months": 0}), "months"),
            (await http.get("/stores/a-good/monthly", params={"months": 37}), "months"),
            (await http.get("/stores/a-good/monthly", params={"months": "x"}), "months"),
            (await http.get("/stores/a-good/monthly", params={"as_of": "yesterday"}), "as_of"),
            (await http.get("/periods/reports/" + "A" * 32, params={"target": 101}), "target"),
            (await http.get("/periods/reports/short"), "report_id"),
        ]
        missing_report = await http.get("/periods/reports/" + "A" * 32)
        missing_store = await http.get("/stores/nobody/monthly")
        before_polls = await http.get("/stores/a-good/monthly", params={"as_of": "2024-01-01"})
        normal = (await http.post("/trigger_report", params={"as_of": T.isoformat()})).json()
        await poll_until_done(http, normal["report_id"])
        not_period = await http.get(f"/periods/reports/{normal['report_id']}")
        slash = await http.get(f"/stores/{quote(FORMULA_STORE, safe='')}/monthly",
                               params={"months": 1, "as_of": T.isoformat()})
    for resp, name in cases:
        assert resp.status_code == 422, (name, resp.text)
        assert name in [str(x) for e in resp.json()["detail"] for x in e["loc"]], resp.text
    assert missing_report.status_code == 404 and missing_store.status_code == 404
    assert before_polls.status_code == 404 and "no valid poll" in before_polls.json()["detail"]
    assert not_period.status_code == 409 and "not a period report" in not_period.json()["detail"]
    assert slash.status_code == 200 and slash.json()["store_id"] == FORMULA_STORE
    assert slash.json()["months"][0]["uptime_hours"] == 456.0


async def test_every_period_endpoint_needs_the_token(db, settings):
    """With UPTIME_API_TOKEN set, the three endpoints answer 401 without it and 2xx with it;
    the page's HTML shell is open (its data comes from the API)."""
    await insert_march_stores(db)
    async with running_app(settings, api_token=TOKEN) as http:
        bare = [await http.post("/periods/reports", params={"period": "2024-03"}),
                await http.get("/periods/reports/" + "A" * 32),
                await http.get("/stores/a-good/monthly")]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        ok = await http.post("/periods/reports", params={"period": "2024-03"}, headers=auth)
        view = await http.get(f"/periods/reports/{ok.json()['report_id']}", headers=auth)
        monthly = await http.get("/stores/a-good/monthly", headers=auth)
        page = await http.get("/ui/periods")
    assert [r.status_code for r in bare] == [401, 401, 401]
    assert ok.status_code == 202 and view.status_code == 200 and monthly.status_code == 200
    assert page.status_code == 200 and 'href="/ui/periods"' in page.text


async def test_store_monthly_after_compaction(any_db, server_kind):
    """Rule (README "Retention"): once raw polls before the horizon are compacted, a month
    that starts before it is read from the timeline (its runs are the record), never from
    the remaining polls — which would lose ny's February outage (its polls before 02-11 14:00
    are gone) and show 100 %. Horizon 03-01 (retention 14 d, now 03-15): February and March
    (read from 02-27) from the timeline, April as the mode chooses (standalone: the polls)."""
    await ensure_current(any_db, apply=True)
    await insert_ny_store(any_db)
    await rebuild_runs(any_db)
    done = await compact_polls(any_db, 14, now=datetime(2024, 3, 15, tzinfo=UTC))
    assert done["removed"] == 4  # 01-15 12:00, 02-10 11:00 and 12:00, 02-11 12:00
    rows, mode = await period_view.store_monthly(any_db, "ny", NY_AS_OF, 3)
    assert [(r["month"], r["downtime_hours"], r["uptime_percent"]) for r in rows] == [
        ("2024-02", 25.5, 96.34), ("2024-03", 0.0, 100.0), ("2024-04", 0.0, 100.0)]
    if server_kind == "standalone":
        assert mode == "on_the_fly"
        assert [r["runs_source"] for r in rows] == ["timeline", "timeline", "on_the_fly"]
