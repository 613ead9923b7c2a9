#!/usr/bin/env bash
# One prepared GPU run, every result under one folder, each step within its own time limit (8 minutes in all).
#
#   benchmarks/gpu_check.sh [OUT]         on a fresh machine with one NVIDIA GPU (run from anywhere)
#   benchmarks/gpu_check.sh --cpu [OUT]   the same steps on CPU with tiny sizes and no install (the test suite runs this)
#
# Steps (OUT defaults to runs/gpu_check/<YYYYmmdd-HHMMSS>, which git ignores):
#   install     a fresh venv (GPU_CHECK_VENV, default .venv-gpu) with '.[cuda12,bench,test]'; skipped when PYTHON
#               names the interpreter of an environment that has them   (--cpu: none, $PYTHON or .venv)
#   devices     jax.devices() and the backend -> OUT/devices.txt (and nvidia-smi -> OUT/nvidia-smi.txt);
#               without a GPU in jax's devices the check stops here
#   tests       the suite's fast subset on the device -> OUT/tests.xml (JUnit)
#   bench       benchmarks/bench_recurrent.py: T = 30, 1, 8, 64, 256 seeds, vmap vs map, against PyTorch's
#               nn.LSTM on the GPU (cuDNN) -> OUT/bench_recurrent.json          (--cpu: T = 4, 2 seeds, map only)
#   palindrome  the default palindrome sweep -> OUT/palindrome/                 (--cpu: configs/palindrome.py:quick, tiny)
# A step that fails or runs past its limit is recorded and the next one runs; OUT/steps.txt lists each
# step's status and seconds, OUT/gpu_check.log everything printed. Exit status: 0 if every step passed.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

mode=gpu
if [ "${1:-}" = "--cpu" ]; then mode=cpu; shift; fi
if [ $# -gt 1 ] || [[ "${1:-}" == -* ]]; then
  echo "error: usage: benchmarks/gpu_check.sh [--cpu] [OUT]" >&2
  exit 2
fi
out=${1:-$repo/runs/gpu_check/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out" || { echo "error: cannot create $out; choose another OUT" >&2; exit 2; }
out=$(cd "$out" && pwd)
cd "$repo"  # OUT as given from where the script was started; everything else from the repository root
: > "$out/steps.txt"
exec > >(tee -a "$out/gpu_check.log") 2>&1

failed=0
# step NAME LIMIT_S COMMAND...: run COMMAND with a time limit (Ctrl-C first, then a kill), record how it went
step() {
  local name=$1 limit=$2 start=$SECONDS code
  shift 2
  echo "== $name (limit ${limit}s): $*"
  timeout --signal=INT --kill-after=20 "$limit" "$@"
  code=$?
  if [ $code -eq 0 ]; then status=ok; elif [ $code -eq 124 ]; then status="timed out"; else status="failed (exit $code)"; fi
  [ $code -eq 0 ] || failed=1
  printf '%-12s %-20s %4ds\n' "$name" "$status" $((SECONDS - start)) | tee -a "$out/steps.txt"
  return $code
}

if [ "$mode" = gpu ]; then
  venv=${GPU_CHECK_VENV:-.venv-gpu}
  if [ -n "${PYTHON:-}" ]; then  # an environment prepared already (e.g. a machine without the package index)
    python=$PYTHON
    printf '%-12s %-20s %4ds\n' install "skipped (PYTHON)" 0 | tee -a "$out/steps.txt"
  else
    pip="$venv/bin/python -m pip install --quiet"
    step install 140 bash -c "python3 -m venv $venv && $pip --upgrade pip && $pip -e '.[cuda12,bench,test]'" || exit 1
    python=$venv/bin/python
  fi
  tests=(tests/test_cells.py tests/test_bptt.py tests/test_linear_cells.py tests/test_any_cell.py tests/test_train.py)
  bench=(--lengths=30 --seeds=1,8,64,256 --strategies=vmap,map --variants=ours-lstm,torch-lstm --torch_device=cuda --repeats=5)
  sweep=(--config=configs/palindrome.py)
  limits=(30 80 100 130)  # with the install: 480 s
  command -v nvidia-smi > /dev/null && nvidia-smi > "$out/nvidia-smi.txt" 2>&1
else
  python=${PYTHON:-.venv/bin/python}
  export JAX_PLATFORMS=cpu
  tests=(tests/test_sequences.py -k "unknown_task or length_one")
  variants=ours-lstm
  "$python" -c "import torch" 2> /dev/null && variants=ours-lstm,torch-lstm
  bench=(--lengths=4 --seeds=2 --strategies=vmap,map --variants=$variants --torch_device=cpu --repeats=1 --chunk=2)
  sweep=(--config=configs/palindrome.py:quick --config.sweep.models=rnn --config.sweep.lengths=4 --config.train.num_steps=20)
  limits=(60 120 180 180)
fi

step devices "${limits[0]}" "$python" -c "import sys, jax
text = f'{jax.devices()}\nbackend: {jax.default_backend()}\n'
print(text, end='')
open(sys.argv[1], 'w').write(text)" "$out/devices.txt" || exit 1
if [ "$mode" = gpu ] && ! grep -q "backend: gpu" "$out/devices.txt"; then
  echo "error: jax sees no GPU (see $out/devices.txt); stopping before anything is timed on the wrong device"
  exit 1
fi
step tests "${limits[1]}" "$python" -m pytest -q -p no:cacheprovider -m "not slow and not data" -n 0 \
  --junitxml="$out/tests.xml" "${tests[@]}"
step bench "${limits[2]}" "$python" benchmarks/bench_recurrent.py "${bench[@]}" --shards=1 --out="$out/bench_recurrent.json"
step palindrome "${limits[3]}" "$python" scripts/run_palindrome.py "${sweep[@]}" --out="$out/palindrome"
echo "results in $out"
exit $failed
