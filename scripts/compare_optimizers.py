"""SGD vs momentum vs RMSprop vs Adam: palindrome training curves and the 2-D ravine picture.

    python scripts/compare_optimizers.py --config=configs/optimizers.py --out=results/optimizers --publish=results
    python scripts/compare_optimizers.py --out=results/optimizers --plot_only   # redraw from files
    python scripts/compare_optimizers.py --cluster=ray [--ray_address=HOST:PORT] ...   # optimisers as Ray tasks (docs/cluster.md)

Writes ``OUT/config.json``, ``OUT/results.csv`` (one row per optimiser and seed),
``OUT/metrics.jsonl`` (per-step curves), ``OUT/ravine.csv`` (the 2-D trajectories) and the figures
``OUT/optimizers_palindrome.png`` (loss and accuracy vs step, mean ± std over seeds) and
``OUT/ravine.png`` (trajectories over the loss contours), also into ``--publish`` when given (each
beside a ``<figure>.config.json`` naming the config; an existing figure there is replaced only by
the same config, or with ``--overwrite``).
Without ``--out`` a run goes to a fresh ``runs/compare_optimizers/<YYYYmmdd-HHMMSS>/``.
Optimisers already in ``results.csv`` are skipped when the command is run again (same ``--out``;
a config that differs in anything but ``compare.optimizers`` is refused). Ctrl-C keeps the
optimisers that finished (exit code 130).
"""

import collections
import functools
import os


import numpy as np
from absl import flags

from jaxseq import cli, runner
from jaxseq.analysis import figures
from jaxseq.analysis.ravine import optimizer_trajectory, ravine_loss
from jaxseq.files.guard import (claim_figures, claim_files, define_overwrite, expand, figure_metadata, figure_owner,
                                make_owner, record_owner)
from jaxseq.train.optim import OPTIMIZERS, make_optimizer
from jaxseq.runner.record import make_trainers, not_redrawn, open_run, train_unless_plot_only
from jaxseq.files.results import RunDir
from jaxseq.train.sweep import parse_names, setting_config

_CONFIG = cli.define_config("configs/optimizers.py", "experiment config")
cli.define_tracking()  # --tensorboard, --wandb
_OUT = flags.DEFINE_string("out", None, "output directory (default: a fresh runs/compare_optimizers/<YYYYmmdd-HHMMSS>/)")
_PUBLISH = flags.DEFINE_string("publish", "", "also write the figures into this directory (e.g. results)")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "redraw the figures from OUT without training")
_LOG_EVERY = flags.DEFINE_integer("log_every", 10, "write per-step metrics every this many steps", lower_bound=1)
_OVERWRITE = define_overwrite()
FIGURES = ("ravine.png", "optimizers_palindrome.png")
_LAUNCH = runner.define_flags()

RAVINE_CSV = "ravine.csv"
# the optimiser list may grow between runs into one directory; sweep.* (from palindrome.py) is not used here
MAY_DIFFER = ("compare.optimizers", "sweep.*")


def optimizer_names(config) -> list[str]:
    """The optimisers of ``config.compare.optimizers``, each known and each with a learning rate."""
    names = parse_names(config.compare.optimizers, OPTIMIZERS, "optimizer", "compare.optimizers")
    for section in ("compare", "ravine"):
        missing = [name for name in names if name not in config[section].lr]
        if missing:
            raise ValueError(f"config.{section}.lr has no learning rate for {', '.join(missing)}")
    return names


def plan_optimizers(config, run_dir: RunDir) -> list:
    """``[(name, config, trainer)]`` for the optimisers not yet in ``results.csv``, checked before training."""
    run_dir.check_config(config, MAY_DIFFER)
    done = run_dir.finished_settings(("optimizer",), config.train.num_seeds)
    todo = [name for name in optimizer_names(config) if (name,) not in done]
    configs = [setting_config(config, **{"optim.name": name, "optim.lr": config.compare.lr[name]}) for name in todo]
    return list(zip(todo, configs, make_trainers(configs)))


def train_all(config, run_dir: RunDir, launch: runner.Launch) -> None:
    """The ravine trajectories (cheap: always recomputed), then one palindrome run per optimiser not yet done."""
    plan = plan_optimizers(config, run_dir)
    run_dir.add_config(config, MAY_DIFFER)
    run_dir.write_results(ravine_rows(config), RAVINE_CSV)
    chains = []
    for name, cfg, trainer in plan:
        columns = dict(optimizer=name, lr=cfg.optim.lr, model=cfg.model.name, length=cfg.data.length)
        label = " ".join(f"{v}" for v in columns.values())
        chains.append([runner.Setting(label, cfg, columns, trainer)])
    runner.run_settings(chains, run_dir, launch, _LOG_EVERY.value, lambda _: run_dir.add_config(config, MAY_DIFFER))


