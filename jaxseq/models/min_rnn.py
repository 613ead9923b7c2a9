"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?").

Both drop the previous state from the gates, so every gate depends on ``x_t`` alone and the step
``h_t = a_t ⊙ h_{t-1} + b_t`` is linear in ``h``: training runs it as a parallel scan over time,
in log space as the paper does (:func:`jaxseq.models.parallel_scan.log_space_scan`), and
generation runs the same equations step by step. The candidate goes through the paper's
``g(x) = x + 0.5 if x >= 0 else σ(x)``, which is positive (so its logarithm exists) and continuous.

Parameters: ``input_proj/{kernel,bias}``, one ``[d, k*H]`` dense for the ``k`` blocks in the order
each class gives. Inputs are row vectors (``x W``).
"""

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.models.initializers import check_gate_fields, check_init_names, gate_bias_init, stacked
from jaxseq.models.parallel_scan import LinearRecurrentCell


def g(x: jax.Array) -> jax.Array:
    """The paper's positive activation: ``x + 0.5`` for ``x >= 0``, ``σ(x)`` below."""
    return jnp.where(x >= 0, jnp.maximum(x, 0.0) + 0.5, nn.sigmoid(x))


def log_g(x: jax.Array) -> jax.Array:
    """``log g(x)``, computed without the logarithm of a sigmoid: ``-softplus(-x)`` below zero."""
    return jnp.where(x >= 0, jnp.log(jnp.maximum(x, 0.0) + 0.5), -jax.nn.softplus(-x))


class _MinCell(LinearRecurrentCell):
    """Shared fields: the gates' input dense and how its gate biases start.

    Attributes:
      input_init: initialiser name for the input kernel (see ``INITIALIZERS``).
      gate_init: ``"constant"`` (zero biases) or ``"chrono"`` (Tallec & Ollivier 2018: the gate
        that keeps the old state starts at ``σ(log u)``, ``u ~ U(1, t_max - 1)`` per unit, the one
        that lets the candidate in at ``σ(-log u)``; see each class).
      t_max: chrono's longest time scale, in steps (the model builder sets it to the task's number
        of input steps when it is left at 0).
    """

    input_init: str = "xavier"
    gate_init: str = "constant"
    t_max: float = 0.0
    log_space = True
    num_blocks = 2
    chrono_signs = {}  # gate block -> sign of log u under chrono initialisation
    config_fields: ClassVar[dict[str, str]] = {
        **LinearRecurrentCell.config_fields, "input_init": "input_init", "gate_init": "gate_init", "t_max": "chrono_t_max"}

    def __post_init__(self):
        check_init_names(self, "input_init")
        check_gate_fields(self)
        super().__post_init__()

    def setup(self):
        # the constant initialisation is nn.Dense's own (zero biases)
        bias = {} if self.gate_init == "constant" else {"bias_init": self._chrono_bias()}
        self.input_proj = nn.Dense(
            self.num_blocks * self.hidden_size,
            kernel_init=stacked(self.input_init, self.num_blocks),
            name="input_proj",
            **bias,
        )

    def _chrono_bias(self):
        return gate_bias_init(self.gate_init, self.num_blocks, self.chrono_signs, self.t_max)


class MinGRUCell(_MinCell):
    """minGRU. Blocks in column order ``z, h̃``::

        z_t = σ(x_t W_z + b_z)                 update gate (x_t only)
        h̃_t = g(x_t W_h + b_h)                 candidate
        h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t

    In log space: ``log(1 - z) = -softplus(k)``, ``log z = -softplus(-k)`` for ``k = x W_z + b_z``.
    The state is the output: ``y_t = h_t`` (``[batch, H]``). Chrono: ``b_z = -log u``.
    """

    num_blocks = 2
    chrono_signs = {0: -1.0}

    def coefficients(self, x):
        """``x [..., d]`` -> ``(log(1 - z), log z + log h̃)``, each ``[..., H]``."""
        k, candidate = jnp.split(self.input_proj(x), 2, axis=-1)
        return -jax.nn.softplus(k), -jax.nn.softplus(-k) + log_g(candidate)


class MinLSTMCell(_MinCell):
    """minLSTM. Blocks in column order ``f, i, h̃``::

        f_t = σ(x_t W_f + b_f),  i_t = σ(x_t W_i + b_i)      gates (x_t only)
        f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)   normalised so the scale is time-independent
        h̃_t = g(x_t W_h + b_h)
        h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t

    In log space, with ``δ = softplus(-k_f) - softplus(-k_i) = log i - log f``:
    ``log f' = -softplus(δ)``, ``log i' = -softplus(-δ)``. The output is the state. Chrono:
    ``b_f = log u``, ``b_i = -log u``.
    """

    num_blocks = 3
    chrono_signs = {0: 1.0, 1: -1.0}

    def coefficients(self, x):
        """``x [..., d]`` -> ``(log f', log i' + log h̃)``, each ``[..., H]``."""
        k_f, k_i, candidate = jnp.split(self.input_proj(x), 3, axis=-1)
        delta = jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i)
        return -jax.nn.softplus(delta), -jax.nn.softplus(-delta) + log_g(candidate)
