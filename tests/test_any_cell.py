"""Any Flax ``RNNCellBase`` runs through jaxseq's models, analyses and scripts like a built-in cell."""

import csv
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import linen as nn

from jaxseq.analysis.grad_norms import hidden_grad_norms, hidden_size_of
from jaxseq.models.fast_path import FAST_PATHS, staged_step
from jaxseq.models.cells import LSTMCell
from jaxseq.models.charlm import CharLSTM
from jaxseq.models.registry import CELLS, make_classifier
from jaxseq.models.sequence import BidirectionalClassifier, SequenceClassifier
from outside_cells import LeakyPairCell
from test_cells import random_params

ROOT = pathlib.Path(__file__).resolve().parent.parent
B, T, V, H = 4, 6, 10, 5
FLAX_CELLS = ["LSTMCell", "OptimizedLSTMCell", "GRUCell", "SimpleCell", "MGUCell"]


def tokens_and_labels(key=1):
    tokens = jax.random.randint(jax.random.key(key), (B, T), 0, V)
    return tokens, jax.random.randint(jax.random.key(key + 1), (B,), 0, V)


def model_config(name: str, **fields) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"name": name, "hidden_size": H, "encoding": "onehot", "cell_kwargs": "", **fields})


@pytest.mark.parametrize("name", FLAX_CELLS)
def test_flax_cells_train_through_the_classifier(name):
    """The snippet that used to fail: a Flax cell in SequenceClassifier, initialised and differentiated."""
    model = SequenceClassifier(cell=getattr(nn, name)(features=H), num_classes=V, vocab_size=V, encoding="onehot")
    tokens, labels = tokens_and_labels()
    params = jax.jit(model.init)(jax.random.key(0), tokens)["params"]  # compiled: one program, not one per op

    def loss(params):
        logits = model.apply({"params": params}, tokens)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(B), labels])

    grads = jax.jit(jax.grad(loss))(params)
    assert jax.eval_shape(model.apply, {"params": params}, tokens).shape == (B, V)
    assert all(np.abs(g).max() > 0 for g in jax.tree.leaves(grads["cell"]))


@pytest.mark.parametrize("extra", [dict(num_layers=2), dict()])
def test_stacked_and_bidirectional_classifiers_take_an_outside_cell(extra):
    tokens, labels = tokens_and_labels()
    if extra:  # two residual layers of Flax's GRU
        model = make_classifier(model_config("flax.linen:GRUCell", **extra), V, V)
        assert [type(c).__name__ for c in model.cells] == ["GRUCell", "GRUCell"]
    else:  # a forward and a backward LeakyPairCell
        model = BidirectionalClassifier(forward_cell=LeakyPairCell(H), backward_cell=LeakyPairCell(H), num_classes=V,
                                        vocab_size=V, encoding="onehot")
    params = model.init(jax.random.key(0), tokens)["params"]
    norms = hidden_grad_norms(model, params, tokens, labels)
    assert model.apply({"params": params}, tokens).shape == (B, V) and norms.shape == (T,) and (norms > 0).all()


def _flax_lstm_params(ours: dict) -> dict:
    """Our LSTM's parameters (gates g, i, f, o fused) in Flax's LSTMCell layout (one dense per gate)."""
    w_x = np.split(np.asarray(ours["input_proj"]["kernel"]), 4, axis=1)
    b = np.split(np.asarray(ours["input_proj"]["bias"]), 4)
    w_h = np.split(np.asarray(ours["hidden_proj"]["kernel"]), 4, axis=1)
    flax = {}
    for k, gate in enumerate("gifo"):
        flax[f"i{gate}"] = {"kernel": w_x[k]}
        flax[f"h{gate}"] = {"kernel": w_h[k], "bias": b[k]}
    return flax


