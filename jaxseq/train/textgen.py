"""Training a :class:`jaxseq.models.charlm.CharLSTM` on a text corpus: the trainer, its step and its evaluation.

``make_train(config, corpus)`` returns a :class:`TextTrainer` with the members every jaxseq trainer
has: ``init(rng)``, ``run_chunk(run, num_steps)``, ``evaluate(run)`` and ``train(rng)`` (one seed's
whole run, pure: ``jax.jit(jax.vmap(trainer.train))(keys)`` trains several).

A run is a sequence of compiled chunks: :func:`train_chunk` ``lax.scan``s ``train.steps_per_call``
steps of :func:`make_train_step` in one call, so Python (progress bar, logging, validation,
checkpoints: :func:`jaxseq.files.text_runs.fit`, a driver around the trainer) runs only between chunks. Every random number of step
``s`` (the batch offsets and the dropout masks) is derived from the run's seed and ``s`` with
``jax.random.fold_in``, so a run resumed from a checkpoint gives exactly the parameters of an
uninterrupted run. The state is the common :class:`jaxseq.train.state.TrainState`.

Loss: mean cross-entropy (nats) over all ``T`` positions of all ``B`` windows
(:func:`jaxseq.train.losses.cross_entropy`); bits per character are nats / ln 2. Accuracy: the
fraction of next characters that are the model's argmax.
"""

import functools
import json
import math
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from jaxseq.data.text import TextCorpus, sample_batch, sequential_windows
from jaxseq.models.charlm import CharLSTM, make_char_lstm
from jaxseq.train.losses import cross_entropy
from jaxseq.train.optim import make_optimizer
from jaxseq.train.state import TrainState, shard_rows


# a chunk whose mean loss exceeds this many times the loss of a uniform guess (ln V) has diverged
DIVERGED_FACTOR = 10.0


@functools.partial(jax.jit, static_argnames=("model", "seq_len"))
def init_params(model: CharLSTM, key: jax.Array, seq_len: int):
    """Fresh parameters of ``model`` (compiled once per model and ``T``)."""
    return model.init(key, jnp.zeros((1, seq_len), jnp.int32))["params"]


@functools.lru_cache(maxsize=16)
def _optimizer(optim_json: str, total_steps: int) -> optax.GradientTransformation:
    # One object per optimiser config: the compiled train_chunk is keyed on the state's static
    # fields, so equal configs must give the same ``tx`` to reuse the compilation across runs.
    return make_optimizer(ml_collections.ConfigDict(json.loads(optim_json)), total_steps)


def create_train_state(model: CharLSTM, config: ml_collections.ConfigDict, key: jax.Array) -> TrainState:
    """Initialise parameters and the optax optimiser ``config.optim`` describes (schedule over ``train.num_steps``)."""
    params = init_params(model, key, config.data.seq_len)
    tx = _optimizer(config.optim.to_json(), config.train.num_steps)
    # apply_fn=None: a bound method compares by identity and would defeat the compilation cache
    return TrainState.create(apply_fn=None, params=params, tx=tx)


def step_gradients(model: CharLSTM, state: TrainState, batch, dropout_key: jax.Array):
    """``(loss, accuracy, grads)`` of ``state.params`` on ``batch = (inputs, targets)`` (``[B, T]``
    each), with dropout masks drawn from ``dropout_key``."""
    inputs, targets = batch

    def loss_fn(params):
        _, logits = model.apply({"params": params}, inputs, train=True, rngs={"dropout": dropout_key})
        loss, accuracy = cross_entropy(logits, targets)
        return loss, {"accuracy": accuracy}

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return loss, aux["accuracy"], grads


def apply_step(state: TrainState, loss, accuracy, grads) -> tuple[TrainState, dict[str, jax.Array]]:
    """The optimiser update with ``grads``: ``(state, metrics)`` (loss, accuracy, norms; scalars)."""
    state = state.apply_gradients(grads=grads)
    metrics = {
        "loss": loss,
        "accuracy": accuracy,
        "grad_norm": optax.tree.norm(grads),
        "param_norm": optax.tree.norm(state.params),
    }
    return state, metrics


