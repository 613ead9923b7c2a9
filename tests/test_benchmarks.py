"""Benchmarks end to end on tiny settings (what they write, not how fast anything is)."""

import contextlib
import importlib.util
import io
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import time
from unittest import mock

import pytest
from absl import app, flags

from jaxseq import cli
from test_train import lapack_batch_dims  # tests/test_train.py

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCHMARKS_DIR = ROOT / "benchmarks"


app.define_help_flags()
_ABSL_FLAGS = set(flags.FLAGS)


def run_in_process(script: str, args: list) -> tuple[int, str]:
    """``benchmarks/<script> <args>`` run in this process, as :func:`jaxseq.cli.run_main` runs it from
    the command line (a fresh import of the benchmark and its helpers, so absl's flags start clean):
    ``(exit code, stderr)``. Only for command lines that fail before measuring anything."""
    for flag in set(flags.FLAGS) - _ABSL_FLAGS:
        delattr(flags.FLAGS, flag)
    for name, module in list(sys.modules.items()):  # benchmarks/cli.py and the like define flags too
        if str(getattr(module, "__file__", "") or "").startswith(str(BENCHMARKS_DIR)):
            del sys.modules[name]
    spec = importlib.util.spec_from_file_location(f"_benchmark_{pathlib.Path(script).stem}", BENCHMARKS_DIR / script)
    module = importlib.util.module_from_spec(spec)
    err, cwd, path = io.StringIO(), os.getcwd(), list(sys.path)
    try:
        os.chdir(ROOT)
        sys.path.insert(0, str(BENCHMARKS_DIR))
        with mock.patch.object(cli, "exit_now", sys.exit), contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as exited:
            spec.loader.exec_module(module)
            cli.run_main(module.main, [script, *args])
    finally:
        os.chdir(cwd)
        sys.path[:] = path
    return exited.value.code, err.getvalue()


def assert_refused(tmp_path, script: str, flag: str, bad: str, out: str = "x.json") -> None:
    """``benchmarks/<script> <flag> --out=<tmp_path>/<out>`` fails as a usage error (exit code 2) with a
    one-line error naming ``bad`` and writes nothing (``out=""``: no ``--out`` added, ``flag`` gives its own)."""
    before = sorted(tmp_path.rglob("*"))
    code, err = run_in_process(script, [flag, f"--out={tmp_path / out}"] if out else [flag])
    assert code == 2 and bad in err, err[-2000:]
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert sorted(tmp_path.rglob("*")) == before


