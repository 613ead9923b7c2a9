"""Figures of results: mean ± std over seeds, one line per model.

All functions take plain rows (dicts, as read back from ``results.csv`` / ``metrics.jsonl``), so
figures can be redrawn from files without retraining, and return the matplotlib ``Figure``.
"""

import collections
import os
from typing import Iterable, Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # figures are files; no display is needed (or available in CI)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxseq.data.sequences import TASKS  # noqa: E402


NO_LENGTH_SOLVED = "no variant solved any length tried"


def band_label(label: str, num_seeds: int, geometric: bool = False) -> str:
    """A line's legend entry saying what its band is: ``"lstm: mean ± std, 3 seeds"`` (or, for a
    log axis, ``"lstm: geometric mean ×/÷ geometric std, 3 seeds"``)."""
    what = "geometric mean ×/÷ geometric std" if geometric else "mean ± std"
    return f"{label}: {what}, {num_seeds} seed{'s' if num_seeds != 1 else ''}"


def mean_std_band(ax, x: Sequence[float], ys: np.ndarray, label: str, geometric: bool = False, **kwargs) -> None:
    """Plot the mean of ``ys: [seed, len(x)]`` as a line with a ± std band on ``ax``; the legend
    entry says so (:func:`band_label`).

    ``geometric``: for a log axis (losses, gradient norms spanning decades): the line is the
    geometric mean and the band multiplies and divides it by the geometric std (mean ± std of
    ``log10 ys``), so it never crosses zero.
    """
    ys = np.asarray(ys, dtype=float)
    if geometric:
        logs = np.log10(np.maximum(ys, np.finfo(float).tiny))
        mean, std = logs.mean(axis=0), logs.std(axis=0)
        line_y, low, high = 10.0**mean, 10.0 ** (mean - std), 10.0 ** (mean + std)
    else:
        mean, std = ys.mean(axis=0), ys.std(axis=0)
        line_y, low, high = mean, mean - std, mean + std
    (line,) = ax.plot(x, line_y, label=band_label(label, ys.shape[0], geometric), **kwargs)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)


