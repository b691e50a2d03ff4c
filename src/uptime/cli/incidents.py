"""``uptime-monitor incidents``: the incidents as of an instant as CSV (issue 17, item 2).

Registered in ``uptime.cli`` with one line (``app.command("incidents")(incidents_command)``).
Output: exactly the header ``store_id,started_at,ended_at,business_downtime_minutes``; times
ISO 8601 UTC with milliseconds and ``Z``; ``ended_at`` empty while the incident is open;
minutes with 2 decimals; rows sorted by ``store_id`` then ``started_at``. Progress and the
summary go to stderr, so ``--output -`` pipes clean CSV.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from uptime.incidents.query import CSV_COLUMNS, choose_source, csv_cells, find_incidents, iso_ms
from uptime.cli.common import _fail, _run_db, err, parse_as_of
from uptime.cli.reports import _check_output
from uptime.platform.db import open_database
from uptime.platform.settings import get_settings
from uptime.report.pipeline import resolve_as_of
from uptime.report.csvout import line


def write_csv(rows: list[dict[str, Any]], out: TextIO) -> None:
    """The CSV (header + one line per incident, ``\\n`` line ends) of ``find_incidents`` rows."""
    out.write(line(CSV_COLUMNS))
    for row in rows:
        out.write(line(csv_cells(row)))


async def _run(as_of: datetime | None, min_minutes: float | None) -> dict[str, Any]:

    settings = get_settings()
    minutes = settings.incident_min_minutes if min_minutes is None else min_minutes
    async with open_database(settings) as db:
        resolved = await resolve_as_of(db, as_of)
        source, pending = await choose_source(db)
        rows = [] if resolved is None else await find_incidents(
            db, resolved, minutes, source=source, poll_stores=pending)
    return {"rows": rows, "as_of": resolved, "min_minutes": minutes,
            "source": "status_runs" if source == "runs" and not pending
            else "store_status (timeline not current)"}


def incidents_command(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The instant, an ISO 8601 date-time (no offset = UTC; numbers are refused). "
            "Default: as the report's, the latest poll not after the server's time + 5 min.",
        ),
    ] = None,
    min_minutes: Annotated[
        float | None,
        typer.Option(
            "--min-minutes", min=0,
            help="Least business downtime (minutes) of an incident. Default: "
            "UPTIME_INCIDENT_MIN_MINUTES (15).",
        ),
    ] = None,
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="Where to write the CSV: a path, or - for stdout."),
    ] = "-",
) -> None:
    """Write the incidents as of an instant as CSV: maximal inactive stretches of each
    store whose overlap with its business hours is at least --min-minutes.

    Columns: store_id, started_at (first instant inside business hours), ended_at (the
    recovery instant; empty while open), business_downtime_minutes. Example:
    uptime-monitor incidents --as-of 2024-03-12T15:00:00Z --min-minutes 30 -o incidents.csv
    """
    parsed = parse_as_of(as_of)
    _check_output(output)
    result = _run_db(_run(parsed, min_minutes))
    rows = result["rows"]
    if output == "-":
        write_csv(rows, sys.stdout)
        sys.stdout.flush()
    else:
        try:
            with Path(output).open("w", encoding="utf-8", newline="") as out:
                write_csv(rows, out)
        except OSError as exc:
            raise _fail(f"cannot write {output}: {exc.strerror}") from None
    opened = sum(1 for r in rows if r["ended_at"] is None)
    when = iso_ms(result["as_of"]) if result["as_of"] else "(no polls)"
    err.print(f"{len(rows)} incidents ({opened} open) as of {when}, min {result['min_minutes']:g}"
              f" minutes, runs from {result['source']}"
              + ("" if output == "-" else f" -> {output}"), highlight=False, soft_wrap=True)
