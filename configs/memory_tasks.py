"""A first look at the memory tasks of the literature: copy and selective copy at T = 50, 100, 200.

Every variant is a (cell, gate initialisation, task) triple run by ``scripts/frontier.py`` at each
length, 3 seeds trained together, with the same small budget (the numbers and the cut are in
docs/study.md, "Copy and selective copy: a first look")::

    python scripts/frontier.py --config=configs/memory_tasks.py --out=results/memory_tasks \\
        --table=results/memory_tasks.csv

Set-up: one-hot tokens, hidden 64, batch 32, Adam 3e-3 (clipping at 10), ``train.num_steps``
steps; 4 tokens to copy from 8 symbols (chance accuracy 1/8). Chrono initialisation takes the
task's number of input steps as its ``T_max``. Every length runs even after a failure, so that the
accuracy at T = 100 and 200 is seen too.
"""

import pathlib

import ml_collections

from jaxseq.config import load_config

CELLS = {  # variant stem -> model overrides
    "rnn": dict(name="rnn"),
    "lstm": dict(name="lstm"),
    "lstm_chrono": dict(name="lstm", gate_init="chrono"),
    "gru": dict(name="gru"),
    "gru_chrono": dict(name="gru", gate_init="chrono"),
}
# task -> its lengths: the grid that fits the compute (docs/study.md says what was cut and why)
TASKS = {"copy": "50,100,200", "selective_copy": "50"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The first-look config (``arg`` None), run as a frontier over the variants of :data:`CELLS` x :data:`TASKS`."""
    if arg is not None:
        raise ValueError(f"configs/memory_tasks.py has no variant {arg!r}")
    config = load_config(str(pathlib.Path(__file__).with_name("frontier.py")))
    config.unlock()
    config.model.encoding = "onehot"
    config.model.hidden_size = 64
    config.optim.name = "adam"
    config.optim.lr = 3e-3
    config.data.batch_size = 32
    config.data.eval_batch_size = 1024
    config.data.copy.num_tokens = 4
    config.data.selective_copy.num_tokens = 4
    config.train.num_steps = 600
    config.train.chunk_steps = 100
    config.runner.seed_strategy = "vmap"  # the 3 seeds in one program: cheaper than threads on a busy CPU
    config.sweep.lengths = "50,100"
    config.frontier.stop_after_failure = False
    variants = {
        f"{stem}_{task}": ml_collections.ConfigDict(dict(model=model, data=dict(task=task), sweep=dict(lengths=lengths)))
        for task, lengths in TASKS.items()
        for stem, model in CELLS.items()
    }
    config.frontier.variants = ",".join(variants)
    config.variants = ml_collections.ConfigDict({name: v.to_dict() for name, v in variants.items()})
    return config
