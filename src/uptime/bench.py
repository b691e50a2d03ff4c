"""Placeholder; its owner replaces it."""


def bench_command() -> None:
    """Not implemented yet."""
    raise NotImplementedError