def test_our_lstm_with_forget_bias_0_equals_flax_lstm_in_the_classifier():
    tokens, labels = tokens_and_labels()
    ours = SequenceClassifier(cell=LSTMCell(H, forget_bias=0.0), num_classes=V, vocab_size=V, encoding="onehot")
    theirs = ours.clone(cell=nn.LSTMCell(features=H))
    params = random_params(ours.init(jax.random.key(0), tokens)["params"], jax.random.key(3))
    their_params = {**params, "cell": _flax_lstm_params(params["cell"])}

    def loss(model, params):
        logits = model.apply({"params": params}, tokens)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(B), labels]), logits

    (value, logits), grads = jax.value_and_grad(lambda p: loss(ours, p), has_aux=True)(params)
    (their_value, their_logits), their_grads = jax.value_and_grad(lambda p: loss(theirs, p), has_aux=True)(their_params)
    np.testing.assert_allclose(logits, their_logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(value, their_value, rtol=1e-6)
    for part in ("encoder", "head"):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), grads.get(part, {}), their_grads.get(part, {}))
    mapped = _flax_lstm_params(grads["cell"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), mapped, their_grads["cell"])


class PlainCell(nn.RNNCellBase):
    """A built-in cell seen only through the RNNCellBase contract (the fast path hidden)."""

    cell: nn.RNNCellBase

    def __call__(self, carry, x):
        return self.cell(carry, x)

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        return self.cell.initialize_carry(rng, input_shape)

    @property
    def num_feature_axes(self):
        return 1


CLASSIC = sorted(name for name, cell in CELLS.items() if cell in FAST_PATHS)


@pytest.mark.parametrize("name", CLASSIC)
def test_fast_path_equals_the_cells_equations_under_nn_scan_and_autodiff(name):
    """Every built-in cell: the fused fast path and ``nn.scan`` over its ``__call__`` give the same
    logits, parameter gradients and per-step state gradients (the two codings of one equation)."""
    cls = CELLS[name]
    # the plain cell names h as the built-in one does, so both probes perturb the same state
    plain_cls = type(f"Plain{cls.__name__}", (PlainCell,), {"hidden": staticmethod(cls.hidden), "with_hidden": staticmethod(cls.with_hidden)})
    fast = SequenceClassifier(cell=cls(H), num_classes=V, vocab_size=V, encoding="onehot")
    plain = fast.clone(cell=plain_cls(cls(H)))
    tokens, labels = tokens_and_labels()
    params = random_params(fast.init(jax.random.key(0), tokens)["params"], jax.random.key(2))
    plain_params = {**params, "cell": {"cell": params["cell"]}}
    perturbations = 0.1 * jax.random.normal(jax.random.key(5), (B, T, H))

    def loss(model, params, perturbations):
        logits = model.apply({"params": params}, tokens, perturbations=perturbations)
        return jnp.sum(jax.nn.log_softmax(logits)[jnp.arange(B), labels] * jnp.arange(1, B + 1))

    value, grads = jax.value_and_grad(lambda p, q: loss(fast, p, q), argnums=(0, 1))(params, perturbations)
    plain_value, plain_grads = jax.value_and_grad(lambda p, q: loss(plain, p, q), argnums=(0, 1))(plain_params, perturbations)
    np.testing.assert_allclose(value, plain_value, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), grads[0]["cell"], plain_grads[0]["cell"]["cell"])
    np.testing.assert_allclose(grads[1], plain_grads[1], rtol=1e-4, atol=1e-6)
    assert np.abs(grads[1]).min(axis=(0, 2)).max() > 0


def test_a_subclass_of_a_built_in_cell_runs_its_own_equations_not_the_parents_fast_path():
    """The fast path is attached by exact class: a subclass that changes ``__call__`` (here the RNN
    with ReLU) is run through ``nn.scan`` over that ``__call__``."""
    from jaxseq.models.cells import RNNCell
    from jaxseq.models.sequence import scan_cell

    class ReluRNNCell(RNNCell):
        def __call__(self, carry, x):
            h = nn.relu(self.gate_inputs(x) + carry @ self.hidden_proj(self.hidden_size))
            return h, h

    class Run(nn.Module):
        cell: nn.Module

        @nn.compact
        def __call__(self, xs):
            return scan_cell(self.cell, xs)[1]

    assert staged_step(RNNCell) is not None and staged_step(ReluRNNCell) is None
    xs = jax.random.normal(jax.random.key(0), (B, T, 3))
    model = Run(ReluRNNCell(H))
    params = model.init(jax.random.key(1), xs)["params"]["cell"]
    w_x, b, w_h = (np.asarray(a) for a in (params["input_proj"]["kernel"], params["input_proj"]["bias"],
                                           params["hidden_proj"]["kernel"]))
    h, expected = np.zeros((B, H)), []
    for t in range(T):
        h = np.maximum(np.asarray(xs[:, t]) @ w_x + b + h @ w_h, 0.0)
        expected.append(h)
    np.testing.assert_allclose(model.apply({"params": {"cell": params}}, xs), np.stack(expected, 1), rtol=1e-5, atol=1e-6)


