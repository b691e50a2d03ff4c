"""``python -m uptime``: the same command as the ``uptime`` console script."""

from uptime.cli import app

app()
