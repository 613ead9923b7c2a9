"""Lyapunov spectra of recurrent cells at initialisation and after training, over seeds.

    python scripts/dynamics.py --config=configs/dynamics.py --out=results/dynamics
    python scripts/dynamics.py --out=results/dynamics --plot_only   # redraw the figure from spectra.csv

Writes ``OUT/config.json``, ``OUT/spectra.csv`` (one row per cell, stage, seed and exponent index:
the exponent averaged over the probe sequences), ``OUT/results.csv`` (the trained seeds' summary
rows), ``OUT/dynamics.png`` (exponent against index, one line per cell and stage, mean ± std over
seeds) and ``OUT/dynamics_table.csv`` (per cell and stage: the largest exponent and the mean of
the top ``dynamics.top``, mean ± std over seeds, beside the longest length the same model solved
in the frontier tables of ``dynamics.frontier_tables``), also printed. Without ``--out`` a run goes
to a fresh ``runs/dynamics/<YYYYmmdd-HHMMSS>/``. A cell already in ``results.csv`` (all its seeds)
is skipped when the command is run again (same ``--out``); Ctrl-C keeps the cells that finished
(exit code 130).
"""

import collections
import glob
import pathlib

import jax
import ml_collections
import numpy as np
from absl import flags
from tqdm import tqdm

from jaxseq import cli
from jaxseq.analysis import figures
from jaxseq.analysis.lyapunov import classifier_cell, lyapunov_spectrum
from jaxseq.config import REPO_ROOT, flat_fields
from jaxseq.data.sequences import get_task
from jaxseq.models.registry import cell_fields, model_spec
from jaxseq.runner.multiseed import MultiSeedRunner, seed_keys
from jaxseq.files.guard import claim_figures, define_overwrite, figure_metadata, figure_owner
from jaxseq.runner.record import make_trainers, open_run, rows_to_plot, train_unless_plot_only
from jaxseq.files.results import RunDir
from jaxseq.runner.seeds import map_over_seeds, resolve_seed_strategy
from jaxseq.runner.record import result_rows
from jaxseq.train.sweep import parse_list, setting_config

_CONFIG = cli.define_config("configs/dynamics.py", "experiment config")
_OUT = flags.DEFINE_string("out", None, "output directory (default: a fresh runs/dynamics/<YYYYmmdd-HHMMSS>/)")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "redraw the figure from OUT/spectra.csv without training")
_OVERWRITE = define_overwrite()

SPECTRA_CSV = "spectra.csv"
TABLE_CSV = "dynamics_table.csv"
# the cell list may grow between runs into one directory, and so may the variants defining new
# cells (a variant of a cell already measured must not change: check_variants)
MAY_DIFFER = ("dynamics.cells", "dynamics.top", "dynamics.frontier_tables", "variants.*")


def cell_configs(config: ml_collections.ConfigDict) -> dict[str, ml_collections.ConfigDict]:
    """``{label: full config}`` for every entry of ``dynamics.cells``: a variant's overrides
    (``variants.<label>.model.<field>``), or the base set-up with a model name or a cell's import path."""
    labels = parse_list(config.dynamics.cells, str, "cell", "dynamics.cells")
    configs = {}
    for label in labels:
        if label in config.variants:
            fields = flat_fields(config.variants[label])
        else:
            try:
                model_spec(label)
            except ValueError as error:
                raise ValueError(f"config.dynamics.cells: {label!r} is not a variant of config.variants "
                                 f"({', '.join(config.variants)}), and {error}") from None
            fields = {"model.name": label}
        configs[label] = setting_config(config, **fields)
    return configs


def check_variants(config, run_dir: RunDir, labels) -> None:
    """Refuse a variant of a cell already measured in ``run_dir`` whose definition has changed."""
    saved = run_dir.saved_config() or {}
    now = flat_fields(config)
    for label in labels:
        prefix = f"variants.{label}."
        before = {k: v for k, v in saved.items() if k.startswith(prefix)}
        after = {k: v for k, v in now.items() if k.startswith(prefix)}
        if before != after:
            raise ValueError(f"{run_dir.path} holds cell {label!r} measured as {before or 'a model name'}, "
                             f"now {after or 'a model name'}; give the changed cell a new label or choose another --out")


def gate_init_of(cfg) -> str:
    """How the model's gate biases start (``model.gate_init``), "" for a cell without gates."""
    return cfg.model.get("gate_init", "constant") if "gate_init" in cell_fields(model_spec(cfg.model.name).cell) else ""


def forget_bias_of(cfg) -> str:
    """The model's constant forget bias as text, or "" for a cell that has none (or whose gate
    biases chrono initialisation draws)."""
    if "forget_bias" not in cell_fields(model_spec(cfg.model.name).cell) or gate_init_of(cfg) == "chrono":
        return ""
    return str(cfg.model.forget_bias)


