"""The memory frontier: per model variant, the longest length solved (>= 99 %, mean over seeds).

    python scripts/frontier.py --config=configs/frontier.py --out=results/frontier --table=results/frontier.csv
    python scripts/frontier.py --out=results/frontier --table=results/frontier.csv --plot_only

Writes ``OUT/config.json``, ``OUT/results.csv`` (one row per variant, length and seed),
``OUT/metrics.jsonl`` (per-step curves), the table ``--table`` (one row per variant and length:
mean ± std accuracy over seeds, whether it passed, and the variant's frontier) and the figure
beside it, ``--table`` with ``.png`` for ``.csv`` (accuracy vs length, one line per variant,
mean ± std). Settings already in
``results.csv`` are skipped when the command is run again; the table is rewritten after each one.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ml_collections  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402
from tqdm import tqdm  # noqa: E402

from jaxseq.analysis import figures  # noqa: E402
from jaxseq.analysis.frontier import summarize  # noqa: E402
from jaxseq.train.record import train_setting, train_unless_plot_only  # noqa: E402
from jaxseq.train.results import RunDir  # noqa: E402
from jaxseq.train.sweep import parse_list, setting_config  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", "configs/frontier.py", "experiment config", lock_config=True)
_OUT = flags.DEFINE_string("out", "results/frontier", "output directory")
_TABLE = flags.DEFINE_string("table", "results/frontier.csv", "the frontier table (CSV)")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "redraw the table and figure from OUT/results.csv without training")
_LOG_EVERY = flags.DEFINE_integer("log_every", 10, "write per-step metrics every this many steps")

# columns that say what a variant is, in results.csv and the table
DESCRIBE = ("model", "task", "encoding", "hidden_size", "forget_bias", "optimizer", "lr", "batch_size", "num_steps")


def dotted_fields(section: ml_collections.ConfigDict, prefix: str = "") -> dict:
    """Nested overrides as dotted fields: ``{model: {name: lstm}} -> {"model.name": "lstm"}``."""
    fields = {}
    for name, value in section.items():
        if isinstance(value, ml_collections.ConfigDict):
            fields.update(dotted_fields(value, f"{prefix}{name}."))
        else:
            fields[f"{prefix}{name}"] = value
    return fields


def variant_configs(config) -> dict[str, ml_collections.ConfigDict]:
    """``{variant: its full config}`` for ``config.frontier.variants``, validated before training."""
    names = parse_list(config.frontier.variants, str, "variant")
    missing = [name for name in names if name not in config.variants]
    if missing:
        raise ValueError(f"variants {missing} are not defined in config.variants ({', '.join(config.variants)})")
    return {name: setting_config(config, **dotted_fields(config.variants[name])) for name in names}


def describe(cfg) -> dict:
    values = (cfg.model.name, cfg.data.task, cfg.model.encoding, cfg.model.hidden_size, cfg.model.forget_bias)
    values += (cfg.optim.name, cfg.optim.lr, cfg.data.batch_size, cfg.train.num_steps)
    return dict(zip(DESCRIBE, values))


def write_table(config, run_dir: RunDir, path: str) -> list[dict]:
    """Summarise ``results.csv`` into the table at ``path``; returns its rows."""
    summary = summarize(
        run_dir.read_results(),
        threshold=config.frontier.threshold,
        min_seeds=config.frontier.min_seeds,
        carry=DESCRIBE,
    )
    if summary:
        table = RunDir(os.path.dirname(os.path.abspath(path)))
        table.file(os.path.basename(path)).unlink(missing_ok=True)
        table.append_results(summary, os.path.basename(path))
    return summary


def train_frontier(config, run_dir: RunDir) -> None:
    """Train each variant's lengths in increasing order, skipping finished and hopeless settings."""
    variants = variant_configs(config)
    plan = {name: sorted(parse_list(cfg.sweep.lengths, int, "length")) for name, cfg in variants.items()}
    run_dir.write_config(config)
    total = sum(len(lengths) * variants[name].train.num_steps for name, lengths in plan.items())
    with tqdm(total=total, unit="step", dynamic_ncols=True) as bar:
        for name, cfg in variants.items():
            for length in plan[name]:
                summary = [s for s in write_table(config, run_dir, _TABLE.value) if s["variant"] == name]
                if any(s["length"] == length for s in summary):
                    bar.update(cfg.train.num_steps)
                    continue
                shorter_failed = any(not s["passed"] and s["length"] < length for s in summary)
                if config.frontier.stop_after_failure and shorter_failed:
                    tqdm.write(f"{name}: skipping T={length} (a shorter length failed)")
                    bar.update(cfg.train.num_steps)
                    continue
                setting = setting_config(cfg, **{"data.length": length})
                label = f"{name} T={length}"
                columns = dict(variant=name, **describe(setting), length=length)
                train_setting(setting, run_dir, bar, _LOG_EVERY.value, label, **columns)
    write_table(config, run_dir, _TABLE.value)


def main(argv):
    config, run_dir = _CONFIG.value, RunDir(_OUT.value)
    train_unless_plot_only(argv, lambda: train_frontier(config, run_dir), run_dir, _PLOT_ONLY.value)
    summary = write_table(config, run_dir, _TABLE.value)
    if not summary:
        raise SystemExit(f"no results in {run_dir.file('results.csv')}; run without --plot_only first")
    path = os.path.splitext(_TABLE.value)[0] + ".png"
    title = f"accuracy vs length within {config.train.num_steps} steps (mean ± std over seeds)"
    figures.save(figures.accuracy_vs_length(run_dir.read_results(), group="variant", title=title), path)
    for row in summary:
        print(
            f"{row['variant']:>26s} T={row['length']:<4d} {row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f} "
            f"({row['seeds']} seeds) {'pass' if row['passed'] else 'FAIL'}  frontier {row['frontier'] or '-'}"
        )
    print("table:", _TABLE.value, "\nfigure:", path)


if __name__ == "__main__":
    app.run(main)
