"""Train a GCN or GAT on Cora/Citeseer, all seeds at once, and write results and figures.

    python scripts/train_gnn.py --config=configs/gcn.py:cora
    python scripts/train_gnn.py --config=configs/gat.py:citeseer --out=results/gnn/my_gat
    python scripts/train_gnn.py --config=configs/gcn.py --config.optim.lr=0.02 --data_dir=/data

Writes to ``--out`` (default: a fresh ``runs/train_gnn/<YYYYmmdd-HHMMSS>/``; the published runs
are ``--out=results/gnn/<model>_<dataset>``): ``config.json``, ``metrics.jsonl`` (one row per seed
and logged epoch), ``results.csv`` (one row per seed), ``curves.png`` (mean ± std over seeds) and
``embedding.png`` (hidden embeddings of seed 0, projected on their first two principal components,
coloured by class). Both figures are drawn from the finished training run, so ``--plot_only``
only says that they cannot be redrawn. Nothing is written until training has finished; a directory
that already holds the results of the same config is left as it is, one with another config's
results is refused. A ``results.csv`` with a torn row (a crash while writing) is trained again, and
the new run's curves and rows replace the files' old ones.
"""

import pathlib
import warnings

import jax
import matplotlib.pyplot as plt
import numpy as np
from absl import flags

from jaxseq import cli
from jaxseq.data.graphs import load_planetoid
from jaxseq.models.gnn import make_gnn
from jaxseq.runner.graph_seeds import train_seeds
from jaxseq.train.graph_trainer import make_train
from jaxseq.train.periodic import is_time
from jaxseq.runner.record import check_arguments, not_redrawn, saved_run_config
from jaxseq.files.results import RunDir, output_dir

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

_CONFIG = cli.define_config(str(REPO_ROOT / "configs/gcn.py"), "experiment config")
cli.define_tracking()  # --tensorboard, --wandb
_OUT = flags.DEFINE_string("out", None, "output directory (default: a fresh runs/train_gnn/<YYYYmmdd-HHMMSS>/)")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "folder holding planetoid/ (else $JAXSEQ_DATA, else ../shared/data); files are checked against the checksums jaxseq ships")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "say, for --out, that its figures need the trained run (neither can be redrawn from its files)")

CURVES = (("loss", "training loss (dropout, + L2)"), ("val_loss", "validation loss"), ("train_acc", "train accuracy"), ("val_acc", "validation accuracy"))


def metric_rows(per_epoch: dict[str, np.ndarray], epochs: np.ndarray, every: int) -> list[dict]:
    """One row per seed and trained epoch due under ``is_time`` (each seed's last epoch included)."""
    rows = []
    for seed, last in enumerate(epochs):
        for epoch in range(1, int(last) + 1):
            if is_time(epoch, every, int(last)):
                rows.append({"seed": seed, "epoch": epoch, **{k: v[seed, epoch - 1] for k, v in per_epoch.items()}})
    return rows


def plot_curves(per_epoch: dict[str, np.ndarray], title: str, path: pathlib.Path) -> None:
    """Mean ± std over the seeds still training at each epoch."""
    fig, axes = plt.subplots(1, len(CURVES), figsize=(4 * len(CURVES), 3.2))
    active = per_epoch["active"].astype(bool)
    for ax, (name, label) in zip(axes, CURVES):
        values = np.where(active, per_epoch[name], np.nan)
        steps = np.arange(1, values.shape[1] + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # epochs after every seed stopped
            mean, std = np.nanmean(values, 0), np.nanstd(values, 0)
        ax.plot(steps, mean)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.3)
        ax.set(xlabel="epoch", title=label)
    fig.suptitle(f"{title}: mean ± std over {values.shape[0]} seeds (seeds drop out when they stop)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_embedding(hidden: np.ndarray, labels: np.ndarray, labelled: np.ndarray, title: str, path: pathlib.Path) -> None:
    """Scatter the first two principal components of ``hidden [N, H]`` coloured by class."""
    centred = hidden[labelled] - hidden[labelled].mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    fig, ax = plt.subplots(figsize=(5.5, 5))
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels[labelled], cmap="tab10", s=4, alpha=0.7)
    ax.legend(*scatter.legend_elements(), title="class", fontsize=7, loc="best")
    ax.set(xlabel="PC 1", ylabel="PC 2", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(config, run_dir: RunDir, runs) -> None:
    """``config.json``, ``metrics.jsonl`` and ``results.csv`` of a finished multi-seed run, replacing
    the curves and rows of an earlier, torn one (the directory holds one run)."""
    per_epoch, final = runs.steps, runs.final
    run_dir.add_config(config)
    # no columns: every curve in metrics.jsonl belongs to the one run, and is replaced
    run_dir.record_setting({}, metric_rows(per_epoch, final["epochs"], config.train.log_every), [])
    run_dir.write_results(
        [
            {
                "model": config.model.name,
                "dataset": config.data.name,
                "seed": seed,
                "test_acc": final["test_acc"][seed],
                "val_acc": final["val_acc"][seed],
                "epochs": final["epochs"][seed],
                "run_wall_s_all_seeds": round(runs.run_s, 3),
                "compile_s": round(runs.compile_s, 3),
            }
            for seed in range(len(final["epochs"]))
        ]
    )


def main(argv):
    check_arguments(argv, _OUT.value, _PLOT_ONLY.value)
    config = _CONFIG.value
    name = f"{config.model.name}_{config.data.name}"
    run_dir = output_dir(_OUT.value, "train_gnn")
    if _PLOT_ONLY.value:  # both figures come from the trained run itself, which is not kept
        saved_run_config(run_dir, config)
        not_redrawn(run_dir.file("curves.png"), "it is drawn from the per-epoch arrays of the finished training run")
        not_redrawn(run_dir.file("embedding.png"), "it is drawn from seed 0's trained parameters, which are not kept")
        return
    run_dir.check_config(config)
    if run_dir.read_results() and not run_dir.torn_rows():
        print(f"{run_dir.path} already holds the results of this config; nothing to train (choose another --out to train again)")
        return
    data = load_planetoid(config.data.name, _DATA_DIR.value)  # a bad path fails before anything is written
    make_train(config, data)  # every name and value checked before anything compiles

    runs = train_seeds(config, data)
    write_results(config, run_dir, runs)
    per_epoch, final = runs.steps, runs.final
    plot_curves(per_epoch, name, run_dir.file("curves.png"))
    model = make_gnn(config.model, data.num_classes)
    seed0 = jax.tree.map(lambda leaf: leaf[0], runs.run.params)
    _, inter = model.apply({"params": seed0}, data.graph, mutable=["intermediates"])
    labels = np.asarray(data.labels)
    plot_embedding(
        np.asarray(inter["intermediates"]["hidden"][0]),
        labels.argmax(1),
        labels.sum(1) > 0,
        f"{name}: hidden node embeddings, seed 0 (PCA)",
        run_dir.file("embedding.png"),
    )

    acc, epochs = 100 * final["test_acc"], final["epochs"]
    capped = int((epochs >= config.train.num_epochs).sum())
    print(
        f"{name}: test accuracy {acc.mean():.2f} ± {acc.std():.2f} % over {len(acc)} seeds "
        f"(min {acc.min():.1f}, max {acc.max():.1f}); epochs {epochs.mean():.0f} "
        f"(min {epochs.min()}, max {epochs.max()}, {capped} seed(s) reached train.num_epochs={config.train.num_epochs}); "
        f"wall time {runs.run_s:.1f} s run + {runs.compile_s:.1f} s compile for all seeds together -> {run_dir.path}"
    )


if __name__ == "__main__":
    cli.run_main(main)
