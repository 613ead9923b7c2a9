"""Lyapunov spectra against cases with known answers, on jaxseq's, Flax's and a test file's cells."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from test_train import lapack_batch_dims  # tests/test_train.py

from jaxseq.analysis.lyapunov import flat_step, lyapunov_spectrum, orthonormalise, real_coordinates
from jaxseq.models.cells import LSTMCell, RNNCell
from jaxseq.models.lru import LRUCell


class LinearCell(nn.RNNCellBase):
    """``h_t = h_{t-1} W + x_t V``: the Jacobian of every step is ``W^T``, whatever the input."""

    features: int

    @nn.compact
    def __call__(self, carry, x):
        W = self.param("W", nn.initializers.orthogonal(), (self.features, self.features))
        h = carry @ W + nn.Dense(self.features, use_bias=False, name="V")(x)
        return h, h

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        return jnp.zeros(input_shape[:-1] + (self.features,))

    @property
    def num_feature_axes(self) -> int:
        return 1


def init_params(cell, inputs, seed=1):
    """The cell's ``params`` for inputs ``[batch, time, d]``."""
    carry = cell.initialize_carry(jax.random.key(0), inputs[:, 0].shape)
    return jax.jit(cell.init)(jax.random.key(seed), carry, inputs[:, 0])["params"]


