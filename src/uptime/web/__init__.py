"""Web: the HTTP API (FastAPI) and the dashboard."""
