"""scripts/run_palindrome.py end to end on a tiny sweep: files, resume, plot-only (its bad command lines:
tests/test_cli_errors.py)."""

import csv
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "run_palindrome.py"
TINY = [
    "--config=configs/palindrome.py:quick",
    "--config.sweep.models=rnn",
    "--config.train.num_steps=40",
    "--config.train.chunk_steps=20",
]


def run(*args, check=True):
    result = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(result.stderr[-3000:])
    return result


@pytest.mark.slow
def test_sweep_writes_results_resumes_and_replots(tmp_path):
    out = tmp_path / "sweep"
    run(*TINY, "--config.sweep.lengths=4,5", f"--out={out}")
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["model"], r["length"], r["seed"]) for r in rows] == [
        ("rnn", "4", "0"), ("rnn", "4", "1"), ("rnn", "5", "0"), ("rnn", "5", "1")
    ]
    for row in rows:
        assert 0.0 <= float(row["eval_accuracy"]) <= 1.0
        assert 0 < int(row["steps"]) <= 40
    metrics = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert {m["step"] for m in metrics} >= {10, 20, 30, 40}
    assert json.load(open(out / "config.json"))["train"]["num_steps"] == 40
    for name in ["accuracy_vs_length.png", "curves_T4.png", "curves_T5.png"]:
        assert (out / name).stat().st_size > 1000

    # the same command again trains nothing new; a longer list trains only the new length
    again = run(*TINY, "--config.sweep.lengths=4,5,6", f"--out={out}")
    assert "2 of 3 settings already in" in again.stdout
    lengths = [r["length"] for r in csv.DictReader(open(out / "results.csv"))]
    assert lengths == ["4", "4", "5", "5", "6", "6"]

    (out / "accuracy_vs_length.png").unlink()
    run(f"--out={out}", "--plot_only")
    assert (out / "accuracy_vs_length.png").exists()
