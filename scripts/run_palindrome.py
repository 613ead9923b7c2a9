"""Accuracy vs sequence length over models and seeds (seeds trained together in one compiled program).

    python scripts/run_palindrome.py --config=configs/palindrome.py --out=results/demo
    python scripts/run_palindrome.py --config=configs/palindrome.py:full --out=results/full
    python scripts/run_palindrome.py --config.sweep.models=gru --config.data.task=baum_sweet ...
    python scripts/run_palindrome.py --out=results/demo --plot_only   # redraw from results.csv
    python scripts/run_palindrome.py --cluster=ray [--ray_address=HOST:PORT] ...   # settings as Ray tasks (docs/cluster.md)

Writes ``OUT/config.json``, ``OUT/results.csv`` (one row per model, length, seed; a ``cell.<field>``
column per field ``model.cell_kwargs`` sets),
``OUT/metrics.jsonl`` (per-step curves) and figures ``OUT/accuracy_vs_length.png`` and
``OUT/curves_T<length>.png``. Without ``--out`` a run goes to a fresh
``runs/run_palindrome/<YYYYmmdd-HHMMSS>/``; results are published under ``results/`` only when
``--out`` names it. Each finished (model, length) is on disk at once; running the same command
again (same ``--out``) skips what is already in ``results.csv``, and refuses a config that differs
in anything but ``sweep.models`` and ``sweep.lengths``. Ctrl-C loses only the setting in progress
(exit code 130).
"""

from absl import flags

from jaxseq import cli, runner
from jaxseq.analysis import figures
from jaxseq.files.guard import figure_metadata, figure_owner
from jaxseq.runner.record import make_trainers, not_redrawn, open_run, train_unless_plot_only
from jaxseq.files.results import RunDir
from jaxseq.train.sweep import cell_columns, setting_config, sweep_settings

_CONFIG = cli.define_config("configs/palindrome.py", "experiment config")
cli.define_tracking()  # --tensorboard, --wandb
_OUT = flags.DEFINE_string("out", None, "output directory (default: a fresh runs/run_palindrome/<YYYYmmdd-HHMMSS>/)")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "redraw the figures from OUT/results.csv without training")
_LOG_EVERY = flags.DEFINE_integer("log_every", 10, "write per-step metrics every this many steps", lower_bound=1)
_LAUNCH = runner.define_flags()

# the sweep lists: a rerun into the same directory may extend them, nothing else may change
MAY_DIFFER = ("sweep.models", "sweep.lengths")


def plot(run_dir: RunDir, task: str) -> list[str]:
    """Draw the sweep figures from the files in ``run_dir``; returns the paths written."""
    results = run_dir.read_results()
    if not results:
        return []
    metadata = figure_metadata(figure_owner("run_palindrome", run_dir.saved_config()))
    paths = [run_dir.file("accuracy_vs_length.png")]
    title = f"{task}: accuracy vs length"
    figures.save(figures.accuracy_vs_length(results, title=title), paths[0], metadata=metadata)
    metrics = run_dir.read_metrics()
    lengths = sorted({int(r["length"]) for r in results})
    for length in lengths:
        rows = [m for m in metrics if m["length"] == length]
        if rows:
            paths.append(run_dir.file(f"curves_T{length}.png"))
            figures.save(figures.training_curves(rows, title=f"{task}, T = {length}"), paths[-1], metadata=metadata)
    if not metrics:
        not_redrawn(run_dir.file(f"curves_T{{{','.join(map(str, lengths))}}}.png"),
                    f"they are drawn from the training curves in {run_dir.file('metrics.jsonl')}, which are not there")
    return [str(p) for p in paths]


def plan_sweep(config, run_dir: RunDir) -> list:
    """``[((model, length), config, trainer)]`` for the settings not yet in ``results.csv``.

    Everything is checked here, before anything trains: the sweep lists, every setting's names and
    values (by building its trainer), and that ``run_dir`` holds results of the same config.
    """
    settings = sweep_settings(config)
    run_dir.check_config(config, MAY_DIFFER)
    done = run_dir.finished_settings(("model", "length"), config.train.num_seeds)
    todo = [(model, length) for model, length in settings if (model, str(length)) not in done]
    if len(todo) < len(settings):
        print(f"{len(settings) - len(todo)} of {len(settings)} settings already in {run_dir.file('results.csv')}; skipping them")
    configs = [setting_config(config, **{"model.name": model, "data.length": length}) for model, length in todo]
    return list(zip(todo, configs, make_trainers(configs)))


def train_sweep(config, run_dir: RunDir, launch: runner.Launch) -> None:
    """Train every (model, length) setting not yet in ``results.csv``, appending as each finishes."""
    plan = plan_sweep(config, run_dir)
    chains = [
        [runner.Setting(f"{model} T={length}", cfg, dict(model=model, task=cfg.data.task, length=length, **cell_columns(cfg)),
                        trainer)]
        for (model, length), cfg, trainer in plan
    ]
    runner.run_settings(chains, run_dir, launch, _LOG_EVERY.value, lambda _: run_dir.add_config(config, MAY_DIFFER))


def main(argv):
    launch = runner.from_flags(_LAUNCH)
    run_dir, config = open_run(argv, _OUT.value, "run_palindrome", _CONFIG.value, _PLOT_ONLY.value)
    train_unless_plot_only(lambda: train_sweep(config, run_dir, launch), run_dir, _PLOT_ONLY.value)
    paths = plot(run_dir, config.data.task)
    if not paths:
        raise ValueError(f"no results in {run_dir.file('results.csv')} to plot; run without --plot_only first")
    print("figures:", *paths, sep="\n  ")


if __name__ == "__main__":
    cli.run_main(main)
