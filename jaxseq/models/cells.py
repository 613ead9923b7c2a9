"""Recurrent cells written from their equations.

Every cell follows Flax's ``RNNCellBase`` contract, ``cell(carry, x_t) -> (carry, h_t)`` plus
``initialize_carry``, and splits that step into two methods so a sequence model can run fast:

- ``project_inputs(x)``: the input half of every gate, ``x W_x + b``; it does not depend on the
  previous state, so a sequence model can apply it to all time steps in one matmul before the scan
  (or, for a one-stage cell, join ``W_x`` and ``b`` to the recurrent matmul: ``input_weights``,
  ``input_joins_stage``, :func:`jaxseq.models.bptt.input_joined`);
- ``step(carry, x_proj)``: the recurrent half, the only part that stays inside the scan.

The recurrent half is written as pure static equations, so that :mod:`jaxseq.models.bptt` can run
it with hand-written backpropagation through time. A step has one or more *stages*: stage ``j``
multiplies ``a_j = stage_input(j, carry, x_proj, pre_<j)`` by the recurrent kernel ``W_j``, and
``combine(carry, x_proj, pre)`` does the elementwise rest; ``recurrent_weights()`` returns the
kernels in stage order.

Gate matmuls are fused: one ``[d, k*H]`` input kernel and one ``[H, k*H]`` recurrent kernel for the
``k`` gates, sliced in the order the class docstring gives. Parameter names:
``input_proj/{kernel,bias}`` = ``W_x`` (all gates, stacked along columns) and ``b``;
``hidden_proj/kernel`` = ``W_h``. Inputs are row vectors: ``x W`` with ``W`` of shape ``[in, out]``.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.models.bptt import step_with_weights
from jaxseq.models.initializers import gate_bias, stacked

Carry = Any


class RecurrentKernel(nn.Module):
    """A recurrent kernel ``[fan_in, num_blocks * H]`` held as its own module, so its parameter is
    named ``<name>/kernel`` (as a bias-free ``nn.Dense`` would name it), but the cell gets the matrix
    itself: the matmul happens in the cell's equations, where :mod:`jaxseq.models.bptt` can see it.

    Attributes:
      features: ``num_blocks * H``, the kernel's width.
      num_blocks: gates stacked along the columns (each initialised on its own).
      init: initialiser name (see ``INITIALIZERS``).
    """

    features: int
    num_blocks: int
    init: str

    @nn.compact
    def __call__(self, fan_in: int) -> jax.Array:
        """The kernel ``[fan_in, features]`` (created on first use)."""
        return self.param("kernel", stacked(self.init, self.num_blocks), (fan_in, self.features), jnp.float32)


class InputProjection(nn.Module):
    """The input kernel ``W_x: [d, num_blocks * H]`` and bias ``b: [num_blocks * H]`` of a cell, held as
    a module named ``input_proj`` (so the parameters are ``input_proj/{kernel,bias}``, as an
    ``nn.Dense`` would name them). Like :class:`RecurrentKernel` it hands the cell the arrays, not a
    product: the cell either applies them to every time step at once (``x W_x + b``) or joins them
    to its recurrent matmul (see :func:`jaxseq.models.sequence.scan_cell`).

    Attributes:
      features: ``num_blocks * H``.
      num_blocks: gates stacked along the columns (each initialised on its own).
      init: kernel initialiser name (see ``INITIALIZERS``).
      bias_init: bias initialiser.
    """

    features: int
    num_blocks: int
    init: str
    bias_init: Any = nn.initializers.zeros

    @nn.compact
    def __call__(self, fan_in: int) -> tuple[jax.Array, jax.Array]:
        """``(W_x: [fan_in, features], b: [features])`` (created on first use)."""
        kernel = self.param("kernel", stacked(self.init, self.num_blocks), (fan_in, self.features), jnp.float32)
        return kernel, self.param("bias", self.bias_init, (self.features,), jnp.float32)


class RecurrentCell(nn.RNNCellBase):
    """Base class: shared fields and the ``__call__`` that chains projection and step.

    Attributes:
      hidden_size: ``H``, the width of the hidden state.
      input_init: initialiser name for input kernels (see ``INITIALIZERS``).
      recurrent_init: initialiser name for recurrent kernels.
    """

    hidden_size: int
    input_init: str = "xavier"
    recurrent_init: str = "orthogonal"
    num_gates = 1  # k: column blocks of the fused kernels
    # True when the cell has one stage whose kernel spans every gate column (``W_h: [H, k*H]``): then
    # the input projection can join that matmul, ``[x_t, 1, h] @ [W_x; b; W_h]`` (bptt.input_joined)
    input_joins_stage = False

    def _input_dense(self, bias_init=nn.initializers.zeros) -> InputProjection:
        return InputProjection(self.num_gates * self.hidden_size, self.num_gates, self.input_init, bias_init, name="input_proj")

    def _hidden_kernel(self, num_blocks: int, name: str = "hidden_proj") -> RecurrentKernel:
        return RecurrentKernel(num_blocks * self.hidden_size, num_blocks, self.recurrent_init, name=name)

    def project_inputs(self, x: jax.Array) -> jax.Array:
        """``[..., d] -> [..., k*H]``: the input part ``x W_x + b`` of every gate."""
        kernel, bias = self.input_weights(x.shape[-1])
        return x @ kernel + bias

    def input_weights(self, fan_in: int) -> tuple[jax.Array, jax.Array]:
        """``(W_x: [fan_in, k*H], b: [k*H])``, the input kernel and bias of every gate."""
        return self.input_proj(fan_in)

    def __call__(self, carry: Carry, x: jax.Array) -> tuple[Carry, jax.Array]:
        """One time step from a raw input ``x: [batch, d]``; returns ``(carry, h: [batch, H])``."""
        return self.step(carry, self.project_inputs(x))

    def recurrent_weights(self) -> tuple[jax.Array, ...]:
        """The recurrent kernels ``(W_0, ...)`` in stage order: ``(hidden_proj,)`` unless a cell says otherwise."""
        return (self.hidden_proj(self.hidden_size),)

    def step(self, carry: Carry, x_proj: jax.Array) -> tuple[Carry, jax.Array]:
        """The recurrent half of a step: ``x_proj: [batch, k*H]`` -> ``(carry_t, h_t: [batch, H])``."""
        carry, h, _ = step_with_weights(type(self), self.recurrent_weights(), carry, x_proj)
        return carry, h

    @staticmethod
    def stage_input(stage: int, carry: Carry, x_proj: jax.Array, pres: tuple) -> jax.Array:
        """``a_stage [batch, in]``, the matrix the stage's kernel multiplies: ``h_{t-1}`` by default.

        Elementwise and ``[..., features]``-shaped: the backward pass of :mod:`jaxseq.models.bptt`
        calls it once on ``[time, batch, ...]`` stacks to rebuild every step's input.
        """
        return RecurrentCell.hidden(carry)

    @staticmethod
    def combine(carry: Carry, x_proj: jax.Array, pres: tuple) -> tuple[Carry, jax.Array]:
        """The elementwise rest of a step from ``pres = (a_0 W_0, ...)``: ``(carry_t, h_t)``.

        ``h_t`` must be ``hidden(carry_t)``: the hand-written backward pass of
        :mod:`jaxseq.models.bptt` stores only the carries and reads the outputs back from them.
        """
        raise NotImplementedError

    @staticmethod
    def hidden(carry: Carry) -> jax.Array:
        """The hidden state ``h`` inside a carry."""
        return carry

    @staticmethod
    def with_hidden(carry: Carry, h: jax.Array) -> Carry:
        """The carry with its hidden state replaced by ``h``."""
        return h

    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Carry:
        """Zero state for inputs of shape ``[batch, d]``: ``h: [batch, H]``."""
        return jnp.zeros(input_shape[:-1] + (self.hidden_size,))

    @property
    def num_feature_axes(self) -> int:
        """Inputs have one feature axis (the last): ``[..., d]``."""
        return 1


class RNNCell(RecurrentCell):
    """Vanilla (Elman) RNN: ``h_t = tanh(x_t W_hx + h_{t-1} W_hh + b_h)``.

    ``input_proj`` holds ``W_hx: [d, H]`` and ``b_h``; ``hidden_proj`` holds ``W_hh: [H, H]``.
    """

    num_gates = 1
    input_joins_stage = True

    def setup(self):
        self.input_proj = self._input_dense()
        self.hidden_proj = self._hidden_kernel(1)

    @staticmethod
    def combine(carry, x_proj, pres):
        """``carry = h: [batch, H]``, ``x_proj: [batch, H]``, ``pres = (h W_hh,)`` -> ``(h_t, h_t)``."""
        h = jnp.tanh(x_proj + pres[0])
        return h, h


class LSTMCell(RecurrentCell):
    """LSTM without peepholes. Gates in column order ``g, i, f, o``::

        g = tanh(x W_gx + h W_gh + b_g)     candidate
        i = σ(x W_ix + h W_ih + b_i)        input gate
        f = σ(x W_fx + h W_fh + b_f)        forget gate, b_f initialised to ``forget_bias``
        o = σ(x W_ox + h W_oh + b_o)        output gate
        c_t = g ⊙ i + c_{t-1} ⊙ f
        h_t = tanh(c_t) ⊙ o

    The carry is ``(c, h)``, each ``[batch, H]``. With ``forget_bias=0`` this is the same function as
    Flax's ``nn.LSTMCell`` given the same weights.

    Attributes:
      forget_bias: initial value of ``b_f`` (1.0 by default; 0.0 reproduces the classic failure
        to remember over long sequences).
    """

    forget_bias: float = 1.0
    num_gates = 4
    input_joins_stage = True

    def setup(self):
        self.input_proj = self._input_dense(bias_init=gate_bias(4, {2: self.forget_bias}))
        self.hidden_proj = self._hidden_kernel(4)

    @staticmethod
    def stage_input(stage, carry, x_proj, pres):
        """``h_{t-1}``: the gates see the previous hidden state."""
        return carry[1]

    @staticmethod
    def combine(carry, x_proj, pres):
        """``carry = (c, h)``, ``x_proj: [batch, 4H]``, ``pres = (h W_h,)`` -> ``((c_t, h_t), h_t)``."""
        c, _ = carry
        g, i, f, o = jnp.split(x_proj + pres[0], 4, axis=-1)
        return LSTMCell.update_memory(c, jnp.tanh(g), nn.sigmoid(i), nn.sigmoid(f), nn.sigmoid(o))

    @staticmethod
    def update_memory(c, candidate, i, f, o):
        """``c_t = candidate ⊙ i + c_{t-1} ⊙ f``, ``h_t = tanh(c_t) ⊙ o``; returns ``((c_t, h_t), h_t)``."""
        c = candidate * i + c * f
        h = jnp.tanh(c) * o
        return (c, h), h

    @staticmethod
    def hidden(carry):
        """``h: [batch, H]`` of the carry ``(c, h)``."""
        return carry[1]

    @staticmethod
    def with_hidden(carry, h):
        """The carry ``(c, h)`` with ``h`` replaced; the cell state ``c`` is kept."""
        return (carry[0], h)

    def initialize_carry(self, rng, input_shape):
        """Zero state ``(c, h)``, each ``[batch, H]``."""
        zeros = jnp.zeros(input_shape[:-1] + (self.hidden_size,))
        return (zeros, zeros)


class GRUCell(RecurrentCell):
    """Gated recurrent unit. Gates in column order ``z, r, n``::

        z = σ(x W_zx + h W_zh + b_z)              update gate
        r = σ(x W_rx + h W_rh + b_r)              reset gate
        h̃ = tanh(x W_nx + (r ⊙ h) W_nh + b_n)    candidate
        h_t = (1 - z) ⊙ h_{t-1} + z ⊙ h̃

    ``hidden_proj`` holds ``[W_zh, W_rh]: [H, 2H]``; ``candidate_proj`` holds ``W_nh: [H, H]``.
    """

    num_gates = 3

    def setup(self):
        self.input_proj = self._input_dense()
        self.hidden_proj = self._hidden_kernel(2)
        self.candidate_proj = self._hidden_kernel(1, name="candidate_proj")

    def recurrent_weights(self):
        """``(W_zr: [H, 2H], W_nh: [H, H])``: stage 0 reads ``h``, stage 1 reads ``r ⊙ h``."""
        return (self.hidden_proj(self.hidden_size), self.candidate_proj(self.hidden_size))

    @staticmethod
    def _update_and_reset_gates(x_proj, hz_hr):
        """``(z, r)``, each ``[batch, H]``, from the input part and stage 0's ``h [W_zh, W_rh]``."""
        width = hz_hr.shape[-1]
        return jnp.split(nn.sigmoid(x_proj[..., :width] + hz_hr), 2, axis=-1)

    @staticmethod
    def stage_input(stage, carry, x_proj, pres):
        """Stage 0: ``h``; stage 1: ``r ⊙ h`` (``r`` from stage 0's ``h W_rh``)."""
        return carry if stage == 0 else GRUCell._update_and_reset_gates(x_proj, pres[0])[1] * carry

    @staticmethod
    def combine(carry, x_proj, pres):
        """``carry = h: [batch, H]``, ``x_proj: [batch, 3H]``, ``pres = (h W_zr, (r ⊙ h) W_nh)`` -> ``(h_t, h_t)``."""
        h = carry
        z, _ = GRUCell._update_and_reset_gates(x_proj, pres[0])
        candidate = jnp.tanh(x_proj[..., pres[0].shape[-1]:] + pres[1])
        h = (1.0 - z) * h + z * candidate
        return h, h


