import os
import signal
import sys
import tempfile

# tests import their NumPy references as plain modules from this directory
sys.path.insert(0, os.path.dirname(__file__))

# before any test module runs a jax computation, as the scripts do (jaxseq.cli.run_main): one jax CPU
# device per core (jaxseq/runner/cpu_devices.py), and at least two even on a one-core machine, so the
# batch-shard tests on devices always run.
# XLA compiles the suite's many small programs at LLVM optimisation level 0 (inherited by every script
# a test starts): most of the suite's time is compilation, and the tests check what a program computes,
# not how fast. tests/test_train.py on the 2-core CPU, 2026-12-07: 170 s at the default level, 104 s at
# level 0, the same 52 passes. An XLA_FLAGS that names a level of its own is kept.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

# One persistent XLA compilation cache for the run, shared by every process the suite starts (the
# scripts the end-to-end tests run inherit it): many tests start the same script on the same quick
# config, and each of its programs then compiles once. A cache the user names is kept. Four files of
# end-to-end tests (write_guard, recovery, run_palindrome, study_scripts) on the 2-core CPU,
# 2026-12-07, -n 2: 237 s without a cache, 203 s starting from an empty one, the same passes.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), f"jaxseq-test-xla-cache-{os.getuid()}")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
os.environ["JAXSEQ_CPU_DEVICES"] = str(max(2, min(_cores, 16)))
from jaxseq import report  # noqa: E402
from jaxseq.runner.cpu_devices import request_cpu_devices  # noqa: E402

request_cpu_devices()
report.to_stderr()  # jaxseq's warnings and notes as the scripts show them: "warning: ..." lines on stderr

# A process started in the background by a shell without job control (``cmd &``, ``nohup``) ignores
# SIGINT, and so would every script the Ctrl-C tests start from it: they would never see the Ctrl-C.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

