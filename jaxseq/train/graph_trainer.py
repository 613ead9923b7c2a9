"""Full-batch semi-supervised node classification as one pure, jit-able, vmap-able function.

``trainer = make_train(config)``, then ``trainer.train(rng) -> (state, metrics)``, as for the
sequence trainer: the whole run — initialisation, a ``lax.scan`` over epochs, early stopping, the
final evaluation — is one compiled program, so ten seeds are
``jax.jit(jax.vmap(trainer.train))(jax.random.split(key, 10))`` (:func:`jaxseq.runner.graph_seeds.train_seeds`
maps the seed axis by backend or ``runner.seed_strategy``). Early stopping is per seed and
lives inside the program: once a seed has stopped, its updates are masked out (its parameters and
optimiser state are carried unchanged) while the other seeds keep training.

Two stopping rules, as in the papers' reference code (``config.train.early_stopping``, checked on
the validation loss and accuracy after every epoch; :mod:`jaxseq.train.stopping`):

- ``window`` (Kipf & Welling): stop after the first epoch whose validation loss is above the
  mean of the previous ``patience`` epochs' validation losses; keep the last parameters.
- ``patience`` (Veličković et al.): stop after ``patience`` epochs in which neither the validation
  loss nor the validation accuracy matched its best; restore the parameters of the last epoch
  at which both were at their best.

The L2 penalty ``optim.l2 * Σ w² / 2`` is added to the loss (not weight decay) over the kernels
``optim.l2_scope`` names: ``first_layer`` (GCN) or ``all`` (GAT; biases are never penalised).
"""

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct, traverse_util

from jaxseq.data.graphs import NodeClassification, load_planetoid
from jaxseq.models.gnn import make_gnn
from jaxseq.lookup import lookup
from jaxseq.train.optim import make_optimizer
from jaxseq.train.state import TrainState
from jaxseq.train.stopping import STOPPERS

Params = Any


@struct.dataclass
class GraphRun:
    """Everything one seed's graph run carries from epoch to epoch.

    Attributes:
      train_state: parameters and optimiser state (:class:`jaxseq.train.state.TrainState`).
      stopper: the stopping rule's state (a pytree; see :data:`STOPPERS`).
      done: bool scalar, True once this seed has stopped.
      epochs: int32 scalar, epochs actually trained.
      rng: the run's dropout key (epoch ``e`` draws its masks from ``fold_in(rng, e)``).
    """

    train_state: TrainState
    stopper: Any
    done: jax.Array
    epochs: jax.Array
    rng: jax.Array

    @property
    def params(self) -> Params:
        """The parameters (``train_state.params``)."""
        return self.train_state.params


# --------------------------------------------------------------------------------------------
# Losses and metrics over a node mask.


