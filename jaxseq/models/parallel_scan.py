"""Linear recurrences ``h_t = a_t ⊙ h_{t-1} + b_t``, run in parallel over time or step by step.

When the coefficients ``a_t`` and ``b_t`` depend on the input only (not on ``h``), the recurrence
is linear in ``h`` and its prefix "products" compose associatively::

    (a_1, b_1) ∘ (a_2, b_2) = (a_1 a_2, a_2 b_1 + b_2)

so ``jax.lax.associative_scan`` computes all ``T`` states in ``O(log T)`` sequential depth instead
of ``T``. Two parallel forms live here:

- :func:`log_space_scan` for positive ``a`` and ``b`` given as logarithms (minGRU and minLSTM, as
  Feng et al. 2024 do it for stability): the pair combines as
  ``(la_1 + la_2, logaddexp(lb_1 + la_2, lb_2))``, so no product of many gates underflows before
  the sum is taken;
- :func:`linear_scan` for any real or complex ``a`` and ``b`` (the LRU's complex diagonal).

:func:`sequential_scan` runs the same recurrence one step at a time with ``jax.lax.scan``; it is
what generation uses and what the parallel forms are tested against. All arrays are time-major:
``[T, ...]``; ``h0`` has the shape of one step.

:class:`LinearRecurrentCell` is the base of the cells built on these scans.
"""

from typing import Any, ClassVar, Optional

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.models.fields import require

SCAN_MODES = ("parallel", "sequential")


def _compose(earlier, later):
    """Associative combine of two linear maps ``h -> a h + b`` (``earlier`` applied first)."""
    a_1, b_1 = earlier
    a_2, b_2 = later
    return a_1 * a_2, a_2 * b_1 + b_2


def _compose_log(earlier, later):
    """:func:`_compose` for ``(log a, log b)`` pairs of positive coefficients."""
    la_1, lb_1 = earlier
    la_2, lb_2 = later
    return la_1 + la_2, jnp.logaddexp(lb_1 + la_2, lb_2)


def linear_scan(a: jax.Array, b: jax.Array, h0: jax.Array) -> jax.Array:
    """All states of ``h_t = a_t h_{t-1} + b_t`` by an associative scan.

    Args:
      a, b: coefficients ``[T, ...]`` (real or complex; ``a`` broadcasts against ``b``).
      h0: the state before the first step, ``[...]`` (one step's shape).
    Returns:
      ``hs [T, ...]`` with ``hs[t]`` the state after step ``t``.
    """
    a = jnp.broadcast_to(a, b.shape)
    a_prefix, b_prefix = jax.lax.associative_scan(_compose, (a, b), axis=0)
    return a_prefix * h0 + b_prefix


def log_space_scan(log_a: jax.Array, log_b: jax.Array, h0: jax.Array) -> jax.Array:
    """All states of ``h_t = a_t h_{t-1} + b_t`` for positive ``a, b`` given as logarithms.

    The prefix of the ``b`` terms, ``log Σ_s (Π_{r>s} a_r) b_s``, is accumulated with
    ``logaddexp`` inside the associative scan; ``h0`` (any sign, e.g. zeros) enters linearly as
    ``(Π a) h0`` so it needs no logarithm.

    Args:
      log_a, log_b: ``[T, ...]``, the logarithms of the coefficients.
      h0: ``[...]``, the state before the first step.
    Returns:
      ``hs [T, ...]`` (linear space).
    """
    log_a_prefix, log_b_prefix = jax.lax.associative_scan(_compose_log, (log_a, log_b), axis=0)
    return jnp.exp(log_a_prefix) * h0 + jnp.exp(log_b_prefix)


def sequential_scan(a: jax.Array, b: jax.Array, h0: jax.Array) -> jax.Array:
    """All states of ``h_t = a_t h_{t-1} + b_t``, one step at a time (``jax.lax.scan``).

    Args and return as in :func:`linear_scan`.
    """

    def step(h, ab):
        h = ab[0] * h + ab[1]
        return h, h

    _, hs = jax.lax.scan(step, h0, (jnp.broadcast_to(a, b.shape), b))
    return hs


