"""How far back does the loss reach? Per-time-step gradient norms ``||dL/dh_t||``.

A sequence classifier from :func:`jaxseq.models.registry.make_classifier` accepts
``perturbations [batch, time, P]`` that are added to the state after every step inside the scan
(and carried forward; :func:`jaxseq.models.sequence.scan_cell`). At zero perturbations the model
is unchanged, and the gradient of the loss with respect to them is ``dL/dstate_t`` for all ``t``
at once: one forward and one backward pass, no matter how long the sequence. What the state is
(:func:`jaxseq.models.sequence.probe_size`): ``h_t`` for a cell that names it (every built-in classic
cell), the LRU's complex state (real and imaginary parts, ``2N`` wide), and for any other cell its
whole carry (for a carry ``(c, h)`` the norm is ``||(dL/dc_t, dL/dh_t)||``). Bidirectional models
are probed in their forward cell, stacked models in their first layer.

Per example ``b`` we differentiate that example's own loss ``l_b`` (softmax cross-entropy, or
squared error for a regression task; for a task that answers at several steps, the mean over the
example's scored steps: :func:`jaxseq.train.losses.example_losses`), so
``norms[b, t] = ||d l_b / d h_t^b||`` does not depend on the batch size; the batch mean of these is
what :func:`hidden_grad_norms` returns by default.
"""

import functools

from typing import Optional

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.models.sequence import TokenEncoder, probe_size
from jaxseq.train.losses import example_losses
from jaxseq.runner.seeds import map_over_seeds


def hidden_size_of(model: nn.Module) -> int:
    """``P``, the width of the state :func:`hidden_grad_norms` perturbs (see :func:`probe_size`):
    ``H`` for a built-in classic cell, ``2N`` for the LRU, the whole carry's width for another cell."""
    cells = getattr(model, "cells", None)
    for cell in (getattr(model, "cell", None), getattr(model, "forward_cell", None), cells[0] if cells else None):
        if cell is not None:
            width = TokenEncoder(model.vocab_size, model.encoding, model.embed_dim).width()
            return probe_size(cell, width)
    raise ValueError(f"{type(model).__name__} has no recurrent cell to probe (expected 'cell', 'forward_cell' or 'cells')")


def hidden_grad_norms(
    model: nn.Module,
    params,
    tokens: jax.Array,
    labels: jax.Array,
    per_example: bool = False,
    mask: Optional[jax.Array] = None,
    regression: bool = False,
) -> jax.Array:
    """``||dl_b/dh_t||`` for every time step, from one backward pass.

    Args:
      model: a sequence classifier whose ``__call__(tokens, perturbations)`` adds
        ``perturbations [batch, time, P]`` to the states (every model :func:`make_classifier` builds,
        with any cell).
      params: the model's ``params`` collection (not wrapped in ``{"params": ...}``).
      tokens: inputs ``[batch, time]`` (or real inputs ``[batch, time, features]``).
      labels: the answers, ``[batch]`` (one per sequence, read out after the last step), or
        ``[batch, time]`` with ``mask`` (a model that answers after every step).
      per_example: return ``[batch, time]`` instead of the batch mean ``[time]``.
      mask: ``[batch, time]``, the steps whose answers count (a task that is not ``last_step_only``).
      regression: the labels are real numbers, scored by squared error.
    Returns:
      ``[time]`` (mean over the batch of each example's norm) or ``[batch, time]``; index ``t`` is
      the hidden state after reading input ``t`` (the last one feeds the classifier head).

    Pure and jit-able; to probe several seeds at once map it over stacked ``params``, see
    :func:`seed_grad_norms_fn`.
    """
    answers = tokens.shape[:1] if mask is None else tokens.shape[:2]
    if tokens.ndim not in (2, 3) or labels.shape != answers or (mask is not None and mask.shape != answers):
        raise ValueError(
            f"expected tokens [batch, time] and labels [batch] (or labels and mask [batch, time]), got "
            f"{tokens.shape}, {labels.shape} and {None if mask is None else mask.shape}"
        )
    zeros = jnp.zeros(tokens.shape[:2] + (hidden_size_of(model),))

    def summed_loss(perturbations):
        outputs = model.apply({"params": params}, tokens, perturbations=perturbations)
        # a sum, not a mean: the gradient at example b is then that example's own d l_b / d h_t^b
        return example_losses(outputs, labels, mask, regression).sum()

    norms = jnp.linalg.norm(jax.grad(summed_loss)(zeros), axis=-1)
    return norms if per_example else norms.mean(axis=0)


def seed_grad_norms_fn(model: nn.Module, per_example: bool = False, strategy: str = "auto", regression: bool = False):
    """:func:`hidden_grad_norms` mapped over a leading seed axis of the parameters, and jitted.

    ``strategy`` is a ``runner.seed_strategy`` value (:func:`jaxseq.runner.seeds.map_over_seeds`;
    ``threads`` probes the seeds under one ``lax.map``): the same numbers whatever it is.
    Returns ``probe(stacked_params, tokens, labels, mask=None) -> [seed, time]`` (``[seed, batch,
    time]`` with ``per_example``; ``mask`` and ``regression`` as in :func:`hidden_grad_norms`); every
    seed sees the same batch. Build it once and call it many times: it compiles once per input shape.
    """
    probe = functools.partial(hidden_grad_norms, model, per_example=per_example, regression=regression)

    def probe_seeds(stacked, tokens, labels, mask=None):
        return map_over_seeds(lambda params: probe(params, tokens, labels, mask=mask), strategy)(stacked)

    return jax.jit(probe_seeds)
