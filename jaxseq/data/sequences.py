"""Sequence tasks, generated on device from a PRNG key.

A task samples a :class:`Batch` ``(inputs, targets, mask)``: ``inputs`` are ``int32 [batch, time]``
tokens (or ``float32 [batch, time, features]`` real vectors), ``targets [batch, time]`` the answer
expected after each step (``int32`` classes, or ``float32`` for a regression task) and ``mask
[batch, time]`` (bool) the steps whose answer counts; the loss and the accuracy are means over
those steps. ``batch_size`` and ``length`` are static (Python ints); the sampler is pure and jit-able.

A task that answers once, after its last input, says so statically (``Task.last_step_only``): its
generator returns ``(inputs, labels [batch])``, and :meth:`Task.sample` puts the label at the last
step (the only step in the mask). A model then reads out only its last state, so such a task
trains the same compiled program however many steps the other tasks answer at.

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

The memory tasks of the literature, each with parameters (:func:`task_params`; in a config,
``data.<task>.<parameter>``). ``length`` is their ``T``; what it measures differs per task:

- ``copy`` (Hochreiter & Schmidhuber 1997; the layout of Arjovsky et al. 2016 and of expRNN,
  Lezcano-Casado & Martínez-Rubio 2019): ``num_tokens`` symbols drawn from ``1..num_symbols``, then
  ``T - 1`` blanks (token 0), a delimiter (``num_symbols + 1``) and ``num_tokens`` blanks, during
  which the model answers the symbols in order. ``T`` is the delay: each symbol is answered
  ``T + num_tokens`` steps after it was read; ``T + 2 num_tokens`` steps in all. Scored on the
  answer steps only (Arjovsky et al. score every step, with blanks as the answer elsewhere; their
  memoryless baseline ``num_tokens log(num_symbols) / (T + 2 num_tokens)`` is this task's
  ``log(num_symbols)`` averaged over all steps). Chance: accuracy ``1 / num_symbols``, loss
  ``log(num_symbols)``.
- ``selective_copy`` (Gu & Dao 2023, Mamba; MAD-lab): ``num_tokens`` symbols from ``1..num_symbols``
  at random distinct positions (in order) among ``T`` steps of blanks, then ``num_tokens`` steps of
  a marker (``num_symbols + 1``) during which the model answers the symbols in order.
  ``T + num_tokens`` steps in all. Chance: accuracy ``1 / num_symbols``, loss ``log(num_symbols)``.
- ``associative_recall`` (multi-query associative recall, Zoology: Arora et al. 2023):
  ``num_pairs`` key-value pairs ``k_1 v_1 k_2 v_2 ...`` (distinct keys from ``1..num_keys``,
  distinct values from ``num_keys + 1 .. num_keys + num_values``), then ``T`` steps of blanks in
  which ``num_queries`` of the keys (distinct, in random order) appear at random positions; the
  answer at each query is its key's value. ``2 num_pairs + T`` steps in all. Chance: accuracy
  ``1 / num_values`` (``1 / num_pairs`` for a model that only knows which values the sequence holds).
- ``adding`` (Hochreiter & Schmidhuber 1997; the form of Le et al. 2015 and Arjovsky et al. 2016):
  ``T`` steps of real inputs ``[value, marker]``, values uniform in ``[0, 1)``, the marker 1 at
  one random step of the first half and one of the second, else 0; after the last step the model
  regresses the sum of the two marked values. Loss: squared error; always answering the mean, 1,
  has mean squared error ``1/6`` (the trivial baseline). An answer counts as correct when its
  squared error is below 1 % of that, ``|error| < sqrt(0.01 / 6) = 0.041``: accuracy is the
  fraction of such answers, and 0.99 of them solves the task as on the other tasks.
"""

import functools
import inspect
import math
from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxseq.lookup import lookup

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


def _check_params(**params: int) -> None:
    for name, value in params.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"task parameter {name} must be a positive int, got {value!r}")


