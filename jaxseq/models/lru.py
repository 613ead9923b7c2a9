"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences"), with the GLU the paper puts on top of it.

A diagonal complex recurrence, parameterised so that it is stable by construction::

    λ = exp(-exp(ν) + i exp(θ))              |λ| = exp(-exp(ν)) < 1 for any real ν
    x_t = λ ⊙ x_{t-1} + γ ⊙ (u_t B)          complex state [N]; γ = exp(γ_log), init sqrt(1 - |λ|²)
    y_t = Re(x_t C) + u_t D                  [H]
    out_t = GLU(GELU(y_t)) = (z W_1 + b_1) ⊙ σ(z W_2 + b_2),  z = GELU(y_t) (the exact, erf GELU)

Ring initialisation: ``|λ|`` uniform on the ring ``r_min <= |λ| <= r_max`` (uniform in area), the
phase uniform in ``[0, max_phase]``. ``γ`` normalises the input so that a state fed white noise
keeps unit variance at initialisation however close ``|λ|`` is to 1. The recurrence is linear in
``x`` with input-independent ``λ``, so training runs it as an associative scan over time; the
sequential mode steps through it (they agree to float tolerance).

Inputs are row vectors: ``B [d, N]`` and ``C [N, H]`` complex (held as real and imaginary kernels),
``D [d, H]`` real (the paper's diagonal ``D`` when ``d = H``; a full matrix lets the first layer
read a narrow input).
"""

import math
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.models.fields import is_real, require
from jaxseq.models.parallel_scan import LinearRecurrentCell


def ring_init(r_min: float, r_max: float, max_phase: float):
    """Initialiser of ``(ν, θ)`` logs, ``[2, N]``: ``|λ|²`` uniform in ``[r_min², r_max²]``, phase in ``[0, max_phase]``."""

    def init(key, shape, dtype=jnp.float32):
        key_r, key_phase = jax.random.split(key)
        u_r = jax.random.uniform(key_r, shape[1:], dtype)
        u_phase = jax.random.uniform(key_phase, shape[1:], dtype)
        nu_log = jnp.log(-0.5 * jnp.log(u_r * (r_max**2 - r_min**2) + r_min**2))
        theta_log = jnp.log(max_phase * u_phase)
        return jnp.stack([nu_log, theta_log])

    return init


def scaled_normal(scale: float = 1.0):
    """Kernel initialiser ``N(0, 1 / (scale * fan_in))`` for ``[fan_in, fan_out]`` kernels."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.normal(key, shape, dtype) / math.sqrt(scale * shape[0])

    return init


class LRUCell(LinearRecurrentCell):
    """Linear Recurrent Unit plus GLU, one step ``(x_{t-1}, u_t) -> (x_t, out_t)``.

    Parameters: ``nu_theta_log [2, N]`` (ν and θ, logs), ``gamma_log [N]``, ``B_re``, ``B_im``
    (``[d, N]`` kernels), ``C_re``, ``C_im`` (``[N, H]``), ``D`` (``[d, H]``), ``glu_1`` and ``glu_2``
    (``[H, H]`` dense layers with bias). The carry is the complex state ``[batch, N]``.

    Attributes:
      state_dim: ``N``, complex state size (0: the same as ``hidden_size``).
      r_min, r_max: the ring ``|λ|`` is drawn from.
      max_phase: largest initial phase of ``λ`` (radians).
    """

    state_dim: int = 0
    r_min: float = 0.9
    r_max: float = 0.999
    max_phase: float = 2 * math.pi
    config_fields: ClassVar[dict[str, str]] = {
        **LinearRecurrentCell.config_fields,
        "state_dim": "lru_state_dim", "r_min": "lru_r_min", "r_max": "lru_r_max", "max_phase": "lru_max_phase"}

    def __post_init__(self):
        require(isinstance(self.state_dim, int) and not isinstance(self.state_dim, bool) and self.state_dim >= 0,
                self, "state_dim", "a whole number >= 0 (0: hidden_size)")
        require(is_real(self.r_min) and 0 <= self.r_min < 1, self, "r_min", "a number in [0, 1)")
        # |λ| < 1 keeps the recurrence stable
        require(is_real(self.r_max) and self.r_min <= self.r_max < 1, self, "r_max", f"a number in [r_min, 1) = [{self.r_min}, 1)")
        require(is_real(self.max_phase) and self.max_phase > 0, self, "max_phase", "a finite number > 0")
        super().__post_init__()

    @property
    def state_size(self) -> int:
        """``N``."""
        return self.state_dim or self.hidden_size

    @property
    def probe_size(self) -> int:
        """``2N``: a perturbation moves the real and the imaginary part of the state."""
        return 2 * self.state_size

    def setup(self):
        n, h = self.state_size, self.hidden_size
        self.nu_theta_log = self.param("nu_theta_log", ring_init(self.r_min, self.r_max, self.max_phase), (2, n))
        self.gamma_log = self.param("gamma_log", lambda key, shape: self._gamma_log_init(), (n,))
        dense = lambda width, scale, name: nn.Dense(  # noqa: E731
            width, use_bias=False, kernel_init=scaled_normal(scale), name=name
        )
        self.B_re, self.B_im = dense(n, 2.0, "B_re"), dense(n, 2.0, "B_im")  # N(0, 1/(2d)) as in the paper
        self.C_re, self.C_im = dense(h, 1.0, "C_re"), dense(h, 1.0, "C_im")  # N(0, 1/N)
        self.D = dense(h, 1.0, "D")
        self.glu_1, self.glu_2 = nn.Dense(h, name="glu_1"), nn.Dense(h, name="glu_2")

    def _gamma_log_init(self):
        """``log sqrt(1 - |λ|²)`` of the initial ``λ``: the input normalisation."""
        return 0.5 * jnp.log1p(-jnp.abs(self.eigenvalues()) ** 2)

    def eigenvalues(self) -> jax.Array:
        """``λ [N]`` (complex), ``exp(-exp(ν) + i exp(θ))``."""
        return jnp.exp(-jnp.exp(self.nu_theta_log[0]) + 1j * jnp.exp(self.nu_theta_log[1]))

    def coefficients(self, x):
        """``x [..., d]`` -> ``(λ [N], γ ⊙ (x B) [..., N])`` (complex)."""
        return self.eigenvalues(), jnp.exp(self.gamma_log) * (self.B_re(x) + 1j * self.B_im(x))

    def readout(self, hs, x):
        """``out = GLU(GELU(Re(x_t C) + u_t D))``: ``hs [..., N]``, ``x [..., d]`` -> ``[..., H]``."""
        z = nn.gelu(self.C_re(hs.real) - self.C_im(hs.imag) + self.D(x), approximate=False)
        return self.glu_1(z) * nn.sigmoid(self.glu_2(z))

    def state_perturbation(self, perturbations):
        """Real ``[..., 2N]`` -> complex ``[..., N]``: the first half moves the real part, the second the imaginary."""
        real, imag = jnp.split(perturbations, 2, axis=-1)
        return real + 1j * imag

    def initialize_carry(self, rng, input_shape):
        """Zero complex state ``[batch, N]``."""
        return jnp.zeros(input_shape[:-1] + (self.state_size,), jnp.complex64)
