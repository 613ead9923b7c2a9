"""scripts/dynamics.py end to end on configs/dynamics.py:quick: spectra, table, figure, plot-only."""

import math

import pytest

from test_study_scripts import assert_figure, read_csv, run  # tests/test_study_scripts.py


@pytest.mark.slow
def test_dynamics_script_measures_spectra_before_and_after_training_and_redraws(tmp_path):
    out = tmp_path / "dynamics"
    run("dynamics.py", "--config=configs/dynamics.py:quick", f"--out={out}")
    rows = read_csv(out / "spectra.csv")
    # quick: the vanilla RNN with H = 4, all 4 exponents, 2 seeds, 4 training steps
    assert {(r["cell"], r["stage"]) for r in rows} == {("rnn", "init"), ("rnn", "step 4")}
    assert len(rows) == 2 * 2 * 4
    for stage in ("init", "step 4"):
        for seed in ("0", "1"):
            spectrum = [float(r["exponent"]) for r in rows if r["stage"] == stage and r["seed"] == seed]
            assert all(math.isfinite(x) for x in spectrum) and spectrum == sorted(spectrum, reverse=True)
    assert len(read_csv(out / "results.csv")) == 2
    table = read_csv(out / "dynamics_table.csv")
    assert [(r["cell"], r["stage"]) for r in table] == [("rnn", "init"), ("rnn", "step 4")]
    init = [float(r["exponent"]) for r in rows if r["stage"] == "init" and r["index"] == "1"]
    assert math.isclose(float(table[0]["largest_mean"]), sum(init) / 2, abs_tol=1e-4)
    assert "frontier_full_raw/rnn_raw (raw, H 128, 1 layer, 3000 steps): 20" in table[0]["frontiers"]
    assert_figure(out / "dynamics.png")

    (out / "dynamics.png").unlink()
    run("dynamics.py", "--config=configs/dynamics.py:quick", f"--out={out}", "--plot_only")
    assert_figure(out / "dynamics.png")
    assert read_csv(out / "spectra.csv") == rows


def test_a_chrono_cell_is_set_beside_chrono_frontier_rows_only():
    from test_cli_errors import load_script

    dynamics = load_script("dynamics")
    rows = [
        {"table": "t", "variant": "lstm_fb1", "model": "lstm", "forget_bias": "1.0", "frontier": "50"},
        {"table": "t", "variant": "lstm_fb3", "model": "lstm", "forget_bias": "3.0", "frontier": "100"},
        {"table": "t", "variant": "lstm_chrono", "model": "lstm", "forget_bias": "1.0", "gate_init": "chrono",
         "frontier": "200"},
    ]
    constant = dynamics.frontiers_of("lstm", "1.0", rows)
    assert "t/lstm_fb1" in constant and "fb3" not in constant and "chrono" not in constant
    assert dynamics.frontiers_of("lstm", "", rows, gate_init="chrono").startswith("t/lstm_chrono (")
    assert dynamics.frontiers_of("gru", "", rows) == ""