def spectrum_fn(cfg, trainer):
    """``probe(stacked_params) -> [seed, k]``: each seed's top ``dynamics.k`` exponents averaged
    over the ``dynamics.batch_size`` probe sequences (the same sequences for every seed and stage)."""
    dyn = cfg.dynamics
    task = get_task(cfg.data.task, cfg.data.get(cfg.data.task))
    tokens = task.sample(jax.random.key(dyn.seed), dyn.batch_size, dyn.steps + 1).inputs

    def one_seed(params):
        cell, cell_params, inputs = classifier_cell(trainer.model, params, tokens)
        spectra = lyapunov_spectrum(cell, cell_params, inputs, dyn.k or None, warmup=dyn.warmup,
                                    reortho_every=dyn.reortho_every)
        return spectra.mean(axis=0)

    return jax.jit(map_over_seeds(one_seed, resolve_seed_strategy(cfg.runner.seed_strategy)))


def spectrum_rows(spectra: np.ndarray, **columns) -> list[dict]:
    """``spectra [seed, k]`` -> one row per seed and exponent (``index`` is 1-based, largest first)."""
    return [
        {**columns, "seed": seed, "index": i + 1, "exponent": round(float(spectra[seed, i]), 6)}
        for seed in range(spectra.shape[0])
        for i in range(spectra.shape[1])
    ]


def measure_cell(label, cfg, trainer, run_dir: RunDir, bar) -> None:
    """Train one cell's seeds, measuring the spectrum before and after; append the rows."""
    runner = MultiSeedRunner(trainer, cfg.runner)
    key, num_seeds = jax.random.key(cfg.train.seed), cfg.train.num_seeds
    probe = spectrum_fn(cfg, trainer)
    columns = dict(cell=label, model=cfg.model.name, forget_bias=forget_bias_of(cfg))
    # runner.run starts from exactly these parameters (same keys), so "init" is the trained seeds' start
    initial = runner.init(seed_keys(key, num_seeds)).train_state.params
    rows = spectrum_rows(np.asarray(probe(initial)), **columns, stage="init")
    results = runner.run(key, num_seeds, progress=bar, description=label)
    stage = f"step {cfg.train.num_steps}"
    rows += spectrum_rows(np.asarray(probe(results.run.train_state.params)), **columns, stage=stage)
    # the spectra first, the summary rows last: a cell counts as measured once its summary rows are in place
    run_dir.record_setting({"cell": label}, [], rows, SPECTRA_CSV)
    run_dir.record_setting({"cell": label}, [], result_rows(results, cell=label, model=cfg.model.name,
                                                            task=cfg.data.task, length=cfg.data.length))
    acc = results.final["eval_accuracy"]
    tqdm.write(f"{label:>14s} accuracy after {stage}: {acc.mean():.4f} ± {acc.std():.4f}  {results.wall_time:.1f}s")


def measure_cells(config, run_dir: RunDir) -> None:
    """Measure every cell of ``dynamics.cells`` not yet in ``results.csv`` (all checked before any trains)."""
    configs = cell_configs(config)
    run_dir.check_config(config, MAY_DIFFER)
    done = {label for (label,) in run_dir.finished_settings(("cell",), config.train.num_seeds)}
    check_variants(config, run_dir, done)
    todo = {label: cfg for label, cfg in configs.items() if label not in done}
    trainers = make_trainers(list(todo.values()))
    for cfg, trainer in zip(todo.values(), trainers):  # a bad k, warm-up or cell fails here, before training
        params = jax.eval_shape(trainer.init, jax.random.key(0)).train_state.params
        one_seed = jax.tree.map(lambda x: jax.ShapeDtypeStruct((1, *x.shape), x.dtype), params)
        jax.eval_shape(spectrum_fn(cfg, trainer), one_seed)
    with tqdm(total=len(todo) * config.train.num_steps, unit="step", dynamic_ncols=True) as bar:
        for (label, cfg), trainer in zip(todo.items(), trainers):
            measure_cell(label, cfg, trainer, run_dir, bar)
            run_dir.add_config(config, MAY_DIFFER)


def spectra_by_line(run_dir: RunDir) -> dict:
    """``{(cell, stage): (model, forget_bias, [seed, k] array)}`` from ``spectra.csv``, in file order."""
    values = collections.defaultdict(lambda: collections.defaultdict(dict))
    meta = {}
    for row in run_dir.read_results(SPECTRA_CSV):
        line = (row["cell"], row["stage"])
        meta[line] = (row["model"], row["forget_bias"])
        values[line][int(row["seed"])][int(row["index"])] = float(row["exponent"])
    return {
        line: (*meta[line], np.array([[by_index[i] for i in sorted(by_index)] for _, by_index in sorted(by_seed.items())]))
        for line, by_seed in values.items()
    }


def frontier_rows(patterns: str) -> list[dict]:
    """Every row of the frontier tables matching the comma-separated glob ``patterns`` (relative
    paths from the repository root when not found here), with a ``table`` column naming the file."""
    rows = []
    for pattern in (p.strip() for p in patterns.split(",") if p.strip()):
        paths = sorted(glob.glob(pattern)) or sorted(glob.glob(str(REPO_ROOT / pattern)))
        for path in paths:
            table = pathlib.Path(path)
            rows += [{**row, "table": table.stem} for row in RunDir(table.parent).read_results(table.name)]
    return rows


