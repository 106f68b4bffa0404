#!/usr/bin/env bash
# Runs the streaming benchmark matrix on one SLURM node (submit once per node type / source):
#   sbatch bench/slurm_benchmark.sh --root /data/lerobot/my_dataset           # local source
#   sbatch bench/slurm_benchmark.sh --root https://host/datasets/my_dataset   # http(s) source
#   DEVICES="cpu cuda" MODES="single sarm window" WORKERS="4 8 16" sbatch bench/slurm_benchmark.sh --root ...
# Every cell writes {source}_{mode}_bs{B}_w{W}_{device}.json/.csv/.png into $OUT_DIR.
#SBATCH --job-name=lrs-bench
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=32
#SBATCH --gpus-per-node=1
#SBATCH --time=02:00:00
#SBATCH --output=%x-%j.out
set -euo pipefail

MODES="${MODES:-single sarm window}"
DEVICES="${DEVICES:-cpu}"
WORKERS="${WORKERS:-4 8}"
BATCH_SIZE="${BATCH_SIZE:-32}"
SECONDS_PER_CELL="${SECONDS_PER_CELL:-60}"
OUT_DIR="${OUT_DIR:-bench/results/${SLURM_JOB_ID:-local}}"
export OMP_NUM_THREADS=1

# Pre-warm once: reads every local file so each cell measures decode, not the first disk read
# (remote sources warm the prefetch cache during the first cell instead).
first=1
for mode in $MODES; do
  for device in $DEVICES; do
    for w in $WORKERS; do
      extra=()
      if ((first)); then extra+=(--prewarm); first=0; fi
      srun --ntasks=1 python bench/benchmark_streaming.py "$@" "${extra[@]}" \
        --mode "$mode" --device "$device" --num-workers "$w" --batch-size "$BATCH_SIZE" \
        --seconds "$SECONDS_PER_CELL" --out-dir "$OUT_DIR" --compare-lerobot
    done
  done
done
