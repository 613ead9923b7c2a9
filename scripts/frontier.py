"""The memory frontier: per model variant, the longest length solved (>= 99 %, mean over seeds).

    python scripts/frontier.py --config=configs/frontier.py --out=results/frontier --table=results/frontier.csv
    python scripts/frontier.py --out=results/frontier --table=results/frontier.csv --plot_only
    python scripts/frontier.py --cluster=ray [--ray_address=HOST:PORT] ...   # settings as Ray tasks (docs/cluster.md)

Writes ``OUT/config.json``, ``OUT/results.csv`` (one row per variant, length and seed),
``OUT/metrics.jsonl`` (per-step curves), the table ``--table`` (default ``OUT/frontier.csv``; one
row per variant and length: mean ± std accuracy over seeds, whether it passed, and the variant's
frontier) and the figures beside it: ``--table`` with ``.png`` for ``.csv`` (accuracy vs length,
one line per variant, mean ± std), with ``_longest.png`` (the longest length solved per variant, as
bars) and with ``_curves.png`` (the training loss of every seed at each variant's frontier and at
its first failing length: a loss still falling at the end of the budget says the budget, not the
cell, ran out). The table and figures of ``--table`` each get a ``<file>.config.json`` naming the
config; an existing one is replaced only by the same config, or with ``--overwrite``. Without ``--out`` a run goes to a fresh
``runs/frontier/<YYYYmmdd-HHMMSS>/``; results are published under ``results/`` only when
``--out``/``--table`` name it. Settings already in ``results.csv`` are skipped when the command is
run again (same ``--out``; a config that differs in anything but the variant and length lists is
refused); the table is rewritten after each one. Ctrl-C keeps what finished (exit code 130).
``--plot_only`` draws the figures again from ``OUT`` alone (with its ``config.json``), beside the
table that run wrote, and writes nothing else (docs/figures.md).
"""

import csv
import os
import pathlib


from typing import Optional

import ml_collections
from absl import flags

from jaxseq import cli, runner
from jaxseq.analysis import figures
from jaxseq.analysis.frontier import summarize
from jaxseq.models.registry import MODELS, model_spec
from jaxseq.files.guard import (OVERWRITE_FLAG, claim_figures, claim_files, define_overwrite, expand, figure_metadata,
                                figure_owner, make_owner, record_owner)
from jaxseq.runner.record import make_trainers, not_redrawn, open_run, train_unless_plot_only
from jaxseq.files.results import RunDir
from jaxseq.train.sweep import parse_lengths, parse_list, setting_config

_CONFIG = cli.define_config("configs/frontier.py", "experiment config")
cli.define_tracking()  # --tensorboard, --wandb
_OUT = flags.DEFINE_string("out", None, "output directory (default: a fresh runs/frontier/<YYYYmmdd-HHMMSS>/)")
_TABLE = flags.DEFINE_string("table", None, "the frontier table (CSV; default OUT/frontier.csv)")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "redraw the table and figure from OUT/results.csv without training")
_LOG_EVERY = flags.DEFINE_integer("log_every", 10, "write per-step metrics every this many steps", lower_bound=1)
_OVERWRITE = define_overwrite()
# the figures --table writes beside the table (its path without the suffix, with these endings)
FIGURE_ENDINGS = (".png", "_longest.png", "_curves.png")
_LAUNCH = runner.define_flags()

# the variant and length lists: a rerun into the same directory may extend them, nothing else may change
MAY_DIFFER = ("frontier.variants", "sweep.lengths", "variants.*.sweep.lengths")

# columns that say what a variant is, in results.csv and the table
DESCRIBE = (
    "model", "task", "encoding", "hidden_size", "num_layers", "forget_bias", "optimizer", "lr", "batch_size", "num_steps"
)


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
    names = parse_list(config.frontier.variants, str, "variant", "frontier.variants")
    missing = [name for name in names if name not in config.variants and name not in MODELS and ":" not in name]
    if missing:
        raise ValueError(
            f"variants {missing} are not defined in config.variants ({', '.join(config.variants)}) "
            "and are not model names or cells' import paths (package.module:ClassName)"
        )
    configs = {name: setting_config(config, **variant_fields(config, name)) for name in names}
    for name, cfg in configs.items():
        if config.frontier.min_seeds > cfg.train.num_seeds:
            raise ValueError(f"config.frontier.min_seeds={config.frontier.min_seeds} but variant {name} trains "
                             f"{cfg.train.num_seeds} seed(s), so no length could ever pass; lower frontier.min_seeds "
                             "or raise train.num_seeds")
    return configs


