"""Bad command lines end in one line on stderr and the right exit code, and damage no file.

The scripts' ``main`` runs in this process through :func:`jaxseq.cli.run_main` (a fresh import of
the script per case, so absl's flags start clean); every case fails before anything compiles.
Exit codes: 0 ok, 1 failed run, 2 usage error, 130 interrupted.
"""

import csv
import hashlib
import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest
from absl import app, flags

from jaxseq import cli, runner
from jaxseq.config import field_rule, flat_fields, load_config, validate_config
from jaxseq.files.results import RunDir, check_writable, check_writable_file
from jaxseq.models.fields import config_fields
from jaxseq.models.registry import CELLS
from jaxseq.runner.multiseed import StalledRunError

ROOT = pathlib.Path(__file__).resolve().parent.parent
QUICK = ["--config=configs/palindrome.py:quick", "--config.sweep.models=rnn", "--config.sweep.lengths=4,5"]

app.define_help_flags()
_ABSL_FLAGS = set(flags.FLAGS)


def load_script(name: str):
    """A fresh import of ``scripts/<name>.py``, after removing the flags an earlier import defined."""
    for flag in set(flags.FLAGS) - _ABSL_FLAGS:
        delattr(flags.FLAGS, flag)
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def snapshot(*dirs: pathlib.Path) -> dict[str, str]:
    """``{path: sha256}`` of every file under ``dirs``."""
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for d in dirs if d.exists() for path in sorted(d.rglob("*")) if path.is_file()
    }


@pytest.fixture
def call(tmp_path, capsys, monkeypatch):
    """``call(script, *args, patch=None) -> (exit code, stderr)``, checking that no file changed."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(cli, "exit_now", sys.exit)  # the real one ends the process (and pytest) at once
    watched = (ROOT / "results", ROOT / "configs", ROOT / "runs", tmp_path)

    def run(script, *args, patch=None, files_change=False):
        module = load_script(script)
        for name, value in (patch or {}).items():
            monkeypatch.setattr(module, name, value)
        before = snapshot(*watched)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli.run_main(module.main, [script, *args])
        err = capsys.readouterr().err
        if not files_change:
            assert snapshot(*watched) == before, "files changed"
        assert not [p.name for p in ROOT.iterdir() if p.name.startswith("-")]  # no flag taken for a path
        assert "Traceback" not in err, err
        return exited.value.code, err

    return run


def assert_one_line(err: str, *words: str, after_progress: bool = False) -> None:
    """``err`` is one line holding ``words`` (after the progress bar's lines if the run had started)."""
    lines = err.strip().splitlines()
    if after_progress:
        lines = [line for line in lines if "step/s]" not in line]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, lines[0])


