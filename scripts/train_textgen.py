"""Train a character-level LSTM on a book and watch it learn.

    .venv/bin/python scripts/train_textgen.py --config=configs/textgen.py --out=results/textgen/grimm
    .venv/bin/python scripts/train_textgen.py --config=configs/textgen.py:quick --data=my_book.txt --out=/tmp/tg
    .venv/bin/python scripts/train_textgen.py --config=configs/textgen.py --out=results/textgen/grimm --resume

Writes into --out: config.json, vocab.json, metrics.jsonl (one row per compiled chunk, validation
columns every train.eval_every steps), results.csv (one summary row; its wall_s counts only the
last invocation, so a resumed run's time is the resumed part), samples.txt (greedy samples
at 1/3, 2/3 and 3/3 of the run), curves.png and checkpoints/. Without --out a run goes to a fresh
runs/train_textgen/<YYYYmmdd-HHMMSS>/; results are published under results/ only when --out names
it. Ctrl-C saves a checkpoint and exits with code 130; --resume (with the same --out) continues.
--plot_only --out=DIR redraws curves.png from DIR/metrics.jsonl.
A run that starts from scratch (no checkpoint in --out, e.g. a fresh clone of a committed run)
replaces the metrics, samples and summary it finds there instead of appending to them, and only
when --out holds a run of the same config (--resume without a checkpoint says so on stderr).
--resume refuses another text (vocab.json holds the vocabulary and the text's SHA-256) and a
checkpoint without its SHA-256 sidecar.
"""

import time

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from absl import flags

from jaxseq import cli
from jaxseq.analysis.figures import save
from jaxseq.data.text import corpus_for_config, find_book
from jaxseq.models.charlm import make_char_lstm
from jaxseq.report import progress
from jaxseq.files.guard import figure_metadata, figure_owner
from jaxseq.runner.record import check_arguments, saved_run_config
from jaxseq.files.results import output_dir
from jaxseq.train.sampling import complete, random_first_chars
from jaxseq.files.text_runs import Callbacks, append_samples, fit

_CONFIG = cli.define_config("configs/textgen.py", "experiment config")
cli.define_tracking()  # --tensorboard, --wandb
_OUT = flags.DEFINE_string("out", None, "run directory (default: a fresh runs/train_textgen/<YYYYmmdd-HHMMSS>/)")
_DATA = flags.DEFINE_string("data", None, "a text file, or a directory holding books/ (default: $JAXSEQ_DATA, ../shared/data)")
_RESUME = flags.DEFINE_bool("resume", False, "continue from the latest checkpoint in --out")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "redraw OUT/curves.png from OUT/metrics.jsonl without training")


def plot_curves(rows, path, metadata=None) -> None:
    """Training (per chunk) and validation loss and accuracy against the step (``metadata`` as in
    :func:`jaxseq.analysis.figures.save`)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in rows]
    val = [r for r in rows if "val_loss" in r]
    ax_loss.plot(steps, [r["loss"] for r in rows], label="training batches (dropout on)", alpha=0.7)
    ax_loss.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="validation")
    ax_acc.plot(steps, [r["accuracy"] for r in rows], label="training batches (dropout on)", alpha=0.7)
    ax_acc.plot([r["step"] for r in val], [r["val_accuracy"] for r in val], "o-", label="validation")
    ax_loss.set(xlabel="step", ylabel="cross-entropy (nats/char)", title="loss")
    ax_acc.set(xlabel="step", ylabel="next-character accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save(fig, path, metadata=metadata)


def redraw(run) -> None:
    """``--plot_only``: ``curves.png`` again from the run's ``metrics.jsonl``."""
    saved_run_config(run, _CONFIG.value)
    rows = run.read_metrics()
    if not rows:
        raise ValueError(f"--plot_only: {run.file('metrics.jsonl')} holds no curves; run without --plot_only first")
    plot_curves(rows, run.file("curves.png"), figure_metadata(figure_owner("train_textgen", run.saved_config())))
    print("figure:", run.file("curves.png"))


def main(argv):
    check_arguments(argv, _OUT.value, _PLOT_ONLY.value)
    if _PLOT_ONLY.value:
        return redraw(output_dir(_OUT.value, "train_textgen"))
    if _RESUME.value and not _OUT.value:
        raise ValueError("--resume continues an earlier run: give its directory with --out")
    config = _CONFIG.value
    run = output_dir(_OUT.value, "train_textgen")
    path = find_book(config.data.book, _DATA.value)
    corpus = corpus_for_config(path, config.data)
    print(f"{path}: {len(corpus.train):,} training / {len(corpus.val):,} validation characters, "
          f"vocabulary {corpus.vocab.size}")
    model = make_char_lstm(config.model, corpus.vocab.size)
    total = config.train.num_steps
    bar = None
    last_val = {}

    def on_start(step):
        nonlocal bar  # created here so a resumed run's bar starts at its step and times only new steps
        if step == 0:  # training from scratch: samples and summary of an earlier run in --out are stale
            for name in ("samples.txt", "results.csv"):
                run.file(name).unlink(missing_ok=True)
        bar = progress(total, initial=step)

    def on_chunk(step, row):
        if "val_loss" in row:
            last_val.update(val_loss=row["val_loss"], val_acc=row["val_accuracy"])
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.3f}",
                        chars_s=f"{row['chars_per_s']:.0f}", **{k: f"{v:.3f}" for k, v in last_val.items()})

    def on_sample(step, state):
        key = jax.random.fold_in(jax.random.key(config.seed + 1), step)
        firsts = random_first_chars(key, corpus.train, corpus.vocab, config.train.num_samples)
        texts = complete(model, state.params, corpus.vocab, firsts, config.train.sample_length - 1)
        append_samples(run, step, total, texts)
        bar.write(f"samples at step {step}: " + " | ".join(repr(t) for t in texts))

    start = time.perf_counter()
    try:
        state, new_rows = fit(config, corpus, run, resume=_RESUME.value, callbacks=Callbacks(on_chunk, on_sample, on_start))
    except KeyboardInterrupt as interrupt:
        raise KeyboardInterrupt(str(interrupt) or f"continue with --resume --out={run.path}") from None
    finally:  # any error line starts on a line of its own, after the bar
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    rows = run.read_metrics()
    plot_curves(rows, run.file("curves.png"), figure_metadata(figure_owner("train_textgen", run.saved_config())))
    if not new_rows:
        print(f"{run.path} had already finished all {total} steps; nothing to train (curves redrawn)")
        return
    final = rows[-1]
    summary = {
        "model": f"char_lstm {config.model.num_layers}x{config.model.hidden_size}",
        "book": path.name,
        "seed": config.seed,
        "steps": int(state.step),
        "wall_s": round(seconds, 1),
        "train_loss": round(final["loss"], 4),
        "train_accuracy": round(final["accuracy"], 4),
        "val_loss": round(final.get("val_loss", float("nan")), 4),
        "val_bpc": round(final.get("val_bpc", float("nan")), 4),
        "val_accuracy": round(final.get("val_accuracy", float("nan")), 4),
    }
    run.append_results([summary])
    print(", ".join(f"{k}={v}" for k, v in summary.items()))
    print(f"wrote {run.path}/ (curves.png, samples.txt, metrics.jsonl, results.csv, checkpoints/)")


if __name__ == "__main__":
    cli.run_main(main)