def run_benchmark(script: str, args: list) -> subprocess.CompletedProcess:
    """Runs ``benchmarks/<script> <args>`` from the repository root and asserts that it succeeded."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def benchmark_report(tmp_path, script: str, args: list, out_flag: str = "--out") -> tuple[dict, subprocess.CompletedProcess]:
    """Runs ``benchmarks/<script> <args> <out_flag>=<tmp_path>/report.json``: the JSON it wrote and the process."""
    out = tmp_path / "report.json"
    result = run_benchmark(script, [*args, f"{out_flag}={out}"])
    return json.loads(out.read_text()), result


def test_bench_startup_measures_every_interpreter_and_module(tmp_path):
    report, result = benchmark_report(tmp_path, "bench_startup.py", [f"--pythons={sys.executable}", "--modules=json,numpy",
                                                                     "--repeats=2"])
    assert set(report["samples"]) == {"json", "numpy"}
    for module in ("json", "numpy"):
        [samples] = report["samples"][module].values()
        assert len(samples) == 2 and all(s > 0 for s in samples)
    assert {"numpy", "jax"} <= set(report["pythons"][sys.executable])
    assert "ratio to first" not in result.stdout  # one interpreter: nothing to compare


def test_bench_startup_refuses_a_missing_interpreter(tmp_path):
    assert_refused(tmp_path, "bench_startup.py", f"--pythons={sys.executable},{tmp_path / 'nosuch'}", "no interpreter")


@pytest.mark.slow
def test_bench_scan_length_writes_rows_and_mode_ratios(tmp_path):
    out = tmp_path / "scan.json"
    variants = "lstm,lru-parallel,lru-sequential"
    args = ["--lengths=4", f"--variants={variants}", "--repeats=2", "--chunk_time_steps=10", f"--out={out}"]
    run_benchmark("bench_scan_length.py", args)
    report = json.loads(out.read_text())
    rows = {(r["variant"], r["length"]): r for r in report["rows"]}
    assert set(rows) == {(v, 4) for v in variants.split(",")}
    assert all(r["chunk_steps"] == 2 for r in rows.values())  # 10 time steps // T = 4
    assert all(len(r["seconds"]) == 2 and r["seed_steps_per_s"] > 0 for r in rows.values())
    [ratio] = report["ratios"]
    assert (ratio["cell"], ratio["length"]) == ("lru", 4)
    parallel, sequential = rows[("lru-parallel", 4)]["seed_steps_per_s"], rows[("lru-sequential", 4)]["seed_steps_per_s"]
    assert abs(ratio["parallel_over_sequential"] - parallel / sequential) < 0.01 * parallel / sequential + 0.006


@pytest.mark.slow
def test_bench_atlas_cost_times_each_cell_in_the_atlas_set_up(tmp_path):
    out = tmp_path / "cost.json"
    run_benchmark("bench_atlas_cost.py", ["--cells=rnn,lru", "--tasks=copy", "--lengths=4", "--chunk=2", "--repeats=2",
                                          f"--out={out}"])
    report = json.loads(out.read_text())
    assert [(r["cell"], r["task"], r["length"]) for r in report["rows"]] == [("rnn", "copy", 4), ("lru", "copy", 4)]
    for row in report["rows"]:
        assert len(row["seconds"]) == 2 and row["ms_per_step"] > 0
        assert abs(row["failing_setting_min"] - row["ms_per_step"] * 2000 / 60000) < 0.06
    assert report["meta"]["seeds"] == 3 and report["meta"]["hidden_size"] == 64


def test_bench_scan_length_refuses_unknown_variants(tmp_path):
    assert_refused(tmp_path, "bench_scan_length.py", "--variants=lstm,mamba", "mamba")


def test_bench_input_grad_writes_both_timings_per_case(tmp_path):
    out = tmp_path / "input_grad.json"
    args = ["--cells=rnn,lstm", "--lengths=3", "--repeats=2", "--calls=1", f"--out={out}"]
    result = run_benchmark("bench_input_grad.py", args)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["cell"], r["length"]) for r in rows] == [("rnn", 3), ("lstm", 3)]
    assert all(r["params_only_ms"] > 0 and r["with_inputs_ms"] > 0 for r in rows)
    assert "| lstm | 3 |" in result.stdout


def test_bench_input_grad_refuses_unknown_cells(tmp_path):
    assert_refused(tmp_path, "bench_input_grad.py", "--cells=lstm,mamba", "mamba")


@pytest.mark.slow
def test_bench_processes_times_each_exchange(tmp_path):
    out = tmp_path / "processes.json"
    args = ["--lengths=3", "--exchanges=single,shm", "--steps=2", "--repeats=1", f"--out={out}"]
    run_benchmark("bench_processes.py", args)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["exchange"], r["length"]) for r in rows] == [("single", 3), ("shm", 3)]
    assert all(r["steps_per_s"] > 0 for r in rows)


def test_bench_processes_refuses_unknown_exchanges(tmp_path):
    assert_refused(tmp_path, "bench_processes.py", "--exchanges=shm,mpi", "mpi")


def test_bench_recurrent_times_one_seed_unsharded_and_sharded_both_ways(tmp_path):
    """One seed: unsharded, 2 shards on CPU devices (what ``auto`` gives), 2 shards on host threads."""
    out = tmp_path / "recurrent.json"
    args = ["--lengths=3", "--seeds=1", "--variants=ours-rnn", "--repeats=1", "--chunk=2", f"--out={out}"]
    run_benchmark("bench_recurrent.py", args)
    report = json.loads(out.read_text())
    assert [row["strategy"] for row in report["rows"]] == ["-", "shards:2", "shards:2:threads"]
    assert all(row["seed_steps_per_s"] > 0 and len(row["seconds"]) == 1 for row in report["rows"])
    rate = {row["strategy"]: row["seed_steps_per_s"] for row in report["rows"]}
    [devices_over_threads] = [r for r in report["ratios"] if r["what"] == "ours-rnn shards:2 / shards:2:threads (1 seed)"]
    assert abs(devices_over_threads["ratio"] - rate["shards:2"] / rate["shards:2:threads"]) < 0.01


def test_bench_recurrent_refuses_unknown_shard_modes(tmp_path):
    assert_refused(tmp_path, "bench_recurrent.py", "--shard_modes=devices,mpi", "mpi")


def test_bench_matmul_times_every_shape_and_row_count(tmp_path):
    """Every (K x N, M) case gets a jax timing, and a PyTorch one with its ratio where torch is installed."""
    out = tmp_path / "matmul.json"
    args = ["--rows=2,3", "--shapes=8x16,5X4t", "--chain=3", "--calls=1", "--repeats=2", f"--out={out}"]
    run_benchmark("bench_matmul.py", args)
    report = json.loads(out.read_text())
    rows = report["results"]
    assert [(r["k"], r["n"], r["transposed"], r["rows"]) for r in rows] == [
        (8, 16, False, 2), (8, 16, False, 3), (5, 4, True, 2), (5, 4, True, 3)]
    with_torch = importlib.util.find_spec("torch") is not None  # the same interpreter runs the script
    for r in rows:
        frameworks = ["jax", "torch"] if with_torch else ["jax"]
        assert [f for f in ("jax", "torch") if f in r] == frameworks
        for f in frameworks:
            seconds = statistics.median(r[f]["samples_s"])
            assert len(r[f]["samples_s"]) == 2 and abs(r[f]["us_per_matmul"] - 1e6 * seconds) < 1e-6
            assert abs(r[f]["gflop_per_s"] - 2 * r["rows"] * r["k"] * r["n"] / seconds / 1e9) < 1e-9
        if with_torch:
            assert abs(r["jax_over_torch"] - r["torch"]["us_per_matmul"] / r["jax"]["us_per_matmul"]) < 1e-9


def test_bench_matmul_refuses_a_shape_that_is_not_k_by_n(tmp_path):
    assert_refused(tmp_path, "bench_matmul.py", "--shapes=513x1024,513by1024", "513by1024")


def test_bench_gcn_writes_the_rows_of_its_scaling_table(tmp_path):
    args = ["--max_nodes=1000", "--dense_max_nodes=1000", "--features=4", "--repeats=2", "--seeds=0"]
    report, _ = benchmark_report(tmp_path, "bench_gcn.py", args)
    rows = report["scaling"]
    assert [(r["variant"], r["nodes"]) for r in rows] == [("sparse", 1000), ("dense", 1000)]
    assert rows[0]["edges"] == rows[1]["edges"] > 1000  # the same graph, self-loops included
    for r in rows:
        assert r["epoch_ms"] >= r["epoch_ms_min"] > 0 and r["compile_s"] > 0
        assert r["program_mb"] > 0 and r["temp_mb"] >= 0
    assert report["peak_rss_mb"] > 0 and report["settings"]["features"] == 4 and "seeds" not in report
    assert {"platform", "cpu_cores", "backend", "jax"} <= set(report["machine"])


@pytest.mark.slow
def test_bench_textgen_writes_chars_per_second_and_ratios(tmp_path):
    """The rows and ratios of the README's chars/s table (without the batch-shard row: one compile less)."""
    args = ["--batch_size=2", "--seq_len=3", "--hidden_size=4", "--vocab_size=5", "--steps_per_call=2", "--repeats=2",
            "--shards=1"]
    report, _ = benchmark_report(tmp_path, "bench_textgen.py", args)
    rows = {r["model"]: r for r in report["results"]}
    ours = report["results"][0]["model"]
    assert ours.startswith("jaxseq CharLSTM") and "flax nn.RNN(nn.OptimizedLSTMCell)" in rows
    assert "jaxseq CharLSTM, text trainer's step" in rows
    for r in rows.values():
        assert len(r["times_s"]) == 2 and r["params"] > 0 and r["first_call_s"] > 0
        assert r["chars_per_s"] == pytest.approx(2 * 2 * 3 / statistics.median(r["times_s"]))
        assert r["ms_per_step"] == pytest.approx(1000 * statistics.median(r["times_s"]) / 2)
    for name, r in rows.items():
        if name != ours:
            assert report["ratios"][f"jaxseq / {name}"] == pytest.approx(rows[ours]["chars_per_s"] / r["chars_per_s"])
    assert report["setup"]["hidden_size"] == 4 and report["interrupted"] is False


