"""Early stopping inside the compiled program: one protocol, the rules of every jaxseq experiment.

A rule is a :class:`Stopper`, three pure functions a trainer calls once per check (a training step
of a sequence task, an epoch of a graph task), per seed, inside ``jit`` and ``vmap``:

- ``init(params) -> state``: the rule's state (a pytree) before the first check;
- ``update(state, loss, accuracy, params) -> (state, stop)``: one check's loss and accuracy (the
  training step's for sequences, the validation set's for graphs) and the parameters that earned
  them; ``stop`` (a bool scalar) says the run should stop here;
- ``final_params(state, params) -> params``: the parameters the run keeps.

The trainer masks the updates of a seed once it has stopped, so the other seeds of a vmapped
program train on. Rules (:data:`STOPPERS` by name for the graph configs' ``train.early_stopping``):

- :func:`windowed_stopper` (sequence tasks): stop once the mean accuracy of the last ``window``
  checks reaches ``stop_accuracy`` (the state's ``solved`` says so), or once the mean loss of the
  last ``window`` has not improved for ``patience`` checks (0: never);
- :func:`window_stopper` (Kipf & Welling): stop after the first check whose loss is above the mean
  of the previous ``window`` losses; keep the last parameters;
- :func:`patience_stopper` (Veličković et al.): stop after ``patience`` checks in which neither the
  loss nor the accuracy matched its best; keep the parameters of the last check at which both were
  at their best.
"""

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

Params = Any


class Stopper(NamedTuple):
    """A stopping rule as three pure functions (see the module docstring)."""

    init: Callable[[Params], Any]
    update: Callable[[Any, jax.Array, jax.Array, Params], tuple[Any, jax.Array]]
    final_params: Callable[[Any, Params], Params]


def keep_last(state: Any, params: Params) -> Params:
    """``final_params`` of the rules that keep the last parameters."""
    return params


def windowed_stopper(window: int, stop_accuracy: float, patience: int) -> Stopper:
    """The sequence tasks' rule: the windowed accuracy reaches ``stop_accuracy`` (> 1: never), or
    the windowed loss has not improved for ``patience`` checks (0: never). Neither fires before
    ``window`` checks. The state: ring buffers ``recent_acc``, ``recent_loss`` ``[window]``,
    ``seen`` (checks so far), ``best_loss`` (best windowed loss), ``since_best`` and ``solved``
    (this check reached the accuracy)."""

    def init(params):
        return {
            "recent_acc": jnp.zeros(window),
            "recent_loss": jnp.full(window, jnp.inf),
            "seen": jnp.int32(0),
            "best_loss": jnp.float32(jnp.inf),
            "since_best": jnp.int32(0),
            "solved": jnp.bool_(False),
        }

    def update(state, loss, accuracy, params):
        seen = state["seen"] + 1
        slot = (seen - 1) % window
        recent_acc = state["recent_acc"].at[slot].set(accuracy)
        recent_loss = state["recent_loss"].at[slot].set(loss)
        full_window = seen >= window
        solved = full_window & (recent_acc.mean() >= stop_accuracy)
        window_loss = recent_loss.mean()
        improved = window_loss < state["best_loss"]
        since_best = jnp.where(improved, 0, state["since_best"] + 1)
        plateau = full_window & (patience > 0) & (since_best >= patience)
        new = {
            "recent_acc": recent_acc,
            "recent_loss": recent_loss,
            "seen": seen,
            "best_loss": jnp.where(improved, window_loss, state["best_loss"]),
            "since_best": since_best,
            "solved": solved,
        }
        return new, solved | plateau

    return Stopper(init, update, keep_last)


def window_stopper(window: int) -> Stopper:
    """Kipf & Welling: stop when the loss exceeds the mean of the previous ``window``."""

    def init(params):
        return {"history": jnp.zeros(window), "seen": jnp.zeros((), jnp.int32)}

    def update(state, loss, accuracy, params):
        stop = (state["seen"] >= window) & (loss > state["history"].mean())
        history = jnp.roll(state["history"], -1).at[-1].set(loss)
        return {"history": history, "seen": state["seen"] + 1}, stop

    return Stopper(init, update, keep_last)


def patience_stopper(patience: int) -> Stopper:
    """Veličković et al.: patience on loss and accuracy, restoring the best parameters."""

    def init(params):
        return {"best_loss": jnp.inf, "best_acc": jnp.zeros(()), "wait": jnp.zeros((), jnp.int32), "params": params}

    def update(state, loss, accuracy, params):
        loss_ok, acc_ok = loss <= state["best_loss"], accuracy >= state["best_acc"]
        both = loss_ok & acc_ok
        new = {
            "best_loss": jnp.minimum(loss, state["best_loss"]),
            "best_acc": jnp.maximum(accuracy, state["best_acc"]),
            "wait": jnp.where(loss_ok | acc_ok, 0, state["wait"] + 1),
            "params": jax.tree.map(lambda p, b: jnp.where(both, p, b), params, state["params"]),
        }
        return new, new["wait"] >= patience

    return Stopper(init, update, lambda state, params: state["params"])


# the graph configs' train.early_stopping -> the rule, given train.patience
STOPPERS: dict[str, Callable[[int], Stopper]] = {"window": window_stopper, "patience": patience_stopper}
