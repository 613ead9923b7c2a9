"""Tracked files describe the present: no development history in code, comments, docs or file names.

How the work was organised (numbered work periods, tracker numbers, "the issue's target") belongs
in git, not in the product. A comment states a rule and cites the benchmark behind it; a result
file is named by what it measures or by date. This file, which defines the patterns, is the one
file not checked. ``start_new_session`` does not match: the word must stand alone, and in prose an
OS process session is called a process group.
"""

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
THIS_FILE = pathlib.Path(__file__).resolve().relative_to(ROOT).as_posix()

# each pattern is matched case-insensitively against every line of every tracked text file
HISTORY_PATTERNS = {
    "a work session": r"\bsessions?\b",
    "a numbered session": r"session_?[0-9]",
    "an issue number": r"\bissues? #?[0-9]+",
    "a work period": r"\bwork[ -]periods?\b",
    "the issue's ...": r"\bthe issue'?s\b",
}
# file names: the same words inside a path component
PATH_PATTERNS = {
    "a session in a file name": r"session",
    "an issue number in a file name": r"issue_?[0-9]",
    "a work period in a file name": r"work[_-]?period",
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
        if name == THIS_FILE:
            continue
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
        ("# tuned in session 4", True),
        ("see Sessions 8-10", True),
        ("stress_hangs_session11b.json", True),
        ("the command of issue 11", True),
        ("as in issue #7", True),
        ("in the last work period", True),
        ("label='the issue's target'", True),
        ("proc = subprocess.Popen(cmd, start_new_session=True)", False),
        ("os.setsid()  # a process group of its own", False),
        ("report it on the JAX issue tracker", False),
        ("jaxseq/train/periodic.py", False),
    ],
)
def test_patterns(tmp_path, line, flagged):
    (tmp_path / "x.py").write_text(line + "\n")
    assert bool(history_lines(["x.py"], tmp_path)) == flagged
