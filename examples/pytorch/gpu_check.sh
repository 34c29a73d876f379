#!/usr/bin/env bash
# Runs the PyTorch example on an NVIDIA GPU, alone (no keel needed), and checks what the README
# promises there: it trains on CUDA, a run resumed from a checkpoint ends with the same weights as
# an uninterrupted one, two runs with the same seed agree, and save_async (checkpoints written in
# a background thread) changes nothing in the weights. GPU utilisation and memory are sampled every
# 100 ms meanwhile; checkpoint_utilisation.py then compares the GPU's utilisation during
# checkpoints with and without save_async (the runs "big" and "big-async").
#
#   bash examples/pytorch/gpu_check.sh [OUT_DIR]      # default: ./gpu-check
#
# Writes to OUT_DIR: env.txt (GPU, driver, torch), smi.csv (nvidia-smi samples), runs.log (every
# run's output, each line stamped with the time and the run's name), results.txt (one line per
# check, PASS/FAIL, and the utilisation figures), checkpoint-utilisation.json (the same figures).
# Exits 1 if a check failed. Needs about 12 GB of free disk for the big runs' checkpoints.
set -uo pipefail
out=$(mkdir -p "${1:-gpu-check}" && cd "${1:-gpu-check}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
export PYTHONUNBUFFERED=1 PYTHONPATH="$repo/sdk/python/src${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$out/runs.log"
: >"$out/results.txt"

{
  nvidia-smi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
  echo "cpus $(nproc)"
} >"$out/env.txt" 2>&1

nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,power.draw --format=csv,nounits -lms 100 >"$out/smi.csv" 2>&1 &
sampler=$!

# run NAME PARAMS [VAR=value ...]: one trainer run; prints its result line (JSON)
run() {
  local name=$1 params=$2
  shift 2
  env KEEL_PARAMS="$params" KEEL_CHECKPOINT_DIR="$work/$name" "$@" python3 examples/pytorch/train.py 2>&1 |
    while IFS= read -r line; do printf '%s %s %s\n' "$(date '+%Y/%m/%d %H:%M:%S.%3N')" "$name" "$line"; done >>"$out/runs.log"
  grep " $name {\"final\"" "$out/runs.log" | tail -n 1 | cut -d' ' -f4-
}
sha() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip() or "{}").get("weightsSha256"))'; }
device() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip() or "{}").get("device"))'; }
check() { # check WHAT A B: PASS when A == B (and not empty)
  if [ -n "$2" ] && [ "$2" != None ] && [ "$2" = "$3" ]; then echo "PASS $1 ($2)"; else echo "FAIL $1 ($2 vs $3)"; fi | tee -a "$out/results.txt"
}

# A heavier configuration, so the GPU has work: ~50M parameters, 600 MB checkpoints (weights + AdamW),
# one every 100 steps: 5 checkpoints in mid-run to measure, with plain saves and with save_async.
big_params='"width":4096,"depth":4,"batch_size":8192,"train_size":200000,"steps":600,"checkpoint_every":100,"eval_every":100'
big="{$big_params}"
big_async="{$big_params,\"save_async\":true}"
r1=$(run big "$big")
r2=$(run big-resumed "$big" KEEL_RESUME_FROM="$work/big/step-200" KEEL_RESUME_STEP=200)
echo "big: $r1" | tee -a "$out/results.txt"
check "$(device <<<"$r1"), big: resumed from step 200 = uninterrupted" "$(sha <<<"$r1")" "$(sha <<<"$r2")"
rm -rf "$work/big-resumed"
a1=$(run big-async "$big_async")
a2=$(run big-async-resumed "$big_async" KEEL_RESUME_FROM="$work/big-async/step-200" KEEL_RESUME_STEP=200)
echo "big-async: $a1" | tee -a "$out/results.txt"
check "$(device <<<"$a1"), big: save_async = plain saves" "$(sha <<<"$a1")" "$(sha <<<"$r1")"
check "$(device <<<"$a1"), big: resumed from save_async's step 200 = uninterrupted" "$(sha <<<"$a2")" "$(sha <<<"$r1")"
rm -rf "$work/big" "$work/big-async" "$work/big-async-resumed"

# The defaults (a small MLP): resume and run-to-run determinism on CUDA, then on the CPU.
s1=$(run small '{}')
s2=$(run small-resumed '{}' KEEL_RESUME_FROM="$work/small/step-500" KEEL_RESUME_STEP=500)
s3=$(run small-again '{}')
echo "small: $s1" | tee -a "$out/results.txt"
check "$(device <<<"$s1"), defaults: resumed from step 500 = uninterrupted" "$(sha <<<"$s1")" "$(sha <<<"$s2")"
check "$(device <<<"$s1"), defaults: a second run = the first" "$(sha <<<"$s1")" "$(sha <<<"$s3")"
c1=$(run cpu '{"device":"cpu"}')
c2=$(run cpu-resumed '{"device":"cpu"}' KEEL_RESUME_FROM="$work/cpu/step-500" KEEL_RESUME_STEP=500)
echo "cpu: $c1" | tee -a "$out/results.txt"
check "cpu, defaults: resumed from step 500 = uninterrupted" "$(sha <<<"$c1")" "$(sha <<<"$c2")"

# scikit-learn's 8x8 digits, when scikit-learn is there.
if python3 -c 'import sklearn' 2>/dev/null; then
  d1=$(run digits '{"dataset":"digits","width":256,"steps":1000}')
  echo "digits: $d1" | tee -a "$out/results.txt"
fi

kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
# GPU utilisation during the checkpoints of the two big runs: plain saves vs save_async.
python3 examples/pytorch/checkpoint_utilisation.py "$out" big big-async | tee -a "$out/results.txt"
! grep -q '^FAIL' "$out/results.txt"
