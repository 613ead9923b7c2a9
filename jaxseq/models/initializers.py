"""Weight initialisers selectable by name from a config."""

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxseq.registry import lookup

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
