#!/bin/bash
# One deepglass run over several GPU nodes under SLURM: one task per GPU, all tasks one JAX runtime.
#
#   sbatch --nodes=2 --gpus-per-node=8 runs/launch/slurm.sh runs/configs/ising_sweep.toml results/ising_sweep
#
# JAX detects SLURM (SLURM_NTASKS, SLURM_PROCID, the first node as coordinator) when the config has
# [run] distributed = true, or set DEEPGLASS_COORDINATOR below to choose the coordinator yourself. Set
# [run] processes to the task count so a mislaunched job (one task per node instead of per GPU) is refused.
# Process 0 alone writes --out; the directory must be on a file system every node sees. Check the plan first:
#   deepglass run CONFIG --dry-run     (sizes, device count, bytes per device, steps)
#SBATCH --job-name=deepglass
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=deepglass-%j.log
set -euo pipefail
CONFIG=${1:?usage: sbatch runs/launch/slurm.sh CONFIG OUT_DIR}
OUT=${2:?usage: sbatch runs/launch/slurm.sh CONFIG OUT_DIR}

# One coordinator for all tasks: the first node of the allocation, a port free on it.
export DEEPGLASS_COORDINATOR=${DEEPGLASS_COORDINATOR:-$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1):${DEEPGLASS_PORT:-12355}}
export DEEPGLASS_NUM_PROCESSES=$SLURM_NTASKS

# A run that was interrupted (time limit, preemption) continues from its last checkpoint on resubmission.
if [ -f "$OUT/checkpoint.npz" ] || [ -f "$OUT/results.h5" ]; then
  CMD=(deepglass resume "$OUT" --quiet)
else
  CMD=(deepglass run "$CONFIG" --out "$OUT" --quiet)
fi
srun --kill-on-bad-exit=1 bash -c 'DEEPGLASS_PROCESS_ID=$SLURM_PROCID exec "$@"' _ "${CMD[@]}"
