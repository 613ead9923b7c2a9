"""Running a cell over time, with backpropagation through time written by hand.

A cell with a fast path (:mod:`jaxseq.models.fast_path`) has its step split into *stages*. Stage ``j``
multiplies a stage input ``a_j`` (``h_{t-1}``, ``c_{t-1}`` or ``r ⊙ h_{t-1}``) by a recurrent
kernel ``W_j``; everything else in the step is elementwise::

    pre_j = a_j(carry, x_proj, pre_<j) @ W_j          the only matmuls inside the loop
    carry_t, h_t = combine(carry, x_proj, pre)         gates, elementwise

:func:`run_recurrence` is that loop as a ``lax.scan`` over time with a ``jax.custom_vjp``. Its
forward pass stores, per time step, only the new carry and the stage outputs ``pre_j`` (for the
LSTM: ``c_t``, ``h_t`` and one ``[batch, 4H]`` array). Its backward pass walks the time steps in
reverse carrying ``dL/dcarry`` and, at each step, recomputes the elementwise part of the step
from ``carry_{t-1}`` and ``pre`` (the gate activations: a few elementwise kernels, which XLA fuses
into the backward ones) to get its vjp, then takes ``dpre_j @ W_j^T``. Storing the activations
instead (jax's linearisation keeps a dozen ``[batch, H]`` arrays per LSTM step, several twice)
measured slower on CPU: every stored array is one more kernel per step (benchmarks/README.md).
The weight gradients are **not** accumulated inside the loop: the loop returns every ``dpre_j``,
and afterwards each ``dL/dW_j = Σ_t a_j,t^T dpre_j,t`` is one ``[in, T·B] x [T·B, out]`` matmul
(the stage inputs ``a_j`` rebuilt for all steps at once), which is what cuDNN and oneDNN do.
jax's own transpose of the scan computes the same numbers with one small ``[in, B] x [B, out]``
matmul per time step, accumulated in the loop.

When the inputs take no part in the differentiation (one-hot tokens: nothing asks for
``dL/dxs``), the backward loop writes no ``dL/dx_t``, and for a joined input (:func:`input_joined`)
its per-step matmul leaves out the kernel rows that multiply ``x_t``: ``[B, k*H] x [k*H, H]``
instead of ``[B, k*H] x [k*H, d+1+H]`` (``jax.custom_vjp`` with ``symbolic_zeros=True`` tells
which inputs are differentiated).

``jax.grad`` through :func:`run_recurrence` equals ``jax.grad`` through the plain scan
(:func:`run_recurrence` with ``manual_bptt=False``) to float rounding; tests/test_bptt.py checks it
for every cell, with and without perturbations, forwards and reversed.
"""

import dataclasses
import functools
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

Carry = Any
Weights = tuple[jax.Array, ...]

UNROLL = 1  # time steps per iteration of the compiled loop (benchmarks/README.md: more did not help on CPU)


def step_with_weights(equations, weights: Weights, carry: Carry, x_proj: jax.Array, perturbation=None):
    """One time step of a cell from its pure equations.

    Args:
      equations: the cell's :class:`jaxseq.models.fast_path.StagedStep` (static ``stage_input``,
        ``combine``, ``with_hidden``, ``hidden``).
      weights: the recurrent kernels ``(W_0, W_1, ...)``, one per stage.
      carry: the state before the step (``h`` or ``(c, h)``, each ``[batch, H]``).
      x_proj: ``[batch, k*H]``, the input part of every gate.
      perturbation: optional ``[batch, H]`` added to ``h_t`` (and to the carried state).
    Returns:
      ``(carry_t, h_t, pres)`` with ``pres`` the stage outputs ``a_j @ W_j``.
    """
    pres = []
    for j, kernel in enumerate(weights):
        pres.append(equations.stage_input(j, carry, x_proj, tuple(pres)) @ kernel)
    pres = tuple(pres)
    carry, h = _combine_perturbed(equations, carry, x_proj, perturbation, pres)
    return carry, h, pres


def _combine_perturbed(equations, carry, x_proj, perturbation, pres):
    """The elementwise rest of a step, given the stage outputs (what the backward pass differentiates)."""
    carry, h = equations.combine(carry, x_proj, pres)
    if perturbation is not None:
        h = h + perturbation
        carry = equations.with_hidden(carry, h)
    return carry, h


