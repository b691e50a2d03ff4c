"""The one-command demo (``make demo`` = ``python -m uptime.tools.demo``).

What it does, end to end, as a user would:

1. starts the embedded mongod in ``demo-output/mongo`` (or uses ``MONGODB_URI`` if set) and
   works in its own database ``uptime_demo`` (dropped first) — the user's default database
   and data directory are never touched;
2. generates a realistic sample dataset into ``demo-output/dataset`` (``uptime.tools.generate``;
   a small built-in generator if that module is unavailable);
3. imports it with ``uptime-monitor import`` (a subprocess, exactly the CLI a user runs);
4. starts the API with ``uptime-monitor serve`` on a free port of 127.0.0.1;
5. triggers a report over HTTP (``POST /trigger_report``), shows its progress while polling
   ``GET /get_report``, streams the CSV into ``demo-output/report-<id>.csv``;
6. prints where the CSV is, a summary (stores, as_of, median uptime last week) and the
   dashboard's address (``http://127.0.0.1:PORT/``), and keeps serving it until Ctrl-C
   (``--no-wait``: stops at once); then stops the API and the embedded mongod.

Defaults (5,000 stores x 9 days of hourly polls, ~1M polls) finish in about a minute
on a 2-core machine (limit: 3 minutes). ``python -m uptime.tools.demo --help`` lists the options.
"""

from __future__ import annotations

import contextlib
import csv
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import typer
from pymongo import MongoClient
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from uptime.platform.embedded import EmbeddedMongo, EmbeddedServerError, free_port
from uptime.platform.settings import Settings
from uptime.tools.generate import generate_dataset

console = Console()

DEMO_DATABASE = "uptime_demo"
DEFAULT_OUT = Path("demo-output")


@dataclass
class Dataset:
    status: Path
    hours: Path
    timezones: Path
    stores: int
    status_rows: int
    source: str