def _first_of_permutation(key: jax.Array, batch_size: int, size: int, count: int) -> jax.Array:
    """``[batch, count]``: the first ``count`` entries of a random permutation of ``0..size-1`` per row."""
    return jnp.argsort(jax.random.uniform(key, (batch_size, size)), axis=1)[:, :count].astype(jnp.int32)


def _place(values: jax.Array, positions: jax.Array, length: int) -> jax.Array:
    """``[batch, length]`` zeros with ``values [batch, n]`` at the distinct ``positions [batch, n]``."""
    hits = positions[:, :, None] == jnp.arange(length)[None, None, :]
    return jnp.where(hits, values[:, :, None], 0).sum(axis=1).astype(values.dtype)


def _answers_last(inputs: jax.Array, answers: jax.Array) -> "Batch":
    """A :class:`Batch` whose last ``n`` steps are scored against ``answers [batch, n]``."""
    batch_size, time = inputs.shape
    n = answers.shape[1]
    targets = jnp.concatenate([jnp.zeros((batch_size, time - n), jnp.int32), answers], axis=1)
    return Batch(inputs, targets, jnp.broadcast_to(jnp.arange(time) >= time - n, (batch_size, time)))


def copy(key: jax.Array, batch_size: int, length: int, num_tokens: int = 10, num_symbols: int = 8) -> "Batch":
    """The copy task: inputs ``[B, length + 2 num_tokens]`` (symbols, ``length - 1`` blanks, the
    delimiter, blanks); the last ``num_tokens`` steps answer the symbols."""
    _check(batch_size, length, min_length=1)
    _check_params(num_tokens=num_tokens, num_symbols=num_symbols)
    symbols = jax.random.randint(key, (batch_size, num_tokens), 1, num_symbols + 1).astype(jnp.int32)
    blanks = jnp.zeros((batch_size, length - 1), jnp.int32)
    delimiter = jnp.full((batch_size, 1), num_symbols + 1, jnp.int32)
    inputs = jnp.concatenate([symbols, blanks, delimiter, jnp.zeros_like(symbols)], axis=1)
    return _answers_last(inputs, symbols)


def selective_copy(key: jax.Array, batch_size: int, length: int, num_tokens: int = 10, num_symbols: int = 8) -> "Batch":
    """Selective copying: inputs ``[B, length + num_tokens]`` (symbols at random positions among
    ``length`` blanks, then markers); the last ``num_tokens`` steps answer the symbols in order."""
    _check(batch_size, length, min_length=1)
    _check_params(num_tokens=num_tokens, num_symbols=num_symbols)
    if num_tokens > length:
        raise ValueError(f"selective_copy: num_tokens ({num_tokens}) must not exceed the length ({length})")
    key_symbols, key_positions = jax.random.split(key)
    symbols = jax.random.randint(key_symbols, (batch_size, num_tokens), 1, num_symbols + 1).astype(jnp.int32)
    positions = jnp.sort(_first_of_permutation(key_positions, batch_size, length, num_tokens), axis=1)
    markers = jnp.full((batch_size, num_tokens), num_symbols + 1, jnp.int32)
    return _answers_last(jnp.concatenate([_place(symbols, positions, length), markers], axis=1), symbols)


