"""The textbook picture of pathological curvature: optimisers in a 2-D ill-conditioned ravine.

The objective is the quadratic ``f(w) = (w_0^2 + kappa * w_1^2) / 2``: gentle along ``w_0``,
``kappa`` times steeper across the ravine along ``w_1``. Plain gradient descent must keep its step
below ``2 / kappa`` to stay stable across the ravine, and therefore crawls along it; momentum
accumulates the consistent along-ravine component; RMSprop and Adam divide by a running gradient
scale per coordinate, which undoes the axis-aligned ill-conditioning.
"""

import functools

import jax
import jax.numpy as jnp
import optax


def ravine_loss(w: jax.Array, condition: float = 25.0) -> jax.Array:
    """``(w_0^2 + condition * w_1^2) / 2`` for ``w: [..., 2]``; the minimum is 0 at the origin."""
    return 0.5 * (w[..., 0] ** 2 + condition * w[..., 1] ** 2)


@functools.partial(jax.jit, static_argnames=("tx", "loss_fn", "num_steps"))
def optimizer_trajectory(tx: optax.GradientTransformation, loss_fn, start: jax.Array, num_steps: int) -> jax.Array:
    """Follow ``tx`` on ``loss_fn`` from ``start: [d]``; returns the iterates ``[num_steps + 1, d]``.

    The update loop is one ``lax.scan``; row 0 is ``start``.
    """

    def one_step(carry, _):
        w, opt_state = carry
        updates, opt_state = tx.update(jax.grad(loss_fn)(w), opt_state, w)
        w = optax.apply_updates(w, updates)
        return (w, opt_state), w

    start = jnp.asarray(start, jnp.float32)
    _, path = jax.lax.scan(one_step, (start, tx.init(start)), None, length=num_steps)
    return jnp.concatenate([start[None], path], axis=0)
