"""Every experiment's trainer has one shape: ``make_train(config) -> trainer`` whose ``train(rng)``
is one seed's whole run, a pure function that ``jax.jit(jax.vmap(...))`` maps over seeds, with
``init``, ``run_chunk`` and ``evaluate`` beside it; the character LM's driver is that trainer's run."""

import jax
import numpy as np

from jaxseq.config import load_config
from jaxseq.data import graphs
from jaxseq.data.text import corpus_from_text
from jaxseq.files.text_runs import fit
from jaxseq.train import graph_trainer, sequence_trainer, textgen
from jaxseq.train import state as state_module
from jaxseq.train.sweep import setting_config

TEXT = "the quick brown fox jumps over the lazy dog. " * 40


def text_config():
    config = load_config("configs/textgen.py:quick")
    config.train.num_steps = 25  # two chunks of 10 and a last one of 5
    return config


def trainers():
    sequence_config = setting_config(load_config("configs/palindrome.py:quick"), **{
        "model.name": "lstm", "data.length": 5, "train.num_steps": 20, "train.chunk_steps": 10})
    graph_config = load_config("configs/gcn.py:quick")
    graph_config.train.num_epochs = 5
    problem = graphs.random_graph(0, 30, avg_degree=4, num_features=6, num_classes=3)
    corpus = corpus_from_text(TEXT, val_fraction=0.1, seq_len=12)
    return {
        "sequence": sequence_trainer.make_train(sequence_config),
        "graph": graph_trainer.make_train(graph_config, problem),
        "character LM": textgen.make_train(text_config(), corpus),
    }


def test_every_trainer_has_the_same_members_and_trains_seeds_under_jit_of_vmap():
    keys = jax.random.split(jax.random.key(0), 2)
    for name, trainer in trainers().items():
        for member in ("init", "run_chunk", "evaluate", "train"):
            assert callable(getattr(trainer, member)), (name, member)
        runs, metrics = jax.jit(jax.vmap(trainer.train))(keys)
        losses = metrics["epoch"]["loss"] if name == "graph" else metrics["loss"]
        assert losses.shape[0] == 2 and np.isfinite(np.asarray(losses)).all(), name
        # seed 1 of the mapped program is seed 1 trained alone
        _, alone = jax.jit(trainer.train)(keys[1])
        alone_losses = alone["epoch"]["loss"] if name == "graph" else alone["loss"]
        np.testing.assert_allclose(np.asarray(losses)[1], np.asarray(alone_losses), rtol=2e-5, atol=1e-6, err_msg=name)


def test_the_character_lm_driver_trains_what_its_trainer_trains():
    corpus = corpus_from_text(TEXT, val_fraction=0.1, seq_len=12)
    config = text_config()
    trainer = textgen.make_train(config, corpus)
    assert trainer.chunk_sizes() == [10, 10, 5]
    run, metrics = jax.jit(trainer.train)(jax.random.key(config.seed))
    state, rows = fit(config, corpus)  # the driver: chunks, logging, validation (no run directory)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), run.state.params,
                           state.params)
    assert int(run.state.step) == int(state.step) == 25
    np.testing.assert_allclose(float(metrics["val_loss"]), rows[-1]["val_loss"], rtol=1e-5)


def test_one_train_state_class_carries_every_trainers_parameters():
    """Every trainer keeps its parameters and optimiser in jaxseq.train.state.TrainState (the one
    subclass of Flax's); what a run carries besides (stopping, keys) sits in its own run record."""
    import ast
    import pathlib

    subclasses = []
    for path in sorted(pathlib.Path("jaxseq").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any("TrainState" in ast.unparse(base) for base in node.bases):
                subclasses.append(f"{path}:{node.name}")
    assert subclasses == ["jaxseq/train/state.py:TrainState"]
    keys = jax.random.split(jax.random.key(0), 2)
    for name, trainer in trainers().items():
        run = jax.eval_shape(trainer.init, keys[0])
        states = [leaf for leaf in jax.tree.leaves(run, is_leaf=lambda x: isinstance(x, state_module.TrainState))
                  if isinstance(leaf, state_module.TrainState)]
        assert len(states) == 1, name
