"""One seed's batch split into shards, over CPU devices or host threads: the shard count, the rows,
the averaged gradients, and a sharded run that follows the unsharded one."""

import concurrent.futures
import threading

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq.config import load_config
from jaxseq.runner import batch_shards
from jaxseq.runner.batch_shards import MIN_SHARD_ROWS, BatchShards, mean_of_shards, resolve_batch_shards
from jaxseq.runner.multiseed import MultiSeedRunner, seed_keys
from jaxseq.runner.record import make_trainers
from jaxseq.runner.seeds import StalledRunError, StallWatch
from jaxseq.train.sequence_trainer import make_train
from jaxseq.train.state import count_params, shard_rows
from jaxseq.train.sweep import setting_config


def quick(**fields):
    """The quick palindrome config (B = 64) with dotted overrides."""
    return setting_config(load_config("configs/palindrome.py:quick"), **fields)


def test_auto_shards_one_seed_on_cpu_over_its_cores():
    assert resolve_batch_shards("auto", 1, 128, backend="cpu", cores=2) == 2
    assert resolve_batch_shards("auto", 1, 128, backend="cpu", cores=1) == 1
    assert resolve_batch_shards("auto", 1, 96, backend="cpu", cores=4) == 3  # 4 does not divide 96
    assert resolve_batch_shards("auto", 1, 128, backend="cpu", cores=16) == 128 // MIN_SHARD_ROWS
    assert resolve_batch_shards("auto", 1, 40, backend="cpu", cores=2) == 1  # shards of 20 rows: too small
    assert resolve_batch_shards("auto", 2, 128, backend="cpu", cores=2) == 1  # seeds fill the cores instead
    assert resolve_batch_shards("auto", 1, 128, backend="gpu", cores=2) == 1
    # the measured cases (2 cores): the palindrome LSTM (B = 128, 72,458 parameters) gains at T = 10;
    # the RNN's step at T = 10 is too small to pay for the handoff (0.70x); the 2 x 256 character
    # LSTM (880K parameters) gains on devices (1.04x, bench_textgen.py); wider models were never
    # measured
    assert resolve_batch_shards("auto", 1, 128, 10, 72_458, backend="cpu", cores=2) == 2
    assert resolve_batch_shards("auto", 1, 128, 10, 19_082, backend="cpu", cores=2) == 1
    assert resolve_batch_shards("auto", 1, 64, 30, 879_696, backend="cpu", cores=2) == 2
    assert resolve_batch_shards("auto", 1, 64, 30, 2_000_000, backend="cpu", cores=2) == 1


def test_an_explicit_shard_count_must_divide_the_batch():
    assert resolve_batch_shards(4, 8, 128) == 4
    assert resolve_batch_shards("2", 1, 128) == 2  # the config field is a string: "auto" or digits
    assert resolve_batch_shards(1, 1, 7) == 1
    with pytest.raises(ValueError, match="does not divide data.batch_size=64"):
        make_trainers([quick(**{"runner.batch_shards": "3"})])  # a study script's plan: before anything trains
    for bad in [0, -2, "two", "0", True, 1.5]:
        with pytest.raises(ValueError, match="batch_shards"):
            resolve_batch_shards(bad, 1, 64)


def test_shards_cover_the_batch_and_their_mean_is_the_mean():
    batch = (jnp.arange(24).reshape(12, 2), jnp.arange(12))
    parts = [shard_rows(batch, jnp.int32(i), 3) for i in range(3)]
    chex.assert_trees_all_equal(jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts), batch)
    trees = [{"a": jnp.float32(v), "b": jnp.full(3, 2.0 * v)} for v in (1.0, 2.0, 6.0)]
    chex.assert_trees_all_close(mean_of_shards(tuple(trees)), {"a": 3.0, "b": jnp.full(3, 6.0)})


