"""Training speed against sequence length: cells scanned over time vs parallel (associative) scans.

    .venv/bin/python benchmarks/bench_scan_length.py                   # T = 50 .. 1000, every variant
    .venv/bin/python benchmarks/bench_scan_length.py --lengths=50,200 --variants=lstm,mingru-parallel,mingru-sequential

Every variant trains one seed of a one-layer palindrome classifier (one-hot input, B = 64,
H = 64, Adam 2e-3, clipping at 10, a fresh batch per step, data generated on device) through the
project's own ``SequenceTrainer.run_chunk``. Variants:

- ``lstm``, ``gru``: classic cells, ``lax.scan`` over time with the hand-written BPTT;
- ``<cell>-parallel`` (``mingru``, ``minlstm``, ``lru``): the linear recurrence by
  ``jax.lax.associative_scan`` (minGRU/minLSTM in log space);
- ``<cell>-sequential``: the same cell and parameters stepped one time step at a time.

Timing is round-robin within each length: every repeat times each variant once, in turn, so a
noisy neighbour slows all of them alike; the table reports the median. Seed-steps/s = steps /
seconds (one seed). Also reported: the parallel mode's speed over the sequential mode's, per cell
and length. Writes ``--out`` (JSON).
"""

import os
import platform
import statistics


import jax
from absl import flags

from cli import check_arguments, check_choices, check_out, check_positive_ints, chunk_timer, write_json  # benchmarks/cli.py
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/
from jaxseq.config import load_config
from jaxseq.runner.multiseed import MultiSeedRunner
from jaxseq.train.sequence_trainer import make_train
from jaxseq.train.sweep import setting_config

VARIANTS = [
    "lstm", "gru",
    "mingru-parallel", "mingru-sequential",
    "minlstm-parallel", "minlstm-sequential",
    "lru-parallel", "lru-sequential",
]
_LENGTHS = flags.DEFINE_list("lengths", ["50", "100", "200", "500", "1000"], "palindrome lengths T")
_VARIANTS = flags.DEFINE_list("variants", VARIANTS, "what to time")
_REPEATS = flags.DEFINE_integer("repeats", 5, "timed chunks per variant and length (median reported)", lower_bound=1)
_STEP_BUDGET = flags.DEFINE_integer("chunk_time_steps", 2000, "time steps per timed chunk: chunk = max(1, this // T) training steps",
                                    lower_bound=1)
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/bench_scan_length/<YYYYmmdd-HHMMSS>/bench_scan_length.json)")

B, H, LR, CLIP = 64, 64, 2e-3, 10.0


def make_timer(variant: str, length: int, chunk: int):
    """A function that trains one chunk of ``chunk`` steps and returns its wall seconds (compiled, warmed up)."""
    name, _, mode = variant.partition("-")
    config = setting_config(
        load_config("configs/palindrome.py"),
        **{
            "model.name": name, "model.encoding": "onehot", "model.hidden_size": H,
            "model.scan_mode": mode or "parallel",
            "optim.name": "adam", "optim.lr": LR, "optim.clip_norm": CLIP,
            "data.length": length, "data.batch_size": B,
            "train.num_steps": 10**6, "train.chunk_steps": chunk,
            "train.stop_accuracy": 2.0,  # never stop: every step does real work
        },
    )
    return chunk_timer(MultiSeedRunner(make_train(config), config.runner, strategy="map"), 1)


def measure(lengths: list[int], variants: list[str]) -> list[dict]:
    """Round-robin timings, one length at a time; one row per (variant, length)."""
    rows = []
    for length in lengths:
        chunk = max(1, _STEP_BUDGET.value // length)
        timers = [(variant, make_timer(variant, length, chunk)) for variant in variants]
        times = {variant: [] for variant in variants}
        for _ in range(_REPEATS.value):
            for variant, timer in timers:
                times[variant].append(timer())
        for variant in variants:
            median = statistics.median(times[variant])
            rate = chunk / median
            rows.append(dict(variant=variant, length=length, chunk_steps=chunk, seed_steps_per_s=round(rate, 2),
                             ms_per_step=round(1000 * median / chunk, 2), seconds=[round(t, 4) for t in times[variant]]))
            print(f"{variant:<20} T={length:<5} {rate:>9.2f} seed-steps/s  {1000 * median / chunk:>9.2f} ms/step", flush=True)
    return rows


def mode_ratios(rows: list[dict]) -> list[dict]:
    """Parallel over sequential seed-steps/s for every cell and length measured in both modes."""
    rate = {(r["variant"], r["length"]): r["seed_steps_per_s"] for r in rows}
    ratios = []
    for (variant, length), value in rate.items():
        if variant.endswith("-parallel") and (variant.replace("parallel", "sequential"), length) in rate:
            cell = variant.split("-")[0]
            ratios.append(dict(cell=cell, length=length, parallel_over_sequential=round(value / rate[(f"{cell}-sequential", length)], 2)))
    return ratios


def main(argv):
    check_arguments(argv)
    check_choices(_VARIANTS.value, VARIANTS, "--variants")
    lengths = check_positive_ints(_LENGTHS.value, "lengths")
    out = check_out(_OUT.value)
    load_before = os.getloadavg()
    rows = measure(lengths, _VARIANTS.value)
    ratios = mode_ratios(rows)
    print("\nparallel / sequential (same run):")
    for r in ratios:
        print(f"  {r['cell']:<8} T={r['length']:<5} {r['parallel_over_sequential']:.2f}x")
    meta = dict(platform=platform.platform(), cpus=os.cpu_count(), jax=jax.__version__, backend=jax.default_backend(),
                device=str(jax.devices()[0]), load_before=load_before, load_after=os.getloadavg(), batch_size=B,
                hidden_size=H, repeats=_REPEATS.value, chunk_time_steps=_STEP_BUDGET.value)
    write_json(out, dict(meta=meta, rows=rows, ratios=ratios))


if __name__ == "__main__":
    run_main(main)
