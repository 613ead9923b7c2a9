"""The multi-seed trainer: vmap equals separate runs, it learns, it stops, it fails clearly."""

import math
import os
import re
import threading
from unittest import mock

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxseq.config import load_config
from jaxseq.train.checks import check_finite
from jaxseq.runner.multiseed import MultiSeedRunner
from jaxseq.train.optim import OPTIMIZERS, make_optimizer, make_schedule
from jaxseq.train.periodic import is_time
from jaxseq.runner.seeds import (
    STALL_FACTOR,
    SeedGroups,
    StalledRunError,
    StallWatch,
    join_seeds,
    resolve_seed_strategy,
    seed_groups,
    split_seeds,
)
from jaxseq.runner.record import make_trainers
from jaxseq.train.sequence_trainer import make_train
from jaxseq.train.state import one_seed_at_a_time
from jaxseq.train.sweep import setting_config


def quick(**fields):
    """The quick palindrome config with dotted overrides."""
    return setting_config(load_config("configs/palindrome.py:quick"), **fields)


def test_vmapped_seeds_equal_separate_runs():
    trainer = make_train(quick(**{"model.name": "lstm", "data.length": 6, "train.num_steps": 20, "train.chunk_steps": 10}))
    keys = jax.random.split(jax.random.key(3), 3)
    batched, batched_metrics = jax.jit(jax.vmap(trainer.train))(keys)
    single = jax.jit(trainer.train)
    for i in range(3):
        run, metrics = single(keys[i])
        chex.assert_trees_all_close(
            jax.tree.map(lambda x: x[i], batched.train_state.params), run.train_state.params, rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(batched_metrics["loss"][i], metrics["loss"], rtol=1e-5)
    # different seeds really are different runs
    assert not np.allclose(batched_metrics["loss"][0], batched_metrics["loss"][1])


def lapack_batch_dims(fn, *args) -> list[int]:
    """``num_batch_dims`` of every LAPACK call in the lowered program of ``jax.jit(fn)(*args)``."""
    text = jax.jit(fn).lower(*args).as_text()
    return [int(n) for n in re.findall(r'custom_call @lapack_\w+\(.*num_batch_dims = "(\d+)"', text)]


def test_one_seed_at_a_time_keeps_lapack_calls_unbatched_under_vmap():
    """A batched LAPACK QR is what deadlocks XLA's CPU runtime; wrapped, vmap loops over the seeds."""

    def orthogonal(key):
        return jnp.linalg.qr(jax.random.normal(key, (6, 6)))[0]

    keys = jax.random.split(jax.random.key(0), 3)
    assert set(lapack_batch_dims(jax.vmap(orthogonal), keys)) == {1}  # plain vmap: the QR's calls batched
    looped = jax.vmap(one_seed_at_a_time(orthogonal))
    assert set(lapack_batch_dims(looped, keys)) == {0}
    np.testing.assert_array_equal(jax.jit(looped)(keys), np.stack([orthogonal(key) for key in keys]))


@pytest.mark.parametrize("model", ["lstm", "gru", "flax.linen:LSTMCell"])
def test_a_vmapped_run_initialises_orthogonal_weights_one_seed_at_a_time(model):
    """``jax.vmap(trainer.train)`` has the QRs of the orthogonal initialisers (jaxseq's recurrent
    default, and Flax's for its own cells), each on one matrix, and the same parameters per seed."""
    trainer = make_train(quick(**{"model.name": model, "data.length": 5, "train.num_steps": 2, "train.chunk_steps": 2}))
    keys = jax.random.split(jax.random.key(4), 3)
    dims = lapack_batch_dims(jax.vmap(trainer.train), keys)
    assert dims and set(dims) == {0}, dims
    batched = jax.jit(jax.vmap(trainer.init))(keys).train_state.params
    for i, key in enumerate(keys):
        chex.assert_trees_all_equal(jax.tree.map(lambda x: x[i], batched), trainer.init(key).train_state.params)


def test_chunked_runner_equals_the_pure_whole_run():
    config = quick(**{"model.name": "rnn", "data.length": 5, "train.num_steps": 30, "train.chunk_steps": 10})
    trainer = make_train(config)
    key = jax.random.key(0)
    results = MultiSeedRunner(trainer, config.runner).run(key, 2)
    whole, metrics = jax.jit(jax.vmap(trainer.train))(jax.random.split(key, 2))
    chex.assert_trees_all_close(results.run.train_state.params, whole.train_state.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results.final["eval_accuracy"], metrics["eval_accuracy"])


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_short_run_learns_length_5_palindromes(model):
    config = quick(**{"model.name": model, "data.length": 5, "train.num_steps": 600})
    results = MultiSeedRunner(make_train(config), config.runner).run(jax.random.key(0), 2)
    assert np.all(results.final["eval_accuracy"] >= 0.99), results.final
    # each seed stopped by itself once converged, and kept the parameters that converged
    assert np.all(results.final["converged_step"] > 0)
    assert np.all(results.final["steps"] < 600)
    np.testing.assert_array_equal(results.final["steps"], results.final["converged_step"] - 1)


def test_without_a_stopping_rule_every_seed_uses_the_whole_budget():
    config = quick(**{"train.num_steps": 25, "train.chunk_steps": 10, "train.stop_accuracy": 2.0})
    results = MultiSeedRunner(make_train(config), config.runner).run(jax.random.key(0), 2)
    np.testing.assert_array_equal(results.final["steps"], [25, 25])
    np.testing.assert_array_equal(results.final["converged_step"], [-1, -1])
    assert results.steps["loss"].shape == (2, 30)  # 3 chunks of 10, the last 5 steps masked
    assert not results.steps["active"][:, 25:].any()


def test_patience_stops_a_seed_whose_loss_stopped_improving():
    # learning rate zero: the loss cannot improve, so the seed stops after window + patience steps
    config = quick(**{"optim.name": "sgd", "optim.lr": 1e-30, "train.num_steps": 200, "train.window": 5, "train.patience": 10})
    results = MultiSeedRunner(make_train(config), config.runner).run(jax.random.key(0), 1)
    assert results.final["stopped_step"][0] < 60
    assert results.final["converged_step"][0] == -1


def test_one_step_changes_every_parameter_leaf():
    for model in ["rnn", "lstm", "gru", "peephole_lstm", "bilstm"]:
        trainer = make_train(quick(**{"model.name": model, "model.encoding": "embed"}))
        run = jax.jit(trainer.init)(jax.random.key(0))  # compiled whole, as the runner does
        state, metrics = jax.jit(trainer.train_step)(run.train_state, trainer.get_batch(jax.random.key(1)), jax.random.key(2))
        changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.params, run.train_state.params)
        assert all(jax.tree.leaves(changed)), (model, changed)
        assert set(metrics) >= {"loss", "accuracy", "grad_norm", "param_norm"}


