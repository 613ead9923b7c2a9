"""A setting under way, kept between sittings: a long setting resumes from its last save, not from step 0.

A setting of the atlas at T = 1,024 trains for hours on a CPU; without this, any interruption
(Ctrl-C, a closed laptop, the end of a working day) would throw all of it away, because a sweep
records a setting only once it has finished. ``RUN/unfinished/<setting>.msgpack`` holds, after the
last chunk saved:

* every seed's run state (parameters, optimiser state, keys, step, stopping state),
* the per-step metrics so far and each chunk's wall seconds,
* the seconds the setting has trained, and a fingerprint of its config.

The multi-seed runner (:meth:`jaxseq.runner.multiseed.MultiSeedRunner.run`) saves it every
``every_s`` seconds of training and once more when Ctrl-C stops it between chunks; the sweep
deletes it once the setting's rows are written. A run continued from a save is the run that would
have happened without the interruption: the state carries the key of every step to come (the
tests compare the two).

The file is written like a checkpoint (:func:`jaxseq.files.checkpoints.write_verified`: atomic,
with a SHA-256 sidecar). A save that fails its checksum, was made with another config of the
setting, or holds state of another shape is not used: the setting starts from step 0 and says why
in one line.
"""

import hashlib
import json
import pathlib
import re
import time
from typing import Any, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import serialization

from jaxseq.files.checkpoints import checksum_path, read_checkpoint, write_verified
from jaxseq.files.results import RunDir
from jaxseq.report import note, warn

UNFINISHED_DIR = "unfinished"
SAVE_EVERY_S = 300.0  # a long setting loses at most this much training to a kill without Ctrl-C


class Resumed(NamedTuple):
    """What a save holds, ready to go on from.

    Attributes:
      run: every seed's run state, leaves stacked ``[seed, ...]`` like the runner's ``init`` output.
      steps: per-step metrics so far, numpy arrays ``[seed, steps_done]``.
      next_chunk: the index of the first chunk still to run.
      chunk_seconds: wall seconds of each chunk already run.
      elapsed_s: seconds the setting had trained when it was saved.
    """

    run: Any
    steps: dict[str, np.ndarray]
    next_chunk: int
    chunk_seconds: tuple
    elapsed_s: float


def fingerprint(cfg: ml_collections.ConfigDict) -> str:
    """SHA-256 of a setting's config (JSON, sorted keys) without its ``runner`` section (how the seeds
    run on this machine, never what they compute: a save made under one seed strategy goes on under another)."""
    plain = json.loads(cfg.to_json_best_effort(sort_keys=True))
    plain.pop("runner", None)
    return _sha256(plain)


def _sha256(plain: Any) -> str:
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()


def _is_key(leaf: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key)


class UnfinishedSetting:
    """The save of one setting under way in a run directory.

    Args:
      run_dir: the run directory (the save goes under ``unfinished/``); the config it accepted is
        saved as its ``config.json`` before the first save (:meth:`~jaxseq.files.results.RunDir.keep_claimed_config`),
        so the same command finds the directory its own.
      columns: the columns naming the setting (e.g. ``{"cell": "lru", "task": "copy", "length": 512}``);
        they name the file.
      cfg: the setting's config; a save is used only by the same config (:func:`fingerprint`).
      every_s: seconds of training between saves (0: after every chunk).
    """

    def __init__(self, run_dir: RunDir, columns: Mapping[str, Any], cfg: ml_collections.ConfigDict,
                 every_s: float = SAVE_EVERY_S):
        name = ",".join(f"{k}={v}" for k, v in columns.items()) or "setting"
        self.run_dir = run_dir
        self.path = run_dir.path / UNFINISHED_DIR / (re.sub(r"[^A-Za-z0-9_.,=+-]", "_", name) + ".msgpack")
        self.fingerprint = fingerprint(cfg)
        self.every_s = every_s
        self._last_save = time.monotonic()

    def due(self) -> bool:
        """Whether ``every_s`` seconds have passed since the last save (or since this object was made)."""
        return time.monotonic() - self._last_save >= self.every_s

    def save(self, run: Any, steps: Mapping[str, np.ndarray], next_chunk: int, chunk_seconds, elapsed_s: float) -> None:
        """Write the setting's state after chunk ``next_chunk - 1`` (arguments as in :class:`Resumed`)."""
        leaves = jax.tree.leaves(jax.device_get(jax.tree.map(
            lambda x: jax.random.key_data(x) if _is_key(x) else x, run)))
        saved = {
            "fingerprint": self.fingerprint,
            "next_chunk": int(next_chunk),
            "elapsed_s": float(elapsed_s),
            "chunk_seconds": np.asarray(chunk_seconds, dtype=np.float64),
            "leaves": {str(i): np.asarray(leaf) for i, leaf in enumerate(leaves)},
            "steps": {k: np.asarray(v) for k, v in steps.items()},
        }
        self.run_dir.keep_claimed_config()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_verified(self.path, serialization.msgpack_serialize(saved))
        self._last_save = time.monotonic()

    def load(self, template: Any) -> Optional[Resumed]:
        """The save, restored into the structure of ``template`` (a freshly initialised run of the
        same seeds), or None when there is none or it cannot be used (said in one line)."""
        if not self.path.is_file():
            return None
        try:
            raw = read_checkpoint(self.path)
        except (OSError, ValueError) as err:
            warn(f"{err}; the setting starts again from step 0")
            return None
        if raw.get("fingerprint") != self.fingerprint:
            warn(f"{self.path} was saved with another config of this setting; it starts again from step 0")
            return None
        leaves, treedef = jax.tree.flatten(template)
        saved = raw.get("leaves", {})
        restored = []
        for i, leaf in enumerate(leaves):
            value = saved.get(str(i))
            plain = jax.random.key_data(leaf) if _is_key(leaf) else leaf
            if value is None or value.shape != plain.shape or value.dtype != plain.dtype or len(saved) != len(leaves):
                warn(f"{self.path} holds a run of another shape; the setting starts again from step 0")
                return None
            value = jnp.asarray(value)
            restored.append(jax.random.wrap_key_data(value, impl=jax.random.key_impl(leaf)) if _is_key(leaf) else value)
        return Resumed(
            run=jax.tree.unflatten(treedef, restored),
            steps={k: np.asarray(v) for k, v in raw["steps"].items()},
            next_chunk=int(raw["next_chunk"]),
            chunk_seconds=tuple(float(s) for s in np.atleast_1d(raw["chunk_seconds"])),
            elapsed_s=float(raw["elapsed_s"]),
        )

    def discard(self) -> None:
        """Delete the save (the setting's rows are written), and the folder once it is empty."""
        self.path.unlink(missing_ok=True)
        checksum_path(self.path).unlink(missing_ok=True)
        try:
            self.path.parent.rmdir()
        except OSError:
            pass

    def say_resumed(self, resumed: Resumed, steps_per_chunk: int) -> None:
        """One line: where the setting goes on from."""
        note(f"{self.path.stem}: continuing from step {resumed.next_chunk * steps_per_chunk} "
             f"({resumed.elapsed_s / 60:.1f} min trained before), saved in {self.path}")
