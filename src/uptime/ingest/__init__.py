"""Ingest: polls, business hours and time zones coming in (CSV files, HTTP), one validation path."""