def test_compiled_chunk_is_traced_once():
    trainer = make_train(quick(**{"train.num_steps": 20, "train.chunk_steps": 10}))
    chunk = jax.jit(chex.assert_max_traces(trainer.run_chunk, n=1))
    run = trainer.init(jax.random.key(0))
    for _ in range(3):
        run, _ = chunk(run)
    assert int(run.step) == 30


def test_non_finite_loss_names_step_and_seed():
    config = quick(**{"optim.name": "sgd", "optim.lr": float("inf"), "optim.clip_norm": 0.0, "train.num_steps": 100})
    with pytest.raises(FloatingPointError, match=r"non-finite loss .* at step \d+ in seed \d"):
        MultiSeedRunner(make_train(config), config.runner).run(jax.random.key(0), 2)


def test_check_finite_points_at_the_first_bad_entry():
    losses = np.ones((3, 5))
    losses[2, 3] = np.nan
    with pytest.raises(FloatingPointError, match="at step 14 in seed 2"):
        check_finite(losses, first_step=11)
    check_finite(np.ones(4))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"model.name": "transformer"}, "unknown model 'transformer'"),
        ({"optim.name": "lbfgs"}, "unknown optimizer 'lbfgs'; choose one of: adam, adamw, momentum, rmsprop, sgd"),
        ({"optim.lr": 0.0}, "optim.lr must be > 0"),
        ({"data.batch_size": 0}, "batch_size must be a positive int"),
        ({"data.length": 1}, "sequence length must be an int >= 2"),
        ({"train.num_steps": 0}, "num_steps and train.chunk_steps must be positive"),
        ({"optim.schedule": "linear"}, "unknown schedule 'linear'"),
    ],
)
def test_bad_config_is_a_clear_error(fields, message):
    with pytest.raises(ValueError, match=message):
        make_train(quick(**fields))


