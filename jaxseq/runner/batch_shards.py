"""One seed's training batch split into shards, one per CPU core, their gradients averaged.

XLA's CPU runtime runs a compiled program mostly one op at a time: the elementwise kernels of one
seed's recurrent step run on one core (only its matmuls use more), and they cost as much as the
matmuls (benchmarks/README.md, "Where the time goes"). With ``runner.batch_shards = n`` every training step
cuts its batch of ``B`` rows into ``n`` shards of ``B / n`` rows, computes each shard's loss and
gradients on its own core, and averages them (summed in shard order) before one update. That is
the full batch's gradient up to float rounding, so a run with ``n`` shards follows the unsharded
trajectory to rounding, not bit for bit (tests/test_batch_shards.py). :class:`BatchShards` does
it in one of two ways:

- ``devices`` (the default when jax has ``n`` CPU devices, which the scripts ask for: see
  :mod:`jaxseq.runner.cpu_devices`): a chunk of steps is **one compiled program**, a ``lax.scan`` over the
  steps inside ``jax.shard_map`` over ``n`` CPU devices. Each device computes its shard's gradients,
  ``lax.pmean`` averages them, and every device applies the same update to its copy of the run.
  Nothing returns to Python between steps.
- ``threads`` (the fallback): every step, ``n`` gradient programs run at once from ``n`` host
  threads, and one more program averages them and updates. The steps of a chunk are then a host
  loop: two dispatches and a handoff between threads per step (~0.15-0.3 ms). Side by side
  (``bench_recurrent.py``, benchmarks/README.md), ``devices`` trained the palindrome LSTM 1.10x
  (T = 10) and 1.06x (T = 30) as fast as ``threads``, the GRU 1.04x and 1.00x, the RNN 1.21x and
  1.02x.

A trainer is sharded through two pure functions of one seed (see
:class:`jaxseq.train.sequence_trainer.SequenceTrainer`):

- ``shard_gradients(run, index, count) -> (loss, accuracy, grads)`` on shard ``index``'s rows
  (:func:`shard_rows`) of the next step's batch;
- ``finish_step(run, loss, accuracy, grads) -> (run, metrics)``: the update and its bookkeeping.

``runner.batch_shards = "auto"`` (:func:`resolve_batch_shards`) shards only a run of one seed on
CPU, one shard per core, and only where that measured faster: a step large enough to pay for the
handoff (:data:`MIN_SHARD_FLOPS`) of a model whose matmuls do not already fill the cores
(:data:`MAX_SHARD_PARAMS`). Several seeds already fill the cores through
``runner.seed_strategy = threads``. Measured on a 2-core machine only (benchmarks/README.md).
"""

import concurrent.futures
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxseq.runner.seeds import StallWatch, available_cores, map_over_seeds

SHARD_MODES = ("auto", "devices", "threads")

MIN_SHARD_ROWS = 32  # "auto" never cuts a batch into shards of fewer rows than this
# "auto" shards only a step of at least this many training FLOPs (6 x B x T x parameters): below it
# splitting the step costs more than the second core gives (bench_recurrent.py, 2 cores, sharded /
# unsharded, benchmarks/README.md: RNN T = 10 (1.5e8 FLOPs) 0.87x; GRU T = 10 (4.2e8) 1.37x,
# RNN T = 30 (4.4e8) 1.13x, LSTM T = 10 (5.6e8) 1.32x).
MIN_SHARD_FLOPS = 4e8
# ... and only a model of at most this many parameters: a wider model's matmuls keep the cores
# busy already, and halving their rows slows them. Character LSTM (bench_textgen.py, sharded on
# devices / unsharded, benchmarks/README.md): 2 x 256 (8.8e5 parameters) 1.04x, 2 x 128 (2.5e5)
# 1.26x.
# Larger models were never measured, so they are not sharded.
MAX_SHARD_PARAMS = 1e6


