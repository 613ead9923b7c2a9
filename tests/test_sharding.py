"""Where the seed axis is placed: sharded over accelerators, never over forced host devices.

On CPU, host devices (``--xla_force_host_platform_device_count``) share the same cores, so the seed
axis stays on one host device whatever the device count, and the results are those of one device.
XLA's device count is fixed when JAX starts, so each configuration runs in its own process.
"""

import json
import os
import pathlib
import subprocess
import sys

import jax
import pytest
from jax.sharding import PartitionSpec

from jaxseq.runner import multiseed

ROOT = pathlib.Path(__file__).resolve().parent.parent

PROGRAM = """
import json, jax, numpy as np
from jaxseq.config import load_config
from jaxseq.runner.multiseed import MultiSeedRunner
from jaxseq.train.sequence_trainer import make_train
from jaxseq.train.sweep import setting_config

config = setting_config(load_config("configs/palindrome.py:quick"), **{
    "model.name": "lstm", "data.length": 5, "train.num_steps": 20, "train.chunk_steps": 10})
results = MultiSeedRunner(make_train(config), config.runner).run(jax.random.key(0), 4)
leaves = jax.tree.leaves(results.run)
print(json.dumps(dict(
    devices=jax.device_count(),
    devices_used=max(len(leaf.sharding.device_set) for leaf in leaves if hasattr(leaf, "sharding")),
    params=[np.asarray(leaf).ravel()[:50].tolist() for leaf in jax.tree.leaves(results.run.train_state.params)],
    accuracy=results.final["eval_accuracy"].tolist(),
)))
"""


def run_with_devices(count: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={count}", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_forced_host_devices_do_not_shard_the_seeds_and_results_match_one_device():
    one, two = run_with_devices(1), run_with_devices(2)
    assert one["devices"] == 1 and one["devices_used"] == 1
    assert two["devices"] == 2 and two["devices_used"] == 1  # two host devices, seeds kept on one
    assert len(one["params"]) == len(two["params"]) > 0
    for a, b in zip(one["params"], two["params"]):
        assert len(a) > 0
        assert max(abs(x - y) for x, y in zip(a, b)) < 1e-5
    assert max(abs(x - y) for x, y in zip(one["accuracy"], two["accuracy"])) < 1e-6


class FakeDevice:
    def __init__(self, platform):
        self.platform = platform


@pytest.mark.parametrize("platform, seeds, sharded", [("gpu", 8, True), ("tpu", 4, True), ("gpu", 7, False), ("cpu", 8, False)])
def test_seed_sharding_only_on_accelerators_with_an_even_split(monkeypatch, platform, seeds, sharded):
    devices = [FakeDevice(platform), FakeDevice(platform)]
    monkeypatch.setattr(multiseed.jax, "devices", lambda: devices)
    result = multiseed.seed_sharding(seeds)
    assert (result is not None) == sharded
    if sharded:  # the seed axis, and only it, split evenly over the devices in their order
        assert result.mesh.devices.tolist() == devices and result.mesh.axis_names == ("seed",)
        assert result.spec == PartitionSpec("seed")
        assert result.shard_shape((seeds, 3, 5)) == (seeds // 2, 3, 5)


def test_seed_sharding_keeps_the_seeds_on_one_of_the_host_devices(monkeypatch):
    host = jax.devices("cpu")
    assert len(host) >= 2  # tests/conftest.py asks for at least two
    monkeypatch.setattr(multiseed.jax, "devices", lambda: host)
    assert all(multiseed.seed_sharding(n) is None for n in (1, 2, 4, 8))
