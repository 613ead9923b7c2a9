"""minGRU, minLSTM and the LRU: equations against NumPy loops, parallel scan against sequential steps,
the LRU's initialisation, and stacked residual layers."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import linen as nn

from jaxseq.models.lru import LRUCell
from jaxseq.models.parallel_scan import linear_scan, log_space_scan, sequential_scan
from jaxseq.models.registry import CELLS, make_classifier
from jaxseq.models.sequence import scan_cell
from numpy_reference import FORWARDS, layer_norm

LINEAR = ("mingru", "minlstm", "lru")
B, T, D, H = 3, 9, 5, 6


class Scanned(nn.Module):
    """A cell run over a whole sequence, returning ``(final state, outputs)``."""

    cell: nn.Module

    @nn.compact
    def __call__(self, xs, carry=None, perturbations=None):
        return scan_cell(self.cell, xs, carry, perturbations=perturbations)


def random_params(params, key, scale=0.5):
    """Random normals for every leaf, so biases and all gates are exercised."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [scale * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])


def setup_cell(name, mode="parallel", seed=0):
    xs = jax.random.normal(jax.random.key(seed + 1), (B, T, D))
    model = Scanned(CELLS[name](hidden_size=H, mode=mode))
    params = model.init(jax.random.key(seed), xs)["params"]
    if name != "lru":  # the LRU's own init keeps |λ| < 1; random logs would too, but test the real init
        params = random_params(params, jax.random.key(seed + 2))
    return model, params, xs


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
@pytest.mark.parametrize("name", LINEAR)
def test_linear_cell_equals_numpy_loop(name, mode):
    model, params, xs = setup_cell(name, mode)
    _, ys = model.apply({"params": params}, xs)
    expected = FORWARDS[name](params["cell"], np.asarray(xs, np.float64))
    np.testing.assert_allclose(ys, expected, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name", LINEAR)
def test_nonzero_initial_state_equals_numpy_loop(name):
    model, params, xs = setup_cell(name)
    cell = CELLS[name](hidden_size=H)
    shape = (B, cell.state_size) if name != "lru" else (B, H)
    h0 = jax.random.normal(jax.random.key(5), shape)
    if name == "lru":
        h0 = h0 + 1j * jax.random.normal(jax.random.key(6), shape)
    _, ys = model.apply({"params": params}, xs, h0)
    expected = FORWARDS[name](params["cell"], np.asarray(xs, np.float64), np.asarray(h0))
    np.testing.assert_allclose(ys, expected, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name", LINEAR)
def test_parallel_and_sequential_modes_agree_with_gradients(name):
    """Same parameters: outputs, final state and every parameter gradient agree in both modes."""
    parallel, params, xs = setup_cell(name, "parallel")
    sequential = Scanned(CELLS[name](hidden_size=H, mode="sequential"))
    probe = jnp.zeros((B, T, parallel.cell.probe_size))

    def loss(model, p, perturbations):
        state, ys = model.apply({"params": p}, xs, perturbations=perturbations)
        return jnp.sum(ys * jnp.cos(jnp.arange(H))) + jnp.sum(jnp.abs(state))

    for argnums in (1, 2):  # parameters, then the state perturbations (dL/dh_t)
        g_par = jax.grad(loss, argnums)(parallel, params, probe)
        g_seq = jax.grad(loss, argnums)(sequential, params, probe)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), g_par, g_seq)
    out_par = parallel.apply({"params": params}, xs)
    out_seq = sequential.apply({"params": params}, xs)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), out_par, out_seq)