class PeepholeLSTMCell(RecurrentCell):
    """LSTM whose gates look at the cell state instead of ``h``. Column order ``c, i, f, o``::

        f = σ(x W_fx + c_{t-1} W_fh + b_f)
        i = σ(x W_ix + c_{t-1} W_ih + b_i)
        o = σ(x W_ox + c_{t-1} W_oh + b_o)
        c_t = σ(x W_cx + b_c) ⊙ i + c_{t-1} ⊙ f
        h_t = tanh(c_t) ⊙ o

    ``input_proj`` holds ``[W_cx, W_ix, W_fx, W_ox]: [d, 4H]`` and biases; ``hidden_proj`` holds the
    peephole weights ``[W_ih, W_fh, W_oh]: [H, 3H]`` applied to ``c_{t-1}``. Carry ``(c, h)``.

    Attributes:
      forget_bias: initial value of ``b_f``.
    """

    forget_bias: float = 1.0
    num_gates = 4

    def setup(self):
        self.input_proj = self._input_dense(bias_init=gate_bias(4, {2: self.forget_bias}))
        self.hidden_proj = self._hidden_kernel(3)

    @staticmethod
    def stage_input(stage, carry, x_proj, pres):
        """``c_{t-1}``: the gates peek at the previous cell state."""
        return carry[0]

    @staticmethod
    def combine(carry, x_proj, pres):
        """``carry = (c, h)``, ``x_proj: [batch, 4H]``, ``pres = (c W_h,)`` -> ``((c_t, h_t), h_t)``."""
        c, _ = carry
        width = c.shape[-1]
        peepholes = jnp.pad(pres[0], [(0, 0)] * (c.ndim - 1) + [(width, 0)])  # no peephole into the c block
        candidate, i, f, o = jnp.split(nn.sigmoid(x_proj + peepholes), 4, axis=-1)
        return LSTMCell.update_memory(c, candidate, i, f, o)

    hidden = staticmethod(LSTMCell.hidden)
    with_hidden = staticmethod(LSTMCell.with_hidden)
    initialize_carry = LSTMCell.initialize_carry


CELLS = {
    "rnn": RNNCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "peephole_lstm": PeepholeLSTMCell,
}
