"""benchmarks/compare_revisions.py and compare_programs.py: reports read, programs compared, bad input refused."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from revisions import normalized, rates, relative_to  # noqa: E402


def test_rates_of_both_report_layouts():
    recurrent = {"rows": [{"variant": "ours-lstm", "length": 10, "seeds": 1, "strategy": "-", "seed_steps_per_s": 12.5}]}
    textgen = {"results": [{"model": "jaxseq CharLSTM", "chars_per_s": 3000.0}]}
    assert rates(recurrent) == {("ours-lstm", 10, 1, "-"): 12.5}
    assert rates(textgen) == {("jaxseq CharLSTM",): 3000.0}
    atlas = {"rows": [{"cell": "lru", "task": "copy", "length": 64, "ms_per_step": 250.0}]}
    assert rates(atlas) == {("lru", "copy", 64): 4.0}  # steps per second
    with pytest.raises(ValueError, match="not a benchmark this script knows"):
        rates({"meta": {}})


def test_rates_relative_to_a_peer_in_the_same_run():
    run = {("ours-lstm", 10, 1, "-"): 300.0, ("flax-lstm", 10, 1, "-"): 200.0, ("ours-lstm", 30, 1, "-"): 90.0}
    assert relative_to(run, "flax-lstm") == {("ours-lstm", 10, 1, "-"): 1.5}  # T = 30 has no peer beside it


@pytest.mark.parametrize("args, message", [
    (["--before=/nonexistent"], "--before=/nonexistent: give a checkout of jaxseq that has benchmarks/bench_recurrent.py"),
    ([f"--before={ROOT}", "--args=--out=x.json"], "--args must not set --out: each run writes its own report"),
])
def test_refusals_are_one_line(tmp_path, args, message):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare_revisions.py"), *args,
                             f"--out={tmp_path / 'r.json'}"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "r.json").exists()


def test_program_text_is_compared_without_names_and_source_locations():
    one = 'HloModule jit_run_chunk.3\n1 "/a/x.py"\n%fusion.12 = f32[128,512] add(%p.1, %p.2), metadata={op_name="a" source_file="/a/x.py"}'
    two = 'HloModule jit_run_chunk.9\n1 "/b/x.py"\n%fusion.40 = f32[128,512] add(%p.7, %p.8), metadata={op_name="b" source_file="/b/x.py"}'
    other = 'HloModule jit_run_chunk.9\n%fusion.40 = f32[128,512] multiply(%p.7, %p.8)'
    assert normalized(one) == normalized(two)
    assert normalized(one) != normalized(other)  # another operation is another program
