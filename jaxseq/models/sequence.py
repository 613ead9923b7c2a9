"""Sequence models built on any :mod:`jaxseq.models.cells` cell.

:func:`scan_cell` is the one place a cell is run over time: it applies the cell's input
projection to all time steps in one matmul, then scans only the recurrent step, with the
hand-written backpropagation through time of :mod:`jaxseq.models.bptt`.
"""

from typing import Optional

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.models.bptt import UNROLL, run_recurrence
from jaxseq.models.cells import RecurrentCell
from jaxseq.models.parallel_scan import LinearRecurrentCell

ENCODINGS = ("raw", "onehot", "embed")


def scan_cell(
    cell: RecurrentCell,
    x: jax.Array,
    carry=None,
    reverse: bool = False,
    perturbations: Optional[jax.Array] = None,
    manual_bptt: bool = True,
    unroll: int = UNROLL,
):
    """Run ``cell`` over a batch of sequences.

    Args:
      cell: a bound cell module (an attribute or submodule of the calling module).
      x: inputs ``[batch, time, d]``.
      carry: initial state (zeros if None).
      reverse: run from the last time step to the first (outputs stay in input order).
      perturbations: optional ``[batch, time, P]`` added to the state ``h_t`` after each step (and
        to the state carried forward; ``P = H``, or a linear cell's ``probe_size``); zeros leave the
        function unchanged, and differentiating with respect to them gives ``dL/dh_t`` for every
        ``t`` in one backward pass.
      manual_bptt: differentiate with the hand-written backward pass of :mod:`jaxseq.models.bptt`
        (weight gradients as one matmul after the loop); False uses jax's transpose of the scan.
        Both give the same gradients. (Classic cells only.)
      unroll: time steps per iteration of the compiled loop (classic cells only).
    Returns:
      ``(final_carry, hs)`` with ``hs: [batch, time, H]`` (the cell's outputs).
    """
    if isinstance(cell, LinearRecurrentCell):
        return _scan_linear(cell, x, carry, reverse, perturbations)
    if carry is None:
        carry = cell.initialize_carry(jax.random.key(0), x[:, 0].shape)
    # time-major inside: each step then reads one contiguous [batch, k*H] slab
    xs = cell.project_inputs(jnp.swapaxes(x, 0, 1))
    ps = None if perturbations is None else jnp.swapaxes(perturbations, 0, 1)
    if reverse:
        xs = jnp.flip(xs, axis=0)
        ps = None if ps is None else jnp.flip(ps, axis=0)
    carry, hs = run_recurrence(type(cell), cell.recurrent_weights(), carry, xs, ps, manual_bptt, unroll)
    if reverse:
        hs = jnp.flip(hs, axis=0)
    return carry, jnp.swapaxes(hs, 0, 1)


def _scan_linear(cell: LinearRecurrentCell, x, carry, reverse, perturbations):
    """:func:`scan_cell` for a linear recurrence: ``cell.run`` on time-major inputs."""
    xs = jnp.swapaxes(x, 0, 1)
    ps = None if perturbations is None else jnp.swapaxes(perturbations, 0, 1)
    if reverse:
        xs = jnp.flip(xs, axis=0)
        ps = None if ps is None else jnp.flip(ps, axis=0)
    carry, ys = cell.run(xs, carry, ps)
    if reverse:
        ys = jnp.flip(ys, axis=0)
    return carry, jnp.swapaxes(ys, 0, 1)


class TokenEncoder(nn.Module):
    """Map integer tokens ``[batch, time]`` to input vectors ``[batch, time, d]``.

    Attributes:
      vocab_size: number of distinct input tokens.
      encoding: ``"raw"`` (the token value as one float, d = 1: the classic set-up),
        ``"onehot"`` (d = vocab_size) or ``"embed"`` (a learned table, d = embed_dim).
      embed_dim: width of the learned embedding.
    """

    vocab_size: int
    encoding: str = "onehot"
    embed_dim: int = 16

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        if self.encoding == "raw":
            return tokens[..., None].astype(jnp.float32)
        if self.encoding == "onehot":
            return jax.nn.one_hot(tokens, self.vocab_size)
        if self.encoding == "embed":
            return nn.Embed(self.vocab_size, self.embed_dim, name="embed")(tokens)
        raise ValueError(f"unknown encoding {self.encoding!r}; choose one of: {', '.join(ENCODINGS)}")


