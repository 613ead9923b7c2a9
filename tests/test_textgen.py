"""Character-level text generation: data, CharLSTM, training, checkpoints, sampling, errors.

Everything runs on a small text built here, so the tests pass without ../shared/data.
"""

import hashlib
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxseq.config import load_config
from jaxseq.data.text import (
    CharVocab,
    corpus_from_text,
    find_book,
    load_corpus,
    normalize_text,
    sample_batch,
    sequential_windows,
    strip_gutenberg,
)
from jaxseq.models.charlm import CharLSTM, make_char_lstm
from jaxseq.files.results import RunDir
from jaxseq.train.sampling import GREEDY_BELOW, complete, generate, is_greedy
from jaxseq.files.checkpoints import latest_checkpoint, restore_checkpoint, save_checkpoint
from jaxseq.files.text_runs import Callbacks, fit, load_run
from jaxseq.train.textgen import create_train_state, evaluate, evaluate_carried

TEXT = "the cat sat on the mat.\nthe dog sat on the log.\n" * 40


def quick_config(num_steps=30):
    config = load_config("configs/textgen.py:quick")
    config.train.num_steps = num_steps
    config.optim.lr = 1e-2  # a few steps must visibly learn
    return config


@pytest.fixture(scope="module")
def corpus():
    return corpus_from_text(TEXT, val_fraction=0.1, seq_len=12)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A quick run (30 steps) in a run directory: (config, state, rows, run path)."""
    path = tmp_path_factory.mktemp("run")
    config = quick_config()
    state, rows = fit(config, corpus, RunDir(path))
    return config, state, rows, path


# --- data ---------------------------------------------------------------------------------------


def test_vocab_round_trip():
    vocab = CharVocab.from_text(TEXT + "Zé")
    assert list(vocab.chars) == sorted(set(TEXT + "Zé"))
    ids = vocab.encode("the cat é")
    assert ids.dtype == np.int32
    assert vocab.decode(ids) == "the cat é"


def test_bom_and_line_endings_are_normalised(tmp_path):
    path = tmp_path / "book.txt"
    path.write_bytes("\ufeffline one\r\nline two\rline three\n".encode("utf-8"))
    corpus = load_corpus(path, val_fraction=0.0, seq_len=2, gutenberg=False)
    assert corpus.vocab.decode(corpus.train) == "line one\nline two\nline three\n"
    assert "\ufeff" not in corpus.vocab.chars and "\r" not in corpus.vocab.chars
    assert normalize_text("\ufeffa\r\nb") == "a\nb"


def test_gutenberg_header_and_footer_are_cut():
    book = "licence\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nOnce upon a time.\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\nfooter\n"
    assert strip_gutenberg(book) == "Once upon a time.\n"
    assert strip_gutenberg("no markers\n") == "no markers\n"


def test_validation_split_is_the_end_of_the_text(corpus):
    assert len(corpus.train) + len(corpus.val) == len(TEXT)
    assert corpus.vocab.decode(corpus.val) == TEXT[-len(corpus.val) :]


def test_train_fraction_keeps_the_end_of_the_training_split():
    text = "abcdefghij" * 20 + "xyz"  # "xyz" occurs only at the end: in validation, yet in the vocabulary
    full = corpus_from_text(text, val_fraction=0.1, seq_len=4)
    part = corpus_from_text(text, val_fraction=0.1, seq_len=4, train_fraction=0.25)
    assert part.vocab == full.vocab and "x" in part.vocab.chars
    np.testing.assert_array_equal(part.val, full.val)
    assert len(part.train) == round(len(full.train) * 0.25)
    np.testing.assert_array_equal(part.train, full.train[-len(part.train):])
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="train_fraction must be in"):
            corpus_from_text(text, val_fraction=0.1, train_fraction=bad)


def test_batch_targets_are_inputs_shifted_by_one():
    data = jnp.arange(100, dtype=jnp.int32)
    inputs, targets = sample_batch(jax.random.key(0), data, 16, 9)
    assert inputs.shape == targets.shape == (16, 9)
    np.testing.assert_array_equal(targets, inputs + 1)  # consecutive windows of data
    np.testing.assert_array_equal(targets[:, :-1], inputs[:, 1:])
    assert int(targets.max()) <= 99
    windows_in, windows_out = sequential_windows(np.arange(25), 6)
    np.testing.assert_array_equal(windows_out, windows_in + 1)
    assert windows_in.shape == (4, 6)


def test_books_are_found_through_the_environment(tmp_path, monkeypatch):
    book = tmp_path / "books" / "book_EN_grimms_fairy_tails.txt"
    book.parent.mkdir()
    book.write_text("once upon a time " * 5)
    monkeypatch.setenv("JAXSEQ_DATA", str(tmp_path))
    assert find_book("grimm") == book
    assert find_book("grimm", str(book)) == book  # a file named by --data wins
    with pytest.raises(ValueError, match="unknown book 'grim'; choose one of: democracy, grimm"):
        find_book("grim")


def test_known_book_with_wrong_checksum_is_refused(tmp_path):
    books = tmp_path / "books"
    books.mkdir()
    (books / "book_EN_grimms_fairy_tails.txt").write_text("not the real book " * 10)
    (tmp_path / "SHA256SUMS").write_text(f"{hashlib.sha256(b'x').hexdigest()}  ./books/book_EN_grimms_fairy_tails.txt\n")
    path = find_book("grimm", str(tmp_path))
    with pytest.raises(ValueError, match="SHA-256 .* expects"):
        load_corpus(path, seq_len=4)


# --- model --------------------------------------------------------------------------------------


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_char_lstm_step(p, tokens, states):
    """One character of the CharLSTM equations (gate order g, i, f, o) in NumPy.

    ``p``: the parameters as NumPy arrays; ``tokens [B]``; ``states``: one ``(c, h)`` per layer.
    Returns the new states and the logits ``[B, V]``.
    """
    x = p["embed"]["embedding"][tokens]
    new_states = []
    for layer, (c, h) in enumerate(states):
        cell = p[f"lstm_{layer}"]
        pre = x @ cell["input_proj"]["kernel"] + cell["input_proj"]["bias"] + h @ cell["hidden_proj"]["kernel"]
        g, i, f, o = np.split(pre, 4, axis=-1)
        c = np.tanh(g) * _sigmoid(i) + c * _sigmoid(f)
        x = h = np.tanh(c) * _sigmoid(o)
        new_states.append((c, h))
    return new_states, x @ p["head"]["kernel"] + p["head"]["bias"]


def numpy_zero_states(p, batch, num_layers):
    hidden = p["lstm_0"]["hidden_proj"]["kernel"].shape[0]
    return [(np.zeros((batch, hidden)), np.zeros((batch, hidden))) for _ in range(num_layers)]


def numpy_char_lstm(params, tokens, num_layers):
    """A plain loop over time of the CharLSTM equations: ``tokens [B, T]`` -> logits ``[B, T, V]``."""
    p = jax.tree_util.tree_map(np.asarray, params)
    states, logits = numpy_zero_states(p, tokens.shape[0], num_layers), []
    for t in range(tokens.shape[1]):
        states, step_logits = numpy_char_lstm_step(p, tokens[:, t], states)
        logits.append(step_logits)
    return np.stack(logits, axis=1)


def numpy_argmax_rollout(params, prompt_ids, length, num_layers):
    """Greedy decoding step by step in NumPy: read the prompt, then feed back each argmax.

    Returns the generated characters ``[B, length]`` and, per step, the gap between the largest
    and the second largest logit ``[B, length]``.
    """
    p = jax.tree_util.tree_map(np.asarray, params)
    states = numpy_zero_states(p, prompt_ids.shape[0], num_layers)
    for t in range(prompt_ids.shape[1]):
        states, logits = numpy_char_lstm_step(p, prompt_ids[:, t], states)
    chars, gaps = [], []
    for _ in range(length):
        top_two = np.sort(logits, axis=-1)[:, -2:]
        gaps.append(top_two[:, 1] - top_two[:, 0])
        chars.append(logits.argmax(-1))
        states, logits = numpy_char_lstm_step(p, chars[-1], states)
    return np.stack(chars, axis=1), np.stack(gaps, axis=1)


def test_char_lstm_equals_numpy_loop():
    model = CharLSTM(vocab_size=11, hidden_size=8, num_layers=2, embed_dim=5)
    tokens = jax.random.randint(jax.random.key(1), (3, 7), 0, 11)
    params = model.init(jax.random.key(0), tokens)["params"]
    carries, logits = model.apply({"params": params}, tokens)
    assert logits.shape == (3, 7, 11) and len(carries) == 2
    np.testing.assert_allclose(logits, numpy_char_lstm(params, np.asarray(tokens), 2), rtol=1e-5, atol=1e-5)


def test_step_by_step_equals_scanned_call():
    model = CharLSTM(vocab_size=11, hidden_size=8, num_layers=2, embed_dim=5)
    tokens = jax.random.randint(jax.random.key(2), (2, 6), 0, 11)
    params = model.init(jax.random.key(0), tokens)["params"]
    _, scanned = model.apply({"params": params}, tokens[:, :4])
    carries = model.apply({"params": params}, 2, method=CharLSTM.initial_carries)
    stepped = []
    for t in range(4):
        carries, logits = model.apply({"params": params}, carries, tokens[:, t], method=CharLSTM.step)
        stepped.append(logits)
    np.testing.assert_allclose(jnp.stack(stepped, 1), scanned, rtol=1e-5, atol=1e-5)
    # carrying the state across calls equals one call over the whole sequence
    _, whole = model.apply({"params": params}, tokens)
    carries, first = model.apply({"params": params}, tokens[:, :4])
    _, second = model.apply({"params": params}, tokens[:, 4:], carries)
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, rtol=1e-5, atol=1e-5)


def numpy_next_char_metrics(logits, targets):
    """Mean cross-entropy (nats) and accuracy of ``logits [..., V]`` against ``targets [...]``."""
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
    return nll.mean(), (logits.argmax(-1) == targets).mean()


def test_carried_evaluation_equals_numpy_streams():
    model = CharLSTM(vocab_size=11, hidden_size=8, num_layers=2, embed_dim=5)
    ids = np.asarray(jax.random.randint(jax.random.key(3), (44,), 0, 11))
    params = model.init(jax.random.key(0), jnp.asarray(ids[None, :4]))["params"]
    metrics = evaluate_carried(model, params, jnp.asarray(ids), num_streams=3)
    # 3 streams of (44 - 1) // 3 = 14 targets each, read from zero states to their ends
    inputs = np.stack([ids[14 * s : 14 * s + 14] for s in range(3)])
    targets = np.stack([ids[14 * s + 1 : 14 * s + 15] for s in range(3)])
    loss, accuracy = numpy_next_char_metrics(numpy_char_lstm(params, inputs, 2), targets)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["accuracy"], accuracy)
    np.testing.assert_allclose(metrics["bpc"], loss / np.log(2), rtol=1e-5)
    # windows of T restart from zero states, so they differ from the carried reading of the same text
    windows = evaluate(model, params, *(jnp.asarray(a) for a in sequential_windows(ids[:15], 7)))
    one_stream = evaluate_carried(model, params, jnp.asarray(ids[:15]), num_streams=1)
    whole = evaluate(model, params, *(jnp.asarray(a) for a in sequential_windows(ids[:15], 14)))
    np.testing.assert_allclose(one_stream["loss"], whole["loss"], rtol=1e-6)
    assert abs(float(windows["loss"]) - float(one_stream["loss"])) > 1e-4
    with pytest.raises(ValueError, match="too short"):
        evaluate_carried(model, params, jnp.asarray(ids[:3]), num_streams=3)


# --- training, checkpoints, resume -----------------------------------------------------------------


def test_loss_decreases_on_a_tiny_corpus(trained):
    _, state, rows, _ = trained
    assert int(state.step) == 30 and [r["step"] for r in rows] == [10, 20, 30]
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.3
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]
    for key in ("accuracy", "grad_norm", "param_norm", "chars_per_s", "val_bpc", "val_accuracy"):
        assert np.isfinite(rows[-1][key])
    assert rows[-1]["val_bpc"] == pytest.approx(rows[-1]["val_loss"] / np.log(2), rel=1e-5)


def test_checkpoint_round_trip_gives_identical_logits(trained, corpus, tmp_path):
    config, state, _, _ = trained
    save_checkpoint(tmp_path, state)
    model = make_char_lstm(config.model, corpus.vocab.size)
    template = create_train_state(model, config, jax.random.key(99))
    restored = restore_checkpoint(latest_checkpoint(tmp_path), template)
    assert int(restored.step) == int(state.step)
    tokens = jnp.asarray(corpus.train[:24].reshape(2, 12))
    np.testing.assert_array_equal(
        model.apply({"params": restored.params}, tokens)[1], model.apply({"params": state.params}, tokens)[1]
    )


def test_resume_after_interrupt_equals_uninterrupted(trained, corpus, tmp_path):
    config, uninterrupted, _, _ = trained

    def interrupt(step, row):
        if step == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, corpus, RunDir(tmp_path), callbacks=Callbacks(on_chunk=interrupt))
    assert latest_checkpoint(tmp_path).name == "step_00000020.msgpack"  # saved on Ctrl-C
    with pytest.raises(FileExistsError, match="pass --resume"):
        fit(config, corpus, RunDir(tmp_path))
    resumed, rows = fit(config, corpus, RunDir(tmp_path), resume=True)
    assert [r["step"] for r in rows] == [30]
    assert [r["step"] for r in RunDir(tmp_path).read_metrics()] == [10, 20, 30]
    jax.tree_util.tree_map(np.testing.assert_array_equal, resumed.params, uninterrupted.params)


def test_resume_refuses_a_config_that_trains_differently(trained, corpus, tmp_path):
    config, state, _, path = trained
    shutil.copytree(path, tmp_path / "run")
    changed = quick_config()
    changed.optim.lr = 3e-3
    changed.model.dropout = 0.2
    with pytest.raises(ValueError, match=r"model.dropout 0.0 -> 0.2, optim.lr 0.01 -> 0.003"):
        fit(changed, corpus, RunDir(tmp_path / "run"), resume=True)
    fewer = quick_config()
    fewer.data.train_fraction = 0.5
    with pytest.raises(ValueError, match=r"data.train_fraction 1.0 -> 0.5"):
        fit(fewer, corpus, RunDir(tmp_path / "run"), resume=True)
    relogged = quick_config()
    relogged.train.eval_every = 5  # bookkeeping only: resuming is allowed
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    del saved["data"]["train_fraction"]  # as written before the setting existed: it trained on all of it
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    resumed, rows = fit(relogged, corpus, RunDir(tmp_path / "run"), resume=True)
    assert rows == [] and int(resumed.step) == int(state.step)


def test_a_run_that_fails_at_once_writes_no_file(trained, corpus, tmp_path):
    """A non-finite first chunk names the step, and neither a fresh nor an existing run directory changes."""
    config = quick_config()
    config.optim.lr = float("inf")
    config.optim.clip_norm = 0.0
    with pytest.raises(FloatingPointError, match="at step"):
        fit(config, corpus, RunDir(tmp_path / "fresh"))
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").iterdir())
    shutil.copytree(trained[3], tmp_path / "old")
    before = {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir() if p.is_file()}
    for checkpoint in (tmp_path / "old" / "checkpoints").iterdir():  # as in a fresh clone
        checkpoint.unlink()
    with pytest.raises(ValueError, match="trains differently"):  # another config is refused before training
        fit(config, corpus, RunDir(tmp_path / "old"))
    assert {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir() if p.is_file()} == before


# --- generation -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_lm():
    """A CharLSTM with random weights three times their initial scale (its greedy text varies a lot,
    unlike a briefly trained model's), and four prompts of three characters."""
    model = CharLSTM(vocab_size=11, hidden_size=16, num_layers=2, embed_dim=8)
    prompts = np.asarray(jax.random.randint(jax.random.key(5), (4, 3), 0, 11))
    params = model.init(jax.random.key(0), jnp.asarray(prompts))["params"]
    return model, jax.tree.map(lambda w: 3.0 * w, params), prompts


def test_greedy_generation_equals_a_numpy_argmax_rollout(random_lm):
    model, params, prompts = random_lm
    chars = generate(model, params, jnp.asarray(prompts), 60, jax.random.key(0), temperature=0)
    assert chars.shape == (4, 60)
    expected, gaps = numpy_argmax_rollout(params, prompts, 60, num_layers=2)
    assert gaps.min() > 1e-3  # no near-tie that float32 rounding could break either way
    assert all(len(set(row)) >= 6 for row in expected[:3])  # the text is not one repeated character
    np.testing.assert_array_equal(chars, expected)


def test_cold_temperature_samples_the_argmax_of_a_peaked_distribution(random_lm):
    """A temperature just above the greedy cut-off runs the sampling branch; where every step's top
    logit leads by far more than the temperature, that branch draws the argmax rollout."""
    model, params, prompts = random_lm
    temperature = 1e-2
    assert not is_greedy(temperature) and temperature > GREEDY_BELOW
    peaked = {**params, "head": jax.tree.map(lambda w: 100.0 * w, params["head"])}
    expected, gaps = numpy_argmax_rollout(peaked, prompts, 40, num_layers=2)
    # every other character has probability below exp(-gap / temperature) < exp(-20) per step
    assert gaps.min() / temperature > 20
    for seed in (7, 8):
        chars = generate(model, peaked, jnp.asarray(prompts), 40, jax.random.key(seed), temperature=temperature)
        np.testing.assert_array_equal(chars, expected)


def test_temperature_sampling_is_reproducible(trained, corpus):
    config, state, _, _ = trained
    model = make_char_lstm(config.model, corpus.vocab.size)
    prompts = ["the "] * 4
    a = complete(model, state.params, corpus.vocab, prompts, 40, temperature=1.0, seed=7)
    b = complete(model, state.params, corpus.vocab, prompts, 40, temperature=1.0, seed=7)
    c = complete(model, state.params, corpus.vocab, prompts, 40, temperature=1.0, seed=8)
    assert a == b and a != c
    assert all(text.startswith("the ") and len(text) == 44 for text in a)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_sampling_draws_from_the_tempered_softmax(random_lm, temperature):
    """With the head's kernel zeroed every step's logits are its bias, so the generated characters are
    independent draws from one distribution; their counts pass a chi-square test against
    ``softmax(bias / temperature)`` (fixed key: the test is deterministic)."""
    model, params, _ = random_lm
    bias = np.linspace(-1.0, 1.0, model.vocab_size)
    constant = {**params, "head": {"kernel": jnp.zeros_like(params["head"]["kernel"]), "bias": jnp.asarray(bias, jnp.float32)}}
    batch, length = 64, 250
    chars = generate(model, constant, jnp.zeros((batch, 1), jnp.int32), length, jax.random.key(0), temperature=temperature)
    counts = np.bincount(np.asarray(chars).ravel(), minlength=model.vocab_size)
    tempered = np.exp(bias / temperature)
    expected = batch * length * tempered / tempered.sum()
    assert expected.min() > 5  # the chi-square approximation holds
    chi_square = ((counts - expected) ** 2 / expected).sum()
    assert chi_square < scipy.stats.chi2.ppf(0.999, model.vocab_size - 1), (counts, expected.round())


def test_load_run_for_generation(trained):
    config, state, _, path = trained
    model, params, vocab, step = load_run(path)
    assert step == 30 and vocab.size == len(set(TEXT))
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, state.params)


