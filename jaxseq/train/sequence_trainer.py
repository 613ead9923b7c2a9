"""Training sequence models on the on-device tasks: one pure, jit-able, vmappable run.

``make_train(config)`` does the Python-side setup once and returns a :class:`SequenceTrainer`
whose methods are pure functions of JAX values:

- ``init(rng) -> RunState``
- ``run_chunk(run_state) -> (run_state, metrics)``: ``config.train.chunk_steps`` steps as one
  ``lax.scan``; per-step metrics ``[chunk]`` (``loss``, ``accuracy``, ``grad_norm``,
  ``param_norm``, ``active``).
- ``evaluate(run_state) -> metrics`` on a large fresh batch.

The loss and the accuracy are means over the steps a task scores (its batch's ``mask``; the last
step of a ``last_step_only`` task, whose model then reads out its last state only): softmax
cross-entropy, or squared error for a regression task (:func:`jaxseq.train.losses.task_loss`).
- ``train(rng) -> (run_state, metrics)``: the whole run (all chunks, then ``evaluate``).

Several seeds train in one program with ``jax.jit(jax.vmap(trainer.train))(keys)`` on any backend
(the parameters are initialised one seed at a time under ``vmap``:
:func:`jaxseq.train.state.one_seed_at_a_time`), or with another mapping through
:func:`jaxseq.runner.seeds.map_over_seeds`; seed ``i`` computes the same numbers either way, up to
float rounding. Each seed stops by itself, inside the compiled program, by masking its updates
once it has converged (windowed accuracy >= ``stop_accuracy``) or once its windowed loss has not
improved for ``patience`` steps; it then records the step it stopped at.
"""

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from jaxseq.data.sequences import Batch, get_task
from jaxseq.models.registry import make_classifier
from jaxseq.train.losses import task_loss
from jaxseq.train.optim import make_optimizer
from jaxseq.train.state import TrainState, count_params, one_seed_at_a_time, param_norm, shard_rows, where_tree
from jaxseq.train.stopping import windowed_stopper

_EVAL_SALT = 0x5EED  # folded into the run key for the evaluation batch, apart from all step keys


@struct.dataclass
class RunState:
    """Everything one seed's run carries from step to step.

    Attributes:
      train_state: parameters and optimiser state.
      rng: the run's key; step ``s`` uses ``fold_in(rng, s)``.
      step: number of steps executed (updates applied or masked), int32.
      active: False once the seed has stopped.
      converged_step: step at which the windowed accuracy reached the target, -1 if never.
      stopped_step: step at which the seed stopped updating, -1 while active.
      stopper: the state of the stopping rule (:func:`jaxseq.train.stopping.windowed_stopper`).
    """

    train_state: TrainState
    rng: jax.Array
    step: jax.Array
    active: jax.Array
    converged_step: jax.Array
    stopped_step: jax.Array
    stopper: Any


