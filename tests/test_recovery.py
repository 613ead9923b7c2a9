"""Recovery from kills and damaged files: verified checkpoints, fallback on resume, idempotent logs,
and the one checksum rule of the data loaders. In-process on a tiny book; one script call."""

import hashlib
import json
import os
import shutil
import signal

import jax
import numpy as np
import optax
import pytest
from test_study_scripts import run as run_script
from test_textgen import corpus, quick_config  # noqa: F401 (corpus: the tiny book's fixture)

from jaxseq.config import load_config
from jaxseq.data import checksums, graphs
from jaxseq.data.checksums import ChecksumError, read_sha256sums
from jaxseq.data.text import find_book, load_corpus
from jaxseq.models.charlm import make_char_lstm
from jaxseq.files.checkpoints import (
    CheckpointError,
    checksum_path,
    interrupts_deferred,
    latest_checkpoint,
    list_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)
from jaxseq.files.results import RunDir
from jaxseq.models.registry import model_defaults
from jaxseq.train.sampling import check_sampling_args, complete
from jaxseq.files import text_runs
from jaxseq.files.text_runs import Callbacks, append_samples, fit, load_run
from jaxseq.train.textgen import TextTrainer, create_train_state


class Killed(BaseException):
    """Stands for kill -9: nothing in ``fit`` catches it, so no Ctrl-C checkpoint is written."""


def sample_writer(run, total, kill_at=None):
    """``on_sample`` writing a block that depends on the parameters (as greedy samples do), killed after ``kill_at``."""

    def on_sample(step, state):
        append_samples(run, step, total, [f"param norm {float(optax.tree.norm(state.params)):.9f}"])
        if step == kill_at:
            raise Killed

    return on_sample


@pytest.fixture(scope="module")
def straight(corpus, tmp_path_factory):
    """An uninterrupted 30-step run (checkpoints at 20 and 30 kept): (config, state, run path)."""
    path = tmp_path_factory.mktemp("straight")
    config = quick_config()
    run = RunDir(path)
    state, _ = fit(config, corpus, run, callbacks=Callbacks(on_sample=sample_writer(run, 30)))
    return config, state, path


def copy_run(straight, tmp_path):
    shutil.copytree(straight[2], tmp_path / "run")
    return tmp_path / "run"


def one_line(err) -> str:
    text = str(err.value) if hasattr(err, "value") else str(err)
    assert "\n" not in text.strip(), text
    return text


def assert_same_params(a, b):
    jax.tree_util.tree_map(np.testing.assert_array_equal, a.params, b.params)


def assert_logged_once(path, steps=(10, 20, 30)):
    run = RunDir(path)
    assert [r["step"] for r in run.read_metrics()] == list(steps)
    headers = [line for line in run.file("samples.txt").read_text().splitlines() if line.startswith("===")]
    assert [int(h.split()[2]) for h in headers] == list(steps), headers


# --- checkpoints ----------------------------------------------------------------------------------


def test_every_checkpoint_has_a_sha256_sidecar(straight):
    path = latest_checkpoint(straight[2])
    digest, name = checksum_path(path).read_text().split()
    assert name == path.name and digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.name for p in list_checkpoints(straight[2])] == ["step_00000020.msgpack", "step_00000030.msgpack"]
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(  # pruned with its checkpoint, no leftovers
        n for p in list_checkpoints(straight[2]) for n in (p.name, p.name + ".sha256"))


