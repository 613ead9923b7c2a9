"""Training throughput (seed-steps/s) of our recurrent classifiers vs peers, side by side.

    python benchmarks/bench_recurrent.py [--lengths 10,30] [--repeats 5] [--out benchmarks/results/bench_recurrent.json]

Every variant trains on decimal palindromes with one-hot input, B = 128, H = 128, Adam, through
the same compiled chunk of 10 steps (``SequenceTrainer.run_chunk``), vmapped over 1 or 8 seeds.
Variants:

- ``ours-lstm``, ``ours-rnn``: the project's cells, input projection hoisted out of the scan;
- ``flax-lstm``: Flax's built-in ``nn.RNN(nn.OptimizedLSTMCell)`` with the same head;
- ``loop-lstm``: our LSTMCell called step by step in a Python loop over time (unrolled by jit);
- ``scan-lstm``: our LSTMCell under ``nn.scan`` with the input projection inside each step (what
  ``scan_cell`` does, minus the hoisting), to measure what hoisting buys.

Seed-steps/s = seeds x steps / seconds (median over repeats, compilation excluded). The speed-up of
vmap is the 8-seed rate over the 1-seed rate, i.e. over 8 sequential runs.
"""

import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import linen as nn  # noqa: E402

from jaxseq.config import load_config  # noqa: E402
from jaxseq.models.cells import LSTMCell  # noqa: E402
from jaxseq.train.sequence import make_train  # noqa: E402
from jaxseq.train.sweep import setting_config  # noqa: E402

CHUNK = 10


class FlaxLSTMClassifier(nn.Module):
    """Peer: Flax's built-in optimized LSTM cell under ``nn.RNN``, same one-hot input and head."""

    hidden_size: int
    num_classes: int

    @nn.compact
    def __call__(self, tokens):
        hs = nn.RNN(nn.OptimizedLSTMCell(self.hidden_size))(jax.nn.one_hot(tokens, 10))
        return nn.Dense(self.num_classes)(hs[:, -1])


def _step(cell, carry, x_t):
    return cell(carry, x_t)


class UnhoistedLSTMClassifier(nn.Module):
    """Peer: our LSTMCell with ``x_t W_x`` computed inside every step (no hoisting).

    ``loop=True`` steps it in a Python loop over time (unrolled by jit), else under ``nn.scan``.
    """

    hidden_size: int
    num_classes: int
    loop: bool

    @nn.compact
    def __call__(self, tokens):
        x = jax.nn.one_hot(tokens, 10)
        cell = LSTMCell(self.hidden_size)
        carry = cell.initialize_carry(None, x[:, 0].shape)
        if self.loop:
            for t in range(x.shape[1]):
                carry, h = cell(carry, x[:, t])
        else:
            scan = nn.scan(_step, variable_broadcast="params", split_rngs={"params": False}, in_axes=1, out_axes=1)
            _, hs = scan(cell, carry, x)
            h = hs[:, -1]
        return nn.Dense(self.num_classes)(h)


def make_trainer(variant: str, length: int):
    config = setting_config(
        load_config("configs/palindrome.py"),
        **{
            "model.name": variant.split("-")[1] if variant.startswith("ours") else "lstm",
            "model.encoding": "onehot",
            "model.hidden_size": 128,
            "optim.name": "adam",
            "data.length": length,
            "data.batch_size": 128,
            "train.num_steps": 10**6,
            "train.chunk_steps": CHUNK,
            "train.stop_accuracy": 2.0,  # never stop: every step does real work
        },
    )
    trainer = make_train(config)
    if variant == "flax-lstm":
        trainer.model = FlaxLSTMClassifier(128, 10)
    elif variant == "loop-lstm":
        trainer.model = UnhoistedLSTMClassifier(128, 10, loop=True)
    elif variant == "scan-lstm":
        trainer.model = UnhoistedLSTMClassifier(128, 10, loop=False)
    return trainer


def seed_steps_per_second(variant: str, length: int, seeds: int, repeats: int) -> float:
    trainer = make_trainer(variant, length)
    chunk = jax.jit(jax.vmap(trainer.run_chunk))
    run = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.key(0), seeds))
    run, _ = chunk(run)  # compile and warm up
    jax.block_until_ready(run)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run, metrics = chunk(run)
        jax.block_until_ready((run, metrics))
        times.append(time.perf_counter() - start)
    return seeds * CHUNK / float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="10,30")
    parser.add_argument("--seeds", default="1,8")
    parser.add_argument("--variants", default="ours-lstm,flax-lstm,loop-lstm,ours-rnn")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/bench_recurrent.json")
    args = parser.parse_args()

    rows = []
    print(f"{'variant':<10} {'T':>3} {'seeds':>5} {'seed-steps/s':>13}")
    for length in map(int, args.lengths.split(",")):
        for variant in args.variants.split(","):
            for seeds in map(int, args.seeds.split(",")):
                rate = seed_steps_per_second(variant, length, seeds, args.repeats)
                rows.append(dict(variant=variant, length=length, seeds=seeds, seed_steps_per_s=round(rate, 2)))
                print(f"{variant:<10} {length:>3} {seeds:>5} {rate:>13.1f}", flush=True)

    rate = {(r["variant"], r["length"], r["seeds"]): r["seed_steps_per_s"] for r in rows}
    print("\nratios (same run):")
    ratios = []
    for length in map(int, args.lengths.split(",")):
        for seeds in map(int, args.seeds.split(",")):
            for peer in ["flax-lstm", "loop-lstm", "scan-lstm"]:
                if ("ours-lstm", length, seeds) in rate and (peer, length, seeds) in rate:
                    r = rate[("ours-lstm", length, seeds)] / rate[(peer, length, seeds)]
                    ratios.append(dict(what=f"ours-lstm / {peer}", length=length, seeds=seeds, ratio=round(r, 2)))
        for variant in args.variants.split(","):
            if (variant, length, 8) in rate and (variant, length, 1) in rate:
                r = rate[(variant, length, 8)] / rate[(variant, length, 1)]
                ratios.append(dict(what=f"{variant}: 8 vmapped / 8 sequential", length=length, seeds=8, ratio=round(r, 2)))
    for r in ratios:
        print(f"  {r['what']:<40} T={r['length']:<3} seeds={r['seeds']}: {r['ratio']:.2f}x")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(
            dict(
                rows=rows,
                ratios=ratios,
                machine=dict(platform=platform.platform(), cpus=os.cpu_count(), jax=jax.__version__, backend=jax.default_backend()),
                batch_size=128,
                hidden_size=128,
                chunk_steps=CHUNK,
                repeats=args.repeats,
            ),
            f,
            indent=2,
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