def make_train_step(model: CharLSTM) -> Callable:
    """``train_step(state, (inputs, targets), rng) -> (state, metrics)``; dropout key ``fold_in(rng, step)``."""

    def train_step(state: TrainState, batch, rng: jax.Array):
        dropout_key = jax.random.fold_in(rng, state.step)
        return apply_step(state, *step_gradients(model, state, batch, dropout_key))

    return train_step


class ShardedTextSteps:
    """The training step of :func:`train_chunk`, split for :class:`jaxseq.runner.batch_shards.BatchShards`
    (``runner.batch_shards``; one run, no seed axis).

    Shard ``i`` of step ``s`` trains on its rows of the batch :func:`train_chunk` draws at step
    ``s``, with dropout key ``fold_in(fold_in(dropout_rng, s), i)``: every shard draws its own
    masks, so with dropout a sharded run equals an unsharded one in distribution rather than to
    float rounding (without dropout, to rounding).

    Args:
      model: the CharLSTM; batch_size, seq_len: ``B`` and ``T`` of the whole batch.
    """

    def __init__(self, model: CharLSTM, batch_size: int, seq_len: int):
        self.model, self.batch_size, self.seq_len = model, batch_size, seq_len

    def shard_gradients(self, state: TrainState, index: jax.Array, count: int, data: jax.Array, rng: jax.Array):
        """``(loss, accuracy, grads)`` of shard ``index`` of ``count`` at step ``state.step``."""
        data_rng, dropout_rng = jax.random.split(rng)
        batch = sample_batch(jax.random.fold_in(data_rng, state.step), data, self.batch_size, self.seq_len)
        dropout_key = jax.random.fold_in(jax.random.fold_in(dropout_rng, state.step), index)
        return step_gradients(self.model, state, shard_rows(batch, index, count), dropout_key)

    finish_step = staticmethod(apply_step)


@functools.partial(jax.jit, static_argnames=("model", "batch_size", "seq_len", "num_steps"))
def train_chunk(
    model: CharLSTM, state: TrainState, data: jax.Array, rng: jax.Array, batch_size: int, seq_len: int, num_steps: int
) -> tuple[TrainState, dict[str, jax.Array]]:
    """``num_steps`` training steps in one compiled ``lax.scan``; metrics come back as ``[num_steps]``.

    Step ``s`` trains on ``sample_batch(fold_in(data_rng, s), data, B, T)`` with dropout key
    ``fold_in(dropout_rng, s)`` where ``data_rng, dropout_rng = split(rng)``. Compiled once per
    (model, B, T, num_steps) and reused across runs in one process.
    """
    train_step = make_train_step(model)
    data_rng, dropout_rng = jax.random.split(rng)

    def one_step(state, _):
        batch = sample_batch(jax.random.fold_in(data_rng, state.step), data, batch_size, seq_len)
        return train_step(state, batch, dropout_rng)

    return jax.lax.scan(one_step, state, length=num_steps)


