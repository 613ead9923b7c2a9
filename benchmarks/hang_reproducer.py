"""Standalone reproducer of the multi-seed deadlock in jaxlib's CPU LAPACK kernels (jax only).

Each seed draws the four ``[128, 128]`` orthogonal matrices of an LSTM's recurrent weights (one
per gate, as ``jax.nn.initializers.orthogonal`` makes them: the Q of a QR); ``--seeds`` seeds are
mapped with ``jax.vmap`` (every QR batched over the seeds) or ``jax.lax.map`` (one matrix at a
time), and the compiled function is called ``--calls`` times::

    python benchmarks/hang_reproducer.py --seeds=8 --strategy=vmap    # prints "done" or never returns
    python benchmarks/hang_reproducer.py --seeds=8 --strategy=map     # prints "done"

With jax/jaxlib 0.10.2 on a 2-core CPU the vmap form stops at 0 % CPU. Native stacks (``gdb -p
PID -batch -ex "thread apply all bt"``) show every thread of XLA's intra-op pool (``tf_XLAEigen``)
inside ``lapack_sgeqrf_ffi`` -> ``jax::ParallelBatchMap`` -> ``BlockingCounter::Wait``: each
batched QR splits its batch into tasks on that pool and waits for them from a thread of the same
pool, so once the independent QRs that XLA runs at once hold every pool thread, no thread is left
to run the tasks. Counts from ``stress_hangs.py --reproducer`` are in benchmarks/README.md.
"""

import argparse
import time

import jax
import jax.numpy as jnp

GATES, H = 4, 128


def recurrent_weights(key: jax.Array) -> list[jax.Array]:
    """One seed's per-gate orthogonal ``[H, H]`` matrices (Q of the QR of a Gaussian matrix)."""
    return [jnp.linalg.qr(jax.random.normal(k, (H, H)))[0] for k in jax.random.split(key, GATES)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--strategy", choices=["vmap", "map"], default="vmap")
    parser.add_argument("--calls", type=int, default=100, help="calls of the compiled function")
    args = parser.parse_args()
    if args.strategy == "vmap":
        weights = jax.jit(jax.vmap(recurrent_weights))
    else:
        weights = jax.jit(lambda keys: jax.lax.map(recurrent_weights, keys))
    start = time.perf_counter()
    for call in range(args.calls):
        jax.block_until_ready(weights(jax.random.split(jax.random.key(call), args.seeds)))
    print(f"done: {args.calls} calls, {args.seeds} seeds ({args.strategy}), {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
