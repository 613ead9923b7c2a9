"""Several seeds trained exactly as the docs tell a library user to: one line, no jaxseq runner.

    python benchmarks/library_seeds.py --seeds=8                      # "auto": lax.map on CPU
    python benchmarks/library_seeds.py --seeds=8 --strategy=vmap      # jax.vmap over the seeds, as the README shows

The classic palindrome set-up (``configs/palindrome.py``: an LSTM, raw digits, RMSprop) at T = 10
for 100 steps, the run ``stress_hangs.py`` repeats by default, trained as
``jax.jit(map_over_seeds(trainer.train, strategy))(keys)`` (with ``vmap``, that is
``jax.jit(jax.vmap(trainer.train))(keys)``). Prints ``done`` and the seeds'
evaluation accuracies. ``stress_hangs.py --library`` runs it many times and counts hangs.
"""

import argparse
import ast

import jax

from jaxseq.config import load_config
from jaxseq.runner.seeds import map_over_seeds
from jaxseq.train.sequence_trainer import make_train
from jaxseq.train.sweep import setting_config


def literal(text: str):
    """A config value from the command line: a Python literal, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds trained together")
    parser.add_argument("--strategy", default="auto", help="map_over_seeds strategy: auto, vmap, map, map:K")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a config override")
    args = parser.parse_args()
    overrides = {"model.name": "lstm", "data.length": 10, "train.num_steps": 100}
    overrides.update({field: literal(value) for field, _, value in (item.partition("=") for item in args.set)})
    trainer = make_train(setting_config(load_config("configs/palindrome.py"), **overrides))
    keys = jax.random.split(jax.random.key(0), args.seeds)
    _, metrics = jax.jit(map_over_seeds(trainer.train, args.strategy))(keys)
    print("done", [round(float(a), 3) for a in jax.device_get(metrics["eval_accuracy"])], flush=True)


if __name__ == "__main__":
    main()
