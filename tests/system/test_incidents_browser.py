"""The dashboard's incident views in a real headless Chromium (issue 17, item 5), under the
strict Content-Security-Policy (issue 15): the incidents page, the incident marks on a store's
time line, the counts on a report's page — against hand-computed incidents.

Stores (``support.dashboard_data`` as of T = 2024-03-12 15:00Z, W = T − 7 d, plus one with a
hostile id); default ``UPTIME_INCIDENT_MIN_MINUTES`` (15). Incidents (a store's time line
starts at its first poll; 24×7 stores count the whole stretch):

* ``zero-1`` (24×7, inactive at W − 1 h and T − 1 h): open from 03-05 14:00Z, 169 h = 10,140 min;
* ``dst-ny`` (New York, 09:00-17:00 local; active 03-04 12:00, inactive 03-08 12:00 and 16:00,
  active 03-10 20:00): stretch [03-06 12:00, 03-09 18:00) (midpoints), inside business hours
  Wed-Fri 14:00-22:00Z 8 h each + Sat 14:00-18:00Z 4 h = 28 h = 1,680 min, started_at
  03-06 14:00Z, ended_at 03-09 18:00Z;
* ``half-1`` (24×7, inactive at W, active at W + 152 h): [W, W + 76 h) = 03-05 15:00 -> 03-08
  19:00Z, 4,560 min; ``most-1``, ``most-2``: [W, W + 8 h) = 03-05 15:00 -> 23:00Z, 480 min;
* ``HOSTILE`` (24×7; active T − 10 h, inactive T − 9 h, active T − 7 h): [T − 9.5 h, T − 8 h)
  = 03-12 05:30 -> 07:00Z, 90 min.

So: open, longest first: zero-1. Resolved, most recent end first: HOSTILE (07:00 on 03-12),
dst-ny, half-1, most-1, most-2 (a tie on the end: store id). The report as of T: 1 open, 6
overlapping its week.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from support.browser import chromium, require_browser, screenshot, serve, wait_ready
from support.dashboard_data import DST_STORE, T, insert_dashboard_stores

HOSTILE = "a/b?x=1&y=2#frag 100%"
RESOLVED = [HOSTILE, DST_STORE, "half-1", "most-1", "most-2"]
H = timedelta(hours=1)


def _z(text: str) -> float:
    """'2024-03-06T14:00' (UTC) -> epoch ms."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000


def _log(d, seen: dict) -> None:
    """Move the browser's console entries so far (reading clears them) into ``seen``."""
    for e in d.get_log("browser"):
        if "Content Security Policy" in e["message"] or "Refused to" in e["message"]:
            seen["csp"].append(e["message"])
        elif e["level"] == "SEVERE":
            seen["console"].append(e["message"])


def _api_requests(d, path: str) -> list[dict]:
    """The query (decoded) of every request the page made to ``path``."""
    urls = d.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    return [{k: v[0] for k, v in parse_qs(urlsplit(u).query).items()}
            for u in urls if urlsplit(u).path == path]


