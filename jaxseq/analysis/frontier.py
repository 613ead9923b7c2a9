"""The memory frontier: the longest sequence length a model still solves, from per-seed results.

Rows are per-seed results (as in ``results.csv``) with a ``group`` column naming the model variant,
a ``length`` column and an accuracy column. A (variant, length) setting *passes* when it has at
least ``min_seeds`` seeds and their mean accuracy is >= ``threshold``; a variant's frontier is the
longest passing length (None if none passes). All values may be strings, as read back from CSV.
"""

import collections
from typing import Iterable, Mapping, Optional, Sequence


def summarize(
    rows: Iterable[Mapping],
    group: str = "variant",
    metric: str = "eval_accuracy",
    threshold: float = 0.99,
    min_seeds: int = 3,
    carry: Sequence[str] = (),
) -> list[dict]:
    """One row per (``group``, length), in first-seen group order and increasing length.

    Columns: ``group``, the ``carry`` columns (copied from the setting's first row), ``length``,
    ``seeds``, ``accuracy_mean``, ``accuracy_std`` (population std over seeds), ``steps_mean``
    (when rows have ``steps``), ``passed`` and ``frontier`` (the variant's, repeated per row).
    """
    settings = collections.defaultdict(list)
    for row in rows:
        settings[(row[group], int(row["length"]))].append(row)
    order = list(dict.fromkeys(name for name, _ in settings))
    summary = []
    for name in order:
        for length in sorted(t for n, t in settings if n == name):
            seeds = settings[(name, length)]
            accs = [float(r[metric]) for r in seeds]
            mean = sum(accs) / len(accs)
            out = {group: name, **{c: seeds[0].get(c, "") for c in carry}, "length": length, "seeds": len(accs)}
            out["accuracy_mean"] = round(mean, 4)
            out["accuracy_std"] = round((sum((a - mean) ** 2 for a in accs) / len(accs)) ** 0.5, 4)
            if all("steps" in r for r in seeds):
                out["steps_mean"] = round(sum(float(r["steps"]) for r in seeds) / len(seeds), 1)
            # the tolerance keeps a mean of exactly the threshold (e.g. three seeds at 0.99) passing
            out["passed"] = len(accs) >= min_seeds and mean >= threshold - 1e-9
            summary.append(out)
    frontiers = frontier_lengths(summary, group)
    for out in summary:
        out["frontier"] = "" if frontiers[out[group]] is None else frontiers[out[group]]
    return summary


def frontier_lengths(summary: Iterable[Mapping], group: str = "variant") -> dict[str, Optional[int]]:
    """``{variant: longest passing length, or None}`` from :func:`summarize` rows."""
    best: dict[str, Optional[int]] = {}
    for row in summary:
        best.setdefault(row[group], None)
        if row["passed"] in (True, "True"):
            best[row[group]] = max(int(row["length"]), best[row[group]] or 0)
    return best


def failed_lengths(summary: Iterable[Mapping], group: str = "variant") -> dict[str, list[int]]:
    """``{variant: [lengths that did not pass]}`` from :func:`summarize` rows."""
    failed = collections.defaultdict(list)
    for row in summary:
        if row["passed"] not in (True, "True"):
            failed[row[group]].append(int(row["length"]))
    return dict(failed)
