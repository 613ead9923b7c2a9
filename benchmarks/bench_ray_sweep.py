"""Wall time of whole sweeps in-process vs on a local Ray instance with 1, 2, ... workers, side by side.

    .venv/bin/python benchmarks/bench_ray_sweep.py                      # default palindrome sweep + a small frontier
    .venv/bin/python benchmarks/bench_ray_sweep.py --sweeps=palindrome --workers=0,2

Each (sweep, launch) runs the script as a user would (``scripts/run_palindrome.py`` or
``scripts/frontier.py`` into a fresh ``--out``; ``--workers`` 0 is in-process, ``N`` is
``--cluster=ray --ray_workers=N``, a local Ray instance started and stopped by the script), and is
timed from start to exit: Python and jax start-up, Ray's start-up and shutdown, compilation on
every worker, training and writing. Beside the wall time: its ratio to the in-process run of the
same sweep, the sum of the settings' own wall times (``wall_time_s`` in ``results.csv``, as
measured where they trained), and whether the per-seed rows equal the in-process ones (up to float
rounding). Prints a table and writes ``--out`` (JSON).
"""

import csv
import math
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import tempfile
import time

from absl import flags

from cli import check_arguments, check_choices, check_out, write_json  # benchmarks/cli.py
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPTS = {"palindrome": "run_palindrome.py", "frontier": "frontier.py"}

_SWEEPS = flags.DEFINE_list("sweeps", ["palindrome", "frontier"], "sweeps to time: palindrome, frontier")
_WORKERS = flags.DEFINE_list("workers", ["0", "1", "2"], "launches: 0 = in-process, N = local Ray with N workers")
_PALINDROME = flags.DEFINE_string("palindrome", "--config=configs/palindrome.py", "arguments of run_palindrome.py")
_FRONTIER = flags.DEFINE_string(
    "frontier",
    "--config=configs/frontier.py --config.frontier.variants=rnn,lstm_fb1,gru --config.sweep.lengths=5,10 "
    "--config.train.num_steps=500",
    "arguments of frontier.py (a small frontier)",
)
_OUT = flags.DEFINE_string("out", None, "JSON report (default: a fresh runs/bench_ray_sweep/<YYYYmmdd-HHMMSS>/bench_ray_sweep.json)")
_KEEP = flags.DEFINE_string("keep", "", "keep the run directories under this directory (default: a temporary one)")


def read_rows(path: pathlib.Path) -> list[dict]:
    return list(csv.DictReader(open(path))) if path.exists() else []


def row_key(row: dict) -> tuple:
    """The columns that name a row's setting (those before ``seed``), then its seed."""
    names = list(row)
    return tuple(row[name] for name in names[: names.index("seed") + 1])


def same_rows(rows: list[dict], reference: list[dict]) -> bool:
    """Whether two results.csv files hold the same per-seed rows (any order; wall times aside),
    numbers equal up to float rounding."""
    if len(rows) != len(reference):
        return False
    for a, b in zip(sorted(rows, key=row_key), sorted(reference, key=row_key)):
        if a.keys() != b.keys():
            return False
        for name in a:
            if name == "wall_time_s" or a[name] == b[name]:
                continue
            try:
                if not math.isclose(float(a[name]), float(b[name]), rel_tol=1e-5, abs_tol=1e-6):
                    return False
            except ValueError:
                return False
    return True


def time_sweep(sweep: str, workers: int, runs: pathlib.Path) -> dict:
    """Run one sweep with one launch into a fresh directory; its wall time and what it wrote."""
    out = runs / f"{sweep}_{'here' if workers == 0 else f'ray{workers}'}"
    args = shlex.split(_PALINDROME.value if sweep == "palindrome" else _FRONTIER.value)
    launch = [] if workers == 0 else ["--cluster=ray", f"--ray_workers={workers}"]
    command = [sys.executable, str(ROOT / "scripts" / SCRIPTS[sweep]), *args, *launch, f"--out={out}"]
    print(f"{sweep}, {'in-process' if workers == 0 else f'Ray with {workers} worker(s)'}: {shlex.join(command[1:])}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{sweep} with {workers} worker(s) exited {result.returncode}: {result.stderr.strip()[-500:]}")
    rows = read_rows(out / "results.csv")
    settings = {row_key(row)[:-1]: float(row["wall_time_s"]) for row in rows}  # one wall time per setting
    return dict(sweep=sweep, workers=workers, wall_s=round(wall, 2), settings=len(settings),
                settings_s=round(sum(settings.values()), 2), rows=rows)


def main(argv):
    check_arguments(argv)
    check_choices(_SWEEPS.value, SCRIPTS, "sweeps")
    if not all(w.isdigit() for w in _WORKERS.value):
        raise ValueError(f"--workers must be whole numbers (0: in-process), got {_WORKERS.value}")
    workers = [int(w) for w in _WORKERS.value]
    out = check_out(_OUT.value)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        runs = pathlib.Path(_KEEP.value or scratch)
        measured = [time_sweep(sweep, count, runs) for sweep in _SWEEPS.value for count in workers]
    print(f"\n{'sweep':<12}{'launch':>14}{'wall s':>10}{'/ in-process':>14}{'settings':>10}{'settings s':>12}{'same rows':>11}")
    for row in measured:
        here = next((r for r in measured if r["sweep"] == row["sweep"] and r["workers"] == 0), None)
        row["ratio"] = round(row["wall_s"] / here["wall_s"], 2) if here else None
        row["same_rows"] = same_rows(row["rows"], here["rows"]) if here else None
        launch = "in-process" if row["workers"] == 0 else f"ray x{row['workers']}"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        same = "-" if row["same_rows"] is None else ("yes" if row["same_rows"] else "NO")
        print(f"{row['sweep']:<12}{launch:>14}{row['wall_s']:>10.1f}{ratio:>14}{row['settings']:>10}"
              f"{row['settings_s']:>12.1f}{same:>11}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    meta = dict(platform=platform.platform(), cpus=os.cpu_count(), commit=commit, date=time.strftime("%Y-%m-%d %H:%M"),
                load_before=load_before, load_after=os.getloadavg(),
                arguments={sweep: (_PALINDROME.value if sweep == "palindrome" else _FRONTIER.value) for sweep in _SWEEPS.value})
    write_json(out, dict(meta=meta, rows=[{k: v for k, v in row.items() if k != "rows"} for row in measured]))


if __name__ == "__main__":
    run_main(main)
