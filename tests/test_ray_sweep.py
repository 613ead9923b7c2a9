"""Sweeps on Ray (jaxseq.runner): the same rows as in-process, retries, Ctrl-C, and Ray missing.

One local Ray instance with 2 CPUs serves the module; the Ctrl-C test runs the script, which starts
(and must stop) a Ray instance of its own. Waits are event-driven (a file gains rows, a process
ends); their time limits only turn a hang into a failure.
"""

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from jaxseq import runner
from jaxseq.config import load_config
from jaxseq.files.results import RunDir
from jaxseq.train.sweep import setting_config

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "run_palindrome.py"
TINY = ["--config=configs/palindrome.py:quick", "--config.sweep.models=rnn", "--config.train.num_steps=20"]
HANG_S = 300  # a wait longer than this is a hang, whatever the machine

@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs, shared by the tests of this module."""
    ray = pytest.importorskip("ray", reason="Ray is the cluster extra: pip install -e '.[cluster]'")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def settings(*lengths: int) -> list[list[runner.Setting]]:
    """Chains of one setting each: the quick palindrome config (rnn, 20 steps, 2 seeds) at ``lengths``."""
    config = load_config("configs/palindrome.py:quick")
    chains = []
    for length in lengths:
        cfg = setting_config(config, **{"model.name": "rnn", "data.length": length, "train.num_steps": 20})
        chains.append([runner.Setting(f"rnn T={length}", cfg, dict(model="rnn", length=length))])
    return chains


def rows(path: pathlib.Path) -> list[dict]:
    return list(csv.DictReader(open(path))) if path.exists() else []


def assert_rows_close(got: list[dict], want: list[dict]) -> None:
    """Same rows in the same order, numbers equal up to float rounding (wall times aside)."""
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.keys() == b.keys()
        for key in a:
            if key == "wall_time_s":
                continue
            try:
                np.testing.assert_allclose(float(a[key]), float(b[key]), rtol=1e-5, atol=1e-6, err_msg=key)
            except (TypeError, ValueError):
                assert a[key] == b[key], key


@pytest.mark.slow
def test_ray_rows_equal_in_process_rows(local_ray, tmp_path):
    here, there = RunDir(tmp_path / "here"), RunDir(tmp_path / "ray")
    runner.run_settings(settings(4, 5), here, runner.Launch(), log_every=10)
    runner.run_settings(settings(4, 5), there, runner.Launch(cluster="ray"), log_every=10)
    key = lambda row: (row["length"], row["seed"])  # noqa: E731  (settings finish in any order on Ray)
    assert_rows_close(sorted(rows(there.file("results.csv")), key=key), sorted(rows(here.file("results.csv")), key=key))
    metrics = lambda run: sorted((json.loads(line) for line in open(run.file("metrics.jsonl"))),  # noqa: E731
                                 key=lambda m: (m["length"], m["seed"], m["step"]))
    assert_rows_close(metrics(there), metrics(here))
    assert local_ray.is_initialized()  # a Ray instance the caller started stays up


@pytest.mark.slow
def test_killed_worker_is_retried_and_failures_are_reported(local_ray, tmp_path, capsys):
    """T=4: the worker dies after training, before its result is back (once); T=5 raises every time."""
    marker = tmp_path / "killed"

    def flaky(config):
        from jaxseq.runner.ray_tasks import train_seeds

        if config.data.length == 5:
            raise FloatingPointError("loss is nan")
        results = train_seeds(config)
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return results

    from jaxseq.runner.ray_tasks import run_on_ray

    run_dir = RunDir(tmp_path / "run")
    saved = []
    with pytest.raises(RuntimeError, match=r"1 setting\(s\) did not finish: rnn T=5;"):
        run_on_ray(settings(4, 5), run_dir, runner.Launch(cluster="ray", retries=1), 10, saved.append, lambda s: None, flaky)
    assert marker.exists()
    assert [(r["length"], r["seed"]) for r in rows(run_dir.file("results.csv"))] == [("4", "0"), ("4", "1")]
    steps = [(m["seed"], m["step"]) for m in map(json.loads, open(run_dir.file("metrics.jsonl")))]
    assert sorted(steps) == [(0, 10), (0, 20), (1, 10), (1, 20)]
    assert [s.label for s in saved] == ["rnn T=4"]
    errors = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error:")]
    assert errors == ["error: rnn T=5: FloatingPointError: loss is nan (failed 2 times; the next run trains it again)"]


def process_table() -> dict[int, tuple[int, str, str]]:
    """``{pid: (parent pid, state, start time)}`` of every process (Linux /proc)."""
    table = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry.name)] = (int(fields[1]), fields[0], fields[19])
    return table


def descendants(pid: int) -> dict[int, str]:
    """``{pid: start time}`` of every process below ``pid``."""
    table = process_table()
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _, start) in table.items():
            if ppid == parent and child not in found:
                found[child] = start
                frontier.append(child)
    return found


def still_running(processes: dict[int, str]) -> list[int]:
    """Those of ``processes`` (pid: start time) still alive (a zombie, ended but not reaped, is not)."""
    table = process_table()
    return [pid for pid, start in processes.items() if pid in table and table[pid][2] == start and table[pid][1] != "Z"]


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + HANG_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"hung waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.skipif(not pathlib.Path("/proc/self/stat").exists(), reason="finds Ray's processes through /proc")
def test_ctrl_c_cancels_keeps_finished_rows_and_leaves_no_ray_process(local_ray, tmp_path):
    out = tmp_path / "sweep"
    command = [sys.executable, str(SCRIPT), *TINY, "--config.sweep.lengths=4,5,6", f"--out={out}"]
    log = open(tmp_path / "log.txt", "w")
    script = subprocess.Popen([*command, "--cluster=ray", "--ray_workers=1"], cwd=ROOT, stdout=log, stderr=log)
    try:
        wait_for(lambda: len(rows(out / "results.csv")) >= 2 or script.poll() is not None, "a finished setting")
        ray_processes = descendants(script.pid)
        script.send_signal(signal.SIGINT)
        assert script.wait(timeout=HANG_S) == 130, (tmp_path / "log.txt").read_text()[-3000:]
    finally:
        if script.poll() is None:
            script.kill()
    assert ray_processes  # the script's own Ray instance ran below it
    wait_for(lambda: not still_running(ray_processes), f"Ray processes {still_running(ray_processes)} to end")
    kept = [(r["length"], r["seed"]) for r in rows(out / "results.csv")]
    assert kept and len(kept) % 2 == 0 and len(kept) < 6  # whole settings, and some still missing

    address = local_ray.get_runtime_context().gcs_address
    again = subprocess.run([*command, "--cluster=ray", f"--ray_address={address}"], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(kept) // 2} of 3 settings already in" in again.stdout
    final = sorted((r["length"], r["seed"]) for r in rows(out / "results.csv"))
    assert final == sorted((str(t), str(s)) for t in range(4, 7) for s in (0, 1))


def test_cluster_ray_without_ray_is_one_line_and_exit_2(tmp_path):
    hide_ray = (
        "import runpy, sys; sys.modules['ray'] = None; "  # `import ray` now fails as if it were not installed
        f"sys.argv = [{str(SCRIPT)!r}] + sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    args = [*TINY, "--config.sweep.lengths=4", f"--out={tmp_path / 'run'}", "--cluster=ray"]
    result = subprocess.run([sys.executable, "-c", hide_ray, *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --cluster=ray needs Ray, which is not installed here: pip install -e '.[cluster]'"
    ]
    assert not (tmp_path / "run").exists()


def test_ray_flags_without_cluster_ray_are_refused(tmp_path):
    args = [*TINY, "--config.sweep.lengths=4", f"--out={tmp_path / 'run'}", "--ray_workers=2"]
    result = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: --ray_workers needs --cluster=ray"]
    assert not (tmp_path / "run").exists()
