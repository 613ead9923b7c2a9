"""The losses every trainer reports: softmax cross-entropy and accuracy, and for the sequence tasks
their means over the steps that count (squared error for a regression task)."""

from typing import Optional

import jax
import jax.numpy as jnp
import optax

from jaxseq.data.sequences import Batch, Task


def cross_entropy(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean cross-entropy (nats) and accuracy of ``logits [..., C]`` against integer ``labels [...]``.

    Used for a sequence's class (``[batch, C]``) and for every next character (``[batch, time, V]``).
    """
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    accuracy = (jnp.argmax(logits, axis=-1) == labels).mean()
    return loss, accuracy


def step_scores(
    outputs: jax.Array, targets: jax.Array, regression: bool = False, tolerance: float = 0.0
) -> tuple[jax.Array, jax.Array]:
    """Each answer's loss and whether it is correct, both shaped like ``targets [...]``.

    Classes: ``outputs [..., C]`` logits, softmax cross-entropy, correct if the arg-max is the
    target. Regression (``outputs [..., 1]``): squared error, correct if ``|error| < tolerance``.
    """
    if regression:
        error = outputs[..., 0] - targets
        return error**2, jnp.abs(error) < tolerance
    losses = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    return losses, jnp.argmax(outputs, axis=-1) == targets


def masked_mean(values: jax.Array, mask: jax.Array, axis: Optional[int] = None) -> jax.Array:
    """The mean of ``values`` over the entries where ``mask`` is True (over ``axis`` only, if given)."""
    total = jnp.where(mask, values, 0).sum(axis=axis)
    return total / jnp.maximum(mask.sum(axis=axis), 1)


def task_loss(task: Task, outputs: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """The mean loss and accuracy of a model's ``outputs`` on a :class:`Batch` of ``task``.

    ``outputs``: ``[batch, C]`` for a ``last_step_only`` task (scored against the last step's
    targets, the only step in its mask), else ``[batch, time, C]``, averaged over the masked steps.
    """
    if task.last_step_only:
        losses, correct = step_scores(outputs, batch.targets[:, -1], task.regression, task.tolerance)
        return losses.mean(), correct.mean()
    losses, correct = step_scores(outputs, batch.targets, task.regression, task.tolerance)
    return masked_mean(losses, batch.mask), masked_mean(correct, batch.mask)


def example_losses(
    outputs: jax.Array, targets: jax.Array, mask: Optional[jax.Array] = None, regression: bool = False
) -> jax.Array:
    """Each sequence's own loss ``[batch]``.

    Without ``mask``: ``outputs [batch, C]`` against ``targets [batch]`` (one answer per sequence).
    With ``mask [batch, time]``: ``outputs [batch, time, C]`` against ``targets [batch, time]``, each
    sequence's mean over its masked steps.
    """
    losses, _ = step_scores(outputs, targets, regression)
    return losses if mask is None else masked_mean(losses, mask, axis=1)