USAGE = [  # (script, arguments, words the one line must hold)
    ("run_palindrome", ["--config.sweep.lengths=1"], ["sweep.lengths", ">= 2"]),
    ("run_palindrome", ["--config.sweep.lengths=5,0"], ["sweep.lengths", ">= 2, got 0"]),
    ("run_palindrome", ["--config.sweep.lengths=-3"], ["sweep.lengths", "got -3"]),
    ("run_palindrome", ["--config.sweep.lengths=2.5"], ["sweep.lengths", "bad length", "2.5"]),
    ("run_palindrome", ["--config.sweep.lengths=abc"], ["sweep.lengths", "bad length", "abc"]),
    ("run_palindrome", ["--config.sweep.lengths=5,5"], ["sweep.lengths", "more than once"]),
    ("run_palindrome", ["--config.sweep.models=rnn,rnn"], ["sweep.models", "rnn", "more than once"]),
    ("run_palindrome", ["--config.sweep.models=rnn,transformer"], ["unknown model 'transformer'", "lstm"]),
    ("run_palindrome", ["--config.data.task=nosuch"], ["unknown task 'nosuch'", "decimal_palindrome"]),
    ("run_palindrome", ["--config.model.encoding=nosuch"], ["unknown encoding", "onehot"]),
    ("run_palindrome", ["--config.train.num_seeds=0"], ["train.num_seeds", ">= 1", "got 0"]),
    ("run_palindrome", ["--config.train.num_seeds=-1"], ["train.num_seeds", "got -1"]),
    ("run_palindrome", ["--config.train.num_steps=abc"], ["config.train.num_steps", "abc"]),
    ("run_palindrome", ["--config.optim.lr=nan"], ["optim.lr", "> 0", "nan"]),
    ("run_palindrome", ["--config.optim.lr=-1"], ["optim.lr", "got -1"]),
    ("run_palindrome", ["--config.optim.clip_norm=-1"], ["optim.clip_norm", ">= 0"]),
    ("run_palindrome", ["--config.train.stop_accuracy=inf"], ["train.stop_accuracy", "finite"]),
    ("run_palindrome", ["--config.optim.learning_rate=1e-3"], ["optim.learning_rate", "optim.lr"]),
    ("run_palindrome", ["--config=configs/palindrome.py:nosuch"], ["unknown variant 'nosuch'", "quick"]),
    ("run_palindrome", ["--config=configs/nosuch.py"], ["--config=configs/nosuch.py", "no config file"]),
    ("run_palindrome", ["--nosuch_flag=1"], ["nosuch_flag"]),
    ("run_palindrome", ["stray"], ["unexpected arguments: stray"]),
    ("run_palindrome", ["--plot_only"], ["--plot_only", "--out"]),
    ("run_palindrome", ["--out=/proc/1/jaxseq_out"], ["--out=/proc/1/jaxseq_out", "kernel file system"]),
    ("run_palindrome", ["--out=--out=/tmp/x"], ["--out=--out=/tmp/x", "mistyped flag"]),
    ("train_textgen", ["--config=configs/textgen.py:quick", "--out=-v"], ["--out=-v", "mistyped flag"]),
    ("frontier", ["--config=configs/frontier.py:quick", "--table=--out.csv"], ["--table=--out.csv", "mistyped flag"]),
    ("train_gnn", ["--config=configs/gcn.py:nosuch"], ["unknown config variant", "citeseer"]),
    ("train_gnn", ["--config=configs/gcn.py:quick", "--config.data.name=nosuch"], ["unknown dataset 'nosuch'", "cora"]),
    ("train_gnn", ["--config=configs/gat.py:quick", "--config.model.dropout=1.5"], ["model.dropout", "[0, 1)"]),
    ("train_gnn", ["--config=configs/gcn.py:quick", "--config.train.num_epochs=0"], ["train.num_epochs"]),
    ("train_gnn", ["--config.optim.l2=-1"], ["optim.l2", ">= 0"]),
    ("frontier", ["--config=configs/frontier.py:quick", "--config.frontier.variants=rnn,rnn"], ["frontier.variants", "more than once"]),
    ("frontier", ["--config=configs/frontier.py:quick", "--config.frontier.variants=rnn,nosuch"], ["nosuch", "not defined"]),
    ("frontier", ["--config=configs/frontier.py:quick", "--config.frontier.threshold=1.5"], ["frontier.threshold", "(0, 1]"]),
    ("frontier", ["--config=configs/frontier.py:quick", "--config.variants.lstm_fb0.model.forget_bias=inf"],
     ["variant lstm_fb0", "config.model.forget_bias", "finite"]),
    ("grad_norms", ["--config=configs/grad_norms.py:quick", "--config.probe.models=rnn,rnn"], ["probe.models", "more than once"]),
    ("grad_norms", ["--config=configs/grad_norms.py:quick", "--config.probe.batch_size=0"], ["probe.batch_size"]),
    ("grad_norms", ["--config=configs/grad_norms.py:quick", "--publish=/proc/1/figures"], ["--publish", "kernel file system"]),
    ("frontier", ["--config=configs/frontier.py:quick", "--table=/proc/1/frontier.csv"], ["--table", "kernel file system"]),
    ("compare_optimizers", ["--config=configs/optimizers.py:quick", "--config.compare.optimizers=sgd,nosuch"],
     ["unknown optimizer 'nosuch'", "adam"]),
    ("compare_optimizers", ["--config=configs/optimizers.py:quick", "--config.compare.lr.sgd=0"], ["compare.lr.sgd", "> 0"]),
    ("train_textgen", ["--config=configs/textgen.py:quick", "--config.train.num_steps=0"], ["train.num_steps", "got 0"]),
    ("train_textgen", ["--config=configs/textgen.py:quick", "--config.train.num_steps=-5"], ["train.num_steps", "got -5"]),
    ("train_textgen", ["--config=configs/textgen.py:quick", "--config.data.train_fraction=0"], ["data.train_fraction", "(0, 1]"]),
    ("train_textgen", ["--config=configs/textgen.py:quick", "--config.model.dropout=1"], ["model.dropout", "[0, 1)"]),
    ("train_textgen", ["--config=configs/textgen.py:nosuch"], ["unknown textgen variant 'nosuch'"]),
    ("train_textgen", ["--config=configs/textgen.py:quick", "--resume"], ["--resume", "--out"]),
    ("ngram_baseline", ["--config=configs/textgen.py:quick", "--orders=0,2"], ["--orders", ">= 1"]),
    ("textgen_data_size", ["--ngram_fractions=2"], ["--ngram_fractions", "(0, 1]"]),
    ("textgen_data_size", ["--order=0"], ["--order"]),
    ("textgen_data_size", ["--runs=a,a"], ["--runs", "a given more than once"]),
    ("ngram_baseline", ["--config=configs/textgen.py:quick", "--orders=1,1"], ["--orders", "1 given more than once"]),
    ("run_palindrome", ["--config.runner.stall_timeout_s=0.001"], ["runner.stall_timeout_s", "[1, 604800]", "0.001"]),
    ("run_palindrome", ["--config.runner.stall_timeout_s=1e300"], ["runner.stall_timeout_s", "[1, 604800]", "1e+300"]),
    ("run_palindrome", ["--out=/proc/jaxseq_out"], ["--out=/proc/jaxseq_out", "kernel file system"]),
    ("run_palindrome", ["--config.train.seed_strategy=vmap"],
     ["config.train.seed_strategy is now config.runner.seed_strategy", "--config.runner.seed_strategy=vmap"]),
    ("train_textgen", ["--config=configs/textgen.py:quick", "--config.train.batch_shards=2"],
     ["config.train.batch_shards is now config.runner.batch_shards", "--config.runner.batch_shards=2"]),
    ("train_gnn", ["--config=configs/gcn.py:quick", "--config.train.stall_timeout_s=60"],
     ["config.train.stall_timeout_s is now config.runner.stall_timeout_s"]),
    ("frontier", ["--config=configs/frontier.py:quick", "--config.frontier.min_seeds=9"], ["min_seeds=9", "could ever pass"]),
    ("grad_norms", ["--config=configs/grad_norms.py:quick", "--config.sweep.models=anything"], ["sweep.models"]),
]


