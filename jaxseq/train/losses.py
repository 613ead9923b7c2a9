"""The classification loss every trainer reports: mean softmax cross-entropy and accuracy."""

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean cross-entropy (nats) and accuracy of ``logits [..., C]`` against integer ``labels [...]``.

    Used for a sequence's class (``[batch, C]``) and for every next character (``[batch, time, V]``).
    """
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    accuracy = (jnp.argmax(logits, axis=-1) == labels).mean()
    return loss, accuracy
