"""Training speed of the character LSTM: jaxseq's CharLSTM vs Flax's nn.RNN(nn.OptimizedLSTMCell) vs PyTorch.

All models are Embedding(V, 64) -> 2 x LSTM(256) -> Dense(V), trained with the same step (Adam,
global-norm clipping 5, mean cross-entropy over B = 64 windows of T = 30 characters, V = 80 as
in Grimms' Fairy Tales), each as one jitted ``lax.scan`` over ``--steps_per_call`` steps on
batches cut on device. PyTorch's peer (``pip install -e '.[bench]'``) is the same stack,
``nn.Embedding -> nn.LSTM(num_layers=2) -> nn.Linear``, with the same optimiser and clipping, run
eagerly on random windows. The text trainer's own step (``textgen.train_chunk``) is timed too, and
with each ``--shards`` count (``runner.batch_shards``). Compilation and one warm-up call are excluded; the models are timed
round-robin and the table reports the median over ``--repeats`` timed calls, in training
characters (B * T per step) per second.

    .venv/bin/python benchmarks/bench_textgen.py
    .venv/bin/python benchmarks/bench_textgen.py --repeats=7 --steps_per_call=50

Writes --out (default: a fresh runs/bench_textgen/<YYYYmmdd-HHMMSS>/bench_textgen.json).
"""

import os
import platform
import statistics
import time

import flax
import jax
import jax.numpy as jnp
import optax
from absl import flags
from flax import linen as nn

from cell_variants import hoisted_input  # benchmarks/cell_variants.py, beside this script
from cli import check_arguments, check_out, check_positive_ints, interrupted_path, write_json  # benchmarks/cli.py, beside this script
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/
from jaxseq.data.text import sample_batch
from jaxseq.models.cells import LSTMCell
from jaxseq.models.charlm import CharLSTM
from jaxseq.train import textgen
from jaxseq.runner.batch_shards import BatchShards
from jaxseq.runner.seeds import StallWatch

_BATCH = flags.DEFINE_integer("batch_size", 64, "B", lower_bound=1)
_SEQ_LEN = flags.DEFINE_integer("seq_len", 30, "T", lower_bound=1)
_HIDDEN = flags.DEFINE_integer("hidden_size", 256, "H of each layer", lower_bound=1)
_VOCAB = flags.DEFINE_integer("vocab_size", 80, "V (Grimms' Fairy Tales without the Gutenberg licence: 80)",
                               lower_bound=1)
_STEPS = flags.DEFINE_integer("steps_per_call", 20, "training steps per compiled call", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 5, "timed calls per model (median reported)", lower_bound=1)
_SHARDS = flags.DEFINE_list("shards", ["2"], "runner.batch_shards counts (> 1) timed through the text trainer")
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/bench_textgen/<YYYYmmdd-HHMMSS>/bench_textgen.json)")

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


def jax_timer(model: nn.Module):
    """``(timed, info)``: ``timed()`` runs one compiled call of ``--steps_per_call`` steps and returns its seconds."""
    batch_size, seq_len, steps = _BATCH.value, _SEQ_LEN.value, _STEPS.value
    key = jax.random.key(0)
    data = jax.random.randint(key, (200_000,), 0, _VOCAB.value)
    params = jax.jit(model.init)(key, jnp.zeros((1, seq_len), jnp.int32))["params"]
    tx, train = make_timed_train(model, batch_size, seq_len, steps)
    state = {"params": params, "opt_state": tx.init(params), "calls": 0}
    info = {"params": sum(x.size for x in jax.tree_util.tree_leaves(params))}

    def timed() -> float:
        start = time.perf_counter()
        state["params"], state["opt_state"], loss = jax.block_until_ready(
            train(state["params"], state["opt_state"], data, jax.random.fold_in(key, state["calls"]))
        )
        state["calls"] += 1
        info["final_loss"] = float(loss)
        return time.perf_counter() - start

    info["first_call_s"] = timed()  # compile + one call
    timed()  # warm-up
    return timed, info