def associative_recall(
    key: jax.Array,
    batch_size: int,
    length: int,
    num_pairs: int = 8,
    num_keys: int = 16,
    num_values: int = 16,
    num_queries: int = 8,
) -> "Batch":
    """Multi-query associative recall: inputs ``[B, 2 num_pairs + length]`` (the pairs, then
    ``length`` steps holding ``num_queries`` queried keys among blanks); each query's step answers
    its key's value (token ``num_keys + 1 + j`` for value ``j``)."""
    _check(batch_size, length, min_length=1)
    _check_params(num_pairs=num_pairs, num_keys=num_keys, num_values=num_values, num_queries=num_queries)
    if max(num_queries, num_pairs) > min(num_keys, num_values) or num_queries > min(num_pairs, length):
        raise ValueError(
            f"associative_recall: need num_queries <= num_pairs <= num_keys and num_values, and num_queries "
            f"<= the length; got {num_queries} queries, {num_pairs} pairs, {num_keys} keys, {num_values} values, length {length}"
        )
    key_keys, key_values, key_order, key_positions = jax.random.split(key, 4)
    keys = _first_of_permutation(key_keys, batch_size, num_keys, num_pairs) + 1
    values = _first_of_permutation(key_values, batch_size, num_values, num_pairs) + num_keys + 1
    asked = _first_of_permutation(key_order, batch_size, num_pairs, num_queries)  # which pairs, in query order
    positions = jnp.sort(_first_of_permutation(key_positions, batch_size, length, num_queries), axis=1)
    pairs = jnp.stack([keys, values], axis=2).reshape(batch_size, 2 * num_pairs)
    queries = _place(jnp.take_along_axis(keys, asked, axis=1), positions, length)
    answers = _place(jnp.take_along_axis(values, asked, axis=1), positions, length)
    asked_at = _place(jnp.ones_like(asked), positions, length) > 0
    no_answer = jnp.zeros((batch_size, 2 * num_pairs), jnp.int32)
    return Batch(
        jnp.concatenate([pairs, queries], axis=1),
        jnp.concatenate([no_answer, answers], axis=1),
        jnp.concatenate([no_answer > 0, asked_at], axis=1),
    )


ADDING_TOLERANCE = math.sqrt(0.01 / 6)  # squared error below 1 % of the trivial baseline's, 1/6


def adding(key: jax.Array, batch_size: int, length: int) -> tuple[jax.Array, jax.Array]:
    """The adding problem: inputs ``float32 [B, length, 2]`` (value, marker), labels ``float32 [B]``,
    the sum of the two marked values (one marker in each half of the sequence)."""
    _check(batch_size, length)
    key_values, key_first, key_second = jax.random.split(key, 3)
    values = jax.random.uniform(key_values, (batch_size, length))
    half = length // 2
    first = jax.random.randint(key_first, (batch_size,), 0, half)
    second = jax.random.randint(key_second, (batch_size,), half, length)
    steps = jnp.arange(length)[None, :]
    markers = ((steps == first[:, None]) | (steps == second[:, None])).astype(jnp.float32)
    return jnp.stack([values, markers], axis=-1), (values * markers).sum(axis=1)


class Batch(NamedTuple):
    """One batch of a task.

    Attributes:
      inputs: ``int32 [batch, time]`` tokens, or ``float32 [batch, time, features]`` (a task with
        ``input_features``).
      targets: ``[batch, time]``, the answer expected after each step: ``int32`` classes, or
        ``float32`` values (a regression task); meaningless where ``mask`` is False.
      mask: ``bool [batch, time]``, the steps whose answer is scored.
    """

    inputs: jax.Array
    targets: jax.Array
    mask: jax.Array


def at_last_step(inputs: jax.Array, labels: jax.Array) -> Batch:
    """The :class:`Batch` of a task that answers once: ``labels [batch]`` at the last of ``inputs``'
    time steps, the only step in the mask."""
    batch_size, time = inputs.shape[:2]
    # a concatenation, so that reading the last step back (targets[:, -1]) compiles to the labels
    targets = jnp.concatenate([jnp.zeros((batch_size, time - 1), labels.dtype), labels[:, None]], axis=1)
    return Batch(inputs, targets, jnp.broadcast_to(jnp.arange(time) == time - 1, (batch_size, time)))


