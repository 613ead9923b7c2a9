"""Training GCN/GAT: masked losses and metrics, seeds under vmap, jit vs no-jit, a short
real run on Cora, and the accuracies the configs state."""

import csv
import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq.config import load_config
from jaxseq.data import graphs
from jaxseq.models.gnn import make_gnn
from jaxseq.runner import graph_seeds
from jaxseq.train import graph_trainer as gnn

from data_paths import needs_planetoid as needs_data


def tiny_config(name, num_epochs=20):
    """A config for a 40-node graph; lr 0.2 overfits fast, so the window rule fires early."""
    config = load_config(f"configs/{name}.py:quick")
    config.train.num_epochs = num_epochs
    config.train.patience = 2
    config.optim.lr = 0.2
    return config


@pytest.fixture(scope="module")
def tiny_problem():
    return graphs.random_graph(0, 40, avg_degree=4, num_features=6, num_classes=3)


@pytest.fixture(scope="module")
def tiny_runs(tiny_problem):
    """GCN on the tiny graph: three seeds vmapped, and seed 1 alone, both jitted."""
    train = gnn.make_train(tiny_config("gcn"), tiny_problem).train
    keys = jax.random.split(jax.random.key(3), 3)
    _, batched = jax.jit(jax.vmap(train))(keys)
    _, single = jax.jit(train)(keys[1])
    return keys, batched, single


def test_l2_penalty_scopes():
    params = {"layer_0": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}, "layer_1": {"kernel": jnp.ones(3)}}
    assert float(gnn.l2_penalty(params, "first_layer")) == 2.0
    assert float(gnn.l2_penalty(params, "all")) == 3.5
    with pytest.raises(ValueError, match="first_layer"):
        gnn.l2_penalty(params, "everything")


def test_unknown_names_are_clear_errors(tiny_problem):
    config = tiny_config("gcn")
    config.model.name = "graphsage"
    with pytest.raises(ValueError, match="gat, gcn"):
        gnn.make_train(config, tiny_problem)
    config = tiny_config("gcn")
    config.train.early_stopping = "never"
    with pytest.raises(ValueError, match="patience, window"):
        gnn.make_train(config, tiny_problem)
    with pytest.raises(ValueError, match="quick"):
        load_config("configs/gat.py:pubmed")


def test_non_finite_loss_names_epoch_and_seed():
    losses = np.ones((3, 10))
    losses[2, 6] = np.nan
    with pytest.raises(FloatingPointError, match="step 7 in seed 2"):
        graph_seeds.check_run({"epoch": {"loss": losses}})


