"""Train one setting's seeds together and record them in a run directory (what study scripts share)."""

from typing import Callable

import jax
import ml_collections
from absl import app
from tqdm import tqdm

from jaxseq.train.multiseed import MultiSeedRunner, SeedResults
from jaxseq.train.results import RunDir
from jaxseq.train.sequence import make_train
from jaxseq.train.sweep import metric_rows, result_rows


def train_setting(
    cfg: ml_collections.ConfigDict,
    run_dir: RunDir,
    progress=None,
    log_every: int = 10,
    label: str | None = None,
    **columns,
) -> SeedResults:
    """Train ``cfg.train.num_seeds`` seeds of ``cfg`` in one vmapped program and append their rows.

    Args:
      cfg: a full experiment config (one setting, see :func:`jaxseq.train.sweep.setting_config`).
      run_dir: receives per-step rows in ``metrics.jsonl`` and one row per seed in ``results.csv``.
      progress: an optional tqdm bar, advanced by ``cfg.train.num_steps`` in all.
      log_every: per-step metrics are written every this many steps (and the last).
      label: names the setting in progress and printed lines (default: the column values).
      **columns: the columns naming the setting (model, length, optimizer, ...), first in every row.
    Returns:
      The :class:`SeedResults` (its ``run`` holds the trained parameters, stacked over seeds).
    """
    trainer = make_train(cfg)
    label = label or " ".join(f"{v}" for v in columns.values())
    start = progress.n if progress is not None else 0
    results = MultiSeedRunner(trainer).run(
        jax.random.key(cfg.train.seed), cfg.train.num_seeds, progress=progress, description=label
    )
    if progress is not None:
        progress.update(start + cfg.train.num_steps - progress.n)  # seeds that stop early skip the rest
    run_dir.append_metrics(metric_rows(results, log_every, **columns))
    run_dir.append_results(result_rows(results, **columns))
    acc = results.final["eval_accuracy"]
    tqdm.write(
        f"{label}: accuracy {acc.mean():.4f} ± {acc.std():.4f}  steps {results.final['steps'].tolist()}  "
        f"{results.wall_time:.1f}s"
    )
    return results


def train_unless_plot_only(argv: list[str], train: Callable[[], None], run_dir: RunDir, plot_only: bool) -> None:
    """The training half of a study script's ``main``: reject stray arguments, then ``train()``.

    Skipped with ``plot_only``. Ctrl-C stops training without losing the settings already written
    to ``run_dir`` (the scripts skip them when run again), and the script goes on to plot them.
    """
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if plot_only:
        return
    try:
        train()
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished settings are in {run_dir.path}; run the same command again to continue")
