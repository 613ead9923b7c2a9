"""Plain NumPy constructions of the sequence tasks, written independently of jaxseq.data.sequences.

Each task's entry of :data:`TASKS` is ``(specs, build)``: ``specs(batch_size, length, **params)``
lists the task's random draws (``(kind, shape, *bounds)``; :func:`draws` makes them with the same
``jax.random`` calls on the same keys as the task, so both constructions see the same numbers), and
``build(drawn, batch_size, length, **params)`` builds ``(inputs, targets [B, time], mask [B, time])``
from the task's definition, one sequence at a time.
"""

import jax
import numpy as np

PAD = 2


def draws(key, specs):
    """``jax.random`` draws (jax arrays; jit-able), one per ``(kind, shape, *bounds)`` spec, from
    the split ``key`` (or from ``key`` itself when there is one spec)."""
    keys = [key] if len(specs) == 1 else list(jax.random.split(key, len(specs)))
    out = []
    for k, (kind, shape, *bounds) in zip(keys, specs):
        if kind == "randint":
            out.append(jax.random.randint(k, shape, *bounds))
        elif kind == "uniform":
            out.append(jax.random.uniform(k, shape))
        else:
            out.append(jax.random.bernoulli(k, 0.5, shape))
    return out


def one_answer(rows, labels, dtype=np.int32):
    """``(inputs, targets, mask)`` of a task that answers ``labels`` once, after its last input."""
    inputs = np.asarray(rows, dtype)
    targets = np.zeros(inputs.shape[:2], np.asarray(labels).dtype)
    targets[:, -1] = labels
    mask = np.zeros(inputs.shape[:2], bool)
    mask[:, -1] = True
    return inputs, targets, mask


def answers_last(rows, answers):
    """``(inputs, targets, mask)`` scoring the last ``len(answers[b])`` steps of each row."""
    inputs = np.asarray(rows, np.int32)
    targets = np.zeros(inputs.shape, np.int32)
    mask = np.zeros(inputs.shape, bool)
    for b, answer in enumerate(answers):
        targets[b, -len(answer):] = answer
        mask[b, -len(answer):] = True
    return inputs, targets, mask


def palindrome(digits):
    """The palindrome of ``len(digits)`` symbols whose first half is ``digits``' first half."""
    n = len(digits)
    return [digits[min(k, n - 1 - k)] for k in range(n)]


def decimal_palindrome(drawn, batch_size, length):
    rows = [palindrome(list(row)) for row in drawn[0]]
    return one_answer([row[:-1] for row in rows], np.array([row[-1] for row in rows], np.int32))


def binary_palindrome(drawn, batch_size, length):
    bits, n = drawn
    rows = [[PAD] * (length - m) + palindrome(list(row[:m])) for row, m in zip(bits, n)]
    return one_answer([row[:-1] for row in rows], np.array([row[-1] for row in rows], np.int32))


def baum_sweet_number(digits) -> int:
    """1 iff no maximal block of zeros in the binary digits has odd length."""
    return int(all(len(block) % 2 == 0 for block in "".join(map(str, digits)).split("1")))


def positive_baum_sweet(coins):
    """A leading 1, then each coin unless a block of zeros is open at odd length (then 0); the last
    digit closes the string (1 unless it must be a 0)."""
    digits = [1]
    for j, coin in enumerate(coins[1:], start=1):
        run = len(digits) - 1 - max(i for i, d in enumerate(digits) if d == 1)
        digits.append(0 if run % 2 else (1 if j == len(coins) - 1 else int(coin)))
    return digits


def baum_sweet(drawn, batch_size, length):
    uniform, coins, n, pick = drawn
    rows = []
    for b in range(batch_size):
        digits = positive_baum_sweet(coins[:, b]) if pick[b, 0] else [1] + list(uniform[b, 1:])
        rows.append([PAD] * (length - n[b]) + list(digits[: n[b]]))
    labels = [baum_sweet_number([d for d in row if d != PAD]) for row in rows]
    return one_answer(rows, np.array(labels, np.int32))


def ranks(u):
    """The indices of ``u``'s entries from the smallest up (a random permutation for uniform ``u``)."""
    return sorted(range(len(u)), key=lambda i: u[i])