def test_corrupt_checkpoint_is_refused_naming_the_file(straight, tmp_path):
    config, state, _ = straight
    path = latest_checkpoint(copy_run(straight, tmp_path))
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(b ^ 0x5A for b in data[len(data) // 2 : len(data) // 2 + 64])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="step_00000030.msgpack fails its SHA-256 check") as err:
        load_run(tmp_path / "run", checkpoint=path)
    one_line(err)


def test_missing_checkpoint_file_is_named(straight, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint file .*nope.msgpack does not exist"):
        load_run(straight[2], checkpoint=tmp_path / "nope.msgpack")
    generated = run_script("generate.py", f"--run={straight[2]}", f"--checkpoint={tmp_path}/nope.msgpack", check=False)
    assert generated.returncode != 0 and "Traceback" not in generated.stderr
    errors = [line for line in generated.stderr.splitlines() if "error" in line.lower()]  # jax may log its backends
    assert errors == [f"error: checkpoint file {tmp_path}/nope.msgpack does not exist"], generated.stderr


def test_truncated_latest_checkpoint_falls_back_and_says_so(straight, corpus, tmp_path, capfd):
    """The run retrains its end bit-identically, says from which step, and keeps one summary row."""
    config, uninterrupted, _ = straight
    path = copy_run(straight, tmp_path)
    latest = latest_checkpoint(path)
    latest.write_bytes(latest.read_bytes()[:100])  # as a full disk or a broken copy leaves it
    run = RunDir(path)
    summary = {"model": "char_lstm", "steps": 30}
    run.append_results([summary])  # the row scripts/train_textgen.py wrote when the run first finished
    resumed, rows = fit(config, corpus, run, resume=True, callbacks=Callbacks(on_sample=sample_writer(run, 30)))
    run.append_results([summary])  # ... and writes again at the end of the retrained run
    assert len(run.read_results()) == 1
    err = capfd.readouterr().err.splitlines()
    warnings = [line for line in err if line.startswith("warning:")]
    assert len(warnings) == 1 and "step_00000030.msgpack" in warnings[0] and "step_00000020.msgpack (step 20)" in warnings[0]
    assert [line for line in err if "resuming" in line] == [f"note: resuming {path} from step 20 of 30 (step_00000020.msgpack)"]
    assert [r["step"] for r in rows] == [30]
    assert_same_params(resumed, uninterrupted)
    assert_logged_once(path)
    assert (path / "samples.txt").read_text() == (straight[2] / "samples.txt").read_text()


def test_generation_refuses_a_vocab_json_edited_after_training(straight, tmp_path):
    """A checkpoint carries the SHA-256 of its vocabulary; one saved without it loads with any vocab.json."""
    path = copy_run(straight, tmp_path)
    vocab = json.loads((path / "vocab.json").read_text())
    vocab["chars"] = vocab["chars"][1:] + vocab["chars"][:1]  # the same characters in another order
    (path / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ValueError, match="differs from the vocabulary .*step_00000030.msgpack was trained with") as err:
        load_run(path)
    assert str(path / "vocab.json") in one_line(err) and "restore vocab.json" in str(err.value)
    with pytest.raises(ValueError, match="differs from the vocabulary"):
        load_run(path, checkpoint=path / "checkpoints" / "step_00000020.msgpack")
    save_checkpoint(path, straight[1])  # step 30 again, without the vocabulary's SHA-256 (an older checkpoint)
    assert text_runs.checkpoint_meta(latest_checkpoint(path)) == {}
    assert load_run(path)[3] == 30


def test_no_checkpoint_verifies(straight, corpus, tmp_path):
    path = copy_run(straight, tmp_path)
    for checkpoint in list_checkpoints(path):
        checkpoint.write_bytes(checkpoint.read_bytes()[:-1])
    with pytest.raises(CheckpointError, match="no checkpoint .* verifies") as err:
        fit(straight[0], corpus, RunDir(path), resume=True)
    assert "step_00000020.msgpack" in one_line(err) and "step_00000030.msgpack" in str(err.value)


def test_checkpoint_without_checksum_is_refused_until_the_user_records_one(straight, tmp_path):
    path = latest_checkpoint(copy_run(straight, tmp_path))
    checksum_path(path).unlink()  # as saved before checkpoints had checksums
    with pytest.raises(CheckpointError, match="has no step_00000030.msgpack.sha256") as err:
        load_run(tmp_path / "run", checkpoint=path)
    assert "sha256sum step_00000030.msgpack > step_00000030.msgpack.sha256" in one_line(err)
    checksum_path(path).write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")  # "it is mine"
    _, params, _, step = load_run(tmp_path / "run", checkpoint=path)
    assert step == 30
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, straight[1].params)
    path.write_bytes(path.read_bytes()[:-10])  # truncated, and its checksum recorded anyway
    checksum_path(path).write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    with pytest.raises(CheckpointError, match="step_00000030.msgpack cannot be read .* corrupt or truncated") as err:
        load_run(tmp_path / "run", checkpoint=path)
    one_line(err)


def test_kill_after_samples_before_checkpoint_resumes_bit_identical(straight, corpus, tmp_path):
    """kill -9 after step 20's metrics and samples were written, before its checkpoint: the resumed
    run redoes 11..30 from step 10, writes every row and sample block once, and ends bit-identical."""
    config, uninterrupted, _ = straight
    run = RunDir(tmp_path)
    with pytest.raises(Killed):
        fit(config, corpus, run, callbacks=Callbacks(on_sample=sample_writer(run, 30, kill_at=20)))
    assert latest_checkpoint(tmp_path).name == "step_00000010.msgpack"
    assert_logged_once(tmp_path, steps=(10, 20))
    resumed, rows = fit(config, corpus, run, resume=True, callbacks=Callbacks(on_sample=sample_writer(run, 30)))
    assert [r["step"] for r in rows] == [20, 30]
    assert_same_params(resumed, uninterrupted)
    assert_logged_once(tmp_path)
    assert (tmp_path / "samples.txt").read_text() == (straight[2] / "samples.txt").read_text()


def test_kill_during_checkpoint_write_leaves_a_readable_latest(straight, corpus, tmp_path, monkeypatch):
    """A kill before the renamed checkpoint appears leaves a .tmp (and possibly its new sidecar): both are
    ignored, the previous checkpoint stays the latest, and resuming from it gives the same parameters."""
    config, uninterrupted, _ = straight
    path = copy_run(straight, tmp_path)
    for checkpoint in list_checkpoints(path)[1:]:  # back to the state of a kill while step 30 was written
        checkpoint.rename(checkpoint.with_suffix(".tmp"))
    template = create_train_state(make_char_lstm(config.model, corpus.vocab.size), config, jax.random.key(0))
    assert latest_checkpoint(path).name == "step_00000020.msgpack"
    assert int(restore_checkpoint(latest_checkpoint(path), template).step) == 20
    resumed, rows = fit(config, corpus, RunDir(path), resume=True)
    assert [r["step"] for r in rows] == [30] and not list(path.glob("checkpoints/*.tmp"))
    assert_same_params(resumed, uninterrupted)

    real_replace = os.replace

    def killed_at_rename(src, dst):  # the sidecar is in place, the checkpoint is not yet renamed
        if str(src).endswith("step_00000040.tmp"):
            raise Killed
        real_replace(src, dst)

    monkeypatch.setattr("jaxseq.files.checkpoints.os.replace", killed_at_rename)
    with pytest.raises(Killed):
        save_checkpoint(path, resumed.replace(step=40))
    monkeypatch.undo()
    assert latest_checkpoint(path).name == "step_00000030.msgpack"
    assert_same_params(restore_checkpoint(latest_checkpoint(path), template), uninterrupted)


# --- generation -----------------------------------------------------------------------------------


def test_nonsense_temperatures_are_refused_and_tiny_ones_are_greedy(straight, corpus):
    for bad in (float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match="temperature must be a finite number >= 0") as err:
            check_sampling_args(bad, 10)
        one_line(err)
    for length, num_samples, name in ((0, 1, "length"), (10, 0, "num_samples"), (-3, 1, "length")):
        with pytest.raises(ValueError, match=f"{name} must be >= 1"):
            check_sampling_args(1.0, length, num_samples)
    config, state, _ = straight
    model = make_char_lstm(config.model, corpus.vocab.size)
    tiny = complete(model, state.params, corpus.vocab, ["the "] * 2, 30, temperature=1e-45, seed=3)
    greedy = complete(model, state.params, corpus.vocab, ["the "] * 2, 30, temperature=0, seed=3)
    assert tiny == greedy


# --- data: one checksum rule ------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_sha256sums_in_sha256sum_format(tmp_path):
    book = b"my own little book, listed in SHA256SUMS " * 4
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "mine.txt").write_bytes(book)
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"# made with sha256sum -b\n\n{sha(book).upper()} *books/mine.txt\n{sha(b'x')}  ./other\n")
    assert read_sha256sums(sums) == {"books/mine.txt": sha(book), "other": sha(b"x")}
    assert load_corpus(tmp_path / "books" / "mine.txt", val_fraction=0.0, seq_len=4).source.endswith("mine.txt")
    sums.write_text(f"{sha(b'edited')} *books/mine.txt\n")
    with pytest.raises(ChecksumError, match=f"mine.txt has SHA-256 .*{tmp_path}/SHA256SUMS expects"):
        load_corpus(tmp_path / "books" / "mine.txt", seq_len=4)
    sums.write_text(f"# ok\n{sha(book)}  books/mine.txt\n{sha(book)} books/mine.txt\n")
    with pytest.raises(ValueError, match=r"SHA256SUMS line 3 is not '<sha256>  <file>'") as err:
        load_corpus(tmp_path / "books" / "mine.txt", seq_len=4)
    one_line(err)


