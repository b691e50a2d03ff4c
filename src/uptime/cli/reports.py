"""CLI commands of the report service: ``uptime-monitor report``, ``uptime-monitor reports``, ``uptime-monitor serve``.

``uptime-monitor report`` goes through the same stored-report path as ``POST /trigger_report``: it
creates a report document, generates it into GridFS (``uptime.report.service.ReportService``) and
then copies the stored CSV to ``--output`` (a file, or ``-`` for stdout). Progress and the
summary go to stderr, so ``--output -`` pipes clean CSV.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import psutil
import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from uptime.cli.check import format_ignored
from uptime.cli.common import _fail, _run_db, err, parse_as_of  # noqa: F401 - re-exported
from uptime.platform import asof
from uptime.platform.db import open_database
from uptime.platform.settings import get_settings
from uptime.report import period as period_report
from uptime.report import storage
from uptime.report.service import ReportService
from uptime.report.phases import DECIMALS, format_phases
from uptime.report.pipeline import check_version, pipeline_tag
from uptime.web.app import create_app
from uptime.web.bounds import SHUTDOWN_GRACE_S


def _check_output(output: str | None) -> None:
    """Fail (exit 2) before any work if the CSV could not be written where asked.

    Raises:
        typer.Exit: ``output`` is a directory, its folder does not exist, or either is not
            writable (``None`` = ``report-<id>.csv`` in the current directory).
    """
    if output == "-":
        return
    if output is None:  # report-<id>.csv in the current directory
        if not os.access(Path.cwd(), os.W_OK):
            raise _fail(f"the current directory {Path.cwd()} is not writable; give --output")
        return
    path = Path(output)
    folder = path.parent
    if path.is_dir():
        raise _fail(f"--output {output} is a directory; give a file path in it instead")
    if not folder.is_dir():
        raise _fail(f"--output {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise _fail(f"--output {path}: not writable")


async def _run_report(
    as_of: datetime | None, output: str | None, version: str | None = None, period: Any = None
) -> dict[str, Any]:

    settings = get_settings()
    cli_phases = {"cli_start": _since_process_start()}
    connect_started = time.perf_counter()
    async with open_database(settings) as db:
        service = ReportService(db, settings)
        await service.start(recover=False)
        cli_phases["cli_connect"] = time.perf_counter() - connect_started
        try:
            report_id = await service.trigger(as_of, version, period)
            with Progress(
                TextColumn("report {task.fields[rid]}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
                disable=not err.is_terminal,
            ) as bar:
                task = bar.add_task("report", total=1.0, rid=report_id[:8])
                waiter = asyncio.create_task(service.wait(report_id))
                while not waiter.done():
                    doc = await storage.get_report(db, report_id)
                    if doc is not None:
                        bar.update(task, completed=doc.get("progress") or 0.0)
                    await asyncio.wait([waiter], timeout=0.25)
                doc = waiter.result()
        finally:
            await service.stop()
        if doc["status"] != storage.COMPLETE:
            hint = ""
            if doc.get("pipeline") != pipeline_tag("v1"):
                hint = "; `--pipeline v1` computes the report from the polls alone"
            raise _fail(f"report {report_id} failed: {doc.get('error')}{hint}", code=1)
        copy_started = time.perf_counter()
        if output == "-":
            await storage.write_csv(db, doc["file_id"], sys.stdout.buffer)
            sys.stdout.buffer.flush()
            doc["output"] = "-"
        else:
            path = Path(output) if output else Path(f"report-{report_id}.csv")
            try:
                with path.open("wb") as out:
                    await storage.write_csv(db, doc["file_id"], out)
            except OSError as exc:
                raise _fail(
                    f"cannot write {path}: {exc.strerror}; the report is stored as "
                    f"{report_id} (GET /get_report?report_id={report_id})"
                ) from None
            doc["output"] = str(path)
        cli_phases["cli_copy"] = time.perf_counter() - copy_started
        doc["phases"] = {**(doc.get("phases") or {}),
                         **{k: round(v, DECIMALS) for k, v in cli_phases.items()}}
        return doc


def _since_process_start() -> float:
    """Seconds from this process's start to now (interpreter start-up and imports)."""
    return max(0.0, time.time() - psutil.Process().create_time())


