"""When to do periodic things (log, evaluate, checkpoint, sample)."""


def is_time(step: int, every: int, total: int) -> bool:
    """True when a periodic action is due after completing ``step`` (1-based) of ``total``.

    Due every ``every`` steps and always on the last step, so a run never ends with its last
    log or checkpoint skipped. ``every <= 0`` means only on the last step.
    """
    if step == total:
        return True
    return every > 0 and step % every == 0