@functools.cache
def input_joined(equations):
    """The equations of a one-stage cell whose input projection joins its recurrent matmul.

    The step then reads the raw input ``x_t`` (with a trailing 1 for the bias) instead of a
    precomputed ``x_t W_x + b``, and its one matmul is ``[x_t, 1, a_0] @ [W_x; b; W_0]``: the
    pre-activation the cell's ``combine`` expects as ``x_proj + pres[0]``. Nothing of width ``k*H``
    is then stored per time step in the forward pass, and in the backward pass one ``dpre`` per step
    serves both the recurrent and the input weight gradient (one ``[d+1+H, T*B] x [T*B, k*H]``
    matmul after the loop). Requires ``equations.input_joins_stage``.

    Args:
      equations: a :class:`jaxseq.models.fast_path.StagedStep`.
    Returns:
      A class with the same static ``stage_input``/``combine``/``hidden``/``with_hidden`` contract,
      for weights ``([W_x; b; W_0],)`` and inputs ``[x_t, 1]``.
    """
    if not equations.input_joins_stage:
        raise ValueError(f"{equations.__name__}'s input projection cannot join its recurrent matmul")

    class Joined:
        input_joins_stage = False
        stage_input_starts_with_x = True  # the first d rows of the kernel multiply x_t (see _bptt_backward)

        @staticmethod
        def stage_input(stage, carry, x, pres):
            return jnp.concatenate([x, equations.stage_input(stage, carry, None, pres)], axis=-1)

        @staticmethod
        def combine(carry, x, pres):
            return equations.combine(carry, pres[0], (0.0,))  # pres[0] already holds x W_x + b + a_0 W_0

        hidden = staticmethod(equations.hidden)
        with_hidden = staticmethod(equations.with_hidden)

    Joined.__name__ = Joined.__qualname__ = f"{equations.__name__}InputJoined"
    return Joined


def _plain_scan(equations, weights, carry, xs, perturbations, unroll):
    def body(carry, inputs):
        x_proj, perturbation = inputs
        carry, h, _ = step_with_weights(equations, weights, carry, x_proj, perturbation)
        return carry, h

    return jax.lax.scan(body, carry, (xs, perturbations), unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 5))
def _bptt_scan(equations, weights, carry, xs, perturbations, unroll):
    return _plain_scan(equations, weights, carry, xs, perturbations, unroll)


def _step_vjps(equations, num_stages, carry, x_proj, perturbation, pres):
    """The vjps of one step's elementwise parts, recomputed from its inputs and stage outputs:
    ``(combine_vjp, stage_vjps)`` (the matmuls are not redone; ``pres`` holds their results)."""
    stage_vjps = tuple(
        jax.vjp(functools.partial(equations.stage_input, j), carry, x_proj, pres[:j])[1] for j in range(num_stages)
    )
    combine_vjp = jax.vjp(functools.partial(_combine_perturbed, equations), carry, x_proj, perturbation, pres)[1]
    return combine_vjp, stage_vjps


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class _Wanted:
    """Which input cotangents the backward pass must compute (static: part of the residuals' structure)."""

    xs: bool
    perturbations: bool


def _bptt_forward_marked(equations, weights, carry, xs, perturbations, unroll):
    """:func:`_bptt_forward` on ``jax.custom_vjp``'s marked primals (``symbolic_zeros=True``): it also
    records whether ``xs`` and ``perturbations`` take part in the differentiation. Inputs made from
    data (one-hot tokens) do not, and the backward pass then skips ``dL/dxs``."""
    value = lambda tree: jax.tree.map(lambda leaf: leaf.value, tree)  # noqa: E731
    perturbed = lambda tree: any(leaf.perturbed for leaf in jax.tree.leaves(tree))  # noqa: E731
    out, residuals = _bptt_forward(equations, value(weights), value(carry), value(xs), value(perturbations), unroll)
    return out, (*residuals, _Wanted(perturbed(xs), perturbed(perturbations)))


def _bptt_forward(equations, weights, carry, xs, perturbations, unroll):
    """The scan, keeping per step only ``carry_t`` and the stage outputs; ``h_t = hidden(carry_t)``."""

    def body(carry, inputs):
        x_proj, perturbation = inputs
        carry, _, pres = step_with_weights(equations, weights, carry, x_proj, perturbation)
        return carry, (carry, pres)

    final, (carries, pres) = jax.lax.scan(body, carry, (xs, perturbations), unroll=unroll)
    return (final, equations.hidden(carries)), (weights, carry, carries, xs, perturbations, pres)


def _step_backward(weights, vjps, d_carry, d_h, skip_rows=0):
    """Backward through one time step: ``dL/d carry_{t-1}``, ``dL/dx_proj_t``, ``dL/dperturbation_t``, ``dpre``.

    ``skip_rows > 0``: ``weights`` lack their first ``skip_rows`` rows (those that multiply ``x_t``),
    so the stage inputs' cotangents are computed without the ``x_t`` columns (taken as zeros).
    """
    combine_vjp, stage_vjps = vjps
    d_carry_prev, d_x, d_perturbation, d_pres = combine_vjp((d_carry, d_h))
    d_pres = list(d_pres)
    for j in reversed(range(len(weights))):  # stage j's input may depend on earlier stages' outputs
        d_input = d_pres[j] @ weights[j].T
        if skip_rows:
            d_input = jnp.concatenate([jnp.zeros(d_input.shape[:-1] + (skip_rows,), d_input.dtype), d_input], axis=-1)
        d_c, d_xj, d_earlier = stage_vjps[j](d_input)
        d_carry_prev = jax.tree.map(jnp.add, d_carry_prev, d_c)
        d_x = d_x + d_xj
        for i, d_pre in enumerate(d_earlier):
            d_pres[i] = d_pres[i] + d_pre
    return d_carry_prev, d_x, d_perturbation, tuple(d_pres)


