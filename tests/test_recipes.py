"""CONTRIBUTING.md's recipes, done as they are written: a cell with one line in ``MODELS`` is a
model name in every sequence experiment, its own fields set from ``model.cell_kwargs``; a task
registered in ``TASKS`` is ``--config.data.task=<name>``; and every script of ``scripts/`` is an
experiment of ``jaxseq/run.py`` ending in ``cli.run_main(main)``."""

import ast

import jax
import jax.numpy as jnp

from jaxseq.data import sequences
from jaxseq.files.results import RunDir
from jaxseq.models import registry
from jaxseq.run import EXPERIMENTS
from test_any_cell import CELL_WITH_A_FIELD
from test_cli_errors import ROOT, call  # noqa: F401  (the in-process script runner fixture)


def first_token(key, batch_size, length):
    """A task of the recipe's shape: ``length - 1`` tokens from 4, the label is the first one."""
    inputs = jax.random.randint(key, (batch_size, length - 1), 0, 4)
    return inputs, inputs[:, 0].astype(jnp.int32)


def quick_sweep(call, out, *overrides: str) -> list[dict]:
    """The rows of a quick sweep at T = 4 into ``out``, with the config ``overrides``."""
    code, err = call("run_palindrome", "--config=configs/palindrome.py:quick", *overrides, "--config.sweep.lengths=4",
                     "--config.train.num_steps=20", "--config.train.chunk_steps=10", f"--out={out}", files_change=True)
    assert code in (0, None), err
    return RunDir(out).read_results()


def test_a_task_registered_in_tasks_runs_in_the_sweep(call, tmp_path, monkeypatch):
    monkeypatch.setitem(sequences.TASKS, "first_token", sequences.Task(first_token, lambda t: 4, lambda t: 4))
    rows = quick_sweep(call, tmp_path / "sweep", "--config.data.task=first_token", "--config.sweep.models=rnn")
    assert {(r["model"], r["task"], r["length"]) for r in rows} == {("rnn", "first_token", "4")}


def test_a_cell_with_one_line_in_models_runs_in_the_sweep(call, tmp_path, monkeypatch):
    cell_module = {}
    exec(CELL_WITH_A_FIELD, cell_module)  # the class, as a built-in cell's module would hold it
    monkeypatch.setitem(registry.MODELS, "scaled_tanh", registry.ModelSpec(cell_module["ScaledTanhCell"]))
    rows = quick_sweep(call, tmp_path / "sweep", "--config.sweep.models=scaled_tanh", "--config.model.cell_kwargs=scale=0.5")
    assert {(r["model"], r["length"], r["cell.scale"]) for r in rows} == {("scaled_tanh", "4", "0.5")}


def test_every_script_is_an_experiment_that_ends_in_run_main():
    scripts = sorted(p.stem for p in (ROOT / "scripts").glob("*.py"))
    assert sorted(EXPERIMENTS.values()) == scripts
    for name in scripts:
        tree = ast.parse((ROOT / "scripts" / f"{name}.py").read_text())
        last = tree.body[-1]
        assert isinstance(last, ast.If) and ast.unparse(last.body[-1]) == "cli.run_main(main)", name
