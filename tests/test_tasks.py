"""Tasks that answer at several steps: masked losses, models that answer after every step."""

import jax
import numpy as np
import pytest

from jaxseq.analysis.grad_norms import hidden_grad_norms
from jaxseq.config import load_config
from jaxseq.data.sequences import Batch, Task
from jaxseq.models.cells import GRUCell, RNNCell
from jaxseq.models.sequence import BidirectionalClassifier, SequenceClassifier, StackedClassifier
from jaxseq.train.losses import example_losses, task_loss
from jaxseq.train.sequence_trainer import make_train
from jaxseq.train.sweep import setting_config

KEY = jax.random.key(7)


def numpy_cross_entropy(logits, targets):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, np.asarray(targets)[..., None], axis=-1)[..., 0]


def test_losses_are_means_over_the_masked_steps():
    k1, k2, k3, k4 = jax.random.split(KEY, 4)
    logits = np.asarray(jax.random.normal(k1, (5, 6, 4)))
    targets = np.asarray(jax.random.randint(k2, (5, 6), 0, 4))
    m = np.asarray(jax.random.bernoulli(k3, 0.4, (5, 6))) | (np.arange(6) == 0)
    values = np.asarray(jax.random.uniform(k4, (5, 6)))
    outputs = values[..., None] + np.where(np.arange(6) % 2 == 0, 0.01, 0.5)[None, :, None]
    steps = Task(None, lambda t: 4, lambda t: 4, last_step_only=False)
    last = Task(None, lambda t: 4, lambda t: 4)
    regression = Task(None, lambda t: 2, lambda t: 1, last_step_only=False, regression=True, tolerance=0.1)

    @jax.jit
    def scores(logits, targets, mask, outputs, values):
        return (
            task_loss(steps, logits, Batch(None, targets, mask)),
            example_losses(logits, targets, mask),
            task_loss(last, logits[:, -1], Batch(None, targets, mask)),  # one answer: the last step's
            task_loss(regression, outputs, Batch(None, values, mask)),
        )

    (loss, accuracy), per_example, (last_loss, _), (mse, within) = scores(logits, targets, m, outputs, values)
    ce = numpy_cross_entropy(logits, targets)
    np.testing.assert_allclose(loss, ce[m].mean(), rtol=1e-5)
    np.testing.assert_allclose(accuracy, (np.argmax(logits, -1) == targets)[m].mean(), rtol=1e-6)
    np.testing.assert_allclose(per_example, [ce[b][m[b]].mean() for b in range(5)], rtol=1e-5)
    np.testing.assert_allclose(last_loss, ce[:, -1].mean(), rtol=1e-5)
    error = outputs[..., 0] - values  # regression: squared error, correct within the tolerance
    np.testing.assert_allclose(mse, (error**2)[m].mean(), rtol=1e-5)
    np.testing.assert_allclose(within, (np.abs(error) < 0.1)[m].mean(), rtol=1e-6)


def test_a_model_answering_every_step_reads_out_each_state_through_the_same_head():
    tokens = jax.random.randint(KEY, (3, 5), 0, 4)
    kw = dict(num_classes=3, vocab_size=4)
    last, every = SequenceClassifier(cell=RNNCell(8), **kw), SequenceClassifier(cell=RNNCell(8), every_step=True, **kw)
    params = last.init(KEY, tokens)
    # step t's answer is the last-step model's answer on the sequence cut after step t
    out, cut = jax.jit(lambda p: (every.apply(p, tokens), last.apply(p, tokens[:, :3])))(params)
    assert out.shape == (3, 5, 3)
    np.testing.assert_allclose(out[:, 2], cut, rtol=1e-5, atol=1e-6)
    # the other models answer every step with the parameters of their last-step form
    others = {
        "bidirectional": dict(forward_cell=GRUCell(8), backward_cell=GRUCell(8)),
        "stacked": dict(cells=(GRUCell(8), GRUCell(8))),
    }
    for cls, fields in zip((BidirectionalClassifier, StackedClassifier), others.values()):
        shapes = jax.eval_shape(cls(**fields, **kw).init, KEY, tokens)
        model = cls(**fields, **kw, every_step=True)
        assert jax.tree.structure(shapes) == jax.tree.structure(jax.eval_shape(model.init, KEY, tokens))
        assert jax.eval_shape(model.apply, shapes, tokens).shape == (3, 5, 3)


TINY = {
    "model.name": "rnn", "model.hidden_size": 8, "data.length": 6, "data.batch_size": 8, "data.eval_batch_size": 8,
    "train.num_steps": 2, "train.chunk_steps": 2, "data.copy.num_tokens": 3, "data.selective_copy.num_tokens": 3,
    "data.associative_recall.num_pairs": 3, "data.associative_recall.num_queries": 2,
}


@pytest.mark.parametrize("task", ["copy", "selective_copy", "associative_recall", "adding"])
def test_every_memory_task_trains_from_the_config(task):
    """The whole run of each task traces (shapes and wiring); associative recall also takes a
    training step, and the gradient-norm probe differentiates its masked loss: nothing flows back
    from after a sequence's last query."""
    trainer = make_train(setting_config(load_config("configs/palindrome.py:quick"), **TINY, **{"data.task": task}))
    shapes = jax.eval_shape(trainer.train, KEY)[1]
    assert shapes["loss"].shape == (2,) and shapes["eval_accuracy"].shape == ()
    if task != "associative_recall":
        return

    @jax.jit
    def step_and_probe(key):
        batch = trainer.get_batch(jax.random.key(1), 4)
        state, metrics = trainer.train_step(trainer.init(key).train_state, batch, key)
        norms = hidden_grad_norms(trainer.model, state.params, batch.inputs, batch.targets, True, mask=batch.mask)
        return metrics, norms, batch.mask

    metrics, norms, mask = step_and_probe(KEY)
    assert np.isfinite(metrics["loss"]) and 0 <= metrics["accuracy"] <= 1
    last_query = mask.shape[1] - 1 - np.argmax(np.asarray(mask)[:, ::-1], axis=1)
    for b, t in enumerate(last_query):
        assert norms[b, t] > 0 and np.all(norms[b, t + 1 :] == 0)
