"""Figures for people: every committed figure redraws with ``--plot_only`` alone, bands say what
they are, an empty frontier says so, and progress is plain lines when stderr is not a terminal.

The redraw test copies the files git tracks under ``results/`` and runs each line of
``docs/figures.md``'s redraw block on the copy, in this process (each script's ``main`` through
:func:`jaxseq.cli.run_main`, as a shell would run it), so nothing trains and nothing compiles.
"""

import hashlib
import importlib.util
import io
import pathlib
import re
import shlex
import shutil
import subprocess

import numpy as np
import pytest
from absl import app, flags

from jaxseq import cli, report
from jaxseq.analysis import figures
from jaxseq.files.guard import claim_files, png_owner

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIGURES_PAGE = ROOT / "docs" / "figures.md"
app.define_help_flags()  # absl defines --help & co. once per process: they must survive the scripts' flags being removed
_FLAGS_BEFORE_SCRIPTS = set(flags.FLAGS)


def tracked_results() -> list[str]:
    """The paths under ``results/`` that git tracks (what a fresh clone holds)."""
    try:
        listed = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell which results are committed")
    return listed.stdout.split()


def redraw_commands() -> list[list[str]]:
    """The argument lists of the redraw block of docs/figures.md (``python scripts/X.py ...`` lines)."""
    block = FIGURES_PAGE.read_text().split("## Redraw every committed figure", 1)[1].split("```bash", 1)[1]
    lines = block.split("```", 1)[0].strip().splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith("python scripts/")]


def run_dirs(tracked: list[str]) -> set[str]:
    """The committed run directories (those holding a config.json) and the data-size summary's stem."""
    dirs = {str(pathlib.PurePath(path).parent) for path in tracked if path.endswith("/config.json")}
    return dirs | {path[: -len(".json")] for path in tracked if path.endswith("/data_size.json")}