def test_vmapped_seed_equals_single_run(tiny_runs):
    _, batched, single = tiny_runs
    for name in ("loss", "val_loss", "grad_norm", "param_norm"):
        np.testing.assert_allclose(batched["epoch"][name][1], single["epoch"][name], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(batched["final"]["epochs"][1], single["final"]["epochs"])
    assert not np.allclose(batched["epoch"]["loss"][0], batched["epoch"]["loss"][1])  # seeds differ


def test_stopped_seeds_are_frozen(tiny_runs):
    _, batched, _ = tiny_runs
    for seed, epochs in enumerate(batched["final"]["epochs"]):
        active, param_norm = batched["epoch"]["active"][seed], batched["epoch"]["param_norm"][seed]
        assert 0 < epochs < 20 and active.sum() == epochs and active[:epochs].all()
        np.testing.assert_array_equal(param_norm[epochs:], param_norm[epochs - 1])


def test_jit_and_no_jit_agree(tiny_problem, tiny_runs):
    keys, _, jitted = tiny_runs
    # Same run cut to 2 epochs (a constant schedule does not depend on the run length).
    train = gnn.make_train(tiny_config("gcn", num_epochs=2), tiny_problem).train
    with jax.disable_jit():
        _, eager = train(keys[1])
    for name in ("loss", "val_loss", "param_norm"):
        np.testing.assert_allclose(eager["epoch"][name], jitted["epoch"][name][:2], rtol=1e-5)


@needs_data
@pytest.mark.data
@pytest.mark.slow
def test_short_gcn_run_on_cora_is_well_above_chance():
    config = load_config("configs/gcn.py:quick")  # 30 epochs, 2 seeds
    runs = graph_seeds.train_seeds(config)
    test_acc = runs.final["test_acc"]
    assert test_acc.shape == (2,)
    assert (test_acc > 0.45).all(), test_acc  # chance is ~0.14-0.32 (majority class)
    assert runs.steps["loss"].shape == (2, 30)
    model = make_gnn(config.model, 7)
    assert jax.tree.map(np.shape, runs.run.params) == jax.tree.map(
        lambda p: (2,) + p.shape, model.init(jax.random.key(0), graphs.load_planetoid("cora").graph)["params"]
    )


def test_train_seeds_gives_the_same_seeds_under_every_strategy(tiny_problem):
    """``runner.seed_strategy`` (vmap, lax.map, lax.map in groups, groups in threads) changes how, not
    what, the seeds train."""
    runs = {}
    for strategy in ("vmap", "map", "map:2", "threads:2"):
        config = tiny_config("gcn")
        config.train.num_seeds = 3
        config.runner.seed_strategy = strategy
        runs[strategy] = graph_seeds.train_seeds(config, tiny_problem)
    reference = runs["vmap"]
    for strategy, run in runs.items():
        for name in ("loss", "val_loss", "grad_norm"):
            np.testing.assert_allclose(run.steps[name], reference.steps[name], rtol=1e-5, atol=1e-6, err_msg=strategy)
        np.testing.assert_array_equal(run.final["epochs"], reference.final["epochs"])
        np.testing.assert_allclose(run.final["test_acc"], reference.final["test_acc"], atol=1e-6)


@pytest.mark.parametrize("name", ["gcn", "gat"])
def test_config_states_the_measured_accuracies(name):
    """The docstring's expected test accuracies are the mean ± std (over seeds) of results/gnn/<name>_<dataset>."""
    root = pathlib.Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location(f"config_{name}", root / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for dataset in ("Cora", "Citeseer"):
        with open(root / "results" / "gnn" / f"{name}_{dataset.lower()}" / "results.csv") as f:
            accuracies = 100 * np.array([float(row["test_acc"]) for row in csv.DictReader(f)])
        assert len(accuracies) == 10
        assert f"{dataset} {accuracies.mean():.2f} ± {accuracies.std():.2f}%" in module.__doc__


def test_masked_metrics_and_evaluate_count_only_masked_nodes():
    logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    classes = np.array([0, 2, 2, 1, 1])
    labels = jnp.asarray(np.eye(3)[classes], jnp.float32)
    masks = {"train": np.array([1, 1, 0, 0, 0], bool), "val": np.array([0, 0, 1, 1, 1], bool),
             "test": np.zeros(5, bool)}
    log_softmax = np.asarray(logits) - np.log(np.exp(np.asarray(logits)).sum(1, keepdims=True))
    nll = -log_softmax[np.arange(5), classes]
    predicted_right = np.array([True, False, True, False, True])  # argmaxes 0, 1, 2, 0, 1
    problem = graphs.NodeClassification(None, labels, *(jnp.asarray(masks[s]) for s in ("train", "val", "test")))
    metrics = gnn.evaluate(logits, problem)
    for split in ("train", "val"):
        mask = masks[split]
        loss = gnn.masked_cross_entropy(logits, labels, jnp.asarray(mask))
        accuracy = gnn.masked_accuracy(logits, labels, jnp.asarray(mask))
        np.testing.assert_allclose(loss, nll[mask].mean(), rtol=1e-6)
        np.testing.assert_allclose(accuracy, predicted_right[mask].mean(), rtol=1e-6)
        np.testing.assert_allclose(metrics[f"{split}_loss"], loss, rtol=1e-6)
        np.testing.assert_allclose(metrics[f"{split}_acc"], accuracy, rtol=1e-6)
    assert float(metrics["train_acc"]) == 0.5 and float(metrics["val_acc"]) == pytest.approx(2 / 3)
    assert float(metrics["test_loss"]) == 0.0 and float(metrics["test_acc"]) == 0.0  # an empty mask
    assert sorted(metrics) == sorted(f"{s}_{m}" for s in ("train", "val", "test") for m in ("loss", "acc"))
