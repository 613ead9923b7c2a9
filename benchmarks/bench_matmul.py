"""The matmuls of a recurrent loop on their own: XLA (jax) vs PyTorch, dependent chains, by batch rows.

    .venv/bin/python benchmarks/bench_matmul.py
    .venv/bin/python benchmarks/bench_matmul.py --rows=32,64 --shapes=513x1024 --repeats=25

A recurrent step multiplies a small batch of rows [M, K] by a weight [K, N], and the next step
cannot start before this one ends. Each case times a chain of ``--chain`` such matmuls, each
reading the previous one's result, at every ``M`` of ``--rows`` and ``K x N`` of ``--shapes``:

- jax: one jitted ``lax.scan`` over the chain (what ``scan_cell`` compiles to, without the cell);
- PyTorch (if installed, ``pip install -e '.[bench]'``): the same chain as an eager Python loop
  of ``torch.mm`` under ``no_grad``, so every matmul also pays PyTorch's dispatch.

The default shapes are the 2 x 256 character LSTM's per-step matmuls with its input joined to the
state (``join_input``): layer 1 forward (K = 64 + 256 + 1, N = 4 x 256), layer 2 forward
(K = 256 + 256 + 1) and layer 2 backward (K = 4 x 256, N = 513; ``t``: as BPTT reads it, the
forward's [513, 1024] weight transposed). Every repeat times each case once, in turn
(round-robin); the table reports the median per matmul and its GFLOP/s (2 M K N per matmul).
Writes ``--out`` (JSON).
"""

import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from cli import check_arguments, check_out, check_positive_ints, write_json  # benchmarks/cli.py, beside this script
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/

_ROWS = flags.DEFINE_list("rows", ["8", "16", "32", "64", "128", "256"], "batch rows M of each matmul")
_SHAPES = flags.DEFINE_list("shapes", ["321x1024", "513x1024", "1024x513t"],
                            "weight shapes KxN; KxNt: the weight stored [N, K] and read transposed")
_CHAIN = flags.DEFINE_integer("chain", 30, "dependent matmuls per timed call (a sequence's time steps)",
                                lower_bound=1)
_CALLS = flags.DEFINE_integer("calls", 5, "timed calls per repeat (their mean is one sample)", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 15, "samples per case (median reported)", lower_bound=1)
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/bench_matmul/<YYYYmmdd-HHMMSS>/bench_matmul.json)")


def parse_shapes(values: list[str]) -> list[tuple[int, int, bool]]:
    """``["KxN", "KxNt", ...]`` as ``[(K, N, transposed), ...]``; anything else is a one-line usage error."""
    shapes = []
    for value in values:
        text = value.lower()
        transposed = text.endswith("t")
        parts = text.removesuffix("t").split("x")
        if len(parts) != 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
            raise app.UsageError(f"--shapes takes KxN or KxNt with positive integers (e.g. 1024x513t), got {value!r}")
        shapes.append((int(parts[0]), int(parts[1]), transposed))
    return shapes


def shape_name(k: int, n: int, transposed: bool) -> str:
    """``KxN``, or ``KxNt`` for a weight read transposed."""
    return f"{k}x{n}{'t' if transposed else ''}"


