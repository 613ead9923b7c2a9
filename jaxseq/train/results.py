"""Run directories: ``config.json``, ``metrics.jsonl`` and ``results.csv`` a person can use.

Rows are appended and flushed as soon as they exist, so an interrupted run keeps what finished.
"""

import csv
import json
import os
import pathlib
from typing import Any, Iterable, Mapping

import ml_collections
import numpy as np


def _plain(value: Any) -> Any:
    """Turn numpy / jax scalars into JSON-friendly Python values."""
    if isinstance(value, (np.generic,)):
        return value.item()
    if hasattr(value, "shape") and getattr(value, "shape", None) == ():
        return np.asarray(value).item()
    return value


def write_json_atomic(path: os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` via a temporary file and rename."""
    path = pathlib.Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_plain) + "\n")
    os.replace(tmp, path)


class RunDir:
    """A directory holding one experiment's outputs.

    Args:
      path: the directory; created if missing.
    """

    def __init__(self, path: os.PathLike):
        self.path = pathlib.Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def file(self, name: str) -> pathlib.Path:
        """Path of ``name`` inside the run directory."""
        return self.path / name

    def write_config(self, config: ml_collections.ConfigDict) -> None:
        """Save the full config as ``config.json``."""
        write_json_atomic(self.file("config.json"), config.to_dict())

    def append_metrics(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append one JSON line per row to ``metrics.jsonl``."""
        with open(self.file("metrics.jsonl"), "a") as f:
            for row in rows:
                f.write(json.dumps({k: _plain(v) for k, v in row.items()}) + "\n")

    def append_results(self, rows: list[Mapping[str, Any]], name: str = "results.csv") -> None:
        """Append summary rows to a CSV file, writing the header when the file is new.

        All rows (and any rows already in the file) must have the same columns.
        """
        if not rows:
            return
        path = self.file(name)
        fields = list(rows[0].keys())
        new = not path.exists() or path.stat().st_size == 0
        if not new:
            with open(path, newline="") as f:
                existing = next(csv.reader(f), [])
            if existing != fields:
                raise ValueError(f"{path} has columns {existing}, new rows have {fields}; use another --out")
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            if new:
                writer.writeheader()
            for row in rows:
                writer.writerow({k: _plain(v) for k, v in row.items()})
            f.flush()
            os.fsync(f.fileno())

    def read_results(self, name: str = "results.csv") -> list[dict[str, str]]:
        """Rows of a CSV file in the run directory as dicts of strings ([] if it does not exist)."""
        path = self.file(name)
        if not path.exists():
            return []
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    def read_metrics(self) -> list[dict[str, Any]]:
        """All rows of ``metrics.jsonl`` ([] if it does not exist)."""
        path = self.file("metrics.jsonl")
        if not path.exists():
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