def library_timer(model: nn.Module, shards: int):
    """Like :func:`jax_timer`, but through the text trainer's own step (``jaxseq.train.textgen``):
    :func:`train_chunk` (one scan) with ``shards = 1``, else ``BatchShards`` (``runner.batch_shards``:
    each step's batch split over ``shards`` host threads, gradients averaged). Its step also computes
    the accuracy and the gradient and parameter norms it logs."""
    batch_size, seq_len, steps = _BATCH.value, _SEQ_LEN.value, _STEPS.value
    key = jax.random.key(0)
    data = jax.random.randint(key, (200_000,), 0, _VOCAB.value)
    params = jax.jit(model.init)(key, jnp.zeros((1, seq_len), jnp.int32))["params"]
    tx = optax.chain(optax.clip_by_global_norm(5.0), optax.adam(2e-3))
    state = {"train": textgen.TrainState.create(apply_fn=None, params=params, tx=tx), "calls": 0}
    info = {"params": sum(x.size for x in jax.tree_util.tree_leaves(params))}
    sharded = BatchShards(shards, textgen.ShardedTextSteps(model, batch_size, seq_len), per_seed=False) if shards > 1 else None
    watch = StallWatch(min_s=300.0, strategy=f"{shards} batch shards")

    def timed() -> float:
        start = time.perf_counter()
        rng = jax.random.fold_in(key, state["calls"])
        if sharded is None:
            new, metrics = textgen.train_chunk(model, state["train"], data, rng, batch_size, seq_len, steps)
        else:
            new, metrics = sharded(state["train"], watch, "bench", steps=steps, args=(data, rng))
        state["train"], metrics = jax.block_until_ready((new, metrics))
        state["calls"] += 1
        info["final_loss"] = float(metrics["loss"][-1])
        return time.perf_counter() - start

    info["first_call_s"] = timed()  # compile + one call
    timed()  # warm-up
    return timed, info


