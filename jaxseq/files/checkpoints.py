"""Checkpoints a kill cannot spoil: atomic writes, a SHA-256 beside every file, fallback on resume.

A checkpoint of step ``s`` is ``RUN/checkpoints/step_<s:08d>.msgpack`` (the train state as
``flax.serialization`` msgpack) with a sidecar ``step_<s:08d>.msgpack.sha256`` in the format
``sha256sum`` writes (so ``cd RUN/checkpoints && sha256sum -c *.sha256`` checks them by hand).
A checkpoint may carry a few strings beside the state (``meta``, e.g. the SHA-256 of the
vocabulary a character LM was trained with: :func:`checkpoint_meta`); one without them loads the same.

Writing is crash-safe: the state goes to ``step_<s>.tmp`` (flushed and fsynced), the sidecar is
written atomically, and only then is the ``.tmp`` renamed into place. So a checkpoint file that
exists always has its checksum beside it, and a kill at any moment leaves either the previous
checkpoints alone or a finished new one; a leftover ``.tmp`` is not a checkpoint name and is
ignored.

Loading verifies: a file whose SHA-256 differs from its sidecar, or that msgpack cannot read, is
refused with a one-line :class:`CheckpointError` naming it. So is a checkpoint without a sidecar
(saved before jaxseq wrote checksums, or put there by hand): the error gives the ``sha256sum``
command with which a user who knows the file is theirs records its checksum.
:func:`restore_newest_verified` (used by ``--resume`` and by generation from a run's latest
checkpoint) walks back from the newest checkpoint to the newest one that verifies, and says so in
one line when it had to skip any.
"""

import contextlib
import hashlib
import os
import pathlib
import re
import signal
import threading
from typing import Any, Mapping, Optional

import numpy as np
from flax import serialization, traverse_util

from jaxseq.report import note, warn

CHECKPOINT_DIR = "checkpoints"
_CHECKPOINT_NAME = re.compile(r"^step_(\d+)\.msgpack$")
_SIDECAR_LINE = re.compile(r"^([0-9a-f]{64}) [ *]")
META_KEY = "jaxseq_meta"  # a checkpoint's strings beside the state dict


class CheckpointError(ValueError):
    """A checkpoint file that fails its SHA-256 check or cannot be read (truncated or corrupt)."""


def checkpoint_path(run_path: os.PathLike, step: int) -> pathlib.Path:
    """``RUN/checkpoints/step_XXXXXXXX.msgpack``: where the checkpoint of ``step`` lives."""
    return pathlib.Path(run_path) / CHECKPOINT_DIR / f"step_{step:08d}.msgpack"


def checksum_path(checkpoint: os.PathLike) -> pathlib.Path:
    """The sidecar ``<checkpoint>.sha256`` holding a checkpoint's SHA-256."""
    checkpoint = pathlib.Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + ".sha256")