class LinearRecurrentCell(nn.RNNCellBase):
    """Base of cells whose recurrence is linear in the state: ``h_t = a_t ⊙ h_{t-1} + b_t`` with
    ``a_t, b_t`` functions of ``x_t`` only, followed by an optional per-step readout ``y_t = out(h_t, x_t)``.

    A subclass defines ``setup`` and :meth:`coefficients` (and :meth:`readout` when the output is
    not the state). :meth:`run` runs a whole sequence in ``mode`` (parallel or sequential; they
    agree to float tolerance); ``__call__(carry, x_t)`` is one step, as Flax's ``RNNCellBase``
    contract asks (for generation and for step-by-step use).

    Attributes:
      hidden_size: ``H``, the width of the output ``y_t``.
      mode: ``"parallel"`` (associative scan over time) or ``"sequential"`` (``lax.scan``).
    """

    hidden_size: int
    mode: str = "parallel"
    log_space = False  # coefficients come as (log a, log b) of positive values
    # constructor field -> the config.model field it is read from (jaxseq.models.fields)
    config_fields: ClassVar[dict[str, str]] = {"mode": "scan_mode"}

    def __post_init__(self):
        require(self.mode in SCAN_MODES, self, "mode", f"one of {', '.join(SCAN_MODES)}")
        super().__post_init__()

    @property
    def state_size(self) -> int:
        """Width of the state ``h`` (``H`` unless a cell says otherwise)."""
        return self.hidden_size

    @property
    def probe_size(self) -> int:
        """Width of the real perturbations :meth:`run` adds to the state (see ``hidden_grad_norms``)."""
        return self.state_size

    @property
    def num_feature_axes(self) -> int:
        """Inputs have one feature axis (the last): ``[..., d]``."""
        return 1

    def coefficients(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x [..., d]`` -> ``(a, b)``, each ``[..., state]`` (their logarithms when ``log_space``)."""
        raise NotImplementedError

    def readout(self, hs: jax.Array, x: jax.Array) -> jax.Array:
        """``y_t`` from the states ``hs [..., state]`` and inputs ``x [..., d]``: the state itself by default."""
        return hs

    def state_perturbation(self, perturbations: jax.Array) -> jax.Array:
        """Real perturbations ``[..., probe_size]`` as a change of the state ``[..., state]``."""
        return perturbations

    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> jax.Array:
        """Zero state for inputs ``[batch, d]``: ``[batch, state]``."""
        return jnp.zeros(input_shape[:-1] + (self.state_size,))

    def _linear(self, a, b):
        return (jnp.exp(a), jnp.exp(b)) if self.log_space else (a, b)

    def __call__(self, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One step: ``carry [batch, state]``, ``x [batch, d]`` -> ``(h_t, y_t [batch, H])``."""
        a, b = self._linear(*self.coefficients(x))
        h = a * carry + b
        return h, self.readout(h, x)

    def run(
        self, x: jax.Array, carry: Optional[jax.Array] = None, perturbations: Optional[jax.Array] = None
    ) -> tuple[Any, jax.Array]:
        """A whole sequence.

        Args:
          x: time-major inputs ``[T, batch, d]``.
          carry: the state before the first step ``[batch, state]`` (zeros if None).
          perturbations: optional real ``[T, batch, probe_size]`` added to each state ``h_t`` (and
            carried forward), for ``dL/dh_t``.
        Returns:
          ``(h_T [batch, state], ys [T, batch, H])``.
        """
        if carry is None:
            carry = self.initialize_carry(jax.random.key(0), x.shape[1:])
        a, b = self.coefficients(x)
        if self.mode == "parallel" and self.log_space:
            hs = log_space_scan(a, b, carry)
            if perturbations is not None:  # the recurrence is linear: a perturbation's effect adds on
                hs = hs + linear_scan(jnp.exp(a), self.state_perturbation(perturbations), jnp.zeros_like(carry))
        else:
            a, b = self._linear(a, b)
            if perturbations is not None:
                b = b + self.state_perturbation(perturbations)
            hs = (linear_scan if self.mode == "parallel" else sequential_scan)(a, b, carry)
        return hs[-1], self.readout(hs, x)
