"""The memory atlas: how far every cell remembers on every task, and how many steps it takes.

Every (cell, task) pair trains ``train.num_seeds`` seeds together at ``T = atlas.min_length``,
twice that, ... up to ``atlas.max_length``, and stops at the first length no seed solves (accuracy
>= ``atlas.threshold`` on a fresh batch), after training the length halfway between it and the
last one solved (jaxseq/analysis/atlas.py)::

    python scripts/atlas.py --config=configs/atlas.py --out=results/atlas      # resumes where it stopped
    python scripts/atlas.py --config=configs/atlas.py --out=results/atlas \\
        --config.cells=lstm_chrono,lru --config.tasks=copy,decimal_palindrome --config.atlas.max_length=1024
    python scripts/atlas.py --config.cells=mycells:MyCell                     # your cell, drawn beside results/atlas
    python scripts/atlas.py --config=configs/atlas.py:quick                    # seconds: two cells, two tasks

``cells`` names entries of ``variants`` below (a cell with its set-up), model names or cells'
import paths (``package.module:ClassName``, run in the base set-up). ``tasks`` names tasks of
jaxseq/data/sequences.py, with their parameters under ``data.<task>`` (the library's defaults:
copy 10 symbols of 8, as in Arjovsky et al. 2016 and expRNN; associative recall 8 pairs).

The budget. Published cells copy at T = 1,000-2,000 with batch 128 and up to 4,000+ steps at
width 128 or more. On this project's 2-core CPU a step of 3 seeds in this set-up costs, on copy
at T = 64 and 256 (benchmarks/bench_atlas_cost.py, 2026-12-07, nothing else running; table in
benchmarks/README.md): RNN 23 and 89 ms, LSTM 68 and 231, chrono LSTM 71 and 237, GRU 81 and 310,
chrono GRU 84 and 308, minGRU (two layers) 84 and 315, LRU (two layers) 229 and 981. A setting no
seed solves costs ``num_steps x`` that: at T = 256, 8 minutes for the LSTM, 33 for the LRU. The
budget here, 2,000 steps of batch 64 at width 64 with Adam 2e-3 (a quarter of the published
samples at half their width), keeps a failing setting at T <= 256 within that; a solved setting
stops as soon as a seed's windowed accuracy reaches the criterion, so what the whole atlas costs
depends on where each pair fails. Its page (docs/atlas.md) gives the wall time the published rows
took (the sum of ``wall_time_s``), what was not run, and the cost per step it measured in each
row (``step_ms``). Longer budgets are one field away (``train.num_steps``).
"""

import ml_collections

from jaxseq.config import load_config
import pathlib

# cell name -> its model overrides (the linear recurrences stacked two deep and stepped one time
# step at a time: faster than the parallel scan on this CPU at these sizes, same function)
CELLS = {
    "rnn": dict(name="rnn"),
    "lstm": dict(name="lstm"),
    "lstm_chrono": dict(name="lstm", gate_init="chrono"),
    "gru": dict(name="gru"),
    "gru_chrono": dict(name="gru", gate_init="chrono"),
    "mingru": dict(name="mingru", num_layers=2, scan_mode="sequential"),
    "minlstm": dict(name="minlstm", num_layers=2, scan_mode="sequential"),
    "lru": dict(name="lru", num_layers=2, scan_mode="sequential"),
    "peephole_lstm": dict(name="peephole_lstm"),
}
# the published atlas: every cell above but minLSTM (minGRU's twin) and the peephole LSTM (the
# LSTM's), which any run can add with --config.cells
DEFAULT_CELLS = "rnn,lstm,lstm_chrono,gru,gru_chrono,mingru,lru"
# the field's memory tasks first, so a partly run atlas already answers the question that matters
DEFAULT_TASKS = ("copy,selective_copy,associative_recall,adding,"
                 "decimal_palindrome,binary_palindrome,baum_sweet,random_combination")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The atlas config; ``arg`` None (the published atlas) or ``"quick"`` (tests: two cells, two tasks, tiny)."""
    config = load_config(str(pathlib.Path(__file__).with_name("palindrome.py")))
    config.unlock()
    del config["sweep"]
    config.cells = DEFAULT_CELLS  # entries of variants, model names, or cells' import paths
    config.tasks = DEFAULT_TASKS  # comma-separated tasks of jaxseq.data.sequences.TASKS
    config.atlas = ml_collections.ConfigDict()
    config.atlas.min_length = 16  # the first length of every (cell, task); each next one doubles it
    config.atlas.max_length = 256  # the atlas is extended beyond it per (cell, task) from the command line
    config.atlas.threshold = 0.99  # a seed solves a length when its accuracy on a fresh batch reaches this
    config.variants = ml_collections.ConfigDict({name: dict(model=model) for name, model in CELLS.items()})

    config.model.encoding = "onehot"
    config.model.hidden_size = 64
    config.optim.name = "adam"
    config.optim.lr = 2e-3
    config.optim.clip_norm = 10.0
    config.data.batch_size = 64
    config.data.eval_batch_size = 1024
    config.train.num_steps = 2000
    config.train.chunk_steps = 50
    config.train.num_seeds = 3
    # steps to solve: the first step whose last 20 training accuracies average >= 0.995, where a seed
    # stops; a margin above atlas.threshold, so a seed that stops is solved on the fresh batch too
    config.train.window = 20
    config.train.stop_accuracy = 0.995
    config.runner.seed_strategy = "vmap"  # the 3 seeds in one program
    # a chunk at T = 1,024 takes minutes on a busy 2-core CPU: only an hour without progress is a stall
    config.runner.stall_timeout_s = 3600.0

    if arg == "quick":
        config.cells = "rnn,lstm"
        config.tasks = "decimal_palindrome,copy"
        config.atlas.min_length = 4
        config.atlas.max_length = 16
        config.model.hidden_size = 32
        config.optim.lr = 1e-2
        config.data.copy.num_tokens = 2
        config.data.copy.num_symbols = 4
        config.data.batch_size = 32
        config.data.eval_batch_size = 256
        config.train.num_steps = 100
        config.train.chunk_steps = 25
        config.train.num_seeds = 2
        config.train.window = 10
    elif arg is not None:
        raise ValueError(f"unknown variant {arg!r} of configs/atlas.py; choose quick")
    return config
