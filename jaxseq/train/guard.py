"""The write guard: every output has an owner, and nothing a user already has is lost.

Two kinds of output, one rule each:

* A **run directory** (``--out`` of a training script) belongs to the one config in its
  ``config.json``: :meth:`jaxseq.train.results.RunDir.check_config` refuses another config, another
  tool's results, and a non-empty directory without a ``config.json``.
* A **file** named by a flag (``--out=FILE``, ``--table``, ``--publish``, a benchmark's report) is
  claimed with :func:`claim_file` before anything runs and, once written, gets a sidecar
  ``<file>.config.json`` naming the tool and config that wrote it (:func:`record_owner`). An
  existing file is replaced only when its sidecar names the same tool and config, or when the user
  passes ``--overwrite`` (which the refusal names).

Paths given on the command line have ``~`` expanded (:func:`expand`), as the data flags do.
"""

import fnmatch
import json
import os
import pathlib
from typing import Any, Iterable, Optional, Sequence

from absl import flags

from jaxseq.config import flat_fields
from jaxseq.train.results import _plain, check_writable_file, write_json_atomic

OWNER_SUFFIX = ".config.json"
OVERWRITE_FLAG = "--overwrite"


def define_overwrite() -> flags.FlagHolder:
    """``--overwrite``: the one way to replace an output file this tool did not write for this config."""
    return flags.DEFINE_bool("overwrite", False, "replace output files that another tool or config wrote")


def expand(path: Optional[str]) -> Optional[str]:
    """``path`` with a leading ``~`` expanded (None and "" stay as they are)."""
    return os.path.expanduser(path) if path else path


def owner_path(path: os.PathLike) -> pathlib.Path:
    """The sidecar ``<path>.config.json`` naming the tool and config that wrote ``path``."""
    path = pathlib.Path(path)
    return path.with_name(path.name + OWNER_SUFFIX)


def _normal(owner: Any) -> Any:
    """``owner`` as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(owner, default=_plain, sort_keys=True))


def make_owner(tool: str, config: Any, may_differ: Sequence[str] = ()) -> dict:
    """The owner record of a file: the tool's name and its config (a ConfigDict, dict or flag values).

    ``may_differ``: dotted fields or ``fnmatch`` patterns of a ConfigDict left out (the sweep lists a
    rerun into the same run directory may extend, as in :meth:`jaxseq.train.results.RunDir.check_config`).
    """
    if hasattr(config, "to_dict"):
        config = {k: v for k, v in flat_fields(config).items() if not any(fnmatch.fnmatchcase(k, p) for p in may_differ)}
    return _normal({"tool": tool, "config": config})


def _saved_owner(path: pathlib.Path) -> Optional[Any]:
    sidecar = owner_path(path)
    try:
        return json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None


def claim_file(path: os.PathLike, flag: str, owner: dict, overwrite: bool) -> pathlib.Path:
    """Check up front that ``path`` may be written by ``owner``; the path with ``~`` expanded.

    Raises:
      ValueError: ``path`` cannot be written (see :func:`jaxseq.train.results.check_writable_file`),
        or it exists and its sidecar does not name ``owner`` (a file the user has, another tool's or
        another config's), unless ``overwrite``.
    """
    path = check_writable_file(expand(os.fspath(path)), flag)
    if path.exists() and not overwrite and _saved_owner(path) != _normal(owner):
        whose = "another config" if _saved_owner(path) is not None else "something other than this tool"
        raise ValueError(f"{flag}={path}: the file exists and was written by {whose}; choose another path, "
                         f"or add {OVERWRITE_FLAG} to replace it")
    return path


def claim_files(paths: Iterable[os.PathLike], flag: str, owner: dict, overwrite: bool) -> list[pathlib.Path]:
    """:func:`claim_file` for each of ``paths`` (the files one flag writes, e.g. a table and its figures)."""
    return [claim_file(path, flag, owner, overwrite) for path in paths]


def record_owner(path: os.PathLike, owner: dict) -> None:
    """Write the sidecar of ``path`` (just written) naming ``owner``."""
    write_json_atomic(owner_path(path), owner)