class SequenceClassifier(nn.Module):
    """Classify a sequence from the last hidden state: ``p = h_T W_ph + b_p``.

    Attributes:
      cell: the recurrent cell (initial state zeros).
      num_classes: ``C``.
      vocab_size, encoding, embed_dim: see :class:`TokenEncoder`.
      manual_bptt, unroll: how the cell is scanned (see :func:`scan_cell`; results do not depend on it).
    """

    cell: RecurrentCell
    num_classes: int
    vocab_size: int
    encoding: str = "onehot"
    embed_dim: int = 16
    manual_bptt: bool = True
    unroll: int = UNROLL

    @nn.compact
    def __call__(self, tokens: jax.Array, perturbations: Optional[jax.Array] = None) -> jax.Array:
        """``tokens: [batch, time]`` ints -> logits ``[batch, C]``.

        ``perturbations``: optional ``[batch, time, H]`` added to each ``h_t`` (see :func:`scan_cell`).
        """
        x = TokenEncoder(self.vocab_size, self.encoding, self.embed_dim, name="encoder")(tokens)
        _, hs = scan_cell(self.cell, x, perturbations=perturbations, manual_bptt=self.manual_bptt, unroll=self.unroll)
        return nn.Dense(self.num_classes, name="head")(hs[:, -1])


class BidirectionalClassifier(nn.Module):
    """Two cells read the sequence in opposite directions; the head sees both final states.

    ``p = [h_T^fwd ; h_1^bwd] W_ph + b_p`` where ``h_1^bwd`` is the backward cell's state after it
    has read the whole sequence from ``x_T`` down to ``x_1``.

    Attributes:
      forward_cell, backward_cell: two cells of the same hidden size (separate parameters).
      num_classes, vocab_size, encoding, embed_dim, manual_bptt, unroll: as in :class:`SequenceClassifier`.
    """

    forward_cell: RecurrentCell
    backward_cell: RecurrentCell
    num_classes: int
    vocab_size: int
    encoding: str = "onehot"
    embed_dim: int = 16
    manual_bptt: bool = True
    unroll: int = UNROLL

    @nn.compact
    def __call__(self, tokens: jax.Array, perturbations: Optional[jax.Array] = None) -> jax.Array:
        """``tokens: [batch, time]`` -> logits ``[batch, C]``; ``perturbations`` (forward cell only)."""
        x = TokenEncoder(self.vocab_size, self.encoding, self.embed_dim, name="encoder")(tokens)
        scan = dict(manual_bptt=self.manual_bptt, unroll=self.unroll)
        _, hs_fwd = scan_cell(self.forward_cell, x, perturbations=perturbations, **scan)
        _, hs_bwd = scan_cell(self.backward_cell, x, reverse=True, **scan)
        last = jnp.concatenate([hs_fwd[:, -1], hs_bwd[:, 0]], axis=-1)
        return nn.Dense(self.num_classes, name="head")(last)


class StackedClassifier(nn.Module):
    """``L`` recurrent layers, then ``p = h_T W_ph + b_p`` on the last layer's final output.

    Layer 0 reads the encoded input; every later layer ``l`` is a pre-norm residual block,
    ``h^l = h^{l-1} + cell_l(LayerNorm(h^{l-1}))``, so depth adds paths without blocking the one
    below. (A one-layer model is :class:`SequenceClassifier`.)

    Attributes:
      cells: the ``L`` cells, all with the same output width ``H``.
      num_classes, vocab_size, encoding, embed_dim, manual_bptt, unroll: as in :class:`SequenceClassifier`.
    """

    cells: tuple
    num_classes: int
    vocab_size: int
    encoding: str = "onehot"
    embed_dim: int = 16
    manual_bptt: bool = True
    unroll: int = UNROLL

    @nn.compact
    def __call__(self, tokens: jax.Array, perturbations: Optional[jax.Array] = None) -> jax.Array:
        """``tokens: [batch, time]`` -> logits ``[batch, C]``; ``perturbations`` go to layer 0's state."""
        h = TokenEncoder(self.vocab_size, self.encoding, self.embed_dim, name="encoder")(tokens)
        scan = dict(manual_bptt=self.manual_bptt, unroll=self.unroll)
        for layer, cell in enumerate(self.cells):
            if layer == 0:
                _, h = scan_cell(cell, h, perturbations=perturbations, **scan)
            else:
                h = h + scan_cell(cell, nn.LayerNorm(name=f"norm_{layer}")(h), **scan)[1]
        return nn.Dense(self.num_classes, name="head")(h[:, -1])
