"""The character n-gram baseline (jaxseq.models.ngram) against direct counting."""

import numpy as np
import pytest
from numpy_reference import witten_bell

from jaxseq.models.ngram import NGramModel


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_probabilities_equal_direct_counting(order):
    rng = np.random.default_rng(order)
    vocab_size = 4
    train = rng.integers(0, vocab_size, 300)
    test = np.concatenate([train[50:60], rng.integers(0, vocab_size, 20)])  # seen and unseen histories
    probs = NGramModel(train, vocab_size, order).probabilities(test)
    expected = [
        [witten_bell(train, vocab_size, list(test[max(0, t - order + 1) : t]), c) for c in range(vocab_size)]
        for t in range(len(test))
    ]
    np.testing.assert_allclose(probs, expected, rtol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)


def test_evaluate_on_memorised_text():
    train = np.array([0, 1, 2, 3] * 50)
    metrics = NGramModel(train, 5, 3).evaluate(train[:40])  # id 4 never occurs, yet gets probability
    assert metrics["accuracy"] == 1.0
    assert 0 < metrics["loss"] < 0.1 and metrics["bpc"] == pytest.approx(metrics["loss"] / np.log(2))


def test_bad_arguments():
    with pytest.raises(ValueError, match="order must be >= 1"):
        NGramModel([0, 1], 2, 0)
    with pytest.raises(ValueError, match="overflows int64"):
        NGramModel([0, 1], 80, 12)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 2\)"):
        NGramModel([0, 2], 2, 2)
    with pytest.raises(ValueError, match="at least 2 characters"):
        NGramModel([0, 1], 2, 2).evaluate([0])
