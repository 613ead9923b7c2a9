"""Memory in recurrent networks: accuracy vs palindrome length, over models and seeds.

The defaults are the classic set-up (digits fed raw as one float, hidden 128, batch 128,
RMSprop 1e-3, gradient clipping at 10), where a vanilla RNN forgets sooner than an LSTM.
Run the default sweep (vanilla RNN and LSTM, 3 seeds; what `make demo` runs)::

    python scripts/run_palindrome.py --config=configs/palindrome.py --out=results/demo

Variants (``--config=configs/palindrome.py:<variant>``):

- ``quick``: a tiny sweep for tests and CI (seconds).
- ``full``: all six models of the study over lengths 5..40, 3 seeds, 5000-step budget.

Override any field from the command line, e.g. ``--config.sweep.models=rnn,gru``,
``--config.sweep.lengths=5,10,20``, ``--config.train.num_seeds=5``, ``--config.optim.name=rmsprop``,
``--config.optim.lr=3e-3``, ``--config.model.encoding=raw``. A misspelt field is an error.

Measured results are in docs/study.md ("The palindrome sweep").
"""

import ml_collections

from jaxseq.data.sequences import TASK_BUILDERS, task_params


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The palindrome sweep config; ``arg`` picks a variant (None, "quick", "full")."""
    config = ml_collections.ConfigDict()

    config.model = ml_collections.ConfigDict()
    config.model.name = "lstm"  # replaced by each entry of sweep.models
    config.model.hidden_size = 128
    config.model.encoding = "raw"  # raw (classic: the digit as one float) | onehot | embed
    config.model.embed_dim = 16
    config.model.forget_bias = 1.0  # LSTM-family initial forget-gate bias
    # gate biases of the gated cells (lstm, peephole_lstm, gru, mingru, minlstm): constant (forget_bias
    # for the LSTMs, zeros otherwise) | chrono (Tallec & Ollivier 2018, jaxseq/models/initializers.py)
    config.model.gate_init = "constant"
    config.model.chrono_t_max = 0.0  # chrono's T_max in steps (0: the task's number of input steps)
    config.model.input_init = "xavier"  # kaiming | xavier | glorot | orthogonal | lecun
    config.model.recurrent_init = "orthogonal"
    # further constructor fields of the cell, "name=value,..." (Python literals), e.g. for an
    # outside cell: --config.model.name=mycells:MyCell --config.model.cell_kwargs=num_heads=2,scale=0.5
    config.model.cell_kwargs = ""
    config.model.num_layers = 1  # > 1 stacks pre-norm residual layers (jaxseq.models.sequence.StackedClassifier)
    # linear recurrences (mingru, minlstm, lru): parallel (associative scan over time) | sequential
    config.model.scan_mode = "parallel"
    config.model.lru_state_dim = 0  # N, the LRU's complex state size (0: hidden_size)
    config.model.lru_r_min = 0.9  # ring initialisation of the LRU's eigenvalues: r_min <= |λ| <= r_max
    config.model.lru_r_max = 0.999
    config.model.lru_max_phase = 6.283185307179586  # initial phase of λ drawn from [0, max_phase] (2π)

    config.optim = ml_collections.ConfigDict()
    config.optim.name = "rmsprop"  # sgd | momentum | rmsprop | adam | adamw
    config.optim.lr = 1e-3
    config.optim.schedule = "constant"  # constant | cosine | warmup_cosine | exponential
    config.optim.clip_norm = 10.0
    config.optim.momentum = 0.9

    config.data = ml_collections.ConfigDict()
    # decimal_palindrome | binary_palindrome | baum_sweet | random_combination, or a memory task of
    # the literature: copy | selective_copy | associative_recall | adding (jaxseq/data/sequences.py
    # says what data.length, T, means for each)
    config.data.task = "decimal_palindrome"
    # the parameters of each task that has some, e.g. --config.data.copy.num_tokens=5
    for name in TASK_BUILDERS:
        config.data[name] = ml_collections.ConfigDict(task_params(name))
    config.data.length = 10  # replaced by each entry of sweep.lengths
    config.data.batch_size = 128
    config.data.eval_batch_size = 4096

    config.train = ml_collections.ConfigDict()
    config.train.num_steps = 1500  # budget per seed
    config.train.chunk_steps = 100  # steps per compiled call (progress is reported per chunk)
    config.train.num_seeds = 3
    config.train.seed = 0
    config.train.stop_accuracy = 0.999  # stop a seed once its windowed accuracy reaches this
    config.train.window = 50
    config.train.patience = 0  # stop a seed after this many steps without loss improvement (0: off)

    # how the seeds run on this machine (jaxseq/runner/); results depend on none of it beyond float rounding
    config.runner = ml_collections.ConfigDict()
    # how seeds share compiled programs: auto | vmap | map | map:K (K vmapped seeds at a time) |
    # threads | threads:G (G lax.map programs at once, one per host thread; threads: one per core);
    # auto = threads on CPU (about 2x one vmapped program on 2 cores), vmap on GPU/TPU. Results do
    # not depend on it. See jaxseq/runner/seeds.py and benchmarks/README.md.
    config.runner.seed_strategy = "auto"
    # one seed's batch rows split over host threads that average their gradients every step: auto |
    # n (n divides data.batch_size); auto = one shard per core for a run of one seed on CPU whose
    # step is big enough and model small enough to gain (else 1). Changes results by float rounding
    # only. See jaxseq/runner/batch_shards.py.
    config.runner.batch_shards = "auto"
    config.runner.stall_timeout_s = 300.0  # a chunk slower than max(this, 10x the slowest so far) stops the run

    config.sweep = ml_collections.ConfigDict()
    config.sweep.models = "rnn,lstm"  # names from jaxseq.models.registry.MODELS, or cells as package.module:Class
    config.sweep.lengths = "5,10,20"  # comma-separated palindrome lengths

    if arg == "quick":
        config.model.hidden_size = 32
        config.model.encoding = "onehot"
        config.optim.name = "adam"
        config.optim.lr = 3e-3
        config.data.batch_size = 64
        config.data.eval_batch_size = 512
        config.train.num_steps = 300
        config.train.chunk_steps = 50
        config.train.num_seeds = 2
        config.train.window = 20
        config.sweep.lengths = "5,6"
    elif arg == "full":
        config.train.num_steps = 5000
        config.sweep.models = "rnn,lstm,gru,peephole_lstm,bilstm"
        config.sweep.lengths = "5,10,15,20,25,30,35,40"
    elif arg is not None:
        raise ValueError(f"unknown variant {arg!r} of configs/palindrome.py; choose quick or full")
    return config
