"""The study's analysis pieces: ravine trajectories, the frontier table, grad norms over seeds."""

import csv
import functools
import io

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxseq.analysis.frontier import failed_lengths, frontier_lengths, summarize
from jaxseq.analysis.grad_norms import hidden_grad_norms, seed_grad_norms_fn
from jaxseq.analysis.ravine import optimizer_trajectory, ravine_loss
from jaxseq.config import load_config
from jaxseq.models.registry import make_classifier
from jaxseq.train.optim import make_optimizer
from jaxseq.train.sweep import setting_config

KAPPA = 25.0
START = jnp.array([-4.5, 1.0])


def test_sgd_trajectory_is_the_closed_form():
    lr, steps = 0.05, 12
    path = optimizer_trajectory(optax.sgd(lr), functools.partial(ravine_loss, condition=KAPPA), START, steps)
    assert path.shape == (steps + 1, 2)
    k = np.arange(steps + 1)
    # gradient descent on a diagonal quadratic shrinks each coordinate geometrically
    expected = np.stack([START[0] * (1 - lr) ** k, START[1] * (1 - lr * KAPPA) ** k], axis=1)
    np.testing.assert_allclose(path, expected, rtol=1e-5, atol=1e-6)


def test_every_optimizer_descends_the_ravine():
    config = load_config("configs/optimizers.py")
    loss_fn = functools.partial(ravine_loss, condition=config.ravine.condition)
    start = jnp.array(config.ravine.start)
    for name, lr in config.ravine.lr.items():
        tx = make_optimizer(setting_config(config.optim, name=name, lr=lr, clip_norm=0.0))
        path = optimizer_trajectory(tx, loss_fn, start, config.ravine.num_steps)
        assert path.shape == (config.ravine.num_steps + 1, 2)
        np.testing.assert_array_equal(path[0], start)
        losses = loss_fn(path)
        assert losses[-1] < 0.02 * losses[0], name


def synthetic_results():
    """Per-seed rows as read back from CSV (strings), three variants."""
    accs = {
        ("rnn", 5): [1.0, 1.0, 0.995],
        ("rnn", 10): [1.0, 0.97, 0.99],  # mean 0.9867 < 0.99: fails
        ("rnn", 20): [1.0, 1.0, 1.0],  # passes again: the frontier is the longest passing length
        ("lstm", 10): [1.0, 1.0, 1.0],
        ("lstm", 30): [0.99, 0.99, 0.99],
        ("gru", 5): [1.0, 1.0],  # too few seeds
    }
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["variant", "model", "length", "seed", "eval_accuracy", "steps"])
    for (variant, length), values in accs.items():
        for seed, acc in enumerate(values):
            writer.writerow([variant, variant.upper(), length, seed, acc, 100 * (seed + 1)])
    text.seek(0)
    return list(csv.DictReader(text))


def test_frontier_from_a_synthetic_table():
    summary = summarize(synthetic_results(), carry=("model",))
    by_setting = {(row["variant"], row["length"]): row for row in summary}
    assert [(r["variant"], r["length"]) for r in summary] == [
        ("rnn", 5), ("rnn", 10), ("rnn", 20), ("lstm", 10), ("lstm", 30), ("gru", 5)
    ]
    rnn10 = by_setting[("rnn", 10)]
    assert rnn10["model"] == "RNN" and rnn10["seeds"] == 3 and not rnn10["passed"]
    assert rnn10["accuracy_mean"] == pytest.approx(0.9867, abs=1e-4)
    assert rnn10["accuracy_std"] == pytest.approx(np.std([1.0, 0.97, 0.99]), abs=1e-4)
    assert rnn10["steps_mean"] == 200.0
    assert by_setting[("lstm", 30)]["passed"]  # exactly at the threshold
    assert frontier_lengths(summary) == {"rnn": 20, "lstm": 30, "gru": None}
    assert failed_lengths(summary) == {"rnn": [10], "gru": [5]}
    assert [r["frontier"] for r in summary] == [20, 20, 20, 30, 30, ""]
    # a stricter threshold moves the frontier
    assert frontier_lengths(summarize(synthetic_results(), threshold=1.0)) == {"rnn": 20, "lstm": 10, "gru": None}
    assert frontier_lengths(summarize(synthetic_results(), min_seeds=2))["gru"] == 5


def test_grad_norms_mapped_over_seeds_equal_per_seed_calls():
    cfg = ml_collections.ConfigDict(dict(name="lstm", hidden_size=8, encoding="embed", embed_dim=4))
    model = make_classifier(cfg, 10, 10)
    tokens = jax.random.randint(jax.random.key(1), (6, 7), 0, 10)
    labels = jax.random.randint(jax.random.key(2), (6,), 0, 10)
    keys = jax.random.split(jax.random.key(3), 3)
    stacked = jax.vmap(lambda k: model.init(k, tokens)["params"])(keys)
    norms = seed_grad_norms_fn(model)(stacked, tokens, labels)
    per_example = seed_grad_norms_fn(model, per_example=True)(stacked, tokens, labels)
    assert norms.shape == (3, 7) and per_example.shape == (3, 6, 7)
    for strategy in ("vmap", "map", "threads:2"):  # the same numbers however the seeds are mapped
        np.testing.assert_allclose(seed_grad_norms_fn(model, strategy=strategy)(stacked, tokens, labels), norms, rtol=1e-5)
    single = jax.jit(functools.partial(hidden_grad_norms, model))
    single_per_example = jax.jit(functools.partial(hidden_grad_norms, model, per_example=True))
    for seed in range(3):
        params = jax.tree.map(lambda p: p[seed], stacked)
        np.testing.assert_allclose(norms[seed], single(params, tokens, labels), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(per_example[seed], single_per_example(params, tokens, labels), rtol=1e-5)
    assert not np.allclose(norms[0], norms[1])  # the seeds really differ
