"""Run several seeds of a trainer at once, chunk by chunk, with progress (one compiled program, or
one per seed group).

The trainer (for example :class:`jaxseq.train.sequence_trainer.SequenceTrainer`) provides pure
``init(rng)``, ``run_chunk(run) -> (run, metrics[chunk])`` and ``evaluate(run)``; here they are
mapped over a leading seed axis by the config's ``runner.seed_strategy`` (see
:mod:`jaxseq.runner.seeds`) and ``jax.jit``-ed once. On accelerators with more than one device and
a seed count that divides evenly, the seed axis is sharded across devices with ``jax.sharding``.

A chunk that does not finish within a generous bound stops the run with :class:`StalledRunError`
instead of freezing silently (see :class:`jaxseq.runner.seeds.StallWatch`).
"""

import dataclasses
import time
from typing import Any, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxseq.files.checkpoints import interrupts_deferred
from jaxseq.files.unfinished import UnfinishedSetting
from jaxseq.runner.batch_shards import BatchShards, resolve_batch_shards
from jaxseq.train.checks import check_finite
from jaxseq.runner.seeds import (
    SHARD_WORKAROUND,
    SeedGroups,
    StalledRunError,
    StallWatch,
    map_over_seeds,
    resolve_seed_strategy,
)

__all__ = ["MultiSeedRunner", "SeedResults", "StalledRunError", "seed_keys", "seed_sharding"]


@dataclasses.dataclass
class SeedResults:
    """What a multi-seed run returns, for every experiment (sequences here, graphs in
    :func:`jaxseq.runner.graph_seeds.train_seeds`).

    Attributes:
      run: the final run state, every leaf stacked ``[seed, ...]``.
      steps: per-step (per-epoch for graphs) metrics, numpy arrays ``[seed, steps_run]``.
      final: per-seed numpy arrays ``[seed]``: evaluation metrics; for sequences also ``steps``
        (updates applied), ``converged_step`` and ``stopped_step`` (-1 when it never happened), for
        graphs ``epochs``.
      wall_time: seconds for the whole run, compilation included.
      batch_shards: how many shards each step's batch was split into (``runner.batch_shards``).
      chunk_seconds: wall seconds of each chunk (all seeds together; the first one includes compilation).
      compile_s: seconds to trace and compile, where that was timed apart (graph runs); else None.
    """

    run: Any
    steps: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    wall_time: float
    batch_shards: int = 1
    chunk_seconds: tuple = ()
    compile_s: Optional[float] = None

    @property
    def run_s(self) -> float:
        """Seconds of running, without the compilation timed apart (:attr:`compile_s`)."""
        return self.wall_time - (self.compile_s or 0.0)


def seed_sharding(num_seeds: int) -> Optional[NamedSharding]:
    """Sharding of a leading seed axis over all devices, or None.

    None with one device, an uneven split, or on CPU: host "devices" share the same cores, which
    the CPU default (``threads``) already keeps busy.
    """
    devices = jax.devices()
    if len(devices) < 2 or num_seeds % len(devices) or devices[0].platform == "cpu":
        return None
    return NamedSharding(Mesh(np.array(devices), ("seed",)), PartitionSpec("seed"))


def seed_keys(key: jax.Array, num_seeds: int) -> jax.Array:
    """``jax.random.split(key, num_seeds)``, placed across devices when that is possible.

    Seed ``i`` of a vmapped run uses ``keys[i]``, so it equals an un-vmapped run with that key.
    """
    if num_seeds <= 0:
        raise ValueError(f"number of seeds must be positive, got {num_seeds}")
    keys = jax.random.split(key, num_seeds)
    sharding = seed_sharding(num_seeds)
    return keys if sharding is None else jax.device_put(keys, sharding)


