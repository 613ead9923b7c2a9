"""docs/tutorial.md runs as written: its Python and shell blocks, in order, from the repository root.

The tutorial's paths are under ``~`` and ``$HOME``; the test points HOME at a fresh folder, so the
cell file, the runs and the figures land there. A Python block whose first line is a ``# ~/...``
comment is the file the reader is told to save; every other block is run.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"


def blocks(text: str) -> list[tuple[str, str]]:
    """``[(language, code)]`` of the fenced blocks of a Markdown text, in order."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w+)\n(.*?)^```$", text, re.M | re.S)]


def test_the_tutorial_has_its_steps():
    languages = [language for language, _ in blocks(TUTORIAL.read_text())]
    assert languages.count("python") == 3 and languages.count("bash") == 4


@pytest.mark.slow
def test_every_block_of_the_tutorial_runs(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    shell = ""  # the shell blocks run as one script: an export in one holds for the next
    outputs = []  # what each Python block printed
    for language, code in blocks(TUTORIAL.read_text()):
        first = code.splitlines()[0]
        if language == "python" and first.startswith("# ~/"):
            path = tmp_path / first[len("# ~/"):].strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
            continue
        if language == "bash":
            shell += code
            command = ["bash", "-euo", "pipefail", "-c", shell]
        else:
            command = ["bash", "-euo", "pipefail", "-c", f"{shell}\npython - <<'EOF'\n{code}EOF\n"]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{language} block failed:\n{code}\n{result.stderr[-3000:]}"
        if language == "python":
            outputs.append(result.stdout)
        if language == "bash":
            shell = "\n".join(line for line in shell.splitlines() if line.startswith("export ")) + "\n"

    check, read = outputs[0], outputs[-1]
    assert "(4, 10)" in check and "'leak': (32,)" in check
    assert (tmp_path / "tutorial" / "sweep" / "accuracy_vs_length.png").stat().st_size > 1000
    assert "mycells:LeakyRNNCell" in (tmp_path / "tutorial" / "sweep" / "results.csv").read_text()
    assert (tmp_path / "tutorial" / "frontier" / "frontier.png").stat().st_size > 1000
    assert (tmp_path / "tutorial" / "grad_norms" / "grad_norms.png").stat().st_size > 1000
    assert re.search(r"^mycells:LeakyRNNCell 4 \S+ (True|False)$", read, re.M)
    assert re.search(r"^mycells:LeakyRNNCell: \|\|dL/dh_1\|\| / \|\|dL/dh_T\|\| = \S+ at initialisation$", read, re.M)
