"""The ``uptime-monitor`` command line (typer; also ``python -m uptime``). Not ``uptime``: that
name is the standard procps command on every Linux machine (issue 14).

Every subcommand lives in this package, one module per command group; this module only
assembles them: ``import`` (uptime.cli.ingest), ``migrate up|down|status`` (uptime.cli.migrate),
``report``, ``reports`` and ``serve`` (uptime.cli.reports), ``check`` (uptime.cli.check),
``generate`` (uptime.cli.generate), ``bench`` (uptime.cli.bench) and
``runs rebuild|status|follow`` (uptime.cli.runs), ``polls compact`` (uptime.cli.polls),
``incidents`` (uptime.cli.incidents),
``channels`` and ``maintenance`` (uptime.cli.notify).
"""

from __future__ import annotations

import inspect

import typer
from pydantic import ValidationError

from uptime.cli import check as cli_check
from uptime.cli.bench import bench_command
from uptime.cli import generate
from uptime.cli.incidents import incidents_command
from uptime.cli import reports as cli_reports
from uptime.cli.ingest import import_command
from uptime.cli.migrate import migrate_app
from uptime.cli.notify import channels_app, maintenance_app
from uptime.cli.polls import polls_app
from uptime.cli.runs import runs_app
from uptime.platform.settings import Settings, settings_errors

app = typer.Typer(
    name="uptime-monitor",
    help="Store uptime and downtime within business hours, computed in MongoDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

app.command("import")(import_command)
app.add_typer(migrate_app, name="migrate")
app.command("report")(cli_reports.report_command)
app.command("reports")(cli_reports.reports_command)
app.command("check")(cli_check.check_command)
app.command("serve")(cli_reports.serve_command)
app.command("generate")(generate.generate_command)
app.command("bench")(bench_command)
app.add_typer(runs_app, name="runs")
app.add_typer(polls_app, name="polls")  # issue 18: polls compact
app.command("incidents")(incidents_command)  # issue 17
app.add_typer(channels_app, name="channels")
app.add_typer(maintenance_app, name="maintenance")


def _unwrap_help(typer_app: typer.Typer) -> None:
    """Help texts come from docstrings wrapped at 100 columns; typer keeps those line breaks,
    so at 80 columns a sentence broke mid-line. Join the lines of each paragraph (blank
    lines stay paragraph breaks) and let the terminal wrap them (issue 9, "Also")."""
    for info in typer_app.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            doc = inspect.cleandoc(info.callback.__doc__)
            info.help = "\n\n".join(" ".join(p.split()) for p in doc.split("\n\n"))
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _unwrap_help(group.typer_instance)


_unwrap_help(app)


def main() -> None:
    """Run the command line as ``uptime-monitor`` (whatever the entry point's file name).

    A setting the environment gives a value it cannot take (``UPTIME_REPORT_PARALLEL=0``)
    ends the command with one line per such setting, naming its variable, and exit 2 — not a
    traceback (found by the fresh-user trial, issue 19)."""
    try:
        app(prog_name="uptime-monitor")
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        for line in settings_errors(exc):
            typer.echo(f"error: {line}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    main()
