"""Uptime Monitor: per-store uptime and downtime within business hours.

The computation lives in MongoDB aggregation pipelines (``pipelines/``); this package
orchestrates them: settings, an embedded ``mongod``, CSV import, index migrations, the
report service and the command line.
"""

__version__ = "0.1.0"
