"""Sequence models over any Flax ``RNNCellBase`` cell.

:func:`scan_cell` is the one place a cell is run over time. Any cell runs as ``nn.scan`` over its
``__call__``, differentiated by jax. Two optional protocols let a cell run faster without changing
what it computes: a linear recurrence (:class:`jaxseq.models.parallel_scan.LinearRecurrentCell`)
runs as a parallel scan, and a cell with an entry in :data:`jaxseq.models.fast_path.FAST_PATHS`
(every built-in classic cell) runs with its input matmul hoisted out of the time loop (or joined to
the recurrent matmul) and the hand-written backpropagation through time of :mod:`jaxseq.models.bptt`.
"""

from typing import Any, Optional

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.models.bptt import UNROLL, input_joined, run_recurrence
from jaxseq.models.fast_path import staged_step
from jaxseq.models.parallel_scan import LinearRecurrentCell

ENCODINGS = ("raw", "onehot", "embed")  # how a model reads tokens; real input vectors are read as they are


def scan_cell(
    cell: nn.RNNCellBase,
    x: jax.Array,
    carry: Any = None,
    reverse: bool = False,
    perturbations: Optional[jax.Array] = None,
    *,
    manual_bptt: bool = True,
    unroll: int = UNROLL,
    join_input: Optional[bool] = None,
) -> tuple[Any, jax.Array]:
    """Run ``cell`` over a batch of sequences.

    Args:
      cell: a bound cell module (an attribute or submodule of the calling module); any
        ``nn.RNNCellBase``.
      x: inputs ``[batch, time, d]``.
      carry: initial state (``cell.initialize_carry`` if None: zeros for every built-in cell).
      reverse: run from the last time step to the first (outputs stay in input order).
      perturbations: optional ``[batch, time, P]`` added to the state after each step (and carried
        forward), ``P = probe_size(cell, d)``: the part of the carry that :func:`probe_size`
        describes. Zeros leave the function unchanged; differentiating with respect to them gives
        ``dL/dstate_t`` for every ``t`` in one backward pass.
      manual_bptt, unroll, join_input: fast-path settings, read only for a cell with a fast path
        (:mod:`jaxseq.models.fast_path`); the function is the same for every
        value up to float rounding. ``manual_bptt``: the hand-written backward pass (False: jax's
        transpose of the scan). ``unroll``: time steps per loop iteration. ``join_input``: False
        computes ``x_t W_x + b`` for all time steps before the loop; True joins it to the recurrent
        matmul, ``[x_t, 1, h] @ [W_x; b; W_h]`` (cells with ``input_joins_stage``); None joins when
        the cell allows it and ``d <= H``, where that measured faster (benchmarks/README.md).
    Returns:
      ``(final_carry, ys)`` with ``ys: [batch, time, ...]`` the cell's outputs.
    """
    if isinstance(cell, LinearRecurrentCell):
        return _time_major(lambda xs, ps: cell.run(xs, carry, ps), x, reverse, perturbations)
    if carry is None:
        carry = cell.initialize_carry(jax.random.key(0), x[:, 0].shape)
    equations = staged_step(cell)
    if equations is None:
        return _time_major(lambda xs, ps: _scan_any_cell(cell, carry, xs, ps), x, reverse, perturbations)
    if join_input is None:
        join_input = equations.input_joins_stage and x.shape[-1] <= cell.hidden_size
    weights = cell.recurrent_weights()
    kernel, bias = cell.input_weights(x.shape[-1])
    if join_input:
        equations = input_joined(equations)
        weights = (jnp.concatenate([kernel, bias[None], weights[0]], axis=0),)

    def run(xs, ps):
        if join_input:
            xs = jnp.concatenate([xs, jnp.ones(xs.shape[:-1] + (1,), xs.dtype)], axis=-1)
        else:
            xs = xs @ kernel + bias
        return run_recurrence(equations, weights, carry, xs, ps, manual_bptt, unroll)

    return _time_major(run, x, reverse, perturbations)


def names_hidden(cell: nn.RNNCellBase) -> bool:
    """Whether ``cell`` names the part of its carry that is its hidden state ``h``: static
    ``hidden(carry)`` and ``with_hidden(carry, h)`` (every built-in classic cell: see
    :class:`jaxseq.models.cells.RecurrentCell`)."""
    return callable(getattr(cell, "hidden", None)) and callable(getattr(cell, "with_hidden", None))


