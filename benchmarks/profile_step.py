"""Where the time of a training step goes: XLA's own per-op trace, summed by kind of op.

    .venv/bin/python benchmarks/profile_step.py             # T = 30, 1 seed: ours (input joined, hoisted, jax's BPTT), Flax
    .venv/bin/python benchmarks/profile_step.py --profile_variants=ours-lstm,flax-lstm

Runs ``--chunks`` chunks of the palindrome training step of ``bench_recurrent.py`` under
``jax.profiler`` and reads the trace back with jaxlib's ``ProfileData``. XLA's CPU runtime records
one event per executed op (a *thunk*: a fused kernel, a matmul, a loop) on the thread that ran it.
Summing the innermost events by kind gives the CPU time of each kind per training step, summed
over threads. ``matmul`` is XLA's dot kernels (``ynn_fusion``/``dot``), ``elementwise`` its loop
fusions (gates, Adam, reductions), ``stack/slice`` the copies that write or read one time step of a
``[time, ...]`` array inside a loop (``dynamic-update-slice``, ``dynamic-slice``), ``copy``
layout copies and transposes, ``wait`` time a thread spent waiting for others in a parallel op.
Writes ``--profile_out`` (JSON; ``--out`` is ``bench_recurrent.py``'s flag).
"""

import collections
import glob
import os
import re
import tempfile


import jax
from absl import flags

from cli import check_arguments, check_choices, check_out, write_json  # benchmarks/cli.py
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/
from jaxseq.runner.seeds import resolve_seed_strategy
import bench_recurrent  # its flags: --chunk

_VARIANTS = flags.DEFINE_list(
    "profile_variants", ["ours-lstm", "ours-lstm-hoisted", "ours-lstm-autodiff", "flax-lstm"], "variants to profile"
)
_LENGTH = flags.DEFINE_integer("length", 30, "palindrome length T", lower_bound=1)
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


def profile(variant: str) -> dict:
    """CPU milliseconds per training step by kind of op, and the wall time per step."""
    timer = bench_recurrent.jax_timer(variant, _LENGTH.value, 1, _STRATEGY.value)
    for _ in range(3):
        timer()
    from jax._src.lib import _profile_data

    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        walls = [timer()[0] for _ in range(_CHUNKS.value)]
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
        wall_ms_per_step=round(1000 * sum(walls) / steps, 2),
        cpu_ms_per_step_by_kind={k: ms(v) for k, v in by_kind.most_common()},
        top_ops={k: ms(v) for k, v in by_op.most_common(12)},
    )


def main(argv):
    check_arguments(argv)
    check_choices(_VARIANTS.value, [v for v in bench_recurrent.VARIANTS if not v.startswith("torch")], "--profile_variants")
    resolve_seed_strategy(_STRATEGY.value, backend="cpu")
    out = check_out(_OUT_JSON.value, "--profile_out")
    results = [profile(v) for v in _VARIANTS.value]
    kinds = [k for k, _ in KINDS] + ["other"]
    print(f"\nT = {_LENGTH.value}, B = {bench_recurrent.B}, H = {bench_recurrent.H}, 1 seed; CPU ms per training step, summed over XLA's threads")
    print("| kind | " + " | ".join(r["variant"] for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    for kind in kinds:
        print(f"| {kind} | " + " | ".join(f"{r['cpu_ms_per_step_by_kind'].get(kind, 0):.2f}" for r in results) + " |")
    print("| **sum of ops** | " + " | ".join(f"{sum(r['cpu_ms_per_step_by_kind'].values()):.2f}" for r in results) + " |")
    print("| wall ms/step | " + " | ".join(f"{r['wall_ms_per_step']:.2f}" for r in results) + " |")
    for r in results:
        print(f"\n{r['variant']}: top ops (CPU ms/step)")
        for op, value in r["top_ops"].items():
            print(f"  {value:8.3f}  {op}")
    write_json(out, dict(length=_LENGTH.value, strategy=_STRATEGY.value, chunks=_CHUNKS.value, results=results))


if __name__ == "__main__":
    run_main(main)
