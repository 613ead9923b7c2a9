"""The memory atlas: its length rule and summaries (jaxseq/analysis/atlas.py), and scripts/atlas.py
end to end on configs/atlas.py:quick (rows, the stop-at-first-failure rule, resume, drawing beside)."""

import hashlib
import math

import pytest

from jaxseq.analysis import atlas
from test_study_scripts import assert_figure, read_csv, run  # tests/test_study_scripts.py


def seed_row(length, accuracy, converged=-1, cell="c", task="t", **extra):
    return dict(cell=cell, task=task, length=str(length), eval_accuracy=str(accuracy), converged_step=str(converged),
                **extra)


def test_ladder_doubles_and_the_order_puts_each_in_between_length_after_the_doubling_above_it():
    assert atlas.ladder(16, 1024) == [16, 32, 64, 128, 256, 512, 1024]
    assert atlas.ladder(16, 100) == [16, 32, 64]
    assert atlas.run_order(16, 256) == [16, 32, 24, 64, 48, 128, 96, 256, 192]
    with pytest.raises(ValueError, match="min_length"):
        atlas.ladder(1, 8)


@pytest.mark.parametrize("done, following", [
    ({}, 16),
    ({16: (3, 3)}, 32),
    ({16: (3, 3), 32: (1, 3)}, 64),  # one seed solving is enough to climb
    ({16: (3, 3), 32: (1, 3), 64: (0, 3)}, 48),  # no seed solved 64: confirm halfway
    ({16: (3, 3), 32: (1, 3), 64: (0, 3), 48: (2, 3)}, None),  # and stop
    ({16: (0, 3)}, None),  # nothing solved: nothing longer, nothing between
    ({16: (2, 3), 32: (3, 3), 64: (3, 3), 128: (3, 3), 256: (3, 3)}, None),  # the top of the ladder
])
def test_should_train_climbs_while_a_seed_solves_and_confirms_between_the_last_solved_and_the_first_unsolved(
        done, following):
    untrained = [t for t in atlas.run_order(16, 256) if t not in done and atlas.should_train(t, 16, 256, done)]
    assert (untrained[0] if untrained else None) == following


def test_pair_summary_reads_the_frontiers_and_the_log_log_slope_of_steps_to_solve():
    rows = []
    for length in (16, 32, 64):  # every seed solves, in 0.5 T^2 steps (slope 2)
        rows += [seed_row(length, 1.0, converged=length * length // 2, seed=s) for s in range(3)]
    rows += [seed_row(128, a, converged=c) for a, c in ((0.995, 9000), (0.99, 9100), (0.2, -1))]  # mean 0.728
    rows += [seed_row(256, 0.1) for _ in range(3)]
    rows += [seed_row(96, a, converged=c) for a, c in ((1.0, 5000), (0.995, 5100), (0.993, 5200))]
    (summary,) = atlas.pair_summary(rows)
    assert summary["longest_all"] == 96 and summary["longest_mean"] == 96 and summary["first_unsolved"] == 256
    assert summary["lengths"] == "16 32 64 96 128 256"
    # slope over the lengths every seed solved: 16, 32, 64 (0.5 T^2) and 96 (5100 steps)
    points = [(16, 128), (32, 512), (64, 2048), (96, 5100)]
    xs, ys = [math.log(x) for x, _ in points], [math.log(y) for _, y in points]
    mx, my = sum(xs) / 4, sum(ys) / 4
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    assert summary["steps_slope"] == round(slope, 2) and 1.9 < slope < 2.1
    rows_out = atlas.seed_rows(rows[:1] + rows[-6:-3], 0.99)
    assert [(r["solved"], r["steps_to_solve"]) for r in rows_out] == [(1, 128), (0, ""), (0, ""), (0, "")]
    assert atlas.steps_by_length(rows)[("c", "t")][-1] == (128, 9050.0, 2)


def trained_as_the_rule_says(rows, min_length, max_length, threshold):
    """Replays the rule on a run's rows: each pair trained exactly the lengths it allows, in order."""
    pairs = {(r["cell"], r["task"]) for r in rows}
    for pair in pairs:
        mine = [r for r in rows if (r["cell"], r["task"]) == pair]
        trained = sorted({int(r["length"]) for r in mine})
        expected, seen = [], []
        for length in atlas.run_order(min_length, max_length):
            done = atlas.seeds_solving([r for r in mine if int(r["length"]) in seen], threshold)
            if atlas.should_train(length, min_length, max_length, done):
                expected.append(length)
                seen.append(length)
        assert trained == sorted(expected), pair


def digest(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.mark.slow
def test_atlas_script_trains_by_the_rule_resumes_and_draws_a_new_cell_beside_a_published_atlas(tmp_path):
    out, mine = tmp_path / "atlas", tmp_path / "mine"
    quick = ["--config=configs/atlas.py:quick", "--config.atlas.max_length=8", "--beside="]
    run("atlas.py", *quick, "--config.cells=rnn,lstm", "--config.tasks=decimal_palindrome", f"--out={out}")
    rows = read_csv(out / "results.csv")
    assert {(r["cell"], r["task"]) for r in rows} == {("rnn", "decimal_palindrome"), ("lstm", "decimal_palindrome")}
    trained_as_the_rule_says(rows, 4, 8, 0.99)
    for row in rows:
        assert int(row["num_params"]) > 0 and row["seed"] in ("0", "1")
        assert row["step_ms"] == "" or float(row["step_ms"]) > 0
    table = read_csv(out / "atlas.csv")
    assert len(table) == len(rows)
    for row in table:
        assert row["solved"] == str(int(float(row["eval_accuracy"]) >= 0.99))
        assert (row["steps_to_solve"] != "") == (row["solved"] == "1" and int(row["converged_step"]) > 0)
    summary = read_csv(out / "atlas_summary.csv")
    assert [(r["cell"], r["task"]) for r in summary] == [("rnn", "decimal_palindrome"), ("lstm", "decimal_palindrome")]
    assert_figure(out / "atlas.png")
    assert_figure(out / "atlas_steps.png")

    # the same --out again, with one more task: what finished is kept and only the new pairs train
    run("atlas.py", *quick, "--config.cells=rnn,lstm", "--config.tasks=decimal_palindrome,copy", f"--out={out}")
    again = read_csv(out / "results.csv")
    assert again[: len(rows)] == rows and {r["task"] for r in again[len(rows):]} == {"copy"}
    trained_as_the_rule_says(again, 4, 8, 0.99)

    # a redraw draws the figures again and writes nothing else
    before = digest(out)
    (out / "atlas.png").unlink()
    run("atlas.py", f"--out={out}", "--plot_only", "--beside=")
    assert_figure(out / "atlas.png")
    assert {k: v for k, v in digest(out).items() if not k.endswith(".png")} == {
        k: v for k, v in before.items() if not k.endswith(".png")}

    # a new cell into its own directory, drawn beside that atlas, which is read and never written
    before = digest(out)
    result = run("atlas.py", quick[0], "--config.atlas.max_length=4", f"--beside={out}", "--config.cells=gru",
                 "--config.tasks=copy", f"--out={mine}")  # one length: the drawing is what is checked
    assert digest(out) == before
    assert {r["cell"] for r in read_csv(mine / "results.csv")} == {"gru"}
    assert f"drawn beside: rnn, lstm (from {out})" in result.stdout
    assert_figure(mine / "atlas.png")
    assert_figure(mine / "atlas_steps.png")
