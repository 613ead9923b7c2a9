"""Weight initialisers selectable by name from a config."""

from typing import Any, Optional

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.lookup import lookup
from jaxseq.models.fields import is_real, require

INITIALIZERS = {
    "kaiming": nn.initializers.kaiming_normal(),
    "xavier": nn.initializers.xavier_uniform(),
    "glorot": nn.initializers.glorot_uniform(),
    "orthogonal": nn.initializers.orthogonal(),
    "lecun": nn.initializers.lecun_normal(),
}


def get_initializer(name: str) -> nn.initializers.Initializer:
    """The kernel initialiser called ``name`` (one of :data:`INITIALIZERS`)."""
    return lookup(INITIALIZERS, name, "initializer")


def stacked(name: str, num_blocks: int) -> nn.initializers.Initializer:
    """Initialise a ``[fan_in, num_blocks * H]`` kernel as ``num_blocks`` independent ``[fan_in, H]`` blocks.

    Fused gate kernels must be initialised per gate: an orthogonal ``[H, 4H]`` matrix is not
    four orthogonal ``[H, H]`` matrices, and Kaiming/Xavier scales must see the per-gate fan-out.
    """
    init = get_initializer(name)

    def init_fn(key, shape, dtype=jnp.float32):
        fan_in, total = shape
        if total % num_blocks:
            raise ValueError(f"kernel width {total} is not divisible into {num_blocks} blocks")
        keys = jax.random.split(key, num_blocks)
        blocks = [init(k, (fan_in, total // num_blocks), dtype) for k in keys]
        return jnp.concatenate(blocks, axis=1)

    return init_fn


def gate_bias(num_blocks: int, values: dict[int, float]) -> nn.initializers.Initializer:
    """Bias initialiser for ``num_blocks`` fused gates: zeros, except block ``i`` filled with ``values[i]``."""

    def init_fn(key, shape, dtype=jnp.float32):
        (total,) = shape
        width = total // num_blocks
        bias = jnp.zeros(shape, dtype)
        for block, value in values.items():
            bias = bias.at[block * width : (block + 1) * width].set(value)
        return bias

    return init_fn


GATE_INITS = ("constant", "chrono")  # how a gated cell's gate biases start (its ``gate_init`` field)


def check_init_names(cell: Any, *fields: str) -> None:
    """Raise :class:`jaxseq.models.fields.FieldError` unless each of ``cell``'s ``fields`` names an initialiser."""
    for field in fields:
        require(getattr(cell, field) in INITIALIZERS, cell, field, f"one of {', '.join(INITIALIZERS)}")


def check_gate_fields(cell: Any) -> None:
    """Raise :class:`jaxseq.models.fields.FieldError` unless ``cell.gate_init`` is one of
    :data:`GATE_INITS` and ``cell.t_max`` a finite number >= 0."""
    require(cell.gate_init in GATE_INITS, cell, "gate_init", f"one of {', '.join(GATE_INITS)}")
    require(is_real(cell.t_max) and cell.t_max >= 0, cell, "t_max", "a finite number >= 0 (0: the task's number of input steps)")


def chrono_bias(num_blocks: int, signs: dict[int, float], t_max: float) -> nn.initializers.Initializer:
    """Chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?") of
    the bias of ``num_blocks`` fused gates.

    One draw per unit, ``b = log u`` with ``u ~ U(1, t_max - 1)``; block ``i`` is ``signs[i] * b``
    and every other block zero. A forget gate ``σ(b)`` then starts at ``1 - 1/u``: the unit's memory
    decays over about ``u`` steps, time scales spread over ``[1, t_max - 1]``; its input gate (sign
    -1) starts at ``1/u``.
    """
    if not t_max > 2:
        raise ValueError(f"chrono initialisation needs t_max > 2 (U(1, t_max - 1)), got {t_max}; set the cell's t_max")

    def init_fn(key, shape, dtype=jnp.float32):
        (total,) = shape
        width = total // num_blocks
        log_u = jnp.log(jax.random.uniform(key, (width,), dtype, 1.0, t_max - 1.0))
        bias = jnp.zeros(shape, dtype)
        for block, sign in signs.items():
            bias = bias.at[block * width : (block + 1) * width].set(sign * log_u)
        return bias

    return init_fn


def gate_bias_init(
    gate_init: str, num_blocks: int, chrono_signs: dict[int, float], t_max: float, constant: Optional[dict[int, float]] = None
) -> nn.initializers.Initializer:
    """The bias initialiser a cell's ``gate_init`` names: ``"constant"`` (:func:`gate_bias` with
    ``constant``; zeros if None) or ``"chrono"`` (:func:`chrono_bias` with ``chrono_signs``)."""
    if gate_init == "constant":
        return nn.initializers.zeros if constant is None else gate_bias(num_blocks, constant)
    if gate_init == "chrono":
        return chrono_bias(num_blocks, chrono_signs, t_max)
    raise ValueError(f"unknown gate_init {gate_init!r}; choose one of: {', '.join(GATE_INITS)}")
