"""``uptime-monitor polls compact`` — remove the raw polls older than the retention horizon,
once, now (issue 18 item 4; the service also does it every ``UPTIME_POLL_COMPACT_INTERVAL_S``).
The work is :func:`uptime.timeline.retention.compact_polls`; settings
``poll_retention_days`` of :class:`uptime.platform.settings.Settings`."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from uptime.cli.common import _run_db
from uptime.platform.db import open_database
from uptime.platform.settings import get_settings
from uptime.timeline.retention import compact_polls

out = Console()
polls_app = typer.Typer(
    help="Raw polls (collection store_status): remove those older than the retention horizon.",
    no_args_is_help=True,
)


async def _compact() -> dict[str, Any]:
    settings = get_settings()
    async with open_database(settings) as db:
        return await compact_polls(db, settings.poll_retention_days)


@polls_app.command("compact")
def compact_command() -> None:
    """Remove the raw polls older than UPTIME_POLL_RETENTION_DAYS days (per store: those
    before the first poll of the run in force at the horizon), once, now, in batches while
    ingestion goes on. The status timeline keeps them: it is rebuilt first when it is not
    current, and reports, incidents and rebuilds give the same answers afterwards."""
    result = _run_db(_compact())
    horizon = result["horizon"].isoformat(timespec="seconds").replace("+00:00", "Z")
    note = f"; {result['reason']}" if result["rebuilt"] else ""
    out.print(f"polls compacted: {result['removed']:,} polls before {horizon} removed "
              f"({result['stores']:,} stores) in {result['seconds']:.1f} s{note}")
