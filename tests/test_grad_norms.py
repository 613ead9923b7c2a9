"""Per-time-step gradient norms and backpropagation through time, against independent references.

- ``hidden_grad_norms`` equals central finite differences of the loss in the hidden states;
- the classifier head's gradient equals the analytic ``h_T^T (softmax - onehot(y)) / B``;
- the vanilla RNN's ``dL/dW_hh`` equals a hand-written NumPy BPTT, and ``hidden_grad_norms`` the norms
  of that BPTT's ``dl_b/dh_t``.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxseq.analysis.grad_norms import hidden_grad_norms, hidden_size_of
from jaxseq.models.registry import MODELS, make_classifier

VOCAB, CLASSES, BATCH, TIME, HIDDEN = 10, 10, 2, 5, 3


def tiny_model(name: str, hidden: int = HIDDEN):
    cfg = ml_collections.ConfigDict(dict(name=name, hidden_size=hidden, encoding="onehot"))
    model = make_classifier(cfg, VOCAB, CLASSES)
    key_params, key_tokens, key_labels = jax.random.split(jax.random.key(7), 3)
    tokens = jax.random.randint(key_tokens, (BATCH, TIME), 0, VOCAB)
    labels = jax.random.randint(key_labels, (BATCH,), 0, CLASSES)
    params = model.init(key_params, tokens)["params"]
    # larger-than-init weights, so that gradients are far from zero at every step
    params = jax.tree.map(lambda p: 2.0 * p + 0.3 * jax.random.normal(jax.random.key(p.size), p.shape), params)
    return model, params, tokens, labels


@pytest.mark.parametrize("name", sorted(MODELS))
def test_norms_equal_finite_differences(name):
    model, params, tokens, labels = tiny_model(name)
    norms = hidden_grad_norms(model, params, tokens, labels, per_example=True)
    assert norms.shape == (BATCH, TIME)

    shape = (BATCH, TIME, hidden_size_of(model))

    def summed_loss(perturbations):
        logits = model.apply({"params": params}, tokens, perturbations=perturbations)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).sum()

    eps = 1e-2
    basis = jnp.eye(int(np.prod(shape))).reshape((-1,) + shape)
    central = jax.jit(jax.vmap(lambda e: (summed_loss(eps * e) - summed_loss(-eps * e)) / (2 * eps)))
    grads = np.asarray(central(basis)).reshape(shape)
    np.testing.assert_allclose(norms, np.linalg.norm(grads, axis=-1), rtol=2e-2, atol=1e-3)


def test_batch_mean_and_bad_shapes():
    model, params, tokens, labels = tiny_model("rnn")
    per_example = hidden_grad_norms(model, params, tokens, labels, per_example=True)
    np.testing.assert_allclose(hidden_grad_norms(model, params, tokens, labels), per_example.mean(axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="tokens"):
        hidden_grad_norms(model, params, tokens[0], labels)


def numpy_rnn(params, tokens):
    """Forward pass of the one-hot vanilla RNN classifier: hidden states ``[T + 1, B, H]`` (h_0 = 0), logits."""
    cell = jax.tree.map(np.asarray, params["cell"])
    w_x, b, w_hh = cell["input_proj"]["kernel"], cell["input_proj"]["bias"], cell["hidden_proj"]["kernel"]
    x = np.eye(VOCAB)[np.asarray(tokens)]
    hs = [np.zeros((tokens.shape[0], w_hh.shape[0]))]
    for t in range(tokens.shape[1]):
        hs.append(np.tanh(x[:, t] @ w_x + b + hs[-1] @ w_hh))
    logits = hs[-1] @ np.asarray(params["head"]["kernel"]) + np.asarray(params["head"]["bias"])
    return np.stack(hs), logits


def softmax_minus_onehot(logits, labels):
    """``dL/dlogits`` of the batch-mean cross-entropy: ``(softmax - onehot(y)) / B``."""
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return (p - np.eye(logits.shape[-1])[np.asarray(labels)]) / logits.shape[0]


def mean_loss_grads(model, params, tokens, labels):
    def loss_fn(p):
        logits = model.apply({"params": p}, tokens)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    return jax.grad(loss_fn)(params)


def test_head_gradient_is_analytic():
    model, params, tokens, labels = tiny_model("rnn", hidden=4)
    hs, logits = numpy_rnn(params, tokens)
    np.testing.assert_allclose(model.apply({"params": params}, tokens), logits, rtol=1e-5, atol=1e-5)
    d_logits = softmax_minus_onehot(logits, labels)
    grads = mean_loss_grads(model, params, tokens, labels)
    # row-vector convention, W_ph: [H, C]: dL/dW_ph = h_T^T (softmax - onehot(y)) / B
    np.testing.assert_allclose(grads["head"]["kernel"], hs[-1].T @ d_logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["head"]["bias"], d_logits.sum(axis=0), rtol=1e-5, atol=1e-6)


def test_rnn_recurrent_gradient_equals_numpy_bptt():
    model, params, tokens, labels = tiny_model("rnn", hidden=4)
    hs, logits = numpy_rnn(params, tokens)
    w_hh = np.asarray(params["cell"]["hidden_proj"]["kernel"])
    d_h = softmax_minus_onehot(logits, labels) @ np.asarray(params["head"]["kernel"]).T  # dL/dh_T
    d_w_hh = np.zeros_like(w_hh)
    for t in range(tokens.shape[1], 0, -1):
        d_pre = d_h * (1.0 - hs[t] ** 2)  # through tanh
        d_w_hh += hs[t - 1].T @ d_pre
        d_h = d_pre @ w_hh.T  # dL/dh_{t-1}
    grads = mean_loss_grads(model, params, tokens, labels)
    np.testing.assert_allclose(grads["cell"]["hidden_proj"]["kernel"], d_w_hh, rtol=1e-4, atol=1e-6)


def test_rnn_hidden_grad_norms_equal_numpy_bptt():
    """``hidden_grad_norms`` against ``||d l_b / d h_t||`` from the hand-written backward recursion
    (each example's own loss: the batch-mean gradient times ``B``)."""
    model, params, tokens, labels = tiny_model("rnn", hidden=4)
    hs, logits = numpy_rnn(params, tokens)
    w_hh = np.asarray(params["cell"]["hidden_proj"]["kernel"])
    d_h = BATCH * softmax_minus_onehot(logits, labels) @ np.asarray(params["head"]["kernel"]).T  # dl_b/dh_T
    expected = np.zeros((BATCH, TIME))
    for t in range(TIME, 0, -1):
        expected[:, t - 1] = np.linalg.norm(d_h, axis=-1)  # index t - 1: the state after input t - 1
        d_h = (d_h * (1.0 - hs[t] ** 2)) @ w_hh.T  # dl_b/dh_{t-1}
    norms = hidden_grad_norms(model, params, tokens, labels, per_example=True)
    np.testing.assert_allclose(norms, expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(hidden_grad_norms(model, params, tokens, labels), expected.mean(axis=0), rtol=1e-4, atol=1e-7)
    assert not np.allclose(expected, expected[:, ::-1], rtol=1e-2)  # reading time backwards would not pass
