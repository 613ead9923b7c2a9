"""Careless inputs whose answer would otherwise be an exception's text: each is one ``error:`` line
naming the thing to fix (exit code 2), and changes no file.

In-process through :func:`jaxseq.cli.run_main`, as in tests/test_cli_errors.py (whose ``call``
fixture also checks that no file changed); nothing here compiles or trains.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from jaxseq.config import load_config
from jaxseq.models.charlm import CharLSTM
from jaxseq.files.results import RunDir
from jaxseq.train.sampling import check_fits_in_memory, sample_bytes
from test_cli_errors import ROOT, assert_one_line, call, load_script  # noqa: F401 (call: the fixture)

TEXTGEN_QUICK = "--config=configs/textgen.py:quick"


@pytest.fixture
def text_run(tmp_path):
    """The files of a train_textgen.py run directory of the quick config that every reader opens
    before its checkpoint (config.json and vocab.json): each case here ends before one is read."""
    run = RunDir(tmp_path / "run")
    run.write_config(load_config("configs/textgen.py:quick"))
    (run.path / "vocab.json").write_text(json.dumps({"chars": list(" abcdefghij.")}))
    return run.path


def _syntax_error_line(path) -> int:
    """The line at which Python's own parser stops reading ``path`` (the line the message must name)."""
    try:
        compile(path.read_text(), str(path), "exec")
    except SyntaxError as error:
        return error.lineno
    raise AssertionError(f"{path} parses as Python")


MESSAGES = [  # (script, arguments, words the one line must hold)
    ("train_textgen", ["--config=configs/palindrome.py"], ["configs/palindrome.py", "run_palindrome.py", "data.book",
                                                           "train_textgen.py takes configs/textgen.py"]),
    ("train_gnn", ["--config=configs/textgen.py"], ["configs/textgen.py", "for train_textgen.py", "takes configs/gcn.py"]),
    ("run_palindrome", ["--config=configs/gcn.py"], ["configs/gcn.py", "for train_gnn.py", "takes configs/palindrome.py"]),
    ("run_palindrome", ["--config=README.md"], ["--config=README.md", "not a Python config file",
                                                f"line {_syntax_error_line(ROOT / 'README.md')}"]),
    ("run_palindrome", ["--config=pyproject.toml"], ["--config=pyproject.toml", "not a Python config file"]),
    ("run_palindrome", ["--config=jaxseq/report.py"], ["jaxseq/report.py", "defines no get_config"]),
    ("run_palindrome", ["--config.optim.lr=xyz"], ["--config.optim.lr=xyz", "optim.lr takes a number", "'xyz'"]),
    ("run_palindrome", ["--config.train.num_steps=abc"], ["train.num_steps takes a whole number", "'abc'"]),
    ("eval_textgen", ["--streams=0"], ["--streams=0", "positive"]),
    ("eval_textgen", ["--streams=-3"], ["--streams=-3", "positive"]),
    ("generate", ["--seed=99999999999999999999999"], ["--seed=99999999999999999999999", "range [0, "]),
    ("generate", ["--config.model.hidden_size=16"], ["--config.model.hidden_size=16", "give the config it overrides first"]),
]


@pytest.mark.parametrize("script, args, words", MESSAGES, ids=[f"{s}:{' '.join(a)}" for s, a, _ in MESSAGES])
def test_one_line_naming_the_fix(call, tmp_path, script, args, words):
    out = [f"--out={tmp_path / 'out'}"] if script in ("train_textgen", "train_gnn", "run_palindrome") else []
    code, err = call(script, *args, *out)
    assert code == 2, err
    assert_one_line(err, "error:", *words)
    assert not (tmp_path / "out").exists()


def test_a_config_of_another_experiment_to_generate(call, text_run):
    code, err = call("generate", f"--run={text_run}", "--config=configs/palindrome.py")
    assert code == 2
    assert_one_line(err, "error:", "configs/palindrome.py is a config for run_palindrome.py",
                    "generate.py takes configs/textgen.py")


