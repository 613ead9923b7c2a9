"""A setting under way survives an interruption: it goes on from its last save, and the run it
finishes is the run that would have happened without the interruption."""

import numpy as np
import pytest

from jaxseq.config import load_config
from jaxseq.files.results import RunDir
from jaxseq.files.unfinished import UnfinishedSetting
from jaxseq.runner.record import train_setting
from jaxseq.train.sweep import setting_config

COLUMNS = {"model": "lstm", "length": 6}
NUM_CHUNKS = 4


def setting(**fields):
    """A tiny LSTM setting of four chunks that does not stop early in its 40 steps."""
    return setting_config(load_config("configs/palindrome.py:quick"), **{
        "model.name": "lstm", "model.hidden_size": 8, "data.length": 6, "data.batch_size": 16,
        "data.eval_batch_size": 32, "train.num_seeds": 2, "train.num_steps": 10 * NUM_CHUNKS,
        "train.chunk_steps": 10, "train.stop_accuracy": 1.0, **fields})


class StopAfter:
    """A progress bar that raises ``error`` when the ``chunks``-th chunk reports (after its save point)."""

    def __init__(self, chunks: int, error: BaseException):
        self.n, self.calls, self.chunks, self.error = 0, 0, chunks, error

    def update(self, steps):
        self.n += steps
        self.calls += 1
        if self.calls == self.chunks:
            raise self.error

    def set_postfix_str(self, text):
        pass


def trained(run_dir: RunDir, cfg, **kwargs):
    return train_setting(cfg, run_dir, log_every=1, **kwargs, **COLUMNS)


def same_run(a, b):
    for key in ("loss", "accuracy", "active", "grad_norm"):
        np.testing.assert_array_equal(a.steps[key], b.steps[key])
    for key in ("eval_accuracy", "eval_loss", "steps"):
        np.testing.assert_array_equal(a.final[key], b.final[key])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return trained(RunDir(tmp_path_factory.mktemp("whole")), setting())


@pytest.mark.parametrize("error, save_every_s", [
    (KeyboardInterrupt(), 1e9),  # Ctrl-C: saved as it stops
    (SystemExit(1), 0.0),  # a kill that runs no handler: the periodic save after chunk 2 is what is left
])
def test_an_interrupted_setting_goes_on_from_its_save_and_ends_as_if_never_stopped(
        tmp_path, uninterrupted, error, save_every_s, capsys):
    run_dir = RunDir(tmp_path)
    run_dir.check_config(setting())  # as a study script does before training
    with pytest.raises(type(error)):
        trained(run_dir, setting(), progress=StopAfter(2, error), save_every_s=save_every_s)
    save = UnfinishedSetting(run_dir, COLUMNS, setting()).path
    assert save.is_file() and save.with_name(save.name + ".sha256").is_file()
    assert run_dir.read_results() == []  # nothing recorded for an unfinished setting

    # the next run of the same command: its directory holds the config the save belongs to
    run_dir = RunDir(tmp_path)
    run_dir.check_config(setting())
    bar = StopAfter(0, KeyboardInterrupt())
    resumed = trained(run_dir, setting(), progress=bar)
    assert "continuing from step 20" in capsys.readouterr().err
    assert bar.n == 10 * NUM_CHUNKS  # the bar counts the steps done before
    same_run(resumed, uninterrupted)
    assert len(resumed.chunk_seconds) == NUM_CHUNKS and resumed.wall_time >= sum(resumed.chunk_seconds[:2])
    assert not save.parent.exists()  # deleted once the rows are written
    assert len(run_dir.read_results()) == 2


def test_a_save_of_another_config_or_a_damaged_save_is_not_used(tmp_path, uninterrupted, capsys):
    run_dir = RunDir(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        trained(run_dir, setting(**{"optim.lr": 1e-2}), progress=StopAfter(2, KeyboardInterrupt()))
    again = trained(run_dir, setting())
    assert "saved with another config of this setting; it starts again from step 0" in capsys.readouterr().err
    same_run(again, uninterrupted)

    with pytest.raises(KeyboardInterrupt):
        trained(run_dir, setting(), progress=StopAfter(2, KeyboardInterrupt()))
    save = UnfinishedSetting(run_dir, COLUMNS, setting()).path
    save.write_bytes(save.read_bytes()[:-10])
    again = trained(run_dir, setting())
    assert "fails its SHA-256 check" in capsys.readouterr().err
    same_run(again, uninterrupted)


def interrupted_save(run_dir: RunDir, cfg) -> UnfinishedSetting:
    """The save a Ctrl-C after chunk 2 of ``cfg`` leaves in ``run_dir``."""
    with pytest.raises(KeyboardInterrupt):
        trained(run_dir, cfg, progress=StopAfter(2, KeyboardInterrupt()))
    return UnfinishedSetting(run_dir, COLUMNS, cfg)


def test_a_save_goes_on_under_another_runner_section(tmp_path, uninterrupted, capsys):
    """How the seeds run (the runner section) is no part of what a save must match."""
    run_dir = RunDir(tmp_path)
    interrupted_save(run_dir, setting())
    resumed = trained(run_dir, setting(**{"runner.seed_strategy": "threads", "runner.batch_shards": "1",
                                          "runner.stall_timeout_s": 600.0}))
    assert "continuing from step 20" in capsys.readouterr().err
    same_run(resumed, uninterrupted)
