"""The dashboard in a real headless Chromium (issue 11, item 3): trigger a report from the
page and watch its progress reach 100 %, the histogram of a hand-computed distribution, a
DST week's time line and the report row against the CSV. Screenshots go to
``test-output/screenshots/`` (gitignored)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from support.browser import chromium, require_browser, screenshot, serve, wait_ready
from support.dashboard_data import DST_RUNS, DST_STORE, EXPECTED_HISTOGRAM, _z, insert_dashboard_stores

AS_OF = "2024-03-12T15:00:00Z"


def _flow(base: str) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    seen: dict = {}
    with chromium() as d:
        d.get(base + "/")
        wait_ready(d)
        # keyboard only: Tab from the page start reaches the as_of field; Enter submits
        box = d.find_element(By.ID, "as-of")
        body = d.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        for _ in range(12):
            if d.switch_to.active_element == box:
                break
            d.switch_to.active_element.send_keys(Keys.TAB)
        assert d.switch_to.active_element == box, "the as_of field is not reachable by Tab"
        box.send_keys(AS_OF, Keys.ENTER)
        samples, deadline = [], time.monotonic() + 60
        while time.monotonic() < deadline:
            # status first: the page sets the bar before the status, so a Complete status
            # read here guarantees the value read next is the final one
            done = d.find_element(By.ID, "live").get_attribute("data-status") == "Complete"
            samples.append(int(d.find_element(By.ID, "live-bar").get_attribute("aria-valuenow")))
            if done:
                break
            time.sleep(0.02)
        seen["progress"] = samples
        d.find_element(By.CSS_SELECTOR, "#reports tr[data-status=Complete] a.download")
        seen["reason"] = d.find_element(By.CSS_SELECTOR, "#reports tr[data-status=Failed] .reason").text
        screenshot(d, "reports")
        link = d.find_element(By.CSS_SELECTOR, "#reports tr[data-status=Complete] td a")
        report_id = link.text
        seen["report_id"] = report_id
        link.click()
        wait_ready(d)
        seen["bars"] = {int(g.get_attribute("data-from")): int(g.get_attribute("data-stores"))
                        for g in d.find_elements(By.CSS_SELECTOR, "#histogram g.hbar")}
        heights = {int(g.get_attribute("data-from")):
                   float(g.find_element(By.TAG_NAME, "rect").get_attribute("height"))
                   for g in d.find_elements(By.CSS_SELECTOR, "#histogram g.hbar")}
        seen["heights"] = heights
        first = lambda: d.find_element(By.CSS_SELECTOR, "#worst tbody tr").get_attribute(
            "data-store-id")
        seen["worst_first"] = first()
        d.find_element(By.CSS_SELECTOR, "#worst th[data-key=store_id] button").click()
        seen["by_id_first"] = first()
        searched = lambda q: WebDriverWait(d, 30).until(  # the API's search results are drawn
            lambda drv: drv.find_element(By.ID, "worst").get_attribute("data-searched") == q)
        d.find_element(By.ID, "search").send_keys("dst")
        searched("dst")
        seen["filtered"] = [r.get_attribute("data-store-id")
                            for r in d.find_elements(By.CSS_SELECTOR, "#worst tbody tr")]
        d.find_element(By.ID, "search").clear()
        d.execute_script("document.getElementById('search').dispatchEvent(new Event('input'))")
        searched("")
        screenshot(d, "report")
        d.find_element(By.CSS_SELECTOR, f"#worst tr[data-store-id='{DST_STORE}'] a").click()
        wait_ready(d)
        seen["runs"] = [(r.get_attribute("data-status"), float(r.get_attribute("data-start-ms")),
                         float(r.get_attribute("data-end-ms")))
                        for r in d.find_elements(By.CSS_SELECTOR, "#timeline rect.run")]
        seen["run_x"] = [float(r.get_attribute("x"))
                         for r in d.find_elements(By.CSS_SELECTOR, "#timeline rect.run")]
        seen["bh"] = len(d.find_elements(By.CSS_SELECTOR, "#timeline rect.bh"))
        seen["ticks"] = len(d.find_elements(By.CSS_SELECTOR, "#timeline line.tick"))
        seen["midnights"] = [m.get_attribute("data-local")
                             for m in d.find_elements(By.CSS_SELECTOR, "#timeline line.midnight")]
        seen["tz"] = d.find_element(By.CSS_SELECTOR, "#timeline text.tz").text
        seen["row"] = {td.get_attribute("data-key"): td.text
                       for td in d.find_elements(By.CSS_SELECTOR, "#row td[data-key]")}
        seen["run_rows"] = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                            for tr in d.find_elements(By.CSS_SELECTOR, "#runs tbody tr")]
        seen["labels_ok"] = d.execute_script(
            "return [...document.querySelectorAll('input:not([type=hidden])')].every(i => "
            "document.querySelector(`label[for='${i.id}']`))")
        screenshot(d, "store")
        # any interval: the DST Sunday (UTC day), open 09:00-17:00 EDT = 13:00-21:00Z, all active
        d.find_element(By.ID, "from").clear()
        d.find_element(By.ID, "from").send_keys("2024-03-10T00:00:00Z")
        d.find_element(By.ID, "to").clear()
        d.find_element(By.ID, "to").send_keys("2024-03-11T00:00:00Z", Keys.ENTER)
        WebDriverWait(d, 30).until(lambda drv: "from=2024-03-10" in drv.current_url)
        wait_ready(d)
        seen["day"] = {dd.get_attribute("data-key"): dd.text
                       for dd in d.find_elements(By.CSS_SELECTOR, "#interval dd")}
        seen["day_runs"] = len(d.find_elements(By.CSS_SELECTOR, "#timeline rect.run"))
        seen["day_url"] = d.current_url
        seen["console"] = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        d.set_window_size(390, 900)  # a phone
        seen["phone_overflow"] = d.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        screenshot(d, "store-phone")
    return seen


async def test_dashboard_end_to_end_in_chromium(db, settings):
    """In headless Chromium: a report triggered from the page (keyboard only) shows a
    progress bar that never goes back and ends at 100 %, a failed report shows its reason; the report page's histogram has the
    hand-computed bars (0–10: 1, 50–60: 2, 90–100: 2, 100: 3) with heights proportional to
    them; the worst table sorts and filters; the DST store's time line has the three runs at
    the hand-computed boundaries, 8 business-hours intervals, a tick per poll in the week and
    local midnights labelled in America/New_York; its report row equals the CSV's cells; the
    interval form shows the DST Sunday alone (8 business hours, one run); no console errors."""
    require_browser()
    await insert_dashboard_stores(db)
    # (created a minute ago: retention would delete an older one at start)
    await db.reports.insert_one({"_id": "f" * 32, "status": "Failed", "progress": 0.0,
                                 "pipeline": "store_uptime@v1", "created_at": datetime.now(UTC) - timedelta(minutes=1),
                                 "error": "lost the connection to MongoDB; trigger a new report"})
    with serve(settings) as base:
        seen = await asyncio.to_thread(_flow, base)
        csv_text = (await asyncio.to_thread(
            httpx.get, f"{base}/get_report", params={"report_id": seen["report_id"]})).text
    progress = seen["progress"]
    assert progress[-1] == 100 and progress == sorted(progress)
    assert seen["reason"] == "lost the connection to MongoDB; trigger a new report"
    assert seen["bars"] == EXPECTED_HISTOGRAM
    h = seen["heights"]
    assert h[10] == 0 and h[100] == pytest.approx(3 * h[0]) and h[50] == pytest.approx(2 * h[0])
    assert seen["worst_first"] == "zero-1"
    assert seen["by_id_first"] == "dst-ny"  # sorted by store id, ascending
    assert seen["filtered"] == ["dst-ny"]
    ms = lambda text: _z(text).timestamp() * 1000
    assert seen["runs"] == [(s, ms(a), ms(b)) for s, a, b in DST_RUNS]
    assert seen["run_x"] == sorted(seen["run_x"])
    assert seen["bh"] == 8 and seen["ticks"] == 4
    assert seen["midnights"][0] == "Wed 6 Mar" and "Sun 10 Mar" in seen["midnights"]
    assert len(seen["midnights"]) == 7
    assert "America/New_York" in seen["tz"]
    assert seen["run_rows"][1][:3] == ["inactive", "Wed 6 Mar 07:00", "Sat 9 Mar 13:00"]
    assert seen["run_rows"][2][1] == "Sat 9 Mar 13:00"
    row = next(r for r in csv.DictReader(io.StringIO(csv_text)) if r["store_id"] == DST_STORE)
    assert {k: v for k, v in seen["row"].items() if k != "timezone_fallback"} == {
        k: v for k, v in row.items() if k != "store_id"}
    assert seen["row"]["uptime_last_week"] == "29.00"
    assert seen["labels_ok"] is True
    assert seen["phone_overflow"] <= 0
    assert seen["day"]["Business hours (h)"] == "8.00" and seen["day"]["Uptime (h)"] == "8.00"
    assert seen["day_runs"] == 1 and "from=2024-03-10" in seen["day_url"]
    assert seen["console"] == []  # no JavaScript errors, no failed requests
