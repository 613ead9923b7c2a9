"""Validation loss against the amount of training text: character LSTM runs and an n-gram baseline.

    make textgen-data-size      # trains the runs below (resumable), evaluates them, draws the figure
                                # (into results/textgen/data_size: without --out it is runs/textgen_data_size/<time>/data_size)
    .venv/bin/python scripts/textgen_data_size.py \\
        --runs=results/textgen/grimm_long_train0.25,results/textgen/grimm_long_train0.5,results/textgen/grimm_long \\
        --out=results/textgen/data_size

Each run is a train_textgen.py run directory that eval_textgen.py has evaluated; runs differ in
data.train_fraction (the share of the training split they kept, its end) and all share one book and
validation split. For each run this reads the number of training characters and the validation
loss and accuracy (windows of T, as in training). A Witten-Bell n-gram model (--order) is fitted on
the same training characters and on --ngram_fractions of them, to show how a count model's
validation loss falls with data. Writes OUT.json and OUT.png (loss and accuracy against training
characters, log scale, with --target_loss and --target_accuracy as dotted lines). Runs that overfit end worse
than their best logged validation loss (metrics.jsonl, every train.eval_every steps, the same
windows), so both are shown; picking the best is early stopping on the validation text. Each of
OUT.json and OUT.png gets a sidecar ``<file>.config.json`` naming the flags that made it; an existing
one is replaced only by the same flags, or with --overwrite. ``--plot_only --out=OUT`` draws
OUT.png again from OUT.json alone (no run, no book).

The printed "per doubling" is the change in LSTM validation loss (last step and lowest) per doubling
of the training text between neighbouring runs; it describes the runs, not a law.
"""

import json
import math
import os
import pathlib
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from absl import flags

from jaxseq import cli
from jaxseq.analysis.figures import save
from jaxseq.data.text import corpus_for_config, find_book
from jaxseq.models.ngram import NGramModel
from jaxseq.files.guard import (claim_figures, claim_files, define_overwrite, expand, figure_metadata, figure_owner,
                                make_owner, record_owner)
from jaxseq.runner.record import check_arguments
from jaxseq.files.results import RunDir, fresh_run_path, write_json_atomic
from jaxseq.train.sweep import parse_list
from jaxseq.files.text_runs import load_run_config

_RUNS = flags.DEFINE_list("runs", [f"results/textgen/grimm_long_train{f}" for f in ("0.25", "0.5")]
                          + ["results/textgen/grimm_long"], "evaluated train_textgen.py run directories")
_OUT = flags.DEFINE_string("out", None, "output path without suffix (.json, .png); default: a fresh "
                           "runs/textgen_data_size/<YYYYmmdd-HHMMSS>/data_size")
_DATA = flags.DEFINE_string("data", None, "the book the runs were trained on, if it was given with --data")
_ORDER = flags.DEFINE_integer("order", 5, "n-gram order of the count baseline", lower_bound=1)
_NGRAM_FRACTIONS = flags.DEFINE_list("ngram_fractions", ["0.0625", "0.125", "0.25", "0.5", "1.0"],
                                     "training fractions the n-gram baseline is fitted on")
_TARGET_LOSS = flags.DEFINE_float("target_loss", 1.15, "validation loss target (nats/char), drawn dotted")
_TARGET_ACCURACY = flags.DEFINE_float("target_accuracy", 0.65, "validation accuracy target, drawn dotted")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "redraw OUT.png from OUT.json (no run or book is read)")
_OVERWRITE = define_overwrite()


def lstm_point(run: str) -> dict:
    """One run's training fraction, its steps and its validation numbers from ``evaluation.json``."""
    path = pathlib.Path(run) / "evaluation.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run scripts/eval_textgen.py --run={run} first")
    try:
        evaluation = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} cannot be read ({error}); run scripts/eval_textgen.py --run={run} again") from None
    (val,) = [r for r in evaluation["rows"] if r["text"] == "validation" and r["reading"].startswith("windows")]
    config = load_run_config(run)
    logged = [r for r in RunDir(run).read_metrics() if "val_loss" in r]
    best = min(logged, key=lambda r: r["val_loss"]) if logged else {"step": evaluation["step"], "val_loss": val["loss"],
                                                                     "val_accuracy": val["accuracy"]}
    return {"run": run, "train_fraction": config.data.train_fraction, "step": evaluation["step"],
            "val_loss": val["loss"], "val_accuracy": val["accuracy"], "best_step": best["step"],
            "best_val_loss": round(best["val_loss"], 4), "best_val_accuracy": round(best["val_accuracy"], 4),
            "config": config}


