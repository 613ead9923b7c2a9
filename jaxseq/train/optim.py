"""Optimisers, learning-rate schedules and gradient clipping, all through optax."""

from typing import Callable

import ml_collections
import optax

from jaxseq.lookup import lookup


def _sgd(lr, cfg):
    return optax.sgd(lr)


def _momentum(lr, cfg):
    return optax.sgd(lr, momentum=cfg.get("momentum", 0.9), nesterov=cfg.get("nesterov", False))


def _rmsprop(lr, cfg):
    return optax.rmsprop(lr, decay=cfg.get("decay", 0.9), eps=cfg.get("eps", 1e-8))


def _adam(lr, cfg):
    return optax.adam(lr, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999), eps=cfg.get("eps", 1e-8))


def _adamw(lr, cfg):
    return optax.adamw(lr, weight_decay=cfg.get("weight_decay", 1e-4))


OPTIMIZERS: dict[str, Callable] = {
    "sgd": _sgd,
    "momentum": _momentum,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamw": _adamw,
}


def _constant(cfg, total_steps):
    return optax.constant_schedule(cfg.lr)


def _cosine(cfg, total_steps):
    return optax.cosine_decay_schedule(cfg.lr, max(total_steps, 1), alpha=cfg.get("final_lr_fraction", 0.0))


def _warmup_cosine(cfg, total_steps):
    warmup = cfg.get("warmup_steps", max(total_steps // 20, 1))
    return optax.warmup_cosine_decay_schedule(
        0.0, cfg.lr, warmup, max(total_steps, warmup + 1), end_value=cfg.lr * cfg.get("final_lr_fraction", 0.0)
    )


def _exponential(cfg, total_steps):
    return optax.exponential_decay(
        cfg.lr, transition_steps=cfg.get("decay_steps", max(total_steps // 10, 1)), decay_rate=cfg.get("decay_rate", 0.5)
    )


SCHEDULES: dict[str, Callable] = {
    "constant": _constant,
    "cosine": _cosine,
    "warmup_cosine": _warmup_cosine,
    "exponential": _exponential,
}


def make_schedule(optim_cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
    """Learning-rate schedule ``step -> lr`` named by ``optim_cfg.schedule`` (default constant)."""
    return lookup(SCHEDULES, optim_cfg.get("schedule", "constant"), "schedule")(optim_cfg, total_steps)


def make_optimizer(optim_cfg: ml_collections.ConfigDict, total_steps: int = 1) -> optax.GradientTransformation:
    """Build the optax transformation an ``optim`` config section describes.

    Args:
      optim_cfg: needs ``name`` (one of :data:`OPTIMIZERS`) and ``lr``; optional ``schedule``
        (one of :data:`SCHEDULES`), ``clip_norm`` (global-norm clipping, <= 0 or None disables),
        and the optimiser's own fields (``momentum``, ``b1``, ...).
      total_steps: run length, used by decaying schedules.
    Returns:
      ``optax.chain(clip_by_global_norm, optimiser)``.
    Raises:
      ValueError: unknown optimiser or schedule name, or a non-positive learning rate.
    """
    make = lookup(OPTIMIZERS, optim_cfg.name, "optimizer")
    if not optim_cfg.lr > 0:
        raise ValueError(f"optim.lr must be > 0, got {optim_cfg.lr}")
    transforms = []
    clip = optim_cfg.get("clip_norm", None)
    if clip is not None and clip > 0:
        transforms.append(optax.clip_by_global_norm(clip))
    transforms.append(make(make_schedule(optim_cfg, total_steps), optim_cfg))
    return optax.chain(*transforms)
