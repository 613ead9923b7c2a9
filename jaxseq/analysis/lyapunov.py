"""Lyapunov spectra of any recurrent cell along its trajectories (the QR method of Benettin et al.).

A cell's step ``carry_t = F(carry_{t-1}, x_t)`` is a driven dynamical system. Its Lyapunov
exponents are the average rates, per time step, at which it stretches (``> 0``), keeps (``≈ 0``)
or shrinks (``< 0``) small changes of the carry along the trajectory the inputs drive: a change
along the ``i``-th direction grows or decays like ``exp(λ_i t)``. Exponents near 0 mean
information is carried for many steps; ``λ = -0.1`` forgets by ``e`` every 10 steps; a largest
exponent above 0 means chaos.

The method: push ``k`` orthonormal tangent vectors ``Q [n, k]`` through the step's Jacobian
``J_t = dF/dcarry_{t-1}`` (``jax.linearize`` of one ``cell.apply``, so ``J_t Q`` costs ``k``
Jacobian-vector products, never the ``n x n`` matrix), re-orthonormalise every ``reortho_every``
steps, ``J_t ... J_{t-r+1} Q = Q' R``, and average ``log R_ii`` over the time after a warm-up.
The carry is the whole carry, every leaf flattened side by side (``(c, h)`` of an LSTM is
``n = 2H`` coordinates); a complex leaf (the LRU's state) counts its real and imaginary parts as
two real coordinates, so a complex eigenvalue ``λ`` of a diagonal recurrence gives the exponent
``log|λ|`` twice.

The QR is a Gram-Schmidt in ``jnp`` (:func:`orthonormalise`), never a LAPACK call: mapped over
examples or seeds it is plain batched matrix products, so it cannot meet jaxlib 0.10.2's batched
LAPACK QR deadlock on CPU (benchmarks/README.md, "Multi-seed runs on CPU: hangs").
"""

import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax.flatten_util import ravel_pytree

from jaxseq.models.sequence import TokenEncoder

Carry = Any


