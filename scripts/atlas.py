"""The memory atlas: how far every cell remembers on every task, and the cost of getting there.

    python scripts/atlas.py --config=configs/atlas.py --out=results/atlas   # the published atlas (resumes)
    python scripts/atlas.py --config.cells=mycells:MyCell                  # one new cell, beside results/atlas
    python scripts/atlas.py --out=results/atlas --plot_only                # redraw from OUT alone
    python scripts/atlas.py --cluster=ray [--ray_address=HOST:PORT] ...    # (cell, task) pairs side by side on Ray

For each cell of ``config.cells`` and task of ``config.tasks``, the lengths ``atlas.min_length``,
twice that, ... up to ``atlas.max_length`` train in order, ``train.num_seeds`` seeds together at
each; a pair stops at its first length that no seed solves, after the length halfway between it
and the last one solved (:mod:`jaxseq.analysis.atlas`). Every setting is the unit the sweep
writes: its per-step curves (``metrics.jsonl``) and per-seed rows (``results.csv``, with the
setting's parameter count and compiled step time) together, as soon as it finishes, so an
interrupted atlas resumes where it stopped (same ``--out``; the cell and task lists and
``atlas.max_length`` may grow, nothing else may change), a setting under way from its last save
(every 5 minutes and at Ctrl-C: :mod:`jaxseq.files.unfinished`). Ctrl-C keeps what finished (exit code 130).

Writes in ``OUT``, after every setting: ``atlas.csv`` (one row per setting and seed, with ``solved``
and ``steps_to_solve``) and ``atlas_summary.csv`` (one row per cell and task: longest length solved
by every seed and by the mean, the log-log slope of steps to solve against length, the step time);
at the end (and with ``--plot_only``, which writes nothing else)
``atlas.png`` (cells x tasks, the longest length every seed solved written in each square) and
``atlas_steps.png`` (steps to solve against length, one panel per task, log-log). The rows of
``--beside`` (default: the published ``results/atlas``) for cells this run does not train are read,
never retrained or written, and drawn beside this run's (their names in italics).
"""

import pathlib
import statistics
from typing import Optional

import ml_collections
from absl import flags

from jaxseq import cli, runner
from jaxseq.analysis import atlas, figures
from jaxseq.data.sequences import TASKS
from jaxseq.lookup import lookup
from jaxseq.models.registry import model_spec
from jaxseq.files.guard import figure_metadata, figure_owner
from jaxseq.runner.record import make_trainers, open_run, rows_to_plot, train_unless_plot_only
from jaxseq.files.results import RunDir
from jaxseq.train.sequence_trainer import make_train
from jaxseq.train.sweep import parse_list, setting_config

_CONFIG = cli.define_config("configs/atlas.py", "atlas config")
cli.define_tracking()  # --tensorboard, --wandb
_OUT = flags.DEFINE_string("out", None, "output directory (default: a fresh runs/atlas/<YYYYmmdd-HHMMSS>/)")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "redraw the tables and figures from OUT/results.csv without training")
_BESIDE = flags.DEFINE_string("beside", "results/atlas", "a published atlas whose other cells are drawn beside this "
                              "run's (read only; empty: this run alone)")
_LOG_EVERY = flags.DEFINE_integer("log_every", 10, "write per-step metrics every this many steps", lower_bound=1)
_LAUNCH = runner.define_flags()

# the cell and task lists and the longest length may grow when the same --out is run again
MAY_DIFFER = ("cells", "tasks", "atlas.max_length")
FIGURES = ("atlas.png", "atlas_steps.png")


def cell_fields(config: ml_collections.ConfigDict, cell: str) -> dict:
    """The dotted overrides of ``cell``: its ``config.variants`` section, or, for a model name or a
    cell's import path, the base set-up with that model (checked, imported, here)."""
    if cell in config.variants:
        return {f"model.{k}": v for k, v in config.variants[cell].model.items()}
    model_spec(cell)  # an unknown name or an import path that is not a cell fails here, before anything trains
    return {"model.name": cell}


def cells_and_tasks(config: ml_collections.ConfigDict) -> tuple[list[str], list[str]]:
    """``config.cells`` and ``config.tasks`` as lists, every name checked."""
    cells = parse_list(config.cells, str, "cell", "cells")
    tasks = parse_list(config.tasks, str, "task", "tasks")
    for task in tasks:
        lookup(TASKS, task, "task")
    return cells, tasks


def cost_columns(cfg: ml_collections.ConfigDict):
    """``results -> {"num_params": ..., "step_ms": ...}``, the columns a setting's rows get once it
    trained: the model's parameter count (from shapes) and the median wall time of a compiled step
    (all seeds together) over the chunks after the first (which includes compilation; "" when only
    one chunk ran)."""

    def columns(results) -> dict:
        timed = results.chunk_seconds[1:]
        step_ms = round(1000 * statistics.median(timed) / cfg.train.chunk_steps, 3) if timed else ""
        return {"num_params": make_train(cfg).num_params(), "step_ms": step_ms}

    return columns


def plan(config: ml_collections.ConfigDict, run_dir: RunDir) -> list[list[runner.Setting]]:
    """One chain of settings per (cell, task), task by task, each in :func:`jaxseq.analysis.atlas.run_order`;
    the first setting of every pair is built here, so a bad name or value fails before anything trains."""
    cells, tasks = cells_and_tasks(config)
    order = atlas.run_order(config.atlas.min_length, config.atlas.max_length)
    run_dir.check_config(config, MAY_DIFFER)
    chains = []
    for task in tasks:
        for cell in cells:
            fields = {**cell_fields(config, cell), "data.task": task}
            configs = [setting_config(config, **fields, **{"data.length": length}) for length in order]
            first = make_trainers(configs[:1])[0]
            chain = []
            for length, cfg in zip(order, configs):
                trainer = first if cfg is configs[0] else None
                columns = dict(cell=cell, task=task, model=cfg.model.name, hidden_size=cfg.model.hidden_size,
                               num_layers=cfg.model.num_layers, gate_init=cfg.model.gate_init,
                               batch_size=cfg.data.batch_size, num_steps=cfg.train.num_steps, length=length)
                chain.append(runner.Setting(f"{cell} {task} T={length}", cfg, columns, trainer,
                                            cost_columns(cfg)))
            chains.append(chain)
    return chains


