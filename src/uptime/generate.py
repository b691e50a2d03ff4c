"""Placeholder; its owner replaces it."""


def generate_command() -> None:
    """Not implemented yet."""
    raise NotImplementedError
