"""Gradient norm ||dL/dh_t|| vs time step, at initialisation and after training, over seeds.

    python scripts/grad_norms.py --config=configs/grad_norms.py --out=results/grad_norms --publish=results
    python scripts/grad_norms.py --out=results/grad_norms --plot_only   # redraw from the CSV

Writes ``OUT/config.json``, ``OUT/grad_norms.csv`` (one row per model, stage, seed and time step),
``OUT/results.csv`` (the trained seeds' summary rows) and ``OUT/grad_norms.png`` (also into
``--publish`` when given, beside a ``grad_norms.png.config.json`` naming the config; an existing
figure there is replaced only by the same config, or with ``--overwrite``). Without ``--out`` a run goes to a fresh
``runs/grad_norms/<YYYYmmdd-HHMMSS>/``. A model already in ``results.csv`` (all its seeds) is skipped when the
command is run again (same ``--out``; a config that differs in anything but ``probe.models`` is
refused). Ctrl-C keeps the models that finished (exit code 130).
"""

import collections
import pathlib


import jax
import numpy as np
from absl import flags
from tqdm import tqdm

from jaxseq import cli
from jaxseq.report import progress
from jaxseq.analysis import figures
from jaxseq.analysis.grad_norms import seed_grad_norms_fn
from jaxseq.data.sequences import get_task
from jaxseq.files.guard import (claim_figures, claim_file, define_overwrite, expand, figure_metadata, figure_owner,
                                make_owner, record_owner)
from jaxseq.runner.multiseed import MultiSeedRunner, seed_keys
from jaxseq.runner.record import make_trainers, open_run, rows_to_plot, train_unless_plot_only
from jaxseq.files.results import RunDir
from jaxseq.runner.record import result_rows
from jaxseq.train.sweep import parse_models, setting_config

_CONFIG = cli.define_config("configs/grad_norms.py", "experiment config")
_OUT = flags.DEFINE_string("out", None, "output directory (default: a fresh runs/grad_norms/<YYYYmmdd-HHMMSS>/)")
_PUBLISH = flags.DEFINE_string("publish", "", "also write the figure into this directory (e.g. results)")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "redraw the figure from OUT/grad_norms.csv without training")
_OVERWRITE = define_overwrite()

NORMS_CSV = "grad_norms.csv"
# the model list may grow between runs into one directory; sweep.* (from palindrome.py) is not used here
MAY_DIFFER = ("probe.models", "sweep.*")


def norm_rows(norms: np.ndarray, **columns) -> list[dict]:
    """``norms [seed, time]`` -> one row per seed and time step (``t`` is 1-based)."""
    return [
        {**columns, "seed": seed, "t": t + 1, "grad_norm": float(norms[seed, t])}
        for seed in range(norms.shape[0])
        for t in range(norms.shape[1])
    ]


def probe_model(cfg, trainer, run_dir: RunDir, bar) -> None:
    """Train one model's seeds, probing the gradient norms before and after; append the rows."""
    model = cfg.model.name
    runner = MultiSeedRunner(trainer, cfg.runner)
    key, num_seeds = jax.random.key(cfg.train.seed), cfg.train.num_seeds
    probe = seed_grad_norms_fn(trainer.model, strategy=runner.strategy, regression=trainer.task.regression)
    batch = trainer.get_batch(jax.random.key(cfg.probe.seed), cfg.probe.batch_size)
    # a task that answers once is probed through the model's last-step read-out, as it trains
    answers = (batch.targets[:, -1], None) if trainer.task.last_step_only else (batch.targets, batch.mask)

    # runner.run starts from exactly these parameters (same keys), so "init" is the trained seeds' start
    initial = runner.init(seed_keys(key, num_seeds)).train_state.params
    rows = norm_rows(np.asarray(probe(initial, batch.inputs, *answers)), model=model, stage="init")
    results = runner.run(key, num_seeds, progress=bar, description=model)
    trained = results.run.train_state.params
    stage = f"step {cfg.train.num_steps}"
    rows += norm_rows(np.asarray(probe(trained, batch.inputs, *answers)), model=model, stage=stage)

    # the norms first, the summary rows last: a model counts as probed once its summary rows are in place
    run_dir.record_setting({"model": model}, [], rows, NORMS_CSV)
    run_dir.record_setting({"model": model}, [], result_rows(results, model=model, task=cfg.data.task, length=cfg.data.length))
    acc = results.final["eval_accuracy"]
    tqdm.write(f"{model:>14s} accuracy after {stage}: {acc.mean():.4f} ± {acc.std():.4f}  {results.wall_time:.1f}s")


