"""Hand-written backpropagation through time equals jax.grad of the plain scan, for every cell."""

from typing import Optional

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxseq.models import bptt
from jaxseq.models.fast_path import FAST_PATHS, staged_step
from jaxseq.models.registry import CELLS as ALL_CELLS
from jaxseq.models.sequence import scan_cell
from test_cells import random_params

# the classic cells (gates read h_{t-1}): every one has the fused fast path
CELLS = {name: cell for name, cell in ALL_CELLS.items() if cell in FAST_PATHS}

B, T, D, H = 3, 6, 4, 5


class Probe(nn.Module):
    """A scanned cell whose loss reads every ``h_t`` and the final carry (so all cotangents are non-zero)."""

    cell: nn.Module
    manual_bptt: bool
    reverse: bool = False
    join_input: Optional[bool] = None

    @nn.compact
    def __call__(self, xs, carry, perturbations):
        final, hs = scan_cell(
            self.cell, xs, carry, self.reverse, perturbations, manual_bptt=self.manual_bptt, join_input=self.join_input
        )
        readout = jnp.sin(jnp.arange(1, hs.size + 1, dtype=hs.dtype)).reshape(hs.shape)
        return (hs * readout).sum() + sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(final))


def gradients(name: str, manual: bool, reverse: bool, perturb: bool, join_input: Optional[bool] = None):
    """Gradients of the probe loss w.r.t. parameters, inputs, initial carry and perturbations."""
    cell = CELLS[name](hidden_size=H)
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    carry = jax.tree.map(lambda z: 0.3 * jax.random.normal(jax.random.key(3), z.shape), cell.initialize_carry(None, (B, D)))
    perturbations = 0.1 * jax.random.normal(jax.random.key(4), (B, T, H)) if perturb else None
    model = Probe(cell, manual, reverse, join_input)
    params = random_params(model.init(jax.random.key(0), xs, carry, perturbations)["params"], jax.random.key(2))

    def loss(params, xs, carry, perturbations):
        return model.apply({"params": params}, xs, carry, perturbations)

    argnums = (0, 1, 2, 3) if perturb else (0, 1, 2)
    value, grads = jax.jit(jax.value_and_grad(loss, argnums=argnums))(params, xs, carry, perturbations)
    return value, grads


CASES = [(name, False, True) for name in sorted(CELLS)] + [  # every cell, perturbed (the grad-norm probe)
    (name, reverse, perturb) for name in ("gru", "lstm") for reverse, perturb in [(False, False), (True, True)]
]  # one- and two-stage cells without perturbations, and reversed (the backward half of a biLSTM)


