"""HTTP routes, one module per resource: reports (``reports``), pushed polls (``polls``), the
dashboard's JSON API (``dashboard``), health and metrics (``ops``)."""