def test_profile_step_writes_cpu_time_by_kind_of_op(tmp_path):
    args = ["--profile_variants=ours-lstm", "--length=2", "--chunks=1", "--chunk=1"]
    report, result = benchmark_report(tmp_path, "profile_step.py", args, out_flag="--profile_out")
    assert (report["lengths"], report["chunks"]) == ([2], 1)
    [row] = report["results"]
    assert (row["variant"], row["length"], row["time_steps"]) == ("ours-lstm", 2, 2) and row["wall_ms_per_step"] > 0
    kinds = row["cpu_ms_per_step_by_kind"]
    assert kinds and set(kinds) <= {"matmul", "stack/slice", "copy", "wait", "loop control", "elementwise", "other"}
    assert kinds.get("matmul", 0) > 0 and all(v >= 0 for v in kinds.values()) and row["top_ops"]
    assert "| wall ms/step |" in result.stdout


@pytest.mark.parametrize("script, flag", [("bench_textgen.py", "--repeats=0"), ("bench_gcn.py", "--features=0"),
                                          ("stress_hangs.py", "--runs=0"), ("bench_matmul.py", "--chain=0")])
def test_benchmarks_refuse_a_count_below_one(tmp_path, script, flag):
    assert_refused(tmp_path, script, flag, flag.removeprefix("--"))


