"""Numbers the README and docs/ quote from committed result files are those files' numbers, and
every ``results/`` path they name is committed (so neither can drift from what a clone holds)."""

import collections
import csv
import fnmatch
import json
import pathlib
import re

import numpy as np
import pytest
from test_figures import tracked_results

from jaxseq.analysis.frontier import summarize

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
# paths the docs give as where a command *will* write (examples), not as committed results
EXAMPLE_OUTPUTS = {"results/demo", "results/demo/", "results/mine", "results/", "results/textgen/"}


def read(path: str) -> str:
    return (ROOT / path).read_text()


def rows(path: str) -> list[dict]:
    with open(ROOT / path) as f:
        return list(csv.DictReader(f))


def two_figures(x: float) -> str:
    """``x`` to two significant figures with thousands separators, as the docs quote ratios (7,100; 2.5)."""
    rounded = float(f"{x:.2g}")
    return f"{rounded:,.0f}" if rounded >= 10 else f"{rounded:g}"


def grad_norm_ratios(path: str) -> dict[tuple[str, str], float]:
    """``{(model, stage): mean norm at the last input step / mean norm at t = 1}`` over seeds."""
    norms = collections.defaultdict(lambda: collections.defaultdict(list))
    for row in rows(path):
        norms[(row["model"], row["stage"])][int(row["t"])].append(float(row["grad_norm"]))
    return {key: np.mean(by_t[max(by_t)]) / np.mean(by_t[1]) for key, by_t in norms.items()}


def first_step(path: str, model: str) -> list[float]:
    """The seeds' batch-mean norms at t = 1 at initialisation."""
    return [float(r["grad_norm"]) for r in rows(path) if r["model"] == model and r["stage"] == "init" and r["t"] == "1"]


# the rows of docs/study.md's table of the linear recurrences' gradient norms
MODERN_ROWS = {"rnn": "vanilla RNN", "lstm": "LSTM (forget bias 1)", "mingru": "minGRU", "minlstm": "minLSTM", "lru": "LRU"}


def test_gradient_ratios_quoted_are_the_committed_ones():
    classic = grad_norm_ratios("results/grad_norms/grad_norms.csv")
    modern = grad_norm_ratios("results/grad_norms_modern/grad_norms.csv")
    study, readme = read("docs/study.md"), read("README.md")
    init, trained = two_figures(classic[("rnn", "init")]), two_figures(classic[("rnn", "step 500")])
    assert f"vanilla RNN: ~{init}x smaller than at t = 30" in readme
    assert f"about {init}× (init) and {trained}× (after training)" in study
    lstm, rnn = (np.mean(first_step("results/grad_norms/grad_norms.csv", m)) for m in ("lstm", "rnn"))
    assert f"LSTM: ~{round(lstm / rnn, -1):.0f}x the RNN's" in readme
    table = study.split("## Gradient norms of the linear recurrences", 1)[1].split("\n## ", 1)[0]
    for model, label in MODERN_ROWS.items():
        (line,) = [line for line in table.splitlines() if line.startswith(f"| {label} |")]
        assert f"| {two_figures(modern[(model, 'init')])} |" in line, (model, line)
    assert f"vanilla RNN's {two_figures(modern[('rnn', 'init')])}x" in study
    assert f"{two_figures(modern[('mingru', 'init')])}x (minGRU) and {two_figures(modern[('minlstm', 'init')])}x" in study


@pytest.mark.parametrize("name", ["frontier_long", "frontier_full_raw", "frontier_full_onehot"])
def test_frontier_tables_quote_the_committed_runs(name):
    """Every cell "mean ± std (mean steps)" of the study's frontier tables, from OUT/results.csv."""
    results = rows(f"results/{name}/results.csv")
    study = read("docs/study.md")
    for row in summarize(results, threshold=0.99, min_seeds=3):
        seeds = [r for r in results if r["variant"] == row["variant"] and int(r["length"]) == row["length"]]
        steps = np.mean([float(r["steps"]) for r in seeds])
        cell = rf"\**{row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f}\** \({steps:.0f}\)"
        assert re.search(cell, study), (name, row["variant"], row["length"], cell)


def test_palindrome_sweep_and_headline_numbers_are_the_committed_ones():
    study, readme = read("docs/study.md"), read("README.md")
    at_20 = [float(r["eval_accuracy"]) for r in rows("results/palindrome/results.csv")
             if r["model"] == "rnn" and r["length"] == "20"]
    assert ", ".join(f"{a:.3f}" for a in at_20) in study
    for model in ("gcn", "gat"):
        for dataset in ("cora", "citeseer"):
            acc = 100 * np.array([float(r["test_acc"]) for r in rows(f"results/gnn/{model}_{dataset}/results.csv")])
            assert f"{dataset.capitalize()} {acc.mean():.2f} ± {acc.std():.2f}" in readme, (model, dataset)
    evaluation = json.loads(read("results/textgen/grimm_long/evaluation.json"))
    (val,) = [r for r in evaluation["rows"] if r["text"] == "validation" and r["reading"].startswith("windows")]
    assert f"{val['loss']:.3f} nats/char, {100 * val['accuracy']:.1f}%" in readme


def test_every_results_path_the_docs_name_is_committed():
    tracked = tracked_results()
    named = {}
    for page in PAGES:
        for match in re.finditer(r"(?<![\w./-])(?:\.\./)?results/[\w.*/{},-]*", page.read_text()):
            path = match.group(0).removeprefix("../").rstrip(".,")
            if path not in EXAMPLE_OUTPUTS:
                named.setdefault(path, page.name)

    def committed(path: str) -> bool:
        return any(fnmatch.fnmatchcase(t, path) or t.startswith(path.rstrip("/") + "/")
                   or fnmatch.fnmatchcase(t, path + ".*") for t in tracked)

    missing = {path: page for path, page in named.items() if not committed(path)}
    assert not missing, f"paths named in the docs that are not committed: {missing}"
