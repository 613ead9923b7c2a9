"""Command-line checks shared by the benchmark scripts: a bad flag is one line, never a traceback.

``--out`` is checked before anything is measured (:func:`check_out`), so a mistyped path does not
throw away a long run at its end, and the report is written in one step (:func:`write_json`).
"""

import json
import pathlib
from typing import Any, Iterable

from absl import app

from jaxseq.train.results import check_writable_file, write_text_atomic


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


def check_out(path: str, flag: str = "--out") -> pathlib.Path:
    """``path`` (the value of ``flag``) as a path a JSON report can be written to; refuses a directory,
    an unwritable place or a path that starts with ``-`` (a mistyped flag) before any timing starts."""
    try:
        return check_writable_file(path, flag)
    except ValueError as error:
        raise app.UsageError(str(error)) from None


def interrupted_path(out: pathlib.Path) -> pathlib.Path:
    """Where a run stopped with Ctrl-C writes what it measured: ``<out stem>.interrupted<suffix>``
    beside ``out``, so an interrupted run never replaces a finished report."""
    return out.with_name(f"{out.stem}.interrupted{out.suffix}")


def write_json(path: pathlib.Path, report: Any, indent: int = 1) -> None:
    """Writes ``report`` as JSON to ``path`` (directories created, file replaced in one rename) and says so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(report, indent=indent) + "\n")
    print(f"wrote {path}")
