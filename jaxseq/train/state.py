"""Train state and the parameter bookkeeping shared by all trainers."""

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
    """Flax ``TrainState`` (``step``, ``params``, ``opt_state``, ``apply_fn``, ``tx``)."""


def where_tree(condition: jax.Array, new, old):
    """Per-leaf ``where(condition, new, old)``: keep ``old`` where an update must be masked out."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


def param_norm(params) -> jax.Array:
    """Global L2 norm of all parameters (a scalar)."""
    return optax.tree.norm(params)
