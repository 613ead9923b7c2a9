"""How the seed axis of a multi-seed run is mapped, and a guard against runs that freeze.

``train.seed_strategy`` names the mapping; every multi-seed trainer reads it through
:func:`map_over_seeds`, the one place the choice is made:

- ``"vmap"``: ``jax.vmap`` over all seeds, one batched program (``[seed, batch, ...]`` matmuls);
- ``"map"``: ``jax.lax.map``, a loop over the seeds inside the compiled program;
- ``"map:K"``: ``jax.lax.map(..., batch_size=K)``, a loop over groups of ``K`` vmapped seeds;
- ``"auto"``: the measured choice for the backend, :data:`AUTO_STRATEGY`.

Seed ``i`` computes the same function of ``keys[i]`` whatever the strategy, so per-seed results
agree to float rounding (tests/test_train.py checks it for every strategy).

Why ``auto`` is ``map`` on CPU (benchmarks/README.md, "Multi-seed on CPU"): with jax/jaxlib 0.10.2
vmapped programs of 8 or more LSTM seeds deadlock inside XLA's CPU runtime in about half of the
runs (every worker thread idle, the caller waiting forever), while ``lax.map`` never hung in the
stress runs (0 of 40). It is not slower either: one seed at B = 128 already keeps the CPU busy,
and the GCN's 10 seeds ran in 6.9 s under ``lax.map`` against 8.8 s under ``vmap``. On GPU and
TPU one seed leaves the device mostly idle, which is where ``vmap`` pays (not measured yet).
"""

import time
from typing import Any, Callable, Optional

import jax

SEED_STRATEGIES = ("auto", "vmap", "map", "map:K")
AUTO_STRATEGY = {"cpu": "map", "gpu": "vmap", "cuda": "vmap", "rocm": "vmap", "tpu": "vmap"}

DEFAULT_STALL_TIMEOUT_S = 300.0  # the least a chunk may take before the run is called stalled
STALL_FACTOR = 10.0  # ... or this many times the slowest chunk so far, whichever is longer


class StalledRunError(RuntimeError):
    """A compiled chunk did not finish within the stall bound (the run would otherwise freeze)."""


def resolve_seed_strategy(name: str, backend: Optional[str] = None) -> str:
    """The concrete strategy (``"vmap"``, ``"map"`` or ``"map:K"``) that ``name`` stands for.

    Args:
      name: a ``train.seed_strategy`` value: ``"auto"``, ``"vmap"``, ``"map"`` or ``"map:K"``.
      backend: the platform ``"auto"`` is resolved for (default: ``jax.default_backend()``).
    Raises:
      ValueError: an unknown name or a bad ``K``, listing the valid forms.
    """
    name = str(name).strip()
    if name == "auto":
        return AUTO_STRATEGY.get(backend or jax.default_backend(), "vmap")
    if name in ("vmap", "map"):
        return name
    kind, _, size = name.partition(":")
    if kind == "map" and size.isdigit() and int(size) >= 1:
        return f"map:{int(size)}"
    raise ValueError(
        f"unknown train.seed_strategy {name!r}; choose one of: auto, vmap, map, map:K (K a positive integer)"
    )


def map_over_seeds(fn: Callable[[Any], Any], strategy: str) -> Callable[[Any], Any]:
    """``fn`` of one seed's pytree, lifted to a pytree with a leading ``[seed]`` axis.

    Args:
      fn: a pure function of one argument (a key, or one seed's run state).
      strategy: a ``train.seed_strategy`` value (resolved with :func:`resolve_seed_strategy`).
    Returns:
      A function of the stacked argument whose outputs are stacked ``[seed, ...]``; not jitted.
    """
    strategy = resolve_seed_strategy(strategy)
    if strategy == "vmap":
        return jax.vmap(fn)
    batch_size = int(strategy.partition(":")[2] or 0) or None
    return lambda stacked: jax.lax.map(fn, stacked, batch_size=batch_size)


class StallWatch:
    """Waits for a chunk's results, but not forever.

    A chunk is *stalled* when it has not finished ``max(min_s, STALL_FACTOR x the slowest chunk
    so far)`` seconds after its dispatch returned. jax dispatches asynchronously, so the wait is a
    poll on ``Array.is_ready()`` rather than a blocking call that could never return.

    Args:
      min_s: the least time a chunk may take (default :data:`DEFAULT_STALL_TIMEOUT_S`).
      strategy: named in the error message.
    """

    def __init__(self, min_s: Optional[float] = None, strategy: str = ""):
        self.min_s = DEFAULT_STALL_TIMEOUT_S if min_s is None else float(min_s)
        self.strategy = strategy
        self.slowest = 0.0

    @property
    def bound_s(self) -> float:
        """Seconds the next chunk may take."""
        return max(self.min_s, STALL_FACTOR * self.slowest)

    def wait(self, tree: Any, what: str = "chunk") -> Any:
        """Return ``tree`` once every array in it is ready.

        Raises:
          StalledRunError: not ready within :attr:`bound_s`; names the cause and the workaround.
        """
        start = time.monotonic()
        pending = [leaf for leaf in jax.tree.leaves(tree) if hasattr(leaf, "is_ready")]
        pause = 1e-4
        while pending:
            pending = [leaf for leaf in pending if not leaf.is_ready()]
            waited = time.monotonic() - start
            if pending and waited > self.bound_s:
                raise StalledRunError(
                    f"{what} made no progress for {waited:.0f} s (seed strategy {self.strategy or '?'}): "
                    "XLA's CPU runtime looks deadlocked; rerun with --config.train.seed_strategy=map "
                    "(finished settings are kept), or raise train.stall_timeout_s if chunks are really this slow"
                )
            if pending:
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
        self.slowest = max(self.slowest, time.monotonic() - start)
        return tree