def masked_cross_entropy(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy over the masked nodes. ``[N, C], [N, C] one-hot, [N] -> []``."""
    per_node = optax.softmax_cross_entropy(logits, labels)
    return jnp.sum(jnp.where(mask, per_node, 0.0)) / jnp.maximum(mask.sum(), 1)


def masked_accuracy(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
    """Fraction of masked nodes whose argmax logit is the label. ``[N, C], [N, C], [N] -> []``."""
    correct = jnp.argmax(logits, -1) == jnp.argmax(labels, -1)
    return jnp.sum(jnp.where(mask, correct, False)) / jnp.maximum(mask.sum(), 1)


def l2_penalty(params: Params, scope: str) -> jax.Array:
    """``Σ w² / 2`` over the non-bias parameters in ``scope`` (``first_layer`` or ``all``)."""
    if scope not in ("first_layer", "all"):
        raise ValueError(f"unknown optim.l2_scope {scope!r}; choose one of: all, first_layer")
    flat = traverse_util.flatten_dict(params)
    chosen = [w for path, w in flat.items() if path[-1] != "bias" and (scope == "all" or path[0] == "layer_0")]
    return 0.5 * sum(jnp.sum(jnp.square(w)) for w in chosen)


def evaluate(logits: jax.Array, data: NodeClassification) -> dict[str, jax.Array]:
    """Loss and accuracy on the train, val and test masks. ``logits [N, C]`` -> dict of scalars."""
    metrics = {}
    for split, mask in (("train", data.train_mask), ("val", data.val_mask), ("test", data.test_mask)):
        metrics[f"{split}_loss"] = masked_cross_entropy(logits, data.labels, mask)
        metrics[f"{split}_acc"] = masked_accuracy(logits, data.labels, mask)
    return metrics


# --------------------------------------------------------------------------------------------
# The run.


class GraphTrainer(NamedTuple):
    """The pure functions of one graph experiment (see :func:`make_train`), the members every
    jaxseq trainer has.

    Attributes:
      model: the Flax module (:func:`jaxseq.models.gnn.make_gnn`).
      data: the node-classification problem every run trains on.
      train_step: ``(state, data) -> (state, metrics)``, one full-batch epoch.
      init: ``rng -> state``, fresh parameters, optimiser and stopping state of one seed.
      run_chunk: ``(state, num_epochs) -> (state, metrics [num_epochs])``, epochs as one scan (a
        stopped seed's updates are masked).
      evaluate: ``state -> metrics``: loss and accuracy on every split of the parameters the
        stopping rule keeps (the restored best for ``patience``), and ``epochs``.
      train: ``rng -> (state, metrics)``, the whole run of one seed.
    """

    model: Any
    data: NodeClassification
    train_step: Callable
    init: Callable[[jax.Array], GraphRun]
    run_chunk: Callable[[GraphRun, int], tuple[GraphRun, dict[str, jax.Array]]]
    evaluate: Callable[[GraphRun], dict[str, jax.Array]]
    train: Callable[[jax.Array], tuple[GraphRun, dict[str, Any]]]


def make_train(config: ml_collections.ConfigDict, data: NodeClassification | None = None) -> GraphTrainer:
    """Set up a graph run once; ``trainer.train(rng) -> (state, metrics)`` is one seed's whole run.

    Args:
      config: ``model``, ``optim`` (``name``, ``lr``, ``l2``, ``l2_scope``), ``data.name`` and
        ``train`` (``num_epochs``, ``early_stopping``, ``patience``). Not modified.
      data: the problem; None loads ``config.data.name`` from the default data directory.
    Returns:
      A :class:`GraphTrainer`. ``train``'s ``state`` holds the evaluated parameters (the restored best for the
      ``patience`` rule); ``metrics["epoch"]`` maps names to ``[num_epochs]`` arrays (``loss``,
      ``cross_entropy``, ``grad_norm``, ``param_norm``, ``train/val/test_loss/acc``, ``active``:
      whether the epoch trained) and ``metrics["final"]`` to scalars from the evaluated
      parameters (``test_acc``, ``val_acc``, ..., ``epochs``).
    """
    data = load_planetoid(config.data.name) if data is None else data
    model = make_gnn(config.model, data.num_classes)
    num_epochs = config.train.num_epochs
    if num_epochs < 1:
        raise ValueError(f"train.num_epochs must be >= 1, got {num_epochs}")
    tx = make_optimizer(config.optim, num_epochs)
    stopper = lookup(STOPPERS, config.train.early_stopping, "early stopping rule")(config.train.patience)
    l2, l2_scope = config.optim.l2, config.optim.l2_scope

    def logits_of(params, data, deterministic=True, rng=None):
        rngs = None if deterministic else {"dropout": rng}
        return model.apply({"params": params}, data.graph, deterministic=deterministic, rngs=rngs)

    def train_step(state: GraphRun, batch: NodeClassification):
        def loss_fn(params):
            logits = logits_of(params, batch, deterministic=False, rng=jax.random.fold_in(state.rng, state.train_state.step))
            cross_entropy = masked_cross_entropy(logits, batch.labels, batch.train_mask)
            return cross_entropy + l2 * l2_penalty(params, l2_scope), cross_entropy

        (loss, cross_entropy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        active = ~state.done
        updated = state.replace(train_state=state.train_state.apply_gradients(grads=grads), epochs=state.epochs + 1)
        state = jax.tree.map(lambda new, old: jnp.where(active, new, old), updated, state)
        scores = evaluate(logits_of(state.params, batch), batch)
        stop_state, stop = stopper.update(state.stopper, scores["val_loss"], scores["val_acc"], state.params)
        state = state.replace(
            stopper=jax.tree.map(lambda new, old: jnp.where(active, new, old), stop_state, state.stopper),
            done=state.done | stop,
        )
        metrics = dict(
            loss=loss,
            cross_entropy=cross_entropy,
            grad_norm=optax.tree.norm(grads),
            param_norm=optax.tree.norm(state.params),
            active=active,
            **scores,
        )
        return state, metrics

    # The dataset is a constant of the compiled program; the barrier stops XLA from constant-folding
    # expressions of it (seconds of compile time, nothing saved at run time).
    def start(rng: jax.Array, batch: NodeClassification) -> GraphRun:
        init_rng, dropout_rng = jax.random.split(rng)
        params = model.init(init_rng, batch.graph)["params"]
        return GraphRun(
            train_state=TrainState.create(apply_fn=model.apply, params=params, tx=tx),
            stopper=stopper.init(params),
            done=jnp.zeros((), bool),
            epochs=jnp.zeros((), jnp.int32),
            rng=dropout_rng,
        )

    def epochs(state: GraphRun, batch: NodeClassification, count: int):
        return jax.lax.scan(lambda state, _: train_step(state, batch), state, None, length=count)

    def finish(state: GraphRun, batch: NodeClassification):
        state = state.replace(train_state=state.train_state.replace(params=stopper.final_params(state.stopper, state.params)))
        return state, dict(evaluate(logits_of(state.params, batch), batch), epochs=state.epochs)

    def init(rng: jax.Array) -> GraphRun:
        return start(rng, jax.lax.optimization_barrier(data))

    def run_chunk(state: GraphRun, count: int = num_epochs):
        return epochs(state, jax.lax.optimization_barrier(data), count)

    def evaluate_state(state: GraphRun) -> dict[str, jax.Array]:
        return finish(state, jax.lax.optimization_barrier(data))[1]

    def train(rng: jax.Array) -> tuple[GraphRun, dict[str, Any]]:
        batch = jax.lax.optimization_barrier(data)
        state, per_epoch = epochs(start(rng, batch), batch, num_epochs)
        state, final = finish(state, batch)
        return state, {"epoch": per_epoch, "final": final}

    return GraphTrainer(model=model, data=data, train_step=train_step, init=init, run_chunk=run_chunk,
                        evaluate=evaluate_state, train=train)