class MultiSeedRunner:
    """Compiled, seed-mapped versions of a trainer's functions (each traced once and reused).

    Args:
      trainer: an object with pure ``init``, ``run_chunk``, ``evaluate``, ``num_chunks`` and
        ``chunk_steps`` (and ``batch_size``; ``length`` and ``num_params`` let ``"auto"`` size shards).
      options: how the seeds run, the ``runner`` section of the setting's config: its
        ``seed_strategy``, ``batch_shards`` and ``stall_timeout_s`` (each optional; None: the defaults
        ``"auto"``, ``1`` and :data:`jaxseq.runner.seeds.DEFAULT_STALL_TIMEOUT_S`). Trainers know nothing of them.
      strategy: overrides ``options.seed_strategy`` (``"auto"``, ``"vmap"``, ``"map"``,
        ``"map:<K>"``, ``"threads"``, ``"threads:<G>"``); per-seed results do not depend on it.
      batch_shards: overrides ``options.batch_shards`` (``"auto"`` or a count; see
        :mod:`jaxseq.runner.batch_shards`). With more than one shard a chunk runs through
        :meth:`shards` (the trainer then needs ``shard_gradients`` and ``finish_step``), and the
        seeds run under ``lax.map`` in every shard.
      shard_mode: where the shards run: ``"auto"`` (CPU devices when jax has enough, else host
        threads), ``"devices"`` or ``"threads"`` (:class:`jaxseq.runner.batch_shards.BatchShards`).

    ``init``, ``run_chunk`` and ``evaluate`` are the compiled functions of one seed group (all
    seeds unless the strategy is ``"threads:G"``, whose ``G`` groups :meth:`run` calls at once).

    Raises:
      ValueError: an unknown seed strategy, or a batch-shard count that does not divide the batch.
    """

    def __init__(self, trainer, options=None, strategy: Optional[str] = None, batch_shards: Any = None,
                 shard_mode: str = "auto"):
        options = options if options is not None else {}
        self.trainer = trainer
        self.shard_mode = shard_mode
        self.strategy = resolve_seed_strategy(strategy or options.get("seed_strategy", "auto"))
        self.batch_shards = options.get("batch_shards", 1) if batch_shards is None else batch_shards
        resolve_batch_shards(self.batch_shards, 2, trainer.batch_size)  # a bad value fails here, eagerly
        self.init = jax.jit(map_over_seeds(trainer.init, self.strategy))
        self.run_chunk = jax.jit(map_over_seeds(trainer.run_chunk, self.strategy))
        self.evaluate = jax.jit(map_over_seeds(trainer.evaluate, self.strategy))
        self.stall_timeout_s = options.get("stall_timeout_s", None)

    def run(self, key: jax.Array, num_seeds: int, progress=None, description: str = "",
            unfinished: Optional[UnfinishedSetting] = None) -> SeedResults:
        """Train ``num_seeds`` seeds from ``key`` until every seed stops or the budget ends.

        Args:
          key: the sweep key; seed ``i`` trains with ``jax.random.split(key, num_seeds)[i]``.
          num_seeds: how many seeds to train side by side.
          progress: an optional tqdm-like bar (``update``, ``set_postfix_str``), advanced by steps.
          description: prefix for the progress text.
          unfinished: where this setting is saved while under way (None: nowhere). The run goes on
            from its save when there is a usable one, saves every ``unfinished.every_s`` seconds and
            when Ctrl-C stops it, and leaves deleting the save to the caller, once the results are
            recorded (see :mod:`jaxseq.files.unfinished`).
        Returns:
          :class:`SeedResults`.
        Raises:
          FloatingPointError: a seed's loss became NaN or infinite (names the step and seed).
          StalledRunError: a chunk did not finish within the stall bound (see :class:`StallWatch`).
        """
        groups, shards = self.executors(num_seeds)
        try:
            return self._run(key, num_seeds, groups, shards, progress, description, unfinished)
        finally:
            groups.close()
            if shards is not None:
                shards.close()

    def executors(self, num_seeds: int) -> tuple[SeedGroups, Optional[BatchShards]]:
        """How a run of ``num_seeds`` seeds is spread over threads: its :class:`SeedGroups` (one
        group when the batch is sharded) and its :class:`BatchShards` (None: one shard). Close both."""
        shards = self.shards(num_seeds)
        return SeedGroups(self.strategy if shards is None else "map"), shards

    def chunk(self, runs: list, groups: SeedGroups, shards: Optional[BatchShards], watch: StallWatch, what: str) -> list:
        """One chunk of every seed group (from :meth:`executors`): ``[(run, metrics), ...]``, finished."""
        if shards is None:
            return groups(self.run_chunk, runs, watch, what)
        return [shards(runs[0], watch, what)]  # one seed group, split by batch rows

    def shards(self, num_seeds: int) -> Optional[BatchShards]:
        """The :class:`BatchShards` a run of ``num_seeds`` seeds trains with, or None (one shard)."""
        trainer = self.trainer
        sized = self.batch_shards == "auto" and num_seeds == 1 and hasattr(trainer, "num_params")
        length, num_params = (trainer.length, trainer.num_params()) if sized else (None, None)
        count = resolve_batch_shards(self.batch_shards, num_seeds, trainer.batch_size, length, num_params)
        return BatchShards(count, self.trainer, mode=self.shard_mode) if count > 1 else None

    def _run(self, key, num_seeds, groups: SeedGroups, shards: Optional[BatchShards], progress, description,
             unfinished: Optional[UnfinishedSetting]) -> SeedResults:
        start = time.perf_counter()
        trainer = self.trainer
        if shards is None:
            watch = StallWatch(self.stall_timeout_s, f"seed strategy {self.strategy}")
        else:
            watch = StallWatch(self.stall_timeout_s, f"{shards.count} batch shards on {shards.mode}", SHARD_WORKAROUND)
        runs = groups(self.init, groups.split(seed_keys(key, num_seeds)), watch, "initialisation")
        chunks, chunk_seconds, first, before_s = [], [], 0, 0.0
        resumed = unfinished.load(groups.join(runs)) if unfinished is not None else None
        if resumed is not None and resumed.next_chunk < trainer.num_chunks:
            unfinished.say_resumed(resumed, trainer.chunk_steps)
            runs, chunks, first = groups.split(resumed.run), [resumed.steps], resumed.next_chunk
            chunk_seconds, before_s = list(resumed.chunk_seconds), resumed.elapsed_s
            if progress is not None:
                progress.update(first * trainer.chunk_steps)

        done = saved = first  # chunks finished; the chunk count of the newest save

        def save() -> None:
            nonlocal saved
            steps = {k: np.concatenate([c[k] for c in chunks], axis=1) for k in chunks[0]}
            unfinished.save(groups.join(runs), steps, done, chunk_seconds, before_s + time.perf_counter() - start)
            saved = done

        try:
            for index in range(first, trainer.num_chunks):
                chunk_start = time.perf_counter()
                outputs = self.chunk(runs, groups, shards, watch, f"chunk {index + 1} of {trainer.num_chunks}")
                running = np.concatenate([np.asarray(run.active) for run, _ in outputs])
                metrics = groups.join(jax.device_get([metrics for _, metrics in outputs]))
                active = metrics["active"]
                check_finite(np.where(active, metrics["loss"], 0.0), first_step=index * trainer.chunk_steps + 1)
                # one statement, so a Ctrl-C leaves all four at the same chunk for save()
                runs, chunks, chunk_seconds, done = ([run for run, _ in outputs], chunks + [metrics],
                                                     chunk_seconds + [time.perf_counter() - chunk_start], index + 1)
                if unfinished is not None and running.any() and done < trainer.num_chunks and unfinished.due():
                    save()
                if progress is not None:
                    last = np.where(active.any(axis=0))[0]
                    # a chunk with no update (every seed had stopped) has no accuracy to show
                    acc = f"{metrics['accuracy'][:, last[-1]].mean():.3f}" if last.size else "-"
                    progress.update(trainer.chunk_steps)
                    progress.set_postfix_str(
                        f"{description} acc {acc} running {int(running.sum())}/{num_seeds}"
                    )
                if not running.any():
                    break
        except KeyboardInterrupt:
            # ``runs`` and ``chunks`` hold the last finished chunk: keep them for the next sitting
            if unfinished is not None and saved < done < trainer.num_chunks:
                with interrupts_deferred(f"saving {unfinished.path}"):
                    save()
            raise
        run = groups.join(runs)
        steps = {k: np.concatenate([c[k] for c in chunks], axis=1) for k in chunks[0]}
        evaluated = groups.join(jax.device_get(groups(self.evaluate, runs, watch, "evaluation")))
        final = {k: np.asarray(v) for k, v in evaluated.items()}
        final["steps"] = steps["active"].sum(axis=1)
        final["converged_step"] = np.asarray(run.converged_step)
        final["stopped_step"] = np.asarray(run.stopped_step)
        jax.block_until_ready(run)
        return SeedResults(run=run, steps=steps, final=final, wall_time=before_s + time.perf_counter() - start,
                           batch_shards=1 if shards is None else shards.count, chunk_seconds=tuple(chunk_seconds))