@pytest.mark.slow
def test_the_mean_of_shard_gradients_is_the_batch_gradient():
    trainer = make_train(quick(**{"model.name": "lstm", "data.length": 6}))
    run = jax.jit(trainer.init)(jax.random.key(3))
    # compiled, as the trainer runs them (op by op, the two would dispatch hundreds of small programs)
    full = jax.jit(trainer.gradients)(run.train_state, jax.jit(trainer._step_batch)(run))
    shard_gradients = jax.jit(trainer.shard_gradients, static_argnums=2)
    parts = tuple(shard_gradients(run, jnp.int32(i), 4) for i in range(4))
    chex.assert_trees_all_close(mean_of_shards(parts), full, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("num_seeds,mode", [(1, "devices"), (2, "devices"), (1, "threads")])
def test_a_sharded_run_follows_the_unsharded_one(num_seeds, mode, monkeypatch):
    """Same seeds, same batches: losses, stopping steps and parameters agree to float rounding over
    a short run (longer runs drift apart, as any change of summation order makes them)."""
    if mode == "threads":  # as when jax has one CPU device
        monkeypatch.setattr(batch_shards, "shard_devices", lambda count: None)
    config = quick(**{"model.name": "lstm", "data.length": 5, "train.num_steps": 60, "train.chunk_steps": 20,
                      "train.window": 10, "train.stop_accuracy": 0.3})
    trainer = make_train(config)
    plain = MultiSeedRunner(trainer, strategy="map", batch_shards=1).run(jax.random.key(7), num_seeds)
    runner = MultiSeedRunner(trainer, strategy="map", batch_shards=2)
    with runner.shards(num_seeds) as shards:
        assert shards.mode == mode
    sharded = runner.run(jax.random.key(7), num_seeds)
    assert (plain.batch_shards, sharded.batch_shards) == (1, 2)
    assert plain.steps["loss"].shape == sharded.steps["loss"].shape  # [seed, steps run]
    assert plain.steps["loss"].shape[0] == num_seeds
    np.testing.assert_allclose(sharded.steps["loss"], plain.steps["loss"], rtol=1e-4)
    np.testing.assert_allclose(sharded.steps["accuracy"], plain.steps["accuracy"], atol=1e-6)
    for key in ("steps", "converged_step", "stopped_step"):
        np.testing.assert_array_equal(sharded.final[key], plain.final[key], err_msg=key)
    chex.assert_trees_all_close(sharded.run.train_state.params, plain.run.train_state.params, rtol=1e-3, atol=1e-5)


def test_the_parameter_count_is_read_from_shapes():
    trainer = make_train(quick(**{"model.name": "rnn", "model.hidden_size": 16, "data.length": 5}))
    params = trainer.init(jax.random.key(0)).train_state.params
    assert trainer.num_params() == count_params(params) == sum(x.size for x in jax.tree.leaves(params))


def test_auto_shards_a_single_seed_and_not_several(monkeypatch):
    """The palindrome LSTM (H = 128, 72,458 parameters) at T = 30, B = 64: 6 B T P = 8.3e8 training FLOPs
    a step, enough to pay for the handoff, so on two cores one seed's batch goes in two shards of 32 rows;
    on one core, for several seeds, or for a tiny RNN step (1.2e6 FLOPs) there are no shards."""
    monkeypatch.setattr(batch_shards, "available_cores", lambda: 2)
    config = quick(**{"runner.batch_shards": "auto", "model.hidden_size": 128, "data.length": 30})
    runner = MultiSeedRunner(make_train(config), config.runner)
    assert runner.trainer.num_params() == 72_458
    assert runner.shards(2) is None
    with runner.shards(1) as single:
        assert single.count == 2
    tiny_config = quick(**{"runner.batch_shards": "auto", "model.name": "rnn", "model.hidden_size": 16, "data.length": 5})
    tiny = MultiSeedRunner(make_train(tiny_config), tiny_config.runner)
    assert tiny.shards(1) is None
    monkeypatch.setattr(batch_shards, "available_cores", lambda: 1)
    assert runner.shards(1) is None


@pytest.mark.parametrize("mode", ["devices", "threads"])
def test_a_shard_that_never_finishes_stops_the_run(monkeypatch, mode):
    """The stall error comes while the stuck shard is still stuck: the watch does not wait for it."""
    trainer = make_train(quick(**{"train.num_steps": 4, "train.chunk_steps": 2}))
    runner = MultiSeedRunner(trainer, strategy="map", batch_shards=2)
    shards = BatchShards(2, trainer, mode=mode)
    release, returned = threading.Event(), threading.Event()

    def stuck_shard(runs, index, args):  # blocks until the test releases it (the timeout only prevents a hang)
        release.wait(60)
        returned.set()

    if mode == "threads":
        monkeypatch.setattr(shards, "_shard", stuck_shard)
    else:  # a chunk program whose results never arrive
        monkeypatch.setattr(shards, "_program", lambda steps: lambda *args: concurrent.futures.Future())
    runs = runner.init(seed_keys(jax.random.key(0), 1))
    with pytest.raises(StalledRunError, match="chunk 1 of 2 made no progress"):
        shards(runs, StallWatch(min_s=0.3, strategy="map"), "chunk 1 of 2")
    assert not returned.is_set()
    release.set()
    shards.close()


def test_shards_go_on_devices_when_jax_has_enough_and_on_threads_otherwise(monkeypatch):
    trainer = make_train(quick(**{"train.num_steps": 4, "train.chunk_steps": 2}))
    cpus = len(jax.devices("cpu"))
    assert cpus >= 2  # tests/conftest.py asks for at least two before jax starts
    assert BatchShards(2, trainer).mode == "devices"
    with BatchShards(2, trainer, mode="threads") as threads:
        assert threads.mode == "threads"
    with pytest.raises(ValueError, match="must be one of auto, devices, threads"):
        BatchShards(2, trainer, mode="processes")
    too_many = cpus + 1
    with pytest.raises(ValueError, match=f"need {too_many} CPU devices .* jax has {cpus} and cpu"):
        BatchShards(too_many, trainer, mode="devices")
    with BatchShards(too_many, trainer) as fallback:
        assert fallback.mode == "threads"
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")  # a run on an accelerator stays there
    assert batch_shards.shard_devices(2) is None
    with BatchShards(2, trainer) as on_accelerator:
        assert on_accelerator.mode == "threads"


def test_device_shards_return_the_run_on_the_first_device():
    """The rest of a run (evaluation, checkpoints) sees single-device arrays, as without shards."""
    trainer = make_train(quick(**{"train.num_steps": 4, "train.chunk_steps": 2}))
    runner = MultiSeedRunner(trainer, strategy="map", batch_shards=2)
    shards = BatchShards(2, trainer, mode="devices")
    runs = runner.init(seed_keys(jax.random.key(0), 1))
    runs, metrics = shards(runs, StallWatch(min_s=60, strategy="map"))
    for leaf in jax.tree.leaves((runs, metrics)):
        assert leaf.sharding.device_set == {jax.devices("cpu")[0]}
    assert metrics["loss"].shape == (1, 2)  # [seed, steps]