def random_orthogonal(n, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def inputs(batch=2, time=40, d=3, seed=0, scale=1.0):
    return scale * jax.random.normal(jax.random.key(seed), (batch, time, d))


def test_orthonormalise_is_a_qr_with_a_nonnegative_diagonal_and_no_lapack():
    a = jax.random.normal(jax.random.key(0), (7, 5))
    q, r = orthonormalise(a)
    np.testing.assert_allclose(q.T @ q, np.eye(5), atol=1e-6)
    np.testing.assert_allclose(q @ r, a, atol=1e-5)
    np.testing.assert_array_equal(np.triu(r), r)
    np.testing.assert_allclose(np.diag(r), np.abs(np.diag(np.linalg.qr(np.asarray(a))[1])), rtol=1e-5)
    assert lapack_batch_dims(jax.vmap(orthonormalise), jnp.stack([a, a])) == []


def test_linear_cell_with_a_normal_matrix_gives_the_log_moduli_of_its_eigenvalues():
    """``W = U blockdiag(0.9 R(1.0), 0.5, -0.7) U^T``: moduli 0.9, 0.9, 0.7, 0.5."""
    block = np.zeros((4, 4))
    block[:2, :2] = 0.9 * np.array([[np.cos(1.0), -np.sin(1.0)], [np.sin(1.0), np.cos(1.0)]])
    block[2, 2], block[3, 3] = 0.5, -0.7
    u = random_orthogonal(4, seed=3)
    W = u @ block @ u.T
    xs = inputs()
    params = {**init_params(LinearCell(4), xs), "W": jnp.asarray(W, jnp.float32)}
    top = lyapunov_spectrum(LinearCell(4), params, xs, 3, warmup=20)  # the top k = 3 of n = 4
    np.testing.assert_allclose(top, np.broadcast_to(np.log([0.9, 0.9, 0.7]), (2, 3)), atol=1e-4)


def test_diagonal_lru_gives_log_modulus_of_each_eigenvalue_twice():
    """The LRU's complex state ``x_t = λ ⊙ x_{t-1} + ...``: in real coordinates each ``λ`` is a
    rotation scaled by ``|λ|``, so every ``log|λ|`` appears twice."""
    cell = LRUCell(hidden_size=3, state_dim=3)
    xs = inputs()
    params = init_params(cell, xs)
    moduli = np.array([0.95, 0.6, 0.3])  # distinct, so the directions settle within the warm-up
    nu_theta = np.asarray(params["nu_theta_log"]).copy()
    nu_theta[0] = np.log(-np.log(moduli))  # |λ| = exp(-exp(ν))
    params = {**params, "nu_theta_log": jnp.asarray(nu_theta)}
    spectrum = lyapunov_spectrum(cell, params, xs, warmup=30)
    assert spectrum.shape == (2, 6)
    np.testing.assert_allclose(spectrum, np.broadcast_to(np.repeat(np.log(moduli), 2), (2, 6)), atol=1e-5)


def test_scaled_orthogonal_rnn_in_its_linear_regime_gives_log_of_the_scale():
    """``h_t = tanh(x_t W_x + h_{t-1} s Q)`` with tiny inputs: the state stays near 0 where
    ``tanh' = 1``, so every step's Jacobian is ``s Q^T`` up to ``1 - h^2 ≈ 1``."""
    cell, scale = RNNCell(hidden_size=5), 0.8
    xs = inputs(scale=1e-4)
    params = init_params(cell, xs)
    params["hidden_proj"] = {"kernel": jnp.asarray(scale * random_orthogonal(5, seed=1), jnp.float32)}
    spectrum = lyapunov_spectrum(cell, params, xs, warmup=5)
    np.testing.assert_allclose(spectrum, np.full((2, 5), np.log(scale)), atol=1e-5)


def test_sum_of_all_exponents_is_the_mean_log_determinant_of_the_step_jacobian():
    """For the LSTM's whole carry ``(c, h)`` (``n = 2H``), computed directly from ``jacfwd``."""
    cell, warmup = LSTMCell(hidden_size=3), 4
    xs = inputs(batch=1, time=20)
    params = init_params(cell, xs)
    spectrum = lyapunov_spectrum(cell, params, xs, warmup=warmup)
    v, step = flat_step(cell, params, cell.initialize_carry(jax.random.key(0), (1, 3)))
    _, jacobians = jax.lax.scan(lambda v, x: (step(v, x), jax.jacfwd(step)(v, x)), v, xs[0])
    log_dets = np.linalg.slogdet(np.asarray(jacobians, np.float64))[1]
    assert spectrum.shape == (1, 6) and jacobians.shape == (20, 6, 6)
    np.testing.assert_allclose(spectrum.sum(), np.mean(log_dets[warmup:]), rtol=1e-4)


def test_two_orthonormalisation_intervals_agree_on_flax_gru():
    """Every step or every 3 (with a shorter last block): the same exponents in exact arithmetic."""
    cell = nn.GRUCell(features=4)
    xs = inputs(time=25)
    params = init_params(cell, xs)
    every_step = lyapunov_spectrum(cell, params, xs, warmup=4)
    every_third = lyapunov_spectrum(cell, params, xs, warmup=4, reortho_every=3)
    assert np.all(np.isfinite(every_step)) and np.all(np.diff(every_step, axis=1) <= 0)
    np.testing.assert_allclose(every_third, every_step, atol=2e-5)


def test_batched_examples_and_mapped_seeds_equal_one_at_a_time_without_lapack():
    """``[batch, time, d]`` gives each example's own spectrum, a ``jax.vmap`` over stacked
    parameters each seed's, and the mapped program calls no LAPACK routine (no batched QR to hang)."""
    cell = LSTMCell(hidden_size=3)
    xs = inputs(batch=3, time=12)
    seeds = [init_params(cell, xs, seed) for seed in (1, 7)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *seeds)

    def spectra(params):
        return lyapunov_spectrum(cell, params, xs, 4, warmup=2)

    assert lapack_batch_dims(jax.vmap(spectra), stacked) == []
    mapped = jax.jit(jax.vmap(spectra))(stacked)
    assert mapped.shape == (2, 3, 4)
    for s, params in enumerate(seeds):
        for b in range(3):
            alone = lyapunov_spectrum(cell, params, xs[b], 4, warmup=2)
            np.testing.assert_allclose(mapped[s, b], alone, rtol=1e-5, atol=1e-6)
    assert not np.allclose(mapped[0], mapped[1])


def test_real_coordinates_split_complex_leaves_and_come_back():
    carry = (jnp.array([[1.0 + 2.0j, 3.0 - 1.0j]], jnp.complex64), jnp.array([[4.0]]))
    v, to_carry = real_coordinates(carry)
    np.testing.assert_array_equal(v, [1.0, 3.0, 2.0, -1.0, 4.0])
    back = to_carry(v)
    assert back[0].dtype == jnp.complex64
    np.testing.assert_array_equal(back[0], carry[0])
    np.testing.assert_array_equal(back[1], carry[1])


@pytest.mark.parametrize("bad, message", [
    (dict(k=0), "k must be in"), (dict(k=9), "k must be in"), (dict(warmup=12), "warmup"),
    (dict(reortho_every=0), "reortho_every"),
])
def test_bad_arguments_are_one_clear_error(bad, message):
    xs = jnp.zeros((1, 12, 3))
    with pytest.raises(ValueError, match=message):  # refused before the parameters are read
        lyapunov_spectrum(LSTMCell(hidden_size=4), {}, xs, **bad)
