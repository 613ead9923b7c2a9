"""Several seeds of a graph experiment in one compiled program, mapped over the seed axis the way
the config's ``runner.seed_strategy`` asks (:mod:`jaxseq.runner.seeds`), watched for stalls."""

import time
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxseq.data.graphs import NodeClassification
from jaxseq.runner.multiseed import SeedResults
from jaxseq.runner.seeds import SeedGroups, StallWatch, map_over_seeds, resolve_seed_strategy
from jaxseq.train.checks import check_finite
from jaxseq.train.graph_trainer import make_train


def train_seeds(
    config: ml_collections.ConfigDict, data: NodeClassification | None = None, num_seeds: int | None = None
) -> SeedResults:
    """Train ``num_seeds`` (default ``config.train.num_seeds``) seeds at once in one compiled program.

    Returns:
      :class:`SeedResults` (host NumPy arrays): ``run`` the final
      :class:`jaxseq.train.graph_trainer.GraphRun` stacked ``[seed, ...]``, ``steps`` the per-epoch
      metrics ``[seed, epoch]``, ``final`` the evaluation of the kept parameters ``[seed]``, and
      ``compile_s`` apart from the run (``run_s``).

    Seed ``i`` uses ``jax.random.split(jax.random.key(config.train.seed), num_seeds)[i]``; the seeds
    are mapped by ``config.runner.seed_strategy`` (:mod:`jaxseq.runner.seeds`).

    Raises:
      FloatingPointError: naming the first epoch and seed with a non-finite training loss.
      StalledRunError: the run did not finish within ``runner.stall_timeout_s``.
    """
    num_seeds = config.train.num_seeds if num_seeds is None else num_seeds
    keys = jax.random.split(jax.random.key(config.train.seed), num_seeds)
    options = config.get("runner", {})
    strategy = resolve_seed_strategy(options.get("seed_strategy", "auto"))
    groups = SeedGroups(strategy)
    parts = groups.split(keys)  # one part unless the strategy is threads:G
    start = time.perf_counter()
    train = jax.jit(map_over_seeds(make_train(config, data).train, strategy))
    compiled = {}
    for part in parts:  # parts differ in size by at most one seed: at most two programs
        if part.shape[0] not in compiled:
            compiled[part.shape[0]] = train.lower(part).compile()
    compiled_at = time.perf_counter()
    watch = StallWatch(options.get("stall_timeout_s", None), f"seed strategy {strategy}")
    try:
        outputs = groups(lambda part: compiled[part.shape[0]](part), parts, watch, f"training {num_seeds} seeds")
    finally:
        groups.close()
    state, metrics = groups.join(jax.device_get(outputs))
    finished = time.perf_counter()
    metrics = jax.tree.map(np.asarray, metrics)
    check_run(metrics)
    return SeedResults(run=state, steps=metrics["epoch"], final=metrics["final"], wall_time=finished - start,
                       compile_s=compiled_at - start)


def check_run(metrics: dict[str, Any]) -> None:
    """Raise if any seed's training loss went non-finite (one optimiser step per epoch, so step = epoch)."""
    check_finite(metrics["epoch"]["loss"], first_step=1, what="training loss (step = epoch)")
