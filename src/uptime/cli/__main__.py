"""``python -m uptime.cli``: the ``uptime`` command (the tools and tests start it this way)."""



from uptime.cli import main

main()
