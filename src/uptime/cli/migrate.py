"""``uptime-monitor migrate up | down | status``: the index migrations (``uptime.platform.migrations``)
from the command line. Exit 2 with a one-line reason when the server cannot be reached or a
migration fails."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from uptime.platform.db import open_database
from uptime.platform.embedded import EmbeddedServerError
from uptime.platform.migrations import MigrationError, migrate_down, migrate_up, migration_status
from uptime.platform.settings import get_settings

migrate_app = typer.Typer(
    help="Apply, revert or list the index migrations (migrations/*.json).", no_args_is_help=True
)

_DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Folder of migration files (default: the shipped migrations/).",
        exists=True,
        file_okay=False,
    ),
]


def _run(work: Any) -> Any:
    async def main() -> Any:
        async with open_database(get_settings(), migrate=False) as db:
            return await work(db)

    try:
        return asyncio.run(main())
    except (MigrationError, EmbeddedServerError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None


@migrate_app.command("up")
def up_command(directory: _DirOption = None) -> None:
    """Apply all pending migrations in name order."""
    applied = _run(lambda db: migrate_up(db, directory=directory))
    for name in applied:
        typer.echo(f"applied {name}")
    if not applied:
        typer.echo("nothing to apply: the database is current")


@migrate_app.command("down")
def down_command(
    all_: Annotated[bool, typer.Option("--all", help="Revert every applied migration.")] = False,
    directory: _DirOption = None,
) -> None:
    """Revert the last applied migration (or all with --all)."""
    reverted = _run(lambda db: migrate_down(db, all=all_, directory=directory))
    for name in reverted:
        typer.echo(f"reverted {name}")
    if not reverted:
        typer.echo("nothing to revert: no migration is applied")


@migrate_app.command("status")
def status_command(directory: _DirOption = None) -> None:
    """List migrations: applied (with time), pending, changed (file edited after it was
    applied) or missing (applied, file gone). Exit 1 if any is pending, changed or missing."""
    rows = _run(lambda db: migration_status(db, directory))
    for row in rows:
        when = row.applied_at.strftime("%Y-%m-%dT%H:%M:%SZ") if row.applied_at else "-"
        label = {
            "applied": "applied",
            "pending": "PENDING",
            "changed": "CHANGED (checksum differs from the applied file)",
            "missing": "MISSING (applied, file not found)",
        }[row.state]
        typer.echo(f"{row.file_name}  {when:20}  {label}")
    if not rows:
        typer.echo("no migrations")
    if any(r.state != "applied" for r in rows):
        raise typer.Exit(1)