def _sum_outer(a: jax.Array, b: jax.Array) -> jax.Array:
    """``Σ_t Σ_b a[t, b]^T b[t, b]`` for ``a: [T, B, i]`` and ``b: [T, B, o]``: an ``[i, o]`` array.

    A ``dot_general`` contracting ``(time, batch)`` in that order, so both operands are read as the
    ``[T*B, ...]`` matrices they are in memory. ``jnp.einsum("tbi,tbo->io", ...)`` contracts them as
    ``(batch, time)``, and XLA's CPU backend then copies both into transposed layouts before the
    matmul (benchmarks/README.md: the weight gradient alone took 1.10-1.24x as long).
    """
    return jax.lax.dot_general(a, b, (((0, 1), (0, 1)), ((), ())))


def _bptt_backward(equations, unroll, residuals, cotangents):
    weights, first, carries, xs, perturbations, pres, wanted = residuals
    # output cotangents may come as symbolic zeros (symbolic_zeros=True): e.g. no loss on the final carry
    d_final, d_hs = jax.tree.map(
        lambda d: jnp.zeros(d.shape, d.dtype) if isinstance(d, jax.custom_derivatives.SymbolicZero) else d, cotangents
    )
    # when nothing asks for dL/dxs, the rows of a joined kernel that multiply x_t drop out of the
    # per-step matmul, and no [T, ...] array of dL/dx_t is written
    skip_rows = 0 if wanted.xs or not getattr(equations, "stage_input_starts_with_x", False) else xs.shape[-1]
    loop_weights = tuple(w[skip_rows:] for w in weights)
    # carry_{t-1} for every t: the initial carry, then all but the last (built here, not kept
    # from the forward pass, so only one copy of the carries lives between the two passes)
    previous = jax.tree.map(lambda a, rest: jnp.concatenate([a[None], rest[:-1]]), first, carries)

    def body(d_carry, inputs):
        carry, x_proj, perturbation, pres_t, d_h = inputs
        vjps = _step_vjps(equations, len(weights), carry, x_proj, perturbation, pres_t)
        d_carry, d_x, d_perturbation, d_pres = _step_backward(loop_weights, vjps, d_carry, d_h, skip_rows)
        return d_carry, (d_x if wanted.xs else None, d_perturbation if wanted.perturbations else None, d_pres)

    d_carry0, (d_xs, d_perturbations, d_pres) = jax.lax.scan(
        body, d_final, (previous, xs, perturbations, pres, d_hs), reverse=True, unroll=unroll
    )
    # dL/dW_j = sum over time and batch of a_j^T dpre_j: one matmul over all T*B rows. The stage
    # inputs are elementwise in [..., features] arrays, so they are rebuilt for all steps at once.
    d_weights = tuple(
        _sum_outer(equations.stage_input(j, previous, xs, pres[:j]), d_pres[j]) for j in range(len(weights))
    )
    return d_weights, d_carry0, d_xs, d_perturbations


_bptt_scan.defvjp(_bptt_forward_marked, _bptt_backward, symbolic_zeros=True)


def run_recurrence(
    equations,
    weights: Sequence[jax.Array],
    carry: Carry,
    xs: jax.Array,
    perturbations: Optional[jax.Array] = None,
    manual_bptt: bool = True,
    unroll: int = UNROLL,
) -> tuple[Carry, jax.Array]:
    """Scan a cell's recurrent step over time-major inputs.

    Args:
      equations: the cell class (static ``stage_input``, ``combine``, ``hidden``, ``with_hidden``).
      weights: recurrent kernels, one per stage.
      carry: the initial state (``[batch, H]`` arrays).
      xs: ``[time, batch, k*H]`` projected inputs.
      perturbations: optional ``[time, batch, H]`` added to each ``h_t`` (see :func:`scan_cell`).
      manual_bptt: differentiate with the hand-written backward pass (default) instead of jax's
        transpose of the scan; the values are the same.
      unroll: time steps per loop iteration.
    Returns:
      ``(final_carry, hs)`` with ``hs: [time, batch, H]``.
    """
    weights = tuple(weights)
    if manual_bptt:
        return _bptt_scan(equations, weights, carry, xs, perturbations, unroll)
    return _plain_scan(equations, weights, carry, xs, perturbations, unroll)