def probe_size(cell: nn.RNNCellBase, input_width: int) -> int:
    """``P``, the width of the perturbations :func:`scan_cell` adds to the state of ``cell`` per step.

    A linear recurrence perturbs its state (its ``probe_size``: ``2N`` real numbers for the LRU's
    complex state); a cell that names its ``h`` (:func:`names_hidden`) perturbs ``h``; any other cell
    perturbs its whole carry, every leaf's last axis side by side (``2H`` for a carry ``(c, h)``).

    Args:
      cell: a cell module, bound or not.
      input_width: ``d``, the width of one input step (some cells' carries depend on it).
    """
    if isinstance(cell, LinearRecurrentCell):
        return cell.probe_size
    carry = jax.eval_shape(lambda: cell.initialize_carry(jax.random.key(0), (1, input_width)))
    part = cell.hidden(carry) if names_hidden(cell) else carry
    return sum(leaf.shape[-1] for leaf in jax.tree.leaves(part))


def _perturb(cell, carry, y, perturbation):
    """Add ``perturbation [batch, P]`` to the probed part of ``carry`` (see :func:`probe_size`); an
    output ``y`` that is itself a probed leaf (``h`` for most cells) is moved with it."""
    part = cell.hidden(carry) if names_hidden(cell) else carry
    leaves, tree = jax.tree.flatten(part)
    moved, start = {}, 0
    for leaf in leaves:
        width = leaf.shape[-1]
        moved[id(leaf)] = leaf + perturbation[..., start : start + width].astype(leaf.dtype)
        start += width
    new_part = jax.tree.unflatten(tree, [moved[id(leaf)] for leaf in leaves])
    carry = cell.with_hidden(carry, new_part) if names_hidden(cell) else new_part
    return carry, jax.tree.map(lambda leaf: moved.get(id(leaf), leaf), y)


