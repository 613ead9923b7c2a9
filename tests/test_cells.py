"""Cells and sequence models against plain NumPy loops of their equations."""

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import linen as nn

from jaxseq.models.fast_path import FAST_PATHS
from jaxseq.models.cells import LSTMCell
from jaxseq.models.registry import CELLS as ALL_CELLS
from jaxseq.models.fields import config_fields
from jaxseq.models.registry import make_cell, make_classifier, model_defaults
from jaxseq.models.sequence import scan_cell
from numpy_reference import FORWARDS, lstm_forward

# the classic cells (gates read h_{t-1}): every one implements the fused fast path
CELLS = {name: cell for name, cell in ALL_CELLS.items() if cell in FAST_PATHS}

B, T, D, H = 3, 7, 5, 6


class Scanned(nn.Module):
    """A cell scanned over time, returning all hidden states."""

    cell: nn.Module
    join_input: Optional[bool] = None

    @nn.compact
    def __call__(self, xs):
        return scan_cell(self.cell, xs, join_input=self.join_input)[1]


def random_params(params, key, scale=0.5):
    """Replace every leaf with random normals, so biases and all gates are exercised."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [scale * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])


JOINABLE = sorted(name for name, cell in CELLS.items() if FAST_PATHS[cell].input_joins_stage)


@pytest.mark.parametrize(
    "name, join_input", [(name, None) for name in sorted(CELLS)] + [(name, join) for name in JOINABLE for join in (True, False)]
)
def test_scanned_cell_equals_numpy_loop(name, join_input):
    """Every cell, and the RNN and LSTM with the input projection both joined to the recurrent matmul and hoisted."""
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    model = Scanned(CELLS[name](hidden_size=H), join_input)
    params = random_params(model.init(jax.random.key(0), xs)["params"], jax.random.key(2))
    ours = model.apply({"params": params}, xs)
    expected = FORWARDS[name](params["cell"], np.asarray(xs, np.float64))
    np.testing.assert_allclose(ours, expected, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_single_step_call_equals_scan(name):
    """``cell(carry, x)`` (the RNNCellBase contract) gives the same states as the hoisted scan."""
    cell = CELLS[name](hidden_size=H)
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    carry = cell.initialize_carry(jax.random.key(0), xs[:, 0].shape)
    params = cell.init(jax.random.key(0), carry, xs[:, 0])
    hs = []
    for t in range(T):
        carry, h = cell.apply(params, carry, xs[:, t])
        hs.append(h)
    scanned = Scanned(cell).apply({"params": {"cell": params["params"]}}, xs)
    np.testing.assert_allclose(jnp.stack(hs, axis=1), scanned, rtol=1e-5, atol=1e-6)


def test_joined_input_is_the_default_only_for_narrow_inputs():
    """``join_input=None`` joins the projection for an RNN/LSTM input no wider than H, and hoists it otherwise."""
    from jaxseq.models import bptt

    def joined(name, d):
        xs = jnp.ones((B, T, d))
        model = Scanned(CELLS[name](hidden_size=H))
        params = model.init(jax.random.key(0), xs)
        jaxpr = str(jax.make_jaxpr(lambda p: model.apply(p, xs))(params))
        return f"[{B},{d + 1 + H}]" in jaxpr.replace(" ", "")  # the per-step [x_t, 1, h] of a joined step

    assert joined("lstm", H) and joined("rnn", 2)
    assert not joined("lstm", H + 1) and not joined("gru", 2)
    with pytest.raises(ValueError, match="cannot join"):
        bptt.input_joined(FAST_PATHS[CELLS["gru"]])


def test_lstm_with_forget_bias_zero_equals_flax_lstm_cell():
    xs = jax.random.normal(jax.random.key(3), (B, T, D))
    ours = Scanned(LSTMCell(hidden_size=H, forget_bias=0.0))
    params = random_params(ours.init(jax.random.key(0), xs)["params"], jax.random.key(4))["cell"]
    W_x, b, W_h = params["input_proj"]["kernel"], params["input_proj"]["bias"], params["hidden_proj"]["kernel"]
    split = lambda a: jnp.split(a, 4, axis=-1)  # noqa: E731  (g, i, f, o)
    flax_params = {}
    for gate, wx, bias, wh in zip("gifo", split(W_x), split(b), split(W_h)):
        flax_params[f"i{gate}"] = {"kernel": wx}
        flax_params[f"h{gate}"] = {"kernel": wh, "bias": bias}
    flax_hs = nn.RNN(nn.LSTMCell(features=H)).apply({"params": {"cell": flax_params}}, xs)
    np.testing.assert_allclose(ours.apply({"params": {"cell": params}}, xs), flax_hs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("forget_bias", [0.0, 1.0, 2.5])
def test_forget_gate_bias_initialisation(forget_bias):
    cell = LSTMCell(hidden_size=H, forget_bias=forget_bias)
    params = cell.init(jax.random.key(0), cell.initialize_carry(None, (1, D)), jnp.ones((1, D)))["params"]
    g, i, f, o = np.split(np.asarray(params["input_proj"]["bias"]), 4)
    np.testing.assert_array_equal(f, forget_bias)
    for other in (g, i, o):
        np.testing.assert_array_equal(other, 0.0)


def _config(name, hidden=H, encoding="onehot", **extra):
    return ml_collections.ConfigDict(dict(name=name, hidden_size=hidden, encoding=encoding, **extra))


@pytest.mark.parametrize("encoding, d", [("raw", 1), ("onehot", 10), ("embed", 4)])
def test_lstm_classifier_parameter_count(encoding, d):
    n, c = 16, 10
    model = make_classifier(_config("lstm", n, encoding, embed_dim=4), vocab_size=10, num_classes=c)
    params = model.init(jax.random.key(0), jnp.zeros((2, 5), jnp.int32))["params"]
    count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))  # noqa: E731
    assert count(params["cell"]) == 4 * n * (n + d + 1)
    assert count(params["head"]) == c * (n + 1)


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm", "peephole_lstm"])
def test_classifier_logits_equal_numpy(name):
    tokens = jax.random.randint(jax.random.key(5), (B, T), 0, 10)
    model = make_classifier(_config(name), vocab_size=10, num_classes=4)
    params = random_params(model.init(jax.random.key(0), tokens)["params"], jax.random.key(6))
    xs = np.eye(10)[np.asarray(tokens)]
    h_T = FORWARDS[name](params["cell"], xs)[:, -1]
    expected = h_T @ np.asarray(params["head"]["kernel"]) + np.asarray(params["head"]["bias"])
    np.testing.assert_allclose(model.apply({"params": params}, tokens), expected, rtol=2e-5, atol=2e-5)


def test_bidirectional_classifier_equals_numpy():
    tokens = jax.random.randint(jax.random.key(7), (B, T), 0, 10)
    model = make_classifier(_config("bilstm"), vocab_size=10, num_classes=4)
    params = random_params(model.init(jax.random.key(0), tokens)["params"], jax.random.key(8))
    xs = np.eye(10)[np.asarray(tokens)]
    forward_last = lstm_forward(params["forward_cell"], xs)[:, -1]
    backward_last = lstm_forward(params["backward_cell"], xs[:, ::-1])[:, -1]  # after reading x_T .. x_1
    features = np.concatenate([forward_last, backward_last], axis=-1)
    expected = features @ np.asarray(params["head"]["kernel"]) + np.asarray(params["head"]["bias"])
    np.testing.assert_allclose(model.apply({"params": params}, tokens), expected, rtol=2e-5, atol=2e-5)


def test_raw_encoding_feeds_the_digit_value():
    tokens = jnp.array([[3, 1, 4, 1, 5]])
    model = make_classifier(_config("rnn", encoding="raw"), vocab_size=10, num_classes=10)
    params = random_params(model.init(jax.random.key(0), tokens)["params"], jax.random.key(9))
    h_T = FORWARDS["rnn"](params["cell"], np.asarray(tokens, np.float64)[..., None])[:, -1]
    expected = h_T @ np.asarray(params["head"]["kernel"]) + np.asarray(params["head"]["bias"])
    np.testing.assert_allclose(model.apply({"params": params}, tokens), expected, rtol=2e-5, atol=2e-5)


def test_zero_perturbations_change_nothing_and_nonzero_ones_do():
    tokens = jax.random.randint(jax.random.key(10), (B, T), 0, 10)
    model = make_classifier(_config("lstm"), vocab_size=10, num_classes=4)
    params = model.init(jax.random.key(0), tokens)
    plain = model.apply(params, tokens)
    np.testing.assert_array_equal(model.apply(params, tokens, jnp.zeros((B, T, H))), plain)
    assert not np.allclose(model.apply(params, tokens, jnp.ones((B, T, H))), plain)


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'transformer'.*choose one of: bilstm, gru, lru, lstm, mingru"):
        make_classifier(_config("transformer"), 10, 10)
    with pytest.raises(ValueError, match="unknown encoding 'binary'"):
        make_classifier(_config("lstm", encoding="binary"), 10, 10)
    with pytest.raises(ValueError, match="config.model.input_init: RNNCell.input_init must be one of kaiming, .*, got 'zeros'"):
        make_classifier(_config("rnn", input_init="zeros"), 10, 10)  # refused when the cell is built, before anything runs


@pytest.mark.parametrize("name", sorted(ALL_CELLS))
def test_each_cell_checks_the_config_fields_it_reads_and_names_them(name):
    """A cell owns its fields: it reads the config.model fields its class names, keeps its own
    defaults for those a config leaves out, and refuses a bad value with the config field's name."""
    cls = ALL_CELLS[name]
    reads = config_fields(cls)
    assert reads, f"{name} reads no config field"
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    assert all(model_defaults()[key] == defaults[field] for field, key in reads.items())  # one meaning of "absent"
    base = {"hidden_size": 4, **{key: defaults[field] for field, key in reads.items()}}
    assert make_cell(cls, ml_collections.ConfigDict(base)) == make_cell(cls, ml_collections.ConfigDict({"hidden_size": 4}))
    for field, key in reads.items():
        bad = float("nan") if isinstance(defaults[field], (int, float)) else "nosuch"
        with pytest.raises(ValueError, match=rf"^config\.model\.{key}: {cls.__name__}\.{field} must be .*, got {bad!r}$"):
            make_cell(cls, ml_collections.ConfigDict({**base, key: bad}))
