"""One XLA CPU device per core, asked for by the scripts before jax's backend starts.

jax starts its CPU backend with one device. :mod:`jaxseq.runner.batch_shards` splits one seed's
training batch over several CPU devices, one shard per device, in a single compiled program per
chunk of steps (``jax.shard_map`` with the shards' gradients averaged by ``pmean``). That needs the
devices to exist, and their number can only be set before jax's backend starts. The scripts
therefore call :func:`request_cpu_devices` first thing (:func:`jaxseq.cli.run_main`); a library user
who wants batch shards on devices calls it too. It sets ``jax_num_cpu_devices`` to one device per
available core unless

- jax's backend has already started: nothing changes, and batch shards fall back to host threads;
- the user chose a count already (``jax_num_cpu_devices``, or ``--xla_force_host_platform_device_count``
  in ``XLA_FLAGS``);
- ``JAXSEQ_CPU_DEVICES`` is set: that many devices (``1`` keeps jax's default of one).

Extra CPU devices change nothing else: arrays and programs stay on the first device unless placed
elsewhere, and the seed axis is never sharded over CPU devices (``jaxseq.runner.multiseed``).
"""

import os
from typing import Optional

ENV = "JAXSEQ_CPU_DEVICES"
MAX_DEVICES = 16  # one per core, but no more than this


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def requested_count() -> int:
    """How many CPU devices :func:`request_cpu_devices` asks for: ``JAXSEQ_CPU_DEVICES`` if set,
    else one per available core (at most :data:`MAX_DEVICES`).

    Raises:
      ValueError: ``JAXSEQ_CPU_DEVICES`` is not a positive integer.
    """
    value = os.environ.get(ENV, "").strip()
    if not value:
        return max(1, min(available_cores(), MAX_DEVICES))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{ENV} must be a positive integer, got {value!r}")
    return int(value)


def request_cpu_devices() -> Optional[int]:
    """Set ``jax_num_cpu_devices`` to :func:`requested_count` if jax's backend has not started and
    no count was chosen yet. Returns the count set, or None when nothing was changed."""
    import jax

    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    if jax.config.jax_num_cpu_devices >= 0:  # -1 until someone sets it
        return None
    count = requested_count()
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # the backend has started: the device count is fixed
        return None
    return count
