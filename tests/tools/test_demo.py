"""The one-command demo (uptime.tools.demo), run as a user runs it, against the test server."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from uptime.tools.demo import summarize


def _env(mongo_uri: str, db_name: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "UPTIME_API_TOKEN"}
    env.update(MONGODB_URI=mongo_uri, MONGODB_DATABASE=db_name,
               UPTIME_DATA_DIR=str(tmp_path / "unused"))
    return env


async def test_demo_csv_equals_uptime_report(db, db_name, mongo_uri, tmp_path):
    """The demo (generate → uptime-monitor import → uptime-monitor serve → HTTP trigger/poll/download) saves
    a CSV whose bytes equal `uptime-monitor report --as-of <the demo's as_of>`, prints where it is
    and the median uptime last week, ends with the dashboard's address (--no-wait: then
    stops), and works in the database it is told to use."""
    out = tmp_path / "demo"
    env = _env(mongo_uri, db_name, tmp_path)
    demo = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "uptime.tools.demo", "--stores", "150", "--days", "8",
         "--out", str(out), "--database", db_name, "--no-wait"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    [csv_path] = out.glob("report-*.csv")
    assert str(csv_path) in demo.stdout.replace("\n", "")
    report_id = csv_path.stem.removeprefix("report-")
    doc = await db.reports.find_one({"_id": report_id})
    assert doc["status"] == "Complete" and doc["rows"] == 150
    numbers = summarize(csv_path)
    assert numbers["stores"] == 150
    assert f"median uptime last week {numbers['median_uptime_last_week']:.2f} h" in " ".join(
        demo.stdout.split()
    )

    flat = " ".join(demo.stdout.split())
    assert re.search(rf"Dashboard: http://127\.0\.0\.1:\d+/ \(this report: "
                     rf"http://127\.0\.0\.1:\d+/ui/reports/{report_id}\)", flat), flat[-600:]

    cli_csv = tmp_path / "cli.csv"
    cli = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "uptime.cli", "report", "--as-of", doc["as_of"].isoformat(),
         "--output", str(cli_csv)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli_csv.read_bytes() == csv_path.read_bytes()
    assert await db.reports.count_documents({"status": "Complete"}) == 2
