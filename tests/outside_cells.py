"""A recurrent cell written outside jaxseq, against Flax's RNNCellBase contract alone.

The tests put this folder on PYTHONPATH and name the cell as ``outside_cells:LeakyPairCell``, as a
user names a cell of their own.
"""

import jax.numpy as jnp
from flax import linen as nn


class LeakyPairCell(nn.RNNCellBase):
    """Two states: ``fast_t = tanh(x W + (fast + slow) U + b)`` and ``slow_t = (1 - a) slow + a fast``."""

    features: int
    leak: float = 0.5

    @nn.compact
    def __call__(self, carry, x):
        fast, slow = carry
        pre = nn.Dense(self.features, name="input")(x) + nn.Dense(self.features, use_bias=False, name="recurrent")(fast + slow)
        slow = (1.0 - self.leak) * slow + self.leak * fast
        fast = jnp.tanh(pre)
        return (fast, slow), fast

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        zeros = jnp.zeros(input_shape[:-1] + (self.features,))
        return zeros, zeros

    @property
    def num_feature_axes(self) -> int:
        return 1
