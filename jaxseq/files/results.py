"""Run directories: ``config.json``, ``metrics.jsonl`` and ``results.csv`` a person can use.

Rows are written as soon as they exist, so an interrupted run keeps what finished. A CSV file is
rewritten whole through a temporary file and a rename, so a crash never leaves half a row; a torn
row or JSON line left by an older crash is skipped with a warning, and a setting missing any of its
rows runs again, its curves and rows replaced together (:meth:`RunDir.record_setting`). The
directory itself is created only when the first file is written, so a run that fails before that
leaves nothing behind.

A run directory belongs to the config in its ``config.json`` (:meth:`RunDir.check_config`): another
config, another tool's results, or files without a ``config.json`` are refused with one line naming
the directory; a damaged ``config.json`` or ``results.csv`` is named with what to do. Files outside a
run directory are guarded by :mod:`jaxseq.files.guard`.
"""

import csv
import datetime
import fnmatch
import io
import json
import os
import pathlib
from typing import Any, Iterable, Mapping, Optional, Sequence

import ml_collections
import numpy as np

from jaxseq import tracking
from jaxseq.config import TRAIN_SECTION_NAMES, flat_fields
from jaxseq.report import note, warn

# settings that never change a run's results beyond float rounding: the runner section (how seeds
# and batch rows share programs and threads, when a stall is declared), and its fields under the
# names the train section of an older config.json gives them
NEVER_CHANGE_RESULTS = ("runner.*", *TRAIN_SECTION_NAMES)

_ABSENT = object()


def _as_before(key: str, value: Any) -> bool:
    """Whether a saved config without the field ``key`` means what a config holding ``value`` means.

    It does when ``value`` is the default the code itself uses for an absent field: a ``model.*``
    field's default in the model builder or in the built-in cell that reads it (the class's own,
    :func:`jaxseq.models.registry.model_defaults`), a ``data.<task>.*`` field's in the task's builder
    (:func:`jaxseq.data.sequences.task_params`). So a results directory written before a field
    existed stays resumable, and a run that sets the field to something else is refused. ``key`` may
    sit in a section of its own (``variants.<name>.model.gate_init``).
    """
    from jaxseq.data.sequences import task_params  # imported here: reading results needs neither jax nor flax
    from jaxseq.models.registry import model_defaults

    parts = key.split(".")
    if len(parts) >= 2 and parts[-2] == "model":
        return model_defaults().get(parts[-1], _ABSENT) == value
    if len(parts) >= 3 and parts[-3] == "data":
        return task_params(parts[-2]).get(parts[-1], _ABSENT) == value
    return False


def _plain(value: Any) -> Any:
    """Turn numpy / jax scalars into JSON-friendly Python values."""
    if isinstance(value, (np.generic,)):
        return value.item()
    if hasattr(value, "shape") and getattr(value, "shape", None) == ():
        return np.asarray(value).item()
    return value


