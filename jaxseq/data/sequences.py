"""Toy memorisation tasks, generated on device from a PRNG key.

Every task is a pure, jit-able function ``(key, batch_size, length) -> (inputs, labels)`` with
``inputs: int32 [batch, time]`` tokens and ``labels: int32 [batch]``. ``batch_size`` and ``length``
are static (Python ints). A :class:`Task` bundles the function with its vocabulary and class count.

- ``decimal_palindrome``: a palindrome of ``length`` digits; inputs are its first ``length - 1``
  digits, the label is the last one (which equals the first). 10 tokens, 10 classes.
- ``binary_palindrome``: a binary palindrome of a random length ``n`` in ``[2, length]``,
  left-padded with the pad token 2 to ``length`` tokens; inputs are the first ``length - 1``
  tokens, the label is the last bit (which equals the first non-pad bit).
- ``baum_sweet``: the binary digits of a random number with ``n`` in ``[1, length]`` digits, left-
  padded with the pad token 2 to ``length`` tokens; label 1 iff the binary representation has no
  block of consecutive zeros of odd length (the Baum-Sweet sequence). Half of each batch is drawn
  from the positive class so the classes are balanced (uniform numbers are almost all negative).
- ``random_combination``: a random permutation of ``0 .. length - 1``; inputs are its first
  ``length - 1`` elements, the label is the missing one. ``length`` tokens and classes.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxseq.registry import lookup

PAD = 2  # pad token of the binary tasks


def _check(batch_size: int, length: int, min_length: int = 2) -> None:
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(length, int) or length < min_length:
        raise ValueError(f"sequence length must be an int >= {min_length}, got {length!r}")


def _mirror_index(n: jax.Array, length: int) -> tuple[jax.Array, jax.Array]:
    """For palindromes of lengths ``n: [batch]`` right-aligned in ``length`` slots.

    Returns ``(source, valid)``, both ``[batch, length]``: slot ``j`` holds body position
    ``k = j - (length - n)``; ``source = min(k, n - 1 - k)`` is the free digit it mirrors and
    ``valid = k >= 0`` marks slots inside the body.
    """
    k = jnp.arange(length)[None, :] - (length - n)[:, None]
    source = jnp.clip(jnp.minimum(k, n[:, None] - 1 - k), 0, length - 1)
    return source, k >= 0


def decimal_palindrome(key: jax.Array, batch_size: int, length: int) -> tuple[jax.Array, jax.Array]:
    """Decimal palindromes of ``length`` digits: inputs ``[B, length - 1]``, labels ``[B]`` in 0..9."""
    _check(batch_size, length)
    digits = jax.random.randint(key, (batch_size, length), 0, 10)
    source, _ = _mirror_index(jnp.full((batch_size,), length), length)
    full = jnp.take_along_axis(digits, source, axis=1).astype(jnp.int32)
    return full[:, :-1], full[:, -1]


def binary_palindrome(key: jax.Array, batch_size: int, length: int) -> tuple[jax.Array, jax.Array]:
    """Left-padded binary palindromes: inputs ``[B, length - 1]`` in {0, 1, PAD}, labels ``[B]`` in {0, 1}."""
    _check(batch_size, length)
    key_bits, key_len = jax.random.split(key)
    bits = jax.random.randint(key_bits, (batch_size, length), 0, 2)
    n = jax.random.randint(key_len, (batch_size,), 2, length + 1)
    source, valid = _mirror_index(n, length)
    full = jnp.where(valid, jnp.take_along_axis(bits, source, axis=1), PAD).astype(jnp.int32)
    return full[:, :-1], full[:, -1]


def baum_sweet_label(tokens: jax.Array) -> jax.Array:
    """1 iff no maximal block of 0s in the binary digits has odd length; ``[B, T] -> [B]`` int32.

    ``tokens`` are 0/1 digits, possibly preceded by PAD tokens (ignored).
    """

    def scan_step(state, token):
        run, ok = state
        closes = token != 0  # a 1 or a pad ends the current block of zeros
        ok = ok & ~(closes & (run % 2 == 1))
        run = jnp.where(token == 0, run + 1, 0)
        return (run, ok), None

    start = (jnp.zeros(tokens.shape[0], jnp.int32), jnp.ones(tokens.shape[0], bool))
    (run, ok), _ = jax.lax.scan(scan_step, start, tokens.T)
    return (ok & (run % 2 == 0)).astype(jnp.int32)


def _positive_baum_sweet_digits(key: jax.Array, batch_size: int, length: int) -> jax.Array:
    """``[B, length]`` 0/1 strings (a leading 1, then only even blocks of zeros) drawn left to right.

    After the leading 1, each digit is free while the open block of zeros is even, forced to 0 while
    it is odd, and the last digit is forced to close the string validly.
    """
    coins = jax.random.randint(key, (length, batch_size), 0, 2)
    last = jnp.arange(length) == length - 1

    def scan_step(run, inputs):
        coin, is_last = inputs
        odd = run % 2 == 1
        digit = jnp.where(odd, 0, jnp.where(is_last, 1, coin))
        return jnp.where(digit == 0, run + 1, 0), digit

    # position 0 is the leading 1; draw the remaining length - 1 digits
    _, rest = jax.lax.scan(scan_step, jnp.zeros(batch_size, jnp.int32), (coins[1:], last[1:]))
    return jnp.concatenate([jnp.ones((1, batch_size), jnp.int32), rest], axis=0).T


def baum_sweet(key: jax.Array, batch_size: int, length: int) -> tuple[jax.Array, jax.Array]:
    """Baum-Sweet classification: inputs ``[B, length]`` in {0, 1, PAD}, labels ``[B]`` in {0, 1}."""
    _check(batch_size, length, min_length=1)
    key_uniform, key_positive, key_len, key_pick = jax.random.split(key, 4)
    uniform = jax.random.randint(key_uniform, (batch_size, length), 0, 2).at[:, 0].set(1)
    positive = _positive_baum_sweet_digits(key_positive, batch_size, length)
    digits = jnp.where(jax.random.bernoulli(key_pick, 0.5, (batch_size, 1)), positive, uniform)
    # keep the first n digits and right-align them: a number with n binary digits
    n = jax.random.randint(key_len, (batch_size,), 1, length + 1)
    k = jnp.arange(length)[None, :] - (length - n)[:, None]
    body = jnp.take_along_axis(digits, jnp.clip(k, 0, length - 1), axis=1)
    # truncating a positive string can cut a block of zeros in half; the label is computed after
    tokens = jnp.where(k >= 0, body, PAD).astype(jnp.int32)
    return tokens, baum_sweet_label(tokens)


def random_combination(key: jax.Array, batch_size: int, length: int) -> tuple[jax.Array, jax.Array]:
    """Permutations of ``0..length-1``: inputs ``[B, length - 1]``, labels ``[B]`` = the missing element."""
    _check(batch_size, length)
    perm = jnp.argsort(jax.random.uniform(key, (batch_size, length)), axis=1).astype(jnp.int32)
    return perm[:, :-1], perm[:, -1]


class Task(NamedTuple):
    """A sequence task: its sampler and the sizes a model needs.

    Attributes:
      sample: ``(key, batch_size, length) -> (inputs [B, time], labels [B])``.
      vocab_size: ``length -> number of distinct input tokens``.
      num_classes: ``length -> number of label classes``.
    """

    sample: Callable[[jax.Array, int, int], tuple[jax.Array, jax.Array]]
    vocab_size: Callable[[int], int]
    num_classes: Callable[[int], int]


TASKS = {
    "decimal_palindrome": Task(decimal_palindrome, lambda t: 10, lambda t: 10),
    "binary_palindrome": Task(binary_palindrome, lambda t: 3, lambda t: 2),
    "baum_sweet": Task(baum_sweet, lambda t: 3, lambda t: 2),
    "random_combination": Task(random_combination, lambda t: t, lambda t: t),
}


def get_task(name: str) -> Task:
    """The :class:`Task` called ``name`` (one of :data:`TASKS`)."""
    return lookup(TASKS, name, "task")
