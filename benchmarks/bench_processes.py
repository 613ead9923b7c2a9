"""A prototype, not part of jaxseq: one seed's batch split over local *processes* with one XLA thread each.

    .venv/bin/python benchmarks/bench_processes.py                      # T = 10 and 30, every exchange
    .venv/bin/python benchmarks/bench_processes.py --lengths=30 --exchanges=shm

jaxseq's batch shards (``runner.batch_shards``) split a step's batch over host *threads*, and every
shard's program shares XLA's intra-op pool. This script measures the alternative: ``--processes``
processes started with ``NPROC=1`` (one XLA thread each), each computing the gradient of its part
of the batch, the parts' gradients averaged, every process applying the same update. The model is
the palindrome LSTM of ``bench_recurrent.py`` (one-hot input, B = 128, H = 128, a dense head on
``h_T``, clipping at 10 and Adam 1e-3, a fresh batch per step generated on the device) written
directly with ``scan_cell`` and optax, without the trainer's bookkeeping. Exchanges:

- ``none``: no averaging; each process updates from its own part (the compute alone: an upper
  bound, not a correct data-parallel step);
- ``shm``: the flattened gradient is copied into shared memory, a process barrier, the mean in
  NumPy, then the update program;
- ``gloo``: ``jax.distributed`` with XLA's gloo CPU collectives, ``pmean`` of the flattened
  gradient inside a ``shard_map`` (one compiled step);
- ``single``: one process with XLA's default threads and the whole batch (the yardstick).

Each case is a fresh set of processes, run one after another (no round-robin across cases).
Steps/s is the median of ``--repeats`` timed chunks of ``--steps`` steps. Writes ``--out`` (JSON).
"""

import multiprocessing
import os
import queue
import socket
import statistics
import time

from absl import app, flags

from cli import check_arguments, check_choices, check_out, check_positive_ints, write_json
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/

EXCHANGES = ("single", "none", "shm", "gloo")

_LENGTHS = flags.DEFINE_list("lengths", ["10", "30"], "palindrome lengths T")
_EXCHANGES = flags.DEFINE_list("exchanges", list(EXCHANGES), f"cases to run, from {', '.join(EXCHANGES)}")
_PROCESSES = flags.DEFINE_integer("processes", 2, "processes for the multi-process cases", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 20, "training steps per timed chunk", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 7, "timed chunks (median reported)", lower_bound=1)
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/bench_processes/<YYYYmmdd-HHMMSS>/bench_processes.json)")

B, H, V = 128, 128, 10


