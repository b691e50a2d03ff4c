"""The period page in a real headless Chromium (issue 18, item 6), with the bearer token on and
the strict Content-Security-Policy: pick a period with the form, watch the report, read the
chain's uptime %, the stores below the target and the monthly chart, download the CSV.

Stores: ``support.period_page_data`` (the four March stores in UTC and ``ny`` in New York),
as of T = 2024-03-20T00:00Z. Hand-computed:

* March 2024 (each store's local month up to T): the four UTC stores 456 h each, ``ny``
  [03-01 05:00Z, T) = 451 h, all up. Up 1,812 + 451 = 2,263 of 2,275 h = 99.4725 % → 99.47.
  Below 99: ``c-worse`` (97.81).
* 2024-Q1 up to T: UTC stores [01-01, T) = 79 days = 1,896 h; ``ny`` [01-01 05:00Z, T) =
  1,891 h with 25.5 h down = 98.65 %; ``b-bad`` 1,894/1,896 = 99.89 %, ``c-worse`` 1,886/1,896
  = 99.47 %. Up 9,437.5 of 9,475 h = 99.60 %. Below 99.9, worst first: ny, c-worse, b-bad.
* ``ny`` by month as of T: February 96.34 % (below the target), March 100 % (partial: 451 h).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from support.browser import chromium, require_browser, screenshot, serve, wait_ready
from support.period_page_data import insert_march_stores, insert_ny_store

TOKEN = "page-token"
AS_OF = "2024-03-20T00:00:00Z"


def _log(d, seen: dict) -> None:
    for e in d.get_log("browser"):
        if "Content Security Policy" in e["message"] or "Refused to" in e["message"]:
            seen["csp"].append(e["message"])
        elif e["level"] == "SEVERE" and not any(  # the token prompt's 401, the bad period's 422
                f"status of {code}" in e["message"] for code in (401, 422)):
            seen["console"].append(e["message"])


def _wait(d, script: str, timeout: float = 60) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(d, timeout, poll_frequency=0.05).until(lambda drv: drv.execute_script(script))


def _page(d) -> dict:
    from selenium.webdriver.common.by import By

    return {
        "numbers": {dd.get_attribute("data-key"): dd.text
                    for dd in d.find_elements(By.CSS_SELECTOR, "#p-numbers dd")},
        "below": [(tr.get_attribute("data-store-id"), tr.get_attribute("data-percent"))
                  for tr in d.find_elements(By.CSS_SELECTOR, "#below-list tbody tr[data-store-id]")],
        "links": [a.get_attribute("href")
                  for a in d.find_elements(By.CSS_SELECTOR, "#below-list tbody tr a")],
        "bars": [(g.get_attribute("data-month"), g.get_attribute("data-percent"),
                  g.get_attribute("data-partial"),
                  (g.find_elements(By.TAG_NAME, "rect") or [None])[0] and
                  g.find_element(By.TAG_NAME, "rect").get_attribute("class"))
                 for g in d.find_elements(By.CSS_SELECTOR, "#monthly g.mbar")],
        "target_line": [line.get_attribute("data-target")
                        for line in d.find_elements(By.CSS_SELECTOR, "#monthly line.target")],
        "chart_store": d.find_element(By.ID, "monthly-section").get_attribute("data-store"),
        "reused": d.find_element(By.ID, "periods").get_attribute("data-reused"),
    }


def _flow(base: str, downloads: Path) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    seen: dict = {"csp": [], "console": []}
    with chromium() as d:
        d.execute_cdp_cmd("Browser.setDownloadBehavior",
                          {"behavior": "allow", "downloadPath": str(downloads)})
        d.get(base + "/ui/incidents")  # any page: the navigation links the period page
        d.find_element(By.CSS_SELECTOR, "nav a[href='/ui/periods']").click()
        wait_ready(d)  # no period asked yet: no API call, nothing to draw
        # the form: a month (the month input's value set as a browser's picker sets it)
        d.execute_script("document.getElementById('p-month').value = '2024-03'")
        d.find_element(By.ID, "p-as-of").send_keys(AS_OF, Keys.ENTER)
        _wait(d, "return !document.getElementById('token-form').hidden")
        d.find_element(By.ID, "token").send_keys(TOKEN, Keys.ENTER)  # asked once per tab
        wait_ready(d)
        seen["march_url"] = d.current_url
        seen["march"] = _page(d)
        _log(d, seen)
        screenshot(d, "periods-month")
        # the quarter, with a stricter target, through the form
        d.find_element(By.CSS_SELECTOR, "#p-kind option[value=quarter]").click()
        d.find_element(By.ID, "p-year").send_keys("2024")
        d.find_element(By.CSS_SELECTOR, "#p-quarter option[value=Q1]").click()
        d.find_element(By.ID, "p-target").send_keys("99.9", Keys.ENTER)
        _wait(d, "return location.search.includes('Q1')")
        wait_ready(d)
        seen["quarter_url"] = d.current_url
        seen["quarter"] = _page(d)
        screenshot(d, "periods-quarter")
        # the CSV link downloads the CSV (with the token: fetched, saved as a file)
        d.find_element(By.ID, "csv-link").click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not [p for p in downloads.glob("*.csv")]:
            time.sleep(0.1)
        seen["downloads"] = {p.name: p.read_text() for p in downloads.glob("*.csv")}
        seen["report_id"] = d.find_element(By.ID, "periods").get_attribute("data-report-id")
        # another store's chart from its row
        d.find_element(By.CSS_SELECTOR, "#below-list tr[data-store-id=c-worse] button").click()
        _wait(d, "return document.getElementById('monthly-section').dataset.store === 'c-worse'")
        seen["c_chart"] = _page(d)["bars"]
        seen["c_url"] = d.current_url
        _log(d, seen)
        d.set_window_size(390, 900)  # a phone: the page fits, tables and chart scroll
        seen["phone_overflow"] = d.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        d.set_window_size(1280, 900)
        # the same period again: the finished report is reused
        d.get(seen["quarter_url"].split("&store=")[0])
        wait_ready(d)
        seen["again"] = _page(d)
        # a bad period from the URL: the API's 422 is shown
        d.get(base + "/ui/periods?period=2024-13")
        _wait(d, "return !document.getElementById('error').hidden")
        seen["bad"] = d.find_element(By.ID, "error").text
        _log(d, seen)
    return seen


async def test_period_page_in_chromium(db, settings, tmp_path):
    """Rule (issue 18 item 6): the page linked from the navigation picks a month with its form,
    asks for the token once, and shows March's chain uptime (99.47 %), 1 store below 99
    (c-worse, 97.81) and c-worse's monthly chart (12 months to 2024-03, March partial and
    below the target line at 99); the quarter with target 99.9 shows 99.60 % and ny, c-worse,
    b-bad worst first, and ny's chart (February 96.34 below the line); the CSV link saves the
    report's CSV (with the token); a row's Chart button draws that store; the same period
    again reuses the report; a bad period shows the API's 422; no CSP violation or console
    error; the page fits a phone."""
    require_browser()
    await insert_march_stores(db)
    await insert_ny_store(db)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    guarded = settings.model_copy(update={"api_token": TOKEN})
    with serve(guarded) as base:
        seen = await asyncio.to_thread(_flow, base, downloads)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        csv_text = httpx.get(f"{base}/get_report", params={"report_id": seen["report_id"]},
                             headers=auth).text
    assert seen["csp"] == [] and seen["console"] == []
    q = parse_qs(urlsplit(seen["march_url"]).query)
    assert q == {"period": ["2024-03"], "as_of": [AS_OF]}
    m = seen["march"]
    assert m["numbers"]["chain"] == "99.47 %" and m["numbers"]["below"] == "1"
    assert m["numbers"]["stores"] == "5" and m["numbers"]["as_of"] == "2024-03-20 00:00:00"
    assert m["below"] == [("c-worse", "97.81")]
    assert urlsplit(m["links"][0]).path == "/ui/stores/c-worse"
    assert parse_qs(urlsplit(m["links"][0]).query) == {
        "from": ["2024-03-01T00:00:00.000Z"], "to": ["2024-03-20T00:00:00.000Z"]}
    assert m["chart_store"] == "c-worse" and m["target_line"] == ["99"]
    assert len(m["bars"]) == 12 and m["bars"][0][0] == "2023-04"
    assert m["bars"][-1] == ("2024-03", "97.81", "true", "below partial")
    assert m["bars"][-2] == ("2024-02", "100", "false", "ok")
    assert m["reused"] == "false"
    qq = seen["quarter"]
    assert parse_qs(urlsplit(seen["quarter_url"]).query) == {
        "period": ["2024-Q1"], "as_of": [AS_OF], "target": ["99.9"]}
    assert qq["numbers"]["chain"] == "99.60 %" and qq["numbers"]["below"] == "3"
    assert qq["below"] == [("ny", "98.65"), ("c-worse", "99.47"), ("b-bad", "99.89")]
    assert qq["chart_store"] == "ny" and qq["target_line"] == ["99.9"]
    assert ("2024-02", "96.34", "false", "below") in qq["bars"]
    assert qq["bars"][-1] == ("2024-03", "100", "true", "ok partial")
    [(name, saved)] = seen["downloads"].items()
    assert name.startswith("period-2024-Q1-") and saved == csv_text
    assert saved.splitlines()[0] == "store_id,period_start,period_end,uptime_hours,downtime_hours,uptime_percent"
    assert len(saved.splitlines()) == 6
    assert seen["c_chart"][-1] == ("2024-03", "97.81", "true", "below partial")
    assert parse_qs(urlsplit(seen["c_url"]).query)["store"] == ["c-worse"]
    assert seen["phone_overflow"] <= 0
    assert seen["again"]["reused"] == "true" and seen["again"]["numbers"]["chain"] == "99.60 %"
    assert "2024-13" in seen["bad"] and "month must be 01..12" in seen["bad"]
