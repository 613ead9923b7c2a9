"""The memory frontier: the longest palindrome each model solves (>= 99 %, mean of 3 seeds).

Each entry of ``frontier.variants`` names a model *variant*: a set of config overrides in
``config.variants`` (a model name plus, e.g., its forget bias, input encoding, hidden size or
optimiser), so "LSTM with forget bias 0" and "LSTM with forget bias 1" are two lines of the same
table. Every variant trains its seeds together (one compiled program) at each length of its
``sweep.lengths``, in increasing order, within the fixed budget ``train.num_steps``; once a
length fails, longer ones are skipped (``frontier.stop_after_failure``)::

    python scripts/frontier.py --config=configs/frontier.py --out=results/frontier --table=results/frontier.csv
    python scripts/frontier.py --config=configs/frontier.py:inputs ...    # encodings, sizes, optimisers
    python scripts/frontier.py --config=configs/frontier.py:push ...      # an LSTM at T = 100
    python scripts/frontier.py --config=configs/frontier.py:classic --out=results/classic_checks \\
        --table=results/classic_checks.csv                                 # the other tasks' sanity checks
    python scripts/frontier.py --config=configs/frontier.py:full_raw ...    # palindrome.py:full's five cells, raw
    python scripts/frontier.py --config=configs/frontier.py:full_onehot ... # the same, one-hot input and Adam
    python scripts/frontier.py --out=results/frontier --plot_only           # redraw from results.csv

Override a variant from the command line, e.g. ``--config.variants.lstm_fb1.sweep.lengths=20,40``
or pick some with ``--config.frontier.variants=rnn,gru``. An entry that is not a defined variant but a
model name or a cell's import path (``--config.frontier.variants=lstm_fb1,mycells:MyCell``) runs that
model in the base set-up. Measured results: docs/study.md.

The base set-up is the classic one of ``configs/palindrome.py`` (raw digit input, hidden 128,
batch 128, RMSprop 1e-3, clipping at 10) with a budget of 1000 steps.
"""

import pathlib

import ml_collections

from jaxseq.config import load_config


def _variant(**sections) -> ml_collections.ConfigDict:
    """Overrides as nested sections: ``_variant(model=dict(name="lstm"), sweep=dict(lengths="6"))``."""
    return ml_collections.ConfigDict(sections)


MODEL_VARIANTS = {
    "rnn": _variant(model=dict(name="rnn")),
    "lstm_fb0": _variant(model=dict(name="lstm", forget_bias=0.0)),
    "lstm_fb1": _variant(model=dict(name="lstm", forget_bias=1.0)),
    "gru": _variant(model=dict(name="gru")),
    "peephole_lstm": _variant(model=dict(name="peephole_lstm")),
    "bilstm": _variant(model=dict(name="bilstm")),
}

INPUT_VARIANTS = {  # how encoding, hidden size and optimiser move the frontier (RNN and LSTM)
    "rnn_onehot_adam": _variant(model=dict(name="rnn", encoding="onehot"), optim=dict(name="adam", lr=2e-3)),
    "lstm_onehot": _variant(model=dict(name="lstm", encoding="onehot")),
    "lstm_embed": _variant(model=dict(name="lstm", encoding="embed")),
    "lstm_adam": _variant(model=dict(name="lstm"), optim=dict(name="adam", lr=2e-3)),
    "lstm_h32": _variant(model=dict(name="lstm", hidden_size=32)),
}

def _push(forget_bias: float) -> ml_collections.ConfigDict:
    return _variant(
        model=dict(name="lstm", encoding="onehot", forget_bias=forget_bias, hidden_size=64),
        optim=dict(name="adam", lr=2e-3),
        data=dict(batch_size=64),
        train=dict(num_steps=3000),
        sweep=dict(lengths="100"),
    )


PUSH_VARIANTS = {  # one-hot input, Adam, and a forget gate that starts nearly open: sigmoid(3) = 0.95
    "lstm_push": _push(3.0),
    "lstm_push_fb1": _push(1.0),  # the same with the default forget bias: does the bias matter?
}

CLASSIC_VARIANTS = {  # (model, task, length) sanity checks of the classic reports
    "lstm_random_combination": _variant(
        model=dict(name="lstm"), data=dict(task="random_combination"), sweep=dict(lengths="6")
    ),
    "lstm_random_combination_onehot_adam": _variant(
        model=dict(name="lstm", encoding="onehot"),
        optim=dict(name="adam", lr=2e-3),
        data=dict(task="random_combination"),
        sweep=dict(lengths="6"),
    ),
    "lstm_baum_sweet": _variant(model=dict(name="lstm"), data=dict(task="baum_sweet"), sweep=dict(lengths="6")),
    "lstm_binary_palindrome": _variant(
        model=dict(name="lstm"), data=dict(task="binary_palindrome"), sweep=dict(lengths="10")
    ),
    "gru_palindrome": _variant(model=dict(name="gru"), sweep=dict(lengths="6")),
    "bilstm_palindrome": _variant(model=dict(name="bilstm"), sweep=dict(lengths="5")),
    "peephole_lstm_palindrome": _variant(model=dict(name="peephole_lstm"), sweep=dict(lengths="6")),
}


