"""The write guard through the real entry points: nothing a user already has is changed by a refused run.

Every case runs a script or benchmark in a subprocess and asserts its exit code, exactly one
``error:`` line on stderr, and that every file that existed before is byte-identical afterwards.
"""

import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading

import jax
import pytest
from data_paths import needs_planetoid

from jaxseq.config import load_config
from jaxseq.data.text import corpus_for_config
from jaxseq.models.charlm import make_char_lstm
from jaxseq.runner.batch_shards import resolve_batch_shards
from jaxseq.train.state import count_params
from jaxseq.files.guard import claim_file, make_owner, record_owner
from jaxseq.files.results import RunDir
from jaxseq.files.text_runs import fit
from jaxseq.train.textgen import init_params

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOOK = "Once upon a time there was a king who had three daughters.\n" * 60
SAME_CHARACTERS = "Once upon a time there was a king who had daughters three.\n" * 60  # another text, same vocabulary
TINY_SWEEP = ["--config=configs/palindrome.py:quick", "--config.sweep.models=rnn", "--config.sweep.lengths=4",
              "--config.train.num_steps=10", "--log_every=5"]


def run(path: str, *args, cwd=ROOT, env=None):
    """``python <path> args`` from ``cwd`` with this checkout's jaxseq first on the path."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / path), *args], cwd=cwd, capture_output=True, text=True,
                          env=environ)


def tree_hash(*dirs: pathlib.Path) -> dict[str, str]:
    """``{path: sha256}`` of every file under ``dirs``."""
    files = [p for d in map(pathlib.Path, dirs) for p in ([d] if d.is_file() else sorted(d.rglob("*")))]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def refused(path: str, *args, watch, code=2, words=(), **kw) -> str:
    """Run ``path``; assert exit ``code``, one ``error:`` line holding ``words``, no file under ``watch`` changed."""
    watch = [pathlib.Path(w) for w in ([watch] if isinstance(watch, (str, pathlib.Path)) else watch)]
    before = tree_hash(*watch)
    result = run(path, *args, **kw)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == code, result.stderr[-2000:]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert tree_hash(*watch) == before, "a file that existed before was changed"
    return errors[0]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    path = tmp_path_factory.mktemp("books") / "book.txt"
    path.write_text(BOOK, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def textgen_run(tmp_path_factory, book):
    """A quick train_textgen.py run on the small book, trained in this process (copy it before changing it)."""
    out = tmp_path_factory.mktemp("textgen") / "run"
    config = load_config("configs/textgen.py:quick")
    fit(config, corpus_for_config(book, config.data), RunDir(out))
    return out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A finished one-setting palindrome sweep (copy it before changing it)."""
    out = tmp_path_factory.mktemp("sweep") / "run"
    result = run("scripts/run_palindrome.py", *TINY_SWEEP, f"--out={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def copy(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    shutil.copytree(src, dst)
    return dst


# --- run directories belong to one config ----------------------------------------------------------

def test_textgen_refuses_another_tools_run_directory(sweep, book, tmp_path):
    out = copy(sweep, tmp_path / "sweep")
    refused("scripts/train_textgen.py", "--config=configs/textgen.py:quick", f"--data={book}", f"--out={out}",
            watch=out, words=["another tool's results"])


def test_textgen_refuses_a_committed_run_of_another_config(book):
    refused("scripts/train_textgen.py", "--config=configs/textgen.py:quick", f"--data={book}",
            "--out=results/textgen/grimm", watch=ROOT / "results", words=["results/textgen/grimm", "trains differently"])


@pytest.mark.parametrize("script, args", [
    ("scripts/run_palindrome.py", TINY_SWEEP),
    ("scripts/train_gnn.py", ["--config=configs/gcn.py:quick"]),
    ("scripts/grad_norms.py", ["--config=configs/grad_norms.py:quick"]),
    ("scripts/train_textgen.py", ["--config=configs/textgen.py:quick", "--resume"]),
])
def test_results_without_config_json_are_refused(script, args, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("model,length,seed,eval_accuracy\nrnn,4,0,1.0\n")
    refused(script, *args, f"--out={out}", watch=tmp_path, words=[str(out), "no config.json"])


def test_corrupt_config_json_and_results_csv_name_the_file(sweep, tmp_path):
    out = copy(sweep, tmp_path / "run")
    (out / "config.json").write_text('{"model": ')
    refused("scripts/run_palindrome.py", *TINY_SWEEP, f"--out={out}", watch=tmp_path,
            words=[str(out / "config.json"), "cannot be read", "restore"])
    out = copy(sweep, tmp_path / "run2")
    (out / "results.csv").write_bytes(b"\xff\xfe\x00garbage\n")
    refused("scripts/run_palindrome.py", *TINY_SWEEP, f"--out={out}", watch=tmp_path,
            words=[str(out / "results.csv"), "cannot be read"])


def test_mangled_header_is_refused_before_training(sweep, tmp_path):
    out = copy(sweep, tmp_path / "run")
    text = (out / "results.csv").read_text()
    (out / "results.csv").write_text(text.replace("model,", "modl,", 1))
    refused("scripts/run_palindrome.py", *TINY_SWEEP, f"--out={out}", watch=tmp_path,
            words=[str(out / "results.csv"), "damaged header"])


def test_torn_row_reruns_the_whole_setting_without_doubling_its_curves(sweep, tmp_path):
    out = copy(sweep, tmp_path / "run")
    lines = (out / "results.csv").read_text().splitlines(keepends=True)
    assert len(lines) == 3  # header and two seeds
    (out / "results.csv").write_text(lines[0] + lines[1] + lines[2][:10])  # seed 1's row torn, seed 0's intact
    curves = (sweep / "metrics.jsonl").read_text().splitlines()
    result = run("scripts/run_palindrome.py", *TINY_SWEEP, f"--out={out}")
    assert result.returncode == 0 and "torn row" in result.stderr, result.stderr[-2000:]
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 3 and sorted(r.split(",")[3] for r in rows[1:]) == ["0", "1"], rows
    assert len((out / "metrics.jsonl").read_text().splitlines()) == len(curves)  # replaced, not doubled


@needs_planetoid
def test_gnn_run_with_a_torn_row_is_trained_again_and_replaces_its_curves(tmp_path):
    """A results.csv whose last row a crash tore: the run trains again, and its curves and rows
    replace the old ones (metrics.jsonl holds one run's curves, not two)."""
    out = tmp_path / "gcn"
    config = load_config("configs/gcn.py:quick")
    RunDir(out).write_config(config)
    seeds, epochs = config.train.num_seeds, config.train.num_epochs
    old_curves = [{"seed": seed, "epoch": epoch, "loss": -1.0} for seed in range(seeds) for epoch in range(1, epochs + 1)]
    RunDir(out).append_metrics(old_curves)
    header = "model,dataset,seed,test_acc,val_acc,epochs,run_wall_s_all_seeds,compile_s\n"
    (out / "results.csv").write_text(header + "gcn,cora,0,0.1,0.1,30,1.0,1.0\n" + "gcn,cora,1,0.")
    result = run("scripts/train_gnn.py", "--config=configs/gcn.py:quick", f"--out={out}")
    assert result.returncode == 0 and "torn row" in result.stderr, result.stderr[-2000:]
    rows = RunDir(out).read_results()
    assert [r["seed"] for r in rows] == [str(seed) for seed in range(seeds)] and float(rows[0]["test_acc"]) > 0.1
    curves = RunDir(out).read_metrics()
    assert len(curves) == sum(int(r["epochs"]) for r in rows)  # one row per seed and epoch: replaced, not doubled
    assert all(c["loss"] > 0 for c in curves)


# --- file flags never replace a file they do not own -----------------------------------------------

def test_ngram_out_never_replaces_a_users_file_and_expands_tilde(book, tmp_path):
    readme, home = tmp_path / "README.md", tmp_path / "home"
    readme.write_text("mine\n")
    home.mkdir()
    (home / "table.json").write_text("mine too\n")
    common = ["--config=configs/textgen.py:quick", f"--data={book}", "--orders=1"]
    refused("scripts/ngram_baseline.py", *common, f"--out={readme}", watch=tmp_path, words=["--overwrite"])
    refused("scripts/ngram_baseline.py", *common, "--out=~/table.json", watch=tmp_path, env={"HOME": str(home)},
            words=[str(home / "table.json"), "--overwrite"])
    forced = run("scripts/ngram_baseline.py", *common, "--out=~/table.json", "--overwrite", env={"HOME": str(home)})
    assert forced.returncode == 0 and json.loads((home / "table.json").read_text())["rows"], forced.stderr
    assert (home / "table.json.config.json").is_file() and not (ROOT / "~").exists()


def test_frontier_table_never_replaces_a_committed_table(sweep):
    refused("scripts/frontier.py", "--config=configs/frontier.py:quick", f"--out={sweep}",
            "--table=README.md", watch=[ROOT / "README.md", ROOT / "results", sweep], words=["--table=README.md", "--overwrite"])


def test_publish_never_replaces_a_published_figure(tmp_path):
    published = tmp_path / "published"
    published.mkdir()
    for name in ("grad_norms.png", "ravine.png"):
        (published / name).write_bytes(b"the README's figure")
    refused("scripts/grad_norms.py", "--config=configs/grad_norms.py:quick", f"--out={tmp_path / 'g'}",
            f"--publish={published}", watch=tmp_path, words=["grad_norms.png", "--overwrite"])
    refused("scripts/compare_optimizers.py", "--config=configs/optimizers.py:quick", f"--out={tmp_path / 'c'}",
            f"--publish={published}", watch=tmp_path, words=["ravine.png", "--overwrite"])


def test_data_size_out_and_repeated_runs(tmp_path):
    out, runs = tmp_path / "size", tmp_path / "runs"  # both refused before any run is read
    out.with_suffix(".png").write_bytes(b"mine")
    refused("scripts/textgen_data_size.py", f"--runs={runs}", f"--out={out}", watch=tmp_path,
            words=["size.png", "--overwrite"])
    refused("scripts/textgen_data_size.py", f"--runs={runs},{runs}", f"--out={tmp_path / 'x'}",
            watch=tmp_path, words=["--runs", "more than once"])


def test_benchmark_writes_a_fresh_path_and_never_a_committed_report(tmp_path):
    tiny = ["--rows=8", "--shapes=321x1024", "--chain=2", "--calls=1", "--repeats=1"]
    refused("benchmarks/bench_matmul.py", *tiny, "--out=benchmarks/results/bench_matmul.json",
            watch=ROOT / "benchmarks", words=["bench_matmul.json", "--overwrite"])
    result = run("benchmarks/bench_matmul.py", *tiny, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (report,) = (tmp_path / "runs" / "bench_matmul").glob("*/bench_matmul.json")
    assert json.loads(report.read_text())["results"]


# --- resume checks what it continues ---------------------------------------------------------------

def test_resume_refuses_another_text_with_the_same_characters(textgen_run, tmp_path):
    out = copy(textgen_run, tmp_path / "run")
    other = tmp_path / "other.txt"
    other.write_text(SAME_CHARACTERS, encoding="utf-8")
    refused("scripts/train_textgen.py", "--config=configs/textgen.py:quick", f"--data={other}", f"--out={out}",
            "--resume", watch=tmp_path, words=["text differs", "vocab.json"])


def test_resume_refuses_a_damaged_vocab_and_a_checkpoint_without_checksum(textgen_run, book, tmp_path):
    args = ["--config=configs/textgen.py:quick", f"--data={book}", "--resume"]
    out = copy(textgen_run, tmp_path / "vocab")
    (out / "vocab.json").write_text('{"chars": ')
    refused("scripts/train_textgen.py", *args, f"--out={out}", watch=tmp_path, words=[str(out / "vocab.json")])
    out = copy(textgen_run, tmp_path / "sums")
    for sidecar in (out / "checkpoints").glob("*.sha256"):
        sidecar.unlink()
    refused("scripts/train_textgen.py", *args, "--config.train.num_steps=30", f"--out={out}", watch=tmp_path,
            words=["no checkpoint", "sha256sum"])


# --- nonsense is refused ---------------------------------------------------------------------------

def test_diverged_text_run_exits_1_with_its_error_on_its_own_line(book, tmp_path):
    line = refused("scripts/train_textgen.py", "--config=configs/textgen.py:quick", f"--data={book}",
                   "--config.optim.name=sgd", "--config.optim.lr=1e30", "--config.optim.clip_norm=0",
                   f"--out={tmp_path / 'run'}", watch=tmp_path, code=1, words=["diverged"])
    assert line.startswith("error:") and not (tmp_path / "run").exists()


def test_text_scripts_refuse_a_missing_jaxseq_data(tmp_path):
    refused("scripts/train_textgen.py", "--config=configs/textgen.py:quick", f"--out={tmp_path / 'x'}", watch=tmp_path,
            env={"JAXSEQ_DATA": "/nonexistent"}, words=["JAXSEQ_DATA=/nonexistent"])


def test_help_exits_0():
    result = run("scripts/ngram_baseline.py", "--help")
    assert result.returncode == 0 and "--orders" in result.stdout, result.stderr[-2000:]


def test_run_dir_saved_config_check_in_process(tmp_path):
    """RunDir itself: an empty directory is free, a directory with files and no config.json is not."""
    config = load_config("configs/palindrome.py:quick")
    (tmp_path / "empty").mkdir()
    assert RunDir(tmp_path / "empty").config_differences(config) == []
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="no config.json"):
        RunDir(tmp_path / "full").check_config(config)


def test_a_sidecar_naming_the_runner_fields_in_train_still_names_its_config(tmp_path):
    """How seeds run never changes results, so it is no part of a file's owner; a sidecar that
    holds the runner's fields under their train-section names (older ones do) names the same config."""
    config = load_config("configs/palindrome.py:quick")
    owner = make_owner("frontier", config)
    assert not [k for k in owner["config"] if k.startswith("runner.")]
    table = tmp_path / "table.csv"
    table.write_text("length,accuracy\n5,1.0\n")
    older = {"train.seed_strategy": "auto", "train.batch_shards": "auto", "train.stall_timeout_s": 300.0}
    record_owner(table, {**owner, "config": {**owner["config"], **older}})
    assert claim_file(table, "--table", owner, overwrite=False) == table
    with config.unlocked():
        config.optim.lr = 0.5
    with pytest.raises(ValueError, match="another config"):
        claim_file(table, "--table", make_owner("frontier", config), overwrite=False)


def test_two_ctrl_c_in_a_row_end_a_text_run_with_one_line_and_verified_checkpoints(tmp_path, book):
    """The second Ctrl-C, 20 ms after the first, lands while the interrupted run saves or exits: no
    traceback, exit 130, one ``interrupted`` line, and every checkpoint on disk verifies.

    The run shards its batch as the default config does (``batch_shards`` auto is 2 shards on 2
    cores), so the Ctrl-C lands while a helper thread waits for a chunk running on the CPU devices;
    chunks of 2,000 steps keep that chunk running while the process exits."""
    default = load_config("configs/textgen.py")
    assert default.runner.batch_shards == "auto"
    vocab = json.loads((ROOT / "results" / "textgen" / "grimm" / "vocab.json").read_text())["chars"]
    model = make_char_lstm(default.model, len(vocab))
    params = jax.eval_shape(lambda key: init_params(model, key, default.data.seq_len), jax.random.key(0))
    shards = resolve_batch_shards("auto", 1, default.data.batch_size, default.data.seq_len, count_params(params), "cpu", 2)
    assert shards == 2
    out = tmp_path / "run"
    script = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "train_textgen.py"), "--config=configs/textgen.py:quick",
         f"--data={book}", "--config.train.num_steps=100000", "--config.train.checkpoint_every=100000",
         "--config.runner.batch_shards=2", "--config.train.steps_per_call=2000", f"--out={out}"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        metrics = out / "metrics.jsonl"
        while not (metrics.exists() and metrics.stat().st_size) and script.poll() is None:  # a chunk's row is written
            threading.Event().wait(0.05)
        assert script.poll() is None, script.communicate()[1][-2000:]
        script.send_signal(signal.SIGINT)
        threading.Event().wait(0.02)
        script.send_signal(signal.SIGINT)
        _, err = script.communicate(timeout=300)
    finally:
        if script.poll() is None:
            script.kill()
    lines = [line for line in err.splitlines() if line.strip()]
    assert script.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert lines[-1].startswith("interrupted"), lines[-3:]
    assert sum(line.startswith("interrupted") for line in lines) == 1, lines[-3:]
    for checkpoint in sorted((out / "checkpoints").glob("*.msgpack")):
        recorded = (out / "checkpoints" / (checkpoint.name + ".sha256")).read_text().split()[0]
        assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == recorded, checkpoint
    assert ("saved" in lines[-1]) == any((out / "checkpoints").glob("*.msgpack")), lines[-1]



@pytest.mark.slow
def test_ctrl_c_after_a_setting_keeps_its_rows_and_curves_together_and_a_rerun_completes(tmp_path):
    """Ctrl-C once the first setting's rows are written: its rows and curves stay, nothing of the
    second is written; the same command again trains the second only, and no curve is doubled."""
    out = tmp_path / "sweep"
    command = [sys.executable, str(ROOT / "scripts" / "run_palindrome.py"), "--config=configs/palindrome.py:quick",
               "--config.sweep.models=rnn", "--config.sweep.lengths=4,5", "--config.train.num_steps=3000",
               "--config.train.chunk_steps=100", "--config.train.stop_accuracy=2.0", "--log_every=500", f"--out={out}"]
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = out / "results.csv"
    try:
        while script.poll() is None and not (results.exists() and len(results.read_text().splitlines()) == 3):
            threading.Event().wait(0.05)  # until the first setting's two seeds are written
        assert script.poll() is None, "the sweep ended before it could be interrupted"
        script.send_signal(signal.SIGINT)
        _, err = script.communicate(timeout=300)
    finally:
        if script.poll() is None:
            script.kill()
    assert script.returncode == 130 and "Traceback" not in err, err[-2000:]
    rows = [line.split(",")[:3] for line in results.read_text().splitlines()[1:]]
    assert rows == [["rnn", "decimal_palindrome", "4"]] * 2, rows
    assert {json.loads(line)["length"] for line in (out / "metrics.jsonl").read_text().splitlines()} == {4}

    rerun = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    rows = [line.split(",")[:3] for line in results.read_text().splitlines()[1:]]
    assert rows == [["rnn", "decimal_palindrome", "4"]] * 2 + [["rnn", "decimal_palindrome", "5"]] * 2, rows
    curves = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    keys = [(c["length"], c["seed"], c["step"]) for c in curves]
    assert len(keys) == len(set(keys)) and {length for length, _, _ in keys} == {4, 5}