def random_combination(drawn, batch_size, length):
    perms = [ranks(row) for row in drawn[0]]
    return one_answer([p[:-1] for p in perms], np.array([p[-1] for p in perms], np.int32))


def copy(drawn, batch_size, length, num_tokens=10, num_symbols=8):
    """Arjovsky et al. 2016: the symbols, T - 1 blanks, the delimiter, blanks while the symbols are answered."""
    symbols = drawn[0]
    rows = [list(s) + [0] * (length - 1) + [num_symbols + 1] + [0] * num_tokens for s in symbols]
    return answers_last(rows, symbols)


def selective_copy(drawn, batch_size, length, num_tokens=10, num_symbols=8):
    """Gu & Dao 2023: the symbols at random places among T blanks, in order, then a marker per answer."""
    symbols, u = drawn
    rows = []
    for b in range(batch_size):
        row = [0] * length
        for position, symbol in zip(sorted(ranks(u[b])[:num_tokens]), symbols[b]):
            row[position] = symbol
        rows.append(row + [num_symbols + 1] * num_tokens)
    return answers_last(rows, symbols)


def associative_recall(drawn, batch_size, length, num_pairs=8, num_keys=16, num_values=16, num_queries=8):
    """Zoology's multi-query recall: pairs k v, then queries among blanks answered by their values."""
    uk, uv, uq, up = drawn
    inputs = np.zeros((batch_size, 2 * num_pairs + length), np.int32)
    targets, mask = np.zeros_like(inputs), np.zeros(inputs.shape, bool)
    for b in range(batch_size):
        value_of = {}
        for i, (k, v) in enumerate(zip(ranks(uk[b])[:num_pairs], ranks(uv[b])[:num_pairs])):
            inputs[b, 2 * i], inputs[b, 2 * i + 1] = k + 1, num_keys + 1 + v
            value_of[k + 1] = num_keys + 1 + v
        asked = [int(inputs[b, 2 * i]) for i in ranks(uq[b])[:num_queries]]
        for position, k in zip(sorted(ranks(up[b])[:num_queries]), asked):
            t = 2 * num_pairs + position
            inputs[b, t], targets[b, t], mask[b, t] = k, value_of[k], True
    return inputs, targets, mask


def adding(drawn, batch_size, length):
    """Values in [0, 1), a marker at one step of each half; the answer, at the end, the marked sum."""
    values, first, second = drawn
    markers = np.zeros((batch_size, length), np.float32)
    markers[np.arange(batch_size), first] = 1
    markers[np.arange(batch_size), second] = 1
    sums = np.array([values[b, first[b]] + values[b, second[b]] for b in range(batch_size)], np.float32)
    return one_answer(np.stack([values, markers], axis=-1), sums, np.float32)


def _copy_specs(batch_size, length, num_tokens=10, num_symbols=8):
    return [("randint", (batch_size, num_tokens), 1, num_symbols + 1)]


TASKS = {
    "decimal_palindrome": (lambda B, T: [("randint", (B, T), 0, 10)], decimal_palindrome),
    "binary_palindrome": (lambda B, T: [("randint", (B, T), 0, 2), ("randint", (B,), 2, T + 1)], binary_palindrome),
    "baum_sweet": (
        lambda B, T: [("randint", (B, T), 0, 2), ("randint", (T, B), 0, 2), ("randint", (B,), 1, T + 1), ("bernoulli", (B, 1))],
        baum_sweet,
    ),
    "random_combination": (lambda B, T: [("uniform", (B, T))], random_combination),
    "copy": (_copy_specs, copy),
    "selective_copy": (lambda B, T, **p: _copy_specs(B, T, **p) + [("uniform", (B, T))], selective_copy),
    "associative_recall": (
        lambda B, T, num_pairs=8, num_keys=16, num_values=16, num_queries=8: [
            ("uniform", (B, num_keys)), ("uniform", (B, num_values)), ("uniform", (B, num_pairs)), ("uniform", (B, T))
        ],
        associative_recall,
    ),
    "adding": (lambda B, T: [("uniform", (B, T)), ("randint", (B,), 0, T // 2), ("randint", (B,), T // 2, T)], adding),
}