class Task(NamedTuple):
    """A sequence task: its generator and the sizes a model needs.

    Attributes:
      generate: ``(key, batch_size, length) -> (inputs, labels [batch])`` for a task that answers
        only after its last step (``last_step_only``), else ``-> Batch``.
      vocab_size: ``length -> number of distinct input tokens`` (of input features, for a task
        with ``input_features``).
      num_classes: ``length -> number of answer classes`` (1 for a regression task: one output).
      last_step_only: the task answers once, after its last input (static: a model then reads out
        its last state only).
      regression: the targets are real numbers, scored by squared error; the accuracy is the
        fraction of answers within ``tolerance`` of their target.
      input_features: 0 for token inputs ``[batch, time]``; else the width of the real input
        vectors ``[batch, time, input_features]``, which a model reads as they are.
      tolerance: for a regression task, the largest absolute error that counts as correct.
    """

    generate: Callable[..., Any]
    vocab_size: Callable[[int], int]
    num_classes: Callable[[int], int]
    last_step_only: bool = True
    regression: bool = False
    input_features: int = 0
    tolerance: float = 0.0

    def sample(self, key: jax.Array, batch_size: int, length: int) -> Batch:
        """A :class:`Batch` ``(inputs, targets [B, time], mask [B, time])`` drawn from ``key``."""
        out = self.generate(key, batch_size, length)
        return at_last_step(*out) if self.last_step_only else Batch(*out)

    def time_steps(self, length: int) -> int:
        """The number of input time steps of a sequence of this task at ``length`` (from shapes only)."""
        return jax.eval_shape(lambda: self.sample(jax.random.key(0), 1, length)).inputs.shape[1]


TASKS = {
    "decimal_palindrome": Task(decimal_palindrome, lambda t: 10, lambda t: 10),
    "binary_palindrome": Task(binary_palindrome, lambda t: 3, lambda t: 2),
    "baum_sweet": Task(baum_sweet, lambda t: 3, lambda t: 2),
    "random_combination": Task(random_combination, lambda t: t, lambda t: t),
}



def _copy_task(generator: Callable[..., Batch]) -> Callable[..., Task]:
    def build(num_tokens: int = 10, num_symbols: int = 8) -> Task:
        # tokens: blank 0, symbols 1..num_symbols, the delimiter (marker); answers are symbols
        sample = functools.partial(generator, num_tokens=num_tokens, num_symbols=num_symbols)
        return Task(sample, lambda t: num_symbols + 2, lambda t: num_symbols + 1, last_step_only=False)

    return build


def make_associative_recall(num_pairs: int = 8, num_keys: int = 16, num_values: int = 16, num_queries: int = 8) -> Task:
    """The ``associative_recall`` task with these parameters (see :func:`associative_recall`)."""
    params = dict(num_pairs=num_pairs, num_keys=num_keys, num_values=num_values, num_queries=num_queries)
    vocab = 1 + num_keys + num_values
    return Task(functools.partial(associative_recall, **params), lambda t: vocab, lambda t: vocab, last_step_only=False)


# task name -> the function building it from its parameters (keyword arguments with defaults); the
# tasks of TASKS not listed here have no parameters
TASK_BUILDERS: dict[str, Callable[..., Task]] = {
    "copy": _copy_task(copy),
    "selective_copy": _copy_task(selective_copy),
    "associative_recall": make_associative_recall,
}
TASKS.update({name: build() for name, build in TASK_BUILDERS.items()})
TASKS["adding"] = Task(
    adding, lambda t: 2, lambda t: 1, regression=True, input_features=2, tolerance=ADDING_TOLERANCE
)


def task_params(name: str) -> dict[str, Any]:
    """The parameters of task ``name`` and their defaults (``{}`` for a task without parameters)."""
    builder = TASK_BUILDERS.get(name)
    if builder is None:
        return {}
    return {p.name: p.default for p in inspect.signature(builder).parameters.values()}


def get_task(name: str, params: Optional[Mapping[str, Any]] = None) -> Task:
    """The :class:`Task` called ``name`` (one of :data:`TASKS`), built with ``params`` (a mapping
    of the names :func:`task_params` lists; missing ones keep their defaults).

    Raises:
      ValueError: an unknown task (listing the valid ones) or parameter (listing the task's).
    """
    task = lookup(TASKS, name, "task")
    params = dict(params or {})
    if not params:
        return task
    unknown = sorted(set(params) - set(task_params(name)))
    if unknown:
        valid = ", ".join(task_params(name)) or "none"
        raise ValueError(f"task {name!r} has no parameter {', '.join(map(repr, unknown))}; its parameters: {valid}")
    return TASK_BUILDERS[name](**params)