@pytest.mark.parametrize("script, args, words", USAGE, ids=[f"{s}:{' '.join(a)}" for s, a, _ in USAGE])
def test_usage_errors_are_one_line_with_exit_code_2(call, tmp_path, script, args, words):
    out = [] if any(a.startswith(("--out=", "--plot_only", "--resume")) for a in args) else [f"--out={tmp_path / 'out'}"]
    code, err = call(script, *args, *out)
    assert code == 2, err
    assert_one_line(err, "error:", *words)
    assert not (tmp_path / "out").exists()  # nothing written, not even an empty directory


def test_default_out_is_never_results_and_is_made_only_when_written(call):
    code, err = call("run_palindrome", *QUICK, "--config.train.num_seeds=0")
    assert code == 2 and "num_seeds" in err  # and the fixture checked that runs/ and results/ are untouched
    for script in ("run_palindrome", "train_gnn", "frontier", "grad_norms", "compare_optimizers", "train_textgen",
                   "textgen_data_size", "ngram_baseline"):
        module = load_script(script)
        for holder in (getattr(module, name, None) for name in ("_OUT", "_TABLE", "_PUBLISH")):
            assert holder is None or not holder.default, (script, holder.name, holder.default)


@pytest.mark.parametrize("script", ["run_palindrome", "train_textgen", "train_gnn"])
def test_out_that_is_a_file(call, tmp_path, script):
    out = tmp_path / "a_file"
    out.write_text("keep me")
    code, err = call(script, f"--out={out}")
    assert code == 2
    assert_one_line(err, "error:", str(out), "is a file")