def test_graph_loader_reads_sha256sum_format_and_refuses_malformed(tmp_path, monkeypatch):
    (tmp_path / "planetoid").mkdir()
    part = tmp_path / "planetoid" / "ind.cora.x"
    part.write_bytes(b"stand-in for a Planetoid file")
    monkeypatch.setitem(checksums.KNOWN_SHA256, "planetoid/ind.cora.x", sha(part.read_bytes()))
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"# Planetoid\n\n{sha(part.read_bytes())} *./planetoid/ind.cora.x\n")
    assert graphs.read_planetoid_file(tmp_path, "planetoid/ind.cora.x") == part.read_bytes()
    sums.unlink()  # known files need no SHA256SUMS: jaxseq ships their checksums
    assert graphs.read_planetoid_file(tmp_path, "planetoid/ind.cora.x") == part.read_bytes()
    sums.write_text(f"{sha(part.read_bytes())}  planetoid/ind.cora.x\nnot a checksum line\n")
    with pytest.raises(ValueError, match=r"SHA256SUMS line 2 is not") as err:
        graphs.load_planetoid("cora", tmp_path)
    one_line(err)


def test_edited_known_book_is_refused_without_sha256sums(tmp_path):
    book = tmp_path / "books" / "book_EN_grimms_fairy_tails.txt"
    book.parent.mkdir()
    book.write_text("Once upon a time, an edited copy. " * 20)
    for path in (find_book("grimm", str(tmp_path)), find_book("grimm", str(book))):
        with pytest.raises(ChecksumError, match="book_EN_grimms_fairy_tails.txt has SHA-256 .* jaxseq") as err:
            load_corpus(path, seq_len=4)
        one_line(err)