BENCHMARKS = ["bench_atlas_cost.py", "bench_gcn.py", "bench_input_grad.py", "bench_matmul.py", "bench_processes.py", "bench_recurrent.py",
              "bench_scan_length.py", "bench_startup.py", "bench_textgen.py", "stress_hangs.py"]


@pytest.mark.parametrize("script", BENCHMARKS)
def test_benchmarks_refuse_an_out_they_could_not_write_before_measuring(tmp_path, script):
    (tmp_path / "taken").mkdir()  # a directory where the JSON file should go: refused at once, not after the run
    assert_refused(tmp_path, script, f"--out={tmp_path / 'taken'}", "is a directory", out="")


@pytest.mark.parametrize("script, flag, bad", [("bench_gcn.py", "stray", "unexpected arguments"),
                                               ("bench_textgen.py", "stray", "unexpected arguments"),
                                               ("bench_recurrent.py", "--out=-x.json", "mistyped flag"),
                                               ("bench_recurrent.py", "--variants=ours-lstm,torch-lsmt", "torch-lsmt"),
                                               ("profile_step.py", "--profile_variants=torch-lstm", "torch-lstm"),
                                               ("profile_step.py", "--profile_variants=atlas:lsmt", "atlas:lsmt"),
                                               ("stress_hangs.py", "--strategies=auto,vmpa", "vmpa"),
                                               ("stress_hangs.py", "--arms=as-is,no-evall", "no-evall"),
                                               ("bench_textgen.py", "--shards=2,x", "--shards")])