def write_finished_sweep(out: pathlib.Path, config) -> None:
    """A directory as a finished quick palindrome sweep leaves it (config.json and results.csv)."""
    run_dir = RunDir(out)
    run_dir.write_config(config)
    row = dict(model="rnn", task="decimal_palindrome", length=4, seed=0, eval_accuracy=1.0, eval_loss=0.0,
               final_train_loss=0.0, steps=5, converged_step=5, wall_time_s=1.0)
    run_dir.append_results([{**row, "length": length, "seed": seed}
                            for length in (4, 5) for seed in range(config.train.num_seeds)])


@pytest.mark.parametrize("change, field", [("--config.optim.lr=0.5", "optim.lr"), ("--config.data.task=baum_sweet", "data.task")])
def test_rerun_with_another_config_is_refused(call, tmp_path, change, field):
    out = tmp_path / "sweep"
    write_finished_sweep(out, load_config("configs/palindrome.py:quick"))
    code, err = call("run_palindrome", *QUICK, change, f"--out={out}")
    assert code == 2
    assert_one_line(err, "error:", "another config", field)


def test_rerun_with_the_same_config_trains_nothing_new(call, tmp_path, capsys):
    out = tmp_path / "sweep"
    write_finished_sweep(out, load_config("configs/palindrome.py:quick"))
    code, err = call("run_palindrome", *QUICK, "--config.sweep.models=rnn", f"--out={out}", files_change=True)
    assert code in (0, None), err
    assert len(RunDir(out).read_results()) == 2 * load_config("configs/palindrome.py:quick").train.num_seeds


@pytest.mark.parametrize("script, config", [("frontier", "configs/frontier.py:quick"), ("grad_norms", "configs/grad_norms.py:quick"),
                                            ("compare_optimizers", "configs/optimizers.py:quick"), ("train_gnn", "configs/gcn.py:quick")])
def test_every_resuming_script_refuses_another_config(call, tmp_path, script, config):
    out = tmp_path / "run"
    RunDir(out).write_config(load_config(config))
    code, err = call(script, f"--config={config}", "--config.train.seed=7", f"--out={out}")
    assert code == 2
    assert_one_line(err, "error:", "another config", "train.seed 0 -> 7")


def in_train_section(config) -> dict:
    """``config`` as a config.json that keeps the runner's fields in its train section (older results)."""
    saved = config.to_dict()
    saved["train"].update(saved.pop("runner"))
    return saved


def test_a_run_saved_with_the_runner_fields_in_train_resumes_and_redraws(call, tmp_path):
    out = tmp_path / "sweep"
    config = load_config("configs/palindrome.py:quick")
    write_finished_sweep(out, config)
    (out / "config.json").write_text(json.dumps(in_train_section(config)))
    code, err = call("run_palindrome", f"--out={out}", "--plot_only", files_change=True)
    assert code in (0, None), err
    assert (out / "accuracy_vs_length.png").is_file()
    code, err = call("run_palindrome", *QUICK, f"--out={out}", files_change=True)
    assert code in (0, None), err
    assert len(RunDir(out).read_results()) == 2 * config.train.num_seeds  # nothing trained again
    code, err = call("run_palindrome", *QUICK, "--config.optim.lr=0.5", f"--out={out}")
    assert code == 2
    assert_one_line(err, "error:", "another config", "optim.lr")


