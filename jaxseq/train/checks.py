"""Checks on metrics coming back from compiled runs."""

import numpy as np


def check_finite(losses: np.ndarray, first_step: int = 1, what: str = "loss") -> None:
    """Raise if any loss is NaN or infinite.

    Args:
      losses: ``[seed, step]`` (or ``[step]``) losses of one chunk of training.
      first_step: the 1-based step number of column 0.
      what: name of the quantity, for the message.
    Raises:
      FloatingPointError: naming the first bad step and the seed it happened in.
    """
    losses = np.asarray(losses)
    if losses.ndim == 1:
        losses = losses[None]
    bad = ~np.isfinite(losses)
    if bad.any():
        seed, col = np.argwhere(bad)[0]
        raise FloatingPointError(
            f"non-finite {what} ({losses[seed, col]}) at step {first_step + col} in seed {seed}; "
            "lower optim.lr or set optim.clip_norm"
        )
