"""Count hangs of the real multi-seed command, per seed strategy and seed count.

Runs ``scripts/run_palindrome.py`` (an LSTM at T = 10 for 100 steps by default, 8 seeds trained
together) ``--runs`` times for every (strategy, seeds) pair, each in its own subprocess and
process group, one at a time, and watches the group's CPU time (user + system, from /proc). A run
whose group used no CPU for ``--idle_s`` seconds is a **hang** and is killed; a run that is merely
slow keeps going until ``--timeout_s``. Prints a table and writes JSON::

    .venv/bin/python benchmarks/stress_hangs.py --strategies=auto,vmap,map --seeds=8,16 --runs=20

``--reproducer`` stresses ``benchmarks/hang_reproducer.py`` (jax only) instead of the
script, and ``--library`` stresses ``benchmarks/library_seeds.py``: the same run written as the docs
tell a library user to, ``jax.jit(map_over_seeds(trainer.train, strategy))(keys)``, with no runner.
``--arms`` stresses ``benchmarks/hang_bisect.py``, the vmapped program with one construct taken out
per arm, in place of the strategies. ``--xla_flags`` runs every pair again under extra
``XLA_FLAGS`` (``;``-separated sets), which is how the flags named in the README were tried.
Ctrl-C kills the run in progress and writes the finished runs to ``<out>.interrupted.json`` beside
``--out``. Linux only (it reads /proc).
"""

import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from cli import check_arguments, check_out, check_positive_ints, interrupted_path, write_json  # benchmarks/cli.py, beside this script
from hang_bisect import ARMS  # benchmarks/hang_bisect.py, beside this script
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/
from jaxseq.runner.seeds import resolve_seed_strategy

ROOT = pathlib.Path(__file__).resolve().parent.parent
REPRODUCER_STRATEGIES = ("vmap", "map")  # what benchmarks/hang_reproducer.py --strategy takes

_STRATEGIES = flags.DEFINE_list("strategies", ["auto", "vmap", "map"], "runner.seed_strategy values to stress")
_SEEDS = flags.DEFINE_list("seeds", ["8", "16"], "seed counts")
_RUNS = flags.DEFINE_integer("runs", 20, "runs per (strategy, seeds, flags)", lower_bound=1)
_IDLE_S = flags.DEFINE_float("idle_s", 20.0, "a run whose process group used no CPU for this long is a hang",
                              lower_bound=0.0)
_TIMEOUT_S = flags.DEFINE_float("timeout_s", 600.0, "a run still going after this long is stopped as 'slow'",
                                 lower_bound=0.0)
_XLA_FLAGS = flags.DEFINE_string("xla_flags", "", "';'-separated XLA_FLAGS sets to try besides the default")
_EXTRA = flags.DEFINE_list("extra", [], "more --config overrides, e.g. train.num_steps=100")
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/stress_hangs/<YYYYmmdd-HHMMSS>/stress_hangs.json)")
_REPRODUCER = flags.DEFINE_bool("reproducer", False, "run benchmarks/hang_reproducer.py (jax only) instead")
_LIBRARY = flags.DEFINE_bool("library", False, "run benchmarks/library_seeds.py (the documented one-line multi-seed run) instead")
_ARMS = flags.DEFINE_list("arms", [], "run benchmarks/hang_bisect.py with these arms instead of --strategies (vmap)")