def probe_models(config, run_dir: RunDir) -> None:
    """Probe every model of ``config.probe.models`` not yet in the CSV (all checked before any trains)."""
    models = parse_models(config.probe.models, "probe.models")
    run_dir.check_config(config, MAY_DIFFER)
    done = run_dir.finished_settings(("model",), config.train.num_seeds)
    configs = [setting_config(config, **{"model.name": m}) for m in models if (m,) not in done]
    trainers = make_trainers(configs)
    with progress(len(configs) * config.train.num_steps) as bar:
        for cfg, trainer in zip(configs, trainers):
            probe_model(cfg, trainer, run_dir, bar)
            run_dir.add_config(config, MAY_DIFFER)


def plot(run_dir: RunDir, title: str, last_step_only: bool = True):
    """Gradient norm (log scale) vs input step, one line per (model, stage): the geometric mean over
    seeds with a ×/÷ geometric std band."""
    by_line = collections.defaultdict(lambda: collections.defaultdict(dict))
    for row in run_dir.read_results(NORMS_CSV):
        by_line[(row["model"], row["stage"])][int(row["seed"])][int(row["t"])] = float(row["grad_norm"])
    fig, ax = figures.plt.subplots(figsize=(7, 4.5))
    colors = {}
    for (model, stage), by_seed in by_line.items():
        steps = sorted(next(iter(by_seed.values())))
        ys = np.array([[by_seed[s][t] for t in steps] for s in sorted(by_seed)])
        color = colors.setdefault(model, f"C{len(colors)}")
        style = "--" if stage == "init" else "-"
        # norms span decades: a geometric band, which a linear std would not be (it would cross zero)
        figures.mean_std_band(ax, steps, ys, f"{model}, {stage}", geometric=True, color=color, linestyle=style)
    ax.set_yscale("log")
    ax.set_xlabel("input step t (the loss is computed after the last one, t = T - 1)" if last_step_only
                  else "input step t (the loss is computed at the task's answer steps)")
    ax.set_ylabel("||dL/dh_t|| (batch mean, log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def main(argv):
    plot_only = _PLOT_ONLY.value
    run_dir, config = open_run(argv, _OUT.value, "grad_norms", _CONFIG.value, plot_only)
    owner = make_owner("grad_norms", config, MAY_DIFFER)
    publish = expand(_PUBLISH.value)
    if publish:  # a redraw replaces only a figure drawn from this run; training, only one its config wrote
        publish, given = pathlib.Path(publish) / "grad_norms.png", _PUBLISH.value
        if plot_only:
            drawn_by = figure_owner("grad_norms", run_dir.saved_config())
            (publish,) = claim_figures([publish], "--publish", drawn_by, _OVERWRITE.value, given)
        else:
            publish = claim_file(publish, "--publish", owner, _OVERWRITE.value, given)
    train_unless_plot_only(lambda: probe_models(config, run_dir), run_dir, plot_only)
    rows_to_plot(run_dir, NORMS_CSV)
    path = run_dir.file("grad_norms.png")
    task = get_task(config.data.task, config.data.get(config.data.task))
    length = config.data.length
    fig = plot(run_dir, f"{config.data.task}, T = {length} ({task.time_steps(length)} input steps)",
               task.last_step_only)
    metadata = figure_metadata(figure_owner("grad_norms", run_dir.saved_config()))
    if publish:
        figures.save(fig, publish, close=False, metadata=metadata)
        if not plot_only:
            record_owner(publish, owner)
    figures.save(fig, path, metadata=metadata)
    print("figure:", path, *([publish] if publish else []))


if __name__ == "__main__":
    cli.run_main(main)