def ravine_rows(config) -> list[dict]:
    """Trajectories of the optimisers on the ravine, one row per optimiser and step."""
    loss_fn = functools.partial(ravine_loss, condition=config.ravine.condition)
    rows = []
    for name in optimizer_names(config):
        optim_cfg = setting_config(config.optim, name=name, lr=config.ravine.lr[name], clip_norm=0.0)
        start = np.array(config.ravine.start)
        path = np.asarray(optimizer_trajectory(make_optimizer(optim_cfg), loss_fn, start, config.ravine.num_steps))
        losses = np.asarray(loss_fn(path))
        rows += [
            {"optimizer": name, "lr": optim_cfg.lr, "step": i, "w0": float(w[0]), "w1": float(w[1]), "loss": float(f)}
            for i, (w, f) in enumerate(zip(path, losses))
        ]
    return rows


def plot_ravine(rows, condition: float):
    """Trajectories over the loss contours of the ravine."""
    paths = collections.defaultdict(list)
    for row in rows:
        paths[row["optimizer"]].append((float(row["w0"]), float(row["w1"])))
    points = np.concatenate([np.array(p) for p in paths.values()])
    span = np.abs(points).max(axis=0) * 1.15
    w0, w1 = np.meshgrid(np.linspace(-span[0], span[0], 300), np.linspace(-span[1], span[1], 300))
    fig, ax = figures.plt.subplots(figsize=(9, 3.6))
    surface = ravine_loss(np.stack([w0, w1], -1), condition)
    ax.contour(w0, w1, surface, levels=np.geomspace(1e-2, surface.max(), 14), colors="0.75", linewidths=0.8)
    for name, path in paths.items():
        path = np.array(path)
        final = ravine_loss(path[-1], condition)
        label = f"{name} (final loss {final:.2g})"
        ax.plot(path[:, 0], path[:, 1], marker=".", markersize=4, linewidth=1.2, label=label)
    ax.plot([0], [0], marker="*", color="k", markersize=10)
    ax.set_aspect("equal")  # true shape: the ravine is `condition` times steeper across than along
    ax.set_xlabel("w_0 (along the ravine)")
    ax.set_ylabel("w_1 (across the ravine)")
    ax.set_title(f"(w_0^2 + {condition:g} w_1^2) / 2: {len(next(iter(paths.values()))) - 1} steps of each optimiser")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def main(argv):
    launch, plot_only = runner.from_flags(_LAUNCH), _PLOT_ONLY.value
    run_dir, config = open_run(argv, _OUT.value, "compare_optimizers", _CONFIG.value, plot_only)
    owner = make_owner("compare_optimizers", config, MAY_DIFFER)
    publish = expand(_PUBLISH.value)
    if publish and plot_only:  # a redraw replaces only figures drawn from this run
        claim_figures([os.path.join(publish, name) for name in FIGURES], "--publish",
                      figure_owner("compare_optimizers", run_dir.saved_config()), _OVERWRITE.value, _PUBLISH.value)
    elif publish:
        claim_files([os.path.join(publish, name) for name in FIGURES], "--publish", owner, _OVERWRITE.value,
                    _PUBLISH.value)
    train_unless_plot_only(lambda: train_all(config, run_dir, launch), run_dir, plot_only)
    drawn = {}
    ravine = run_dir.read_results(RAVINE_CSV)
    if ravine:
        drawn["ravine.png"] = plot_ravine(ravine, config.ravine.condition)
    metrics = run_dir.read_metrics()
    if metrics:
        title = f"{config.data.task}, {config.model.name}, T = {config.data.length}"
        drawn["optimizers_palindrome.png"] = figures.training_curves(metrics, group="optimizer", title=title)
    missing = [name for name in FIGURES if name not in drawn] if drawn else []  # nothing at all: the error below
    for name in missing:
        source = run_dir.file(RAVINE_CSV if name == "ravine.png" else "metrics.jsonl")
        not_redrawn(run_dir.file(name), f"it is drawn from {source}, which is not there")
    metadata = figure_metadata(figure_owner("compare_optimizers", run_dir.saved_config()))
    paths = []
    for name, fig in drawn.items():
        if publish:
            paths.append(os.path.join(publish, name))
            figures.save(fig, paths[-1], close=False, metadata=metadata)
            if not plot_only:
                record_owner(paths[-1], owner)
        paths.append(run_dir.file(name))
        figures.save(fig, paths[-1], metadata=metadata)
    if not paths:
        raise ValueError(f"nothing to plot in {run_dir.path}; run without --plot_only first")
    print("figures:", *paths, sep="\n  ")


if __name__ == "__main__":
    cli.run_main(main)