def train_atlas(config: ml_collections.ConfigDict, run_dir: RunDir, launch: runner.Launch) -> None:
    """Train every pair's lengths in order, skipping finished settings and lengths the rule of
    :func:`jaxseq.analysis.atlas.should_train` leaves out."""
    chains = plan(config, run_dir)
    threshold = config.atlas.threshold

    def skip(setting: runner.Setting) -> Optional[str]:
        cell, task, length = (setting.columns[k] for k in ("cell", "task", "length"))
        rows = [r for r in run_dir.read_results() if (r["cell"], r["task"]) == (cell, task)]
        done = atlas.seeds_solving(rows, threshold)
        if length in done and done[length][1] >= setting.config.train.num_seeds:
            return ""
        if not atlas.should_train(length, config.atlas.min_length, config.atlas.max_length, done):
            unsolved = [t for t, (count, _) in sorted(done.items()) if count == 0]
            if length in atlas.ladder(config.atlas.min_length, config.atlas.max_length) and unsolved:
                return f"{cell} {task}: T={length} not trained (no seed solved T={unsolved[0]})"
            return ""
        return None

    def after_each(_):  # the tables follow the rows, so an interrupted atlas leaves them whole
        run_dir.add_config(config, MAY_DIFFER)
        write_tables(config, run_dir, run_dir.read_results())

    runner.run_settings(chains, run_dir, launch, _LOG_EVERY.value, after_each, skip)


def beside_rows(run_dir: RunDir, own_cells: set) -> list[dict]:
    """The rows of ``--beside`` for cells this run does not hold (none when it names this run or nothing).

    Raises:
      ValueError: ``--beside`` was given and holds no atlas.
    """
    path = _BESIDE.value
    if not path or pathlib.Path(path).resolve() == run_dir.path.resolve():
        return []
    published = RunDir(path)
    if not published.file("results.csv").is_file():
        if _BESIDE.present:
            raise ValueError(f"--beside={path}: no atlas there (no results.csv); give an atlas's --out, or --beside=")
        return []
    return [row for row in published.read_results() if row["cell"] not in own_cells]


def write_tables(config: ml_collections.ConfigDict, run_dir: RunDir, rows: list[dict]) -> list[dict]:
    """Write ``atlas.csv`` and ``atlas_summary.csv`` from this run's rows; returns the summary."""
    run_dir.write_results(atlas.seed_rows(rows, config.atlas.threshold), "atlas.csv")
    summary = atlas.pair_summary(rows, config.atlas.threshold)
    run_dir.write_results(summary, "atlas_summary.csv")
    return summary


def draw(config: ml_collections.ConfigDict, run_dir: RunDir, rows: list[dict], others: list[dict]) -> list[str]:
    """Draw :data:`FIGURES` into ``run_dir`` from this run's rows and ``others`` (drawn beside); the paths."""
    threshold = config.atlas.threshold
    everything = rows + others
    cells = list(dict.fromkeys(row["cell"] for row in everything))
    tasks = list(dict.fromkeys(row["task"] for row in everything))
    summary = atlas.pair_summary(everything, threshold)
    budgets = "/".join(sorted({str(row.get("num_steps", "")) for row in everything}))
    metadata = figure_metadata(figure_owner("atlas", run_dir.saved_config()))
    outside = {row["cell"] for row in others}
    heat, steps = (str(run_dir.file(name)) for name in FIGURES)
    title = (f"longest length T solved by every seed (accuracy >= {threshold}) within {budgets} steps\n"
             "+: the longest T run, -: none solved, blank: not run")
    figures.save(figures.atlas_heatmap(summary, cells, tasks, title, outside), heat, metadata=metadata)
    figures.save(figures.steps_to_solve_panels(atlas.steps_by_length(everything, threshold), tasks), steps,
                 metadata=metadata)
    return [heat, steps]


def main(argv):
    launch, plot_only = runner.from_flags(_LAUNCH), _PLOT_ONLY.value
    run_dir, config = open_run(argv, _OUT.value, "atlas", _CONFIG.value, plot_only)
    train_unless_plot_only(lambda: train_atlas(config, run_dir, launch), run_dir, plot_only)
    rows = rows_to_plot(run_dir)
    # a redraw writes figures only; a run writes the tables too
    summary = atlas.pair_summary(rows, config.atlas.threshold) if plot_only else write_tables(config, run_dir, rows)
    others = beside_rows(run_dir, {row["cell"] for row in rows})
    drawn = draw(config, run_dir, rows, others)
    for row in summary:
        print(f"{row['cell']:>16s} {row['task']:<20s} every seed {row['longest_all'] or '-':>5}  "
              f"mean {row['longest_mean'] or '-':>5}  first unsolved {row['first_unsolved'] or '-':>5}  "
              f"lengths {row['lengths']}")
    if others:
        print(f"drawn beside: {', '.join(dict.fromkeys(row['cell'] for row in others))} (from {_BESIDE.value})")
    if not plot_only:
        print("tables:", run_dir.file("atlas.csv"), run_dir.file("atlas_summary.csv"))
    print("figures:", *drawn)


if __name__ == "__main__":
    cli.run_main(main)