def run_in_process(script: pathlib.Path, args: list[str], capsys) -> tuple[int, str]:
    """``python script args`` in this process: the exit code and stderr."""
    for name in set(flags.FLAGS) - _FLAGS_BEFORE_SCRIPTS:  # a fresh import defines its flags again
        delattr(flags.FLAGS, name)
    spec = importlib.util.spec_from_file_location(f"_redraw_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.run_main(module.main, [str(script), *args])
    return exited.value.code or 0, capsys.readouterr().err


def digests(root: pathlib.Path) -> dict[str, str]:
    """``{path under root: sha256}`` of every file under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_every_committed_figure_redraws_with_plot_only_alone(tmp_path, capsys, monkeypatch):
    tracked = tracked_results()
    commands = redraw_commands()
    outs = {arg.split("=", 1)[1] for command in commands for arg in command if arg.startswith("--out=")}
    assert run_dirs(tracked) <= outs, f"no redraw line in docs/figures.md for {sorted(run_dirs(tracked) - outs)}"

    copy = tmp_path / "clone"
    for path in tracked:
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, copy / path)
    (copy / "configs").symlink_to(ROOT / "configs")  # as in a clone: the scripts' default configs
    before = digests(copy / "results")
    monkeypatch.chdir(copy)  # the lines' relative paths now name the copy
    monkeypatch.setattr(cli, "exit_now", SystemExit)
    not_redrawn = set()
    for command in commands:
        code, err = run_in_process(ROOT / command[0], command[1:], capsys)
        assert code == 0, (command, err)
        for line in err.splitlines():
            assert line.startswith("warning: ") and " not redrawn: " in line, (command, line)
            not_redrawn.add(line.split("warning: ", 1)[1].split(" not redrawn: ")[0])
    after = digests(copy / "results")

    assert set(before) <= set(after) and all(path.endswith(".png") for path in set(after) - set(before)), \
        f"a redraw wrote a file that is not a figure: {sorted(set(after) - set(before))}"
    changed = sorted(path for path in after if after[path] != before.get(path))
    assert all(path.endswith(".png") for path in changed), f"a redraw changed data: {changed}"
    patterns = [re.escape(p).replace(r"\{", "(").replace(r"\}", ")").replace(",", "|") for p in not_redrawn]
    for path in (p for p in tracked if p.endswith(".png")):
        redrawn = (copy / path).stat().st_mtime_ns > (ROOT / path).stat().st_mtime_ns
        if any(re.fullmatch(pattern, path) for pattern in patterns):  # said in one line; the figure stays
            assert not redrawn, path
        else:
            assert redrawn and png_owner(copy / path) is not None, f"{path} was not redrawn"


def test_a_figure_named_through_a_flag_is_refused_under_the_value_typed(tmp_path):
    table = tmp_path / "long.csv"
    (tmp_path / "long_curves.png").write_bytes(b"a figure of yours")
    with pytest.raises(ValueError) as refused:
        claim_files([table, tmp_path / "long_curves.png"], "--table", {"tool": "t", "config": {}}, False, str(table))
    assert str(refused.value).startswith(f"--table={table}: {tmp_path / 'long_curves.png'}: the file exists")


def legend_texts(fig) -> list[str]:
    return [text.get_text() for ax in fig.axes if ax.get_legend() for text in ax.get_legend().get_texts()]


def test_bands_say_what_they_are():
    rows = [{"model": "lstm", "length": t, "seed": s, "eval_accuracy": 0.9 + 0.01 * s} for t in (5, 10) for s in range(3)]
    assert legend_texts(figures.accuracy_vs_length(rows)) == ["lstm: mean ± std, 3 seeds"]
    steps = [{"model": "rnn", "seed": s, "step": k, "loss": 2.0 / k, "accuracy": 0.5} for s in range(2) for k in (1, 2)]
    fig = figures.training_curves(steps)
    assert legend_texts(fig) == ["rnn: mean ± std, 2 seeds"]  # the accuracy panel (linear axis) holds the legend
    loss_axis = fig.axes[0]
    assert loss_axis.get_yscale() == "log" and "geometric mean ×/÷ geometric std" in loss_axis.get_ylabel()
    assert loss_axis.get_lines()[0].get_label() == "rnn: geometric mean ×/÷ geometric std, 2 seeds"
    # on the log axis the line is the geometric mean of the seeds
    fig2, ax = figures.plt.subplots()
    figures.mean_std_band(ax, [1, 2], np.array([[1.0, 10.0], [100.0, 1000.0]]), "x", geometric=True)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [10.0, 100.0])


def test_a_frontier_with_no_solved_length_says_so():
    summary = [{"variant": v, "length": t, "passed": False} for v in ("gru", "rnn") for t in (50,)]
    fig = figures.frontier_bars(summary)
    (ax,) = fig.axes
    assert ax.get_xscale() == "linear" and figures.NO_LENGTH_SOLVED in ax.get_xlabel()
    assert "50" in ax.get_xlabel()
    solved = figures.frontier_bars([*summary, {"variant": "lstm", "length": 50, "passed": True}])
    assert solved.axes[0].get_xscale() == "log" and figures.NO_LENGTH_SOLVED not in solved.axes[0].get_xlabel()


def test_the_length_axis_names_input_steps_only_where_they_are_t_minus_1():
    def label(task):
        rows = [{"model": "rnn", "task": task, "length": t, "eval_accuracy": 0.5} for t in (5, 10)]
        return figures.accuracy_vs_length(rows).axes[0].get_xlabel()

    assert "T - 1 input steps" in label("decimal_palindrome")  # the model reads T - 1 digits
    assert "T - 1" not in label("copy")  # copy reads T + 2 n steps
    assert "T - 1" not in figures.length_label({"baum_sweet", "selective_copy"})


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere(terminal, monkeypatch):
    monkeypatch.setattr(report, "LINE_INTERVAL_S", 0.0)
    stream = _Terminal() if terminal else io.StringIO()
    with report.progress(40, file=stream) as bar:
        for _ in range(4):
            bar.update(10)
            bar.set_postfix_str("loss 0.1")
    text = stream.getvalue()
    if terminal:
        assert "\r" in text  # redrawn in place
    else:
        assert "\r" not in text
        lines = text.splitlines()
        assert lines[-1].startswith("100% 40/40") and all(re.match(r"\d+% \d+/40 \[", line) for line in lines)


def test_progress_lines_come_once_an_interval_when_stderr_is_a_file():
    stream = io.StringIO()  # the default interval: only the first and the final state within it
    with report.progress(1000, file=stream) as bar:
        for _ in range(1000):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert [line.split(" [")[0] for line in lines] == ["0% 0/1000", "100% 1000/1000"]


def test_the_docs_say_how_an_interrupt_ends():
    code, line = cli.exit_code(KeyboardInterrupt("finished settings are in runs/x"))
    assert code == cli.EXIT_INTERRUPTED and line.startswith("interrupted: ")
    for page in (ROOT / "docs" / "errors.md", ROOT / "README.md"):
        text = page.read_text()
        assert "`interrupted:`" in text and "`error:`" in text, page
        assert "Every script ends with one line on stderr starting `error:`" not in text, page


def test_a_redraw_refuses_a_table_or_a_run_that_is_not_its_own(tmp_path, capsys, monkeypatch):
    run = tmp_path / "frontier_long"
    run.mkdir()
    for name in ("config.json", "results.csv"):
        shutil.copy2(ROOT / "results" / "frontier_long" / name, run / name)
    monkeypatch.chdir(ROOT)
    before = digests(tmp_path)
    code, err = run_in_process(ROOT / "scripts" / "frontier.py", [f"--out={run}", "--table=README.md", "--plot_only"],
                               capsys)
    assert code == 2 and err.startswith("error: --table=README.md: ") and "--overwrite" in err, err
    code, err = run_in_process(ROOT / "scripts" / "grad_norms.py", [f"--out={run}", "--plot_only"], capsys)
    assert code == 2 and "another tool's results" in err, err
    assert digests(tmp_path) == before and not (ROOT / "README.png").exists()
