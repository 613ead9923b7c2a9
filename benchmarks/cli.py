"""Command-line checks shared by the benchmark scripts (a bad flag is one line, never a traceback),
and the chunk timer of the scripts that time training steps (:func:`chunk_timer`, and
:func:`atlas_timer` for a cell in the memory atlas's set-up).

``--out`` is checked before anything is measured (:func:`check_out`), so a mistyped path does not
throw away a long run at its end, and the report is written in one step (:func:`write_json`).
Without ``--out`` a report goes to a fresh ``runs/<benchmark>/<YYYYmmdd-HHMMSS>/<benchmark>.json``
(never over a committed report). A report gets a sidecar ``<report>.config.json`` holding the
command line that measured it; an existing file is replaced only by the same command line, or
with ``--overwrite`` (:mod:`jaxseq.files.guard`).
"""

import json
import pathlib
import sys
import time
from typing import Any, Callable, Iterable, Optional

from absl import app

from jaxseq.files.guard import claim_files, define_overwrite, make_owner, record_owner
from jaxseq.files.results import fresh_run_path, write_text_atomic

_OVERWRITE = define_overwrite()
# flags that choose where a report goes, not what it measures
_WHERE = ("--out", "--profile_out", "--overwrite", "--nooverwrite")


def check_arguments(argv: list) -> None:
    """Refuses positional arguments (``argv`` as absl passes it to ``main``)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")


def check_choices(values: Iterable[str], choices: Iterable[str], what: str) -> None:
    """Refuses any of ``values`` not in ``choices``, naming them and the choices (``what``: e.g. "cells")."""
    choices, values = sorted(choices), list(values)
    unknown = sorted(set(values) - set(choices))
    if unknown:
        raise app.UsageError(f"unknown {what} {unknown}; choose from {', '.join(choices)}")
    check_unique(values, what)


def check_positive_ints(values: Iterable[str], flag: str) -> list[int]:
    """``values`` (a list flag's strings) as positive integers, each once; refuses anything else, naming ``--flag``."""
    values = list(values)
    if not all(value.isdigit() and int(value) > 0 for value in values):
        raise app.UsageError(f"--{flag} must be positive integers, got {values}")
    check_unique(values, flag)
    return [int(value) for value in values]


def check_unique(values: Iterable[str], flag: str) -> None:
    """Refuses a list flag that names an entry twice (it would be measured twice)."""
    values = list(values)
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise app.UsageError(f"--{flag.lstrip('-')}: {', '.join(repeated)} given more than once; list each once")


def owner() -> dict:
    """Who writes this benchmark's report: the benchmark and the flags that say what it measures."""
    argv = [arg for arg in sys.argv[1:] if not arg.startswith(_WHERE)]
    return make_owner(pathlib.Path(sys.argv[0]).stem, argv)


def check_out(path: Optional[str], flag: str = "--out") -> pathlib.Path:
    """``path`` (the value of ``flag``; None: a fresh ``runs/<benchmark>/<time>/<benchmark>.json``) as a
    path this report may be written to, checked before any timing starts.

    Refuses a directory, an unwritable place, a path that starts with ``-`` (a mistyped flag), and an
    existing file (or its ``.interrupted`` twin) that another command line wrote, unless ``--overwrite``.
    """
    if not path:
        name = pathlib.Path(sys.argv[0]).stem
        path = str(fresh_run_path(name) / f"{name}.json")
        print(f"writing to {path} (give {flag} to choose)")
    try:
        out, _ = claim_files([path, interrupted_path(pathlib.Path(path))], flag, owner(), _OVERWRITE.value)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    return out


def interrupted_path(out: pathlib.Path) -> pathlib.Path:
    """Where a run stopped with Ctrl-C writes what it measured: ``<out stem>.interrupted<suffix>``
    beside ``out``, so an interrupted run never replaces a finished report."""
    return out.with_name(f"{out.stem}.interrupted{out.suffix}")


def write_json(path: pathlib.Path, report: Any, indent: int = 1) -> None:
    """Writes ``report`` as JSON to ``path`` (directories created, file replaced in one rename) and says so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(report, indent=indent) + "\n")
    record_owner(path, owner())
    print(f"wrote {path}")


def chunk_timer(runner, num_seeds: int) -> Callable[[], float]:
    """A function that trains one chunk of ``runner`` (a :class:`jaxseq.runner.multiseed.MultiSeedRunner`)
    for ``num_seeds`` seeds from key 0 and returns its wall seconds; it has run once (compiled,
    warmed up) before it is returned, and each call continues the same run."""
    import jax

    from jaxseq.runner.multiseed import seed_keys

    state = {"run": runner.init(seed_keys(jax.random.key(0), num_seeds))}

    def timed() -> float:
        start = time.perf_counter()
        state["run"], metrics = runner.run_chunk(state["run"])
        jax.block_until_ready((state["run"], metrics))
        return time.perf_counter() - start

    timed()
    return timed


def atlas_timer(cell: str, task: str, length: int, chunk: int) -> tuple[Callable[[], float], int]:
    """A :func:`chunk_timer` for one setting of the memory atlas: ``cell`` (an entry of
    ``configs/atlas.py``'s variants) on ``task`` at length ``length``, ``chunk`` steps per call, the
    atlas's ``train.num_seeds`` seeds together, never stopping early. Returns the timer and the
    number of time steps a sequence of that setting has."""
    from jaxseq.config import load_config
    from jaxseq.runner.multiseed import MultiSeedRunner
    from jaxseq.train.sequence_trainer import make_train
    from jaxseq.train.sweep import setting_config

    atlas = load_config("configs/atlas.py")
    fields = {f"model.{k}": v for k, v in atlas.variants[cell].model.items()}
    config = setting_config(atlas, **fields, **{"data.task": task, "data.length": length, "train.num_steps": 10**6,
                                                "train.chunk_steps": chunk, "train.stop_accuracy": 2.0})
    trainer = make_train(config)
    return chunk_timer(MultiSeedRunner(trainer, config.runner), config.train.num_seeds), trainer.time_steps
