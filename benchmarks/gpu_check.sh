#!/usr/bin/env bash
# One prepared session on a lent GPU (about 15 minutes in all): the `gpu` tests, then benchmarks/scale.py for the
# two published Wan shapes at 480x832x33 with the shipped memory savers (bf16 base and autocast, gradient
# checkpointing, 8-bit AdamW, LoRA rank 32): step time and peak memory of SFT and GRPO (Early-Step Focus and all
# steps); then benchmarks/time_to_target.py on the tiny maze recipe (all steps against Early-Step Focus, with and
# without the fast tail), so its wall-time ratios are measured on a GPU too; last, eval and rollout throughput of the
# packaged TrapField model, eager and under torch.compile. Every table goes to $OUT (default
# runs/gpu). Rehearse on the CPU with small shapes and few steps:
#   DEVICE=cpu MODELS=tiny SHAPE="--frames 9 --height 64 --width 64" TTT_STEPS=2 TTT_VAL=4 benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT=${OUT:-runs/gpu}
DEVICE=${DEVICE:-cuda}
MODELS=${MODELS:-"wan2.1-1.3b wan2.2-ti2v-5b"}
SHAPE=${SHAPE:-"--frames 33 --height 480 --width 832"}
TTT_STEPS=${TTT_STEPS:-20}  # GRPO steps per time-to-target variant, validated at the half and the end
TTT_VAL=${TTT_VAL:-32}      # validation mazes
mkdir -p "$OUT"
[ "$DEVICE" = cuda ] && { nvidia-smi | tee "$OUT/nvidia-smi.txt"; timeout 240 $PY -m pytest -q -m gpu 2>&1 | tail -20 | tee "$OUT/gpu_tests.txt"; }
for model in $MODELS; do
  # shellcheck disable=SC2086
  timeout 240 $PY benchmarks/scale.py --device "$DEVICE" --model "$model" $SHAPE --steps 2 --sft-steps 3 \
      --group-size 4 --num-steps 20 --tail-steps 4 --rollout-batch-size 4 --micro-batch-size 2 \
      2>&1 | tee "$OUT/scale_$model.md" | tail -15
done
# the packaged maze model's data recipe (its card): test boards first, so validation boards are unseen by it
data="$OUT/maze_data"
for split in "test 200" "val $TTT_VAL" "train $((2 * TTT_STEPS))"; do
  # shellcheck disable=SC2086
  set -- $split
  $PY -m videoreason.cli data generate --task maze --difficulty tiny-fill --height 56 --width 56 --frames 9 --seed 0 \
      --split "$1" --num "$2" --out "$data" > /dev/null 2>&1
done
accelerator=$([ "$DEVICE" = cuda ] && echo gpu || echo cpu)
timeout 300 $PY benchmarks/time_to_target.py --config configs/maze/grpo_tiny_fill_steps.yaml --start maze_fill_steps \
    --data "$data" --out "$OUT/time_to_target" --steps "$TTT_STEPS" --every $((TTT_STEPS / 2)) \
    --variants all_steps esf_k3 esf_k3_tail --trainer.accelerator "$accelerator" \
    --data.init_args.num_val_puzzles "$TTT_VAL" 2>&1 | tail -20 | tee "$OUT/time_to_target.txt"
$PY -m videoreason.cli data generate --task trapfield --difficulty tiny --height 40 --width 40 --frames 9 --seed 0 \
    --split val --num 8 --out "$OUT/trapfield_data" > /dev/null 2>&1
timeout 240 $PY benchmarks/generation_throughput.py --data "$OUT/trapfield_data" --models trapfield_plateau --compile \
    --device "$DEVICE" 2>&1 | tail -8 | tee "$OUT/generation_throughput.txt"