def variant_fields(config, name: str) -> dict:
    """The dotted overrides of variant ``name``: its section of ``config.variants``, or, for a model
    name or a cell's import path that is not one, the base set-up with that model."""
    if name in config.variants:  # (a variant's sweep.lengths "" keeps the base lengths)
        return {k: v for k, v in dotted_fields(config.variants[name]).items() if (k, v) != ("sweep.lengths", "")}
    model_spec(name)  # an import path that is not a cell fails here, before anything trains
    return {"model.name": name}


def describe(cfg) -> dict:
    """The values of :data:`DESCRIBE` in one setting's config."""
    values = (cfg.model.name, cfg.data.task, cfg.model.encoding, cfg.model.hidden_size, cfg.model.num_layers)
    values += (cfg.model.forget_bias,)
    values += (cfg.optim.name, cfg.optim.lr, cfg.data.batch_size, cfg.train.num_steps)
    return dict(zip(DESCRIBE, values))


def summarize_results(config, run_dir: RunDir) -> list[dict]:
    """The frontier table's rows: ``results.csv`` summarised per variant and length (:func:`summarize`)."""
    return summarize(
        run_dir.read_results(),
        threshold=config.frontier.threshold,
        min_seeds=config.frontier.min_seeds,
        carry=DESCRIBE,
    )


def write_table(config, run_dir: RunDir, path: str, owner: Optional[dict] = None) -> list[dict]:
    """Summarise ``results.csv`` into the table at ``path`` (with an ``owner`` sidecar when given); returns its rows."""
    summary = summarize_results(config, run_dir)
    if summary:
        RunDir(os.path.dirname(os.path.abspath(path))).write_results(summary, os.path.basename(path))
        if owner is not None:
            record_owner(path, owner)
    return summary


def plan_frontier(config, run_dir: RunDir) -> dict[str, list]:
    """``{variant: [(length, config, trainer)]}`` in increasing length, everything checked before training."""
    variants = variant_configs(config)
    run_dir.check_config(config, MAY_DIFFER)
    plan = {}
    for name, cfg in variants.items():
        lengths = sorted(parse_lengths(cfg.sweep.lengths, f"variants.{name}.sweep.lengths"))
        configs = [setting_config(cfg, **{"data.length": length}) for length in lengths]
        try:
            trainers = make_trainers(configs)
        except ValueError as error:  # a value the variant's cell refuses: name the variant too
            raise ValueError(f"variant {name}: {error}") from None
        plan[name] = list(zip(lengths, configs, trainers))
    return plan


def train_frontier(config, run_dir: RunDir, table: str, owner: Optional[dict], launch: runner.Launch) -> None:
    """Train each variant's lengths in increasing order, skipping finished and hopeless settings
    (with Ray, variants run side by side; so do all lengths unless ``frontier.stop_after_failure``)."""
    plan = plan_frontier(config, run_dir)
    chains = [
        [
            runner.Setting(f"{name} T={length}", setting, dict(variant=name, **describe(setting), length=length), trainer)
            for length, setting, trainer in settings
        ]
        for name, settings in plan.items()
    ]
    if not config.frontier.stop_after_failure:
        chains = [[setting] for chain in chains for setting in chain]

    def skip(setting: runner.Setting):
        name, length = setting.columns["variant"], setting.columns["length"]
        summary = [s for s in write_table(config, run_dir, table, owner) if s["variant"] == name]
        if (name, str(length)) in run_dir.finished_settings(("variant", "length"), setting.config.train.num_seeds):
            return ""
        shorter_failed = any(not s["passed"] and s["length"] < length for s in summary)
        if config.frontier.stop_after_failure and shorter_failed:
            return f"{name}: skipping T={length} (a shorter length failed)"
        return None

    runner.run_settings(chains, run_dir, launch, _LOG_EVERY.value, lambda _: run_dir.add_config(config, MAY_DIFFER), skip)
    write_table(config, run_dir, table, owner)


def frontier_curve_rows(summary: list[dict], metrics: list[dict]) -> list[dict]:
    """Metric rows of each variant's frontier (last passing length) and first failing length, each
    with a ``passed`` column (see :func:`jaxseq.analysis.figures.frontier_curves`)."""
    chosen = {}
    for name in dict.fromkeys(row["variant"] for row in summary):
        rows = [row for row in summary if row["variant"] == name]
        passed = [row["length"] for row in rows if row["passed"]]
        failed = [row["length"] for row in rows if not row["passed"]]
        if passed:
            chosen[(name, max(passed))] = True
        if failed:
            chosen[(name, min(failed))] = False
    return [
        {**row, "passed": chosen[(row["variant"], int(row["length"]))]}
        for row in metrics
        if (row["variant"], int(row["length"])) in chosen
    ]


