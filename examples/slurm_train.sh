#!/usr/bin/env bash
# Multinode streaming training under SLURM: one `accelerate launch` per node, GPUS_PER_NODE processes each.
#   sbatch --nodes=4 examples/slurm_train.sh --root /data/lerobot/my_dataset --batch-size 32
#   sbatch --nodes=4 examples/slurm_train.sh --root hf://datasets/org/name --dummy     # loading only
# Resume: add --resume checkpoints/step_000200.pt (same node count, GPUs, workers, batch size).
#SBATCH --job-name=lrs-train
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --output=%x-%j.out
set -euo pipefail

GPUS_PER_NODE="${GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-8}}"
NNODES="${SLURM_NNODES:-1}"
MASTER_ADDR="$(scontrol show hostnames "${SLURM_JOB_NODELIST:-localhost}" | head -n 1)"
MASTER_PORT="${MASTER_PORT:-29500}"
# DataLoader workers decode video: give each process its share of the node's cores.
export OMP_NUM_THREADS=1

# Rank and world size reach the dataset through accelerate (RANK / WORLD_SIZE in every process);
# every (rank, worker) streams its own disjoint episodes, nothing is split by a sampler.
export GPUS_PER_NODE NNODES MASTER_ADDR MASTER_PORT
# SLURM_NODEID differs per node, so it is expanded inside each task (single quotes); "$@" keeps the
# caller's arguments intact.
srun --kill-on-bad-exit=1 bash -c 'accelerate launch \
  --multi_gpu --num_machines "$NNODES" --num_processes "$((NNODES * GPUS_PER_NODE))" \
  --machine_rank "$SLURM_NODEID" --main_process_ip "$MASTER_ADDR" --main_process_port "$MASTER_PORT" \
  --mixed_precision no --dynamo_backend no \
  examples/train_streaming_multinode.py "$@"' _ "$@"
