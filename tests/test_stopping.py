"""The early-stopping rules every trainer uses (jaxseq.train.stopping), each against a plain-Python
replay of its definition on hand-made loss and accuracy sequences."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxseq.train import stopping


def run_stopper(stopper, losses, accs):
    state, stops, solved = stopper.init({"w": jnp.zeros(())}), [], []
    update = jax.jit(stopper.update)
    for check, (loss, acc) in enumerate(zip(losses, accs)):
        state, stop = update(state, jnp.float32(loss), jnp.float32(acc), {"w": jnp.float32(check)})
        stops.append(bool(stop))
        solved.append(bool(state.get("solved", False)))
    return state, stops, solved


def test_window_stopper_stops_when_the_loss_rises_above_the_window_mean():
    losses = [5.0, 4.0, 3.0, 2.9, 3.5, 2.0]
    _, stops, _ = run_stopper(stopping.window_stopper(3), losses, [0.0] * 6)
    # check 4 (3.5) > mean(4, 3, 2.9); check 3 (2.9) < mean(5, 4, 3)
    assert stops == [False, False, False, False, True, False]


def test_patience_stopper_restores_params_where_loss_and_accuracy_were_best():
    losses = [3.0, 2.0, 2.5, 1.9, 2.2, 2.3, 2.4]
    accs = [0.1, 0.5, 0.6, 0.4, 0.3, 0.3, 0.3]
    stopper = stopping.patience_stopper(3)
    state, stops, _ = run_stopper(stopper, losses, accs)
    assert stops == [False, False, False, False, False, False, True]  # 3 checks without either improving
    assert float(stopper.final_params(state, None)["w"]) == 1.0  # check 1: both best at once


def windowed_reference(losses, accs, window, stop_accuracy, patience):
    """The windowed rule in plain Python: (stop, solved) after every check."""
    out, best, since = [], np.inf, 0
    for n in range(1, len(losses) + 1):
        recent_acc = accs[max(0, n - window):n] + [0.0] * max(0, window - n)
        recent_loss = losses[max(0, n - window):n] + [np.inf] * max(0, window - n)
        window_loss = np.mean(recent_loss)
        since = 0 if window_loss < best else since + 1
        best = min(best, window_loss)
        full = n >= window
        solved = full and np.mean(recent_acc) >= stop_accuracy
        plateau = full and patience > 0 and since >= patience
        out.append((solved or plateau, solved))
    return out


def test_windowed_stopper_matches_its_definition():
    rng = np.random.default_rng(0)
    losses = list(np.round(2.0 - np.cumsum(rng.uniform(-0.2, 0.3, 40)) / 10, 3))
    accs = list(np.round(np.minimum(1.0, np.linspace(0.2, 1.05, 40)), 3))
    # thresholds no mean of 3-decimal accuracies equals, so float32 and float64 agree on every comparison
    for window, stop_accuracy, patience in [(4, 0.90011, 0), (4, 1.1, 3), (1, 0.50011, 0), (6, 0.95011, 5)]:
        expected = windowed_reference(losses, accs, window, stop_accuracy, patience)
        _, stops, solved = run_stopper(stopping.windowed_stopper(window, stop_accuracy, patience), losses, accs)
        assert list(zip(stops, solved)) == expected, (window, stop_accuracy, patience)
    # the rule fires: the accuracy reaches 0.9 within the sequence, and the loss plateaus when it never does
    assert any(s for s, _ in windowed_reference(losses, accs, 4, 0.90011, 0))
    assert not any(s for s, _ in windowed_reference(losses, accs, 4, 1.1, 0))
