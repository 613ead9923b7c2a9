"""Where the time of a training step goes: XLA's own per-op trace, summed by kind of op.

    .venv/bin/python benchmarks/profile_step.py             # T = 30, 1 seed: ours (input joined, hoisted, jax's BPTT), Flax
    .venv/bin/python benchmarks/profile_step.py --profile_variants=ours-lstm,flax-lstm
    .venv/bin/python benchmarks/profile_step.py --profile_variants=atlas:lru --task=copy --length=64,256,1024 --chunk=2

Runs ``--chunks`` chunks of the palindrome training step of ``bench_recurrent.py`` (one seed), or
for ``atlas:<cell>`` of the memory atlas's step (``configs/atlas.py``'s cell on ``--task``, its
seeds together), at each ``--length``, under ``jax.profiler`` and reads the trace back with jaxlib's ``ProfileData``. XLA's CPU runtime records
one event per executed op (a *thunk*: a fused kernel, a matmul, a loop) on the thread that ran it.
Summing the innermost events by kind gives the CPU time of each kind per training step, summed
over threads. ``matmul`` is XLA's dot kernels (``ynn_fusion``/``dot``), ``elementwise`` its loop
fusions (gates, Adam, reductions), ``stack/slice`` the copies that write or read one time step of a
``[time, ...]`` array inside a loop (``dynamic-update-slice``, ``dynamic-slice``), ``copy``
layout copies and transposes, ``wait`` time a thread spent waiting for others in a parallel op.
Beside the per-step table, the CPU time per *time step* of the sequence, by kind and length, says
which kind of op grows faster than the sequence does. Writes ``--profile_out`` (JSON; ``--out`` is
``bench_recurrent.py``'s flag).
"""

import collections
import glob
import os
import re
import tempfile
from typing import Callable


import jax
from absl import flags

from cli import atlas_timer, check_arguments, check_choices, check_out, check_positive_ints, write_json  # benchmarks/cli.py
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/
from jaxseq.config import load_config
from jaxseq.runner.seeds import resolve_seed_strategy
import bench_recurrent  # its flags: --chunk

_VARIANTS = flags.DEFINE_list(
    "profile_variants", ["ours-lstm", "ours-lstm-hoisted", "ours-lstm-autodiff", "flax-lstm"],
    "variants to profile: bench_recurrent.py's jax variants, or atlas:<cell> (a cell of configs/atlas.py)"
)
_LENGTH = flags.DEFINE_list("length", ["30"], "lengths T (palindrome length, or the atlas task's length)")
_TASK = flags.DEFINE_string("task", "copy", "the task of atlas:<cell> variants")
_CHUNKS = flags.DEFINE_integer("chunks", 3, "traced chunks (after 3 warm-up chunks)", lower_bound=1)
_STRATEGY = flags.DEFINE_string("strategy", "map", "seed strategy for the one seed (map: no batch axis)")
_OUT_JSON = flags.DEFINE_string("profile_out", None, "JSON output (default: a fresh runs/profile_step/<YYYYmmdd-HHMMSS>/profile_step.json)")

# (kind, pattern) in order: the first that matches an op's name wins
KINDS = [
    ("matmul", r"ynn_fusion|^dot|dot_general|gemm|matmul"),
    ("stack/slice", r"dynamic-update-slice|dynamic_update_slice|dynamic-slice|dynamic_slice"),
    ("copy", r"^copy|transpose"),
    ("wait", r"Await|wait"),
    ("loop control", r"^while|^wrapped_compare|^wrapped_add|^conditional"),
    ("elementwise", r"fusion|^wrapped_|broadcast|reduce"),
]
CONTAINERS = r"ThunkExecutor|^while\.\d+$|^\$|^PjRt|Execute"


def kind_of(name: str) -> str:
    """The kind of an XLA op from its name (see :data:`KINDS`)."""
    for kind, pattern in KINDS:
        if re.search(pattern, name):
            return kind
    return "other"


