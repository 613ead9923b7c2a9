"""Accuracy vs sequence length over models and seeds (seeds trained in parallel with jax.vmap).

    python scripts/run_palindrome.py --config=configs/palindrome.py --out=results/demo
    python scripts/run_palindrome.py --config=configs/palindrome.py:full --out=results/full
    python scripts/run_palindrome.py --config.sweep.models=gru --config.data.task=baum_sweet ...
    python scripts/run_palindrome.py --out=results/demo --plot_only   # redraw from results.csv

Writes ``OUT/config.json``, ``OUT/results.csv`` (one row per model, length, seed),
``OUT/metrics.jsonl`` (per-step curves) and figures ``OUT/accuracy_vs_length.png`` and
``OUT/curves_T<length>.png``. Each finished (model, length) is on disk at once; running the same
command again skips what is already in ``results.csv`` (Ctrl-C loses only the setting in progress).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402
from tqdm import tqdm  # noqa: E402

from jaxseq.analysis import figures  # noqa: E402
from jaxseq.train.multiseed import MultiSeedRunner  # noqa: E402
from jaxseq.train.results import RunDir  # noqa: E402
from jaxseq.train.sequence import make_train  # noqa: E402
from jaxseq.train.sweep import metric_rows, result_rows, setting_config, sweep_settings  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", "configs/palindrome.py", "experiment config", lock_config=True)
_OUT = flags.DEFINE_string("out", "results/palindrome", "output directory")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "redraw the figures from OUT/results.csv without training")
_LOG_EVERY = flags.DEFINE_integer("log_every", 10, "write per-step metrics every this many steps")


def plot(run_dir: RunDir, task: str) -> list[str]:
    """Draw the sweep figures from the files in ``run_dir``; returns the paths written."""
    results = run_dir.read_results()
    if not results:
        return []
    paths = [run_dir.file("accuracy_vs_length.png")]
    figures.save(figures.accuracy_vs_length(results, title=f"{task}: accuracy vs length"), paths[0])
    metrics = run_dir.read_metrics()
    for length in sorted({int(r["length"]) for r in results}):
        rows = [m for m in metrics if m["length"] == length]
        if rows:
            paths.append(run_dir.file(f"curves_T{length}.png"))
            figures.save(figures.training_curves(rows, title=f"{task}, T = {length}"), paths[-1])
    return [str(p) for p in paths]


def train_sweep(config, run_dir: RunDir) -> None:
    """Train every (model, length) setting not yet in ``results.csv``, appending as each finishes."""
    settings = sweep_settings(config)
    done = {(r["model"], int(r["length"])) for r in run_dir.read_results()}
    todo = [s for s in settings if s not in done]
    if len(todo) < len(settings):
        print(f"{len(settings) - len(todo)} of {len(settings)} settings already in {run_dir.file('results.csv')}; skipping them")
    run_dir.write_config(config)
    num_steps = config.train.num_steps
    with tqdm(total=len(todo) * num_steps, unit="step", dynamic_ncols=True) as bar:
        for model, length in todo:
            cfg = setting_config(config, **{"model.name": model, "data.length": length})
            trainer = make_train(cfg)
            bar.set_description(f"{model} T={length}")
            start = bar.n
            results = MultiSeedRunner(trainer).run(
                jax.random.key(cfg.train.seed), cfg.train.num_seeds, progress=bar, description=f"{model} T={length}"
            )
            bar.update(start + num_steps - bar.n)  # seeds that stop early skip the rest of the budget
            columns = dict(model=model, task=cfg.data.task, length=length)
            run_dir.append_metrics(metric_rows(results, _LOG_EVERY.value, **columns))
            run_dir.append_results(result_rows(results, **columns))
            acc = results.final["eval_accuracy"]
            tqdm.write(
                f"{model:>14s} T={length:<3d} accuracy {acc.mean():.4f} ± {acc.std():.4f}  "
                f"steps {results.final['steps'].tolist()}  {results.wall_time:.1f}s"
            )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    run_dir = RunDir(_OUT.value)
    if not _PLOT_ONLY.value:
        try:
            train_sweep(config, run_dir)
        except KeyboardInterrupt:
            print(f"\ninterrupted: finished settings are in {run_dir.file('results.csv')}; rerun to continue")
    paths = plot(run_dir, config.data.task)
    if not paths:
        raise SystemExit(f"no results in {run_dir.file('results.csv')} to plot")
    print("figures:", *paths, sep="\n  ")


if __name__ == "__main__":
    app.run(main)