# --- clear errors -----------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_corpus(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="not found"):
        find_book(str(tmp_path / "nope.txt"))


def test_empty_corpus(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\ufeff\r\n")
    with pytest.raises(ValueError, match="is empty"):
        load_corpus(path, gutenberg=False)


def test_corpus_shorter_than_window():
    with pytest.raises(ValueError, match=r"fewer than seq_len \+ 1 = 31"):
        corpus_from_text("short text", val_fraction=0.0, seq_len=30)


def test_prompt_outside_vocabulary_names_the_characters(trained, corpus):
    config, state, _, _ = trained
    model = make_char_lstm(config.model, corpus.vocab.size)
    with pytest.raises(ValueError, match="not in the vocabulary: 'Q', '!'"):
        complete(model, state.params, corpus.vocab, ["the Q!Q"], 5)


def test_negative_temperature(trained, corpus):
    config, state, _, _ = trained
    model = make_char_lstm(config.model, corpus.vocab.size)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        complete(model, state.params, corpus.vocab, ["the"], 5, temperature=-0.5)


def test_checkpoint_that_does_not_match_the_config(trained):
    _, _, _, path = trained
    other = quick_config()
    other.model.hidden_size = 16
    with pytest.raises(ValueError, match="does not match the config: .* has shape"):
        load_run(path, config=other)


def test_a_sharded_run_follows_the_unsharded_one_and_repeats_exactly(corpus):
    """runner.batch_shards = 2: each step's batch split in two (on two CPU devices), gradients averaged. Without
    dropout it is the unsharded step up to float rounding; run twice it gives the same bits."""
    plain, plain_rows = fit(quick_config(num_steps=20), corpus)
    config = quick_config(num_steps=20)
    config.runner.batch_shards = "2"
    sharded, rows = fit(config, corpus)
    again, _ = fit(config, corpus)
    assert [r["step"] for r in rows] == [r["step"] for r in plain_rows] == [10, 20]
    np.testing.assert_allclose([r["loss"] for r in rows], [r["loss"] for r in plain_rows], rtol=1e-4)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5), sharded.params, plain.params)
    jax.tree_util.tree_map(np.testing.assert_array_equal, again.params, sharded.params)
    assert int(sharded.step) == 20
