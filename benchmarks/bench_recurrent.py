"""Training throughput of the palindrome classifiers: jaxseq vs Flax vs PyTorch, side by side.

    .venv/bin/python benchmarks/bench_recurrent.py                      # T = 10, 30; 1 and 8 seeds
    .venv/bin/python benchmarks/bench_recurrent.py --lengths=30 --seeds=1 --variants=ours-lstm,torch-lstm

Every variant trains on decimal palindromes (one-hot input, B = 128, H = 128, Adam 1e-3, global
norm clipping at 10, a fresh batch per step) for chunks of ``--chunk`` steps. jax variants run
``SequenceTrainer.run_chunk`` (data generated on device) compiled once per seed strategy (one seed
runs under ``lax.map``, i.e. with no seed axis; ``shards:n`` rows split each batch into ``n``
shards on ``n`` CPU devices in one program per chunk, ``runner.batch_shards = n``, which is what
``auto`` gives one seed on an n-core CPU; ``shards:n:threads`` rows run the shards from host threads,
one program per shard and step, as when jax has a single CPU device); PyTorch
runs the same step in eager mode (``nn.LSTM`` / ``nn.RNN``, ``torch.optim.Adam``,
``clip_grad_norm_``, batches from ``torch.randint``). Variants:

- ``ours-lstm``, ``ours-rnn``: the project's cells through ``scan_cell`` (hand-written BPTT, the
  input projection joined to the recurrent matmul: the default for a one-hot input);
- ``ours-gru``: the same for the GRU (two stages, the input projection hoisted);
- ``ours-lstm-hoisted``, ``ours-rnn-hoisted``: the same with the input projection applied to all
  time steps before the loop (never joined);
- ``ours-lstm-autodiff``, ``ours-rnn-autodiff``: the same cells seen only through Flax's
  ``RNNCellBase`` contract, so they run as any outside cell does (``nn.scan`` and jax's autodiff);
- ``cell:package.module:ClassName``: any ``RNNCellBase`` cell by import path in the same classifier
  (e.g. ``cell:flax.linen:OptimizedLSTMCell``);
- ``flax-lstm``: ``nn.RNN(nn.OptimizedLSTMCell)`` with the same head;
- ``ours-lstm-classic``, ``torch-lstm-classic``, ``torch-lstm-classic-ftz``: the classic set-up of
  ``configs/palindrome.py`` instead (each digit fed raw as one float, RMSprop 1e-3, clipping at
  10), PyTorch with its defaults, and with ``torch.set_flush_denormal(True)`` around its chunks;
- ``torch-lstm``, ``torch-rnn``: PyTorch's ``nn.LSTM`` / ``nn.RNN`` (needs ``pip install -e '.[bench]'``).

Timing is round-robin: every repeat times each variant once, in turn, so a noisy neighbour slows
all of them alike; the table reports the median wall time, and the process CPU time beside it
(all threads: what the step costs the machine, steadier than wall time when the machine is shared). Seed-steps/s = seeds x steps / seconds. With more
than one seed, jax variants run every strategy in ``--strategies``; PyTorch's 8 seeds would be 8
sequential runs, i.e. its 1-seed rate. Writes ``--out`` (JSON).
"""

import os
import platform
import statistics
import time


import jax
from absl import flags
from flax import linen as nn

from cell_variants import AutodiffOnly, hoisted_input  # benchmarks/cell_variants.py
from jaxseq.config import load_config
from jaxseq.models.registry import model_spec
from jaxseq.runner.multiseed import MultiSeedRunner, seed_keys
from jaxseq.runner.seeds import StalledRunError, StallWatch, resolve_seed_strategy
from jaxseq.train.sequence_trainer import make_train
from jaxseq.train.sweep import setting_config
from cli import check_arguments, check_choices, check_out, check_positive_ints, interrupted_path, write_json  # benchmarks/cli.py
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/

