"""How the seed axis of a multi-seed run is mapped, and a guard against runs that freeze.

``runner.seed_strategy`` names the mapping; every multi-seed trainer reads it through
:func:`map_over_seeds`, the one place the choice is made:

- ``"vmap"``: ``jax.vmap`` over all seeds, one batched program (``[seed, batch, ...]`` matmuls);
- ``"map"``: ``jax.lax.map``, a loop over the seeds inside the compiled program;
- ``"map:K"``: ``jax.lax.map(..., batch_size=K)``, a loop over groups of ``K`` vmapped seeds;
- ``"threads:G"``: the seeds split into ``G`` contiguous groups, each a ``lax.map`` program, run
  at the same time from ``G`` host threads (:class:`SeedGroups`); ``"threads"`` is one group per
  CPU core the process may use. XLA's CPU runtime runs one program mostly one op at a time, on
  about one core, and a program runs on the thread that calls it, so concurrent calls are what use
  the other cores;
- ``"auto"``: the measured choice for the backend, :data:`AUTO_STRATEGY`.

Seed ``i`` computes the same function of ``keys[i]`` whatever the strategy, so per-seed results
agree to float rounding (tests/test_train.py checks it for every strategy).

Why ``auto`` is ``threads`` on CPU (benchmarks/README.md, "Eight seeds at once"): one program
runs on about one core whatever maps its seeds, and ``threads`` runs programs side by side, so on
2 cores 8 seeds trained at 1.76-2.42x the rate of one vmapped program (1.7-2.5x that of 8
sequential runs). On GPU and TPU one seed leaves the device mostly idle, which is where ``vmap``
pays (not measured yet). Every strategy is safe on CPU: parameters are initialised one seed at a
time under ``vmap`` (:func:`one_seed_at_a_time`), so no batched QR can deadlock the run.
"""

import concurrent.futures
import threading
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxseq.runner.cpu_devices import available_cores

SEED_STRATEGIES = ("auto", "vmap", "map", "map:K", "threads", "threads:G")
AUTO_STRATEGY = {"cpu": "threads", "gpu": "vmap", "cuda": "vmap", "rocm": "vmap", "tpu": "vmap"}

DEFAULT_STALL_TIMEOUT_S = 300.0  # the least a chunk may take before the run is called stalled
SEED_WORKAROUND = "--config.runner.seed_strategy=map (finished settings are kept)"
SHARD_WORKAROUND = "--config.runner.batch_shards=1"
STALL_FACTOR = 10.0  # ... or this many times the slowest chunk so far, whichever is longer


class StalledRunError(RuntimeError):
    """A compiled chunk did not finish within the stall bound (the run would otherwise freeze)."""


def resolve_seed_strategy(name: str, backend: Optional[str] = None) -> str:
    """The concrete strategy (``"vmap"``, ``"map"``, ``"map:K"`` or ``"threads:G"``) that ``name`` stands for.

    Args:
      name: a ``runner.seed_strategy`` value: ``"auto"``, ``"vmap"``, ``"map"``, ``"map:K"``,
        ``"threads"`` (one group per CPU core) or ``"threads:G"``.
      backend: the platform ``"auto"`` is resolved for (default: ``jax.default_backend()``).
    Raises:
      ValueError: an unknown name or a bad ``K`` or ``G``, listing the valid forms.
    """
    name = str(name).strip()
    if name == "auto":
        return resolve_seed_strategy(AUTO_STRATEGY.get(backend or jax.default_backend(), "vmap"))
    if name in ("vmap", "map"):
        return name
    if name == "threads":
        return f"threads:{available_cores()}"
    kind, _, size = name.partition(":")
    if kind in ("map", "threads") and size.isdigit() and int(size) >= 1:
        return f"{kind}:{int(size)}"
    raise ValueError(
        f"unknown runner.seed_strategy {name!r}; choose one of: auto, vmap, map, map:K, threads, threads:G "
        "(K, G positive integers)"
    )


def seed_groups(strategy: str) -> int:
    """``G``, the number of seed groups run at the same time: ``G`` for ``"threads:G"``, else 1."""
    kind, _, size = resolve_seed_strategy(strategy).partition(":")
    return int(size) if kind == "threads" else 1


def map_over_seeds(fn: Callable[[Any], Any], strategy: str) -> Callable[[Any], Any]:
    """``fn`` of one seed's pytree, lifted to a pytree with a leading ``[seed]`` axis.

    Args:
      fn: a pure function of one argument (a key, or one seed's run state).
      strategy: a ``runner.seed_strategy`` value (resolved with :func:`resolve_seed_strategy`).
    Returns:
      A function of the stacked argument whose outputs are stacked ``[seed, ...]``; not jitted.
    """
    strategy = resolve_seed_strategy(strategy)
    if strategy == "vmap":
        return jax.vmap(fn)
    kind, _, size = strategy.partition(":")
    batch_size = int(size) if kind == "map" and size else None  # a threads group is a plain lax.map
    return lambda stacked: jax.lax.map(fn, stacked, batch_size=batch_size)


def split_seeds(tree: Any, groups: int) -> list[Any]:
    """Split a pytree with a leading ``[seed]`` axis into ``min(groups, seeds)`` contiguous groups
    (sizes differ by at most one, larger groups first); :func:`join_seeds` undoes it."""
    if groups <= 1:
        return [tree]
    num_seeds = jax.tree.leaves(tree)[0].shape[0]
    bounds = np.cumsum([0] + [len(part) for part in np.array_split(np.arange(num_seeds), min(groups, num_seeds))])
    return [jax.tree.map(lambda x, a=a, b=b: x[a:b], tree) for a, b in zip(bounds[:-1], bounds[1:])]


