"""The textgen scripts (train, generate, evaluate, n-gram baseline, data size) end to end on a small book written here."""

import json

import pytest

from test_study_scripts import assert_figure, read_csv, run

BOOK = "Once upon a time there was a king who had three daughters.\n" * 60


@pytest.mark.slow
def test_train_generate_evaluate(tmp_path):
    book, out = tmp_path / "book.txt", tmp_path / "run"
    book.write_text(BOOK, encoding="utf-8")
    run("train_textgen.py", "--config=configs/textgen.py:quick", f"--data={book}", f"--out={out}")
    for name in ("config.json", "vocab.json", "metrics.jsonl"):
        assert (out / name).is_file(), name
    assert_figure(out / "curves.png")
    (summary,) = read_csv(out / "results.csv")
    assert summary["steps"] == "30" and float(summary["val_loss"]) > 0
    stages = [line for line in (out / "samples.txt").read_text().splitlines() if line.startswith("===")]
    assert len(stages) == 3, stages  # greedy samples at 1/3, 2/3 and 3/3 of the run
    again = run("train_textgen.py", "--config=configs/textgen.py:quick", f"--data={book}", f"--out={out}", "--resume")
    assert "already finished" in again.stdout and len(read_csv(out / "results.csv")) == 1
    for checkpoint in (out / "checkpoints").iterdir():  # as in a fresh clone: logs committed, no checkpoints
        checkpoint.unlink()
    run("train_textgen.py", "--config=configs/textgen.py:quick", f"--data={book}", f"--out={out}", "--resume")
    assert len(read_csv(out / "results.csv")) == 1 and (out / "samples.txt").read_text().count("===") == 2 * 3
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [10, 20, 30]

    generated = run("generate.py", f"--run={out}", "--prompt=Once upon", "--length=80", "--num_samples=2",
                    "--temperature=0.5", "--seed=3")
    texts = [line for line in generated.stdout.splitlines() if not line.startswith("---")]
    assert len(texts) == 2 and all(t.startswith("Once upon") for t in texts), generated.stdout

    bad = run("generate.py", f"--run={out}", "--prompt=Zebra!", check=False)
    assert bad.returncode != 0 and "error:" in bad.stderr and "'Z'" in bad.stderr, bad.stderr[-500:]

    evaluated = run("eval_textgen.py", f"--run={out}", f"--data={book}", "--streams=2")
    rows = json.loads((out / "evaluation.json").read_text())["rows"]
    assert {(r["text"], r["reading"].split(" (")[0]) for r in rows} == {
        (text, reading) for text in ("training (tail)", "validation") for reading in ("windows of 12", "carried")
    }
    assert all(r["loss"] > 0 and 0 <= r["accuracy"] <= 1 for r in rows)
    assert "validation" in evaluated.stdout

    size = tmp_path / "data_size"
    run("textgen_data_size.py", f"--runs={out}", f"--data={book}", "--order=2", "--ngram_fractions=0.5",
        f"--out={size}")
    summary = json.loads(size.with_suffix(".json").read_text())
    (point,) = summary["lstm"]
    val = next(r for r in rows if r["text"] == "validation" and r["reading"] == "windows of 12")
    assert point["val_loss"] == val["loss"] and point["train_fraction"] == 1.0
    assert [p["train_fraction"] for p in summary["ngram"]] == [0.5, 1.0]
    assert_figure(size.with_suffix(".png"))
    (out / "evaluation.json").rename(tmp_path / "evaluation.json")
    unevaluated = run("textgen_data_size.py", f"--runs={out}", f"--data={book}", f"--out={size}", "--overwrite",
                      check=False)
    assert unevaluated.returncode != 0 and "eval_textgen.py" in unevaluated.stderr, unevaluated.stderr[-500:]
    (tmp_path / "evaluation.json").rename(out / "evaluation.json")

    other = tmp_path / "other.txt"
    other.write_text("xyz " * 200, encoding="utf-8")
    wrong = run("eval_textgen.py", f"--run={out}", f"--data={other}", check=False)
    assert wrong.returncode != 0 and "vocabulary" in wrong.stderr, wrong.stderr[-500:]


def test_ngram_baseline(tmp_path):
    book, out = tmp_path / "book.txt", tmp_path / "ngram.json"
    book.write_text(BOOK, encoding="utf-8")
    printed = run("ngram_baseline.py", "--config=configs/textgen.py:quick", f"--data={book}", "--orders=1,3",
                  f"--out={out}")
    rows = json.loads(out.read_text())["rows"]
    assert [(r["order"], r["text"]) for r in rows] == [
        (order, text) for order in (1, 3) for text in ("validation", "training (tail)", "validation")
    ]
    by_order = {r["order"]: r for r in rows if r["fit_on"] == "training split"}
    assert by_order[3]["loss"] < by_order[1]["loss"]  # a repeated line is predictable from 2 characters
    assert "nats/char" in printed.stdout