def assert_same_gradients(name, got, want):
    """Equal gradient trees, every one non-zero (a peephole LSTM's ``dL/dh_0`` excepted)."""
    flat_got, tree_got = jax.tree.flatten(got)
    flat_want, tree_want = jax.tree.flatten(want)
    assert tree_got == tree_want
    assert len(flat_got) >= 4
    # every gradient is exercised (but a peephole LSTM never reads h_{t-1}: its d h_0 is zero)
    assert sum(np.abs(w).max() == 0 for w in flat_want) <= (1 if name == "peephole_lstm" else 0)
    for g, w in zip(flat_got, flat_want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name, reverse, perturb", CASES)
def test_manual_bptt_equals_jax_grad_of_the_scan(name, reverse, perturb):
    value, manual = gradients(name, True, reverse, perturb)
    expected_value, expected = gradients(name, False, reverse, perturb)
    np.testing.assert_allclose(value, expected_value, rtol=1e-6)
    assert_same_gradients(name, manual, expected)


@pytest.mark.parametrize("name", ["lstm", "rnn"])
@pytest.mark.parametrize("manual", [True, False])
def test_joined_input_gives_the_gradients_of_the_hoisted_projection(name, manual):
    """``[x_t, 1, h] @ [W_x; b; W_h]`` inside the step: same loss and gradients as ``x W_x + b`` before the loop
    (reversed and perturbed, so every cotangent path is used)."""
    value, joined = gradients(name, manual, True, True, join_input=True)
    expected_value, hoisted = gradients(name, manual, True, True, join_input=False)
    np.testing.assert_allclose(value, expected_value, rtol=1e-6)
    assert_same_gradients(name, joined, hoisted)


def test_manual_bptt_is_used_by_default():
    """The default scan_cell differentiates through the hand-written BPTT (its custom vjp shows in the jaxpr)."""
    cell = CELLS["lstm"](hidden_size=H)
    xs = jnp.ones((B, T, D))
    carry = cell.initialize_carry(None, (B, D))
    model = Probe(cell, True)
    params = model.init(jax.random.key(0), xs, carry, None)["params"]
    jaxpr = str(jax.make_jaxpr(lambda p: Probe(cell, True).apply({"params": p}, xs, carry, None))(params))
    plain = str(jax.make_jaxpr(lambda p: Probe(cell, False).apply({"params": p}, xs, carry, None))(params))
    assert "_bptt_forward" in jaxpr and "_bptt_forward" not in plain


@pytest.mark.parametrize("name, per_step", [("lstm", [(B, H), (B, H), (B, 4 * H)]), ("gru", [(B, H), (B, 2 * H), (B, H)])])
def test_forward_keeps_only_carries_and_stage_outputs(name, per_step):
    """Per time step the hand-written forward stores the carry and the matmul outputs, nothing else
    (the backward pass recomputes the gate activations); every stored array is ``[T, ...]``."""
    from jaxseq.models.bptt import _bptt_forward

    cell = CELLS[name](hidden_size=H)
    xs = jax.random.normal(jax.random.key(1), (T, B, cell.num_gates * H))
    carry = jax.tree.map(lambda z: jax.random.normal(jax.random.key(3), z.shape), cell.initialize_carry(None, (B, D)))
    widths = [s[-1] for s in per_step[len(jax.tree.leaves(carry)):]]  # one kernel [H, width] per stage
    kernels = tuple(0.3 * jax.random.normal(jax.random.key(4 + j), (H, w)) for j, w in enumerate(widths))
    (final, hs), (_, first, carries, saved_xs, perturbations, pres) = _bptt_forward(
        staged_step(cell), kernels, carry, xs, None, 1
    )
    assert hs.shape == (T, B, H) and saved_xs is xs and perturbations is None and first is carry
    assert [a.shape for a in jax.tree.leaves((carries, pres))] == [(T,) + s for s in per_step]
    # the saved carries are those after each step, and the outputs are read back from them
    np.testing.assert_array_equal(cell.hidden(carries), hs)
    for last, end in zip(jax.tree.leaves(carries), jax.tree.leaves(final)):
        np.testing.assert_array_equal(last[-1], end)


def _dot_shapes(jaxpr) -> list:
    """Output shapes of every ``dot_general`` in a closed jaxpr, sub-jaxprs (scan bodies) included."""
    shapes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            shapes.append(tuple(eqn.outvars[0].aval.shape))
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            shapes.extend(_dot_shapes(sub))
    return shapes


@pytest.mark.parametrize("name", ["lstm", "rnn", "gru"])
@pytest.mark.parametrize("readout", ["all", "hs", "final"])
def test_inputs_without_gradient_give_the_same_parameter_gradients(name, readout):
    """Inputs made from data (no dL/dxs asked for), a loss on all outputs, on ``h_t`` only or on the
    final carry only (symbolic zero cotangents): the hand-written BPTT gives jax's gradients."""
    cell = CELLS[name](hidden_size=H)
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    carry = jax.tree.map(lambda z: 0.3 * jax.random.normal(jax.random.key(3), z.shape), cell.initialize_carry(None, (B, D)))

    def loss(params, manual):
        final, hs = scan_cell(cell.bind({"params": params}), xs, carry, manual_bptt=manual)
        total = 0.0
        if readout in ("all", "hs"):
            total = total + jnp.sum(hs * jnp.sin(jnp.arange(hs.size, dtype=hs.dtype)).reshape(hs.shape))
        if readout in ("all", "final"):
            total = total + sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(final))
        return total

    params = random_params(cell.init(jax.random.key(0), carry, xs[:, 0])["params"], jax.random.key(2))
    want = jax.jit(jax.grad(loss), static_argnums=1)(params, False)
    got = jax.jit(jax.grad(loss), static_argnums=1)(params, True)
    assert jax.tree.structure(got) == jax.tree.structure(want) and len(jax.tree.leaves(want)) >= 3
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert np.abs(w).max() > 0
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_perturbation_gradients_without_input_gradient(name):
    """The grad-norm probe's case: ``dL/dperturbations`` asked for, ``dL/dxs`` not."""
    cell = CELLS[name](hidden_size=H)
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    carry = cell.initialize_carry(None, (B, D))
    perturbations = 0.1 * jax.random.normal(jax.random.key(4), (B, T, H))
    params = random_params(cell.init(jax.random.key(0), carry, xs[:, 0])["params"], jax.random.key(2))

    def loss(perturbations, manual):
        hs = scan_cell(cell.bind({"params": params}), xs, carry, perturbations=perturbations, manual_bptt=manual)[1]
        return jnp.sum(jnp.sin(hs[:, -1]))

    want = jax.jit(jax.grad(loss), static_argnums=1)(perturbations, False)
    got = jax.jit(jax.grad(loss), static_argnums=1)(perturbations, True)
    assert np.abs(want[:, 0]).max() > 0  # the first step's perturbation reaches the loss
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("differentiate_xs", [False, True])
def test_backward_loop_skips_input_columns_when_no_input_gradient_is_asked(differentiate_xs):
    """A joined LSTM's backward step multiplies ``dpre`` by the recurrent rows of ``[W_x; b; W_h]`` only
    (``[B, H]`` out) unless ``dL/dxs`` is wanted (then ``[B, D + 1 + H]``)."""
    cell = CELLS["lstm"](hidden_size=H)
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    carry = cell.initialize_carry(None, (B, D))
    params = cell.init(jax.random.key(0), carry, xs[:, 0])["params"]

    def loss(params, xs):
        return jnp.sum(scan_cell(cell.bind({"params": params}), xs, carry, join_input=True)[1] ** 2)

    argnums = (0, 1) if differentiate_xs else 0
    shapes = _dot_shapes(jax.make_jaxpr(jax.grad(loss, argnums=argnums))(params, xs).jaxpr)
    assert (B, 4 * H) in shapes  # the forward step
    assert ((B, D + 1 + H) in shapes) == differentiate_xs
    assert ((B, H) in shapes) != differentiate_xs


def test_sum_outer_equals_numpy():
    """The weight gradient's contraction over time and batch, against ``np.einsum`` in float64."""
    a = np.random.RandomState(0).randn(5, 3, 4)
    b = np.random.RandomState(1).randn(5, 3, 6)
    got = bptt._sum_outer(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    assert got.shape == (4, 6)
    np.testing.assert_allclose(got, np.einsum("tbi,tbo->io", a, b), rtol=1e-5, atol=1e-5)
