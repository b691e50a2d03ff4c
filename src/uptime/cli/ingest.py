"""``uptime-monitor import --status/--hours/--timezones``: the CSV importer (``uptime.ingest.importer``)
from the command line. Exit 1 if any row was rejected, 2 on a file error or an unreachable
database."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from uptime.ingest.importer import ImportFileError, ImportSummary, import_files
from uptime.platform.db import open_database
from uptime.platform.embedded import EmbeddedServerError
from uptime.platform.migrations import MigrationError
from uptime.platform.settings import get_settings

_FileOption = dict(exists=True, dir_okay=False, readable=True, resolve_path=False)


def import_command(
    status: Annotated[
        Path | None,
        typer.Option("--status", help="Polls CSV: store_id,status,timestamp_utc.", **_FileOption),
    ] = None,
    hours: Annotated[
        Path | None,
        typer.Option(
            "--hours",
            help="Business hours CSV: store_id,day|dayOfWeek,start_time_local,end_time_local. "
            "The new truth for the stores it mentions.",
            **_FileOption,
        ),
    ] = None,
    timezones: Annotated[
        Path | None,
        typer.Option(
            "--timezones",
            help="Timezones CSV: store_id,timezone_str. The new truth for the stores it mentions.",
            **_FileOption,
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            help="Where rejected rows go: a directory (<dir>/<file>.rejects.csv) or a file "
            "(with several inputs: <stem>.<kind>.csv). Default: <input>.rejects.csv.",
        ),
    ] = None,
) -> None:
    """Load CSV files into MongoDB; exit 1 if any row was rejected, 2 on a file error."""
    if status is None and hours is None and timezones is None:
        typer.echo("Error: give at least one of --status, --hours, --timezones", err=True)
        raise typer.Exit(2)

    async def run() -> list[ImportSummary]:
        async with open_database(get_settings()) as db:
            return await import_files(
                db,
                status=status,
                hours=hours,
                timezones=timezones,
                rejects=rejects,
                progress=sys.stderr.isatty(),
            )

    try:
        summaries = asyncio.run(run())
    except (ImportFileError, MigrationError, EmbeddedServerError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    for summary in summaries:
        typer.echo(summary.describe())
    if any(s.rejected for s in summaries):
        raise typer.Exit(1)