def test_config_typos_are_errors():
    config = load_config("configs/palindrome.py:quick")
    with pytest.raises(AttributeError):
        config.optim.learning_rate = 1.0
    with pytest.raises(KeyError, match="no field 'optim.learning_rate'"):
        setting_config(config, **{"optim.learning_rate": 1.0})
    with pytest.raises(ValueError, match="unknown variant 'tiny'"):
        load_config("configs/palindrome.py:tiny")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("schedule", ["constant", "cosine", "warmup_cosine", "exponential"])
def test_every_optimizer_and_schedule_descends_a_quadratic(name, schedule):
    cfg = ml_collections.ConfigDict(dict(name=name, lr=0.1, schedule=schedule, clip_norm=10.0, momentum=0.9))
    tx = make_optimizer(cfg, total_steps=100)
    params = jnp.array([3.0, -2.0])
    state = tx.init(params)
    loss = lambda p: jnp.sum(p**2)  # noqa: E731
    for _ in range(50):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    assert loss(params) < 13.0 * 0.5


def schedule_formula(name, step, lr=0.1, total=100, final_fraction=0.1):
    """The learning rate at ``step`` from each schedule's formula, with the configs' default
    ``warmup_steps = total // 20`` and exponential ``decay_steps = total // 10``, ``decay_rate = 0.5``."""
    def half_cosine(t, span, start, end):  # start -> end over span steps, then end
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * min(t, span) / span))

    if name == "cosine":
        return half_cosine(step, total, lr, final_fraction * lr)
    if name == "warmup_cosine":
        warmup = total // 20
        if step < warmup:
            return lr * step / warmup
        return half_cosine(step - warmup, total - warmup, lr, final_fraction * lr)
    if name == "exponential":
        return lr * 0.5 ** (step / (total // 10))
    raise ValueError(name)


@pytest.mark.parametrize("schedule", ["cosine", "warmup_cosine", "exponential"])
def test_schedules_follow_their_formulas(schedule):
    cfg = ml_collections.ConfigDict(dict(name="sgd", lr=0.1, schedule=schedule, final_lr_fraction=0.1))
    rates = make_schedule(cfg, total_steps=100)
    steps = np.arange(0, 111)
    expected = [schedule_formula(schedule, int(step)) for step in steps]
    np.testing.assert_allclose([float(rates(step)) for step in steps], expected, rtol=1e-5, atol=1e-8)


def test_gradient_clipping_bounds_the_update():
    cfg = ml_collections.ConfigDict(dict(name="sgd", lr=1.0, clip_norm=2.0))
    tx = make_optimizer(cfg)
    updates, _ = tx.update(jnp.array([30.0, 40.0]), tx.init(jnp.zeros(2)))
    np.testing.assert_allclose(updates, [-1.2, -1.6], rtol=1e-6)


def test_is_time_never_skips_the_last_step():
    assert [s for s in range(1, 11) if is_time(s, 4, 10)] == [4, 8, 10]
    assert [s for s in range(1, 6) if is_time(s, 0, 5)] == [5]
    assert [s for s in range(1, 7) if is_time(s, 3, 6)] == [3, 6]


@pytest.mark.slow
def test_every_seed_strategy_gives_the_same_per_seed_results():
    """vmap, lax.map, lax.map in groups and seed groups in threads (each including a ragged last
    group) train the same seeds."""
    config = quick(**{"model.name": "lstm", "data.length": 5, "train.num_steps": 80, "train.chunk_steps": 20,
                      "train.window": 10, "train.stop_accuracy": 0.3})
    trainer = make_train(config)
    results = {s: MultiSeedRunner(trainer, config.runner, strategy=s).run(jax.random.key(5), 3) for s in ["vmap", "map", "map:2", "threads:2"]}
    reference = results["vmap"]
    assert len(set(reference.final["steps"].tolist())) > 1  # seeds stop on their own, at different steps
    for strategy, other in results.items():
        chex.assert_trees_all_close(other.run.train_state.params, reference.run.train_state.params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(other.steps["loss"], reference.steps["loss"], rtol=1e-5, err_msg=strategy)
        for key in ("steps", "converged_step", "stopped_step"):
            np.testing.assert_array_equal(other.final[key], reference.final[key], err_msg=f"{strategy}: {key}")
        np.testing.assert_allclose(other.final["eval_accuracy"], reference.final["eval_accuracy"], atol=1e-6)


def test_seed_strategy_names(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)  # three cores to run on
    assert resolve_seed_strategy("auto", backend="cpu") == "threads:3"
    assert resolve_seed_strategy("auto", backend="gpu") == "vmap"
    assert resolve_seed_strategy("map:4") == "map:4"
    assert resolve_seed_strategy("threads:3") == "threads:3"
    assert resolve_seed_strategy("threads") == "threads:3"
    assert seed_groups("threads:3") == 3 and seed_groups("map:4") == 1 and seed_groups("vmap") == 1
    config = quick(**{"runner.seed_strategy": "vmap"})
    assert MultiSeedRunner(make_train(config), config.runner).strategy == "vmap"
    for bad in ["pmap", "map:0", "map:x", "", "threads:0", "threads:x"]:
        with pytest.raises(ValueError, match="unknown runner.seed_strategy"):  # a study script's plan refuses it
            make_trainers([quick(**{"runner.seed_strategy": bad})])


def test_a_chunk_that_never_finishes_stops_the_run_with_a_clear_error():
    """A stand-in for XLA's deadlock: a chunk whose result is not ready within the bound."""
    stuck = StallWatch(min_s=0.2, strategy="vmap")
    never_ready = mock.Mock(is_ready=mock.Mock(return_value=False))
    with pytest.raises(StalledRunError, match=r"chunk 3 of 9 made no progress .*seed_strategy=map"):
        stuck.wait({"loss": never_ready}, "chunk 3 of 9")
    # a result that is not ready when the wait starts is waited for, not given up on
    late = mock.Mock(is_ready=mock.Mock(side_effect=[False] * 5 + [True]))
    assert StallWatch(min_s=60.0).wait({"loss": late}, "chunk 4 of 9") == {"loss": late}
    assert late.is_ready.call_count == 6
    # a chunk that finishes is returned, and the bound grows with the slowest chunk seen so far
    watch = StallWatch(min_s=30.0)
    result = watch.wait(jax.jit(lambda x: x @ x)(jnp.ones((300, 300))))
    assert watch.slowest > 0 and float(result[0, 0]) == 300.0
    assert watch.bound_s == 30.0
    watch.slowest = 12.0
    assert watch.bound_s == pytest.approx(STALL_FACTOR * 12.0)


def test_seed_groups_split_join_and_stop_on_a_stalled_group():
    """Seeds split into contiguous groups (larger first) and join back; a group that never finishes
    stops the wait with the stall error, without waiting for its thread."""
    tree = {"a": np.arange(5), "b": np.arange(10).reshape(5, 2)}
    parts = split_seeds(tree, 2)
    assert [len(p["a"]) for p in parts] == [3, 2] and len(split_seeds(tree, 9)) == 5
    joined = join_seeds(parts)
    assert all(np.array_equal(joined[k], tree[k]) for k in tree)
    groups = SeedGroups("threads:2")
    assert groups.groups == 2 and SeedGroups("map").groups == 1
    assert groups(lambda x: x * 2, [1, 2], StallWatch(min_s=5.0), "chunk") == [2, 4]
    release, returned = threading.Event(), threading.Event()  # the second group "deadlocks" until released

    def group(x):
        if x:
            return x
        release.wait(60)  # only guards against a hang
        returned.set()

    with pytest.raises(StalledRunError, match="chunk 1 of 3 made no progress"):
        groups(group, [1, 0], StallWatch(min_s=0.3, strategy="threads:2"), "chunk 1 of 3")
    groups.close()
    assert not returned.is_set()  # gave up after its bound, while the stuck group was still stuck
    release.set()


def test_the_runner_stops_on_a_stalled_chunk(monkeypatch):
    config = quick(**{"train.num_steps": 20, "train.chunk_steps": 10, "runner.stall_timeout_s": 2.0})
    trainer = make_train(config)
    runner = MultiSeedRunner(trainer, config.runner, strategy="map")  # threads: test_seed_groups_split_join_and_stop_...
    stalled = {"now": True}  # from the start: the initialisation stalls
    array_type = type(jnp.zeros(1))  # jax's ArrayImpl
    block = array_type.block_until_ready

    def deadlocked(self):  # what a deadlocked runtime does: never returns (the watch's helper is a daemon)
        return threading.Event().wait() if stalled["now"] else block(self)

    monkeypatch.setattr(array_type, "block_until_ready", deadlocked)
    with pytest.raises(StalledRunError, match="initialisation made no progress"):
        runner.run(jax.random.key(0), 2)
    stalled["now"], run_chunk = False, runner.run_chunk

    def stalling_chunk(run):  # from the first chunk on
        stalled["now"] = True
        return run_chunk(run)

    runner.run_chunk = stalling_chunk
    with pytest.raises(StalledRunError, match="chunk 1 of 2 made no progress"):
        runner.run(jax.random.key(0), 2)
