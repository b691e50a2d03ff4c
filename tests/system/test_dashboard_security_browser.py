"""The dashboard under its security headers, in a real headless Chromium (issue 15, items 3-5).

Rules: every page works under the strict Content-Security-Policy and the browser reports no
CSP violation; stores with hostile ids (``/ ? # %``, spaces, ``..``, non-Latin, 200
characters) open from the report page's links with their exact id; a hostile report id in
the store page's URL makes the page request nothing but the API paths it is meant for (the
values are encoded: no request reaches another path, e.g. ``/get_report``).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

from support.browser import chromium, require_browser, serve, wait_ready
from support.hostile import HOSTILE_IDS, _poll

T = datetime(2024, 3, 12, 15, tzinfo=UTC)
EVIL_REPORT = "../../get_report?report_id="


def _requests(d) -> list[str]:
    """Paths (with query) of every resource the page fetched, in order."""
    urls = d.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)")
    return [urlsplit(u).path + ("?" + urlsplit(u).query if urlsplit(u).query else "")
            for u in urls]


def _csp_errors(d) -> list[str]:
    return [e["message"] for e in d.get_log("browser")
            if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


def _flow(base: str, report_id: str) -> dict:
    from selenium.webdriver.common.by import By

    seen: dict = {"csp": [], "links": {}, "store_requests": {}, "headings": {}}
    with chromium() as d:
        for path in ("/", f"/ui/reports/{report_id}", "/docs"):
            d.get(base + path)
            if path != "/docs":
                wait_ready(d)
            else:
                d.implicitly_wait(5)
                d.find_element(By.CSS_SELECTOR, ".swagger-ui .info")  # Swagger UI ran
                d.implicitly_wait(0)
            seen["csp"] += _csp_errors(d)
        d.get(base + f"/ui/reports/{report_id}")
        wait_ready(d)
        for a in d.find_elements(By.CSS_SELECTOR, "#worst a[href^='/ui/stores/']"):
            seen["links"][a.text] = a.get_attribute("href")
        for sid, href in seen["links"].items():
            d.get(href)
            wait_ready(d)
            seen["headings"][sid] = d.find_element(By.CSS_SELECTOR, "h1 code").text
            seen["store_requests"][sid] = [p for p in _requests(d)
                                           if not p.startswith("/static/")]
            seen["csp"] += _csp_errors(d)
        # a hostile report id in the URL: only the API paths, with the value encoded
        d.get(base + "/ui/stores/x?report=" + quote(EVIL_REPORT, safe=""))
        d.implicitly_wait(5)
        d.find_element(By.CSS_SELECTOR, "#error:not([hidden])")
        d.implicitly_wait(0)
        seen["evil_requests"] = [p for p in _requests(d) if not p.startswith("/static/")]
        seen["csp"] += _csp_errors(d)
    return seen


async def test_pages_work_under_csp_and_encode_every_id(db, settings):
    """In headless Chromium: the reports list, a report page, the API docs and the store
    page of every hostile id load and draw under the CSP with no violation reported; each
    store link opens that exact store (heading = id) and the page fetches exactly its row
    (/reports/R/rows/<id encoded>), its time line (/stores/<id encoded>/timeline) and its
    incidents (/incidents?store_id=<id encoded>, decoding to the exact id); a
    hostile report id makes the store page fetch only /reports/<encoded>/rows/x."""
    require_browser()
    settings.follow_runs = False
    with serve(settings) as base:
        def setup() -> str:
            polls = [_poll(s, T - timedelta(hours=h), "inactive" if h % 2 else "active")
                     for s in HOSTILE_IDS for h in range(3)]
            assert httpx.post(f"{base}/polls", json=polls).json()["stored"] == len(polls)
            rid = httpx.post(f"{base}/trigger_report",
                             params={"as_of": T.isoformat()}).json()["report_id"]
            for _ in range(600):
                r = httpx.get(f"{base}/get_report", params={"report_id": rid})
                if r.headers["content-type"].startswith("text/csv"):
                    return rid
                time.sleep(0.05)
            raise AssertionError("report not complete")

        report_id = await asyncio.to_thread(setup)
        seen = await asyncio.to_thread(_flow, base, report_id)
    assert seen["csp"] == []
    ids = {s.strip() for s in HOSTILE_IDS}
    assert set(seen["links"]) == ids
    for sid in ids:
        enc = quote(sid, safe="")
        assert unquote(urlsplit(seen["links"][sid]).path) == "/ui/stores/" + sid
        assert seen["headings"][sid] == sid
        paths = [p.split("?")[0] for p in seen["store_requests"][sid]]
        assert paths == [f"/reports/{report_id}/rows/{enc}", f"/stores/{enc}/timeline",
                         "/incidents"], sid
        incidents_query = parse_qs(urlsplit(seen["store_requests"][sid][2]).query)
        assert incidents_query["store_id"] == [sid], sid  # the exact id, encoded in the query
    evil = quote(EVIL_REPORT[:32], safe="")
    assert seen["evil_requests"] == [f"/reports/{evil}/rows/x"]
