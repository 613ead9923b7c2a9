"""Recurrent cells written from their equations.

Every cell is a plain Flax ``RNNCellBase``: ``cell(carry, x_t) -> (carry_t, h_t)`` is its equations,
and ``initialize_carry`` gives the zero state. Any other ``RNNCellBase`` (Flax's own, or one of
yours) runs through the same sequence models, trainers and analyses.

Gate matmuls are fused: one ``[d, k*H]`` input kernel and one ``[H, k*H]`` recurrent kernel for the
``k`` gates, sliced in the order the class docstring gives. Parameter names:
``input_proj/{kernel,bias}`` = ``W_x`` (all gates, stacked along columns) and ``b``;
``hidden_proj/kernel`` = ``W_h``. Inputs are row vectors: ``x W`` with ``W`` of shape ``[in, out]``.

A cell is its equations only. The optional fast path (the input matmul hoisted out of the time
loop, a hand-written backward pass) is attached from outside, by class: :mod:`jaxseq.models.fast_path`.
"""

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.models.fields import is_real, require
from jaxseq.models.initializers import check_gate_fields, check_init_names, gate_bias_init, stacked

Carry = Any


class RecurrentKernel(nn.Module):
    """A recurrent kernel ``[fan_in, num_blocks * H]`` held as its own module, so its parameter is
    named ``<name>/kernel`` (as a bias-free ``nn.Dense`` would name it), while the cell gets the
    matrix itself and writes the matmul in its own equations.

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
    a module named ``input_proj`` (parameters ``input_proj/{kernel,bias}``, as an ``nn.Dense`` would
    name them). Like :class:`RecurrentKernel` it hands the cell the arrays, not a product.

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
    """Base class: shared fields, the zero state, and the cell's weights (what the fast path reads too).

    Attributes:
      hidden_size: ``H``, the width of the hidden state.
      input_init: initialiser name for input kernels (see ``INITIALIZERS``).
      recurrent_init: initialiser name for recurrent kernels.
    """

    hidden_size: int
    input_init: str = "xavier"
    recurrent_init: str = "orthogonal"
    num_gates = 1  # k: column blocks of the fused kernels
    # constructor field -> the config.model field it is read from (jaxseq.models.fields)
    config_fields: ClassVar[dict[str, str]] = {"input_init": "input_init", "recurrent_init": "recurrent_init"}

    def __post_init__(self):
        check_init_names(self, "input_init", "recurrent_init")
        super().__post_init__()

    def _input_dense(self, bias_init=nn.initializers.zeros) -> InputProjection:
        return InputProjection(self.num_gates * self.hidden_size, self.num_gates, self.input_init, bias_init, name="input_proj")

    def _hidden_kernel(self, num_blocks: int, name: str = "hidden_proj") -> RecurrentKernel:
        return RecurrentKernel(num_blocks * self.hidden_size, num_blocks, self.recurrent_init, name=name)

    def input_weights(self, fan_in: int) -> tuple[jax.Array, jax.Array]:
        """``(W_x: [fan_in, k*H], b: [k*H])``, the input kernel and bias of every gate."""
        return self.input_proj(fan_in)

    def recurrent_weights(self) -> tuple[jax.Array, ...]:
        """The recurrent kernels ``(W_0, ...)`` in stage order: ``(hidden_proj,)`` unless a cell says otherwise."""
        return (self.hidden_proj(self.hidden_size),)

    def gate_inputs(self, x: jax.Array) -> jax.Array:
        """``x [..., d] -> x W_x + b [..., k*H]``: the input part of every gate."""
        kernel, bias = self.input_weights(x.shape[-1])
        return x @ kernel + bias

    @nn.nowrap
    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Carry:
        """Zero state for inputs of shape ``[batch, d]``: ``h: [batch, H]``."""
        return jnp.zeros(input_shape[:-1] + (self.hidden_size,))

    @property
    def num_feature_axes(self) -> int:
        """Inputs have one feature axis (the last): ``[..., d]``."""
        return 1

    @staticmethod
    def hidden(carry: Carry) -> jax.Array:
        """``h: [batch, H]`` of the carry: the carry itself (a cell with a cell state says otherwise)."""
        return carry

    @staticmethod
    def with_hidden(carry: Carry, h: jax.Array) -> Carry:
        """The carry with ``h`` replaced: ``h`` itself."""
        return h


class GatedCell(RecurrentCell):
    """Base class of the gated cells: how their gate biases start.

    Attributes:
      gate_init: ``"constant"`` (the cell's constant biases: ``forget_bias`` for the LSTMs, zeros
        for the GRU) or ``"chrono"`` (Tallec & Ollivier 2018,
        :func:`jaxseq.models.initializers.chrono_bias`: the forget gate's bias ``log u``,
        ``u ~ U(1, t_max - 1)`` per unit, the input gate's ``-log u``).
      t_max: chrono's longest time scale, in steps (the model builder sets it to the task's number
        of input steps when it is left at 0).
    """

    gate_init: str = "constant"
    t_max: float = 0.0
    chrono_signs = {}  # gate block -> sign of log u under chrono initialisation
    config_fields: ClassVar[dict[str, str]] = {**RecurrentCell.config_fields, "gate_init": "gate_init", "t_max": "chrono_t_max"}

    def __post_init__(self):
        check_gate_fields(self)
        super().__post_init__()

    def _gate_bias(self, constant=None):
        return gate_bias_init(self.gate_init, self.num_gates, self.chrono_signs, self.t_max, constant)


class RNNCell(RecurrentCell):
    """Vanilla (Elman) RNN: ``h_t = tanh(x_t W_hx + h_{t-1} W_hh + b_h)``.

    ``input_proj`` holds ``W_hx: [d, H]`` and ``b_h``; ``hidden_proj`` holds ``W_hh: [H, H]``.
    """

    num_gates = 1

    def setup(self):
        self.input_proj = self._input_dense()
        self.hidden_proj = self._hidden_kernel(1)

    def __call__(self, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``carry = h_{t-1}: [batch, H]``, ``x: [batch, d]`` -> ``(h_t, h_t)``."""
        W_hh = self.hidden_proj(self.hidden_size)
        h = jnp.tanh(self.gate_inputs(x) + carry @ W_hh)
        return h, h


