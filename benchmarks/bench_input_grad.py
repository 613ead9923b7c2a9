"""What the backward pass saves by not computing ``dL/dxs`` when nothing asks for it.

    .venv/bin/python benchmarks/bench_input_grad.py                 # LSTM and RNN, T = 10 and 30
    .venv/bin/python benchmarks/bench_input_grad.py --cells=lstm --lengths=30 --repeats=41

The hand-written BPTT (``jaxseq/models/bptt.py``) skips the input gradient when the inputs take no
part in the differentiation (one-hot tokens): no ``[T, ...]`` stack of ``dL/dx_t`` is written and
a joined kernel's ``x_t`` rows leave the backward step's matmul. This script times the same
gradient both ways in one process: ``jax.grad`` of the palindrome classifier's loss with respect
to the parameters only (the skip applies: what training does), and with respect to the
parameters and the one-hot inputs (the input gradient must be computed). The loss is the
classifier's (one-hot input, ``scan_cell`` with its defaults, a dense head on ``h_T``, cross
entropy); B = 128, H = 128, one seed, the same batch every call. Timing is round-robin, median of
``--repeats`` calls of ``--calls`` gradients each. Writes ``--out`` (JSON).
"""

import os
import platform
import statistics
import time


import jax
import jax.numpy as jnp
import optax
from absl import flags

from jaxseq.models.registry import CELLS
from jaxseq.models.sequence import scan_cell

from cli import check_arguments, check_choices, check_out, check_positive_ints, write_json
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/

_CELLS = flags.DEFINE_list("cells", ["lstm", "rnn"], "cells to time (keys of jaxseq.models.registry.CELLS)")
_LENGTHS = flags.DEFINE_list("lengths", ["10", "30"], "sequence lengths T")
_REPEATS = flags.DEFINE_integer("repeats", 31, "timed calls per case (median reported)", lower_bound=1)
_CALLS = flags.DEFINE_integer("calls", 5, "gradients per timed call", lower_bound=1)
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/bench_input_grad/<YYYYmmdd-HHMMSS>/bench_input_grad.json)")

B, H, VOCAB = 128, 128, 10


def gradient_timer(cell_name: str, length: int, with_inputs: bool):
    """A function that computes ``--calls`` gradients and returns the seconds (compiled, warmed up).

    Args:
      cell_name: a key of ``CELLS``.
      length: T.
      with_inputs: also differentiate with respect to the ``[B, T, 10]`` one-hot inputs.
    """
    cell = CELLS[cell_name](hidden_size=H)
    tokens = jax.random.randint(jax.random.key(0), (B, length), 0, VOCAB)
    xs = jax.nn.one_hot(tokens, VOCAB)
    labels = tokens[:, 0]
    carry = cell.initialize_carry(None, (B, VOCAB))
    params = {
        "cell": cell.init(jax.random.key(1), carry, xs[:, 0])["params"],
        "head": {"kernel": 0.1 * jax.random.normal(jax.random.key(2), (H, VOCAB)), "bias": jnp.zeros(VOCAB)},
    }

    def loss(params, xs):
        _, hs = scan_cell(cell.bind({"params": params["cell"]}), xs, carry)
        logits = hs[:, -1] @ params["head"]["kernel"] + params["head"]["bias"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    grad = jax.jit(jax.grad(loss, argnums=(0, 1) if with_inputs else 0))
    jax.block_until_ready(grad(params, xs))

    def timed() -> float:
        start = time.perf_counter()
        for _ in range(_CALLS.value):
            out = grad(params, xs)
        jax.block_until_ready(out)
        return time.perf_counter() - start

    return timed


def main(argv):
    check_arguments(argv)
    check_choices(_CELLS.value, CELLS, "cells")
    out = check_out(_OUT.value)
    lengths = check_positive_ints(_LENGTHS.value, "lengths")
    cases = {
        (name, length, with_inputs): gradient_timer(name, length, with_inputs)
        for name in _CELLS.value
        for length in lengths
        for with_inputs in (False, True)
    }
    times = {case: [] for case in cases}
    for _ in range(_REPEATS.value):  # round-robin: a noisy neighbour slows every case alike
        for case, timed in cases.items():
            times[case].append(timed())
    ms = {case: 1000 * statistics.median(t) / _CALLS.value for case, t in times.items()}
    rows = []
    print(f"\nB = {B}, H = {H}, one seed; ms per gradient (median of {_REPEATS.value} calls of {_CALLS.value})")
    print("| cell | T | params only (dL/dxs skipped) | params and inputs | skipping gains |")
    print("|---|---:|---:|---:|---:|")
    for name in _CELLS.value:
        for length in lengths:
            skipped, computed = ms[(name, length, False)], ms[(name, length, True)]
            rows.append(dict(cell=name, length=length, params_only_ms=skipped, with_inputs_ms=computed))
            print(f"| {name} | {length} | {skipped:.2f} | {computed:.2f} | {computed / skipped:.3f}x |")
    meta = dict(machine=platform.machine(), cpus=os.cpu_count(), jax=jax.__version__, repeats=_REPEATS.value, calls=_CALLS.value)
    write_json(out, dict(meta=meta, rows=rows))


if __name__ == "__main__":
    run_main(main)
