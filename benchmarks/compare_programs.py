"""Whether a change alters the compiled training program, at two checkouts of jaxseq.

    git worktree add --detach ../jaxseq-before HEAD~1
    .venv/bin/python benchmarks/compare_programs.py --before=../jaxseq-before

For each model and length, each checkout (in its own process, importing its own jaxseq) builds the
palindrome trainer of ``bench_recurrent.py`` (one-hot input, B = H = 128, Adam, clipping) and
compiles one chunk of training steps (``SequenceTrainer.run_chunk``) for this machine's backend.
The optimized XLA program's text, with source locations and instruction names left out, is hashed.
The same hash at both checkouts means the change cannot have moved the speed of that program, which
no timing on a shared machine can show as firmly; a different one says to time it
(``compare_revisions.py``). Prints a table and writes ``--out`` (JSON).
"""

import hashlib
import inspect
import json
import os
import pathlib
import subprocess
import sys

from absl import flags

from cli import check_arguments, check_out, check_positive_ints, write_json  # benchmarks/cli.py
from revisions import normalized  # benchmarks/revisions.py
from jaxseq.cli import run_main

HERE = pathlib.Path(__file__).resolve().parent.parent

_BEFORE = flags.DEFINE_string("before", None, "the other checkout of jaxseq (e.g. a git worktree of the parent commit)")
_MODELS = flags.DEFINE_list("models", ["lstm", "gru", "rnn", "peephole_lstm"], "models to compile")
_LENGTHS = flags.DEFINE_list("lengths", ["10", "30"], "palindrome lengths T")
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/compare_programs/<YYYYmmdd-HHMMSS>/compare_programs.json)")


def program_hashes(models: list[str], lengths: list[int]) -> dict[str, str]:
    """``{"lstm T=10": hash, ...}`` of this checkout's compiled training chunks."""
    import jax

    from jaxseq.config import load_config
    try:
        from jaxseq.train.sequence_trainer import make_train
    except ImportError:  # a checkout from before the module had this name
        from jaxseq.train.sequence import make_train
    from jaxseq.train.sweep import setting_config

    hashes = {}
    for model in models:
        for length in lengths:
            config = setting_config(load_config("configs/palindrome.py"), **{
                "model.name": model, "model.encoding": "onehot", "model.hidden_size": 128,
                "optim.name": "adam", "optim.lr": 1e-3, "optim.clip_norm": 10.0,
                "data.length": length, "data.batch_size": 128,
                "train.num_steps": 10**6, "train.chunk_steps": 10, "train.stop_accuracy": 2.0,
            })
            trainer = make_train(config)
            compiled = jax.jit(trainer.run_chunk).lower(trainer.init(jax.random.key(0))).compile()
            hashes[f"{model} T={length}"] = hashlib.sha256(normalized(compiled.as_text()).encode()).hexdigest()[:16]
    return hashes


def emitted(checkout: pathlib.Path, models: list[str], lengths: list[int]) -> dict[str, str]:
    """:func:`program_hashes` in a fresh process that imports ``checkout``'s jaxseq (and nothing of
    this checkout's benchmarks, which the other checkout's jaxseq may not support)."""
    program = "\n".join(["import hashlib, json, re", inspect.getsource(normalized), inspect.getsource(program_hashes),
                         f"print(json.dumps(program_hashes({models!r}, {lengths!r})))"])
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    result = subprocess.run([sys.executable, "-c", program], check=True, cwd=checkout, env=env, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv):
    check_arguments(argv)
    lengths = check_positive_ints(_LENGTHS.value, "lengths")
    if not _BEFORE.value or not (pathlib.Path(_BEFORE.value) / "jaxseq").is_dir():
        raise ValueError(f"--before={_BEFORE.value}: give a checkout of jaxseq")
    out = check_out(_OUT.value)
    before = pathlib.Path(_BEFORE.value).resolve()
    sides = {"before": emitted(before, _MODELS.value, lengths), "now": emitted(HERE, _MODELS.value, lengths)}
    rows = [dict(program=name, before=sides["before"].get(name), now=now, same=sides["before"].get(name) == now)
            for name, now in sides["now"].items()]
    print(f"\n{'program':<24} {'before':>18} {'now':>18}  same")
    for row in rows:
        print(f"{row['program']:<24} {row['before'] or '-':>18} {row['now']:>18}  {'yes' if row['same'] else 'NO'}")
    write_json(out, dict(meta=dict(before=str(before), models=_MODELS.value, lengths=lengths), rows=rows))


if __name__ == "__main__":
    run_main(main)