def test_grad_norms_of_a_cell_with_a_two_part_carry_cover_the_whole_carry():
    """For a cell that does not name its h, the probe is the whole carry: ``||(dL/dfast_t, dL/dslow_t)||``,
    checked against a plain Python loop over the cell with the perturbations added by hand."""
    model = make_classifier(model_config("outside_cells:LeakyPairCell"), V, V)
    tokens, labels = tokens_and_labels()
    params = random_params(model.init(jax.random.key(0), tokens)["params"], jax.random.key(4))
    assert hidden_size_of(model) == 2 * H
    norms = hidden_grad_norms(model, params, tokens, labels, per_example=True)

    cell, head = LeakyPairCell(H), nn.Dense(V)
    x = jax.nn.one_hot(tokens, V)

    def summed_loss(fast_probe, slow_probe):
        carry = cell.initialize_carry(None, (B, V))
        for t in range(T):
            (fast, slow), _ = cell.apply({"params": params["cell"]}, carry, x[:, t])
            carry = (fast + fast_probe[:, t], slow + slow_probe[:, t])
        logits = head.apply({"params": params["head"]}, carry[0])
        return -jnp.sum(jax.nn.log_softmax(logits)[jnp.arange(B), labels])

    zeros = jnp.zeros((B, T, H))
    d_fast, d_slow = jax.grad(summed_loss, argnums=(0, 1))(zeros, zeros)
    expected = np.sqrt(np.sum(np.asarray(d_fast) ** 2 + np.asarray(d_slow) ** 2, axis=-1))
    np.testing.assert_allclose(norms, expected, rtol=1e-4, atol=1e-7)
    assert (expected[:, -1] > 0).all()  # the last step is read by the head through the output


def test_cell_kwargs_reach_the_cell_and_unknown_fields_are_named():
    model = make_classifier(model_config("outside_cells:LeakyPairCell", cell_kwargs="leak=0.25"), V, V)
    assert model.cell.leak == 0.25 and model.cell.features == H
    assert make_classifier(model_config("flax.linen:GRUCell"), V, V).cell.features == H
    assert make_classifier(model_config("gru"), V, V).cell.hidden_size == H
    with pytest.raises(ValueError, match=r"has no field 'speed'; its fields: features, leak"):
        make_classifier(model_config("outside_cells:LeakyPairCell", cell_kwargs="speed=2"), V, V)
    with pytest.raises(ValueError, match=r"'leak' given more than once"):
        make_classifier(model_config("outside_cells:LeakyPairCell", cell_kwargs="leak=1,leak=2"), V, V)


@pytest.mark.parametrize(
    "name, message",
    [
        ("no_such_module:Cell", "cannot import 'no_such_module'"),
        ("outside_cells:Missing", "has no 'Missing'"),
        ("flax.linen:Dense", "is not a flax.linen.RNNCellBase subclass"),
        ("lstmm", "unknown model 'lstmm'; choose one of: bilstm, gru, lru, lstm"),
    ],
)
def test_a_name_that_is_not_a_cell_is_one_clear_error(name, message):
    with pytest.raises(ValueError, match=message):
        make_classifier(model_config(name), V, V)


