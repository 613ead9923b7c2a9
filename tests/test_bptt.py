"""Hand-written backpropagation through time equals jax.grad of the plain scan, for every cell."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxseq.models.cells import CELLS
from jaxseq.models.sequence import scan_cell
from test_cells import random_params

B, T, D, H = 3, 6, 4, 5


class Probe(nn.Module):
    """A scanned cell whose loss reads every ``h_t`` and the final carry (so all cotangents are non-zero)."""

    cell: nn.Module
    manual_bptt: bool
    reverse: bool = False

    @nn.compact
    def __call__(self, xs, carry, perturbations):
        final, hs = scan_cell(self.cell, xs, carry, self.reverse, perturbations, manual_bptt=self.manual_bptt)
        readout = jnp.sin(jnp.arange(1, hs.size + 1, dtype=hs.dtype)).reshape(hs.shape)
        return (hs * readout).sum() + sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(final))


def gradients(name: str, manual: bool, reverse: bool, perturb: bool):
    """Gradients of the probe loss w.r.t. parameters, inputs, initial carry and perturbations."""
    cell = CELLS[name](hidden_size=H)
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    carry = jax.tree.map(lambda z: 0.3 * jax.random.normal(jax.random.key(3), z.shape), cell.initialize_carry(None, (B, D)))
    perturbations = 0.1 * jax.random.normal(jax.random.key(4), (B, T, H)) if perturb else None
    model = Probe(cell, manual, reverse)
    params = random_params(model.init(jax.random.key(0), xs, carry, perturbations)["params"], jax.random.key(2))

    def loss(params, xs, carry, perturbations):
        return model.apply({"params": params}, xs, carry, perturbations)

    argnums = (0, 1, 2, 3) if perturb else (0, 1, 2)
    value, grads = jax.jit(jax.value_and_grad(loss, argnums=argnums))(params, xs, carry, perturbations)
    return value, grads


CASES = [(name, False, True) for name in sorted(CELLS)] + [  # every cell, perturbed (the grad-norm probe)
    (name, reverse, perturb) for name in ("gru", "lstm") for reverse, perturb in [(False, False), (True, True)]
]  # one- and two-stage cells without perturbations, and reversed (the backward half of a biLSTM)


@pytest.mark.parametrize("name, reverse, perturb", CASES)
def test_manual_bptt_equals_jax_grad_of_the_scan(name, reverse, perturb):
    value, manual = gradients(name, True, reverse, perturb)
    expected_value, expected = gradients(name, False, reverse, perturb)
    np.testing.assert_allclose(value, expected_value, rtol=1e-6)
    flat_manual, tree_manual = jax.tree.flatten(manual)
    flat_expected, tree_expected = jax.tree.flatten(expected)
    assert tree_manual == tree_expected
    assert len(flat_manual) >= 4
    # every gradient is exercised (but a peephole LSTM never reads h_{t-1}: its d h_0 is zero)
    assert sum(np.abs(want).max() == 0 for want in flat_expected) <= (1 if name == "peephole_lstm" else 0)
    for got, want in zip(flat_manual, flat_expected):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_manual_bptt_is_used_by_default():
    """The default scan_cell differentiates through the custom vjp (the jaxpr shows custom_vjp_call)."""
    cell = CELLS["lstm"](hidden_size=H)
    xs = jnp.ones((B, T, D))
    carry = cell.initialize_carry(None, (B, D))
    model = Probe(cell, True)
    params = model.init(jax.random.key(0), xs, carry, None)["params"]
    jaxpr = str(jax.make_jaxpr(lambda p: Probe(cell, True).apply({"params": p}, xs, carry, None))(params))
    plain = str(jax.make_jaxpr(lambda p: Probe(cell, False).apply({"params": p}, xs, carry, None))(params))
    assert "custom_vjp_call" in jaxpr and "custom_vjp_call" not in plain
