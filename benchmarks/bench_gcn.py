"""How the sparse GCN scales, where it beats a dense Â, and what vmapping seeds buys.

    python benchmarks/bench_gcn.py                       # full: 10^3 .. 10^6 nodes + Cora seeds
    python benchmarks/bench_gcn.py --max_nodes=100000 --dense_max_nodes=3000 --repeats=3

Part 1 — one training epoch (forward + backward + Adam update, jitted, timed after a warm-up
call, median of ``--repeats``) of the paper's GCN (16 hidden, dropout 0.5) on random graphs with
average degree ``--degree`` and ``--features`` dense Gaussian features, sparse (edge list +
segment_sum) and, up to ``--dense_max_nodes``, with a dense ``N x N`` Â (``Â @ H`` matmuls).
Memory is XLA's compiled memory analysis of the epoch step (arguments + outputs + temporaries,
what the program itself needs); the process peak RSS (``resource.getrusage``, includes the host
copies and everything before) is printed at the end.

Part 2 — the Cora GCN run of ``configs/gcn.py`` (200 epochs, early stopping) for 10 seeds:
``jax.jit(jax.vmap(train))`` once vs ``jax.jit(train)`` called for each seed in turn vs
``jax.jit(lambda keys: jax.lax.map(train, keys))`` (one program, seeds one after another).

Prints tables and writes ``--out`` (default: a fresh ``runs/bench_gcn/<YYYYmmdd-HHMMSS>/bench_gcn.json``).
"""

import os
import platform
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import flags

from cli import check_arguments, check_out, write_json  # benchmarks/cli.py, beside this script
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/
from jaxseq.config import load_config
from jaxseq.data import graphs
from jaxseq.models.gnn import GCN
from jaxseq.runner.graph_seeds import train_seeds
from jaxseq.train.graph_trainer import make_train, masked_cross_entropy

_MAX_NODES = flags.DEFINE_integer("max_nodes", 1_000_000, "largest synthetic graph", lower_bound=1)
_DENSE_MAX = flags.DEFINE_integer("dense_max_nodes", 10_000, "largest graph to also run with a dense Â", lower_bound=1)
_DEGREE = flags.DEFINE_float("degree", 10.0, "average degree of the random graphs", lower_bound=0.0)
_FEATURES = flags.DEFINE_integer("features", 64, "input feature width", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 5, "timed epochs per size (median reported)", lower_bound=1)
_SEEDS = flags.DEFINE_integer("seeds", 10, "seeds for the vmap vs sequential comparison (0 skips it)", lower_bound=0)
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/bench_gcn/<YYYYmmdd-HHMMSS>/bench_gcn.json)")

SIZES = (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)


def make_epoch(model: GCN, tx: optax.GradientTransformation, dense: bool):
    """``epoch(params, opt_state, problem, a_hat, key) -> (params, opt_state, loss)``, one Adam step.

    ``dense`` replaces the edge-list aggregation by ``Â @ H`` with ``a_hat [N, N]``; the parameters
    are the same GCN's, so both variants do the same arithmetic apart from the aggregation.
    """

    def dense_logits(params, nodes, a_hat, key):
        keep = 0.5
        k0, k1 = jax.random.split(key)
        x = jnp.where(jax.random.bernoulli(k0, keep, nodes.shape), nodes / keep, 0.0)
        h = jax.nn.relu(a_hat @ (x @ params["layer_0"]["kernel"]))
        h = jnp.where(jax.random.bernoulli(k1, keep, h.shape), h / keep, 0.0)
        return a_hat @ (h @ params["layer_1"]["kernel"])

    def epoch(params, opt_state, problem, a_hat, key):
        def loss_fn(params):
            if dense:
                logits = dense_logits(params, problem.graph.nodes, a_hat, key)
            else:
                logits = model.apply({"params": params}, problem.graph, deterministic=False, rngs={"dropout": key})
            return masked_cross_entropy(logits, problem.labels, problem.train_mask)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return epoch


def time_epoch(problem: graphs.NodeClassification, dense: bool, repeats: int) -> dict:
    """Compile one epoch step, then time ``repeats`` calls; data enters as arguments, not constants."""
    model, tx = GCN(problem.num_classes), optax.adam(0.01)
    params = model.init(jax.random.key(0), problem.graph)["params"]
    opt_state = tx.init(params)
    a_hat = None
    if dense:
        a_hat = jnp.zeros((problem.graph.num_nodes,) * 2).at[problem.graph.receivers, problem.graph.senders].add(
            problem.graph.edges
        )
    args = (params, opt_state, problem, a_hat, jax.random.key(1))
    start = time.perf_counter()
    compiled = jax.jit(make_epoch(model, tx, dense)).lower(*args).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    program_bytes = memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
    return {
        "variant": "dense" if dense else "sparse",
        "nodes": problem.graph.num_nodes,
        "edges": int(problem.graph.n_edge[0]),
        "epoch_ms": 1000 * statistics.median(times),
        "epoch_ms_min": 1000 * min(times),
        "compile_s": compile_s,
        "temp_mb": memory.temp_size_in_bytes / 2**20,
        "program_mb": (program_bytes - memory.alias_size_in_bytes) / 2**20,
    }


