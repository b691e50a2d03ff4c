"""Placeholder; its owner replaces it."""

import typer

migrate_app = typer.Typer(help="Apply or revert index migrations.")


async def ensure_current(db, *, apply: bool) -> list[str]:
    """Not implemented yet."""
    return []