def test_users_own_book_is_accepted_with_one_note(tmp_path, capfd):
    book = tmp_path / "my.txt"
    book.write_text("my very own story, unchecked. " * 20)
    for _ in range(2):
        load_corpus(book, val_fraction=0.1, seq_len=4)
    notes = [line for line in capfd.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {book} is not a book jaxseq knows and no SHA256SUMS lists it; using it as it is"]


def test_results_saved_before_a_field_existed_accept_its_as_before_value(tmp_path):
    """A run directory written before a model field or a task parameter existed stays resumable,
    unless the new field is set to something other than the code's own default (the model
    builder's, the cell's that reads it, the task's)."""
    config = load_config("configs/palindrome.py")
    old = config.to_dict()
    for field, default in model_defaults().items():  # what a config written before the field meant
        if old["model"].get(field) == default:
            del old["model"][field]
    for name in ("copy", "selective_copy", "associative_recall"):  # the task sections go too
        del old["data"][name]
    assert "lru_r_min" not in old["model"] and "num_layers" not in old["model"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    run_dir = RunDir(tmp_path)
    assert run_dir.config_differences(config) == []
    config.model.num_layers = 2
    config.model.lru_r_min = 0.5
    config.data.copy.num_tokens = 3
    assert run_dir.config_differences(config) == [
        "data.copy.num_tokens '(absent)' -> 3", "model.lru_r_min '(absent)' -> 0.5", "model.num_layers '(absent)' -> 2"]


def test_a_second_ctrl_c_during_the_save_waits_for_it(capfd):
    finished, before = False, signal.getsignal(signal.SIGINT)
    with interrupts_deferred("saving a checkpoint"):
        os.kill(os.getpid(), signal.SIGINT)  # delivered here, in the main thread, before the block ends
        for _ in range(1000):
            pass
        finished = True
    assert finished and "saving a checkpoint; please wait" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_before_the_first_chunk_saves_nothing_and_says_so(straight, corpus, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(TextTrainer, "run_chunk", interrupted)  # the chunk fit's trainer runs
    with pytest.raises(KeyboardInterrupt, match="nothing was saved") as err:
        fit(quick_config(), corpus, RunDir(tmp_path / "run"))
    assert not (tmp_path / "run").exists() and "checkpoint" not in str(err.value)
    path = copy_run(straight, tmp_path / "resumed")
    latest_checkpoint(path).unlink()  # resumed from step 20
    with pytest.raises(KeyboardInterrupt, match="nothing was saved .*; its latest checkpoint is still step 20$"):
        fit(straight[0], corpus, RunDir(path), resume=True)


def test_resume_without_a_checkpoint_says_so(straight, corpus, tmp_path, capfd):
    path = copy_run(straight, tmp_path)
    shutil.rmtree(path / "checkpoints")  # as in a fresh clone of a committed run
    fit(straight[0], corpus, RunDir(path), resume=True)
    assert "nothing to resume" in capfd.readouterr().err