@functools.partial(jax.jit, static_argnames="model")
def evaluate(model: CharLSTM, params, inputs: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """``{loss, bpc, accuracy}`` of next-character prediction on windows ``inputs, targets: [N, T]``.

    Each window starts from zero states, as in training (see :func:`sequential_windows`).
    """
    _, logits = model.apply({"params": params}, inputs)
    loss, accuracy = cross_entropy(logits, targets)
    return {"loss": loss, "bpc": loss / math.log(2.0), "accuracy": accuracy}


@functools.partial(jax.jit, static_argnames=("model", "num_streams"))
def evaluate_carried(model: CharLSTM, params, ids: jax.Array, num_streams: int = 8) -> dict[str, jax.Array]:
    """``{loss, bpc, accuracy}`` of reading a text in order with the LSTM state carried throughout.

    ``ids: int [N]`` is cut into ``num_streams`` consecutive pieces of ``n = (N - 1) // num_streams``
    targets each; every piece is read from zero states to its end in one scan, so each prediction
    sees everything before it in its piece (unlike :func:`evaluate`, whose windows restart every
    ``T`` characters). Only the first character of each piece is not a target.
    """
    n = (ids.shape[0] - 1) // num_streams
    if n < 1:
        raise ValueError(f"a text of {ids.shape[0]} characters is too short for {num_streams} streams")
    index = n * jnp.arange(num_streams)[:, None] + jnp.arange(n)[None, :]  # [streams, n]
    _, logits = model.apply({"params": params}, ids[index])
    loss, accuracy = cross_entropy(logits, ids[index + 1])
    return {"loss": loss, "bpc": loss / math.log(2.0), "accuracy": accuracy}


@struct.dataclass
class TextRun:
    """What one character-LM run carries between chunks.

    Attributes:
      state: parameters, optimiser state and step (:class:`jaxseq.train.state.TrainState`; what a
        checkpoint holds).
      rng: the run's training key: step ``s`` draws its batch and dropout masks from it and ``s``.
    """

    state: TrainState
    rng: jax.Array


class TextTrainer:
    """Pure training functions of one character-LM experiment (see the module docstring).

    Args:
      config: ``model``, ``optim``, ``data`` (``batch_size``, ``seq_len``) and ``train``
        (``num_steps``, ``steps_per_call``) sections. Read, never modified.
      corpus: the encoded text; training windows are drawn from ``corpus.train``, and ``evaluate``
        reads ``corpus.val`` cut into consecutive windows (nothing when it is shorter than one).
    """

    def __init__(self, config: ml_collections.ConfigDict, corpus: TextCorpus):
        self.config = config
        self.model = make_char_lstm(config.model, corpus.vocab.size)
        self.batch_size, self.seq_len = config.data.batch_size, config.data.seq_len
        self.num_steps, self.chunk_steps = config.train.num_steps, config.train.steps_per_call
        self.data = jnp.asarray(corpus.train)
        self.val_windows: Optional[tuple] = None
        if len(corpus.val) > self.seq_len:
            self.val_windows = tuple(jnp.asarray(a) for a in sequential_windows(corpus.val, self.seq_len))

    def init(self, rng: jax.Array) -> TextRun:
        """Fresh parameters and optimiser state from ``rng`` (split into the initialisation key and the run's key)."""
        init_key, train_rng = jax.random.split(rng)
        return TextRun(state=create_train_state(self.model, self.config, init_key), rng=train_rng)

    def run_chunk(self, run: TextRun, num_steps: Optional[int] = None) -> tuple[TextRun, dict[str, jax.Array]]:
        """``num_steps`` (default ``train.steps_per_call``) steps as one compiled scan; metrics ``[num_steps]``
        (``loss``, ``accuracy``, ``grad_norm``, ``param_norm``)."""
        steps = num_steps or self.chunk_steps
        state, metrics = train_chunk(self.model, run.state, self.data, run.rng, self.batch_size, self.seq_len, steps)
        return run.replace(state=state), metrics

    def evaluate(self, run: TextRun) -> dict[str, jax.Array]:
        """``{loss, bpc, accuracy}`` on the validation windows (``{}`` without a validation text)."""
        if self.val_windows is None:
            return {}
        return evaluate(self.model, run.state.params, *self.val_windows)

    def chunk_sizes(self, start: int = 0) -> list[int]:
        """The steps of each chunk from step ``start`` to ``train.num_steps`` (the last one may be shorter)."""
        return [min(self.chunk_steps, self.num_steps - s) for s in range(start, self.num_steps, self.chunk_steps)]

    def train(self, rng: jax.Array) -> tuple[TextRun, dict[str, Any]]:
        """The whole run as one pure function: ``rng -> (final run, metrics)``; ``metrics`` holds the
        per-step arrays ``[num_steps]`` and the validation scalars (``val_loss``, ``val_bpc``, ``val_accuracy``)."""
        run, chunks = self.init(rng), []
        for steps in self.chunk_sizes():
            run, metrics = self.run_chunk(run, steps)
            chunks.append(metrics)
        per_step = {k: jnp.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        return run, {**per_step, **{f"val_{k}": v for k, v in self.evaluate(run).items()}}


def make_train(config: ml_collections.ConfigDict, corpus: TextCorpus) -> TextTrainer:
    """Set up a character-LM run once (model, optimiser, data on device); see :class:`TextTrainer`."""
    return TextTrainer(config, corpus)
