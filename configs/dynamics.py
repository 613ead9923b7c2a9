"""Lyapunov spectra of recurrent cells at initialisation and after training, beside their frontiers.

The set-up of the gradient-norm study (``configs/grad_norms.py``: the classic palindrome task with
raw digit input, hidden 128, batch 128, RMSprop 1e-3, clipping at 10, T = 30 input steps; each
cell's seeds train together for ``train.num_steps`` = 500 steps with early stopping off). Before
and after training, the top ``dynamics.k`` Lyapunov exponents of each cell's whole carry are
measured along ``dynamics.batch_size`` fresh digit sequences of ``dynamics.steps`` steps, the
first ``dynamics.warmup`` not counted (:func:`jaxseq.analysis.lyapunov.lyapunov_spectrum`)::

    python scripts/dynamics.py --config=configs/dynamics.py --out=results/dynamics
    python scripts/dynamics.py --out=results/dynamics --plot_only   # redraw from the CSV

Expected (measured in docs/study.md, "Lyapunov spectra"): at initialisation every exponent is
negative, the LRU's top exponents sit closest to 0, then the chrono-initialised LSTM's, and the
vanilla RNN's furthest below.

An entry of ``dynamics.cells`` is a label of ``config.variants`` (overrides of the ``model``
section, e.g. ``--config.variants.lstm_fb1.model.forget_bias=3.0``), a model name, or a cell's import path ``package.module:Class`` (run in the base set-up).
A cell with constructor fields of its own is one more variant, e.g. in this file
``_model(name="lstm", cell_kwargs="field=value,...")``, or from the command line with a cell of
yours: ``--config.dynamics.cells=rnn,mycells:MyCell --config.model.cell_kwargs=scale=0.5``.

Variants: ``quick`` (tiny, for tests).
"""

import pathlib

import ml_collections

from jaxseq.config import load_config


def _model(**fields) -> ml_collections.ConfigDict:
    """A variant: overrides of the ``model`` section, nested as ``variants.<label>.model.<field>``."""
    return ml_collections.ConfigDict(dict(model=fields))


VARIANTS = {
    "rnn": _model(name="rnn"),
    "lstm_fb1": _model(name="lstm", forget_bias=1.0),  # a constant forget-gate bias of 1
    # chrono initialisation (Tallec & Ollivier 2018): b_f = log u, b_i = -log u, u ~ U(1, T_max - 1),
    # T_max the task's 30 input steps
    "lstm_chrono": _model(name="lstm", gate_init="chrono"),
    "gru": _model(name="gru"),
    "lru": _model(name="lru"),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The Lyapunov-spectrum study config; ``arg`` is None or ``"quick"``."""
    # the quick variant starts from the gradient-norm study's own quick (tiny) set-up
    config = load_config(str(pathlib.Path(__file__).with_name("grad_norms.py")) + (":quick" if arg == "quick" else ""))
    config.unlock()
    del config.probe  # the gradient-norm probe; this study measures spectra instead

    config.dynamics = ml_collections.ConfigDict()
    config.dynamics.cells = ",".join(VARIANTS)  # labels of config.variants, model names or import paths
    config.dynamics.k = 64  # exponents per cell, the largest (0: all, one per real coordinate of the carry)
    config.dynamics.top = 8  # the table's "mean of the top exponents" averages this many
    config.dynamics.batch_size = 16  # sequences; each is its own trajectory, their spectra averaged
    config.dynamics.steps = 120  # input steps per sequence (digits of a palindrome of steps + 1)
    config.dynamics.warmup = 20  # steps run first and not counted
    config.dynamics.reortho_every = 1  # steps between two orthonormalisations of the tangent vectors
    config.dynamics.seed = 1234  # key of the probe sequences (the same for every cell, stage and seed)
    # committed frontier tables (scripts/frontier.py) whose rows of the same model (and forget bias)
    # give the "longest T solved" column; a missing file is skipped
    config.dynamics.frontier_tables = "results/frontier*.csv"
    config.variants = ml_collections.ConfigDict({name: v.to_dict() for name, v in VARIANTS.items()})

    if arg == "quick":
        config.model.hidden_size = 4
        config.data.update(dict(batch_size=8, eval_batch_size=16))
        config.train.update(dict(num_steps=4, chunk_steps=4))
        config.dynamics.update(dict(cells="rnn", k=0, top=2, batch_size=2, steps=12, warmup=4))
    elif arg is not None:
        raise ValueError(f"unknown variant {arg!r} of configs/dynamics.py; choose quick")
    return config