def check_table_of_run(table: str, summary: list[dict], run_dir: RunDir) -> None:
    """``--plot_only`` draws beside the table the run wrote: refuse a ``--table`` file holding anything
    else (a redraw never writes the table; a file there that is not this run's says the path is wrong).
    A table is this run's when its rows give the same variants, lengths and mean accuracies."""
    path = pathlib.Path(table)
    if _OVERWRITE.value or not path.exists() or not summary:
        return
    key = ("variant", "length", "accuracy_mean")
    try:
        with open(path, newline="") as f:
            rows = [tuple(row.get(k) for k in key) for row in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error):
        rows = None
    if rows != [tuple(str(row[k]) for k in key) for row in summary]:
        raise ValueError(f"--table={_TABLE.value}: the file exists and is not the frontier table of {run_dir.path}; "
                         f"give the --table that run was made with, or add {OVERWRITE_FLAG} to draw beside it anyway")


def drawn_by(run_dir: RunDir) -> dict:
    """What this tool's figures from ``run_dir`` say of themselves (:func:`jaxseq.files.guard.figure_owner`)."""
    return figure_owner("frontier", run_dir.saved_config())


def draw_figures(config, run_dir: RunDir, summary: list[dict], stem: str, metadata: dict) -> list[str]:
    """Draw the figures of ``--table`` (its ``stem`` with :data:`FIGURE_ENDINGS`) from ``run_dir``; the paths written."""
    budgets = sorted({int(row["num_steps"]) for row in summary if str(row.get("num_steps", "")).isdigit()})
    budget = "/".join(map(str, budgets)) or config.train.num_steps  # as trained, whatever the config says now
    path, bars, curves_path = (stem + ending for ending in FIGURE_ENDINGS)
    title = f"accuracy vs length within {budget} steps"
    figures.save(figures.accuracy_vs_length(run_dir.read_results(), group="variant", title=title), path, metadata=metadata)
    figures.save(figures.frontier_bars(summary, title=f"longest length solved within {budget} steps"), bars,
                 metadata=metadata)
    curves = frontier_curve_rows(summary, run_dir.read_metrics())
    if not curves:  # the study runs under results/ keep no metrics.jsonl in git
        not_redrawn(curves_path, f"it is drawn from the training curves in {run_dir.file('metrics.jsonl')}, "
                    "which are not there")
        return [path, bars]
    # did "not solved" mean the cell cannot, or that the budget ran out?
    title = f"training loss at each variant's frontier and first failing length (budget {budget} steps)"
    figures.save(figures.frontier_curves(curves, title=title), curves_path, metadata=metadata)
    return [path, bars, curves_path]


def main(argv):
    launch, plot_only = runner.from_flags(_LAUNCH), _PLOT_ONLY.value
    run_dir, config = open_run(argv, _OUT.value, "frontier", _CONFIG.value, plot_only)
    table, owner = expand(_TABLE.value) or str(run_dir.file("frontier.csv")), None
    stem = os.path.splitext(table)[0]
    if _TABLE.value and plot_only:  # a redraw writes the figures only, and replaces only figures of this run
        check_table_of_run(table, summarize_results(config, run_dir), run_dir)
        drawable = FIGURE_ENDINGS if run_dir.file("metrics.jsonl").is_file() else FIGURE_ENDINGS[:2]  # curves need it
        claim_figures([stem + ending for ending in drawable], "--table", drawn_by(run_dir), _OVERWRITE.value,
                      _TABLE.value)
    elif _TABLE.value:  # a file outside the run directory: it carries its config, and is replaced only by the same
        variant_configs(config)  # a bad variant is named before the table is
        owner = make_owner("frontier", config, MAY_DIFFER)
        claim_files([table, *(stem + ending for ending in FIGURE_ENDINGS)], "--table", owner, _OVERWRITE.value,
                    _TABLE.value)
    train_unless_plot_only(lambda: train_frontier(config, run_dir, table, owner, launch), run_dir, plot_only)
    summary = summarize_results(config, run_dir) if plot_only else write_table(config, run_dir, table, owner)
    if not summary:
        raise ValueError(f"no results in {run_dir.file('results.csv')}; run without --plot_only first")
    drawn = draw_figures(config, run_dir, summary, stem, figure_metadata(drawn_by(run_dir)))
    for figure in drawn if owner is not None else []:
        record_owner(figure, owner)
    for row in summary:
        print(
            f"{row['variant']:>26s} T={row['length']:<4d} {row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f} "
            f"({row['seeds']} seeds) {'pass' if row['passed'] else 'FAIL'}  frontier {row['frontier'] or '-'}"
        )
    if not plot_only:
        print("table:", table)
    print("figures:", *drawn)


if __name__ == "__main__":
    cli.run_main(main)