def resolve_batch_shards(
    value: Any,
    num_seeds: int,
    batch_size: int,
    length: Optional[int] = None,
    num_params: Optional[int] = None,
    backend: Optional[str] = None,
    cores: Optional[int] = None,
) -> int:
    """The number of batch shards a run uses.

    Args:
      value: a ``runner.batch_shards`` value: ``"auto"`` or a positive integer (or its digits).
      num_seeds: seeds in the run; ``"auto"`` shards only a single seed.
      batch_size: ``B``, the rows of one training batch; the shard count must divide it.
      length: ``T``, the sequence length (``data.length``, or a text window); num_params: the model's parameter count. With both,
        ``"auto"`` shards only a step of at least :data:`MIN_SHARD_FLOPS` training FLOPs
        (``6 x B x T x num_params``) and a model of at most :data:`MAX_SHARD_PARAMS` parameters.
      backend: the platform ``"auto"`` is resolved for (default ``jax.default_backend()``); only
        ``"cpu"`` is sharded.
      cores: CPU cores to use (default :func:`jaxseq.runner.seeds.available_cores`).
    Returns:
      ``n >= 1``. ``"auto"``: for one seed of a small model on CPU with a large enough step, the
      most shards, at most one per core, that divide ``B`` into shards of at least
      :data:`MIN_SHARD_ROWS` rows; else 1.
    Raises:
      ValueError: a value that is neither ``"auto"`` nor a positive integer dividing ``B``.
    """
    if isinstance(value, str) and value.strip().isdigit():  # a config field holds "auto" or "<n>"
        value = int(value)
    if value == "auto":
        if num_seeds != 1 or (backend or jax.default_backend()) != "cpu":
            return 1
        if length is not None and num_params is not None:
            if 6.0 * batch_size * length * num_params < MIN_SHARD_FLOPS or num_params > MAX_SHARD_PARAMS:
                return 1
        count = max(1, min(cores or available_cores(), batch_size // MIN_SHARD_ROWS))
        while batch_size % count:
            count -= 1
        return count
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        if batch_size % value:
            raise ValueError(f"runner.batch_shards={value} does not divide data.batch_size={batch_size}")
        return int(value)
    raise ValueError(f"runner.batch_shards must be auto or a positive integer, got {value!r}")


def mean_of_shards(parts: tuple) -> Any:
    """The mean of equally structured pytrees, summed in the order given (so it is deterministic)."""
    total = parts[0]
    for part in parts[1:]:
        total = jax.tree.map(jnp.add, total, part)
    return jax.tree.map(lambda x: x / len(parts), total)


def shard_devices(count: int) -> Optional[list]:
    """``count`` CPU devices to put one shard on each (jax's first ``count``), or None: jax has
    fewer (its backend started before jaxseq could ask for more: :mod:`jaxseq.runner.cpu_devices`), or its
    default backend is not the CPU (a run on an accelerator stays there, its shards on threads)."""
    if jax.default_backend() != "cpu":
        return None
    devices = jax.devices("cpu")
    return list(devices[:count]) if len(devices) >= count else None


class BatchShards:
    """A trainer's chunk of steps with every step's batch split into ``count`` shards.

    Args:
      count: shards (``>= 2``).
      trainer: provides ``shard_gradients(run, index, count, *args) -> (loss, accuracy, grads)``,
        ``finish_step(run, loss, accuracy, grads) -> (run, metrics)`` and, unless every call
        passes ``steps``, ``chunk_steps`` (see the module docstring). ``args`` are the extra
        arrays a call passes on (e.g. the text trainer's corpus and key).
      per_seed: the run state has a leading ``[seed]`` axis (the seeds run one after another
        under ``lax.map`` within every shard); False: one run, no seed axis.
      mode: ``"devices"`` (one program per chunk over ``count`` CPU devices), ``"threads"`` (one
        program per shard and step, from host threads) or ``"auto"``: devices when jax has
        enough CPU devices (:func:`shard_devices`), else threads.

    Calling it runs a chunk of steps and returns ``(run, metrics)`` like a compiled
    ``run_chunk``: metrics ``[seed, steps]`` (``[steps]`` without a seed axis), on jax's first
    CPU device.
    """

    def __init__(self, count: int, trainer, per_seed: bool = True, mode: str = "auto"):
        if count < 2:
            raise ValueError(f"BatchShards needs at least 2 shards, got {count}")
        if mode not in SHARD_MODES:
            raise ValueError(f"batch shard mode must be one of {', '.join(SHARD_MODES)}, got {mode!r}")
        self.count = count
        self.trainer = trainer
        self.chunk_steps = getattr(trainer, "chunk_steps", None)
        self.devices = shard_devices(count) if mode != "threads" else None
        if mode == "devices" and self.devices is None:
            raise ValueError(f"{count} batch shards on devices need {count} CPU devices and the CPU as jax's default "
                             f"backend; jax has {len(jax.devices('cpu'))} and {jax.default_backend()}")
        self.mode = "devices" if self.devices is not None else "threads"
        self._lift = (lambda fn: map_over_seeds(fn, "map")) if per_seed else (lambda fn: fn)
        self._axis = 1 if per_seed else 0  # where metrics stack their steps
        if self.mode == "devices":
            self._programs = {}  # steps -> compiled chunk
            self._replicated = NamedSharding(Mesh(np.array(self.devices), ("shard",)), PartitionSpec())
            self._placed_args = ((), ())  # (args, their replicated copies): the corpus is placed once
            return

        def gradients(runs, index, *args):
            return self._lift(lambda run: trainer.shard_gradients(run, index, count, *args))(runs)

        def finish(runs, parts):
            return self._lift(lambda each: trainer.finish_step(*each))((runs, *mean_of_shards(parts)))

        self._gradients = jax.jit(gradients)
        self._finish = jax.jit(finish)
        self._stack = jax.jit(lambda steps: jax.tree.map(lambda *xs: jnp.stack(xs, axis=self._axis), *steps))
        self._indices = [jnp.int32(index) for index in range(count)]  # on the device once, not every step
        self._pool = concurrent.futures.ThreadPoolExecutor(count, "batch-shard")

    def _program(self, steps: int):
        """The compiled chunk of ``steps`` steps over the devices: ``(runs, *args) -> (runs, metrics)``."""
        if steps not in self._programs:
            trainer, count, lift, axis = self.trainer, self.count, self._lift, self._axis

            def chunk(runs, *args):
                index = jax.lax.axis_index("shard")

                def step(runs, _):
                    part = lift(lambda run: trainer.shard_gradients(run, index, count, *args))(runs)
                    mean = jax.lax.pmean(part, "shard")  # the shards' mean, as mean_of_shards takes it
                    return lift(lambda each: trainer.finish_step(*each))((runs, *mean))

                runs, metrics = jax.lax.scan(step, runs, None, length=steps)
                return runs, jax.tree.map(lambda m: jnp.moveaxis(m, 0, axis), metrics)

            mesh = self._replicated.mesh
            spec = PartitionSpec()
            self._programs[steps] = jax.jit(jax.shard_map(chunk, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False))
        return self._programs[steps]

    def _place(self, args: tuple) -> tuple:
        """``args`` copied onto every shard's device; the same objects as last call reuse their copies."""
        last, placed = self._placed_args
        if len(last) != len(args) or any(a is not b for a, b in zip(last, args)):
            placed = jax.device_put(args, self._replicated)
            self._placed_args = (args, placed)
        return placed

    def _shard(self, runs: Any, index: int, args: tuple) -> Any:
        return jax.block_until_ready(self._gradients(runs, self._indices[index], *args))

    def step(self, runs: Any, watch: StallWatch, what: str = "step", args: tuple = ()) -> tuple[Any, Any]:
        """One training step through host threads (``threads`` mode): ``(runs, metrics)``, metrics
        ``[seed]`` (scalars without a seed axis).

        Raises:
          StalledRunError: the shards did not finish within the watch's bound.
        """
        futures = [self._pool.submit(self._shard, runs, index, args) for index in range(self.count)]
        watch.wait(futures, what)
        return self._finish(runs, tuple(future.result() for future in futures))

    def __call__(
        self, runs: Any, watch: StallWatch, what: str = "chunk", steps: Optional[int] = None, args: tuple = ()
    ) -> tuple[Any, Any]:
        """``steps`` (default ``trainer.chunk_steps``) steps: ``(runs, metrics)``, metrics stacked over steps.

        Raises:
          StalledRunError: the chunk did not finish within the watch's bound.
        """
        steps = steps or self.chunk_steps
        if self.mode == "devices":
            outputs = self._program(steps)(jax.device_put(runs, self._replicated), *self._place(args))
            # back on the first device: the rest of a run (evaluation, checkpoints) stays single-device
            return jax.device_put(watch.wait(outputs, what), self.devices[0])
        metrics = []
        for _ in range(steps):
            runs, step_metrics = self.step(runs, watch, what, args)
            metrics.append(step_metrics)
        return watch.wait((runs, self._stack(metrics)), what)

    def close(self) -> None:
        """Release the threads (``threads`` mode) without waiting for them."""
        if self.mode == "threads":
            self._pool.shutdown(wait=False)

    def __enter__(self) -> "BatchShards":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