def operands(rows: int, k: int, n: int, transposed: bool) -> tuple[np.ndarray, np.ndarray]:
    """A fixed input [rows, k] and weight, [k, n] or (``transposed``) [n, k]; float32, the same for both frameworks."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((rows, k), np.float32), 0.05 * rng.standard_normal((n, k) if transposed else (k, n),
                                                                                  np.float32)


def jax_timer(x: np.ndarray, w: np.ndarray, transposed: bool, chain: int, calls: int):
    """Seconds per matmul of a jitted scan of ``chain`` dependent ``x @ w`` (``x @ w.T`` if ``transposed``)."""
    def next_input(c, _):
        # the barrier keeps XLA from shrinking the product to the one entry read from it
        y = jax.lax.optimization_barrier(c @ (w_dev.T if transposed else w_dev))
        return c + 1e-9 * y[0, 0], y[0, 0]  # the next matmul waits for this one

    w_dev = jnp.asarray(w)
    run = jax.jit(lambda c: jax.lax.scan(next_input, c, None, length=chain)[1])
    x_dev = jnp.asarray(x)
    run(x_dev).block_until_ready()

    def timed() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            run(x_dev).block_until_ready()
        return (time.perf_counter() - start) / (calls * chain)

    return timed


def torch_timer(x: np.ndarray, w: np.ndarray, transposed: bool, chain: int, calls: int):
    """Seconds per matmul of an eager loop of ``chain`` dependent ``torch.mm`` (``w.t()`` if ``transposed``)."""
    import torch

    x_t, w_t = torch.from_numpy(x), torch.from_numpy(w)
    w_t = w_t.t() if transposed else w_t

    def run() -> float:
        with torch.no_grad():
            c = x_t
            for _ in range(chain):
                y = torch.mm(c, w_t)
                c = c + 1e-9 * y[0, 0]
            return float(y[0, 0])

    run()

    def timed() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            run()
        return (time.perf_counter() - start) / (calls * chain)

    return timed


def main(argv):
    check_arguments(argv)
    out = check_out(_OUT.value)
    rows = check_positive_ints(_ROWS.value, "rows")
    shapes = parse_shapes(_SHAPES.value)
    chain, calls, repeats = _CHAIN.value, _CALLS.value, _REPEATS.value
    try:
        import torch
        frameworks = ["jax", "torch"]
    except ImportError:
        torch = None
        frameworks = ["jax"]
        print("PyTorch not installed (pip install -e '.[bench]'): timing jax only")
    makers = {"jax": jax_timer, "torch": torch_timer}
    timers = {}
    for k, n, transposed in shapes:
        for m in rows:
            x, w = operands(m, k, n, transposed)
            for framework in frameworks:
                timers[(m, k, n, transposed, framework)] = makers[framework](x, w, transposed, chain, calls)
    samples = {case: [] for case in timers}
    for _ in range(repeats):  # round-robin: a noisy neighbour slows every case alike
        for case, timed in timers.items():
            samples[case].append(timed())

    results = []
    print(f"dependent chains of {chain} matmuls [M, K] x [K, N], median of {repeats} (round-robin), "
          f"us per matmul and GFLOP/s")
    print(f"{'K x N':>10s} {'M':>5s}" + "".join(f" {f + ' us':>9s} {'GFLOP/s':>8s}" for f in frameworks)
          + (f" {'jax/torch':>9s}" if torch else ""))
    for k, n, transposed in shapes:
        for m in rows:
            row = dict(rows=m, k=k, n=n, transposed=transposed)
            line = f"{shape_name(k, n, transposed):>10s} {m:5d}"
            for framework in frameworks:
                times = samples[(m, k, n, transposed, framework)]
                seconds = statistics.median(times)
                row[framework] = dict(us_per_matmul=1e6 * seconds, gflop_per_s=2 * m * k * n / seconds / 1e9,
                                      samples_s=times)
                line += f" {row[framework]['us_per_matmul']:9.1f} {row[framework]['gflop_per_s']:8.1f}"
            if torch:  # jax's speed over PyTorch's: > 1 means XLA's matmul is faster
                row["jax_over_torch"] = row["torch"]["us_per_matmul"] / row["jax"]["us_per_matmul"]
                line += f" {row['jax_over_torch']:9.2f}"
            results.append(row)
            print(line)
    machine = dict(device=str(jax.devices()[0]), cpu_count=os.cpu_count(), jax=jax.__version__,
                   torch=torch.__version__ if torch else None, torch_threads=torch.get_num_threads() if torch else None,
                   python=platform.python_version(), load_after=os.getloadavg())
    setup = dict(rows=rows, shapes=[shape_name(*shape) for shape in shapes], chain=chain, calls=calls, repeats=repeats)
    write_json(out, {"setup": setup, "machine": machine, "results": results}, indent=2)


if __name__ == "__main__":
    run_main(main)
