"""``python -m uptime``: the ``uptime-monitor`` command line (``uptime.cli``)."""

from uptime.cli import main

main()