def report_command(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The instant the report is for, an ISO 8601 date-time (e.g. "
            "2024-03-12T15:00:00Z; no offset = UTC; numbers are refused). Default: the "
            "latest poll not after the server's time + 5 min.",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o",
            help="Where to write the CSV: a path, or - for stdout. Default: "
            "report-<id>.csv in the current directory.",
        ),
    ] = None,
    pipeline_version: Annotated[
        str | None,
        typer.Option(
            "--pipeline",
            help="Report pipeline version: v1 (reads every poll) or v2 (reads the status "
            "timeline). Default: v2 when the status timeline is current, else v1 at once "
            "(a standalone server: always v1). Both give the same CSV; the output names the "
            "one that ran.",
        ),
    ] = None,
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            help="A period report instead: YYYY-MM, YYYY-Qn, YYYY or YYYY-Www (ISO "
            "week), each in every store's own local time. CSV: store_id, period_start, "
            "period_end, uptime_hours, downtime_hours, uptime_percent.",
        ),
    ] = None,
    period_from: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="A period report for the UTC range [--from, --to) (ISO 8601), the same for "
            "every store.",
        ),
    ] = None,
    period_to: Annotated[
        str | None, typer.Option("--to", help="End of the --from range (exclusive).")
    ] = None,
) -> None:
    """Generate a report (stored in MongoDB like the API's) and write its CSV.

    Period reports: `uptime-monitor report --period 2024-03 --output march.csv`, or
    `uptime-monitor report --from 2024-03-01T00:00:00Z --to 2024-03-08T00:00:00Z`."""

    parsed = parse_as_of(as_of)
    try:
        version = None if pipeline_version is None else check_version(pipeline_version)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--pipeline") from None
    chosen = _parse_period_options(period, period_from, period_to)
    if chosen is not None and version is not None:
        raise typer.BadParameter("--pipeline chooses the hour/day/week report's pipeline; a "
                                 "period report always runs period_uptime@v1",
                                 param_hint="--pipeline")
    too_early = None if chosen is not None else asof.report_as_of_problem(parsed)
    if too_early is not None:
        raise typer.BadParameter(too_early, param_hint="--as-of")
    _check_output(output)
    doc = _run_db(_run_report(parsed, output, version, chosen))
    what = f" for {doc['period']['label']}" if doc.get("period") else ""
    err.print(
        f"report {doc['_id']}{what}: {doc['rows']} stores as of {doc['as_of'].isoformat()} "
        f"({doc['pipeline']}, {doc['timezone_fallbacks']} timezone fallbacks)"
        + ("" if doc["output"] == "-" else f" -> {doc['output']}"),
        highlight=False,
        soft_wrap=True,
    )
    err.print(
        f"pipeline: {doc['pipeline']} — {doc.get('pipeline_reason') or 'requested'}",
        highlight=False,
        soft_wrap=True,
    )

    err.print(f"ignored input: {format_ignored(doc.get('ignored'))}", highlight=False,
              soft_wrap=True)
    err.print(f"phases: {format_phases(doc.get('phases'))}", highlight=False, soft_wrap=True)


def _parse_period_options(period: str | None, start: str | None, end: str | None) -> Any:
    """``--period`` or ``--from``/``--to`` -> an ``uptime.report.period.Period`` (``None``:
    the hour/day/week report). Bad values are a usage error naming the option."""
    if period is not None and (start is not None or end is not None):
        raise typer.BadParameter("give either --period or --from/--to, not both",
                                 param_hint="--period")
    if period is not None:
        try:
            return period_report.parse_period(period)
        except period_report.PeriodError as exc:
            raise typer.BadParameter(str(exc), param_hint="--period") from None
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise typer.BadParameter("--from and --to go together", param_hint="--from/--to")
    bounds = []
    for hint, value in (("--from", start), ("--to", end)):
        try:
            bounds.append(asof.parse_as_of(value))
        except asof.AsOfError as exc:
            raise typer.BadParameter(str(exc), param_hint=hint) from None
    try:
        return period_report.period_from_range(*bounds)
    except period_report.PeriodError as exc:
        raise typer.BadParameter(str(exc), param_hint="--from/--to") from None


async def _list(limit: int) -> list[dict[str, Any]]:

    async with open_database(get_settings(), migrate=False) as db:
        return await storage.list_reports(db, limit)


def _fmt_time(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def reports_command(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many reports.")] = 20,
) -> None:
    """List recent reports (newest first): id, status, as_of, pipeline, rows, ignored input
    documents (details: GET /reports or uptime-monitor check)."""
    docs = _run_db(_list(limit))
    table = Table(show_header=True, header_style="bold")
    for column in ("report_id", "status", "progress", "as_of", "pipeline", "created",
                   "finished", "rows", "ignored"):
        table.add_column(column, no_wrap=True)
    table.add_column("error", overflow="fold")
    for doc in docs:
        table.add_row(
            doc["_id"],
            doc.get("status", ""),
            f"{doc.get('progress') or 0:.0%}",
            _fmt_time(doc.get("as_of")),
            doc.get("pipeline", ""),
            _fmt_time(doc.get("created_at")),
            _fmt_time(doc.get("finished_at")),
            "" if doc.get("rows") is None else str(doc["rows"]),
            "" if doc.get("ignored") is None else str(sum(c["count"] for c in doc["ignored"])),
            doc.get("error") or "",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=220)
    console.print(table)


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs). With MONGODB_URI unset it starts the
    embedded mongod and stops it on exit."""


    # issue 15: on SIGTERM, requests still running after SHUTDOWN_GRACE_S are cancelled
    uvicorn.run(create_app(get_settings()), host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
