"""Cell wrappers the benchmarks time beside the built-in cells' default (fast) path.

- :func:`hoisted_input`: the same cell with its input projection applied to all time steps before
  the time loop, never joined to the recurrent matmul;
- :class:`AutodiffOnly`: any cell seen only through Flax's ``RNNCellBase`` contract, so
  :func:`jaxseq.models.sequence.scan_cell` runs it with ``nn.scan`` and jax's autodiff, as it runs
  a cell from outside jaxseq.
"""

from typing import Any

import jax
from flax import linen as nn

from jaxseq.models.fast_path import FAST_PATHS
from jaxseq.models.registry import cell_fields


def hoisted_input(cell: nn.RNNCellBase) -> nn.RNNCellBase:
    """A copy of a built-in cell whose input projection is never joined to its recurrent matmul
    (its own class, with the cell's fast path but ``input_joins_stage`` off)."""
    cls = type(cell)
    hoisted = type(f"Hoisted{cls.__name__}", (cls,), {"__module__": __name__})
    steps = FAST_PATHS[cls]
    FAST_PATHS[hoisted] = type(f"Hoisted{steps.__name__}", (steps,), {"input_joins_stage": False, "__module__": __name__})
    return hoisted(**{field: getattr(cell, field) for field in cell_fields(cls)})


class AutodiffOnly(nn.RNNCellBase):
    """``cell`` behind the plain ``RNNCellBase`` contract (its parameters nest under ``cell``).

    Attributes:
      cell: the wrapped cell.
    """

    cell: nn.RNNCellBase

    def __call__(self, carry: Any, x: jax.Array) -> tuple[Any, jax.Array]:
        """One step of the wrapped cell."""
        return self.cell(carry, x)

    @nn.nowrap
    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Any:
        """The wrapped cell's initial carry."""
        return self.cell.initialize_carry(rng, input_shape)

    @property
    def num_feature_axes(self) -> int:
        """One feature axis, as every cell in jaxseq."""
        return 1