def frontiers_of(model: str, forget_bias: str, rows: list[dict], gate_init: str = "") -> str:
    """``"frontier_full_raw/lstm_raw (raw, H 128, 1 layer, 3000 steps): 30; ..."``: the longest length each
    variant of the same model (and forget bias, where the cell has one; chrono rows for a chrono
    cell) solved, or "none"."""
    found = {}
    for row in rows:
        if row.get("model") != model or "frontier" not in row:
            continue
        if (gate_init == "chrono") != (row.get("gate_init") == "chrono"):
            continue  # a chrono-initialised cell is compared with chrono rows only
        if forget_bias and row.get("forget_bias") and float(row["forget_bias"]) != float(forget_bias):
            continue
        layers = row.get("num_layers") or "1"
        setup = (f"{row.get('encoding', '?')}, H {row.get('hidden_size', '?')}, {layers} layer{'s' if layers != '1' else ''}, "
                 f"{row.get('num_steps', '?')} steps")
        found[f"{row['table']}/{row['variant']} ({setup})"] = row["frontier"] or "none"
    return "; ".join(f"{name}: {value}" for name, value in found.items())


def summary_table(config, run_dir: RunDir) -> list[dict]:
    """Per cell and stage: the largest exponent and the mean of the top ``dynamics.top`` (mean ± std
    over seeds) beside the frontiers, from ``spectra.csv`` (``dynamics_table.csv`` holds it)."""
    tables = frontier_rows(config.dynamics.frontier_tables)
    # (from the variants' own overrides: a redraw imports no cell)
    gate_inits = {label: variant.get("model", {}).get("gate_init", "") for label, variant in config.variants.items()}
    table = []
    for (cell, stage), (model, forget_bias, spectra) in spectra_by_line(run_dir).items():
        top = spectra[:, : config.dynamics.top].mean(axis=1)
        table.append({
            "cell": cell, "stage": stage, "seeds": spectra.shape[0],
            "largest_mean": round(float(spectra[:, 0].mean()), 4), "largest_std": round(float(spectra[:, 0].std()), 4),
            "top_k": min(config.dynamics.top, spectra.shape[1]),
            "top_mean": round(float(top.mean()), 4), "top_std": round(float(top.std()), 4),
            "frontiers": frontiers_of(model, forget_bias, tables, gate_inits.get(cell, "")),
        })
    return table


def print_table(table: list[dict]) -> None:
    """The table of :func:`summary_table` as Markdown."""
    header = ("cell", "stage", "largest exponent", "mean of top k", "longest T solved (frontier tables)")
    lines = [header, ("---",) * len(header)]
    lines += [(row["cell"], row["stage"], f"{row['largest_mean']:.4f} ± {row['largest_std']:.4f}",
               f"{row['top_mean']:.4f} ± {row['top_std']:.4f} (k = {row['top_k']})", row["frontiers"] or "-")
              for row in table]
    print("\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines))


def plot(run_dir: RunDir, title: str):
    """Exponent against index, one line per (cell, stage), mean ± std over seeds."""
    fig, ax = figures.plt.subplots(figsize=(7, 4.5))
    colors = {}
    for (cell, stage), (_, _, spectra) in spectra_by_line(run_dir).items():
        color = colors.setdefault(cell, f"C{len(colors)}")
        style = "--" if stage == "init" else "-"
        figures.mean_std_band(ax, np.arange(1, spectra.shape[1] + 1), spectra, f"{cell}, {stage}", color=color,
                              linestyle=style)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("index i (largest exponent first)")
    ax.set_ylabel("Lyapunov exponent λ_i per step (mean ± std over n seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def main(argv):
    plot_only = _PLOT_ONLY.value
    run_dir, config = open_run(argv, _OUT.value, "dynamics", _CONFIG.value, plot_only)
    path = run_dir.file("dynamics.png")
    if plot_only:  # a redraw replaces only a figure drawn from this run, and writes no table
        claim_figures([path], "--out", figure_owner("dynamics", run_dir.saved_config()), _OVERWRITE.value)
    train_unless_plot_only(lambda: measure_cells(config, run_dir), run_dir, plot_only)
    rows_to_plot(run_dir, SPECTRA_CSV)
    used = run_dir.saved_config() or flat_fields(config)  # the measured run's set-up, also with --plot_only
    title = (f"{used['data.task']}, trained at T = {used['data.length'] - 1}; spectra on {used['dynamics.batch_size']} "
             f"sequences of {used['dynamics.steps']} steps ({used['dynamics.warmup']} warm-up)")
    metadata = figure_metadata(figure_owner("dynamics", run_dir.saved_config()))
    figures.save(plot(run_dir, title), path, metadata=metadata)
    table = summary_table(config, run_dir)
    if not plot_only:
        run_dir.write_results(table, TABLE_CSV)
    print_table(table)
    print("figure:", path)


if __name__ == "__main__":
    cli.run_main(main)
