"""The scalars of ``metrics.jsonl`` also sent to TensorBoard or Weights & Biases, when asked.

A script that writes ``metrics.jsonl`` defines ``--tensorboard`` and ``--wandb`` with
:func:`jaxseq.cli.define_tracking`; :func:`jaxseq.cli.run_main` starts the trackers they ask for
(:func:`start`) and closes them at the end. Every row a run directory adds to ``metrics.jsonl``
(:meth:`jaxseq.files.results.RunDir.append_metrics` and ``record_setting``) then goes to each
tracker as well (:func:`log`), so the three never disagree:

- a row's *run* is named by its setting: its text fields and its seed (``model=rnn,task=...,length=5,seed=0``;
  ``.`` for a row with none, as in a text run);
- its *step* is its ``step`` field (or ``epoch``);
- each other number (bools as 0/1) is one scalar, tagged with the field's name.

TensorBoard (``pip install 'jaxseq[tensorboard]'``: tensorboardX, no TensorFlow) gets event files
under ``OUT/tensorboard/<run>/``: ``tensorboard --logdir OUT/tensorboard``; a run logged again from
some step on (a resumed text run, a setting run again) hides what was logged there before. Weights & Biases
(``pip install 'jaxseq[wandb]'``) gets one W&B run per run directory, its scalars named
``<run>/<field>`` against ``<run>/step``, in the project ``--wandb`` names; ``WANDB_MODE=offline``
keeps it on disk (under ``OUT/wandb/``).
"""

import pathlib
import time
from typing import Any, Iterable, Mapping, Optional, Sequence

STEP_FIELDS = ("step", "epoch")
TENSORBOARD_DIR = "tensorboard"


def run_name(row: Mapping[str, Any], columns: Sequence[str] = ()) -> str:
    """The setting a row belongs to: ``columns`` (fields naming the setting), its text fields and its seed."""
    keys = [k for k in row if k in columns or isinstance(row[k], str) or k == "seed"]
    return ",".join(f"{k}={row[k]}" for k in keys) or "."


def scalars(row: Mapping[str, Any], columns: Sequence[str] = ()) -> tuple[Optional[int], dict[str, float]]:
    """``(step, {field: value})``: a row's step and its numbers other than the step and the setting's fields."""
    step_key = next((k for k in STEP_FIELDS if k in row), None)
    named = set(columns) | {"seed"} | ({step_key} if step_key else set())
    values = {k: float(v) for k, v in row.items()
              if k not in named and isinstance(v, (int, float)) and not isinstance(v, str)}
    return (int(row[step_key]) if step_key else None), values


class TensorBoardTracker:
    """Event files under ``<run directory>/tensorboard/<run>/``, one writer per run (tensorboardX)."""

    def __init__(self):
        from tensorboardX import SummaryWriter  # noqa: PLC0415 - an optional extra

        self._summary_writer = SummaryWriter
        self._writers: dict[pathlib.Path, Any] = {}

    def log(self, directory: pathlib.Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
        """Write each row's scalars as events of its run."""
        touched = set()
        for row in rows:
            path = directory / TENSORBOARD_DIR / run_name(row, columns)
            step, values = scalars(row, columns)
            if path not in self._writers:
                # TensorBoard hides what an earlier process logged from this step on: a resumed text run
                # or a setting run again replaces those rows in metrics.jsonl too
                # (a file name of its own: two writers started in one second would share tensorboardX's)
                self._writers[path] = self._summary_writer(str(path), purge_step=step,
                                                           filename_suffix=f".{time.time_ns()}")
            for tag, value in values.items():
                self._writers[path].add_scalar(tag, value, step)
            touched.add(path)
        for path in touched:  # on disk as each setting or chunk finishes, for a live TensorBoard
            self._writers[path].flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class WandbTracker:
    """One Weights & Biases run per run directory, its scalars named ``<run>/<field>`` (``wandb``)."""

    def __init__(self, project: str):
        import wandb  # noqa: PLC0415 - an optional extra

        self._wandb, self._project = wandb, project
        self._runs: dict[pathlib.Path, Any] = {}
        self._defined: set[tuple[pathlib.Path, str]] = set()

    def log(self, directory: pathlib.Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
        """Log each row's scalars against its run's step."""
        if directory not in self._runs:
            directory.mkdir(parents=True, exist_ok=True)
            self._runs[directory] = self._wandb.init(project=self._project, name=directory.name, dir=str(directory),
                                                     reinit="create_new")
        wandb_run = self._runs[directory]
        for row in rows:
            name = run_name(row, columns)
            if (directory, name) not in self._defined:
                wandb_run.define_metric(f"{name}/step", hidden=True)
                wandb_run.define_metric(f"{name}/*", step_metric=f"{name}/step")
                self._defined.add((directory, name))
            step, values = scalars(row, columns)
            logged = {f"{name}/{k}": v for k, v in values.items()}
            wandb_run.log({**logged, f"{name}/step": step if step is not None else 0})

    def close(self) -> None:
        for wandb_run in self._runs.values():
            wandb_run.finish()
        if self._runs:
            self._wandb.teardown()  # waits for W&B's service to write everything out (offline: its run file)
        self._runs.clear()


_TRACKERS: list = []


def start(tensorboard: bool = False, wandb_project: Optional[str] = None) -> None:
    """Send every row of ``metrics.jsonl`` written from now on to TensorBoard and/or W&B.

    Raises:
      ValueError: the extra a tracker needs is not installed, naming the ``pip install`` that adds it.
    """
    close()
    try:
        if tensorboard:
            _TRACKERS.append(TensorBoardTracker())
        if wandb_project:
            _TRACKERS.append(WandbTracker(wandb_project))
    except ImportError as error:
        close()
        extra, flag = ("tensorboard", "--tensorboard") if "tensorboard" in str(error).lower() else ("wandb", "--wandb")
        raise ValueError(f"{flag} needs an extra that is not installed ({error}); "
                         f"pip install 'jaxseq[{extra}]' (or leave out {flag})") from None


def log(directory: pathlib.Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str] = ()) -> None:
    """Send ``rows`` (just added to ``directory``'s ``metrics.jsonl``) to every started tracker;
    ``columns`` are the fields that name a row's setting (besides its text fields and seed)."""
    if _TRACKERS:
        rows = list(rows)
        for tracker in _TRACKERS:
            tracker.log(pathlib.Path(directory), rows, columns)


def close() -> None:
    """Flush and close every tracker (the end of a script)."""
    while _TRACKERS:
        _TRACKERS.pop().close()