@pytest.mark.parametrize("name", LINEAR)
def test_step_by_step_call_equals_parallel_run(name):
    """``cell(carry, x_t)`` (generation) reproduces the parallel run, output by output."""
    model, params, xs = setup_cell(name)
    cell = CELLS[name](hidden_size=H)
    carry = cell.initialize_carry(jax.random.key(0), xs[:, 0].shape)
    outs = []
    for t in range(T):
        carry, y = cell.apply({"params": params["cell"]}, carry, xs[:, t])
        outs.append(y)
    state, ys = model.apply({"params": params}, xs)
    np.testing.assert_allclose(jnp.stack(outs, axis=1), ys, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(carry, state, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_scans_agree_on_random_coefficients():
    """The three scans compute one recurrence, real and complex, over a long sequence."""
    key_a, key_b, key_h, key_c = jax.random.split(jax.random.key(3), 4)
    a = jax.random.uniform(key_a, (200, 4, 3), minval=0.5, maxval=1.0)
    b = jax.random.uniform(key_b, (200, 4, 3), minval=0.01, maxval=1.0)
    h0 = jax.random.normal(key_h, (4, 3))
    reference = np.zeros((200, 4, 3))
    h = np.asarray(h0, np.float64)
    for t in range(200):
        h = np.asarray(a[t], np.float64) * h + np.asarray(b[t], np.float64)
        reference[t] = h
    # each scan compiled whole (run op by op, a parallel scan of 200 steps dispatches hundreds of small programs)
    scans = {name: jax.jit(scan) for name, scan in
             (("linear", linear_scan), ("log_space", log_space_scan), ("sequential", sequential_scan))}
    for hs in (scans["linear"](a, b, h0), scans["log_space"](jnp.log(a), jnp.log(b), h0), scans["sequential"](a, b, h0)):
        np.testing.assert_allclose(hs, reference, rtol=1e-4, atol=1e-5)
    phase = jnp.exp(1j * jax.random.uniform(key_c, (3,)))
    complex_a = 0.95 * phase  # one λ for every step, broadcast
    np.testing.assert_allclose(scans["linear"](complex_a, b + 0j, h0 + 0j), scans["sequential"](complex_a, b + 0j, h0 + 0j),
                               rtol=1e-4, atol=1e-5)


def test_log_space_scan_survives_gates_that_underflow():
    """1000 steps of a = 0.5: the product 2^-1000 underflows float32, the log-space sum does not."""
    log_a = jnp.full((1000, 1), jnp.log(0.5))
    log_b = jnp.full((1000, 1), jnp.log(0.25))
    hs = jax.jit(log_space_scan)(log_a, log_b, jnp.zeros(1))  # compiled whole: the same scan, one program
    assert np.all(np.isfinite(hs))
    np.testing.assert_allclose(hs[-1], 0.5, rtol=1e-5)  # the fixed point b / (1 - a)


def test_lru_ring_initialisation():
    cell = LRUCell(hidden_size=64, r_min=0.4, r_max=0.9, max_phase=0.5)
    params = cell.init(jax.random.key(0), cell.initialize_carry(None, (2, 3)), jnp.ones((2, 3)))["params"]
    lam = np.exp(-np.exp(params["nu_theta_log"][0]) + 1j * np.exp(params["nu_theta_log"][1]))
    assert np.all(np.abs(lam) >= 0.4 - 1e-6) and np.all(np.abs(lam) <= 0.9 + 1e-6)
    assert np.all(np.angle(lam) >= 0) and np.all(np.angle(lam) <= 0.5 + 1e-6)
    assert np.abs(lam).std() > 0.05  # spread over the ring, not one value
    np.testing.assert_allclose(np.exp(params["gamma_log"]), np.sqrt(1 - np.abs(lam) ** 2), rtol=1e-5)
    assert params["B_re"]["kernel"].shape == (3, 64) and params["C_re"]["kernel"].shape == (64, 64)


def test_lru_state_dim_sets_the_complex_state():
    cell = LRUCell(hidden_size=8, state_dim=5)
    carry = cell.initialize_carry(None, (2, 3))
    params = cell.init(jax.random.key(0), carry, jnp.ones((2, 3)))
    state, out = cell.apply(params, carry, jnp.ones((2, 3)))
    assert carry.dtype == jnp.complex64 and state.shape == (2, 5) and out.shape == (2, 8)
    assert cell.probe_size == 10


def stacked_numpy(name, params, tokens, num_classes):
    """Layer 0 on the one-hot input, then h + cell_l(LayerNorm(h)), then the head on the last step."""
    h = np.eye(num_classes)[np.asarray(tokens)]
    for layer in range(len([k for k in params if k.startswith("cells_")])):
        cell_params = params[f"cells_{layer}"]
        if layer == 0:
            h = FORWARDS[name](cell_params, h)
        else:
            h = h + FORWARDS[name](cell_params, layer_norm(h, params[f"norm_{layer}"]))
    head = params["head"]
    return h[:, -1] @ np.asarray(head["kernel"], np.float64) + np.asarray(head["bias"], np.float64)


@pytest.mark.parametrize("name", ["lstm", "mingru", "lru"])
def test_stacked_layers_equal_numpy(name):
    """num_layers = 3 is three cells joined by pre-norm residual connections (NumPy reference)."""
    cfg = ml_collections.ConfigDict(dict(name=name, hidden_size=H, encoding="onehot", num_layers=3))
    model = make_classifier(cfg, vocab_size=10, num_classes=10)
    tokens = jax.random.randint(jax.random.key(0), (B, T), 0, 10)
    params = model.init(jax.random.key(1), tokens)["params"]
    assert sorted(params) == ["cells_0", "cells_1", "cells_2", "head", "norm_1", "norm_2"]
    np.testing.assert_allclose(model.apply({"params": params}, tokens), stacked_numpy(name, params, tokens, 10), rtol=1e-4, atol=1e-5)


def test_bad_model_settings_are_refused():
    base = dict(name="mingru", hidden_size=4, encoding="onehot")
    for change, words in [
        (dict(scan_mode="fast"), "scan_mode"),
        (dict(name="bilstm", num_layers=2), "bidirectional"),
        (dict(name="lru", lru_r_min=0.9, lru_r_max=0.5), r"config.model.lru_r_max: LRUCell.r_max must be a number in \[r_min, 1\)"),
        (dict(name="lru", lru_r_min=1.0), r"config.model.lru_r_min: LRUCell.r_min must be a number in \[0, 1\), got 1.0"),
        (dict(name="lru", lru_max_phase=0.0), "config.model.lru_max_phase"),
        (dict(name="lru", lru_state_dim=-1), "config.model.lru_state_dim"),
        (dict(name="minlstm", chrono_t_max=-1.0), "config.model.chrono_t_max"),
    ]:
        with pytest.raises(ValueError, match=words):
            make_classifier(ml_collections.ConfigDict({**base, **change}), 10, 10)