class SequenceTrainer:
    """Pure training functions for one (model, task, length) setting; see the module docstring.

    Args:
      config: a config with ``model``, ``optim``, ``data`` and ``train`` sections
        (``configs/palindrome.py`` documents every field). It is read, never modified.
    """

    def __init__(self, config: ml_collections.ConfigDict):
        data, train = config.data, config.train
        self.task = get_task(data.task, data.get(data.task))
        self.length = data.length
        self.batch_size = data.batch_size
        self.eval_batch_size = data.get("eval_batch_size", 4096)
        # check the data arguments once, eagerly, with clear errors (from shapes: nothing is drawn)
        self.time_steps = self.task.time_steps(self.length)
        jax.eval_shape(lambda: self.task.sample(jax.random.key(0), self.batch_size, self.length))
        if train.num_steps <= 0 or train.chunk_steps <= 0:
            raise ValueError("train.num_steps and train.chunk_steps must be positive")
        self.num_steps = train.num_steps
        self.chunk_steps = min(train.chunk_steps, train.num_steps)
        # windowed accuracy >= stop_accuracy (> 1: never), or no better windowed loss in patience steps (0: never)
        self.stopper = windowed_stopper(train.get("window", 50), train.get("stop_accuracy", 1.1), train.get("patience", 0))
        self.model = make_classifier(
            config.model,
            self.task.vocab_size(self.length),
            self.task.num_classes(self.length),
            every_step=not self.task.last_step_only,
            input_features=self.task.input_features,
            time_steps=self.time_steps,
        )
        self.tx = make_optimizer(config.optim, self.num_steps)

    # -- data --------------------------------------------------------------------------
    def get_batch(self, key: jax.Array, batch_size: int | None = None) -> Batch:
        """A fresh :class:`~jaxseq.data.sequences.Batch` ``(inputs, targets [B, time], mask [B, time])`` from ``key``."""
        return self.task.sample(key, batch_size or self.batch_size, self.length)

    # -- one step ----------------------------------------------------------------------
    def gradients(self, state: TrainState, batch) -> tuple[jax.Array, jax.Array, Any]:
        """``(loss, accuracy, grads)`` of ``state.params`` on ``batch``: the task's mean loss and
        accuracy over the scored steps, and the loss's gradients (a pytree like the parameters)."""

        def loss_fn(params):
            outputs = state.apply_fn({"params": params}, batch.inputs)
            return task_loss(self.task, outputs, batch)

        (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        return loss, accuracy, grads

    def apply_gradients(self, state: TrainState, loss, accuracy, grads) -> tuple[TrainState, dict[str, jax.Array]]:
        """The optimiser update with ``grads``; returns the new state and the step's scalar metrics."""
        metrics = {
            "loss": loss,
            "accuracy": accuracy,
            "grad_norm": optax.tree.norm(grads),
            "param_norm": param_norm(state.params),
        }
        return state.apply_gradients(grads=grads), metrics

    def train_step(self, state: TrainState, batch, rng: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        """One optimiser update on ``batch``; returns the new state and scalar metrics."""
        return self.apply_gradients(state, *self.gradients(state, batch))

    # -- a run -------------------------------------------------------------------------
    def init(self, rng: jax.Array) -> RunState:
        """Fresh parameters, optimiser state and stopping bookkeeping for one seed."""
        init_key, run_key = jax.random.split(rng)
        params = one_seed_at_a_time(self.init_params)(init_key)
        state = TrainState.create(apply_fn=self.model.apply, params=params, tx=self.tx)
        return RunState(
            train_state=state,
            rng=run_key,
            step=jnp.int32(0),
            active=jnp.bool_(True),
            converged_step=jnp.int32(-1),
            stopped_step=jnp.int32(-1),
            stopper=self.stopper.init(params),
        )

    def init_params(self, key: jax.Array) -> Any:
        """Fresh parameters of the model from ``key`` (a pytree like ``model.init(...)["params"]``).

        :meth:`init` calls it through :func:`~jaxseq.train.state.one_seed_at_a_time`, so that
        under ``jax.vmap`` over seeds it never runs batched (a batched QR of an orthogonal
        initialiser can deadlock XLA's CPU runtime).
        """
        return self.model.init(key, self.get_batch(jax.random.key(0), 1).inputs)["params"]

    def num_params(self) -> int:
        """The model's parameter count (from shapes only; nothing is initialised)."""
        return count_params(jax.eval_shape(self.init, jax.random.key(0)).train_state.params)

    def _step_batch(self, run: RunState):
        """The batch of the run's next step (step ``s`` draws it from ``fold_in(rng, s)``)."""
        data_key, _ = jax.random.split(jax.random.fold_in(run.rng, run.step + 1))
        return self.get_batch(data_key)

    def shard_gradients(self, run: RunState, index: jax.Array, count: int) -> tuple[jax.Array, jax.Array, Any]:
        """``(loss, accuracy, grads)`` of the next step on rows ``[index*B/count, (index+1)*B/count)``
        of its batch (:mod:`jaxseq.runner.batch_shards`); the mean over all ``count`` shards is what
        the unsharded step computes, up to float rounding."""
        batch = shard_rows(self._step_batch(run), index, count)
        return self.gradients(run.train_state, batch)

    def finish_step(self, run: RunState, loss, accuracy, grads) -> tuple[RunState, dict[str, jax.Array]]:
        """The rest of the next step, given its loss, accuracy and gradients: the update (masked
        once the seed has stopped) and the stopping bookkeeping. Returns the run and the step's
        metrics (``active`` marks a real update)."""
        step = run.step + 1  # 1-based number of the step being taken
        active = run.active & (step <= self.num_steps)
        new_state, metrics = self.apply_gradients(run.train_state, loss, accuracy, grads)

        stopper, stop = self.stopper.update(run.stopper, metrics["loss"], metrics["accuracy"], run.train_state.params)
        converged = active & stopper["solved"]
        stop = active & stop
        stops = stop | (active & (step == self.num_steps))
        # the metrics were measured before this step's update: a seed that stops here keeps the
        # parameters that earned them (one more update could undo a solved task)
        apply_update = active & ~stop

        run = run.replace(
            train_state=where_tree(apply_update, new_state, run.train_state),
            step=step,
            active=active & ~stops,
            converged_step=jnp.where(converged & (run.converged_step < 0), step, run.converged_step),
            stopped_step=jnp.where(stops, step, run.stopped_step),
            stopper=stopper,
        )
        return run, {**metrics, "active": apply_update}

    def _one_step(self, run: RunState, _) -> tuple[RunState, dict[str, jax.Array]]:
        return self.finish_step(run, *self.gradients(run.train_state, self._step_batch(run)))

    def run_chunk(self, run: RunState) -> tuple[RunState, dict[str, jax.Array]]:
        """``chunk_steps`` steps as one scan; metrics ``[chunk]``, ``active`` marks real updates."""
        return jax.lax.scan(self._one_step, run, None, length=self.chunk_steps)

    @property
    def num_chunks(self) -> int:
        """Chunks needed to cover ``num_steps`` (the last one may be partly masked)."""
        return -(-self.num_steps // self.chunk_steps)

    def evaluate(self, run: RunState) -> dict[str, jax.Array]:
        """Loss and accuracy on one fresh batch of ``eval_batch_size`` sequences."""
        key = jax.random.fold_in(run.rng, _EVAL_SALT)
        batch = self.get_batch(key, self.eval_batch_size)
        outputs = run.train_state.apply_fn({"params": run.train_state.params}, batch.inputs)
        loss, accuracy = task_loss(self.task, outputs, batch)
        return {"eval_loss": loss, "eval_accuracy": accuracy}

    def train(self, rng: jax.Array) -> tuple[RunState, dict[str, Any]]:
        """The whole run as one pure function: ``rng -> (final RunState, metrics)``.

        ``metrics`` holds per-step arrays ``[num_chunks * chunk_steps]`` and the evaluation scalars.
        """

        def chunk(run, _):
            return self.run_chunk(run)

        run, steps = jax.lax.scan(chunk, self.init(rng), None, length=self.num_chunks)
        steps = jax.tree.map(lambda x: x.reshape(-1), steps)
        return run, {**steps, **self.evaluate(run)}


def make_train(config: ml_collections.ConfigDict) -> SequenceTrainer:
    """Set up a run once (task, model, optimiser) from ``config``; see :class:`SequenceTrainer`."""
    return SequenceTrainer(config)