def scaling(max_nodes: int, dense_max: int, degree: float, features: int, repeats: int) -> list[dict]:
    rows = []
    print(f"{'variant':>7} {'nodes':>9} {'edges':>10} {'epoch ms':>9} {'(min)':>8} {'compile s':>9} {'temp MB':>9} {'program MB':>10}")
    for nodes in (n for n in SIZES if n <= max_nodes):
        problem = graphs.random_graph(0, nodes, avg_degree=degree, num_features=features)
        for dense in (False, True) if nodes <= dense_max else (False,):
            row = time_epoch(problem, dense, repeats if nodes < 300_000 else max(2, repeats // 2))
            rows.append(row)
            print(
                f"{row['variant']:>7} {nodes:>9,} {row['edges']:>10,} {row['epoch_ms']:>9.2f} {row['epoch_ms_min']:>8.2f} "
                f"{row['compile_s']:>9.1f} {row['temp_mb']:>9.1f} {row['program_mb']:>10.1f}",
                flush=True,
            )
        del problem
    return rows


def seeds_side_by_side(num_seeds: int) -> dict:
    """Cora GCN (configs/gcn.py:cora): all seeds in one vmapped program vs one after another vs seed groups in threads."""
    config = load_config("configs/gcn.py:cora")
    train = make_train(config, graphs.load_planetoid("cora")).train
    keys = jax.random.split(jax.random.key(config.train.seed), num_seeds)
    result = {"seeds": num_seeds, "epochs_cap": config.train.num_epochs}

    start = time.perf_counter()
    batched = jax.jit(jax.vmap(train)).lower(keys).compile()
    result["vmap_compile_s"] = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = jax.block_until_ready(batched(keys))
    result["vmap_run_s"] = time.perf_counter() - start
    result["vmap_test_acc"] = float(np.mean(metrics["final"]["test_acc"]))

    start = time.perf_counter()
    single = jax.jit(train).lower(keys[0]).compile()
    result["sequential_compile_s"] = time.perf_counter() - start
    start = time.perf_counter()
    accs = [float(jax.block_until_ready(single(key))[1]["final"]["test_acc"]) for key in keys]
    result["sequential_run_s"] = time.perf_counter() - start
    result["sequential_test_acc"] = float(np.mean(accs))

    # One compiled program that runs the seeds one after another (lax.map = scan over seeds).
    start = time.perf_counter()
    mapped = jax.jit(lambda keys: jax.lax.map(train, keys)).lower(keys).compile()
    result["lax_map_compile_s"] = time.perf_counter() - start
    start = time.perf_counter()
    _, metrics = jax.block_until_ready(mapped(keys))
    result["lax_map_run_s"] = time.perf_counter() - start
    result["lax_map_test_acc"] = float(np.mean(metrics["final"]["test_acc"]))

    # The CPU default: one lax.map program per core over a contiguous group of seeds, called at the
    # same time from host threads (runner.seed_strategy = "threads", jaxseq/runner/seeds.py).
    config.runner.seed_strategy = "threads"
    runs = train_seeds(config, graphs.load_planetoid("cora"), num_seeds)
    result["threads_compile_s"], result["threads_run_s"] = runs.compile_s, runs.run_s
    result["threads_test_acc"] = float(np.mean(runs.final["test_acc"]))
    print(f"\nCora GCN, {num_seeds} seeds x up to {config.train.num_epochs} epochs")
    print(f"{'mode':>10} {'compile s':>10} {'run s':>8} {'mean test acc':>14}")
    for mode in ("vmap", "sequential", "lax_map", "threads"):
        print(f"{mode:>10} {result[mode + '_compile_s']:>10.1f} {result[mode + '_run_s']:>8.2f} {result[mode + '_test_acc']:>14.4f}")
    return result


def main(argv):
    check_arguments(argv)
    out = check_out(_OUT.value)
    report = {
        "machine": {"platform": platform.platform(), "cpu_cores": os.cpu_count(), "devices": jax.local_device_count(), "backend": jax.default_backend(), "jax": jax.__version__},
        "settings": {"degree": _DEGREE.value, "features": _FEATURES.value, "repeats": _REPEATS.value, "memory": "XLA compiled memory_analysis (args + outputs + temps - aliased); peak_rss_mb is the whole process"},
    }
    report["scaling"] = scaling(_MAX_NODES.value, _DENSE_MAX.value, _DEGREE.value, _FEATURES.value, _REPEATS.value)
    if _SEEDS.value > 0:
        report["seeds"] = seeds_side_by_side(_SEEDS.value)
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS: {report['peak_rss_mb']:.0f} MB")
    write_json(out, report, indent=2)


if __name__ == "__main__":
    run_main(main)
