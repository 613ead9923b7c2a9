"""The memory atlas: which lengths to train, and what the per-seed rows say, per (cell, task).

Every (cell, task) pair climbs a ladder of lengths that doubles (``16, 32, 64, ...``). A length
is *solved by a seed* when that seed's accuracy on a fresh batch reaches the threshold (0.99 by
default; for the adding problem the accuracy is the fraction of answers within its tolerance, so
the same rule holds). The pair stops at the first ladder length that **no** seed solves; the length
halfway between it and the last one some seed solved is then trained too (``1.5 x`` the last
one), so a frontier is known to a factor of 1.5, not 2.

All functions take plain rows (dicts, as read back from CSV: values may be strings) and return
plain values, so the atlas can be summarised and redrawn from its files alone.
"""

import collections
import math
from typing import Iterable, Mapping, Optional, Sequence

PAIR = ("cell", "task")  # the columns that name a (cell, task) pair in every row


def ladder(min_length: int, max_length: int) -> list[int]:
    """The doubling lengths ``min_length, 2 min_length, ...`` up to ``max_length`` (inclusive).

    Raises:
      ValueError: ``min_length < 2`` or ``max_length < min_length``.
    """
    if min_length < 2 or max_length < min_length:
        raise ValueError(f"atlas lengths need 2 <= min_length <= max_length, got {min_length} and {max_length}")
    lengths = [min_length]
    while lengths[-1] * 2 <= max_length:
        lengths.append(lengths[-1] * 2)
    return lengths


def between(length: int) -> int:
    """The length trained between ``length`` (some seed solved it) and ``2 * length`` (none did)."""
    return length * 3 // 2


