#!/usr/bin/env bash
# One prepared session on a lent GPU (about 15 minutes in all): the `gpu` tests, then benchmarks/scale.py for the
# two published Wan shapes at 480x832x33 with the shipped memory savers (bf16 base and autocast, gradient
# checkpointing, 8-bit AdamW, LoRA rank 32): step time and peak memory of SFT and GRPO (Early-Step Focus and all
# steps). Every table goes to $OUT (default runs/gpu). Rehearse on the CPU with small shapes:
#   DEVICE=cpu MODELS=tiny SHAPE="--frames 9 --height 64 --width 64" benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT=${OUT:-runs/gpu}
DEVICE=${DEVICE:-cuda}
MODELS=${MODELS:-"wan2.1-1.3b wan2.2-ti2v-5b"}
SHAPE=${SHAPE:-"--frames 33 --height 480 --width 832"}
mkdir -p "$OUT"
[ "$DEVICE" = cuda ] && { nvidia-smi | tee "$OUT/nvidia-smi.txt"; timeout 240 $PY -m pytest -q -m gpu 2>&1 | tail -20 | tee "$OUT/gpu_tests.txt"; }
for model in $MODELS; do
  # shellcheck disable=SC2086
  timeout 240 $PY benchmarks/scale.py --device "$DEVICE" --model "$model" $SHAPE --steps 2 --sft-steps 3 \
      --group-size 4 --num-steps 20 --tail-steps 4 --rollout-batch-size 4 --micro-batch-size 2 \
      2>&1 | tee "$OUT/scale_$model.md" | tail -15
done
