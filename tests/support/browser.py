"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium, and the
API served by uvicorn in a thread, for the dashboard's browser tests (issue 11, item 3).

No browser is ever downloaded: Selenium gets the system chromedriver's path (and
``SE_OFFLINE``), Chromium runs with a fresh profile and no background networking.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("UPTIME_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("UPTIME_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def require_browser() -> None:
    """Skip when Chromium/chromedriver are absent locally; in CI (``CI`` set) fail instead:
    ``.ci/run`` installs them."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need {missing} in CI (.ci/run installs them)")
        pytest.skip(f"{missing} not installed (apt-get install chromium chromium-driver)")


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator:
    """A headless Chromium WebDriver with a fresh ``--user-data-dir`` (removed afterwards)."""
    require_browser()
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver

    profile = tempfile.mkdtemp(prefix="uptime-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console, for the tests
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def serve(settings) -> Iterator[str]:
    """Run ``create_app(settings)`` with uvicorn on a free port in a thread; yield its URL."""
    import uvicorn

    from uptime.platform.embedded import free_port
    from uptime.web.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def screenshot(driver, name: str) -> Path:
    """Save a full-page PNG as ``test-output/screenshots/<name>.png``; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.execute_script("return window.innerWidth")
    driver.set_window_size(driver.get_window_size()["width"], max(600, height + 140))
    driver.save_screenshot(str(path))
    driver.set_window_size(driver.get_window_size()["width"], 900)
    return path


def wait_ready(driver, timeout: float = 30) -> None:
    """Wait until the page's script has drawn its data (``body[data-ready]``) or shown an
    error (which fails with the error's text)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        error = d.execute_script("const e = document.getElementById('error');"
                                 "return e && !e.hidden ? e.textContent : null")
        assert not error, f"page error: {error}"
        return d.execute_script("return document.body.dataset.ready === '1'")

    WebDriverWait(driver, timeout, poll_frequency=0.05).until(ready)