class LSTMCell(GatedCell):
    """LSTM without peepholes. Gates in column order ``g, i, f, o``::

        g = tanh(x W_gx + h W_gh + b_g)     candidate
        i = σ(x W_ix + h W_ih + b_i)        input gate
        f = σ(x W_fx + h W_fh + b_f)        forget gate, b_f initialised to ``forget_bias``
        o = σ(x W_ox + h W_oh + b_o)        output gate
        c_t = g ⊙ i + c_{t-1} ⊙ f
        h_t = tanh(c_t) ⊙ o

    The carry is ``(c, h)``, each ``[batch, H]``. With ``forget_bias=0`` this is the same function as
    Flax's ``nn.LSTMCell`` given the same weights. Chrono initialisation (``gate_init="chrono"``,
    :class:`GatedCell`) draws ``b_f = log u`` and ``b_i = -log u`` instead.

    Attributes:
      forget_bias: initial value of ``b_f`` (1.0 by default; 0.0 reproduces the classic failure
        to remember over long sequences).
    """

    forget_bias: float = 1.0
    num_gates = 4
    chrono_signs = {2: 1.0, 1: -1.0}  # b_f = log u, b_i = -log u
    config_fields: ClassVar[dict[str, str]] = {**GatedCell.config_fields, "forget_bias": "forget_bias"}

    def __post_init__(self):
        require(is_real(self.forget_bias), self, "forget_bias", "a finite number")
        super().__post_init__()

    def setup(self):
        self.input_proj = self._input_dense(bias_init=self._gate_bias({2: self.forget_bias}))
        self.hidden_proj = self._hidden_kernel(4)

    def __call__(self, carry: tuple, x: jax.Array) -> tuple[tuple, jax.Array]:
        """``carry = (c, h)``, ``x: [batch, d]`` -> ``((c_t, h_t), h_t)``."""
        c, h = carry
        W_h = self.hidden_proj(self.hidden_size)
        return self.gates(c, self.gate_inputs(x) + h @ W_h)

    @staticmethod
    def gates(c: jax.Array, pre: jax.Array) -> tuple[tuple, jax.Array]:
        """The gates from their pre-activations ``pre = x W_x + h W_h + b: [batch, 4H]`` and the memory update."""
        g, i, f, o = jnp.split(pre, 4, axis=-1)
        return LSTMCell.update_memory(c, jnp.tanh(g), nn.sigmoid(i), nn.sigmoid(f), nn.sigmoid(o))

    @staticmethod
    def update_memory(c, candidate, i, f, o):
        """``c_t = candidate ⊙ i + c_{t-1} ⊙ f``, ``h_t = tanh(c_t) ⊙ o``; returns ``((c_t, h_t), h_t)``."""
        c = candidate * i + c * f
        h = jnp.tanh(c) * o
        return (c, h), h

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        """Zero state ``(c, h)``, each ``[batch, H]``."""
        zeros = jnp.zeros(input_shape[:-1] + (self.hidden_size,))
        return (zeros, zeros)

    @staticmethod
    def hidden(carry):
        """``h: [batch, H]`` of the carry ``(c, h)``."""
        return carry[1]

    @staticmethod
    def with_hidden(carry, h):
        """The carry ``(c, h)`` with ``h`` replaced; the cell state ``c`` is kept."""
        return (carry[0], h)


