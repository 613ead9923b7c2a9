"""Train one setting's seeds together and record them in a run directory (what study scripts share).

A study script plans its settings (building every trainer first, so a bad name or value in any
setting fails before anything trains), checks that ``--out`` holds results of the same config,
then trains the settings not yet recorded (all their seeds' rows present), saving each one's curves
and rows together (after ``config.json``) as soon as it finishes. Ctrl-C keeps what finished, saves
the setting under way (:mod:`jaxseq.files.unfinished`) and exits with code 130 (:mod:`jaxseq.cli`).
"""

import json
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np
import ml_collections
from tqdm import tqdm

from jaxseq import report
from jaxseq.runner.batch_shards import resolve_batch_shards
from jaxseq.runner.multiseed import MultiSeedRunner, SeedResults
from jaxseq.runner.seeds import resolve_seed_strategy
from jaxseq.files.results import RunDir, output_dir
from jaxseq.files.unfinished import SAVE_EVERY_S, UnfinishedSetting
from jaxseq.train.sequence_trainer import SequenceTrainer, make_train
from jaxseq.train.periodic import is_time


def make_trainers(configs: Sequence[ml_collections.ConfigDict]) -> list[SequenceTrainer]:
    """Every setting's trainer, built before any trains, with how its seeds will run (the ``runner``
    section's ``seed_strategy`` and ``batch_shards``): unknown names and bad values fail at once."""
    trainers = [make_train(cfg) for cfg in configs]
    for cfg in configs:
        options = cfg.get("runner", {})
        resolve_seed_strategy(options.get("seed_strategy", "auto"))
        resolve_batch_shards(options.get("batch_shards", 1), 2, cfg.data.batch_size)
    return trainers


def train_setting(
    cfg: ml_collections.ConfigDict,
    run_dir: RunDir,
    progress=None,
    log_every: int = 10,
    label: str | None = None,
    trainer: Optional[SequenceTrainer] = None,
    extra: Optional[Callable[[SeedResults], dict]] = None,
    save_every_s: float = SAVE_EVERY_S,
    **columns,
) -> SeedResults:
    """Train ``cfg.train.num_seeds`` seeds of ``cfg`` in one compiled program and append their rows.

    Args:
      cfg: a full experiment config (one setting, see :func:`jaxseq.train.sweep.setting_config`).
      run_dir: receives per-step rows in ``metrics.jsonl`` and one row per seed in ``results.csv``
        (together, replacing rows an earlier attempt at the same setting left: see
        :meth:`jaxseq.files.results.RunDir.record_setting`).
      progress: an optional tqdm bar, advanced by ``cfg.train.num_steps`` in all.
      log_every: per-step metrics are written every this many steps (and the last).
      label: names the setting in progress and printed lines (default: the column values).
      trainer: ``make_train(cfg)`` if it was built already (see :func:`make_trainers`).
      extra: ``results -> {column: value}``, columns appended to every per-seed row (the same for
        all seeds: e.g. a timing taken from the results).
      save_every_s: while the setting trains, its state is saved in ``run_dir/unfinished/`` every
        this many seconds and on Ctrl-C, so the same command later goes on from there instead of
        from step 0 (:mod:`jaxseq.files.unfinished`); the save is deleted once the rows are written.
      **columns: the columns naming the setting (model, length, optimizer, ...), first in every row.
    Returns:
      The :class:`SeedResults` (its ``run`` holds the trained parameters, stacked over seeds).
    """
    trainer = trainer or make_train(cfg)
    label = label or " ".join(f"{v}" for v in columns.values())
    start = progress.n if progress is not None else 0
    unfinished = UnfinishedSetting(run_dir, columns, cfg, save_every_s)
    results = MultiSeedRunner(trainer, cfg.get("runner")).run(
        jax.random.key(cfg.train.seed), cfg.train.num_seeds, progress=progress, description=label,
        unfinished=unfinished,
    )
    if progress is not None:
        progress.update(start + cfg.train.num_steps - progress.n)  # seeds that stop early skip the rest
    record_results(results, run_dir, log_every, label, extra, **columns)
    unfinished.discard()
    return results


def record_results(results: SeedResults, run_dir: RunDir, log_every: int, label: str,
                   extra: Optional[Callable[[SeedResults], dict]] = None, **columns) -> None:
    """Write one setting's per-step rows and per-seed rows to ``run_dir`` together and print its summary line.

    The same for a setting trained here (:func:`train_setting`) and one trained elsewhere and sent
    back (:mod:`jaxseq.runner`): the files never depend on where a setting ran. ``extra``: see
    :func:`train_setting`.
    """
    rows = result_rows(results, **columns)
    if extra is not None:
        added = extra(results)
        rows = [{**row, **added} for row in rows]
    run_dir.record_setting(columns, metric_rows(results, log_every, **columns), rows)
    acc = results.final["eval_accuracy"]
    tqdm.write(
        f"{label}: accuracy {acc.mean():.4f} ± {acc.std():.4f}  steps {results.final['steps'].tolist()}  "
        f"{results.wall_time:.1f}s"
    )