def _scan_any_cell(cell, carry, xs, perturbations):
    """``nn.scan`` of ``cell(carry, x_t)`` over time-major ``xs [time, batch, d]``; jax differentiates it."""

    def step(cell, carry, inputs):
        x, perturbation = inputs
        carry, y = cell(carry, x)
        if perturbation is not None:
            carry, y = _perturb(cell, carry, y, perturbation)
        return carry, y

    scan = nn.scan(step, variable_broadcast="params", split_rngs={"params": False, "dropout": True})
    return scan(cell, carry, (xs, perturbations))


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
      vocab_size: number of distinct input tokens (for ``"features"``: ``d``, the width of the
        real input vectors).
      encoding: ``"raw"`` (the token value as one float, d = 1: the classic set-up),
        ``"onehot"`` (d = vocab_size), ``"embed"`` (a learned table, d = embed_dim), or
        ``"features"``: the inputs are real vectors ``[batch, time, vocab_size]``, read as they are.
      embed_dim: width of the learned embedding.
    """

    vocab_size: int
    encoding: str = "onehot"
    embed_dim: int = 16

    @nn.nowrap
    def width(self) -> int:
        """``d``, the width of one encoded token."""
        return {"raw": 1, "onehot": self.vocab_size, "embed": self.embed_dim, "features": self.vocab_size}[self.encoding]

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        """``tokens: int [batch, time]`` (``"features"``: ``[batch, time, d]``) -> ``[batch, time, d]``."""
        if self.encoding == "raw":
            return tokens[..., None].astype(jnp.float32)
        if self.encoding == "onehot":
            return jax.nn.one_hot(tokens, self.vocab_size)
        if self.encoding == "embed":
            return nn.Embed(self.vocab_size, self.embed_dim, name="embed")(tokens)
        if self.encoding == "features":
            return tokens.astype(jnp.float32)
        raise ValueError(f"unknown encoding {self.encoding!r}; choose one of: {', '.join(ENCODINGS)}")


def read_out(head: nn.Module, hs: jax.Array, every_step: bool) -> jax.Array:
    """``head`` on the last step of ``hs [batch, time, H]`` (``[batch, C]``), or on every step
    (``every_step``: ``[batch, time, C]``)."""
    return head(hs if every_step else hs[:, -1])


class SequenceClassifier(nn.Module):
    """Classify a sequence from the last hidden state, ``p = h_T W_ph + b_p``, or answer after every
    step through the same head, ``p_t = h_t W_ph + b_p`` (``every_step``).

    Attributes:
      cell: the recurrent cell, any ``nn.RNNCellBase`` (its state starts at ``initialize_carry``).
      num_classes: ``C``.
      vocab_size, encoding, embed_dim: see :class:`TokenEncoder`.
      every_step: logits at every time step ``[batch, time, C]`` instead of the last ``[batch, C]``.
    """

    cell: nn.RNNCellBase
    num_classes: int
    vocab_size: int
    encoding: str = "onehot"
    embed_dim: int = 16
    every_step: bool = False

    @nn.compact
    def __call__(self, tokens: jax.Array, perturbations: Optional[jax.Array] = None) -> jax.Array:
        """``tokens: [batch, time]`` ints -> logits ``[batch, C]`` (``every_step``: ``[batch, time, C]``).

        ``perturbations``: optional ``[batch, time, P]`` added to each step's state (see :func:`scan_cell`).
        """
        x = TokenEncoder(self.vocab_size, self.encoding, self.embed_dim, name="encoder")(tokens)
        _, hs = scan_cell(self.cell, x, perturbations=perturbations)
        return read_out(nn.Dense(self.num_classes, name="head"), hs, self.every_step)


class BidirectionalClassifier(nn.Module):
    """Two cells read the sequence in opposite directions; the head sees both final states.

    ``p = [h_T^fwd ; h_1^bwd] W_ph + b_p`` where ``h_1^bwd`` is the backward cell's state after it
    has read the whole sequence from ``x_T`` down to ``x_1``; with ``every_step``,
    ``p_t = [h_t^fwd ; h_t^bwd] W_ph + b_p`` at every step ``t``.

    Attributes:
      forward_cell, backward_cell: two cells (separate parameters).
      num_classes, vocab_size, encoding, embed_dim, every_step: as in :class:`SequenceClassifier`.
    """

    forward_cell: nn.RNNCellBase
    backward_cell: nn.RNNCellBase
    num_classes: int
    vocab_size: int
    encoding: str = "onehot"
    embed_dim: int = 16
    every_step: bool = False

    @nn.compact
    def __call__(self, tokens: jax.Array, perturbations: Optional[jax.Array] = None) -> jax.Array:
        """``tokens: [batch, time]`` -> logits ``[batch, C]`` (``every_step``: ``[batch, time, C]``);
        ``perturbations`` (forward cell only)."""
        x = TokenEncoder(self.vocab_size, self.encoding, self.embed_dim, name="encoder")(tokens)
        _, hs_fwd = scan_cell(self.forward_cell, x, perturbations=perturbations)
        _, hs_bwd = scan_cell(self.backward_cell, x, reverse=True)
        head = nn.Dense(self.num_classes, name="head")
        if self.every_step:
            return head(jnp.concatenate([hs_fwd, hs_bwd], axis=-1))
        return head(jnp.concatenate([hs_fwd[:, -1], hs_bwd[:, 0]], axis=-1))


class StackedClassifier(nn.Module):
    """``L`` recurrent layers, then ``p = h_T W_ph + b_p`` on the last layer's final output (on every
    step's output with ``every_step``).

    Layer 0 reads the encoded input; every later layer ``l`` is a pre-norm residual block,
    ``h^l = h^{l-1} + cell_l(LayerNorm(h^{l-1}))``, so depth adds paths without blocking the one
    below. (A one-layer model is :class:`SequenceClassifier`.)

    Attributes:
      cells: the ``L`` cells, all with the same output width ``H``.
      num_classes, vocab_size, encoding, embed_dim, every_step: as in :class:`SequenceClassifier`.
    """

    cells: tuple
    num_classes: int
    vocab_size: int
    encoding: str = "onehot"
    embed_dim: int = 16
    every_step: bool = False

    @nn.compact
    def __call__(self, tokens: jax.Array, perturbations: Optional[jax.Array] = None) -> jax.Array:
        """``tokens: [batch, time]`` -> logits ``[batch, C]`` (``every_step``: ``[batch, time, C]``);
        ``perturbations`` go to layer 0's state."""
        h = TokenEncoder(self.vocab_size, self.encoding, self.embed_dim, name="encoder")(tokens)
        for layer, cell in enumerate(self.cells):
            if layer == 0:
                _, h = scan_cell(cell, h, perturbations=perturbations)
            else:
                h = h + scan_cell(cell, nn.LayerNorm(name=f"norm_{layer}")(h))[1]
        return read_out(nn.Dense(self.num_classes, name="head"), h, self.every_step)
