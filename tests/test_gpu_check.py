"""benchmarks/gpu_check.sh in its CPU mode (tiny sizes, no install): every step runs and writes its file."""

import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and coreutils")
def test_gpu_check_runs_every_step_on_cpu(tmp_path):
    out = tmp_path / "check"
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--cpu", str(out)], cwd=ROOT, capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "XLA_FLAGS": os.environ["XLA_FLAGS"]}, timeout=600)
    assert result.returncode == 0, (out / "gpu_check.log").read_text()[-3000:] if out.exists() else result.stderr
    steps = [line.split()[:2] for line in (out / "steps.txt").read_text().splitlines()]
    assert steps == [["devices", "ok"], ["tests", "ok"], ["bench", "ok"], ["palindrome", "ok"]]
    assert "CpuDevice" in (out / "devices.txt").read_text()
    assert 'failures="0"' in (out / "tests.xml").read_text()
    rows = json.loads((out / "bench_recurrent.json").read_text())["rows"]
    assert {(r["seeds"], r["strategy"]) for r in rows if r["variant"] == "ours-lstm"} >= {(2, "vmap"), (2, "map")}
    assert len(list(csv.DictReader(open(out / "palindrome" / "results.csv")))) == 2


def test_gpu_check_refuses_stray_arguments(tmp_path):
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--cpu", "a", "b"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: usage: benchmarks/gpu_check.sh [--cpu] [OUT]"
    ]