_LENGTHS = flags.DEFINE_list("lengths", ["10", "30"], "palindrome lengths T")
_SEEDS = flags.DEFINE_list("seeds", ["1", "8"], "seed counts")
_STRATEGIES = flags.DEFINE_list("strategies", ["vmap", "map", "map:4", "threads"], "seed strategies for more than one seed")
_SHARDS = flags.DEFINE_list("shards", ["2"], "runner.batch_shards counts (> 1) also timed for one seed")
_SHARD_MODES = flags.DEFINE_list("shard_modes", ["devices", "threads"], "where the shards of one seed run (BatchShards mode)")
VARIANTS = [
    "ours-lstm", "ours-lstm-hoisted", "ours-lstm-autodiff", "flax-lstm", "torch-lstm",
    "ours-rnn", "ours-rnn-hoisted", "ours-rnn-autodiff", "torch-rnn", "ours-gru",
    "ours-lstm-classic", "torch-lstm-classic", "torch-lstm-classic-ftz",
]
NAMED_CELL = "cell:"  # a variant cell:package.module:ClassName times that cell
_VARIANTS = flags.DEFINE_list("variants", VARIANTS, "what to time")
_REPEATS = flags.DEFINE_integer("repeats", 7, "timed chunks per variant (median reported)", lower_bound=1)
_CHUNK = flags.DEFINE_integer("chunk", 10, "training steps per timed call", lower_bound=1)
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/bench_recurrent/<YYYYmmdd-HHMMSS>/bench_recurrent.json)")
_TORCH_DEVICE = flags.DEFINE_enum("torch_device", "cpu", ["cpu", "cuda"], "where PyTorch variants run (cuda: cuDNN's kernels)")

B, H, LR, CLIP = 128, 128, 1e-3, 10.0
STALL_S = 60.0  # a chunk that takes longer is recorded as hung (XLA's CPU runtime can deadlock), not waited for


class FlaxLSTMClassifier(nn.Module):
    """Peer: Flax's built-in optimized LSTM cell under ``nn.RNN``, same one-hot input and head."""

    hidden_size: int
    num_classes: int

    @nn.compact
    def __call__(self, tokens, perturbations=None):
        hs = nn.RNN(nn.OptimizedLSTMCell(self.hidden_size))(jax.nn.one_hot(tokens, 10))
        return nn.Dense(self.num_classes)(hs[:, -1])


def make_trainer(variant: str, length: int):
    """The palindrome trainer for a jax variant (model swapped in for the peers)."""
    if variant.startswith(NAMED_CELL):
        model = variant[len(NAMED_CELL):]
    else:
        model = variant.split("-")[1] if variant.startswith("ours-") else "lstm"  # ours-<model>[-...]
    config = setting_config(
        load_config("configs/palindrome.py"),
        **{
            "model.name": model, "model.encoding": "onehot", "model.hidden_size": H,
            "optim.name": "adam", "optim.lr": LR, "optim.clip_norm": CLIP,
            "data.length": length, "data.batch_size": B,
            "train.num_steps": 10**6, "train.chunk_steps": _CHUNK.value,
            "train.stop_accuracy": 2.0,  # never stop: every step does real work
        },
    )
    if variant.endswith("-classic"):  # the classic set-up: configs/palindrome.py's raw digits and RMSprop
        config = setting_config(config, **{"model.encoding": "raw", "optim.name": "rmsprop"})
    trainer = make_train(config)
    if variant == "flax-lstm":
        trainer.model = FlaxLSTMClassifier(H, 10)
    elif variant.endswith("-autodiff"):
        trainer.model = trainer.model.clone(cell=AutodiffOnly(trainer.model.cell))
    elif variant.endswith("-hoisted"):
        trainer.model = trainer.model.clone(cell=hoisted_input(trainer.model.cell))
    return trainer


def jax_timer(variant: str, length: int, seeds: int, strategy: str, batch_shards: int = 1, shard_mode: str = "auto"):
    """A function that runs one chunk of ``seeds`` seeds and returns its seconds (compiled and warmed up)."""
    runner = MultiSeedRunner(make_trainer(variant, length), strategy=strategy, batch_shards=batch_shards, shard_mode=shard_mode)
    groups, shards = runner.executors(seeds)  # threads:G runs G seed groups at once; shards split the batch
    watch = StallWatch(min_s=STALL_S, strategy=f"seed strategy {strategy}")
    keys = groups.split(seed_keys(jax.random.key(0), seeds))
    state = {"runs": groups(runner.init, keys, watch, "init")}
    what = f"{variant} T={length} {seeds} seeds"

    def timed() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        # waits for every group or shard; raises if XLA deadlocks
        state["runs"] = [run for run, _ in runner.chunk(state["runs"], groups, shards, watch, what)]
        return time.perf_counter() - start, time.process_time() - cpu

    timed()
    return timed