def join_seeds(trees: Sequence[Any]) -> Any:
    """Concatenate pytrees along their leading ``[seed]`` axis (NumPy leaves stay NumPy)."""
    if len(trees) == 1:
        return trees[0]

    def join(*leaves):
        return np.concatenate(leaves) if isinstance(leaves[0], np.ndarray) else jnp.concatenate(leaves)

    return jax.tree.map(join, *trees)


class SeedGroups:
    """Calls a compiled seed-mapped function on every seed group at the same time, one host thread
    per group, and waits for all of them under a :class:`StallWatch`.

    With one group it calls the function directly (no thread), as ``"map"`` and ``"vmap"`` do.

    Args:
      strategy: a ``runner.seed_strategy`` value; ``"threads:G"`` gives ``G`` groups, any other one.
    """

    def __init__(self, strategy: str):
        self.groups = seed_groups(strategy)
        self._pool = concurrent.futures.ThreadPoolExecutor(self.groups, "seed-group") if self.groups > 1 else None

    def split(self, tree: Any) -> list[Any]:
        """:func:`split_seeds` into this many groups."""
        return split_seeds(tree, self.groups)

    join = staticmethod(join_seeds)

    def __call__(self, fn: Callable[[Any], Any], inputs: Sequence[Any], watch: "StallWatch", what: str) -> list[Any]:
        """``[fn(x) for x in inputs]``, each finished (its arrays ready).

        Raises:
          StalledRunError: not all finished within the watch's bound.
        """
        if self._pool is None or len(inputs) == 1:
            return [watch.wait(fn(x), what) for x in inputs]
        futures = [self._pool.submit(lambda x: jax.block_until_ready(fn(x)), x) for x in inputs]
        watch.wait(futures, what)
        return [future.result() for future in futures]

    def close(self) -> None:
        """Release the threads without waiting for them (a deadlocked one never returns)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)


def _is_future(leaf: Any) -> bool:
    return isinstance(leaf, concurrent.futures.Future)


def _block_until_done(leaves: list, finished: threading.Event, stop: threading.Event) -> None:
    """Block until every leaf is done (a jax array: ``block_until_ready``; a future: finished;
    anything else with ``is_ready``: polled until ``stop``), then set ``finished``. Errors are left
    for the caller, who meets them when it reads the values."""
    try:
        for leaf in leaves:
            if _is_future(leaf):
                concurrent.futures.wait([leaf])
            elif isinstance(leaf, jax.Array):
                leaf.block_until_ready()
            else:
                while not leaf.is_ready():
                    if stop.wait(1e-3):
                        return
    except Exception:  # noqa: BLE001 - surfaces in the caller's read of the values
        pass
    finished.set()


class StallWatch:
    """Waits for a chunk's results, but not forever.

    A chunk is *stalled* when it has not finished ``max(min_s, STALL_FACTOR x the slowest chunk
    so far)`` seconds after its dispatch returned. jax dispatches asynchronously, and a deadlocked
    runtime never returns from a blocking call, so the blocking call runs in a daemon helper thread
    and the caller waits for it with a timeout.

    Args:
      min_s: the least time a chunk may take (default :data:`DEFAULT_STALL_TIMEOUT_S`).
      strategy: named in the error message.
      workaround: what the error message tells the user to rerun with.
    """

    def __init__(self, min_s: Optional[float] = None, strategy: str = "", workaround: str = SEED_WORKAROUND):
        self.min_s = DEFAULT_STALL_TIMEOUT_S if min_s is None else float(min_s)
        self.strategy = strategy
        self.workaround = workaround
        self.slowest = 0.0

    @property
    def bound_s(self) -> float:
        """Seconds the next chunk may take."""
        return max(self.min_s, STALL_FACTOR * self.slowest)

    def wait(self, tree: Any, what: str = "chunk") -> Any:
        """Return ``tree`` once every array in it is ready (and every ``concurrent.futures.Future`` done).

        Raises:
          StalledRunError: not ready within :attr:`bound_s`; names the cause and the workaround.
        """
        start = time.monotonic()
        pending = [leaf for leaf in jax.tree.leaves(tree) if _is_future(leaf) or hasattr(leaf, "is_ready")]
        if pending and all(_is_future(leaf) for leaf in pending):
            # futures: wait for them directly (a helper thread costs ~0.1-0.2 ms, per step when the
            # batch is sharded)
            if concurrent.futures.wait(pending, timeout=self.bound_s).not_done:
                raise self._stalled(what, start)
        elif pending:
            # a helper thread blocks on the results and wakes this one the moment they are ready (a
            # poll with growing pauses made 28 ms chunks take ~50 ms); this one waits at most
            # the bound, and a helper stuck in a deadlocked runtime is a daemon that dies with the process
            finished, stop = threading.Event(), threading.Event()
            helper = threading.Thread(target=_block_until_done, args=(pending, finished, stop), daemon=True)
            helper.start()
            if not finished.wait(self.bound_s):
                stop.set()
                raise self._stalled(what, start)
        self.slowest = max(self.slowest, time.monotonic() - start)
        return tree

    def _stalled(self, what: str, start: float) -> StalledRunError:
        return StalledRunError(
            f"{what} made no progress for {time.monotonic() - start:.0f} s ({self.strategy or '?'}): "
            f"XLA's CPU runtime looks deadlocked; rerun with {self.workaround}, or raise "
            "runner.stall_timeout_s if chunks are really this slow"
        )
