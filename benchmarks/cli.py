"""Command-line checks shared by the benchmark scripts: a bad flag is one line, never a traceback."""

from typing import Iterable

from absl import app


def check_arguments(argv: list) -> None:
    """Refuses positional arguments (``argv`` as absl passes it to ``main``)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")


def check_choices(values: Iterable[str], choices: Iterable[str], what: str) -> None:
    """Refuses any of ``values`` not in ``choices``, naming them and the choices (``what``: e.g. "cells")."""
    choices = sorted(choices)
    unknown = sorted(set(values) - set(choices))
    if unknown:
        raise app.UsageError(f"unknown {what} {unknown}; choose from {', '.join(choices)}")


def check_positive_ints(values: Iterable[str], flag: str) -> list[int]:
    """``values`` (a list flag's strings) as positive integers; refuses anything else, naming ``--flag``."""
    values = list(values)
    if not all(value.isdigit() and int(value) > 0 for value in values):
        raise app.UsageError(f"--{flag} must be positive integers, got {values}")
    return [int(value) for value in values]