def test_a_config_that_sets_a_runner_field_in_train_is_told_where_it_goes():
    config = load_config("configs/palindrome.py:quick")
    with config.unlocked():
        config.train.seed_strategy = "vmap"
    with pytest.raises(ValueError, match=r"config\.train\.seed_strategy is now config\.runner\.seed_strategy"):
        validate_config(config)


def test_sweep_lists_may_grow_and_config_json_describes_all_rows(tmp_path):
    config = load_config("configs/palindrome.py:quick")
    run_dir = RunDir(tmp_path / "sweep")
    run_dir.add_config(config, ("sweep.models", "sweep.lengths"))
    with config.unlocked():
        config.sweep.update(models="gru", lengths="6,5")
    run_dir.add_config(config, ("sweep.models", "sweep.lengths"))
    saved = json.loads(run_dir.file("config.json").read_text())["sweep"]
    assert saved == {"models": "rnn,lstm,gru", "lengths": "5,6"}


def test_torn_last_row_is_skipped_reported_and_replaced(tmp_path, capsys):
    run_dir = RunDir(tmp_path)
    run_dir.append_results([{"model": "rnn", "length": 4, "seed": 0}, {"model": "rnn", "length": 4, "seed": 1}])
    with open(run_dir.file("results.csv"), "a") as f:
        f.write("rnn,5")  # a crash in the middle of a row
    with open(run_dir.file("metrics.jsonl"), "w") as f:
        f.write('{"step": 1}\n{"step": 2, "lo')
    assert [r["seed"] for r in run_dir.read_results()] == ["0", "1"]
    assert "torn" in capsys.readouterr().err
    run_dir.append_results([{"model": "rnn", "length": 5, "seed": 0}])
    rows = list(csv.DictReader(open(run_dir.file("results.csv"))))
    assert [(r["length"], r["seed"]) for r in rows] == [("4", "0"), ("4", "1"), ("5", "0")]
    run_dir.append_metrics([{"step": 3}])
    assert [r["step"] for r in run_dir.read_metrics()] == [1, 3]


def test_plot_only_over_a_directory_without_results_says_so(call, tmp_path):
    code, err = call("run_palindrome", f"--out={tmp_path / 'empty'}", "--plot_only")
    assert code == 2
    assert_one_line(err, "--plot_only: no results in", "run without --plot_only first")


def test_plot_only_over_a_torn_results_file_still_works(call, tmp_path):
    out = tmp_path / "sweep"
    write_finished_sweep(out, load_config("configs/palindrome.py:quick"))
    with open(out / "results.csv", "a") as f:
        f.write("rnn,decimal_palindrome,6,0,0.5")
    code, err = call("run_palindrome", f"--out={out}", "--plot_only", files_change=True)
    assert code in (0, None) and "torn" in err, err
    assert (out / "accuracy_vs_length.png").is_file()


def fake_train_setting(fail_at: int, error: BaseException):
    """A stand-in for ``train_setting`` that records its settings and raises ``error`` at setting ``fail_at``."""
    calls = []

    def train_setting(cfg, run_dir, progress, log_every, label, trainer, extra, **columns):
        calls.append(label)
        if len(calls) == fail_at:
            raise error
        run_dir.append_results([{**columns, "seed": 0, "eval_accuracy": 1.0}])

    return train_setting