def orthonormalise(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The thin QR decomposition ``a = q r`` of ``a [n, k]`` (``k <= n``), written in ``jnp``.

    Classical Gram-Schmidt with a second orthogonalisation pass per column ("twice is enough":
    the columns of ``q`` are orthonormal to float precision for any ``a`` of full numerical rank).
    ``r``'s diagonal is the norm left after the projections, so it is ``>= 0``. A column that lies
    in the span of the earlier ones (``r_jj = 0``) gives a zero column of ``q``.

    Args:
      a: ``[n, k]``, real.
    Returns:
      ``(q [n, k], r [k, k])``: ``q`` with orthonormal columns, ``r`` upper triangular with
      ``diag(r) >= 0``.
    """
    n, k = a.shape
    tiny = jnp.finfo(a.dtype).tiny

    def column(q, j):
        v = a[:, j]
        coeffs = q.T @ v  # the columns of q from j on are still zero, so only the earlier ones count
        v = v - q @ coeffs
        again = q.T @ v
        v = v - q @ again
        norm = jnp.linalg.norm(v)
        q = q.at[:, j].set(jnp.where(norm > tiny, v / jnp.maximum(norm, tiny), 0.0))
        return q, (coeffs + again).at[j].set(norm)

    q, r_columns = jax.lax.scan(column, jnp.zeros((n, k), a.dtype), jnp.arange(k))
    return q, r_columns.T


def real_coordinates(carry: Carry) -> tuple[jax.Array, Callable[[jax.Array], Carry]]:
    """A carry pytree as one real vector, and the way back.

    Args:
      carry: any pytree of arrays; complex leaves are split into real and imaginary parts.
    Returns:
      ``(v [n], to_carry)`` with ``to_carry(v)`` a pytree of ``carry``'s structure, shapes and dtypes.
    """
    split = jax.tree.map(lambda leaf: jnp.stack([leaf.real, leaf.imag]) if jnp.iscomplexobj(leaf) else leaf, carry)
    flat, unravel = ravel_pytree(split)

    def to_carry(v):
        return jax.tree.map(
            lambda part, like: jax.lax.complex(part[0], part[1]).astype(like.dtype) if jnp.iscomplexobj(like) else part,
            unravel(v),
            carry,
        )

    return flat, to_carry


def flat_step(cell: nn.RNNCellBase, params, carry: Carry) -> tuple[jax.Array, Callable]:
    """One step of ``cell`` on one example as a map of real vectors.

    Args:
      cell, params: as in :func:`lyapunov_spectrum`.
      carry: one example's carry, leaves ``[1, ...]`` (a batch of one).
    Returns:
      ``(v [n], step)``: the carry in real coordinates (:func:`real_coordinates`) and
      ``step(v [n], x [d]) -> v' [n]``, the carry after reading ``x``.
    """
    v0, to_carry = real_coordinates(carry)

    def step(v, x):
        new_carry, _ = cell.apply({"params": params}, to_carry(v), x[None])
        return real_coordinates(new_carry)[0]

    return v0, step


def _one_example(cell, params, xs, carry, q0, ends, counted):
    """The spectrum ``[k]`` of one trajectory: ``xs [time, d]``, ``carry`` leaves ``[1, ...]``,
    ``q0 [n, k]`` orthonormal; ``ends [time]`` (numpy): orthonormalise after this step;
    ``counted [time]`` (numpy): the step is past the warm-up."""
    v0, step = flat_step(cell, params, carry)
    k = q0.shape[1]

    def renormalise(q, count):
        q, r = orthonormalise(q)
        return q, jnp.where(count, jnp.log(jnp.diagonal(r)), 0.0)

    def push(state, inputs):
        v, q, total = state
        x, end, count = inputs
        v, jvp = jax.linearize(lambda u: step(u, x), v)
        q = jax.vmap(jvp, in_axes=1, out_axes=1)(q)
        if ends.all():  # every step: no branch
            q, logs = renormalise(q, count)
        else:
            q, logs = jax.lax.cond(end, renormalise, lambda q, count: (q, jnp.zeros(k, q.dtype)), q, count)
        return (v, q, total + logs), None

    (_, _, total), _ = jax.lax.scan(push, (v0, q0, jnp.zeros(k, v0.dtype)), (xs, ends, counted))
    return -jnp.sort(-total / counted.sum())


def _spectra(cell, params, inputs, carry, key, k, warmup, reortho_every):
    """:func:`lyapunov_spectrum` of ``inputs [batch, time, d]`` with every argument checked."""
    time = inputs.shape[1]
    steps = np.arange(time)
    # blocks of reortho_every steps, counted from 0 in the warm-up and from warmup after it; a
    # block also ends at the last step of the warm-up and of the sequence
    since = np.where(steps < warmup, steps, steps - warmup) + 1
    ends = (since % reortho_every == 0) | (steps == warmup - 1) | (steps == time - 1)

    n = real_coordinates(jax.tree.map(lambda leaf: leaf[:1], carry))[0].shape[0]
    q0, _ = orthonormalise(jax.random.normal(key, (n, k), inputs.dtype))  # every example starts from the same vectors

    def one(xs, example_carry):
        example_carry = jax.tree.map(lambda leaf: leaf[None], example_carry)
        return _one_example(cell, params, xs, example_carry, q0, ends, steps >= warmup)

    return jax.vmap(one)(inputs, carry)


# compiled once per cell (Flax modules hash by their fields), shapes and settings
_cached_spectra = jax.jit(_spectra, static_argnames=("cell", "k", "warmup", "reortho_every"))


def lyapunov_spectrum(
    cell: nn.RNNCellBase,
    params,
    inputs: jax.Array,
    k: Optional[int] = None,
    *,
    warmup: int = 0,
    reortho_every: int = 1,
    carry: Optional[Carry] = None,
    key: Optional[jax.Array] = None,
) -> jax.Array:
    """The ``k`` largest Lyapunov exponents of ``cell``'s carry along each example's trajectory.

    Every example is its own trajectory: the carry starts at ``carry`` (the cell's
    ``initialize_carry``, zeros for the built-in cells, when None), reads the example's inputs one
    step at a time (``cell.apply({"params": params}, carry, x_t)``, a batch of one), and the
    exponents are averaged over the steps after the first ``warmup``.

    Args:
      cell: any ``flax.linen.RNNCellBase`` (jaxseq's, Flax's, a user's), unbound.
      params: the cell's ``params`` collection (not wrapped in ``{"params": ...}``); to map over
        seeds, ``jax.vmap`` this function over stacked ``params``.
      inputs: ``[batch, time, d]`` (or ``[time, d]`` for one example), what the cell reads.
      k: how many exponents (``1 <= k <= n``, ``n`` the carry's real coordinates); None: all ``n``.
      warmup: steps run first and not counted (the carry and the tangent vectors settle onto the
        trajectory); ``0 <= warmup < time``.
      reortho_every: steps between two orthonormalisations. The exponents do not depend on it in
        exact arithmetic; a larger value saves QRs, but in between the tangent vectors grow apart
        like ``exp((λ_1 - λ_k) t)``, and float32 keeps about 7 digits: keep
        ``reortho_every * (λ_1 - λ_k)`` well below ~10, or the smallest exponents lose precision.
      carry: the carry before the first step, leaves ``[batch, ...]`` (``[...]`` for one example).
      key: draws the random orthonormal tangent vectors to start from (``jax.random.key(0)``).
    Returns:
      ``[batch, k]`` (``[k]`` for one example): exponents per time step (natural log), largest
      first. The top ``k`` do not depend on the others (the QR method orders the directions by
      growth). They are rates over the counted steps: exponents closer together than about
      ``1 / (time - warmup)`` are not told apart, and come out as an average over their directions. A direction the step maps to zero (a part of the carry that the next step never
      reads) gives ``-inf``, or a value near ``log(float32 eps)`` ≈ -16 where rounding leaves a trace.
    Raises:
      ValueError: bad ``k``, ``warmup``, ``reortho_every`` or input shape.
    """
    if inputs.ndim == 2:
        one = None if carry is None else jax.tree.map(lambda leaf: leaf[None], carry)
        return lyapunov_spectrum(
            cell, params, inputs[None], k, warmup=warmup, reortho_every=reortho_every, carry=one, key=key
        )[0]
    if inputs.ndim != 3:
        raise ValueError(f"inputs must be [batch, time, d] or [time, d], got shape {inputs.shape}")
    batch, time = inputs.shape[:2]
    if not 0 <= warmup < time:
        raise ValueError(f"warmup must be in [0, time) = [0, {time}), got {warmup}")
    if reortho_every < 1:
        raise ValueError(f"reortho_every must be >= 1, got {reortho_every}")
    if carry is None:
        carry = cell.initialize_carry(jax.random.key(0), (batch, inputs.shape[-1]))
    n = real_coordinates(jax.tree.map(lambda leaf: leaf[:1], carry))[0].shape[0]
    k = n if k is None else k
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] (the carry's real coordinates), got {k}")
    key = jax.random.key(0) if key is None else key
    try:
        hash(cell)
    except TypeError:  # a cell with an unhashable field: compiled anew on every call
        return jax.jit(functools.partial(_spectra, cell), static_argnums=(4, 5, 6))(
            params, inputs, carry, key, k, warmup, reortho_every
        )
    return _cached_spectra(cell, params, inputs, carry, key, k, warmup, reortho_every)



def classifier_cell(model: nn.Module, params, tokens: jax.Array) -> tuple[nn.RNNCellBase, Any, jax.Array]:
    """The recurrent cell of a sequence classifier, its parameters, and what it reads.

    Args:
      model: a model of :func:`jaxseq.models.registry.make_classifier`: a
        ``SequenceClassifier`` (its cell), a ``StackedClassifier`` (its first layer, which reads
        the encoded tokens) or a ``BidirectionalClassifier`` (its forward cell).
      params: the model's ``params`` collection.
      tokens: ``[batch, time]`` integer tokens.
    Returns:
      ``(cell, cell_params, inputs [batch, time, d])``: ``inputs`` are the encoded tokens
      (:class:`jaxseq.models.sequence.TokenEncoder`), ready for :func:`lyapunov_spectrum`.
    Raises:
      ValueError: a model with none of those cells.
    """
    for field, name in (("cell", "cell"), ("cells", "cells_0"), ("forward_cell", "forward_cell")):
        cell = getattr(model, field, None)
        if cell is not None:
            cell = cell[0] if field == "cells" else cell
            break
    else:
        raise ValueError(f"{type(model).__name__} has no recurrent cell (expected 'cell', 'cells' or 'forward_cell')")
    encoder = TokenEncoder(model.vocab_size, model.encoding, model.embed_dim)
    inputs = encoder.apply({"params": params.get("encoder", {})}, tokens)
    return cell.clone(parent=None, name=None), params[name], inputs
