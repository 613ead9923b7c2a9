"""The on-device tasks against their definitions."""

import jax
import numpy as np
import pytest

import numpy_tasks
from jaxseq.data.sequences import PAD, TASKS, baum_sweet_label, get_task, task_params

KEY = jax.random.key(42)


def baum_sweet_reference(digits) -> int:
    """1 iff no maximal block of zeros in the binary string has odd length."""
    return int(all(len(block) % 2 == 0 for block in "".join(map(str, digits)).split("1")))


def strip_pad(row):
    row = list(row)
    while row and row[0] == PAD:
        row.pop(0)
    return row


@pytest.mark.parametrize("length", [2, 3, 8, 11])
def test_decimal_palindromes_read_the_same_both_ways(length):
    inputs, labels = get_task("decimal_palindrome").generate(KEY, 256, length)
    full = np.concatenate([np.asarray(inputs), np.asarray(labels)[:, None]], axis=1)
    assert inputs.shape == (256, length - 1) and inputs.dtype == np.int32
    np.testing.assert_array_equal(full, full[:, ::-1])
    assert full.min() >= 0 and full.max() <= 9
    assert len(np.unique(full[:, 0])) == 10  # all digits occur


@pytest.mark.parametrize("length", [4, 10])
def test_binary_palindromes_are_left_padded_palindromes(length):
    inputs, labels = get_task("binary_palindrome").generate(KEY, 512, length)
    lengths = set()
    for row, label in zip(np.asarray(inputs), np.asarray(labels)):
        body = strip_pad(list(row) + [int(label)])
        assert PAD not in body and set(body) <= {0, 1}
        assert body == body[::-1] and len(body) >= 2
        lengths.add(len(body))
    assert lengths == set(range(2, length + 1))


def test_baum_sweet_labels_match_definition_and_classes_are_balanced():
    inputs, labels = get_task("baum_sweet").generate(KEY, 2000, 9)
    assert inputs.shape == (2000, 9)
    for row, label in zip(np.asarray(inputs), np.asarray(labels)):
        digits = strip_pad(row)
        assert digits[0] == 1 and PAD not in digits  # a number's binary digits, no leading zero
        assert label == baum_sweet_reference(digits)
    assert 0.3 < float(np.mean(labels)) < 0.7


def test_baum_sweet_label_function_on_known_numbers():
    # the Baum-Sweet sequence (OEIS A086747) for n = 1..16, e.g. 2 = 10b -> 0, 4 = 100b -> 1, 9 = 1001b -> 1
    expected = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1]
    rows = [[PAD] * (6 - len(bin(n)[2:])) + [int(b) for b in bin(n)[2:]] for n in range(1, 17)]
    np.testing.assert_array_equal(baum_sweet_label(np.array(rows)), expected)


def test_random_combinations_are_permutations_missing_the_label():
    inputs, labels = get_task("random_combination").generate(KEY, 300, 7)
    full = np.concatenate([np.asarray(inputs), np.asarray(labels)[:, None]], axis=1)
    np.testing.assert_array_equal(np.sort(full, axis=1), np.tile(np.arange(7), (300, 1)))
    assert len(np.unique(labels)) == 7


@pytest.mark.parametrize("name", sorted(TASKS))
def test_tasks_jit_are_deterministic_per_key_and_match_their_numpy_construction(name):
    """The jitted sampler against a NumPy construction of the task's definition from the same draws
    (bit for bit: a task's batches for a key are what its definition says, and stay so)."""
    task = TASKS[name]
    specs, build = numpy_tasks.TASKS[name]
    # one program draws the batch and, with the same jax.random calls, the reference's numbers
    sample = jax.jit(lambda key: (task.sample(key, 16, 12), numpy_tasks.draws(key, specs(16, 12))))
    (a, drawn), (b, _), (c, _) = sample(KEY), sample(KEY), sample(jax.random.key(1))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert a.inputs.shape[:2] == a.targets.shape == a.mask.shape == (16, task.time_steps(12))
    assert a.mask.any(axis=1).all()
    if task.input_features:
        assert a.inputs.shape[2] == task.input_features == task.vocab_size(12)
    else:
        assert int(np.max(a.inputs)) < task.vocab_size(12)
    if not task.regression:
        assert int(np.max(a.targets)) < task.num_classes(12)
    for got, want in zip(a, build([np.asarray(d) for d in drawn], 16, 12)):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_bad_sizes_are_clear_errors(name):
    sample = TASKS[name].sample
    with pytest.raises(ValueError, match="sequence length must be an int >= "):
        sample(KEY, 8, 0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        sample(KEY, 0, 5)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        sample(KEY, -3, 5)


def test_length_one_is_rejected_for_palindromes():
    with pytest.raises(ValueError, match=">= 2, got 1"):
        get_task("decimal_palindrome").sample(KEY, 4, 1)


def test_unknown_task_lists_valid_names():
    with pytest.raises(ValueError, match="unknown task 'kopy'; choose one of: adding, associative_recall, baum_sweet"):
        get_task("kopy")


def test_task_parameters_build_the_task_and_unknown_ones_are_clear_errors():
    assert task_params("copy") == {"num_tokens": 10, "num_symbols": 8} and task_params("adding") == {}
    task = get_task("copy", {"num_tokens": 3, "num_symbols": 4})
    assert (task.vocab_size(5), task.num_classes(5), task.time_steps(5)) == (6, 5, 5 + 2 * 3)
    with pytest.raises(ValueError, match="task 'copy' has no parameter 'tokens'; its parameters: num_tokens, num_symbols"):
        get_task("copy", {"tokens": 3})
    with pytest.raises(ValueError, match="num_tokens must be a positive int, got 0"):
        get_task("selective_copy", {"num_tokens": 0}).sample(KEY, 2, 5)
    with pytest.raises(ValueError, match="selective_copy: num_tokens .10. must not exceed the length .5."):
        get_task("selective_copy").sample(KEY, 2, 5)
    with pytest.raises(ValueError, match="associative_recall: need num_queries <= num_pairs"):
        get_task("associative_recall", {"num_queries": 9}).sample(KEY, 2, 20)
