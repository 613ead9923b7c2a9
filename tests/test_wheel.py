"""jaxseq used from a project of one's own: a wheel built from the repository (not an editable
install), installed into a fresh virtual environment, runs the quick palindrome sweep from a
directory outside the repository, with configs found by name and a cell of the user's own.

The fresh environment borrows this one's dependencies (jax, flax, ...) through a path line in a
``.pth`` file: a path line adds the folder to ``sys.path`` but runs none of that folder's own
``.pth`` files, so the editable jaxseq installed here cannot leak in; the test checks that the
jaxseq imported is the wheel's.
"""

import csv
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CELL = '''
import jax.numpy as jnp
from flax import linen as nn


class MyCell(nn.RNNCellBase):
    """h_t = tanh(x_t W + h_{t-1} U + b)."""

    features: int

    @nn.compact
    def __call__(self, h, x):
        h = jnp.tanh(nn.Dense(self.features)(x) + nn.Dense(self.features, use_bias=False)(h))
        return h, h

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        return jnp.zeros(input_shape[:-1] + (self.features,))

    @property
    def num_feature_axes(self):
        return 1
'''


def build_wheel(tmp: pathlib.Path) -> pathlib.Path:
    """The wheel of a copy of the repository's tracked sources (so the build leaves nothing in the checkout)."""
    source = tmp / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("jaxseq", "configs", "scripts"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                            str(source), "-w", str(tmp / "dist")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr  # (setuptools >= 77 comes with the test extra)
    (wheel,) = (tmp / "dist").glob("jaxseq-*.whl")
    return wheel


def fresh_venv(tmp: pathlib.Path, wheel: pathlib.Path) -> pathlib.Path:
    """A new virtual environment holding the wheel, with this environment's packages on a path line."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    pathlib.Path(purelib, "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return venv


@pytest.mark.slow
def test_a_wheel_runs_an_experiment_from_a_directory_of_ones_own(tmp_path):
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    packages = {str(p.parent.relative_to(ROOT)).replace("/", ".") for p in (ROOT / "jaxseq").rglob("__init__.py")}
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert packages <= listed, f"add {sorted(packages - listed)} to pyproject.toml's packages"
    assert {"jaxseq/_configs/palindrome.py", "jaxseq/_scripts/run_palindrome.py", "jaxseq/run.py"} <= set(names)

    venv = fresh_venv(tmp_path, wheel)
    project = tmp_path / "my_project"  # outside the repository, no configs/ or scripts/ in sight
    project.mkdir()
    (project / "mycells.py").write_text(CELL)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JAXSEQ_DATA")}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import jaxseq; print(jaxseq.__file__)"], cwd=project,
                           env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert pathlib.Path(where).is_relative_to(venv), where  # the wheel's jaxseq, not the checkout's

    command = [str(venv / "bin" / "jaxseq"), "palindrome", "--config=palindrome:quick",
               "--config.sweep.models=mycells:MyCell", "--config.sweep.lengths=4", "--config.train.num_steps=4", "--config.train.chunk_steps=4",
               "--config.train.num_seeds=1", "--config.data.eval_batch_size=16", "--out=sweep"]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(project / "sweep" / "results.csv")))
    assert [(r["model"], r["length"], r["seed"]) for r in rows] == [("mycells:MyCell", "4", "0")]
    assert (project / "sweep" / "accuracy_vs_length.png").is_file()
    assert sorted(p.name for p in project.iterdir()) == ["mycells.py", "sweep"]  # nothing else written here
