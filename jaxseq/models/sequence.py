"""Sequence models built on any :mod:`jaxseq.models.cells` cell.

:func:`scan_cell` is the one place a cell is run over time. It scans only what recurs, with the
hand-written backpropagation through time of :mod:`jaxseq.models.bptt`; the input projection is
either applied to all time steps in one matmul before the scan (wide inputs) or joined to the
recurrent matmul of each step (inputs no wider than the state, where that measured faster).
"""

from typing import Optional

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.models.bptt import UNROLL, input_joined, run_recurrence
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
    join_input: Optional[bool] = None,
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
      join_input: how a classic cell gets its input part ``x_t W_x + b``. False: for all time steps
        at once before the loop (a ``[time, batch, k*H]`` array). True: inside each step, joined to
        the recurrent matmul as ``[x_t, 1, h] @ [W_x; b; W_h]`` (cells with
        ``input_joins_stage``: the RNN and the LSTM). None (default): joined when the cell allows it
        and the input is no wider than the state (``d <= H``), where it measured faster
        (benchmarks/README.md). The function is the same either way, up to float rounding.
    Returns:
      ``(final_carry, hs)`` with ``hs: [batch, time, H]`` (the cell's outputs).
    """
    if isinstance(cell, LinearRecurrentCell):
        return _time_major(lambda xs, ps: cell.run(xs, carry, ps), x, reverse, perturbations)
    if carry is None:
        carry = cell.initialize_carry(jax.random.key(0), x[:, 0].shape)
    if join_input is None:
        join_input = cell.input_joins_stage and x.shape[-1] <= cell.hidden_size
    equations, weights = type(cell), cell.recurrent_weights()
    if join_input:
        kernel, bias = cell.input_weights(x.shape[-1])
        equations = input_joined(equations)
        weights = (jnp.concatenate([kernel, bias[None], weights[0]], axis=0),)

    def run(xs, ps):
        if join_input:
            xs = jnp.concatenate([xs, jnp.ones(xs.shape[:-1] + (1,), xs.dtype)], axis=-1)
        else:
            xs = cell.project_inputs(xs)
        return run_recurrence(equations, weights, carry, xs, ps, manual_bptt, unroll)

    return _time_major(run, x, reverse, perturbations)


def _time_major(run, x, reverse, perturbations):
    """``run(xs, ps) -> (carry, ys)`` on time-major (and, if ``reverse``, time-flipped) copies of
    ``x: [batch, time, d]`` and ``perturbations``; ``ys`` comes back as ``[batch, time, ...]`` in input order."""
    # time-major inside: each step then reads one contiguous [batch, d] slab
    xs = jnp.swapaxes(x, 0, 1)
    ps = None if perturbations is None else jnp.swapaxes(perturbations, 0, 1)
    if reverse:
        xs = jnp.flip(xs, axis=0)
        ps = None if ps is None else jnp.flip(ps, axis=0)
    carry, ys = run(xs, ps)
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


class ScanOptions:
    """Mixin for models with the fields ``manual_bptt``, ``unroll`` and ``join_input``."""

    def scan_options(self) -> dict:
        """The keyword arguments of :func:`scan_cell` that those fields hold."""
        return dict(manual_bptt=self.manual_bptt, unroll=self.unroll, join_input=self.join_input)


class SequenceClassifier(ScanOptions, nn.Module):
    """Classify a sequence from the last hidden state: ``p = h_T W_ph + b_p``.

    Attributes:
      cell: the recurrent cell (initial state zeros).
      num_classes: ``C``.
      vocab_size, encoding, embed_dim: see :class:`TokenEncoder`.
      manual_bptt, unroll, join_input: how the cell is scanned (see :func:`scan_cell`; results do not
        depend on them beyond float rounding).
    """

    cell: RecurrentCell
    num_classes: int
    vocab_size: int
    encoding: str = "onehot"
    embed_dim: int = 16
    manual_bptt: bool = True
    unroll: int = UNROLL
    join_input: Optional[bool] = None

    @nn.compact
    def __call__(self, tokens: jax.Array, perturbations: Optional[jax.Array] = None) -> jax.Array:
        """``tokens: [batch, time]`` ints -> logits ``[batch, C]``.

        ``perturbations``: optional ``[batch, time, H]`` added to each ``h_t`` (see :func:`scan_cell`).
        """
        x = TokenEncoder(self.vocab_size, self.encoding, self.embed_dim, name="encoder")(tokens)
        _, hs = scan_cell(self.cell, x, perturbations=perturbations, **self.scan_options())
        return nn.Dense(self.num_classes, name="head")(hs[:, -1])


class BidirectionalClassifier(ScanOptions, nn.Module):
    """Two cells read the sequence in opposite directions; the head sees both final states.

    ``p = [h_T^fwd ; h_1^bwd] W_ph + b_p`` where ``h_1^bwd`` is the backward cell's state after it
    has read the whole sequence from ``x_T`` down to ``x_1``.

    Attributes:
      forward_cell, backward_cell: two cells of the same hidden size (separate parameters).
      num_classes, vocab_size, encoding, embed_dim, manual_bptt, unroll, join_input: as in :class:`SequenceClassifier`.
    """

    forward_cell: RecurrentCell
    backward_cell: RecurrentCell
    num_classes: int
    vocab_size: int
    encoding: str = "onehot"
    embed_dim: int = 16
    manual_bptt: bool = True
    unroll: int = UNROLL
    join_input: Optional[bool] = None

    @nn.compact
    def __call__(self, tokens: jax.Array, perturbations: Optional[jax.Array] = None) -> jax.Array:
        """``tokens: [batch, time]`` -> logits ``[batch, C]``; ``perturbations`` (forward cell only)."""
        x = TokenEncoder(self.vocab_size, self.encoding, self.embed_dim, name="encoder")(tokens)
        scan = self.scan_options()
        _, hs_fwd = scan_cell(self.forward_cell, x, perturbations=perturbations, **scan)
        _, hs_bwd = scan_cell(self.backward_cell, x, reverse=True, **scan)
        last = jnp.concatenate([hs_fwd[:, -1], hs_bwd[:, 0]], axis=-1)
        return nn.Dense(self.num_classes, name="head")(last)


class StackedClassifier(ScanOptions, nn.Module):
    """``L`` recurrent layers, then ``p = h_T W_ph + b_p`` on the last layer's final output.

    Layer 0 reads the encoded input; every later layer ``l`` is a pre-norm residual block,
    ``h^l = h^{l-1} + cell_l(LayerNorm(h^{l-1}))``, so depth adds paths without blocking the one
    below. (A one-layer model is :class:`SequenceClassifier`.)

    Attributes:
      cells: the ``L`` cells, all with the same output width ``H``.
      num_classes, vocab_size, encoding, embed_dim, manual_bptt, unroll, join_input: as in :class:`SequenceClassifier`.
    """

    cells: tuple
    num_classes: int
    vocab_size: int
    encoding: str = "onehot"
    embed_dim: int = 16
    manual_bptt: bool = True
    unroll: int = UNROLL
    join_input: Optional[bool] = None

    @nn.compact
    def __call__(self, tokens: jax.Array, perturbations: Optional[jax.Array] = None) -> jax.Array:
        """``tokens: [batch, time]`` -> logits ``[batch, C]``; ``perturbations`` go to layer 0's state."""
        h = TokenEncoder(self.vocab_size, self.encoding, self.embed_dim, name="encoder")(tokens)
        scan = self.scan_options()
        for layer, cell in enumerate(self.cells):
            if layer == 0:
                _, h = scan_cell(cell, h, perturbations=perturbations, **scan)
            else:
                h = h + scan_cell(cell, nn.LayerNorm(name=f"norm_{layer}")(h), **scan)[1]
        return nn.Dense(self.num_classes, name="head")(h[:, -1])