def torch_timer():
    """The same stack and step in PyTorch (eager, CPU): Embedding -> nn.LSTM(num_layers=2) -> Linear."""
    import torch

    torch.manual_seed(0)
    vocab, hidden, batch_size, seq_len = _VOCAB.value, _HIDDEN.value, _BATCH.value, _SEQ_LEN.value

    class TorchCharLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(vocab, EMBED_DIM)
            self.lstm = torch.nn.LSTM(EMBED_DIM, hidden, num_layers=NUM_LAYERS, batch_first=True)
            self.head = torch.nn.Linear(hidden, vocab)

        def forward(self, tokens):
            return self.head(self.lstm(self.embed(tokens))[0])

    model = TorchCharLSTM()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    data = torch.randint(0, vocab, (200_000,))
    info = {"params": sum(p.numel() for p in model.parameters())}

    def step():
        starts = torch.randint(0, len(data) - seq_len - 1, (batch_size,))
        windows = data[starts[:, None] + torch.arange(seq_len + 1)]
        logits = model(windows[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), windows[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        return loss

    def timed() -> float:
        start = time.perf_counter()
        for _ in range(_STEPS.value):
            loss = step()
        info["final_loss"] = float(loss)
        return time.perf_counter() - start

    start = time.perf_counter()
    timed()
    info["first_call_s"] = time.perf_counter() - start
    return timed, info


def main(argv):
    check_arguments(argv)
    shard_counts = [n for n in check_positive_ints(_SHARDS.value, "shards") if n > 1]  # 1 shard: the trainer's row
    out = check_out(_OUT.value)

    def ours():
        return CharLSTM(_VOCAB.value, _HIDDEN.value, NUM_LAYERS, EMBED_DIM)

    makers = {
        "jaxseq CharLSTM (LSTMCell + scan_cell)": lambda: jax_timer(ours()),
        "jaxseq CharLSTM, input projection hoisted": lambda: jax_timer(
            CharLSTM(_VOCAB.value, _HIDDEN.value, NUM_LAYERS, EMBED_DIM, cell=hoisted_input(LSTMCell(_HIDDEN.value)))
        ),
        "flax nn.RNN(nn.OptimizedLSTMCell)": lambda: jax_timer(FlaxCharLSTM(_VOCAB.value, _HIDDEN.value)),
        "jaxseq CharLSTM, text trainer's step": lambda: library_timer(ours(), 1),
    }
    for shards in shard_counts:
        makers[f"jaxseq CharLSTM, text trainer, batch_shards={shards}"] = lambda n=shards: library_timer(ours(), n)
    try:
        import torch  # noqa: F401

        makers["PyTorch nn.LSTM (eager, CPU)"] = torch_timer
    except ImportError:
        print("PyTorch not installed (pip install -e '.[bench]'): timing jax models only")
    timers = {name: make() for name, make in makers.items()}
    times = {name: [] for name in timers}
    interrupted = False
    try:
        for _ in range(_REPEATS.value):  # round-robin: a noisy neighbour slows every model alike
            for name, (timed, _) in timers.items():
                times[name].append(timed())
    except KeyboardInterrupt:  # report the calls that finished (still round-robin, side by side)
        interrupted = True
        if not any(times.values()):
            raise
        print(f"\ninterrupted: reporting the calls that finished, to {interrupted_path(out)}", flush=True)
    steps, chars = _STEPS.value, _STEPS.value * _BATCH.value * _SEQ_LEN.value
    rows = []
    for name, (_, info) in ((name, timer) for name, timer in timers.items() if times[name]):
        median = statistics.median(times[name])
        rows.append({"model": name, **info, "chars_per_s": chars / median, "ms_per_step": 1e3 * median / steps,
                     "times_s": times[name]})
    header = f"{'model':42s} {'params':>8s} {'chars/s':>10s} {'ms/step':>8s} {'compile+1st (s)':>16s}"
    print(f"B={_BATCH.value} T={_SEQ_LEN.value} {NUM_LAYERS}x{_HIDDEN.value} V={_VOCAB.value}, "
          f"{_STEPS.value} steps per call, median of {max(map(len, times.values()))} (round-robin)")
    print(header)
    for r in rows:
        print(f"{r['model']:42s} {r['params']:8d} {r['chars_per_s']:10.0f} {r['ms_per_step']:8.1f} {r['first_call_s']:16.1f}")
    ratios = {f"jaxseq / {r['model']}": rows[0]["chars_per_s"] / r["chars_per_s"] for r in rows[1:]}
    sharded = [r for r in rows if "batch_shards=" in r["model"]]
    for r in sharded:  # the sharded step against the unsharded library step and the peers
        for other in rows:
            if other is not r and other not in sharded and other is not rows[0]:
                ratios[f"{r['model']} / {other['model']}"] = r["chars_per_s"] / other["chars_per_s"]
    for what, ratio in ratios.items():
        print(f"{what}: {ratio:.2f}")
    setup = dict(batch_size=_BATCH.value, seq_len=_SEQ_LEN.value, hidden_size=_HIDDEN.value, num_layers=NUM_LAYERS,
                 embed_dim=EMBED_DIM, vocab_size=_VOCAB.value, steps_per_call=_STEPS.value, repeats=_REPEATS.value)
    machine = dict(device=str(jax.devices()[0]), cpu_count=os.cpu_count(), jax=jax.__version__,
                   flax=flax.__version__, python=platform.python_version(), load_after=os.getloadavg())
    report = {"setup": setup, "machine": machine, "results": rows, "ratios": ratios, "interrupted": interrupted}
    write_json(interrupted_path(out) if interrupted else out, report, indent=2)
    if interrupted:
        raise KeyboardInterrupt


if __name__ == "__main__":
    run_main(main)