def run_order(min_length: int, max_length: int) -> list[int]:
    """Every length a pair may train, in the order it would: each ladder length, then the length
    between it and the one before (``16, 32, 24, 64, 48, ...``), so the in-between length runs
    only once the doubling above it is known to fail (:func:`should_train`)."""
    order = []
    for length in ladder(min_length, max_length):
        order.append(length)
        if length > min_length and between(length // 2) not in (length // 2, length):
            order.append(between(length // 2))
    return order


def solved(row: Mapping, threshold: float) -> bool:
    """Whether one seed's row solved its setting (``eval_accuracy >= threshold``)."""
    return float(row["eval_accuracy"]) >= threshold - 1e-9


def steps_to_solve(row: Mapping, threshold: float) -> Optional[int]:
    """The step at which a solved seed's windowed training accuracy first reached the stopping
    criterion (``converged_step``), or None (not solved, or solved only when evaluated at the end)."""
    step = int(float(row["converged_step"]))
    return step if solved(row, threshold) and step > 0 else None


def seeds_solving(rows: Iterable[Mapping], threshold: float) -> dict[int, tuple[int, int]]:
    """``{length: (seeds that solved it, seeds trained)}`` for the rows of one pair."""
    counts: dict[int, list[int]] = collections.defaultdict(lambda: [0, 0])
    for row in rows:
        counts[int(row["length"])][0] += solved(row, threshold)
        counts[int(row["length"])][1] += 1
    return {length: (count[0], count[1]) for length, count in counts.items()}


def should_train(length: int, min_length: int, max_length: int, done: Mapping[int, tuple[int, int]]) -> bool:
    """Whether a pair trains ``length`` next, given what it solved so far (:func:`seeds_solving`).

    A ladder length trains while every shorter ladder length had a seed that solved it; the length
    between ``a`` and ``2a`` trains when some seed solved ``a`` and none solved ``2a``.
    """
    steps = ladder(min_length, max_length)
    if length in steps:
        return all(done.get(t, (1, 1))[0] > 0 for t in steps if t < length)
    lower = next((t for t in steps if between(t) == length), None)
    if lower is None or 2 * lower not in done or lower not in done:
        return False
    return done[lower][0] > 0 and done[2 * lower][0] == 0 and should_train(lower, min_length, max_length, done)


def seed_rows(rows: Iterable[Mapping], threshold: float) -> list[dict]:
    """The per-seed rows with two columns added: ``solved`` (0/1) and ``steps_to_solve`` ("" if not solved)."""
    out = []
    for row in rows:
        steps = steps_to_solve(row, threshold)
        out.append({**row, "solved": int(solved(row, threshold)), "steps_to_solve": "" if steps is None else steps})
    return out


def loglog_slope(points: Sequence[tuple[float, float]]) -> Optional[float]:
    """The least-squares slope of ``log y`` against ``log x`` (None with fewer than two distinct x)."""
    points = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def pair_summary(rows: Iterable[Mapping], threshold: float = 0.99) -> list[dict]:
    """One row per (cell, task), in first-seen order.

    Columns: ``cell``, ``task``, ``num_params`` and ``hidden_size`` (of the pair's first row),
    ``longest_all`` (the longest length every seed solved; 0 if none), ``longest_mean`` (the longest
    length whose mean accuracy over seeds reached ``threshold``; 0 if none), ``first_unsolved``
    (the shortest length no seed solved; "" if none), ``lengths`` (trained, ``"16 32 ..."``),
    ``steps_slope`` (the log-log slope of the mean steps to solve against the length, over the
    lengths every seed solved; "" with fewer than two) and ``step_ms`` (compiled step time of all
    seeds together, at the longest length trained).
    """
    pairs: dict[tuple, list[Mapping]] = collections.defaultdict(list)
    for row in rows:
        pairs[tuple(row[c] for c in PAIR)].append(row)
    summary = []
    for (cell, task), group in pairs.items():
        by_length: dict[int, list[Mapping]] = collections.defaultdict(list)
        for row in group:
            by_length[int(row["length"])].append(row)
        all_solved = [t for t, seeds in by_length.items() if all(solved(r, threshold) for r in seeds)]
        mean_solved = [
            t for t, seeds in by_length.items()
            if sum(float(r["eval_accuracy"]) for r in seeds) / len(seeds) >= threshold - 1e-9
        ]
        unsolved = [t for t, seeds in by_length.items() if not any(solved(r, threshold) for r in seeds)]
        cost = [(t, sum(steps_to_solve(r, threshold) for r in by_length[t]) / len(by_length[t]))
                for t in sorted(all_solved) if all(steps_to_solve(r, threshold) for r in by_length[t])]
        slope = loglog_slope(cost)
        longest = max(by_length)
        step_ms = [float(r["step_ms"]) for r in by_length[longest] if str(r.get("step_ms", "")) not in ("",)]
        summary.append({
            "cell": cell,
            "task": task,
            "num_params": group[0].get("num_params", ""),
            "hidden_size": group[0].get("hidden_size", ""),
            "longest_all": max(all_solved, default=0),
            "longest_mean": max(mean_solved, default=0),
            "first_unsolved": min(unsolved, default=""),
            "lengths": " ".join(str(t) for t in sorted(by_length)),
            "steps_slope": "" if slope is None else round(slope, 2),
            "step_ms": round(step_ms[0], 2) if step_ms else "",
        })
    return summary


def steps_by_length(rows: Iterable[Mapping], threshold: float = 0.99) -> dict[tuple, list[tuple[int, float, int]]]:
    """``{(cell, task): [(length, mean steps to solve over the seeds that solved it, how many), ...]}``
    in increasing length, for the lengths some seed solved with a known step."""
    found: dict[tuple, dict[int, list[int]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for row in rows:
        steps = steps_to_solve(row, threshold)
        if steps is not None:
            found[tuple(row[c] for c in PAIR)][int(row["length"])].append(steps)
    return {
        pair: [(t, sum(s) / len(s), len(s)) for t, s in sorted(by_length.items())]
        for pair, by_length in found.items()
    }
