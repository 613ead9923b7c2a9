"""A character n-gram model with interpolated Witten-Bell smoothing: a count baseline in NumPy.

It puts the character LSTM's numbers in perspective (how far past counting does the network get?)
and measures how hard a piece of text is for a model that has not seen it, independently of any
training run. There are no parameters to fit besides the counts.

For a history ``h`` of ``k`` characters (``h'`` = ``h`` without its oldest character):

    P(c | h) = (C(h c) + N(h) * P(c | h')) / (C(h) + N(h))     if C(h) > 0, else P(c | h')
    P(c)     = (C(c) + 1) / (total + V)                          (empty history: add-one unigram)

where ``C`` counts occurrences in the training text and ``N(h)`` is the number of distinct
characters seen after ``h``. An ``order``-n model uses histories of up to ``n - 1`` characters;
at the start of a text, positions use what history there is.
"""

from typing import NamedTuple

import numpy as np


class _Counts(NamedTuple):
    """Sorted integer keys and their counts for one history length."""

    pair_keys: np.ndarray  # history * V + next character, sorted
    pair_counts: np.ndarray
    history_keys: np.ndarray  # sorted
    history_counts: np.ndarray  # C(h)
    history_types: np.ndarray  # N(h): distinct next characters


def _history_ids(ids: np.ndarray, length: int, vocab_size: int) -> np.ndarray:
    """``int64 [len(ids) - length]``: the id of the ``length`` characters before each position >= length."""
    key = np.zeros(len(ids) - length, np.int64)
    for j in range(length):
        key = key * vocab_size + ids[j : len(ids) - length + j]
    return key


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at the positions of ``query`` in the sorted ``keys``; 0 where a query is absent."""
    if len(keys) == 0:
        return np.zeros(query.shape, values.dtype)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], 0)


class NGramModel:
    """Witten-Bell interpolated character n-gram counts of a training text.

    Args:
      ids: ``int [N]`` character ids of the training text.
      vocab_size: ``V``; ids lie in ``[0, V)``.
      order: ``n >= 1``; histories of up to ``n - 1`` characters. ``V ** (n - 1) * V`` must fit
        in int64 (``n <= 9`` for V = 80).
    """

    def __init__(self, ids, vocab_size: int, order: int):
        ids = np.asarray(ids, np.int64)
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if vocab_size**order >= 2**62:
            raise ValueError(f"order {order} with {vocab_size} characters overflows int64 keys; use a lower order")
        if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"ids must lie in [0, {vocab_size})")
        self.vocab_size, self.order = vocab_size, order
        self.unigram = (np.bincount(ids, minlength=vocab_size) + 1.0) / (len(ids) + vocab_size)
        self.counts = []
        for length in range(1, order):
            pairs, pair_counts = np.unique(_history_ids(ids, length, vocab_size) * vocab_size + ids[length:],
                                           return_counts=True)
            history, first, types = np.unique(pairs // vocab_size, return_index=True, return_counts=True)
            totals = np.add.reduceat(pair_counts, first) if len(pairs) else pair_counts
            self.counts.append(_Counts(pairs, pair_counts, history, totals, types))

    def probabilities(self, ids) -> np.ndarray:
        """``float64 [N, V]``: row ``t`` is ``P(. | ids[:t])`` (with at most ``order - 1`` characters of history)."""
        ids = np.asarray(ids, np.int64)
        V = self.vocab_size
        probs = np.tile(self.unigram, (len(ids), 1))
        for length, counts in enumerate(self.counts, start=1):
            if len(ids) <= length:
                break
            history = _history_ids(ids, length, V)  # history[i]: the characters before position i + length
            total = _lookup(counts.history_keys, counts.history_counts, history).astype(np.float64)
            types = _lookup(counts.history_keys, counts.history_types, history).astype(np.float64)
            pair = _lookup(counts.pair_keys, counts.pair_counts,
                           history[:, None] * V + np.arange(V)[None, :]).astype(np.float64)
            lower = probs[length:]
            seen = total[:, None] > 0
            mixed = (pair + types[:, None] * lower) / np.maximum(total + types, 1.0)[:, None]
            probs[length:] = np.where(seen, mixed, lower)
        return probs

    def evaluate(self, ids) -> dict[str, float]:
        """Mean next-character loss (nats and bits) and argmax accuracy over ``ids[1:]``.

        Args:
          ids: ``int [N]``, ``N >= 2``; each position ``t >= 1`` is predicted from ``ids[:t]``.
        Returns:
          ``{"loss", "bpc", "accuracy"}`` as Python floats.
        """
        ids = np.asarray(ids, np.int64)
        if len(ids) < 2:
            raise ValueError("need at least 2 characters to evaluate")
        probs = self.probabilities(ids)[1:]
        targets = ids[1:]
        loss = float(-np.mean(np.log(probs[np.arange(len(targets)), targets])))
        accuracy = float(np.mean(probs.argmax(axis=1) == targets))
        return {"loss": loss, "bpc": loss / np.log(2.0), "accuracy": accuracy}
