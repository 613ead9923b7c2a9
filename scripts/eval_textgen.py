"""Evaluate a trained character LSTM on its book: held-in vs held-out text, windows vs carried state.

    .venv/bin/python scripts/eval_textgen.py --run=results/textgen/grimm_long

Prints (and writes to RUN/evaluation.json) loss in nats and bits per character and accuracy for
two pieces of text, each read in two ways:

  text:    "validation" is the held-out end of the book; "training (tail)" is the same number of
           characters from the end of the training split, text the model was trained on.
  reading: "windows of T" restarts from zero states every T characters, as in training and as
           train_textgen.py reports; "carried" reads each of --streams consecutive pieces in order
           with the state carried, as generation does.

Dropout is off in all four, so "training (tail)" minus "validation" is the generalisation gap.
"""

import jax.numpy as jnp
from absl import flags

from jaxseq import cli
from jaxseq.data.text import corpus_for_config, find_book, sequential_windows
from jaxseq.files.guard import expand
from jaxseq.files.results import write_json_atomic
from jaxseq.files.text_runs import load_run, load_run_config
from jaxseq.train.textgen import evaluate, evaluate_carried

_RUN = flags.DEFINE_string("run", "results/textgen/grimm", "run directory written by train_textgen.py")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "a checkpoint file (default: the run's newest that verifies)")
_DATA = flags.DEFINE_string("data", None, "the book the run was trained on, if it was given with --data")
_STREAMS = flags.DEFINE_integer("streams", 8, "consecutive pieces read with the state carried", lower_bound=1)


def main(argv):
    del argv
    run = expand(_RUN.value)
    config = load_run_config(run)
    model, params, vocab, step = load_run(run, config, expand(_CHECKPOINT.value))
    path = find_book(config.data.book, _DATA.value)
    corpus = corpus_for_config(path, config.data)
    if corpus.vocab != vocab:
        raise ValueError(f"{path} does not have the run's vocabulary; pass the book it was trained on with --data")
    if not len(corpus.val):
        raise ValueError("the run has no validation split (data.val_fraction = 0)")
    texts = {"training (tail)": corpus.train[-len(corpus.val):], "validation": corpus.val}
    rows = []
    for name, ids in texts.items():
        windows = [jnp.asarray(a) for a in sequential_windows(ids, config.data.seq_len)]
        readings = {
            f"windows of {config.data.seq_len}": evaluate(model, params, *windows),
            f"carried ({_STREAMS.value} streams)": evaluate_carried(model, params, jnp.asarray(ids), _STREAMS.value),
        }
        for reading, metrics in readings.items():
            rows.append({"text": name, "reading": reading, "characters": len(ids),
                         **{k: round(float(v), 4) for k, v in metrics.items()}})
    print(f"{run} (checkpoint step {step}, {path.name})")
    print(f"{'text':<16} {'reading':<22} {'nats/char':>9} {'bits/char':>9} {'accuracy':>8}")
    for r in rows:
        print(f"{r['text']:<16} {r['reading']:<22} {r['loss']:>9.4f} {r['bpc']:>9.4f} {r['accuracy']:>8.2%}")
    out = f"{run}/evaluation.json"
    write_json_atomic(out, {"step": step, "book": path.name, "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    cli.run_main(main)
