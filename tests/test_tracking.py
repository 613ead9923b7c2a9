"""``--tensorboard`` / ``--wandb``: the scalars of ``metrics.jsonl`` read back from TensorBoard event
files (and W&B's offline run file, where wandb is installed) equal the rows of ``metrics.jsonl``."""

import json
import pathlib
import struct
import sys

import numpy as np
import pytest

from jaxseq import runner, tracking
from jaxseq.runner.multiseed import SeedResults
from jaxseq.runner.record import record_results
from jaxseq.files.results import RunDir
from test_cli_errors import QUICK, call  # noqa: F401 (call: the fixture)


def read_events(logdir: pathlib.Path) -> dict[tuple[str, int, str], float]:
    """``{(run, step, tag): value}`` of every scalar in the event files under ``logdir`` (TFRecord
    framing: length, its CRC, an ``Event`` proto, its CRC)."""
    from tensorboardX.proto import event_pb2  # noqa: PLC0415

    scalars = {}
    for path in sorted(logdir.rglob("events.out.tfevents.*")):  # in name order, as TensorBoard reads them
        data, pos, run = path.read_bytes(), 0, path.parent.relative_to(logdir).as_posix()
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            if event.session_log.status == event_pb2.SessionLog.START:  # as TensorBoard: later steps are purged
                scalars = {k: v for k, v in scalars.items() if k[0] != run or k[1] < event.step}
            for value in event.summary.value:
                key = (run, event.step, value.tag)
                assert key not in scalars, key  # each scalar written once
                scalars[key] = value.simple_value
    return scalars


def expected(rows: list[dict], columns=()) -> dict[tuple[str, int, str], float]:
    """The scalars :mod:`jaxseq.tracking` sends for ``rows``, keyed as :func:`read_events` reads them."""
    out = {}
    for row in rows:
        step, values = tracking.scalars(row, columns)
        out.update({(tracking.run_name(row, columns), step, tag): v for tag, v in values.items()})
    return out


def recorded_setting(cfg, run_dir, progress, log_every, label, trainer, extra, **columns):
    """``train_setting`` with per-step numbers drawn here instead of trained: what is tested is where the
    rows go (metrics.jsonl and the trackers), through the real recording path."""
    rng = np.random.default_rng(len(label))
    seeds, total = cfg.train.num_seeds, cfg.train.num_steps
    steps = {k: rng.random((seeds, total)).astype(np.float32) for k in ("loss", "accuracy", "grad_norm", "param_norm")}
    steps["active"] = np.arange(total)[None, :] < np.array([[total], [total // 2]])  # seed 1 stops half-way
    final = {"eval_accuracy": rng.random(seeds), "eval_loss": rng.random(seeds), "steps": np.array([total, total // 2]),
             "converged_step": np.full(seeds, -1), "stopped_step": np.array([-1, total // 2])}
    record_results(SeedResults(None, steps, final, 0.0), run_dir, log_every, label, extra, **columns)


def test_tensorboard_events_equal_metrics_jsonl(call, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    monkeypatch.setattr(runner, "train_setting", recorded_setting)
    code, err = call("run_palindrome", *QUICK, "--config.sweep.lengths=4", "--config.train.num_steps=10", "--log_every=5",
                     "--tensorboard", f"--out={out}", files_change=True)
    assert code in (0, None), err
    rows = RunDir(out).read_metrics()
    events = read_events(out / "tensorboard")
    assert len(rows) == 2 * 2 and len(events) == len(rows) * 5  # steps 5, 10 x 2 seeds; 5 numbers a row
    runs = {key[0] for key in events}
    assert runs == {f"model=rnn,task=decimal_palindrome,length=4,seed={s}" for s in (0, 1)}
    want = expected(rows, ("model", "task", "length"))
    assert events.keys() == want.keys()
    for key, value in want.items():
        assert events[key] == np.float32(value), key  # TensorBoard keeps float32


def test_rows_appended_one_chunk_at_a_time(tmp_path):
    """A text run's rows (no setting columns, one row per chunk) go to one run, ``.``."""
    run_dir = RunDir(tmp_path / "run")
    rows = [{"step": 10 * i, "loss": 3.0 / i, "accuracy": 0.1 * i, "lr": 1e-3} for i in (1, 2, 3)]
    tracking.start(tensorboard=True)
    try:
        for row in rows:
            run_dir.append_metrics([row])
    finally:
        tracking.close()
    assert read_events(run_dir.file("tensorboard")) == {k: np.float32(v) for k, v in expected(rows).items()}
    assert {k[0] for k in expected(rows)} == {"."}
    assert run_dir.read_metrics() == rows


def test_a_resumed_run_replaces_what_it_logs_again(tmp_path):
    """As metrics.jsonl after a resume drops the rows past the restored step, TensorBoard hides them."""
    run_dir = RunDir(tmp_path / "run")
    first = [{"step": s, "loss": 1.0 / s} for s in (10, 20, 30)]
    again = [{"step": s, "loss": 2.0 / s} for s in (20, 30, 40)]  # restored at step 10
    for rows in (first, again):
        tracking.start(tensorboard=True)
        try:
            run_dir.append_metrics(rows)
        finally:
            tracking.close()
    assert read_events(run_dir.file("tensorboard")) == {k: np.float32(v) for k, v in expected([first[0], *again]).items()}


def test_a_missing_extra_names_its_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX raises ImportError
    with pytest.raises(ValueError, match=r"--tensorboard needs .* pip install 'jaxseq\[tensorboard\]'"):
        tracking.start(tensorboard=True)
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ValueError, match=r"--wandb needs .* pip install 'jaxseq\[wandb\]'"):
        tracking.start(wandb_project="p")


def read_wandb_history(path: pathlib.Path) -> list[dict]:
    """The logged rows of an offline W&B run file (a header, then LevelDB-log records of ``Record`` protos)."""
    from wandb.proto import wandb_internal_pb2  # noqa: PLC0415

    data, pos, block, records, pending = path.read_bytes(), 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (kind, length) == (0, 0):  # the rest of a block is padding
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # a whole record, or the last piece of one
            records.append(pending)
    history = []
    for raw in records:
        record = wandb_internal_pb2.Record.FromString(raw)
        if record.WhichOneof("record_type") == "history":
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            history.append({k: v for k, v in items.items() if not k.startswith("_")})
    return history


def test_wandb_offline_history_equals_metrics_jsonl(tmp_path, monkeypatch):
    """Only where wandb is installed (it is not in the test extra: it is heavy)."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = RunDir(tmp_path / "sweep")
    rows = [{"model": "rnn", "length": 4, "seed": s, "step": t, "active": True, "loss": 1.0 / t + s}
            for t in (5, 10) for s in (0, 1)]
    tracking.start(wandb_project="jaxseq-tests")
    try:
        run_dir.record_setting({"model": "rnn", "length": 4}, rows, [])
    finally:
        tracking.close()
    (path,) = run_dir.path.glob("wandb/offline-run-*/run-*.wandb")
    history = read_wandb_history(path)
    logged = {}
    for entry in history:
        (step_key,) = [k for k in entry if k.endswith("/step")]
        name = step_key[: -len("/step")]
        logged.update({(name, entry[step_key], k[len(name) + 1:]): v for k, v in entry.items() if k != step_key})
    assert logged == expected(run_dir.read_metrics(), ("model", "length"))
