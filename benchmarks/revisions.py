"""What the scripts that compare two checkouts of jaxseq share: reading benchmark reports and
comparing compiled programs (``compare_revisions.py``, ``compare_programs.py``; no flags here, so
tests can import it)."""

import re

# report layouts: (list of rows, the columns that name a row, the rate column, whether that column
# is a time per step, whose inverse is the rate); the first whose list and rate column a report has
LAYOUTS = (
    ("rows", ("variant", "length", "seeds", "strategy"), "seed_steps_per_s", False),  # bench_recurrent, bench_scan_length
    ("rows", ("cell", "task", "length"), "ms_per_step", True),  # bench_atlas_cost: steps per second = 1000 / ms
    ("results", ("model",), "chars_per_s", False),  # bench_textgen
)


def rates(report: dict) -> dict[tuple, float]:
    """``{row name: rate}`` of one benchmark report (a layout of :data:`LAYOUTS`; a naming column a
    report lacks, as ``bench_scan_length.py``'s seeds and strategy, reads ``-``). Above 1 is faster."""
    for key, names, column, per_step in LAYOUTS:
        rows = report.get(key)
        if rows and column in rows[0]:
            return {tuple(row.get(n, "-") for n in names): (1000.0 / float(row[column]) if per_step else float(row[column]))
                    for row in rows}
    raise ValueError(f"a report with none of the layouts of {', '.join(sorted({key for key, *_ in LAYOUTS}))}: "
                     "not a benchmark this script knows")


def relative_to(rates_of_run: dict[tuple, float], reference: str) -> dict[tuple, float]:
    """Every row's rate over the rate of the row named ``reference`` with the same other columns."""
    return {name: rate / rates_of_run[(reference, *name[1:])] for name, rate in rates_of_run.items()
            if (reference, *name[1:]) in rates_of_run and name[0] != reference}


def normalized(hlo: str) -> str:
    """Optimized HLO text without what differs between checkouts of the same program: source
    locations (metadata and the file, function and stack-frame tables), the module's name and the
    numbered names of instructions and computations."""
    text = re.sub(r", metadata=\{[^}]*\}", "", hlo)
    text = re.sub(r",? ?stack_frame_id=\d+", "", text)
    lines = [line for line in text.splitlines() if not re.match(r"^\s*(\d+ [{\"]|FileNames|FunctionNames|FileLocations|StackFrames)", line)]
    text = re.sub(r"^HloModule \S+", "HloModule m", "\n".join(lines), flags=re.M)
    return re.sub(r"[A-Za-z_][\w-]*(\.\d+)+", "X", text)
