"""Recurrent cells written from their equations.

Every cell follows Flax's ``RNNCellBase`` contract, ``cell(carry, x_t) -> (carry, h_t)`` plus
``initialize_carry``, and splits that step into two methods so a sequence model can run fast:

- ``project_inputs(x)``: the input half of every gate, ``x W_x + b``; it does not depend on the
  previous state, so a sequence model applies it to all time steps in one matmul before the scan;
- ``step(carry, x_proj)``: the recurrent half, the only part that stays inside the scan.

Gate matmuls are fused: one ``[d, k*H]`` input kernel and one ``[H, k*H]`` recurrent kernel for the
``k`` gates, sliced in the order the class docstring gives. Parameter names:
``input_proj/{kernel,bias}`` = ``W_x`` (all gates, stacked along columns) and ``b``;
``hidden_proj/kernel`` = ``W_h``. Inputs are row vectors: ``x W`` with ``W`` of shape ``[in, out]``.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.models.initializers import gate_bias, stacked

Carry = Any


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

    def _input_dense(self, bias_init=nn.initializers.zeros) -> nn.Dense:
        return nn.Dense(
            self.num_gates * self.hidden_size,
            kernel_init=stacked(self.input_init, self.num_gates),
            bias_init=bias_init,
            name="input_proj",
        )

    def _hidden_dense(self, num_blocks: int, name: str = "hidden_proj") -> nn.Dense:
        return nn.Dense(
            num_blocks * self.hidden_size,
            use_bias=False,
            kernel_init=stacked(self.recurrent_init, num_blocks),
            name=name,
        )

    def project_inputs(self, x: jax.Array) -> jax.Array:
        """``[..., d] -> [..., k*H]``: the input part ``x W_x + b`` of every gate."""
        return self.input_proj(x)

    def __call__(self, carry: Carry, x: jax.Array) -> tuple[Carry, jax.Array]:
        """One time step from a raw input ``x: [batch, d]``; returns ``(carry, h: [batch, H])``."""
        return self.step(carry, self.project_inputs(x))

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

    def setup(self):
        self.input_proj = self._input_dense()
        self.hidden_proj = self._hidden_dense(1)

    def step(self, carry: jax.Array, x_proj: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``carry = h: [batch, H]``, ``x_proj: [batch, H]`` -> ``(h_t, h_t)``."""
        h = jnp.tanh(x_proj + self.hidden_proj(carry))
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

    def setup(self):
        self.input_proj = self._input_dense(bias_init=gate_bias(4, {2: self.forget_bias}))
        self.hidden_proj = self._hidden_dense(4)

    def step(self, carry, x_proj):
        """``carry = (c, h)``, ``x_proj: [batch, 4H]`` -> ``((c_t, h_t), h_t)``."""
        c, h = carry
        g, i, f, o = jnp.split(x_proj + self.hidden_proj(h), 4, axis=-1)
        c = jnp.tanh(g) * nn.sigmoid(i) + c * nn.sigmoid(f)
        h = jnp.tanh(c) * nn.sigmoid(o)
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
        self.hidden_proj = self._hidden_dense(2)
        self.candidate_proj = self._hidden_dense(1, name="candidate_proj")

    def step(self, carry, x_proj):
        """``carry = h: [batch, H]``, ``x_proj: [batch, 3H]`` -> ``(h_t, h_t)``."""
        h = carry
        xz, xr, xn = jnp.split(x_proj, 3, axis=-1)
        hz, hr = jnp.split(self.hidden_proj(h), 2, axis=-1)
        z = nn.sigmoid(xz + hz)
        r = nn.sigmoid(xr + hr)
        candidate = jnp.tanh(xn + self.candidate_proj(r * h))
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
        self.hidden_proj = self._hidden_dense(3)

    def step(self, carry, x_proj):
        """``carry = (c, h)``, ``x_proj: [batch, 4H]`` -> ``((c_t, h_t), h_t)``."""
        c, _ = carry
        xc, xi, xf, xo = jnp.split(x_proj, 4, axis=-1)
        ci, cf, co = jnp.split(self.hidden_proj(c), 3, axis=-1)
        i, f, o = nn.sigmoid(xi + ci), nn.sigmoid(xf + cf), nn.sigmoid(xo + co)
        c = nn.sigmoid(xc) * i + c * f
        h = jnp.tanh(c) * o
        return (c, h), h

    hidden = staticmethod(LSTMCell.hidden)
    with_hidden = staticmethod(LSTMCell.with_hidden)
    initialize_carry = LSTMCell.initialize_carry


CELLS = {
    "rnn": RNNCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "peephole_lstm": PeepholeLSTMCell,
}