def _fallback_dataset(out_dir: Path, *, stores: int, days: int, seed: int) -> Dataset:
    """A small built-in generator (used only if ``uptime.tools.generate`` is unavailable): hourly
    polls with ~3 % inactive, 9-to-21 hours on every day but Sunday, New York/Chicago/LA."""
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    end = datetime(2023, 1, 25, 18, 13, 22, tzinfo=UTC)
    zones = ["America/New_York", "America/Chicago", "America/Los_Angeles"]
    status, hours, tzs = out_dir / "store_status.csv", out_dir / "menu_hours.csv", out_dir / "timezones.csv"
    rows = 0
    with status.open("w", newline="") as s, hours.open("w", newline="") as h, tzs.open("w", newline="") as t:
        sw, hw, tw = csv.writer(s), csv.writer(h), csv.writer(t)
        sw.writerow(["store_id", "status", "timestamp_utc"])
        hw.writerow(["store_id", "dayOfWeek", "start_time_local", "end_time_local"])
        tw.writerow(["store_id", "timezone_str"])
        for i in range(stores):
            sid = str(rng.getrandbits(62) + 10**17)
            tw.writerow([sid, rng.choice(zones)])
            for day in range(6):
                hw.writerow([sid, day, "09:00:00", "21:00:00"])
            for k in range(days * 24):
                stamp = end - timedelta(hours=k, minutes=rng.randint(0, 10)) if k else end
                state = "inactive" if rng.random() < 0.03 else "active"
                sw.writerow([sid, state, stamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC")])
                rows += 1
    return Dataset(status, hours, tzs, stores, rows, "built-in fallback generator")


def make_dataset(out_dir: Path, *, stores: int, days: int, seed: int) -> Dataset:
    """Generate the sample files with ``uptime.tools.generate`` (fallback: the built-in one)."""
    try:
        files = generate_dataset(out_dir, stores=stores, days=days, seed=seed)
    except (ImportError, NotImplementedError):
        return _fallback_dataset(out_dir, stores=stores, days=days, seed=seed)
    return Dataset(files.status, files.hours, files.timezones, files.stores, files.status_rows,
                   "uptime.tools.generate")


@contextlib.contextmanager
def mongo_uri(data_dir: Path) -> Iterator[tuple[str, str]]:
    """Yield (uri, description): ``MONGODB_URI`` if set, else an embedded mongod in
    ``data_dir`` (stopped on exit)."""

    configured = Settings().mongodb_uri
    if configured:
        yield configured, "MONGODB_URI"
        return

    with EmbeddedMongo(data_dir, Settings().mongod) as server:
        assert server.uri is not None
        yield server.uri, f"embedded mongod, data in {data_dir}"


@contextlib.contextmanager
def api_server(env: dict[str, str], port: int, log_path: Path) -> Iterator[str]:
    """Run ``uptime-monitor serve`` on 127.0.0.1:``port``; yield its base URL; SIGTERM it on exit."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uptime.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uptime-monitor serve exited ({proc.returncode}); see {log_path}:\n"
                                   + log_path.read_text()[-2000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"uptime-monitor serve did not answer within 60 s; see {log_path}")
            time.sleep(0.1)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def summarize(csv_path: Path) -> dict[str, float | int]:
    """Stores and the median / mean of ``uptime_last_week`` (hours) in a report CSV."""
    with csv_path.open(newline="") as f:
        weeks = [float(row["uptime_last_week"]) for row in csv.DictReader(f)]
    return {
        "stores": len(weeks),
        "median_uptime_last_week": statistics.median(weeks) if weeks else 0.0,
        "mean_uptime_last_week": statistics.fmean(weeks) if weeks else 0.0,
    }


def run_demo(*, stores: int, days: int, seed: int, out: Path, database: str,
             wait: bool = False) -> dict:
    """Run every step; return a summary dict (paths, timings, numbers). Ends by printing the
    dashboard's address; with ``wait`` it keeps serving it until Ctrl-C."""
    started = time.monotonic()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def step(title: str) -> None:
        console.rule(f"[bold]{title}", align="left")

    with mongo_uri(out / "mongo") as (uri, where):
        console.print(f"MongoDB: {where}; database [bold]{database}[/bold] (dropped first)")

        with MongoClient(uri) as sync_client:
            sync_client.drop_database(database)

        step(f"1/4 generate {stores:,} stores x {days} days")
        t = time.monotonic()
        data = make_dataset(out / "dataset", stores=stores, days=days, seed=seed)
        timings["generate"] = time.monotonic() - t
        console.print(f"{data.status_rows:,} polls for {data.stores:,} stores in {data.status.parent} "
                      f"({data.source}, {timings['generate']:.1f} s)")

        env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "MONGODB_DATABASE")}
        env.update(MONGODB_URI=uri, MONGODB_DATABASE=database)
        step("2/4 uptime-monitor import")
        t = time.monotonic()
        cmd = [sys.executable, "-m", "uptime.cli", "import", "--status", str(data.status),
               "--hours", str(data.hours), "--timezones", str(data.timezones)]
        done = subprocess.run(cmd, env=env, check=False)
        if done.returncode not in (0, 1):  # 1 = some rows rejected (listed in the rejects file)
            raise RuntimeError(f"uptime-monitor import failed with exit code {done.returncode}")
        timings["import"] = time.monotonic() - t

        step("3/4 uptime-monitor serve + POST /trigger_report")

        token = Settings().api_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with api_server(env, free_port(), out / "serve.log") as base:
            console.print(f"API at {base} (OpenAPI docs: {base}/docs)")
            with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                t = time.monotonic()
                resp = http.post("/trigger_report")
                resp.raise_for_status()
                report_id = resp.json()["report_id"]
                console.print(f"report_id = {report_id}")
                csv_path = out / f"report-{report_id}.csv"
                with Progress(
                    TextColumn("GET /get_report"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                    TimeElapsedColumn(), console=console,
                ) as bar:
                    task = bar.add_task("report", total=1.0)
                    while True:
                        with http.stream("GET", "/get_report", params={"report_id": report_id}) as r:
                            r.raise_for_status()
                            if r.headers["content-type"].startswith("text/csv"):
                                with csv_path.open("wb") as f:
                                    for chunk in r.iter_bytes():
                                        f.write(chunk)
                                bar.update(task, completed=1.0)
                                break
                            body = (r.read(), r.json())[1]
                        if body["status"] == "Failed":
                            raise RuntimeError(f"report failed: {body['error']}")
                        bar.update(task, completed=body["progress"])
                        time.sleep(0.25)
                timings["report"] = time.monotonic() - t
                meta = next(x for x in http.get("/reports").json() if x["report_id"] == report_id)

            step("4/4 result")
            numbers = summarize(csv_path)
            timings["total"] = time.monotonic() - started
            console.print(f"CSV: [bold]{csv_path}[/bold]")
            console.print(
                f"{numbers['stores']:,} stores as of {meta['as_of']} ({meta['pipeline']}); "
                f"median uptime last week {numbers['median_uptime_last_week']:.2f} h "
                f"(mean {numbers['mean_uptime_last_week']:.2f} h); "
                f"{meta['timezone_fallbacks']} stores fell back to America/Chicago"
            )
            console.print(
                "timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
            )
            dashboard = f"{base}/ui/reports/{report_id}"
            console.print(f"Dashboard: [bold]{base}/[/bold] (this report: {dashboard})")
            if wait:
                console.print("Serving until Ctrl-C ...")
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(3600)
            else:
                console.print("--no-wait: stopping the dashboard now")
            return {"csv": csv_path, "report_id": report_id, "as_of": meta["as_of"],
                    "dashboard": dashboard, "timings": timings, **numbers}


def main(
    stores: Annotated[int, typer.Option(min=1, help="Stores in the sample dataset.")] = 5000,
    days: Annotated[int, typer.Option(min=1, help="Days of polls.")] = 9,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 7,
    out: Annotated[Path, typer.Option(help="Folder for the dataset, mongod data and CSV.")] = DEFAULT_OUT,
    database: Annotated[str, typer.Option(help="Database name (dropped first!).")] = DEMO_DATABASE,
    wait: Annotated[bool, typer.Option(
        "--wait/--no-wait", help="Keep serving the dashboard until Ctrl-C (default), or stop.")
    ] = True,
) -> None:
    """Generate a sample dataset, import it, start the API, trigger a report over HTTP,
    save the CSV and summarize it."""
    try:
        run_demo(stores=stores, days=days, seed=seed, out=out, database=database, wait=wait)
    except Exception as exc:

        if isinstance(exc, (EmbeddedServerError, RuntimeError, httpx.HTTPError)):
            console.print(f"[red]demo failed:[/red] {exc}")
            raise typer.Exit(1) from None
        raise


if __name__ == "__main__":  # pragma: no cover
    typer.run(main)
