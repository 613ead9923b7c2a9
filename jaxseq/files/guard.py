"""The write guard: every output has an owner, and nothing a user already has is lost.

Two kinds of output, one rule each:

* A **run directory** (``--out`` of a training script) belongs to the one config in its
  ``config.json``: :meth:`jaxseq.files.results.RunDir.check_config` refuses another config, another
  tool's results, and a non-empty directory without a ``config.json``.
* A **file** named by a flag (``--out=FILE``, ``--table``, ``--publish``, a benchmark's report) is
  claimed with :func:`claim_file` before anything runs and, once written, gets a sidecar
  ``<file>.config.json`` naming the tool and config that wrote it (:func:`record_owner`). An
  existing file is replaced only when its sidecar names the same tool and config, or when the user
  passes ``--overwrite`` (which the refusal names).
* A **figure** redrawn with ``--plot_only`` from a run directory is claimed with
  :func:`claim_figures`: a redraw writes figures only (no table, no results, no sidecar) and
  replaces a figure that jaxseq drew from the same run, which every figure says of itself: its PNG
  carries a ``jaxseq`` text entry naming the tool and the SHA-256 of the run's ``config.json``
  (:func:`figure_owner`, :func:`png_owner`). A figure without that entry or from another run is
  refused like any other file unless ``--overwrite``.

Paths given on the command line have ``~`` expanded (:func:`expand`), as the data flags do.
"""

import fnmatch
import hashlib
import json
import os
import pathlib
from typing import Any, Iterable, Optional, Sequence

from absl import flags

from jaxseq.config import flat_fields
from jaxseq.files.results import NEVER_CHANGE_RESULTS, _plain, check_writable_file, write_json_atomic

OWNER_SUFFIX = ".config.json"
OVERWRITE_FLAG = "--overwrite"
PNG_OWNER_KEY = "jaxseq"  # the PNG text entry naming the tool and run that drew a figure
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
    rerun into the same run directory may extend, as in :meth:`jaxseq.files.results.RunDir.check_config`);
    so are the fields that never change results (:data:`jaxseq.files.results.NEVER_CHANGE_RESULTS`).
    """
    if hasattr(config, "to_dict"):
        config = _left_out(flat_fields(config), (*may_differ, *NEVER_CHANGE_RESULTS))
    return _normal({"tool": tool, "config": config})


def _left_out(fields: dict, patterns: Sequence[str]) -> dict:
    """``fields`` (dotted) without those that match one of the ``fnmatch`` ``patterns``."""
    return {k: v for k, v in fields.items() if not any(fnmatch.fnmatchcase(k, p) for p in patterns)}


def _names(saved: Optional[Any], owner: dict) -> bool:
    """Whether a sidecar's ``saved`` owner record names ``owner``. Fields that never change results,
    which a sidecar may hold (``train.seed_strategy`` in an older one), are not compared."""
    if isinstance(saved, dict) and isinstance(saved.get("config"), dict):
        saved = {**saved, "config": _left_out(saved["config"], NEVER_CHANGE_RESULTS)}
    return saved == _normal(owner)


def _saved_owner(path: pathlib.Path) -> Optional[Any]:
    sidecar = owner_path(path)
    try:
        return json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None


def _refusal(flag: str, given: Optional[str], path: pathlib.Path, whose: str) -> ValueError:
    """The one-line refusal of ``path``, named by ``--flag=given`` (the value typed, when it differs from the file)."""
    named = f"{flag}={path}" if given in (None, os.fspath(path)) else f"{flag}={given}: {path}"
    return ValueError(f"{named}: the file exists and was written by {whose}; choose another path, "
                      f"or add {OVERWRITE_FLAG} to replace it")


def claim_file(path: os.PathLike, flag: str, owner: dict, overwrite: bool, given: Optional[str] = None) -> pathlib.Path:
    """Check up front that ``path`` may be written by ``owner``; the path with ``~`` expanded.

    ``given``: the flag's value as typed, when ``path`` is derived from it (a table's figures).

    Raises:
      ValueError: ``path`` cannot be written (see :func:`jaxseq.files.results.check_writable_file`),
        or it exists and its sidecar does not name ``owner`` (a file the user has, another tool's or
        another config's), unless ``overwrite``.
    """
    path = check_writable_file(expand(os.fspath(path)), flag)
    if path.exists() and not overwrite and not _names(_saved_owner(path), owner):
        whose = "another config" if _saved_owner(path) is not None else "something other than this tool"
        raise _refusal(flag, given, path, whose)
    return path


def claim_files(paths: Iterable[os.PathLike], flag: str, owner: dict, overwrite: bool,
                given: Optional[str] = None) -> list[pathlib.Path]:
    """:func:`claim_file` for each of ``paths`` (the files one flag writes, e.g. a table and its figures)."""
    return [claim_file(path, flag, owner, overwrite, given) for path in paths]


def figure_owner(tool: str, source: Any) -> dict:
    """What a figure drawn by ``tool`` says of itself: the tool and the SHA-256 of what it was drawn
    from (a run's saved config, :meth:`jaxseq.files.results.RunDir.saved_config`, or a summary's JSON)."""
    digest = hashlib.sha256(json.dumps(_normal(source), sort_keys=True).encode()).hexdigest()
    return {"tool": tool, "source_sha256": digest}


def figure_metadata(owner: dict) -> dict[str, str]:
    """The PNG text entries that carry ``owner`` (``savefig(..., metadata=...)``)."""
    return {PNG_OWNER_KEY: json.dumps(owner, sort_keys=True)}


def png_owner(path: os.PathLike) -> Optional[dict]:
    """The owner a PNG written with :func:`figure_metadata` names; None for any other file."""
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError:
        return None
    if not data.startswith(_PNG_SIGNATURE):
        return None
    at = len(_PNG_SIGNATURE)
    while at + 8 <= len(data):  # chunks: length (4 bytes), type (4), data, CRC (4)
        length, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
        body = data[at + 8:at + 8 + length]
        if kind == b"tEXt" and body.partition(b"\0")[0] == PNG_OWNER_KEY.encode():
            try:
                owner = json.loads(body.partition(b"\0")[2].decode("latin-1"))
            except ValueError:
                return None
            return owner if isinstance(owner, dict) else None
        if kind == b"IEND":
            return None
        at += 12 + length
    return None


def claim_figures(paths: Iterable[os.PathLike], flag: str, owner: dict, overwrite: bool,
                  given: Optional[str] = None) -> list[pathlib.Path]:
    """Check up front that a redraw (``--plot_only``) may write the figures ``paths``.

    A figure may be written where there is none, or replace one whose PNG names ``owner`` (see
    :func:`figure_owner`: the same tool, from a run with the same config).

    Raises:
      ValueError: a path cannot be written, or holds a file that is not such a figure, unless ``overwrite``.
    """
    claimed = []
    for path in paths:
        path = check_writable_file(expand(os.fspath(path)), flag)
        if path.exists() and not overwrite and png_owner(path) != _normal(owner):
            drawn = png_owner(path)
            whose = (f"{drawn.get('tool')} from another run" if drawn else "something other than this tool")
            raise _refusal(flag, given, path, whose)
        claimed.append(path)
    return claimed


def record_owner(path: os.PathLike, owner: dict) -> None:
    """Write the sidecar of ``path`` (just written) naming ``owner``."""
    write_json_atomic(owner_path(path), owner)