def test_ctrl_c_keeps_finished_settings_and_exits_130(call, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    monkeypatch.setattr(runner, "train_setting", fake_train_setting(2, KeyboardInterrupt()))  # the in-process runner's
    code, err = call("run_palindrome", *QUICK, f"--out={out}", files_change=True)
    assert code == 130
    assert_one_line(err, "interrupted", str(out), "run the same command again", after_progress=True)
    assert [r["length"] for r in RunDir(out).read_results()] == ["4"]
    assert json.loads((out / "config.json").read_text())["optim"]["lr"] == 3e-3


@pytest.mark.parametrize("error", [FloatingPointError("non-finite loss at step 3 (seed 1)"),
                                   StalledRunError("chunk 1 of 2 did not finish within 300 s")])
def test_a_failed_run_exits_1_and_writes_nothing(call, tmp_path, monkeypatch, error):
    out = tmp_path / "sweep"
    monkeypatch.setattr(runner, "train_setting", fake_train_setting(1, error))
    code, err = call("run_palindrome", *QUICK, f"--out={out}")
    assert code == 1
    assert_one_line(err, "error:", str(error), after_progress=True)
    assert not out.exists()  # no empty directory, no config.json


# the config.model fields a built-in cell reads: the cell checks them when it is built
CELL_READ = {f"model.{key}" for cls in CELLS.values() for key in config_fields(cls).values()}


def test_every_numeric_config_field_is_validated():
    specs = ["palindrome.py", "palindrome.py:quick", "palindrome.py:full", "frontier.py", "frontier.py:inputs",
             "frontier.py:push", "frontier.py:classic", "grad_norms.py", "optimizers.py", "textgen.py",
             "textgen.py:grimm_long", "gcn.py", "gat.py", "dynamics.py", "atlas.py", "atlas.py:quick"]
    for spec in specs:
        config = load_config(f"configs/{spec}")
        validate_config(config)
        for path, value in flat_fields(config).items():
            numeric = isinstance(value, (int, float, tuple, list)) and not isinstance(value, bool)
            read_by_a_cell = any(path == key or path.endswith("." + key) for key in CELL_READ)  # tests/test_cells.py
            assert not numeric or read_by_a_cell or field_rule(path) is not None, f"configs/{spec}: {path} has no rule in FIELD_RULES"


def test_misspelt_key_in_a_fresh_process():
    """The whole command line path, with the override in sys.argv when the script is imported."""
    result = subprocess.run([sys.executable, "scripts/run_palindrome.py", "--config.optim.learning_rate=1e-3"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert_one_line(result.stderr, "error:", "optim.learning_rate", "did you mean", "optim.lr")


def test_train_gnn_leaves_a_finished_run_of_the_same_config_alone(call, tmp_path):
    out = tmp_path / "gcn"
    RunDir(out).write_config(load_config("configs/gcn.py:quick"))
    RunDir(out).append_results([{"model": "gcn", "dataset": "cora", "seed": 0, "test_acc": 0.8}])
    code, err = call("train_gnn", "--config=configs/gcn.py:quick", f"--out={out}")
    assert code in (0, None), err


STALLED_PROGRAM = """
import threading
from jaxseq import cli
from jaxseq.runner.seeds import StalledRunError

def main(argv):
    # a thread that never ends stands in for XLA's deadlocked workers: a normal exit would wait for it
    threading.Thread(target=threading.Event().wait).start()
    raise StalledRunError("chunk 1 of 2 made no progress for 300 s")

cli.run_main(main, ["stalled"])
"""


def test_a_stalled_run_exits_at_once_even_when_threads_hang():
    result = subprocess.run([sys.executable, "-c", STALLED_PROGRAM], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert_one_line(result.stderr, "error:", "made no progress")


def test_a_path_that_starts_with_a_dash_is_refused_unless_written_as_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for check in (check_writable, check_writable_file):
        with pytest.raises(ValueError, match="mistyped flag; write --out=./--out=x"):
            check("--out=x")
        assert check("./--out=x") == pathlib.Path("--out=x")  # the spelled-out form is taken as meant
    assert list(tmp_path.iterdir()) == []  # checking creates nothing
