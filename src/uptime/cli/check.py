"""``uptime-monitor check``: list the input documents that break a rule (issue 9 item 6).

Each rule is a check file in ``pipelines/checks/`` (see ``uptime.report.quality``). For each
check with findings it prints the collection, the reason, the total, the rule, and up to
``--limit`` offending documents as ``_id`` and the field's value. Exit code 0 when nothing is
found, 1 when anything is, 2 for setup errors (database unreachable, ...).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from uptime.report import quality
from uptime.cli.common import _run_db, err
from uptime.platform.db import open_database
from uptime.platform.settings import get_settings

_VALUE_CHARS = 60


def format_ignored(counts: list[dict[str, Any]] | None) -> str:
    """One line for humans: the non-zero ``reports.ignored`` counts, or ``nothing``."""
    if counts is None:
        return "not counted"
    found = [f"{c['collection']}.{c['reason']} {c['count']:,}" for c in counts if c["count"]]
    return ", ".join(found) if found else "nothing"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _VALUE_CHARS else text[:_VALUE_CHARS] + "…"


async def _run(limit: int) -> list[quality.CheckResult]:

    async with open_database(get_settings(), migrate=False) as db:
        return await quality.run_checks(db, cap=limit)


def check_command(
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, help="Documents listed per rule (totals are exact)."),
    ] = 10,
) -> None:
    """List input documents that break a rule (pipelines/checks/*.json): collection, _id,
    field, reason. Exit 1 if any are found."""
    results = _run_db(_run(limit))
    out = Console(soft_wrap=True, highlight=False)
    failing = [r for r in results if r.total]
    for result in failing:
        c = result.check
        out.print(f"{c.collection} {c.reason}: {result.total:,} document(s) — {c.rule}")
        for row in result.rows:
            out.print(f"  _id={_show(row.get('_id'))}  {c.field}={_show(row.get('value'))}")
        if result.total > len(result.rows):
            out.print(f"  … and {result.total - len(result.rows):,} more")
    documents = sum(r.total for r in failing)
    err.print(
        f"{len(results)} checks, {len(failing)} failing, {documents:,} document(s) found",
        highlight=False,
    )
    if failing:
        raise typer.Exit(1)
