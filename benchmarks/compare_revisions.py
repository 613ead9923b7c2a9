"""One benchmark at two checkouts of jaxseq, alternated in rounds: the speed ratio of a change.

    git worktree add --detach ../jaxseq-before HEAD~1
    .venv/bin/python benchmarks/compare_revisions.py --before=../jaxseq-before --rounds=3 \\
        --bench=bench_recurrent.py --args="--lengths=10,30 --seeds=1,8 --strategies=threads --shards=1"

Each round runs ``benchmarks/<bench>`` once from the checkout ``--before`` and once from this one,
each importing its own checkout's jaxseq
(the order alternating between rounds, so a slow spell of the shared machine falls on both), each
a fresh process with its own ``--out`` in a temporary folder. Every row the two reports share
(``bench_recurrent.py``: variant, length, seeds, strategy; ``bench_atlas_cost.py``: cell, task,
length, its steps per second; ``bench_textgen.py``: model) gets the median of its rate over the
rounds for each side, and the ratio now/before: above 1 is faster.
The shared machine's speed drifts between runs (±20 %, at times in two modes), so with
``--reference=NAME`` each rate is first divided by the rate of the row ``NAME`` (a peer the change
does not touch, e.g. ``flax-lstm``) with the same other columns, measured in the same run: that
ratio is what is compared. Prints the table and writes ``--out`` (JSON).
"""

import json
import os
import pathlib
import shlex
import statistics
import subprocess
import sys
import tempfile

from absl import flags

from cli import check_arguments, check_out, write_json  # benchmarks/cli.py, beside this script
from revisions import rates, relative_to  # benchmarks/revisions.py
from jaxseq.cli import run_main

HERE = pathlib.Path(__file__).resolve().parent.parent

_BEFORE = flags.DEFINE_string("before", None, "the other checkout of jaxseq (e.g. a git worktree of the parent commit)")
_BENCH = flags.DEFINE_string("bench", "bench_recurrent.py", "the benchmark script under benchmarks/")
_ARGS = flags.DEFINE_string("args", "", "its flags, as one shell-quoted string (never --out)")
_REFERENCE = flags.DEFINE_string("reference", None, "a row name whose rate, in the same run, divides every other row's")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "runs of each checkout (median reported)", lower_bound=1)
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/compare_revisions/<YYYYmmdd-HHMMSS>/compare_revisions.json)")



def run_once(checkout: pathlib.Path, out: pathlib.Path) -> dict[tuple, float]:
    """Run the benchmark from ``checkout`` into ``out`` and read its rates."""
    command = [sys.executable, str(checkout / "benchmarks" / _BENCH.value), *shlex.split(_ARGS.value), f"--out={out}"]
    print("$", " ".join(command), flush=True)
    # PYTHONPATH makes each run import its own checkout's jaxseq, whichever one is installed
    subprocess.run(command, check=True, cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)})
    return rates(json.loads(out.read_text()))


def main(argv):
    check_arguments(argv)
    if not _BEFORE.value or not (pathlib.Path(_BEFORE.value) / "benchmarks" / _BENCH.value).is_file():
        raise ValueError(f"--before={_BEFORE.value}: give a checkout of jaxseq that has benchmarks/{_BENCH.value}")
    if "--out" in _ARGS.value:
        raise ValueError("--args must not set --out: each run writes its own report")
    out = check_out(_OUT.value)
    sides = {"before": pathlib.Path(_BEFORE.value).resolve(), "now": HERE}
    measured = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(_ROUNDS.value):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for side in order:
                measured[side].append(run_once(sides[side], pathlib.Path(tmp) / f"{side}_{round_}.json"))
    if _REFERENCE.value:
        measured = {side: [relative_to(run, _REFERENCE.value) for run in runs] for side, runs in measured.items()}
    shared = [name for name in measured["now"][0] if all(name in run for runs in measured.values() for run in runs)]
    if not shared:
        raise RuntimeError("the two checkouts' reports share no row" + (f" with a {_REFERENCE.value} beside it" if _REFERENCE.value else ""))
    rows = []
    unit = f"rate / {_REFERENCE.value}'s" if _REFERENCE.value else "rate"
    print(f"\n{'row (' + unit + ')':<60} {'before':>10} {'now':>10} {'now/before':>11}")
    for name in shared:
        before = statistics.median(run[name] for run in measured["before"])
        now = statistics.median(run[name] for run in measured["now"])
        rows.append(dict(row=list(name), before=round(before, 4), now=round(now, 4), ratio=round(now / before, 3),
                         before_runs=[run[name] for run in measured["before"]], now_runs=[run[name] for run in measured["now"]]))
        print(f"{' '.join(map(str, name)):<60} {before:>10.3g} {now:>10.3g} {now / before:>11.3f}")
    meta = dict(bench=_BENCH.value, args=_ARGS.value, rounds=_ROUNDS.value, reference=_REFERENCE.value, before=str(sides["before"]),
                cpus=os.cpu_count(), load_after=os.getloadavg())
    write_json(out, dict(meta=meta, rows=rows))


if __name__ == "__main__":
    run_main(main)