# the five cells of configs/palindrome.py:full in its two set-ups, run as frontiers (a model stops at
# its first failing length, so the compute goes where the answer is); budget: see get_config
FULL_MODELS = ("rnn", "lstm", "gru", "peephole_lstm", "bilstm")
FULL_RAW_VARIANTS = {f"{name}_raw": _variant(model=dict(name=name)) for name in FULL_MODELS}
FULL_ONEHOT_VARIANTS = {
    f"{name}_onehot_adam": _variant(model=dict(name=name, encoding="onehot"), optim=dict(name="adam", lr=2e-3))
    for name in FULL_MODELS
}

def _long(name: str, **model) -> ml_collections.ConfigDict:
    """One-hot input, Adam 2e-3, hidden 64, batch 64 (the set-up that took an LSTM to T = 100).

    The linear recurrences run step by step (``scan_mode="sequential"``): on the 2-core CPU that
    is 1.5-5x faster than the parallel scan at these sizes (benchmarks/README.md), and both modes
    compute the same function.
    """
    model = dict(name=name, encoding="onehot", hidden_size=64, scan_mode="sequential", **model)
    return _variant(model=model, optim=dict(name="adam", lr=2e-3), data=dict(batch_size=64))


LONG_VARIANTS = {  # the long-memory frontier: classic cells against the linear recurrences
    "lstm_fb1": _long("lstm", forget_bias=1.0),
    "lstm_fb3": _long("lstm", forget_bias=3.0),  # the open forget gate that solved T = 100
    "gru": _long("gru"),
    "mingru_1layer": _long("mingru"),  # gates see x_t only: can one layer find the first digit?
    "mingru": _long("mingru", num_layers=2),
    "minlstm": _long("minlstm", num_layers=2),
    "lru": _long("lru", num_layers=2),
}

GROUPS = {
    None: MODEL_VARIANTS,
    "inputs": INPUT_VARIANTS,
    "push": PUSH_VARIANTS,
    "classic": CLASSIC_VARIANTS,
    "full_raw": FULL_RAW_VARIANTS,
    "full_onehot": FULL_ONEHOT_VARIANTS,
    "long": LONG_VARIANTS,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The frontier config; ``arg`` picks the variant group: None, inputs, push, classic, full_raw,
    full_onehot or quick."""
    # the quick variant starts from palindrome's own quick (tiny) set-up
    config = load_config(str(pathlib.Path(__file__).with_name("palindrome.py")) + (":quick" if arg == "quick" else ""))
    config.unlock()
    config.train.num_steps = 1000
    config.sweep.lengths = "5,10,15,20,30"  # default lengths of every variant (a variant may override them)

    config.frontier = ml_collections.ConfigDict()
    config.frontier.threshold = 0.99  # mean eval accuracy a length must reach
    config.frontier.min_seeds = 3
    config.frontier.stop_after_failure = True

    if arg == "quick":
        config.train.num_steps = 20
        config.frontier.min_seeds = 2
        config.sweep.lengths = "4,5"
        variants = {
            "rnn": MODEL_VARIANTS["rnn"],
            "lstm_fb0": MODEL_VARIANTS["lstm_fb0"],
            "mingru_2layer": _variant(model=dict(name="mingru", num_layers=2)),
            "lru": _variant(model=dict(name="lru", scan_mode="sequential")),
        }
    elif arg in GROUPS:
        variants = GROUPS[arg]
        if arg == "inputs":
            config.sweep.lengths = "20,40"
        if arg == "classic":
            config.train.num_steps = 2000  # seeds stop as soon as they are perfect
        if arg in ("full_raw", "full_onehot"):
            # palindrome.py:full's lengths; 3000 steps, not its 5000, so that each group fits in about
            # 30 minutes on a 2-core CPU (docs/study.md shows the loss curves at each frontier)
            config.train.num_steps = 3000
            config.sweep.lengths = "5,10,15,20,25,30,35,40"
        if arg == "long":
            config.train.num_steps = 1500
            config.sweep.lengths = "50,100,200"  # extended to 500 and 1000 from the command line
    else:
        raise ValueError(f"unknown variant {arg!r} of configs/frontier.py; choose {', '.join(g for g in GROUPS if g)} or quick")
    config.frontier.variants = ",".join(variants)
    # every variant has its own sweep.lengths to override (--config.variants.lstm_fb1.sweep.lengths=20,40);
    # "" trains the lengths of sweep.lengths
    config.variants = ml_collections.ConfigDict(
        {name: {**v.to_dict(), "sweep": {"lengths": "", **v.to_dict().get("sweep", {})}} for name, v in variants.items()}
    )
    return config
