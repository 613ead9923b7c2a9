"""GCN (Kipf & Welling 2017) on a Planetoid citation graph, 10 seeds in one compiled program.

Command::

    python scripts/train_gnn.py --config=configs/gcn.py:cora
    python scripts/train_gnn.py --config=configs/gcn.py:citeseer --config.optim.lr=0.01

Variants (comma-separated): ``cora`` (default), ``citeseer``, ``quick`` (2 seeds, 30 epochs: tests).

Expected (measured on 2 CPU cores, mean ± std over seeds 0-9, see docs/graphs.md): test accuracy
Cora 81.76 ± 0.49%, Citeseer 70.95 ± 0.93% (paper: 81.5% and 70.3%).
"""

import ml_collections


def get_config(arg=None):
    """The paper's hyper-parameters; ``arg`` picks the dataset and ``quick``."""
    variants = set(filter(None, (arg or "cora").split(",")))
    config = ml_collections.ConfigDict()

    config.model = ml_collections.ConfigDict()
    config.model.name = "gcn"
    config.model.hidden_size = 16
    config.model.dropout = 0.5
    config.model.kernel_init = "glorot"

    config.optim = ml_collections.ConfigDict()
    config.optim.name = "adam"
    config.optim.lr = 0.01
    config.optim.schedule = "constant"
    config.optim.clip_norm = 0.0  # off
    config.optim.l2 = 5e-4  # added to the loss as l2 * sum(w^2) / 2
    config.optim.l2_scope = "first_layer"

    config.data = ml_collections.ConfigDict()
    config.data.name = "citeseer" if "citeseer" in variants else "cora"

    config.train = ml_collections.ConfigDict()
    config.train.num_epochs = 200
    config.train.early_stopping = "window"  # val loss above the mean of the previous `patience` epochs
    config.train.patience = 10
    config.train.num_seeds = 10
    config.train.seed = 0
    config.train.log_every = 1  # epochs between metrics.jsonl rows (the last epoch is always logged)

    # how the seeds run on this machine (jaxseq/runner/); results do not depend on it
    config.runner = ml_collections.ConfigDict()
    # auto | vmap | map | map:K | threads | threads:G; auto = threads on CPU (2.1x lax.map's speed and
    # faster than vmap there, benchmarks/README.md), vmap on GPU/TPU
    config.runner.seed_strategy = "auto"
    config.runner.stall_timeout_s = 300.0  # the whole run is one compiled call: stop if it takes longer than this

    unknown = variants - {"cora", "citeseer", "quick"}
    if unknown:
        raise ValueError(f"unknown config variant(s) {sorted(unknown)}; choose from: citeseer, cora, quick")
    if "quick" in variants:
        config.train.num_epochs = 30
        config.train.num_seeds = 2
    return config
