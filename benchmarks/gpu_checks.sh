#!/usr/bin/env bash
# Issue 29: everything that needs a GPU, in one prepared run (a lent GPU machine's time is short).
#
#   bash benchmarks/gpu_checks.sh [OUTDIR]      # default: $OUT (the device tool's folder) or gpu_checks_out/
#
# On a machine that has torch with CUDA but not this project's other packages, put their wheels in .whl/
# first (monai, nibabel, pytorch-ignite, fire, termcolor, opencv-contrib-python-headless): they are
# installed into /tmp/site. Each step has its own time limit, so one slow step cannot starve the rest;
# the logs of every step land in OUTDIR and a summary is printed last.
set -u
OUTDIR=${1:-${OUT:-gpu_checks_out}}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=$PWD:/tmp/site
else
    export PYTHONPATH=$PWD
fi
started=$(date +%s)
step() {  # step NAME LIMIT_S COMMAND...: run, log to OUTDIR/NAME.log, print the tail and the time taken
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    echo "=== $name (limit ${limit}s) at +$((t0 - started))s"
    timeout "$limit" "$@" > "$OUTDIR/$name.log" 2>&1
    local rc=$?
    tail -n "${TAIL:-25}" "$OUTDIR/$name.log"
    echo "=== $name rc=$rc in $(( $(date +%s) - t0 ))s"
    echo "$name rc=$rc $(( $(date +%s) - t0 ))s" >> "$OUTDIR/summary.txt"
}
{ nvidia-smi; python3 -c "import torch, monai, numba, skimage, cv2, sys; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name()); print('monai', monai.__version__, 'numba', numba.__version__, 'skimage', skimage.__version__, 'cv2', cv2.__version__, 'saliency', hasattr(cv2, 'saliency'))"; nproc; } > "$OUTDIR/summary.txt" 2>&1
cat "$OUTDIR/summary.txt"
PYTEST="python3 -m pytest -p no:cacheprovider -o addopts= -q -rfE"
TAIL=40 step pytest_gpu "${GPU_TESTS_S:-150}" $PYTEST -m gpu tests
TAIL=80 step bench_gpu "${BENCH_S:-200}" python3 benchmarks/bench_gpu.py --device cuda --json "$OUTDIR/bench_gpu.json"
TAIL=8 step bundle_epoch "${EPOCH_S:-150}" python3 benchmarks/bench_bundle_epoch.py --device cuda --epochs 4 --workers 4
# the whole suite with CUDA visible: every test that picks "auto" or "cuda" meets the GPU. The wheel test
# needs an index (none is reachable there); the notebooks need nbmake and a kernel (CI runs them).
TAIL=40 step pytest_all "${ALL_TESTS_S:-240}" $PYTEST -n "${WORKERS:-12}" --timeout 200 tests \
    --deselect tests/test_packaging.py::test_wheel_installs_into_a_clean_venv_with_only_the_core_requirements
echo "=== total $(( $(date +%s) - started ))s"
cat "$OUTDIR/summary.txt"
