"""Vanishing gradients: ||dL/dh_t|| vs time step t for the vanilla RNN and the LSTM.

The classic palindrome set-up of ``configs/palindrome.py`` (raw digit input, hidden 128, batch
128, RMSprop 1e-3, clipping at 10) at length 31, i.e. 30 input steps. Each model's seeds train
together (one compiled program) for ``train.num_steps`` steps with early stopping switched off;
the per-step gradient norms are measured on one fresh batch at initialisation and at the end::

    python scripts/grad_norms.py --config=configs/grad_norms.py --out=results/grad_norms
    python scripts/grad_norms.py --out=results/grad_norms --plot_only   # redraw from the CSV

Expected (measured in docs/study.md): at initialisation the RNN's norm falls by orders of
magnitude from the last input step (t = 30) back to t = 1, the LSTM's (forget bias 1) far less.

Variants: ``quick`` (tiny, for tests); ``modern``: the same probe for the linear recurrences
(minGRU, minLSTM, LRU: one layer each) beside the vanilla RNN and the LSTM::

    python scripts/grad_norms.py --config=configs/grad_norms.py:modern --out=results/grad_norms_modern
"""

import pathlib

import ml_collections

from jaxseq.config import load_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The gradient-norm study config; ``arg`` is None, ``"quick"`` or ``"modern"``."""
    # the quick variant starts from palindrome's own quick (tiny) set-up
    config = load_config(str(pathlib.Path(__file__).with_name("palindrome.py")) + (":quick" if arg == "quick" else ""))
    config.unlock()
    config.data.length = 31
    config.train.num_steps = 500  # N: the "after training" probe is taken after this many steps
    config.train.stop_accuracy = 1.1  # never stop early: every seed trains exactly N steps

    del config.sweep  # palindrome's sweep lists: this study probes the models of probe.models instead
    config.probe = ml_collections.ConfigDict()
    config.probe.models = "rnn,lstm"  # names from jaxseq.models.registry.MODELS, or cells as package.module:Class
    config.probe.batch_size = 512  # sequences in the probe batch (the same for every seed)
    config.probe.seed = 1234  # key of the probe batch

    if arg == "quick":
        config.data.length = 8
        config.train.num_steps = 20
        config.probe.batch_size = 16
    elif arg == "modern":
        config.probe.models = "rnn,lstm,mingru,minlstm,lru"
    elif arg is not None:
        raise ValueError(f"unknown variant {arg!r} of configs/grad_norms.py; choose quick or modern")
    return config