def make_timer(variant: str, length: int) -> tuple[Callable[[], float], int]:
    """A function that runs one chunk of ``variant`` at ``length`` and returns its wall seconds, and
    the number of time steps its sequences have."""
    if variant.startswith("atlas:"):
        return atlas_timer(variant.removeprefix("atlas:"), _TASK.value, length, bench_recurrent._CHUNK.value)
    timer = bench_recurrent.jax_timer(variant, length, 1, _STRATEGY.value)
    return (lambda: timer()[0]), length


def profile(variant: str, length: int) -> dict:
    """CPU milliseconds per training step by kind of op, and the wall time per step."""
    timer, time_steps = make_timer(variant, length)
    for _ in range(3):
        timer()
    from jax._src.lib import _profile_data

    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        walls = [timer() for _ in range(_CHUNKS.value)]
        jax.profiler.stop_trace()
        (path,) = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
        data = _profile_data.ProfileData.from_file(path)
    steps = _CHUNKS.value * bench_recurrent._CHUNK.value
    by_kind, by_op = collections.Counter(), collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_XLA"):
                continue  # python and client threads only wait for the XLA worker threads
            for event in line.events:
                if re.search(CONTAINERS, event.name):
                    continue  # events that contain other events: count only the innermost ops
                by_kind[kind_of(event.name)] += event.duration_ns
                by_op[event.name] += event.duration_ns
    ms = lambda ns: round(ns / steps / 1e6, 3)  # noqa: E731
    return dict(
        variant=variant,
        length=length,
        time_steps=time_steps,
        wall_ms_per_step=round(1000 * sum(walls) / steps, 2),
        cpu_ms_per_step_by_kind={k: ms(v) for k, v in by_kind.most_common()},
        top_ops={k: ms(v) for k, v in by_op.most_common(12)},
    )


def main(argv):
    check_arguments(argv)
    atlas_cells = list(load_config("configs/atlas.py").variants)
    choices = [v for v in bench_recurrent.VARIANTS if not v.startswith("torch")] + [f"atlas:{c}" for c in atlas_cells]
    check_choices(_VARIANTS.value, choices, "--profile_variants")
    lengths = check_positive_ints(_LENGTH.value, "length")
    resolve_seed_strategy(_STRATEGY.value, backend="cpu")
    out = check_out(_OUT_JSON.value, "--profile_out")
    results = [profile(v, length) for v in _VARIANTS.value for length in lengths]
    kinds = [k for k, _ in KINDS] + ["other"]
    columns = " | ".join(f"{r['variant']} T={r['length']}" for r in results)
    atlas = load_config("configs/atlas.py")
    print(f"\nB = {bench_recurrent.B}, H = {bench_recurrent.H}, 1 seed (atlas:<cell>: B = {atlas.data.batch_size}, "
          f"H = {atlas.model.hidden_size}, {atlas.train.num_seeds} seeds); CPU ms per training step, summed over XLA's threads")
    print(f"| kind | {columns} |")
    print("|---|" + "---:|" * len(results))
    for kind in kinds:
        print(f"| {kind} | " + " | ".join(f"{r['cpu_ms_per_step_by_kind'].get(kind, 0):.2f}" for r in results) + " |")
    print("| **sum of ops** | " + " | ".join(f"{sum(r['cpu_ms_per_step_by_kind'].values()):.2f}" for r in results) + " |")
    print("| wall ms/step | " + " | ".join(f"{r['wall_ms_per_step']:.2f}" for r in results) + " |")
    print("\nThe same per time step of the sequence (CPU µs per time step):")
    print(f"| kind | {columns} |")
    print("|---|" + "---:|" * len(results))
    for kind in kinds:
        print(f"| {kind} | " + " | ".join(f"{1000 * r['cpu_ms_per_step_by_kind'].get(kind, 0) / r['time_steps']:.1f}"
                                          for r in results) + " |")
    for r in results:
        print(f"\n{r['variant']}, T = {r['length']}: top ops (CPU ms/step)")
        for op, value in r["top_ops"].items():
            print(f"  {value:8.3f}  {op}")
    write_json(out, dict(lengths=lengths, task=_TASK.value, strategy=_STRATEGY.value, chunks=_CHUNKS.value, results=results))


if __name__ == "__main__":
    run_main(main)
