"""``uptime-monitor generate``: write a realistic v1-shaped dataset with ``uptime.tools.generate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from uptime.cli.common import parse_as_of
from uptime.tools.generate import V1_STORES, generate_dataset

def generate_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the three CSV files into.")],
    stores: Annotated[int, typer.Option(min=1, help="Stores with polls (v1: 14,092).")] = V1_STORES,
    days: Annotated[int, typer.Option(min=1, help="Days of polls ending at --as-of.")] = 9,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 0,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Latest poll, ISO 8601 (default v1's 2023-01-25T18:13:22.47922Z)."),
    ] = None,
    hours_from: Annotated[
        Path | None,
        typer.Option("--hours-from", exists=True, dir_okay=False, help="Reuse real hours rows."),
    ] = None,
    timezones_from: Annotated[
        Path | None,
        typer.Option("--timezones-from", exists=True, dir_okay=False, help="Reuse real zones."),
    ] = None,
) -> None:
    """Write a realistic v1-shaped dataset (store_status.csv, menu_hours.csv, timezones.csv)."""
    result = generate_dataset(
        out,
        stores=stores,
        days=days,
        seed=seed,
        as_of=parse_as_of(as_of),
        hours_from=hours_from,
        timezones_from=timezones_from,
    )
    console = Console(stderr=True)
    console.print(
        f"[green]wrote[/green] {result.status} ({result.status_rows:,} polls, "
        f"{result.inactive_rows / max(result.status_rows, 1):.1%} inactive, {result.stores:,} stores)\n"
        f"[green]wrote[/green] {result.hours} ({result.hours_rows:,} rows)\n"
        f"[green]wrote[/green] {result.timezones} ({result.timezone_rows:,} rows)\n"
        f"latest poll (default as_of): {result.as_of.isoformat().replace('+00:00', 'Z')}; "
        f"{result.seconds:.1f} s"
    )