def test_a_misspelt_override_in_generate_names_the_key_and_the_closest(call, text_run):
    code, err = call("generate", f"--run={text_run}", TEXTGEN_QUICK, "--config.model.hiden_size=16")
    assert code == 2
    assert_one_line(err, "error:", "'model.hiden_size'", "did you mean model.hidden_size")


def test_more_samples_than_fit_say_how_many_fit(call, text_run):
    code, err = call("generate", f"--run={text_run}", "--num_samples=200000000")
    assert code == 2
    assert_one_line(err, "error:", "--num_samples=200000000", "GB", "fit in the")
    model = CharLSTM(vocab_size=12, hidden_size=32, num_layers=2, embed_dim=8)
    each = sample_bytes(model, 1, 300)
    check_fits_in_memory(model, 1000, 1, 300, free=1000 * each)  # as many as fit are accepted
    with pytest.raises(ValueError, match="about 1,000 fit in the"):
        check_fits_in_memory(model, 1001, 1, 300, free=1000 * each)
    assert sample_bytes(model, 1, 600) > each > sample_bytes(model, 1, 150)


@pytest.mark.parametrize("text", ["{\n", "\n\n", "[1, 2]"])
def test_a_corrupt_run_config_names_the_file(call, text_run, text):
    (text_run / "config.json").write_text(text)
    for script in ("generate", "eval_textgen"):
        code, err = call(script, f"--run={text_run}")
        assert code == 2
        assert_one_line(err, "error:", f"{text_run / 'config.json'} cannot be read")


def test_a_corrupt_vocabulary_names_the_file(call, text_run):
    (text_run / "vocab.json").write_text("\n\n")
    code, err = call("generate", f"--run={text_run}")
    assert code == 2
    assert_one_line(err, "error:", f"{text_run / 'vocab.json'} cannot be read")


def test_a_word_in_a_column_of_numbers_names_file_row_and_column(call, tmp_path):
    out = tmp_path / "sweep"
    run_dir = RunDir(out)
    run_dir.write_config(load_config("configs/palindrome.py:quick"))
    row = dict(model="rnn", task="decimal_palindrome", length=4, eval_accuracy=1.0)
    run_dir.append_results([{**row, "seed": 0}, {**row, "seed": 1, "eval_accuracy": "xyz"}])
    code, err = call("run_palindrome", f"--out={out}", "--plot_only")
    assert code == 2
    assert_one_line(err, "error:", str(out / "results.csv"), "row 2", "eval_accuracy", "'xyz'", "not a number")


def test_the_frontier_docstrings_own_override_works(call):
    override = re.search(r"``(--config\.variants\.[^`]+)``", (ROOT / "configs/frontier.py").read_text()).group(1)
    code, err = call("frontier", "--config=configs/frontier.py", override, "--print_config")
    assert code in (0, None), err  # accepted (and printed)
    name = override.split(".")[2]
    lengths = override.split("=", 1)[1]
    frontier = load_script("frontier")
    config = load_config("configs/frontier.py")
    with config.unlocked():
        config.variants[name].sweep.lengths = lengths
    variants = frontier.variant_configs(config)
    assert variants[name].sweep.lengths == lengths
    assert {cfg.sweep.lengths for other, cfg in variants.items() if other != name} == {config.sweep.lengths}


def test_jax_platforms_naming_a_missing_backend():
    """The whole path in a fresh process: jax itself would fail later with a bare AssertionError."""
    env = {**os.environ, "JAX_PLATFORMS": "cuda"}
    program = "import jax; from jaxseq import cli; cli.run_main(lambda argv: print(jax.numpy.zeros(1)), ['x'])"
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode == 0:
        pytest.skip("this machine has a CUDA backend")
    assert result.returncode == 2, result.stderr
    assert_one_line(result.stderr, "error:", "JAX_PLATFORMS=cuda", "no such backend", "unset JAX_PLATFORMS")