def _rows(d, table: str) -> list[dict]:
    from selenium.webdriver.common.by import By

    return [{"store": tr.get_attribute("data-store-id"), "started": tr.get_attribute("data-started"),
             "ended": tr.get_attribute("data-ended"), "minutes": float(tr.get_attribute("data-minutes")),
             "cells": [td.text for td in tr.find_elements(By.TAG_NAME, "td")]}
            for tr in d.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr[data-started]")]


def _marks(d) -> list[dict]:
    from selenium.webdriver.common.by import By

    out = []
    for g in d.find_elements(By.CSS_SELECTOR, "#timeline g.incident"):
        band = g.find_element(By.CSS_SELECTOR, "rect.band")
        out.append({"started": g.get_attribute("data-started"), "ended": g.get_attribute("data-ended"),
                    "minutes": float(g.get_attribute("data-minutes")), "open": "open" in g.get_attribute("class"),
                    "x": float(band.get_attribute("x")), "width": float(band.get_attribute("width")),
                    "start_mark": len(g.find_elements(By.CSS_SELECTOR, "path.start"))})
    return out


def _wait(d, script: str, timeout: float = 30) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(d, timeout, poll_frequency=0.05).until(lambda drv: drv.execute_script(script))


def _flow(base: str, report_id: str) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    seen: dict = {"csp": [], "console": []}
    with chromium() as d:
        # the report page: counts as of its as_of, linking to the incidents page
        d.get(f"{base}/ui/reports/{report_id}")
        wait_ready(d)
        _wait(d, "return document.getElementById('report-incidents').dataset.loaded")
        seen["report_loaded"] = d.find_element(By.ID, "report-incidents").get_attribute("data-loaded")
        seen["counts"] = {dd.get_attribute("data-key"): dd.text
                          for dd in d.find_elements(By.CSS_SELECTOR, "#incident-counts dd")}
        _log(d, seen)
        screenshot(d, "report-incidents")
        d.find_element(By.CSS_SELECTOR, "#incident-counts dd[data-key=week] a").click()
        wait_ready(d)
        seen["from_report_url"] = d.current_url
        # the incidents page, as linked: the report's as_of and week
        seen["open"] = _rows(d, "open-list")
        seen["resolved"] = _rows(d, "resolved-list")
        seen["open_count"] = d.find_element(By.CSS_SELECTOR, "#open-section .count").text
        seen["resolved_count"] = d.find_element(By.CSS_SELECTOR, "#resolved-section .count").text
        seen["nav"] = [a.get_attribute("href") for a in d.find_elements(By.CSS_SELECTOR, "nav a")]
        _log(d, seen)
        screenshot(d, "incidents")
        d.set_window_size(390, 900)  # a phone: the tables scroll inside their own regions
        seen["phone_overflow"] = d.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        d.set_window_size(1280, 900)
        # pages of two
        d.get(f"{base}/ui/incidents?limit=2")
        wait_ready(d)
        pages = [[r["store"] for r in _rows(d, "resolved-list")]]
        counts = [d.find_element(By.CSS_SELECTOR, "#resolved-section .count").text]
        for n in (2, 3):
            d.find_element(By.CSS_SELECTOR, "#resolved-section .next").click()
            _wait(d, f"return document.getElementById('resolved-section').dataset.loads === '{n}'")
            pages.append([r["store"] for r in _rows(d, "resolved-list")])
            counts.append(d.find_element(By.CSS_SELECTOR, "#resolved-section .count").text)
        seen["next_disabled"] = not d.find_element(By.CSS_SELECTOR, "#resolved-section .next").is_enabled()
        d.find_element(By.CSS_SELECTOR, "#resolved-section .prev").click()
        _wait(d, "return document.getElementById('resolved-section').dataset.loads === '4'")
        pages.append([r["store"] for r in _rows(d, "resolved-list")])
        seen["pages"], seen["page_counts"] = pages, counts
        # filters through the form: the hostile id, resolved only (typed, submitted)
        d.get(f"{base}/ui/incidents")
        wait_ready(d)
        d.find_element(By.ID, "f-store").send_keys(HOSTILE)
        d.find_element(By.CSS_SELECTOR, "#f-state option[value=resolved]").click()
        d.find_element(By.ID, "f-min").send_keys("60", Keys.ENTER)
        _wait(d, "return location.search.includes('state=resolved')")
        wait_ready(d)
        seen["filtered_url"] = d.current_url
        seen["filtered_open_hidden"] = not d.find_element(By.ID, "open-section").is_displayed()
        seen["filtered"] = _rows(d, "resolved-list")
        seen["filtered_requests"] = _api_requests(d, "/incidents")
        _log(d, seen)
        # min minutes and a time range
        d.get(f"{base}/ui/incidents?min=1000&from=2024-03-08T20:00:00Z")
        wait_ready(d)
        seen["ranged_open"] = [r["store"] for r in _rows(d, "open-list")]
        seen["ranged_resolved"] = [r["store"] for r in _rows(d, "resolved-list")]
        # the hostile store's page from its row: its exact id, its incident drawn
        d.get(f"{base}/ui/incidents?state=resolved")
        wait_ready(d)
        links = {tr.get_attribute("data-store-id"): tr.find_element(By.TAG_NAME, "a").get_attribute("href")
                 for tr in d.find_elements(By.CSS_SELECTOR, "#resolved-list tbody tr[data-started]")}
        seen["links"] = links
        d.get(links[HOSTILE])
        wait_ready(d)
        seen["hostile_heading"] = d.find_element(By.CSS_SELECTOR, "h1 code").text
        seen["hostile_marks"] = _marks(d)
        seen["hostile_requests"] = _api_requests(d, "/incidents")
        _log(d, seen)
        # the DST store's page from its row
        d.get(links[DST_STORE])
        wait_ready(d)
        seen["dst_url"] = d.current_url
        seen["dst_marks"] = _marks(d)
        seen["dst_table"] = _rows(d, "inc-list")
        seen["dst_interval"] = (d.find_element(By.ID, "from").get_attribute("value"),
                                d.find_element(By.ID, "to").get_attribute("value"))
        seen["all_link"] = d.find_element(By.CSS_SELECTOR, "#inc-note a").get_attribute("href")
        _log(d, seen)
        screenshot(d, "store-incidents")
        # the open store from the report: the open incident reaches the interval's end
        d.get(f"{base}/ui/stores/zero-1?report={report_id}")
        wait_ready(d)
        seen["open_marks"] = _marks(d)
        _log(d, seen)
    return seen


async def test_incident_views_in_chromium(db, settings):
    """Incidents page: the open list (zero-1, 10,140 min) and the resolved list in the
    hand-computed order (latest end first, ties by id) with their started/ended/minutes, as
    linked from the report page (its as_of and week); pages of two walk 5 resolved incidents
    forwards and back; the form's filters (the hostile id, resolved only, min 60) reach the API
    decoded exactly; min 1000 with from 03-08 20:00 keeps zero-1 and dst-ny. Store pages: the
    hostile id's page opens with its exact id and draws its 90-min incident; dst-ny's page
    (linked: from the stretch − 1 d to min(as_of, 2·end − stretch + 1 d); as_of = the latest
    poll, T − 1 h) draws one band at
    the hand-computed x from 03-06 14:00 to 03-09 18:00 with 1,680 min; zero-1's open band runs
    to the interval's end. Report page: 1 open, 6 in the week. No CSP violation, no console
    error; the incidents page fits a phone's width."""
    require_browser()
    await insert_dashboard_stores(db)
    await db.store_status.insert_many([
        {"store_id": HOSTILE, "timestamp_utc": T - 10 * H, "status": "active"},
        {"store_id": HOSTILE, "timestamp_utc": T - 9 * H, "status": "inactive"},
        {"store_id": HOSTILE, "timestamp_utc": T - 7 * H, "status": "active"}])
    with serve(settings) as base:
        def report() -> str:
            rid = httpx.post(f"{base}/trigger_report", params={"as_of": T.isoformat()}).json()["report_id"]
            for _ in range(1200):
                r = httpx.get(f"{base}/get_report", params={"report_id": rid})
                if r.headers["content-type"].startswith("text/csv"):
                    return rid
                time.sleep(0.05)
            raise AssertionError("report not complete")

        report_id = await asyncio.to_thread(report)
        seen = await asyncio.to_thread(_flow, base, report_id)
    assert seen["csp"] == [] and seen["console"] == []
    # report page
    assert seen["report_loaded"] == "1" and seen["counts"] == {"open": "1", "week": "6"}
    q = parse_qs(urlsplit(seen["from_report_url"]).query)
    assert q == {"as_of": ["2024-03-12T15:00:00Z"], "from": ["2024-03-05T15:00:00.000Z"],
                 "to": ["2024-03-12T15:00:00Z"]}
    assert any(urlsplit(h).path == "/ui/incidents" for h in seen["nav"])
    assert seen["phone_overflow"] <= 0
    # incidents page
    assert [(r["store"], r["started"], r["ended"], r["minutes"]) for r in seen["open"]] == [
        ("zero-1", "2024-03-05T14:00:00Z", "", 10140.0)]
    assert seen["open"][0]["cells"][2] == "7 d 1 h 00 min"  # 169 h of business downtime
    assert [(r["store"], r["started"], r["ended"], r["minutes"]) for r in seen["resolved"]] == [
        (HOSTILE, "2024-03-12T05:30:00Z", "2024-03-12T07:00:00Z", 90.0),
        (DST_STORE, "2024-03-06T14:00:00Z", "2024-03-09T18:00:00Z", 1680.0),
        ("half-1", "2024-03-05T15:00:00Z", "2024-03-08T19:00:00Z", 4560.0),
        ("most-1", "2024-03-05T15:00:00Z", "2024-03-05T23:00:00Z", 480.0),
        ("most-2", "2024-03-05T15:00:00Z", "2024-03-05T23:00:00Z", 480.0)]
    assert seen["open_count"] == "1–1 of 1" and seen["resolved_count"] == "1–5 of 5"
    assert seen["pages"] == [RESOLVED[:2], RESOLVED[2:4], RESOLVED[4:], RESOLVED[2:4]]
    assert seen["page_counts"] == ["1–2 of 5", "3–4 of 5", "5–5 of 5"] and seen["next_disabled"]
    fq = parse_qs(urlsplit(seen["filtered_url"]).query)
    assert fq == {"store": [HOSTILE], "state": ["resolved"], "min": ["60"]}
    assert seen["filtered_open_hidden"]
    assert [r["store"] for r in seen["filtered"]] == [HOSTILE]
    assert seen["filtered_requests"] == [{"store_id": HOSTILE, "min_minutes": "60", "open": "false",
                                          "order": "recent", "skip": "0", "limit": "50"}]
    assert seen["ranged_open"] == ["zero-1"] and seen["ranged_resolved"] == [DST_STORE]
    # store pages
    assert unquote(urlsplit(seen["links"][HOSTILE]).path) == "/ui/stores/" + HOSTILE
    assert seen["hostile_heading"] == HOSTILE
    assert [r["store_id"] for r in seen["hostile_requests"]] == [HOSTILE]
    assert [(m["started"], m["ended"], m["minutes"]) for m in seen["hostile_marks"]] == [
        ("2024-03-12T05:30:00Z", "2024-03-12T07:00:00Z", 90.0)]
    dq = parse_qs(urlsplit(seen["dst_url"]).query)
    # (that list had the default as_of: the latest poll, T − 1 h)
    assert dq == {"from": ["2024-03-05T12:00:00.000Z"], "to": ["2024-03-12T14:00:00.000Z"]}
    t0, t1 = _z("2024-03-05T12:00"), _z("2024-03-12T14:00")
    x = lambda ms: 8 + 984 * (ms - t0) / (t1 - t0)  # noqa: E731 - charts.js' scale
    [mark] = seen["dst_marks"]
    assert (mark["started"], mark["ended"], mark["minutes"], mark["open"]) == (
        "2024-03-06T14:00:00Z", "2024-03-09T18:00:00Z", 1680.0, False)
    assert mark["x"] == pytest.approx(x(_z("2024-03-06T14:00")), abs=0.01)
    assert mark["x"] + mark["width"] == pytest.approx(x(_z("2024-03-09T18:00")), abs=0.01)
    assert mark["start_mark"] == 1
    assert [(r["started"], r["cells"][1], r["cells"][4]) for r in seen["dst_table"]] == [
        ("2024-03-06T14:00:00Z", "Sat 9 Mar 13:00", "1 d 4 h 00 min")]  # 18:00Z = 13:00 EST
    assert unquote(urlsplit(seen["all_link"]).query) == "store=" + DST_STORE
    [open_mark] = seen["open_marks"]
    assert open_mark["open"] and open_mark["ended"] == "" and open_mark["minutes"] == 10140.0
    assert open_mark["start_mark"] == 0  # started before the interval: clipped at its start
    assert open_mark["x"] == pytest.approx(8) and open_mark["x"] + open_mark["width"] == pytest.approx(992)