def _write_synced(path: pathlib.Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_directory(directory: pathlib.Path) -> None:
    """Make renames in ``directory`` survive a power cut (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(run_path: os.PathLike, state: Any, keep: int = 2,
                    meta: Optional[Mapping[str, str]] = None) -> pathlib.Path:
    """Write ``state`` to ``<run>/checkpoints/step_<step>.msgpack`` with its SHA-256 sidecar; keep the newest ``keep``.

    Args:
      run_path: the run directory.
      state: a Flax train state (any pytree ``flax.serialization`` handles) with an integer ``step``.
      keep: how many checkpoints to keep (older ones and their sidecars are deleted); 0 keeps all.
      meta: strings stored beside the state (:func:`checkpoint_meta` reads them back).
    Returns:
      The path of the new checkpoint.
    """
    path = checkpoint_path(run_path, int(state.step))
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = serialization.to_state_dict(state)
    if meta:
        saved = {**saved, META_KEY: {str(k): str(v) for k, v in meta.items()}}
    write_verified(path, serialization.msgpack_serialize(saved))
    for old in list_checkpoints(run_path)[:-keep] if keep > 0 else []:
        old.unlink()
        checksum_path(old).unlink(missing_ok=True)
    return path


def write_verified(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with its SHA-256 sidecar, so that a kill at any moment leaves the
    previous file (or none) or the new one with its checksum, never a torn one (see the module
    docstring). :func:`read_checkpoint` reads it back, verified."""
    tmp = path.with_suffix(".tmp")
    _write_synced(tmp, data)
    sidecar = checksum_path(path)
    sidecar_tmp = sidecar.with_name(sidecar.name + ".tmp")
    _write_synced(sidecar_tmp, f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode())
    os.replace(sidecar_tmp, sidecar)  # the checksum is in place before the file appears
    os.replace(tmp, path)
    _sync_directory(path.parent)


@contextlib.contextmanager
def interrupts_deferred(what: str):
    """Within the block, Ctrl-C only prints that ``what`` is under way (the block runs to its end).

    Used around the checkpoint saved after a first Ctrl-C, so a second one never leaves a run that
    says it was saved when it was not. A no-op outside the main thread (signals cannot be set there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: note(f"{what}; please wait"))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def list_checkpoints(run_path: os.PathLike) -> list[pathlib.Path]:
    """Checkpoint files of a run, oldest first (``.tmp`` leftovers of a killed write are not listed)."""
    directory = pathlib.Path(run_path) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _CHECKPOINT_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_path: os.PathLike) -> Optional[pathlib.Path]:
    """The newest checkpoint of a run, or None."""
    found = list_checkpoints(run_path)
    return found[-1] if found else None


def read_checkpoint(path: os.PathLike) -> dict:
    """The state dict stored in a checkpoint, after checking its SHA-256 against the sidecar.

    Raises:
      FileNotFoundError: ``checkpoint file <path> does not exist``.
      CheckpointError: there is no sidecar, the digest differs from the sidecar's, the sidecar is
        malformed, or the bytes are not a readable checkpoint.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    data = path.read_bytes()
    sidecar = checksum_path(path)
    if sidecar.is_file():
        match = _SIDECAR_LINE.match(sidecar.read_text())
        if match is None:
            raise CheckpointError(f"checkpoint checksum file {sidecar} is malformed; delete it to load {path.name} unverified")
        if hashlib.sha256(data).hexdigest() != match.group(1):
            raise CheckpointError(f"checkpoint {path} fails its SHA-256 check ({sidecar.name}): it is corrupt or truncated")
    else:
        raise CheckpointError(
            f"checkpoint {path} has no {sidecar.name}, so it cannot be verified; if it is yours, record its "
            f"checksum with: cd {path.parent} && sha256sum {path.name} > {sidecar.name}")
    try:
        return serialization.msgpack_restore(data)
    except Exception as err:  # msgpack raises several types for damaged bytes
        raise CheckpointError(f"checkpoint {path} cannot be read ({err}): it is corrupt or truncated") from None


def restore_checkpoint(path: os.PathLike, template: Any) -> Any:
    """Load a verified checkpoint into a state shaped like ``template``.

    Raises:
      FileNotFoundError, CheckpointError: see :func:`read_checkpoint`.
      ValueError: the checkpoint's parameter names or shapes differ from the template's (a
        checkpoint written with another config), naming the first difference.
    """
    raw = dict(read_checkpoint(path))
    raw.pop(META_KEY, None)
    expected = traverse_util.flatten_dict(serialization.to_state_dict(template), sep="/")
    found = traverse_util.flatten_dict(raw, sep="/")
    hint = f"checkpoint {path} does not match the config"
    for name in sorted(set(expected) | set(found)):
        if name not in found:
            raise ValueError(f"{hint}: it has no {name}; use the config.json saved with it")
        if name not in expected:
            raise ValueError(f"{hint}: it has {name}, which the config's model lacks; use the config.json saved with it")
        want, got = np.shape(expected[name]), np.shape(found[name])
        if want != got:
            raise ValueError(f"{hint}: {name} has shape {got}, the config expects {want}; use the config.json saved with it")
    return serialization.from_state_dict(template, raw)


def checkpoint_meta(path: os.PathLike) -> dict[str, str]:
    """The strings a verified checkpoint carries beside its state (``{}`` when it carries none).

    Raises:
      FileNotFoundError, CheckpointError: see :func:`read_checkpoint`.
    """
    meta = read_checkpoint(path).get(META_KEY, {})
    return dict(meta) if isinstance(meta, dict) else {}


def restore_newest_verified(run_path: os.PathLike, template: Any) -> tuple[Any, pathlib.Path]:
    """Restore the newest checkpoint of a run that verifies, skipping corrupt or truncated ones.

    When newer checkpoints had to be skipped, prints one line on stderr naming them and the one used.

    Returns:
      ``(state, path)``: the restored state and the checkpoint it came from.
    Raises:
      FileNotFoundError: the run has no checkpoint.
      CheckpointError: no checkpoint verifies (one line naming every file).
      ValueError: a checkpoint that does not match ``template`` (see :func:`restore_checkpoint`).
    """
    found = list_checkpoints(run_path)
    if not found:
        raise FileNotFoundError(f"no checkpoint found in {pathlib.Path(run_path) / CHECKPOINT_DIR}; train first (or pass --checkpoint)")
    skipped = []
    for path in reversed(found):
        try:
            state = restore_checkpoint(path, template)
        except CheckpointError as err:
            skipped.append(err)
            continue
        if skipped:
            warn(f"skipped {len(skipped)} unusable checkpoint(s) ({'; '.join(map(str, skipped))}); "
                 f"using {path} (step {int(state.step)}) instead")
        return state, path
    raise CheckpointError(f"no checkpoint of {run_path} verifies ({'; '.join(map(str, skipped))}); "
                          "delete them to train from scratch, or restore a good copy")
