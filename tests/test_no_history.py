"""Tracked files describe the present: no development history in code, comments, docs or file names.

How the work was organised (numbered stints of work, tracker numbers, a tracker entry's "target")
belongs in git, not in the product. A comment states a rule and cites the benchmark behind it; a
result file is named by what it measures or by date. The words are spelled below in pieces, so this
file is checked like every other one. An OS process's own word (as in Popen's keyword for a new
process group) does not match: the word must stand alone; prose calls it a process group.
"""

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# the words, in pieces (whole, they would be what this test looks for)
PERIOD, ENTRY, SPAN = "sess" + "ion", "iss" + "ue", "per" + "iod"

# each pattern is matched case-insensitively against every line of every tracked text file
HISTORY_PATTERNS = {
    "a stint's name": rf"\b{PERIOD}s?\b",
    "a numbered stint": rf"{PERIOD}_?[0-9]",
    "a tracker entry's number": rf"\b{ENTRY}s? #?[0-9]+",
    "a stint of work": rf"\bwork[ -]{SPAN}s?\b",
    "a tracker entry's ...": rf"\bthe {ENTRY}'?s\b",
}
# file names: the same words inside a path component
PATH_PATTERNS = {
    "a stint in a file name": PERIOD,
    "a tracker number in a file name": rf"{ENTRY}_?[0-9]",
    "a stint of work in a file name": rf"work[_-]?{SPAN}",
}


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [name for name in listing.stdout.decode().split("\0") if name]


def text_of(path: pathlib.Path):
    """The file's text, or None for a binary file (a NUL byte or not UTF-8) or a missing one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # deleted in the work tree, not yet in the index
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def history_lines(files: list[str], root: pathlib.Path = ROOT) -> list[str]:
    """``path:line: text (what)`` for every line of ``root / file`` that matches a history pattern."""
    patterns = {what: re.compile(rx, re.IGNORECASE) for what, rx in HISTORY_PATTERNS.items()}
    found = []
    for name in files:
        text = text_of(root / name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for what, pattern in patterns.items():
                if pattern.search(line):
                    found.append(f"{name}:{number}: {line.strip()[:120]} ({what})")
    return found


def test_no_history_in_tracked_text():
    found = history_lines(tracked_files())
    assert not found, "development history in tracked files (git keeps it):\n" + "\n".join(found)


def test_no_history_in_file_names():
    patterns = {what: re.compile(rx, re.IGNORECASE) for what, rx in PATH_PATTERNS.items()}
    found = [f"{name} ({what})" for name in tracked_files() for what, p in patterns.items() if p.search(name)]
    assert not found, "file names that carry development history:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line, flagged",
    [
        (f"# tuned in {PERIOD} 4", True),
        (f"see {PERIOD.title()}s 8-10", True),
        (f"stress_hangs_{PERIOD}11b.json", True),
        (f"the command of {ENTRY} 11", True),
        (f"as in {ENTRY} #7", True),
        (f"in the last work {SPAN}", True),
        (f"label='the {ENTRY}'s target'", True),
        (f"proc = subprocess.Popen(cmd, start_new_{PERIOD}=True)", False),
        ("os.setsid()  # a process group of its own", False),
        (f"report it on the JAX {ENTRY} tracker", False),
        ("jaxseq/train/periodic.py", False),
    ],
)
def test_patterns(tmp_path, line, flagged):
    (tmp_path / "x.py").write_text(line + "\n")
    assert bool(history_lines(["x.py"], tmp_path)) == flagged