def test_benchmarks_refuse_stray_arguments_unknown_names_and_flag_like_paths(tmp_path, script, flag, bad):
    assert_refused(tmp_path, script, flag, bad, out="" if flag.startswith("--out=") else "x.json")


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux ``/proc``)."""
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_stress_hangs_on_ctrl_c_kills_its_run_and_keeps_what_finished(tmp_path):
    out = tmp_path / "stress.json"
    args = ["--strategies=map", "--seeds=1", "--runs=3", "--extra=train.num_steps=2", f"--out={out}"]
    parent = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "stress_hangs.py"), *args], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while (line := parent.stdout.readline()) and " run 1/3: " not in line:  # until the first run has finished
        pass
    assert " run 1/3: ok" in line, parent.communicate(timeout=60)[1][-2000:]
    second = []
    while not second and parent.poll() is None:  # until the second run has started
        second = children_of(parent.pid)
        time.sleep(0.05)
    assert len(second) == 1, f"stress_hangs.py started runs {second}"
    parent.send_signal(signal.SIGINT)
    _, err = parent.communicate(timeout=120)
    assert parent.returncode == 130 and err.strip().splitlines()[-1] == "interrupted", err[-2000:]
    assert not pathlib.Path(f"/proc/{second[0]}").exists()  # its own process group: killed, not left running
    assert not out.exists()  # a finished report there would have been kept
    report = json.loads((tmp_path / "stress.interrupted.json").read_text())
    assert report["meta"]["interrupted"] is True
    assert [run["status"] for run in report["runs"]] == ["ok"]  # the first run, finished before Ctrl-C


def test_bench_recurrent_on_ctrl_c_reports_the_repeats_that_finished(tmp_path):
    out = tmp_path / "bench.json"
    args = ["--variants=ours-rnn", "--lengths=3", "--seeds=1", "--shards=1", "--chunk=1", "--repeats=1000000", f"--out={out}"]
    parent = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "bench_recurrent.py"), *args], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while (line := parent.stdout.readline()) and not line.startswith("repeat 1 of"):
        pass
    assert line.startswith("repeat 1 of"), parent.communicate(timeout=60)[1][-2000:]  # one repeat timed, more to come
    parent.send_signal(signal.SIGINT)
    _, err = parent.communicate(timeout=120)
    assert parent.returncode == 130 and err.strip().splitlines()[-1] == "interrupted", err[-2000:]
    assert not out.exists()
    report = json.loads((tmp_path / "bench.interrupted.json").read_text())
    (row,) = report["rows"]
    assert report["meta"]["interrupted"] is True and row["variant"] == "ours-rnn" and len(row["seconds"]) >= 1


@pytest.mark.slow
def test_stress_hangs_library_mode_runs_the_documented_one_line_multi_seed_call(tmp_path):
    report, _ = benchmark_report(tmp_path, "stress_hangs.py", [
        "--library", "--strategies=auto", "--seeds=2", "--runs=1", "--extra=train.num_steps=2,data.batch_size=8",
    ])
    assert [(r["strategy"], r["seeds"], r["status"]) for r in report["runs"]] == [("auto", 2, "ok")]
    assert report["runs"][0]["last_line"].startswith("done [")  # library_seeds.py: both seeds' accuracies


@pytest.mark.slow
def test_hang_bisect_arms_keep_or_take_out_the_batched_qr_as_they_say():
    """Every arm but ``as-is``, ``lyapunov`` and ``no-qr`` keeps the batched LAPACK QR (the
    deadlock's trigger) and takes out something else; ``as-is`` and ``lyapunov`` (whose spectrum's
    QR is written in jnp) have only one-matrix QRs, ``no-qr`` none. Lowered, not run: a batched arm
    may hang."""
    import jax

    spec = importlib.util.spec_from_file_location("hang_bisect", ROOT / "benchmarks" / "hang_bisect.py")
    hang_bisect = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hang_bisect)
    small = {"model.hidden_size": 8, "data.batch_size": 4, "data.eval_batch_size": 4, "train.num_steps": 2,
             "train.chunk_steps": 2}
    keys = jax.random.split(jax.random.key(0), 2)
    for arm in hang_bisect.ARMS:
        trainer = hang_bisect.make_arm(arm, **small)
        dims = set(lapack_batch_dims(jax.vmap(trainer.train), keys))
        expected = {"as-is": {0}, "lyapunov": {0}, "no-qr": set()}.get(arm, {1})
        assert dims == expected, (arm, dims)
        _, metrics = jax.eval_shape(jax.vmap(trainer.train), keys)
        assert ("eval_accuracy" in metrics) == (arm not in ("no-eval", "init-only")), arm
        assert ("loss" in metrics) == (arm != "init-only"), arm
        assert ("lyapunov" in metrics) == (arm == "lyapunov"), arm