def plot(lstm: list[dict], ngram: list[dict], order: int, path: str, metadata: Optional[dict] = None) -> None:
    """Validation loss and accuracy against training characters (log axis); ``metadata`` as in
    :func:`jaxseq.analysis.figures.save`."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, target, label in ((ax_loss, "val_loss", _TARGET_LOSS.value, "validation loss (nats/char)"),
                                   (ax_acc, "val_accuracy", _TARGET_ACCURACY.value, "validation accuracy")):
        ax.plot([p["train_chars"] for p in lstm], [p[key] for p in lstm], "o-", color="C0", label="2 x 256 LSTM, last step")
        ax.plot([p["train_chars"] for p in lstm], [p["best_" + key] for p in lstm], "o:", color="C0", mfc="none",
                label="2 x 256 LSTM, step of lowest validation loss")
        ax.plot([p["train_chars"] for p in ngram], [p[key] for p in ngram], "s--", color="C2", label=f"{order}-gram counts")
        ax.axhline(target, color="gray", linestyle=":", label="target")
        ax.set(xscale="log", xlabel="training characters", ylabel=label)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}K"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3, which="both")
    fig.legend(*ax_loss.get_legend_handles_labels(), loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    save(fig, path, metadata=metadata)


def fractions(texts: list[str]) -> list[float]:
    """``--ngram_fractions`` as numbers in (0, 1]."""
    try:
        values = parse_list(",".join(texts), float, "fraction")
    except ValueError as error:
        raise ValueError(f"--ngram_fractions: {error}") from None
    bad = [v for v in values if not 0.0 < v <= 1.0]
    if bad:
        raise ValueError(f"--ngram_fractions must lie in (0, 1], got {bad}")
    return values


def redraw(out: str) -> None:
    """``--plot_only``: draw ``OUT.png`` again from ``OUT.json``, replacing only a figure drawn from it."""
    try:
        summary = json.loads(pathlib.Path(out + ".json").read_text())
        points = summary["lstm"], summary["ngram"], summary["order"]
    except FileNotFoundError:
        raise ValueError(f"--plot_only: {out}.json not found; run without --plot_only first") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"--plot_only: {out}.json is not a summary this script wrote ({error})") from None
    owner = figure_owner("textgen_data_size", summary)
    (path,) = claim_figures([out + ".png"], "--out", owner, _OVERWRITE.value, _OUT.value)
    plot(*points, str(path), figure_metadata(owner))
    print(f"wrote {path}")


def main(argv):
    check_arguments(argv, _OUT.value, _PLOT_ONLY.value)
    out = str(expand(_OUT.value) or fresh_run_path("textgen_data_size") / "data_size")
    if _PLOT_ONLY.value:
        return redraw(out)
    ngram_fractions = fractions(_NGRAM_FRACTIONS.value)
    try:
        runs = [expand(run) for run in parse_list(",".join(_RUNS.value), str, "run directory")]
    except ValueError as error:
        raise ValueError(f"--runs: {error}") from None
    owner = make_owner("textgen_data_size", {"runs": runs, "data": _DATA.value, "order": _ORDER.value,
                                             "ngram_fractions": ngram_fractions, "target_loss": _TARGET_LOSS.value,
                                             "target_accuracy": _TARGET_ACCURACY.value})
    claim_files([out + ".json", out + ".png"], "--out", owner, _OVERWRITE.value)
    lstm = sorted((lstm_point(run) for run in runs), key=lambda p: p["train_fraction"])
    config = lstm[-1].pop("config")
    for p in lstm[:-1]:
        other = p.pop("config")
        if other.data.book != config.data.book or other.data.val_fraction != config.data.val_fraction:
            raise ValueError(f"{p['run']} uses another book or validation split than {lstm[-1]['run']}")
    path = find_book(config.data.book, _DATA.value)

    def corpus(fraction):
        data = config.data.copy_and_resolve_references()
        data.train_fraction = fraction
        return corpus_for_config(path, data)

    for p in lstm:
        p["train_chars"] = len(corpus(p["train_fraction"]).train)
    ngram = []
    for fraction in sorted(set(ngram_fractions) | {p["train_fraction"] for p in lstm}):
        c = corpus(fraction)
        metrics = NGramModel(c.train, c.vocab.size, _ORDER.value).evaluate(c.val)
        ngram.append({"train_fraction": fraction, "train_chars": len(c.train),
                      "val_loss": round(metrics["loss"], 4), "val_accuracy": round(metrics["accuracy"], 4)})

    print(f"{'model':<12} {'fraction':>8} {'characters':>11} {'val nats':>8} {'val acc':>8}  best logged (step)")
    for name, points in (("LSTM", lstm), (f"{_ORDER.value}-gram", ngram)):
        for p in points:
            best = f"  {p['best_val_loss']:.4f} {p['best_val_accuracy']:.2%} ({p['best_step']})" if "best_step" in p else ""
            print(f"{name:<12} {p['train_fraction']:>8g} {p['train_chars']:>11,} {p['val_loss']:>8.4f} "
                  f"{p['val_accuracy']:>8.2%}{best}")
    summary = {"lstm": lstm, "ngram": ngram, "order": _ORDER.value, "book": path.name}
    summary["lstm_change_per_doubling"] = []
    for small, large in zip(lstm, lstm[1:]):
        if large["train_chars"] == small["train_chars"]:
            continue
        doublings = math.log2(large["train_chars"] / small["train_chars"])
        change = {key: round((large[key] - small[key]) / doublings, 4) for key in ("val_loss", "best_val_loss")}
        summary["lstm_change_per_doubling"].append(
            {"from_chars": small["train_chars"], "to_chars": large["train_chars"], **change})
        print(f"LSTM validation loss per doubling of the training text, {small['train_chars']:,} -> "
              f"{large['train_chars']:,} characters: last step {change['val_loss']:+.4f}, "
              f"lowest {change['best_val_loss']:+.4f} nats/char")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_json_atomic(out + ".json", summary)
    plot(lstm, ngram, _ORDER.value, out + ".png", figure_metadata(figure_owner("textgen_data_size", summary)))
    for path in (out + ".json", out + ".png"):
        record_owner(path, owner)
    print(f"wrote {out}.json and {out}.png")


if __name__ == "__main__":
    cli.run_main(main)