class GRUCell(GatedCell):
    """Gated recurrent unit. Gates in column order ``z, r, n``::

        z = σ(x W_zx + h W_zh + b_z)              update gate
        r = σ(x W_rx + h W_rh + b_r)              reset gate
        h̃ = tanh(x W_nx + (r ⊙ h) W_nh + b_n)    candidate
        h_t = (1 - z) ⊙ h_{t-1} + z ⊙ h̃

    ``hidden_proj`` holds ``[W_zh, W_rh]: [H, 2H]``; ``candidate_proj`` holds ``W_nh: [H, H]``.
    The biases start at zero; ``1 - z`` is the gate that keeps the old state, so chrono
    initialisation (``gate_init="chrono"``, :class:`GatedCell`) draws ``b_z = -log u``: the state is
    kept with ``1 - z = σ(log u)`` and the candidate let in with ``z = σ(-log u)``, as an LSTM's forget
    and input gates.
    """

    num_gates = 3
    chrono_signs = {0: -1.0}  # b_z = -log u

    def setup(self):
        self.input_proj = self._input_dense(bias_init=self._gate_bias())
        self.hidden_proj = self._hidden_kernel(2)
        self.candidate_proj = self._hidden_kernel(1, name="candidate_proj")

    def __call__(self, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``carry = h_{t-1}: [batch, H]``, ``x: [batch, d]`` -> ``(h_t, h_t)``."""
        h = carry
        W_zr, W_nh = self.recurrent_weights()
        x_proj = self.gate_inputs(x)
        z, r = GRUCell.update_and_reset_gates(x_proj, h @ W_zr)
        return GRUCell.new_state(h, z, x_proj, (r * h) @ W_nh)

    @staticmethod
    def update_and_reset_gates(x_proj, hz_hr):
        """``(z, r)``, each ``[batch, H]``, from the input part and ``h [W_zh, W_rh]``."""
        width = hz_hr.shape[-1]
        return jnp.split(nn.sigmoid(x_proj[..., :width] + hz_hr), 2, axis=-1)

    @staticmethod
    def new_state(h, z, x_proj, rh_n):
        """``h_t = (1 - z) ⊙ h + z ⊙ tanh(x W_nx + b_n + (r ⊙ h) W_nh)``; returns ``(h_t, h_t)``."""
        candidate = jnp.tanh(x_proj[..., 2 * h.shape[-1]:] + rh_n)
        h = (1.0 - z) * h + z * candidate
        return h, h

    def recurrent_weights(self):
        """``(W_zr: [H, 2H], W_nh: [H, H])``: stage 0 reads ``h``, stage 1 reads ``r ⊙ h``."""
        return (self.hidden_proj(self.hidden_size), self.candidate_proj(self.hidden_size))


class PeepholeLSTMCell(GatedCell):
    """LSTM whose gates look at the cell state instead of ``h``. Column order ``c, i, f, o``::

        f = σ(x W_fx + c_{t-1} W_fh + b_f)
        i = σ(x W_ix + c_{t-1} W_ih + b_i)
        o = σ(x W_ox + c_{t-1} W_oh + b_o)
        c_t = σ(x W_cx + b_c) ⊙ i + c_{t-1} ⊙ f
        h_t = tanh(c_t) ⊙ o

    ``input_proj`` holds ``[W_cx, W_ix, W_fx, W_ox]: [d, 4H]`` and biases; ``hidden_proj`` holds the
    peephole weights ``[W_ih, W_fh, W_oh]: [H, 3H]`` applied to ``c_{t-1}``. Carry ``(c, h)``.

    Attributes:
      forget_bias: initial value of ``b_f`` (chrono initialisation, :class:`GatedCell`, draws
        ``b_f = log u`` and ``b_i = -log u`` instead).
    """

    forget_bias: float = 1.0
    num_gates = 4
    chrono_signs = LSTMCell.chrono_signs
    config_fields = LSTMCell.config_fields

    def __post_init__(self):
        require(is_real(self.forget_bias), self, "forget_bias", "a finite number")
        super().__post_init__()

    def setup(self):
        self.input_proj = self._input_dense(bias_init=self._gate_bias({2: self.forget_bias}))
        self.hidden_proj = self._hidden_kernel(3)

    def __call__(self, carry: tuple, x: jax.Array) -> tuple[tuple, jax.Array]:
        """``carry = (c, h)``, ``x: [batch, d]`` -> ``((c_t, h_t), h_t)``."""
        c, _ = carry
        W_peep = self.hidden_proj(self.hidden_size)
        return self.gates(c, self.gate_inputs(x), c @ W_peep)

    @staticmethod
    def gates(c, x_proj, peep):
        """The gates from ``x_proj = x W_x + b: [batch, 4H]`` and ``peep = c W_h: [batch, 3H]``, and the memory update."""
        peepholes = jnp.pad(peep, [(0, 0)] * (c.ndim - 1) + [(c.shape[-1], 0)])  # no peephole into the c block
        candidate, i, f, o = jnp.split(nn.sigmoid(x_proj + peepholes), 4, axis=-1)
        return LSTMCell.update_memory(c, candidate, i, f, o)

    initialize_carry = LSTMCell.initialize_carry
    hidden = staticmethod(LSTMCell.hidden)
    with_hidden = staticmethod(LSTMCell.with_hidden)
