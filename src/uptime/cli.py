"""The ``uptime`` command line (typer).

Subcommands live beside the code they drive; this module only assembles them:
``import`` (uptime.ingest.importer), ``migrate up|down|status`` (uptime.platform.migrations), ``report``,
``reports`` and ``serve`` (uptime.report.cli), ``generate`` (uptime.tools.generate) and
``bench`` (uptime.tools.bench), ``runs rebuild|status|follow`` (uptime.timeline.cli).
"""

from __future__ import annotations

import typer

from uptime.ingest import importer
from uptime.platform import migrations
from uptime.report import cli as cli_reports
from uptime.timeline.cli import runs_app
from uptime.tools import bench, generate

app = typer.Typer(
    name="uptime",
    help="Store uptime and downtime within business hours, computed in MongoDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

app.command("import")(importer.import_command)
app.add_typer(migrations.migrate_app, name="migrate")
app.command("report")(cli_reports.report_command)
app.command("reports")(cli_reports.reports_command)
app.command("serve")(cli_reports.serve_command)
app.command("generate")(generate.generate_command)
app.command("bench")(bench.bench_command)
app.add_typer(runs_app, name="runs")


if __name__ == "__main__":  # pragma: no cover
    app()
