"""Train state and the pytree helpers shared by all trainers: masking updates, parameter norms and
counts, a batch's rows for one shard, and initialisation that stays unbatched under ``jax.vmap``."""

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
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


def count_params(params: Any) -> int:
    """The number of parameters in a pytree of arrays or shape structs."""
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))


def shard_rows(batch: Any, index: jax.Array, count: int) -> Any:
    """Rows ``[index * B/count, (index + 1) * B/count)`` of every array in ``batch`` (leading axis
    ``[B]``; ``index`` may be traced)."""

    def rows(x):
        size = x.shape[0] // count
        return jax.lax.dynamic_slice_in_dim(x, index * size, size, axis=0)

    return jax.tree.map(rows, batch)


def one_seed_at_a_time(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` unchanged, except that under ``jax.vmap`` it runs as a loop over the batch
    (``jax.lax.map``) instead of as one batched computation.

    Parameter initialisation goes through this. Orthogonal initialisers (jaxseq's recurrent
    default, and Flax's ``LSTMCell`` and ``GRUCell``) take a QR; vmapped over seeds, each becomes a
    batched LAPACK QR. With jax/jaxlib 0.10.2 on CPU, a batched QR splits its batch into tasks on
    XLA's intra-op thread pool and waits for them from a thread of that same pool, so independent
    batched QRs running at once can hold every pool thread and wait forever
    (``benchmarks/hang_reproducer.py``; benchmarks/README.md, "Multi-seed runs on CPU: hangs").
    Seed ``i`` gets the same values either way, and a run of one seed is not changed at all.

    Args:
      fn: a pure function (its arguments and outputs pytrees of arrays).
    Returns:
      ``fn`` wrapped with ``jax.custom_batching.sequential_vmap``.
    """
    return jax.custom_batching.sequential_vmap(fn)
