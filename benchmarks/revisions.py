"""What the scripts that compare two checkouts of jaxseq share: reading benchmark reports and
comparing compiled programs (``compare_revisions.py``, ``compare_programs.py``; no flags here, so
tests can import it)."""

import re

# report layout -> (list of rows, the columns that name a row, the rate column)
LAYOUTS = {
    "rows": (("variant", "length", "seeds", "strategy"), "seed_steps_per_s"),
    "results": (("model",), "chars_per_s"),
}


def rates(report: dict) -> dict[tuple, float]:
    """``{row name: rate}`` of one benchmark report (either layout of :data:`LAYOUTS`; a naming column a
    report lacks, as ``bench_scan_length.py``'s seeds and strategy, reads ``-``)."""
    for key, (names, rate) in LAYOUTS.items():
        if key in report:
            return {tuple(row.get(n, "-") for n in names): float(row[rate]) for row in report[key]}
    raise ValueError(f"a report with none of {sorted(LAYOUTS)}: not a benchmark this script knows")


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
