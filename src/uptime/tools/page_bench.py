"""Render time and size of the dashboard's pages in headless Chromium (issue 11, "Measure").

    python -m uptime.tools.page_bench --base http://127.0.0.1:8000 [--report ID] [--runs 3]

Against a running ``uptime-monitor serve`` (its data as is; ``--report``: a Complete report, default
the newest Complete one). For each page — reports list ``/``, the report
``/ui/reports/ID``, and the store with the most downtime ``/ui/stores/SID?report=ID`` — it
loads the page ``--runs`` times with the browser cache disabled and prints:

* **render ms**: navigation start → the page's script has drawn its data (``window.readyAt``,
  set by ``UI.ready()``), i.e. HTML + CSS + JS + the JSON API calls + drawing;
* **bytes**: everything transferred for the page (HTML, CSS, JS, JSON; uncompressed, as the
  service sends no compression), from the Resource Timing API;
* the slowest API call of the page (ms).

Needs the ``test`` extra (Selenium) and Debian's ``chromium`` + ``chromium-driver``
(``/usr/bin/chromium``, ``/usr/bin/chromedriver``; never downloads a browser).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from typing import Annotated

import httpx
import typer

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900"]

_MEASURE = """
const nav = performance.getEntriesByType('navigation')[0];
const res = performance.getEntriesByType('resource');
const bytes = [nav, ...res].reduce((s, e) => s + (e.transferSize || e.encodedBodySize || 0), 0);
const api = res.filter(e => !e.name.includes('/static/'))
               .reduce((m, e) => Math.max(m, e.duration), 0);
return {render: window.readyAt, bytes, api, requests: res.length + 1};
"""


def measure(driver, url: str, timeout: float = 120) -> dict:
    """Load ``url`` (cache disabled) and return ``{render, bytes, api, requests}``."""
    driver.get(url)
    deadline = time.monotonic() + timeout
    while not driver.execute_script("return window.readyAt || null"):
        error = driver.execute_script(
            "const e = document.getElementById('error'); return e && !e.hidden ? e.textContent : null")
        if error or time.monotonic() > deadline:
            raise RuntimeError(f"{url}: {error or 'not drawn in time'}")
        time.sleep(0.02)
    return driver.execute_script(_MEASURE)


def main(
    base: Annotated[str, typer.Option(help="URL of a running `uptime-monitor serve`.")] = "http://127.0.0.1:8000",
    report: Annotated[str | None, typer.Option(help="A Complete report id.")] = None,
    runs: Annotated[int, typer.Option(min=1)] = 3,
    chromium: Annotated[str, typer.Option()] = "/usr/bin/chromium",
    chromedriver: Annotated[str, typer.Option()] = "/usr/bin/chromedriver",
) -> None:
    """Print render time (median, min) and bytes of each dashboard page."""
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver  # optional (extra "test"): a browser driver only this timer needs

    token = os.environ.get("UPTIME_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
        if report is None:
            report = next(r["report_id"] for r in http.get("/reports").json()
                          if r["status"] == "Complete")
        summary = http.get(f"/reports/{report}/summary", params={"worst": 1}).json()
    store = summary["worst"][0]["store_id"]
    pages = {"reports list /": "/", "report": f"/ui/reports/{report}",
             "store (most downtime)": f"/ui/stores/{store}?report={report}"}
    profile = tempfile.mkdtemp(prefix="uptime-page-bench-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=chromedriver))
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        if token:
            driver.get(base + "/")
            driver.execute_script("sessionStorage.setItem('uptime-token', arguments[0])", token)
        print(f"{summary['stores']:,} stores, report {report}, store {store}, {runs} runs")
        print(f"{'page':<24}{'render ms (median / min)':>26}{'bytes':>10}{'slowest API ms':>16}")
        for name, path in pages.items():
            got = [measure(driver, base + path) for _ in range(runs)]
            render = [g["render"] for g in got]
            print(f"{name:<24}{statistics.median(render):>16.0f} / {min(render):<7.0f}"
                  f"{got[-1]['bytes']:>10,}{statistics.median(g['api'] for g in got):>16.0f}")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    typer.run(main)
