"""What every command shares: the stderr console (``err``), ``--as-of`` parsing, and running a
database coroutine with a one-line error and exit 2 instead of a traceback (``_run_db``)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, TypeVar

import typer
from pymongo.errors import PyMongoError
from rich.console import Console

from uptime.platform import asof
from uptime.platform.embedded import EmbeddedServerError
from uptime.platform.migrations import MigrationError

T = TypeVar("T")

err = Console(stderr=True)


def parse_as_of(value: str | None) -> datetime | None:
    """Parse ``--as-of`` with ``uptime.platform.asof.parse_as_of`` (ISO 8601 only; no offset =
    UTC; numbers are refused, issue 9 item 9) to aware UTC, ms precision.

    Raises:
        typer.BadParameter: not an accepted ISO 8601 date-time (exit 2, the expected form shown).
    """
    if value is None:
        return None
    try:
        return asof.parse_as_of(value)
    except asof.AsOfError as exc:
        raise typer.BadParameter(str(exc), param_hint="--as-of") from None


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _run_db(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; a server that cannot be started or reached, or pending migrations, end
    the command with exit 2 and a one-line reason instead of a traceback."""
    try:
        return asyncio.run(work)
    except (EmbeddedServerError, MigrationError) as exc:
        raise _fail(str(exc)) from None
    except PyMongoError as exc:
        raise _fail(f"MongoDB: {exc}") from None
