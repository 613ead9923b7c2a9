"""Scripts ask jax for one CPU device per core, unless told otherwise or too late; importing
jaxseq changes nothing in jax.

The device count is fixed when jax's backend starts, so each case runs in its own process.
"""

import os
import pathlib
import subprocess
import sys

import pytest

from jaxseq.runner import cpu_devices

ROOT = pathlib.Path(__file__).resolve().parent.parent
START = "from jaxseq import cli; cli.start_cpu_devices()"  # what every script's run_main does first


def device_count_after(code: str, **env) -> tuple[int, str]:
    """Run ``code`` then print jax's CPU device count in a fresh process: ``(count, stderr)``."""
    environment = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", cpu_devices.ENV, "JAX_NUM_CPU_DEVICES")}
    environment.update(env, JAX_PLATFORMS="cpu")
    program = f"{code}\nimport jax\nprint(len(jax.devices('cpu')))"
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1]), result.stderr


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs a CPU affinity mask to set")
def test_one_device_per_core_by_default():
    """The process is pinned to one core, then to two: as many devices."""
    cores = sorted(os.sched_getaffinity(0))
    for used in cores[:1], cores[:2]:
        count, _ = device_count_after(f"import os; os.sched_setaffinity(0, {set(used)}); " + START)
        assert count == len(used)


def test_the_environment_variable_sets_the_count():
    assert device_count_after(START, JAXSEQ_CPU_DEVICES="3")[0] == 3
    assert device_count_after(START, JAXSEQ_CPU_DEVICES="1")[0] == 1


def test_a_bad_count_is_one_line_and_keeps_one_device():
    count, stderr = device_count_after(START, JAXSEQ_CPU_DEVICES="two")
    assert count == 1
    assert stderr.strip() == "warning: JAXSEQ_CPU_DEVICES must be a positive integer, got 'two'; using one CPU device"


def test_a_count_chosen_by_the_user_or_a_started_backend_is_kept():
    assert device_count_after(START, XLA_FLAGS="--xla_force_host_platform_device_count=3")[0] == 3
    assert device_count_after(START, JAX_NUM_CPU_DEVICES="3")[0] == 3
    assert device_count_after("import jax; jax.numpy.zeros(1).block_until_ready(); " + START)[0] == 1


@pytest.mark.parametrize("value", ["0", "-2", "1.5"])
def test_requested_count_refuses_what_is_not_a_positive_integer(monkeypatch, value):
    monkeypatch.setenv(cpu_devices.ENV, value)
    with pytest.raises(ValueError, match="must be a positive integer"):
        cpu_devices.requested_count()


def test_importing_jaxseq_changes_nothing_in_jax_and_prints_nothing():
    modules = [
        path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        for path in sorted((ROOT / "jaxseq").rglob("*.py"))
        if path.name != "__init__.py"
    ]
    program = "import jax, jaxseq\n" + "".join(f"import {m}\n" for m in modules)
    program += "print(jax.config.jax_num_cpu_devices, len(jax.devices('cpu')))"
    environment = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", cpu_devices.ENV, "JAX_NUM_CPU_DEVICES")}
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, env={**environment, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(modules) > 30  # every module of the package was imported
    assert result.stdout.split() == ["-1", "1"]
    assert result.stderr == ""