def write_text_atomic(path: os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename: readers see the old or the new file."""
    path = pathlib.Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` via a temporary file and rename."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_plain) + "\n")


def fresh_run_path(script: str, root: os.PathLike = "runs") -> pathlib.Path:
    """``runs/<script>/<YYYYmmdd-HHMMSS>`` (with ``-2``, ``-3``... if that exists): a script's default --out."""
    base = pathlib.Path(root) / script / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _refuse_flag_like(path: os.PathLike, flag: str) -> None:
    """Raise ValueError if ``path`` as given starts with ``-``: most likely a mistyped flag."""
    if os.fspath(path).startswith("-"):
        raise ValueError(f"{flag}={os.fspath(path)}: a path that starts with '-' looks like a mistyped flag; "
                         f"write {flag}=./{os.fspath(path)} if you mean it")


def check_writable(path: os.PathLike, flag: str = "--out") -> pathlib.Path:
    """Check up front that ``path`` can be a directory we write into (it need not exist yet).

    Raises:
      ValueError: ``path`` starts with ``-`` (a mistyped flag, e.g. ``--out=--out=x``, which would
        otherwise create a directory named ``--out=x``), ``path`` (or a parent) is a file, or the
        nearest existing parent is not writable or lies in ``/proc``, ``/sys`` or ``/dev``.

    A leading ``~`` is expanded, as the data flags do.
    """
    _refuse_flag_like(path, flag)
    path = pathlib.Path(path).expanduser()
    _check_nearest_directory(path, f"{flag}={path}", flag)
    return path


def _check_nearest_directory(path: pathlib.Path, given: str, flag: str) -> None:
    """Raise ValueError (starting with ``given``) unless the nearest existing one of ``path`` and
    its parents is a writable directory."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{given}: {existing} is a file, not a directory; choose another {flag}")
    if pathlib.Path(os.path.realpath(existing)).parts[1:2] in (("proc",), ("sys",), ("dev",)):
        raise ValueError(f"{given}: {existing} is a kernel file system, not a place for results; choose another {flag}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{given}: {existing} is not writable; choose another {flag}")


def check_writable_file(path: os.PathLike, flag: str = "--out") -> pathlib.Path:
    """Check up front that a file can be written at ``path`` (its directory need not exist yet).

    Raises:
      ValueError: ``path`` starts with ``-`` or is a directory, or its directory cannot be written
        (see :func:`check_writable`).
    """
    _refuse_flag_like(path, flag)
    path = pathlib.Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"{flag}={path} is a directory; give a file name")
    _check_nearest_directory(path.absolute().parent, f"{flag}={path}", flag)
    return path


def output_dir(out: Optional[str], script: str) -> "RunDir":
    """The run directory a script writes to: ``out``, or a fresh ``runs/<script>/<timestamp>/``.

    Results go under ``results/`` only when asked (``--out=results/...``). Nothing is created
    here; the directory appears with its first file.
    """
    path = check_writable(out if out else fresh_run_path(script))
    if not out:
        note(f"writing to {path} (give --out to choose)")
    return RunDir(path)


def _complete(row: Mapping[Optional[str], Any]) -> bool:
    """Whether a ``csv.DictReader`` row has exactly the header's fields (a torn row has fewer or more)."""
    return None not in row and None not in row.values()


def _json_compatible(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The config's dotted fields as they read back from ``config.json`` (tuples become lists)."""
    return flat_fields(ml_collections.ConfigDict(json.loads(json.dumps(config.to_dict(), default=_plain))))


def _matches(path: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def _union_of_lists(saved: Any, new: Any) -> Any:
    """Two comma-separated lists as one, in order, without repeats (a sweep list extended by a rerun)."""
    if not (isinstance(saved, str) and isinstance(new, str)):
        return new
    items = [item.strip() for item in f"{saved},{new}".split(",") if item.strip()]
    return ",".join(dict.fromkeys(items))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_numbers(path: pathlib.Path, rows: list[dict[str, str]]) -> None:
    """Refuse a CSV row whose value is not a number in a column of numbers (an edited or damaged file).

    Raises:
      ValueError: naming the file, the row (counted from 1 after the header), the column and the value.
    """
    for column in rows[0] if rows else ():
        values = [row[column] for row in rows]
        if any(_is_number(v) for v in values):
            for i, value in enumerate(values):
                if value and not _is_number(value):
                    raise ValueError(f"{path}, row {i + 1}: {column} is {value!r}, not a number; "
                                     "restore the file from a copy (git checkout) or choose another --out")


class RunDir:
    """A directory holding the outputs of one experiment config.

    Args:
      path: the directory; created when the first file is written into it.
    Raises:
      ValueError: ``path`` exists and is not a directory.
    """

    def __init__(self, path: os.PathLike):
        self.path = pathlib.Path(path)
        self._claimed: Optional[tuple[ml_collections.ConfigDict, tuple[str, ...]]] = None  # see check_config
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"{self.path} is a file, not a run directory; choose another --out")

    def file(self, name: str) -> pathlib.Path:
        """Path of ``name`` inside the run directory."""
        return self.path / name

    def _writable_file(self, name: str) -> pathlib.Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.file(name)

    def config_differences(self, config: ml_collections.ConfigDict, may_differ: Sequence[str] = ()) -> list[str]:
        """Fields (``"optim.lr 0.001 -> 0.5"``) in which ``config`` differs from the saved ``config.json``.

        ``may_differ`` are dotted fields or ``fnmatch`` patterns that may change between runs into
        one directory (the sweep lists); so may :data:`NEVER_CHANGE_RESULTS`, and a field missing from the saved config while
        the new one holds the code's own default for it (:func:`_as_before`). [] when the directory does not exist or is empty.

        Raises:
          ValueError: the directory holds files but no ``config.json`` (nothing says whose they are),
            its ``config.json`` cannot be read, or it holds another tool's results (other config
            sections; the runner section, present or not, says nothing of whose they are).
        """
        saved = self.saved_config()
        if saved is None:
            return []
        now = _json_compatible(config)
        sections = [{k.split(".")[0] for k in fields} - {"runner"} for fields in (saved, now)]
        if sections[0] != sections[1]:
            raise ValueError(f"{self.path} holds another tool's results (its config.json has sections "
                             f"{', '.join(sorted(sections[0]))}; this config has {', '.join(sorted(sections[1]))}); "
                             "choose another --out")
        allowed = (*may_differ, *NEVER_CHANGE_RESULTS)
        changed = sorted(
            k
            for k in saved.keys() | now.keys()
            if saved.get(k) != now.get(k)
            and not _matches(k, allowed)
            and not (k not in saved and _as_before(k, now[k]))
        )
        return [f"{k} {saved.get(k, '(absent)')!r} -> {now.get(k, '(absent)')!r}" for k in changed]

    def saved_config(self) -> Optional[dict[str, Any]]:
        """The dotted fields of the saved ``config.json``; None if the directory is missing or empty.

        Raises:
          ValueError: the directory holds files but no ``config.json``, or ``config.json`` is not a JSON object.
        """
        path = self.file("config.json")
        if not path.is_file():
            # (files written since check_config accepted the directory are this run's own)
            if self._claimed is None and self.path.is_dir() and any(self.path.iterdir()):
                raise ValueError(f"{self.path} holds files but no config.json, so nothing says which config they "
                                 "belong to; choose another --out (or an empty directory)")
            return None
        try:
            saved = json.loads(path.read_text())
            if not isinstance(saved, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} cannot be read ({error}); restore it from a copy (git checkout) "
                             "or choose another --out") from None
        return flat_fields(ml_collections.ConfigDict(saved))

    def check_config(self, config: ml_collections.ConfigDict, may_differ: Sequence[str] = ()) -> None:
        """Refuse to add results of a config that differs from the one the directory holds.

        Once checked, the config is saved (:meth:`add_config`) just before the first rows
        :meth:`record_setting` writes, so ``config.json`` is in place before any result, and a run
        that fails before its first result leaves nothing behind.

        Raises:
          ValueError: naming every differing field (``may_differ`` as in :meth:`config_differences`).
        """
        changed = self.config_differences(config, may_differ)
        if changed:
            raise ValueError(f"{self.path} holds results of another config ({'; '.join(changed)}); "
                             "rerun with its settings or choose another --out")
        self._claimed = (config, tuple(may_differ))

    def write_config(self, config: ml_collections.ConfigDict) -> None:
        """Save the full config as ``config.json`` (replacing any saved one)."""
        write_json_atomic(self._writable_file("config.json"), config.to_dict())

    def add_config(self, config: ml_collections.ConfigDict, may_differ: Sequence[str] = ()) -> None:
        """Save the config of rows just added: checked with :meth:`check_config`, merged with the saved one.

        The comma-separated lists among ``may_differ`` are saved as the union of the saved and the
        new ones, so ``config.json`` describes every row in the directory.
        """
        self.check_config(config, may_differ)
        fields = _json_compatible(config)
        saved = self.saved_config()
        if saved is not None:
            for key, value in fields.items():
                if key in saved and _matches(key, may_differ):
                    fields[key] = _union_of_lists(saved[key], value)
        nested: dict[str, Any] = {}
        for key, value in fields.items():
            *sections, name = key.split(".")
            target = nested
            for section in sections:
                target = target.setdefault(section, {})
            target[name] = value
        write_json_atomic(self._writable_file("config.json"), nested)

    def keep_claimed_config(self) -> None:
        """Save the config :meth:`check_config` accepted (merged as :meth:`add_config` does), before
        anything of it is written here: the first rows, or the save of a setting under way
        (:mod:`jaxseq.files.unfinished`), which a later run must find owned. Nothing when none was checked."""
        if self._claimed is not None:
            self.add_config(*self._claimed)

    def append_metrics(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append one JSON line per row to ``metrics.jsonl`` (after a newline if a crash tore the last line)."""
        path = self._writable_file("metrics.jsonl")
        torn = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        rows = [{k: _plain(v) for k, v in row.items()} for row in rows]
        with open(path, "a") as f:
            if torn:
                f.write("\n")
            for row in rows:
                f.write(json.dumps(row) + "\n")
        tracking.log(self.path, rows)

    def _read_csv_rows(self, name: str) -> tuple[list[str], list[dict[str, str]]]:
        """The header and every row of a CSV file, torn ones included ([], [] if it does not exist)."""
        path = self.file(name)
        if not path.exists():
            return [], []
        try:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
                header = list(reader.fieldnames or [])
        except (UnicodeDecodeError, csv.Error) as error:
            raise ValueError(f"{path} cannot be read ({error}); restore it from a copy or choose another --out") from None
        return header, rows

    def torn_rows(self, name: str = "results.csv") -> int:
        """How many rows of a CSV file are torn (too few or too many fields: a crash while writing).

        Raises:
          ValueError: the file is not readable text CSV, naming it and what to do.
        """
        return sum(not _complete(row) for row in self._read_csv_rows(name)[1])

    def _read_csv(self, name: str) -> tuple[list[str], list[dict[str, str]]]:
        """The header and complete rows of a CSV file; a torn row (a crash mid-write) is skipped with a warning.

        Raises:
          ValueError: the file is not readable text CSV, naming it and what to do.
        """
        path = self.file(name)
        header, rows = self._read_csv_rows(name)
        complete = [r for r in rows if _complete(r)]
        if len(complete) < len(rows):
            warn(f"skipped {len(rows) - len(complete)} torn row(s) of {path} (a crash while writing); "
                 "their settings are run again")
        _check_numbers(path, complete)
        return header, complete

    def finished_settings(self, columns: Sequence[str], num_rows: int, name: str = "results.csv") -> set[tuple[str, ...]]:
        """The settings (tuples of the ``columns`` values, as strings) with all ``num_rows`` rows in ``name``.

        A setting with fewer rows (a torn row skipped, a row lost) is not finished: it runs again, and
        :meth:`record_setting` replaces whatever rows it had.

        Raises:
          ValueError: the file lacks one of ``columns`` (a damaged header), naming it, before anything trains.
        """
        header, rows = self._read_csv(name)
        missing = [c for c in columns if header and c not in header]
        if missing:
            raise ValueError(f"{self.file(name)} has no column {', '.join(missing)} (a damaged header); "
                             "restore it from a copy or choose another --out")
        counts: dict[tuple[str, ...], int] = {}
        for row in rows:
            key = tuple(row[c] for c in columns)
            counts[key] = counts.get(key, 0) + 1
        return {key for key, count in counts.items() if count >= num_rows}

    def record_setting(self, columns: Mapping[str, Any], metrics: Iterable[Mapping[str, Any]],
                       results: list[Mapping[str, Any]], name: str = "results.csv") -> None:
        """Record one finished setting: its curves in ``metrics.jsonl`` and its rows in ``name``, replacing
        any rows either file held for the same ``columns`` (a torn earlier attempt), so no curve is doubled.

        The curves are written first and the rows last: a setting counts as finished only once its rows
        are in place, and a crash between the two is undone by the rerun this triggers.
        """
        self.keep_claimed_config()
        same = {k: str(_plain(v)) for k, v in columns.items()}

        def of_setting(row: Mapping[str, Any]) -> bool:
            return all(str(row.get(k)) == v for k, v in same.items())

        metrics = list(metrics)
        kept = [r for r in self.read_metrics() if not of_setting(r)]
        if metrics or self.file("metrics.jsonl").exists():
            lines = [json.dumps({k: _plain(v) for k, v in row.items()}) for row in [*kept, *metrics]]
            write_text_atomic(self._writable_file("metrics.jsonl"), "".join(line + "\n" for line in lines))
            tracking.log(self.path, [json.loads(line) for line in lines[len(kept):]], tuple(columns))
        if not results:
            return
        fields = list(results[0].keys())
        header, existing = self._read_csv(name)
        if header and header != fields:
            raise ValueError(f"{self.file(name)} has columns {header}, new rows have {fields}; "
                             "restore it from a copy or choose another --out")
        self.write_results([*(r for r in existing if not of_setting(r)), *results], name)

    def write_results(self, rows: list[Mapping[str, Any]], name: str = "results.csv") -> None:
        """Write rows (all with the same columns) as a CSV file with a header, replacing it atomically."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _plain(v) for k, v in row.items()} for row in rows)
        write_text_atomic(self._writable_file(name), buffer.getvalue())

    def append_results(self, rows: list[Mapping[str, Any]], name: str = "results.csv") -> None:
        """Add summary rows to a CSV file (with a header when it is new), rewriting it atomically.

        All rows (and any rows already in the file) must have the same columns.
        """
        if not rows:
            return
        fields = list(rows[0].keys())
        header, existing = self._read_csv(name)
        if header and header != fields:
            raise ValueError(f"{self.file(name)} has columns {header}, new rows have {fields}; use another --out")
        self.write_results([*existing, *rows], name)

    def read_results(self, name: str = "results.csv") -> list[dict[str, str]]:
        """Rows of a CSV file in the run directory as dicts of strings ([] if it does not exist)."""
        return self._read_csv(name)[1]

    def read_metrics(self) -> list[dict[str, Any]]:
        """All rows of ``metrics.jsonl`` ([] if it does not exist); a torn line is skipped with a warning."""
        path = self.file("metrics.jsonl")
        if not path.exists():
            return []
        rows, torn = [], 0
        for line in path.read_bytes().splitlines():
            if line.strip():
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    row = None
                if isinstance(row, dict):
                    rows.append(row)
                else:
                    torn += 1
        if torn:
            warn(f"skipped {torn} torn line(s) of {path} (a crash while writing)")
        return rows