class CaseFailed(RuntimeError):
    """A case's processes failed or gave no result."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _worker(rank: int, count: int, exchange: str, length: int, steps: int, repeats: int, shared: dict, result):
    """One process: builds the model, trains ``3 + repeats * steps`` steps, rank 0 reports steps/s."""
    if exchange != "single":
        os.environ["NPROC"] = "1"  # read when jax starts its CPU client, below
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax.flatten_util import ravel_pytree

    from jaxseq.models.registry import CELLS
    from jaxseq.models.sequence import scan_cell

    if exchange == "gloo":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"localhost:{shared['port']}", num_processes=count, process_id=rank)
    part = B // count
    cell = CELLS["lstm"](hidden_size=H)
    zeros = jnp.zeros((part, V))
    params = {
        "cell": cell.init(jax.random.key(1), cell.initialize_carry(None, zeros.shape), zeros)["params"],
        "head": {"kernel": 0.1 * jax.random.normal(jax.random.key(2), (H, V)), "bias": jnp.zeros(V)},
    }
    flat_params, unravel = ravel_pytree(params)
    tx = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(1e-3))

    def loss(params, tokens):
        _, hs = scan_cell(cell.bind({"params": params["cell"]}), jax.nn.one_hot(tokens, V), cell.initialize_carry(None, (part, V)))
        logits = hs[:, -1] @ params["head"]["kernel"] + params["head"]["bias"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 0]).mean()

    def gradient(params, key_data, shard):
        key, sub = jax.random.split(jax.random.wrap_key_data(key_data))
        tokens = jax.random.randint(jax.random.fold_in(sub, shard), (part, length), 0, V)
        return ravel_pytree(jax.grad(loss)(params, tokens))[0], jax.random.key_data(key)

    def update(params, opt, flat):
        updates, opt = tx.update(unravel(flat), opt, params)
        return optax.apply_updates(params, updates), opt

    state = [params, tx.init(params), jax.random.key_data(jax.random.key(0))]
    if exchange == "gloo":
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.array(jax.devices()), ("b",))

        def step_body(params, opt, key_data):
            flat, key_data = gradient(params, key_data, jax.lax.axis_index("b"))
            return (*update(params, opt, jax.lax.pmean(flat, "b")), key_data)

        spec = PartitionSpec()
        compiled = jax.jit(jax.shard_map(step_body, mesh=mesh, in_specs=(spec,) * 3, out_specs=(spec,) * 3, check_vma=False))
        replicated = NamedSharding(mesh, spec)
        state = [jax.tree.map(lambda x: jax.make_array_from_callback(x.shape, replicated, lambda i, x=x: np.asarray(x)[i]), s) for s in state]

        def step(i):
            state[:] = compiled(*state)
    else:
        gradient_jit, update_jit = jax.jit(gradient, static_argnums=2), jax.jit(update)
        if exchange == "shm":
            from multiprocessing import shared_memory

            memory = shared_memory.SharedMemory(name=shared["name"])
            slots = np.ndarray((2, count, flat_params.size), np.float32, buffer=memory.buf)  # [step parity, rank]

        def step(i):
            flat, state[2] = gradient_jit(state[0], state[2], rank)
            if exchange == "shm":
                slots[i % 2, rank] = np.asarray(flat)
                shared["barrier"].wait()  # every rank has written this step's slot
                flat = slots[i % 2].mean(axis=0)  # the other parity's slots are next step's: no second barrier
            state[0], state[1] = update_jit(state[0], state[1], flat)

    for i in range(3):
        step(i)
    jax.block_until_ready(state)
    seconds = []
    for r in range(repeats):
        start = time.perf_counter()
        for i in range(3 + r * steps, 3 + (r + 1) * steps):
            step(i)
        jax.block_until_ready(state)
        seconds.append(time.perf_counter() - start)
    if rank == 0:
        result.put(steps / statistics.median(seconds))
    if exchange == "gloo":
        jax.distributed.shutdown()


def run_case(exchange: str, length: int, count: int, steps: int, repeats: int) -> float:
    """Steps/s of one case (fresh processes)."""
    from multiprocessing import shared_memory

    count = 1 if exchange == "single" else count
    context = multiprocessing.get_context("spawn")  # a fresh jax per process
    memory = shared_memory.SharedMemory(create=True, size=2 * count * (H * 4 * H + 4 * H + V * 4 * H + H * V + V) * 4)
    shared = dict(name=memory.name, barrier=context.Barrier(count), port=_free_port())
    result = context.Queue()
    workers = [
        context.Process(target=_worker, args=(rank, count, exchange, length, steps, repeats, shared, result))
        for rank in range(count)
    ]
    try:
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 600
        while True:
            try:
                rate = result.get(timeout=1.0)
                break
            except queue.Empty:
                failed = [worker.exitcode for worker in workers if worker.exitcode not in (None, 0)]
                if failed:
                    raise CaseFailed(f"{exchange} at T = {length}: a worker process exited with code {failed[0]}")
                if time.monotonic() > deadline:
                    raise CaseFailed(f"{exchange} at T = {length}: no result within 600 s")
        for worker in workers:
            worker.join(timeout=60)
        return rate
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
        memory.close()
        memory.unlink()


def main(argv):
    check_arguments(argv)
    check_choices(_EXCHANGES.value, EXCHANGES, "exchanges")
    out = check_out(_OUT.value)
    lengths = check_positive_ints(_LENGTHS.value, "lengths")
    if _PROCESSES.value < 2 or B % _PROCESSES.value:
        raise app.UsageError(f"--processes must be at least 2 and divide B = {B}, got {_PROCESSES.value}")
    rows = []
    for length in lengths:
        for exchange in _EXCHANGES.value:
            try:
                rate = run_case(exchange, length, _PROCESSES.value, _STEPS.value, _REPEATS.value)
            except CaseFailed as error:
                raise SystemExit(f"bench_processes: {error}")
            rows.append(dict(exchange=exchange, length=length, steps_per_s=rate))
            print(f"T={length:<4} {exchange:<7} {rate:8.1f} steps/s", flush=True)
    print("\n| exchange | " + " | ".join(f"T = {t}" for t in lengths) + " |")
    print("|---|" + "---:|" * len(lengths))
    for exchange in _EXCHANGES.value:
        print(f"| {exchange} | " + " | ".join(f"{r['steps_per_s']:.1f}" for r in rows if r["exchange"] == exchange) + " |")
    write_json(out, dict(processes=_PROCESSES.value, steps=_STEPS.value, repeats=_REPEATS.value, rows=rows))


if __name__ == "__main__":
    run_main(main)