def test_the_character_model_takes_any_cell():
    model = CharLSTM(vocab_size=V, hidden_size=H, num_layers=2, embed_dim=3, cell=nn.OptimizedLSTMCell(features=H))
    tokens, _ = tokens_and_labels()
    params = model.init(jax.random.key(0), tokens)["params"]
    assert {"lstm_0", "lstm_1"} <= set(params) and "hf" in params["lstm_1"]  # Flax's cell, one per layer
    carries, logits = model.apply({"params": params}, tokens)
    assert logits.shape == (B, T, V)
    # stepping one character at a time from the same start gives the same logits as the scan
    state = model.apply({"params": params}, B, method=CharLSTM.initial_carries)
    for t in range(T):
        state, step_logits = model.apply({"params": params}, state, tokens[:, t], method=CharLSTM.step)
        np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------
# The study scripts with cells from outside jaxseq, named by import path (a cell of the reader's own
# through the sweep, frontier and gradient-norm scripts: tests/test_tutorial.py)
# ---------------------------------------------------------------------------------------------------


def run_script(script: str, *args, folder: pathlib.Path = ROOT / "tests", returncode: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == returncode, result.stderr[-3000:]
    return result


def read_csv(path: pathlib.Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


QUICK = ["--config.train.num_steps=20", "--config.train.chunk_steps=10"]


@pytest.mark.slow
def test_sweep_script_runs_flax_cells_and_an_outside_cell(tmp_path):
    models = "outside_cells:LeakyPairCell,flax.linen:OptimizedLSTMCell,flax.linen:GRUCell"
    run_script("run_palindrome.py", "--config=configs/palindrome.py:quick", f"--config.sweep.models={models}",
               "--config.sweep.lengths=4", *QUICK, f"--out={tmp_path}")
    rows = read_csv(tmp_path / "results.csv")
    assert [r["model"] for r in rows] == [m for m in models.split(",") for _ in range(2)]  # two seeds each
    assert all(0.0 <= float(r["eval_accuracy"]) <= 1.0 for r in rows)
    assert (tmp_path / "accuracy_vs_length.png").stat().st_size > 1000


# a cell of the user's own, with a field of its own, in a module of its own: nothing in jaxseq names it
CELL_WITH_A_FIELD = """
import jax.numpy as jnp
from flax import linen as nn


class ScaledTanhCell(nn.RNNCellBase):
    \"\"\"h_t = tanh(scale * (x W + h U + b)).\"\"\"

    hidden_size: int
    scale: float = 1.0

    def __post_init__(self):
        if not self.scale > 0:
            raise ValueError(f"ScaledTanhCell.scale must be > 0, got {self.scale}")
        super().__post_init__()

    @nn.compact
    def __call__(self, h, x):
        pre = nn.Dense(self.hidden_size)(x) + nn.Dense(self.hidden_size, use_bias=False)(h)
        h = jnp.tanh(self.scale * pre)
        return h, h

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        return jnp.zeros(input_shape[:-1] + (self.hidden_size,))

    @property
    def num_feature_axes(self):
        return 1
"""


@pytest.mark.slow
def test_a_new_cell_with_a_field_of_its_own_runs_the_sweep_from_its_own_module(tmp_path):
    """Adding a cell with a field of its own touches one module, the user's: the field is set from
    the command line, reaches the cell (which refuses a bad value in one line) and is recorded."""
    (tmp_path / "my_scaled_cells.py").write_text(CELL_WITH_A_FIELD)
    sweep = ["--config=configs/palindrome.py:quick", "--config.sweep.models=my_scaled_cells:ScaledTanhCell",
             "--config.sweep.lengths=4", *QUICK]
    run_script("run_palindrome.py", *sweep, "--config.model.cell_kwargs=scale=0.5", f"--out={tmp_path / 'run'}", folder=tmp_path)
    rows = read_csv(tmp_path / "run" / "results.csv")
    assert [(r["model"], r["cell.scale"]) for r in rows] == [("my_scaled_cells:ScaledTanhCell", "0.5")] * 2  # two seeds
    refused = run_script("run_palindrome.py", *sweep, "--config.model.cell_kwargs=scale=-1", f"--out={tmp_path / 'bad'}",
                         folder=tmp_path, returncode=2)
    assert refused.stderr.strip().splitlines()[-1] == "error: ScaledTanhCell.scale must be > 0, got -1"
    assert "Traceback" not in refused.stderr and not (tmp_path / "bad").exists()
