"""How long a fresh Python process takes to import what every jaxseq script imports, per interpreter.

    .venv/bin/python benchmarks/bench_startup.py                                   # this interpreter
    .venv/bin/python benchmarks/bench_startup.py --pythons=.venv/bin/python,/tmp/other-venv/bin/python

Every script, every test that starts one and every Ray worker pays its imports before it computes
anything. For each interpreter and each module of ``--modules`` (imported alone, in a fresh process,
with nothing else), the process's CPU seconds (user + system, from ``resource``) are measured
``--repeats`` times; the rounds go interpreter after interpreter, module after module, so drift on a
shared machine touches every case alike. The table gives the median, and with several interpreters
the ratio of each to the first. The report (``--out``, JSON) holds every sample and each
interpreter's versions of the packages that matter (numpy, ml_dtypes, jax, jaxlib, flax).
"""

import json
import shutil
import statistics
import subprocess

from absl import app, flags

from cli import check_arguments, check_out, check_unique, write_json  # benchmarks/cli.py
from jaxseq.cli import run_main  # one-line errors and exit codes, as in scripts/

_PYTHONS = flags.DEFINE_list("pythons", ["python"], "interpreters to compare (paths or names on PATH); the first is the yardstick")
_MODULES = flags.DEFINE_list("modules", ["numpy", "ml_dtypes", "jax", "jaxseq.cli"], "modules to import, each alone in a fresh process")
_REPEATS = flags.DEFINE_integer("repeats", 5, "fresh processes per (interpreter, module); the median is reported", lower_bound=1)
_OUT = flags.DEFINE_string("out", None, "JSON output (default: a fresh runs/bench_startup/<YYYYmmdd-HHMMSS>/bench_startup.json)")

# run in the fresh process: the CPU seconds its import took (the interpreter's own start included)
_MEASURE = "import resource, {module}; r = resource.getrusage(resource.RUSAGE_SELF); print(r.ru_utime + r.ru_stime)"
_VERSIONS = ("import importlib.metadata as m, json; print(json.dumps({{p: m.version(p) for p in {packages!r} "
             "if __import__('importlib.util').util.find_spec(p.replace('-', '_'))}}))")
PACKAGES = ("numpy", "ml_dtypes", "jax", "jaxlib", "flax")


class StartFailed(RuntimeError):
    """An interpreter could not import a module (its stderr's last line says why)."""


def _run(python: str, code: str) -> str:
    done = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise StartFailed(f"{python} -c {code.split(';')[0]!r} failed: {last}")
    return done.stdout.strip()


def import_cpu_s(python: str, module: str) -> float:
    """CPU seconds (user + system) of a fresh ``python`` process that imports ``module`` and exits."""
    return float(_run(python, _MEASURE.format(module=module)).splitlines()[-1])


def versions(python: str) -> dict[str, str]:
    """``{package: version}`` of :data:`PACKAGES` installed for ``python``."""
    return json.loads(_run(python, _VERSIONS.format(packages=PACKAGES)))


def main(argv):
    check_arguments(argv)
    check_unique(_PYTHONS.value, "--pythons")
    check_unique(_MODULES.value, "--modules")
    missing = [p for p in _PYTHONS.value if shutil.which(p) is None]
    if missing:
        raise app.UsageError(f"--pythons: no interpreter at {', '.join(missing)}")
    out = check_out(_OUT.value)
    pythons, modules = _PYTHONS.value, _MODULES.value
    report = {"pythons": {python: versions(python) for python in pythons}, "repeats": _REPEATS.value, "samples": {}}
    samples = {(p, m): [] for p in pythons for m in modules}
    for _ in range(_REPEATS.value):
        for module in modules:
            for python in pythons:
                samples[python, module].append(import_cpu_s(python, module))
    print(f"{'module':<14}" + "".join(f"{p[-28:]:>30}" for p in pythons) + ("   ratio to first" if len(pythons) > 1 else ""))
    for module in modules:
        medians = [statistics.median(samples[p, module]) for p in pythons]
        ratios = "   " + " ".join(f"{m / medians[0]:.2f}" for m in medians[1:]) if len(pythons) > 1 else ""
        print(f"{module:<14}" + "".join(f"{m:>28.2f} s" for m in medians) + ratios)
        report["samples"][module] = {p: samples[p, module] for p in pythons}
    for python, found in report["pythons"].items():
        print(f"{python}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    write_json(out, report)


if __name__ == "__main__":
    run_main(main)