def torch_timer(variant: str, length: int):
    """The same training step in PyTorch (eager; on ``--torch_device``); returns a chunk timer like :func:`jax_timer`."""
    import torch

    device = torch.device(_TORCH_DEVICE.value)
    torch.manual_seed(0)
    recurrent = torch.nn.LSTM if variant.startswith("torch-lstm") else torch.nn.RNN
    classic = "-classic" in variant  # raw digits, RMSprop (PyTorch's defaults otherwise)
    flush_denormal = variant.endswith("-ftz")

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = recurrent(1 if classic else 10, H, batch_first=True)
            self.head = torch.nn.Linear(H, 10)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    model = Classifier().to(device)
    optimizer = (torch.optim.RMSprop if classic else torch.optim.Adam)(model.parameters(), lr=LR)
    source = torch.tensor([min(k, length - 1 - k) for k in range(length)], device=device)

    def step():
        digits = torch.randint(0, 10, (B, length), device=device)
        full = digits[:, source]  # a palindrome: slot k repeats digit min(k, T-1-k)
        inputs = full[:, :-1, None].float() if classic else torch.nn.functional.one_hot(full[:, :-1], 10).float()
        loss = torch.nn.functional.cross_entropy(model(inputs), full[:, -1])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()

    def timed() -> tuple[float, float]:
        torch.set_flush_denormal(flush_denormal)  # a process-wide switch: set for each variant's own chunks
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(_CHUNK.value):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()  # the GPU's queued kernels belong to this chunk
        return time.perf_counter() - start, time.process_time() - cpu

    timed()
    return timed


def main(argv):
    check_arguments(argv)
    check_choices([v for v in _VARIANTS.value if not v.startswith(NAMED_CELL)], VARIANTS, "--variants")
    for variant in _VARIANTS.value:
        if variant.startswith(NAMED_CELL):
            model_spec(variant[len(NAMED_CELL):])  # a name that is not a cell: one line, before anything compiles
    check_choices(_SHARD_MODES.value, ("devices", "threads"), "--shard_modes")
    for strategy in _STRATEGIES.value:
        resolve_seed_strategy(strategy, backend="cpu")  # a ValueError naming the valid forms
    lengths, seed_counts = check_positive_ints(_LENGTHS.value, "lengths"), check_positive_ints(_SEEDS.value, "seeds")
    shard_counts = [n for n in check_positive_ints(_SHARDS.value, "shards") if n > 1]
    out = check_out(_OUT.value)
    cases, hung = [], []  # (label dict, timer); cases that deadlocked
    for length in lengths:
        for variant in _VARIANTS.value:
            for seeds in seed_counts:
                if variant.startswith("torch"):
                    if seeds == 1:
                        cases.append((dict(variant=variant, length=length, seeds=1, strategy="-"), torch_timer(variant, length)))
                    continue
                # one seed: no seed axis (lax.map), unsharded and with each batch shard count
                runs = [("map", 1, "auto")]
                runs += [("map", n, mode) for n in shard_counts for mode in _SHARD_MODES.value]
                runs = runs if seeds == 1 else [(strategy, 1, "auto") for strategy in _STRATEGIES.value]
                for strategy, shards, mode in runs:
                    name = strategy if seeds > 1 else shard_label(shards, mode)
                    label = dict(variant=variant, length=length, seeds=seeds, strategy=name)
                    try:
                        cases.append((label, jax_timer(variant, length, seeds, strategy, shards, mode)))
                        print("compiled", label, flush=True)
                    except StalledRunError as error:
                        hung.append(dict(**label, error=str(error)))
                        print("hung", label, flush=True)
    times = [[] for _ in cases]
    load_before = os.getloadavg()
    interrupted = False
    try:
        for repeat in range(_REPEATS.value):
            for i, (label, timer) in enumerate(cases):
                if timer is None:
                    continue
                try:
                    times[i].append(timer())
                except StalledRunError as error:
                    hung.append(dict(**label, error=str(error)))
                    cases[i] = (label, None)
                    print("hung", label, flush=True)
            print(f"repeat {repeat + 1} of {_REPEATS.value} timed", flush=True)
    except KeyboardInterrupt:  # report the repeats that finished (still round-robin, side by side)
        interrupted = True
        print(f"\ninterrupted: reporting the repeats that finished, to {interrupted_path(out)}", flush=True)
    kept = [i for i, (_, timer) in enumerate(cases) if timer is not None and times[i]]
    cases, times = [cases[i] for i in kept], [times[i] for i in kept]
    rows = []
    print(f"\n{'variant':<20} {'T':>3} {'seeds':>5} {'strategy':>16} {'seed-steps/s':>13} {'ms/step':>8} {'CPU ms/step':>11}")
    for (label, _), measured in zip(cases, times):
        median = statistics.median(wall for wall, _ in measured)
        cpu = statistics.median(cpu for _, cpu in measured) / _CHUNK.value
        rate = label["seeds"] * _CHUNK.value / median
        rows.append(dict(**label, seed_steps_per_s=round(rate, 1), ms_per_step=round(1000 * median / _CHUNK.value, 2),
                         cpu_ms_per_step=round(1000 * cpu, 2), seconds=[round(w, 4) for w, _ in measured]))
        print(f"{label['variant']:<20} {label['length']:>3} {label['seeds']:>5} {label['strategy']:>16} {rate:>13.1f} "
              f"{1000 * median / _CHUNK.value:>8.2f} {1000 * cpu:>11.2f}")
    ratios = compute_ratios(rows)
    for h in hung:
        print(f"HUNG: {h['variant']} T={h['length']} {h['seeds']} seeds {h['strategy']} (no result; see stress_hangs.py)")
    print("\nratios (same run):")
    for r in ratios:
        print(f"  T={r['length']:<3} {r['what']:<55} {r['ratio']:.2f}x")
    meta = dict(platform=platform.platform(), cpus=os.cpu_count(), jax=jax.__version__, backend=jax.default_backend(),
                load_before=load_before, load_after=os.getloadavg(), batch_size=B, hidden_size=H, chunk=_CHUNK.value,
                repeats=_REPEATS.value, interrupted=interrupted)
    try:
        import torch

        meta.update(torch=torch.__version__, torch_threads=torch.get_num_threads(), torch_device=_TORCH_DEVICE.value)
        if _TORCH_DEVICE.value == "cuda":
            meta.update(cudnn=torch.backends.cudnn.version(), gpu=torch.cuda.get_device_name())
    except ImportError:
        pass
    write_json(interrupted_path(out) if interrupted else out, dict(meta=meta, rows=rows, ratios=ratios, hung=hung))
    if interrupted:
        raise KeyboardInterrupt