_TICKS = os.sysconf("SC_CLK_TCK")
IDLE_SHARE = 0.01  # a run using less than this share of one core over --idle_s seconds is hung


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid``."""
    total = 0
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


@dataclasses.dataclass
class Outcome:
    """One run: ``status`` is ok, failed (non-zero exit), hang (idle CPU) or slow (timeout)."""

    status: str
    wall_s: float
    cpu_s: float
    returncode: int | None
    last_line: str


def run_once(argv: list[str], env: dict[str, str], idle_s: float, timeout_s: float) -> Outcome:
    """Run ``argv`` in a new process group and watch it; kill the group on a hang or timeout."""
    with tempfile.TemporaryFile("w+") as log:
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        samples, status, cpu = [(start, 0.0)], None, 0.0  # (time, CPU seconds used so far)
        try:
            while proc.poll() is None:
                time.sleep(1.0)
                now, cpu = time.monotonic(), group_cpu_seconds(proc.pid)
                samples.append((now, cpu))
                window = [(t, c) for t, c in samples if t >= now - idle_s]
                # idle: under 1 % of a core over the last idle_s (the stall watch waits blocked, using no CPU)
                if now - start >= idle_s and cpu - window[0][1] < IDLE_SHARE * idle_s:
                    status = "hang"
                elif now - start >= timeout_s:
                    status = "slow"
                if status:
                    break
        finally:  # also on Ctrl-C: the run leads its own process group, so the terminal's SIGINT never reaches it
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        wall = time.monotonic() - start
        log.seek(0)
        lines = [line.strip() for line in log.read().replace("\r", "\n").splitlines() if line.strip()]
    status = status or ("ok" if proc.returncode == 0 else "failed")
    return Outcome(status, round(wall, 1), round(cpu, 1), proc.returncode, lines[-1][-200:] if lines else "")


def command(strategy: str, seeds: int, out: str) -> list[str]:
    """The 8-seed palindrome command with the strategy and seed count as overrides (or the
    reproducer, the library call, or a bisection arm, which ``--arms`` passes as ``strategy``)."""
    if _ARMS.value:
        return [sys.executable, "benchmarks/hang_bisect.py", f"--arm={strategy}", f"--seeds={seeds}"]
    if _REPRODUCER.value:
        return [sys.executable, "benchmarks/hang_reproducer.py", f"--seeds={seeds}", f"--strategy={strategy}"]
    if _LIBRARY.value:
        return [sys.executable, "benchmarks/library_seeds.py", f"--seeds={seeds}", f"--strategy={strategy}",
                *[f"--set={o}" for o in _EXTRA.value]]
    overrides = [
        "sweep.models=lstm", "sweep.lengths=10", "train.num_steps=100",
        f"train.num_seeds={seeds}", f"runner.seed_strategy={strategy}", *_EXTRA.value,
    ]
    return [sys.executable, "scripts/run_palindrome.py", "--config=configs/palindrome.py",
            *[f"--config.{o}" for o in overrides], f"--out={out}"]


def summarize(rows: list[dict]) -> list[dict]:
    """One line per (strategy, seeds, xla_flags): counts of each status and the median ok wall time."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["strategy"], row["seeds"], row["xla_flags"]), []).append(row)
    table = []
    for (strategy, seeds, xla_flags), runs in groups.items():
        ok = sorted(r["wall_s"] for r in runs if r["status"] == "ok")
        counts = {s: sum(r["status"] == s for r in runs) for s in ("ok", "hang", "failed", "slow")}
        table.append(dict(strategy=strategy, seeds=seeds, xla_flags=xla_flags or "-", runs=len(runs), **counts,
                          median_ok_wall_s=ok[len(ok) // 2] if ok else None))
    return table


def print_table(table: list[dict]) -> None:
    """Markdown table of :func:`summarize`."""
    print("| strategy or arm | seeds | XLA_FLAGS | runs | ok | hang | failed | slow | median ok wall s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for t in table:
        print(f"| {t['strategy']} | {t['seeds']} | {t['xla_flags']} | {t['runs']} | {t['ok']} | {t['hang']} | "
              f"{t['failed']} | {t['slow']} | {t['median_ok_wall_s']} |")


def main(argv):
    check_arguments(argv)
    if _REPRODUCER.value + _LIBRARY.value + bool(_ARMS.value) > 1:
        raise app.UsageError("--reproducer, --library and --arms each choose what runs: give one")
    for arm in _ARMS.value:
        if arm not in ARMS:
            raise app.UsageError(f"unknown arm {arm!r}; choose from {', '.join(ARMS)}")
    seed_counts = check_positive_ints(_SEEDS.value, "seeds")
    for strategy in [] if _ARMS.value else _STRATEGIES.value:  # a bad name would fail every run of its row
        if _REPRODUCER.value and strategy not in REPRODUCER_STRATEGIES:
            raise app.UsageError(f"--reproducer takes --strategies from {', '.join(REPRODUCER_STRATEGIES)}, got {strategy!r}")
        if _LIBRARY.value and strategy.startswith("threads"):
            raise app.UsageError(f"--library runs one program: --strategies from auto, vmap, map, map:K, got {strategy!r}")
        resolve_seed_strategy(strategy, backend="cpu")
    out = check_out(_OUT.value)
    flag_sets = [""] + [f.strip() for f in _XLA_FLAGS.value.split(";") if f.strip()]
    meta = dict(python=sys.version.split()[0], cpus=os.cpu_count(), idle_s=_IDLE_S.value, timeout_s=_TIMEOUT_S.value,
                load_before=os.getloadavg())
    rows = []
    try:
        for xla_flags in flag_sets:
            env = dict(os.environ)
            if xla_flags:
                env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + xla_flags).strip()
            for strategy in _ARMS.value or _STRATEGIES.value:
                for seeds in seed_counts:
                    for index in range(_RUNS.value):
                        with tempfile.TemporaryDirectory() as tmp:
                            outcome = run_once(command(strategy, seeds, tmp + "/out"), env, _IDLE_S.value, _TIMEOUT_S.value)
                        row = dict(strategy=strategy, seeds=seeds, xla_flags=xla_flags, run=index,
                                   **dataclasses.asdict(outcome))
                        rows.append(row)
                        print(f"{strategy:>6s} seeds={seeds:<3d} {xla_flags or '-'} run {index + 1}/{_RUNS.value}: "
                              f"{outcome.status} {outcome.wall_s:.0f}s cpu {outcome.cpu_s:.0f}s", flush=True)
                        if outcome.status == "failed":
                            print("   ", outcome.last_line, flush=True)
    except KeyboardInterrupt:  # the run in progress was killed with its group; keep the finished ones
        if rows:  # beside --out, never over a finished report
            report(interrupted_path(out), dict(meta, interrupted=True), rows)
        raise
    report(out, meta, rows)


def report(out: pathlib.Path, meta: dict, rows: list[dict]) -> None:
    """Prints the summary table of ``rows`` and writes it, ``meta`` and the rows to ``out``."""
    table = summarize(rows)
    print_table(table)
    write_json(out, dict(meta=dict(meta, load_after=os.getloadavg()), table=table, runs=rows))


if __name__ == "__main__":
    run_main(main)
