"""What a step of the memory atlas costs, per cell and length: the numbers its budget is chosen by.

    .venv/bin/python benchmarks/bench_atlas_cost.py                       # every cell of configs/atlas.py, T = 64 and 256
    .venv/bin/python benchmarks/bench_atlas_cost.py --cells=lstm,lru --lengths=64 --tasks=copy

Every cell trains in the atlas's own set-up (``configs/atlas.py``: its cell overrides, width,
batch, optimiser and ``train.num_seeds`` seeds vmapped in one program), through the project's
``SequenceTrainer.run_chunk`` under ``MultiSeedRunner``. Each (cell, task, length) compiles one
chunk of ``--chunk`` steps, runs it once to warm up, then times ``--repeats`` chunks in turn with
the others at the same length (round-robin, so a noisy neighbour slows all alike); the table
reports the median. ``ms/step`` is one step of all seeds together; ``2,000 steps`` is what a
setting no seed solves costs at the atlas's budget (``train.num_steps``). Writes ``--out`` (JSON).
"""

import os
import platform
import statistics

import jax
from absl import flags

from cli import atlas_timer, check_arguments, check_choices, check_out, check_positive_ints, write_json  # benchmarks/cli.py
from jaxseq.cli import run_main
from jaxseq.config import load_config

ATLAS = load_config("configs/atlas.py")
_CELLS = flags.DEFINE_list("cells", ATLAS.cells.split(","), "cells of configs/atlas.py's variants")
_TASKS = flags.DEFINE_list("tasks", ["decimal_palindrome", "copy"], "tasks")
_LENGTHS = flags.DEFINE_list("lengths", ["64", "256"], "lengths T")
_CHUNK = flags.DEFINE_integer("chunk", 10, "steps per timed chunk", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 3, "timed chunks per setting (median reported)", lower_bound=1)
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/bench_atlas_cost/<YYYYmmdd-HHMMSS>/bench_atlas_cost.json)")


def make_timer(cell: str, task: str, length: int):
    """A function that runs one chunk of the atlas's setting and returns its wall seconds (compiled, warmed up)."""
    return atlas_timer(cell, task, length, _CHUNK.value)[0]


def main(argv):
    check_arguments(argv)
    check_choices(_CELLS.value, list(ATLAS.variants), "--cells")
    lengths = check_positive_ints(_LENGTHS.value, "lengths")
    out = check_out(_OUT.value)
    load_before = os.getloadavg()
    rows = []
    for length in lengths:
        for task in _TASKS.value:
            timers = {cell: make_timer(cell, task, length) for cell in _CELLS.value}
            times = {cell: [] for cell in timers}
            for _ in range(_REPEATS.value):
                for cell, timer in timers.items():
                    times[cell].append(timer())
            for cell in timers:
                ms = 1000 * statistics.median(times[cell]) / _CHUNK.value
                failing_min = ms * ATLAS.train.num_steps / 60000
                rows.append(dict(cell=cell, task=task, length=length, ms_per_step=round(ms, 1),
                                 failing_setting_min=round(failing_min, 1), seconds=[round(t, 4) for t in times[cell]]))
                print(f"{cell:<12} {task:<20} T={length:<5} {ms:>8.1f} ms/step  {failing_min:>6.1f} min per "
                      f"{ATLAS.train.num_steps:,} steps", flush=True)
    meta = dict(platform=platform.platform(), cpus=os.cpu_count(), jax=jax.__version__, backend=jax.default_backend(),
                device=str(jax.devices()[0]), load_before=load_before, load_after=os.getloadavg(),
                seeds=ATLAS.train.num_seeds, batch_size=ATLAS.data.batch_size, hidden_size=ATLAS.model.hidden_size,
                chunk=_CHUNK.value, repeats=_REPEATS.value)
    write_json(out, dict(meta=meta, rows=rows))


if __name__ == "__main__":
    run_main(main)
