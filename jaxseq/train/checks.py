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


def check_bounded(losses: np.ndarray, bound: float, first_step: int = 1, what: str = "loss") -> None:
    """Raise if any loss exceeds ``bound`` (a finite loss that has diverged, e.g. far above chance).

    Raises:
      FloatingPointError: naming the first step past the bound, the value and the bound.
    """
    losses = np.asarray(losses).reshape(-1)
    over = np.flatnonzero(losses > bound)
    if over.size:
        col = int(over[0])
        raise FloatingPointError(
            f"{what} {losses[col]:.4g} at step {first_step + col} is past {bound:.4g} (the run diverged); "
            "lower optim.lr or set optim.clip_norm"
        )
