"""SGD, momentum, RMSprop and Adam: on the palindrome task and in a 2-D ill-conditioned ravine.

Palindromes: the classic set-up of ``configs/palindrome.py`` (LSTM, raw digit input, hidden 128,
batch 128, clipping at 10) at length 10; each optimiser trains its seeds in one compiled
run with early stopping off, so every curve covers the whole budget. The learning rates
are one reasonable value per optimiser (``compare.lr``), not tuned. The ravine runs the same four
optax optimisers on ``(w_0^2 + kappa w_1^2) / 2`` (``jaxseq/analysis/ravine.py``)::

    python scripts/compare_optimizers.py --config=configs/optimizers.py --out=results/optimizers
    python scripts/compare_optimizers.py --out=results/optimizers --plot_only

Measured results are in docs/study.md. Variants: ``quick`` (tiny, for tests).
"""

import pathlib

import ml_collections

from jaxseq.config import load_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The optimiser comparison config; ``arg`` is None or ``"quick"``."""
    # the quick variant starts from palindrome's own quick (tiny) set-up
    config = load_config(str(pathlib.Path(__file__).with_name("palindrome.py")) + (":quick" if arg == "quick" else ""))
    config.unlock()
    config.model.name = "lstm"
    config.data.length = 10
    config.train.num_steps = 1000
    config.train.stop_accuracy = 1.1  # no early stopping: every curve spans the budget

    del config.sweep  # palindrome's sweep lists: this study trains the optimisers of compare.optimizers instead
    config.compare = ml_collections.ConfigDict()
    config.compare.optimizers = "sgd,momentum,rmsprop,adam"
    # palindrome learning rates, one per optimiser (momentum uses optim.momentum = 0.9)
    config.compare.lr = ml_collections.ConfigDict(dict(sgd=0.1, momentum=0.02, rmsprop=1e-3, adam=1e-3))

    config.ravine = ml_collections.ConfigDict()
    config.ravine.condition = 25.0  # kappa: curvature across / along the ravine
    config.ravine.start = (-4.5, 1.0)
    config.ravine.num_steps = 50
    # SGD is unstable across the ravine above 2 / kappa = 0.08
    config.ravine.lr = ml_collections.ConfigDict(dict(sgd=0.075, momentum=0.02, rmsprop=0.1, adam=0.3))

    if arg == "quick":
        config.data.length = 5
        config.train.num_steps = 20
        config.ravine.num_steps = 10
    elif arg is not None:
        raise ValueError(f"unknown variant {arg!r} of configs/optimizers.py; choose quick")
    return config
