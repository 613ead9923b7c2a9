"""Character n-gram baselines for a textgen config's book and split (NumPy, about a minute).

    .venv/bin/python scripts/ngram_baseline.py --config=configs/textgen.py --out=results/textgen/ngram_grimm.json

For each order it fits jaxseq.models.ngram.NGramModel twice and prints loss (nats and bits per
character) and accuracy:

  "training split" fit:        the split the LSTM trains on, scored on the validation text;
                               a count baseline for the LSTM's validation numbers.
  "training split minus tail": the same without its last len(validation) characters, scored on that
                               tail and on the validation text. Neither was seen, so the difference
                               says how much harder the validation text is than the tail (the text
                               eval_textgen.py uses for the LSTM's training-text numbers).

The split follows the config's data block (book, val_fraction, train_fraction, gutenberg). --out
gets a sidecar ``<out>.config.json`` naming the config; an existing --out file is replaced only by
the same config and orders, or with --overwrite.
"""

import os
import time

from absl import flags

from jaxseq import cli
from jaxseq.data.text import corpus_for_config, find_book
from jaxseq.models.ngram import NGramModel
from jaxseq.files.guard import claim_file, define_overwrite, make_owner, record_owner
from jaxseq.runner.record import check_arguments
from jaxseq.files.results import write_json_atomic
from jaxseq.train.sweep import parse_list

_CONFIG = cli.define_config("configs/textgen.py", "textgen config (its data block)")
_OUT = flags.DEFINE_string("out", None, "a JSON file for the table (default: print only)")
_DATA = flags.DEFINE_string("data", None, "a text file, or a directory holding books/ (default: $JAXSEQ_DATA, ../shared/data)")
_ORDERS = flags.DEFINE_list("orders", ["1", "2", "3", "4", "5", "6", "7"], "n-gram orders")
_OVERWRITE = define_overwrite()


def parse_orders(texts: list[str]) -> list[int]:
    """``--orders`` as whole numbers >= 1, each once."""
    try:
        orders = parse_list(",".join(texts), int, "order")
    except ValueError as error:
        raise ValueError(f"--orders: {error}") from None
    if min(orders) < 1:
        raise ValueError(f"--orders must be whole numbers >= 1, got {','.join(texts)}")
    return orders


def main(argv):
    check_arguments(argv, None, plot_only=False)
    config = _CONFIG.value
    orders = parse_orders(_ORDERS.value)
    out, owner = None, make_owner("ngram_baseline", {"config": config.to_dict(), "orders": orders})
    if _OUT.value:
        out = claim_file(_OUT.value, "--out", owner, _OVERWRITE.value)
    path = find_book(config.data.book, _DATA.value)
    corpus = corpus_for_config(path, config.data)
    if not len(corpus.val):
        raise ValueError("the config has no validation split (data.val_fraction = 0)")
    num_val, V = len(corpus.val), corpus.vocab.size
    if len(corpus.train) <= 2 * num_val:
        raise ValueError(f"the training split ({len(corpus.train)} characters) is too short to hold out a tail "
                         f"of {num_val} characters; lower data.val_fraction or raise data.train_fraction")
    head, tail = corpus.train[:-num_val], corpus.train[-num_val:]
    print(f"{path.name}: training split {len(corpus.train):,}, validation {num_val:,} characters, vocabulary {V}")
    rows = []
    start = time.perf_counter()
    for order in orders:
        full, minus_tail = NGramModel(corpus.train, V, order), NGramModel(head, V, order)
        scored = [("training split", "validation", full.evaluate(corpus.val)),
                  ("training split minus tail", "training (tail)", minus_tail.evaluate(tail)),
                  ("training split minus tail", "validation", minus_tail.evaluate(corpus.val))]
        for fit_on, text, metrics in scored:
            rows.append({"order": order, "fit_on": fit_on, "text": text,
                         **{k: round(v, 4) for k, v in metrics.items()}})
    print(f"{'order':>5}  {'fit on':<26} {'scored on':<16} {'nats/char':>9} {'bits/char':>9} {'accuracy':>8}")
    for r in rows:
        print(f"{r['order']:>5}  {r['fit_on']:<26} {r['text']:<16} {r['loss']:>9.4f} {r['bpc']:>9.4f} "
              f"{r['accuracy']:>8.2%}")
    print(f"{time.perf_counter() - start:.1f} s")
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        write_json_atomic(out, {"book": path.name, "data": config.data.to_dict(), "rows": rows})
        record_owner(out, owner)
        print(f"wrote {out} (and {out.name}.config.json beside it)")


if __name__ == "__main__":
    cli.run_main(main)
