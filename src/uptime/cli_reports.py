"""Placeholder; its owner replaces it."""


def report_command() -> None:
    """Not implemented yet."""
    raise NotImplementedError


def reports_command() -> None:
    """Not implemented yet."""
    raise NotImplementedError


def serve_command() -> None:
    """Not implemented yet."""
    raise NotImplementedError
