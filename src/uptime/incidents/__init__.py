"""Incidents (issue 17): maximal inactive stretches of a store's status timeline that overlap
its business hours by at least ``min_minutes``. The definition is computed inside MongoDB by
``pipelines/incidents.v1.json`` (sidecar ``incidents.v1.md``); :mod:`uptime.incidents.query`
runs it, :mod:`uptime.cli.incidents` writes the CSV, :mod:`uptime.web.routes.incidents` serves
``GET /incidents``."""