def save(fig, path: os.PathLike, close: bool = True, metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write ``fig`` as a PNG (directories created); close it unless ``close=False`` (to save it again).

    ``metadata``: PNG text entries to embed (:func:`jaxseq.files.guard.figure_metadata` names the
    tool and run that drew the figure, so a redraw knows the file is its own).
    """
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight", metadata=dict(metadata or {}))
    if close:
        plt.close(fig)


def length_label(tasks: Iterable[Optional[str]]) -> str:
    """The x-axis label of a length axis for results of ``tasks`` (names of
    :data:`jaxseq.data.sequences.TASKS`; None for rows without a task column): the palindrome family
    reads ``T - 1`` input steps, a memory task of the literature a number of its own."""
    if all(task not in TASKS or TASKS[task].last_step_only for task in tasks):
        return "sequence length T (data.length; T - 1 input steps)"
    return "sequence length T (data.length; each task's input steps: jaxseq/data/sequences.py)"


def accuracy_vs_length(
    rows: Iterable[Mapping[str, str]], metric: str = "eval_accuracy", group: str = "model", title: str = ""
):
    """Final accuracy vs sequence length, one line per ``group`` value, mean ± std over seeds.

    Args:
      rows: result rows with ``group``, ``length`` and ``metric`` columns (one row per seed).
      metric: the column to plot.
      group: the column that names a line.
      title: figure title.
    """
    rows = list(rows)
    by_group = collections.defaultdict(lambda: collections.defaultdict(list))
    for row in rows:
        by_group[row[group]][int(row["length"])].append(float(row[metric]))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, by_length in by_group.items():
        lengths = sorted(by_length)
        n = min(len(by_length[t]) for t in lengths)
        ys = np.array([by_length[t][:n] for t in lengths]).T
        mean_std_band(ax, lengths, ys, name, marker="o")
    ax.axhline(0.99, color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel(length_label({row.get("task") for row in rows}))
    ax.set_ylabel("accuracy on a fresh batch")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title or "accuracy vs sequence length (mean ± std over seeds)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def training_curves(rows: Iterable[Mapping], group: str = "model", metrics=("loss", "accuracy"), title: str = ""):
    """Per-step curves (one panel per metric), one line per ``group`` value, mean ± std over seeds
    (the loss on a log axis: geometric mean ×/÷ geometric std).

    Args:
      rows: metric rows with ``group``, ``seed``, ``step`` and the ``metrics`` columns.
    """
    series = collections.defaultdict(lambda: collections.defaultdict(dict))
    for row in rows:
        series[row[group]][row["seed"]][row["step"]] = row
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6))
    for name, by_seed in series.items():
        steps = sorted(set.intersection(*(set(s) for s in by_seed.values())))
        for ax, metric in zip(np.atleast_1d(axes), metrics):
            ys = np.array([[by_seed[s][t][metric] for t in steps] for s in sorted(by_seed)])
            mean_std_band(ax, steps, ys, str(name), geometric=metric == "loss")  # the loss axis is logarithmic
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        ax.set_xlabel("training step")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if metric == "loss":  # the legend sits on the last panel: this axis says what its bands are
            ax.set_yscale("log")
            ax.set_ylabel(f"{metric} (log scale; geometric mean ×/÷ geometric std)")
    np.atleast_1d(axes)[-1].legend()
    fig.suptitle(title)
    return fig


def frontier_bars(summary: Iterable[Mapping], group: str = "variant", title: str = ""):
    """The longest length each ``group`` value solved, as horizontal bars (log scale).

    Args:
      summary: rows of :func:`jaxseq.analysis.frontier.summarize` (``group``, ``length``, ``passed``).
      title: figure title (say the step budget).
    Each bar is labelled with its frontier and the shortest length that failed (``>`` when every
    length tried passed); a variant that solved nothing gets no bar and the label "none". When no
    variant solved any length, the axis says so (:data:`NO_LENGTH_SOLVED`) instead of staying empty.
    """
    tried = collections.defaultdict(list)
    for row in summary:
        tried[row[group]].append((int(row["length"]), row["passed"] in (True, "True")))
    names = list(tried)
    solved_any = any(ok for runs in tried.values() for _, ok in runs)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(names) + 1.2))
    for y, name in enumerate(names):
        solved = [t for t, ok in tried[name] if ok]
        failed = [t for t, ok in tried[name] if not ok]
        best = max(solved) if solved else None
        if best is not None:
            ax.barh(y, best, color=f"C{y % 10}")
        note = f"{best}" if best is not None else "none"
        note += f" (fails at {min(failed)})" if failed else " (every length tried passed)"
        ax.text(best or (1 if solved_any else 0), y, f"  {note}", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    longest = max(t for runs in tried.values() for t, _ in runs)
    if solved_any:
        ax.set_xscale("log")
        ax.set_xlim(1, longest * 8)
        ax.set_xlabel("longest palindrome length solved (>= 99 %, mean over seeds)")
    else:  # no bar to draw: the axis says so instead of standing empty
        shortest = min(t for runs in tried.values() for t, _ in runs)
        ax.set_xlim(0, 1)
        ax.set_xticks([])
        ax.set_xlabel(f"{NO_LENGTH_SOLVED} (>= 99 %, mean over seeds; lengths {shortest} to {longest})")
    ax.set_title(title or "memory frontier")
    ax.grid(alpha=0.3, axis="x")
    return fig


def frontier_curves(rows: Iterable[Mapping], title: str = ""):
    """Training loss per step at each variant's frontier and first failing length, one panel per
    variant, one thin line per seed (solid: the length passed; dashed: it failed).

    Args:
      rows: metric rows with ``variant``, ``length``, ``passed`` (bool), ``seed``, ``step``, ``loss``
        and optionally ``active`` (rows of seeds that had stopped are left out).
    A loss still falling at the end of the budget says the budget ran out; one flat at chance
    (``ln 10 = 2.30`` for digits) says the cell found nothing to learn.
    """
    series = collections.defaultdict(lambda: collections.defaultdict(list))
    for row in rows:
        if row.get("active", True):  # a seed that has stopped early keeps no curve
            series[(row["variant"], int(row["length"]), bool(row["passed"]))][row["seed"]].append((row["step"], row["loss"]))
    variants = list(dict.fromkeys(variant for variant, _, _ in series))
    cols = min(4, len(variants))
    nrows = -(-len(variants) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.6 * nrows), squeeze=False, sharey=True)
    for ax, variant in zip(axes.flat, variants):
        for (name, length, passed), by_seed in sorted(series.items(), key=lambda item: item[0][1]):
            if name != variant:
                continue
            color, style = ("C0", "-") if passed else ("C3", "--")
            for i, points in enumerate(by_seed.values()):
                steps, losses = zip(*sorted(points))
                label = f"T={length} {'pass' if passed else 'fail'}" if i == 0 else None
                ax.plot(steps, losses, color=color, linestyle=style, linewidth=1, label=label)
        ax.set_title(variant, fontsize=9)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(variants):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    for ax in axes[:, 0]:
        ax.set_ylabel("training loss (per seed)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def atlas_heatmap(summary: Iterable[Mapping], cells: Sequence[str], tasks: Sequence[str], title: str = "",
                  outside: Iterable[str] = ()):
    """The memory atlas as a grid: one row per cell, one column per task, the colour and the number
    written in each square the longest length every seed solved (:func:`jaxseq.analysis.atlas.pair_summary`
    rows), with "+" when that is the longest length run; "-" where nothing was solved, blank where
    the pair was not run.

    Args:
      summary: rows with ``cell``, ``task``, ``longest_all`` and ``lengths`` (the lengths run, space-separated).
      cells, tasks: the rows and columns, in order.
      outside: cells whose rows come from another run (drawn with their name in italics).
    """
    best = {(row["cell"], row["task"]): row for row in summary}
    values = np.full((len(cells), len(tasks)), np.nan)
    for i, cell in enumerate(cells):
        for j, task in enumerate(tasks):
            if (cell, task) in best:
                values[i, j] = float(best[(cell, task)]["longest_all"] or 0)
    logs = np.where(values > 0, np.log2(np.where(values > 0, values, 1)), 0.0)
    fig, ax = plt.subplots(figsize=(1.2 * len(tasks) + 2.5, 0.55 * len(cells) + 1.8))
    shown = np.ma.masked_invalid(np.where(np.isnan(values), np.nan, logs))
    image = ax.imshow(shown, cmap="viridis", aspect="auto", vmin=0, vmax=max(1.0, float(np.nanmax(logs, initial=1.0))))
    for i, cell in enumerate(cells):
        for j, task in enumerate(tasks):
            if np.isnan(values[i, j]):
                continue
            row = best[(cell, task)]
            text = str(int(values[i, j])) if values[i, j] > 0 else "-"
            if values[i, j] > 0 and values[i, j] == max(int(t) for t in str(row["lengths"]).split()):
                text += "+"  # every seed solved the longest length run: the frontier lies beyond it
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if logs[i, j] < 0.6 * float(image.get_clim()[1]) else "black")
    ax.set_xticks(range(len(tasks)), [task.replace("_", "\n") for task in tasks], fontsize=8)
    outside = set(outside)
    ax.set_yticks(range(len(cells)), cells, fontsize=8)
    for label, cell in zip(ax.get_yticklabels(), cells):
        if cell in outside:
            label.set_fontstyle("italic")
    bar = fig.colorbar(image, ax=ax)
    top = int(np.ceil(float(image.get_clim()[1])))
    bar.set_ticks(range(0, top + 1), labels=["none"] + [str(2**k) for k in range(1, top + 1)])
    bar.set_label("longest T solved by every seed")
    ax.set_title(title or "longest length solved by every seed\n(+: the longest length run)", fontsize=9)
    return fig


def steps_to_solve_panels(curves: Mapping[tuple, Sequence[tuple]], tasks: Sequence[str], title: str = ""):
    """Steps to solve against length, one panel per task, one line per cell, log-log axes.

    Args:
      curves: ``{(cell, task): [(length, mean steps to solve, seeds that solved), ...]}``
        (:func:`jaxseq.analysis.atlas.steps_by_length`).
      tasks: the panels, in order.
    """
    columns = min(4, max(1, len(tasks)))
    rows = -(-len(tasks) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.0 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for (cell, of_task), points in curves.items():
            if of_task != task or not points:
                continue
            lengths, steps, _ = zip(*points)
            ax.plot(lengths, steps, marker="o", label=cell)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())  # 16, 32, ..., not powers of 2
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        for set_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):  # 200, 300, ...
            set_formatter(matplotlib.ticker.LogFormatter(labelOnlyBase=False))
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("length T", fontsize=8)
        ax.set_ylabel("steps to solve (mean of seeds that did)", fontsize=8)
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:  # an empty panel says why
            ax.text(0.5, 0.5, "no seed solved\nany length run", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.minorticks_off()
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    fig.suptitle(title or "the cost of memory: steps to solve against length (log-log)")
    fig.tight_layout()
    return fig
