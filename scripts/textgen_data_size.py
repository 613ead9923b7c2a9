"""Validation loss against the amount of training text: character LSTM runs and an n-gram baseline.

    make textgen-data-size      # trains the runs below (resumable), evaluates them, draws the figure
    .venv/bin/python scripts/textgen_data_size.py \\
        --runs=results/textgen/grimm_long_train0.25,results/textgen/grimm_long_train0.5,results/textgen/grimm_long \\
        --out=results/textgen/data_size

Each run is a train_textgen.py run directory that eval_textgen.py has evaluated; runs differ in
data.train_fraction (the share of the training split they kept, its end) and all share one book and
validation split. For each run this reads the number of training characters and the validation
loss and accuracy (windows of T, as in training). A Witten-Bell n-gram model (--order) is fitted on
the same training characters and on --ngram_fractions of them, to show how a count model's
validation loss falls with data. Writes OUT.json and OUT.png (loss and accuracy against training
characters, log scale, with the issue's targets as dashed lines).

The printed "per doubling" is the mean change in LSTM validation loss each time the training text
doubles, between the smallest and the largest run; it describes the runs, not a law.
"""

import json
import math
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxseq.analysis.figures import save  # noqa: E402
from jaxseq.data.text import corpus_for_config, find_book  # noqa: E402
from jaxseq.models.ngram import NGramModel  # noqa: E402
from jaxseq.train.results import write_json_atomic  # noqa: E402
from jaxseq.train.textgen import load_run_config  # noqa: E402

_RUNS = flags.DEFINE_list("runs", [f"results/textgen/grimm_long_train{f}" for f in ("0.25", "0.5")]
                          + ["results/textgen/grimm_long"], "evaluated train_textgen.py run directories")
_OUT = flags.DEFINE_string("out", "results/textgen/data_size", "output path without suffix (.json, .png)")
_DATA = flags.DEFINE_string("data", None, "the book the runs were trained on, if it was given with --data")
_ORDER = flags.DEFINE_integer("order", 5, "n-gram order of the count baseline")
_NGRAM_FRACTIONS = flags.DEFINE_list("ngram_fractions", ["0.0625", "0.125", "0.25", "0.5", "1.0"],
                                     "training fractions the n-gram baseline is fitted on")
_TARGET_LOSS = flags.DEFINE_float("target_loss", 1.15, "validation loss target (nats/char), drawn dashed")
_TARGET_ACCURACY = flags.DEFINE_float("target_accuracy", 0.65, "validation accuracy target, drawn dashed")


def lstm_point(run: str) -> dict:
    """One run's training fraction, its steps and its validation numbers from ``evaluation.json``."""
    path = pathlib.Path(run) / "evaluation.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run scripts/eval_textgen.py --run={run} first")
    evaluation = json.loads(path.read_text())
    (val,) = [r for r in evaluation["rows"] if r["text"] == "validation" and r["reading"].startswith("windows")]
    config = load_run_config(run)
    return {"run": run, "train_fraction": config.data.get("train_fraction", 1.0), "step": evaluation["step"],
            "val_loss": val["loss"], "val_accuracy": val["accuracy"], "config": config}


def plot(lstm: list[dict], ngram: list[dict], order: int, path: str) -> None:
    """Validation loss and accuracy against training characters (log axis)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, target, label in ((ax_loss, "val_loss", _TARGET_LOSS.value, "validation loss (nats/char)"),
                                   (ax_acc, "val_accuracy", _TARGET_ACCURACY.value, "validation accuracy")):
        ax.plot([p["train_chars"] for p in lstm], [p[key] for p in lstm], "o-", label="2 x 256 LSTM (grimm_long)")
        ax.plot([p["train_chars"] for p in ngram], [p[key] for p in ngram], "s--", label=f"{order}-gram counts")
        ax.axhline(target, color="gray", linestyle=":", label=f"target {target:g}")
        ax.set(xscale="log", xlabel="training characters", ylabel=label)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.tight_layout()
    save(fig, path)


def main(argv):
    del argv
    lstm = sorted((lstm_point(run) for run in _RUNS.value), key=lambda p: p["train_fraction"])
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
    for fraction in sorted({float(f) for f in _NGRAM_FRACTIONS.value} | {p["train_fraction"] for p in lstm}):
        c = corpus(fraction)
        metrics = NGramModel(c.train, c.vocab.size, _ORDER.value).evaluate(c.val)
        ngram.append({"train_fraction": fraction, "train_chars": len(c.train),
                      "val_loss": round(metrics["loss"], 4), "val_accuracy": round(metrics["accuracy"], 4)})

    print(f"{'model':<12} {'fraction':>8} {'characters':>11} {'val nats':>8} {'val acc':>8}")
    for name, points in (("LSTM", lstm), (f"{_ORDER.value}-gram", ngram)):
        for p in points:
            print(f"{name:<12} {p['train_fraction']:>8g} {p['train_chars']:>11,} {p['val_loss']:>8.4f} "
                  f"{p['val_accuracy']:>8.2%}")
    summary = {"lstm": lstm, "ngram": ngram, "order": _ORDER.value, "book": path.name}
    if len(lstm) > 1 and lstm[-1]["train_chars"] > lstm[0]["train_chars"]:
        doublings = math.log2(lstm[-1]["train_chars"] / lstm[0]["train_chars"])
        per_doubling = (lstm[-1]["val_loss"] - lstm[0]["val_loss"]) / doublings
        summary["lstm_loss_change_per_doubling"] = round(per_doubling, 4)
        print(f"LSTM validation loss per doubling of the training text: {per_doubling:+.4f} nats/char "
              f"({lstm[0]['train_chars']:,} -> {lstm[-1]['train_chars']:,} characters)")
    write_json_atomic(_OUT.value + ".json", summary)
    plot(lstm, ngram, _ORDER.value, _OUT.value + ".png")
    print(f"wrote {_OUT.value}.json and {_OUT.value}.png")


if __name__ == "__main__":
    try:
        app.run(main)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
