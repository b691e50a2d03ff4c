"""Placeholder; its owner replaces it."""


def import_command() -> None:
    """Not implemented yet."""
    raise NotImplementedError
