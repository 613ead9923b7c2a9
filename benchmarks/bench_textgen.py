"""Training speed of the character LSTM: jaxseq's CharLSTM vs Flax's nn.RNN(nn.OptimizedLSTMCell).

Both models are Embedding(V, 64) -> 2 x LSTM(256) -> Dense(V), trained with the same step (Adam,
global-norm clipping 5, mean cross-entropy over B = 64 windows of T = 30 characters, V = 80 as
in Grimms' Fairy Tales), each as one jitted ``lax.scan`` over ``--steps_per_call`` steps on
batches cut on device. Compilation and one warm-up call are excluded; the table reports the
median over ``--repeats`` timed calls, in training characters (B * T per step) per second.

    .venv/bin/python benchmarks/bench_textgen.py
    .venv/bin/python benchmarks/bench_textgen.py --repeats=7 --steps_per_call=50

Writes benchmarks/results/bench_textgen.json.
"""

import json
import os
import pathlib
import platform
import statistics
import time

import flax
import jax
import jax.numpy as jnp
import optax
from absl import app, flags
from flax import linen as nn

from jaxseq.data.text import sample_batch
from jaxseq.models.charlm import CharLSTM

_BATCH = flags.DEFINE_integer("batch_size", 64, "B")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 30, "T")
_HIDDEN = flags.DEFINE_integer("hidden_size", 256, "H of each layer")
_VOCAB = flags.DEFINE_integer("vocab_size", 80, "V (Grimms' Fairy Tales without the Gutenberg licence: 80)")
_STEPS = flags.DEFINE_integer("steps_per_call", 20, "training steps per compiled call")
_REPEATS = flags.DEFINE_integer("repeats", 5, "timed calls per model (median reported)")
_OUT = flags.DEFINE_string("out", str(pathlib.Path(__file__).parent / "results" / "bench_textgen.json"), "JSON output")

EMBED_DIM = 64
NUM_LAYERS = 2


class FlaxCharLSTM(nn.Module):
    """The peer: the same stack with Flax's built-in ``nn.RNN(nn.OptimizedLSTMCell)``."""

    vocab_size: int
    hidden_size: int

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(self.vocab_size, EMBED_DIM)(tokens)
        for _ in range(NUM_LAYERS):
            x = nn.RNN(nn.OptimizedLSTMCell(self.hidden_size))(x)
        return None, nn.Dense(self.vocab_size)(x)


def make_timed_train(model: nn.Module, batch_size: int, seq_len: int, steps: int):
    """``(params, opt_state, data, key) -> (params, opt_state, loss)``: ``steps`` Adam steps in one jitted scan."""
    tx = optax.chain(optax.clip_by_global_norm(5.0), optax.adam(2e-3))

    def loss_fn(params, inputs, targets):
        _, logits = model.apply({"params": params}, inputs)
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

    @jax.jit
    def train(params, opt_state, data, key):
        def one_step(carry, step):
            params, opt_state = carry
            inputs, targets = sample_batch(jax.random.fold_in(key, step), data, batch_size, seq_len)
            loss, grads = jax.value_and_grad(loss_fn)(params, inputs, targets)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(one_step, (params, opt_state), jnp.arange(steps))
        return params, opt_state, losses[-1]

    return tx, train


def measure(name: str, model: nn.Module) -> dict:
    batch_size, seq_len, steps = _BATCH.value, _SEQ_LEN.value, _STEPS.value
    key = jax.random.key(0)
    data = jax.random.randint(key, (200_000,), 0, _VOCAB.value)
    params = jax.jit(model.init)(key, jnp.zeros((1, seq_len), jnp.int32))["params"]
    tx, train = make_timed_train(model, batch_size, seq_len, steps)
    opt_state = tx.init(params)
    start = time.perf_counter()
    params, opt_state, loss = jax.block_until_ready(train(params, opt_state, data, key))
    first_call = time.perf_counter() - start  # compile + one call
    jax.block_until_ready(train(params, opt_state, data, key))  # warm-up
    times = []
    for repeat in range(_REPEATS.value):
        start = time.perf_counter()
        params, opt_state, loss = jax.block_until_ready(train(params, opt_state, data, jax.random.fold_in(key, repeat)))
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "model": name,
        "params": sum(x.size for x in jax.tree_util.tree_leaves(params)),
        "chars_per_s": steps * batch_size * seq_len / median,
        "ms_per_step": 1e3 * median / steps,
        "first_call_s": first_call,
        "times_s": times,
        "final_loss": float(loss),
    }


def main(argv):
    del argv
    models = {
        "jaxseq CharLSTM (LSTMCell + scan_cell)": CharLSTM(_VOCAB.value, _HIDDEN.value, NUM_LAYERS, EMBED_DIM),
        "flax nn.RNN(nn.OptimizedLSTMCell)": FlaxCharLSTM(_VOCAB.value, _HIDDEN.value),
    }
    rows = [measure(name, model) for name, model in models.items()]
    header = f"{'model':42s} {'params':>8s} {'chars/s':>10s} {'ms/step':>8s} {'compile+1st (s)':>16s}"
    print(f"B={_BATCH.value} T={_SEQ_LEN.value} {NUM_LAYERS}x{_HIDDEN.value} V={_VOCAB.value}, "
          f"{_STEPS.value} steps per call, median of {_REPEATS.value}")
    print(header)
    for r in rows:
        print(f"{r['model']:42s} {r['params']:8d} {r['chars_per_s']:10.0f} {r['ms_per_step']:8.1f} {r['first_call_s']:16.1f}")
    ratio = rows[0]["chars_per_s"] / rows[1]["chars_per_s"]
    print(f"jaxseq / flax speed ratio: {ratio:.2f}")
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    setup = dict(batch_size=_BATCH.value, seq_len=_SEQ_LEN.value, hidden_size=_HIDDEN.value, num_layers=NUM_LAYERS,
                 embed_dim=EMBED_DIM, vocab_size=_VOCAB.value, steps_per_call=_STEPS.value, repeats=_REPEATS.value)
    machine = dict(device=str(jax.devices()[0]), cpu_count=os.cpu_count(), jax=jax.__version__,
                   flax=flax.__version__, python=platform.python_version())
    out.write_text(json.dumps({"setup": setup, "machine": machine, "results": rows, "ratio": ratio}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
