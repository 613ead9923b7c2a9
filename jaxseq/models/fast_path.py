"""The optional fast path of the built-in classic cells, attached from outside the cells.

A cell in :mod:`jaxseq.models.cells` is only its equations (``__call__``). For speed,
:func:`jaxseq.models.sequence.scan_cell` runs a cell whose class has an entry in :data:`FAST_PATHS`
with its input matmul hoisted out of the time loop (or joined to the recurrent matmul) and the
hand-written backpropagation through time of :mod:`jaxseq.models.bptt`. The entry is a class of
static pieces, :class:`StagedStep`: the same step split into *stages*, each one matmul by a
recurrent kernel, and an elementwise rest, reusing the cell's own elementwise helpers
(``LSTMCell.gates``, ``GRUCell.new_state``, ...), with the weights read from the bound cell
(``input_weights``, ``recurrent_weights``). tests/test_cells.py holds both ways equal for every
cell, tests/test_bptt.py the hand-written gradients equal to jax's.

Look-up is by exact class: a subclass of a built-in cell (which may change ``__call__``) runs
through ``nn.scan`` and jax's autodiff until it is given an entry of its own,
``FAST_PATHS[MyCell] = MySteps``.
"""

from typing import Any, Optional

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.models.cells import GRUCell, LSTMCell, PeepholeLSTMCell, RNNCell

Carry = Any


class StagedStep:
    """What a cell's step looks like to :func:`jaxseq.models.bptt.run_recurrence` (all static):

    - ``stage_input(j, carry, x_proj, pres)``: the matrix stage ``j``'s recurrent kernel multiplies
      (``pres``: the outputs ``a_i @ W_i`` of the stages before it);
    - ``combine(carry, x_proj, pres) -> (carry_t, h_t)``: the elementwise rest of the step, with
      ``h_t == hidden(carry_t)``;
    - ``hidden(carry)`` and ``with_hidden(carry, h)``: where ``h`` sits in the carry (each step class
      binds its cell's own);
    - ``input_joins_stage``: True when one stage's kernel spans every gate column, so the input
      projection can join that matmul (:func:`jaxseq.models.bptt.input_joined`).
    """

    input_joins_stage = False

    @staticmethod
    def stage_input(stage: int, carry: Carry, x_proj: jax.Array, pres: tuple) -> jax.Array:
        raise NotImplementedError

    @staticmethod
    def combine(carry: Carry, x_proj: jax.Array, pres: tuple) -> tuple[Carry, jax.Array]:
        raise NotImplementedError


class RNNSteps(StagedStep):
    """:class:`~jaxseq.models.cells.RNNCell`: one stage, ``h_{t-1} W_hh``."""

    input_joins_stage = True
    hidden = staticmethod(RNNCell.hidden)
    with_hidden = staticmethod(RNNCell.with_hidden)

    @staticmethod
    def stage_input(stage, carry, x_proj, pres):
        """``h_{t-1}``."""
        return carry

    @staticmethod
    def combine(carry, x_proj, pres):
        """``x_proj = x W_hx + b_h``, ``pres = (h W_hh,)`` -> ``(h_t, h_t)``."""
        h = jnp.tanh(x_proj + pres[0])
        return h, h


class LSTMSteps(StagedStep):
    """:class:`~jaxseq.models.cells.LSTMCell`: one stage, ``h_{t-1} W_h`` for all four gates."""

    input_joins_stage = True
    hidden = staticmethod(LSTMCell.hidden)
    with_hidden = staticmethod(LSTMCell.with_hidden)

    @staticmethod
    def stage_input(stage, carry, x_proj, pres):
        """``h_{t-1}``: the gates see the previous hidden state."""
        return carry[1]

    @staticmethod
    def combine(carry, x_proj, pres):
        """``carry = (c, h)``, ``x_proj: [batch, 4H]``, ``pres = (h W_h,)`` -> ``((c_t, h_t), h_t)``."""
        return LSTMCell.gates(carry[0], x_proj + pres[0])


class GRUSteps(StagedStep):
    """:class:`~jaxseq.models.cells.GRUCell`: stage 0 ``h [W_zh, W_rh]``, stage 1 ``(r ⊙ h) W_nh``."""

    hidden = staticmethod(GRUCell.hidden)
    with_hidden = staticmethod(GRUCell.with_hidden)

    @staticmethod
    def stage_input(stage, carry, x_proj, pres):
        """Stage 0: ``h``; stage 1: ``r ⊙ h`` (``r`` from stage 0's ``h W_rh``)."""
        return carry if stage == 0 else GRUCell.update_and_reset_gates(x_proj, pres[0])[1] * carry

    @staticmethod
    def combine(carry, x_proj, pres):
        """``carry = h: [batch, H]``, ``x_proj: [batch, 3H]``, ``pres = (h W_zr, (r ⊙ h) W_nh)`` -> ``(h_t, h_t)``."""
        z, _ = GRUCell.update_and_reset_gates(x_proj, pres[0])
        return GRUCell.new_state(carry, z, x_proj, pres[1])


class PeepholeLSTMSteps(StagedStep):
    """:class:`~jaxseq.models.cells.PeepholeLSTMCell`: one stage, ``c_{t-1} W_h`` (the peepholes)."""

    hidden = staticmethod(LSTMCell.hidden)
    with_hidden = staticmethod(LSTMCell.with_hidden)

    @staticmethod
    def stage_input(stage, carry, x_proj, pres):
        """``c_{t-1}``: the gates peek at the previous cell state."""
        return carry[0]

    @staticmethod
    def combine(carry, x_proj, pres):
        """``carry = (c, h)``, ``x_proj: [batch, 4H]``, ``pres = (c W_h,)`` -> ``((c_t, h_t), h_t)``."""
        return PeepholeLSTMCell.gates(carry[0], x_proj, pres[0])


# cell class -> its staged step; the only table the fast path reads
FAST_PATHS: dict[type, type[StagedStep]] = {
    RNNCell: RNNSteps,
    LSTMCell: LSTMSteps,
    GRUCell: GRUSteps,
    PeepholeLSTMCell: PeepholeLSTMSteps,
}


def staged_step(cell: nn.RNNCellBase) -> Optional[type[StagedStep]]:
    """The :class:`StagedStep` of ``cell``'s exact class, or None (the cell runs through ``nn.scan``).

    Args:
      cell: a cell module (bound or not) or a cell class.
    """
    return FAST_PATHS.get(cell if isinstance(cell, type) else type(cell))