def shard_label(shards: int, mode: str) -> str:
    """The strategy column of a one-seed row: ``-`` unsharded, ``shards:n`` on devices (what ``auto``
    gives), ``shards:n:threads`` from host threads."""
    if shards == 1:
        return "-"
    return f"shards:{shards}" if mode in ("auto", "devices") else f"shards:{shards}:{mode}"


def paired_ratio(a: dict, b: dict) -> float:
    """Row ``a``'s rate over row ``b``'s: the median over the repeats of the two rates measured in
    the same round. The shared machine changes speed between rounds (at times by 1.5x, in two
    modes), which a ratio of the two medians would mix in; within a round both rows see the same."""
    return statistics.median((a["seeds"] / sa) / (b["seeds"] / sb) for sa, sb in zip(a["seconds"], b["seconds"]))


def compute_ratios(rows: list[dict]) -> list[dict]:
    """Ours vs each peer at one seed, and each multi-seed strategy vs sequential single-seed runs
    (each a :func:`paired_ratio`)."""
    by_key = {(r["variant"], r["length"], r["seeds"], r["strategy"]): r for r in rows}
    rate = {key: row["seed_steps_per_s"] for key, row in by_key.items()}
    ratios = []
    for (variant, length, seeds, strategy), row in by_key.items():
        if seeds == 1 and variant.startswith("ours") and not variant.endswith("autodiff"):
            cell = variant.split("-")[1]
            sharded = "" if strategy == "-" else f" {strategy}"
            if sharded and (variant, length, 1, "-") in rate:
                ratios.append(dict(what=f"{variant}{sharded} / {variant} (1 seed)", length=length,
                                   ratio=round(paired_ratio(row, by_key[(variant, length, 1, "-")]), 2)))
            peers = (f"ours-{cell}-hoisted", f"ours-{cell}-autodiff", f"flax-{cell}", f"torch-{cell}")
            if variant.endswith("-classic"):
                peers = (f"torch-{cell}-classic", f"torch-{cell}-classic-ftz")
            for peer in peers:
                if peer != variant and (peer, length, 1, "-") in rate:
                    ratios.append(dict(what=f"{variant}{sharded} / {peer} (1 seed)", length=length,
                                       ratio=round(paired_ratio(row, by_key[(peer, length, 1, "-")]), 2)))
        if seeds == 1 and strategy.endswith(":threads") and (variant, length, 1, strategy[: -len(":threads")]) in rate:
            ratios.append(dict(what=f"{variant} {strategy[: -len(':threads')]} / {strategy} (1 seed)", length=length,
                               ratio=round(paired_ratio(by_key[(variant, length, 1, strategy[: -len(":threads")])], row), 2)))
        if seeds > 1 and (variant, length, 1, "-") in rate:
            ratios.append(dict(what=f"{variant}: {seeds} seeds {strategy} / {seeds} sequential", length=length,
                               ratio=round(paired_ratio(row, by_key[(variant, length, 1, "-")]), 2)))
    return ratios


if __name__ == "__main__":
    run_main(main)