def check_arguments(argv: list[str], out: Optional[str], plot_only: bool) -> None:
    """Refuse stray arguments, and ``--plot_only`` without the ``--out`` it would redraw.

    Raises:
      ValueError: naming the problem and the fix.
    """
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {' '.join(argv[1:])} (flags are written --name=value)")
    if plot_only and not out:
        raise ValueError("--plot_only redraws the figures of an earlier run: give its directory with --out")


def open_run(
    argv: list[str], out: Optional[str], tool: str, config: ml_collections.ConfigDict, plot_only: bool
) -> tuple[RunDir, ml_collections.ConfigDict]:
    """A study script's first lines: its arguments checked (:func:`check_arguments`), its run
    directory (``out``, or a fresh ``runs/<tool>/<time>/``), and the config to use: ``config``, or
    with ``plot_only`` the one the run was made with (:func:`saved_run_config`).

    Raises:
      ValueError: naming the problem and the fix.
    """
    check_arguments(argv, out, plot_only)
    run_dir = output_dir(out, tool)
    return run_dir, (saved_run_config(run_dir, config) if plot_only else config)


def rows_to_plot(run_dir: RunDir, name: str = "results.csv") -> list[dict]:
    """The rows of ``run_dir``'s ``name`` that a figure is drawn from.

    Raises:
      ValueError: there are none (nothing was trained there yet).
    """
    rows = run_dir.read_results(name)
    if not rows:
        raise ValueError(f"no rows in {run_dir.file(name)} to plot; run without --plot_only first")
    return rows


def saved_run_config(run_dir: RunDir, like: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config ``run_dir``'s results were made with (its ``config.json``): what ``--plot_only``
    draws with, whatever ``--config`` says, so a redraw needs only ``--out``.

    Args:
      run_dir: the run to redraw.
      like: a config of the script's own experiment: the saved one must have each of its sections
        but the runner section (how seeds ran is no part of a figure).
    Raises:
      ValueError: there is no run there (nothing to redraw), its ``config.json`` cannot be read, or
        it is another tool's run.
    """
    if run_dir.saved_config() is None:
        raise ValueError(f"--plot_only: no results in {run_dir.path} (no config.json) to redraw; "
                         "run without --plot_only first")
    saved = json.loads(run_dir.file("config.json").read_text())
    if not set(like.keys()) - {"runner"} <= set(saved):  # (a saved config may keep a section the script no longer uses)
        raise ValueError(f"--plot_only: {run_dir.path} holds another tool's results (its config.json has sections "
                         f"{', '.join(sorted(saved))}; this script's have {', '.join(sorted(like.keys()))}); "
                         "give the --out of a run of this script")
    return ml_collections.ConfigDict(saved)


def not_redrawn(path, reason: str) -> None:
    """Say in one line (``warning: ...``) that the figure ``path`` was not drawn, and why."""
    report.warn(f"{path} not redrawn: {reason}")


def train_unless_plot_only(train: Callable[[], None], run_dir: RunDir, plot_only: bool) -> None:
    """The training half of a study script's ``main``: ``train()``, skipped with ``plot_only``.

    Raises:
      KeyboardInterrupt: on Ctrl-C, saying where the finished settings are (the scripts skip them
        when the same command runs again); :func:`jaxseq.cli.run_main` exits with 130.
    """
    if plot_only:
        return
    try:
        train()
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"finished settings are in {run_dir.path}; run the same command again to continue, from "
            "the last save of the setting under way (add --plot_only to draw the finished ones now)"
        ) from None


def result_rows(results: SeedResults, **columns: Any) -> list[dict[str, Any]]:
    """One summary row per seed: the given columns, then the final metrics and wall time.

    ``final_train_loss`` is the loss of the last step whose update was applied.
    """
    steps, final = results.steps, results.final
    num_seeds = len(final["steps"])
    last = np.maximum(final["steps"] - 1, 0)
    rows = []
    for seed in range(num_seeds):
        rows.append(
            {
                **columns,
                "seed": seed,
                "eval_accuracy": float(final["eval_accuracy"][seed]),
                "eval_loss": float(final["eval_loss"][seed]),
                "final_train_loss": float(steps["loss"][seed, last[seed]]),
                "steps": int(final["steps"][seed]),
                "converged_step": int(final["converged_step"][seed]),
                "wall_time_s": round(results.wall_time, 2),
            }
        )
    return rows


def metric_rows(results: SeedResults, every: int, keys=("loss", "accuracy", "grad_norm", "param_norm"), **columns):
    """Per-step rows (every ``every`` steps and the last) for ``metrics.jsonl``, all seeds.

    Steps after a seed stopped are included with ``active: False`` (the frozen model's metrics on
    fresh batches), so curves of all seeds cover the same steps.
    """
    steps = results.steps
    num_seeds, total = steps["loss"].shape
    rows = []
    for index in range(total):
        step = index + 1
        if not is_time(step, every, total):
            continue
        for seed in range(num_seeds):
            row = {**columns, "seed": seed, "step": step, "active": bool(steps["active"][seed, index])}
            row.update({k: float(steps[k][seed, index]) for k in keys})
            rows.append(row)
    return rows
